#include <math.h>
#include <string.h>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "testutil.h"

/* ---- functions under test (userdata selects the op) ---- */

static yt_tensor *f_binary(yt_tensor **in, void *ud) { return yt_binary(*(yt_binary_op *)ud, in[0], in[1]); }

/* a permuted (strided) first operand: (4, 3) viewed as (3, 4) */
static yt_tensor *f_binary_strided(yt_tensor **in, void *ud)
{
    int perm[2] = {1, 0};
    yt_tensor *t = yt_permute(in[0], perm);
    yt_tensor *y = yt_binary(*(yt_binary_op *)ud, t, in[1]);
    yt_tensor_release(t);
    return y;
}

typedef struct {
    yt_unary_op op;
    double p0, p1;
} un_args;

static yt_tensor *f_unary(yt_tensor **in, void *ud)
{
    un_args *a = ud;
    return yt_unary(a->op, in[0], a->p0, a->p1);
}

/* x used twice: x * x + x */
static yt_tensor *f_reuse(yt_tensor **in, void *ud)
{
    (void)ud;
    yt_tensor *m = yt_mul(in[0], in[0]);
    yt_tensor *y = yt_add(m, in[0]);
    yt_tensor_release(m);
    return y;
}

static yt_tensor *mk(int nd, const int64_t *shape, float lo, float hi, int grad)
{
    yt_tensor *t = tu_rand(nd, shape, lo, hi);
    t->requires_grad = grad;
    return t;
}

/* keeps |x| >= 0.2 so kinks (abs at 0) are away from the finite-difference stencil */
static void away_from_zero(yt_tensor *t)
{
    float *p = yt_f32(t);
    for (int64_t i = 0; i < yt_numel(t); i++)
        if (fabsf(p[i]) < 0.2f) p[i] = p[i] < 0 ? p[i] - 0.2f : p[i] + 0.2f;
}

static void test_forward_values(void)
{
    float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {10, 20, 30};
    int64_t sa[] = {2, 3}, sb[] = {3}, sc[] = {2, 1};
    yt_tensor *a = yt_tensor_from_data(YT_F32, 2, sa, av);
    yt_tensor *b = yt_tensor_from_data(YT_F32, 1, sb, bv);
    float cv[] = {2, 4};
    yt_tensor *c = yt_tensor_from_data(YT_F32, 2, sc, cv);

    yt_tensor *y = yt_add(a, b);
    CHECK(y && y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 3, "add shape");
    float want_add[] = {11, 22, 33, 14, 25, 36};
    for (int i = 0; i < 6; i++) CHECK_CLOSE(yt_f32(y)[i], want_add[i], 0);
    yt_tensor_release(y);

    y = yt_sub(b, a); /* (3) - (2,3) */
    float want_sub[] = {9, 18, 27, 6, 15, 24};
    for (int i = 0; i < 6; i++) CHECK_CLOSE(yt_f32(y)[i], want_sub[i], 0);
    yt_tensor_release(y);

    y = yt_div(a, c); /* (2,3) / (2,1) */
    float want_div[] = {0.5f, 1, 1.5f, 1, 1.25f, 1.5f};
    for (int i = 0; i < 6; i++) CHECK_CLOSE(yt_f32(y)[i], want_div[i], 0);
    yt_tensor_release(y);

    y = yt_mul(c, b); /* (2,1) * (3) -> (2,3): both broadcast */
    CHECK(y->shape[0] == 2 && y->shape[1] == 3, "outer product shape");
    float want_mul[] = {20, 40, 60, 40, 80, 120};
    for (int i = 0; i < 6; i++) CHECK_CLOSE(yt_f32(y)[i], want_mul[i], 0);
    yt_tensor_release(y);

    /* 0-d with anything */
    yt_tensor *s = yt_tensor_full(0, NULL, 3.0f);
    y = yt_mul(a, s);
    CHECK(y->ndim == 2, "0-d broadcast keeps the other shape");
    CHECK_CLOSE(yt_f32(y)[5], 18, 0);
    yt_tensor_release(y);
    yt_tensor_release(s);

    /* strided operand (transposed view) */
    int perm[2] = {1, 0};
    yt_tensor *at = yt_permute(a, perm); /* (3,2): [[1,4],[2,5],[3,6]] */
    yt_tensor *bc = yt_reshape(b, 2, (int64_t[]){3, 1});
    y = yt_add(at, bc);
    float want_t[] = {11, 14, 22, 25, 33, 36};
    for (int i = 0; i < 6; i++) CHECK_CLOSE(yt_f32(y)[i], want_t[i], 0);
    yt_tensor_release(y);
    yt_tensor_release(at);
    yt_tensor_release(bc);

    /* scalar ops */
    y = yt_rsub_scalar(a, 1);
    CHECK_CLOSE(yt_f32(y)[2], -2, 0);
    yt_tensor_release(y);
    y = yt_rdiv_scalar(a, 2);
    CHECK_CLOSE(yt_f32(y)[3], 0.5, 0);
    yt_tensor_release(y);
    y = yt_div_scalar(a, 4);
    CHECK_CLOSE(yt_f32(y)[1], 0.5, 0);
    yt_tensor_release(y);
    y = yt_sub_scalar(a, 1.5);
    CHECK_CLOSE(yt_f32(y)[0], -0.5, 0);
    yt_tensor_release(y);

    /* unary */
    y = yt_pow_scalar(a, 2);
    CHECK_CLOSE(yt_f32(y)[3], 16, 0);
    yt_tensor_release(y);
    y = yt_pow_scalar(a, 1.5);
    CHECK_CLOSE(yt_f32(y)[3], 8, 1e-5);
    yt_tensor_release(y);
    y = yt_clamp(a, 2, 4.5);
    float want_clamp[] = {2, 2, 3, 4, 4.5f, 4.5f};
    for (int i = 0; i < 6; i++) CHECK_CLOSE(yt_f32(y)[i], want_clamp[i], 0);
    yt_tensor_release(y);
    y = yt_clamp(a, -INFINITY, 3);
    CHECK_CLOSE(yt_f32(y)[0], 1, 0);
    CHECK_CLOSE(yt_f32(y)[5], 3, 0);
    yt_tensor_release(y);
    y = yt_sqrt(a);
    CHECK_CLOSE(yt_f32(y)[3], 2, 0);
    yt_tensor_release(y);
    y = yt_exp(a);
    CHECK_CLOSE(yt_f32(y)[0], expf(1), 1e-6);
    yt_tensor_release(y);
    y = yt_log(a);
    CHECK_CLOSE(yt_f32(y)[1], logf(2), 1e-7);
    yt_tensor_release(y);
    y = yt_neg(a);
    CHECK_CLOSE(yt_f32(y)[1], -2, 0);
    yt_tensor *z = yt_abs(y);
    CHECK_CLOSE(yt_f32(z)[1], 2, 0);
    yt_tensor_release(z);
    yt_tensor_release(y);

    /* NaN passes through clamp */
    float nanv[] = {NAN, 5};
    int64_t s2[] = {2};
    yt_tensor *nn = yt_tensor_from_data(YT_F32, 1, s2, nanv);
    y = yt_clamp(nn, 0, 1);
    CHECK(isnan(yt_f32(y)[0]) && yt_f32(y)[1] == 1, "clamp NaN");
    yt_tensor_release(y);
    yt_tensor_release(nn);

    yt_tensor_release(a);
    yt_tensor_release(b);
    yt_tensor_release(c);
}

static void test_errors(void)
{
    int64_t s1[] = {2, 3}, s2[] = {4};
    yt_tensor *a = yt_tensor_zeros(YT_F32, 2, s1), *b = yt_tensor_zeros(YT_F32, 1, s2);
    yt_tensor *y = yt_add(a, b);
    CHECK(y == NULL, "add of [2,3] and [4] must fail");
    CHECK(strstr(yt_last_error(), "[2, 3]") && strstr(yt_last_error(), "[4]"), "message names both shapes: %s",
          yt_last_error());
    yt_tensor *i = yt_tensor_zeros(YT_I64, 2, s1);
    y = yt_mul(a, i);
    CHECK(y == NULL && strstr(yt_last_error(), "I64"), "dtype error: %s", yt_last_error());
    y = yt_clamp(a, 2, 1);
    CHECK(y == NULL, "clamp with min > max fails");
    yt_tensor_release(i);
    yt_tensor_release(a);
    yt_tensor_release(b);
}

static void test_large_fast_path(void)
{
    /* large enough for the OpenMP path; compare against a scalar loop */
    int64_t s[] = {4, 64, 40, 40};
    yt_tensor *a = tu_rand(4, s, -1, 1), *b = tu_rand(4, s, -1, 1);
    yt_tensor *y = yt_mul(a, b);
    double md = 0;
    for (int64_t k = 0; k < yt_numel(a); k++) {
        double d = fabs((double)yt_f32(y)[k] - (double)(yt_f32(a)[k] * yt_f32(b)[k]));
        if (d > md) md = d;
    }
    CHECK(md == 0, "large mul differs by %g", md);
    /* broadcast bias over NCHW */
    int64_t sb[] = {1, 64, 1, 1};
    yt_tensor *bias = tu_rand(4, sb, -1, 1);
    yt_tensor *z = yt_add(a, bias);
    md = 0;
    for (int64_t k = 0; k < yt_numel(a); k++) {
        int64_t c = (k / 1600) % 64;
        double d = fabs((double)yt_f32(z)[k] - (double)(yt_f32(a)[k] + yt_f32(bias)[c]));
        if (d > md) md = d;
    }
    CHECK(md == 0, "bias add differs by %g", md);
    /* backward of the broadcast bias: sum over N, H, W in double */
    bias->requires_grad = 1;
    yt_tensor *z2 = yt_add(a, bias);
    yt_tensor *g = yt_tensor_full(4, s, 0.1f);
    CHECK(yt_backward(1, &z2, &g) == 0, "backward: %s", yt_last_error());
    CHECK(bias->grad != NULL, "bias got a gradient");
    if (bias->grad) CHECK_CLOSE(yt_f32(bias->grad)[7], 4 * 1600 * (double)0.1f, 1e-3);
    yt_tensor_release(g);
    yt_tensor_release(z2);
    yt_tensor_release(z);
    yt_tensor_release(bias);
    yt_tensor_release(y);
    yt_tensor_release(a);
    yt_tensor_release(b);
}

/* A tensor the tape holds only as a gradient target (add saves nothing) loses its storage when the last other
 * reference goes (the forward freeing it after its last reader); one a node saved (mul) keeps it. The gradients are
 * the same either way. */
static void test_gradient_target_storage(void)
{
    int64_t s[] = {64, 1024};
    const size_t bytes = 64 * 1024 * sizeof(float);
    yt_tape_clear();
    yt_scope_begin();
    yt_tensor *a = tu_rand(2, s, -1, 1), *b = tu_rand(2, s, -1, 1);
    a->requires_grad = b->requires_grad = 1;
    yt_tensor *h = yt_add(a, b); /* read by the next add only: a gradient target */
    yt_tensor *k = yt_add(a, b); /* read by mul, which saves it */
    yt_tensor *y = yt_add(h, a), *z = yt_mul(k, k);
    float k0 = yt_f32(k)[0];
    size_t in_use = yt_bytes_in_use();
    yt_tensor_release_consumed(h);
    CHECK(yt_bytes_in_use() == in_use - bytes, "a gradient target's storage goes with its last reader: %zu -> %zu",
          in_use, yt_bytes_in_use());
    CHECK(yt_tensor_is_released(h) && h->grad_fn != NULL, "its header and grad_fn stay for backward");
    yt_tensor_release_consumed(k);
    CHECK(yt_bytes_in_use() == in_use - bytes, "a saved tensor keeps its storage");
    yt_tensor *ys = yt_sum(y), *zs = yt_sum(z);
    yt_tensor *roots[] = {ys, zs};
    CHECK(yt_backward(2, roots, NULL) == 0, "backward through a freed gradient target: %s", yt_last_error());
    /* d/da: 1 (h) + 1 (y = h + a) + 2k (z = k^2); d/db: 1 + 2k */
    CHECK(a->grad && fabsf(yt_f32(a->grad)[0] - (2 + 2 * k0)) < 1e-5f, "gradient of a");
    CHECK(b->grad && fabsf(yt_f32(b->grad)[0] - (1 + 2 * k0)) < 1e-5f, "gradient of b");
    yt_tensor *ts[] = {a, b, y, z, ys, zs};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) yt_tensor_release(ts[i]);
    yt_scope_end();
}

int main(void)
{
    tu_seed(7);
    test_forward_values();
    test_errors();
    test_large_fast_path();
    test_gradient_target_storage();

    /* gradients: binary ops, same shape and several broadcasting patterns */
    static const char *names[] = {"add", "sub", "mul", "div"};
    int64_t s234[] = {2, 3, 4}, s31[] = {3, 1}, s4[] = {4}, s131[] = {1, 3, 1}, s214[] = {2, 1, 4}, s43[] = {4, 3};
    for (int op = 0; op < 4; op++) {
        yt_binary_op bop = (yt_binary_op)op;
        char nm[64];
        struct {
            int nda;
            int64_t *sa;
            int ndb;
            int64_t *sb;
            const char *what;
        } cases[] = {
            {3, s234, 3, s234, "same"},      {3, s234, 2, s31, "(2,3,4)x(3,1)"},
            {3, s234, 1, s4, "(2,3,4)x(4)"}, {3, s131, 3, s214, "(1,3,1)x(2,1,4)"},
            {1, s4, 3, s234, "(4)x(2,3,4)"}, {0, NULL, 3, s234, "()x(2,3,4)"},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            /* divisors kept away from 0 */
            yt_tensor *in[2] = {mk(cases[c].nda, cases[c].sa, -2, 2, 1), mk(cases[c].ndb, cases[c].sb, 0.5f, 2, 1)};
            snprintf(nm, sizeof nm, "%s %s", names[op], cases[c].what);
            tu_gradcheck(nm, f_binary, 2, in, &bop, 1e-2f, 2e-3f, 1e-2f);
            /* only one side requiring a gradient */
            in[0]->requires_grad = 0;
            snprintf(nm, sizeof nm, "%s %s (b only)", names[op], cases[c].what);
            tu_gradcheck(nm, f_binary, 2, in, &bop, 1e-2f, 2e-3f, 1e-2f);
            yt_tensor_release(in[0]);
            yt_tensor_release(in[1]);
        }
        yt_tensor *in[2] = {mk(2, s43, -2, 2, 1), mk(1, s4, 0.5f, 2, 1)};
        snprintf(nm, sizeof nm, "%s strided", names[op]);
        tu_gradcheck(nm, f_binary_strided, 2, in, &bop, 1e-2f, 2e-3f, 1e-2f);
        yt_tensor_release(in[0]);
        yt_tensor_release(in[1]);
    }

    /* the same tensor on both sides, and used twice */
    yt_tensor *x = mk(3, s234, -2, 2, 1);
    tu_gradcheck("x*x + x", f_reuse, 1, &x, NULL, 1e-2f, 2e-3f, 1e-2f);
    yt_tensor_release(x);

    /* unary ops */
    struct {
        un_args a;
        float lo, hi;
        int away0;
        const char *name;
    } un[] = {
        {{YT_UN_NEG, 0, 0}, -2, 2, 0, "neg"},
        {{YT_UN_EXP, 0, 0}, -2, 2, 0, "exp"},
        {{YT_UN_LOG, 0, 0}, 0.3f, 3, 0, "log"},
        {{YT_UN_SQRT, 0, 0}, 0.3f, 3, 0, "sqrt"},
        {{YT_UN_ABS, 0, 0}, -2, 2, 1, "abs"},
        {{YT_UN_POW, 2, 0}, -2, 2, 0, "pow 2"},
        {{YT_UN_POW, 3, 0}, -2, 2, 0, "pow 3"},
        {{YT_UN_POW, 0.5, 0}, 0.3f, 3, 0, "pow 0.5"},
        {{YT_UN_POW, -1.5, 0}, 0.5f, 3, 0, "pow -1.5"},
        {{YT_UN_POW, 0, 0}, -2, 2, 0, "pow 0"},
        {{YT_UN_CLAMP, -0.5, 0.7}, -2, 2, 0, "clamp"},
        {{YT_UN_CLAMP, -INFINITY, 0.3}, -2, 2, 0, "clamp max only"},
        {{YT_UN_ADDS, 1.5, 0}, -2, 2, 0, "add_scalar"},
        {{YT_UN_MULS, -2.5, 0}, -2, 2, 0, "mul_scalar"},
        {{YT_UN_DIVS, 3, 0}, -2, 2, 0, "div_scalar"},
        {{YT_UN_RSUBS, 3, 0}, -2, 2, 0, "rsub_scalar"},
        {{YT_UN_RDIVS, 3, 0}, 0.5f, 2, 0, "rdiv_scalar"},
    };
    for (size_t k = 0; k < sizeof un / sizeof un[0]; k++) {
        yt_tensor *u = mk(3, s234, un[k].lo, un[k].hi, 1);
        if (un[k].away0) away_from_zero(u);
        if (un[k].a.op == YT_UN_CLAMP) {
            /* keep values away from the clamp bounds */
            float *p = yt_f32(u);
            for (int64_t i = 0; i < yt_numel(u); i++) {
                if (fabs(p[i] - un[k].a.p0) < 0.05) p[i] += 0.1f;
                if (fabs(p[i] - un[k].a.p1) < 0.05) p[i] += 0.1f;
            }
        }
        tu_gradcheck(un[k].name, f_unary, 1, &u, &un[k].a, 1e-2f, 2e-3f, 1e-2f);
        yt_tensor_release(u);
    }

    /* clamp: gradient exactly 0 outside, 1 inside */
    {
        float v[] = {-3, 0, 3};
        int64_t s3[] = {3};
        yt_tensor *c = yt_tensor_from_data(YT_F32, 1, s3, v);
        c->requires_grad = 1;
        yt_tensor *y = yt_clamp(c, -1, 1);
        yt_tensor *g = yt_tensor_full(1, s3, 1.0f);
        yt_backward(1, &y, &g);
        CHECK(c->grad && yt_f32(c->grad)[0] == 0 && yt_f32(c->grad)[1] == 1 && yt_f32(c->grad)[2] == 0,
              "clamp gradient mask");
        yt_tensor_release(g);
        yt_tensor_release(y);
        yt_tensor_release(c);
    }

    /* no node when nothing needs a gradient, and no leaks in a scope */
    yt_tape_clear();
    size_t before = yt_bytes_in_use();
    yt_scope_begin();
    yt_tensor *p = tu_rand(3, s234, -1, 1), *q = tu_rand(1, s4, -1, 1);
    yt_tensor *r = yt_mul(p, q);
    CHECK(yt_tape_length() == 0, "no grad, no tape");
    p->requires_grad = 1;
    yt_tensor *r2 = yt_div(p, q);
    CHECK(yt_tape_length() == 1, "one node");
    yt_scope_end();
    CHECK(yt_bytes_in_use() == before, "scope frees everything: %zu vs %zu", yt_bytes_in_use(), before);
    yt_tensor_release(p);
    yt_tensor_release(q);
    yt_tensor_release(r);
    yt_tensor_release(r2);
    return tu_finish();
}
