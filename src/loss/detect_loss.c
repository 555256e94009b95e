#include "loss/detect_loss.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "loss/bbox.h"

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

/* ---- the fused detection loss ---- */

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

int yt_detect_loss(yt_tensor *const *preds, const yt_detect_targets *targets, const yt_detect_loss_cfg *cfg,
                   yt_tensor **loss_out, float loss_items[3], yt_detect_loss_extras *extras)
{
    *loss_out = NULL;
    if (extras) memset(extras, 0, sizeof *extras);
    const int nl = cfg->nl, R = cfg->reg_max, nc = cfg->nc;
    if (nl < 1 || nl > YT_DETECT_MAX_LEVELS) return yt_error("detect_loss: %d levels (1 to %d)", nl, YT_DETECT_MAX_LEVELS);
    if (R < 2 || R > 256) return yt_error("detect_loss: reg_max %d out of range [2, 256]", R);
    if (nc < 1) return yt_error("detect_loss: nc must be >= 1, got %d", nc);
    for (int l = 0; l < nl; l++)
        if (!(cfg->strides[l] > 0)) return yt_error("detect_loss: stride of level %d is %g", l, (double)cfg->strides[l]);
    const int64_t C = 4 * (int64_t)R + nc;
    int64_t B = -1, hw[2 * YT_DETECT_MAX_LEVELS], HW[YT_DETECT_MAX_LEVELS], a0[YT_DETECT_MAX_LEVELS + 1];
    char sb[128];
    a0[0] = 0;
    for (int l = 0; l < nl; l++) {
        char what[32];
        snprintf(what, sizeof what, "detect_loss preds[%d]", l);
        if (yt_check(preds[l], what, YT_F32, 4) < 0) return -1;
        if (B < 0) B = preds[l]->shape[0];
        if (preds[l]->shape[0] != B || preds[l]->shape[1] != C || preds[l]->shape[2] < 1 || preds[l]->shape[3] < 1)
            return yt_error("detect_loss: preds[%d] has shape %s, expected [%lld, %lld (4*%d + %d), H, W]", l,
                            yt_shape_str(preds[l], sb, sizeof sb), (long long)B, (long long)C, R, nc);
        hw[2 * l] = preds[l]->shape[2];
        hw[2 * l + 1] = preds[l]->shape[3];
        HW[l] = hw[2 * l] * hw[2 * l + 1];
        a0[l + 1] = a0[l] + HW[l];
    }
    if (B < 1) return yt_error("detect_loss: empty batch");
    const int64_t A = a0[nl];

    /* targets */
    const yt_tensor *tb = targets ? targets->batch_idx : NULL, *tc = targets ? targets->cls : NULL,
                    *tx = targets ? targets->bboxes : NULL;
    if (!tb || !tc || !tx) return yt_error("detect_loss: targets need batch_idx, cls and bboxes");
    if (yt_tensor_is_released(tb) || yt_tensor_is_released(tc) || yt_tensor_is_released(tx))
        return yt_error("detect_loss: attempt to use a released target tensor");
    if ((tb->dtype != YT_F32 && tb->dtype != YT_I64) || (tc->dtype != YT_F32 && tc->dtype != YT_I64) ||
        tx->dtype != YT_F32)
        return yt_error("detect_loss: batch_idx and cls must be F32 or I64, bboxes F32");
    const int64_t N = yt_numel(tb);
    if (yt_numel(tc) != N || tx->ndim != 2 || tx->shape[0] != N || tx->shape[1] != 4)
        return yt_error("detect_loss: batch_idx has %lld entries, cls %lld, bboxes shape %s (expected [%lld, 4])",
                        (long long)N, (long long)yt_numel(tc), yt_shape_str(tx, sb, sizeof sb), (long long)N);

    int rc = 0;
    yt_tensor *pc[YT_DETECT_MAX_LEVELS] = {0}, *grads[YT_DETECT_MAX_LEVELS] = {0};
    yt_tensor *tbc = NULL, *tcc = NULL, *txc = NULL;
    float *anc = NULL, *astride = NULL, *pbox = NULL, *gtl = NULL, *gtb = NULL, *gtm = NULL, *work = NULL;
    float *norm = NULL, *tboxes = NULL;
    int64_t *tlab = NULL, *tidx = NULL, *count = NULL;
    uint8_t *fg = NULL;
    double *cls_part = NULL, *box_part = NULL, *dfl_part = NULL;
    int M = 0;
    const int need_grad = yt_needs_grad(nl, preds);

    for (int l = 0; l < nl && rc == 0; l++) {
        pc[l] = yt_contiguous(preds[l]);
        if (!pc[l]) {
            rc = -1;
            break;
        }
        int64_t where;
        int bad = find_nonfinite(yt_f32(pc[l]), yt_numel(pc[l]), &where);
        if (bad) {
            int64_t x = where % hw[2 * l + 1], y = (where / hw[2 * l + 1]) % hw[2 * l], c = (where / HW[l]) % C,
                    b = where / (HW[l] * C);
            rc = yt_error("detect_loss: preds[%d] contains %s at [%lld, %lld, %lld, %lld] (%s channel)", l,
                          bad == 1 ? "NaN" : "Inf", (long long)b, (long long)c, (long long)y, (long long)x,
                          c < 4 * R ? "box distribution" : "class");
        }
    }
    if (rc == 0) {
        tbc = yt_contiguous((yt_tensor *)tb);
        tcc = yt_contiguous((yt_tensor *)tc);
        txc = yt_contiguous((yt_tensor *)tx);
        if (!tbc || !tcc || !txc) rc = -1;
    }
    /* per-image GT lists */
    const float imh = (float)hw[0] * cfg->strides[0], imw = (float)hw[1] * cfg->strides[0];
    if (rc == 0) {
        count = calloc((size_t)B, sizeof *count);
        if (!count) rc = yt_error("detect_loss: out of memory");
        for (int64_t i = 0; i < N && rc == 0; i++) {
            double bi = get_num(tbc, i), ci = get_num(tcc, i);
            const float *bx = yt_f32(txc) + 4 * i;
            if (!(bi >= 0 && bi < B && bi == floor(bi)))
                rc = yt_error("detect_loss: batch_idx[%lld] = %g is not an image index in [0, %lld)", (long long)i, bi,
                              (long long)B);
            else if (!(ci >= 0 && ci < nc && ci == floor(ci)))
                rc = yt_error("detect_loss: cls[%lld] = %g is not a class id in [0, %d)", (long long)i, ci, nc);
            else if (!isfinite(bx[0]) || !isfinite(bx[1]) || !isfinite(bx[2]) || !isfinite(bx[3]))
                rc = yt_error("detect_loss: bboxes[%lld] is not finite", (long long)i);
            else
                count[(int64_t)bi]++;
        }
        for (int64_t b = 0; b < B && rc == 0; b++)
            if (count[b] > M) M = (int)count[b];
    }
    if (rc == 0) {
        size_t bm = (size_t)(B * (M > 0 ? M : 1));
        gtl = calloc(bm, sizeof *gtl);
        gtb = calloc(bm * 4, sizeof *gtb);
        gtm = calloc(bm, sizeof *gtm);
        anc = malloc((size_t)A * 2 * sizeof *anc);
        astride = malloc((size_t)A * sizeof *astride);
        pbox = malloc((size_t)(B * A) * 4 * sizeof *pbox);
        norm = malloc((size_t)(B * A) * sizeof *norm);
        tboxes = malloc((size_t)(B * A) * 4 * sizeof *tboxes);
        tlab = malloc((size_t)(B * A) * sizeof *tlab);
        tidx = malloc((size_t)(B * A) * sizeof *tidx);
        fg = malloc((size_t)(B * A));
        cls_part = calloc((size_t)B, sizeof *cls_part);
        box_part = calloc((size_t)B, sizeof *box_part);
        dfl_part = calloc((size_t)B, sizeof *dfl_part);
        if (!gtl || !gtb || !gtm || !anc || !astride || !pbox || !norm || !tboxes || !tlab || !tidx || !fg ||
            !cls_part || !box_part || !dfl_part)
            rc = yt_error("detect_loss: out of memory");
    }
    int num_gt = 0;
    if (rc == 0) {
        /* fill per image in input order; scale, then xywh -> xyxy (float32, reference order) */
        memset(count, 0, (size_t)B * sizeof *count);
        for (int64_t i = 0; i < N; i++) {
            int64_t b = (int64_t)get_num(tbc, i);
            int64_t j = b * M + count[b]++;
            const float *bx = yt_f32(txc) + 4 * i;
            float s[4] = {bx[0] * imw, bx[1] * imh, bx[2] * imw, bx[3] * imh};
            yt_xywh2xyxy(s, gtb + 4 * j, 1);
            gtl[j] = (float)get_num(tcc, i);
            float *g = gtb + 4 * j;
            int real = ((g[0] + g[1]) + g[2]) + g[3] > 0 && g[2] > g[0] && g[3] > g[1];
            gtm[j] = real ? 1.0f : 0.0f;
            num_gt += real;
        }
        yt_make_anchors_raw(nl, hw, cfg->strides, 0.5f, anc, astride);
    }

    const int64_t nt_max = omp_get_max_threads();
    const int nt = (int)(nt_max < B ? nt_max : B);
    yt_tal_cfg tcfg;
    yt_tal_cfg_default(&tcfg, nc);
    tcfg.topk = cfg->topk;
    tcfg.alpha = cfg->alpha;
    tcfg.beta = cfg->beta;
    if (rc == 0 && tcfg.topk < 1) rc = yt_error("detect_loss: topk must be >= 1, got %d", tcfg.topk);
    size_t wf = yt_tal_workspace_floats(A, M, tcfg.topk);
    if (rc == 0) {
        work = malloc(wf * sizeof(float) * (size_t)nt);
        if (!work) rc = yt_error("detect_loss: out of memory (assigner workspace %zu floats)", wf * (size_t)nt);
    }
    const int want_grad = need_grad || extras;
    for (int l = 0; l < nl && rc == 0 && want_grad; l++) {
        grads[l] = yt_tensor_zeros(YT_F32, 4, pc[l]->shape);
        if (!grads[l]) rc = -1;
    }

    float *anc_px = NULL;
    if (rc == 0) {
        anc_px = malloc((size_t)A * 2 * sizeof *anc_px);
        if (!anc_px) rc = yt_error("detect_loss: out of memory");
        else
            for (int64_t a = 0; a < A; a++) {
                anc_px[2 * a] = anc[2 * a] * astride[a];
                anc_px[2 * a + 1] = anc[2 * a + 1] * astride[a];
            }
    }

    const yt_tal_result *fx = cfg->fixed_assign;
    if (rc == 0 && fx) {
        const yt_tensor *ft[5] = {fx->target_labels, fx->target_bboxes, fx->target_scores, fx->fg_mask,
                                  fx->target_gt_idx};
        const yt_dtype fd[5] = {YT_I64, YT_F32, YT_F32, YT_U8, YT_I64};
        const int64_t last[5] = {0, 4, nc, 0, 0};
        for (int k = 0; k < 5 && rc == 0; k++) {
            const yt_tensor *t = ft[k];
            int nd = last[k] ? 3 : 2;
            if (!t || yt_tensor_is_released(t) || t->dtype != fd[k] || t->ndim != nd || t->shape[0] != B ||
                t->shape[1] != A || (last[k] && t->shape[2] != last[k]) || !yt_is_contiguous(t))
                rc = yt_error("detect_loss: fixed_assign tensor %d does not fit B=%lld, A=%lld, nc=%d", k,
                              (long long)B, (long long)A, nc);
        }
        if (rc == 0) {
            memcpy(fg, yt_u8(fx->fg_mask), (size_t)(B * A));
            memcpy(tlab, yt_i64(fx->target_labels), (size_t)(B * A) * sizeof *tlab);
            memcpy(tidx, yt_i64(fx->target_gt_idx), (size_t)(B * A) * sizeof *tidx);
            memcpy(tboxes, yt_f32(fx->target_bboxes), (size_t)(B * A) * 4 * sizeof *tboxes);
            for (int64_t i = 0; i < B * A && rc == 0; i++) {
                if (fg[i] && (tlab[i] < 0 || tlab[i] >= nc)) rc = yt_error("detect_loss: fixed_assign label out of range");
                norm[i] = fg[i] && rc == 0 ? yt_f32(fx->target_scores)[i * nc + tlab[i]] : 0.0f;
            }
        }
    }

    /* 1. decode the predicted boxes (px, detached) and assign, in parallel over the images */
    if (rc == 0) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            float *w = work + wf * (size_t)omp_get_thread_num();
            for (int l = 0; l < nl; l++) {
                const float *base = yt_f32(pc[l]) + (size_t)(b * C * HW[l]);
                for (int64_t j = 0; j < HW[l]; j++) {
                    int64_t a = a0[l] + j;
                    float d[4];
                    for (int s = 0; s < 4; s++) d[s] = dfl_expect(base + (s * R) * HW[l] + j, HW[l], R, NULL);
                    float *pb = pbox + 4 * (b * A + a);
                    float st = astride[a];
                    pb[0] = (anc[2 * a] - d[0]) * st;
                    pb[1] = (anc[2 * a + 1] - d[1]) * st;
                    pb[2] = (anc[2 * a] + d[2]) * st;
                    pb[3] = (anc[2 * a + 1] + d[3]) * st;
                }
            }
            if (fx) continue; /* assignment given */
            const float *labels = gtl + b * M, *mask = gtm + b * M;
            for (int m = 0; m < M; m++) {
                if (!(mask[m] > 0)) continue;
                int64_t c = (int64_t)labels[m];
                for (int l = 0; l < nl; l++) {
                    const float *lg = yt_f32(pc[l]) + (size_t)(b * C * HW[l]) + (4 * R + c) * HW[l];
                    float *dst = w + (size_t)m * A + a0[l];
                    for (int64_t j = 0; j < HW[l]; j++) dst[j] = sigmoidf_(lg[j]);
                }
            }
            yt_tal_assign_image(w, pbox + 4 * b * A, anc_px, A, labels, gtb + 4 * b * M, mask, M, &tcfg,
                                tlab + b * A, tboxes + 4 * b * A, norm + b * A, fg + b * A, tidx + b * A);
        }
    }

    /* 2. target score sum */
    double tss = 1.0;
    int num_fg = 0;
    if (rc == 0) {
        double s = 0;
        for (int64_t i = 0; i < B * A; i++)
            if (fg[i]) {
                s += norm[i];
                num_fg++;
            }
        if (cfg->reduce_score_sum) {
            s = cfg->reduce_score_sum(s, cfg->reduce_userdata);
            if (s < 0) rc = yt_error("detect loss: reducing the target score sum across processes failed");
        }
        tss = (double)(float)(s > 1.0 ? s : 1.0);
    }

    /* 3. losses and their gradients (each anchor's gradient entries are written by one iteration only) */
    if (rc == 0) {
        const double gs_cls = (double)B * cfg->cls / tss, gs_box = (double)B * cfg->box / tss,
                     gs_dfl = (double)B * cfg->dfl / tss;
        const float *pw = cfg->cls_pw;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            double lc = 0, lb = 0, ld = 0;
            const uint8_t *fgb = fg + b * A;
            const int64_t *tl = tlab + b * A;
            const float *nb = norm + b * A;
            for (int l = 0; l < nl; l++) {
                const int64_t hwl = HW[l];
                const float *base = yt_f32(pc[l]) + (size_t)(b * C * hwl);
                float *gbase = grads[l] ? yt_f32(grads[l]) + (size_t)(b * C * hwl) : NULL;
                /* classification: BCE over every anchor x class */
                for (int c = 0; c < nc; c++) {
                    const float *x = base + (4 * R + c) * hwl;
                    float *gx = gbase ? gbase + (4 * R + c) * hwl : NULL;
                    const float wc = pw ? pw[c] : 1.0f;
                    double acc = 0;
                    for (int64_t j = 0; j < hwl; j++) {
                        int64_t a = a0[l] + j;
                        float t = (fgb[a] && tl[a] == c) ? nb[a] : 0.0f;
                        acc += (double)(bce_logits(x[j], t) * wc);
                        if (gx) gx[j] = (float)(gs_cls * wc * ((double)sigmoidf_(x[j]) - t));
                    }
                    lc += acc;
                }
                /* box (CIoU) and DFL on foreground anchors */
                for (int64_t j = 0; j < hwl; j++) {
                    int64_t a = a0[l] + j;
                    if (!fgb[a]) continue;
                    const float weight = nb[a], st = astride[a];
                    const float ax = anc[2 * a], ay = anc[2 * a + 1];
                    double p[4][256];
                    float d[4];
                    for (int s = 0; s < 4; s++) d[s] = dfl_expect(base + (s * R) * hwl + j, hwl, R, p[s]);
                    float pred[4] = {ax - d[0], ay - d[1], ax + d[2], ay + d[3]};
                    const float *tp = tboxes + 4 * (b * A + a);
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
                                             gbase ? gbase + (s * R) * hwl + j : NULL, hwl,
                                             gs_dfl * weight / 4.0);
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
            cls_part[b] = lc;
            box_part[b] = lb;
            dfl_part[b] = ld;
        }
    }

    yt_tensor *loss = NULL;
    if (rc == 0) {
        double lc = 0, lb = 0, ld = 0;
        for (int64_t b = 0; b < B; b++) {
            lc += cls_part[b];
            lb += box_part[b];
            ld += dfl_part[b];
        }
        double raw[3] = {lb / tss, lc / tss, ld / tss};
        double items[3] = {raw[0] * cfg->box, raw[1] * cfg->cls, raw[2] * cfg->dfl};
        if (loss_items)
            for (int k = 0; k < 3; k++) loss_items[k] = (float)items[k];
        float total = (float)((items[0] + items[1] + items[2]) * (double)B);
        loss = yt_tensor_from_data(YT_F32, 0, NULL, &total);
        if (!loss) rc = -1;
        if (rc == 0 && need_grad) {
            yt_node *node = yt_node_new("detect_loss", loss_backward, nl, preds);
            if (!node) {
                rc = -1;
            } else {
                node->iarg[0] = nl;
                for (int l = 0; l < nl; l++) yt_node_save(node, grads[l]);
                yt_node_add_output(node, loss);
            }
        }
        if (rc == 0 && extras) {
            extras->target_scores_sum = (float)tss;
            for (int k = 0; k < 3; k++) extras->loss_raw[k] = (float)raw[k];
            extras->num_fg = num_fg;
            extras->num_gt = num_gt;
        }
    }

    /* 4. extras for inspection */
    if (rc == 0 && extras) {
        int64_t sA2[2] = {A, 2}, sA1[2] = {A, 1}, sBA4[3] = {B, A, 4}, sBAC[3] = {B, A, nc}, sBM1[3] = {B, M, 1},
                sBM4[3] = {B, M, 4}, sBA[2] = {B, A};
        extras->anchor_points = yt_tensor_from_data(YT_F32, 2, sA2, anc);
        extras->stride_tensor = yt_tensor_from_data(YT_F32, 2, sA1, astride);
        extras->pd_bboxes = yt_tensor_from_data(YT_F32, 3, sBA4, pbox);
        extras->pd_scores = yt_tensor_empty(YT_F32, 3, sBAC);
        extras->gt_labels = yt_tensor_from_data(YT_F32, 3, sBM1, gtl);
        extras->gt_bboxes = yt_tensor_from_data(YT_F32, 3, sBM4, gtb);
        extras->mask_gt = yt_tensor_from_data(YT_F32, 3, sBM1, gtm);
        extras->assign.target_labels = yt_tensor_from_data(YT_I64, 2, sBA, tlab);
        extras->assign.target_bboxes = yt_tensor_from_data(YT_F32, 3, sBA4, tboxes);
        extras->assign.target_scores = yt_tensor_zeros(YT_F32, 3, sBAC);
        extras->assign.fg_mask = yt_tensor_from_data(YT_U8, 2, sBA, fg);
        extras->assign.target_gt_idx = yt_tensor_from_data(YT_I64, 2, sBA, tidx);
        if (!extras->anchor_points || !extras->stride_tensor || !extras->pd_bboxes || !extras->pd_scores ||
            !extras->gt_labels || !extras->gt_bboxes || !extras->mask_gt || !extras->assign.target_labels ||
            !extras->assign.target_bboxes || !extras->assign.target_scores || !extras->assign.fg_mask ||
            !extras->assign.target_gt_idx) {
            rc = -1;
        } else {
            float *ps = yt_f32(extras->pd_scores), *ts = yt_f32(extras->assign.target_scores);
            for (int64_t b = 0; b < B; b++)
                for (int l = 0; l < nl; l++)
                    for (int c = 0; c < nc; c++) {
                        const float *x = yt_f32(pc[l]) + (size_t)(b * C * HW[l]) + (4 * R + c) * HW[l];
                        for (int64_t j = 0; j < HW[l]; j++) ps[(b * A + a0[l] + j) * nc + c] = sigmoidf_(x[j]);
                    }
            for (int64_t i = 0; i < B * A; i++)
                if (fg[i]) ts[i * nc + tlab[i]] = norm[i];
            for (int l = 0; l < nl; l++) {
                extras->grad_preds[l] = grads[l];
                yt_tensor_retain(grads[l]);
            }
        }
        if (rc < 0) yt_detect_loss_extras_free(extras);
    }

    if (rc == 0) {
        *loss_out = loss;
    } else {
        yt_tensor_release(loss);
        if (extras) yt_detect_loss_extras_free(extras);
    }
    for (int l = 0; l < nl; l++) {
        yt_tensor_release(pc[l]);
        yt_tensor_release(grads[l]);
    }
    yt_tensor_release(tbc);
    yt_tensor_release(tcc);
    yt_tensor_release(txc);
    free(anc);
    free(anc_px);
    free(astride);
    free(pbox);
    free(gtl);
    free(gtb);
    free(gtm);
    free(work);
    free(norm);
    free(tboxes);
    free(tlab);
    free(tidx);
    free(count);
    free(fg);
    free(cls_part);
    free(box_part);
    free(dfl_part);
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
        if (yt_needs_grad(1, &pred_dist)) {
            yt_node *node = yt_node_new("dfl_loss", dfl_backward, 1, &pred_dist);
            if (node) {
                yt_node_save(node, xc);
                yt_node_save(node, tc);
                node->iarg[0] = R;
                yt_node_add_output(node, y);
            } else {
                yt_tensor_release(y);
                y = NULL;
            }
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
        if (y && yt_needs_grad(2, ins)) {
            yt_node *node = yt_node_new("bce_with_logits", bce_backward, 2, ins);
            if (node) {
                yt_node_save(node, xc);
                yt_node_save(node, tc);
                if (wc) yt_node_save(node, wc);
                else node->saved[2] = NULL;
                node->iarg[0] = last;
                yt_node_add_output(node, y);
            } else {
                yt_tensor_release(y);
                y = NULL;
            }
        }
    }
    yt_tensor_release(xc);
    yt_tensor_release(tc);
    yt_tensor_release(wc);
    return y;
}
