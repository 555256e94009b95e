#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/batchnorm.h"
#include "testutil.h"

typedef struct {
    yt_tensor *rm, *rv;
    int training, silu; /* silu: the fused yt_batch_norm_silu */
    double momentum, eps;
} bn_opts;

/* inputs: x, weight, bias */
static yt_tensor *f_bn(yt_tensor **in, void *ud)
{
    bn_opts *o = ud;
    return (o->silu ? yt_batch_norm_silu : yt_batch_norm)(in[0], in[1], in[2], o->rm, o->rv, o->training, o->momentum,
                                                          o->eps);
}

/* Double reference of the training forward: y, batch mean, biased var. */
static void ref_train(const float *x, const float *w, const float *b, double *y, double *mean, double *var, int N,
                      int C, size_t HW, double eps)
{
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < HW; i++) s += x[((size_t)n * C + c) * HW + i];
        double m = s / ((double)N * HW);
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < HW; i++) {
                double d = x[((size_t)n * C + c) * HW + i] - m;
                q += d * d;
            }
        double v = q / ((double)N * HW);
        mean[c] = m;
        var[c] = v;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                y[k] = (x[k] - m) / sqrt(v + eps) * (w ? w[c] : 1.0) + (b ? b[c] : 0.0);
            }
    }
}

static double rel_err(const float *a, const double *r, size_t n)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - r[i]);
        if (d > m || d != d) m = d;
        if (fabs(r[i]) > s) s = fabs(r[i]);
    }
    return s > 0 ? m / s : m;
}

static void check_forward(int N, int C, int H, int W, float offset)
{
    int64_t xs[] = {N, C, H, W}, cs[] = {C};
    size_t HW = (size_t)H * W, nx = (size_t)N * C * HW;
    yt_tensor *x = tu_rand(4, xs, -2 + offset, 2 + offset), *w = tu_rand(1, cs, 0.5f, 1.5f);
    yt_tensor *b = tu_rand(1, cs, -1, 1), *rm = tu_rand(1, cs, -0.5f, 0.5f), *rv = tu_rand(1, cs, 0.5f, 1.5f);
    float *rm0 = malloc(C * sizeof *rm0), *rv0 = malloc(C * sizeof *rv0);
    memcpy(rm0, yt_f32(rm), C * sizeof *rm0);
    memcpy(rv0, yt_f32(rv), C * sizeof *rv0);
    double *ry = malloc(nx * sizeof *ry), *mean = malloc(C * sizeof *mean), *var = malloc(C * sizeof *var);
    ref_train(yt_f32(x), yt_f32(w), yt_f32(b), ry, mean, var, N, C, HW, 1e-3);

    yt_tensor *y = yt_batch_norm(x, w, b, rm, rv, 1, 0.03, 1e-3);
    CHECK(y != NULL, "train forward: %s", yt_last_error());
    double e = rel_err(yt_f32(y), ry, nx);
    CHECK(e < 2e-6, "train forward %dx%dx%dx%d offset %g: rel err %.3g", N, C, H, W, offset, e);
    /* running stats: momentum 0.03, unbiased variance */
    double M = (double)N * HW, worst = 0;
    for (int c = 0; c < C; c++) {
        double em = 0.97 * rm0[c] + 0.03 * mean[c], ev = 0.97 * rv0[c] + 0.03 * var[c] * M / (M - 1);
        worst = fmax(worst, fabs(yt_f32(rm)[c] - em) / fmax(1, fabs(em)));
        worst = fmax(worst, fabs(yt_f32(rv)[c] - ev) / fmax(1, fabs(ev)));
    }
    CHECK(worst < 1e-6, "running stats rel err %.3g", worst);
    yt_tensor_release(y);

    /* eval: uses the running stats, leaves them alone */
    memcpy(rm0, yt_f32(rm), C * sizeof *rm0);
    memcpy(rv0, yt_f32(rv), C * sizeof *rv0);
    y = yt_batch_norm(x, w, b, rm, rv, 0, 0.03, 1e-3);
    CHECK(y != NULL, "eval forward: %s", yt_last_error());
    double worst_eval = 0, scale = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                double r = (yt_f32(x)[k] - (double)rm0[c]) / sqrt((double)rv0[c] + 1e-3) * yt_f32(w)[c] + yt_f32(b)[c];
                worst_eval = fmax(worst_eval, fabs(yt_f32(y)[k] - r));
                scale = fmax(scale, fabs(r));
            }
    CHECK(worst_eval / scale < 2e-6, "eval forward rel err %.3g", worst_eval / scale);
    CHECK(memcmp(rm0, yt_f32(rm), C * sizeof *rm0) == 0 && memcmp(rv0, yt_f32(rv), C * sizeof *rv0) == 0,
          "eval changed the running stats");
    yt_tensor_release(y);
    free(rm0);
    free(rv0);
    free(ry);
    free(mean);
    free(var);
    yt_tensor_release(x);
    yt_tensor_release(w);
    yt_tensor_release(b);
    yt_tensor_release(rm);
    yt_tensor_release(rv);
}

/* Finite-difference gradients of batch_norm, or of the fused batch_norm_silu, for the inputs in the bit mask
 * `which` (x, weight, bias) */
static void gradcheck_case(int silu, int ndim, const int64_t *xs, int affine, int training, int which)
{
    int64_t cs[] = {xs[1]};
    yt_tensor *in[3];
    in[0] = tu_rand(ndim, xs, -2, 2);
    in[1] = affine ? tu_rand(1, cs, 0.5f, 1.5f) : NULL;
    in[2] = affine ? tu_rand(1, cs, -1, 1) : NULL;
    for (int i = 0; i < 3; i++)
        if (in[i] && (which >> i & 1)) in[i]->requires_grad = 1;
    bn_opts o = {tu_rand(1, cs, -0.5f, 0.5f), tu_rand(1, cs, 0.5f, 1.5f), training, silu, 0.03, 1e-3};
    char name[128];
    snprintf(name, sizeof name, "%s ndim %d C %lld affine %d training %d grads %d",
             silu ? "batch_norm_silu" : "batch_norm", ndim, (long long)xs[1], affine, training, which);
    tu_gradcheck(name, f_bn, 3, in, &o, 1e-2f, 2e-3f, 2e-2f);
    for (int i = 0; i < 3; i++) yt_tensor_release(in[i]);
    yt_tensor_release(o.rm);
    yt_tensor_release(o.rv);
}

/* Training backward against a double reference on a large map (16 x 80 x 80 = 102400 values per channel). */
static void check_large_backward(void)
{
    const int N = 16, C = 3;
    const size_t HW = 80 * 80, nx = (size_t)N * C * HW;
    int64_t xs[] = {N, C, 80, 80}, cs[] = {C};
    yt_tensor *x = tu_rand(4, xs, 0, 3), *w = tu_rand(1, cs, 0.5f, 1.5f), *b = tu_rand(1, cs, -1, 1);
    yt_tensor *gy = tu_rand(4, xs, 0, 1);
    x->requires_grad = w->requires_grad = b->requires_grad = 1;
    yt_tensor *y = yt_batch_norm(x, w, b, NULL, NULL, 1, 0.03, 1e-3);
    CHECK(y && yt_backward(1, &y, &gy) == 0, "backward: %s", yt_last_error());
    yt_tensor_release(y);
    double *rgx = malloc(nx * sizeof *rgx), rgw[3], rgb[3];
    const float *px = yt_f32(x), *pg = yt_f32(gy), *pw = yt_f32(w);
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0, M = (double)N * HW;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < HW; i++) s += px[((size_t)n * C + c) * HW + i];
        double m = s / M;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < HW; i++) q += pow(px[((size_t)n * C + c) * HW + i] - m, 2);
        double is = 1 / sqrt(q / M + 1e-3), sg = 0, sgx = 0;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                sg += pg[k];
                sgx += pg[k] * (px[k] - m) * is;
            }
        rgw[c] = sgx;
        rgb[c] = sg;
        for (int n = 0; n < N; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                rgx[k] = pw[c] * is * (pg[k] - sg / M - (px[k] - m) * is * sgx / M);
            }
    }
    double ex = rel_err(yt_f32(x->grad), rgx, nx), ew = rel_err(yt_f32(w->grad), rgw, C),
           eb = rel_err(yt_f32(b->grad), rgb, C);
    CHECK(ex < 1e-5 && ew < 1e-5 && eb < 1e-6, "large backward rel errs x %.3g w %.3g b %.3g", ex, ew, eb);
    printf("large BN backward: rel err x %.3g, weight %.3g, bias %.3g\n", ex, ew, eb);
    free(rgx);
    yt_tensor_release(x);
    yt_tensor_release(w);
    yt_tensor_release(b);
    yt_tensor_release(gy);
}

static void check_errors(void)
{
    int64_t xs[] = {2, 3, 4, 4}, c4[] = {4}, c3[] = {3}, one[] = {1, 3, 1, 1}, x1[] = {3};
    yt_tensor *x = tu_rand(4, xs, -1, 1), *w4 = tu_rand(1, c4, 0, 1), *w3 = tu_rand(1, c3, 0, 1);
    yt_tensor *rv = yt_tensor_full(1, c3, 1), *xo = tu_rand(4, one, -1, 1), *xv = tu_rand(1, x1, 0, 1);
    yt_tensor *y = yt_batch_norm(x, w4, NULL, NULL, NULL, 1, 0.1, 1e-5);
    CHECK(!y && strstr(yt_last_error(), "weight"), "weight size: %s", yt_last_error());
    y = yt_batch_norm(x, w3, w3, NULL, NULL, 0, 0.1, 1e-5);
    CHECK(!y && strstr(yt_last_error(), "eval"), "eval without stats: %s", yt_last_error());
    y = yt_batch_norm(x, w3, w3, rv, NULL, 1, 0.1, 1e-5);
    CHECK(!y && strstr(yt_last_error(), "together"), "one running stat: %s", yt_last_error());
    y = yt_batch_norm(xo, w3, w3, NULL, NULL, 1, 0.1, 1e-5);
    CHECK(!y && strstr(yt_last_error(), "more than 1 value"), "single value: %s", yt_last_error());
    y = yt_batch_norm(xv, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5);
    CHECK(!y && strstr(yt_last_error(), "2 dimensions"), "1-d input: %s", yt_last_error());
    y = yt_batch_norm(xo, w3, w3, rv, rv, 0, 0.1, 1e-5); /* eval with one value per channel is fine */
    CHECK(y != NULL, "eval single value: %s", yt_last_error());
    yt_tensor_release(y);
    yt_tensor_release(x);
    yt_tensor_release(w4);
    yt_tensor_release(w3);
    yt_tensor_release(rv);
    yt_tensor_release(xo);
    yt_tensor_release(xv);
}

/* A known value: channel values 1, 3 -> mean 2, biased var 1; y = (x - 2) / sqrt(1 + eps). */
static void check_known(void)
{
    int64_t xs[] = {2, 1, 1, 1}, cs[] = {1};
    float xv[] = {1, 3};
    yt_tensor *x = yt_tensor_from_data(YT_F32, 4, xs, xv);
    yt_tensor *rm = yt_tensor_zeros(YT_F32, 1, cs), *rv = yt_tensor_full(1, cs, 1.0f);
    yt_tensor *y = yt_batch_norm(x, NULL, NULL, rm, rv, 1, 0.5, 1e-3);
    CHECK_CLOSE(yt_f32(y)[0], -1 / sqrt(1.001), 1e-6);
    CHECK_CLOSE(yt_f32(y)[1], 1 / sqrt(1.001), 1e-6);
    CHECK_CLOSE(yt_f32(rm)[0], 1.0, 1e-7);           /* 0.5 * 0 + 0.5 * 2 */
    CHECK_CLOSE(yt_f32(rv)[0], 0.5 + 0.5 * 2, 1e-7); /* unbiased var of {1,3} = 2 */
    yt_tensor_release(y);
    yt_tensor_release(x);
    yt_tensor_release(rm);
    yt_tensor_release(rv);
}

int main(void)
{
    tu_seed(3);
    check_known();
    check_forward(4, 5, 6, 7, 0);
    check_forward(2, 3, 16, 16, 50); /* large mean: two-pass variance */
    check_forward(16, 2, 40, 40, 0);

    int64_t s4[] = {3, 4, 3, 5}, s2[] = {6, 3}, s3[] = {2, 3, 7};
    for (int silu = 0; silu <= 1; silu++) {
        gradcheck_case(silu, 4, s4, 1, 1, 7);
        gradcheck_case(silu, 4, s4, 1, 0, 7);
        gradcheck_case(silu, 4, s4, 0, 1, 1);
        gradcheck_case(silu, 4, s4, 0, 0, 1);
        gradcheck_case(silu, 2, s2, 1, 1, 7);
        gradcheck_case(silu, 3, s3, 1, 1, 7);
        gradcheck_case(silu, 4, s4, 1, 1, 6); /* only weight and bias */
        gradcheck_case(silu, 4, s4, 1, 0, 4); /* eval, only bias */
        gradcheck_case(silu, 4, s4, 1, 0, 2); /* eval, only weight */
        gradcheck_case(silu, 4, s4, 1, 1, 1); /* only x */
    }

    check_large_backward();
    check_errors();
    return tu_finish();
}
