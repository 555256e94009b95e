/* Elementwise activations: SiLU, sigmoid. */
#ifndef YT_OPS_ACTIVATION_H
#define YT_OPS_ACTIVATION_H

#include <math.h>
#include <stddef.h>

#include "core/tensor.h"

/* One element of SiLU and of its gradient: the arithmetic every op that applies SiLU shares (the fused
 * batch_norm_silu of ops/batchnorm.h must give the same floats as batch_norm followed by silu). */
static inline float yt_silu1(float x) { return x / (1.0f + expf(-x)); }
/* gy * silu'(x), silu'(x) = s(x) * (1 + x * (1 - s(x))) */
static inline float yt_silu_grad1(float x, float gy)
{
    float s = 1.0f / (1.0f + expf(-x));
    return gy * s * (1.0f + x * (1.0f - s));
}

/* x, y: n floats */
void yt_silu_forward(const float *x, float *y, size_t n);
void yt_silu_backward(const float *x, const float *gy, float *gx, size_t n); /* gx += gy * silu'(x) */
void yt_sigmoid_forward(const float *x, float *y, size_t n);
void yt_sigmoid_backward(const float *y, const float *gy, float *gx, size_t n); /* gx += gy * y(1-y) */

yt_tensor *yt_silu(yt_tensor *x);
yt_tensor *yt_sigmoid(yt_tensor *x);

#endif
