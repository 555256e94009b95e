/* 2-D convolution, NCHW input, OIHW weights, groups = 1.
 *
 * Forward per image n:   y_n (O, OH*OW) = W (O, C*KH*KW) @ col(x_n) (C*KH*KW, OH*OW)   [+ b]
 * Backward per image n:  gW (O, CKK)   += gy_n (O, P) @ col(x_n)^T (P, CKK)
 *                        gcol (CKK, P)  = W^T (CKK, O) @ gy_n (O, P);  gx_n += col2im(gcol)
 *                        gb[o]          += sum_p gy_n[o, p]
 * A 1x1 / stride 1 / pad 0 conv uses x_n itself as col(x_n) (no im2col).
 * im2col buffers are per-thread temporaries: nothing is kept between forward and backward (backward
 * recomputes col(x_n)). */
#ifndef YT_OPS_CONV2D_H
#define YT_OPS_CONV2D_H

#include <stddef.h>

#include "core/tensor.h"

typedef struct {
    int N, C, H, W;     /* input */
    int O, KH, KW;      /* weights */
    int sh, sw, ph, pw; /* stride, padding */
    int OH, OW;         /* output (filled by yt_conv2d_shape_init) */
    int strategy;       /* GEMM path's parallelisation: 0 = automatic, 1 = images in parallel with single-threaded
                           BLAS calls, 2 = images in sequence with multithreaded BLAS (for benchmarks) */
    int backend;        /* 0 = the process's choice (yt_conv2d_backend), else one of YT_CONV_* below */
    int precision;      /* 0 or YT_CONV_F32: float32; YT_CONV_BF16: bfloat16 products, float32 accumulation and
                           results, on oneDNN whatever the backend (the tensor op sets it: ops/autocast.h) */
} yt_conv2d_shape;

enum { YT_CONV_F32 = 1, YT_CONV_BF16 = 2 };

/* The implementations of the raw kernels below: im2col + OpenBLAS sgemm (this file's header comment), and
 * oneDNN's convolution primitives (src/ops/conv2d_dnnl.h). The environment variable YT_CONV (or
 * yt_conv2d_set_backend) chooses for the whole process:
 *   dnnl_all            every pass on oneDNN: the default when oneDNN's kernels are AVX-512 ones
 *                       (yt_conv2d_dnnl_isa_avx512)
 *   dnnl                backward data and backward weights of k x k convolutions on oneDNN; their forward pass,
 *                       and every pass of 1x1 ones (a plain sgemm per image), on the GEMM path: the default on
 *                       other machines (AVX2 and below)
 *   gemm                everything on the GEMM path
 * Why the choice depends on oneDNN's ISA. Speed: with AVX-512, oneDNN's kernels beat the GEMM path on every pass,
 * 1x1 and forward included (OpenBLAS's sgemm may well be an AVX2 one: Debian's 0.3.21 runs its Haswell kernels on
 * AVX-512 AMD CPUs); with AVX2 the GEMM path is the faster one for 1x1 convolutions. Accuracy: oneDNN's AVX2 direct
 * kernels sum a k x k convolution's C*k*k products in long sequences, a few times less accurate than the GEMM
 * path's blocked sums once C*k*k is large; its AVX-512 kernels are as accurate as the GEMM path or more (measured
 * against a double reference, C*k*k = 2304: rms relative error 8.3e-7 AVX2, 2.2e-7 AVX-512, 3.0e-7 GEMM).
 * Training does not notice, but on the parity fixtures the AVX2 forward breaks a near-tie in SPPF's max-pooling
 * the other way (1.523947 vs 1.523935), which moves the gradients of the layers before it past their 1e-3
 * tolerance (ONEDNN_MAX_CPU_ISA=AVX2 YT_CONV=dnnl_all shows it); with the AVX-512 kernels every parity test
 * passes, closer than on the GEMM path (train step: worst gradient max diff / max|ref| 4.5e-5 against 6.9e-5).
 * Shapes oneDNN does not take (yt_conv2d_dnnl_supports) and calls from inside an OpenMP parallel
 * region always run the GEMM path. */
enum { YT_CONV_GEMM = 1, YT_CONV_DNNL = 2, YT_CONV_DNNL_ALL = 3 };
/* The backend without YT_CONV: YT_CONV_DNNL_ALL when oneDNN's ISA has AVX-512, else YT_CONV_DNNL. */
int yt_conv2d_default_backend(void);
/* The process's backend: yt_conv2d_set_backend's, else YT_CONV's (read once), else the default. Returns -1
 * (with yt_error naming the variable) when YT_CONV holds something other than "gemm", "dnnl" or "dnnl_all". */
int yt_conv2d_backend(void);
/* YT_CONV_GEMM, YT_CONV_DNNL, YT_CONV_DNNL_ALL, or 0 to go back to YT_CONV / the default. -1 on another value. */
int yt_conv2d_set_backend(int backend);
/* Its name ("gemm", "dnnl", "dnnl_all"), and the backend of a name (-1 for an unknown one). */
const char *yt_conv2d_backend_name(int backend);
int yt_conv2d_backend_of(const char *name);

/* Fills OH/OW from the other fields; returns -1 (with yt_error) on invalid sizes. */
int yt_conv2d_shape_init(yt_conv2d_shape *s);

/* col: (C*KH*KW, OH*OW) unfolded patches of one image x: (C, H, W); zero padding. */
void yt_im2col(const float *x, float *col, const yt_conv2d_shape *s);
/* gx: (C, H, W) += fold(gcol) */
void yt_col2im_add(const float *gcol, float *gx, const yt_conv2d_shape *s);

/* x: (N,C,H,W)  w: (O,C,KH,KW)  b: (O) or NULL  y: (N,O,OH,OW) (overwritten). Returns 0, or -1 when out of
 * memory for the per-thread column buffers. */
int yt_conv2d_forward(const float *x, float *y, const float *w, const float *b, const yt_conv2d_shape *s);
/* Accumulates (+=) into gx (N,C,H,W), gw (O,C,KH,KW), gb (O); any of them may be NULL (not wanted).
 * x is only read when gw is wanted. Returns 0, or -1 when out of memory. */
int yt_conv2d_backward(const float *x, const float *gy, float *gx, const float *w, float *gw, float *gb,
                       const yt_conv2d_shape *s);
/* The same, except that gx (when gx_acc is 0) and gw (when gw_acc is 0) are overwritten, their old contents never
 * read (they may be uninitialised: yt_grad_dest's buffers). gb always accumulates. */
int yt_conv2d_backward_into(const float *x, const float *gy, float *gx, int gx_acc, const float *w, float *gw,
                            int gw_acc, float *gb, const yt_conv2d_shape *s);

/* Tensor-level op. x: (N,C,H,W) F32, w: (O,C,KH,KW) F32, b: (O) F32 or NULL. Records autograd for x, w, b. */
yt_tensor *yt_conv2d(yt_tensor *x, yt_tensor *w, yt_tensor *b, int stride_h, int stride_w, int pad_h, int pad_w);

#endif
