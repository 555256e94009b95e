#include "optim/clip.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "core/error.h"

static double sum_squares(const float *g, int64_t n)
{
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n >= 65536)
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

static double clip_impl(int n, yt_tensor *const *grads, double max_norm, const char *what)
{
    for (int i = 0; i < n; i++) {
        const yt_tensor *g = grads[i];
        if (!g) continue;
        if (yt_tensor_is_released(g) || g->dtype != YT_F32 || !yt_is_contiguous(g))
            return yt_error("clip_grad_norm: %s %d is not a contiguous float32 tensor", what, i + 1);
    }
    double total = 0;
    for (int i = 0; i < n; i++)
        if (grads[i]) total += sum_squares(yt_f32(grads[i]), yt_numel(grads[i]));
    double norm = sqrt(total);
    if (max_norm > 0) {
        /* torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor, clamped to 1 */
        float coef = (float)max_norm / ((float)norm + 1e-6f);
        if (coef < 1.0f || isnan(coef)) {
            for (int i = 0; i < n; i++) {
                if (!grads[i]) continue;
                float *g = yt_f32(grads[i]);
                int64_t m = yt_numel(grads[i]);
#pragma omp parallel for schedule(static) if (m >= 65536)
                for (int64_t j = 0; j < m; j++) g[j] *= coef;
            }
        }
    }
    return norm;
}

double yt_clip_tensors_norm(int n, yt_tensor *const *grads, double max_norm)
{
    return clip_impl(n, grads, max_norm, "gradient");
}

double yt_clip_grad_norm(int n, yt_tensor *const *params, double max_norm)
{
    yt_tensor *stackbuf[64] = {0};
    yt_tensor **grads = n <= 64 ? stackbuf : malloc((size_t)n * sizeof *grads);
    if (!grads) return yt_error("out of memory");
    for (int i = 0; i < n; i++) {
        const yt_tensor *p = params[i];
        grads[i] = p ? p->grad : NULL;
        if (grads[i] && yt_numel(grads[i]) != yt_numel(p)) {
            if (grads != stackbuf) free(grads);
            return yt_error("clip_grad_norm: the gradient of parameter %d does not match its size", i + 1);
        }
    }
    double r = clip_impl(n, grads, max_norm, "the gradient of parameter");
    if (grads != stackbuf) free(grads);
    return r;
}
