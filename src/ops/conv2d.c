#include "ops/conv2d.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/autocast.h"
#include "ops/conv2d_dnnl.h"
#include "ops/shape_ops.h"

/* ---- backend selection ---- */

static int is_pointwise(const yt_conv2d_shape *s);

static _Atomic int backend_override; /* yt_conv2d_set_backend; 0 = none */

static int backend_from_env(void)
{
    static _Atomic int parsed; /* 0 = not read yet, -1 = invalid, else the backend */
    int b = parsed;
    if (b == 0) {
        const char *v = getenv("YT_CONV");
        b = (!v || !*v) ? yt_conv2d_default_backend() : yt_conv2d_backend_of(v);
        parsed = b;
    }
    if (b < 0)
        return yt_error("YT_CONV=%s: expected gemm, dnnl or dnnl_all", getenv("YT_CONV") ? getenv("YT_CONV") : "");
    return b;
}

int yt_conv2d_default_backend(void) { return yt_conv2d_dnnl_isa_avx512() ? YT_CONV_DNNL_ALL : YT_CONV_DNNL; }

int yt_conv2d_backend(void)
{
    int b = backend_override;
    return b ? b : backend_from_env();
}

int yt_conv2d_set_backend(int backend)
{
    if (backend != 0 && backend != YT_CONV_GEMM && backend != YT_CONV_DNNL && backend != YT_CONV_DNNL_ALL)
        return yt_error("conv2d: unknown backend %d (expected YT_CONV_GEMM, YT_CONV_DNNL or YT_CONV_DNNL_ALL)",
                        backend);
    backend_override = backend;
    return 0;
}

static const char *const backend_names[] = {NULL, "gemm", "dnnl", "dnnl_all"};

const char *yt_conv2d_backend_name(int backend)
{
    return backend >= YT_CONV_GEMM && backend <= YT_CONV_DNNL_ALL ? backend_names[backend] : "unknown";
}

int yt_conv2d_backend_of(const char *name)
{
    for (int b = YT_CONV_GEMM; b <= YT_CONV_DNNL_ALL; b++)
        if (strcmp(name, backend_names[b]) == 0) return b;
    return -1;
}

/* Whether this pass runs on oneDNN: 1 yes, 0 the GEMM path, -1 error (a bad YT_CONV) */
static int use_dnnl(const yt_conv2d_shape *s, int forward)
{
    if (s->precision == YT_CONV_BF16) return yt_conv2d_dnnl_supports(s); /* bfloat16 runs every pass on oneDNN */
    int b = s->backend ? s->backend : yt_conv2d_backend();
    if (b < 0) return -1;
    if (b == YT_CONV_GEMM) return 0;
    /* dnnl: 1x1 convolutions are one plain sgemm per image on the GEMM path, which measured faster than oneDNN's
     * AVX2 1x1 kernels with their reorders (bench_conv: 0.86-0.98x) */
    if (b == YT_CONV_DNNL && (forward || is_pointwise(s))) return 0;
    return yt_conv2d_dnnl_supports(s);
}

int yt_conv2d_shape_init(yt_conv2d_shape *s)
{
    if (s->N < 0 || s->C < 1 || s->H < 1 || s->W < 1 || s->O < 1 || s->KH < 1 || s->KW < 1)
        return yt_error("conv2d: invalid sizes (N %d, C %d, H %d, W %d, O %d, kernel %dx%d)", s->N, s->C, s->H, s->W,
                        s->O, s->KH, s->KW);
    if (s->sh < 1 || s->sw < 1) return yt_error("conv2d: stride must be >= 1, got (%d, %d)", s->sh, s->sw);
    if (s->ph < 0 || s->pw < 0) return yt_error("conv2d: padding must be >= 0, got (%d, %d)", s->ph, s->pw);
    int64_t eh = (int64_t)s->H + 2 * (int64_t)s->ph - s->KH, ew = (int64_t)s->W + 2 * (int64_t)s->pw - s->KW;
    if (eh < 0 || ew < 0)
        return yt_error("conv2d: kernel %dx%d larger than padded input %lldx%lld", s->KH, s->KW,
                        (long long)(s->H + 2 * (int64_t)s->ph), (long long)(s->W + 2 * (int64_t)s->pw));
    s->OH = (int)(eh / s->sh + 1);
    s->OW = (int)(ew / s->sw + 1);
    int64_t ckk = (int64_t)s->C * s->KH * s->KW, p = (int64_t)s->OH * s->OW;
    if (ckk > INT32_MAX / 2 || p > INT32_MAX / 2 || ckk * p > ((int64_t)1 << 40))
        return yt_error("conv2d: problem too large (C*KH*KW = %lld, OH*OW = %lld)", (long long)ckk, (long long)p);
    return 0;
}

static int is_pointwise(const yt_conv2d_shape *s)
{
    return s->KH == 1 && s->KW == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0;
}

/* First output column ow whose input column ow*sw - pw + kw lies in [0, W), and one past the last. */
static void valid_cols(int kw, const yt_conv2d_shape *s, int *lo, int *hi)
{
    int a = s->pw - kw; /* need ow*sw >= a */
    int l = a <= 0 ? 0 : (a + s->sw - 1) / s->sw;
    int b = s->W + s->pw - kw; /* need ow*sw < b */
    int h = b <= 0 ? 0 : (b + s->sw - 1) / s->sw;
    if (h > s->OW) h = s->OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Channels [c0, c1) of one image. */
static void im2col_range(const float *x, float *col, const yt_conv2d_shape *s, int c0, int c1)
{
    const int H = s->H, W = s->W, KH = s->KH, KW = s->KW, OH = s->OH, OW = s->OW, sh = s->sh, sw = s->sw;
    const size_t P = (size_t)OH * OW;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int kh = 0; kh < KH; kh++) {
            for (int kw = 0; kw < KW; kw++) {
                float *row = col + ((size_t)(c * KH + kh) * KW + kw) * P;
                int lo, hi;
                valid_cols(kw, s, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    float *r = row + (size_t)oh * OW;
                    int ih = oh * sh - s->ph + kh;
                    if (ih < 0 || ih >= H || lo >= hi) {
                        memset(r, 0, (size_t)OW * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + (size_t)ih * W + (kw - s->pw);
                    for (int ow = 0; ow < lo; ow++) r[ow] = 0.0f;
                    if (sw == 1) {
                        memcpy(r + lo, xr + lo, (size_t)(hi - lo) * sizeof *r);
                    } else {
                        for (int ow = lo; ow < hi; ow++) r[ow] = xr[(size_t)ow * sw];
                    }
                    for (int ow = hi; ow < OW; ow++) r[ow] = 0.0f;
                }
            }
        }
    }
}

static void col2im_range(const float *gcol, float *gx, const yt_conv2d_shape *s, int c0, int c1)
{
    const int H = s->H, W = s->W, KH = s->KH, KW = s->KW, OH = s->OH, OW = s->OW, sh = s->sh, sw = s->sw;
    const size_t P = (size_t)OH * OW;
    for (int c = c0; c < c1; c++) {
        float *gxc = gx + (size_t)c * H * W;
        for (int kh = 0; kh < KH; kh++) {
            for (int kw = 0; kw < KW; kw++) {
                const float *row = gcol + ((size_t)(c * KH + kh) * KW + kw) * P;
                int lo, hi;
                valid_cols(kw, s, &lo, &hi);
                if (lo >= hi) continue;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * sh - s->ph + kh;
                    if (ih < 0 || ih >= H) continue;
                    const float *r = row + (size_t)oh * OW;
                    float *xr = gxc + (size_t)ih * W + (kw - s->pw);
                    if (sw == 1) {
                        for (int ow = lo; ow < hi; ow++) xr[ow] += r[ow];
                    } else {
                        for (int ow = lo; ow < hi; ow++) xr[(size_t)ow * sw] += r[ow];
                    }
                }
            }
        }
    }
}

void yt_im2col(const float *x, float *col, const yt_conv2d_shape *s) { im2col_range(x, col, s, 0, s->C); }

void yt_col2im_add(const float *gcol, float *gx, const yt_conv2d_shape *s) { col2im_range(gcol, gx, s, 0, s->C); }

/* Channel-parallel versions for the sequential-images strategy. */
static void im2col_par(const float *x, float *col, const yt_conv2d_shape *s)
{
#pragma omp parallel for schedule(static) if (s->C > 1 && (size_t)s->C * s->KH * s->KW * s->OH * s->OW > 65536)
    for (int c = 0; c < s->C; c++) im2col_range(x, col, s, c, c + 1);
}

static void col2im_par(const float *gcol, float *gx, const yt_conv2d_shape *s)
{
#pragma omp parallel for schedule(static) if (s->C > 1 && (size_t)s->C * s->KH * s->KW * s->OH * s->OW > 65536)
    for (int c = 0; c < s->C; c++) col2im_range(gcol, gx, s, c, c + 1);
}

static float *alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    return aligned_alloc(64, bytes);
}

static int choose_strategy(const yt_conv2d_shape *s)
{
    if (s->strategy == 1 || s->strategy == 2) return s->strategy;
    int nt = omp_get_max_threads();
    if (nt <= 1 || omp_in_parallel()) return 1;
    /* enough images to keep every thread busy: one image per thread with single-threaded BLAS avoids
     * BLAS's fork/join per GEMM and parallelises im2col/col2im for free */
    return s->N >= nt ? 1 : 2;
}

/* y_n (O, P) = W (O, CKK) @ col (CKK, P) [+ b] */
static void forward_image(const float *xn, float *yn, const float *w, const float *b, float *colbuf,
                          const yt_conv2d_shape *s, int par)
{
    const int CKK = s->C * s->KH * s->KW, P = s->OH * s->OW;
    const float *col = xn;
    if (!is_pointwise(s)) {
        if (par)
            im2col_par(xn, colbuf, s);
        else
            yt_im2col(xn, colbuf, s);
        col = colbuf;
    }
    float beta = 0.0f;
    if (b) {
        for (int o = 0; o < s->O; o++) {
            float *r = yn + (size_t)o * P, v = b[o];
            for (int p = 0; p < P; p++) r[p] = v;
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->O, P, CKK, 1.0f, w, CKK, col, P, beta, yn, P);
}

int yt_conv2d_forward(const float *x, float *y, const float *w, const float *b, const yt_conv2d_shape *s)
{
    const size_t CKK = (size_t)s->C * s->KH * s->KW, P = (size_t)s->OH * s->OW;
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * P;
    if (s->N == 0) return 0;
    int dnnl = use_dnnl(s, 1);
    if (dnnl) return dnnl < 0 ? -1 : yt_conv2d_dnnl_forward(x, y, w, b, s);
    int strategy = choose_strategy(s);
    int pw = is_pointwise(s);
    if (strategy == 2) {
        float *buf = pw ? NULL : alloc_floats(CKK * P);
        if (!pw && !buf) return yt_error("conv2d: out of memory for a %zux%zu column buffer", CKK, P);
        for (int n = 0; n < s->N; n++) forward_image(x + n * xs, y + n * ys, w, b, buf, s, 1);
        free(buf);
        return 0;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > s->N) nt = s->N;
    float *buf = NULL;
    if (!pw) {
        buf = alloc_floats(CKK * P * (size_t)nt);
        if (!buf) return yt_error("conv2d: out of memory for %d column buffers of %zux%zu", nt, CKK, P);
    }
    /* dynamic: images are independent, so a thread slowed down by other load hands its share to the others */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int n = 0; n < s->N; n++) {
        float *mine = buf ? buf + CKK * P * (size_t)omp_get_thread_num() : NULL;
        forward_image(x + n * xs, y + n * ys, w, b, mine, s, 0);
    }
    free(buf);
    return 0;
}

/* One image's backward. gw (O, CKK) and gb_acc (O, double) accumulate; gx_n accumulates, or is overwritten when
 * gx_acc is 0. */
static void backward_image(const float *xn, const float *gyn, float *gxn, int gx_acc, const float *w, float *gw,
                           double *gb, float *colbuf, const yt_conv2d_shape *s, int par)
{
    const int CKK = s->C * s->KH * s->KW, P = s->OH * s->OW, O = s->O;
    const int pw = is_pointwise(s);
    if (gb) {
        for (int o = 0; o < O; o++) {
            const float *r = gyn + (size_t)o * P;
            double acc = 0.0;
            for (int p = 0; p < P; p++) acc += r[p];
            gb[o] += acc;
        }
    }
    if (gw) {
        const float *col = xn;
        if (!pw) {
            if (par)
                im2col_par(xn, colbuf, s);
            else
                yt_im2col(xn, colbuf, s);
            col = colbuf;
        }
        /* gw (O, CKK) += gy_n (O, P) @ col^T (P, CKK) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, O, CKK, P, 1.0f, gyn, P, col, P, 1.0f, gw, CKK);
    }
    if (gxn) {
        if (pw) {
            /* gx_n (C, P) += W^T (C, O) @ gy_n (O, P) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, P, O, 1.0f, w, CKK, gyn, P, gx_acc ? 1.0f : 0.0f,
                        gxn, P);
        } else {
            if (!gx_acc) memset(gxn, 0, (size_t)s->C * s->H * s->W * sizeof *gxn); /* col2im adds */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, P, O, 1.0f, w, CKK, gyn, P, 0.0f, colbuf, P);
            if (par)
                col2im_par(colbuf, gxn, s);
            else
                yt_col2im_add(colbuf, gxn, s);
        }
    }
}

int yt_conv2d_backward(const float *x, const float *gy, float *gx, const float *w, float *gw, float *gb,
                       const yt_conv2d_shape *s)
{
    return yt_conv2d_backward_into(x, gy, gx, 1, w, gw, 1, gb, s);
}

int yt_conv2d_backward_into(const float *x, const float *gy, float *gx, int gx_acc, const float *w, float *gw,
                            int gw_acc, float *gb, const yt_conv2d_shape *s)
{
    const size_t CKK = (size_t)s->C * s->KH * s->KW, P = (size_t)s->OH * s->OW, O = (size_t)s->O;
    const size_t xs = (size_t)s->C * s->H * s->W, ys = O * P;
    if (s->N == 0) {
        /* nothing to add; a gradient to overwrite is all zeros */
        if (gw && !gw_acc) memset(gw, 0, O * CKK * sizeof *gw);
        return 0;
    }
    if (!gx && !gw && !gb) return 0;
    int dnnl = use_dnnl(s, 0);
    if (dnnl) return dnnl < 0 ? -1 : yt_conv2d_dnnl_backward(x, gy, gx, gx_acc, w, gw, gw_acc, gb, s);
    /* the weight gradient is small: the GEMM path zeroes it and accumulates */
    if (gw && !gw_acc) memset(gw, 0, O * CKK * sizeof *gw);
    const int pw = is_pointwise(s);
    const int need_col = !pw && (gx || gw);
    int strategy = choose_strategy(s);
    if (strategy == 2) {
        float *buf = need_col ? alloc_floats(CKK * P) : NULL;
        double *gbd = gb ? calloc(O, sizeof *gbd) : NULL;
        if ((need_col && !buf) || (gb && !gbd)) {
            free(buf);
            free(gbd);
            return yt_error("conv2d backward: out of memory for a %zux%zu column buffer", CKK, P);
        }
        for (int n = 0; n < s->N; n++)
            backward_image(x ? x + n * xs : NULL, gy + n * ys, gx ? gx + n * xs : NULL, gx_acc, w, gw, gbd, buf, s, 1);
        if (gb)
            for (size_t o = 0; o < O; o++) gb[o] += (float)gbd[o];
        free(buf);
        free(gbd);
        return 0;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > s->N) nt = s->N;
    /* per-thread: a column buffer, a weight-gradient accumulator (thread 0 accumulates straight into gw
     * only when it is the only thread), and double bias sums */
    float *buf = need_col ? alloc_floats(CKK * P * (size_t)nt) : NULL;
    float *gwl = (gw && nt > 1) ? alloc_floats(O * CKK * (size_t)nt) : NULL;
    double *gbd = gb ? calloc(O * (size_t)nt, sizeof *gbd) : NULL;
    if ((need_col && !buf) || (gw && nt > 1 && !gwl) || (gb && !gbd)) {
        free(buf);
        free(gwl);
        free(gbd);
        return yt_error("conv2d backward: out of memory for %d per-thread buffers (%zux%zu)", nt, CKK, P);
    }
    if (gwl) memset(gwl, 0, O * CKK * (size_t)nt * sizeof *gwl);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num();
        float *mycol = buf ? buf + CKK * P * (size_t)t : NULL;
        float *mygw = gw ? (gwl ? gwl + O * CKK * (size_t)t : gw) : NULL;
        double *mygb = gbd ? gbd + O * (size_t)t : NULL;
        /* static: which images a thread sums into its weight-gradient buffer must not vary between runs,
         * or the float sums (and so training) would not be reproducible */
#pragma omp for schedule(static)
        for (int n = 0; n < s->N; n++)
            backward_image(x ? x + n * xs : NULL, gy + n * ys, gx ? gx + n * xs : NULL, gx_acc, w, mygw, mygb, mycol, s,
                           0);
    }
    if (gwl) {
        size_t m = O * CKK;
#pragma omp parallel for schedule(static) if (m > 65536)
        for (size_t i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int t = 0; t < nt; t++) acc += gwl[(size_t)t * m + i];
            gw[i] += acc;
        }
    }
    if (gb) {
        for (size_t o = 0; o < O; o++) {
            double acc = 0.0;
            for (int t = 0; t < nt; t++) acc += gbd[(size_t)t * O + o];
            gb[o] += (float)acc;
        }
    }
    free(buf);
    free(gwl);
    free(gbd);
    return 0;
}

/* ---- tensor level ---- */

typedef struct {
    yt_conv2d_shape s;
    int x_saved, w_saved; /* index into node->saved, or -1 */
} conv_ctx;

static int conv2d_backward(yt_node *node)
{
    conv_ctx *ctx = node->ctx;
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    yt_tensor *xin = node->in[0], *win = node->in[1], *bin = node->n_in > 2 ? node->in[2] : NULL;
    /* the input and weight gradients are written whole: a fresh buffer is stored into, not zeroed and added to
     * (an input that is both x and w is accumulated into, zeroed first) */
    const int alias = xin && xin == win;
    int gx_acc = 1, gw_acc = 1;
    float *gx = alias ? yt_grad_accum(xin) : yt_grad_dest(xin, &gx_acc);
    if (xin && !gx) return -1;
    float *gw = alias ? gx : yt_grad_dest(win, &gw_acc);
    if (win && !gw) return -1;
    float *gb = yt_grad_accum(bin);
    if (bin && !gb) return -1;
    const float *x = ctx->x_saved >= 0 ? yt_f32(node->saved[ctx->x_saved]) : NULL;
    const float *w = ctx->w_saved >= 0 ? yt_f32(node->saved[ctx->w_saved]) : NULL;
    if ((gw && !x) || (gx && !w)) return yt_error("conv2d backward: missing saved tensors");
    return yt_conv2d_backward_into(x, yt_f32(gy), gx, gx_acc, w, gw, gw_acc, gb, &ctx->s);
}

yt_tensor *yt_conv2d(yt_tensor *x, yt_tensor *w, yt_tensor *b, int stride_h, int stride_w, int pad_h, int pad_w)
{
    if (yt_check(x, "conv2d input", YT_F32, 4) < 0 || yt_check(w, "conv2d weight", YT_F32, 4) < 0) return NULL;
    if (b && yt_check(b, "conv2d bias", YT_F32, 1) < 0) return NULL;
    char bx[128], bw[128];
    if (w->shape[1] != x->shape[1]) {
        if (w->shape[1] > 0 && x->shape[1] % w->shape[1] == 0)
            yt_error("conv2d: grouped convolution (groups = %lld) is not supported: input %s, weight %s",
                     (long long)(x->shape[1] / w->shape[1]), yt_shape_str(x, bx, sizeof bx),
                     yt_shape_str(w, bw, sizeof bw));
        else
            yt_error("conv2d: input channels do not match the weight: input %s, weight %s (OIHW)",
                     yt_shape_str(x, bx, sizeof bx), yt_shape_str(w, bw, sizeof bw));
        return NULL;
    }
    if (b && b->shape[0] != w->shape[0]) {
        yt_error("conv2d: bias %s does not match %lld output channels", yt_shape_str(b, bx, sizeof bx),
                 (long long)w->shape[0]);
        return NULL;
    }
    for (int d = 0; d < 4; d++) {
        if (x->shape[d] > INT32_MAX / 4 || w->shape[d] > INT32_MAX / 4) {
            yt_error("conv2d: dimension too large: input %s, weight %s", yt_shape_str(x, bx, sizeof bx),
                     yt_shape_str(w, bw, sizeof bw));
            return NULL;
        }
    }
    yt_conv2d_shape s = {
        .N = (int)x->shape[0],
        .C = (int)x->shape[1],
        .H = (int)x->shape[2],
        .W = (int)x->shape[3],
        .O = (int)w->shape[0],
        .KH = (int)w->shape[2],
        .KW = (int)w->shape[3],
        .sh = stride_h,
        .sw = stride_w,
        .ph = pad_h,
        .pw = pad_w,
        .strategy = 0,
        .backend = 0,
        /* mixed precision (ops/autocast.h): bfloat16 products for what is recorded for backward */
        .precision = yt_autocast_active() && yt_needs_grad(3, (yt_tensor *[3]){x, w, b}) ? YT_CONV_BF16 : YT_CONV_F32,
    };
    if (yt_conv2d_shape_init(&s) < 0) {
        yt_error_prefix("input %s, weight %s: ", yt_shape_str(x, bx, sizeof bx), yt_shape_str(w, bw, sizeof bw));
        return NULL;
    }
    yt_tensor *xc = yt_contiguous(x);
    yt_tensor *wc = xc ? yt_contiguous(w) : NULL;
    yt_tensor *bc = (wc && b) ? yt_contiguous(b) : NULL;
    yt_tensor *y = NULL;
    if (!xc || !wc || (b && !bc)) goto done;
    int64_t yshape[4] = {s.N, s.O, s.OH, s.OW};
    y = yt_tensor_empty(YT_F32, 4, yshape);
    if (!y) goto done;
    if (yt_conv2d_forward(yt_f32(xc), yt_f32(y), yt_f32(wc), bc ? yt_f32(bc) : NULL, &s) < 0) {
        yt_tensor_release(y);
        y = NULL;
        goto done;
    }
    yt_tensor *ins[3] = {xc, wc, bc};
    int n_in = bc ? 3 : 2;
    if (yt_needs_grad(n_in, ins)) {
        conv_ctx *ctx = malloc(sizeof *ctx);
        yt_node *node = ctx ? yt_node_new("conv2d", conv2d_backward, n_in, ins) : NULL;
        if (!node) {
            if (!ctx) yt_error("conv2d: out of memory");
            free(ctx);
            yt_tensor_release(y);
            y = NULL;
            goto done;
        }
        ctx->s = s;
        ctx->x_saved = ctx->w_saved = -1;
        node->ctx = ctx;
        node->free_ctx = free;
        if (wc->requires_grad) {
            ctx->x_saved = node->n_saved;
            yt_node_save(node, xc);
        }
        if (xc->requires_grad) {
            ctx->w_saved = node->n_saved;
            yt_node_save(node, wc);
        }
        yt_node_add_output(node, y);
    }
done:
    yt_tensor_release(xc);
    yt_tensor_release(wc);
    yt_tensor_release(bc);
    return y;
}
