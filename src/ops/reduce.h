/* Reductions of F32 tensors with autograd: sum / mean (over everything or one dimension), max / min (over
 * everything: gradient to the first extreme element; over a dimension: values + I64 indices), argmax / argmin.
 * Sums use double accumulators. Dimensions are 0-based; negative counts from the end (-1 = last). */
#ifndef YT_OPS_REDUCE_H
#define YT_OPS_REDUCE_H

#include <stdint.h>

#include "core/tensor.h"

/* Raw kernels on x viewed as (outer, n, inner), reducing the middle dimension into y: (outer, inner). */
void yt_sum_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, double scale);
/* gx(o, k, i) += gy(o, i) * scale */
void yt_sum_backward(const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner, double scale);
/* idx(o, i) = index of the first max (is_min: min) along n; NaN counts as the extreme (it propagates).
 * y may be NULL. n must be > 0. */
void yt_maxmin_forward(const float *x, float *y, int64_t *idx, int64_t outer, int64_t n, int64_t inner, int is_min);
/* gx(o, idx(o,i), i) += gy(o, i) */
void yt_maxmin_backward(const int64_t *idx, const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner);

/* Full reductions: 0-d results. */
yt_tensor *yt_sum(yt_tensor *x);
yt_tensor *yt_mean(yt_tensor *x);
yt_tensor *yt_max(yt_tensor *x);
yt_tensor *yt_min(yt_tensor *x);

/* Over one dimension; keepdim keeps it with size 1. */
yt_tensor *yt_sum_dim(yt_tensor *x, int dim, int keepdim);
yt_tensor *yt_mean_dim(yt_tensor *x, int dim, int keepdim);
/* Values (differentiable); *indices (if not NULL) receives a new I64 tensor of 0-based positions. */
yt_tensor *yt_max_dim(yt_tensor *x, int dim, int keepdim, yt_tensor **indices);
yt_tensor *yt_min_dim(yt_tensor *x, int dim, int keepdim, yt_tensor **indices);
/* I64, 0-based, no gradient. */
yt_tensor *yt_argmax(yt_tensor *x, int dim, int keepdim);
yt_tensor *yt_argmin(yt_tensor *x, int dim, int keepdim);
/* Over the flattened tensor: 0-d I64 (0-based). */
yt_tensor *yt_argmax_all(yt_tensor *x);
yt_tensor *yt_argmin_all(yt_tensor *x);

/* Normalises a possibly negative dim for an ndim-d tensor (0-d tensors accept 0 and -1); -1 + error if out of
 * range. what names the op. */
int yt_norm_dim(const char *what, int dim, int ndim);

#endif
