/* 16-bit floating point storage formats: IEEE binary16 (F16, what Ultralytics checkpoints and `half=True`
 * exports hold) and bfloat16 (BF16). Tensors compute in F32; these convert on load and save.
 * Narrowing rounds to nearest, ties to even, as the hardware instructions do; widening is exact. */
#ifndef YT_CORE_HALF_H
#define YT_CORE_HALF_H

#include <stddef.h>
#include <stdint.h>

uint16_t yt_f32_to_f16(float f);
float yt_f16_to_f32(uint16_t h);
uint16_t yt_f32_to_bf16(float f);
float yt_bf16_to_f32(uint16_t h);

/* Whole arrays. The widening ones may run in place over a buffer whose first 4n bytes are the output and whose
 * bytes [2n, 4n) hold the input (see yt_f16_to_f32_tail). */
void yt_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
/* buf holds n 16-bit values in its bytes [2n, 4n); on return it holds the n floats. */
void yt_f16_to_f32_tail(void *buf, size_t n);
void yt_bf16_to_f32_tail(void *buf, size_t n);

#endif
