/* The Detect head's inference decode in one pass (Detect:inference's chain of ops, for grad mode off).
 *
 * Input: the raw levels, (B, 4 * reg_max + nc, H_l, W_l) each (any strides: the fused path's are channels-last);
 * channels 0 .. 4 * reg_max - 1 are the box distribution logits, side-major (left, top, right, bottom; reg_max
 * bins each), the rest the class logits. Anchor order: level 0 first, row-major inside a level; anchor point
 * (x + 0.5, y + 0.5) in grid units of its level.
 * Per anchor and side: softmax over the bins, expectation with the DFL weights (0 .. reg_max - 1 in YOLOv8) ->
 * distance d in grid units; box x1 = ax - d_l, y1 = ay - d_t, x2 = ax + d_r, y2 = ay + d_b; output cx, cy =
 * (x1 + x2) * 0.5, (y1 + y2) * 0.5, w, h = x2 - x1, y2 - y1, each times the level's stride; then the sigmoid of
 * each class logit. Output (B, 4 + nc, A), contiguous: what Detect:inference returns. */
#ifndef YT_OPS_DETECT_DECODE_H
#define YT_OPS_DETECT_DECODE_H

#include <stdint.h>

#include "core/tensor.h"

#define YT_DECODE_MAX_LEVELS 8
#define YT_DECODE_MAX_BINS 256

/* One level for the raw kernel: its data and strides (elements) over (B, C, H, W), its size and stride (pixels). */
typedef struct {
    const float *data;
    int64_t st[4];
    int H, W;
    float stride;
} yt_detect_level;

/* y: (B, 4 + nc, A) with A = sum of H * W over the levels; dfl: reg_max weights. -1 when out of memory (for the
 * per-thread buffers), else 0. */
int yt_detect_decode_forward(int B, int nl, const yt_detect_level *levels, int reg_max, int nc, const float *dfl,
                             float *y);

/* The exponential the decode uses (vectorisable; relative error < 2e-7 against expf on [-87, 88]), for tests. */
float yt_detect_exp(float x);

/* levels: nl tensors (B, 4 * reg_max + nc, H_l, W_l) F32; strides: nl values; dfl: the DFL weights (reg_max
 * values in any shape: the (1, reg_max, 1, 1) conv weight) or NULL for 0 .. reg_max - 1 with reg_max = 16.
 * Inference only (no autograd: an input that needs a gradient is an error). */
yt_tensor *yt_detect_decode(int nl, yt_tensor *const *levels, const double *strides, int nc, const yt_tensor *dfl);

#endif
