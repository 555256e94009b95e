/* The fused inference convolution (ops/conv2d_infer.h) against the reference path: yt_conv2d (+ SiLU, + residual)
 * on the GEMM backend, for every input layout the model hands it, and its plan's bookkeeping. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/conv2d.h"
#include "ops/conv2d_infer.h"
#include "ops/elementwise.h"
#include "ops/shape_ops.h"
#include "testutil.h"

enum { LAYOUT_NCHW, LAYOUT_CHANNELS_LAST, LAYOUT_SLICE, LAYOUT_STRIDED };

/* x (N, C, H, W) in a layout: NCHW contiguous; dense channels-last; the channels 1 .. C of a channels-last tensor
 * of C + 2 channels (what C2f's chunk hands the next conv); an NCHW tensor with padded rows. */
static yt_tensor *in_layout(yt_tensor *x, int layout)
{
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (layout == LAYOUT_NCHW) {
        yt_tensor_retain(x);
        return x;
    }
    if (layout == LAYOUT_CHANNELS_LAST) return yt_channels_last(x);
    if (layout == LAYOUT_SLICE) {
        int64_t ws[] = {N, C + 2, H, W};
        yt_tensor *wide = tu_rand(4, ws, -1, 1), *wcl = yt_channels_last(wide), *v = yt_narrow(wcl, 1, 1, C);
        yt_tensor_copy_(v, x);
        yt_tensor_release(wcl);
        yt_tensor_release(wide);
        return v;
    }
    int64_t ps[] = {N, C, H, W + 3};
    yt_tensor *padded = tu_rand(4, ps, -1, 1), *v = yt_narrow(padded, 3, 2, W);
    yt_tensor_copy_(v, x);
    yt_tensor_release(padded);
    return v;
}

typedef struct {
    int N, C, H, W, O, K, s, p, bias, act, residual;
} conv_case;

/* act(conv(x) + b) [+ r] on the GEMM path */
static yt_tensor *reference(yt_tensor *x, yt_tensor *w, yt_tensor *b, yt_tensor *r, const conv_case *c)
{
    yt_tensor *y = yt_conv2d(x, w, b, c->s, c->s, c->p, c->p);
    if (c->act == YT_INFER_ACT_SILU) {
        yt_tensor *a = yt_silu(y);
        yt_tensor_release(y);
        y = a;
    }
    if (r) {
        yt_tensor *a = yt_add(y, r);
        yt_tensor_release(y);
        y = a;
    }
    return y;
}

static void check_case(const conv_case *c)
{
    char desc[160];
    snprintf(desc, sizeof desc, "N%d C%d %dx%d -> O%d k%d s%d p%d bias %d act %d residual %d", c->N, c->C, c->H, c->W,
             c->O, c->K, c->s, c->p, c->bias, c->act, c->residual);
    int64_t xs[] = {c->N, c->C, c->H, c->W}, ws[] = {c->O, c->C, c->K, c->K}, bs[] = {c->O};
    float bound = 1.0f / sqrtf((float)(c->C * c->K * c->K));
    yt_tensor *x = tu_rand(4, xs, -1, 1), *w = tu_rand(4, ws, -bound, bound);
    yt_tensor *b = c->bias ? tu_rand(1, bs, -0.5f, 0.5f) : NULL;
    int OH = (c->H + 2 * c->p - c->K) / c->s + 1, OW = (c->W + 2 * c->p - c->K) / c->s + 1;
    int64_t rs[] = {c->N, c->O, OH, OW};
    yt_tensor *r = c->residual ? tu_rand(4, rs, -1, 1) : NULL;
    yt_conv2d_set_backend(YT_CONV_GEMM);
    yt_tensor *want = reference(x, w, b, r, c);
    yt_conv2d_set_backend(0);
    yt_conv2d_plan *plan = yt_conv2d_plan_new(w, b, c->s, c->s, c->p, c->p, c->act);
    CHECK(plan != NULL, "%s: plan: %s", desc, yt_last_error());
    for (int layout = LAYOUT_NCHW; plan && layout <= LAYOUT_STRIDED; layout++) {
        yt_tensor *xl = in_layout(x, layout);
        /* the residual in another layout than the input: it is copied into the output either way */
        yt_tensor *rl = r ? in_layout(r, (layout + 1) % 4) : NULL;
        yt_tensor *y = yt_conv2d_plan_forward(plan, xl, rl);
        CHECK(y != NULL, "%s layout %d: %s", desc, layout, yt_last_error());
        if (y) {
            CHECK(yt_is_channels_last_dense(y) || (c->O == 1), "%s layout %d: output not channels-last", desc, layout);
            yt_tensor *yc = yt_contiguous(y);
            double scale = tu_max_abs(want), d = tu_max_abs_diff(yc, want);
            CHECK(d <= 1e-5 * (1 + scale), "%s layout %d: max diff %.3g (max |ref| %.3g)", desc, layout, d, scale);
            yt_tensor_release(yc);
            yt_tensor_release(y);
        }
        yt_tensor_release(rl);
        yt_tensor_release(xl);
    }
    /* one prepared shape for the four layouts (they are copied to the one the primitive reads) */
    CHECK(yt_conv2d_plan_shapes(plan) == 1, "%s: %d shapes prepared", desc, yt_conv2d_plan_shapes(plan));
    yt_conv2d_plan_free(plan);
    yt_tensor_release(want);
    yt_tensor_release(r);
    yt_tensor_release(b);
    yt_tensor_release(w);
    yt_tensor_release(x);
}

/* The YOLOv8n layers' kinds at small sizes: the stem (3 channels, stride 2), 3x3 and 1x1, C2f's widths, the
 * Detect head's 1x1 with a bias and no activation, odd sizes and batches. */
static void check_layers(void)
{
    conv_case cases[] = {
        {1, 3, 32, 24, 16, 3, 2, 1, 1, YT_INFER_ACT_SILU, 0}, {1, 16, 16, 12, 32, 3, 2, 1, 1, YT_INFER_ACT_SILU, 0},
        {1, 32, 8, 6, 32, 1, 1, 0, 1, YT_INFER_ACT_SILU, 0},  {1, 16, 8, 6, 16, 3, 1, 1, 1, YT_INFER_ACT_SILU, 1},
        {2, 48, 7, 5, 32, 1, 1, 0, 1, YT_INFER_ACT_SILU, 0},  {1, 64, 5, 5, 80, 3, 1, 1, 1, YT_INFER_ACT_SILU, 0},
        {1, 80, 5, 5, 80, 1, 1, 0, 1, YT_INFER_ACT_NONE, 0},  {2, 8, 9, 7, 8, 3, 1, 1, 0, YT_INFER_ACT_NONE, 1},
        {1, 4, 6, 6, 1, 1, 1, 0, 1, YT_INFER_ACT_SILU, 0},    {3, 5, 11, 4, 6, 5, 2, 2, 1, YT_INFER_ACT_SILU, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);
}

/* At most YT_CONV2D_PLAN_SHAPES input shapes, the least recently used one dropped; a change of the thread count
 * prepares the shape again; the weights are the plan's own copy. */
static void check_bookkeeping(void)
{
    int64_t ws[] = {8, 4, 3, 3}, bs[] = {8};
    yt_tensor *w = tu_rand(4, ws, -0.3f, 0.3f), *b = tu_rand(1, bs, -0.1f, 0.1f);
    yt_conv2d_plan *plan = yt_conv2d_plan_new(w, b, 1, 1, 1, 1, YT_INFER_ACT_SILU);
    CHECK(plan && yt_conv2d_plan_shapes(plan) == 0 && yt_conv2d_plan_impl(plan)[0] == 0, "a new plan");
    yt_tensor *xs[YT_CONV2D_PLAN_SHAPES + 2];
    for (int i = 0; i < YT_CONV2D_PLAN_SHAPES + 2; i++) {
        int64_t s[] = {1, 4, 5 + i, 6};
        xs[i] = tu_rand(4, s, -1, 1);
        yt_tensor *y = yt_conv2d_plan_forward(plan, xs[i], NULL);
        CHECK(y && y->shape[2] == 5 + i, "shape %d", i);
        yt_tensor_release(y);
    }
    CHECK(yt_conv2d_plan_shapes(plan) == YT_CONV2D_PLAN_SHAPES, "bounded: %d shapes", yt_conv2d_plan_shapes(plan));
    CHECK(yt_conv2d_plan_impl(plan)[0] != 0, "the implementation is named");
    /* the plan keeps its copy of the weights: changing the tensor afterwards does not reach it */
    yt_tensor *before = yt_conv2d_plan_forward(plan, xs[0], NULL);
    yt_f32(w)[0] += 1.0f;
    yt_tensor *after = yt_conv2d_plan_forward(plan, xs[0], NULL);
    yt_tensor *bc = yt_contiguous(before), *ac = yt_contiguous(after);
    CHECK(tu_max_abs_diff(bc, ac) == 0, "the plan's weights are a copy");
    /* another thread count: prepared again, the same result */
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads == 1 ? 2 : 1);
    yt_tensor *other = yt_conv2d_plan_forward(plan, xs[0], NULL), *oc = other ? yt_contiguous(other) : NULL;
    omp_set_num_threads(threads);
    CHECK(oc && tu_max_abs_diff(oc, bc) <= 1e-6, "another thread count");
    /* memory: temporaries (the copy of an NCHW input) are returned within the call */
    yt_scope_begin();
    size_t base = yt_bytes_in_use();
    yt_tensor *y = yt_conv2d_plan_forward(plan, xs[1], NULL);
    size_t out_bytes = (size_t)yt_numel(y) * sizeof(float);
    CHECK(yt_bytes_in_use() - base <= out_bytes + 64, "only the output stays: %zu bytes for %zu",
          yt_bytes_in_use() - base, out_bytes);
    yt_tensor_release(y);
    yt_scope_end();
    yt_tensor *all[] = {before, after, bc, ac, other, oc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) yt_tensor_release(all[i]);
    for (int i = 0; i < YT_CONV2D_PLAN_SHAPES + 2; i++) yt_tensor_release(xs[i]);
    yt_conv2d_plan_free(plan);
    yt_conv2d_plan_free(NULL);
    yt_tensor_release(b);
    yt_tensor_release(w);
}

static void check_errors(void)
{
    int64_t ws[] = {8, 4, 3, 3}, bs[] = {7}, w3s[] = {8, 4, 3};
    yt_tensor *w = tu_rand(4, ws, -1, 1), *b = tu_rand(1, bs, -1, 1), *w3 = tu_rand(3, w3s, -1, 1);
    CHECK(!yt_conv2d_plan_new(w, b, 1, 1, 1, 1, YT_INFER_ACT_SILU) && strstr(yt_last_error(), "bias"), "bias size: %s",
          yt_last_error());
    CHECK(!yt_conv2d_plan_new(w3, NULL, 1, 1, 1, 1, YT_INFER_ACT_SILU), "3-d weights");
    CHECK(!yt_conv2d_plan_new(w, NULL, 0, 1, 1, 1, YT_INFER_ACT_SILU) && strstr(yt_last_error(), "stride"),
          "stride: %s", yt_last_error());
    CHECK(!yt_conv2d_plan_new(w, NULL, 1, 1, 1, 1, 7) && strstr(yt_last_error(), "activation"), "act: %s",
          yt_last_error());
    yt_conv2d_plan *plan = yt_conv2d_plan_new(w, NULL, 1, 1, 0, 0, YT_INFER_ACT_NONE);
    int64_t x5s[] = {1, 5, 6, 6}, xs[] = {1, 4, 6, 6}, tiny[] = {1, 4, 2, 2}, rs[] = {1, 8, 3, 4};
    yt_tensor *x5 = tu_rand(4, x5s, -1, 1), *x = tu_rand(4, xs, -1, 1), *xt = tu_rand(4, tiny, -1, 1);
    yt_tensor *r = tu_rand(4, rs, -1, 1);
    CHECK(!yt_conv2d_plan_forward(plan, x5, NULL) && strstr(yt_last_error(), "channels"), "channels: %s",
          yt_last_error());
    CHECK(!yt_conv2d_plan_forward(plan, xt, NULL) && strstr(yt_last_error(), "larger"), "kernel: %s", yt_last_error());
    CHECK(!yt_conv2d_plan_forward(plan, x, r) && strstr(yt_last_error(), "residual"), "residual: %s", yt_last_error());
    CHECK(!yt_conv2d_plan_forward(NULL, x, NULL) && strstr(yt_last_error(), "closed"), "closed: %s", yt_last_error());
    x->requires_grad = 1;
    CHECK(!yt_conv2d_plan_forward(plan, x, NULL) && strstr(yt_last_error(), "inference only"), "grad: %s",
          yt_last_error());
    int was = yt_set_grad_enabled(0);
    yt_tensor *y = yt_conv2d_plan_forward(plan, x, NULL);
    CHECK(y && !y->requires_grad && !y->grad_fn, "grad mode off: runs, records nothing");
    yt_set_grad_enabled(was);
    /* an empty batch */
    int64_t es[] = {0, 4, 6, 6};
    yt_tensor *xe = yt_tensor_zeros(YT_F32, 4, es), *ye = yt_conv2d_plan_forward(plan, xe, NULL);
    CHECK(ye && ye->shape[0] == 0 && ye->shape[1] == 8 && ye->shape[2] == 4, "empty batch");
    yt_tensor *all[] = {w, b, w3, x5, x, xt, r, y, xe, ye};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) yt_tensor_release(all[i]);
    yt_conv2d_plan_free(plan);
}

int main(void)
{
    tu_seed(5);
    check_layers();
    check_bookkeeping();
    check_errors();
    return tu_finish();
}
