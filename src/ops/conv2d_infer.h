/* The fused inference convolution: y = act(conv(x, w) + b) [+ residual] on oneDNN, for a model whose BatchNorms
 * are folded into its convolutions (Detection_Model:fuse), run while grad mode is off.
 *
 * A plan is made once per layer: it holds its own copy of the weights and bias (taken when the plan is made: a
 * later change to the layer's tensors does not reach it; the Lua side drops plans when weights may change), and
 * per input shape (N, H, W, thread count, residual or not; at most YT_CONV2D_PLAN_SHAPES, least recently used
 * dropped) a oneDNN primitive with the activation as an eltwise post-op (and the residual as a sum post-op), its
 * weights reordered once into the layout oneDNN chose, and its scratchpad. What is measured per forward is the
 * convolution and nothing else.
 *
 * Activations are channels-last (ops/shape_ops.h): the output is a new dense channels-last (N, O, OH, OW) tensor,
 * and a dense channels-last x is read in place (oneDNN's NHWC kernels are as fast as its blocked ones here, and
 * NHWC is an ordinary strided view, so every other op reads the result correctly). Any other x (the NCHW image,
 * a channel slice) is copied to dense channels-last first. A residual (any strides, the output's shape) is
 * copied into the output before the convolution adds to it: y = act(conv(x) + b) + residual, Bottleneck's
 * x + cv2(cv1(x)).
 *
 * Inference only: nothing is recorded for autograd (an x that needs a gradient is an error). A plan runs one
 * forward at a time (it keeps its oneDNN stream). Groups and dilation are 1, as in conv2d. */
#ifndef YT_OPS_CONV2D_INFER_H
#define YT_OPS_CONV2D_INFER_H

#include "core/tensor.h"

enum { YT_INFER_ACT_NONE = 0, YT_INFER_ACT_SILU = 1 };

/* Shapes a plan keeps: a predictor's letterboxed images come in a few sizes (640x480, 480x640, 640x448, ...); each
 * kept shape costs ~130 KB per YOLOv8n layer (its primitive's code and scratchpad), a new one a primitive creation
 * (milliseconds per layer). */
#define YT_CONV2D_PLAN_SHAPES 8

typedef struct yt_conv2d_plan yt_conv2d_plan;

/* w: (O, C, KH, KW) F32, b: (O) F32 or NULL; stride >= 1, padding >= 0; act YT_INFER_ACT_*. NULL + yt_error on
 * bad arguments or when oneDNN fails. */
yt_conv2d_plan *yt_conv2d_plan_new(const yt_tensor *w, const yt_tensor *b, int sh, int sw, int ph, int pw, int act);
void yt_conv2d_plan_free(yt_conv2d_plan *p);

/* x: (N, C, H, W) F32, any strides; residual: NULL or (N, O, OH, OW) F32, any strides. Returns a new dense
 * channels-last (N, O, OH, OW) tensor, or NULL + yt_error. */
yt_tensor *yt_conv2d_plan_forward(yt_conv2d_plan *p, yt_tensor *x, yt_tensor *residual);

/* Shapes prepared, and the oneDNN implementation of the most recent one ("" before the first forward). */
int yt_conv2d_plan_shapes(const yt_conv2d_plan *p);
const char *yt_conv2d_plan_impl(const yt_conv2d_plan *p);
/* The layer's sizes: out channels, in channels, kernel, stride, padding, activation. */
void yt_conv2d_plan_info(const yt_conv2d_plan *p, int *O, int *C, int *KH, int *KW, int *sh, int *sw, int *ph, int *pw,
                         int *act);

#endif
