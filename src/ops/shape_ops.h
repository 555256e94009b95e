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

/* Concatenates n tensors (same dtype, same shape except along dim). Any dtype; gradients for F32. */
yt_tensor *yt_cat(int n, yt_tensor *const *ts, int dim);

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
