#include "core/tensor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"

static atomic_size_t bytes_in_use;
static atomic_size_t peak_bytes_in_use;

size_t yt_bytes_in_use(void) { return atomic_load(&bytes_in_use); }
size_t yt_peak_bytes_in_use(void) { return atomic_load(&peak_bytes_in_use); }

static const size_t dtype_sizes[YT_DTYPE_COUNT] = {4, 8, 8, 1};
static const char *dtype_names[YT_DTYPE_COUNT] = {"F32", "F64", "I64", "U8"};

size_t yt_dtype_size(yt_dtype dt) { return dtype_sizes[dt]; }
const char *yt_dtype_name(yt_dtype dt) { return (unsigned)dt < YT_DTYPE_COUNT ? dtype_names[dt] : "?"; }

int yt_dtype_from_name(const char *name)
{
    static const struct { const char *name; yt_dtype dt; } names[] = {
        {"F32", YT_F32}, {"float32", YT_F32}, {"float", YT_F32}, {"F64", YT_F64}, {"float64", YT_F64},
        {"double", YT_F64}, {"I64", YT_I64}, {"int64", YT_I64}, {"long", YT_I64}, {"U8", YT_U8},
        {"uint8", YT_U8}, {"byte", YT_U8},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0) return (int)names[i].dt;
    return -1;
}

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
    yt_tape_clear();
    tensor_list *l = &scopes[scope_depth];
    for (size_t i = 0; i < l->len; i++) {
        yt_tensor *t = l->items[i];
        if (!t->kept) yt_tensor_free_storage(t);
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
 * therefore kept in a cache keyed by their exact size and handed out again; the resident set stays at the step's
 * peak, flat over steps. The cache is bounded (YT_BLOCK_CACHE_BYTES) and shared by all threads. */
#include <pthread.h>

#if defined(__SANITIZE_ADDRESS__)
#define CACHE_MIN_BYTES ((size_t)-1) /* let AddressSanitizer see every free and reuse */
#else
#define CACHE_MIN_BYTES ((size_t)64 << 10)
#endif
#define CACHE_BUCKETS 1024
#define CACHE_LIMIT_BYTES ((size_t)16 << 30)

typedef struct cached_block {
    struct cached_block *next;
    size_t size;
} cached_block;

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static cached_block *cache_buckets[CACHE_BUCKETS];
static size_t cache_bytes;

static size_t block_size(size_t nbytes)
{
    /* round to 4 KiB above the cache threshold so near-equal sizes share blocks */
    size_t a = (nbytes + 63) & ~(size_t)63;
    if (a == 0) a = 64;
    if (a >= CACHE_MIN_BYTES) a = (a + 4095) & ~(size_t)4095;
    return a;
}

static void *block_alloc(size_t size)
{
    if (size >= CACHE_MIN_BYTES) {
        pthread_mutex_lock(&cache_mutex);
        cached_block **pp = &cache_buckets[(size >> 12) % CACHE_BUCKETS];
        for (; *pp; pp = &(*pp)->next) {
            if ((*pp)->size == size) {
                cached_block *b = *pp;
                *pp = b->next;
                cache_bytes -= size;
                pthread_mutex_unlock(&cache_mutex);
                return b;
            }
        }
        pthread_mutex_unlock(&cache_mutex);
    }
    return aligned_alloc(64, size);
}

static void block_free(void *p, size_t size)
{
    if (size >= CACHE_MIN_BYTES) {
        pthread_mutex_lock(&cache_mutex);
        if (cache_bytes + size <= CACHE_LIMIT_BYTES) {
            cached_block *b = p;
            b->size = size;
            b->next = cache_buckets[(size >> 12) % CACHE_BUCKETS];
            cache_buckets[(size >> 12) % CACHE_BUCKETS] = b;
            cache_bytes += size;
            pthread_mutex_unlock(&cache_mutex);
            return;
        }
        pthread_mutex_unlock(&cache_mutex);
    }
    free(p);
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
    pthread_mutex_unlock(&cache_mutex);
}

static yt_storage *storage_new(size_t nbytes, int zero)
{
    yt_storage *s = malloc(sizeof *s);
    if (!s) return NULL;
    size_t alloc = block_size(nbytes);
    s->data = block_alloc(alloc);
    if (!s->data) {
        free(s);
        yt_error("out of memory allocating %zu bytes", nbytes);
        return NULL;
    }
    if (zero) memset(s->data, 0, alloc);
    s->nbytes = nbytes;
    s->refcount = 1;
    size_t now = atomic_fetch_add(&bytes_in_use, nbytes) + nbytes;
    size_t peak = atomic_load(&peak_bytes_in_use);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes_in_use, &peak, now)) {}
    return s;
}

static void storage_release(yt_storage *s)
{
    if (!s || --s->refcount > 0) return;
    atomic_fetch_sub(&bytes_in_use, s->nbytes);
    block_free(s->data, block_size(s->nbytes));
    free(s);
}

/* ---- tensors ---- */

static void set_contiguous_strides(yt_tensor *t)
{
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = st;
        st *= t->shape[d];
    }
}

static yt_tensor *tensor_alloc(yt_dtype dt, int ndim, const int64_t *shape, int zero)
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
    set_contiguous_strides(t);
    scope_register(t);
    return t;
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
    if (dst->dtype != src->dtype) return yt_error("copy: dtype %s into %s", yt_dtype_name(src->dtype), yt_dtype_name(dst->dtype));
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
    case YT_F32: return ((const float *)base)[i];
    case YT_F64: return ((const double *)base)[i];
    case YT_I64: return (double)((const int64_t *)base)[i];
    case YT_U8: return ((const uint8_t *)base)[i];
    default: return 0;
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
            case YT_F32: ((float *)o)[i] = (float)v; break;
            case YT_F64: ((double *)o)[i] = v; break;
            case YT_I64: ((int64_t *)o)[i] = (int64_t)v; break;
            case YT_U8: ((uint8_t *)o)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
            default: break;
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
        yt_node_forget_output(t->grad_fn, t->grad_fn_output);
        yt_node_release(t->grad_fn);
        t->grad_fn = NULL;
    }
}

int yt_tensor_is_released(const yt_tensor *t) { return t->storage == NULL; }

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

static yt_tensor *view_of(yt_tensor *t)
{
    yt_tensor *v = calloc(1, sizeof *v);
    if (!v) {
        yt_error("out of memory");
        return NULL;
    }
    *v = *t;
    v->refcount = 1;
    v->kept = 0;
    v->grad = NULL;
    v->grad_fn = NULL;
    v->grad_fn_output = 0;
    v->requires_grad = 0;
    t->storage->refcount++;
    scope_register(v);
    return v;
}

static int backward_sum_into(yt_tensor *in, yt_tensor *g)
{
    /* g has in's shape (contiguous): in.grad += g */
    float *gx = yt_grad_accum(in);
    if (!gx) return 0;
    const float *gy = yt_f32(g);
    int64_t n = yt_numel(g);
    for (int64_t i = 0; i < n; i++) gx[i] += gy[i];
    return 0;
}

static int reshape_backward(yt_node *node)
{
    /* a reshape's gradient is the output gradient with the input's shape: same memory order */
    yt_tensor *in = node->in[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(in);
    if (!gx) return 0;
    const float *g = yt_f32(gy);
    int64_t n = yt_numel(gy);
    for (int64_t i = 0; i < n; i++) gx[i] += g[i];
    return 0;
}

yt_tensor *yt_reshape(yt_tensor *t, int ndim, const int64_t *shape)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    if (ndim < 0 || ndim > YT_MAX_DIMS) {
        yt_error("reshape: %d dimensions", ndim);
        return NULL;
    }
    int64_t n = yt_numel(t), known = 1;
    int infer = -1;
    int64_t sh[YT_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        sh[d] = shape[d];
        if (shape[d] == -1) {
            if (infer >= 0) {
                yt_error("reshape: only one dimension can be -1");
                return NULL;
            }
            infer = d;
        } else if (shape[d] < 0) {
            yt_error("reshape: negative size %lld", (long long)shape[d]);
            return NULL;
        } else {
            known *= shape[d];
        }
    }
    if (infer >= 0) sh[infer] = known ? n / known : 0;
    int64_t m = 1;
    for (int d = 0; d < ndim; d++) m *= sh[d];
    if (m != n) {
        char b[128];
        yt_error("reshape: cannot view %s (%lld elements) as %d-d with %lld elements", yt_shape_str(t, b, sizeof b),
                 (long long)n, ndim, (long long)m);
        return NULL;
    }
    yt_tensor *src = yt_contiguous(t);
    if (!src) return NULL;
    yt_tensor *v = view_of(src);
    if (v) {
        v->ndim = ndim;
        for (int d = 0; d < ndim; d++) v->shape[d] = sh[d];
        set_contiguous_strides(v);
        if (yt_needs_grad(1, &src)) {
            yt_node *node = yt_node_new("reshape", reshape_backward, 1, &src);
            if (!node) {
                yt_tensor_release(v);
                v = NULL;
            } else {
                yt_node_add_output(node, v);
            }
        }
    }
    yt_tensor_release(src);
    return v;
}

static int narrow_backward(yt_node *node)
{
    yt_tensor *in = node->in[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(in);
    if (!gx) return 0;
    int dim = (int)node->iarg[0];
    int64_t start = node->iarg[1], len = node->iarg[2];
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < dim; d++) outer *= in->shape[d];
    for (int d = dim + 1; d < in->ndim; d++) inner *= in->shape[d];
    int64_t full = in->shape[dim];
    const float *g = yt_f32(gy);
    for (int64_t o = 0; o < outer; o++) {
        float *dst = gx + (o * full + start) * inner;
        const float *src = g + o * len * inner;
        for (int64_t i = 0; i < len * inner; i++) dst[i] += src[i];
    }
    return 0;
}

yt_tensor *yt_narrow(yt_tensor *t, int dim, int64_t start, int64_t length)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    if (dim < 0 || dim >= t->ndim) {
        yt_error("narrow: dimension %d out of range for a %d-d tensor", dim + 1, t->ndim);
        return NULL;
    }
    if (start < 0 || length < 0 || start + length > t->shape[dim]) {
        yt_error("narrow: range %lld..%lld out of bounds for size %lld in dimension %d", (long long)start + 1,
                 (long long)(start + length), (long long)t->shape[dim], dim + 1);
        return NULL;
    }
    yt_tensor *v = view_of(t);
    if (!v) return NULL;
    v->offset += start * t->stride[dim];
    v->shape[dim] = length;
    if (yt_needs_grad(1, &t)) {
        if (t->dtype != YT_F32 || !yt_is_contiguous(t)) {
            /* gradients are tracked for contiguous F32 bases only */
            yt_tensor *c = yt_contiguous(t);
            yt_tensor_release(v);
            if (!c) return NULL;
            v = yt_narrow(c, dim, start, length);
            yt_tensor_release(c);
            return v;
        }
        yt_node *node = yt_node_new("narrow", narrow_backward, 1, &t);
        if (!node) {
            yt_tensor_release(v);
            return NULL;
        }
        node->iarg[0] = dim;
        node->iarg[1] = start;
        node->iarg[2] = length;
        yt_node_add_output(node, v);
    }
    return v;
}

static int contiguous_backward(yt_node *node)
{
    /* the output is a contiguous copy of a strided input: scatter the gradient back through the strides */
    yt_tensor *in = node->in[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(in);
    if (!gx) return 0;
    /* in's grad buffer is contiguous in in's shape, and so is gy: same element order */
    return backward_sum_into(in, gy) + (gx ? 0 : 0);
}

yt_tensor *yt_contiguous(yt_tensor *t)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    if (yt_is_contiguous(t)) {
        yt_tensor_retain(t);
        return t;
    }
    yt_tensor *c = yt_tensor_empty(t->dtype, t->ndim, t->shape);
    if (!c) return NULL;
    yt_tensor_copy_(c, t);
    if (yt_needs_grad(1, &t)) {
        yt_node *node = yt_node_new("contiguous", contiguous_backward, 1, &t);
        if (!node) {
            yt_tensor_release(c);
            return NULL;
        }
        yt_node_add_output(node, c);
    }
    return c;
}

static int permute_backward(yt_node *node)
{
    yt_tensor *in = node->in[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(in);
    if (!gx) return 0;
    /* gy is contiguous in the permuted shape; walk it and add into gx at the un-permuted position */
    int nd = in->ndim;
    int64_t in_strides[YT_MAX_DIMS], st = 1;
    for (int d = nd - 1; d >= 0; d--) {
        in_strides[d] = st;
        st *= in->shape[d];
    }
    int64_t out_stride_in[YT_MAX_DIMS]; /* stride in gx for each output dim */
    for (int d = 0; d < nd; d++) out_stride_in[d] = in_strides[node->iarg[d]];
    int64_t idx[YT_MAX_DIMS] = {0};
    const float *g = yt_f32(gy);
    int64_t n = yt_numel(gy);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) off += idx[d] * out_stride_in[d];
        gx[off] += g[i];
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < gy->shape[d]) break;
            idx[d] = 0;
        }
    }
    return 0;
}

yt_tensor *yt_permute(yt_tensor *t, const int *perm)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    int seen[YT_MAX_DIMS] = {0};
    for (int d = 0; d < t->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= t->ndim || seen[perm[d]]) {
            yt_error("permute: invalid permutation of %d dimensions", t->ndim);
            return NULL;
        }
        seen[perm[d]] = 1;
    }
    yt_tensor *src = t;
    yt_tensor_retain(src);
    if (yt_needs_grad(1, &t) && !yt_is_contiguous(t)) {
        yt_tensor_release(src);
        src = yt_contiguous(t);
        if (!src) return NULL;
    }
    yt_tensor *v = view_of(src);
    if (!v) {
        yt_tensor_release(src);
        return NULL;
    }
    for (int d = 0; d < src->ndim; d++) {
        v->shape[d] = src->shape[perm[d]];
        v->stride[d] = src->stride[perm[d]];
    }
    if (yt_needs_grad(1, &src)) {
        yt_node *node = yt_node_new("permute", permute_backward, 1, &src);
        if (!node) {
            yt_tensor_release(v);
            yt_tensor_release(src);
            return NULL;
        }
        for (int d = 0; d < src->ndim; d++) node->iarg[d] = perm[d];
        yt_node_add_output(node, v);
    }
    yt_tensor_release(src);
    return v;
}
