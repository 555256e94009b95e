/* yt_grad_dest (src/core/autograd.h): the gradient buffers that backwards store into instead of zeroing and adding.
 * Each op that uses it must write every element of a fresh buffer: run with the block cache full of NaN blocks of
 * the gradients' sizes (so a fresh buffer holds NaNs), its gradients equal those of the same backward accumulating
 * into buffers that already exist (zeros: the same floats; 0.5: within rounding). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "ops/activation.h"
#include "ops/batchnorm.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/shape_ops.h"
#include "testutil.h"

#define MAX_LEAVES 4

typedef yt_tensor *(*op_fn)(yt_tensor **leaves, void *ud);

/* NaN-filled blocks of n floats, freed into the block cache for the next allocations of that size to reuse. */
static void poison(int64_t n, int copies)
{
    yt_tensor *t[8];
    for (int k = 0; k < copies && k < 8; k++) {
        t[k] = yt_tensor_empty(YT_F32, 1, &n);
        float *p = yt_f32(t[k]);
        for (int64_t i = 0; i < n; i++) p[i] = NAN;
    }
    for (int k = 0; k < copies && k < 8; k++) yt_tensor_release(t[k]);
}

/* One forward + backward of f on copies of the leaves whose gradients start absent (start NAN, the cache
 * poisoned) or at `start`. Returns the gradients (NULL for a leaf without one). */
static void run(op_fn f, void *ud, int n, yt_tensor *const *leaves0, const int *wants, float start, yt_tensor **grads,
                yt_tensor **gy_io)
{
    yt_tensor *in[MAX_LEAVES];
    for (int i = 0; i < n; i++) {
        in[i] = yt_tensor_clone(leaves0[i]);
        in[i]->requires_grad = wants[i];
        if (wants[i] && !isnan(start)) in[i]->grad = yt_tensor_full(in[i]->ndim, in[i]->shape, start);
    }
    if (isnan(start))
        for (int i = 0; i < n; i++) poison(yt_numel(in[i]), 4);
    yt_tensor *y = f(in, ud);
    CHECK(y != NULL, "forward: %s", yt_last_error());
    if (y) {
        if (!*gy_io) *gy_io = tu_rand(y->ndim, y->shape, -1, 1);
        CHECK(yt_backward(1, &y, gy_io) == 0, "backward: %s", yt_last_error());
    }
    for (int i = 0; i < n; i++) {
        grads[i] = in[i]->grad;
        if (grads[i]) yt_tensor_retain(grads[i]);
        yt_tensor_release(in[i]);
    }
    yt_tensor_release(y);
}

/* max |(a + start) - b| / max(1, |b|); NaN or a missing gradient gives INFINITY */
static double diff(const yt_tensor *a, const yt_tensor *b, float start)
{
    if (!a || !b || yt_numel(a) != yt_numel(b)) return INFINITY;
    const float *p = yt_f32(a), *q = yt_f32(b);
    double m = 0;
    for (int64_t i = 0; i < yt_numel(a); i++) {
        double d = fabs((double)(p[i] + start) - q[i]) / fmax(1.0, fabs(q[i]));
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static void check_op(const char *name, op_fn f, void *ud, int n, yt_tensor *const *leaves, const int *wants)
{
    yt_tensor *gy = NULL, *fresh[MAX_LEAVES], *zero[MAX_LEAVES], *half[MAX_LEAVES];
    run(f, ud, n, leaves, wants, NAN, fresh, &gy);
    run(f, ud, n, leaves, wants, 0.0f, zero, &gy);
    run(f, ud, n, leaves, wants, 0.5f, half, &gy);
    for (int i = 0; i < n; i++) {
        if (!wants[i]) {
            CHECK(!fresh[i], "%s: leaf %d has no gradient", name, i + 1);
            continue;
        }
        double d0 = diff(fresh[i], zero[i], 0.0f), d1 = diff(fresh[i], half[i], 0.5f);
        CHECK(d0 == 0, "%s: leaf %d: fresh gradient vs added to zeros: %.3g", name, i + 1, d0);
        CHECK(d1 <= 1e-5, "%s: leaf %d: fresh gradient + 0.5 vs added to 0.5: %.3g", name, i + 1, d1);
        yt_tensor_release(fresh[i]);
        yt_tensor_release(zero[i]);
        yt_tensor_release(half[i]);
    }
    yt_tensor_release(gy);
}

/* ---- the ops ---- */

typedef struct {
    int stride, pad, backend;
} conv_ud;

static yt_tensor *f_conv(yt_tensor **in, void *ud)
{
    conv_ud *c = ud;
    yt_conv2d_set_backend(c->backend);
    yt_tensor *y = yt_conv2d(in[0], in[1], in[2], c->stride, c->stride, c->pad, c->pad);
    return y;
}

typedef struct {
    int training, silu;
} bn_ud;

static yt_tensor *f_bn(yt_tensor **in, void *ud)
{
    bn_ud *b = ud;
    int64_t cs[] = {in[0]->shape[1]};
    yt_tensor *rm = yt_tensor_full(1, cs, 0.1f), *rv = yt_tensor_full(1, cs, 1.5f);
    yt_tensor *y = (b->silu ? yt_batch_norm_silu : yt_batch_norm)(in[0], in[1], in[2], rm, rv, b->training, 0.03, 1e-3);
    yt_tensor_release(rm);
    yt_tensor_release(rv);
    return y;
}

static yt_tensor *f_silu(yt_tensor **in, void *ud) { return yt_silu(in[0]); }
static yt_tensor *f_cat(yt_tensor **in, void *ud) { return yt_cat(2, in, 1); }

static yt_tensor *f_cat_twice(yt_tensor **in, void *ud)
{
    yt_tensor *t[3] = {in[0], in[1], in[0]};
    return yt_cat(3, t, 1);
}

/* a permuted copy (contiguous of a permuted view), then reshaped */
static yt_tensor *f_contiguous(yt_tensor **in, void *ud)
{
    const int perm[4] = {0, 2, 3, 1};
    yt_tensor *p = yt_permute(in[0], perm), *c = p ? yt_contiguous(p) : NULL;
    int64_t shape[2] = {-1, in[0]->shape[1]};
    yt_tensor *r = c ? yt_reshape(c, 2, shape) : NULL;
    yt_tensor_release(p);
    yt_tensor_release(c);
    return r;
}

static yt_tensor *f_add(yt_tensor **in, void *ud) { return yt_add(in[0], in[1]); }
static yt_tensor *f_sub(yt_tensor **in, void *ud) { return yt_sub(in[0], in[1]); }
static yt_tensor *f_add_self(yt_tensor **in, void *ud) { return yt_add(in[0], in[0]); }

/* split into two pieces along channels: which = 1 uses only the second piece, 2 both (in the other order) */
static yt_tensor *f_split(yt_tensor **in, void *ud)
{
    int which = *(int *)ud;
    int64_t sizes[2] = {in[0]->shape[1] / 2, in[0]->shape[1] - in[0]->shape[1] / 2};
    yt_tensor *p[2];
    if (yt_split(in[0], 2, sizes, 1, p) < 0) return NULL;
    yt_tensor *y;
    if (which == 1) {
        y = yt_silu(p[1]);
    } else {
        yt_tensor *q[2] = {p[1], p[0]};
        y = yt_cat(2, q, 1);
    }
    yt_tensor_release(p[0]);
    yt_tensor_release(p[1]);
    return y;
}

/* yt_grad_dest itself: a fresh buffer to store into, then the same one to add into; NULL without a gradient. */
static void check_dest(void)
{
    int64_t s[] = {3, 5};
    yt_tensor *t = yt_tensor_zeros(YT_F32, 2, s), *u = yt_tensor_zeros(YT_F32, 2, s);
    t->requires_grad = 1;
    int acc = -1;
    float *g = yt_grad_dest(t, &acc);
    CHECK(g && acc == 0 && t->grad && yt_numel(t->grad) == 15, "fresh buffer: store (acc %d)", acc);
    float *g2 = yt_grad_dest(t, &acc);
    CHECK(g2 == g && acc == 1, "existing buffer: add (acc %d)", acc);
    CHECK(yt_grad_accum(t) == g, "yt_grad_accum gives the same buffer");
    acc = -1;
    CHECK(yt_grad_dest(u, &acc) == NULL && acc == 1 && !u->grad, "no gradient wanted: NULL");
    CHECK(yt_grad_dest(NULL, &acc) == NULL, "NULL tensor");
    yt_tensor_release(t);
    yt_tensor_release(u);
    /* the poisoning reaches fresh buffers (not under AddressSanitizer, whose builds keep no cache) */
    int64_t n = 32768;
    poison(n, 1);
    yt_tensor *p = yt_tensor_empty_unscoped(YT_F32, 1, &n);
    int nans = 0;
    for (int64_t i = 16; i < n; i++) nans += isnan(yt_f32(p)[i]);
    printf("a fresh buffer of %lld floats after poisoning: %d NaNs%s\n", (long long)n, nans,
           nans ? "" : " (no cache reuse: the checks below cannot see unwritten elements)");
    yt_tensor_release(p);
}

int main(void)
{
    tu_seed(11);
    check_dest();

    int64_t xs[] = {2, 16, 32, 32}, ws[] = {16, 16, 3, 3}, w1[] = {16, 16, 1, 1}, bs[] = {16};
    yt_tensor *x = tu_rand(4, xs, -1, 1), *w = tu_rand(4, ws, -0.3f, 0.3f), *wp = tu_rand(4, w1, -0.3f, 0.3f);
    yt_tensor *b = tu_rand(1, bs, -1, 1);
    const int all[] = {1, 1, 1}, x_only[] = {1, 0, 0}, w_only[] = {0, 1, 1};
    static const int backends[] = {YT_CONV_GEMM, YT_CONV_DNNL, YT_CONV_DNNL_ALL};
    for (int k = 0; k < 3; k++) {
        char name[64];
        conv_ud c3 = {1, 1, backends[k]}, c3s2 = {2, 1, backends[k]}, c1 = {1, 0, backends[k]};
        yt_tensor *l3[] = {x, w, b}, *l1[] = {x, wp, b};
        snprintf(name, sizeof name, "conv2d k3 %s", yt_conv2d_backend_name(backends[k]));
        check_op(name, f_conv, &c3, 3, l3, all);
        check_op(name, f_conv, &c3, 3, l3, x_only);
        check_op(name, f_conv, &c3, 3, l3, w_only);
        snprintf(name, sizeof name, "conv2d k3 s2 %s", yt_conv2d_backend_name(backends[k]));
        check_op(name, f_conv, &c3s2, 3, l3, all);
        snprintf(name, sizeof name, "conv2d 1x1 %s", yt_conv2d_backend_name(backends[k]));
        check_op(name, f_conv, &c1, 3, l1, all);
    }
    /* a batch oneDNN cuts into chunks (conv2d_dnnl.c: chunk_images): the weight gradient of the later chunks adds
     * to the first's */
    {
        int64_t big[] = {6, 16, 128, 128};
        yt_tensor *xb = tu_rand(4, big, -1, 1), *lb[] = {xb, w, b};
        conv_ud c = {1, 1, YT_CONV_DNNL_ALL};
        check_op("conv2d k3 dnnl_all, chunked batch", f_conv, &c, 3, lb, all);
        yt_tensor_release(xb);
    }
    yt_conv2d_set_backend(0);

    for (int training = 0; training <= 1; training++) {
        for (int silu = 0; silu <= 1; silu++) {
            bn_ud u = {training, silu};
            char name[64];
            snprintf(name, sizeof name, "%s %s", silu ? "batch_norm_silu" : "batch_norm", training ? "train" : "eval");
            yt_tensor *l[] = {x, b, b};
            check_op(name, f_bn, &u, 3, l, all);
            check_op(name, f_bn, &u, 3, l, x_only);
        }
    }
    yt_tensor *l1[] = {x};
    const int one[] = {1};
    check_op("silu", f_silu, NULL, 1, l1, one);

    int64_t ys[] = {2, 8, 32, 32};
    yt_tensor *y = tu_rand(4, ys, -1, 1), *x2 = tu_rand(4, xs, -1, 1);
    yt_tensor *lc[] = {x, y};
    const int both[] = {1, 1}, first[] = {1, 0};
    check_op("cat", f_cat, NULL, 2, lc, both);
    check_op("cat, one input without gradient", f_cat, NULL, 2, lc, first);
    check_op("cat with an input twice", f_cat_twice, NULL, 2, lc, both);
    int which1 = 1, which2 = 2;
    check_op("split, one piece used", f_split, &which1, 1, l1, one);
    check_op("split, both pieces", f_split, &which2, 1, l1, one);
    check_op("contiguous, reshape", f_contiguous, NULL, 1, l1, one);
    yt_tensor *la[] = {x, x2};
    check_op("add", f_add, NULL, 2, la, both);
    check_op("add, one operand without gradient", f_add, NULL, 2, la, first);
    check_op("sub", f_sub, NULL, 2, la, both);
    check_op("x + x", f_add_self, NULL, 1, l1, one);

    yt_tensor_release(x);
    yt_tensor_release(x2);
    yt_tensor_release(y);
    yt_tensor_release(w);
    yt_tensor_release(wp);
    yt_tensor_release(b);
    return tu_finish();
}
