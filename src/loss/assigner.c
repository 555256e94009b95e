#include "loss/assigner.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "loss/bbox.h"
#include "ops/shape_ops.h"

void yt_tal_cfg_default(yt_tal_cfg *cfg, int num_classes)
{
    cfg->topk = 10;
    cfg->num_classes = num_classes;
    cfg->alpha = 0.5f;
    cfg->beta = 6.0f;
    cfg->eps = 1e-9f;
}

/* ---- top-k with PyTorch's CPU tie-breaking ----
 * PyTorch's CPU topk (largest=True) fills a vector of (value, index) pairs in index order and, when
 * k * 64 <= n, calls std::partial_sort with comp(x, y) = x.value > y.value. libstdc++ implements that as a heap
 * selection over the first k elements (heap front = smallest kept value; a later element enters only when it is
 * strictly larger than the front). The *set* it keeps among equal values (e.g. the many zero metrics of anchors
 * outside a GT) is determined by that heap procedure, which is reproduced here exactly. When k * 64 > n PyTorch
 * uses std::nth_element instead; there we keep the lowest indices among ties (only reachable with fewer than
 * 64*k anchors, i.e. tiny synthetic inputs). */
typedef struct {
    float v;
    int64_t i;
} tk_elem;

static void tk_adjust_heap(tk_elem *f, ptrdiff_t hole, ptrdiff_t len, tk_elem value)
{
    ptrdiff_t top = hole, second = hole;
    while (second < (len - 1) / 2) {
        second = 2 * (second + 1);
        if (f[second].v > f[second - 1].v) second--;
        f[hole] = f[second];
        hole = second;
    }
    if ((len & 1) == 0 && second == (len - 2) / 2) {
        second = 2 * (second + 1);
        f[hole] = f[second - 1];
        hole = second - 1;
    }
    ptrdiff_t parent = (hole - 1) / 2;
    while (hole > top && f[parent].v > value.v) {
        f[hole] = f[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    f[hole] = value;
}

static void tk_make_heap(tk_elem *f, ptrdiff_t len)
{
    if (len < 2) return;
    ptrdiff_t parent = (len - 2) / 2;
    for (;;) {
        tk_adjust_heap(f, parent, len, f[parent]);
        if (parent == 0) return;
        parent--;
    }
}

/* Selects k of the n values into sel (indices, unordered). heap: k elements of scratch. */
static void topk_select(const float *vals, int64_t n, int k, tk_elem *heap, int64_t *sel)
{
    if ((int64_t)k * 64 <= n) {
        for (int j = 0; j < k; j++) {
            heap[j].v = vals[j];
            heap[j].i = j;
        }
        tk_make_heap(heap, k);
        for (int64_t i = k; i < n; i++) {
            if (vals[i] > heap[0].v) {
                tk_elem value = {vals[i], i};
                tk_adjust_heap(heap, 0, k, value);
            }
        }
        for (int j = 0; j < k; j++) sel[j] = heap[j].i;
    } else {
        /* insertion into a sorted list of k: larger value first, lower index first among equals */
        int cnt = 0;
        for (int64_t i = 0; i < n; i++) {
            float v = vals[i];
            if (cnt == k && !(v > heap[k - 1].v)) continue;
            int pos = cnt < k ? cnt : k - 1;
            while (pos > 0 && v > heap[pos - 1].v) {
                heap[pos] = heap[pos - 1];
                pos--;
            }
            heap[pos].v = v;
            heap[pos].i = i;
            if (cnt < k) cnt++;
        }
        for (int j = 0; j < k; j++) sel[j] = heap[j].i;
    }
}

static size_t round4(size_t n) { return (n + 3) & ~(size_t)3; }

size_t yt_tal_workspace_floats(int64_t A, int M, int topk)
{
    size_t ma = (size_t)M * (size_t)A;
    size_t k = (size_t)(topk > 0 ? topk : 1);
    return round4(ma) * 3          /* gt_scores, overlaps, metric */
           + round4(ma / 4 + 1)    /* mask_pos bytes */
           + round4(k * 4)         /* heap: 16-byte elements */
           + round4(k * 2)         /* selected indices */
           + round4((size_t)M * 2) /* per-GT max metric / overlap */
           + 4;
}

static float pow_alpha(float x, float a)
{
    if (a == 0.5f) return sqrtf(x);
    if (a == 1.0f) return x;
    if (a == 2.0f) return x * x;
    return powf(x, a);
}

void yt_tal_assign_image(float *work, const float *pd_bboxes, const float *anc, int64_t A, const float *gt_labels,
                         const float *gt_bboxes, const float *mask_gt, int M, const yt_tal_cfg *cfg,
                         int64_t *target_labels, float *target_bboxes, float *target_norm, uint8_t *fg,
                         int64_t *target_gt_idx)
{
    if (M <= 0) {
        for (int64_t a = 0; a < A; a++) {
            target_labels[a] = cfg->num_classes;
            memset(target_bboxes + 4 * a, 0, 4 * sizeof(float));
            target_norm[a] = 0;
            fg[a] = 0;
            target_gt_idx[a] = 0;
        }
        return;
    }
    size_t ma = (size_t)M * (size_t)A;
    int k = cfg->topk < A ? cfg->topk : (int)A;
    if (k < 1) k = 1;
    float *gt_scores = work;
    float *overlaps = gt_scores + round4(ma);
    float *metric = overlaps + round4(ma);
    uint8_t *mask_pos = (uint8_t *)(metric + round4(ma));
    tk_elem *heap = (tk_elem *)(metric + round4(ma) + round4(ma / 4 + 1));
    int64_t *sel = (int64_t *)((float *)heap + round4((size_t)(cfg->topk > 0 ? cfg->topk : 1) * 4));
    float *pos_metric = (float *)sel + round4((size_t)(cfg->topk > 0 ? cfg->topk : 1) * 2);
    float *pos_overlap = pos_metric + M;
    const float eps = cfg->eps;

    memset(mask_pos, 0, ma);
    for (int m = 0; m < M; m++) {
        float *ov = overlaps + (size_t)m * A, *mt = metric + (size_t)m * A;
        const float *sc = gt_scores + (size_t)m * A;
        uint8_t *mp = mask_pos + (size_t)m * A;
        const float *g = gt_bboxes + 4 * m;
        int real = mask_gt[m] > 0;
        for (int64_t a = 0; a < A; a++) {
            float ax = anc[2 * a], ay = anc[2 * a + 1];
            float d0 = ax - g[0], d1 = ay - g[1], d2 = g[2] - ax, d3 = g[3] - ay;
            float dmin = fminf(fminf(d0, d1), fminf(d2, d3));
            int inside = dmin > eps;
            mp[a] = (uint8_t)(inside && real); /* candidate flag for now */
            if (inside && real) {
                /* reference order: bbox_iou(gt, pred), clamped at 0 */
                float o = yt_bbox_iou_one(g, pd_bboxes + 4 * a, YT_CIOU);
                if (!(o > 0)) o = 0;
                ov[a] = o;
                mt[a] = pow_alpha(sc[a], cfg->alpha) * powf(o, cfg->beta);
            } else {
                ov[a] = 0;
                mt[a] = 0;
            }
        }
        if (!real) continue;
        /* top-k over all anchors, then intersect with the candidates */
        topk_select(mt, A, k, heap, sel);
        for (int j = 0; j < k; j++) mp[sel[j]] |= 2;
        for (int64_t a = 0; a < A; a++) mp[a] = (uint8_t)(mp[a] == 3);
    }

    /* anchors claimed by several GTs: keep the GT with the largest overlap (first on ties) */
    for (int64_t a = 0; a < A; a++) {
        int cnt = 0, first = -1;
        for (int m = 0; m < M; m++)
            if (mask_pos[(size_t)m * A + a]) {
                cnt++;
                if (first < 0) first = m;
            }
        if (cnt > 1) {
            int best = 0;
            float bo = overlaps[a];
            for (int m = 1; m < M; m++)
                if (overlaps[(size_t)m * A + a] > bo) {
                    bo = overlaps[(size_t)m * A + a];
                    best = m;
                }
            for (int m = 0; m < M; m++) mask_pos[(size_t)m * A + a] = (uint8_t)(m == best);
            first = best;
        }
        fg[a] = (uint8_t)(cnt > 0);
        target_gt_idx[a] = first < 0 ? 0 : first;
    }

    /* per-GT normalisers over its positives */
    for (int m = 0; m < M; m++) {
        float pm = 0, po = 0;
        const uint8_t *mp = mask_pos + (size_t)m * A;
        const float *ov = overlaps + (size_t)m * A, *mt = metric + (size_t)m * A;
        for (int64_t a = 0; a < A; a++)
            if (mp[a]) {
                if (mt[a] > pm) pm = mt[a];
                if (ov[a] > po) po = ov[a];
            }
        pos_metric[m] = pm;
        pos_overlap[m] = po;
    }

    for (int64_t a = 0; a < A; a++) {
        int64_t m = target_gt_idx[a];
        float lab = gt_labels[m];
        int64_t l = (int64_t)lab;
        target_labels[a] = l < 0 ? 0 : l;
        memcpy(target_bboxes + 4 * a, gt_bboxes + 4 * m, 4 * sizeof(float));
        if (fg[a]) {
            float am = metric[(size_t)m * A + a];
            target_norm[a] = am * pos_overlap[m] / (pos_metric[m] + eps);
        } else {
            target_norm[a] = 0;
        }
    }
}

void yt_tal_result_free(yt_tal_result *r)
{
    if (!r) return;
    yt_tensor_release(r->target_labels);
    yt_tensor_release(r->target_bboxes);
    yt_tensor_release(r->target_scores);
    yt_tensor_release(r->fg_mask);
    yt_tensor_release(r->target_gt_idx);
    memset(r, 0, sizeof *r);
}

static int check_f32(const yt_tensor *t, const char *what, int ndim, int last)
{
    if (yt_check(t, what, YT_F32, ndim) < 0) return -1;
    if (last > 0 && t->shape[ndim - 1] != last) {
        char b[128];
        return yt_error("%s: expected a last dimension of %d, got shape %s", what, last, yt_shape_str(t, b, sizeof b));
    }
    return 0;
}

int yt_task_aligned_assign(const yt_tensor *pd_scores, const yt_tensor *pd_bboxes, const yt_tensor *anc_points,
                           const yt_tensor *gt_labels, const yt_tensor *gt_bboxes, const yt_tensor *mask_gt,
                           const yt_tal_cfg *cfg_in, yt_tal_result *out)
{
    memset(out, 0, sizeof *out);
    if (check_f32(pd_scores, "task_aligned_assign pd_scores", 3, 0) < 0 ||
        check_f32(pd_bboxes, "task_aligned_assign pd_bboxes", 3, 4) < 0 ||
        check_f32(anc_points, "task_aligned_assign anc_points", 2, 2) < 0 ||
        check_f32(gt_labels, "task_aligned_assign gt_labels", 3, 1) < 0 ||
        check_f32(gt_bboxes, "task_aligned_assign gt_bboxes", 3, 4) < 0 ||
        check_f32(mask_gt, "task_aligned_assign mask_gt", 3, 1) < 0)
        return -1;
    int64_t B = pd_scores->shape[0], A = pd_scores->shape[1], C = pd_scores->shape[2];
    int64_t M = gt_bboxes->shape[1];
    char s1[128], s2[128];
    if (pd_bboxes->shape[0] != B || pd_bboxes->shape[1] != A || anc_points->shape[0] != A)
        return yt_error("task_aligned_assign: pd_scores %s, pd_bboxes %s and anc_points [%lld, 2] disagree",
                        yt_shape_str(pd_scores, s1, sizeof s1), yt_shape_str(pd_bboxes, s2, sizeof s2),
                        (long long)anc_points->shape[0]);
    if (gt_labels->shape[0] != B || gt_bboxes->shape[0] != B || mask_gt->shape[0] != B || gt_labels->shape[1] != M ||
        mask_gt->shape[1] != M)
        return yt_error("task_aligned_assign: gt_labels %s, gt_bboxes %s and mask_gt need shapes [B,M,1], [B,M,4], "
                        "[B,M,1] with B = %lld",
                        yt_shape_str(gt_labels, s1, sizeof s1), yt_shape_str(gt_bboxes, s2, sizeof s2), (long long)B);
    yt_tal_cfg cfg = *cfg_in;
    if (cfg.num_classes <= 0) cfg.num_classes = (int)C;
    if (cfg.num_classes != C)
        return yt_error("task_aligned_assign: pd_scores has %lld classes, the config says %d", (long long)C,
                        cfg.num_classes);
    if (cfg.topk < 1) return yt_error("task_aligned_assign: topk must be >= 1, got %d", cfg.topk);
    if (A < 1) return yt_error("task_aligned_assign: no anchors");

    yt_tensor *sc = yt_contiguous((yt_tensor *)pd_scores), *pb = yt_contiguous((yt_tensor *)pd_bboxes);
    yt_tensor *an = yt_contiguous((yt_tensor *)anc_points), *gl = yt_contiguous((yt_tensor *)gt_labels);
    yt_tensor *gb = yt_contiguous((yt_tensor *)gt_bboxes), *mg = yt_contiguous((yt_tensor *)mask_gt);
    int64_t sBA[2] = {B, A}, sBA4[3] = {B, A, 4}, sBAC[3] = {B, A, C};
    out->target_labels = yt_tensor_empty(YT_I64, 2, sBA);
    out->target_bboxes = yt_tensor_empty(YT_F32, 3, sBA4);
    out->target_scores = yt_tensor_zeros(YT_F32, 3, sBAC);
    out->fg_mask = yt_tensor_empty(YT_U8, 2, sBA);
    out->target_gt_idx = yt_tensor_empty(YT_I64, 2, sBA);
    int nt = omp_get_max_threads();
    if (nt > B) nt = (int)(B > 0 ? B : 1);
    size_t wf = yt_tal_workspace_floats(A, (int)M, cfg.topk);
    float *work = malloc(wf * sizeof(float) * (size_t)nt);
    float *norm = malloc((size_t)(B * A) * sizeof(float));
    int rc = 0;
    if (!sc || !pb || !an || !gl || !gb || !mg || !out->target_labels || !out->target_bboxes || !out->target_scores ||
        !out->fg_mask || !out->target_gt_idx || !work || !norm) {
        if (!work || !norm) yt_error("task_aligned_assign: out of memory (%zu floats of workspace)", wf * nt);
        rc = -1;
    }
    int bad_label = 0;
    if (rc == 0) {
        const float *glp = yt_f32(gl), *mgp = yt_f32(mg);
        for (int64_t i = 0; i < B * M; i++)
            if (mgp[i] > 0 && !(glp[i] >= 0 && glp[i] < (float)C)) bad_label = 1;
        if (bad_label) {
            yt_error("task_aligned_assign: a gt_labels entry is not a class id in [0, %lld)", (long long)C);
            rc = -1;
        }
    }
    if (rc == 0) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            float *w = work + wf * (size_t)omp_get_thread_num();
            const float *scores = yt_f32(sc) + (size_t)(b * A * C);
            const float *labels = yt_f32(gl) + b * M;
            const float *mask = yt_f32(mg) + b * M;
            for (int64_t m = 0; m < M; m++) {
                if (!(mask[m] > 0)) continue;
                int64_t c = (int64_t)labels[m];
                for (int64_t a = 0; a < A; a++) w[m * A + a] = scores[a * C + c];
            }
            yt_tal_assign_image(w, yt_f32(pb) + b * A * 4, yt_f32(an), A, labels, yt_f32(gb) + b * M * 4, mask, (int)M,
                                &cfg, yt_i64(out->target_labels) + b * A, yt_f32(out->target_bboxes) + b * A * 4,
                                norm + b * A, yt_u8(out->fg_mask) + b * A, yt_i64(out->target_gt_idx) + b * A);
        }
        float *ts = yt_f32(out->target_scores);
        const int64_t *tl = yt_i64(out->target_labels);
        const uint8_t *fg = yt_u8(out->fg_mask);
        for (int64_t i = 0; i < B * A; i++)
            if (fg[i]) ts[i * C + tl[i]] = norm[i];
    }
    free(work);
    free(norm);
    yt_tensor_release(sc);
    yt_tensor_release(pb);
    yt_tensor_release(an);
    yt_tensor_release(gl);
    yt_tensor_release(gb);
    yt_tensor_release(mg);
    if (rc < 0) yt_tal_result_free(out);
    return rc;
}
