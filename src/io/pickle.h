/* A restricted pickle reader: the stream is interpreted opcode by opcode into plain data, nothing is imported or
 * called. Python's `pickletools` documents the opcodes; the binary ones of protocols 2..5 that torch checkpoints use
 * are understood, any other opcode is an error naming it.
 *
 * GLOBAL / STACK_GLOBAL become names. Only the names in one table (pickle.c: known_globals) are understood:
 *   torch._utils._rebuild_tensor_v2 / _rebuild_parameter      -> a TENSOR (storage, offset, shape, stride)
 *   torch.{Half,Float,Double,Long,Int,Short,Char,Byte,Bool}Storage in a persistent id -> a STORAGE
 *   collections.OrderedDict, builtins.set, torch.Size, torch.device, _codecs.encode -> dicts, lists, tuples, strings
 *   classes under the module prefixes torch.nn.modules., ultralytics., plus numpy.dtype, numpy scalars, torch's
 *   optimizers' defaults -> inert OBJECT records (class name, constructor arguments, BUILD state)
 * Any other global is an error naming it.
 *
 * Limits (each an error): stack depth, mark depth, memo indices (must be issued in order, as Python's pickler
 * does, and at most YT_PK_MAX_MEMO), number of values, tensor rank, tensor extent vs its storage's size. Values can
 * form cycles (the memo allows it): walkers bound their depth with YT_PK_MAX_DEPTH. */
#ifndef YT_PICKLE_H
#define YT_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum {
    YT_PK_NONE,
    YT_PK_BOOL,
    YT_PK_INT,
    YT_PK_FLOAT,
    YT_PK_STR,     /* UTF-8 text: s, len */
    YT_PK_BYTES,   /* s, len */
    YT_PK_TUPLE,   /* items */
    YT_PK_LIST,    /* items (sets too) */
    YT_PK_DICT,    /* items: key0, value0, key1, value1, ... in insertion order */
    YT_PK_GLOBAL,  /* s = "module.name" */
    YT_PK_OBJECT,  /* s = class name; items[0] = constructor args (tuple), items[1] = BUILD state (or NONE) */
    YT_PK_STORAGE, /* s = storage key (zip member data/<key>), storage_dtype, numel */
    YT_PK_TENSOR,  /* items[0] = STORAGE; offset, ndim, shape, stride (elements) */
    YT_PK_MARK     /* internal */
} yt_pk_kind;

typedef enum {
    YT_PK_F16,
    YT_PK_F32,
    YT_PK_F64,
    YT_PK_I64,
    YT_PK_I32,
    YT_PK_I16,
    YT_PK_I8,
    YT_PK_U8,
    YT_PK_BOOLS
} yt_pk_dtype;

typedef struct yt_pk yt_pk;
struct yt_pk {
    yt_pk_kind kind;
    int64_t i; /* BOOL, INT; STORAGE: numel */
    double f;
    char *s;
    size_t len;
    yt_pk **items;
    size_t n, cap;
    /* STORAGE / TENSOR */
    yt_pk_dtype storage_dtype;
    int64_t offset;
    int ndim;
    int64_t shape[YT_MAX_DIMS];
    int64_t stride[YT_MAX_DIMS];
};

typedef struct yt_pickle yt_pickle; /* owns every value it produced */

#define YT_PK_MAX_STACK (1 << 20)
#define YT_PK_MAX_MARKS (1 << 16)
#define YT_PK_MAX_MEMO (1 << 24)
#define YT_PK_MAX_VALUES (1 << 25)
#define YT_PK_MAX_DEPTH 200

/* Interprets the stream; `name` labels errors. NULL + yt_error ("<name>: pickle offset N: ...") on any problem. */
yt_pickle *yt_pickle_load(const void *data, size_t size, const char *name);
const yt_pk *yt_pickle_root(const yt_pickle *p);
void yt_pickle_free(yt_pickle *p);

/* Lookups (NULL when absent or not of the right kind). */
const yt_pk *yt_pk_dict_get(const yt_pk *dict, const char *key);
/* An OBJECT's attribute from its BUILD state (a dict, or the dict of a (dict, slots) tuple). */
const yt_pk *yt_pk_attr(const yt_pk *obj, const char *key);
int yt_pk_is_str(const yt_pk *v, const char *s);
/* A numpy scalar (numpy.core.multiarray.scalar(dtype, raw bytes): what np.float64(0.01) pickles to, e.g. an
 * optimizer's lr set by np.interp) as a number: returns 1 with *f set (*is_int 1 for integer and bool dtypes, whose
 * value then is exact in *i), 0 when v is not one of the little-endian f2/f4/f8/i1..i8/u1..u4/b1 scalars. */
int yt_pk_numpy_scalar(const yt_pk *v, double *f, int64_t *i, int *is_int);
const char *yt_pk_kind_name(yt_pk_kind k);
size_t yt_pk_dtype_size(yt_pk_dtype dt);

#endif
