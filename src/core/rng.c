/* Random numbers (see rng.h). */
#include "core/rng.h"

#include <math.h>

/* ---- RNG: xoshiro256** seeded through splitmix64 ---- */

void yt_rng_seed(yt_rng *r, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t x = a * 0xD1B54A32D192ED03ULL;
    x ^= yt_splitmix64(&x) + b * 0x9E3779B97F4A7C15ULL;
    x ^= yt_splitmix64(&x) + c * 0xC2B2AE3D27D4EB4FULL;
    for (int i = 0; i < 4; i++) r->s[i] = yt_splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t yt_rng_next(yt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double yt_rng_u01(yt_rng *r) { return yt_unit_from_bits(yt_rng_next(r)); }
double yt_rng_uniform(yt_rng *r, double lo, double hi) { return lo + (hi - lo) * yt_rng_u01(r); }
int64_t yt_rng_int(yt_rng *r, int64_t n) { return n <= 0 ? 0 : (int64_t)(yt_rng_u01(r) * (double)n) % n; }

double yt_rng_normal(yt_rng *r)
{
    double u1 = yt_rng_u01(r), u2 = yt_rng_u01(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double rng_gamma(yt_rng *r, double a) /* Marsaglia-Tsang, a >= 1 */
{
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = yt_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = yt_rng_u01(r);
        if (u < 1e-300) u = 1e-300;
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

double yt_rng_beta(yt_rng *r, double a, double b)
{
    double x = rng_gamma(r, a), y = rng_gamma(r, b);
    return x / (x + y);
}
