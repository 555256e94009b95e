/* Non-maximum suppression of Detect outputs (behaviour of Ultralytics 8.2.100, see parity README item 11),
 * with two deliberate differences: the input is never modified, and class-aware suppression compares boxes of
 * the same class exactly (no float32 class-offset trick). There is no time limit.
 *
 * prediction: (B, 4 + nc, A) F32, rows cx, cy, w, h (pixels) then nc class scores; may be a strided view.
 * Output per image: (n, 6) F32 rows x1, y1, x2, y2, conf, cls, in descending conf (n <= max_det). */
#ifndef YT_METRICS_NMS_H
#define YT_METRICS_NMS_H

#include <stdint.h>

#include "core/tensor.h"

typedef struct {
    float conf_thres;       /* candidates need score > conf_thres (strict) */
    double iou_thres;       /* a box is suppressed by a kept one when IoU > iou_thres (strict) */
    int max_det;            /* boxes kept per image */
    int max_nms;            /* candidates kept (best by score) before suppression */
    int multi_label;        /* every class above conf_thres is a candidate (else only the best class) */
    int agnostic;           /* suppress across classes */
    const int64_t *classes; /* keep only these classes (NULL = all) */
    int n_classes;
} yt_nms_opts;

/* The confidence a prediction needs by default (Ultralytics' predict and plots default); validation passes its own. */
#define YT_PREDICT_CONF 0.25f

/* conf YT_PREDICT_CONF, iou 0.45, max_det 300, max_nms 30000, best class only, class-aware, all classes. */
void yt_nms_opts_default(yt_nms_opts *o);

/* Greedy suppression of n boxes already sorted by descending score.
 * boxes: (n, 4) x1, y1, x2, y2; cls: (n) class ids (ignored when agnostic).
 * Writes the indices kept (ascending, i.e. descending score) to keep[] and returns their count (<= max_keep).
 * IoU is computed in float32 the way torchvision's CPU kernel does. */
int yt_nms_sorted_forward(const float *boxes, const int64_t *cls, int n, double iou_thres, int agnostic, int max_keep,
                          int *keep);

/* Runs NMS on every image of prediction. out[b] receives a new (n_b, 6) F32 tensor for b in 0..B-1 (the caller
 * passes an array of B pointers and releases each). Returns 0, or -1 with yt_error set (then out[] holds no
 * references). */
int yt_nms(const yt_tensor *prediction, const yt_nms_opts *opts, yt_tensor **out);

#endif
