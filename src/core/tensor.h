/* N-d tensors: row-major, 64-byte aligned, refcounted storage shared by views.
 *
 * Ownership: every function returning yt_tensor * hands the caller one new reference (or NULL with
 * yt_error set). yt_tensor_release drops one. Inside a scope (yt_scope_begin/end) every tensor created is
 * also held by the scope, and its storage is released when the scope ends unless yt_tensor_keep was
 * called: that is how a training step frees its activations without waiting for the Lua GC. */
#ifndef YT_TENSOR_H
#define YT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define YT_MAX_DIMS 8

typedef enum { YT_F32 = 0, YT_F64, YT_I64, YT_U8, YT_DTYPE_COUNT } yt_dtype;

typedef struct yt_storage {
    void *data;
    size_t nbytes;
    size_t block; /* bytes of the block behind data (>= nbytes: a cached block may be larger) */
    int refcount;
} yt_storage;

typedef struct yt_node yt_node;

typedef struct yt_tensor {
    int refcount;
    yt_dtype dtype;
    int ndim;
    int64_t shape[YT_MAX_DIMS];
    int64_t stride[YT_MAX_DIMS]; /* in elements */
    int64_t offset;              /* in elements, into storage */
    yt_storage *storage;         /* NULL once released by its scope */
    /* autograd */
    int requires_grad;
    int kept;               /* exempt from scope release */
    int scoped;             /* one of the references is its scope's */
    int header_refs;        /* of refcount, the references that read the header (shape, autograd links) and never the
                             * data: the autograd tape's gradient targets (its nodes' inputs) */
    struct yt_tensor *grad; /* accumulated gradient: contiguous F32, same shape; owned */
    yt_node *grad_fn;       /* node that produced this tensor (NULL for leaves); owned */
    int grad_fn_output;     /* which output of grad_fn this is */
} yt_tensor;

size_t yt_dtype_size(yt_dtype dt);
const char *yt_dtype_name(yt_dtype dt);
/* "F32", "float32", "F64", "I64", "int64", "U8", "uint8" -> dtype; -1 if unknown */
int yt_dtype_from_name(const char *name);

/* Allocation. Shapes are copied. empty = uninitialised, zeros = 0-filled, full = value-filled (F32/F64). */
yt_tensor *yt_tensor_empty(yt_dtype dt, int ndim, const int64_t *shape);
yt_tensor *yt_tensor_zeros(yt_dtype dt, int ndim, const int64_t *shape);
yt_tensor *yt_tensor_full(int ndim, const int64_t *shape, float value);
yt_tensor *yt_tensor_from_data(yt_dtype dt, int ndim, const int64_t *shape, const void *data);
/* Same shape/dtype as t, contiguous. */
yt_tensor *yt_tensor_empty_like(const yt_tensor *t);
yt_tensor *yt_tensor_zeros_like(const yt_tensor *t);
/* zeros, registered in no scope: the caller's reference is the only one (gradient buffers, whose owner frees
 * them as soon as they are consumed). */
yt_tensor *yt_tensor_zeros_unscoped(yt_dtype dt, int ndim, const int64_t *shape);
/* The same, uninitialised (a gradient buffer its first writer overwrites whole: yt_grad_dest). */
yt_tensor *yt_tensor_empty_unscoped(yt_dtype dt, int ndim, const int64_t *shape);
/* Deep copy into a new contiguous tensor (no autograd). */
yt_tensor *yt_tensor_clone(const yt_tensor *t);
/* Converts to another dtype (contiguous copy), multiplying by scale on the way (e.g. uint8 images / 255). */
yt_tensor *yt_tensor_to(const yt_tensor *t, yt_dtype dt, double scale);
/* Copies src into dst elementwise (same shape and dtype; either may be strided). No autograd. */
int yt_tensor_copy_(yt_tensor *dst, const yt_tensor *src);

void yt_tensor_retain(yt_tensor *t);
void yt_tensor_release(yt_tensor *t);
/* Releases one reference, as yt_tensor_release; when what is left is only its scope's reference and header_refs,
 * nothing can read the data again, so the storage is freed now instead of at the scope's end (the header, its shape
 * and autograd links live on while those hold it). What the autograd tape calls on the tensors a node held for
 * backward, and t:free() in Lua: the model's forward frees each activation as soon as its last reader ran. */
void yt_tensor_release_consumed(yt_tensor *t);
/* Frees the storage reference now (tensor becomes "released"); the struct lives until its last release. */
void yt_tensor_free_storage(yt_tensor *t);
int yt_tensor_is_released(const yt_tensor *t);

int64_t yt_numel(const yt_tensor *t);
int yt_is_contiguous(const yt_tensor *t);
/* Pointer to the first element. */
static inline void *yt_data(const yt_tensor *t)
{
    return (char *)t->storage->data + (size_t)t->offset * yt_dtype_size(t->dtype);
}
static inline float *yt_f32(const yt_tensor *t) { return (float *)yt_data(t); }
static inline int64_t *yt_i64(const yt_tensor *t) { return (int64_t *)yt_data(t); }
static inline uint8_t *yt_u8(const yt_tensor *t) { return (uint8_t *)yt_data(t); }
static inline double *yt_f64(const yt_tensor *t) { return (double *)yt_data(t); }
/* The element at storage offset off (in elements, as t->offset + sum index * stride) as a double, any dtype. */
double yt_tensor_elem_f64(const yt_tensor *t, int64_t off);

/* Shape helpers. */
int yt_same_shape(const yt_tensor *a, const yt_tensor *b);
/* Writes e.g. "[4, 3, 320, 320]" into buf; returns buf. */
char *yt_shape_str(const yt_tensor *t, char *buf, size_t n);
/* Sets an error unless t is usable as `what` with the given dtype and ndim (-1 = any). */
int yt_check(const yt_tensor *t, const char *what, yt_dtype dt, int ndim);

/* A new tensor header over t's storage (same dtype, shape, strides and offset) with no autograd state, registered
 * in the current scope: what the view ops of ops/shape_ops.h build on. NULL when out of memory. */
yt_tensor *yt_tensor_alias(yt_tensor *t);
/* Sets row-major strides for t's shape. */
void yt_tensor_set_contiguous_strides(yt_tensor *t);
/* What core asks of the autograd tape (core/autograd.c installs them; core knows nothing else of autograd): let go
 * of a tensor's grad_fn when its storage is freed, and clear the tape when a scope ends. */
typedef struct {
    void (*release_grad_fn)(yt_tensor *t);
    void (*clear_tape)(void);
} yt_autograd_hooks;
void yt_tensor_set_autograd_hooks(const yt_autograd_hooks *hooks);

/* Memory accounting (bytes currently held in tensor storages), for tests and benchmarks. */
size_t yt_bytes_in_use(void);
size_t yt_peak_bytes_in_use(void);
/* Restarts the peak from the bytes in use now. */
void yt_reset_peak_bytes_in_use(void);
/* Bytes of freed blocks kept for reuse (not in use, still resident). */
size_t yt_cached_bytes(void);
/* Returns the blocks kept for reuse (freed activations) to the system. */
void yt_release_cached_memory(void);

/* Scopes: see the header comment. Nested scopes form a stack (per thread). */
void yt_scope_begin(void);
/* Releases the storage of every tensor created since the matching begin that was not kept, and clears the
 * autograd tape. */
void yt_scope_end(void);
int yt_scope_depth(void);
void yt_tensor_keep(yt_tensor *t);

#endif
