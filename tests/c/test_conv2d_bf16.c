/* bfloat16 convolutions (mixed precision, ops/autocast.h): the raw kernels with precision YT_CONV_BF16 against
 * double references, and the tensor op under autocast against its float32 result.
 *
 * Two references per pass: the exact result (the bf16 kernel must be within bf16 rounding of it, ~1e-2 relative),
 * and the result on the operands rounded to bf16 first, which the kernel must match to float32 accumulation
 * accuracy (~1e-5): that is what "bf16 products, fp32 accumulation" means, and it fails if either the rounding or
 * the accumulation is not what it says (a float32 kernel misses the second by ~1e-3, a bf16 accumulator the first
 * by far). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "ops/autocast.h"
#include "ops/conv2d.h"
#include "ops/conv2d_dnnl.h"
#include "testutil.h"

/* max |a - (r + base)| / max |r|: a accumulated onto base */
static double rel_err(const float *a, const double *r, const float *base, size_t n)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (r[i] + (base ? base[i] : 0.0)));
        if (d > m || d != d) m = d;
        if (fabs(r[i]) > s) s = fabs(r[i]);
    }
    return s > 0 ? m / s : m;
}

static float *rand_buf(size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = tu_uniform(lo, hi);
    return p;
}

static float *rounded(const float *a, size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = yt_bf16_to_f32(yt_f32_to_bf16(a[i]));
    return p;
}

/* One shape through the raw bf16 kernels: forward (with bias), backward accumulating onto nonzero gradients;
 * a second run is bit-identical. */
static void check_raw(int N, int C, int H, int W, int O, int k, int stride, int pad, int backend)
{
    yt_conv2d_shape s = {N, C, H, W, O, k, k, stride, stride, pad, pad, 0, 0, 0, backend, YT_CONV_BF16};
    CHECK(yt_conv2d_shape_init(&s) == 0, "shape: %s", yt_last_error());
    char name[96];
    snprintf(name, sizeof name, "N%d C%d %dx%d O%d k%d s%d p%d (%s)", N, C, H, W, O, k, stride, pad,
             yt_conv2d_backend_name(backend));
    size_t nx = (size_t)N * C * H * W, nw = (size_t)O * C * k * k, ny = (size_t)N * O * s.OH * s.OW;
    float *x = rand_buf(nx, -1, 1), *w = rand_buf(nw, -0.5f, 0.5f), *b = rand_buf(O, -1, 1), *gy = rand_buf(ny, -1, 1);
    float *xr = rounded(x, nx), *wr = rounded(w, nw), *gyr = rounded(gy, ny);
    float *gx0 = rand_buf(nx, -1, 1), *gw0 = rand_buf(nw, -1, 1), *gb0 = rand_buf(O, -1, 1);
    double *ry = calloc(ny, sizeof *ry), *rgx = calloc(nx, sizeof *rgx), *rgw = calloc(nw, sizeof *rgw);
    double *rgb = calloc(O, sizeof *rgb);
    double *qy = calloc(ny, sizeof *qy), *qgx = calloc(nx, sizeof *qgx), *qgw = calloc(nw, sizeof *qgw);
    tu_conv2d_ref_forward(x, w, b, ry, &s);
    tu_conv2d_ref_backward(x, gy, rgx, w, rgw, rgb, &s);
    tu_conv2d_ref_forward(xr, wr, b, qy, &s);
    tu_conv2d_ref_backward(xr, gyr, qgx, wr, qgw, NULL, &s);
    float *y[2], *gx[2], *gw[2], *gb[2];
    for (int r = 0; r < 2; r++) {
        y[r] = malloc(ny * sizeof(float));
        gx[r] = malloc(nx * sizeof(float));
        gw[r] = malloc(nw * sizeof(float));
        gb[r] = malloc(O * sizeof(float));
        memcpy(gx[r], gx0, nx * sizeof(float));
        memcpy(gw[r], gw0, nw * sizeof(float));
        memcpy(gb[r], gb0, O * sizeof(float));
        CHECK(yt_conv2d_forward(x, y[r], w, b, &s) == 0, "%s forward: %s", name, yt_last_error());
        CHECK(yt_conv2d_backward(x, gy, gx[r], w, gw[r], gb[r], &s) == 0, "%s backward: %s", name, yt_last_error());
    }
    /* against the exact result: within bf16 rounding (8 bits of mantissa: 2^-9 per operand, partly averaging out) */
    double ey = rel_err(y[0], ry, NULL, ny), egx = rel_err(gx[0], rgx, gx0, nx), egw = rel_err(gw[0], rgw, gw0, nw);
    double egb = rel_err(gb[0], rgb, gb0, O);
    CHECK(ey < 1e-2 && egx < 1e-2 && egw < 1e-2, "%s: bf16 vs exact rel err y %.3g gx %.3g gw %.3g", name, ey, egx,
          egw);
    /* the bias gradient is a float32 sum of float32 gy: not rounded */
    CHECK(egb < 1e-6, "%s: bias gradient rel err %.3g", name, egb);
    /* against the bf16-rounded operands: float32 accumulation */
    double qey = rel_err(y[0], qy, NULL, ny), qegx = rel_err(gx[0], qgx, gx0, nx), qegw = rel_err(gw[0], qgw, gw0, nw);
    CHECK(qey < 2e-6 && qegx < 2e-6 && qegw < 1e-5, "%s: vs bf16-rounded operands rel err y %.3g gx %.3g gw %.3g", name,
          qey, qegx, qegw);
    /* and it did round: the exact result is further away than float32 accumulation explains */
    CHECK(ey > 1e-4, "%s: forward rel err %.3g: looks like float32, not bf16", name, ey);
    CHECK(memcmp(y[0], y[1], ny * 4) == 0 && memcmp(gx[0], gx[1], nx * 4) == 0 && memcmp(gw[0], gw[1], nw * 4) == 0 &&
              memcmp(gb[0], gb[1], (size_t)O * 4) == 0,
          "%s: two bf16 runs differ", name);
    printf("%-36s bf16 vs exact: y %.2e gx %.2e gw %.2e; vs rounded operands: y %.2e gx %.2e gw %.2e\n", name, ey, egx,
           egw, qey, qegx, qegw);
    for (int r = 0; r < 2; r++) {
        free(y[r]);
        free(gx[r]);
        free(gw[r]);
        free(gb[r]);
    }
    void *bufs[] = {x, w, b, gy, xr, wr, gyr, gx0, gw0, gb0, ry, rgx, rgw, rgb, qy, qgx, qgw};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

/* The tensor op: under autocast, what is recorded for backward runs bf16 (within bf16 tolerance of float32, and not
 * bitwise float32); without grad, or with autocast off, the result is bitwise float32. Gradients through autograd
 * match the float32 ones within bf16 tolerance. */
static double rel_diff(const yt_tensor *a, const yt_tensor *ref)
{
    double d = tu_max_abs_diff(a, ref), m = tu_max_abs(ref);
    return m > 0 ? d / m : d;
}

static void check_tensor_level(int N, int C, int HW, int O, int k, int stride)
{
    int64_t xs[] = {N, C, HW, HW}, ws[] = {O, C, k, k}, bs[] = {O};
    yt_tensor *x = tu_rand(4, xs, -1, 1), *w = tu_rand(4, ws, -0.5f, 0.5f), *b = tu_rand(1, bs, -1, 1);
    x->requires_grad = w->requires_grad = b->requires_grad = 1;
    yt_tensor *y[2], *g[2][3];
    for (int amp = 0; amp < 2; amp++) {
        yt_autocast_set(amp);
        yt_scope_begin();
        yt_tensor *out = yt_conv2d(x, w, b, stride, stride, k / 2, k / 2);
        CHECK(out != NULL, "conv: %s", yt_last_error());
        y[amp] = yt_tensor_clone(out);
        yt_tensor_keep(y[amp]);
        /* the gradient of sum(out * out): gy = 2 out, so the backward sees the forward's rounding too */
        CHECK(yt_backward(1, &out, &out) == 0, "backward: %s", yt_last_error());
        yt_scope_end();
        yt_tensor_release(out);
        yt_tensor *in[3] = {x, w, b};
        for (int i = 0; i < 3; i++) {
            g[amp][i] = in[i]->grad;
            in[i]->grad = NULL;
        }
    }
    yt_autocast_set(0);
    double dy = rel_diff(y[1], y[0]), dgx = rel_diff(g[1][0], g[0][0]), dgw = rel_diff(g[1][1], g[0][1]);
    double dgb = rel_diff(g[1][2], g[0][2]);
    CHECK(dy < 1e-2 && dgx < 2e-2 && dgw < 2e-2 && dgb < 2e-2,
          "N%d C%d %d O%d k%d s%d: autocast vs float32 rel diff y %.3g gx %.3g gw %.3g gb %.3g", N, C, HW, O, k, stride,
          dy, dgx, dgw, dgb);
    CHECK(dy > 0, "N%d C%d %d O%d k%d s%d: autocast gave the float32 result bitwise", N, C, HW, O, k, stride);
    printf("tensor op N%d C%d %d O%d k%d s%d: autocast vs float32 y %.2e gx %.2e gw %.2e gb %.2e\n", N, C, HW, O, k,
           stride, dy, dgx, dgw, dgb);

    /* not recorded (no_grad): float32 bitwise, autocast or not */
    yt_autocast_set(1);
    int was = yt_set_grad_enabled(0);
    yt_tensor *nog = yt_conv2d(x, w, b, stride, stride, k / 2, k / 2);
    yt_set_grad_enabled(was);
    yt_autocast_set(0);
    CHECK(nog && tu_max_abs_diff(nog, y[0]) == 0.0, "no-grad conv under autocast is not the float32 result");
    yt_tensor_release(nog);
    for (int amp = 0; amp < 2; amp++) {
        yt_tensor_release(y[amp]);
        for (int i = 0; i < 3; i++) yt_tensor_release(g[amp][i]);
    }
    yt_tensor_release(x);
    yt_tensor_release(w);
    yt_tensor_release(b);
}

static void check_switch(void)
{
    CHECK(yt_autocast_enabled() == 0, "autocast is off by default");
    CHECK(yt_autocast_set(1) == 0 && yt_autocast_enabled() == 1, "set on");
    CHECK(yt_autocast_active() == yt_autocast_bf16_supported(), "active only where the CPU has BF16");
    CHECK(yt_autocast_set(0) == 1 && yt_autocast_enabled() == 0 && !yt_autocast_active(), "set off");
    const char *isa = yt_conv2d_dnnl_isa();
    CHECK(isa && *isa && strcmp(isa, "unknown") != 0, "oneDNN's ISA has a name: %s", isa ? isa : "(null)");
    printf("oneDNN effective ISA: %s; bf16 %s\n", isa, yt_autocast_bf16_supported() ? "supported" : "not supported");
}

int main(void)
{
    tu_seed(11);
    check_switch();
    if (!yt_autocast_bf16_supported()) {
        /* amp=true trains in float32 here: the tensor op must then give float32 results bitwise */
        int64_t xs[] = {2, 4, 6, 6}, ws[] = {3, 4, 3, 3};
        yt_tensor *x = tu_rand(4, xs, -1, 1), *w = tu_rand(4, ws, -1, 1);
        w->requires_grad = 1;
        yt_tensor *a = yt_conv2d(x, w, NULL, 1, 1, 1, 1);
        yt_autocast_set(1);
        yt_tensor *c = yt_conv2d(x, w, NULL, 1, 1, 1, 1);
        yt_autocast_set(0);
        CHECK(a && c && tu_max_abs_diff(a, c) == 0.0, "no BF16: autocast runs float32");
        yt_tape_clear();
        yt_tensor_release(a);
        yt_tensor_release(c);
        yt_tensor_release(x);
        yt_tensor_release(w);
        printf("this CPU has no BF16 (oneDNN ISA %s): the bf16 kernels are not checked here\n", yt_conv2d_dnnl_isa());
        return tu_finish();
    }
    /* raw kernels: 1x1, 3x3 s1 / s2, odd sizes, channels off oneDNN's 16-blocks, the 3-channel first layer, a
     * batch cut into chunks; bf16 runs on oneDNN whatever the backend */
    check_raw(3, 16, 9, 9, 32, 1, 1, 0, YT_CONV_GEMM);
    check_raw(3, 20, 9, 11, 24, 1, 1, 0, YT_CONV_DNNL);
    check_raw(2, 16, 10, 10, 16, 3, 1, 1, YT_CONV_DNNL);
    check_raw(2, 24, 11, 9, 40, 3, 1, 1, YT_CONV_DNNL_ALL);
    check_raw(3, 16, 12, 12, 32, 3, 2, 1, YT_CONV_DNNL);
    check_raw(2, 9, 13, 7, 10, 3, 2, 1, YT_CONV_GEMM);
    check_raw(2, 3, 17, 17, 16, 3, 2, 1, YT_CONV_DNNL); /* the first layer: 3 input channels */
    check_raw(1, 5, 7, 7, 3, 5, 1, 2, YT_CONV_DNNL);
    check_raw(5, 16, 260, 260, 4, 1, 1, 0, YT_CONV_DNNL); /* > 4 MB per image: one image per call */
    /* the tensor op and autograd */
    check_tensor_level(2, 16, 12, 32, 3, 1);
    check_tensor_level(2, 32, 9, 16, 1, 1);
    check_tensor_level(3, 8, 11, 24, 3, 2);
    check_tensor_level(2, 3, 16, 16, 3, 2);
    return tu_finish();
}
