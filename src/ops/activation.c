#include "ops/activation.h"

#include <math.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

void yt_silu_forward(const float *x, float *y, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) y[i] = yt_silu1(x[i]);
}

void yt_silu_backward(const float *x, const float *gy, float *gx, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) gx[i] += yt_silu_grad1(x[i], gy[i]);
}

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
    float *gx = yt_grad_accum(node->in[0]);
    if (gx) yt_silu_backward(yt_f32(x), yt_f32(gy), gx, (size_t)yt_numel(x));
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
