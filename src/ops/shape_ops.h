/* Shape ops with autograd: the views reshape / narrow / permute and contiguous, cat, split / chunk (views),
 * index_select, squeeze / unsqueeze / flatten / transpose (views where the layout allows). Dimensions are 0-based;
 * negative counts from the end (except in the four view ops, which take 0-based non-negative dims). */
#ifndef YT_OPS_SHAPE_OPS_H
#define YT_OPS_SHAPE_OPS_H

#include <stdint.h>

#include "core/tensor.h"

/* Views (share storage; recorded by autograd when the input needs a gradient). */
yt_tensor *yt_reshape(yt_tensor *t, int ndim, const int64_t *shape); /* -1 allowed once; copies if not contiguous */
yt_tensor *yt_narrow(yt_tensor *t, int dim, int64_t start, int64_t length);
yt_tensor *yt_contiguous(yt_tensor *t);               /* t itself (retained) when already contiguous */
yt_tensor *yt_permute(yt_tensor *t, const int *perm); /* view with permuted dims */

/* Raw kernel of cat along a dim: inputs i viewed as (outer, sizes[i] * inner) contiguous blocks, written one after
 * the other into y viewed as (outer, total * inner). esz = element size in bytes. */
void yt_cat_forward(int n, const void *const *xs, const int64_t *sizes, void *y, int64_t outer, int64_t inner,
                    size_t esz);
/* gx_i(o, k, j) += gy(o, offset_i + k, j) for each i with gxs[i] != NULL; = instead of += for the i with
 * accumulate[i] == 0 (accumulate NULL: all add). Inputs are visited in order within each o. */
void yt_cat_backward(int n, const float *gy, float *const *gxs, const int *accumulate, const int64_t *sizes,
                     int64_t outer, int64_t inner);

/* Concatenates n tensors (same dtype, same shape except along dim). Any dtype; gradients for F32. When no
 * gradient is recorded, F32 4-D inputs that are all channels-last, concatenated along the channels (dim 1), give
 * a channels-last result (the layout the fused inference path keeps; see "Channels-last" below). */
yt_tensor *yt_cat(int n, yt_tensor *const *ts, int dim);

/* ---- Channels-last (NHWC memory) 4-D tensors: the layout of the fused inference path (ops/conv2d_infer.h) ----
 * A channels-last tensor has the shape (N, C, H, W) of every other tensor, so every op reads it correctly; only
 * its strides differ: the C values of one pixel are adjacent (stride 1), pixels follow in row-major order
 * (stride[3] = P >= C, stride[2] = W * P, stride[0] = H * W * P). It is dense when P == C. A channel slice of a
 * dense one (narrow along dim 1, as C2f's chunk makes) is channels-last with P > C. cat (along dim 1),
 * max_pool2d and upsample_nearest keep the layout when no gradient is recorded; other ops read it as any strided
 * tensor and write their usual contiguous (NCHW) result. */
int yt_is_channels_last(const yt_tensor *t);       /* F32, 4-D, C > 1, the strides above (dense or not) */
int yt_is_channels_last_dense(const yt_tensor *t); /* ... and P == C */
/* A new uninitialised dense channels-last F32 tensor of shape (N, C, H, W), registered in the current scope. */
yt_tensor *yt_tensor_empty_channels_last(int64_t N, int64_t C, int64_t H, int64_t W);
/* Copies the F32 4-D tensor x (any strides) into y, a dense channels-last buffer of x's shape (N, H, W, C in
 * memory). */
void yt_copy_to_channels_last(const yt_tensor *x, float *y);
/* x as a dense channels-last tensor: x itself (retained) when it is one, else a copy. No autograd (inference). */
yt_tensor *yt_channels_last(yt_tensor *x);

/* Splits x along dim into n_sizes views of the given sizes (must add up to x's size). out[] receives new
 * references. Returns 0 or -1 (then out[] holds nothing). */
int yt_split(yt_tensor *x, int n_sizes, const int64_t *sizes, int dim, yt_tensor **out);
/* torch.split(x, size): pieces of split_size (the last may be smaller). Returns the count (<= max_out) or -1. */
int yt_split_size(yt_tensor *x, int64_t split_size, int dim, yt_tensor **out, int max_out);
/* torch.chunk: ceil(size / chunks) per piece; may return fewer than chunks. Returns the count or -1. */
int yt_chunk(yt_tensor *x, int chunks, int dim, yt_tensor **out, int max_out);

/* y = x taken at the positions index (1-d I64, 0-based; negative counts from the end) along dim.
 * Any dtype for x; gradients (scatter-add) for F32. */
yt_tensor *yt_index_select(yt_tensor *x, int dim, const yt_tensor *index);

/* Removes dim (must have size 1). */
yt_tensor *yt_squeeze(yt_tensor *x, int dim);
/* Removes every size-1 dimension. */
yt_tensor *yt_squeeze_all(yt_tensor *x);
/* Inserts a size-1 dimension at position dim in [-(ndim+1), ndim]. */
yt_tensor *yt_unsqueeze(yt_tensor *x, int dim);
/* Merges dims start..end (inclusive) into one. A 0-d tensor becomes 1-d. */
yt_tensor *yt_flatten(yt_tensor *x, int start_dim, int end_dim);
/* Swaps two dimensions (a strided view). */
yt_tensor *yt_transpose(yt_tensor *x, int d0, int d1);

#endif
