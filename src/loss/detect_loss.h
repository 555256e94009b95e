/* The YOLOv8 detection loss (Ultralytics v8DetectionLoss) with its analytic gradient.
 *
 * Inputs: the raw Detect outputs of nl levels, preds[l] = [B, 4*reg_max + nc, H_l, W_l] (channels: box
 * distribution logits side-major l,t,r,b x reg_max bins, then nc class logits), and the batch targets
 * (batch_idx [N], cls [N,1], bboxes [N,4] normalised cx,cy,w,h).
 *
 *   anchors      (x+0.5, y+0.5) per cell, levels in order; imgsz = (H_0, W_0) * strides[0]
 *   pred boxes   per side softmax over the bins, expectation (0..reg_max-1) -> l,t,r,b grid units -> xyxy
 *   targets      boxes * (W,H,W,H) -> xyxy px, padded per image to the largest GT count; rows whose coordinate
 *                sum is 0 (padding), or whose width or height is <= 0, are not GTs (mask_gt = 0)
 *   assignment   task-aligned assigner on sigmoid(class logits) and pred boxes * stride (detached)
 *   tss          max(sum of target scores, 1)
 *   cls          sum over all anchors x classes of BCE-with-logits(logit, target score) * cls_pw[c] / tss
 *   box          sum over foreground anchors of (1 - CIoU(pred, target/stride)) * w / tss, w = sum of the
 *                anchor's target scores
 *   dfl          sum over foreground anchors of w * mean over the 4 sides of [CE(logits, floor t) (floor t + 1 - t)
 *                + CE(logits, floor t + 1) (t - floor t)] / tss, t = bbox2dist clamped to [0, reg_max - 1.01]
 *   loss_items   [box * gain_box, cls * gain_cls, dfl * gain_dfl]      loss = B * sum(loss_items)
 * The gradient w.r.t. every preds[l] is computed with the forward (CIoU's alpha is a constant, the assignment and
 * tss carry no gradient) and applied by the recorded autograd node. */
#ifndef YT_LOSS_DETECT_LOSS_H
#define YT_LOSS_DETECT_LOSS_H

#include "core/tensor.h"
#include "loss/assigner.h"

#define YT_DETECT_MAX_LEVELS 8

typedef struct {
    int nc;                              /* classes (80) */
    int reg_max;                         /* DFL bins (16) */
    int nl;                              /* levels (3) */
    float strides[YT_DETECT_MAX_LEVELS]; /* 8, 16, 32 */
    float box, cls, dfl;                 /* gains 7.5, 0.5, 1.5 */
    const float *cls_pw;                 /* NULL or nc per-class weights of the BCE term (borrowed) */
    int topk;                            /* assigner: 10 */
    float alpha, beta;                   /* assigner: 0.5, 6.0 */
    /* NULL (default): run the assigner. Otherwise reuse this assignment (e.g. extras->assign of an earlier call
     * on the same shapes: fg_mask, target_labels, target_bboxes px, target_scores, target_gt_idx) -- the loss is
     * then a smooth function of preds, which is what finite-difference checks of the gradient need. */
    const yt_tal_result *fixed_assign;
    /* Data-parallel training: turns this process's sum of target scores into the sum over all processes, so
     * every rank normalises by the global batch's sum exactly as one process with the whole batch would
     * (NULL: local). Returns the reduced sum, or a negative value on failure. */
    double (*reduce_score_sum)(double local_sum, void *userdata);
    void *reduce_userdata;
} yt_detect_loss_cfg;

void yt_detect_loss_cfg_default(yt_detect_loss_cfg *cfg, int nc);

typedef struct {
    const yt_tensor *batch_idx; /* F32 [N] (or I64 [N]): image index of each box */
    const yt_tensor *cls;       /* F32 [N,1] (or [N]; I64 accepted) */
    const yt_tensor *bboxes;    /* F32 [N,4] normalised cx, cy, w, h */
} yt_detect_targets;

/* What the loss computed on the way, for inspection and tests. Every tensor is owned (free with
 * yt_detect_loss_extras_free). */
typedef struct {
    yt_tensor *anchor_points; /* [A,2] grid units */
    yt_tensor *stride_tensor; /* [A,1] */
    yt_tensor *pd_bboxes;     /* [B,A,4] predicted xyxy px (assigner input) */
    yt_tensor *pd_scores;     /* [B,A,nc] sigmoid of the class logits (assigner input) */
    yt_tensor *gt_labels;     /* [B,M,1] */
    yt_tensor *gt_bboxes;     /* [B,M,4] xyxy px */
    yt_tensor *mask_gt;       /* [B,M,1] */
    yt_tal_result assign;     /* target_labels, target_bboxes (px), target_scores, fg_mask, target_gt_idx */
    yt_tensor *grad_preds[YT_DETECT_MAX_LEVELS]; /* d(loss)/d(preds[l]) */
    float target_scores_sum;
    float loss_raw[3]; /* box, cls, dfl before the gains */
    int num_fg;
    int num_gt;
} yt_detect_loss_extras;

void yt_detect_loss_extras_free(yt_detect_loss_extras *e);

/* Computes the loss. *loss_out: new 0-d F32 tensor = B * sum(loss_items), recorded on the autograd tape as a
 * function of preds when grad mode is on and a pred requires a gradient. loss_items (nullable): [box, cls, dfl]
 * after the gains. extras (nullable): filled on success. Returns 0, or -1 with yt_error (NaN/Inf in preds or
 * targets, shape mismatches, out-of-range batch_idx/cls). */
int yt_detect_loss(yt_tensor *const *preds, const yt_detect_targets *targets, const yt_detect_loss_cfg *cfg,
                   yt_tensor **loss_out, float loss_items[3], yt_detect_loss_extras *extras);

/* DFL loss pieces (tensor level, differentiable w.r.t. pred_dist):
 * pred_dist [N*4, R] (or [N,4,R]) logits, target [N,4] distances in grid units (clamped to [0, R - 1.01]).
 * Returns [N,1]: per box the mean over its 4 sides of CE(floor t) (floor t + 1 - t) + CE(floor t + 1)(t - floor t). */
yt_tensor *yt_dfl_loss(yt_tensor *pred_dist, yt_tensor *target);

/* BCE with logits, sum reduction: sum_i w_i [max(x,0) - x t + log(1 + exp(-|x|))]. weight: NULL, the same
 * number of elements as pred, or one entry per element of pred's last dimension. Returns a 0-d tensor,
 * differentiable w.r.t. pred and target. */
yt_tensor *yt_bce_with_logits(yt_tensor *pred, yt_tensor *target, yt_tensor *weight);

#endif
