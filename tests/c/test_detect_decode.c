/* The Detect decode in one pass (ops/detect_decode.h) against a naive reference in double precision, for NCHW and
 * channels-last levels, and its exponential against expf. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/detect_decode.h"
#include "ops/shape_ops.h"
#include "testutil.h"

/* y (B, 4 + nc, A) from the levels, one anchor at a time, as the README's decoding describes it */
static void naive(int nl, yt_tensor *const *lv, const double *strides, int reg_max, int nc, const float *dfl, double *y)
{
    const int64_t B = lv[0]->shape[0];
    int64_t A = 0;
    for (int l = 0; l < nl; l++) A += lv[l]->shape[2] * lv[l]->shape[3];
    for (int64_t b = 0; b < B; b++) {
        int64_t a = 0;
        for (int l = 0; l < nl; l++) {
            const yt_tensor *x = lv[l];
            for (int64_t py = 0; py < x->shape[2]; py++)
                for (int64_t px = 0; px < x->shape[3]; px++, a++) {
                    const float *base = yt_f32(x) + b * x->stride[0] + py * x->stride[2] + px * x->stride[3];
                    double d[4];
                    for (int k = 0; k < 4; k++) {
                        double m = -INFINITY, s = 0, e = 0;
                        for (int j = 0; j < reg_max; j++) m = fmax(m, base[(k * reg_max + j) * x->stride[1]]);
                        for (int j = 0; j < reg_max; j++) s += exp(base[(k * reg_max + j) * x->stride[1]] - m);
                        for (int j = 0; j < reg_max; j++)
                            e += dfl[j] * exp(base[(k * reg_max + j) * x->stride[1]] - m) / s;
                        d[k] = e;
                    }
                    double ax = px + 0.5, ay = py + 0.5, st = strides[l];
                    double x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
                    double *o = y + b * (4 + nc) * A + a;
                    o[0] = (x1 + x2) / 2 * st, o[A] = (y1 + y2) / 2 * st, o[2 * A] = (x2 - x1) * st;
                    o[3 * A] = (y2 - y1) * st;
                    for (int c = 0; c < nc; c++)
                        o[(4 + c) * A] = 1 / (1 + exp(-(double)base[(4 * reg_max + c) * x->stride[1]]));
                }
        }
    }
}

static void check_against_naive(int B, int nl, const int *hw, int reg_max, int nc, int channels_last, float spread)
{
    char desc[96];
    snprintf(desc, sizeof desc, "B %d, %d levels, reg_max %d, nc %d, channels-last %d", B, nl, reg_max, nc,
             channels_last);
    yt_tensor *lv[4];
    double strides[4];
    int64_t A = 0;
    for (int l = 0; l < nl; l++) {
        int64_t s[] = {B, 4 * reg_max + nc, hw[2 * l], hw[2 * l + 1]};
        yt_tensor *x = tu_rand(4, s, -spread, spread);
        lv[l] = channels_last ? yt_channels_last(x) : x;
        if (channels_last) yt_tensor_release(x);
        strides[l] = 8 << l;
        A += s[2] * s[3];
    }
    float w[YT_DECODE_MAX_BINS];
    for (int j = 0; j < reg_max; j++) w[j] = (float)j;
    int64_t ws[] = {1, reg_max, 1, 1};
    yt_tensor *wt = yt_tensor_from_data(YT_F32, 4, ws, w);
    yt_tensor *y = yt_detect_decode(nl, lv, strides, nc, wt);
    CHECK(y != NULL, "%s: %s", desc, yt_last_error());
    if (y) {
        CHECK(y->ndim == 3 && y->shape[0] == B && y->shape[1] == 4 + nc && y->shape[2] == A, "%s: shape", desc);
        double *ref = malloc((size_t)B * (4 + nc) * A * sizeof *ref);
        naive(nl, lv, strides, reg_max, nc, w, ref);
        double box = 0, cls = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t r = 0; r < 4 + nc; r++)
                for (int64_t a = 0; a < A; a++) {
                    size_t i = ((size_t)b * (4 + nc) + r) * A + a;
                    double d = fabs(yt_f32(y)[i] - ref[i]);
                    if (r < 4)
                        box = fmax(box, d / (1 + fabs(ref[i])));
                    else
                        cls = fmax(cls, d);
                }
        CHECK(box <= 1e-5, "%s: boxes differ by %.3g (relative)", desc, box);
        CHECK(cls <= 1e-6, "%s: class probabilities differ by %.3g", desc, cls);
        free(ref);
    }
    yt_tensor_release(y);
    yt_tensor_release(wt);
    for (int l = 0; l < nl; l++) yt_tensor_release(lv[l]);
}

/* The exponential: relative error against expf, the clamped ends, NaN. */
static void check_exp(void)
{
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
        double e = (double)yt_detect_exp(x), r = exp((double)x);
        worst = fmax(worst, fabs(e - r) / r);
    }
    CHECK(worst < 2e-7, "relative error %.3g", worst);
    CHECK(yt_detect_exp(0.0f) == 1.0f, "exp(0) = %.9g", yt_detect_exp(0.0f));
    CHECK(yt_detect_exp(-1000.0f) > 0 && yt_detect_exp(-1000.0f) < 2e-38f, "exp(-1000) = %g", yt_detect_exp(-1000.0f));
    CHECK(isfinite(yt_detect_exp(1000.0f)) && yt_detect_exp(1000.0f) > 1e38f, "exp(1000)");
    CHECK(isnan(yt_detect_exp(NAN)), "NaN stays NaN");
    CHECK(yt_detect_exp(-INFINITY) < 2e-38f && isfinite(yt_detect_exp(INFINITY)), "infinities clamped");
}

static void check_special(void)
{
    /* one anchor: a NaN logit gives NaN for its side and its class, the rest stays finite */
    int64_t s[] = {1, 4 * 16 + 2, 1, 1};
    yt_tensor *x = yt_tensor_zeros(YT_F32, 4, s);
    yt_f32(x)[3] = NAN;      /* side 0 (left) */
    yt_f32(x)[64 + 1] = NAN; /* class 1 */
    double st = 8;
    yt_tensor *y = yt_detect_decode(1, &x, &st, 2, NULL);
    CHECK(y && isnan(yt_f32(y)[0]) && isnan(yt_f32(y)[2]) && !isnan(yt_f32(y)[1]) && !isnan(yt_f32(y)[3]),
          "a NaN side");
    CHECK(y && yt_f32(y)[4] == 0.5f && isnan(yt_f32(y)[5]), "classes: sigmoid(0) = 0.5, NaN");
    /* uniform logits: distance 7.5 bins on every side */
    yt_f32(x)[3] = 0;
    yt_tensor_release(y);
    y = yt_detect_decode(1, &x, &st, 2, NULL);
    CHECK(y && fabsf(yt_f32(y)[0] - 0.5f * 8) < 1e-5f && fabsf(yt_f32(y)[2] - 15.0f * 8) < 1e-4f, "uniform: %g %g",
          y ? yt_f32(y)[0] : 0, y ? yt_f32(y)[2] : 0);
    yt_tensor_release(y);
    /* errors */
    int64_t bad[] = {1, 60, 2, 2};
    yt_tensor *xb = yt_tensor_zeros(YT_F32, 4, bad);
    CHECK(!yt_detect_decode(1, &xb, &st, 2, NULL) && strstr(yt_last_error(), "expected"), "channels: %s",
          yt_last_error());
    double zero = 0;
    CHECK(!yt_detect_decode(1, &x, &zero, 2, NULL) && strstr(yt_last_error(), "stride"), "stride: %s", yt_last_error());
    CHECK(!yt_detect_decode(0, &x, &st, 2, NULL), "no levels");
    x->requires_grad = 1;
    CHECK(!yt_detect_decode(1, &x, &st, 2, NULL) && strstr(yt_last_error(), "inference only"), "grad: %s",
          yt_last_error());
    yt_tensor_release(xb);
    yt_tensor_release(x);
}

int main(void)
{
    tu_seed(3);
    int v8[] = {10, 8, 5, 4, 3, 2}; /* three levels as at 80x64 */
    check_against_naive(2, 3, v8, 16, 80, 0, 4.0f);
    check_against_naive(2, 3, v8, 16, 80, 1, 4.0f);
    check_against_naive(1, 3, v8, 16, 80, 1, 20.0f); /* logits as large as a trained model's */
    int odd[] = {7, 13, 1, 1};                       /* tiles across levels; a 1x1 level */
    check_against_naive(3, 2, odd, 4, 3, 0, 3.0f);
    check_against_naive(3, 2, odd, 4, 3, 1, 3.0f);
    int one[] = {1, 1};
    check_against_naive(1, 1, one, 16, 0, 0, 1.0f);
    check_exp();
    check_special();
    return tu_finish();
}
