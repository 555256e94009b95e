/* The restricted pickle interpreter of pickle.h: a state machine over the opcode stream with one error path. */
#include "io/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/half.h"

/* What a GLOBAL may stand for. */
typedef enum {
    ROLE_REBUILD_TENSOR,
    ROLE_REBUILD_PARAMETER,
    ROLE_STORAGE,
    ROLE_ORDERED_DICT,
    ROLE_SET,
    ROLE_SIZE,
    ROLE_DEVICE,
    ROLE_ENCODE,
    ROLE_CLASS /* an inert record */
} global_role;

static const struct {
    const char *name;
    global_role role;
    yt_pk_dtype dtype; /* ROLE_STORAGE */
} known_globals[] = {
    {"torch._utils._rebuild_tensor_v2", ROLE_REBUILD_TENSOR, 0},
    {"torch._utils._rebuild_parameter", ROLE_REBUILD_PARAMETER, 0},
    {"torch.HalfStorage", ROLE_STORAGE, YT_PK_F16},
    {"torch.FloatStorage", ROLE_STORAGE, YT_PK_F32},
    {"torch.DoubleStorage", ROLE_STORAGE, YT_PK_F64},
    {"torch.LongStorage", ROLE_STORAGE, YT_PK_I64},
    {"torch.IntStorage", ROLE_STORAGE, YT_PK_I32},
    {"torch.ShortStorage", ROLE_STORAGE, YT_PK_I16},
    {"torch.CharStorage", ROLE_STORAGE, YT_PK_I8},
    {"torch.ByteStorage", ROLE_STORAGE, YT_PK_U8},
    {"torch.BoolStorage", ROLE_STORAGE, YT_PK_BOOLS},
    {"collections.OrderedDict", ROLE_ORDERED_DICT, 0},
    {"__builtin__.set", ROLE_SET, 0},
    {"builtins.set", ROLE_SET, 0},
    {"torch.Size", ROLE_SIZE, 0},
    {"torch.device", ROLE_DEVICE, 0},
    {"_codecs.encode", ROLE_ENCODE, 0},
    {"numpy.dtype", ROLE_CLASS, 0},
    {"numpy.core.multiarray.scalar", ROLE_CLASS, 0},
};

/* Classes whose instances are kept as inert records (the modules of a pickled model, Ultralytics' helpers). */
static const char *const class_prefixes[] = {"torch.nn.modules.", "ultralytics."};

/* Binary opcodes that are not understood, for the error message. */
static const struct {
    unsigned char code;
    const char *name;
} refused_opcodes[] = {
    {'I', "INT"},    {'L', "LONG"},  {'F', "FLOAT"}, {'S', "STRING"},       {'V', "UNICODE"},
    {'P', "PERSID"}, {'g', "GET"},   {'p', "PUT"},   {'i', "INST"},         {'o', "OBJ"},
    {0x82, "EXT1"},  {0x83, "EXT2"}, {0x84, "EXT4"}, {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"},
};

struct yt_pickle {
    const unsigned char *data;
    size_t size, pos, op_pos;
    const char *name;
    yt_pk **all; /* every value, for freeing */
    size_t n_all, cap_all;
    yt_pk **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    yt_pk **memo;
    size_t n_memo, cap_memo;
    yt_pk *root;
};

static int fail(yt_pickle *P, const char *fmt, ...) YT_PRINTF(2, 3);
static int fail(yt_pickle *P, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return yt_error("%s: pickle offset %zu: %s", P->name, P->op_pos, msg);
}

static int grow(void **items, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *p = realloc(*items, c * elem);
    if (!p) return -1;
    *items = p;
    *cap = c;
    return 0;
}

/* ---- values ---------------------------------------------------------------------------------------------------- */

static yt_pk *new_value(yt_pickle *P, yt_pk_kind kind)
{
    if (P->n_all >= YT_PK_MAX_VALUES) {
        fail(P, "more than %d values", YT_PK_MAX_VALUES);
        return NULL;
    }
    if (grow((void **)&P->all, &P->cap_all, P->n_all + 1, sizeof *P->all) < 0) {
        fail(P, "out of memory");
        return NULL;
    }
    yt_pk *v = calloc(1, sizeof *v);
    if (!v) {
        fail(P, "out of memory");
        return NULL;
    }
    v->kind = kind;
    P->all[P->n_all++] = v;
    return v;
}

static yt_pk *new_string(yt_pickle *P, yt_pk_kind kind, const void *s, size_t len)
{
    yt_pk *v = new_value(P, kind);
    if (!v) return NULL;
    v->s = malloc(len + 1);
    if (!v->s) {
        fail(P, "out of memory");
        return NULL;
    }
    if (len) memcpy(v->s, s, len);
    v->s[len] = '\0';
    v->len = len;
    return v;
}

static int add_item(yt_pickle *P, yt_pk *seq, yt_pk *item)
{
    if (grow((void **)&seq->items, &seq->cap, seq->n + 1, sizeof *seq->items) < 0) return fail(P, "out of memory");
    seq->items[seq->n++] = item;
    return 0;
}

/* ---- the stack, marks and memo ------------------------------------------------------------------------------------
 */

static size_t stack_floor(const yt_pickle *P) { return P->n_marks ? P->marks[P->n_marks - 1] : 0; }

static int push(yt_pickle *P, yt_pk *v)
{
    if (!v) return -1;
    if (P->sp >= YT_PK_MAX_STACK) return fail(P, "stack deeper than %d", YT_PK_MAX_STACK);
    if (grow((void **)&P->stack, &P->cap_stack, P->sp + 1, sizeof *P->stack) < 0) return fail(P, "out of memory");
    P->stack[P->sp++] = v;
    return 0;
}

static yt_pk *pop(yt_pickle *P)
{
    if (P->sp <= stack_floor(P)) {
        fail(P, "stack underflow");
        return NULL;
    }
    return P->stack[--P->sp];
}

static yt_pk *top(yt_pickle *P)
{
    if (P->sp <= stack_floor(P)) {
        fail(P, "stack underflow");
        return NULL;
    }
    return P->stack[P->sp - 1];
}

static int push_mark(yt_pickle *P)
{
    if (P->n_marks >= YT_PK_MAX_MARKS) return fail(P, "marks nested deeper than %d", YT_PK_MAX_MARKS);
    if (grow((void **)&P->marks, &P->cap_marks, P->n_marks + 1, sizeof *P->marks) < 0) return fail(P, "out of memory");
    P->marks[P->n_marks++] = P->sp;
    return 0;
}

/* Pops to the last mark: the items are stack[*first .. P->sp) until the next push. */
static int pop_mark(yt_pickle *P, size_t *first)
{
    if (!P->n_marks) return fail(P, "no mark on the stack");
    *first = P->marks[--P->n_marks];
    return 0;
}

static int memo_put(yt_pickle *P, uint64_t index)
{
    yt_pk *v = top(P);
    if (!v) return -1;
    if (index >= YT_PK_MAX_MEMO)
        return fail(P, "memo index %llu above the limit %d", (unsigned long long)index, YT_PK_MAX_MEMO);
    if (index > P->n_memo)
        return fail(P, "memo index %llu out of order (the memo has %zu entries)", (unsigned long long)index, P->n_memo);
    if (index == P->n_memo) {
        if (grow((void **)&P->memo, &P->cap_memo, P->n_memo + 1, sizeof *P->memo) < 0) return fail(P, "out of memory");
        P->n_memo++;
    }
    P->memo[index] = v;
    return 0;
}

static int memo_get(yt_pickle *P, uint64_t index)
{
    if (index >= P->n_memo)
        return fail(P, "memo index %llu not set (the memo has %zu entries)", (unsigned long long)index, P->n_memo);
    return push(P, P->memo[index]);
}

/* ---- reading the stream -------------------------------------------------------------------------------------------
 */

static int need(yt_pickle *P, uint64_t n)
{
    if (n > P->size - P->pos) return fail(P, "truncated (needs %llu more bytes)", (unsigned long long)n);
    return 0;
}

static uint64_t read_le(yt_pickle *P, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++) v |= (uint64_t)P->data[P->pos + k] << (8 * k);
    P->pos += n;
    return v;
}

/* Reads an n-byte little-endian length (need() checked) then that many bytes as a value of `kind`. */
static int push_counted(yt_pickle *P, int len_bytes, yt_pk_kind kind)
{
    if (need(P, len_bytes) < 0) return -1;
    uint64_t len = read_le(P, len_bytes);
    if (need(P, len) < 0) return -1;
    const unsigned char *s = P->data + P->pos;
    P->pos += len;
    return push(P, new_string(P, kind, s, (size_t)len));
}

static int push_int(yt_pickle *P, int64_t i)
{
    yt_pk *v = new_value(P, YT_PK_INT);
    if (!v) return -1;
    v->i = i;
    return push(P, v);
}

/* LONG1/LONG4: little-endian two's complement of n bytes; at most 8 are accepted. */
static int push_long(yt_pickle *P, int len_bytes)
{
    if (need(P, len_bytes) < 0) return -1;
    uint64_t n = read_le(P, len_bytes);
    if (n > 8) return fail(P, "integer of %llu bytes (at most 8 are supported)", (unsigned long long)n);
    if (need(P, n) < 0) return -1;
    uint64_t u = read_le(P, (int)n);
    if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~(uint64_t)0 << (8 * n);
    return push_int(P, (int64_t)u);
}

static int push_float(yt_pickle *P)
{
    if (need(P, 8) < 0) return -1;
    uint64_t u = 0;
    for (int k = 0; k < 8; k++) u = (u << 8) | P->data[P->pos + k]; /* big-endian */
    P->pos += 8;
    yt_pk *v = new_value(P, YT_PK_FLOAT);
    if (!v) return -1;
    memcpy(&v->f, &u, sizeof v->f);
    return push(P, v);
}

/* ---- globals and calls ----------------------------------------------------------------------------------------------
 */

static int lookup_global(const char *name, global_role *role, yt_pk_dtype *dtype)
{
    for (size_t k = 0; k < sizeof known_globals / sizeof *known_globals; k++)
        if (!strcmp(known_globals[k].name, name)) {
            *role = known_globals[k].role;
            *dtype = known_globals[k].dtype;
            return 0;
        }
    for (size_t k = 0; k < sizeof class_prefixes / sizeof *class_prefixes; k++)
        if (!strncmp(name, class_prefixes[k], strlen(class_prefixes[k]))) {
            *role = ROLE_CLASS;
            return 0;
        }
    return -1;
}

static int push_global(yt_pickle *P, const char *module, size_t mlen, const char *name, size_t nlen)
{
    if (mlen + nlen > 256) return fail(P, "global name longer than 256 bytes");
    char full[260];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)mlen, module, (int)nlen, name);
    global_role role;
    yt_pk_dtype dtype;
    if (lookup_global(full, &role, &dtype) < 0)
        return fail(P, "global '%s' is not allowed (nothing is imported)", full);
    return push(P, new_string(P, YT_PK_GLOBAL, full, strlen(full)));
}

static int read_line(yt_pickle *P, const char **s, size_t *len)
{
    const unsigned char *start = P->data + P->pos;
    const unsigned char *nl = memchr(start, '\n', P->size - P->pos);
    if (!nl) return fail(P, "truncated GLOBAL name");
    *s = (const char *)start;
    *len = (size_t)(nl - start);
    P->pos += *len + 1;
    return 0;
}

static global_role role_of(const yt_pk *g, yt_pk_dtype *dtype)
{
    global_role role = ROLE_CLASS;
    yt_pk_dtype dt = YT_PK_F32;
    lookup_global(g->s, &role, &dt);
    if (dtype) *dtype = dt;
    return role;
}

static int int_arg(yt_pickle *P, const yt_pk *v, const char *what, int64_t *out)
{
    if (!v || (v->kind != YT_PK_INT && v->kind != YT_PK_BOOL)) return fail(P, "%s is not an integer", what);
    *out = v->i;
    return 0;
}

static int rebuild_tensor(yt_pickle *P, const yt_pk *args)
{
    if (args->n < 4) return fail(P, "_rebuild_tensor_v2 with %zu arguments", args->n);
    const yt_pk *storage = args->items[0], *size = args->items[2], *stride = args->items[3];
    if (storage->kind != YT_PK_STORAGE)
        return fail(P, "_rebuild_tensor_v2 of a %s, not a storage", yt_pk_kind_name(storage->kind));
    if (size->kind != YT_PK_TUPLE || stride->kind != YT_PK_TUPLE || size->n != stride->n)
        return fail(P, "_rebuild_tensor_v2: size and stride must be tuples of one length");
    if (size->n > YT_MAX_DIMS) return fail(P, "tensor of rank %zu (at most %d)", size->n, YT_MAX_DIMS);
    yt_pk *t = new_value(P, YT_PK_TENSOR);
    if (!t || add_item(P, t, (yt_pk *)storage) < 0) return -1;
    t->storage_dtype = storage->storage_dtype;
    t->ndim = (int)size->n;
    if (int_arg(P, args->items[1], "storage offset", &t->offset) < 0) return -1;
    const int64_t limit = (int64_t)1 << 40;
    if (t->offset < 0 || t->offset > limit) return fail(P, "storage offset %lld out of range", (long long)t->offset);
    int64_t extent = 1, empty = 0; /* last element + 1 */
    for (int d = 0; d < t->ndim; d++) {
        if (int_arg(P, size->items[d], "tensor size", &t->shape[d]) < 0 ||
            int_arg(P, stride->items[d], "tensor stride", &t->stride[d]) < 0)
            return -1;
        if (t->shape[d] < 0 || t->shape[d] > limit || t->stride[d] < 0 || t->stride[d] > limit)
            return fail(P, "tensor size %lld / stride %lld out of range", (long long)t->shape[d],
                        (long long)t->stride[d]);
        if (t->shape[d] == 0)
            empty = 1;
        else
            extent += (t->shape[d] - 1) * t->stride[d];
        if (extent > limit) return fail(P, "tensor extent above 2^40 elements");
    }
    extent = empty ? 0 : extent + t->offset;
    if (extent > storage->i)
        return fail(P, "tensor needs %lld elements of storage '%s' which has %lld", (long long)extent, storage->s,
                    (long long)storage->i);
    return push(P, t);
}

static int ordered_dict(yt_pickle *P, const yt_pk *args)
{
    yt_pk *d = new_value(P, YT_PK_DICT);
    if (!d) return -1;
    if (args->n >= 1 && (args->items[0]->kind == YT_PK_LIST || args->items[0]->kind == YT_PK_TUPLE)) {
        const yt_pk *pairs = args->items[0];
        for (size_t k = 0; k < pairs->n; k++) {
            const yt_pk *kv = pairs->items[k];
            if ((kv->kind != YT_PK_TUPLE && kv->kind != YT_PK_LIST) || kv->n != 2)
                return fail(P, "OrderedDict item %zu is not a pair", k);
            if (add_item(P, d, kv->items[0]) < 0 || add_item(P, d, kv->items[1]) < 0) return -1;
        }
    }
    return push(P, d);
}

static int copy_sequence(yt_pickle *P, const yt_pk *src, yt_pk_kind kind, const char *what)
{
    if (src->kind != YT_PK_LIST && src->kind != YT_PK_TUPLE)
        return fail(P, "%s of a %s", what, yt_pk_kind_name(src->kind));
    yt_pk *v = new_value(P, kind);
    if (!v) return -1;
    for (size_t k = 0; k < src->n; k++)
        if (add_item(P, v, src->items[k]) < 0) return -1;
    return push(P, v);
}

/* _codecs.encode(text, 'latin1'): how numpy's pickles carry raw bytes in protocol 2. */
static int encode_latin1(yt_pickle *P, const yt_pk *args)
{
    if (args->n != 2 || args->items[0]->kind != YT_PK_STR || !yt_pk_is_str(args->items[1], "latin1"))
        return fail(P, "_codecs.encode other than (text, 'latin1')");
    const yt_pk *text = args->items[0];
    yt_pk *b = new_string(P, YT_PK_BYTES, "", 0);
    if (!b) return -1;
    char *out = realloc(b->s, text->len + 1);
    if (!out) return fail(P, "out of memory");
    b->s = out;
    size_t n = 0;
    for (size_t k = 0; k < text->len; k++) {
        unsigned char c = (unsigned char)text->s[k];
        if (c < 0x80)
            out[n++] = (char)c;
        else if ((c & 0xE0) == 0xC0 && c <= 0xC3 && k + 1 < text->len)
            out[n++] = (char)(((c & 0x03) << 6) | ((unsigned char)text->s[++k] & 0x3F));
        else
            return fail(P, "_codecs.encode: text is not latin-1");
    }
    out[n] = '\0';
    b->len = n;
    return push(P, b);
}

static int new_object(yt_pickle *P, const yt_pk *cls, yt_pk *args)
{
    yt_pk *o = new_string(P, YT_PK_OBJECT, cls->s, cls->len);
    yt_pk *state = new_value(P, YT_PK_NONE);
    if (!o || !state || add_item(P, o, args) < 0 || add_item(P, o, state) < 0) return -1;
    return push(P, o);
}

static int op_reduce(yt_pickle *P)
{
    yt_pk *args = pop(P), *fn = args ? pop(P) : NULL;
    if (!fn) return -1;
    if (fn->kind != YT_PK_GLOBAL) return fail(P, "REDUCE of a %s, not a global", yt_pk_kind_name(fn->kind));
    if (args->kind != YT_PK_TUPLE)
        return fail(P, "REDUCE arguments are a %s, not a tuple", yt_pk_kind_name(args->kind));
    switch (role_of(fn, NULL)) {
    case ROLE_REBUILD_TENSOR:
        return rebuild_tensor(P, args);
    case ROLE_REBUILD_PARAMETER:
        if (args->n < 1 || args->items[0]->kind != YT_PK_TENSOR) return fail(P, "_rebuild_parameter of a non-tensor");
        return push(P, args->items[0]);
    case ROLE_ORDERED_DICT:
        return ordered_dict(P, args);
    case ROLE_SET:
        if (args->n == 0) return push(P, new_value(P, YT_PK_LIST));
        return copy_sequence(P, args->items[0], YT_PK_LIST, "set");
    case ROLE_SIZE:
        if (args->n == 0) return push(P, new_value(P, YT_PK_TUPLE));
        return copy_sequence(P, args->items[0], YT_PK_TUPLE, "torch.Size");
    case ROLE_DEVICE:
        if (args->n < 1 || args->items[0]->kind != YT_PK_STR) return fail(P, "torch.device of a non-string");
        return push(P, args->items[0]);
    case ROLE_ENCODE:
        return encode_latin1(P, args);
    case ROLE_STORAGE:
        return fail(P, "%s called outside a persistent id", fn->s);
    case ROLE_CLASS:
        return new_object(P, fn, args);
    }
    return fail(P, "unreachable");
}

static int op_newobj(yt_pickle *P, int with_kwargs)
{
    if (with_kwargs && !pop(P)) return -1;
    yt_pk *args = pop(P), *cls = args ? pop(P) : NULL;
    if (!cls) return -1;
    global_role role = cls->kind == YT_PK_GLOBAL ? role_of(cls, NULL) : ROLE_STORAGE;
    if (role != ROLE_CLASS && role != ROLE_ORDERED_DICT)
        return fail(P, "NEWOBJ of %s", cls->kind == YT_PK_GLOBAL ? cls->s : yt_pk_kind_name(cls->kind));
    if (args->kind != YT_PK_TUPLE) return fail(P, "NEWOBJ arguments are not a tuple");
    if (role == ROLE_ORDERED_DICT) return ordered_dict(P, args);
    return new_object(P, cls, args);
}

static int op_build(yt_pickle *P)
{
    yt_pk *state = pop(P), *obj = state ? top(P) : NULL;
    if (!obj) return -1;
    if (obj->kind == YT_PK_DICT) return 0; /* attributes of an OrderedDict (e.g. _metadata): not needed */
    if (obj->kind != YT_PK_OBJECT) return fail(P, "BUILD of a %s", yt_pk_kind_name(obj->kind));
    obj->items[1] = state;
    return 0;
}

static int op_persid(yt_pickle *P)
{
    yt_pk *pid = pop(P);
    if (!pid) return -1;
    if (pid->kind != YT_PK_TUPLE || pid->n < 5 || !yt_pk_is_str(pid->items[0], "storage"))
        return fail(P, "persistent id other than ('storage', type, key, location, numel)");
    const yt_pk *type = pid->items[1], *key = pid->items[2];
    yt_pk_dtype dtype;
    if (type->kind != YT_PK_GLOBAL || role_of(type, &dtype) != ROLE_STORAGE)
        return fail(P, "persistent id with storage type %s",
                    type->kind == YT_PK_GLOBAL ? type->s : yt_pk_kind_name(type->kind));
    if (key->kind != YT_PK_STR || key->len == 0 || key->len > 64) return fail(P, "storage key is not a short string");
    for (size_t k = 0; k < key->len; k++)
        if (!(key->s[k] >= '0' && key->s[k] <= '9') && !(key->s[k] >= 'a' && key->s[k] <= 'z') &&
            !(key->s[k] >= 'A' && key->s[k] <= 'Z') && key->s[k] != '_')
            return fail(P, "storage key '%s' has characters other than [A-Za-z0-9_]", key->s);
    int64_t numel = 0;
    if (int_arg(P, pid->items[4], "storage size", &numel) < 0) return -1;
    if (numel < 0 || numel > ((int64_t)1 << 40)) return fail(P, "storage size %lld out of range", (long long)numel);
    yt_pk *s = new_string(P, YT_PK_STORAGE, key->s, key->len);
    if (!s) return -1;
    s->storage_dtype = dtype;
    s->i = numel;
    return push(P, s);
}

/* ---- collections ------------------------------------------------------------------------------------------------ */

static int push_tuple_of(yt_pickle *P, size_t first)
{
    yt_pk *t = new_value(P, YT_PK_TUPLE);
    if (!t) return -1;
    for (size_t k = first; k < P->sp; k++)
        if (add_item(P, t, P->stack[k]) < 0) return -1;
    P->sp = first;
    return push(P, t);
}

static int push_last_n_as_tuple(yt_pickle *P, size_t n)
{
    if (P->sp < stack_floor(P) + n) return fail(P, "stack underflow");
    return push_tuple_of(P, P->sp - n);
}

static int extend_from(yt_pickle *P, size_t first, yt_pk *target, int pairs)
{
    size_t count = P->sp - first;
    if (pairs && count % 2) return fail(P, "SETITEMS with an odd number of items");
    for (size_t k = first; k < P->sp; k++)
        if (add_item(P, target, P->stack[k]) < 0) return -1;
    P->sp = first;
    return 0;
}

/* APPENDS / SETITEMS / ADDITEMS: the target sits just below the mark. */
static int op_extend(yt_pickle *P, yt_pk_kind want, int pairs, const char *op)
{
    size_t first = 0;
    if (pop_mark(P, &first) < 0) return -1;
    if (first <= stack_floor(P)) return fail(P, "%s without a target", op);
    yt_pk *target = P->stack[first - 1];
    if (target->kind != want) return fail(P, "%s on a %s", op, yt_pk_kind_name(target->kind));
    return extend_from(P, first, target, pairs);
}

static int op_append_one(yt_pickle *P, int pairs)
{
    size_t n = pairs ? 2 : 1;
    if (P->sp < stack_floor(P) + n + 1) return fail(P, "stack underflow");
    yt_pk *target = P->stack[P->sp - n - 1];
    if (target->kind != (pairs ? YT_PK_DICT : YT_PK_LIST))
        return fail(P, "%s on a %s", pairs ? "SETITEM" : "APPEND", yt_pk_kind_name(target->kind));
    return extend_from(P, P->sp - n, target, pairs);
}

static int push_collection_from_mark(yt_pickle *P, yt_pk_kind kind)
{
    size_t first = 0;
    if (pop_mark(P, &first) < 0) return -1;
    if (kind == YT_PK_DICT && (P->sp - first) % 2) return fail(P, "DICT with an odd number of items");
    yt_pk *v = new_value(P, kind);
    if (!v) return -1;
    if (extend_from(P, first, v, 0) < 0) return -1;
    return push(P, v);
}

/* ---- the interpreter loop ------------------------------------------------------------------------------------------
 */

static const char *refused_name(unsigned char op)
{
    for (size_t k = 0; k < sizeof refused_opcodes / sizeof *refused_opcodes; k++)
        if (refused_opcodes[k].code == op) return refused_opcodes[k].name;
    return "unknown";
}

static int step(yt_pickle *P, unsigned char op)
{
    switch (op) {
    case 0x80: /* PROTO */
        if (need(P, 1) < 0) return -1;
        if (P->data[P->pos] > 5) return fail(P, "pickle protocol %d (at most 5)", P->data[P->pos]);
        P->pos++;
        return 0;
    case 0x95: /* FRAME: a length hint */
        if (need(P, 8) < 0) return -1;
        P->pos += 8;
        return 0;
    case '(':
        return push_mark(P);
    case '0':
        return pop(P) ? 0 : -1;
    case '1': {
        size_t first = 0;
        if (pop_mark(P, &first) < 0) return -1;
        P->sp = first;
        return 0;
    }
    case '2': {
        yt_pk *v = top(P);
        return v ? push(P, v) : -1;
    }
    case 'N':
        return push(P, new_value(P, YT_PK_NONE));
    case 0x88:
    case 0x89: {
        yt_pk *v = new_value(P, YT_PK_BOOL);
        if (v) v->i = op == 0x88;
        return push(P, v);
    }
    case 'J':
        if (need(P, 4) < 0) return -1;
        return push_int(P, (int32_t)(uint32_t)read_le(P, 4));
    case 'K':
        if (need(P, 1) < 0) return -1;
        return push_int(P, (int64_t)read_le(P, 1));
    case 'M':
        if (need(P, 2) < 0) return -1;
        return push_int(P, (int64_t)read_le(P, 2));
    case 0x8a:
        return push_long(P, 1);
    case 0x8b:
        return push_long(P, 4);
    case 'G':
        return push_float(P);
    case 'X':
        return push_counted(P, 4, YT_PK_STR);
    case 0x8c:
        return push_counted(P, 1, YT_PK_STR);
    case 0x8d:
        return push_counted(P, 8, YT_PK_STR);
    case 'T':
        return push_counted(P, 4, YT_PK_STR);
    case 'U':
        return push_counted(P, 1, YT_PK_STR);
    case 'B':
        return push_counted(P, 4, YT_PK_BYTES);
    case 'C':
        return push_counted(P, 1, YT_PK_BYTES);
    case 0x8e:
        return push_counted(P, 8, YT_PK_BYTES);
    case 0x96:
        return push_counted(P, 8, YT_PK_BYTES);
    case ')':
        return push(P, new_value(P, YT_PK_TUPLE));
    case 't': {
        size_t first = 0;
        if (pop_mark(P, &first) < 0) return -1;
        return push_tuple_of(P, first);
    }
    case 0x85:
        return push_last_n_as_tuple(P, 1);
    case 0x86:
        return push_last_n_as_tuple(P, 2);
    case 0x87:
        return push_last_n_as_tuple(P, 3);
    case ']':
        return push(P, new_value(P, YT_PK_LIST));
    case 'a':
        return op_append_one(P, 0);
    case 'e':
        return op_extend(P, YT_PK_LIST, 0, "APPENDS");
    case 'l':
        return push_collection_from_mark(P, YT_PK_LIST);
    case '}':
        return push(P, new_value(P, YT_PK_DICT));
    case 'd':
        return push_collection_from_mark(P, YT_PK_DICT);
    case 's':
        return op_append_one(P, 1);
    case 'u':
        return op_extend(P, YT_PK_DICT, 1, "SETITEMS");
    case 0x8f:
        return push(P, new_value(P, YT_PK_LIST)); /* EMPTY_SET */
    case 0x90:
        return op_extend(P, YT_PK_LIST, 0, "ADDITEMS");
    case 0x91:
        return push_collection_from_mark(P, YT_PK_LIST); /* FROZENSET */
    case 'h':
        if (need(P, 1) < 0) return -1;
        return memo_get(P, read_le(P, 1));
    case 'j':
        if (need(P, 4) < 0) return -1;
        return memo_get(P, read_le(P, 4));
    case 'q':
        if (need(P, 1) < 0) return -1;
        return memo_put(P, read_le(P, 1));
    case 'r':
        if (need(P, 4) < 0) return -1;
        return memo_put(P, read_le(P, 4));
    case 0x94:
        return memo_put(P, P->n_memo);
    case 'c': {
        const char *module, *name;
        size_t mlen, nlen;
        if (read_line(P, &module, &mlen) < 0 || read_line(P, &name, &nlen) < 0) return -1;
        return push_global(P, module, mlen, name, nlen);
    }
    case 0x93: {
        yt_pk *name = pop(P), *module = name ? pop(P) : NULL;
        if (!module) return -1;
        if (name->kind != YT_PK_STR || module->kind != YT_PK_STR) return fail(P, "STACK_GLOBAL of non-strings");
        return push_global(P, module->s, module->len, name->s, name->len);
    }
    case 'R':
        return op_reduce(P);
    case 0x81:
        return op_newobj(P, 0);
    case 0x92:
        return op_newobj(P, 1);
    case 'b':
        return op_build(P);
    case 'Q':
        return op_persid(P);
    default:
        return fail(P, "opcode %s (0x%02x) is not supported", refused_name(op), op);
    }
}

static int run(yt_pickle *P)
{
    while (P->pos < P->size) {
        P->op_pos = P->pos;
        unsigned char op = P->data[P->pos++];
        if (op == '.') { /* STOP */
            P->root = pop(P);
            return P->root ? 0 : -1;
        }
        if (step(P, op) < 0) return -1;
    }
    P->op_pos = P->pos;
    return fail(P, "truncated (no STOP opcode)");
}

yt_pickle *yt_pickle_load(const void *data, size_t size, const char *name)
{
    yt_pickle *P = calloc(1, sizeof *P);
    if (!P) {
        yt_error("%s: out of memory", name);
        return NULL;
    }
    P->data = data;
    P->size = size;
    P->name = name;
    if (run(P) < 0) {
        yt_pickle_free(P);
        return NULL;
    }
    free(P->stack);
    free(P->marks);
    free(P->memo);
    P->stack = NULL;
    P->marks = NULL;
    P->memo = NULL;
    P->name = NULL; /* borrowed: only valid during the load */
    return P;
}

const yt_pk *yt_pickle_root(const yt_pickle *p) { return p->root; }

void yt_pickle_free(yt_pickle *P)
{
    if (!P) return;
    for (size_t k = 0; k < P->n_all; k++) {
        free(P->all[k]->s);
        free(P->all[k]->items);
        free(P->all[k]);
    }
    free(P->all);
    free(P->stack);
    free(P->marks);
    free(P->memo);
    free(P);
}

/* ---- lookups -------------------------------------------------------------------------------------------------------
 */

int yt_pk_is_str(const yt_pk *v, const char *s)
{
    return v && v->kind == YT_PK_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

int yt_pk_numpy_scalar(const yt_pk *v, double *f, int64_t *i, int *is_int)
{
    if (!v || v->kind != YT_PK_OBJECT || strcmp(v->s, "numpy.core.multiarray.scalar") != 0) return 0;
    const yt_pk *args = v->items[0];
    if (args->n != 2 || args->items[1]->kind != YT_PK_BYTES) return 0;
    const yt_pk *dtype = args->items[0], *raw = args->items[1];
    if (dtype->kind != YT_PK_OBJECT || strcmp(dtype->s, "numpy.dtype") != 0) return 0;
    const yt_pk *dargs = dtype->items[0], *state = dtype->items[1];
    if (dargs->n < 1 || dargs->items[0]->kind != YT_PK_STR || dargs->items[0]->len != 2) return 0;
    /* the BUILD state (version, byte order, ...): '<' little-endian, '|' not applicable (one byte) */
    if (state->kind != YT_PK_TUPLE || state->n < 2 ||
        !(yt_pk_is_str(state->items[1], "<") || yt_pk_is_str(state->items[1], "|")))
        return 0;
    char kind = dargs->items[0]->s[0];
    size_t size = (size_t)(dargs->items[0]->s[1] - '0');
    if (raw->len != size || !(size == 1 || size == 2 || size == 4 || size == 8)) return 0;
    uint8_t b[8] = {0};
    memcpy(b, raw->s, size);
    uint64_t u = 0;
    for (size_t k = 0; k < size; k++) u |= (uint64_t)b[k] << (8 * k);
    switch (kind) {
    case 'f':
        if (size == 2)
            *f = yt_f16_to_f32((uint16_t)u);
        else if (size == 4) {
            float x;
            uint32_t w = (uint32_t)u;
            memcpy(&x, &w, 4);
            *f = x;
        } else if (size == 8)
            memcpy(f, &u, 8);
        else
            return 0;
        *is_int = 0;
        return 1;
    case 'i': /* sign-extend */
        *i = size == 8 ? (int64_t)u : (int64_t)(u ^ (1ull << (8 * size - 1))) - (int64_t)(1ull << (8 * size - 1));
        break;
    case 'u':
        if (size == 8 && u > INT64_MAX) return 0;
        *i = (int64_t)u;
        break;
    case 'b':
        if (size != 1) return 0;
        *i = u != 0;
        break;
    default:
        return 0;
    }
    *f = (double)*i;
    *is_int = 1;
    return 1;
}

const yt_pk *yt_pk_dict_get(const yt_pk *dict, const char *key)
{
    if (!dict || dict->kind != YT_PK_DICT) return NULL;
    for (size_t k = dict->n; k >= 2; k -= 2) /* the last assignment wins */
        if (yt_pk_is_str(dict->items[k - 2], key)) return dict->items[k - 1];
    return NULL;
}

const yt_pk *yt_pk_attr(const yt_pk *obj, const char *key)
{
    if (!obj || obj->kind != YT_PK_OBJECT) return NULL;
    const yt_pk *state = obj->items[1];
    if (state->kind == YT_PK_TUPLE && state->n == 2) state = state->items[0];
    return yt_pk_dict_get(state, key);
}

const char *yt_pk_kind_name(yt_pk_kind k)
{
    static const char *const names[] = {"None", "bool", "int",    "float",  "str",     "bytes",  "tuple",
                                        "list", "dict", "global", "object", "storage", "tensor", "mark"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

size_t yt_pk_dtype_size(yt_pk_dtype dt)
{
    static const size_t sizes[] = {2, 4, 8, 8, 4, 2, 1, 1, 1};
    return sizes[dt];
}
