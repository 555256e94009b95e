/* softmax and log_softmax of F32 tensors over one dimension, with autograd. Numerically stable (the maximum
 * is subtracted; the normaliser is summed in double). Dimensions are 0-based; negative counts from the end. */
#ifndef YT_OPS_SOFTMAX_H
#define YT_OPS_SOFTMAX_H

#include <stdint.h>

#include "core/tensor.h"

/* x, y: (outer, n, inner); the softmax runs along n. */
void yt_softmax_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner);
/* gx += y * (gy - sum_n(gy * y)) */
void yt_softmax_backward(const float *y, const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner);
void yt_log_softmax_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner);
/* gx += gy - exp(y) * sum_n(gy) */
void yt_log_softmax_backward(const float *y, const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner);

yt_tensor *yt_softmax(yt_tensor *x, int dim);
yt_tensor *yt_log_softmax(yt_tensor *x, int dim);

#endif
