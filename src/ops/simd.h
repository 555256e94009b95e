/* Vectors for the elementwise kernels (batch norm, SiLU): GCC/Clang vector extensions, 16 floats wide, compiled
 * once per instruction set and chosen at run time.
 *
 * A kernel is written once, as an always-inline body on plain arrays that uses the yt_v_* helpers below;
 * YT_SIMD_DISPATCH(name, params, args) then defines `static void name params`, which runs that body compiled for
 * AVX-512 (target "avx512f"), for AVX2 (target "avx2") or for the build's baseline (plain x86-64: SSE2; any other
 * architecture: whatever its compiler makes of the vectors), according to yt_simd_level(). The binary therefore
 * runs on any CPU of its architecture, whatever it was built for (YT_NATIVE=OFF), and uses AVX-512 where there is
 * one.
 *
 * The helpers are plain IEEE float arithmetic, element by element in a fixed order: no FMA (the build is ISO C,
 * so the compiler contracts nothing), no approximate instructions. The results are therefore bitwise the same at
 * every level, and do not depend on where an element falls in its array: a tail of n < YT_V_WIDTH elements goes
 * through the same vector code (yt_v_load_n / yt_v_store_n), not through a scalar loop. */
#ifndef YT_OPS_SIMD_H
#define YT_OPS_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 64-byte vectors as arguments change the ABI when AVX-512 is off; every helper here is inlined */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define YT_V_WIDTH 16

typedef float yt_vf __attribute__((vector_size(64)));
typedef int32_t yt_vi __attribute__((vector_size(64)));
typedef uint32_t yt_vu __attribute__((vector_size(64)));
typedef float yt_vh __attribute__((vector_size(32)));  /* half a yt_vf: 8 floats */
typedef double yt_vd __attribute__((vector_size(64))); /* 8 doubles */

#define YT_V_INLINE static inline __attribute__((always_inline))

/* ---- the dispatch ---- */

enum { YT_SIMD_BASELINE = 0, YT_SIMD_AVX2 = 1, YT_SIMD_AVX512 = 2 };

/* The level the kernels run at: the best this CPU (and its OS) supports, or a lower one set by yt_simd_set_level. */
int yt_simd_level(void);
/* The best level this CPU supports. */
int yt_simd_detected_level(void);
/* For tests and benchmarks: run at `level` (YT_SIMD_*; capped at the detected one), or -1 to go back to the
 * detected level. Returns the level now in effect. Process-wide. */
int yt_simd_set_level(int level);
/* "avx512", "avx2" or "baseline" */
const char *yt_simd_level_name(int level);

/* y = yt_v_exp(x) and y = yt_v_silu(x) over n floats at the current level (tests and benchmarks). */
void yt_simd_exp(const float *x, float *y, size_t n);
void yt_simd_silu(const float *x, float *y, size_t n);

#if defined(__x86_64__) || defined(__i386__)
#define YT_SIMD_X86 1
#define YT_SIMD_DISPATCH(name, params, args)                                                                           \
    __attribute__((target("avx512f"))) static void name##_avx512 params { name##_body args; }                          \
    __attribute__((target("avx2"))) static void name##_avx2 params { name##_body args; }                               \
    static void name params                                                                                            \
    {                                                                                                                  \
        switch (yt_simd_level()) {                                                                                     \
        case YT_SIMD_AVX512:                                                                                           \
            name##_avx512 args;                                                                                        \
            return;                                                                                                    \
        case YT_SIMD_AVX2:                                                                                             \
            name##_avx2 args;                                                                                          \
            return;                                                                                                    \
        default:                                                                                                       \
            name##_body args;                                                                                          \
            return;                                                                                                    \
        }                                                                                                              \
    }
#else
#define YT_SIMD_DISPATCH(name, params, args)                                                                           \
    static void name params { name##_body args; }
#endif

/* ---- loads, stores, constants ---- */

YT_V_INLINE yt_vf yt_v_set1(float s) { return (yt_vf){0} + s; }

YT_V_INLINE yt_vf yt_v_load(const float *p)
{
    yt_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

YT_V_INLINE void yt_v_store(float *p, yt_vf v) { memcpy(p, &v, sizeof v); }

/* The first n (< YT_V_WIDTH) floats of p, the other lanes 0; nothing past p[n - 1] is read. */
YT_V_INLINE yt_vf yt_v_load_n(const float *p, size_t n)
{
    yt_vf v = {0};
    for (size_t i = 0; i < n; i++) v[i] = p[i];
    return v;
}

/* Stores the first n (< YT_V_WIDTH) lanes of v; nothing past p[n - 1] is written. */
YT_V_INLINE void yt_v_store_n(float *p, yt_vf v, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = v[i];
}

/* mask ? a : b, lane by lane (mask: a comparison's result, all ones or all zeros per lane) */
YT_V_INLINE yt_vf yt_v_select(yt_vi mask, yt_vf a, yt_vf b) { return (yt_vf)((mask & (yt_vi)a) | (~mask & (yt_vi)b)); }

/* The two halves of v as 8 doubles each (exact). */
YT_V_INLINE void yt_v_to_double(yt_vf v, yt_vd *lo, yt_vd *hi)
{
    yt_vh h[2];
    memcpy(h, &v, sizeof v);
    *lo = __builtin_convertvector(h[0], yt_vd);
    *hi = __builtin_convertvector(h[1], yt_vd);
}

/* The sum of the 8 lanes, in a fixed order. */
YT_V_INLINE double yt_vd_sum(yt_vd v) { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }

/* ---- exp and SiLU ---- */

/* e^x per lane, within 2 ulp of the exact value over the whole float range (tests/c/test_simd.c measures it): +inf
 * above 88.72283 (as expf), 0 below -104, subnormal results between, NaN for NaN. Cody-Waite reduction
 * x = n ln2 + r (n rounded to nearest, ln2 in two parts: n * 0.693359375 is exact), Cephes' degree-6 polynomial for
 * e^r on [-ln2/2, ln2/2], then the scaling by 2^n as two exact powers of two 2^(n/2) * 2^(n - n/2), so that results
 * near overflow and the subnormal ones are rounded once. */
YT_V_INLINE yt_vf yt_v_exp(yt_vf x)
{
    const float hi = 88.72283172607421875f; /* the largest float whose expf is finite */
    const float lo = -104.0f;               /* e^-104 < 2^-150: 0 */
    const float magic = 12582912.0f;        /* 1.5 * 2^23: adding it rounds to an integer */
    yt_vf xc = yt_v_select(x > hi, yt_v_set1(hi), x);
    xc = yt_v_select(xc < lo, yt_v_set1(lo), xc);
    yt_vf t = xc * 1.44269504088896341f + magic;
    yt_vf n = t - magic;
    yt_vf r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    yt_vf r2 = r * r;
    yt_vf p = yt_v_set1(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    yt_vf y = p * r2 + r + 1.0f;
    /* n as an integer, from t's bits (t = 1.5 * 2^23 + n exactly, |n| <= 151); each half in [-76, 64] */
    yt_vi k = (yt_vi)t - (yt_vi)yt_v_set1(magic);
    yt_vi k1 = k >> 1, k2 = k - k1;
    yt_vf s1 = (yt_vf)((yt_vu)(k1 + 127) << 23), s2 = (yt_vf)((yt_vu)(k2 + 127) << 23);
    y = y * s1 * s2;
    y = yt_v_select(x > hi, yt_v_set1(__builtin_inff()), y);
    y = yt_v_select(x < lo, yt_v_set1(0.0f), y);
    return yt_v_select(x != x, x, y); /* NaN stays NaN */
}

/* silu(x) = x / (1 + e^-x) */
YT_V_INLINE yt_vf yt_v_silu(yt_vf x) { return x / (1.0f + yt_v_exp(-x)); }

/* gy * silu'(x), silu'(x) = s(x) * (1 + x * (1 - s(x))), s = 1 / (1 + e^-x) */
YT_V_INLINE yt_vf yt_v_silu_grad(yt_vf x, yt_vf gy)
{
    yt_vf s = 1.0f / (1.0f + yt_v_exp(-x));
    return gy * s * (1.0f + x * (1.0f - s));
}

#endif
