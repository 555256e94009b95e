#include "core/tensor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static atomic_size_t bytes_in_use;
static atomic_size_t peak_bytes_in_use;

size_t yt_bytes_in_use(void) { return atomic_load(&bytes_in_use); }
size_t yt_peak_bytes_in_use(void) { return atomic_load(&peak_bytes_in_use); }
void yt_reset_peak_bytes_in_use(void) { atomic_store(&peak_bytes_in_use, atomic_load(&bytes_in_use)); }

static const size_t dtype_sizes[YT_DTYPE_COUNT] = {4, 8, 8, 1};
static const char *dtype_names[YT_DTYPE_COUNT] = {"F32", "F64", "I64", "U8"};

size_t yt_dtype_size(yt_dtype dt) { return dtype_sizes[dt]; }
const char *yt_dtype_name(yt_dtype dt) { return (unsigned)dt < YT_DTYPE_COUNT ? dtype_names[dt] : "?"; }

int yt_dtype_from_name(const char *name)
{
    static const struct {
        const char *name;
        yt_dtype dt;
    } names[] = {
        {"F32", YT_F32},     {"float32", YT_F32}, {"float", YT_F32}, {"F64", YT_F64},
        {"float64", YT_F64}, {"double", YT_F64},  {"I64", YT_I64},   {"int64", YT_I64},
        {"long", YT_I64},    {"U8", YT_U8},       {"uint8", YT_U8},  {"byte", YT_U8},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0) return (int)names[i].dt;
    return -1;
}

/* Installed by the autograd tape when it records its first node (until then no tensor has a grad_fn and the
 * tape is empty): core calls these two and knows nothing else of autograd. */
static yt_autograd_hooks autograd;

void yt_tensor_set_autograd_hooks(const yt_autograd_hooks *hooks) { autograd = *hooks; }

/* ---- scopes: a per-thread stack of lists of tensors created inside ---- */

typedef struct {
    yt_tensor **items;
    size_t len, cap;
} tensor_list;

#define YT_MAX_SCOPE_DEPTH 16
static _Thread_local tensor_list scopes[YT_MAX_SCOPE_DEPTH];
static _Thread_local int scope_depth;

int yt_scope_depth(void) { return scope_depth; }

static void scope_register(yt_tensor *t)
{
    if (scope_depth == 0) return;
    tensor_list *l = &scopes[scope_depth - 1];
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        yt_tensor **items = realloc(l->items, cap * sizeof *items);
        if (!items) return; /* cannot track: the tensor simply lives until released */
        l->items = items;
        l->cap = cap;
    }
    t->refcount++;
    t->scoped = 1;
    l->items[l->len++] = t;
}

void yt_scope_begin(void)
{
    if (scope_depth < YT_MAX_SCOPE_DEPTH) scopes[scope_depth].len = 0;
    scope_depth++;
}

void yt_scope_end(void)
{
    if (scope_depth == 0) return;
    scope_depth--;
    if (scope_depth >= YT_MAX_SCOPE_DEPTH) return;
    if (autograd.clear_tape) autograd.clear_tape();
    tensor_list *l = &scopes[scope_depth];
    for (size_t i = 0; i < l->len; i++) {
        yt_tensor *t = l->items[i];
        if (!t->kept) yt_tensor_free_storage(t);
        t->scoped = 0;
        yt_tensor_release(t);
    }
    l->len = 0;
    if (scope_depth == 0) {
        for (int d = 0; d < YT_MAX_SCOPE_DEPTH; d++) {
            if (scopes[d].cap > 4096) { /* do not keep a huge list from an unusual step forever */
                free(scopes[d].items);
                scopes[d].items = NULL;
                scopes[d].cap = 0;
            }
        }
    }
}

void yt_tensor_keep(yt_tensor *t) { t->kept = 1; }

/* ---- storage ---- */

/* A training step frees and re-allocates the same activation sizes every iteration. Served by malloc, each large
 * block is a fresh mmap: every step would pay page faults and kernel zeroing for gigabytes. Freed large blocks are
 * therefore kept in a cache and handed out again: the block of the exact size when there is one, else the smallest
 * one at most CACHE_SLACK larger (a step's sizes vary: gradients and loss tensors come and go in another order than
 * the activations, and exact matching alone makes the set of blocks outgrow the step's peak). The resident set stays
 * at the step's peak, flat over steps. The cache is bounded: it keeps at most 1.25x the high-water mark of tensor bytes
 * in use (at least CACHE_FLOOR_BYTES) and returns what is beyond to the system, so blocks of sizes no longer asked for
 * (another image size, a finished validation) do not stay resident for ever. Shared by all threads. */
#include <pthread.h>

#if defined(__SANITIZE_ADDRESS__)
#define CACHE_MIN_BYTES ((size_t)-1) /* let AddressSanitizer see every free and reuse */
#else
#define CACHE_MIN_BYTES ((size_t)64 << 10)
#endif
#define CACHE_BUCKETS 1024
#define CACHE_FLOOR_BYTES ((size_t)256 << 20)
#define CACHE_SLACK(size) ((size) / 2) /* a request may take a block up to 1.5x its size */

typedef struct cached_block {
    struct cached_block *next;
    size_t size;
} cached_block;

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static cached_block *cache_buckets[CACHE_BUCKETS];
static size_t cache_bytes, cache_blocks;
static atomic_size_t high_water_in_use; /* never reset: the cache's bound */

static size_t block_size(size_t nbytes)
{
    /* round to 4 KiB above the cache threshold so near-equal sizes share blocks */
    size_t a = (nbytes + 63) & ~(size_t)63;
    if (a == 0) a = 64;
    if (a >= CACHE_MIN_BYTES) a = (a + 4095) & ~(size_t)4095;
    return a;
}

static cached_block *cache_take(cached_block **pp)
{
    cached_block *b = *pp;
    *pp = b->next;
    cache_bytes -= b->size;
    cache_blocks--;
    return b;
}

/* A block of at least size bytes; *got is its size. */
static void *block_alloc(size_t size, size_t *got)
{
    *got = size;
    if (size >= CACHE_MIN_BYTES) {
        pthread_mutex_lock(&cache_mutex);
        for (cached_block **pp = &cache_buckets[(size >> 12) % CACHE_BUCKETS]; *pp; pp = &(*pp)->next) {
            if ((*pp)->size == size) {
                cached_block *b = cache_take(pp);
                pthread_mutex_unlock(&cache_mutex);
                return b;
            }
        }
        cached_block **best = NULL;
        const size_t limit = size + CACHE_SLACK(size);
        for (int i = 0; i < CACHE_BUCKETS && cache_blocks > 0; i++)
            for (cached_block **pp = &cache_buckets[i]; *pp; pp = &(*pp)->next)
                if ((*pp)->size > size && (*pp)->size <= limit && (!best || (*pp)->size < (*best)->size)) best = pp;
        if (best) {
            *got = (*best)->size;
            cached_block *b = cache_take(best);
            pthread_mutex_unlock(&cache_mutex);
            return b;
        }
        pthread_mutex_unlock(&cache_mutex);
    }
    return aligned_alloc(64, size);
}

static void block_free(void *p, size_t size)
{
    if (size >= CACHE_MIN_BYTES) {
        size_t hw = atomic_load(&high_water_in_use);
        pthread_mutex_lock(&cache_mutex);
        const size_t bound = hw + hw / 4; /* the blocks of a step's peak, and its best-fit slack */
        if (cache_bytes + size <= (bound > CACHE_FLOOR_BYTES ? bound : CACHE_FLOOR_BYTES)) {
            cached_block *b = p;
            b->size = size;
            b->next = cache_buckets[(size >> 12) % CACHE_BUCKETS];
            cache_buckets[(size >> 12) % CACHE_BUCKETS] = b;
            cache_bytes += size;
            cache_blocks++;
            pthread_mutex_unlock(&cache_mutex);
            return;
        }
        pthread_mutex_unlock(&cache_mutex);
    }
    free(p);
}

size_t yt_cached_bytes(void)
{
    pthread_mutex_lock(&cache_mutex);
    size_t n = cache_bytes;
    pthread_mutex_unlock(&cache_mutex);
    return n;
}

void yt_release_cached_memory(void)
{
    pthread_mutex_lock(&cache_mutex);
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        while (cache_buckets[i]) {
            cached_block *b = cache_buckets[i];
            cache_buckets[i] = b->next;
            free(b);
        }
    }
    cache_bytes = 0;
    cache_blocks = 0;
    pthread_mutex_unlock(&cache_mutex);
}

static yt_storage *storage_new(size_t nbytes, int zero)
{
    yt_storage *s = malloc(sizeof *s);
    if (!s) return NULL;
    s->data = block_alloc(block_size(nbytes), &s->block);
    if (!s->data) {
        free(s);
        yt_error("out of memory allocating %zu bytes", nbytes);
        return NULL;
    }
    if (zero) memset(s->data, 0, nbytes);
    s->nbytes = nbytes;
    s->refcount = 1;
    size_t now = atomic_fetch_add(&bytes_in_use, nbytes) + nbytes;
    size_t peak = atomic_load(&peak_bytes_in_use);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes_in_use, &peak, now)) {}
    size_t hw = atomic_load(&high_water_in_use);
    while (now > hw && !atomic_compare_exchange_weak(&high_water_in_use, &hw, now)) {}
    return s;
}

static void storage_release(yt_storage *s)
{
    if (!s || --s->refcount > 0) return;
    atomic_fetch_sub(&bytes_in_use, s->nbytes);
    block_free(s->data, s->block);
    free(s);
}

/* ---- tensors ---- */

void yt_tensor_set_contiguous_strides(yt_tensor *t)
{
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = st;
        st *= t->shape[d];
    }
}

static yt_tensor *tensor_alloc_in(yt_dtype dt, int ndim, const int64_t *shape, int zero, int in_scope)
{
    if ((unsigned)dt >= YT_DTYPE_COUNT) {
        yt_error("invalid dtype %d", (int)dt);
        return NULL;
    }
    if (ndim < 0 || ndim > YT_MAX_DIMS) {
        yt_error("tensors have 0 to %d dimensions, not %d", YT_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            yt_error("negative size %lld in dimension %d", (long long)shape[d], d + 1);
            return NULL;
        }
        if (shape[d] > 0 && n > INT64_MAX / 16 / shape[d]) {
            yt_error("tensor too large");
            return NULL;
        }
        n *= shape[d];
    }
    yt_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        yt_error("out of memory");
        return NULL;
    }
    t->storage = storage_new((size_t)n * yt_dtype_size(dt), zero);
    if (!t->storage) {
        free(t);
        return NULL;
    }
    t->refcount = 1;
    t->dtype = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    yt_tensor_set_contiguous_strides(t);
    if (in_scope) scope_register(t);
    return t;
}

static yt_tensor *tensor_alloc(yt_dtype dt, int ndim, const int64_t *shape, int zero)
{
    return tensor_alloc_in(dt, ndim, shape, zero, 1);
}

yt_tensor *yt_tensor_zeros_unscoped(yt_dtype dt, int ndim, const int64_t *shape)
{
    return tensor_alloc_in(dt, ndim, shape, 1, 0);
}

yt_tensor *yt_tensor_empty_unscoped(yt_dtype dt, int ndim, const int64_t *shape)
{
    return tensor_alloc_in(dt, ndim, shape, 0, 0);
}

yt_tensor *yt_tensor_empty(yt_dtype dt, int ndim, const int64_t *shape) { return tensor_alloc(dt, ndim, shape, 0); }
yt_tensor *yt_tensor_zeros(yt_dtype dt, int ndim, const int64_t *shape) { return tensor_alloc(dt, ndim, shape, 1); }

yt_tensor *yt_tensor_full(int ndim, const int64_t *shape, float value)
{
    yt_tensor *t = tensor_alloc(YT_F32, ndim, shape, 0);
    if (!t) return NULL;
    float *p = yt_f32(t);
    int64_t n = yt_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] = value;
    return t;
}

yt_tensor *yt_tensor_from_data(yt_dtype dt, int ndim, const int64_t *shape, const void *data)
{
    yt_tensor *t = tensor_alloc(dt, ndim, shape, 0);
    if (t && yt_numel(t) > 0) memcpy(yt_data(t), data, (size_t)yt_numel(t) * yt_dtype_size(dt));
    return t;
}

yt_tensor *yt_tensor_empty_like(const yt_tensor *t) { return tensor_alloc(t->dtype, t->ndim, t->shape, 0); }
yt_tensor *yt_tensor_zeros_like(const yt_tensor *t) { return tensor_alloc(t->dtype, t->ndim, t->shape, 1); }

int64_t yt_numel(const yt_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

int yt_is_contiguous(const yt_tensor *t)
{
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != st) return 0;
        st *= t->shape[d];
    }
    return 1;
}

/* Walks every element of a strided tensor in row-major order, calling fn on byte offsets. */
static void copy_strided(char *dst, const yt_tensor *dt_, const char *src, const yt_tensor *st_, size_t esz)
{
    int nd = dt_->ndim;
    int64_t idx[YT_MAX_DIMS] = {0};
    int64_t n = yt_numel(dt_);
    for (int64_t i = 0; i < n; i++) {
        int64_t so = 0, doff = 0;
        for (int d = 0; d < nd; d++) {
            so += idx[d] * st_->stride[d];
            doff += idx[d] * dt_->stride[d];
        }
        memcpy(dst + doff * (int64_t)esz, src + so * (int64_t)esz, esz);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < dt_->shape[d]) break;
            idx[d] = 0;
        }
    }
}

int yt_tensor_copy_(yt_tensor *dst, const yt_tensor *src)
{
    if (yt_tensor_is_released(dst) || yt_tensor_is_released(src)) return yt_error("attempt to use a released tensor");
    if (dst->dtype != src->dtype)
        return yt_error("copy: dtype %s into %s", yt_dtype_name(src->dtype), yt_dtype_name(dst->dtype));
    if (!yt_same_shape(dst, src)) {
        char a[128], b[128];
        return yt_error("copy: shape %s into %s", yt_shape_str(src, a, sizeof a), yt_shape_str(dst, b, sizeof b));
    }
    size_t esz = yt_dtype_size(dst->dtype);
    if (yt_is_contiguous(dst) && yt_is_contiguous(src)) {
        memmove(yt_data(dst), yt_data(src), (size_t)yt_numel(dst) * esz);
        return 0;
    }
    /* Fast path for a batch of contiguous blocks (e.g. channel slices of NCHW): copy row blocks. */
    copy_strided(yt_data(dst), dst, yt_data(src), src, esz);
    return 0;
}

yt_tensor *yt_tensor_clone(const yt_tensor *t)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    yt_tensor *c = yt_tensor_empty(t->dtype, t->ndim, t->shape);
    if (c && yt_tensor_copy_(c, t) < 0) {
        yt_tensor_release(c);
        return NULL;
    }
    return c;
}

static double load_as_double(const void *base, yt_dtype dt, int64_t i)
{
    switch (dt) {
    case YT_F32:
        return ((const float *)base)[i];
    case YT_F64:
        return ((const double *)base)[i];
    case YT_I64:
        return (double)((const int64_t *)base)[i];
    case YT_U8:
        return ((const uint8_t *)base)[i];
    default:
        return 0;
    }
}

double yt_tensor_elem_f64(const yt_tensor *t, int64_t off) { return load_as_double(t->storage->data, t->dtype, off); }

yt_tensor *yt_tensor_to(const yt_tensor *t, yt_dtype dt, double scale)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    yt_tensor *src = yt_is_contiguous(t) ? NULL : yt_tensor_clone(t);
    const yt_tensor *s = src ? src : t;
    yt_tensor *out = yt_tensor_empty(dt, t->ndim, t->shape);
    if (!out) {
        yt_tensor_release(src);
        return NULL;
    }
    int64_t n = yt_numel(t);
    const void *in = yt_data(s);
    void *o = yt_data(out);
    if (s->dtype == YT_U8 && dt == YT_F32) { /* the image path: keep it fast */
        const uint8_t *p = in;
        float *q = o, f = (float)scale;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) q[i] = (float)p[i] * f;
    } else {
        for (int64_t i = 0; i < n; i++) {
            double v = load_as_double(in, s->dtype, i) * scale;
            switch (dt) {
            case YT_F32:
                ((float *)o)[i] = (float)v;
                break;
            case YT_F64:
                ((double *)o)[i] = v;
                break;
            case YT_I64:
                ((int64_t *)o)[i] = (int64_t)v;
                break;
            case YT_U8:
                ((uint8_t *)o)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                break;
            default:
                break;
            }
        }
    }
    yt_tensor_release(src);
    return out;
}

void yt_tensor_retain(yt_tensor *t)
{
    if (t) t->refcount++;
}

void yt_tensor_free_storage(yt_tensor *t)
{
    storage_release(t->storage);
    t->storage = NULL;
    if (t->grad) {
        yt_tensor_release(t->grad);
        t->grad = NULL;
    }
    if (t->grad_fn) {
        if (autograd.release_grad_fn) autograd.release_grad_fn(t);
        t->grad_fn = NULL;
    }
}

int yt_tensor_is_released(const yt_tensor *t) { return t->storage == NULL; }

void yt_tensor_release_consumed(yt_tensor *t)
{
    if (!t) return;
    /* the references left after this one are the scope's and gradient targets': none reads the data */
    if (t->storage && t->refcount > 1 && t->refcount - 1 == t->scoped + t->header_refs) {
        storage_release(t->storage);
        t->storage = NULL;
    }
    yt_tensor_release(t);
}

void yt_tensor_release(yt_tensor *t)
{
    if (!t || --t->refcount > 0) return;
    yt_tensor_free_storage(t);
    free(t);
}

int yt_same_shape(const yt_tensor *a, const yt_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

char *yt_shape_str(const yt_tensor *t, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

int yt_check(const yt_tensor *t, const char *what, yt_dtype dt, int ndim)
{
    if (!t) return yt_error("%s: missing tensor", what);
    if (yt_tensor_is_released(t)) return yt_error("%s: attempt to use a released tensor", what);
    if (t->dtype != dt) return yt_error("%s: expected %s, got %s", what, yt_dtype_name(dt), yt_dtype_name(t->dtype));
    if (ndim >= 0 && t->ndim != ndim) {
        char b[128];
        return yt_error("%s: expected %d dimensions, got shape %s", what, ndim, yt_shape_str(t, b, sizeof b));
    }
    return 0;
}

/* ---- views ---- */

yt_tensor *yt_tensor_alias(yt_tensor *t)
{
    yt_tensor *v = calloc(1, sizeof *v);
    if (!v) {
        yt_error("out of memory");
        return NULL;
    }
    *v = *t;
    v->refcount = 1;
    v->kept = 0;
    v->scoped = 0;
    v->header_refs = 0;
    v->grad = NULL;
    v->grad_fn = NULL;
    v->grad_fn_output = 0;
    v->requires_grad = 0;
    t->storage->refcount++;
    scope_register(v);
    return v;
}
