/* src/ops/simd.h: yt_v_exp against the exact exponential and expf over a dense sweep of the floats and their
 * extremes, yt_v_silu against x / (1 + expf(-x)), the tails' loads and stores, and every level giving the same
 * bits. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/simd.h"
#include "testutil.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The error of y in units in the last place of the exact value e (a double, rounded from the true e^x with an
 * error far below a float ulp); subnormal results have the ulp 2^-149. */
static double ulp_error(float y, double e)
{
    if (isinf((float)e)) return isinf(y) ? 0.0 : INFINITY; /* e^x rounds to inf in float */
    int ex;
    frexp(e, &ex); /* e = f * 2^ex, f in [0.5, 1) */
    int q = ex - 24;
    if (q < -149) q = -149;
    return fabs((double)y - e) / ldexp(1.0, q);
}

/* The distance between two floats in representable steps (same sign assumed; 0 for equal bits). */
static int64_t steps(float a, float b)
{
    int64_t ia = (int32_t)bits(a), ib = (int32_t)bits(b);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return ia > ib ? ia - ib : ib - ia;
}

typedef struct {
    double worst_ulp;
    float worst_x;
    int64_t worst_steps; /* to expf */
    float worst_steps_x;
    long bad; /* inf/0/NaN where the other is not */
} exp_stats;

static void check_exp_values(const float *x, size_t n, exp_stats *st)
{
    float *y = malloc(n * sizeof *y);
    yt_simd_exp(x, y, n);
    for (size_t i = 0; i < n; i++) {
        float ref = expf(x[i]);
        if (isnan(x[i])) {
            if (!isnan(y[i])) st->bad++;
            continue;
        }
        if (isinf(ref) != isinf(y[i]) || (ref == 0) != (y[i] == 0) || isnan(y[i])) {
            if (st->bad++ < 5) fprintf(stderr, "exp(%.9g): %.9g, expf %.9g\n", (double)x[i], (double)y[i], (double)ref);
            continue;
        }
        double u = ulp_error(y[i], exp((double)x[i]));
        if (u > st->worst_ulp) {
            st->worst_ulp = u;
            st->worst_x = x[i];
        }
        int64_t s = steps(y[i], ref);
        if (s > st->worst_steps) {
            st->worst_steps = s;
            st->worst_steps_x = x[i];
        }
    }
    free(y);
}

/* Every stride-th bit pattern of the floats (both signs, NaNs included), and every float of [-1, 1] near 0 and near
 * the ends of the range, where the reduction and the scaling are most delicate. */
static void check_exp_sweep(void)
{
    exp_stats st = {0};
    enum { CHUNK = 1 << 16 };
    float *x = malloc(CHUNK * sizeof *x);
    size_t k = 0;
    const uint64_t stride = 97;
    for (uint64_t u = 0; u <= 0xffffffffull; u += stride) {
        x[k++] = from_bits((uint32_t)u);
        if (k == CHUNK) {
            check_exp_values(x, k, &st);
            k = 0;
        }
    }
    /* dense ranges: 2^20 consecutive floats each */
    const float starts[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.34657359f, -0.34657359f, 88.0f, -87.0f, -103.0f, 10.0f};
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
        uint32_t b0 = bits(starts[s]);
        for (uint32_t j = 0; j < (1u << 20); j++) {
            x[k++] = from_bits(b0 + j);
            if (k == CHUNK) {
                check_exp_values(x, k, &st);
                k = 0;
            }
        }
    }
    if (k) check_exp_values(x, k, &st);
    free(x);
    printf("  exp sweep (%s): worst %.3f ulp at x = %.9g; worst %lld steps from expf at x = %.9g\n",
           yt_simd_level_name(yt_simd_level()), st.worst_ulp, (double)st.worst_x, (long long)st.worst_steps,
           (double)st.worst_steps_x);
    CHECK(st.bad == 0, "exp: %ld values overflow, underflow or NaN where expf does not", st.bad);
    CHECK(st.worst_ulp <= 2.0, "exp: worst error %.3f ulp at x = %.9g", st.worst_ulp, (double)st.worst_x);
    CHECK(st.worst_steps <= 2, "exp: %lld steps from expf at x = %.9g", (long long)st.worst_steps,
          (double)st.worst_steps_x);
}

static void check_exp_extremes(void)
{
    const float hi = 88.72283172607421875f; /* largest x with a finite expf */
    const float x[] = {
        0.0f,
        -0.0f,
        1.0f,
        -1.0f,
        INFINITY,
        -INFINITY,
        NAN,
        -NAN,
        FLT_MAX,
        -FLT_MAX,
        FLT_MIN,
        -FLT_MIN,
        1e-45f,
        -1e-45f,
        hi,
        nextafterf(hi, 0),
        nextafterf(hi, INFINITY),
        89.0f,
        -87.33654475f,
        -87.4f,
        -103.2789f,
        -103.97f,
        -103.973f,
        -103.98f,
        -104.0f,
        -104.5f,
        -150.0f,
        88.7f,
        -88.7f,
        1e10f,
        -1e10f,
    };
    const size_t n = sizeof x / sizeof x[0];
    float y[sizeof x / sizeof x[0]];
    yt_simd_exp(x, y, n);
    for (size_t i = 0; i < n; i++) {
        float ref = expf(x[i]);
        if (isnan(x[i])) {
            CHECK(isnan(y[i]), "exp(NaN) = %g", (double)y[i]);
        } else if (isinf(ref) || ref == 0.0f) {
            CHECK(y[i] == ref, "exp(%.9g) = %.9g, expf %.9g", (double)x[i], (double)y[i], (double)ref);
        } else {
            double u = ulp_error(y[i], exp((double)x[i]));
            CHECK(u <= 2.0 && steps(y[i], ref) <= 2, "exp(%.9g) = %.9g, expf %.9g (%.3f ulp)", (double)x[i],
                  (double)y[i], (double)ref, u);
        }
    }
    CHECK(y[0] == 1.0f && y[1] == 1.0f, "exp(+-0) = %g, %g", (double)y[0], (double)y[1]);
    CHECK(y[4] == INFINITY && y[5] == 0.0f, "exp(inf) = %g, exp(-inf) = %g", (double)y[4], (double)y[5]);
    CHECK(isfinite(y[14]) && y[14] > 3.4e38f && isinf(y[16]), "overflow edge: exp(hi) = %g, exp(next) = %g",
          (double)y[14], (double)y[16]);
    CHECK(y[20] > 0.0f && y[20] < FLT_MIN, "exp(-103.2789) is subnormal: %g", (double)y[20]);
}

/* silu(x) = x / (1 + e^-x) against the exact value and against the same formula with expf, over a dense sweep of
 * [-120, 120] and the extremes. */
static void check_silu(void)
{
    enum { N = 1 << 21 };
    float *x = malloc((N + 8) * sizeof *x), *y = malloc((N + 8) * sizeof *y);
    for (int i = 0; i < N; i++) x[i] = -120.0f + 240.0f * (float)i / (float)N;
    const float ext[] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, FLT_MAX, -FLT_MAX, 1e-45f};
    for (int i = 0; i < 8; i++) x[N + i] = ext[i];
    yt_simd_silu(x, y, N + 8);
    int64_t worst = 0;
    double worst_ulp = 0;
    float wx = 0, wux = 0;
    int bad = 0;
    for (int i = 0; i < N + 8; i++) {
        float ref = x[i] / (1.0f + expf(-x[i]));
        if (isnan(ref) || isnan(y[i])) {
            bad += isnan(ref) != isnan(y[i]);
            continue;
        }
        int64_t s = (ref == 0.0f && y[i] == 0.0f) ? 0 : steps(y[i], ref);
        if (s > worst) {
            worst = s;
            wx = x[i];
        }
        if (isfinite(x[i]) && x[i] > -88.0f) { /* below, e^-x overflows: silu is 0 here as with expf */
            double u = ulp_error(fabsf(y[i]), fabs((double)x[i] / (1.0 + exp(-(double)x[i]))));
            if (u > worst_ulp) {
                worst_ulp = u;
                wux = x[i];
            }
        }
    }
    printf("  silu (%s): worst %.3f ulp at x = %.9g; worst %lld steps from x / (1 + expf(-x)) at x = %.9g\n",
           yt_simd_level_name(yt_simd_level()), worst_ulp, (double)wux, (long long)worst, (double)wx);
    CHECK(bad == 0, "silu: %d NaNs differ", bad);
    CHECK(worst_ulp <= 3.0, "silu: %.3f ulp at x = %.9g", worst_ulp, (double)wux);
    CHECK(worst <= 4, "silu: %lld steps from the expf formula at x = %.9g", (long long)worst, (double)wx);
    free(x);
    free(y);
}

/* Tails: n < YT_V_WIDTH elements are read and written without touching their neighbours, and give the bits the
 * full-width path gives for the same values. */
static void check_tails(void)
{
    float src[3 * YT_V_WIDTH], full[YT_V_WIDTH], out[3 * YT_V_WIDTH];
    for (int i = 0; i < 3 * YT_V_WIDTH; i++) src[i] = -5.0f + 0.37f * (float)i;
    yt_simd_exp(src + YT_V_WIDTH, full, YT_V_WIDTH);
    int ok = 1;
    for (size_t n = 0; n < YT_V_WIDTH; n++) {
        for (int i = 0; i < 3 * YT_V_WIDTH; i++) out[i] = -1.0f;
        yt_simd_exp(src + YT_V_WIDTH, out + YT_V_WIDTH, n);
        for (int i = 0; i < 3 * YT_V_WIDTH; i++) {
            int inside = i >= YT_V_WIDTH && (size_t)(i - YT_V_WIDTH) < n;
            if (inside ? bits(out[i]) != bits(full[i - YT_V_WIDTH]) : out[i] != -1.0f) ok = 0;
        }
    }
    CHECK(ok, "tails of 0..%d elements: only they are written, with the full path's bits", YT_V_WIDTH - 1);
    float a[YT_V_WIDTH];
    for (int i = 0; i < YT_V_WIDTH; i++) a[i] = (float)i + 1.0f;
    yt_vf v = yt_v_load_n(a, 5);
    int lanes = 1;
    for (int i = 0; i < YT_V_WIDTH; i++) lanes &= v[i] == (i < 5 ? a[i] : 0.0f);
    CHECK(lanes, "yt_v_load_n(5): the first 5 lanes, zeros after");
    float b[YT_V_WIDTH];
    for (int i = 0; i < YT_V_WIDTH; i++) b[i] = -2.0f;
    yt_v_store_n(b, v, 3);
    CHECK(b[0] == 1.0f && b[2] == 3.0f && b[3] == -2.0f && b[YT_V_WIDTH - 1] == -2.0f, "yt_v_store_n(3)");
}

/* Every level the CPU has gives the bits of the others (plain IEEE arithmetic in one order). */
static void check_levels_agree(void)
{
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x), *y0 = malloc(N * sizeof *y0), *y = malloc(N * sizeof *y);
    tu_seed(3);
    for (int i = 0; i < N; i++) x[i] = tu_uniform(-110.0f, 95.0f);
    int top = yt_simd_detected_level();
    yt_simd_set_level(YT_SIMD_BASELINE);
    yt_simd_exp(x, y0, N);
    for (int l = YT_SIMD_BASELINE + 1; l <= top; l++) {
        yt_simd_set_level(l);
        yt_simd_exp(x, y, N);
        CHECK(memcmp(y, y0, N * sizeof *y) == 0, "exp at %s == at baseline", yt_simd_level_name(l));
    }
    yt_simd_set_level(YT_SIMD_BASELINE);
    yt_simd_silu(x, y0, N);
    for (int l = YT_SIMD_BASELINE + 1; l <= top; l++) {
        yt_simd_set_level(l);
        yt_simd_silu(x, y, N);
        CHECK(memcmp(y, y0, N * sizeof *y) == 0, "silu at %s == at baseline", yt_simd_level_name(l));
    }
    yt_simd_set_level(-1);
    CHECK(yt_simd_level() == top, "back to the detected level");
    CHECK(yt_simd_set_level(YT_SIMD_AVX512 + 5) == top, "a level above the CPU's is capped");
    yt_simd_set_level(-1);
    free(x);
    free(y0);
    free(y);
}

int main(void)
{
    int top = yt_simd_detected_level();
    printf("detected level: %s\n", yt_simd_level_name(top));
    for (int l = top; l >= YT_SIMD_BASELINE; l--) {
        CHECK(yt_simd_set_level(l) == l, "set level %s", yt_simd_level_name(l));
        check_exp_extremes();
        check_exp_sweep();
        check_silu();
        check_tails();
    }
    yt_simd_set_level(-1);
    check_levels_agree();
    return tu_finish();
}
