/* batch_norm_silu: the fused silu(batch_norm(x)) is bitwise equal to batch_norm followed by silu (outputs, running
 * statistics, every gradient) in training and eval, on small maps and on maps large enough for the parallel kernels,
 * with one and two threads. Its finite-difference gradients are checked in test_batchnorm.c. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "ops/activation.h"
#include "ops/batchnorm.h"
#include "ops/simd.h"
#include "testutil.h"

static int same_bits(const yt_tensor *a, const yt_tensor *b)
{
    if (!a || !b || yt_numel(a) != yt_numel(b)) return 0;
    return memcmp(yt_data(a), yt_data(b), (size_t)yt_numel(a) * sizeof(float)) == 0;
}

typedef struct {
    yt_tensor *x, *w, *b, *rm, *rv, *y;
} run;

/* One forward + backward from copies of the same inputs, fused or as two ops. */
static run run_once(int fused, const yt_tensor *x0, const yt_tensor *w0, const yt_tensor *b0, const yt_tensor *gy,
                    int training, int which)
{
    int64_t cs[] = {x0->shape[1]};
    run r = {yt_tensor_clone(x0),
             w0 ? yt_tensor_clone(w0) : NULL,
             b0 ? yt_tensor_clone(b0) : NULL,
             yt_tensor_zeros(YT_F32, 1, cs),
             yt_tensor_full(1, cs, 1.0f),
             NULL};
    r.x->requires_grad = which & 1;
    if (r.w) r.w->requires_grad = (which >> 1) & 1;
    if (r.b) r.b->requires_grad = (which >> 2) & 1;
    if (!training) { /* eval: statistics that are not the batch's */
        for (int64_t c = 0; c < cs[0]; c++) {
            yt_f32(r.rm)[c] = 0.1f * (float)c - 0.2f;
            yt_f32(r.rv)[c] = 0.5f + 0.25f * (float)c;
        }
    }
    if (fused) {
        r.y = yt_batch_norm_silu(r.x, r.w, r.b, r.rm, r.rv, training, 0.03, 1e-3);
    } else {
        yt_tensor *z = yt_batch_norm(r.x, r.w, r.b, r.rm, r.rv, training, 0.03, 1e-3);
        r.y = z ? yt_silu(z) : NULL;
        yt_tensor_release(z);
    }
    CHECK(r.y != NULL, "forward (fused %d): %s", fused, yt_last_error());
    if (r.y && which) CHECK(yt_backward(1, &r.y, (yt_tensor *const *)&gy) == 0, "backward: %s", yt_last_error());
    return r;
}

static void run_release(run *r)
{
    yt_tensor_release(r->x);
    yt_tensor_release(r->w);
    yt_tensor_release(r->b);
    yt_tensor_release(r->rm);
    yt_tensor_release(r->rv);
    yt_tensor_release(r->y);
}

static int grads_equal(const yt_tensor *a, const yt_tensor *b)
{
    if (!a || !b) return a == b || !a->requires_grad;
    if (!a->requires_grad) return !a->grad && !b->grad;
    return same_bits(a->grad, b->grad);
}

static void check_bitwise(int N, int C, int H, int W, int affine, int training, int which)
{
    int64_t xs[] = {N, C, H, W}, cs[] = {C};
    yt_tensor *x = tu_rand(4, xs, -3, 4), *gy = tu_rand(4, xs, -1, 1);
    yt_tensor *w = affine ? tu_rand(1, cs, 0.5f, 1.5f) : NULL, *b = affine ? tu_rand(1, cs, -1, 1) : NULL;
    if (!affine) which &= 1;
    run u = run_once(0, x, w, b, gy, training, which), f = run_once(1, x, w, b, gy, training, which);
    int ok = same_bits(u.y, f.y) && same_bits(u.rm, f.rm) && same_bits(u.rv, f.rv) && grads_equal(u.x, f.x) &&
             grads_equal(u.w, f.w) && grads_equal(u.b, f.b);
    CHECK(ok, "fused == batch_norm + silu bitwise: %dx%dx%dx%d affine %d training %d grads %d threads %d", N, C, H, W,
          affine, training, which, omp_get_max_threads());
    run_release(&u);
    run_release(&f);
    yt_tensor_release(x);
    yt_tensor_release(gy);
    yt_tensor_release(w);
    yt_tensor_release(b);
}

/* The fused node keeps x (and the per-channel vectors) for backward, never the BN output. */
static void check_saves_only_input(void)
{
    int64_t xs[] = {4, 3, 8, 8}, cs[] = {3};
    yt_tensor *x = tu_rand(4, xs, -1, 1), *w = tu_rand(1, cs, 0.5f, 1.5f), *b = tu_rand(1, cs, -1, 1);
    x->requires_grad = w->requires_grad = b->requires_grad = 1;
    yt_tensor *y = yt_batch_norm_silu(x, w, b, NULL, NULL, 1, 0.03, 1e-3);
    CHECK(y && y->grad_fn && yt_tape_length() == 1, "one node on the tape");
    if (y && y->grad_fn) {
        yt_node *node = y->grad_fn;
        int big = 0;
        for (int i = 0; i < node->n_saved; i++)
            if (yt_numel(node->saved[i]) == yt_numel(x)) big += node->saved[i]->storage == x->storage ? 1 : 100;
        CHECK(big == 1, "saves x and no other map (%d)", big);
    }
    yt_tape_clear();
    yt_tensor_release(y);
    yt_tensor_release(x);
    yt_tensor_release(w);
    yt_tensor_release(b);
}

int main(void)
{
    tu_seed(11);
    const int threads[] = {1, 2};
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(threads[t]);
        for (int training = 0; training <= 1; training++) {
            check_bitwise(3, 4, 5, 6, 1, training, 7);
            check_bitwise(3, 4, 5, 6, 0, training, 1);
            check_bitwise(16, 5, 40, 40, 1, training, 7); /* 128000 values: the parallel kernels */
            check_bitwise(16, 5, 40, 40, 1, training, 6);
            check_bitwise(16, 5, 40, 40, 1, training, 1);
            check_bitwise(8, 3, 33, 17, 1, training, 0); /* forward only */
            check_bitwise(5, 7, 3, 3, 1, training, 7);   /* planes shorter than a vector (ops/simd.h) */
        }
    }
    /* every vector level the CPU has (ops/simd.h): the fused op still equals the two ops */
    for (int l = YT_SIMD_BASELINE; l <= yt_simd_detected_level(); l++) {
        yt_simd_set_level(l);
        check_bitwise(16, 5, 40, 40, 1, 1, 7);
        check_bitwise(3, 4, 5, 6, 1, 0, 7);
    }
    yt_simd_set_level(-1);
    check_saves_only_input();
    return tu_finish();
}
