#include "ops/conv2d_infer.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

/* ---- the engine (process-wide, made once) ---- */

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static dnnl_status_t engine_status;

static void engine_init(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

/* ---- a plan: the layer's weights, and one prepared primitive per input shape ---- */

/* Weights reordered into a primitive's layout; shared by the shapes whose primitives chose the same layout. */
typedef struct {
    dnnl_memory_desc_t md;
    void *data;
    int refs;
} weights;

typedef struct {
    int N, H, W, residual, threads; /* the key */
    int OH, OW;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst, scratch;
    void *scratch_buf;
    weights *w;
    uint64_t last_used;
    char impl[64];
} shape_entry;

struct yt_conv2d_plan {
    int O, C, KH, KW, sh, sw, ph, pw, act;
    float *w; /* (O, C, KH, KW) */
    float *b; /* (O) or NULL */
    dnnl_stream_t stream;
    shape_entry *entries[YT_CONV2D_PLAN_SHAPES];
    int n;
    uint64_t clock;
    const char *impl;
};

static int fail(dnnl_status_t st, const char *what, const yt_conv2d_plan *p, int H, int W)
{
    return yt_error("conv2d_plan (oneDNN): %s failed (status %d) for C %d %dx%d -> O %d k%dx%d s%d,%d p%d,%d", what,
                    (int)st, p->C, H, W, p->O, p->KH, p->KW, p->sh, p->sw, p->ph, p->pw);
}

#define TRY(call, what)                                                                                                \
    do {                                                                                                               \
        dnnl_status_t st_ = (call);                                                                                    \
        if (st_ != dnnl_success) {                                                                                     \
            fail(st_, what, p, H, W);                                                                                  \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

static void *aligned_bytes(size_t n)
{
    void *ptr = NULL;
    if (posix_memalign(&ptr, 64, n ? (n + 63) / 64 * 64 : 64) != 0) return NULL;
    return ptr;
}

static void weights_release(weights *w)
{
    if (w && --w->refs == 0) {
        free(w->data);
        free(w);
    }
}

static void entry_free(shape_entry *e)
{
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    dnnl_memory_t mems[5] = {e->src, e->wei, e->bias, e->dst, e->scratch};
    for (int i = 0; i < 5; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(e->scratch_buf);
    weights_release(e->w);
    free(e);
}

static int out_size(int in, int k, int s, int pad) { return (in + 2 * pad - k) / s + 1; }

/* The plan's weights in the layout md: an existing entry's when it chose the same, else reordered now. */
static weights *weights_for(yt_conv2d_plan *p, const dnnl_memory_desc_t *md, int H, int W)
{
    for (int i = 0; i < p->n; i++) {
        weights *w = p->entries[i]->w;
        if (dnnl_memory_desc_equal(&w->md, md)) {
            w->refs++;
            return w;
        }
    }
    weights *w = calloc(1, sizeof *w);
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    if (!w || !(w->data = aligned_bytes(dnnl_memory_desc_get_size(md)))) {
        yt_error("conv2d_plan: out of memory for the weights");
        goto fail;
    }
    w->md = *md;
    w->refs = 1;
    dnnl_dims_t wd = {p->O, p->C, p->KH, p->KW};
    dnnl_memory_desc_t user;
    TRY(dnnl_memory_desc_init_by_tag(&user, 4, wd, dnnl_f32, dnnl_oihw), "weights descriptor");
    TRY(dnnl_memory_create(&from, &user, engine, p->w), "weights memory");
    TRY(dnnl_memory_create(&to, md, engine, w->data), "weights memory");
    TRY(dnnl_reorder_primitive_desc_create(&rpd, &user, engine, md, engine, NULL), "weights reorder");
    TRY(dnnl_primitive_create(&reorder, rpd), "weights reorder primitive");
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    TRY(dnnl_primitive_execute(reorder, p->stream, 2, args), "weights reorder");
    TRY(dnnl_stream_wait(p->stream), "weights reorder");
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(from);
    dnnl_memory_destroy(to);
    return w;
fail:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    if (w) free(w->data);
    free(w);
    return NULL;
}

/* The primitive for one input shape: NHWC source and destination, the weights in oneDNN's chosen layout, the
 * activation (and the residual's sum) as post-ops. */
static shape_entry *entry_new(yt_conv2d_plan *p, int N, int H, int W, int residual, int threads)
{
    shape_entry *e = calloc(1, sizeof *e);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (!e) {
        yt_error("conv2d_plan: out of memory");
        return NULL;
    }
    e->N = N, e->H = H, e->W = W, e->residual = residual, e->threads = threads;
    e->OH = out_size(H, p->KH, p->sh, p->ph);
    e->OW = out_size(W, p->KW, p->sw, p->pw);
    dnnl_dims_t xd = {N, p->C, H, W}, wd = {p->O, p->C, p->KH, p->KW}, yd = {N, p->O, e->OH, e->OW}, bd = {p->O};
    dnnl_dims_t strides = {p->sh, p->sw}, padl = {p->ph, p->pw};
    dnnl_dims_t padr = {(e->OH - 1) * p->sh + p->KH - H - p->ph, (e->OW - 1) * p->sw + p->KW - W - p->pw};
    dnnl_memory_desc_t x_md, w_md, y_md, b_md;
    TRY(dnnl_memory_desc_init_by_tag(&x_md, 4, xd, dnnl_f32, dnnl_nhwc), "source descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&w_md, 4, wd, dnnl_f32, dnnl_format_tag_any), "weights descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&y_md, 4, yd, dnnl_f32, dnnl_nhwc), "destination descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a), "bias descriptor");
    dnnl_convolution_desc_t cd;
    TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &x_md, &w_md,
                                           p->b ? &b_md : NULL, &y_md, strides, padl, padr),
        "convolution descriptor");
    TRY(dnnl_primitive_attr_create(&attr), "attributes");
    TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    TRY(dnnl_post_ops_create(&ops), "post-ops");
    if (p->act == YT_INFER_ACT_SILU)
        TRY(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f), "SiLU post-op");
    if (residual) TRY(dnnl_post_ops_append_sum(ops, 1.0f), "sum post-op");
    TRY(dnnl_primitive_attr_set_post_ops(attr, ops), "post-ops");
    TRY(dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL), "primitive descriptor");
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(e->impl, sizeof e->impl, "%s", impl);
    const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *sq = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (!(e->w = weights_for(p, wq, H, W))) goto fail;
    size_t sbytes = dnnl_memory_desc_get_size(sq);
    if (sbytes && !(e->scratch_buf = aligned_bytes(sbytes))) {
        yt_error("conv2d_plan: out of memory for the scratchpad");
        goto fail;
    }
    TRY(dnnl_memory_create(&e->src, &x_md, engine, DNNL_MEMORY_NONE), "source memory");
    TRY(dnnl_memory_create(&e->dst, &y_md, engine, DNNL_MEMORY_NONE), "destination memory");
    TRY(dnnl_memory_create(&e->wei, &e->w->md, engine, e->w->data), "weights memory");
    if (p->b) TRY(dnnl_memory_create(&e->bias, &b_md, engine, p->b), "bias memory");
    if (sbytes) TRY(dnnl_memory_create(&e->scratch, sq, engine, e->scratch_buf), "scratchpad memory");
    TRY(dnnl_primitive_create(&e->prim, pd), "primitive");
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    return e;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_free(e);
    return NULL;
}

/* The entry of (N, H, W, residual, threads), made on first use; the least recently used one gives way when the
 * plan holds YT_CONV2D_PLAN_SHAPES. */
static shape_entry *entry_get(yt_conv2d_plan *p, int N, int H, int W, int residual)
{
    int threads = omp_get_max_threads();
    for (int i = 0; i < p->n; i++) {
        shape_entry *e = p->entries[i];
        if (e->N == N && e->H == H && e->W == W && e->residual == residual && e->threads == threads) {
            e->last_used = ++p->clock;
            return e;
        }
    }
    if (p->n == YT_CONV2D_PLAN_SHAPES) {
        int oldest = 0;
        for (int i = 1; i < p->n; i++)
            if (p->entries[i]->last_used < p->entries[oldest]->last_used) oldest = i;
        entry_free(p->entries[oldest]);
        p->entries[oldest] = p->entries[--p->n];
    }
    shape_entry *e = entry_new(p, N, H, W, residual, threads);
    if (!e) return NULL;
    e->last_used = ++p->clock;
    p->entries[p->n++] = e;
    return e;
}

yt_conv2d_plan *yt_conv2d_plan_new(const yt_tensor *w, const yt_tensor *b, int sh, int sw, int ph, int pw, int act)
{
    if (yt_check(w, "conv2d_plan weight", YT_F32, 4) < 0) return NULL;
    if (b && yt_check(b, "conv2d_plan bias", YT_F32, 1) < 0) return NULL;
    if (b && b->shape[0] != w->shape[0]) {
        yt_error("conv2d_plan: bias has %lld values for %lld output channels", (long long)b->shape[0],
                 (long long)w->shape[0]);
        return NULL;
    }
    for (int d = 0; d < 4; d++)
        if (w->shape[d] < 1 || w->shape[d] > INT32_MAX / 4) {
            char s[128];
            yt_error("conv2d_plan: invalid weight shape %s", yt_shape_str(w, s, sizeof s));
            return NULL;
        }
    if (sh < 1 || sw < 1 || ph < 0 || pw < 0) {
        yt_error("conv2d_plan: stride must be >= 1 and padding >= 0, got stride (%d, %d) padding (%d, %d)", sh, sw, ph,
                 pw);
        return NULL;
    }
    if (act != YT_INFER_ACT_NONE && act != YT_INFER_ACT_SILU) {
        yt_error("conv2d_plan: unknown activation %d", act);
        return NULL;
    }
    pthread_once(&engine_once, engine_init);
    if (engine_status != dnnl_success) {
        yt_error("conv2d_plan (oneDNN): engine creation failed (status %d)", (int)engine_status);
        return NULL;
    }
    yt_conv2d_plan *p = calloc(1, sizeof *p);
    if (!p) {
        yt_error("conv2d_plan: out of memory");
        return NULL;
    }
    p->O = (int)w->shape[0], p->C = (int)w->shape[1], p->KH = (int)w->shape[2], p->KW = (int)w->shape[3];
    p->sh = sh, p->sw = sw, p->ph = ph, p->pw = pw, p->act = act;
    p->impl = "";
    const size_t nw = (size_t)yt_numel(w);
    p->w = aligned_bytes(nw * sizeof(float));
    p->b = b ? aligned_bytes((size_t)p->O * sizeof(float)) : NULL;
    if (!p->w || (b && !p->b)) {
        yt_error("conv2d_plan: out of memory");
        yt_conv2d_plan_free(p);
        return NULL;
    }
    /* copies in the contiguous OIHW / O order, whatever the strides of the tensors */
    const float *wd = yt_f32(w);
    if (yt_is_contiguous(w))
        memcpy(p->w, wd, nw * sizeof(float));
    else {
        size_t idx = 0;
        for (int64_t o = 0; o < w->shape[0]; o++)
            for (int64_t c = 0; c < w->shape[1]; c++)
                for (int64_t i = 0; i < w->shape[2]; i++)
                    for (int64_t j = 0; j < w->shape[3]; j++)
                        p->w[idx++] = wd[o * w->stride[0] + c * w->stride[1] + i * w->stride[2] + j * w->stride[3]];
    }
    if (b)
        for (int64_t o = 0; o < b->shape[0]; o++) p->b[o] = yt_f32(b)[o * b->stride[0]];
    if (dnnl_stream_create(&p->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        yt_error("conv2d_plan (oneDNN): stream creation failed");
        yt_conv2d_plan_free(p);
        return NULL;
    }
    return p;
}

void yt_conv2d_plan_free(yt_conv2d_plan *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) entry_free(p->entries[i]);
    if (p->stream) dnnl_stream_destroy(p->stream);
    free(p->w);
    free(p->b);
    free(p);
}

/* A dense channels-last copy that the caller frees (free_storage + release). */
static yt_tensor *dense_copy(yt_tensor *x)
{
    yt_tensor *t = yt_tensor_empty_channels_last(x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
    if (t) yt_copy_to_channels_last(x, yt_f32(t));
    return t;
}

yt_tensor *yt_conv2d_plan_forward(yt_conv2d_plan *p, yt_tensor *x, yt_tensor *residual)
{
    char s1[128], s2[128];
    if (!p) {
        yt_error("conv2d_plan: the plan is closed");
        return NULL;
    }
    if (yt_check(x, "conv2d_plan input", YT_F32, 4) < 0) return NULL;
    if (residual && yt_check(residual, "conv2d_plan residual", YT_F32, 4) < 0) return NULL;
    yt_tensor *ins[2] = {x, residual};
    if (yt_needs_grad(residual ? 2 : 1, ins)) {
        yt_error("conv2d_plan: inference only, but an input requires a gradient (turn grad mode off)");
        return NULL;
    }
    if (x->shape[1] != p->C) {
        yt_error("conv2d_plan: input %s has %lld channels, the plan's weights take %d", yt_shape_str(x, s1, sizeof s1),
                 (long long)x->shape[1], p->C);
        return NULL;
    }
    for (int d = 0; d < 4; d++)
        if (x->shape[d] > INT32_MAX / 4) {
            yt_error("conv2d_plan: input %s too large", yt_shape_str(x, s1, sizeof s1));
            return NULL;
        }
    const int N = (int)x->shape[0], H = (int)x->shape[2], W = (int)x->shape[3];
    if (H + 2 * p->ph < p->KH || W + 2 * p->pw < p->KW) {
        yt_error("conv2d_plan: kernel %dx%d larger than the padded input %s", p->KH, p->KW,
                 yt_shape_str(x, s1, sizeof s1));
        return NULL;
    }
    const int OH = out_size(H, p->KH, p->sh, p->ph), OW = out_size(W, p->KW, p->sw, p->pw);
    if (residual && (residual->shape[0] != N || residual->shape[1] != p->O || residual->shape[2] != OH ||
                     residual->shape[3] != OW)) {
        yt_error("conv2d_plan: residual %s does not have the output's shape [%d, %d, %d, %d] (input %s)",
                 yt_shape_str(residual, s1, sizeof s1), N, p->O, OH, OW, yt_shape_str(x, s2, sizeof s2));
        return NULL;
    }
    yt_tensor *y = yt_tensor_empty_channels_last(N, p->O, OH, OW);
    if (!y || N == 0) return y;
    shape_entry *e = entry_get(p, N, H, W, residual != NULL);
    yt_tensor *xc = NULL;
    if (!e) goto fail;
    p->impl = e->impl;
    if (!yt_is_channels_last_dense(x) && !(xc = dense_copy(x))) goto fail;
    if (residual) yt_copy_to_channels_last(residual, yt_f32(y));
    TRY(dnnl_memory_set_data_handle(e->src, yt_f32(xc ? xc : x)), "source handle");
    TRY(dnnl_memory_set_data_handle(e->dst, yt_f32(y)), "destination handle");
    dnnl_exec_arg_t args[5];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, e->wei};
    if (e->bias) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, e->dst};
    if (e->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    TRY(dnnl_primitive_execute(e->prim, p->stream, n, args), "convolution");
    TRY(dnnl_stream_wait(p->stream), "convolution");
    if (xc) {
        yt_tensor_free_storage(xc);
        yt_tensor_release(xc);
    }
    return y;
fail:
    if (xc) {
        yt_tensor_free_storage(xc);
        yt_tensor_release(xc);
    }
    yt_tensor_free_storage(y);
    yt_tensor_release(y);
    return NULL;
}

int yt_conv2d_plan_shapes(const yt_conv2d_plan *p) { return p ? p->n : 0; }

const char *yt_conv2d_plan_impl(const yt_conv2d_plan *p) { return p ? p->impl : ""; }

void yt_conv2d_plan_info(const yt_conv2d_plan *p, int *O, int *C, int *KH, int *KW, int *sh, int *sw, int *ph, int *pw,
                         int *act)
{
    *O = p->O, *C = p->C, *KH = p->KH, *KW = p->KW, *sh = p->sh, *sw = p->sw, *ph = p->ph, *pw = p->pw, *act = p->act;
}
