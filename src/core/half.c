#include "core/half.h"

#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t yt_f32_to_f16(float f)
{
    uint32_t x = bits_of(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf stays inf; NaN stays a (quiet) NaN with its top payload bits */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0));
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to beyond 65504: inf */
    if (abs < 0x38800000u) {
        /* a binary16 subnormal (or zero): scale so the float's rounding does the work, exactly once */
        float r = float_of(abs) + 0.5f; /* 0.5 = 2^-1: the binary16 subnormal quantum 2^-24 lands in the last bit */
        return (uint16_t)(sign | (bits_of(r) - 0x3f000000u));
    }
    uint32_t mant_odd = (abs >> 13) & 1u;
    abs += 0xc8000fffu + mant_odd; /* rebias the exponent (-112 << 23) and round to nearest even */
    return (uint16_t)(sign | (abs >> 13));
}

float yt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return float_of(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) { /* zero or subnormal: mant x 2^-24, exact in float */
        float v = (float)mant * 0x1p-24f;
        return float_of(sign | bits_of(v));
    }
    return float_of(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t yt_f32_to_bf16(float f)
{
    uint32_t x = bits_of(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float yt_bf16_to_f32(uint16_t h) { return float_of((uint32_t)h << 16); }

void yt_f32_to_f16_n(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = yt_f32_to_f16(src[i]);
}

/* Forward order is safe: output element i (bytes [4i, 4i+4)) ends before input element i+1 (byte 2n+2i+2). */
void yt_f16_to_f32_tail(void *buf, size_t n)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, b + 2 * n + 2 * i, sizeof h);
        float f = yt_f16_to_f32(h);
        memcpy(b + 4 * i, &f, sizeof f);
    }
}

void yt_bf16_to_f32_tail(void *buf, size_t n)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, b + 2 * n + 2 * i, sizeof h);
        float f = yt_bf16_to_f32(h);
        memcpy(b + 4 * i, &f, sizeof f);
    }
}
