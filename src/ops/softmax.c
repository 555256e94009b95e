#include "ops/shape_ops.h"
#include "ops/softmax.h"

#include <math.h>
#include <stddef.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/reduce.h"

#define PAR_MIN 32768

/* Each (o, i) line is independent: x[o, :, i] with stride inner. */

/* The shift of a stable softmax over one line: its max (NaN if any), 0 when all are -inf (exp then gives 0s and
 * the result NaN, as in PyTorch). */
static float line_max(const float *p, int64_t n, int64_t inner)
{
    float m = -INFINITY;
    for (int64_t k = 0; k < n; k++)
        if (p[k * inner] > m || isnan(p[k * inner])) m = p[k * inner];
    return m == -INFINITY ? 0 : m;
}

/* sum of expf(p - m) over one line (double); e non-NULL: also stores each expf(p - m) there. */
static double line_sum_exp(const float *p, float *e, float m, int64_t n, int64_t inner)
{
    double s = 0;
    for (int64_t k = 0; k < n; k++) {
        float v = expf(p[k * inner] - m);
        if (e) e[k * inner] = v;
        s += v;
    }
    return s;
}

void yt_softmax_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner)
{
#pragma omp parallel for schedule(static) if (outer * n * inner > PAR_MIN)
    for (int64_t t = 0; t < outer * inner; t++) {
        int64_t o = t / inner, i = t % inner;
        const float *p = x + o * n * inner + i;
        float *q = y + o * n * inner + i;
        float m = line_max(p, n, inner);
        double s = line_sum_exp(p, q, m, n, inner);
        float inv = (float)(1.0 / s);
        for (int64_t k = 0; k < n; k++) q[k * inner] *= inv;
    }
}

void yt_softmax_backward(const float *y, const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner)
{
#pragma omp parallel for schedule(static) if (outer * n * inner > PAR_MIN)
    for (int64_t t = 0; t < outer * inner; t++) {
        int64_t o = t / inner, i = t % inner, base = o * n * inner + i;
        double dot = 0;
        for (int64_t k = 0; k < n; k++) dot += (double)gy[base + k * inner] * y[base + k * inner];
        float fd = (float)dot;
        for (int64_t k = 0; k < n; k++) {
            int64_t j = base + k * inner;
            gx[j] += y[j] * (gy[j] - fd);
        }
    }
}

void yt_log_softmax_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner)
{
#pragma omp parallel for schedule(static) if (outer * n * inner > PAR_MIN)
    for (int64_t t = 0; t < outer * inner; t++) {
        int64_t o = t / inner, i = t % inner;
        const float *p = x + o * n * inner + i;
        float *q = y + o * n * inner + i;
        float m = line_max(p, n, inner);
        double s = line_sum_exp(p, NULL, m, n, inner);
        float lse = (float)log(s);
        for (int64_t k = 0; k < n; k++) q[k * inner] = p[k * inner] - m - lse;
    }
}

void yt_log_softmax_backward(const float *y, const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner)
{
#pragma omp parallel for schedule(static) if (outer * n * inner > PAR_MIN)
    for (int64_t t = 0; t < outer * inner; t++) {
        int64_t o = t / inner, i = t % inner, base = o * n * inner + i;
        double s = 0;
        for (int64_t k = 0; k < n; k++) s += gy[base + k * inner];
        float fs = (float)s;
        for (int64_t k = 0; k < n; k++) {
            int64_t j = base + k * inner;
            gx[j] += gy[j] - expf(y[j]) * fs;
        }
    }
}

static int softmax_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(node->in[0]);
    if (!gx) return 0;
    const float *y = yt_f32(node->saved[0]);
    if (node->iarg[3])
        yt_log_softmax_backward(y, yt_f32(gy), gx, node->iarg[0], node->iarg[1], node->iarg[2]);
    else
        yt_softmax_backward(y, yt_f32(gy), gx, node->iarg[0], node->iarg[1], node->iarg[2]);
    return 0;
}

static yt_tensor *softmax_impl(const char *what, yt_tensor *x, int dim, int is_log)
{
    if (yt_check(x, what, YT_F32, -1) < 0) return NULL;
    int d = yt_norm_dim(what, dim, x->ndim);
    if (d < 0) return NULL;
    int64_t outer = 1, n = x->ndim ? x->shape[d] : 1, inner = 1;
    for (int k = 0; k < d; k++) outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) inner *= x->shape[k];
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) return NULL;
    yt_tensor *y = yt_tensor_empty_like(xc);
    if (y) {
        if (yt_numel(y) > 0) {
            if (is_log)
                yt_log_softmax_forward(yt_f32(xc), yt_f32(y), outer, n, inner);
            else
                yt_softmax_forward(yt_f32(xc), yt_f32(y), outer, n, inner);
        }
        yt_node *node = yt_record(what, softmax_backward, 1, &xc, &y);
        if (node) {
            node->iarg[0] = outer;
            node->iarg[1] = n;
            node->iarg[2] = inner;
            node->iarg[3] = is_log;
            yt_node_save(node, y);
        }
    }
    yt_tensor_release(xc);
    return y;
}

yt_tensor *yt_softmax(yt_tensor *x, int dim) { return softmax_impl("softmax", x, dim, 0); }
yt_tensor *yt_log_softmax(yt_tensor *x, int dim) { return softmax_impl("log_softmax", x, dim, 1); }
