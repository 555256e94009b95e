#include <math.h>

#include "ops/activation.h"
#include "testutil.h"

static yt_tensor *f_silu(yt_tensor **in, void *ud) { return yt_silu(in[0]); }
static yt_tensor *f_sigmoid(yt_tensor **in, void *ud) { return yt_sigmoid(in[0]); }

int main(void)
{
    tu_seed(1);
    int64_t shape[] = {2, 3, 4, 5};
    yt_tensor *x = tu_rand(4, shape, -4, 4);
    x->requires_grad = 1;
    tu_gradcheck("silu", f_silu, 1, &x, NULL, 1e-2f, 1e-3f, 1e-2f);
    tu_gradcheck("sigmoid", f_sigmoid, 1, &x, NULL, 1e-2f, 1e-3f, 1e-2f);

    yt_tensor *y = yt_silu(x);
    CHECK_CLOSE(yt_f32(y)[0], yt_f32(x)[0] / (1 + exp(-yt_f32(x)[0])), 1e-6);
    yt_tensor_release(y);

    /* a scope frees what was made inside it, and the tape with it */
    yt_tape_clear(); /* drop the node recorded above: nothing will call backward on y */
    size_t before = yt_bytes_in_use();
    yt_scope_begin();
    yt_tensor *a = yt_silu(x), *b = yt_sigmoid(a);
    CHECK(yt_tape_length() == 2, "tape %zu", yt_tape_length());
    yt_scope_end();
    CHECK(yt_tensor_is_released(b), "scope released b");
    CHECK(yt_tape_length() == 0, "tape cleared");
    CHECK(yt_bytes_in_use() == before, "bytes %zu vs %zu", yt_bytes_in_use(), before);
    yt_tensor_release(a);
    yt_tensor_release(b);
    yt_tensor_release(x);
    return tu_finish();
}
