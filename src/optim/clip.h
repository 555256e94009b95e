/* Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_ with the L2 norm). */
#ifndef YT_CLIP_H
#define YT_CLIP_H

#include "core/tensor.h"

/* Total L2 norm of the gradients of params (parameters without a grad are skipped), accumulated in double.
 * When max_norm > 0 every gradient is multiplied by clip = max_norm / (norm + 1e-6) if clip < 1 (computed in
 * float32 like torch, where the norm is a float32 tensor). Returns the norm (before clipping), or -1 + yt_error
 * (a gradient that is not float32 of its parameter's size, a released tensor). A non-finite norm is returned
 * as is, and then clipping turns the gradients into NaN, as in torch with error_if_nonfinite=False. */
double yt_clip_grad_norm(int n, yt_tensor *const *params, double max_norm);

/* The same on plain gradient tensors (each contiguous F32). */
double yt_clip_tensors_norm(int n, yt_tensor *const *grads, double max_norm);

#endif
