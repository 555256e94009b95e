/* Batch normalisation over the channel axis (axis 1) of an (N, C, *) tensor, e.g. (N, C, H, W).
 *
 * training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias with the batch mean and *biased* batch
 *           variance per channel (double accumulators); running stats are updated in place:
 *           running_mean = (1 - momentum) * running_mean + momentum * mean_B
 *           running_var  = (1 - momentum) * running_var  + momentum * var_B * M / (M - 1)   (unbiased)
 *           where M = N * H * W. The gradient flows through the batch statistics.
 * eval:     the same with running_mean / running_var: an affine map per channel. */
#ifndef YT_OPS_BATCHNORM_H
#define YT_OPS_BATCHNORM_H

#include <stddef.h>

#include "core/tensor.h"

/* Raw kernels. x, y, gy, gx: (N, C, HW) floats; per-channel arrays have C entries. weight NULL = 1,
 * bias NULL = 0. */

/* mean[c] and the biased variance var[c] of x over N and HW (two passes, double accumulators). */
void yt_batch_norm_stats(const float *x, double *mean, double *var, int N, int C, size_t HW);
/* y = (x - mean) * invstd * weight + bias */
void yt_batch_norm_forward(const float *x, float *y, const float *weight, const float *bias, const double *mean,
                           const double *invstd, int N, int C, size_t HW);
/* Training-mode backward (through the batch statistics that gave mean/invstd). Accumulates:
 *   gb += sum gy;  gw += sum gy * xhat;
 *   gx += weight * invstd * (gy - sum(gy) / M - xhat * sum(gy * xhat) / M)
 * Any of gx, gw, gb may be NULL. */
void yt_batch_norm_backward_train(const float *x, const float *gy, float *gx, const float *weight, float *gw, float *gb,
                                  const double *mean, const double *invstd, int N, int C, size_t HW);
/* Eval-mode backward (fixed statistics): gx += gy * weight * invstd; gw, gb as above. */
void yt_batch_norm_backward_eval(const float *x, const float *gy, float *gx, const float *weight, float *gw, float *gb,
                                 const double *mean, const double *invstd, int N, int C, size_t HW);

/* y = silu(batch_norm(x)) (ops/simd.h's SiLU, as activation.h's), the BN output computed in registers and never
 * stored. */
void yt_batch_norm_silu_forward(const float *x, float *y, const float *weight, const float *bias, const double *mean,
                                const double *invstd, int N, int C, size_t HW);
/* Its backward (training: through the batch statistics; else fixed statistics), recomputing the BN output from x,
 * weight and bias: accumulates into gx (or, gx_acc = 0, overwrites it without reading it), gw, gb (any may be NULL)
 * the very floats that batch_norm's backward gives after silu's. Returns 0, or -1 when out of memory (it keeps
 * silu's gradient of one channel, N * HW floats, per thread). */
int yt_batch_norm_silu_backward(const float *x, const float *gy, float *gx, const float *weight, const float *bias,
                                float *gw, float *gb, const double *mean, const double *invstd, int N, int C, size_t HW,
                                int training, int gx_acc);

/* Pieces of the kernels above, for callers that reduce per-channel sums across processes (dist/syncbn.c).
 * s[c] = sum over n, i of x (double accumulator). */
void yt_batch_norm_channel_sums(const float *x, double *s, int N, int C, size_t HW);
/* q[c] = sum over n, i of (x - mean[c])^2 (double accumulator). */
void yt_batch_norm_channel_sqdev(const float *x, const double *mean, double *q, int N, int C, size_t HW);
/* sg[c] = sum gy, sgx[c] = sum gy * xhat with xhat = (x - mean) * invstd (double); x NULL: only sg, sgx = 0. */
void yt_batch_norm_grad_sums(const float *x, const float *gy, const double *mean, const double *invstd, double *sg,
                             double *sgx, int N, int C, size_t HW);
/* Training-mode input gradient given the sums above taken over M values per channel (M may count other ranks):
 *   gx += weight * invstd * (gy - sg / M - xhat * sgx / M) */
void yt_batch_norm_backward_input(const float *x, const float *gy, float *gx, const float *weight, const double *mean,
                                  const double *invstd, const double *sg, const double *sgx, double M, int N, int C,
                                  size_t HW);
/* invstd[c] = 1 / sqrt(var[c] + eps); with running_mean (rm) and running_var (rv) non-NULL, the momentum update
 * of the header comment, var unbiased by M / (M - 1). */
void yt_batch_norm_finish_stats(const double *mean, const double *var, double *invstd, float *rm, float *rv, int C,
                                double M, double momentum, double eps);
/* Argument checks shared by batch_norm and sync_batch_norm; `op` names the op in messages. need_running: eval mode
 * (running stats required). Sets *N, *C, *HW. */
int yt_batch_norm_check_args(const char *op, const yt_tensor *x, const yt_tensor *weight, const yt_tensor *bias,
                             const yt_tensor *running_mean, const yt_tensor *running_var, int need_running,
                             double momentum, double eps, int *N, int *C, size_t *HW);

/* Tensor-level op. x: (N, C, *) F32 (ndim >= 2). weight, bias: (C) F32 or NULL (no affine part).
 * running_mean, running_var: (C) contiguous F32, updated in place when training (may be NULL when training:
 * no update); required in eval. Records autograd for x, weight and bias. */
yt_tensor *yt_batch_norm(yt_tensor *x, yt_tensor *weight, yt_tensor *bias, yt_tensor *running_mean,
                         yt_tensor *running_var, int training, double momentum, double eps);
/* silu(batch_norm(...)) as one op with the same arguments, bitwise equal to the two ops in fp32: backward keeps only
 * x (and the per-channel statistics, weight and bias) and recomputes the BN output instead of storing it. */
yt_tensor *yt_batch_norm_silu(yt_tensor *x, yt_tensor *weight, yt_tensor *bias, yt_tensor *running_mean,
                              yt_tensor *running_var, int training, double momentum, double eps);

#endif
