#include "ops/activation.h"

#include <math.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"
#include "ops/simd.h"

/* SiLU's arithmetic is ops/simd.h's (yt_v_silu, yt_v_silu_grad), which the fused batch_norm_silu shares: an element
 * gets the same floats in both, wherever it sits in its array. Blocks of SILU_BLOCK elements per OpenMP chunk. */
#define SILU_BLOCK 4096

YT_V_INLINE void silu_block_body(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) yt_v_store(y + i, yt_v_silu(yt_v_load(x + i)));
    if (i < n) yt_v_store_n(y + i, yt_v_silu(yt_v_load_n(x + i, n - i)), n - i);
}
YT_SIMD_DISPATCH(silu_block, (const float *x, float *y, size_t n), (x, y, n))

/* gx += gy * silu'(x) (acc), gx = gy * silu'(x) (else: gx's old contents not read) */
YT_V_INLINE void silu_grad_block_body(const float *x, const float *gy, float *gx, size_t n, int acc)
{
    size_t i = 0;
    if (acc) {
        for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH)
            yt_v_store(gx + i, yt_v_load(gx + i) + yt_v_silu_grad(yt_v_load(x + i), yt_v_load(gy + i)));
    } else {
        for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH)
            yt_v_store(gx + i, yt_v_silu_grad(yt_v_load(x + i), yt_v_load(gy + i)));
    }
    if (i < n) {
        size_t r = n - i;
        yt_vf v = yt_v_silu_grad(yt_v_load_n(x + i, r), yt_v_load_n(gy + i, r));
        yt_v_store_n(gx + i, acc ? yt_v_load_n(gx + i, r) + v : v, r);
    }
}
YT_SIMD_DISPATCH(silu_grad_block, (const float *x, const float *gy, float *gx, size_t n, int acc), (x, gy, gx, n, acc))

void yt_silu_forward(const float *x, float *y, size_t n)
{
    const size_t blocks = (n + SILU_BLOCK - 1) / SILU_BLOCK;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t k = 0; k < blocks; k++) {
        size_t i = k * SILU_BLOCK, len = n - i < SILU_BLOCK ? n - i : SILU_BLOCK;
        silu_block(x + i, y + i, len);
    }
}

static void silu_backward_into(const float *x, const float *gy, float *gx, int acc, size_t n)
{
    const size_t blocks = (n + SILU_BLOCK - 1) / SILU_BLOCK;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t k = 0; k < blocks; k++) {
        size_t i = k * SILU_BLOCK, len = n - i < SILU_BLOCK ? n - i : SILU_BLOCK;
        silu_grad_block(x + i, gy + i, gx + i, len, acc);
    }
}

void yt_silu_backward(const float *x, const float *gy, float *gx, size_t n) { silu_backward_into(x, gy, gx, 1, n); }

void yt_sigmoid_forward(const float *x, float *y, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void yt_sigmoid_backward(const float *y, const float *gy, float *gx, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) gx[i] += gy[i] * y[i] * (1.0f - y[i]);
}

static int silu_backward(yt_node *node)
{
    yt_tensor *x = node->saved[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    int acc;
    float *gx = yt_grad_dest(node->in[0], &acc); /* written whole: a fresh buffer is stored into */
    if (!gx) return node->in[0] ? -1 : 0;
    silu_backward_into(yt_f32(x), yt_f32(gy), gx, acc, (size_t)yt_numel(x));
    return 0;
}

static int sigmoid_backward(yt_node *node)
{
    yt_tensor *y = node->saved[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(node->in[0]);
    if (gx) yt_sigmoid_backward(yt_f32(y), yt_f32(gy), gx, (size_t)yt_numel(y));
    return 0;
}

/* An elementwise op on a contiguous copy of x; backward reads the input (SiLU) or the output (sigmoid). */
static yt_tensor *elementwise(const char *name, yt_tensor *x, void (*forward)(const float *, float *, size_t),
                              yt_backward_fn backward, int save_output)
{
    if (yt_check(x, name, YT_F32, -1) < 0) return NULL;
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) return NULL;
    yt_tensor *y = yt_tensor_empty_like(xc);
    if (y) {
        forward(yt_f32(xc), yt_f32(y), (size_t)yt_numel(xc));
        yt_node *node = yt_record(name, backward, 1, &xc, &y);
        /* saving the output makes no cycle: the node holds y, y points back weakly */
        if (node) yt_node_save(node, save_output ? y : xc);
    }
    yt_tensor_release(xc);
    return y;
}

yt_tensor *yt_silu(yt_tensor *x) { return elementwise("silu", x, yt_silu_forward, silu_backward, 0); }
yt_tensor *yt_sigmoid(yt_tensor *x) { return elementwise("sigmoid", x, yt_sigmoid_forward, sigmoid_backward, 1); }
