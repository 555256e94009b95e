/* Elementwise F32 arithmetic with NumPy/PyTorch broadcasting, and elementwise unary math, with autograd.
 *
 * Broadcasting: shapes are right-aligned; each pair of sizes must be equal or one of them 1 (a size-1 or
 * missing dimension is repeated). The backward of a broadcast input sums the gradient over the repeated
 * dimensions (double accumulators). Inputs may be strided views; outputs are new contiguous tensors. */
#ifndef YT_OPS_ELEMENTWISE_H
#define YT_OPS_ELEMENTWISE_H

#include <stddef.h>

#include "core/tensor.h"

typedef enum { YT_BIN_ADD = 0, YT_BIN_SUB, YT_BIN_MUL, YT_BIN_DIV } yt_binary_op;

typedef enum {
    YT_UN_NEG = 0,
    YT_UN_EXP,
    YT_UN_LOG,
    YT_UN_SQRT,
    YT_UN_ABS,
    YT_UN_POW,   /* x^p0 */
    YT_UN_CLAMP, /* min(max(x, p0), p1); gradient 1 where p0 <= x <= p1, else 0 */
    YT_UN_ADDS,  /* x + p0 */
    YT_UN_MULS,  /* x * p0 */
    YT_UN_DIVS,  /* x / p0 */
    YT_UN_RSUBS, /* p0 - x */
    YT_UN_RDIVS, /* p0 / x */
    YT_UN_COUNT
} yt_unary_op;

/* Raw kernels, same-shape contiguous arrays. a, b, y: n floats. */
void yt_binary_forward(yt_binary_op op, const float *a, const float *b, float *y, size_t n);
/* ga += d(op)/da * gy, gb += d(op)/db * gy (either may be NULL) */
void yt_binary_backward(yt_binary_op op, const float *a, const float *b, const float *gy, float *ga, float *gb,
                        size_t n);
/* x, y: n floats; p0, p1: the op's scalar parameters (see yt_unary_op) */
void yt_unary_forward(yt_unary_op op, const float *x, float *y, size_t n, float p0, float p1);
/* gx += gy * f'(x); y = f(x) is used where cheaper (exp, sqrt) */
void yt_unary_backward(yt_unary_op op, const float *x, const float *y, const float *gy, float *gx, size_t n, float p0,
                       float p1);

/* Broadcast shape of a and b into shape (YT_MAX_DIMS entries); returns ndim, or -1 with an error naming
 * both shapes (op is the op's name for the message). */
int yt_broadcast_shape(const char *op, const yt_tensor *a, const yt_tensor *b, int64_t *shape);

/* Tensor-tensor, broadcasting. */
yt_tensor *yt_binary(yt_binary_op op, yt_tensor *a, yt_tensor *b);
yt_tensor *yt_add(yt_tensor *a, yt_tensor *b);
yt_tensor *yt_sub(yt_tensor *a, yt_tensor *b);
yt_tensor *yt_mul(yt_tensor *a, yt_tensor *b);
yt_tensor *yt_div(yt_tensor *a, yt_tensor *b);

/* Tensor-scalar (the scalar is rounded to float, as PyTorch does for a float tensor). */
yt_tensor *yt_unary(yt_unary_op op, yt_tensor *x, double p0, double p1);
yt_tensor *yt_add_scalar(yt_tensor *a, double s);  /* a + s */
yt_tensor *yt_sub_scalar(yt_tensor *a, double s);  /* a - s */
yt_tensor *yt_rsub_scalar(yt_tensor *a, double s); /* s - a */
yt_tensor *yt_mul_scalar(yt_tensor *a, double s);  /* a * s */
yt_tensor *yt_div_scalar(yt_tensor *a, double s);  /* a / s */
yt_tensor *yt_rdiv_scalar(yt_tensor *a, double s); /* s / a */

yt_tensor *yt_neg(yt_tensor *x);
yt_tensor *yt_exp(yt_tensor *x);
yt_tensor *yt_log(yt_tensor *x);
yt_tensor *yt_sqrt(yt_tensor *x);
yt_tensor *yt_abs(yt_tensor *x); /* gradient sign(x), 0 at 0 */
yt_tensor *yt_pow_scalar(yt_tensor *x, double p);
/* lo/hi may be -INFINITY/INFINITY for "no bound"; NaN passes through. */
yt_tensor *yt_clamp(yt_tensor *x, double lo, double hi);

#endif
