/* The oneDNN backend of conv2d (src/ops/conv2d.h selects it): the same raw-kernel contract as
 * yt_conv2d_forward / yt_conv2d_backward, fp32, NCHW activations and OIHW weights at the interface.
 *
 * Inside, oneDNN picks its own (blocked) layouts; each call reorders its inputs into them and its outputs back,
 * and those reorders are part of the measured time. Primitives are created once per (shape, pass, thread count)
 * and kept in a bounded cache (least recently used entries are dropped); the scratch memory of a call (reordered
 * tensors, oneDNN's scratchpad) is taken from the tensor block cache and returned when the call ends. A batch
 * whose activations are large runs as a few calls on equal chunks of its images (conv2d_dnnl.c: chunk_images),
 * which bounds that scratch memory.
 * The bias gradient is summed here in double, as in the GEMM path. */
#ifndef YT_OPS_CONV2D_DNNL_H
#define YT_OPS_CONV2D_DNNL_H

#include "ops/conv2d.h"

/* Whether oneDNN takes this shape (1) or the caller must use the GEMM path (0): oneDNN wants the right/bottom
 * padding implied by the output size to be >= 0, and it is not called from inside an OpenMP parallel region. */
int yt_conv2d_dnnl_supports(const yt_conv2d_shape *s);

/* The instruction set oneDNN's kernels use on this machine, as oneDNN names it without its "cpu_isa_" prefix
 * ("avx512_core_bf16", "avx512_core", "avx2", ...; the environment variable ONEDNN_MAX_CPU_ISA can lower it), and
 * whether it includes AVX-512 (avx512_core or above: the default backend then runs every pass on oneDNN). */
const char *yt_conv2d_dnnl_isa(void);
int yt_conv2d_dnnl_isa_avx512(void);
/* Whether it includes AVX512-BF16 (avx512_core_bf16 or above: bfloat16 convolutions run natively). */
int yt_conv2d_dnnl_isa_bf16(void);

/* As yt_conv2d_forward (overwrites y). -1 + yt_error on failure. */
int yt_conv2d_dnnl_forward(const float *x, float *y, const float *w, const float *b, const yt_conv2d_shape *s);
/* Backward as yt_conv2d_backward_into: gx and gw accumulate when gx_acc / gw_acc, else they are overwritten (oneDNN
 * then writes straight into them when its layout is NCHW / OIHW, and the reorder back carries no sum). */
int yt_conv2d_dnnl_backward(const float *x, const float *gy, float *gx, int gx_acc, const float *w, float *gw,
                            int gw_acc, float *gb, const yt_conv2d_shape *s);

/* Number of cached primitives (for tests of the cache bound) and the bound itself. */
int yt_conv2d_dnnl_cache_size(void);
#define YT_CONV2D_DNNL_CACHE_MAX 384

/* Drops every cached primitive that is not in use (yt_release_cached_memory's companion; tests). */
void yt_conv2d_dnnl_clear_cache(void);

#endif
