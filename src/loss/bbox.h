/* Box geometry for the detection loss: xywh <-> xyxy, distances <-> boxes, anchors, IoU / GIoU / DIoU / CIoU
 * with analytic gradients.
 *
 * Conventions (Ultralytics' bbox_iou): boxes are x1,y1,x2,y2 (or cx,cy,w,h with xywh); eps = 1e-7 is added to
 * both heights (not the widths), to the union, to the squared enclosing diagonal (DIoU/CIoU) and to the enclosing
 * area (GIoU). The CIoU aspect term is v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2 and its trade-off coefficient
 * alpha = v / (v - iou + 1 + eps) is a constant for the gradient (computed under no_grad in the reference).
 * The forward is evaluated in float32 in the reference's operation order (the assigner's ranking depends on it);
 * gradients are evaluated in double. At ties of min/max the gradient is split in halves (PyTorch's rule). */
#ifndef YT_LOSS_BBOX_H
#define YT_LOSS_BBOX_H

#include <stdint.h>

#include "core/tensor.h"

#define YT_BBOX_EPS 1e-7f

typedef enum { YT_IOU = 0, YT_GIOU, YT_DIOU, YT_CIOU } yt_iou_kind;

/* in, out: n x 4 (in == out allowed) */
void yt_xywh2xyxy(const float *in, float *out, int64_t n);
void yt_xyxy2xywh(const float *in, float *out, int64_t n);

/* dist: n x 4 (left, top, right, bottom), anchors: n x 2 (x, y), out: n x 4 xyxy (or cx,cy,w,h with xywh) */
void yt_dist2bbox(const float *dist, const float *anchors, float *out, int64_t n, int xywh);
/* bbox: n x 4 xyxy -> dist n x 4 (l,t,r,b) = (ax-x1, ay-y1, x2-ax, y2-ay) clamped to [0, max_dist - 0.01]
 * (max_dist = reg_max - 1 = 15 for YOLOv8, so the clamp is [0, 14.99]). */
void yt_bbox2dist(const float *anchors, const float *bbox, float *dist, int64_t n, float max_dist);

/* Anchor points of nl levels: level l has hw[2l] x hw[2l+1] cells and stride strides[l]. points: A x 2 in grid
 * units ((x + offset, y + offset), row-major per level, levels in order), stride_out: A. Returns A. Either output
 * may be NULL (to count only). */
int64_t yt_make_anchors_raw(int nl, const int64_t *hw, const float *strides, float offset, float *points,
                            float *stride_out);

/* IoU of one pair (kind picks the variant), float32, reference operation order. */
float yt_bbox_iou_one(const float b1[4], const float b2[4], yt_iou_kind kind);
/* The same value (returned, as computed by yt_bbox_iou_one) and its gradient w.r.t. box 1 (written to g1,
 * x1,y1,x2,y2). The variants are symmetric in their two boxes, so d/d(box 2) = yt_bbox_iou_grad(b2, b1, ...). */
float yt_bbox_iou_grad(const float b1[4], const float b2[4], yt_iou_kind kind, double g1[4]);

/* Raw kernels over n pairs: out[i] = iou(a_i, b_i); with xywh the boxes are cx,cy,w,h. */
void yt_bbox_iou_forward(const float *a, const float *b, float *out, int64_t n, yt_iou_kind kind, int xywh);
/* ga += gout * d out/da, gb += gout * d out/db (either may be NULL). */
void yt_bbox_iou_backward(const float *a, const float *b, const float *gout, float *ga, float *gb, int64_t n,
                          yt_iou_kind kind, int xywh);

/* Tensor level: a, b: [..., 4] F32 with the same number of boxes (b may also hold a single box, broadcast).
 * Returns [..., 1] (a's leading shape), differentiable w.r.t. a and b. */
yt_tensor *yt_bbox_iou(yt_tensor *a, yt_tensor *b, yt_iou_kind kind, int xywh);

/* Tensor level anchors: shapes hw (2 per level). Returns 0/-1; *points [A,2], *strides [A,1] F32. */
int yt_make_anchors(int nl, const int64_t *hw, const float *strides, float offset, yt_tensor **points,
                    yt_tensor **stride_tensor);

#endif
