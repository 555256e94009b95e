#include "ops/pool.h"

#include <math.h>
#include <stdlib.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

int yt_pool2d_shape_init(yt_pool2d_shape *s)
{
    if (s->N < 0 || s->C < 0 || s->H < 1 || s->W < 1)
        return yt_error("max_pool2d: invalid input size (N %d, C %d, H %d, W %d)", s->N, s->C, s->H, s->W);
    if (s->KH < 1 || s->KW < 1) return yt_error("max_pool2d: kernel must be >= 1, got (%d, %d)", s->KH, s->KW);
    if (s->sh < 1 || s->sw < 1) return yt_error("max_pool2d: stride must be >= 1, got (%d, %d)", s->sh, s->sw);
    if (s->ph < 0 || s->pw < 0 || s->ph > s->KH / 2 || s->pw > s->KW / 2)
        return yt_error("max_pool2d: padding (%d, %d) must be between 0 and half the kernel (%d, %d)", s->ph, s->pw,
                        s->KH, s->KW);
    int64_t eh = (int64_t)s->H + 2 * (int64_t)s->ph - s->KH, ew = (int64_t)s->W + 2 * (int64_t)s->pw - s->KW;
    if (eh < 0 || ew < 0)
        return yt_error("max_pool2d: kernel %dx%d larger than padded input %lldx%lld", s->KH, s->KW,
                        (long long)(s->H + 2 * (int64_t)s->ph), (long long)(s->W + 2 * (int64_t)s->pw));
    s->OH = (int)(eh / s->sh + 1);
    s->OW = (int)(ew / s->sw + 1);
    return 0;
}

/* Index (into the plane) of the window maximum for output (oh, ow). Every window holds at least one real
 * element because padding <= kernel / 2. */
static inline size_t window_argmax(const float *xp, int oh, int ow, const yt_pool2d_shape *s, float *maxv)
{
    int h0 = oh * s->sh - s->ph, w0 = ow * s->sw - s->pw;
    int h1 = h0 + s->KH, w1 = w0 + s->KW;
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    if (h1 > s->H) h1 = s->H;
    if (w1 > s->W) w1 = s->W;
    float best = -INFINITY;
    size_t arg = (size_t)h0 * s->W + w0;
    for (int h = h0; h < h1; h++) {
        const float *r = xp + (size_t)h * s->W;
        for (int w = w0; w < w1; w++) {
            float v = r[w];
            if (v > best || isnan(v)) {
                best = v;
                arg = (size_t)h * s->W + w;
                if (isnan(v)) goto done;
            }
        }
    }
done:
    *maxv = best;
    return arg;
}

/* The window of output position o along one axis: [lo, hi) clipped to the input (never empty, as padding <=
 * kernel / 2). */
static inline void window(int o, int stride, int pad, int k, int n, int *lo, int *hi)
{
    int a = o * stride - pad, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > n ? n : b;
}

/* The first maximum of v[0], v[step], ... (n >= 1 values), a NaN winning as soon as it is seen: the rule of
 * window_argmax along one axis. */
static inline float first_max(const float *v, size_t step, int n)
{
    float best = -INFINITY;
    for (int i = 0; i < n; i++) {
        float x = v[(size_t)i * step];
        if (x > best || isnan(x)) {
            best = x;
            if (isnan(x)) break;
        }
    }
    return best;
}

/* One plane, separable: the maximum of each row's window (tmp: H x OW), then of those along each column's window.
 * The element this picks is the one the row-major scan of window_argmax picks (the topmost row holding the
 * maximum, its first occurrence there; a NaN at the first NaN), so the output is bitwise the same. */
static void pool_plane_separable(const float *xp, float *yp, float *tmp, const yt_pool2d_shape *s)
{
    for (int h = 0; h < s->H; h++)
        for (int ow = 0; ow < s->OW; ow++) {
            int lo, hi;
            window(ow, s->sw, s->pw, s->KW, s->W, &lo, &hi);
            tmp[(size_t)h * s->OW + ow] = first_max(xp + (size_t)h * s->W + lo, 1, hi - lo);
        }
    for (int oh = 0; oh < s->OH; oh++) {
        int lo, hi;
        window(oh, s->sh, s->ph, s->KH, s->H, &lo, &hi);
        for (int ow = 0; ow < s->OW; ow++)
            yp[(size_t)oh * s->OW + ow] = first_max(tmp + (size_t)lo * s->OW + ow, (size_t)s->OW, hi - lo);
    }
}

static void pool_plane_direct(const float *xp, float *yp, const yt_pool2d_shape *s)
{
    for (int oh = 0; oh < s->OH; oh++)
        for (int ow = 0; ow < s->OW; ow++) {
            float v;
            window_argmax(xp, oh, ow, s, &v);
            yp[(size_t)oh * s->OW + ow] = v;
        }
}

void yt_max_pool2d_forward(const float *x, float *y, const yt_pool2d_shape *s)
{
    const size_t planes = (size_t)s->N * s->C, hw = (size_t)s->H * s->W, ohw = (size_t)s->OH * s->OW;
    /* separable when it saves work (kernels wider than 1 in both axes) */
    const int separable = s->KH > 1 && s->KW > 1;
#pragma omp parallel if (planes > 1 && planes * ohw * s->KH * s->KW > 65536)
    {
        /* a thread without its row buffer runs the direct loop: same result */
        float *tmp = separable ? malloc((size_t)s->H * s->OW * sizeof(float)) : NULL;
#pragma omp for schedule(static)
        for (size_t p = 0; p < planes; p++) {
            if (tmp)
                pool_plane_separable(x + p * hw, y + p * ohw, tmp, s);
            else
                pool_plane_direct(x + p * hw, y + p * ohw, s);
        }
        free(tmp);
    }
}

/* t[c] = first_max's step for each of n channels at once: v[c] replaces t[c] when greater or NaN, unless t[c] is
 * already NaN (the first NaN stays). */
static inline void max_step(float *restrict t, const float *restrict v, size_t n)
{
#pragma omp simd
    for (size_t c = 0; c < n; c++) t[c] = (v[c] > t[c] || v[c] != v[c]) && t[c] == t[c] ? v[c] : t[c];
}

/* Channels-last: x (N, H, W, C) and y (N, OH, OW, C) in memory, x with pixel stride xp (>= C) and y dense; the same
 * separable rule, all channels of a pixel at once, with tmp (N, H, OW, C). */
static void max_pool2d_forward_channels_last(const float *x, size_t xp, float *y, float *tmp, const yt_pool2d_shape *s)
{
    const size_t C = (size_t)s->C;
    const int rows = s->N * s->H, orows = s->N * s->OH;
#pragma omp parallel for schedule(static) if (rows > 1 && (size_t)rows * s->OW * C * s->KW > 65536)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * s->W * xp;
        float *tr = tmp + (size_t)r * s->OW * C;
        for (int ow = 0; ow < s->OW; ow++) {
            int lo, hi;
            window(ow, s->sw, s->pw, s->KW, s->W, &lo, &hi);
            float *t = tr + (size_t)ow * C;
            for (size_t c = 0; c < C; c++) t[c] = -INFINITY;
            for (int w = lo; w < hi; w++) max_step(t, xr + (size_t)w * xp, C);
        }
    }
#pragma omp parallel for schedule(static) if (orows > 1 && (size_t)orows * s->OW * C * s->KH > 65536)
    for (int r = 0; r < orows; r++) {
        const int n = r / s->OH, oh = r % s->OH;
        int lo, hi;
        window(oh, s->sh, s->ph, s->KH, s->H, &lo, &hi);
        const size_t row = (size_t)s->OW * C;
        float *yr = y + (size_t)r * row;
        for (size_t i = 0; i < row; i++) yr[i] = -INFINITY;
        for (int h = lo; h < hi; h++) max_step(yr, tmp + ((size_t)n * s->H + h) * row, row);
    }
}

void yt_max_pool2d_backward(const float *x, const float *gy, float *gx, const yt_pool2d_shape *s)
{
    const size_t planes = (size_t)s->N * s->C, hw = (size_t)s->H * s->W, ohw = (size_t)s->OH * s->OW;
#pragma omp parallel for schedule(static) if (planes * ohw * s->KH * s->KW > 65536)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * hw, *gp = gy + p * ohw;
        float *gxp = gx + p * hw;
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++) {
                float v;
                size_t a = window_argmax(xp, oh, ow, s, &v);
                gxp[a] += gp[(size_t)oh * s->OW + ow];
            }
    }
}

static int max_pool2d_backward(yt_node *node)
{
    yt_tensor *x = node->saved[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(node->in[0]);
    if (!gx) return node->in[0] ? -1 : 0;
    yt_pool2d_shape s = {(int)x->shape[0],
                         (int)x->shape[1],
                         (int)x->shape[2],
                         (int)x->shape[3],
                         (int)node->iarg[0],
                         (int)node->iarg[1],
                         (int)node->iarg[2],
                         (int)node->iarg[3],
                         (int)node->iarg[4],
                         (int)node->iarg[5],
                         0,
                         0};
    if (yt_pool2d_shape_init(&s) < 0) return -1;
    yt_max_pool2d_backward(yt_f32(x), yt_f32(gy), gx, &s);
    return 0;
}

yt_tensor *yt_max_pool2d(yt_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    if (yt_check(x, "max_pool2d input", YT_F32, 4) < 0) return NULL;
    char b[128];
    for (int d = 0; d < 4; d++) {
        if (x->shape[d] > INT32_MAX / 4) {
            yt_error("max_pool2d: input %s too large", yt_shape_str(x, b, sizeof b));
            return NULL;
        }
    }
    yt_pool2d_shape s = {
        (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], kh, kw, sh, sw, ph, pw, 0, 0};
    if (yt_pool2d_shape_init(&s) < 0) {
        yt_error_prefix("input %s: ", yt_shape_str(x, b, sizeof b));
        return NULL;
    }
    if (yt_is_channels_last(x) && !yt_needs_grad(1, &x) && x->stride[2] == x->stride[3] * s.W &&
        (s.N == 1 || x->stride[0] == x->stride[2] * s.H)) {
        /* the fused inference path's layout, kept (shape_ops.h) */
        yt_tensor *y = yt_tensor_empty_channels_last(s.N, s.C, s.OH, s.OW);
        int64_t ts[4] = {s.N, s.H, s.OW, s.C};
        yt_tensor *tmp = y ? yt_tensor_empty(YT_F32, 4, ts) : NULL;
        if (!tmp) {
            yt_tensor_release(y);
            return NULL;
        }
        max_pool2d_forward_channels_last(yt_f32(x), (size_t)x->stride[3], yt_f32(y), yt_f32(tmp), &s);
        yt_tensor_free_storage(tmp);
        yt_tensor_release(tmp);
        return y;
    }
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) return NULL;
    int64_t ys[4] = {s.N, s.C, s.OH, s.OW};
    yt_tensor *y = yt_tensor_empty(YT_F32, 4, ys);
    if (y) {
        yt_max_pool2d_forward(yt_f32(xc), yt_f32(y), &s);
        yt_node *node = yt_record("max_pool2d", max_pool2d_backward, 1, &xc, &y);
        if (node) {
            int64_t a[6] = {kh, kw, sh, sw, ph, pw};
            for (int i = 0; i < 6; i++) node->iarg[i] = a[i];
            yt_node_save(node, xc);
        }
    }
    yt_tensor_release(xc);
    return y;
}
