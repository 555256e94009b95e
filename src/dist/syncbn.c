/* Synchronised batch normalisation across ranks (training mode). See dist.h.
 *
 * forward:  M = sum over ranks of N*HW; mean = allreduce(sum x) / M; var = allreduce(sum (x - mean)^2) / M
 *           (two passes, as the single-process kernel, so 1 x batch 16 and 2 x batch 8 agree to rounding);
 *           y = (x - mean) * invstd * weight + bias; running stats updated with the global mean and var.
 * backward: sg = allreduce(sum gy), sgx = allreduce(sum gy * xhat);
 *           gx += weight * invstd * (gy - sg / M - xhat * sgx / M)      (the gradient of the global objective)
 *           gw += local sum gy * xhat, gb += local sum gy                (averaging over ranks completes them)
 * Every rank must run the same sequence of sync_batch_norm forwards and backwards (same model, same graph). */
#include <math.h>
#include <stdlib.h>

#include "core/autograd.h"
#include "core/error.h"
#include "dist/dist.h"
#include "ops/batchnorm.h"

typedef struct {
    int N, C;
    size_t HW;
    double M; /* global count per channel */
    double *mean, *invstd;
} sbn_ctx;

static void sbn_ctx_free(void *p)
{
    sbn_ctx *ctx = p;
    if (!ctx) return;
    free(ctx->mean);
    free(ctx);
}

/* s[c] = sum over n, i of x (double) */
static void channel_sums(const float *x, double *s, int N, int C, size_t HW)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 32768)
    for (int c = 0; c < C; c++) {
        double a = 0.0;
        for (int n = 0; n < N; n++) {
            const float *p = x + ((size_t)n * C + c) * HW;
            for (size_t i = 0; i < HW; i++) a += p[i];
        }
        s[c] = a;
    }
}

/* q[c] = sum (x - mean)^2 */
static void channel_sqdev(const float *x, const double *mean, double *q, int N, int C, size_t HW)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 32768)
    for (int c = 0; c < C; c++) {
        const double m = mean[c];
        double a = 0.0;
        for (int n = 0; n < N; n++) {
            const float *p = x + ((size_t)n * C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                double d = p[i] - m;
                a += d * d;
            }
        }
        q[c] = a;
    }
}

static int sbn_backward(yt_node *node)
{
    sbn_ctx *ctx = node->ctx;
    yt_tensor *gyt = yt_node_grad_out(node, 0);
    if (!gyt) return -1;
    yt_tensor *xin = node->in[0], *win = node->in[1], *bin = node->in[2];
    const float *x = yt_f32(node->saved[0]);
    const float *w = node->n_saved > 1 ? yt_f32(node->saved[1]) : NULL;
    const float *gy = yt_f32(gyt);
    const int N = ctx->N, C = ctx->C;
    const size_t HW = ctx->HW;
    double *sums = malloc(4 * (size_t)C * sizeof *sums);
    if (!sums) return yt_error("sync_batch_norm backward: out of memory");
    double *sg = sums, *sgx = sums + C, *lsg = sums + 2 * C, *lsgx = sums + 3 * C;
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 32768)
    for (int c = 0; c < C; c++) {
        const double m = ctx->mean[c], is = ctx->invstd[c];
        double a = 0.0, b = 0.0;
        for (int n = 0; n < N; n++) {
            const float *g = gy + ((size_t)n * C + c) * HW;
            const float *p = x + ((size_t)n * C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                a += g[i];
                b += (double)g[i] * (((double)p[i] - m) * is);
            }
        }
        sg[c] = lsg[c] = a;
        sgx[c] = lsgx[c] = b;
    }
    /* every rank reduces, whether or not its x needs a gradient: the collectives must match */
    if (yt_dist_allreduce_f64(sums, 2 * (size_t)C, YT_DIST_SUM) < 0) {
        free(sums);
        return yt_error_prefix("sync_batch_norm backward: ");
    }
    float *gw = yt_grad_accum(win);
    float *gb = yt_grad_accum(bin);
    float *gx = yt_grad_accum(xin);
    if ((win && !gw) || (bin && !gb) || (xin && !gx)) {
        free(sums);
        return -1;
    }
    for (int c = 0; c < C; c++) {
        if (gb) gb[c] += (float)lsg[c];
        if (gw) gw[c] += (float)lsgx[c];
    }
    if (gx) {
        const double M = ctx->M;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 32768)
        for (int n = 0; n < N; n++) {
            for (int c = 0; c < C; c++) {
                const float *g = gy + ((size_t)n * C + c) * HW;
                const float *p = x + ((size_t)n * C + c) * HW;
                float *o = gx + ((size_t)n * C + c) * HW;
                const float k = (float)(ctx->invstd[c] * (w ? w[c] : 1.0f));
                const float m = (float)ctx->mean[c], is = (float)ctx->invstd[c];
                const float mg = (float)(sg[c] / M), mgx = (float)(sgx[c] / M);
                for (size_t i = 0; i < HW; i++) o[i] += k * (g[i] - mg - (p[i] - m) * is * mgx);
            }
        }
    }
    free(sums);
    return 0;
}

static int check_vec(const yt_tensor *t, const char *what, int64_t C, int need_contiguous)
{
    if (!t) return 0;
    if (yt_check(t, what, YT_F32, 1) < 0) return -1;
    char b[128];
    if (t->shape[0] != C)
        return yt_error("%s: expected %lld entries (one per channel), got shape %s", what, (long long)C,
                        yt_shape_str(t, b, sizeof b));
    if (need_contiguous && !yt_is_contiguous(t)) return yt_error("%s: must be contiguous (updated in place)", what);
    return 0;
}

yt_tensor *yt_dist_sync_batch_norm(yt_tensor *x, yt_tensor *weight, yt_tensor *bias, yt_tensor *running_mean,
                                   yt_tensor *running_var, double momentum, double eps)
{
    if (yt_check(x, "sync_batch_norm input", YT_F32, -1) < 0) return NULL;
    char bx[128];
    if (x->ndim < 2) {
        yt_error("sync_batch_norm: input must have at least 2 dimensions (N, C, ...), got shape %s",
                 yt_shape_str(x, bx, sizeof bx));
        return NULL;
    }
    const int64_t C = x->shape[1];
    if (check_vec(weight, "sync_batch_norm weight", C, 0) < 0 || check_vec(bias, "sync_batch_norm bias", C, 0) < 0 ||
        check_vec(running_mean, "sync_batch_norm running_mean", C, 1) < 0 ||
        check_vec(running_var, "sync_batch_norm running_var", C, 1) < 0)
        return NULL;
    if ((running_mean == NULL) != (running_var == NULL)) {
        yt_error("sync_batch_norm: running_mean and running_var must be given together");
        return NULL;
    }
    if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) {
        yt_error("sync_batch_norm: need eps > 0 and 0 <= momentum <= 1 (got eps %g, momentum %g)", eps, momentum);
        return NULL;
    }
    size_t HW = 1;
    for (int d = 2; d < x->ndim; d++) HW *= (size_t)x->shape[d];
    const int64_t N = x->shape[0];
    if (N > INT32_MAX || C > INT32_MAX) {
        yt_error("sync_batch_norm: input %s too large", yt_shape_str(x, bx, sizeof bx));
        return NULL;
    }
    sbn_ctx *ctx = calloc(1, sizeof *ctx);
    double *stats = ctx ? malloc((3 * (size_t)C + 1) * sizeof *stats) : NULL;
    if (!stats) {
        free(ctx);
        yt_error("sync_batch_norm: out of memory");
        return NULL;
    }
    ctx->mean = stats;
    ctx->invstd = stats + C;
    double *buf = stats + 2 * C; /* C + 1 entries: sums then the count; later the squared deviations */
    ctx->N = (int)N;
    ctx->C = (int)C;
    ctx->HW = HW;

    yt_tensor *xc = yt_contiguous(x);
    yt_tensor *wc = (xc && weight) ? yt_contiguous(weight) : NULL;
    yt_tensor *bc = (xc && bias) ? yt_contiguous(bias) : NULL;
    yt_tensor *y = NULL;
    if (!xc || (weight && !wc) || (bias && !bc)) goto fail;

    channel_sums(yt_f32(xc), buf, ctx->N, ctx->C, HW);
    buf[C] = (double)N * (double)HW;
    if (yt_dist_allreduce_f64(buf, (size_t)C + 1, YT_DIST_SUM) < 0) goto fail_prefix;
    const double M = buf[C];
    ctx->M = M;
    if (M <= 1) {
        yt_error("sync_batch_norm: expected more than 1 value per channel over all ranks, got input shape %s",
                 yt_shape_str(x, bx, sizeof bx));
        goto fail;
    }
    for (int64_t c = 0; c < C; c++) ctx->mean[c] = buf[c] / M;
    channel_sqdev(yt_f32(xc), ctx->mean, buf, ctx->N, ctx->C, HW);
    if (yt_dist_allreduce_f64(buf, (size_t)C, YT_DIST_SUM) < 0) goto fail_prefix;
    for (int64_t c = 0; c < C; c++) {
        const double var = buf[c] / M;
        ctx->invstd[c] = 1.0 / sqrt(var + eps);
        if (running_mean) {
            float *rm = yt_f32(running_mean), *rv = yt_f32(running_var);
            rm[c] = (float)((1.0 - momentum) * rm[c] + momentum * ctx->mean[c]);
            rv[c] = (float)((1.0 - momentum) * rv[c] + momentum * var * (M / (M - 1.0)));
        }
    }
    y = yt_tensor_empty_like(xc);
    if (!y) goto fail;
    yt_batch_norm_forward(yt_f32(xc), yt_f32(y), wc ? yt_f32(wc) : NULL, bc ? yt_f32(bc) : NULL, ctx->mean,
                          ctx->invstd, ctx->N, ctx->C, HW);

    yt_tensor *ins[3] = {xc, wc, bc};
    if (yt_needs_grad(3, ins)) {
        yt_node *node = yt_node_new("sync_batch_norm", sbn_backward, 3, ins);
        if (!node) goto fail;
        node->ctx = ctx;
        node->free_ctx = sbn_ctx_free;
        ctx = NULL;
        yt_node_save(node, xc);
        if (wc) yt_node_save(node, wc);
        yt_node_add_output(node, y);
    }
    sbn_ctx_free(ctx);
    yt_tensor_release(xc);
    yt_tensor_release(wc);
    yt_tensor_release(bc);
    return y;
fail_prefix:
    yt_error_prefix("sync_batch_norm forward: ");
fail:
    sbn_ctx_free(ctx);
    yt_tensor_release(y);
    yt_tensor_release(xc);
    yt_tensor_release(wc);
    yt_tensor_release(bc);
    return NULL;
}
