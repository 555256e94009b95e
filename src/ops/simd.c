#include "ops/simd.h"

/* ---- the level: detected once, lowered by tests ---- */

static int detect(void)
{
#if defined(YT_SIMD_X86)
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the vector registers (XCR0) */
    if (__builtin_cpu_supports("avx512f")) return YT_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2")) return YT_SIMD_AVX2;
#endif
    return YT_SIMD_BASELINE;
}

static _Atomic int detected = -1; /* -1: not yet */
static _Atomic int forced = -1;   /* yt_simd_set_level; -1: none */

int yt_simd_detected_level(void)
{
    int d = detected;
    if (d < 0) detected = d = detect();
    return d;
}

int yt_simd_level(void)
{
    int f = forced;
    return f >= 0 ? f : yt_simd_detected_level();
}

int yt_simd_set_level(int level)
{
    int d = yt_simd_detected_level();
    forced = level < 0 ? -1 : (level > d ? d : level);
    return yt_simd_level();
}

const char *yt_simd_level_name(int level)
{
    switch (level) {
    case YT_SIMD_AVX512:
        return "avx512";
    case YT_SIMD_AVX2:
        return "avx2";
    default:
        return "baseline";
    }
}

/* ---- the helpers over arrays (tests, benchmarks) ---- */

YT_V_INLINE void exp_array_body(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) yt_v_store(y + i, yt_v_exp(yt_v_load(x + i)));
    if (i < n) yt_v_store_n(y + i, yt_v_exp(yt_v_load_n(x + i, n - i)), n - i);
}
YT_SIMD_DISPATCH(exp_array, (const float *x, float *y, size_t n), (x, y, n))

YT_V_INLINE void silu_array_body(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + YT_V_WIDTH <= n; i += YT_V_WIDTH) yt_v_store(y + i, yt_v_silu(yt_v_load(x + i)));
    if (i < n) yt_v_store_n(y + i, yt_v_silu(yt_v_load_n(x + i, n - i)), n - i);
}
YT_SIMD_DISPATCH(silu_array, (const float *x, float *y, size_t n), (x, y, n))

void yt_simd_exp(const float *x, float *y, size_t n) { exp_array(x, y, n); }
void yt_simd_silu(const float *x, float *y, size_t n) { silu_array(x, y, n); }
