#include "loss/detect_loss.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "loss/bbox.h"
#include "ops/shape_ops.h"

void yt_detect_loss_cfg_default(yt_detect_loss_cfg *cfg, int nc)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->nc = nc;
    cfg->reg_max = 16;
    cfg->nl = 3;
    cfg->strides[0] = 8;
    cfg->strides[1] = 16;
    cfg->strides[2] = 32;
    cfg->box = 7.5f;
    cfg->cls = 0.5f;
    cfg->dfl = 1.5f;
    cfg->cls_pw = NULL;
    cfg->topk = 10;
    cfg->alpha = 0.5f;
    cfg->beta = 6.0f;
}

void yt_detect_loss_extras_free(yt_detect_loss_extras *e)
{
    if (!e) return;
    yt_tensor_release(e->anchor_points);
    yt_tensor_release(e->stride_tensor);
    yt_tensor_release(e->pd_bboxes);
    yt_tensor_release(e->pd_scores);
    yt_tensor_release(e->gt_labels);
    yt_tensor_release(e->gt_bboxes);
    yt_tensor_release(e->mask_gt);
    yt_tal_result_free(&e->assign);
    for (int l = 0; l < YT_DETECT_MAX_LEVELS; l++) yt_tensor_release(e->grad_preds[l]);
    memset(e, 0, sizeof *e);
}

/* ---- elementwise pieces shared by the fused loss and the standalone ops ---- */

/* BCE with logits in float32, PyTorch's formula: (1 - t) x + m + log(exp(-m) + exp(-x - m)), m = max(-x, 0) */
static inline float bce_logits(float x, float t)
{
    float m = -x > 0 ? -x : 0;
    return (1.0f - t) * x + m + logf(expf(-m) + expf(-x - m));
}

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

/* One side of the DFL: logits x[k*xs], k < R; target t in [0, R-1.01]. Returns the loss
 * CE(x, tl) wl + CE(x, tr) wr; when g is non-NULL adds scale * d/dx into g[k*gs]. */
static double dfl_side(const float *x, int64_t xs, int R, float t, float *g, int64_t gs, double scale)
{
    double mx = x[0];
    for (int k = 1; k < R; k++)
        if (x[k * xs] > mx) mx = x[k * xs];
    double se = 0;
    for (int k = 0; k < R; k++) se += exp((double)x[k * xs] - mx);
    double lse = mx + log(se);
    int tl = (int)t;
    if (tl > R - 2) tl = R - 2;
    if (tl < 0) tl = 0;
    int tr = tl + 1;
    float wl = (float)tr - t, wr = 1.0f - wl;
    double loss = (lse - x[tl * xs]) * wl + (lse - x[tr * xs]) * wr;
    if (g) {
        double wsum = (double)wl + wr;
        for (int k = 0; k < R; k++) {
            double p = exp((double)x[k * xs] - mx) / se;
            double d = p * wsum - (k == tl ? wl : 0.0) - (k == tr ? wr : 0.0);
            g[k * gs] += (float)(scale * d);
        }
    }
    return loss;
}

/* Softmax expectation over R bins (float32 like the reference); p_out (R doubles, optional) gets the softmax. */
static float dfl_expect(const float *x, int64_t xs, int R, double *p_out)
{
    float mx = x[0];
    for (int k = 1; k < R; k++)
        if (x[k * xs] > mx) mx = x[k * xs];
    float e[256];
    float s = 0;
    for (int k = 0; k < R; k++) {
        e[k] = expf(x[k * xs] - mx);
        s += e[k];
    }
    float d = 0;
    for (int k = 0; k < R; k++) {
        float p = e[k] / s;
        d += p * (float)k;
        if (p_out) p_out[k] = p;
    }
    return d;
}

/* ---- the fused detection loss ----
 * yt_detect_loss runs these phases in order, each a static function over one loss_ctx:
 *   check_preds, check_targets      shapes and dtypes of what the caller gave
 *   take_inputs                     contiguous copies; NaN/Inf in the predictions is an error naming the element
 *   gather_targets                  per-image ground truth (B, M) in pixels, xyxy; the anchor grid
 *   alloc_work                      per-anchor buffers, assigner workspaces, gradient tensors
 *   take_fixed_assignment           (tests) the caller's assignment instead of the assigner's
 *   decode_and_assign               predicted boxes from the DFL, then task-aligned assignment, per image
 *   sum_target_scores               the normaliser (reduced across processes when asked)
 *   losses_and_gradients            BCE, CIoU and DFL with their gradients, per image
 *   make_loss                       the scalar loss, its items and the autograd node
 *   fill_extras                     intermediate tensors for inspection */

static int loss_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float s = yt_f32(gy)[0];
    int nl = (int)node->iarg[0];
    for (int l = 0; l < nl; l++) {
        float *gx = yt_grad_accum(node->in[l]);
        if (!gx) continue;
        const float *g = yt_f32(node->saved[l]);
        int64_t n = yt_numel(node->saved[l]);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) gx[i] += s * g[i];
    }
    return 0;
}

static int find_nonfinite(const float *p, int64_t n, int64_t *where)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            *where = i;
            return isnan(p[i]) ? 1 : 2;
        }
    return 0;
}

/* reads element i of a 1-d F32/I64 tensor (contiguous) */
static double get_num(const yt_tensor *t, int64_t i)
{
    return t->dtype == YT_I64 ? (double)yt_i64(t)[i] : (double)yt_f32(t)[i];
}

/* One call's shapes, inputs and buffers. B images, A anchors over nl levels, M ground-truth slots per image,
 * C = 4 R + nc channels per anchor. */
typedef struct {
    const yt_detect_loss_cfg *cfg;
    int nl, R, nc, M, nt, num_gt, num_fg;
    int64_t C, B, A, N;
    int64_t hw[2 * YT_DETECT_MAX_LEVELS], HW[YT_DETECT_MAX_LEVELS], a0[YT_DETECT_MAX_LEVELS + 1];
    yt_tensor *pc[YT_DETECT_MAX_LEVELS];    /* predictions, contiguous */
    yt_tensor *grads[YT_DETECT_MAX_LEVELS]; /* d loss / d preds (scaled by B), when wanted */
    yt_tensor *tbc, *tcc, *txc;             /* targets, contiguous */
    float *anc, *astride, *anc_px;          /* (A, 2) grid cell centres in stride units, (A) strides, (A, 2) px */
    float *gtl, *gtb, *gtm;                 /* (B, M) labels, (B, M, 4) px xyxy, (B, M) real-box mask */
    float *pbox;                            /* (B, A, 4) decoded predictions, px xyxy */
    float *norm, *tboxes;                   /* (B, A) target scores, (B, A, 4) assigned boxes px */
    int64_t *tlab, *tidx, *count;           /* (B, A) assigned labels and GT indices; (B) boxes per image */
    uint8_t *fg;                            /* (B, A) foreground mask */
    float *work;                            /* nt assigner workspaces of wf floats */
    size_t wf;
    yt_tal_cfg tcfg;
    double *cls_part, *box_part, *dfl_part; /* (B) per-image sums */
    double tss;                             /* target score sum (>= 1) */
} loss_ctx;

static void ctx_free(loss_ctx *c)
{
    for (int l = 0; l < c->nl; l++) {
        yt_tensor_release(c->pc[l]);
        yt_tensor_release(c->grads[l]);
    }
    yt_tensor_release(c->tbc);
    yt_tensor_release(c->tcc);
    yt_tensor_release(c->txc);
    void *bufs[] = {c->anc,    c->anc_px, c->astride, c->pbox,  c->gtl, c->gtb,      c->gtm,      c->work,    c->norm,
                    c->tboxes, c->tlab,   c->tidx,    c->count, c->fg,  c->cls_part, c->box_part, c->dfl_part};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
}

static int check_preds(loss_ctx *c, yt_tensor *const *preds)
{
    const yt_detect_loss_cfg *cfg = c->cfg;
    const int nl = cfg->nl, R = cfg->reg_max, nc = cfg->nc;
    if (nl < 1 || nl > YT_DETECT_MAX_LEVELS)
        return yt_error("detect_loss: %d levels (1 to %d)", nl, YT_DETECT_MAX_LEVELS);
    if (R < 2 || R > 256) return yt_error("detect_loss: reg_max %d out of range [2, 256]", R);
    if (nc < 1) return yt_error("detect_loss: nc must be >= 1, got %d", nc);
    for (int l = 0; l < nl; l++)
        if (!(cfg->strides[l] > 0))
            return yt_error("detect_loss: stride of level %d is %g", l, (double)cfg->strides[l]);
    c->nl = nl, c->R = R, c->nc = nc;
    c->C = 4 * (int64_t)R + nc;
    int64_t B = -1;
    char sb[128];
    c->a0[0] = 0;
    for (int l = 0; l < nl; l++) {
        char what[32];
        snprintf(what, sizeof what, "detect_loss preds[%d]", l);
        if (yt_check(preds[l], what, YT_F32, 4) < 0) return -1;
        if (B < 0) B = preds[l]->shape[0];
        if (preds[l]->shape[0] != B || preds[l]->shape[1] != c->C || preds[l]->shape[2] < 1 || preds[l]->shape[3] < 1)
            return yt_error("detect_loss: preds[%d] has shape %s, expected [%lld, %lld (4*%d + %d), H, W]", l,
                            yt_shape_str(preds[l], sb, sizeof sb), (long long)B, (long long)c->C, R, nc);
        c->hw[2 * l] = preds[l]->shape[2];
        c->hw[2 * l + 1] = preds[l]->shape[3];
        c->HW[l] = c->hw[2 * l] * c->hw[2 * l + 1];
        c->a0[l + 1] = c->a0[l] + c->HW[l];
    }
    if (B < 1) return yt_error("detect_loss: empty batch");
    c->B = B;
    c->A = c->a0[nl];
    return 0;
}

static int check_targets(loss_ctx *c, const yt_detect_targets *targets)
{
    const yt_tensor *tb = targets ? targets->batch_idx : NULL, *tc = targets ? targets->cls : NULL,
                    *tx = targets ? targets->bboxes : NULL;
    if (!tb || !tc || !tx) return yt_error("detect_loss: targets need batch_idx, cls and bboxes");
    if (yt_tensor_is_released(tb) || yt_tensor_is_released(tc) || yt_tensor_is_released(tx))
        return yt_error("detect_loss: attempt to use a released target tensor");
    if ((tb->dtype != YT_F32 && tb->dtype != YT_I64) || (tc->dtype != YT_F32 && tc->dtype != YT_I64) ||
        tx->dtype != YT_F32)
        return yt_error("detect_loss: batch_idx and cls must be F32 or I64, bboxes F32");
    const int64_t N = yt_numel(tb);
    char sb[128];
    if (yt_numel(tc) != N || tx->ndim != 2 || tx->shape[0] != N || tx->shape[1] != 4)
        return yt_error("detect_loss: batch_idx has %lld entries, cls %lld, bboxes shape %s (expected [%lld, 4])",
                        (long long)N, (long long)yt_numel(tc), yt_shape_str(tx, sb, sizeof sb), (long long)N);
    c->N = N;
    return 0;
}

static int take_inputs(loss_ctx *c, yt_tensor *const *preds, const yt_detect_targets *targets)
{
    for (int l = 0; l < c->nl; l++) {
        c->pc[l] = yt_contiguous(preds[l]);
        if (!c->pc[l]) return -1;
        int64_t where;
        int bad = find_nonfinite(yt_f32(c->pc[l]), yt_numel(c->pc[l]), &where);
        if (bad) {
            int64_t x = where % c->hw[2 * l + 1], y = (where / c->hw[2 * l + 1]) % c->hw[2 * l],
                    ch = (where / c->HW[l]) % c->C, b = where / (c->HW[l] * c->C);
            return yt_error("detect_loss: preds[%d] contains %s at [%lld, %lld, %lld, %lld] (%s channel)", l,
                            bad == 1 ? "NaN" : "Inf", (long long)b, (long long)ch, (long long)y, (long long)x,
                            ch < 4 * c->R ? "box distribution" : "class");
        }
    }
    c->tbc = yt_contiguous((yt_tensor *)targets->batch_idx);
    c->tcc = yt_contiguous((yt_tensor *)targets->cls);
    c->txc = yt_contiguous((yt_tensor *)targets->bboxes);
    return c->tbc && c->tcc && c->txc ? 0 : -1;
}

/* Counts and checks the boxes of each image, then lays them out as (B, M) slots in pixels, xyxy (float32, the
 * reference's order of operations); padding slots and degenerate boxes have mask 0. Builds the anchor grid. */
static int gather_targets(loss_ctx *c)
{
    const int64_t B = c->B, N = c->N;
    const float imh = (float)c->hw[0] * c->cfg->strides[0], imw = (float)c->hw[1] * c->cfg->strides[0];
    c->count = calloc((size_t)B, sizeof *c->count);
    if (!c->count) return yt_error("detect_loss: out of memory");
    for (int64_t i = 0; i < N; i++) {
        double bi = get_num(c->tbc, i), ci = get_num(c->tcc, i);
        const float *bx = yt_f32(c->txc) + 4 * i;
        if (!(bi >= 0 && bi < B && bi == floor(bi)))
            return yt_error("detect_loss: batch_idx[%lld] = %g is not an image index in [0, %lld)", (long long)i, bi,
                            (long long)B);
        if (!(ci >= 0 && ci < c->nc && ci == floor(ci)))
            return yt_error("detect_loss: cls[%lld] = %g is not a class id in [0, %d)", (long long)i, ci, c->nc);
        if (!isfinite(bx[0]) || !isfinite(bx[1]) || !isfinite(bx[2]) || !isfinite(bx[3]))
            return yt_error("detect_loss: bboxes[%lld] is not finite", (long long)i);
        c->count[(int64_t)bi]++;
    }
    for (int64_t b = 0; b < B; b++)
        if (c->count[b] > c->M) c->M = (int)c->count[b];
    const int M = c->M;
    size_t bm = (size_t)(B * (M > 0 ? M : 1));
    c->gtl = calloc(bm, sizeof *c->gtl);
    c->gtb = calloc(bm * 4, sizeof *c->gtb);
    c->gtm = calloc(bm, sizeof *c->gtm);
    c->anc = malloc((size_t)c->A * 2 * sizeof *c->anc);
    c->astride = malloc((size_t)c->A * sizeof *c->astride);
    if (!c->gtl || !c->gtb || !c->gtm || !c->anc || !c->astride) return yt_error("detect_loss: out of memory");
    memset(c->count, 0, (size_t)B * sizeof *c->count);
    for (int64_t i = 0; i < N; i++) {
        int64_t b = (int64_t)get_num(c->tbc, i);
        int64_t j = b * M + c->count[b]++;
        const float *bx = yt_f32(c->txc) + 4 * i;
        float s[4] = {bx[0] * imw, bx[1] * imh, bx[2] * imw, bx[3] * imh};
        yt_xywh2xyxy(s, c->gtb + 4 * j, 1);
        c->gtl[j] = (float)get_num(c->tcc, i);
        float *g = c->gtb + 4 * j;
        int real = ((g[0] + g[1]) + g[2]) + g[3] > 0 && g[2] > g[0] && g[3] > g[1];
        c->gtm[j] = real ? 1.0f : 0.0f;
        c->num_gt += real;
    }
    yt_make_anchors_raw(c->nl, c->hw, c->cfg->strides, 0.5f, c->anc, c->astride);
    return 0;
}

static int alloc_work(loss_ctx *c, int want_grad)
{
    const int64_t BA = c->B * c->A;
    c->pbox = malloc((size_t)BA * 4 * sizeof *c->pbox);
    c->norm = malloc((size_t)BA * sizeof *c->norm);
    c->tboxes = malloc((size_t)BA * 4 * sizeof *c->tboxes);
    c->tlab = malloc((size_t)BA * sizeof *c->tlab);
    c->tidx = malloc((size_t)BA * sizeof *c->tidx);
    c->fg = malloc((size_t)BA);
    c->cls_part = calloc((size_t)c->B, sizeof *c->cls_part);
    c->box_part = calloc((size_t)c->B, sizeof *c->box_part);
    c->dfl_part = calloc((size_t)c->B, sizeof *c->dfl_part);
    c->anc_px = malloc((size_t)c->A * 2 * sizeof *c->anc_px);
    if (!c->pbox || !c->norm || !c->tboxes || !c->tlab || !c->tidx || !c->fg || !c->cls_part || !c->box_part ||
        !c->dfl_part || !c->anc_px)
        return yt_error("detect_loss: out of memory");
    for (int64_t a = 0; a < c->A; a++) {
        c->anc_px[2 * a] = c->anc[2 * a] * c->astride[a];
        c->anc_px[2 * a + 1] = c->anc[2 * a + 1] * c->astride[a];
    }

    const int64_t nt_max = omp_get_max_threads();
    c->nt = (int)(nt_max < c->B ? nt_max : c->B);
    yt_tal_cfg_default(&c->tcfg, c->nc);
    c->tcfg.topk = c->cfg->topk;
    c->tcfg.alpha = c->cfg->alpha;
    c->tcfg.beta = c->cfg->beta;
    if (c->tcfg.topk < 1) return yt_error("detect_loss: topk must be >= 1, got %d", c->tcfg.topk);
    c->wf = yt_tal_workspace_floats(c->A, c->M, c->tcfg.topk);
    c->work = malloc(c->wf * sizeof(float) * (size_t)c->nt);
    if (!c->work) return yt_error("detect_loss: out of memory (assigner workspace %zu floats)", c->wf * (size_t)c->nt);

    for (int l = 0; l < c->nl && want_grad; l++) {
        c->grads[l] = yt_tensor_zeros(YT_F32, 4, c->pc[l]->shape);
        if (!c->grads[l]) return -1;
    }
    return 0;
}

static int take_fixed_assignment(loss_ctx *c, const yt_tal_result *fx)
{
    const int64_t B = c->B, A = c->A;
    const int nc = c->nc;
    const yt_tensor *ft[5] = {fx->target_labels, fx->target_bboxes, fx->target_scores, fx->fg_mask, fx->target_gt_idx};
    const yt_dtype fd[5] = {YT_I64, YT_F32, YT_F32, YT_U8, YT_I64};
    const int64_t last[5] = {0, 4, nc, 0, 0};
    for (int k = 0; k < 5; k++) {
        const yt_tensor *t = ft[k];
        int nd = last[k] ? 3 : 2;
        if (!t || yt_tensor_is_released(t) || t->dtype != fd[k] || t->ndim != nd || t->shape[0] != B ||
            t->shape[1] != A || (last[k] && t->shape[2] != last[k]) || !yt_is_contiguous(t))
            return yt_error("detect_loss: fixed_assign tensor %d does not fit B=%lld, A=%lld, nc=%d", k, (long long)B,
                            (long long)A, nc);
    }
    memcpy(c->fg, yt_u8(fx->fg_mask), (size_t)(B * A));
    memcpy(c->tlab, yt_i64(fx->target_labels), (size_t)(B * A) * sizeof *c->tlab);
    memcpy(c->tidx, yt_i64(fx->target_gt_idx), (size_t)(B * A) * sizeof *c->tidx);
    memcpy(c->tboxes, yt_f32(fx->target_bboxes), (size_t)(B * A) * 4 * sizeof *c->tboxes);
    for (int64_t i = 0; i < B * A; i++) {
        if (c->fg[i] && (c->tlab[i] < 0 || c->tlab[i] >= nc))
            return yt_error("detect_loss: fixed_assign label out of range");
        c->norm[i] = c->fg[i] ? yt_f32(fx->target_scores)[i * nc + c->tlab[i]] : 0.0f;
    }
    return 0;
}

/* Decodes the predicted boxes (px, detached) and, unless an assignment was given, assigns targets: in parallel
 * over the images, each thread with its own workspace. */
static void decode_and_assign(loss_ctx *c, int assign)
{
    const int64_t A = c->A, C = c->C;
    const int R = c->R, M = c->M;
#pragma omp parallel for num_threads(c->nt) schedule(dynamic, 1)
    for (int64_t b = 0; b < c->B; b++) {
        float *w = c->work + c->wf * (size_t)omp_get_thread_num();
        for (int l = 0; l < c->nl; l++) {
            const int64_t HWl = c->HW[l];
            const float *base = yt_f32(c->pc[l]) + (size_t)(b * C * HWl);
            for (int64_t j = 0; j < HWl; j++) {
                int64_t a = c->a0[l] + j;
                float d[4];
                for (int s = 0; s < 4; s++) d[s] = dfl_expect(base + (s * R) * HWl + j, HWl, R, NULL);
                float *pb = c->pbox + 4 * (b * A + a);
                float st = c->astride[a];
                pb[0] = (c->anc[2 * a] - d[0]) * st;
                pb[1] = (c->anc[2 * a + 1] - d[1]) * st;
                pb[2] = (c->anc[2 * a] + d[2]) * st;
                pb[3] = (c->anc[2 * a + 1] + d[3]) * st;
            }
        }
        if (!assign) continue;
        const float *labels = c->gtl + b * M, *mask = c->gtm + b * M;
        for (int m = 0; m < M; m++) {
            if (!(mask[m] > 0)) continue;
            int64_t cls = (int64_t)labels[m];
            for (int l = 0; l < c->nl; l++) {
                const float *lg = yt_f32(c->pc[l]) + (size_t)(b * C * c->HW[l]) + (4 * R + cls) * c->HW[l];
                float *dst = w + (size_t)m * A + c->a0[l];
                for (int64_t j = 0; j < c->HW[l]; j++) dst[j] = sigmoidf_(lg[j]);
            }
        }
        yt_tal_assign_image(w, c->pbox + 4 * b * A, c->anc_px, A, labels, c->gtb + 4 * b * M, mask, M, &c->tcfg,
                            c->tlab + b * A, c->tboxes + 4 * b * A, c->norm + b * A, c->fg + b * A, c->tidx + b * A);
    }
}

static int sum_target_scores(loss_ctx *c)
{
    double s = 0;
    for (int64_t i = 0; i < c->B * c->A; i++)
        if (c->fg[i]) {
            s += c->norm[i];
            c->num_fg++;
        }
    if (c->cfg->reduce_score_sum) {
        s = c->cfg->reduce_score_sum(s, c->cfg->reduce_userdata);
        if (s < 0) return yt_error("detect loss: reducing the target score sum across processes failed");
    }
    c->tss = (double)(float)(s > 1.0 ? s : 1.0);
    return 0;
}

/* Per image: BCE over every anchor x class; CIoU and DFL on the foreground anchors; and their gradients, scaled
 * by B (the loss is the batch mean times B, as the reference's). Each anchor's gradient entries are written by one
 * iteration only. */
static void losses_and_gradients(loss_ctx *c)
{
    const yt_detect_loss_cfg *cfg = c->cfg;
    const int64_t A = c->A, C = c->C;
    const int R = c->R, nc = c->nc;
    const double gs_cls = (double)c->B * cfg->cls / c->tss, gs_box = (double)c->B * cfg->box / c->tss,
                 gs_dfl = (double)c->B * cfg->dfl / c->tss;
    const float *pw = cfg->cls_pw;
#pragma omp parallel for num_threads(c->nt) schedule(dynamic, 1)
    for (int64_t b = 0; b < c->B; b++) {
        double lc = 0, lb = 0, ld = 0;
        const uint8_t *fgb = c->fg + b * A;
        const int64_t *tl = c->tlab + b * A;
        const float *nb = c->norm + b * A;
        for (int l = 0; l < c->nl; l++) {
            const int64_t hwl = c->HW[l], a0l = c->a0[l];
            const float *base = yt_f32(c->pc[l]) + (size_t)(b * C * hwl);
            float *gbase = c->grads[l] ? yt_f32(c->grads[l]) + (size_t)(b * C * hwl) : NULL;
            /* classification: BCE over every anchor x class */
            for (int cls = 0; cls < nc; cls++) {
                const float *x = base + (4 * R + cls) * hwl;
                float *gx = gbase ? gbase + (4 * R + cls) * hwl : NULL;
                const float wc = pw ? pw[cls] : 1.0f;
                double acc = 0;
                for (int64_t j = 0; j < hwl; j++) {
                    int64_t a = a0l + j;
                    float t = (fgb[a] && tl[a] == cls) ? nb[a] : 0.0f;
                    acc += (double)(bce_logits(x[j], t) * wc);
                    if (gx) gx[j] = (float)(gs_cls * wc * ((double)sigmoidf_(x[j]) - t));
                }
                lc += acc;
            }
            /* box (CIoU) and DFL on foreground anchors */
            for (int64_t j = 0; j < hwl; j++) {
                int64_t a = a0l + j;
                if (!fgb[a]) continue;
                const float weight = nb[a], st = c->astride[a];
                const float ax = c->anc[2 * a], ay = c->anc[2 * a + 1];
                double p[4][256];
                float d[4];
                for (int s = 0; s < 4; s++) d[s] = dfl_expect(base + (s * R) * hwl + j, hwl, R, p[s]);
                float pred[4] = {ax - d[0], ay - d[1], ax + d[2], ay + d[3]};
                const float *tp = c->tboxes + 4 * (b * A + a);
                float tgt[4] = {tp[0] / st, tp[1] / st, tp[2] / st, tp[3] / st};
                double g[4];
                float ciou = yt_bbox_iou_grad(pred, tgt, YT_CIOU, g);
                lb += (double)((1.0f - ciou) * weight);
                float tdist[4];
                float anc1[2] = {ax, ay};
                yt_bbox2dist(anc1, tgt, tdist, 1, (float)(R - 1));
                double side_sum = 0;
                for (int s = 0; s < 4; s++)
                    side_sum += dfl_side(base + (s * R) * hwl + j, hwl, R, tdist[s],
                                         gbase ? gbase + (s * R) * hwl + j : NULL, hwl, gs_dfl * weight / 4.0);
                ld += side_sum / 4.0 * weight;
                if (gbase) {
                    /* d loss / d pred box, then through x1 = ax - l, y1 = ay - t, x2 = ax + r, y2 = ay + b */
                    double gbx[4];
                    for (int k = 0; k < 4; k++) gbx[k] = -gs_box * weight * g[k];
                    double gd[4] = {-gbx[0], -gbx[1], gbx[2], gbx[3]};
                    for (int s = 0; s < 4; s++) {
                        float *gx = gbase + (s * R) * hwl + j;
                        for (int k = 0; k < R; k++) gx[k * hwl] += (float)(gd[s] * p[s][k] * ((double)k - d[s]));
                    }
                }
            }
        }
        c->cls_part[b] = lc;
        c->box_part[b] = lb;
        c->dfl_part[b] = ld;
    }
}

/* The scalar loss (sum of the weighted items times B), its items, and the node that hands the saved gradients
 * back to the predictions. */
static int make_loss(loss_ctx *c, yt_tensor *const *preds, int need_grad, float loss_items[3],
                     yt_detect_loss_extras *extras, yt_tensor **out)
{
    const yt_detect_loss_cfg *cfg = c->cfg;
    double lc = 0, lb = 0, ld = 0;
    for (int64_t b = 0; b < c->B; b++) {
        lc += c->cls_part[b];
        lb += c->box_part[b];
        ld += c->dfl_part[b];
    }
    double raw[3] = {lb / c->tss, lc / c->tss, ld / c->tss};
    double items[3] = {raw[0] * cfg->box, raw[1] * cfg->cls, raw[2] * cfg->dfl};
    if (loss_items)
        for (int k = 0; k < 3; k++) loss_items[k] = (float)items[k];
    float total = (float)((items[0] + items[1] + items[2]) * (double)c->B);
    yt_tensor *loss = yt_tensor_from_data(YT_F32, 0, NULL, &total);
    yt_node *node = need_grad ? yt_record("detect_loss", loss_backward, c->nl, preds, &loss) : NULL;
    if (!loss) return -1;
    if (node) {
        node->iarg[0] = c->nl;
        for (int l = 0; l < c->nl; l++) yt_node_save(node, c->grads[l]);
    }
    if (extras) {
        extras->target_scores_sum = (float)c->tss;
        for (int k = 0; k < 3; k++) extras->loss_raw[k] = (float)raw[k];
        extras->num_fg = c->num_fg;
        extras->num_gt = c->num_gt;
    }
    *out = loss;
    return 0;
}

static int fill_extras(loss_ctx *c, yt_detect_loss_extras *extras)
{
    const int64_t B = c->B, A = c->A;
    const int nc = c->nc, M = c->M;
    int64_t sA2[2] = {A, 2}, sA1[2] = {A, 1}, sBA4[3] = {B, A, 4}, sBAC[3] = {B, A, nc}, sBM1[3] = {B, M, 1},
            sBM4[3] = {B, M, 4}, sBA[2] = {B, A};
    extras->anchor_points = yt_tensor_from_data(YT_F32, 2, sA2, c->anc);
    extras->stride_tensor = yt_tensor_from_data(YT_F32, 2, sA1, c->astride);
    extras->pd_bboxes = yt_tensor_from_data(YT_F32, 3, sBA4, c->pbox);
    extras->pd_scores = yt_tensor_empty(YT_F32, 3, sBAC);
    extras->gt_labels = yt_tensor_from_data(YT_F32, 3, sBM1, c->gtl);
    extras->gt_bboxes = yt_tensor_from_data(YT_F32, 3, sBM4, c->gtb);
    extras->mask_gt = yt_tensor_from_data(YT_F32, 3, sBM1, c->gtm);
    extras->assign.target_labels = yt_tensor_from_data(YT_I64, 2, sBA, c->tlab);
    extras->assign.target_bboxes = yt_tensor_from_data(YT_F32, 3, sBA4, c->tboxes);
    extras->assign.target_scores = yt_tensor_zeros(YT_F32, 3, sBAC);
    extras->assign.fg_mask = yt_tensor_from_data(YT_U8, 2, sBA, c->fg);
    extras->assign.target_gt_idx = yt_tensor_from_data(YT_I64, 2, sBA, c->tidx);
    if (!extras->anchor_points || !extras->stride_tensor || !extras->pd_bboxes || !extras->pd_scores ||
        !extras->gt_labels || !extras->gt_bboxes || !extras->mask_gt || !extras->assign.target_labels ||
        !extras->assign.target_bboxes || !extras->assign.target_scores || !extras->assign.fg_mask ||
        !extras->assign.target_gt_idx)
        return -1;
    float *ps = yt_f32(extras->pd_scores), *ts = yt_f32(extras->assign.target_scores);
    for (int64_t b = 0; b < B; b++)
        for (int l = 0; l < c->nl; l++)
            for (int cls = 0; cls < nc; cls++) {
                const float *x = yt_f32(c->pc[l]) + (size_t)(b * c->C * c->HW[l]) + (4 * c->R + cls) * c->HW[l];
                for (int64_t j = 0; j < c->HW[l]; j++) ps[(b * A + c->a0[l] + j) * nc + cls] = sigmoidf_(x[j]);
            }
    for (int64_t i = 0; i < B * A; i++)
        if (c->fg[i]) ts[i * nc + c->tlab[i]] = c->norm[i];
    for (int l = 0; l < c->nl; l++) {
        extras->grad_preds[l] = c->grads[l];
        yt_tensor_retain(c->grads[l]);
    }
    return 0;
}

int yt_detect_loss(yt_tensor *const *preds, const yt_detect_targets *targets, const yt_detect_loss_cfg *cfg,
                   yt_tensor **loss_out, float loss_items[3], yt_detect_loss_extras *extras)
{
    *loss_out = NULL;
    if (extras) memset(extras, 0, sizeof *extras);
    loss_ctx c = {.cfg = cfg};
    yt_tensor *loss = NULL;

    int rc = check_preds(&c, preds);
    const int need_grad = rc == 0 && yt_needs_grad(c.nl, preds);
    if (rc == 0) rc = check_targets(&c, targets);
    if (rc == 0) rc = take_inputs(&c, preds, targets);
    if (rc == 0) rc = gather_targets(&c);
    if (rc == 0) rc = alloc_work(&c, need_grad || extras);
    if (rc == 0 && cfg->fixed_assign) rc = take_fixed_assignment(&c, cfg->fixed_assign);
    if (rc == 0) decode_and_assign(&c, cfg->fixed_assign == NULL);
    if (rc == 0) rc = sum_target_scores(&c);
    if (rc == 0) losses_and_gradients(&c);
    if (rc == 0) rc = make_loss(&c, preds, need_grad, loss_items, extras, &loss);
    if (rc == 0 && extras) rc = fill_extras(&c, extras);

    if (rc == 0) {
        *loss_out = loss;
    } else {
        yt_tensor_release(loss);
        if (extras) yt_detect_loss_extras_free(extras);
    }
    ctx_free(&c);
    return rc;
}

/* ---- DFL loss as a standalone op ---- */

static int dfl_backward(yt_node *node)
{
    yt_tensor *x = node->saved[0], *t = node->saved[1], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(node->in[0]);
    if (!gx) return 0;
    int R = (int)node->iarg[0];
    int64_t n = yt_numel(t) / 4;
    const float *px = yt_f32(x), *pt = yt_f32(t), *g = yt_f32(gy);
    for (int64_t i = 0; i < n; i++)
        for (int s = 0; s < 4; s++)
            dfl_side(px + (4 * i + s) * R, 1, R, pt[4 * i + s], gx + (4 * i + s) * R, 1, g[i] / 4.0);
    return 0;
}

yt_tensor *yt_dfl_loss(yt_tensor *pred_dist, yt_tensor *target)
{
    if (yt_check(pred_dist, "dfl_loss pred_dist", YT_F32, -1) < 0 || yt_check(target, "dfl_loss target", YT_F32, 2) < 0)
        return NULL;
    char s1[128], s2[128];
    int64_t n = target->shape[0];
    int R = pred_dist->ndim >= 1 ? (int)pred_dist->shape[pred_dist->ndim - 1] : 0;
    if (target->shape[1] != 4 || R < 2 || R > 256 || yt_numel(pred_dist) != n * 4 * R) {
        yt_error("dfl_loss: pred_dist %s must hold [N*4, R] logits (2 <= R <= 256) for target %s [N, 4]",
                 yt_shape_str(pred_dist, s1, sizeof s1), yt_shape_str(target, s2, sizeof s2));
        return NULL;
    }
    yt_tensor *xc = yt_contiguous(pred_dist);
    yt_tensor *tc = xc ? yt_tensor_clone(target) : NULL;
    int64_t so[2] = {n, 1};
    yt_tensor *y = tc ? yt_tensor_empty(YT_F32, 2, so) : NULL;
    if (y) {
        float *pt = yt_f32(tc);
        const float hi = (float)(R - 1) - 0.01f;
        for (int64_t i = 0; i < 4 * n; i++) pt[i] = pt[i] < 0 ? 0 : (pt[i] > hi ? hi : pt[i]);
        const float *px = yt_f32(xc);
        float *py = yt_f32(y);
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += dfl_side(px + (4 * i + k) * R, 1, R, pt[4 * i + k], NULL, 1, 0);
            py[i] = (float)(s / 4.0);
        }
        yt_node *node = yt_record("dfl_loss", dfl_backward, 1, &pred_dist, &y);
        if (node) {
            yt_node_save(node, xc);
            yt_node_save(node, tc);
            node->iarg[0] = R;
        }
    }
    yt_tensor_release(xc);
    yt_tensor_release(tc);
    return y;
}

/* ---- BCE with logits (sum) ---- */

static float weight_at(const float *w, int64_t wn, int64_t last, int64_t i)
{
    if (!w) return 1.0f;
    return wn == last ? w[i % last] : w[i];
}

static int bce_backward(yt_node *node)
{
    yt_tensor *x = node->saved[0], *t = node->saved[1], *w = node->saved[2], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float s = yt_f32(gy)[0];
    float *gx = yt_grad_accum(node->in[0]);
    float *gt = yt_grad_accum(node->in[1]);
    int64_t n = yt_numel(x), last = node->iarg[0], wn = w ? yt_numel(w) : 0;
    const float *px = yt_f32(x), *pt = yt_f32(t), *pw = w ? yt_f32(w) : NULL;
    for (int64_t i = 0; i < n; i++) {
        float wi = weight_at(pw, wn, last, i);
        if (gx) gx[i] += s * wi * (sigmoidf_(px[i]) - pt[i]);
        if (gt) gt[i] += s * wi * (-px[i]);
    }
    return 0;
}

yt_tensor *yt_bce_with_logits(yt_tensor *pred, yt_tensor *target, yt_tensor *weight)
{
    if (yt_check(pred, "bce_with_logits pred", YT_F32, -1) < 0 ||
        yt_check(target, "bce_with_logits target", YT_F32, -1) < 0 ||
        (weight && yt_check(weight, "bce_with_logits weight", YT_F32, -1) < 0))
        return NULL;
    char s1[128], s2[128];
    int64_t n = yt_numel(pred), last = pred->ndim ? pred->shape[pred->ndim - 1] : 1;
    if (yt_numel(target) != n) {
        yt_error("bce_with_logits: pred %s and target %s differ in size", yt_shape_str(pred, s1, sizeof s1),
                 yt_shape_str(target, s2, sizeof s2));
        return NULL;
    }
    if (weight && yt_numel(weight) != n && yt_numel(weight) != last) {
        yt_error("bce_with_logits: weight %s must match pred %s or its last dimension",
                 yt_shape_str(weight, s1, sizeof s1), yt_shape_str(pred, s2, sizeof s2));
        return NULL;
    }
    yt_tensor *xc = yt_contiguous(pred), *tc = xc ? yt_contiguous(target) : NULL;
    yt_tensor *wc = (tc && weight) ? yt_contiguous(weight) : NULL;
    yt_tensor *y = NULL;
    if (tc && (!weight || wc)) {
        const float *px = yt_f32(xc), *pt = yt_f32(tc), *pw = wc ? yt_f32(wc) : NULL;
        int64_t wn = wc ? yt_numel(wc) : 0;
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += (double)(bce_logits(px[i], pt[i]) * weight_at(pw, wn, last, i));
        float v = (float)s;
        y = yt_tensor_from_data(YT_F32, 0, NULL, &v);
        yt_tensor *ins[2] = {pred, target};
        yt_node *node = yt_record("bce_with_logits", bce_backward, 2, ins, &y);
        if (node) {
            yt_node_save(node, xc);
            yt_node_save(node, tc);
            if (wc)
                yt_node_save(node, wc);
            else
                node->saved[2] = NULL;
            node->iarg[0] = last;
        }
    }
    yt_tensor_release(xc);
    yt_tensor_release(tc);
    yt_tensor_release(wc);
    return y;
}
