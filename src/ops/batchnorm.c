#include "ops/batchnorm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"
#include "ops/simd.h"

/* ---- per-plane kernels (ops/simd.h): the HW contiguous floats of one image's channel ----
 * Sums are taken in double: 16 lanes (two yt_vd) over the plane's full vectors, the lanes added in a fixed order,
 * then the tail's elements one by one; a channel's total adds its planes' sums in image order. Every caller of a
 * sum over the same plane gets the same bits (the fused op's backward relies on it). Elementwise maps run their
 * tail through the same vector code as the rest (yt_v_load_n), so an element's result does not depend on where it
 * sits: batch_norm + silu over a whole tensor and the fused op per plane give the same floats. */

/* *s += sum p */
YT_V_INLINE void sum_plane_body(const float *p, size_t n, double *s)
{
    yt_vd a0 = {0}, a1 = {0};
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) {
        yt_vd lo, hi;
        yt_v_to_double(yt_v_load(p + i), &lo, &hi);
        a0 += lo;
        a1 += hi;
    }
    double t = yt_vd_sum(a0 + a1);
    for (; i < n; i++) t += p[i];
    *s += t;
}
YT_SIMD_DISPATCH(sum_plane, (const float *p, size_t n, double *s), (p, n, s))

/* *q += sum (p - m)^2 */
YT_V_INLINE void sqdev_plane_body(const float *p, size_t n, double m, double *q)
{
    yt_vd a0 = {0}, a1 = {0};
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) {
        yt_vd lo, hi;
        yt_v_to_double(yt_v_load(p + i), &lo, &hi);
        lo -= m;
        hi -= m;
        a0 += lo * lo;
        a1 += hi * hi;
    }
    double t = yt_vd_sum(a0 + a1);
    for (; i < n; i++) {
        double d = p[i] - m;
        t += d * d;
    }
    *q += t;
}
YT_SIMD_DISPATCH(sqdev_plane, (const float *p, size_t n, double m, double *q), (p, n, m, q))

/* One vector of the gradient sums: a += g, b += g * ((x - m) * is), in double. */
YT_V_INLINE void gsums_step(yt_vf g, yt_vf x, double m, double is, yt_vd *a, yt_vd *b)
{
    yt_vd g0, g1, x0, x1;
    yt_v_to_double(g, &g0, &g1);
    yt_v_to_double(x, &x0, &x1);
    a[0] += g0;
    a[1] += g1;
    b[0] += g0 * ((x0 - m) * is);
    b[1] += g1 * ((x1 - m) * is);
}

YT_V_INLINE void gsums_tail(const float *g, const float *x, size_t i, size_t n, double m, double is, double *a,
                            double *b)
{
    for (; i < n; i++) {
        *a += g[i];
        *b += (double)g[i] * (((double)x[i] - m) * is);
    }
}

/* *a += sum g; *b += sum g * (x - m) * is (x NULL: only *a) */
YT_V_INLINE void gsums_plane_body(const float *g, const float *x, size_t n, double m, double is, double *a, double *b)
{
    yt_vd va[2] = {{0}, {0}}, vb[2] = {{0}, {0}};
    size_t i = 0;
    if (!x) {
        for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) {
            yt_vd g0, g1;
            yt_v_to_double(yt_v_load(g + i), &g0, &g1);
            va[0] += g0;
            va[1] += g1;
        }
        double ta = yt_vd_sum(va[0] + va[1]);
        for (; i < n; i++) ta += g[i];
        *a += ta;
        return;
    }
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) gsums_step(yt_v_load(g + i), yt_v_load(x + i), m, is, va, vb);
    double ta = yt_vd_sum(va[0] + va[1]), tb = yt_vd_sum(vb[0] + vb[1]);
    gsums_tail(g, x, i, n, m, is, &ta, &tb);
    *a += ta;
    *b += tb;
}
YT_SIMD_DISPATCH(gsums_plane, (const float *g, const float *x, size_t n, double m, double is, double *a, double *b),
                 (g, x, n, m, is, a, b))

/* The per-channel affine map of the forward, in one place: the fused op recomputes it in its backward and must
 * get the very floats the forward had. */
static inline float bn_scale(const double *invstd, const float *weight, int c)
{
    return (float)(invstd[c] * (weight ? weight[c] : 1.0f));
}
YT_V_INLINE yt_vf bn_apply(yt_vf x, float m, float scale, float shift) { return (x - m) * scale + shift; }

/* y = (x - m) * scale + shift, and silu of it */
YT_V_INLINE void bn_plane_body(const float *x, float *y, size_t n, float m, float scale, float shift)
{
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) yt_v_store(y + i, bn_apply(yt_v_load(x + i), m, scale, shift));
    if (i < n) yt_v_store_n(y + i, bn_apply(yt_v_load_n(x + i, n - i), m, scale, shift), n - i);
}
YT_SIMD_DISPATCH(bn_plane, (const float *x, float *y, size_t n, float m, float scale, float shift),
                 (x, y, n, m, scale, shift))

YT_V_INLINE void bn_silu_plane_body(const float *x, float *y, size_t n, float m, float scale, float shift)
{
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH)
        yt_v_store(y + i, yt_v_silu(bn_apply(yt_v_load(x + i), m, scale, shift)));
    if (i < n) yt_v_store_n(y + i, yt_v_silu(bn_apply(yt_v_load_n(x + i, n - i), m, scale, shift)), n - i);
}
YT_SIMD_DISPATCH(bn_silu_plane, (const float *x, float *y, size_t n, float m, float scale, float shift),
                 (x, y, n, m, scale, shift))

/* Training input gradient: gx += k * (g - mg - (x - m) * is * mgx) */
YT_V_INLINE yt_vf gx_train(yt_vf g, yt_vf x, float k, float m, float is, float mg, float mgx)
{
    return k * (g - mg - (x - m) * is * mgx);
}
/* acc: gx += it; else gx = it (gx's old contents not read) */
YT_V_INLINE void gx_train_plane_body(const float *g, const float *x, float *gx, size_t n, float k, float m, float is,
                                     float mg, float mgx, int acc)
{
    size_t i = 0;
    if (acc) {
        for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH)
            yt_v_store(gx + i, yt_v_load(gx + i) + gx_train(yt_v_load(g + i), yt_v_load(x + i), k, m, is, mg, mgx));
    } else {
        for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH)
            yt_v_store(gx + i, gx_train(yt_v_load(g + i), yt_v_load(x + i), k, m, is, mg, mgx));
    }
    if (i < n) {
        size_t r = n - i;
        yt_vf v = gx_train(yt_v_load_n(g + i, r), yt_v_load_n(x + i, r), k, m, is, mg, mgx);
        yt_v_store_n(gx + i, acc ? yt_v_load_n(gx + i, r) + v : v, r);
    }
}
YT_SIMD_DISPATCH(gx_train_plane,
                 (const float *g, const float *x, float *gx, size_t n, float k, float m, float is, float mg, float mgx,
                  int acc),
                 (g, x, gx, n, k, m, is, mg, mgx, acc))

/* Fixed statistics: gx += k * g (acc), gx = k * g (else) */
YT_V_INLINE void gx_eval_plane_body(const float *g, float *gx, size_t n, float k, int acc)
{
    size_t i = 0;
    if (acc) {
        for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) yt_v_store(gx + i, yt_v_load(gx + i) + k * yt_v_load(g + i));
    } else {
        for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) yt_v_store(gx + i, k * yt_v_load(g + i));
    }
    if (i < n) {
        yt_vf v = k * yt_v_load_n(g + i, n - i);
        yt_v_store_n(gx + i, acc ? yt_v_load_n(gx + i, n - i) + v : v, n - i);
    }
}
YT_SIMD_DISPATCH(gx_eval_plane, (const float *g, float *gx, size_t n, float k, int acc), (g, gx, n, k, acc))

/* The fused op's backward over one plane: gz = gy * silu'(bn(x)) into gz (as silu's backward stores it into the BN
 * output's fresh gradient), and the gradient sums of gz as gsums_plane takes them. */
YT_V_INLINE yt_vf silu_bn_grad(yt_vf x, yt_vf gy, float m, float scale, float shift)
{
    return yt_v_silu_grad(bn_apply(x, m, scale, shift), gy);
}
YT_V_INLINE void bn_silu_grad_plane_body(const float *x, const float *gy, float *gz, size_t n, float m, float scale,
                                         float shift, double md, double is, double *a, double *b)
{
    yt_vd va[2] = {{0}, {0}}, vb[2] = {{0}, {0}};
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) {
        yt_vf xv = yt_v_load(x + i), g = silu_bn_grad(xv, yt_v_load(gy + i), m, scale, shift);
        yt_v_store(gz + i, g);
        gsums_step(g, xv, md, is, va, vb);
    }
    double ta = yt_vd_sum(va[0] + va[1]), tb = yt_vd_sum(vb[0] + vb[1]);
    if (i < n) {
        yt_v_store_n(gz + i, silu_bn_grad(yt_v_load_n(x + i, n - i), yt_v_load_n(gy + i, n - i), m, scale, shift),
                     n - i);
        gsums_tail(gz, x, i, n, md, is, &ta, &tb);
    }
    *a += ta;
    *b += tb;
}
YT_SIMD_DISPATCH(bn_silu_grad_plane,
                 (const float *x, const float *gy, float *gz, size_t n, float m, float scale, float shift, double md,
                  double is, double *a, double *b),
                 (x, gy, gz, n, m, scale, shift, md, is, a, b))

/* ---- the raw kernels ---- */

void yt_batch_norm_channel_sums(const float *x, double *s, int N, int C, size_t HW)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 32768)
    for (int c = 0; c < C; c++) {
        double a = 0.0;
        for (int n = 0; n < N; n++) sum_plane(x + ((size_t)n * C + c) * HW, HW, &a);
        s[c] = a;
    }
}

void yt_batch_norm_channel_sqdev(const float *x, const double *mean, double *q, int N, int C, size_t HW)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 32768)
    for (int c = 0; c < C; c++) {
        double a = 0.0;
        for (int n = 0; n < N; n++) sqdev_plane(x + ((size_t)n * C + c) * HW, HW, mean[c], &a);
        q[c] = a;
    }
}

void yt_batch_norm_stats(const float *x, double *mean, double *var, int N, int C, size_t HW)
{
    const double M = (double)N * (double)HW;
    yt_batch_norm_channel_sums(x, mean, N, C, HW);
    for (int c = 0; c < C; c++) mean[c] = M > 0 ? mean[c] / M : 0.0;
    yt_batch_norm_channel_sqdev(x, mean, var, N, C, HW);
    for (int c = 0; c < C; c++) var[c] = M > 0 ? var[c] / M : 0.0;
}

void yt_batch_norm_finish_stats(const double *mean, const double *var, double *invstd, float *rm, float *rv, int C,
                                double M, double momentum, double eps)
{
    for (int c = 0; c < C; c++) invstd[c] = 1.0 / sqrt(var[c] + eps);
    if (!rm || !rv) return;
    const double unbias = M / (M - 1.0);
    for (int c = 0; c < C; c++) {
        rm[c] = (float)((1.0 - momentum) * rm[c] + momentum * mean[c]);
        rv[c] = (float)((1.0 - momentum) * rv[c] + momentum * var[c] * unbias);
    }
}

void yt_batch_norm_forward(const float *x, float *y, const float *weight, const float *bias, const double *mean,
                           const double *invstd, int N, int C, size_t HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 32768)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const size_t off = ((size_t)n * C + c) * HW;
            bn_plane(x + off, y + off, HW, (float)mean[c], bn_scale(invstd, weight, c), bias ? bias[c] : 0.0f);
        }
    }
}

void yt_batch_norm_grad_sums(const float *x, const float *gy, const double *mean, const double *invstd, double *sg,
                             double *sgx, int N, int C, size_t HW)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 32768)
    for (int c = 0; c < C; c++) {
        double a = 0.0, b = 0.0;
        for (int n = 0; n < N; n++) {
            const size_t off = ((size_t)n * C + c) * HW;
            gsums_plane(gy + off, x ? x + off : NULL, HW, mean[c], invstd[c], &a, &b);
        }
        sg[c] = a;
        sgx[c] = b;
    }
}

static void backward_input(const float *x, const float *gy, float *gx, int gx_acc, const float *weight,
                           const double *mean, const double *invstd, const double *sg, const double *sgx, double M,
                           int N, int C, size_t HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 32768)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const size_t off = ((size_t)n * C + c) * HW;
            gx_train_plane(gy + off, x + off, gx + off, HW, bn_scale(invstd, weight, c), (float)mean[c],
                           (float)invstd[c], (float)(sg[c] / M), (float)(sgx[c] / M), gx_acc);
        }
    }
}

void yt_batch_norm_backward_input(const float *x, const float *gy, float *gx, const float *weight, const double *mean,
                                  const double *invstd, const double *sg, const double *sgx, double M, int N, int C,
                                  size_t HW)
{
    backward_input(x, gy, gx, 1, weight, mean, invstd, sg, sgx, M, N, C, HW);
}

/* gx accumulates when gx_acc, else it is overwritten; gw and gb accumulate */
static int backward_common(const float *x, const float *gy, float *gx, int gx_acc, const float *weight, float *gw,
                           float *gb, const double *mean, const double *invstd, int N, int C, size_t HW, int training)
{
    double *sg = malloc(2 * (size_t)C * sizeof *sg);
    if (!sg) return yt_error("batch_norm backward: out of memory");
    double *sgx = sg + C;
    const double M = (double)N * (double)HW;
    if (gw || gb || (gx && training)) yt_batch_norm_grad_sums(x, gy, mean, invstd, sg, sgx, N, C, HW);
    for (int c = 0; c < C; c++) {
        if (gb) gb[c] += (float)sg[c];
        if (gw) gw[c] += (float)sgx[c];
    }
    if (gx && training) {
        backward_input(x, gy, gx, gx_acc, weight, mean, invstd, sg, sgx, M, N, C, HW);
    } else if (gx) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 32768)
        for (int n = 0; n < N; n++) {
            for (int c = 0; c < C; c++) {
                const size_t off = ((size_t)n * C + c) * HW;
                gx_eval_plane(gy + off, gx + off, HW, bn_scale(invstd, weight, c), gx_acc);
            }
        }
    }
    free(sg);
    return 0;
}

void yt_batch_norm_backward_train(const float *x, const float *gy, float *gx, const float *weight, float *gw, float *gb,
                                  const double *mean, const double *invstd, int N, int C, size_t HW)
{
    backward_common(x, gy, gx, 1, weight, gw, gb, mean, invstd, N, C, HW, 1);
}

void yt_batch_norm_backward_eval(const float *x, const float *gy, float *gx, const float *weight, float *gw, float *gb,
                                 const double *mean, const double *invstd, int N, int C, size_t HW)
{
    backward_common(x, gy, gx, 1, weight, gw, gb, mean, invstd, N, C, HW, 0);
}

/* ---- fused with SiLU: y = silu(batch_norm(x)), the BN output never stored ---- */

void yt_batch_norm_silu_forward(const float *x, float *y, const float *weight, const float *bias, const double *mean,
                                const double *invstd, int N, int C, size_t HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 32768)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const size_t off = ((size_t)n * C + c) * HW;
            bn_silu_plane(x + off, y + off, HW, (float)mean[c], bn_scale(invstd, weight, c), bias ? bias[c] : 0.0f);
        }
    }
}

/* Per channel (one thread each): the BN output z is recomputed from x, the gradient reaching it (gy * silu'(z))
 * goes into a per-thread buffer of N * HW floats, and the BN backward reads it from there: the sums and the input
 * gradient in the order and arithmetic of batch_norm's backward after silu's. */
int yt_batch_norm_silu_backward(const float *x, const float *gy, float *gx, const float *weight, const float *bias,
                                float *gw, float *gb, const double *mean, const double *invstd, int N, int C, size_t HW,
                                int training, int gx_acc)
{
    const size_t per = (size_t)N * HW;
    const int par = (size_t)N * C * HW > 32768;
    const int nt = (par && !omp_in_parallel()) ? omp_get_max_threads() : 1;
    float *buf = malloc((size_t)nt * (per ? per : 1) * sizeof *buf);
    if (!buf) return yt_error("batch_norm_silu backward: out of memory for %d buffers of %zu floats", nt, per);
    const double M = (double)N * (double)HW;
#pragma omp parallel for schedule(static) num_threads(nt) if (par && nt > 1)
    for (int c = 0; c < C; c++) {
        float *g = buf + per * (size_t)omp_get_thread_num();
        const float m = (float)mean[c], scale = bn_scale(invstd, weight, c), shift = bias ? bias[c] : 0.0f;
        double a = 0.0, b = 0.0;
        for (int n = 0; n < N; n++) {
            const size_t off = ((size_t)n * C + c) * HW;
            bn_silu_grad_plane(x + off, gy + off, g + (size_t)n * HW, HW, m, scale, shift, mean[c], invstd[c], &a, &b);
        }
        if (gb) gb[c] += (float)a;
        if (gw) gw[c] += (float)b;
        if (!gx) continue;
        const float isf = (float)invstd[c], mg = (float)(a / M), mgx = (float)(b / M);
        for (int n = 0; n < N; n++) {
            const size_t off = ((size_t)n * C + c) * HW;
            if (training)
                gx_train_plane(g + (size_t)n * HW, x + off, gx + off, HW, scale, m, isf, mg, mgx, gx_acc);
            else
                gx_eval_plane(g + (size_t)n * HW, gx + off, HW, scale, gx_acc);
        }
    }
    free(buf);
    return 0;
}

/* ---- tensor level ---- */

typedef struct {
    int N, C;
    size_t HW;
    int training;
    int x_saved, w_saved, b_saved; /* index into node->saved or -1 */
    double *mean, *invstd;
} bn_ctx;

static void bn_ctx_free(void *p)
{
    bn_ctx *ctx = p;
    free(ctx->mean);
    free(ctx);
}

/* The gradient buffers of x, weight and bias (NULL for an input that needs none). x's is written whole: a fresh
 * one is stored into (*gx_acc = 0), not zeroed first; weight's and bias's accumulate. */
static int input_grads(yt_node *node, float **gx, int *gx_acc, float **gw, float **gb)
{
    *gx = yt_grad_dest(node->in[0], gx_acc);
    if (node->in[0] && !*gx) return -1;
    float **g[2] = {gw, gb};
    for (int i = 0; i < 2; i++) {
        *g[i] = yt_grad_accum(node->in[i + 1]);
        if (node->in[i + 1] && !*g[i]) return -1;
    }
    return 0;
}

static int bn_backward(yt_node *node)
{
    bn_ctx *ctx = node->ctx;
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx, *gw, *gb;
    int gx_acc;
    if (input_grads(node, &gx, &gx_acc, &gw, &gb) < 0) return -1;
    const float *x = ctx->x_saved >= 0 ? yt_f32(node->saved[ctx->x_saved]) : NULL;
    const float *w = ctx->w_saved >= 0 ? yt_f32(node->saved[ctx->w_saved]) : NULL;
    if (!x && (gw || (gx && ctx->training))) return yt_error("batch_norm backward: missing saved input");
    return backward_common(x, yt_f32(gy), gx, gx_acc, w, gw, gb, ctx->mean, ctx->invstd, ctx->N, ctx->C, ctx->HW,
                           ctx->training);
}

static int bn_silu_backward(yt_node *node)
{
    bn_ctx *ctx = node->ctx;
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx, *gw, *gb;
    int gx_acc;
    if (input_grads(node, &gx, &gx_acc, &gw, &gb) < 0) return -1;
    const float *w = ctx->w_saved >= 0 ? yt_f32(node->saved[ctx->w_saved]) : NULL;
    const float *b = ctx->b_saved >= 0 ? yt_f32(node->saved[ctx->b_saved]) : NULL;
    return yt_batch_norm_silu_backward(yt_f32(node->saved[ctx->x_saved]), yt_f32(gy), gx, w, b, gw, gb, ctx->mean,
                                       ctx->invstd, ctx->N, ctx->C, ctx->HW, ctx->training, gx_acc);
}

static int check_channel_vec(const yt_tensor *t, const char *op, const char *name, int64_t C, int need_contiguous)
{
    if (!t) return 0;
    char what[64];
    snprintf(what, sizeof what, "%s %s", op, name);
    if (yt_check(t, what, YT_F32, 1) < 0) return -1;
    char b[128];
    if (t->shape[0] != C)
        return yt_error("%s: expected %lld entries (one per channel), got shape %s", what, (long long)C,
                        yt_shape_str(t, b, sizeof b));
    if (need_contiguous && !yt_is_contiguous(t)) return yt_error("%s: must be contiguous (updated in place)", what);
    return 0;
}

int yt_batch_norm_check_args(const char *op, const yt_tensor *x, const yt_tensor *weight, const yt_tensor *bias,
                             const yt_tensor *running_mean, const yt_tensor *running_var, int need_running,
                             double momentum, double eps, int *N, int *C, size_t *HW)
{
    char what[64];
    snprintf(what, sizeof what, "%s input", op);
    if (yt_check(x, what, YT_F32, -1) < 0) return -1;
    char bx[128];
    if (x->ndim < 2)
        return yt_error("%s: input must have at least 2 dimensions (N, C, ...), got shape %s", op,
                        yt_shape_str(x, bx, sizeof bx));
    const int64_t c64 = x->shape[1];
    if (check_channel_vec(weight, op, "weight", c64, 0) < 0 || check_channel_vec(bias, op, "bias", c64, 0) < 0 ||
        check_channel_vec(running_mean, op, "running_mean", c64, 1) < 0 ||
        check_channel_vec(running_var, op, "running_var", c64, 1) < 0)
        return -1;
    if ((running_mean == NULL) != (running_var == NULL))
        return yt_error("%s: running_mean and running_var must be given together", op);
    if (need_running && !running_mean) return yt_error("%s: eval mode needs running_mean and running_var", op);
    if (!(eps > 0) || !(momentum >= 0 && momentum <= 1))
        return yt_error("%s: need eps > 0 and 0 <= momentum <= 1 (got eps %g, momentum %g)", op, eps, momentum);
    size_t hw = 1;
    for (int d = 2; d < x->ndim; d++) hw *= (size_t)x->shape[d];
    const int64_t n64 = x->shape[0];
    if (n64 > INT32_MAX || c64 > INT32_MAX)
        return yt_error("%s: input %s too large", op, yt_shape_str(x, bx, sizeof bx));
    *N = (int)n64;
    *C = (int)c64;
    *HW = hw;
    return 0;
}

/* batch_norm, and with silu fused (the BN output is recomputed in backward from x, weight and bias, all saved). */
static yt_tensor *bn_op(const char *op, int silu, yt_tensor *x, yt_tensor *weight, yt_tensor *bias,
                        yt_tensor *running_mean, yt_tensor *running_var, int training, double momentum, double eps)
{
    int N, C;
    size_t HW;
    if (yt_batch_norm_check_args(op, x, weight, bias, running_mean, running_var, !training, momentum, eps, &N, &C,
                                 &HW) < 0)
        return NULL;
    char bx[128];
    const double M = (double)N * (double)HW;
    if (training && M <= 1) {
        yt_error("%s: expected more than 1 value per channel when training, got input shape %s", op,
                 yt_shape_str(x, bx, sizeof bx));
        return NULL;
    }
    bn_ctx *ctx = calloc(1, sizeof *ctx);
    double *stats = ctx ? malloc(3 * (size_t)(C > 0 ? C : 1) * sizeof *stats) : NULL;
    if (!stats) {
        free(ctx);
        yt_error("%s: out of memory", op);
        return NULL;
    }
    ctx->mean = stats;
    ctx->invstd = stats + C;
    double *var = stats + 2 * C;
    ctx->N = (int)N;
    ctx->C = (int)C;
    ctx->HW = HW;
    ctx->training = training ? 1 : 0;
    ctx->x_saved = ctx->w_saved = ctx->b_saved = -1;

    yt_tensor *xc = yt_contiguous(x);
    yt_tensor *wc = (xc && weight) ? yt_contiguous(weight) : NULL;
    yt_tensor *bc = (xc && bias) ? yt_contiguous(bias) : NULL;
    yt_tensor *y = NULL;
    if (!xc || (weight && !wc) || (bias && !bc)) goto fail;

    if (training) {
        yt_batch_norm_stats(yt_f32(xc), ctx->mean, var, ctx->N, ctx->C, HW);
        yt_batch_norm_finish_stats(ctx->mean, var, ctx->invstd, running_mean ? yt_f32(running_mean) : NULL,
                                   running_var ? yt_f32(running_var) : NULL, ctx->C, M, momentum, eps);
    } else {
        const float *rm = yt_f32(running_mean), *rv = yt_f32(running_var);
        for (int64_t c = 0; c < C; c++) {
            ctx->mean[c] = rm[c];
            ctx->invstd[c] = 1.0 / sqrt((double)rv[c] + eps);
        }
    }
    y = yt_tensor_empty_like(xc);
    if (!y) goto fail;
    (silu ? yt_batch_norm_silu_forward : yt_batch_norm_forward)(yt_f32(xc), yt_f32(y), wc ? yt_f32(wc) : NULL,
                                                                bc ? yt_f32(bc) : NULL, ctx->mean, ctx->invstd, ctx->N,
                                                                ctx->C, HW);

    yt_tensor *ins[3] = {xc, wc, bc};
    if (yt_needs_grad(3, ins)) {
        yt_node *node = yt_node_new(op, silu ? bn_silu_backward : bn_backward, 3, ins);
        if (!node) goto fail;
        node->ctx = ctx;
        node->free_ctx = bn_ctx_free;
        ctx = NULL;
        bn_ctx *c2 = node->ctx;
        /* batch_norm reads x for gw and (training) gx, weight for gx; fused with silu, every gradient needs the BN
         * output, recomputed from x, weight and bias */
        if (silu || (wc && wc->requires_grad) || (xc->requires_grad && training)) {
            c2->x_saved = node->n_saved;
            yt_node_save(node, xc);
        }
        if (wc && (silu || xc->requires_grad)) {
            c2->w_saved = node->n_saved;
            yt_node_save(node, wc);
        }
        if (bc && silu) {
            c2->b_saved = node->n_saved;
            yt_node_save(node, bc);
        }
        yt_node_add_output(node, y);
    }
    if (ctx) bn_ctx_free(ctx);
    yt_tensor_release(xc);
    yt_tensor_release(wc);
    yt_tensor_release(bc);
    return y;
fail:
    bn_ctx_free(ctx);
    yt_tensor_release(y);
    yt_tensor_release(xc);
    yt_tensor_release(wc);
    yt_tensor_release(bc);
    return NULL;
}

yt_tensor *yt_batch_norm(yt_tensor *x, yt_tensor *weight, yt_tensor *bias, yt_tensor *running_mean,
                         yt_tensor *running_var, int training, double momentum, double eps)
{
    return bn_op("batch_norm", 0, x, weight, bias, running_mean, running_var, training, momentum, eps);
}

yt_tensor *yt_batch_norm_silu(yt_tensor *x, yt_tensor *weight, yt_tensor *bias, yt_tensor *running_mean,
                              yt_tensor *running_var, int training, double momentum, double eps)
{
    return bn_op("batch_norm_silu", 1, x, weight, bias, running_mean, running_var, training, momentum, eps);
}
