/* Elementwise activations: SiLU, sigmoid. */
#ifndef YT_OPS_ACTIVATION_H
#define YT_OPS_ACTIVATION_H

#include <stddef.h>

#include "core/tensor.h"

/* x, y: n floats */
void yt_silu_forward(const float *x, float *y, size_t n);
void yt_silu_backward(const float *x, const float *gy, float *gx, size_t n); /* gx += gy * silu'(x) */
void yt_sigmoid_forward(const float *x, float *y, size_t n);
void yt_sigmoid_backward(const float *y, const float *gy, float *gx, size_t n); /* gx += gy * y(1-y) */

yt_tensor *yt_silu(yt_tensor *x);
yt_tensor *yt_sigmoid(yt_tensor *x);

#endif
