/* Nearest-neighbour upsampling of NCHW maps by an integer scale factor (nn.Upsample(scale_factor=s,
 * mode="nearest")): y[n, c, i, j] = x[n, c, i / s, j / s]. */
#ifndef YT_OPS_RESIZE_H
#define YT_OPS_RESIZE_H

#include "core/tensor.h"

/* x: (NC, H, W)  y: (NC, H*scale, W*scale) */
void yt_upsample_nearest_forward(const float *x, float *y, size_t nc, int h, int w, int scale);
/* gx (NC, H, W) += sum of gy over each scale x scale block */
void yt_upsample_nearest_backward(const float *gy, float *gx, size_t nc, int h, int w, int scale);

/* Tensor-level op for (N, C, H, W) F32 input and scale >= 1; records autograd for x. A channels-last x that needs
 * no gradient gives a channels-last result (ops/shape_ops.h). */
yt_tensor *yt_upsample_nearest(yt_tensor *x, int scale);

#endif
