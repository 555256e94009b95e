#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/pool.h"
#include "ops/resize.h"
#include "ops/shape_ops.h"
#include "testutil.h"

typedef struct {
    int kh, kw, sh, sw, ph, pw;
} pool_opts;

static yt_tensor *f_pool(yt_tensor **in, void *ud)
{
    pool_opts *o = ud;
    return yt_max_pool2d(in[0], o->kh, o->kw, o->sh, o->sw, o->ph, o->pw);
}

static yt_tensor *f_up(yt_tensor **in, void *ud) { return yt_upsample_nearest(in[0], *(int *)ud); }

/* SPPF: three chained 5x5 / stride-1 pools */
static yt_tensor *f_sppf(yt_tensor **in, void *ud)
{
    yt_tensor *a = yt_max_pool2d(in[0], 5, 5, 1, 1, 2, 2);
    yt_tensor *b = yt_max_pool2d(a, 5, 5, 1, 1, 2, 2);
    yt_tensor *c = yt_max_pool2d(b, 5, 5, 1, 1, 2, 2);
    yt_tensor_release(a);
    yt_tensor_release(b);
    return c;
}

/* Distinct values at least 0.05 apart in random order, so finite differences never cross a tie. */
static yt_tensor *distinct(int ndim, const int64_t *shape)
{
    yt_tensor *t = yt_tensor_empty(YT_F32, ndim, shape);
    int64_t n = yt_numel(t);
    float *p = yt_f32(t);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(i - n / 2) * 0.05f;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tu_uniform(0, 1) * (i + 1));
        if (j > i) j = i;
        float tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    return t;
}

/* Naive reference: explicit padded plane filled with -inf; argmax = first maximum in window order. */
static void check_pool(int N, int C, int H, int W, pool_opts o, int ties)
{
    int64_t xs[] = {N, C, H, W};
    yt_tensor *x = ties ? tu_rand(4, xs, -1, 1) : distinct(4, xs);
    if (ties) { /* quantise to few levels: many ties */
        float *p = yt_f32(x);
        for (int64_t i = 0; i < yt_numel(x); i++) p[i] = floorf(p[i] * 2.0f);
    }
    x->requires_grad = 1;
    yt_tensor *y = yt_max_pool2d(x, o.kh, o.kw, o.sh, o.sw, o.ph, o.pw);
    char desc[128];
    snprintf(desc, sizeof desc, "pool %dx%dx%dx%d k%d,%d s%d,%d p%d,%d ties %d", N, C, H, W, o.kh, o.kw, o.sh, o.sw,
             o.ph, o.pw, ties);
    if (!y) {
        CHECK(0, "%s: %s", desc, yt_last_error());
        yt_tensor_release(x);
        return;
    }
    int OH = (H + 2 * o.ph - o.kh) / o.sh + 1, OW = (W + 2 * o.pw - o.kw) / o.sw + 1;
    CHECK(y->shape[2] == OH && y->shape[3] == OW, "%s: output shape", desc);
    yt_tensor *gy = tu_rand(4, y->shape, -1, 1);
    CHECK(yt_backward(1, &y, &gy) == 0, "backward: %s", yt_last_error());
    int PH = H + 2 * o.ph, PW = W + 2 * o.pw;
    float *pad = malloc((size_t)PH * PW * sizeof *pad);
    double *rgx = calloc((size_t)N * C * H * W, sizeof *rgx);
    int bad_y = 0;
    for (int p = 0; p < N * C; p++) {
        for (int i = 0; i < PH * PW; i++) pad[i] = -INFINITY;
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) pad[(h + o.ph) * PW + w + o.pw] = yt_f32(x)[((size_t)p * H + h) * W + w];
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float best = -INFINITY;
                int bh = -1, bw = -1;
                for (int kh = 0; kh < o.kh; kh++)
                    for (int kw = 0; kw < o.kw; kw++) {
                        int h = oh * o.sh + kh, w = ow * o.sw + kw;
                        if (pad[h * PW + w] > best) {
                            best = pad[h * PW + w];
                            bh = h - o.ph;
                            bw = w - o.pw;
                        }
                    }
                size_t oi = ((size_t)p * OH + oh) * OW + ow;
                if (yt_f32(y)[oi] != best) bad_y++;
                rgx[((size_t)p * H + bh) * W + bw] += yt_f32(gy)[oi];
            }
    }
    CHECK(bad_y == 0, "%s: %d forward values differ", desc, bad_y);
    double worst = 0;
    for (int64_t i = 0; i < yt_numel(x); i++) worst = fmax(worst, fabs(yt_f32(x->grad)[i] - rgx[i]));
    CHECK(worst < 1e-6, "%s: grad input differs by %.3g", desc, worst);
    if (!ties) {
        yt_tensor *in[1] = {x};
        tu_gradcheck(desc, f_pool, 1, in, &o, 1e-2f, 1e-3f, 1e-2f);
    }
    free(pad);
    free(rgx);
    yt_tensor_release(gy);
    yt_tensor_release(y);
    yt_tensor_release(x);
}

static void check_pool_special(void)
{
    /* ties go to the first element of the window */
    int64_t s[] = {1, 1, 2, 2};
    yt_tensor *x = yt_tensor_zeros(YT_F32, 4, s);
    x->requires_grad = 1;
    yt_tensor *y = yt_max_pool2d(x, 2, 2, 2, 2, 0, 0);
    CHECK(yt_backward(1, &y, NULL) == 0, "backward");
    const float *g = yt_f32(x->grad);
    CHECK(g[0] == 1 && g[1] == 0 && g[2] == 0 && g[3] == 0, "tie grads %g %g %g %g", g[0], g[1], g[2], g[3]);
    yt_tensor_release(y);
    /* negative values and padding: padding never wins */
    float v[] = {-5, -4, -3, -2};
    memcpy(yt_f32(x), v, sizeof v);
    y = yt_max_pool2d(x, 3, 3, 1, 1, 1, 1);
    CHECK(y && yt_f32(y)[0] == -2 && yt_f32(y)[3] == -2, "padded max of negatives %g", y ? yt_f32(y)[0] : 0);
    yt_tensor_release(y);
    /* NaN propagates */
    yt_f32(x)[1] = NAN;
    y = yt_max_pool2d(x, 2, 2, 2, 2, 0, 0);
    CHECK(y && isnan(yt_f32(y)[0]), "NaN propagates");
    yt_tensor_release(y);
    yt_tape_clear();
    /* errors */
    y = yt_max_pool2d(x, 2, 2, 2, 2, 2, 0);
    CHECK(!y && strstr(yt_last_error(), "padding"), "padding error: %s", yt_last_error());
    y = yt_max_pool2d(x, 3, 3, 1, 1, 0, 0);
    CHECK(!y && strstr(yt_last_error(), "larger"), "kernel error: %s", yt_last_error());
    y = yt_max_pool2d(x, 2, 2, 0, 1, 0, 0);
    CHECK(!y && strstr(yt_last_error(), "stride"), "stride error: %s", yt_last_error());
    int64_t s3[] = {1, 2, 2};
    yt_tensor *x3 = yt_tensor_zeros(YT_F32, 3, s3);
    y = yt_max_pool2d(x3, 2, 2, 2, 2, 0, 0);
    CHECK(!y && strstr(yt_last_error(), "dimensions"), "ndim error: %s", yt_last_error());
    yt_tensor_release(x3);
    yt_tensor_release(x);
}

/* The forward loop as it was before the separable one: every window scanned in row-major order, the first maximum
 * kept, a NaN winning as soon as it is seen. */
static void old_forward(const float *x, float *y, const yt_pool2d_shape *s)
{
    for (int p = 0; p < s->N * s->C; p++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++) {
                int h0 = oh * s->sh - s->ph, w0 = ow * s->sw - s->pw, h1 = h0 + s->KH, w1 = w0 + s->KW;
                h0 = h0 < 0 ? 0 : h0, w0 = w0 < 0 ? 0 : w0, h1 = h1 > s->H ? s->H : h1, w1 = w1 > s->W ? s->W : w1;
                float best = -INFINITY;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        float v = x[((size_t)p * s->H + h) * s->W + w];
                        if (v > best || isnan(v)) {
                            best = v;
                            if (isnan(v)) goto done;
                        }
                    }
            done:
                y[((size_t)p * s->OH + oh) * s->OW + ow] = best;
            }
}

/* x as a channels-last view (NHWC memory, NCHW shape): a permuted copy, permuted back. */
static yt_tensor *channels_last_copy(yt_tensor *x)
{
    int to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
    yt_tensor *p = yt_permute(x, to_nhwc), *c = yt_contiguous(p), *v = yt_permute(c, to_nchw);
    yt_tensor_release(p);
    yt_tensor_release(c);
    return v;
}

/* The separable forward against the old loop, bitwise: ties between +0 and -0 (which element wins shows in the
 * sign), NaNs of different payloads (which NaN wins shows in the bits), -inf; and the channels-last path (kept
 * layout) against the NCHW one. */
static void check_pool_separable(void)
{
    pool_opts cases[] = {{5, 5, 1, 1, 2, 2}, {3, 3, 2, 2, 1, 1}, {2, 3, 1, 2, 1, 1}, {3, 2, 3, 1, 0, 1},
                         {4, 4, 3, 3, 2, 2}, {1, 3, 1, 1, 0, 1}, {3, 1, 2, 1, 1, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        pool_opts o = cases[ci];
        int64_t xs[] = {2, 5, 9, 11};
        yt_tensor *x = tu_rand(4, xs, -1, 1);
        float *p = yt_f32(x);
        for (int64_t i = 0; i < yt_numel(x); i++) {
            float u = tu_uniform(0, 1);
            if (u < 0.3f)
                p[i] = 0.0f;
            else if (u < 0.6f)
                p[i] = -0.0f;
            else if (u < 0.62f) {
                uint32_t bits = 0x7fc00000u | (uint32_t)(i & 0xffff); /* a NaN whose payload names its position */
                memcpy(&p[i], &bits, sizeof bits);
            } else if (u < 0.65f)
                p[i] = -INFINITY;
            else
                p[i] = floorf(p[i] * 2.0f) * 0.0f; /* more signed zeros */
        }
        yt_pool2d_shape s = {2, 5, 9, 11, o.kh, o.kw, o.sh, o.sw, o.ph, o.pw, 0, 0};
        CHECK(yt_pool2d_shape_init(&s) == 0, "shape");
        size_t ny = (size_t)2 * 5 * s.OH * s.OW;
        float *want = malloc(ny * sizeof *want), *got = malloc(ny * sizeof *got);
        old_forward(p, want, &s);
        yt_max_pool2d_forward(p, got, &s);
        CHECK(memcmp(want, got, ny * sizeof *got) == 0, "case %zu: separable forward differs from the old loop", ci);
        /* channels-last, no gradient: a channels-last result with the same bits */
        yt_tensor *xc = channels_last_copy(x);
        yt_tensor *y = yt_max_pool2d(xc, o.kh, o.kw, o.sh, o.sw, o.ph, o.pw);
        CHECK(y && yt_is_channels_last_dense(y), "case %zu: channels-last result", ci);
        int bad = 0;
        for (int n = 0; y && n < 2; n++)
            for (int c = 0; c < 5; c++)
                for (int h = 0; h < s.OH; h++)
                    for (int w = 0; w < s.OW; w++) {
                        float a = yt_f32(y)[n * y->stride[0] + c * y->stride[1] + h * y->stride[2] + w * y->stride[3]];
                        float b = want[(((size_t)n * 5 + c) * s.OH + h) * s.OW + w];
                        if (memcmp(&a, &b, sizeof a) != 0) bad++;
                    }
        CHECK(bad == 0, "case %zu: %d channels-last values differ", ci, bad);
        /* a channel slice of a channels-last tensor (what C2f's chunk gives) */
        yt_tensor *sl = yt_narrow(xc, 1, 1, 3), *ys = yt_max_pool2d(sl, o.kh, o.kw, o.sh, o.sw, o.ph, o.pw);
        bad = 0;
        for (int n = 0; ys && n < 2; n++)
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < s.OH; h++)
                    for (int w = 0; w < s.OW; w++) {
                        float a =
                            yt_f32(ys)[n * ys->stride[0] + c * ys->stride[1] + h * ys->stride[2] + w * ys->stride[3]];
                        float b = want[(((size_t)n * 5 + c + 1) * s.OH + h) * s.OW + w];
                        if (memcmp(&a, &b, sizeof a) != 0) bad++;
                    }
        CHECK(ys && bad == 0, "case %zu: %d values of the channel slice differ", ci, bad);
        yt_tensor_release(ys);
        yt_tensor_release(sl);
        yt_tensor_release(y);
        yt_tensor_release(xc);
        free(want);
        free(got);
        yt_tensor_release(x);
    }
    /* with a gradient recorded, a channels-last input gives the usual contiguous result and its backward */
    int64_t xs[] = {1, 3, 6, 6};
    yt_tensor *x = distinct(4, xs), *xc = channels_last_copy(x);
    xc->requires_grad = 1;
    yt_tensor *y = yt_max_pool2d(xc, 5, 5, 1, 1, 2, 2), *r = yt_max_pool2d(x, 5, 5, 1, 1, 2, 2);
    CHECK(y && yt_is_contiguous(y) && tu_max_abs_diff(y, r) == 0, "channels-last input with gradients");
    yt_tensor *gy = tu_rand(4, xs, -1, 1);
    CHECK(y && yt_backward(1, &y, &gy) == 0 && xc->grad, "backward: %s", yt_last_error());
    yt_tensor_release(gy);
    yt_tensor_release(r);
    yt_tensor_release(y);
    yt_tensor_release(xc);
    yt_tensor_release(x);
    yt_tape_clear();
}

static void check_upsample_channels_last(void)
{
    for (int sc = 1; sc <= 3; sc++) {
        int64_t xs[] = {2, 6, 3, 5};
        yt_tensor *a = tu_rand(4, xs, -1, 1), *ac = channels_last_copy(a);
        yt_tensor *want = yt_upsample_nearest(a, sc), *got = yt_upsample_nearest(ac, sc);
        yt_tensor *g = got ? yt_contiguous(got) : NULL;
        CHECK(got && yt_is_channels_last_dense(got), "scale %d: channels-last result", sc);
        CHECK(g && tu_max_abs_diff(g, want) == 0, "scale %d: channels-last upsample differs", sc);
        /* a channel slice */
        yt_tensor *sl = yt_narrow(ac, 1, 2, 3), *gs = yt_upsample_nearest(sl, sc), *gsc = gs ? yt_contiguous(gs) : NULL;
        yt_tensor *ws = yt_narrow(want, 1, 2, 3), *wsc = yt_contiguous(ws);
        CHECK(gsc && tu_max_abs_diff(gsc, wsc) == 0, "scale %d: channel slice", sc);
        yt_tensor_release(wsc);
        yt_tensor_release(ws);
        yt_tensor_release(gsc);
        yt_tensor_release(gs);
        yt_tensor_release(sl);
        yt_tensor_release(g);
        yt_tensor_release(got);
        yt_tensor_release(want);
        yt_tensor_release(ac);
        yt_tensor_release(a);
    }
}

static void check_upsample(void)
{
    int64_t s[] = {1, 1, 2, 2};
    float v[] = {1, 2, 3, 4};
    yt_tensor *x = yt_tensor_from_data(YT_F32, 4, s, v);
    x->requires_grad = 1;
    yt_tensor *y = yt_upsample_nearest(x, 2);
    CHECK(y && y->shape[2] == 4 && y->shape[3] == 4, "upsample shape");
    static const float want[] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    CHECK(memcmp(yt_f32(y), want, sizeof want) == 0, "upsample values");
    yt_tensor *gy = yt_tensor_from_data(YT_F32, 4, y->shape, want);
    CHECK(yt_backward(1, &y, &gy) == 0, "backward");
    const float *g = yt_f32(x->grad);
    CHECK(g[0] == 4 && g[1] == 8 && g[2] == 12 && g[3] == 16, "upsample grads %g %g %g %g", g[0], g[1], g[2], g[3]);
    yt_tensor_release(gy);
    yt_tensor_release(y);
    y = yt_upsample_nearest(x, 0);
    CHECK(!y && strstr(yt_last_error(), "scale"), "scale error: %s", yt_last_error());
    yt_tensor_release(x);

    /* general check vs index formula, and finite differences, for scales 1..3 on odd sizes */
    for (int sc = 1; sc <= 3; sc++) {
        int64_t xs[] = {2, 3, 3, 5};
        yt_tensor *a = tu_rand(4, xs, -1, 1);
        yt_tensor *b = yt_upsample_nearest(a, sc);
        int bad = 0;
        for (int p = 0; p < 6; p++)
            for (int i = 0; i < 3 * sc; i++)
                for (int j = 0; j < 5 * sc; j++)
                    if (yt_f32(b)[((size_t)p * 3 * sc + i) * 5 * sc + j] != yt_f32(a)[(p * 3 + i / sc) * 5 + j / sc])
                        bad++;
        CHECK(bad == 0, "scale %d: %d values differ", sc, bad);
        yt_tensor_release(b);
        a->requires_grad = 1;
        char name[64];
        snprintf(name, sizeof name, "upsample_nearest x%d", sc);
        tu_gradcheck(name, f_up, 1, &a, &sc, 1e-2f, 1e-3f, 1e-2f);
        yt_tensor_release(a);
    }
}

int main(void)
{
    tu_seed(11);
    pool_opts cases[] = {
        {2, 2, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1}, {5, 5, 1, 1, 2, 2}, {3, 3, 1, 1, 1, 1},
        {2, 3, 1, 2, 1, 1}, {3, 2, 3, 1, 0, 1}, {1, 1, 2, 2, 0, 0}, {4, 4, 3, 3, 2, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_pool(2, 3, 7, 9, cases[i], 0);
        check_pool(2, 3, 8, 6, cases[i], 1);
    }
    check_pool(16, 8, 10, 10, cases[2], 1); /* SPPF shape, parallel path */
    check_pool_special();
    int64_t ss[] = {1, 2, 6, 7};
    yt_tensor *x = distinct(4, ss);
    x->requires_grad = 1;
    tu_gradcheck("SPPF three chained 5x5 pools", f_sppf, 1, &x, NULL, 1e-2f, 1e-3f, 1e-2f);
    yt_tensor_release(x);
    check_pool_separable();
    check_upsample();
    check_upsample_channels_last();
    return tu_finish();
}
