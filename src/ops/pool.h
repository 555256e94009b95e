/* 2-D max pooling, NCHW, no dilation, floor output size (PyTorch's ceil_mode = False).
 * Padding acts as -inf (it never wins). The first maximum in row-major window order wins ties; a NaN in the
 * window wins (propagates), as in PyTorch. Backward routes each output gradient to its window's argmax,
 * recomputed from x (nothing but x is kept between forward and backward). */
#ifndef YT_OPS_POOL_H
#define YT_OPS_POOL_H

#include "core/tensor.h"

typedef struct {
    int N, C, H, W;
    int KH, KW, sh, sw, ph, pw;
    int OH, OW; /* filled by yt_pool2d_shape_init */
} yt_pool2d_shape;

/* Checks the options (stride >= 1, 0 <= padding <= kernel / 2, kernel fits the padded input) and fills OH/OW. */
int yt_pool2d_shape_init(yt_pool2d_shape *s);

/* x: (N,C,H,W)  y: (N,C,OH,OW). Separable: the maximum over each row's window, then over the column of those
 * (KH + KW comparisons per output instead of KH x KW), which picks the element the row-major scan picks: the
 * output is bitwise that of the direct loop. */
void yt_max_pool2d_forward(const float *x, float *y, const yt_pool2d_shape *s);
/* gx (N,C,H,W) += scatter of gy (N,C,OH,OW) to the argmax of each window of x */
void yt_max_pool2d_backward(const float *x, const float *gy, float *gx, const yt_pool2d_shape *s);

/* Tensor-level op; records autograd for x. A channels-last x that needs no gradient gives a channels-last result
 * (ops/shape_ops.h), computed the same separable way. */
yt_tensor *yt_max_pool2d(yt_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw);

#endif
