/* Detection metrics as Ultralytics 8.2.100 computes them (parity README items 12 and 13): box IoU, matching of
 * predictions to ground truth at several IoU thresholds, AP per class (101-point interpolation, trapezoid rule),
 * P/R/F1 curves on a 1000-point confidence grid, P and R at the maximum of the smoothed mean F1, and the
 * confusion matrix. Everything after the IoU is computed in double precision (as numpy does). */
#ifndef YT_METRICS_AP_H
#define YT_METRICS_AP_H

#include <stdint.h>

#include "core/tensor.h"

#define YT_AP_CURVE_POINTS 1000 /* confidence grid of the P/R/F1 curves */
#define YT_AP_NIOU 10           /* 0.5:0.05:0.95 */

/* The 10 IoU thresholds as float32 values (0.5, 0.55, ... 0.95), like torch.linspace(0.5, 0.95, 10). */
void yt_iou_thresholds(float *iouv);

/* a: (n, 4) xyxy, b: (m, 4) xyxy -> out (n, m) = inter / (area_a + area_b - inter + 1e-7), float32. */
void yt_box_iou_forward(const float *a, int64_t n, const float *b, int64_t m, float *out);
/* Tensor form: a (N,4), b (M,4) F32 -> new (N,M) F32. */
yt_tensor *yt_box_iou(const yt_tensor *a, const yt_tensor *b);

/* Matching of n predictions to m GT boxes at each of niou thresholds.
 * iou: (m, n) IoU of GT rows against prediction columns. Per threshold: the pairs with the same class and
 * IoU >= threshold; each prediction keeps its highest-IoU GT; then each GT keeps the pair with the lowest
 * prediction index. correct: (n, niou), 1 = true positive at that threshold. Returns 0 or -1 (out of memory). */
int yt_match_predictions_forward(const int64_t *pred_cls, int64_t n, const int64_t *gt_cls, int64_t m, const float *iou,
                                 const float *iouv, int niou, uint8_t *correct);
/* Tensor form: pred_cls (N) and gt_cls (M) or (M,1) of any dtype (class ids), iou (M,N) F32, iouv (K) F32 or
 * NULL (the 10 default thresholds) -> new (N,K) U8. */
yt_tensor *yt_match_predictions(const yt_tensor *pred_cls, const yt_tensor *gt_cls, const yt_tensor *iou,
                                const yt_tensor *iouv);

/* Result of yt_ap_per_class; arrays are malloc'ed, free with yt_ap_result_free. Classes are those that have
 * GT (sorted ascending); "nc" below is their count. */
typedef struct {
    int nc, niou;
    int64_t *ap_class_index;              /* (nc) class ids */
    int64_t *nt;                          /* (nc) GT count per class */
    double *tp, *fp;                      /* (nc) round(r * nt), round(tp / (p + eps) - tp) at best_index */
    double *p, *r, *f1;                   /* (nc) at best_index */
    double *ap;                           /* (nc, niou) */
    double *x;                            /* (1000) confidence grid 0..1 */
    double *p_curve, *r_curve, *f1_curve; /* (nc, 1000) over confidence x */
    double *prec_values;                  /* (nc, 1000) precision envelope at recall x for IoU 0.5 (PR plot) */
    uint8_t *has_prec;                    /* (nc) 1 when the class had predictions (rows of prec_values computed) */
    int best_index;                       /* argmax of the smoothed mean F1 */
} yt_ap_result;

/* tp: (n, niou) 0/1; conf, pred_cls: (n); target_cls: (nt). Returns 0 or -1 with yt_error set. */
int yt_ap_per_class(const uint8_t *tp, int64_t n, int niou, const float *conf, const int64_t *pred_cls,
                    const int64_t *target_cls, int64_t nt, yt_ap_result *out);
void yt_ap_result_free(yt_ap_result *r);

/* AP of one recall/precision curve (n points): envelope + 101-point interpolation + trapezoid rule.
 * mrec, mpre: scratch of n + 2 doubles (filled with the padded recall and the precision envelope). */
double yt_compute_ap(const double *recall, const double *precision, int64_t n, double *mrec, double *mpre);

/* numpy.interp semantics for non-decreasing xp (largest j with xp[j] <= x; exact hits return fp[j]). */
double yt_interp(double x, const double *xp, const double *fp, int64_t n, double left, double right);

/* Confusion matrix update (Ultralytics' detection ConfusionMatrix.process_batch): matrix (nc+1, nc+1) doubles,
 * row = predicted class, column = true class, index nc = background.
 * dets: (nd, 6) x1 y1 x2 y2 conf cls or NULL (no predictions); gt_boxes (ng, 4) xyxy; gt_cls (ng).
 * Detections with conf <= conf_thres are ignored; pairs need IoU > iou_thres (class agnostic); each prediction
 * keeps its best GT, then each GT its best prediction. Returns 0 or -1 (out of memory / bad class id). */
int yt_confusion_matrix_update(double *matrix, int nc, const float *dets, int64_t nd, const float *gt_boxes,
                               const int64_t *gt_cls, int64_t ng, float conf_thres, float iou_thres);

#endif
