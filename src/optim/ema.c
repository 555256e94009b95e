#include "optim/ema.h"

#include <math.h>

#include "core/error.h"

double yt_ema_decay(int64_t updates, double decay, double tau) { return decay * (1.0 - exp(-(double)updates / tau)); }

int yt_ema_update(int n, yt_tensor *const *ema, yt_tensor *const *model, double d)
{
    if (!(d >= 0 && d <= 1)) return yt_error("ema_update: decay %g outside [0, 1]", d);
    for (int i = 0; i < n; i++) {
        const yt_tensor *e = ema[i], *m = model[i];
        if (!e || !m || yt_tensor_is_released(e) || yt_tensor_is_released(m))
            return yt_error("ema_update: entry %d is missing or released", i + 1);
        if (e->dtype != m->dtype || yt_numel(e) != yt_numel(m)) {
            char a[96], b[96];
            return yt_error("ema_update: entry %d: ema %s %s vs model %s %s", i + 1, yt_dtype_name(e->dtype),
                            yt_shape_str(e, a, sizeof a), yt_dtype_name(m->dtype), yt_shape_str(m, b, sizeof b));
        }
        if ((e->dtype == YT_F32 || e->dtype == YT_F64) && (!yt_is_contiguous(e) || !yt_is_contiguous(m)))
            return yt_error("ema_update: entry %d is not contiguous", i + 1);
    }
    /* torch: v *= d; v += (1 - d) * model  (the Python scalars become float32 for float32 tensors) */
    const float df = (float)d, omf = (float)(1.0 - d);
    for (int i = 0; i < n; i++) {
        int64_t len = yt_numel(ema[i]);
        if (ema[i]->dtype == YT_F32) {
            float *v = yt_f32(ema[i]);
            const float *p = yt_f32(model[i]);
#pragma omp parallel for schedule(static) if (len >= 65536)
            for (int64_t j = 0; j < len; j++) {
                float t = v[j] * df;
                v[j] = t + omf * p[j];
            }
        } else if (ema[i]->dtype == YT_F64) {
            double *v = yt_f64(ema[i]);
            const double *p = yt_f64(model[i]);
            for (int64_t j = 0; j < len; j++) v[j] = v[j] * d + (1.0 - d) * p[j];
        }
    }
    return 0;
}
