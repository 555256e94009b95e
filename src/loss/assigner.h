/* Task-aligned assigner (TOOD / YOLOv8): which anchors learn which ground-truth box.
 *
 * Per image, for GT m and anchor a:
 *   inside(m,a)  = the anchor point lies strictly inside the GT box (all four distances > eps)
 *   overlap(m,a) = max(CIoU(gt_m, pred_a), 0)                       where inside and mask_gt, else 0
 *   metric(m,a)  = score(a, class_m)^alpha * overlap(m,a)^beta       (float32, as the reference)
 * Each real GT takes the top-k anchors by metric over all anchors (ties resolved like PyTorch's CPU topk, see
 * assigner.c), intersected with inside. An anchor picked by several GTs goes to the GT with the largest overlap
 * (first index on ties). Target score of a foreground anchor = metric * (max overlap of its GT's positives) /
 * (max metric of its GT's positives + eps), on the assigned GT's class. Background anchors get GT 0's label and
 * box, score 0, gt index 0.
 * Defaults: topk 10, alpha 0.5, beta 6, eps 1e-9. Boxes are xyxy in pixels (predictions detached). */
#ifndef YT_LOSS_ASSIGNER_H
#define YT_LOSS_ASSIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct {
    int topk;        /* 10 */
    int num_classes; /* 80; the background label when there are no GT at all */
    float alpha;     /* 0.5 */
    float beta;      /* 6.0 */
    float eps;       /* 1e-9 */
} yt_tal_cfg;

void yt_tal_cfg_default(yt_tal_cfg *cfg, int num_classes);

/* Scratch floats needed by yt_tal_assign_image for A anchors and M GT rows. The first M*A floats of the
 * workspace are the input gt_scores (see below); the rest is scratch. */
size_t yt_tal_workspace_floats(int64_t A, int M, int topk);

/* One image (raw arrays).
 *   work:       yt_tal_workspace_floats(A, M, topk) floats; work[m*A + a] must hold the predicted probability of
 *               GT m's class at anchor a (only read where mask_gt[m] > 0)
 *   pd_bboxes:  A x 4 xyxy px        anc: A x 2 px
 *   gt_labels:  M (class ids as float)  gt_bboxes: M x 4 xyxy px  mask_gt: M (> 0 = real GT)
 * Outputs (A each): target_labels, target_bboxes (A x 4, px), target_norm (the target score of the assigned class,
 * 0 on background), fg (0/1), target_gt_idx. M may be 0 (everything background, label num_classes, box 0). */
void yt_tal_assign_image(float *work, const float *pd_bboxes, const float *anc, int64_t A, const float *gt_labels,
                         const float *gt_bboxes, const float *mask_gt, int M, const yt_tal_cfg *cfg,
                         int64_t *target_labels, float *target_bboxes, float *target_norm, uint8_t *fg,
                         int64_t *target_gt_idx);

typedef struct {
    yt_tensor *target_labels; /* I64 [B,A] */
    yt_tensor *target_bboxes; /* F32 [B,A,4] px */
    yt_tensor *target_scores; /* F32 [B,A,C] */
    yt_tensor *fg_mask;       /* U8  [B,A] */
    yt_tensor *target_gt_idx; /* I64 [B,A] */
} yt_tal_result;

/* Tensor level (no autograd: every input is treated as detached).
 *   pd_scores [B,A,C] probabilities, pd_bboxes [B,A,4], anc_points [A,2], gt_labels [B,M,1], gt_bboxes [B,M,4],
 *   mask_gt [B,M,1], all F32. Parallel over the batch. On error *out is left empty. */
int yt_task_aligned_assign(const yt_tensor *pd_scores, const yt_tensor *pd_bboxes, const yt_tensor *anc_points,
                           const yt_tensor *gt_labels, const yt_tensor *gt_bboxes, const yt_tensor *mask_gt,
                           const yt_tal_cfg *cfg, yt_tal_result *out);
void yt_tal_result_free(yt_tal_result *r);

#endif
