#include "ops/reduce.h"

#include <math.h>
#include <stdlib.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

#define PAR_MIN 32768
#define CHUNK 256

/* ---- raw kernels ---- */

void yt_sum_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, double scale)
{
    if (outer == 1 && inner == 1) {
        double s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s) if (n > PAR_MIN)
        for (int64_t k = 0; k < n; k++) s += x[k];
        y[0] = (float)(s * scale);
        return;
    }
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * n > PAR_MIN)
        for (int64_t o = 0; o < outer; o++) {
            const float *p = x + o * n;
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += p[k];
            y[o] = (float)(s * scale);
        }
        return;
    }
    /* (outer, n, inner): accumulate rows of up to CHUNK inner elements in doubles, walking memory in order */
    int64_t nchunks = (inner + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (outer * n * inner > PAR_MIN)
    for (int64_t t = 0; t < outer * nchunks; t++) {
        int64_t o = t / nchunks, i0 = (t % nchunks) * CHUNK;
        int64_t m = inner - i0 < CHUNK ? inner - i0 : CHUNK;
        double acc[CHUNK];
        for (int64_t i = 0; i < m; i++) acc[i] = 0;
        const float *p = x + o * n * inner + i0;
        for (int64_t k = 0; k < n; k++, p += inner)
            for (int64_t i = 0; i < m; i++) acc[i] += p[i];
        float *q = y + o * inner + i0;
        for (int64_t i = 0; i < m; i++) q[i] = (float)(acc[i] * scale);
    }
}

void yt_sum_backward(const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner, double scale)
{
    float fs = (float)scale;
#pragma omp parallel for schedule(static) if (outer * n * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        const float *g = gy + o * inner;
        for (int64_t k = 0; k < n; k++) {
            float *p = gx + (o * n + k) * inner;
            if (scale == 1.0)
                for (int64_t i = 0; i < inner; i++) p[i] += g[i];
            else
                for (int64_t i = 0; i < inner; i++) p[i] += g[i] * fs;
        }
    }
}

void yt_maxmin_forward(const float *x, float *y, int64_t *idx, int64_t outer, int64_t n, int64_t inner, int is_min)
{
#pragma omp parallel for schedule(static) if (outer * n * inner > PAR_MIN)
    for (int64_t t = 0; t < outer * inner; t++) {
        int64_t o = t / inner, i = t % inner;
        const float *p = x + o * n * inner + i;
        float best = p[0];
        int64_t bi = 0;
        for (int64_t k = 1; k < n && !isnan(best); k++) {
            float v = p[k * inner];
            if (isnan(v) || (is_min ? v < best : v > best)) {
                best = v;
                bi = k;
            }
        }
        if (y) y[t] = best;
        idx[t] = bi;
    }
}

void yt_maxmin_backward(const int64_t *idx, const float *gy, float *gx, int64_t outer, int64_t n, int64_t inner)
{
    for (int64_t t = 0; t < outer * inner; t++) {
        int64_t o = t / inner, i = t % inner;
        gx[(o * n + idx[t]) * inner + i] += gy[t];
    }
}

/* ---- helpers ---- */

int yt_norm_dim(const char *what, int dim, int ndim)
{
    int n = ndim > 0 ? ndim : 1;
    int d = dim < 0 ? dim + n : dim;
    if (d < 0 || d >= n) {
        yt_error("%s: dimension %d out of range for a %d-d tensor", what, dim, ndim);
        return -1;
    }
    return d;
}

typedef struct {
    int64_t outer, n, inner;
    int ond;
    int64_t oshape[YT_MAX_DIMS];
} red_geom;

/* dim < 0 after normalisation never happens; all = reduce everything */
static int geom(const char *what, const yt_tensor *x, int dim, int all, int keepdim, red_geom *g)
{
    if (all) {
        g->outer = 1;
        g->n = yt_numel(x);
        g->inner = 1;
        g->ond = 0;
        return 0;
    }
    int d = yt_norm_dim(what, dim, x->ndim);
    if (d < 0) return -1;
    g->outer = g->inner = 1;
    g->n = x->ndim ? x->shape[d] : 1;
    for (int k = 0; k < d; k++) g->outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) g->inner *= x->shape[k];
    g->ond = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (k == d && !keepdim) continue;
        g->oshape[g->ond++] = k == d ? 1 : x->shape[k];
    }
    return 0;
}

/* ---- sum / mean ---- */

static int sum_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(node->in[0]);
    if (gx) yt_sum_backward(yt_f32(gy), gx, node->iarg[0], node->iarg[1], node->iarg[2], node->farg[0]);
    return 0;
}

static yt_tensor *sum_impl(const char *what, yt_tensor *x, int dim, int all, int keepdim, int mean)
{
    if (yt_check(x, what, YT_F32, -1) < 0) return NULL;
    red_geom g;
    if (geom(what, x, dim, all, keepdim, &g) < 0) return NULL;
    double scale = mean ? (g.n ? 1.0 / (double)g.n : NAN) : 1.0;
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) return NULL;
    yt_tensor *y = yt_tensor_empty(YT_F32, g.ond, g.oshape);
    if (y) {
        if (g.n == 0) {
            float v = mean ? NAN : 0.0f;
            for (int64_t i = 0; i < yt_numel(y); i++) yt_f32(y)[i] = v;
        } else {
            yt_sum_forward(yt_f32(xc), yt_f32(y), g.outer, g.n, g.inner, scale);
        }
        yt_node *node = yt_record(what, sum_backward, 1, &xc, &y);
        if (node) {
            node->iarg[0] = g.outer;
            node->iarg[1] = g.n;
            node->iarg[2] = g.inner;
            node->farg[0] = scale;
        }
    }
    yt_tensor_release(xc);
    return y;
}

yt_tensor *yt_sum(yt_tensor *x) { return sum_impl("sum", x, 0, 1, 0, 0); }
yt_tensor *yt_mean(yt_tensor *x) { return sum_impl("mean", x, 0, 1, 0, 1); }
yt_tensor *yt_sum_dim(yt_tensor *x, int dim, int keepdim) { return sum_impl("sum", x, dim, 0, keepdim, 0); }
yt_tensor *yt_mean_dim(yt_tensor *x, int dim, int keepdim) { return sum_impl("mean", x, dim, 0, keepdim, 1); }

/* ---- max / min ---- */

static int maxmin_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(node->in[0]);
    if (gx) yt_maxmin_backward(yt_i64(node->saved[0]), yt_f32(gy), gx, node->iarg[0], node->iarg[1], node->iarg[2]);
    return 0;
}

static yt_tensor *maxmin_impl(const char *what, yt_tensor *x, int dim, int all, int keepdim, int is_min,
                              yt_tensor **indices, int want_values)
{
    if (indices) *indices = NULL;
    if (yt_check(x, what, YT_F32, -1) < 0) return NULL;
    red_geom g;
    if (geom(what, x, dim, all, keepdim, &g) < 0) return NULL;
    if (g.n == 0) {
        char b[128];
        yt_error("%s: cannot reduce an empty dimension (shape %s)", what, yt_shape_str(x, b, sizeof b));
        return NULL;
    }
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) return NULL;
    yt_tensor *idx = yt_tensor_empty(YT_I64, g.ond, g.oshape);
    yt_tensor *y = want_values && idx ? yt_tensor_empty(YT_F32, g.ond, g.oshape) : NULL;
    if (!idx || (want_values && !y)) {
        yt_tensor_release(idx);
        yt_tensor_release(xc);
        return NULL;
    }
    yt_maxmin_forward(yt_f32(xc), y ? yt_f32(y) : NULL, yt_i64(idx), g.outer, g.n, g.inner, is_min);
    if (!want_values) {
        yt_tensor_release(xc);
        return idx;
    }
    yt_node *node = yt_record(what, maxmin_backward, 1, &xc, &y);
    if (node) {
        node->iarg[0] = g.outer;
        node->iarg[1] = g.n;
        node->iarg[2] = g.inner;
        yt_node_save(node, idx);
    } else if (!y) {
        yt_tensor_release(idx);
        yt_tensor_release(xc);
        return NULL;
    }
    yt_tensor_release(xc);
    if (indices)
        *indices = idx;
    else
        yt_tensor_release(idx);
    return y;
}

yt_tensor *yt_max(yt_tensor *x) { return maxmin_impl("max", x, 0, 1, 0, 0, NULL, 1); }
yt_tensor *yt_min(yt_tensor *x) { return maxmin_impl("min", x, 0, 1, 0, 1, NULL, 1); }
yt_tensor *yt_max_dim(yt_tensor *x, int dim, int keepdim, yt_tensor **indices)
{
    return maxmin_impl("max", x, dim, 0, keepdim, 0, indices, 1);
}
yt_tensor *yt_min_dim(yt_tensor *x, int dim, int keepdim, yt_tensor **indices)
{
    return maxmin_impl("min", x, dim, 0, keepdim, 1, indices, 1);
}
yt_tensor *yt_argmax(yt_tensor *x, int dim, int keepdim)
{
    return maxmin_impl("argmax", x, dim, 0, keepdim, 0, NULL, 0);
}
yt_tensor *yt_argmin(yt_tensor *x, int dim, int keepdim)
{
    return maxmin_impl("argmin", x, dim, 0, keepdim, 1, NULL, 0);
}
yt_tensor *yt_argmax_all(yt_tensor *x) { return maxmin_impl("argmax", x, 0, 1, 0, 0, NULL, 0); }
yt_tensor *yt_argmin_all(yt_tensor *x) { return maxmin_impl("argmin", x, 0, 1, 0, 1, NULL, 0); }
