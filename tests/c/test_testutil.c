/* The test harness itself: every comparison and the gradient checker must fail on the inputs that would
 * otherwise let a wrong result pass (a wrongly sized tensor, a NaN, nothing to check). */
#include <math.h>

#include "ops/activation.h"
#include "ops/shape_ops.h"
#include "testutil.h"

static yt_tensor *silu_fn(yt_tensor **in, void *ud)
{
    (void)ud;
    return yt_silu(in[0]);
}

/* The checker's own pass/fail count must not leak into this program's: runs it and restores the counters. */
static int gradcheck_quietly(yt_tensor **inputs, int n)
{
    int passed = tu_passed, failed = tu_failed;
    int ok = tu_gradcheck("silu", silu_fn, n, inputs, NULL, 1e-2f, 1e-3f, 1e-2f);
    tu_passed = passed;
    tu_failed = failed;
    return ok;
}

static void test_max_abs_diff_fails_on_mismatch(void)
{
    int64_t s4[1] = {4}, s5[1] = {5}, s22[2] = {2, 2};
    yt_tensor *a = yt_tensor_full(1, s4, 1.0f), *b = yt_tensor_full(1, s5, 1.0f), *c = yt_tensor_full(2, s22, 1.0f);
    yt_tensor *i = yt_tensor_zeros(YT_I64, 1, s4);
    CHECK(tu_max_abs_diff(a, a) == 0.0, "equal tensors differ by 0");
    CHECK(tu_max_abs_diff(a, c) == 0.0, "the same elements in another shape compare equal");
    CHECK(!(tu_max_abs_diff(a, b) <= 1e30), "4 vs 5 elements must fail a tolerance check, got %g",
          tu_max_abs_diff(a, b));
    CHECK(!(tu_max_abs_diff(a, i) <= 1e30), "F32 vs I64 must fail a tolerance check");
    CHECK(!(tu_max_abs_diff(a, NULL) <= 1e30), "a missing tensor must fail a tolerance check");
    CHECK(!(tu_rel_l2(a, b) <= 1e30), "tu_rel_l2 on a size mismatch must fail a tolerance check");
    yt_f32(c)[3] = NAN;
    CHECK(!(tu_max_abs_diff(a, c) <= 1e30), "a NaN element must fail a tolerance check");
    CHECK(!(tu_max_abs(c) <= 1e30), "tu_max_abs of a NaN tensor must fail a tolerance check");
    int64_t s23[2] = {2, 3};
    yt_tensor *m = yt_tensor_full(2, s23, 2.0f);
    int perm[2] = {1, 0};
    yt_tensor *mt = yt_permute(m, perm);
    yt_tensor *m6 = yt_tensor_full(2, s23, 2.0f);
    CHECK(!(tu_max_abs_diff(mt, m6) <= 1e30), "a strided tensor is not compared as if contiguous");
    yt_tensor_release(mt);
    yt_tensor_release(m);
    yt_tensor_release(m6);
    yt_tensor_release(a);
    yt_tensor_release(b);
    yt_tensor_release(c);
    yt_tensor_release(i);
}

static void test_gradcheck_fails_with_nothing_to_check(void)
{
    int64_t s[1] = {3};
    yt_tensor *x = tu_rand(1, s, -1, 1);
    CHECK(gradcheck_quietly(&x, 1) == 0, "gradcheck with no input requiring a gradient must fail");
    yt_tensor *none = NULL;
    CHECK(gradcheck_quietly(&none, 1) == 0, "gradcheck with only a NULL input must fail");
    x->requires_grad = 1;
    CHECK(gradcheck_quietly(&x, 1) == 1, "gradcheck of silu with x requiring a gradient passes");
    yt_tensor_release(x);
}

int main(void)
{
    tu_seed(11);
    test_max_abs_diff_fails_on_mismatch();
    test_gradcheck_fails_with_nothing_to_check();
    return tu_finish();
}
