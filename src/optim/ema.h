/* Exponential moving average of model weights (Ultralytics' ModelEMA).
 *     d = decay * (1 - exp(-updates / tau))     (decay 0.9999, tau 2000 by default; updates counted from 1)
 *     ema = d * ema + (1 - d) * model           for every floating-point entry; other dtypes are left alone
 * (num_batches_tracked is an integer buffer and is not averaged, as in Ultralytics). */
#ifndef YT_EMA_H
#define YT_EMA_H

#include <stdint.h>

#include "core/tensor.h"

#define YT_EMA_DECAY 0.9999
#define YT_EMA_TAU 2000.0

double yt_ema_decay(int64_t updates, double decay, double tau);
/* ema[i] and model[i] must have the same dtype and element count, and be contiguous when floating-point.
 * In place; float32 math for F32 entries (torch's order: v = v*d, then v += (1-d)*p), double for F64.
 * d outside [0, 1] is an error. */
int yt_ema_update(int n, yt_tensor *const *ema, yt_tensor *const *model, double d);

#endif
