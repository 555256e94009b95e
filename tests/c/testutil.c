#include "testutil.h"

#include <cairo.h>
#include <dlfcn.h>

#include <math.h>
#include <stdlib.h>

int tu_passed, tu_failed;

void tu_drop_font_caches(void)
{
    cairo_debug_reset_static_data();
    void (*fc_fini)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
    if (fc_fini) fc_fini();
}

int tu_finish(void)
{
    printf("%d passed, %d failed\n", tu_passed, tu_failed);
    return tu_failed ? 1 : 0;
}

static unsigned long long rng_state = 0x853c49e6748fea9bULL;

void tu_seed(unsigned long long seed) { rng_state = seed * 6364136223846793005ULL + 1442695040888963407ULL; }

float tu_uniform(float lo, float hi)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    unsigned long long x = rng_state * 2685821657736338717ULL;
    return lo + (hi - lo) * (float)((x >> 40) / (double)(1ULL << 24));
}

yt_tensor *tu_rand(int ndim, const int64_t *shape, float lo, float hi)
{
    yt_tensor *t = yt_tensor_empty(YT_F32, ndim, shape);
    float *p = yt_f32(t);
    for (int64_t i = 0; i < yt_numel(t); i++) p[i] = tu_uniform(lo, hi);
    return t;
}

/* sum(y * r); NaN when the forward failed (y NULL), so the comparison fails */
static double weighted_sum(yt_tensor *y, const float *r)
{
    if (!y) return NAN;
    yt_tensor *c = yt_tensor_clone(y);
    double s = 0;
    const float *p = yt_f32(c);
    for (int64_t i = 0; i < yt_numel(c); i++) s += (double)p[i] * r[i];
    yt_tensor_release(c);
    return s;
}

int tu_gradcheck(const char *name, tu_fn f, int n, yt_tensor **inputs, void *userdata, float eps, float atol,
                 float rtol)
{
    int checked = 0;
    for (int k = 0; k < n; k++) checked += inputs[k] && inputs[k]->requires_grad;
    if (!checked) {
        tu_failed++;
        fprintf(stderr, "gradcheck %s: no input requires a gradient: nothing would be checked\n", name);
        return 0;
    }
    yt_tensor *y = f(inputs, userdata);
    if (!y) {
        tu_failed++;
        fprintf(stderr, "gradcheck %s: forward failed: %s\n", name, yt_last_error());
        return 0;
    }
    int64_t ny = yt_numel(y);
    float *r = malloc((size_t)(ny > 0 ? ny : 1) * sizeof *r);
    if (!r) {
        tu_failed++;
        fprintf(stderr, "gradcheck %s: out of memory\n", name);
        yt_tensor_release(y);
        return 0;
    }
    for (int64_t i = 0; i < ny; i++) r[i] = tu_uniform(-1, 1);
    for (int k = 0; k < n; k++) {
        if (inputs[k] && inputs[k]->grad) {
            yt_tensor_release(inputs[k]->grad);
            inputs[k]->grad = NULL;
        }
    }
    yt_tensor *g = yt_tensor_from_data(YT_F32, y->ndim, y->shape, r);
    if (yt_backward(1, &y, &g) < 0) {
        tu_failed++;
        fprintf(stderr, "gradcheck %s: backward failed: %s\n", name, yt_last_error());
        yt_tensor_release(g);
        yt_tensor_release(y);
        free(r);
        return 0;
    }
    yt_tensor_release(g);
    yt_tensor_release(y);
    int ok = 1;
    int was = yt_set_grad_enabled(0);
    for (int k = 0; k < n && ok; k++) {
        yt_tensor *x = inputs[k];
        if (!x || !x->requires_grad) continue;
        if (!x->grad) {
            fprintf(stderr, "gradcheck %s: input %d got no gradient\n", name, k);
            ok = 0;
            break;
        }
        float *xp = yt_f32(x);
        const float *gp = yt_f32(x->grad);
        for (int64_t i = 0; i < yt_numel(x); i++) {
            float old = xp[i];
            xp[i] = old + eps;
            yt_tensor *yp = f(inputs, userdata);
            double sp = weighted_sum(yp, r);
            yt_tensor_release(yp);
            xp[i] = old - eps;
            yt_tensor *ym = f(inputs, userdata);
            double sm = weighted_sum(ym, r);
            yt_tensor_release(ym);
            xp[i] = old;
            double numeric = (sp - sm) / (2.0 * eps);
            double analytic = gp[i];
            if (!(fabs(analytic - numeric) <= atol + rtol * fabs(numeric))) {
                fprintf(stderr, "gradcheck %s: input %d element %lld: analytic %.7g numeric %.7g\n", name, k,
                        (long long)i, analytic, numeric);
                ok = 0;
                break;
            }
        }
    }
    yt_set_grad_enabled(was);
    free(r);
    if (ok)
        tu_passed++;
    else
        tu_failed++;
    return ok;
}

/* 1 when a and b can be compared element by element as F32; otherwise reports why and returns 0. */
static int comparable(const char *who, const yt_tensor *a, const yt_tensor *b)
{
    char sa[128], sb[128];
    if (!a || !b) {
        fprintf(stderr, "%s: missing tensor (%s)\n", who, !a ? "first" : "second");
        return 0;
    }
    if (yt_tensor_is_released(a) || yt_tensor_is_released(b)) {
        fprintf(stderr, "%s: released tensor\n", who);
        return 0;
    }
    if (a->dtype != YT_F32 || b->dtype != YT_F32 || !yt_is_contiguous(a) || !yt_is_contiguous(b) ||
        yt_numel(a) != yt_numel(b)) {
        fprintf(stderr, "%s: cannot compare %s %s%s with %s %s%s\n", who, yt_dtype_name(a->dtype),
                yt_shape_str(a, sa, sizeof sa), yt_is_contiguous(a) ? "" : " (strided)", yt_dtype_name(b->dtype),
                yt_shape_str(b, sb, sizeof sb), yt_is_contiguous(b) ? "" : " (strided)");
        return 0;
    }
    return 1;
}

double tu_max_abs_diff(const yt_tensor *a, const yt_tensor *b)
{
    if (!comparable("tu_max_abs_diff", a, b)) return INFINITY;
    const float *pa = yt_f32(a), *pb = yt_f32(b);
    double m = 0;
    for (int64_t i = 0; i < yt_numel(a); i++) {
        double d = fabs((double)pa[i] - pb[i]);
        if (d != d) return NAN; /* fails every <= check */
        if (d > m) m = d;
    }
    return m;
}

double tu_max_abs(const yt_tensor *a)
{
    if (!comparable("tu_max_abs", a, a)) return NAN;
    const float *p = yt_f32(a);
    double m = 0;
    for (int64_t i = 0; i < yt_numel(a); i++) {
        if (p[i] != p[i]) return NAN;
        if (fabs(p[i]) > m) m = fabs(p[i]);
    }
    return m;
}

double tu_rel_l2(const yt_tensor *a, const yt_tensor *b)
{
    if (!comparable("tu_rel_l2", a, b)) return INFINITY;
    const float *pa = yt_f32(a), *pb = yt_f32(b);
    double num = 0, den = 0;
    for (int64_t i = 0; i < yt_numel(a); i++) {
        double d = (double)pa[i] - pb[i];
        num += d * d;
        den += (double)pb[i] * pb[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

void tu_conv2d_ref_forward(const float *x, const float *w, const float *b, double *y, const yt_conv2d_shape *s)
{
    for (int n = 0; n < s->N; n++)
        for (int o = 0; o < s->O; o++)
            for (int oh = 0; oh < s->OH; oh++)
                for (int ow = 0; ow < s->OW; ow++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < s->C; c++)
                        for (int kh = 0; kh < s->KH; kh++)
                            for (int kw = 0; kw < s->KW; kw++) {
                                int ih = oh * s->sh - s->ph + kh, iw = ow * s->sw - s->pw + kw;
                                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) continue;
                                acc += (double)x[((size_t)(n * s->C + c) * s->H + ih) * s->W + iw] *
                                       w[((size_t)(o * s->C + c) * s->KH + kh) * s->KW + kw];
                            }
                    y[((size_t)(n * s->O + o) * s->OH + oh) * s->OW + ow] = acc;
                }
}

void tu_conv2d_ref_backward(const float *x, const float *gy, double *gx, const float *w, double *gw, double *gb,
                            const yt_conv2d_shape *s)
{
    for (int n = 0; n < s->N; n++)
        for (int o = 0; o < s->O; o++)
            for (int oh = 0; oh < s->OH; oh++)
                for (int ow = 0; ow < s->OW; ow++) {
                    double g = gy[((size_t)(n * s->O + o) * s->OH + oh) * s->OW + ow];
                    if (gb) gb[o] += g;
                    for (int c = 0; c < s->C; c++)
                        for (int kh = 0; kh < s->KH; kh++)
                            for (int kw = 0; kw < s->KW; kw++) {
                                int ih = oh * s->sh - s->ph + kh, iw = ow * s->sw - s->pw + kw;
                                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) continue;
                                size_t xi = ((size_t)(n * s->C + c) * s->H + ih) * s->W + iw;
                                size_t wi = ((size_t)(o * s->C + c) * s->KH + kh) * s->KW + kw;
                                if (gx) gx[xi] += g * w[wi];
                                if (gw) gw[wi] += g * x[xi];
                            }
                }
}
