/* Box IoU, prediction/GT matching, AP per class, confusion matrix. See ap.h and the parity README (12, 13). */
#include "metrics/ap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ops/shape_ops.h"

void yt_iou_thresholds(float *iouv)
{
    static const float v[YT_AP_NIOU] = {0.5f, 0.55f, 0.6f, 0.65f, 0.7f, 0.75f, 0.8f, 0.85f, 0.9f, 0.95f};
    memcpy(iouv, v, sizeof v);
}

/* ---- box IoU ---- */

void yt_box_iou_forward(const float *a, int64_t n, const float *b, int64_t m, float *out)
{
    const float eps = 1e-7f;
    for (int64_t i = 0; i < n; i++) {
        const float *pa = a + 4 * i;
        float area_a = (pa[2] - pa[0]) * (pa[3] - pa[1]);
        for (int64_t j = 0; j < m; j++) {
            const float *pb = b + 4 * j;
            float area_b = (pb[2] - pb[0]) * (pb[3] - pb[1]);
            float w = (pa[2] < pb[2] ? pa[2] : pb[2]) - (pa[0] > pb[0] ? pa[0] : pb[0]);
            float h = (pa[3] < pb[3] ? pa[3] : pb[3]) - (pa[1] > pb[1] ? pa[1] : pb[1]);
            if (w < 0.0f) w = 0.0f;
            if (h < 0.0f) h = 0.0f;
            float inter = w * h;
            out[i * m + j] = inter / (area_a + area_b - inter + eps);
        }
    }
}

/* Copies a (N, >=4) or (N*4) tensor of any float dtype into a fresh (N, 4) float array (first 4 columns). */
static float *boxes_f32(const yt_tensor *t, const char *what, int64_t *n_out)
{
    char sb[96];
    if (!t || yt_tensor_is_released(t)) {
        yt_error("%s: missing or released tensor", what);
        return NULL;
    }
    if (t->dtype != YT_F32 && t->dtype != YT_F64) {
        yt_error("%s: expected float32 or float64 boxes, got %s", what, yt_dtype_name(t->dtype));
        return NULL;
    }
    int64_t n;
    if (t->ndim == 2 && t->shape[1] >= 4) {
        n = t->shape[0];
    } else if (t->ndim == 1 && t->shape[0] == 0) {
        n = 0;
    } else {
        yt_error("%s: expected boxes of shape (N, 4), got %s", what, yt_shape_str(t, sb, sizeof sb));
        return NULL;
    }
    float *o = malloc((size_t)(n ? n : 1) * 4 * sizeof *o);
    if (!o) {
        yt_error("%s: out of memory", what);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            int64_t e = t->offset + (t->ndim == 2 ? i * t->stride[0] + k * t->stride[1] : 0);
            o[4 * i + k] = t->dtype == YT_F32 ? ((const float *)t->storage->data)[e]
                                              : (float)((const double *)t->storage->data)[e];
        }
    *n_out = n;
    return o;
}

yt_tensor *yt_box_iou(const yt_tensor *a, const yt_tensor *b)
{
    int64_t n, m;
    float *pa = boxes_f32(a, "box_iou (first argument)", &n);
    if (!pa) return NULL;
    float *pb = boxes_f32(b, "box_iou (second argument)", &m);
    if (!pb) {
        free(pa);
        return NULL;
    }
    int64_t shape[2] = {n, m};
    yt_tensor *o = yt_tensor_empty(YT_F32, 2, shape);
    if (o) yt_box_iou_forward(pa, n, pb, m, yt_f32(o));
    free(pa);
    free(pb);
    return o;
}

/* ---- matching ---- */

int yt_match_predictions_forward(const int64_t *pred_cls, int64_t n, const int64_t *gt_cls, int64_t m, const float *iou,
                                 const float *iouv, int niou, uint8_t *correct)
{
    memset(correct, 0, (size_t)n * niou);
    if (n == 0 || m == 0) return 0;
    int64_t *best_g = malloc((size_t)n * sizeof *best_g);
    uint8_t *taken = malloc((size_t)m);
    if (!best_g || !taken) {
        free(best_g);
        free(taken);
        return yt_error("match_predictions: out of memory (%lld predictions, %lld GT)", (long long)n, (long long)m);
    }
    for (int t = 0; t < niou; t++) {
        const float thr = iouv[t];
        /* each prediction keeps its highest-IoU GT among same-class pairs with IoU >= thr
         * (on an exact tie the later GT, as the reversed ascending sort orders them) */
        for (int64_t p = 0; p < n; p++) {
            int64_t bg = -1;
            float bv = 0.0f;
            for (int64_t g = 0; g < m; g++) {
                /* pairs of different classes have IoU 0 after the class mask */
                float v = gt_cls[g] == pred_cls[p] ? iou[g * n + p] : 0.0f;
                if (!(v >= thr)) continue;
                if (bg < 0 || v >= bv) {
                    bg = g;
                    bv = v;
                }
            }
            best_g[p] = bg;
        }
        /* each GT keeps the pair with the lowest prediction index */
        memset(taken, 0, (size_t)m);
        for (int64_t p = 0; p < n; p++) {
            int64_t g = best_g[p];
            if (g < 0 || taken[g]) continue;
            taken[g] = 1;
            correct[p * niou + t] = 1;
        }
    }
    free(best_g);
    free(taken);
    return 0;
}

/* Reads a 1-d (or (N,1)) tensor of class ids of any dtype into int64. */
static int64_t *class_ids(const yt_tensor *t, const char *what, int64_t *n_out)
{
    char sb[96];
    if (!t || yt_tensor_is_released(t)) {
        yt_error("%s: missing or released tensor", what);
        return NULL;
    }
    int64_t n;
    if (t->ndim == 1)
        n = t->shape[0];
    else if (t->ndim == 2 && t->shape[1] == 1)
        n = t->shape[0];
    else if (t->ndim == 0)
        n = 1;
    else {
        yt_error("%s: expected a vector of class ids, got %s", what, yt_shape_str(t, sb, sizeof sb));
        return NULL;
    }
    int64_t *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    if (!o) {
        yt_error("%s: out of memory", what);
        return NULL;
    }
    int64_t st = t->ndim >= 1 ? t->stride[0] : 0;
    const char *base = t->storage->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t e = t->offset + i * st;
        switch (t->dtype) {
        case YT_F32:
            o[i] = (int64_t)((const float *)base)[e];
            break;
        case YT_F64:
            o[i] = (int64_t)((const double *)base)[e];
            break;
        case YT_I64:
            o[i] = ((const int64_t *)base)[e];
            break;
        case YT_U8:
            o[i] = ((const uint8_t *)base)[e];
            break;
        default:
            o[i] = 0;
            break;
        }
    }
    *n_out = n;
    return o;
}

yt_tensor *yt_match_predictions(const yt_tensor *pred_cls, const yt_tensor *gt_cls, const yt_tensor *iou,
                                const yt_tensor *iouv)
{
    char sb[96];
    float thr[64];
    int niou = YT_AP_NIOU;
    if (iouv) {
        if (yt_check(iouv, "match_predictions iouv", YT_F32, 1) < 0) return NULL;
        if (iouv->shape[0] < 1 || iouv->shape[0] > 64) {
            yt_error("match_predictions: iouv must have 1..64 thresholds, got %lld", (long long)iouv->shape[0]);
            return NULL;
        }
        niou = (int)iouv->shape[0];
        for (int k = 0; k < niou; k++) thr[k] = yt_f32(iouv)[k * iouv->stride[0]];
    } else {
        yt_iou_thresholds(thr);
    }
    int64_t n, m;
    int64_t *pc = class_ids(pred_cls, "match_predictions pred_cls", &n);
    if (!pc) return NULL;
    int64_t *gc = class_ids(gt_cls, "match_predictions gt_cls", &m);
    if (!gc) {
        free(pc);
        return NULL;
    }
    yt_tensor *out = NULL;
    if (yt_check(iou, "match_predictions iou", YT_F32, 2) < 0) goto done;
    if (iou->shape[0] != m || iou->shape[1] != n) {
        yt_error("match_predictions: iou %s must be (GT %lld, predictions %lld)", yt_shape_str(iou, sb, sizeof sb),
                 (long long)m, (long long)n);
        goto done;
    }
    yt_tensor *ic = yt_contiguous((yt_tensor *)iou);
    if (!ic) goto done;
    int64_t shape[2] = {n, niou};
    out = yt_tensor_empty(YT_U8, 2, shape);
    if (out && yt_match_predictions_forward(pc, n, gc, m, yt_f32(ic), thr, niou, yt_u8(out)) < 0) {
        yt_tensor_release(out);
        out = NULL;
    }
    yt_tensor_release(ic);
done:
    free(pc);
    free(gc);
    return out;
}

/* ---- AP ---- */

/* numpy's pairwise summation of a contiguous double array (8 accumulators up to 128 elements, halves above). */
static double np_sum(const double *a, int64_t n)
{
    if (n < 8) {
        double s = -0.0;
        for (int64_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        for (int k = 0; k < 8; k++) r[k] = a[k];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++) r[k] += a[i + k];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_sum(a, n2) + np_sum(a + n2, n - n2);
}

/* numpy.linspace(0, 1, n) */
static void linspace01(double *x, int n)
{
    double step = 1.0 / (double)(n - 1);
    for (int k = 0; k < n; k++) x[k] = (double)k * step;
    x[n - 1] = 1.0;
}

double yt_interp(double x, const double *xp, const double *fp, int64_t n, double left, double right)
{
    if (n <= 0) return NAN;
    if (isnan(x)) return x;
    if (x < xp[0]) return left;
    if (x > xp[n - 1]) return right;
    /* largest j with xp[j] <= x */
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + ((hi - lo) >> 1);
        if (x >= xp[mid])
            lo = mid + 1;
        else
            hi = mid;
    }
    int64_t j = lo - 1;
    if (j >= n - 1) return fp[n - 1];
    if (xp[j] == x) return fp[j];
    double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    double r = slope * (x - xp[j]) + fp[j];
    if (isnan(r)) {
        r = slope * (x - xp[j + 1]) + fp[j + 1];
        if (isnan(r) && fp[j] == fp[j + 1]) r = fp[j];
    }
    return r;
}

double yt_compute_ap(const double *recall, const double *precision, int64_t n, double *mrec, double *mpre)
{
    mrec[0] = 0.0;
    mpre[0] = 1.0;
    for (int64_t i = 0; i < n; i++) {
        mrec[i + 1] = recall[i];
        mpre[i + 1] = precision[i];
    }
    mrec[n + 1] = 1.0;
    mpre[n + 1] = 0.0;
    /* precision envelope: running maximum from the right */
    for (int64_t i = n; i >= 0; i--)
        if (mpre[i + 1] > mpre[i] || isnan(mpre[i + 1])) mpre[i] = mpre[i + 1];
    double x[101], y[101], terms[100];
    linspace01(x, 101);
    for (int k = 0; k < 101; k++) y[k] = yt_interp(x[k], mrec, mpre, n + 2, mpre[0], mpre[n + 1]);
    for (int k = 0; k < 100; k++) terms[k] = (x[k + 1] - x[k]) * (y[k + 1] + y[k]) / 2.0;
    return np_sum(terms, 100);
}

void yt_ap_result_free(yt_ap_result *r)
{
    if (!r) return;
    free(r->ap_class_index);
    free(r->nt);
    free(r->tp);
    free(r->fp);
    free(r->p);
    free(r->r);
    free(r->f1);
    free(r->ap);
    free(r->x);
    free(r->p_curve);
    free(r->r_curve);
    free(r->f1_curve);
    free(r->prec_values);
    free(r->has_prec);
    memset(r, 0, sizeof *r);
}

typedef struct {
    float key;
    int64_t idx;
} conf_idx;

static int cmp_conf_desc(const void *pa, const void *pb)
{
    const conf_idx *a = pa, *b = pb;
    if (a->key > b->key) return -1;
    if (a->key < b->key) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

int yt_ap_per_class(const uint8_t *tp, int64_t n, int niou, const float *conf, const int64_t *pred_cls,
                    const int64_t *target_cls, int64_t nt, yt_ap_result *out)
{
    const int NP = YT_AP_CURVE_POINTS;
    const double eps = 1e-16;
    memset(out, 0, sizeof *out);
    if (n < 0 || nt < 0 || niou < 1)
        return yt_error("ap_per_class: bad sizes (n %lld, nt %lld, niou %d)", (long long)n, (long long)nt, niou);
    out->niou = niou;

    /* unique GT classes and their counts */
    int64_t *tc = malloc((size_t)(nt ? nt : 1) * sizeof *tc);
    conf_idx *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!tc || !order) {
        free(tc);
        free(order);
        return yt_error("ap_per_class: out of memory");
    }
    if (nt > 0) memcpy(tc, target_cls, (size_t)nt * sizeof *tc);
    if (nt > 1) qsort(tc, (size_t)nt, sizeof *tc, cmp_i64);
    int nc = 0;
    for (int64_t i = 0; i < nt; i++)
        if (i == 0 || tc[i] != tc[i - 1]) nc++;
    out->nc = nc;
    size_t nc1 = nc ? (size_t)nc : 1;
    out->ap_class_index = calloc(nc1, sizeof(int64_t));
    out->nt = calloc(nc1, sizeof(int64_t));
    out->tp = calloc(nc1, sizeof(double));
    out->fp = calloc(nc1, sizeof(double));
    out->p = calloc(nc1, sizeof(double));
    out->r = calloc(nc1, sizeof(double));
    out->f1 = calloc(nc1, sizeof(double));
    out->ap = calloc(nc1 * niou, sizeof(double));
    out->x = calloc(NP, sizeof(double));
    out->p_curve = calloc(nc1 * NP, sizeof(double));
    out->r_curve = calloc(nc1 * NP, sizeof(double));
    out->f1_curve = calloc(nc1 * NP, sizeof(double));
    out->prec_values = calloc(nc1 * NP, sizeof(double));
    out->has_prec = calloc(nc1, 1);
    size_t n1 = n ? (size_t)n : 1;
    double *xp = malloc(n1 * sizeof(double));
    double *recall = malloc(n1 * niou * sizeof(double));
    double *precision = malloc(n1 * niou * sizeof(double));
    double *rc = malloc(n1 * sizeof(double)), *pc = malloc(n1 * sizeof(double));
    double *mrec = malloc((n1 + 2) * sizeof(double)), *mpre = malloc((n1 + 2) * sizeof(double));
    int64_t *cnt = calloc((size_t)niou * 2, sizeof(int64_t));
    double *fmean = calloc(NP, sizeof(double)), *yp = malloc((NP + 100) * sizeof(double));
    int rcode = 0;
    if (!out->ap_class_index || !out->nt || !out->tp || !out->fp || !out->p || !out->r || !out->f1 || !out->ap ||
        !out->x || !out->p_curve || !out->r_curve || !out->f1_curve || !out->prec_values || !out->has_prec || !xp ||
        !recall || !precision || !rc || !pc || !mrec || !mpre || !cnt || !fmean || !yp) {
        rcode = yt_error("ap_per_class: out of memory (%lld predictions, %d classes)", (long long)n, nc);
        goto done;
    }
    {
        int k = -1;
        for (int64_t i = 0; i < nt; i++) {
            if (i == 0 || tc[i] != tc[i - 1]) out->ap_class_index[++k] = tc[i];
            out->nt[k]++;
        }
    }
    /* predictions sorted by descending confidence (stable) */
    for (int64_t i = 0; i < n; i++) {
        order[i].key = conf[i];
        order[i].idx = i;
    }
    if (n > 1) qsort(order, (size_t)n, sizeof *order, cmp_conf_desc);
    linspace01(out->x, NP);

    for (int ci = 0; ci < nc; ci++) {
        const int64_t c = out->ap_class_index[ci];
        const int64_t n_l = out->nt[ci];
        int64_t n_p = 0;
        memset(cnt, 0, (size_t)niou * 2 * sizeof *cnt); /* cnt[j] = cumulative TP, cnt[niou + j] = FP */
        for (int64_t s = 0; s < n; s++) {
            int64_t i = order[s].idx;
            if (pred_cls[i] != c) continue;
            xp[n_p] = -(double)conf[i];
            for (int j = 0; j < niou; j++) {
                if (tp[i * niou + j])
                    cnt[j]++;
                else
                    cnt[niou + j]++;
                double tpc = (double)cnt[j], fpc = (double)cnt[niou + j];
                recall[n_p * niou + j] = tpc / ((double)n_l + eps);
                precision[n_p * niou + j] = tpc / (tpc + fpc);
            }
            n_p++;
        }
        if (n_p == 0 || n_l == 0) continue;
        double *pcur = out->p_curve + (size_t)ci * NP, *rcur = out->r_curve + (size_t)ci * NP;
        for (int64_t k = 0; k < n_p; k++) {
            rc[k] = recall[k * niou];
            pc[k] = precision[k * niou];
        }
        for (int q = 0; q < NP; q++) {
            double xq = -out->x[q];
            rcur[q] = yt_interp(xq, xp, rc, n_p, 0.0, rc[n_p - 1]);
            pcur[q] = yt_interp(xq, xp, pc, n_p, 1.0, pc[n_p - 1]);
        }
        for (int j = 0; j < niou; j++) {
            for (int64_t k = 0; k < n_p; k++) {
                rc[k] = recall[k * niou + j];
                pc[k] = precision[k * niou + j];
            }
            out->ap[(size_t)ci * niou + j] = yt_compute_ap(rc, pc, n_p, mrec, mpre);
            if (j == 0) {
                double *pv = out->prec_values + (size_t)ci * NP;
                for (int q = 0; q < NP; q++) pv[q] = yt_interp(out->x[q], mrec, mpre, n_p + 2, mpre[0], mpre[n_p + 1]);
                out->has_prec[ci] = 1;
            }
        }
    }
    /* F1 curves, their class mean, the box-filtered (width 101, edge-padded) mean and its argmax */
    for (int ci = 0; ci < nc; ci++)
        for (int q = 0; q < NP; q++) {
            size_t e = (size_t)ci * NP + q;
            double p = out->p_curve[e], r = out->r_curve[e];
            out->f1_curve[e] = 2.0 * p * r / (p + r + eps);
            fmean[q] += out->f1_curve[e];
        }
    out->best_index = 0;
    if (nc > 0) {
        for (int q = 0; q < NP; q++) fmean[q] /= (double)nc;
        for (int k = 0; k < 50; k++) {
            yp[k] = fmean[0];
            yp[NP + 50 + k] = fmean[NP - 1];
        }
        memcpy(yp + 50, fmean, NP * sizeof(double));
        const double w = 1.0 / 101.0;
        double best = -INFINITY;
        for (int q = 0; q < NP; q++) {
            double s = 0.0;
            for (int k = 0; k < 101; k++) s += yp[q + k] * w;
            if (s > best) {
                best = s;
                out->best_index = q;
            }
        }
    }
    for (int ci = 0; ci < nc; ci++) {
        size_t e = (size_t)ci * NP + out->best_index;
        double p = out->p_curve[e], r = out->r_curve[e];
        out->p[ci] = p;
        out->r[ci] = r;
        out->f1[ci] = out->f1_curve[e];
        out->tp[ci] = nearbyint(r * (double)out->nt[ci]);
        out->fp[ci] = nearbyint(out->tp[ci] / (p + eps) - out->tp[ci]);
    }
done:
    free(tc);
    free(order);
    free(xp);
    free(recall);
    free(precision);
    free(rc);
    free(pc);
    free(mrec);
    free(mpre);
    free(cnt);
    free(fmean);
    free(yp);
    if (rcode) yt_ap_result_free(out);
    return rcode;
}

/* ---- confusion matrix ---- */

int yt_confusion_matrix_update(double *matrix, int nc, const float *dets, int64_t nd, const float *gt_boxes,
                               const int64_t *gt_cls, int64_t ng, float conf_thres, float iou_thres)
{
    const int W = nc + 1;
    for (int64_t g = 0; g < ng; g++)
        if (gt_cls[g] < 0 || gt_cls[g] >= nc)
            return yt_error("confusion matrix: GT class %lld outside 0..%d", (long long)gt_cls[g], nc - 1);
    if (dets)
        for (int64_t d = 0; d < nd; d++) {
            int64_t c = (int64_t)dets[6 * d + 5];
            if (dets[6 * d + 4] > conf_thres && (c < 0 || c >= nc))
                return yt_error("confusion matrix: predicted class %lld outside 0..%d", (long long)c, nc - 1);
        }
    if (ng == 0) {
        if (dets)
            for (int64_t d = 0; d < nd; d++)
                if (dets[6 * d + 4] > conf_thres) matrix[(int64_t)dets[6 * d + 5] * W + nc] += 1; /* FP */
        return 0;
    }
    if (!dets) {
        for (int64_t g = 0; g < ng; g++) matrix[nc * W + gt_cls[g]] += 1; /* FN (background) */
        return 0;
    }
    /* detections above conf */
    int64_t nk = 0;
    int64_t *keep = malloc((size_t)(nd ? nd : 1) * sizeof *keep);
    float *kb = malloc((size_t)(nd ? nd : 1) * 4 * sizeof *kb);
    float *iou = malloc((size_t)ng * (nd ? nd : 1) * sizeof *iou);
    int64_t *best_g = malloc((size_t)(nd ? nd : 1) * sizeof *best_g);
    int64_t *match_d = malloc((size_t)ng * sizeof *match_d);
    if (!keep || !kb || !iou || !best_g || !match_d) {
        free(keep);
        free(kb);
        free(iou);
        free(best_g);
        free(match_d);
        return yt_error("confusion matrix: out of memory");
    }
    for (int64_t d = 0; d < nd; d++)
        if (dets[6 * d + 4] > conf_thres) {
            memcpy(kb + 4 * nk, dets + 6 * d, 4 * sizeof(float));
            keep[nk++] = d;
        }
    yt_box_iou_forward(gt_boxes, ng, kb, nk, iou);
    /* each detection keeps its highest-IoU GT among pairs with IoU > iou_thres (ties: the later GT) */
    int64_t n_pairs = 0;
    for (int64_t d = 0; d < nk; d++) {
        best_g[d] = -1;
        float bv = 0.0f;
        for (int64_t g = 0; g < ng; g++) {
            float v = iou[g * nk + d];
            if (!(v > iou_thres)) continue;
            n_pairs++;
            if (best_g[d] < 0 || v >= bv) {
                best_g[d] = g;
                bv = v;
            }
        }
    }
    /* then each GT keeps its highest-IoU detection among those (ties: the later detection) */
    for (int64_t g = 0; g < ng; g++) match_d[g] = -1;
    for (int64_t d = 0; d < nk; d++) {
        int64_t g = best_g[d];
        if (g < 0) continue;
        if (match_d[g] < 0 || iou[g * nk + d] >= iou[g * nk + match_d[g]]) match_d[g] = d;
    }
    for (int64_t g = 0; g < ng; g++) {
        if (match_d[g] >= 0) {
            int64_t dc = (int64_t)dets[6 * keep[match_d[g]] + 5];
            matrix[dc * W + gt_cls[g]] += 1; /* correct class or confusion */
        } else {
            matrix[nc * W + gt_cls[g]] += 1; /* missed: background */
        }
    }
    /* Unmatched detections count as background predictions only when some pair matched at all (Ultralytics
     * 8.2.100 skips this step when no pair passed the IoU threshold; kept for parity). */
    if (n_pairs > 0) {
        for (int64_t d = 0; d < nk; d++) {
            int matched = 0;
            for (int64_t g = 0; g < ng && !matched; g++) matched = match_d[g] == d;
            if (!matched) matrix[(int64_t)dets[6 * keep[d] + 5] * W + nc] += 1;
        }
    }
    free(keep);
    free(kb);
    free(iou);
    free(best_g);
    free(match_d);
    return 0;
}
