#include <math.h>
#include <string.h>

#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/softmax.h"
#include "testutil.h"

typedef struct {
    int kind; /* 0 sum, 1 mean, 2 max, 3 min, 4 softmax, 5 log_softmax */
    int dim, all, keepdim;
} red_args;

static yt_tensor *f_red(yt_tensor **in, void *ud)
{
    red_args *a = ud;
    switch (a->kind) {
    case 0:
        return a->all ? yt_sum(in[0]) : yt_sum_dim(in[0], a->dim, a->keepdim);
    case 1:
        return a->all ? yt_mean(in[0]) : yt_mean_dim(in[0], a->dim, a->keepdim);
    case 2:
        return a->all ? yt_max(in[0]) : yt_max_dim(in[0], a->dim, a->keepdim, NULL);
    case 3:
        return a->all ? yt_min(in[0]) : yt_min_dim(in[0], a->dim, a->keepdim, NULL);
    case 4:
        return yt_softmax(in[0], a->dim);
    default:
        return yt_log_softmax(in[0], a->dim);
    }
}

/* reduction of a transposed (strided) input */
static yt_tensor *f_sum_strided(yt_tensor **in, void *ud)
{
    int perm[3] = {2, 0, 1};
    yt_tensor *t = yt_permute(in[0], perm);
    yt_tensor *y = yt_sum_dim(t, 1, 0);
    yt_tensor_release(t);
    return y;
}

static void test_values(void)
{
    float v[] = {1, 5, 3, 4, 2, 6}; /* (2,3) */
    int64_t s[] = {2, 3};
    yt_tensor *x = yt_tensor_from_data(YT_F32, 2, s, v);
    yt_tensor *y = yt_sum(x);
    CHECK(y->ndim == 0 && yt_f32(y)[0] == 21, "sum all");
    yt_tensor_release(y);
    y = yt_mean(x);
    CHECK_CLOSE(yt_f32(y)[0], 3.5, 0);
    yt_tensor_release(y);
    y = yt_sum_dim(x, 0, 0);
    CHECK(y->ndim == 1 && y->shape[0] == 3, "sum dim 0 shape");
    CHECK(yt_f32(y)[0] == 5 && yt_f32(y)[1] == 7 && yt_f32(y)[2] == 9, "sum dim 0 values");
    yt_tensor_release(y);
    y = yt_sum_dim(x, -1, 1);
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 1, "sum dim -1 keepdim shape");
    CHECK(yt_f32(y)[0] == 9 && yt_f32(y)[1] == 12, "sum dim -1 values");
    yt_tensor_release(y);
    y = yt_mean_dim(x, 1, 0);
    CHECK_CLOSE(yt_f32(y)[0], 3, 1e-7);
    CHECK_CLOSE(yt_f32(y)[1], 4, 1e-7);
    yt_tensor_release(y);

    y = yt_max(x);
    CHECK(y->ndim == 0 && yt_f32(y)[0] == 6, "max all");
    yt_tensor_release(y);
    y = yt_min(x);
    CHECK(yt_f32(y)[0] == 1, "min all");
    yt_tensor_release(y);
    yt_tensor *idx = NULL;
    y = yt_max_dim(x, 1, 0, &idx);
    CHECK(y->ndim == 1 && y->shape[0] == 2 && idx && idx->dtype == YT_I64, "max dim shapes");
    CHECK(yt_f32(y)[0] == 5 && yt_f32(y)[1] == 6, "max dim values");
    CHECK(yt_i64(idx)[0] == 1 && yt_i64(idx)[1] == 2, "max dim indices");
    yt_tensor_release(y);
    yt_tensor_release(idx);
    y = yt_min_dim(x, 0, 1, &idx);
    CHECK(y->ndim == 2 && y->shape[0] == 1 && y->shape[1] == 3, "min dim keepdim");
    CHECK(yt_f32(y)[0] == 1 && yt_f32(y)[1] == 2 && yt_f32(y)[2] == 3, "min dim values");
    CHECK(yt_i64(idx)[0] == 0 && yt_i64(idx)[1] == 1 && yt_i64(idx)[2] == 0, "min dim indices");
    yt_tensor_release(y);
    yt_tensor_release(idx);
    y = yt_argmax(x, 1, 0);
    CHECK(y->dtype == YT_I64 && yt_i64(y)[0] == 1 && yt_i64(y)[1] == 2, "argmax");
    CHECK(!y->requires_grad, "argmax has no gradient");
    yt_tensor_release(y);
    y = yt_argmax_all(x);
    CHECK(y->ndim == 0 && yt_i64(y)[0] == 5, "argmax all");
    yt_tensor_release(y);
    y = yt_argmin(x, 0, 0);
    CHECK(yt_i64(y)[1] == 1, "argmin");
    yt_tensor_release(y);

    /* ties: the first occurrence; NaN propagates */
    float tv[] = {2, 7, 7, NAN, 1, 3};
    yt_tensor *t = yt_tensor_from_data(YT_F32, 2, s, tv);
    y = yt_max_dim(t, 1, 0, &idx);
    CHECK(yt_i64(idx)[0] == 1, "first max of a tie");
    CHECK(isnan(yt_f32(y)[1]) && yt_i64(idx)[1] == 0, "NaN is the max");
    yt_tensor_release(y);
    yt_tensor_release(idx);
    yt_tensor_release(t);

    /* errors */
    y = yt_sum_dim(x, 2, 0);
    CHECK(!y && strstr(yt_last_error(), "out of range"), "bad dim: %s", yt_last_error());
    int64_t s0[] = {0, 3};
    yt_tensor *e = yt_tensor_zeros(YT_F32, 2, s0);
    y = yt_max(e);
    CHECK(!y, "max of empty fails");
    y = yt_sum(e);
    CHECK(y && yt_f32(y)[0] == 0, "sum of empty is 0");
    yt_tensor_release(y);
    y = yt_mean(e);
    CHECK(y && isnan(yt_f32(y)[0]), "mean of empty is NaN");
    yt_tensor_release(y);
    yt_tensor_release(e);
    yt_tensor_release(x);
}

static void test_precision(void)
{
    /* a million 0.1s: float accumulation drifts by ~1e-1..1e1; double is exact to float rounding */
    int64_t n[] = {1000000};
    yt_tensor *x = yt_tensor_full(1, n, 0.1f);
    yt_tensor *y = yt_sum(x);
    CHECK_CLOSE(yt_f32(y)[0], 1000000 * (double)0.1f, 0.01);
    yt_tensor_release(y);
    int64_t s2[] = {1000, 1000};
    yt_tensor *x2 = yt_reshape(x, 2, s2);
    y = yt_mean_dim(x2, 0, 0); /* inner > 1 path */
    CHECK_CLOSE(yt_f32(y)[999], (double)0.1f, 1e-8);
    yt_tensor_release(y);
    yt_tensor_release(x2);
    yt_tensor_release(x);
}

static void test_softmax_values(void)
{
    float v[] = {1, 2, 3, 1000, 1001, 1002}; /* large values: must not overflow */
    int64_t s[] = {2, 3};
    yt_tensor *x = yt_tensor_from_data(YT_F32, 2, s, v);
    yt_tensor *y = yt_softmax(x, -1);
    double e1 = exp(-2.0), e2 = exp(-1.0), z = e1 + e2 + 1;
    for (int r = 0; r < 2; r++) {
        CHECK_CLOSE(yt_f32(y)[r * 3 + 0], e1 / z, 1e-6);
        CHECK_CLOSE(yt_f32(y)[r * 3 + 2], 1 / z, 1e-6);
    }
    yt_tensor *l = yt_log_softmax(x, 1);
    CHECK_CLOSE(yt_f32(l)[3], -2 - log(z), 1e-5);
    CHECK_CLOSE(yt_f32(l)[5], -log(z), 1e-5);
    yt_tensor_release(l);
    yt_tensor_release(y);
    /* over dim 0 (inner > 1): columns sum to 1 */
    y = yt_softmax(x, 0);
    for (int c = 0; c < 3; c++) CHECK_CLOSE(yt_f32(y)[c] + yt_f32(y)[3 + c], 1, 1e-6);
    CHECK_CLOSE(yt_f32(y)[0], 0, 1e-30);
    yt_tensor_release(y);
    yt_tensor_release(x);
}

int main(void)
{
    tu_seed(3);
    test_values();
    test_precision();
    test_softmax_values();

    int64_t s[] = {3, 4, 5};
    red_args cases[] = {
        {0, 0, 1, 0}, {0, 0, 0, 0},  {0, 1, 0, 1},  {0, -1, 0, 0}, {1, 0, 1, 0}, {1, 1, 0, 0}, {1, 2, 0, 1},
        {2, 0, 1, 0}, {2, 1, 0, 0},  {2, -1, 0, 1}, {3, 0, 1, 0},  {3, 0, 0, 0}, {3, 2, 0, 1}, {4, 0, 0, 0},
        {4, 1, 0, 0}, {4, -1, 0, 0}, {5, 0, 0, 0},  {5, 1, 0, 0},  {5, 2, 0, 0},
    };
    static const char *kinds[] = {"sum", "mean", "max", "min", "softmax", "log_softmax"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        yt_tensor *x = tu_rand(3, s, -3, 3);
        x->requires_grad = 1;
        char nm[64];
        snprintf(nm, sizeof nm, "%s dim %d all %d keepdim %d", kinds[cases[k].kind], cases[k].dim, cases[k].all,
                 cases[k].keepdim);
        tu_gradcheck(nm, f_red, 1, &x, &cases[k], 1e-3f, 2e-3f, 1e-2f);
        yt_tensor_release(x);
    }
    yt_tensor *x = tu_rand(3, s, -3, 3);
    x->requires_grad = 1;
    tu_gradcheck("sum of a permuted view", f_sum_strided, 1, &x, NULL, 1e-2f, 2e-3f, 1e-2f);
    /* max over all sends the whole gradient to the arg-max element */
    yt_tensor_release(x->grad);
    x->grad = NULL;
    yt_tensor *m = yt_max(x);
    yt_tensor *am = yt_argmax_all(x);
    CHECK(yt_backward(1, &m, NULL) == 0, "backward");
    double tot = 0;
    for (int64_t i = 0; i < yt_numel(x); i++) tot += yt_f32(x->grad)[i];
    CHECK(tot == 1 && yt_f32(x->grad)[yt_i64(am)[0]] == 1, "max gradient to the arg-max");
    yt_tensor_release(am);
    yt_tensor_release(m);
    yt_tensor_release(x);
    return tu_finish();
}
