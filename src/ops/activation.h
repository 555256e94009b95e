/* Elementwise activations: SiLU, sigmoid. */
#ifndef YT_OPS_ACTIVATION_H
#define YT_OPS_ACTIVATION_H

#include <stddef.h>

#include "core/tensor.h"

/* x, y: n floats. SiLU's arithmetic (e^x included) is ops/simd.h's yt_v_silu / yt_v_silu_grad, shared with the
 * fused batch_norm_silu of ops/batchnorm.h, which must give the same floats as batch_norm followed by silu. */
void yt_silu_forward(const float *x, float *y, size_t n);
void yt_silu_backward(const float *x, const float *gy, float *gx, size_t n); /* gx += gy * silu'(x) */
void yt_sigmoid_forward(const float *x, float *y, size_t n);
void yt_sigmoid_backward(const float *y, const float *gy, float *gx, size_t n); /* gx += gy * y(1-y) */

yt_tensor *yt_silu(yt_tensor *x);
yt_tensor *yt_sigmoid(yt_tensor *x);

#endif
