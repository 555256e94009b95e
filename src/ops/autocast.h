/* Mixed precision (the trainer's amp=true), decided in one place as PyTorch's autocast decides it: a short list of
 * ops runs its products in bfloat16 while training, everything else stays float32.
 *
 * The list: conv2d (ops/conv2d.c), whose oneDNN primitives then take bfloat16 src, weights and diff_dst, and
 * produce float32 dst, diff_src and diff_weights, accumulating in float32 (conv2d_dnnl.c). The weights the
 * optimizer updates stay float32 (each call rounds a copy), and so do BatchNorm and its statistics, the
 * activations between the ops, the loss, the gradients and the optimizer.
 *
 * Only what is recorded for backward (grad mode on, an input requiring a gradient) runs in bfloat16: validation,
 * prediction and export, which run without grad, keep float32 results. And only where the CPU has the BF16
 * instructions (oneDNN's effective ISA at least avx512_core_bf16; DNNL_MAX_CPU_ISA lowers it): elsewhere the
 * request is kept but every op runs float32, and yt_autocast_active says so. */
#ifndef YT_OPS_AUTOCAST_H
#define YT_OPS_AUTOCAST_H

/* The process's request (process-wide, as the convolution backend): 1 = bfloat16 where the CPU has it, 0 = float32
 * (the default). Returns the previous request. */
int yt_autocast_set(int enabled);
int yt_autocast_enabled(void);
/* 1 when the CPU runs bfloat16 convolutions natively (oneDNN's effective ISA has AVX512-BF16 or AMX). */
int yt_autocast_bf16_supported(void);
/* 1 when autocast is requested and the CPU supports it: the ops of the list run in bfloat16 when recording. */
int yt_autocast_active(void);

#endif
