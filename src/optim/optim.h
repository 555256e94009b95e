/* Optimizers with PyTorch semantics (torch.optim.SGD / Adam / AdamW, single-tensor code path, float32 math in
 * PyTorch's operation order so a step matches torch to an ulp or so).
 *
 * SGD    g = grad + wd*p;  first step: buf = g, later: buf = momentum*buf + (1-dampening)*g;
 *        nesterov: g = g + momentum*buf, else g = buf (momentum 0: no buffer);  p -= lr*g
 * Adam   g = grad + wd*p (L2);  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
 *        p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * AdamW  as Adam but the decay is decoupled: p *= 1 - lr*wd before the update.
 *
 * Parameters are float32 contiguous tensors (retained by the optimizer); a parameter whose grad is NULL is left
 * unchanged and its step count is not advanced. Per-parameter state (momentum buffer or exp_avg/exp_avg_sq, and
 * the step count) is allocated at construction and can be exported/imported as named tensors:
 *     "<k>.momentum_buffer" (SGD with momentum), "<k>.exp_avg", "<k>.exp_avg_sq" (Adam/AdamW),
 *     "<k>.step" (I64 scalar, all kinds)
 * where k is the 0-based index of the parameter over all groups in order (PyTorch's state_dict numbering). */
#ifndef YT_OPTIM_H
#define YT_OPTIM_H

#include "core/tensor.h"

typedef enum { YT_OPTIM_SGD = 0, YT_OPTIM_ADAM, YT_OPTIM_ADAMW } yt_optim_kind;

typedef struct {
    double lr;
    double momentum; /* SGD momentum; Adam/AdamW beta1 */
    double beta2;    /* Adam/AdamW */
    double eps;      /* Adam/AdamW */
    double weight_decay;
    double dampening; /* SGD */
    int nesterov;     /* SGD */
    int n_params;
    yt_tensor **params; /* owned array of retained references (in the optimizer's copy) */
} yt_param_group;

typedef struct {
    yt_optim_kind kind;
    int n_groups;
    yt_param_group *groups;
    int n_params;     /* over all groups */
    yt_tensor **buf1; /* per parameter: SGD momentum buffer / Adam exp_avg (NULL for SGD without momentum) */
    yt_tensor **buf2; /* per parameter: Adam exp_avg_sq (NULL for SGD) */
    int64_t *steps;   /* per parameter: number of updates applied */
} yt_optimizer;

/* "SGD", "Adam", "AdamW" (case-insensitive); -1 if unknown. */
int yt_optim_kind_from_name(const char *name);
const char *yt_optim_kind_name(yt_optim_kind kind);
/* Defaults of torch.optim for the kind (lr 0.001 for Adam/AdamW, betas 0.9/0.999, eps 1e-8, AdamW decay 0.01;
 * SGD has no default lr: lr is set to NaN and must be given). params are not touched. */
void yt_param_group_defaults(yt_optim_kind kind, yt_param_group *g);
/* Checks the hyperparameters (lr >= 0, 0 <= beta < 1, eps >= 0, wd >= 0, nesterov needs momentum > 0 and
 * dampening 0). `which` is 1-based for messages. */
int yt_param_group_check(yt_optim_kind kind, const yt_param_group *g, int which);

/* Copies the groups (the params arrays too) and retains every parameter. NULL + yt_error on bad input
 * (non-F32 or non-contiguous parameter, the same tensor twice, bad hyperparameters). */
yt_optimizer *yt_optim_new(yt_optim_kind kind, int n_groups, const yt_param_group *groups);
void yt_optim_free(yt_optimizer *o);
/* One step over every parameter that has a gradient. */
int yt_optim_step(yt_optimizer *o);
/* set_to_none: drop the gradients (PyTorch 2's default), else fill them with zeros. */
void yt_optim_zero_grad(yt_optimizer *o, int set_to_none);

/* State as named tensors: *names (malloc'ed strings) and *tensors (new references; the buffers themselves, the
 * step counts as fresh I64 scalars). Free with yt_optim_state_free. Returns the count or -1. */
int yt_optim_state_export(const yt_optimizer *o, char ***names, yt_tensor ***tensors);
void yt_optim_state_free(int n, char **names, yt_tensor **tensors);
/* Copies matching entries into the state. Every state entry of this optimizer must be present with the right
 * shape (extra names are an error too, so a checkpoint of another optimizer/model is refused). */
int yt_optim_state_import(yt_optimizer *o, int n, const char *const *names, yt_tensor *const *tensors);

#endif
