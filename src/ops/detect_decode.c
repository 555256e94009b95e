#include "ops/detect_decode.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"

/* expf for the decode, written so that loops over it vectorise (glibc's expf does not): Cephes' range reduction
 * (x = n ln 2 + r, |r| <= ln 2 / 2) and degree-6 polynomial, relative error below 2e-7 (tests/c/test_detect_decode.c
 * checks it against expf). Arguments are clamped to [-87.34, 88] (the result then stays a normal float: exp of
 * a very negative argument gives 1.2e-38 instead of 0, of a large one 1.7e38 instead of inf); a NaN stays NaN. */
static inline float exp_vec(float x)
{
    float xc = x < -87.33654f ? -87.33654f : (x > 88.0f ? 88.0f : x);
    xc = x == x ? xc : 0.0f; /* NaN: computed on 0, replaced below (no NaN reaches the integer conversion) */
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (floorf would not vectorise without -fno-trapping-math) */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x == x ? p * scale : x;
}

float yt_detect_exp(float x) { return exp_vec(x); }

/* Anchors per tile. A tile's logits are first gathered into a (4 * reg_max + nc) x TILE block (row c: channel c of
 * each anchor), so that every step below is elementwise along the anchors, in loops of a fixed length that
 * vectorise; its outputs are gathered in a (4 + nc) x TILE block and written row by row (one anchor's 84 values
 * are A apart in the output: stored one at a time, each would touch another page). */
#define TILE 64

/* The anchors a0 .. a0 + n - 1 of image b into in (no x TILE; the lanes past n are 0), with their anchor points
 * and strides. */
static void gather_tile(const yt_detect_level *levels, const int64_t *start, int64_t b, int64_t a0, int n, int64_t no,
                        float *in, float *ax, float *ay, float *st)
{
    int l = 0;
    for (int j = 0; j < TILE; j++) {
        if (j >= n) {
            for (int64_t c = 0; c < no; c++) in[c * TILE + j] = 0.0f;
            ax[j] = ay[j] = st[j] = 0.0f;
            continue;
        }
        const int64_t a = a0 + j;
        while (a >= start[l + 1]) l++;
        const yt_detect_level *lv = &levels[l];
        const int64_t i = a - start[l], py = i / lv->W, px = i % lv->W;
        const float *base = lv->data + b * lv->st[0] + py * lv->st[2] + px * lv->st[3];
        const int64_t cs = lv->st[1];
        for (int64_t c = 0; c < no; c++) in[c * TILE + j] = base[c * cs];
        ax[j] = (float)px + 0.5f;
        ay[j] = (float)py + 0.5f;
        st[j] = lv->stride;
    }
}

/* Per lane, the expectation of one side's bins (rows v, v + TILE, ...; overwritten by their exponentials) under
 * their softmax: the shift of ops/softmax.c (the maximum, NaN if any; 0 when all are -inf), the weights w in bin
 * order. */
static void dfl_side(float *v, int bins, const float *w, float *d)
{
    float m[TILE], s[TILE];
    for (int j = 0; j < TILE; j++) m[j] = -INFINITY, s[j] = 0.0f, d[j] = 0.0f;
    for (int k = 0; k < bins; k++) {
        const float *r = v + k * TILE;
        for (int j = 0; j < TILE; j++) m[j] = (r[j] > m[j] || r[j] != r[j]) && m[j] == m[j] ? r[j] : m[j];
    }
    for (int j = 0; j < TILE; j++) m[j] = m[j] == -INFINITY ? 0.0f : m[j];
    for (int k = 0; k < bins; k++) {
        float *r = v + k * TILE;
        for (int j = 0; j < TILE; j++) {
            r[j] = exp_vec(r[j] - m[j]);
            s[j] += r[j];
        }
    }
    for (int j = 0; j < TILE; j++) s[j] = 1.0f / s[j];
    for (int k = 0; k < bins; k++) {
        const float *r = v + k * TILE;
        for (int j = 0; j < TILE; j++) d[j] += w[k] * (r[j] * s[j]);
    }
}

static void sigmoid_row(const float *restrict r, float *restrict o)
{
    for (int j = 0; j < TILE; j++) o[j] = 1.0f / (1.0f + exp_vec(-r[j]));
}

int yt_detect_decode_forward(int B, int nl, const yt_detect_level *levels, int reg_max, int nc, const float *dfl,
                             float *y)
{
    int64_t start[YT_DECODE_MAX_LEVELS + 1];
    start[0] = 0;
    for (int l = 0; l < nl; l++) start[l + 1] = start[l] + (int64_t)levels[l].H * levels[l].W;
    const int64_t A = start[nl], no = 4 * (int64_t)reg_max + nc, rows = 4 + (int64_t)nc;
    const int64_t tiles_per_image = (A + TILE - 1) / TILE, tiles = (int64_t)B * tiles_per_image;
    int failed = 0;
#pragma omp parallel if (tiles > 1 && (int64_t)B * A * no > 65536) reduction(| : failed)
    {
        /* per thread: the tile's logits and its outputs */
        float *in = malloc((size_t)(no + rows) * TILE * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            if (!in) {
                failed = 1;
                continue;
            }
            float *block = in + no * TILE;
            float ax[TILE], ay[TILE], st[TILE], d[4][TILE];
            const int64_t b = t / tiles_per_image, a0 = (t % tiles_per_image) * TILE;
            const int n = (int)(A - a0 < TILE ? A - a0 : TILE);
            gather_tile(levels, start, b, a0, n, no, in, ax, ay, st);
            for (int k = 0; k < 4; k++) dfl_side(in + (int64_t)k * reg_max * TILE, reg_max, dfl, d[k]);
            for (int j = 0; j < TILE; j++) {
                const float x1 = ax[j] - d[0][j], y1 = ay[j] - d[1][j], x2 = ax[j] + d[2][j], y2 = ay[j] + d[3][j];
                block[0 * TILE + j] = (x1 + x2) * 0.5f * st[j];
                block[1 * TILE + j] = (y1 + y2) * 0.5f * st[j];
                block[2 * TILE + j] = (x2 - x1) * st[j];
                block[3 * TILE + j] = (y2 - y1) * st[j];
            }
            for (int c = 0; c < nc; c++)
                sigmoid_row(in + (4 * (int64_t)reg_max + c) * TILE, block + (4 + (int64_t)c) * TILE);
            float *out = y + b * rows * A + a0;
            for (int64_t r = 0; r < rows; r++) memcpy(out + r * A, block + r * TILE, (size_t)n * sizeof(float));
        }
        free(in);
    }
    return failed ? -1 : 0;
}

yt_tensor *yt_detect_decode(int nl, yt_tensor *const *levels, const double *strides, int nc, const yt_tensor *dfl)
{
    char sb[128], s0[128];
    if (nl < 1 || nl > YT_DECODE_MAX_LEVELS) {
        yt_error("detect_decode: expected 1 to %d levels, got %d", YT_DECODE_MAX_LEVELS, nl);
        return NULL;
    }
    if (nc < 0) {
        yt_error("detect_decode: the number of classes must be >= 0, got %d", nc);
        return NULL;
    }
    int reg_max = 16;
    float wbuf[YT_DECODE_MAX_BINS];
    if (dfl) {
        if (yt_check(dfl, "detect_decode DFL weight", YT_F32, -1) < 0) return NULL;
        int64_t n = yt_numel(dfl);
        if (n < 1 || n > YT_DECODE_MAX_BINS || !yt_is_contiguous(dfl)) {
            yt_error("detect_decode: the DFL weight must be 1 to %d contiguous values, got %s", YT_DECODE_MAX_BINS,
                     yt_shape_str(dfl, sb, sizeof sb));
            return NULL;
        }
        reg_max = (int)n;
        for (int k = 0; k < reg_max; k++) wbuf[k] = yt_f32(dfl)[k];
    } else {
        for (int k = 0; k < reg_max; k++) wbuf[k] = (float)k;
    }
    yt_detect_level lv[YT_DECODE_MAX_LEVELS];
    int64_t A = 0, no = 4 * (int64_t)reg_max + nc;
    for (int l = 0; l < nl; l++) {
        yt_tensor *x = levels[l];
        char what[48];
        snprintf(what, sizeof what, "detect_decode level %d", l + 1);
        if (yt_check(x, what, YT_F32, 4) < 0) return NULL;
        if (yt_needs_grad(1, &x)) {
            yt_error("detect_decode: inference only, but level %d requires a gradient (turn grad mode off)", l + 1);
            return NULL;
        }
        if (x->shape[1] != no || x->shape[0] != levels[0]->shape[0]) {
            yt_error("detect_decode: level %d is %s, expected [%lld, %lld, H, W] (4 x %d box bins + %d classes)", l + 1,
                     yt_shape_str(x, sb, sizeof sb), (long long)levels[0]->shape[0], (long long)no, reg_max, nc);
            return NULL;
        }
        if (x->shape[2] > INT32_MAX / 4 || x->shape[3] > INT32_MAX / 4 || !(strides[l] > 0)) {
            yt_error("detect_decode: level %d (%s) too large or its stride %g not > 0", l + 1,
                     yt_shape_str(x, s0, sizeof s0), strides[l]);
            return NULL;
        }
        lv[l].data = yt_numel(x) ? yt_f32(x) : NULL;
        for (int d = 0; d < 4; d++) lv[l].st[d] = x->stride[d];
        lv[l].H = (int)x->shape[2];
        lv[l].W = (int)x->shape[3];
        lv[l].stride = (float)strides[l];
        A += x->shape[2] * x->shape[3];
    }
    const int64_t B = levels[0]->shape[0];
    int64_t ys[3] = {B, 4 + nc, A};
    yt_tensor *y = yt_tensor_empty(YT_F32, 3, ys);
    if (y && B * A > 0 && yt_detect_decode_forward((int)B, nl, lv, reg_max, nc, wbuf, yt_f32(y)) < 0) {
        yt_error("detect_decode: out of memory");
        yt_tensor_free_storage(y);
        yt_tensor_release(y);
        return NULL;
    }
    return y;
}
