/* Synchronised batch normalisation across ranks (training mode). See dist.h.
 *
 * forward:  M = sum over ranks of N*HW; mean = allreduce(sum x) / M; var = allreduce(sum (x - mean)^2) / M
 *           (two passes, as the single-process kernel, so 1 x batch 16 and 2 x batch 8 agree to rounding);
 *           y = (x - mean) * invstd * weight + bias; running stats updated with the global mean and var.
 * backward: sg = allreduce(sum gy), sgx = allreduce(sum gy * xhat);
 *           gx += weight * invstd * (gy - sg / M - xhat * sgx / M)      (the gradient of the global objective)
 *           gw += local sum gy * xhat, gb += local sum gy                (averaging over ranks completes them)
 * Every rank must run the same sequence of sync_batch_norm forwards and backwards (same model, same graph). */
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "distributed/dist.h"
#include "ops/batchnorm.h"
#include "ops/shape_ops.h"

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
    yt_batch_norm_grad_sums(x, gy, ctx->mean, ctx->invstd, sg, sgx, N, C, HW);
    memcpy(lsg, sg, 2 * (size_t)C * sizeof *sums); /* the local sums (lsg, lsgx) survive the reduction */
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
    if (gx) yt_batch_norm_backward_input(x, gy, gx, w, ctx->mean, ctx->invstd, sg, sgx, ctx->M, N, C, HW);
    free(sums);
    return 0;
}

yt_tensor *yt_dist_sync_batch_norm(yt_tensor *x, yt_tensor *weight, yt_tensor *bias, yt_tensor *running_mean,
                                   yt_tensor *running_var, double momentum, double eps)
{
    int N, C;
    size_t HW;
    if (yt_batch_norm_check_args("sync_batch_norm", x, weight, bias, running_mean, running_var, 0, momentum, eps, &N,
                                 &C, &HW) < 0)
        return NULL;
    char bx[128];
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

    yt_batch_norm_channel_sums(yt_f32(xc), buf, ctx->N, ctx->C, HW);
    buf[C] = (double)N * (double)HW;
    if (yt_dist_allreduce_f64(buf, (size_t)C + 1, YT_DIST_SUM) < 0) goto fail_prefix;
    const double M = buf[C];
    ctx->M = M;
    if (M <= 1) {
        yt_error("sync_batch_norm: expected more than 1 value per channel over all ranks, got input shape %s",
                 yt_shape_str(x, bx, sizeof bx));
        goto fail;
    }
    for (int c = 0; c < C; c++) ctx->mean[c] = buf[c] / M;
    yt_batch_norm_channel_sqdev(yt_f32(xc), ctx->mean, buf, ctx->N, ctx->C, HW);
    if (yt_dist_allreduce_f64(buf, (size_t)C, YT_DIST_SUM) < 0) goto fail_prefix;
    for (int c = 0; c < C; c++) buf[c] /= M; /* the variance */
    yt_batch_norm_finish_stats(ctx->mean, buf, ctx->invstd, running_mean ? yt_f32(running_mean) : NULL,
                               running_var ? yt_f32(running_var) : NULL, ctx->C, M, momentum, eps);
    y = yt_tensor_empty_like(xc);
    if (!y) goto fail;
    yt_batch_norm_forward(yt_f32(xc), yt_f32(y), wc ? yt_f32(wc) : NULL, bc ? yt_f32(bc) : NULL, ctx->mean, ctx->invstd,
                          ctx->N, ctx->C, HW);

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
