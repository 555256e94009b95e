/* Tiny test harness for the ctest programs: CHECK macros, a finite-difference gradient checker, fixtures. */
#ifndef YT_TESTUTIL_H
#define YT_TESTUTIL_H

#include <stdio.h>

#include "core/autograd.h"
#include "core/error.h"
#include "core/tensor.h"
#include "ops/conv2d.h"

extern int tu_passed, tu_failed;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            tu_passed++;                                                                                               \
        } else {                                                                                                       \
            tu_failed++;                                                                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);                                   \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
        }                                                                                                              \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                                                         \
    CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, %s = %.9g, tolerance %.3g", #a, (double)(a), #b,       \
          (double)(b), (double)(tol))

/* Drops cairo's and fontconfig's process-wide caches, so LeakSanitizer reports only our own leaks: call once at
 * the end of a test that drew text. */
void tu_drop_font_caches(void);

/* Prints "N passed, N failed" and returns the exit code. */
int tu_finish(void);

/* Deterministic uniform numbers in [lo, hi). */
void tu_seed(unsigned long long seed);
float tu_uniform(float lo, float hi);
yt_tensor *tu_rand(int ndim, const int64_t *shape, float lo, float hi);

/* Finite-difference gradient check of f at the given F32 inputs (those with requires_grad set are checked).
 * The scalar checked is sum(f(inputs) * R) for a fixed random R. Central differences in float32 with step eps;
 * passes when |analytic - numeric| <= atol + rtol * |numeric| for every element. Returns 1 on pass; fails when
 * no input requires a gradient (nothing would be checked) or a forward fails. */
typedef yt_tensor *(*tu_fn)(yt_tensor **inputs, void *userdata);
int tu_gradcheck(const char *name, tu_fn f, int n, yt_tensor **inputs, void *userdata, float eps, float atol,
                 float rtol);

/* Comparisons of contiguous F32 tensors with the same element count. Anything else (a NULL or released tensor,
 * another dtype, a strided tensor, a size mismatch) prints why and returns INFINITY (NaN for tu_max_abs), and a
 * NaN element gives NaN: either way every `d <= tol` check fails. */
/* max |a - b| */
double tu_max_abs_diff(const yt_tensor *a, const yt_tensor *b);
/* max |a| */
double tu_max_abs(const yt_tensor *a);
/* sqrt(sum (a-b)^2) / sqrt(sum b^2) */
double tu_rel_l2(const yt_tensor *a, const yt_tensor *b);

/* Double-precision naive convolution references. x (N,C,H,W), w (O,C,KH,KW), y (N,O,OH,OW); b, gx, gw, gb may be
 * NULL; the backward adds into gx, gw, gb. */
void tu_conv2d_ref_forward(const float *x, const float *w, const float *b, double *y, const yt_conv2d_shape *s);
void tu_conv2d_ref_backward(const float *x, const float *gy, double *gx, const float *w, double *gw, double *gb,
                            const yt_conv2d_shape *s);

#endif
