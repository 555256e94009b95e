/* The project's random numbers, one module for tensors, the synthetic dataset and augmentation:
 *   yt_splitmix64  one step of splitmix64 on a 64-bit state: a cheap stream, and the seeder of yt_rng
 *   yt_rng         xoshiro256** seeded from three integers through splitmix64, for the data pipeline's
 *                  per-sample streams (seed, epoch, position), with uniform, integer, normal and beta draws
 * Everything is deterministic and identical on every machine (53-bit doubles, no libc rand). No state here is
 * global: callers own their states (the one process-wide tensor generator lives in src/lua/l_tensor.c). */
#ifndef YT_CORE_RNG_H
#define YT_CORE_RNG_H

#include <stdint.h>

static inline uint64_t yt_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* [0, 1) from the top 53 bits of a 64-bit draw: exact in double. */
static inline double yt_unit_from_bits(uint64_t bits) { return (double)(bits >> 11) * (1.0 / 9007199254740992.0); }

typedef struct {
    uint64_t s[4];
} yt_rng;

void yt_rng_seed(yt_rng *r, uint64_t a, uint64_t b, uint64_t c);
uint64_t yt_rng_next(yt_rng *r);
double yt_rng_u01(yt_rng *r); /* [0, 1) */
double yt_rng_uniform(yt_rng *r, double lo, double hi);
int64_t yt_rng_int(yt_rng *r, int64_t n); /* [0, n) */
double yt_rng_normal(yt_rng *r);
double yt_rng_beta(yt_rng *r, double a, double b); /* a, b >= 1 */

#endif
