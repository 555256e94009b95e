#include "ops/conv2d_dnnl.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"

/* ---- the engine, and the cache of primitives (process-wide, under a mutex) ---- */

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS };

/* One tensor argument of a primitive: the NCHW/OIHW layout at the interface, the one oneDNN chose, and the
 * reorder between them (NULL when they are the same). Outputs that accumulate (+=) always have a reorder: it
 * carries the sum post-op that adds the result to the caller's buffer. */
typedef struct {
    dnnl_memory_desc_t user, prim;
    dnnl_primitive_t reorder;
    size_t prim_bytes;
} port;

/* ports: forward (src, weights, dst), backward data (diff_dst, weights, diff_src), backward weights (src,
 * diff_dst, diff_weights) */
typedef struct entry {
    yt_conv2d_shape s; /* N..OW and precision; strategy/backend zeroed */
    int pass, bias, threads;
    int accumulate; /* the output adds to the caller's buffer (backward passes) or overwrites it */
    dnnl_primitive_t prim;
    port ports[3];
    dnnl_memory_desc_t scratch_md;
    size_t scratch_bytes;
    uint64_t last_used;
    int in_use;
    struct entry *next;
} entry;

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static entry *cache;
static int cache_count;
static uint64_t cache_clock;

static int dnnl_fail(dnnl_status_t st, const char *what, const yt_conv2d_shape *s)
{
    return yt_error("conv2d (oneDNN): %s failed (status %d) for N %d C %d %dx%d -> O %d k%dx%d s%d,%d p%d,%d", what,
                    (int)st, s->N, s->C, s->H, s->W, s->O, s->KH, s->KW, s->sh, s->sw, s->ph, s->pw);
}

#define TRY(call, what)                                                                                                \
    do {                                                                                                               \
        dnnl_status_t st_ = (call);                                                                                    \
        if (st_ != dnnl_success) {                                                                                     \
            dnnl_fail(st_, what, s);                                                                                   \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

static void port_destroy(port *p)
{
    if (p->reorder) dnnl_primitive_destroy(p->reorder);
    p->reorder = NULL;
}

static void entry_destroy(entry *e)
{
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < 3; i++) port_destroy(&e->ports[i]);
    free(e);
}

static int is_bf16(const yt_conv2d_shape *s) { return s->precision == YT_CONV_BF16; }

static int same_shape(const yt_conv2d_shape *a, const yt_conv2d_shape *b)
{
    return is_bf16(a) == is_bf16(b) && a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->O == b->O &&
           a->KH == b->KH && a->KW == b->KW && a->sh == b->sh && a->sw == b->sw && a->ph == b->ph && a->pw == b->pw;
}

static int pad_right(int in, int out, int k, int stride, int pad) { return (out - 1) * stride + k - in - pad; }

int yt_conv2d_dnnl_supports(const yt_conv2d_shape *s)
{
    return s->N > 0 && !omp_in_parallel() && pad_right(s->H, s->OH, s->KH, s->sh, s->ph) >= 0 &&
           pad_right(s->W, s->OW, s->KW, s->sw, s->pw) >= 0;
}

const char *yt_conv2d_dnnl_isa(void)
{
    const char *name = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
    if (!name) return "unknown";
    return strncmp(name, "cpu_isa_", 8) == 0 ? name + 8 : name;
}

/* oneDNN's ISA values are bit sets, each containing the ones below it (avx512_core_bf16 = avx512_core | ...);
 * avx512_mic (Xeon Phi) lacks avx512_core's bits, and avx2_vnni, numerically larger than avx512_core_bf16, has none
 * of them: "at least" is a mask test, not a comparison */
static int isa_includes(dnnl_cpu_isa_t level)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), want = (unsigned)level;
    return (isa & want) == want;
}

int yt_conv2d_dnnl_isa_avx512(void) { return isa_includes(dnnl_cpu_isa_avx512_core); }

int yt_conv2d_dnnl_isa_bf16(void) { return isa_includes(dnnl_cpu_isa_avx512_core_bf16); }

/* A reorder between a port's two layouts; `to_user`: from oneDNN's layout to the caller's, adding to what is
 * there when `accumulate`. */
static int port_init(port *p, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *prim, int to_user,
                     int accumulate, const yt_conv2d_shape *s)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    p->user = *user;
    p->prim = *prim;
    p->prim_bytes = dnnl_memory_desc_get_size(prim);
    p->reorder = NULL;
    if (!accumulate && dnnl_memory_desc_equal(user, prim)) return 0;
    TRY(dnnl_primitive_attr_create(&attr), "reorder attributes");
    if (accumulate) {
        TRY(dnnl_post_ops_create(&ops), "post-ops");
        TRY(dnnl_post_ops_append_sum(ops, 1.0f), "sum post-op");
        TRY(dnnl_primitive_attr_set_post_ops(attr, ops), "reorder post-ops");
    }
    if (to_user)
        TRY(dnnl_reorder_primitive_desc_create(&rpd, prim, engine, user, engine, attr), "reorder");
    else
        TRY(dnnl_reorder_primitive_desc_create(&rpd, user, engine, prim, engine, attr), "reorder");
    TRY(dnnl_primitive_create(&p->reorder, rpd), "reorder primitive");
    dnnl_primitive_desc_destroy(rpd);
    if (ops) dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    return 0;
fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return -1;
}

static const dnnl_memory_desc_t *query(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* Creates the primitive of one pass for one shape (with the forward descriptor as the backward passes' hint). */
static entry *entry_create(const yt_conv2d_shape *s, int pass, int bias, int accumulate, int threads)
{
    entry *e = calloc(1, sizeof *e);
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    if (!e) {
        yt_error("conv2d (oneDNN): out of memory");
        return NULL;
    }
    e->s = *s;
    e->s.strategy = e->s.backend = 0;
    e->pass = pass;
    e->bias = bias;
    e->accumulate = accumulate;
    e->threads = threads;

    dnnl_dims_t xd = {s->N, s->C, s->H, s->W}, wd = {s->O, s->C, s->KH, s->KW}, yd = {s->N, s->O, s->OH, s->OW};
    dnnl_dims_t bd = {s->O};
    dnnl_dims_t strides = {s->sh, s->sw}, padl = {s->ph, s->pw};
    dnnl_dims_t padr = {pad_right(s->H, s->OH, s->KH, s->sh, s->ph), pad_right(s->W, s->OW, s->KW, s->sw, s->pw)};
    /* bf16: the multiplied operands (src, weights, diff_dst) in bfloat16, what the pass produces (dst, diff_src,
     * diff_weights) in float32, oneDNN accumulating in float32; the caller's tensors stay float32 and the input
     * reorders round them to bfloat16 on the way into oneDNN's layout */
    const dnnl_data_type_t lo = is_bf16(s) ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t x_user, w_user, y_user, x_any, w_any, y_any, b_md, x_fwd, w_fwd, y_fwd;
    TRY(dnnl_memory_desc_init_by_tag(&x_user, 4, xd, dnnl_f32, dnnl_nchw), "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&w_user, 4, wd, dnnl_f32, dnnl_oihw), "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&y_user, 4, yd, dnnl_f32, dnnl_nchw), "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&x_any, 4, xd, pass == PASS_BWD_DATA ? dnnl_f32 : lo, dnnl_format_tag_any),
        "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, pass == PASS_BWD_WEIGHTS ? dnnl_f32 : lo, dnnl_format_tag_any),
        "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&y_any, 4, yd, pass == PASS_FWD ? dnnl_f32 : lo, dnnl_format_tag_any),
        "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&x_fwd, 4, xd, lo, dnnl_format_tag_any), "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&w_fwd, 4, wd, lo, dnnl_format_tag_any), "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&y_fwd, 4, yd, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a), "memory descriptor");

    TRY(dnnl_primitive_attr_create(&attr), "attributes");
    TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    /* the bias of the forward pass only matters for the primitive that runs it; the hint is created the same way */
    dnnl_convolution_desc_t fd;
    TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &x_fwd, &w_fwd,
                                           (pass == PASS_FWD && bias) ? &b_md : NULL, &y_fwd, strides, padl, padr),
        "forward descriptor");
    TRY(dnnl_primitive_desc_create(&fpd, &fd, attr, engine, NULL), "forward primitive descriptor");
    if (pass == PASS_FWD) {
        pd = fpd;
        fpd = NULL;
        if (port_init(&e->ports[0], &x_user, query(pd, dnnl_query_src_md), 0, 0, s) < 0 ||
            port_init(&e->ports[1], &w_user, query(pd, dnnl_query_weights_md), 0, 0, s) < 0 ||
            port_init(&e->ports[2], &y_user, query(pd, dnnl_query_dst_md), 1, 0, s) < 0)
            goto fail;
    } else if (pass == PASS_BWD_DATA) {
        dnnl_convolution_desc_t d;
        TRY(dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &x_any, &w_any, &y_any, strides, padl,
                                                     padr),
            "backward data descriptor");
        TRY(dnnl_primitive_desc_create(&pd, &d, attr, engine, fpd), "backward data primitive descriptor");
        if (port_init(&e->ports[0], &y_user, query(pd, dnnl_query_diff_dst_md), 0, 0, s) < 0 ||
            port_init(&e->ports[1], &w_user, query(pd, dnnl_query_weights_md), 0, 0, s) < 0 ||
            port_init(&e->ports[2], &x_user, query(pd, dnnl_query_diff_src_md), 1, accumulate, s) < 0)
            goto fail;
    } else {
        dnnl_convolution_desc_t d;
        TRY(dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &x_any, &w_any, NULL, &y_any,
                                                        strides, padl, padr),
            "backward weights descriptor");
        TRY(dnnl_primitive_desc_create(&pd, &d, attr, engine, fpd), "backward weights primitive descriptor");
        if (port_init(&e->ports[0], &x_user, query(pd, dnnl_query_src_md), 0, 0, s) < 0 ||
            port_init(&e->ports[1], &y_user, query(pd, dnnl_query_diff_dst_md), 0, 0, s) < 0 ||
            port_init(&e->ports[2], &w_user, query(pd, dnnl_query_diff_weights_md), 1, accumulate, s) < 0)
            goto fail;
    }
    e->scratch_md = *query(pd, dnnl_query_scratchpad_md);
    e->scratch_bytes = dnnl_memory_desc_get_size(&e->scratch_md);
    TRY(dnnl_primitive_create(&e->prim, pd), "primitive");
    dnnl_primitive_desc_destroy(pd);
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_attr_destroy(attr);
    return e;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_destroy(e);
    return NULL;
}

/* Drops the least recently used entry that no call is using; the caller holds the mutex. */
static void evict_one(void)
{
    entry **victim = NULL;
    for (entry **pp = &cache; *pp; pp = &(*pp)->next)
        if (!(*pp)->in_use && (!victim || (*pp)->last_used < (*victim)->last_used)) victim = pp;
    if (!victim) return;
    entry *e = *victim;
    *victim = e->next;
    entry_destroy(e);
    cache_count--;
}

/* The cached primitive for (shape, pass, bias, accumulate, threads), created on first use; marked in use until
 * put_entry. */
static entry *get_entry(const yt_conv2d_shape *s, int pass, int bias, int accumulate)
{
    int threads = omp_get_max_threads();
    pthread_mutex_lock(&cache_mutex);
    for (entry *e = cache; e; e = e->next) {
        if (e->pass == pass && e->bias == bias && e->accumulate == accumulate && e->threads == threads &&
            same_shape(&e->s, s)) {
            e->in_use++;
            e->last_used = ++cache_clock;
            pthread_mutex_unlock(&cache_mutex);
            return e;
        }
    }
    /* created under the mutex: creation takes milliseconds, and only once per shape */
    entry *e = entry_create(s, pass, bias, accumulate, threads);
    if (e) {
        while (cache_count >= YT_CONV2D_DNNL_CACHE_MAX) {
            int before = cache_count;
            evict_one();
            if (cache_count == before) break;
        }
        e->in_use = 1;
        e->last_used = ++cache_clock;
        e->next = cache;
        cache = e;
        cache_count++;
    }
    pthread_mutex_unlock(&cache_mutex);
    return e;
}

static void put_entry(entry *e)
{
    pthread_mutex_lock(&cache_mutex);
    e->in_use--;
    pthread_mutex_unlock(&cache_mutex);
}

int yt_conv2d_dnnl_cache_size(void)
{
    pthread_mutex_lock(&cache_mutex);
    int n = cache_count;
    pthread_mutex_unlock(&cache_mutex);
    return n;
}

void yt_conv2d_dnnl_clear_cache(void)
{
    pthread_mutex_lock(&cache_mutex);
    for (entry **pp = &cache; *pp;) {
        entry *e = *pp;
        if (e->in_use) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        entry_destroy(e);
        cache_count--;
    }
    pthread_mutex_unlock(&cache_mutex);
}

/* ---- one call: scratch memory, memory objects, execution ---- */

#define MAX_SCRATCH 8
#define MAX_MEMS 16

typedef struct {
    const yt_conv2d_shape *s;
    dnnl_stream_t stream;
    yt_tensor *scratch[MAX_SCRATCH];
    int n_scratch;
    dnnl_memory_t mems[MAX_MEMS];
    int n_mems;
    /* inputs already reordered in this call (the backward passes share diff_dst): data, layout, memory */
    struct {
        const float *data;
        dnnl_memory_desc_t md;
        dnnl_memory_t mem;
    } done[MAX_SCRATCH];
    int n_done;
} call;

/* Scratch memory from the tensor block cache, returned at call_end (not kept by the enclosing scope). */
static void *scratch(call *c, size_t bytes)
{
    if (c->n_scratch == MAX_SCRATCH) {
        yt_error("conv2d (oneDNN): too many scratch buffers");
        return NULL;
    }
    int64_t n = (int64_t)((bytes + sizeof(float) - 1) / sizeof(float));
    if (n == 0) n = 1;
    yt_tensor *t = yt_tensor_empty(YT_F32, 1, &n);
    if (!t) return NULL;
    c->scratch[c->n_scratch++] = t;
    return yt_data(t);
}

static dnnl_memory_t memory(call *c, const dnnl_memory_desc_t *md, const void *data)
{
    const yt_conv2d_shape *s = c->s;
    if (c->n_mems == MAX_MEMS) {
        yt_error("conv2d (oneDNN): too many memory objects");
        return NULL;
    }
    dnnl_memory_t m = NULL;
    TRY(dnnl_memory_create(&m, md, engine, (void *)data), "memory object");
    c->mems[c->n_mems++] = m;
    return m;
fail:
    return NULL;
}

/* The CPU engine, created on first use. */
static int ensure_engine(const yt_conv2d_shape *s)
{
    pthread_mutex_lock(&cache_mutex);
    dnnl_status_t st = engine ? dnnl_success : dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (st != dnnl_success) engine = NULL;
    pthread_mutex_unlock(&cache_mutex);
    return st == dnnl_success ? 0 : dnnl_fail(st, "engine creation", s);
}

static int call_begin(call *c, const yt_conv2d_shape *s)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    if (ensure_engine(s) < 0) return -1;
    TRY(dnnl_stream_create(&c->stream, engine, dnnl_stream_default_flags), "stream creation");
    return 0;
fail:
    return -1;
}

static void call_end(call *c)
{
    for (int i = 0; i < c->n_mems; i++) dnnl_memory_destroy(c->mems[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    for (int i = 0; i < c->n_scratch; i++) {
        yt_tensor_free_storage(c->scratch[i]);
        yt_tensor_release(c->scratch[i]);
    }
}

static int run(call *c, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args, const char *what)
{
    const yt_conv2d_shape *s = c->s;
    TRY(dnnl_primitive_execute(p, c->stream, nargs, args), what);
    return 0;
fail:
    return -1;
}

/* An input port: the caller's data itself, or its reorder into oneDNN's layout (done once per call). */
static dnnl_memory_t input(call *c, const port *p, const float *data)
{
    for (int i = 0; i < c->n_done; i++)
        if (c->done[i].data == data && dnnl_memory_desc_equal(&c->done[i].md, &p->prim)) return c->done[i].mem;
    dnnl_memory_t user = memory(c, &p->user, data);
    if (!user || !p->reorder) return user;
    void *buf = scratch(c, p->prim_bytes);
    dnnl_memory_t prim = buf ? memory(c, &p->prim, buf) : NULL;
    if (!prim) return NULL;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, prim}};
    if (run(c, p->reorder, 2, args, "input reorder") < 0) return NULL;
    if (c->n_done < MAX_SCRATCH) {
        c->done[c->n_done].data = data;
        c->done[c->n_done].md = p->prim;
        c->done[c->n_done++].mem = prim;
    }
    return prim;
}

/* An output port: where the primitive writes (the caller's buffer, or scratch to be reordered by output_done). */
static dnnl_memory_t output(call *c, const port *p, float *data, dnnl_memory_t *user)
{
    *user = memory(c, &p->user, data);
    if (!*user || !p->reorder) return *user;
    void *buf = scratch(c, p->prim_bytes);
    return buf ? memory(c, &p->prim, buf) : NULL;
}

static int output_done(call *c, const port *p, dnnl_memory_t prim, dnnl_memory_t user)
{
    if (!p->reorder) return 0;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, prim}, {DNNL_ARG_TO, user}};
    return run(c, p->reorder, 2, args, "output reorder");
}

static dnnl_memory_t scratchpad(call *c, const entry *e)
{
    void *buf = scratch(c, e->scratch_bytes);
    return buf ? memory(c, &e->scratch_md, buf) : NULL;
}

/* Runs one pass within call c: inputs in0 and in1 (and bias), the primitive, the output reordered (or summed when
 * accumulate) back. */
static int run_pass(call *c, int pass, const float *in0, const float *in1, const float *bias, float *out,
                    int accumulate)
{
    const yt_conv2d_shape *s = c->s;
    entry *e = get_entry(s, pass, bias != NULL, accumulate);
    if (!e) return -1;
    static const int args_of[3][3] = {
        {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
        {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
        {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS},
    };
    int rc = -1;
    dnnl_exec_arg_t args[5];
    int n = 0;
    dnnl_memory_t m0 = input(c, &e->ports[0], in0);
    dnnl_memory_t m1 = m0 ? input(c, &e->ports[1], in1) : NULL;
    dnnl_memory_t user_out = NULL, mo = m1 ? output(c, &e->ports[2], out, &user_out) : NULL;
    if (!mo) goto done;
    args[n++] = (dnnl_exec_arg_t){args_of[pass][0], m0};
    args[n++] = (dnnl_exec_arg_t){args_of[pass][1], m1};
    args[n++] = (dnnl_exec_arg_t){args_of[pass][2], mo};
    if (bias) {
        dnnl_memory_desc_t bmd;
        dnnl_dims_t bd = {s->O};
        if (dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_a) != dnnl_success) goto done;
        dnnl_memory_t mb = memory(c, &bmd, bias);
        if (!mb) goto done;
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
    }
    if (e->scratch_bytes) {
        dnnl_memory_t ms = scratchpad(c, e);
        if (!ms) goto done;
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, ms};
    }
    if (run(c, e->prim, n, args, "convolution") < 0) goto done;
    if (output_done(c, &e->ports[2], mo, user_out) < 0) goto done;
    if (dnnl_stream_wait(c->stream) != dnnl_success) {
        yt_error("conv2d (oneDNN): stream wait failed");
        goto done;
    }
    rc = 0;
done:
    put_entry(e);
    return rc;
}

/* Images per oneDNN call: the batch is cut into equal chunks whose largest activation (input or output) stays
 * under CHUNK_BYTES, so the reordered copies a call holds stay small (and in cache) whatever the batch and image
 * size. At least one image per thread. The chunking is fixed by the shape: results stay reproducible. */
#define CHUNK_BYTES ((size_t)4 << 20) /* 4 and 16 MB measured alike (bench_conv); 4 MB holds less */
static int chunk_images(const yt_conv2d_shape *s)
{
    size_t per = (size_t)s->C * s->H * s->W;
    size_t py = (size_t)s->O * s->OH * s->OW;
    if (py > per) per = py;
    per *= sizeof(float);
    size_t cap = CHUNK_BYTES / (per ? per : 1);
    size_t nt = (size_t)omp_get_max_threads();
    if (cap < nt) cap = nt;
    if (cap < 1) cap = 1;
    if (cap >= (size_t)s->N) return s->N;
    size_t chunks = ((size_t)s->N + cap - 1) / cap;
    return (int)(((size_t)s->N + chunks - 1) / chunks);
}

int yt_conv2d_dnnl_forward(const float *x, float *y, const float *w, const float *b, const yt_conv2d_shape *s)
{
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * s->OH * s->OW;
    const int step = chunk_images(s);
    for (int n0 = 0; n0 < s->N; n0 += step) {
        yt_conv2d_shape sc = *s;
        sc.N = s->N - n0 < step ? s->N - n0 : step;
        call c;
        int rc = call_begin(&c, &sc) < 0 ? -1 : run_pass(&c, PASS_FWD, x + n0 * xs, w, b, y + n0 * ys, 0);
        call_end(&c);
        if (rc < 0) return -1;
    }
    return 0;
}

/* gb[o] += sum over images and positions of gy, in double, as the GEMM path does. */
static void bias_grad(const float *gy, float *gb, const yt_conv2d_shape *s)
{
    const size_t P = (size_t)s->OH * s->OW;
#pragma omp parallel for schedule(static) if (s->O > 1 && (size_t)s->N * s->O * P > 65536)
    for (int o = 0; o < s->O; o++) {
        double acc = 0.0;
        for (int n = 0; n < s->N; n++) {
            const float *r = gy + ((size_t)n * s->O + o) * P;
            double part = 0.0;
            for (size_t p = 0; p < P; p++) part += r[p];
            acc += part;
        }
        gb[o] += (float)acc;
    }
}

int yt_conv2d_dnnl_backward(const float *x, const float *gy, float *gx, int gx_acc, const float *w, float *gw,
                            int gw_acc, float *gb, const yt_conv2d_shape *s)
{
    if (s->N == 0 || (!gx && !gw && !gb)) return 0;
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->O * s->OH * s->OW;
    const int step = chunk_images(s);
    for (int n0 = 0; n0 < s->N && (gx || gw); n0 += step) {
        yt_conv2d_shape sc = *s;
        sc.N = s->N - n0 < step ? s->N - n0 : step;
        /* both passes of a chunk share the reordered gy; gw accumulates chunk by chunk */
        call c;
        int rc = call_begin(&c, &sc);
        /* the images' input gradients are distinct; the weight gradient of later chunks adds to the first's */
        if (rc == 0 && gx) rc = run_pass(&c, PASS_BWD_DATA, gy + n0 * ys, w, NULL, gx + n0 * xs, gx_acc);
        if (rc == 0 && gw) rc = run_pass(&c, PASS_BWD_WEIGHTS, x + n0 * xs, gy + n0 * ys, NULL, gw, gw_acc || n0 > 0);
        call_end(&c);
        if (rc < 0) return -1;
    }
    if (gb) bias_grad(gy, gb, s);
    return 0;
}
