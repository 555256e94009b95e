#include <math.h>
#include <string.h>

#include "ops/elementwise.h"
#include "ops/shape_ops.h"
#include "testutil.h"

typedef struct {
    int n, dim;
} cat_args;

static yt_tensor *f_cat(yt_tensor **in, void *ud)
{
    cat_args *a = ud;
    return yt_cat(a->n, in, a->dim);
}

/* the C2f pattern: chunk channels in 2, transform the second half, concatenate all three */
static yt_tensor *f_c2f(yt_tensor **in, void *ud)
{
    (void)ud;
    yt_tensor *parts[2];
    if (yt_chunk(in[0], 2, 1, parts, 2) != 2) return NULL;
    yt_tensor *z = yt_mul(parts[1], parts[1]);
    yt_tensor *all[3] = {parts[0], parts[1], z};
    yt_tensor *y = yt_cat(3, all, 1);
    yt_tensor_release(z);
    yt_tensor_release(parts[0]);
    yt_tensor_release(parts[1]);
    return y;
}

static yt_tensor *f_split_sizes(yt_tensor **in, void *ud)
{
    (void)ud;
    int64_t sizes[3] = {1, 3, 1};
    yt_tensor *p[3];
    if (yt_split(in[0], 3, sizes, -1, p) < 0) return NULL;
    /* use the pieces in a different order and weight */
    yt_tensor *a = yt_mul_scalar(p[2], 3);
    yt_tensor *all[3] = {a, p[1], p[0]};
    yt_tensor *y = yt_cat(3, all, -1);
    yt_tensor_release(a);
    for (int i = 0; i < 3; i++) yt_tensor_release(p[i]);
    return y;
}

static yt_tensor *f_index_select(yt_tensor **in, void *ud) { return yt_index_select(in[0], 1, ud); }

static yt_tensor *f_transpose(yt_tensor **in, void *ud)
{
    (void)ud;
    return yt_transpose(in[0], 0, 2);
}

static yt_tensor *f_squeeze_chain(yt_tensor **in, void *ud)
{
    (void)ud;
    yt_tensor *a = yt_unsqueeze(in[0], -1); /* (2,1,4,1) */
    yt_tensor *b = yt_squeeze(a, 1);        /* (2,4,1) */
    yt_tensor *c = yt_flatten(b, 0, -1);    /* (8) */
    yt_tensor *y = yt_mul_scalar(c, 2);
    yt_tensor_release(a);
    yt_tensor_release(b);
    yt_tensor_release(c);
    return y;
}

static void test_cat_values(void)
{
    /* NCHW channel concat: (2,1,2,2) + (2,2,2,2) */
    int64_t sa[] = {2, 1, 2, 2}, sb[] = {2, 2, 2, 2};
    yt_tensor *a = yt_tensor_empty(YT_F32, 4, sa), *b = yt_tensor_empty(YT_F32, 4, sb);
    for (int i = 0; i < 8; i++) yt_f32(a)[i] = (float)i;
    for (int i = 0; i < 16; i++) yt_f32(b)[i] = 100.0f + (float)i;
    yt_tensor *ts[2] = {a, b};
    yt_tensor *y = yt_cat(2, ts, 1);
    CHECK(y && y->shape[1] == 3 && yt_numel(y) == 24, "cat shape");
    /* y[n=1, c=0] = a[1,0] = 4..7; y[n=1, c=1] = b[1,0] = 108.. */
    CHECK(yt_f32(y)[12] == 4 && yt_f32(y)[16] == 108 && yt_f32(y)[23] == 115 && yt_f32(y)[4] == 100, "cat values");
    yt_tensor_release(y);

    /* non-contiguous input */
    int perm[4] = {0, 1, 3, 2};
    yt_tensor *bt = yt_permute(b, perm);
    yt_tensor *ts2[2] = {a, bt};
    y = yt_cat(2, ts2, 1);
    CHECK(yt_f32(y)[4 + 1] == 102 && yt_f32(y)[4 + 2] == 101, "cat of a transposed view");
    yt_tensor_release(y);
    yt_tensor_release(bt);

    /* shape mismatch */
    int64_t sc[] = {2, 1, 3, 2};
    yt_tensor *c = yt_tensor_zeros(YT_F32, 4, sc);
    yt_tensor *ts3[2] = {a, c};
    y = yt_cat(2, ts3, 1);
    CHECK(!y && strstr(yt_last_error(), "[2, 1, 3, 2]") && strstr(yt_last_error(), "[2, 1, 2, 2]"),
          "cat mismatch names shapes: %s", yt_last_error());
    yt_tensor_release(c);

    /* I64 concat along dim 0 */
    int64_t v1[] = {1, 2}, v2[] = {3};
    int64_t s1[] = {2}, s2[] = {1};
    yt_tensor *i1 = yt_tensor_from_data(YT_I64, 1, s1, v1), *i2 = yt_tensor_from_data(YT_I64, 1, s2, v2);
    yt_tensor *ti[2] = {i1, i2};
    y = yt_cat(2, ti, 0);
    CHECK(y && y->dtype == YT_I64 && yt_i64(y)[0] == 1 && yt_i64(y)[2] == 3, "I64 cat");
    yt_tensor_release(y);
    yt_tensor_release(i1);
    yt_tensor_release(i2);
    yt_tensor_release(a);
    yt_tensor_release(b);
}

static void test_split_values(void)
{
    int64_t s[] = {2, 5};
    yt_tensor *x = yt_tensor_empty(YT_F32, 2, s);
    for (int i = 0; i < 10; i++) yt_f32(x)[i] = (float)i;
    yt_tensor *out[8];
    int n = yt_chunk(x, 2, 1, out, 8);
    CHECK(n == 2 && out[0]->shape[1] == 3 && out[1]->shape[1] == 2, "chunk 5 in 2 gives 3 + 2");
    CHECK(out[0]->storage == x->storage, "chunks are views");
    yt_tensor *c = yt_contiguous(out[1]);
    CHECK(yt_f32(c)[0] == 3 && yt_f32(c)[2] == 8, "chunk values");
    yt_tensor_release(c);
    for (int i = 0; i < n; i++) yt_tensor_release(out[i]);
    n = yt_split_size(x, 2, -1, out, 8);
    CHECK(n == 3 && out[2]->shape[1] == 1, "split by size 2: 2+2+1");
    for (int i = 0; i < n; i++) yt_tensor_release(out[i]);
    int64_t bad[] = {2, 2};
    CHECK(yt_split(x, 2, bad, 1, out) < 0 && strstr(yt_last_error(), "add up"), "split sizes must add up: %s",
          yt_last_error());
    n = yt_chunk(x, 4, 1, out, 8); /* torch: ceil(5/4)=2 -> 2,2,1 */
    CHECK(n == 3, "chunk may return fewer pieces: %d", n);
    for (int i = 0; i < n; i++) yt_tensor_release(out[i]);

    /* index_select values, negative and out-of-range */
    int64_t iv[] = {4, 0, 4};
    int64_t is[] = {3};
    yt_tensor *idx = yt_tensor_from_data(YT_I64, 1, is, iv);
    yt_tensor *y = yt_index_select(x, 1, idx);
    CHECK(y && y->shape[0] == 2 && y->shape[1] == 3, "index_select shape");
    CHECK(yt_f32(y)[0] == 4 && yt_f32(y)[1] == 0 && yt_f32(y)[3] == 9 && yt_f32(y)[5] == 9, "index_select values");
    yt_tensor_release(y);
    yt_i64(idx)[1] = 5;
    y = yt_index_select(x, 1, idx);
    CHECK(!y && strstr(yt_last_error(), "out of range"), "index out of range: %s", yt_last_error());
    yt_tensor_release(idx);

    /* squeeze / unsqueeze / flatten / transpose shapes */
    yt_tensor *u = yt_unsqueeze(x, 0);
    CHECK(u->ndim == 3 && u->shape[0] == 1 && u->storage == x->storage, "unsqueeze(0) view");
    yt_tensor *u2 = yt_unsqueeze(u, -1);
    CHECK(u2->ndim == 4 && u2->shape[3] == 1, "unsqueeze(-1) appends");
    yt_tensor *q = yt_squeeze_all(u2);
    CHECK(q->ndim == 2 && q->shape[0] == 2 && q->shape[1] == 5, "squeeze all");
    yt_tensor *q2 = yt_squeeze(u2, 1); /* size 2: unchanged */
    CHECK(q2->ndim == 4, "squeeze of a non-1 dim is a no-op");
    yt_tensor *t = yt_transpose(x, 0, 1);
    CHECK(t->shape[0] == 5 && t->shape[1] == 2 && t->storage == x->storage, "transpose is a view");
    /* squeeze of a non-contiguous tensor (no grad) stays a view */
    yt_tensor *tu = yt_unsqueeze(t, 1);
    CHECK(tu->ndim == 3 && tu->storage == x->storage, "unsqueeze of a transposed view is a view");
    yt_tensor *tc = yt_contiguous(tu);
    CHECK(yt_f32(tc)[1] == 5 && yt_f32(tc)[2] == 1, "values through the strided unsqueeze");
    yt_tensor *f = yt_flatten(x, 0, -1);
    CHECK(f->ndim == 1 && f->shape[0] == 10, "flatten");
    yt_tensor *f2 = yt_flatten(t, 0, 1);
    CHECK(f2->ndim == 1 && yt_f32(f2)[1] == 5, "flatten of a transposed view copies in order");
    yt_tensor_release(f2);
    yt_tensor_release(f);
    yt_tensor_release(tc);
    yt_tensor_release(tu);
    yt_tensor_release(t);
    yt_tensor_release(q2);
    yt_tensor_release(q);
    yt_tensor_release(u2);
    yt_tensor_release(u);
    yt_tensor_release(x);
}

/* A channels-last view of x (NHWC memory, NCHW shape). */
static yt_tensor *channels_last_view(yt_tensor *x)
{
    int to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
    yt_tensor *p = yt_permute(x, to_nhwc), *c = yt_contiguous(p), *v = yt_permute(c, to_nchw);
    yt_tensor_release(p);
    yt_tensor_release(c);
    return v;
}

/* The layout the fused inference path keeps: the predicates, the copy, and cat along the channels of
 * channels-last inputs (dense ones and channel slices), against the NCHW results. */
static void test_channels_last(void)
{
    int64_t s[] = {2, 6, 3, 4};
    yt_tensor *x = tu_rand(4, s, -1, 1), *v = channels_last_view(x);
    CHECK(!yt_is_channels_last(x) && yt_is_channels_last(v) && yt_is_channels_last_dense(v), "predicates");
    yt_tensor *sl = yt_narrow(v, 1, 2, 3);
    CHECK(yt_is_channels_last(sl) && !yt_is_channels_last_dense(sl), "a channel slice is channels-last, not dense");
    /* copy and channels_last: the same values in NHWC order */
    yt_tensor *d = yt_channels_last(x), *back = d ? yt_contiguous(d) : NULL;
    CHECK(d && yt_is_channels_last_dense(d) && tu_max_abs_diff(back, x) == 0, "channels_last(x)");
    yt_tensor *same = yt_channels_last(v);
    CHECK(same == v, "channels_last of a dense channels-last tensor is the tensor itself");
    yt_tensor_release(same);
    yt_tensor *dsl = yt_channels_last(sl), *dslc = dsl ? yt_contiguous(dsl) : NULL;
    yt_tensor *xsl = yt_narrow(x, 1, 2, 3), *xslc = yt_contiguous(xsl);
    CHECK(dslc && tu_max_abs_diff(dslc, xslc) == 0, "channels_last of a slice");
    /* cat of channels-last inputs, no gradient: a channels-last result with the NCHW cat's values */
    int64_t s2[] = {2, 5, 3, 4};
    yt_tensor *x2 = tu_rand(4, s2, -1, 1), *v2 = channels_last_view(x2);
    yt_tensor *parts_cl[3] = {v, sl, v2}, *parts[3] = {x, xslc, x2};
    yt_tensor *got = yt_cat(3, parts_cl, 1), *want = yt_cat(3, parts, 1);
    yt_tensor *gotc = got ? yt_contiguous(got) : NULL;
    CHECK(got && yt_is_channels_last_dense(got) && got->shape[1] == 14, "cat keeps channels-last");
    CHECK(gotc && tu_max_abs_diff(gotc, want) == 0, "channels-last cat values");
    /* mixed layouts, or another dim: the usual contiguous result */
    yt_tensor *mixed_in[2] = {v, x2}, *mixed = yt_cat(2, mixed_in, 1);
    yt_tensor *ref_in[2] = {x, x2}, *ref = yt_cat(2, ref_in, 1);
    CHECK(mixed && yt_is_contiguous(mixed) && tu_max_abs_diff(mixed, ref) == 0, "mixed layouts");
    yt_tensor *h_in[2] = {v, v}, *hcat = yt_cat(2, h_in, 2), *hr_in[2] = {x, x}, *hr = yt_cat(2, hr_in, 2);
    CHECK(hcat && yt_is_contiguous(hcat) && tu_max_abs_diff(hcat, hr) == 0, "cat along H");
    /* with gradients: the recorded (contiguous) path, and its gradient reaches the channels-last input */
    v->requires_grad = 1;
    yt_tensor *gcat = yt_cat(3, parts_cl, 1);
    CHECK(gcat && yt_is_contiguous(gcat) && tu_max_abs_diff(gcat, want) == 0, "cat with gradients");
    yt_tensor *gy = tu_rand(4, gcat->shape, -1, 1);
    CHECK(yt_backward(1, &gcat, &gy) == 0 && v->grad, "backward: %s", yt_last_error());
    yt_tensor *all[] = {x,  v,   sl,   d,    back,  dsl, dslc, xsl, xslc, x2,
                        v2, got, want, gotc, mixed, ref, hcat, hr,  gcat, gy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) yt_tensor_release(all[i]);
    yt_tape_clear();
}

int main(void)
{
    tu_seed(11);
    test_cat_values();
    test_split_values();
    test_channels_last();

    /* cat gradients: channel dim, last dim, first dim; some inputs without gradient */
    int64_t s1[] = {2, 1, 3, 2}, s2[] = {2, 3, 3, 2}, s3[] = {2, 2, 3, 2};
    yt_tensor *in[3] = {tu_rand(4, s1, -1, 1), tu_rand(4, s2, -1, 1), tu_rand(4, s3, -1, 1)};
    for (int i = 0; i < 3; i++) in[i]->requires_grad = 1;
    cat_args ca = {3, 1};
    tu_gradcheck("cat dim 1", f_cat, 3, in, &ca, 1e-2f, 1e-3f, 1e-2f);
    in[1]->requires_grad = 0;
    tu_gradcheck("cat dim 1, middle constant", f_cat, 3, in, &ca, 1e-2f, 1e-3f, 1e-2f);
    for (int i = 0; i < 3; i++) yt_tensor_release(in[i]);

    int64_t l1[] = {3, 2}, l2[] = {3, 4};
    yt_tensor *in2[2] = {tu_rand(2, l1, -1, 1), tu_rand(2, l2, -1, 1)};
    in2[0]->requires_grad = in2[1]->requires_grad = 1;
    cat_args cl = {2, -1};
    tu_gradcheck("cat dim -1", f_cat, 2, in2, &cl, 1e-2f, 1e-3f, 1e-2f);
    for (int i = 0; i < 2; i++) yt_tensor_release(in2[i]);

    /* more inputs than a node can hold */
    yt_tensor *many[11];
    int64_t sm[] = {2, 1, 2};
    for (int i = 0; i < 11; i++) {
        many[i] = tu_rand(3, sm, -1, 1);
        many[i]->requires_grad = 1;
    }
    cat_args cm = {11, 1};
    tu_gradcheck("cat of 11", f_cat, 11, many, &cm, 1e-2f, 1e-3f, 1e-2f);
    for (int i = 0; i < 11; i++) yt_tensor_release(many[i]);

    /* chunk + cat (C2f), split with sizes */
    int64_t sc[] = {2, 4, 3, 3};
    yt_tensor *x = tu_rand(4, sc, -1, 1);
    x->requires_grad = 1;
    tu_gradcheck("chunk + cat (C2f)", f_c2f, 1, &x, NULL, 1e-2f, 1e-3f, 1e-2f);
    yt_tensor_release(x);
    int64_t ss[] = {3, 5};
    x = tu_rand(2, ss, -1, 1);
    x->requires_grad = 1;
    tu_gradcheck("split sizes", f_split_sizes, 1, &x, NULL, 1e-2f, 1e-3f, 1e-2f);
    yt_tensor_release(x);

    /* index_select with a repeated index (scatter-add) */
    int64_t sx[] = {2, 4, 3};
    x = tu_rand(3, sx, -1, 1);
    x->requires_grad = 1;
    int64_t iv[] = {3, 1, 3, 0, 3};
    int64_t is[] = {5};
    yt_tensor *idx = yt_tensor_from_data(YT_I64, 1, is, iv);
    tu_gradcheck("index_select", f_index_select, 1, &x, idx, 1e-2f, 1e-3f, 1e-2f);
    yt_tensor_release(idx);
    tu_gradcheck("transpose", f_transpose, 1, &x, NULL, 1e-2f, 1e-3f, 1e-2f);
    yt_tensor_release(x);

    int64_t sq[] = {2, 1, 4};
    x = tu_rand(3, sq, -1, 1);
    x->requires_grad = 1;
    tu_gradcheck("unsqueeze/squeeze/flatten", f_squeeze_chain, 1, &x, NULL, 1e-2f, 1e-3f, 1e-2f);
    yt_tensor_release(x);

    /* a large channel concat (parallel path) against a reference */
    int64_t b1[] = {4, 32, 40, 40}, b2[] = {4, 16, 40, 40};
    yt_tensor *A = tu_rand(4, b1, -1, 1), *B = tu_rand(4, b2, -1, 1);
    yt_tensor *AB[2] = {A, B};
    yt_tensor *Y = yt_cat(2, AB, 1);
    int ok = 1;
    for (int n = 0; n < 4 && ok; n++)
        for (int c = 0; c < 48 && ok; c++)
            for (int k = 0; k < 1600; k++) {
                float want = c < 32 ? yt_f32(A)[(n * 32 + c) * 1600 + k] : yt_f32(B)[(n * 16 + c - 32) * 1600 + k];
                if (yt_f32(Y)[(n * 48 + c) * 1600 + k] != want) {
                    ok = 0;
                    break;
                }
            }
    CHECK(ok, "large cat matches");
    yt_tensor_release(Y);
    yt_tensor_release(A);
    yt_tensor_release(B);
    return tu_finish();
}
