/* NMS: candidate selection, stable sort by score, exact per-class greedy suppression. See nms.h. */
#include "metrics/nms.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void yt_nms_opts_default(yt_nms_opts *o)
{
    memset(o, 0, sizeof *o);
    o->conf_thres = YT_PREDICT_CONF;
    o->iou_thres = 0.45;
    o->max_det = 300;
    o->max_nms = 30000;
}

/* IoU of two xyxy boxes in float32 (torchvision's CPU formula: areas precomputed, inter / (a + b - inter)). */
static inline float iou_f32(const float *a, float area_a, const float *b, float area_b)
{
    float xx1 = a[0] > b[0] ? a[0] : b[0];
    float yy1 = a[1] > b[1] ? a[1] : b[1];
    float xx2 = a[2] < b[2] ? a[2] : b[2];
    float yy2 = a[3] < b[3] ? a[3] : b[3];
    float w = xx2 - xx1, h = yy2 - yy1;
    if (w < 0.0f) w = 0.0f;
    if (h < 0.0f) h = 0.0f;
    float inter = w * h;
    return inter / (area_a + area_b - inter);
}

int yt_nms_sorted_forward(const float *boxes, const int64_t *cls, int n, double iou_thres, int agnostic, int max_keep,
                          int *keep)
{
    int nk = 0;
    for (int i = 0; i < n && nk < max_keep; i++) {
        const float *bi = boxes + 4 * (size_t)i;
        float area_i = (bi[2] - bi[0]) * (bi[3] - bi[1]);
        int suppressed = 0;
        /* Greedy in descending score order: box i survives unless a kept box of its class overlaps it. This is
         * exactly torchvision's sequential NMS (suppressed boxes never suppress others), restricted per class. */
        for (int k = 0; k < nk; k++) {
            int j = keep[k];
            if (!agnostic && cls[j] != cls[i]) continue;
            const float *bj = boxes + 4 * (size_t)j;
            float area_j = (bj[2] - bj[0]) * (bj[3] - bj[1]);
            float ovr = iou_f32(bj, area_j, bi, area_i);
            if ((double)ovr > iou_thres) {
                suppressed = 1;
                break;
            }
        }
        if (!suppressed) keep[nk++] = i;
    }
    return nk;
}

typedef struct {
    float score;
    int anchor;
    int cls;
    int order; /* position in candidate order (anchor-major, then class): the stable tie-break */
} candidate;

static int cmp_candidate(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    if (a->score > b->score) return -1;
    if (a->score < b->score) return 1;
    return (a->order > b->order) - (a->order < b->order);
}

static int class_allowed(const yt_nms_opts *o, int c)
{
    if (!o->classes) return 1;
    for (int i = 0; i < o->n_classes; i++)
        if (o->classes[i] == c) return 1;
    return 0;
}

int yt_nms(const yt_tensor *prediction, const yt_nms_opts *opts, yt_tensor **out)
{
    yt_nms_opts def;
    if (!opts) {
        yt_nms_opts_default(&def);
        opts = &def;
    }
    if (yt_check(prediction, "nms prediction", YT_F32, 3) < 0) return -1;
    char sb[96];
    if (prediction->shape[1] < 5)
        return yt_error("nms: prediction %s needs (B, 4 + nc, A) with nc >= 1",
                        yt_shape_str(prediction, sb, sizeof sb));
    if (opts->max_det < 0 || opts->max_nms < 0) return yt_error("nms: max_det and max_nms must be >= 0");
    if (prediction->shape[2] > (int64_t)1 << 24 || prediction->shape[1] > (int64_t)1 << 20)
        return yt_error("nms: prediction %s is too large", yt_shape_str(prediction, sb, sizeof sb));

    const int B = (int)prediction->shape[0], C = (int)prediction->shape[1], A = (int)prediction->shape[2];
    const int nc = C - 4;
    const int64_t s0 = prediction->stride[0], s1 = prediction->stride[1], s2 = prediction->stride[2];
    const float *base = yt_f32(prediction);
    const float conf = opts->conf_thres;

    for (int b = 0; b < B; b++) out[b] = NULL;

    candidate *cand = NULL;
    size_t cap = 0;
    float *boxes = NULL;
    int64_t *cls = NULL;
    int *keep = NULL;
    int rc = 0;

    for (int b = 0; b < B && rc == 0; b++) {
        const float *p = base + (int64_t)b * s0;
        size_t n = 0;
        for (int a = 0; a < A; a++) {
            const float *pa = p + (int64_t)a * s2;
            /* the anchor is a candidate when its best class score exceeds conf (first maximum wins) */
            int best = 0;
            float bs = pa[4 * s1];
            for (int c = 1; c < nc; c++) {
                float v = pa[(int64_t)(4 + c) * s1];
                if (v > bs) {
                    bs = v;
                    best = c;
                }
            }
            if (!(bs > conf)) continue;
            int lo = opts->multi_label ? 0 : best, hi = opts->multi_label ? nc : best + 1;
            for (int c = lo; c < hi; c++) {
                float v = pa[(int64_t)(4 + c) * s1];
                if (!(v > conf) || !class_allowed(opts, c)) continue;
                if (n == cap) {
                    size_t nc2 = cap ? cap * 2 : 1024;
                    candidate *t = realloc(cand, nc2 * sizeof *t);
                    if (!t) {
                        rc = yt_error("nms: out of memory for %zu candidates", nc2);
                        break;
                    }
                    cand = t;
                    cap = nc2;
                }
                cand[n].score = v;
                cand[n].anchor = a;
                cand[n].cls = c;
                cand[n].order = (int)n;
                n++;
            }
            if (rc) break;
        }
        if (rc) break;

        if (n > 1) qsort(cand, n, sizeof *cand, cmp_candidate);
        if (n > (size_t)opts->max_nms) n = (size_t)opts->max_nms;

        float *nb = realloc(boxes, (n ? n : 1) * 4 * sizeof *nb);
        if (nb) boxes = nb;
        int64_t *ncl = realloc(cls, (n ? n : 1) * sizeof *ncl);
        if (ncl) cls = ncl;
        int *nkp = realloc(keep, (n ? n : 1) * sizeof *nkp);
        if (nkp) keep = nkp;
        if (!nb || !ncl || !nkp) {
            rc = yt_error("nms: out of memory for %zu boxes", n);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const float *pa = p + (int64_t)cand[i].anchor * s2;
            float cx = pa[0], cy = pa[s1], w = pa[2 * s1], h = pa[3 * s1];
            float dw = w / 2.0f, dh = h / 2.0f;
            boxes[4 * i + 0] = cx - dw;
            boxes[4 * i + 1] = cy - dh;
            boxes[4 * i + 2] = cx + dw;
            boxes[4 * i + 3] = cy + dh;
            cls[i] = cand[i].cls;
        }
        int nk = yt_nms_sorted_forward(boxes, cls, (int)n, opts->iou_thres, opts->agnostic, opts->max_det, keep);

        int64_t shape[2] = {nk, 6};
        yt_tensor *o = yt_tensor_empty(YT_F32, 2, shape);
        if (!o) {
            rc = -1;
            break;
        }
        float *po = yt_f32(o);
        for (int k = 0; k < nk; k++) {
            int i = keep[k];
            memcpy(po + 6 * k, boxes + 4 * (size_t)i, 4 * sizeof(float));
            po[6 * k + 4] = cand[i].score;
            po[6 * k + 5] = (float)cand[i].cls;
        }
        out[b] = o;
    }
    free(cand);
    free(boxes);
    free(cls);
    free(keep);
    if (rc) {
        for (int b = 0; b < B; b++) {
            if (out[b]) yt_tensor_release(out[b]);
            out[b] = NULL;
        }
        return -1;
    }
    return 0;
}
