/* Synchronised BatchNorm (src/distributed/syncbn.c) against the single-process op: S ranks with a slice of the
 * batch each must compute what one process computes on the whole batch, forward (outputs, running statistics)
 * and backward (input gradients; the weight and bias gradients once summed over ranks). Run as a plain program
 * (one rank, plus a finite-difference check) and under `mpirun -np 2` (ctest test_syncbn_2ranks). */
#include <math.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "distributed/dist.h"
#include "ops/batchnorm.h"
#include "ops/shape_ops.h"
#include "testutil.h"

#define N 4
#define C 3
#define H 5
#define W 4

static yt_tensor *grad_of(yt_tensor *t) { return t->grad; }

static yt_tensor *sbn_fn(yt_tensor **in, void *ud)
{
    (void)ud;
    return yt_dist_sync_batch_norm(in[0], in[1], in[2], NULL, NULL, 0.1, 1e-5);
}

static void test_against_single_process(void)
{
    const int rank = yt_dist_rank(), size = yt_dist_size();
    CHECK(N % size == 0, "the batch of %d splits over %d ranks", N, size);
    int64_t xs[4] = {N, C, H, W}, cs[1] = {C};
    tu_seed(11); /* every rank draws the same full batch */
    yt_tensor *x = tu_rand(4, xs, -2, 3), *gy = tu_rand(4, xs, -1, 1);
    yt_tensor *w = tu_rand(1, cs, 0.5f, 1.5f), *b = tu_rand(1, cs, -0.5f, 0.5f);
    yt_tensor *rm = yt_tensor_zeros(YT_F32, 1, cs), *rv = yt_tensor_zeros(YT_F32, 1, cs);
    yt_tensor *rm2 = yt_tensor_zeros(YT_F32, 1, cs), *rv2 = yt_tensor_zeros(YT_F32, 1, cs);
    for (int c = 0; c < C; c++) yt_f32(rv)[c] = yt_f32(rv2)[c] = 1.0f;

    /* the reference: one process, the whole batch */
    x->requires_grad = w->requires_grad = b->requires_grad = 1;
    yt_tensor *y = yt_batch_norm(x, w, b, rm, rv, 1, 0.1, 1e-5);
    CHECK(y && yt_backward(1, &y, &gy) == 0, "reference backward: %s", yt_last_error());

    /* this rank's slice */
    const int64_t per = N / size, start = rank * per;
    yt_tensor *xl = yt_tensor_clone(yt_narrow(x, 0, start, per)), *gyl = yt_tensor_clone(yt_narrow(gy, 0, start, per));
    yt_tensor *w2 = yt_tensor_clone(w), *b2 = yt_tensor_clone(b);
    xl->requires_grad = w2->requires_grad = b2->requires_grad = 1;
    yt_tensor *yl = yt_dist_sync_batch_norm(xl, w2, b2, rm2, rv2, 0.1, 1e-5);
    CHECK(yl != NULL, "sync_batch_norm: %s", yt_last_error());
    if (!y || !yl) return;
    CHECK(yt_backward(1, &yl, &gyl) == 0, "sync backward: %s", yt_last_error());

    yt_tensor *y_slice = yt_tensor_clone(yt_narrow(y, 0, start, per));
    yt_tensor *gx_slice = yt_tensor_clone(yt_narrow(grad_of(x), 0, start, per));
    CHECK(tu_max_abs_diff(yl, y_slice) <= 1e-5, "rank %d/%d output: %g", rank, size, tu_max_abs_diff(yl, y_slice));
    CHECK(tu_max_abs_diff(grad_of(xl), gx_slice) <= 1e-5, "rank %d/%d input gradient: %g", rank, size,
          tu_max_abs_diff(grad_of(xl), gx_slice));
    CHECK(tu_max_abs_diff(rm2, rm) <= 1e-6 && tu_max_abs_diff(rv2, rv) <= 1e-6, "running statistics: %g, %g",
          tu_max_abs_diff(rm2, rm), tu_max_abs_diff(rv2, rv));
    /* the weight and bias gradients are this rank's share: summed over ranks they are the whole batch's */
    CHECK(yt_dist_allreduce_f32(yt_f32(grad_of(w2)), C, YT_DIST_SUM, 0) == 0, "%s", yt_last_error());
    CHECK(yt_dist_allreduce_f32(yt_f32(grad_of(b2)), C, YT_DIST_SUM, 0) == 0, "%s", yt_last_error());
    CHECK(tu_max_abs_diff(grad_of(w2), grad_of(w)) <= 1e-4, "weight gradient: %g",
          tu_max_abs_diff(grad_of(w2), grad_of(w)));
    CHECK(tu_max_abs_diff(grad_of(b2), grad_of(b)) <= 1e-4, "bias gradient: %g",
          tu_max_abs_diff(grad_of(b2), grad_of(b)));
    yt_tape_clear();
    yt_tensor *all[] = {x, gy, w, b, rm, rv, rm2, rv2, y, xl, gyl, w2, b2, yl, y_slice, gx_slice};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) yt_tensor_release(all[i]);
}

/* One rank: the op's own gradients by finite differences (every rank would have to take part in each probe). */
static void test_gradcheck_one_rank(void)
{
    if (yt_dist_size() != 1) return;
    int64_t xs[4] = {2, C, 3, 3}, cs[1] = {C};
    yt_tensor *in[3] = {tu_rand(4, xs, -1, 1), tu_rand(1, cs, 0.5f, 1.5f), tu_rand(1, cs, -0.5f, 0.5f)};
    for (int i = 0; i < 3; i++) in[i]->requires_grad = 1;
    tu_gradcheck("sync_batch_norm", sbn_fn, 3, in, NULL, 1e-2f, 2e-3f, 2e-2f);
    for (int i = 0; i < 3; i++) yt_tensor_release(in[i]);
}

int main(void)
{
    if (yt_dist_init() < 0) {
        fprintf(stderr, "MPI init failed: %s\n", yt_last_error());
        return 1;
    }
    test_against_single_process();
    test_gradcheck_one_rank();
    int failed = tu_finish();
    if (yt_dist_finalize() < 0) {
        fprintf(stderr, "MPI finalize failed: %s\n", yt_last_error());
        return 1;
    }
    return failed;
}
