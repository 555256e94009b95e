/* `.pt` checkpoints: zip container + restricted pickle + storages (see pt.h). */
#include "io/pt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/zipread.h"

struct yt_pt {
    yt_zip *zip;
    char *prefix; /* "<name>/" of the members, may be "" */
    yt_pickle *pickle;
};

/* The member that ends in "data.pkl" at the top level or one directory down. */
static int find_pickle(yt_pt *pt, char **member)
{
    int64_t n = yt_zip_count(pt->zip);
    for (int64_t i = 0; i < n; i++) {
        const char *name = yt_zip_member_name(pt->zip, i);
        size_t len = strlen(name);
        if (len < 8 || strcmp(name + len - 8, "data.pkl")) continue;
        const char *slash = strchr(name, '/');
        if (len > 8 && (!slash || slash != name + len - 9)) continue; /* exactly "<prefix>/data.pkl" */
        pt->prefix = strndup(name, len - 8);
        *member = strdup(name);
        if (!pt->prefix || !*member) return yt_error("%s: out of memory", yt_zip_name(pt->zip));
        return 0;
    }
    return yt_error("%s: no data.pkl member: not a torch.save checkpoint", yt_zip_name(pt->zip));
}

/* torch writes `<prefix>byteorder` ("little") since 1.13; older files have none and are little-endian. */
static int check_byteorder(yt_pt *pt)
{
    char member[512];
    snprintf(member, sizeof member, "%sbyteorder", pt->prefix);
    if (yt_zip_find(pt->zip, member) < 0) return 0;
    if (yt_zip_member_size(pt->zip, member) > 16)
        return yt_error("%s: byteorder member too large", yt_zip_name(pt->zip));
    size_t n;
    char *text = yt_zip_read(pt->zip, member, &n);
    if (!text) return -1;
    int little = n >= 6 && !memcmp(text, "little", 6);
    free(text);
    return little ? 0 : yt_error("%s: big-endian checkpoint (not supported)", yt_zip_name(pt->zip));
}

static yt_pt *finish_open(yt_zip *zip)
{
    if (!zip) return NULL;
    yt_pt *pt = calloc(1, sizeof *pt);
    if (!pt) {
        yt_zip_close(zip);
        yt_error("out of memory");
        return NULL;
    }
    pt->zip = zip;
    char *member = NULL;
    size_t size = 0;
    void *bytes = NULL;
    if (find_pickle(pt, &member) < 0 || check_byteorder(pt) < 0 || !(bytes = yt_zip_read(zip, member, &size)) ||
        !(pt->pickle = yt_pickle_load(bytes, size, yt_zip_name(zip)))) {
        free(member);
        free(bytes);
        yt_pt_close(pt);
        return NULL;
    }
    free(member);
    free(bytes); /* the values own copies of everything they need */
    return pt;
}

yt_pt *yt_pt_open(const char *path) { return finish_open(yt_zip_open_file(path)); }

yt_pt *yt_pt_open_buffer(const void *data, size_t size, const char *name)
{
    return finish_open(yt_zip_open_buffer(data, size, name));
}

const yt_pk *yt_pt_root(const yt_pt *pt) { return yt_pickle_root(pt->pickle); }
const char *yt_pt_name(const yt_pt *pt) { return yt_zip_name(pt->zip); }

void yt_pt_close(yt_pt *pt)
{
    if (!pt) return;
    yt_pickle_free(pt->pickle);
    yt_zip_close(pt->zip);
    free(pt->prefix);
    free(pt);
}

/* ---- tensors ------------------------------------------------------------------------------------------------------
 */

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    float v;
    if (exponent == 0)
        v = ldexpf((float)mantissa, -24);
    else if (exponent == 31)
        v = mantissa ? NAN : INFINITY;
    else
        v = ldexpf((float)(mantissa | 0x400), exponent - 25);
    return sign ? -v : v;
}

static yt_dtype target_dtype(yt_pk_dtype dt)
{
    switch (dt) {
    case YT_PK_F16:
    case YT_PK_F32:
        return YT_F32;
    case YT_PK_F64:
        return YT_F64;
    case YT_PK_U8:
    case YT_PK_BOOLS:
        return YT_U8;
    default:
        return YT_I64;
    }
}

/* Element `src` of a little-endian storage converted into element `k` of a contiguous tensor. */
static void convert_element(const unsigned char *src, yt_pk_dtype dt, yt_tensor *out, int64_t k)
{
    switch (dt) {
    case YT_PK_F16:
        yt_f32(out)[k] = half_to_float((uint16_t)(src[0] | src[1] << 8));
        break;
    case YT_PK_F32:
        memcpy(&yt_f32(out)[k], src, 4);
        break;
    case YT_PK_F64:
        memcpy(&yt_f64(out)[k], src, 8);
        break;
    case YT_PK_I64:
        memcpy(&yt_i64(out)[k], src, 8);
        break;
    case YT_PK_I32: {
        int32_t v;
        memcpy(&v, src, 4);
        yt_i64(out)[k] = v;
        break;
    }
    case YT_PK_I16: {
        int16_t v;
        memcpy(&v, src, 2);
        yt_i64(out)[k] = v;
        break;
    }
    case YT_PK_I8:
        yt_i64(out)[k] = (int8_t)src[0];
        break;
    case YT_PK_U8:
        yt_u8(out)[k] = src[0];
        break;
    case YT_PK_BOOLS:
        yt_u8(out)[k] = src[0] != 0;
        break;
    }
}

yt_tensor *yt_pt_tensor(yt_pt *pt, const yt_pk *t)
{
    if (!t || t->kind != YT_PK_TENSOR) {
        yt_error("%s: not a tensor", yt_pt_name(pt));
        return NULL;
    }
    const yt_pk *storage = t->items[0];
    size_t esize = yt_pk_dtype_size(t->storage_dtype);
    char member[512];
    snprintf(member, sizeof member, "%sdata/%s", pt->prefix, storage->s);
    int64_t declared = yt_zip_member_size(pt->zip, member);
    if (declared < 0) return NULL;
    if ((uint64_t)declared < (uint64_t)storage->i * esize) {
        yt_error("%s: storage '%s' has %lld bytes but claims %lld elements of %zu bytes", yt_pt_name(pt), storage->s,
                 (long long)declared, (long long)storage->i, esize);
        return NULL;
    }
    size_t nbytes;
    unsigned char *bytes = yt_zip_read(pt->zip, member, &nbytes);
    if (!bytes) return NULL;
    yt_tensor *out = yt_tensor_empty(target_dtype(t->storage_dtype), t->ndim, t->shape);
    if (!out) {
        free(bytes);
        return NULL;
    }
    int64_t n = yt_numel(out), index[YT_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        int64_t at = t->offset; /* bounded by the extent check of the pickle reader and the size check above */
        for (int d = 0; d < t->ndim; d++) at += index[d] * t->stride[d];
        convert_element(bytes + (size_t)at * esize, t->storage_dtype, out, k);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++index[d] < t->shape[d]) break;
            index[d] = 0;
        }
    }
    free(bytes);
    return out;
}

/* ---- state dicts ------------------------------------------------------------------------------------------------- */

int yt_pt_is_module(const yt_pk *v) { return yt_pk_attr(v, "_modules") != NULL; }

typedef struct {
    yt_pt *pt;
    yt_tensor_file *out;
    size_t cap;
    int64_t visits;
} walk;

static int add_tensor(walk *w, const char *prefix, const yt_pk *key, const yt_pk *value)
{
    if (value->kind != YT_PK_TENSOR)
        return yt_error("%s: state-dict entry %s%s is a %s, not a tensor", yt_pt_name(w->pt), prefix, key->s,
                        yt_pk_kind_name(value->kind));
    if ((size_t)w->out->count >= w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        yt_named_tensor *items = realloc(w->out->items, cap * sizeof *items);
        if (!items) return yt_error("out of memory");
        w->out->items = items;
        w->cap = cap;
    }
    size_t len = strlen(prefix) + key->len + 1;
    char *name = malloc(len);
    if (!name) return yt_error("out of memory");
    snprintf(name, len, "%s%s", prefix, key->s);
    yt_tensor *t = yt_pt_tensor(w->pt, value);
    if (!t) {
        yt_error_prefix("state-dict entry %s: ", name);
        free(name);
        return -1;
    }
    w->out->items[w->out->count].name = name;
    w->out->items[w->out->count].tensor = t;
    w->out->count++;
    return 0;
}

static int in_list(const yt_pk *list, const yt_pk *key)
{
    if (!list || list->kind != YT_PK_LIST) return 0;
    for (size_t k = 0; k < list->n; k++)
        if (list->items[k]->kind == YT_PK_STR && list->items[k]->len == key->len &&
            !memcmp(list->items[k]->s, key->s, key->len))
            return 1;
    return 0;
}

static const yt_pk *module_dict(walk *w, const yt_pk *m, const char *prefix, const char *attr)
{
    const yt_pk *d = yt_pk_attr(m, attr);
    if (!d || d->kind != YT_PK_DICT)
        yt_error("%s: module '%s' (%s) has no %s dict", yt_pt_name(w->pt), prefix, m->kind == YT_PK_OBJECT ? m->s : "?",
                 attr);
    return d && d->kind == YT_PK_DICT ? d : NULL;
}

static int walk_module(walk *w, const yt_pk *m, const char *prefix, int depth)
{
    if (depth > YT_PT_MAX_MODULE_DEPTH)
        return yt_error("%s: modules nested deeper than %d (a cycle?) at '%.60s...'", yt_pt_name(w->pt),
                        YT_PT_MAX_MODULE_DEPTH, prefix);
    if (++w->visits > YT_PT_MAX_TENSORS)
        return yt_error("%s: more than %d modules", yt_pt_name(w->pt), YT_PT_MAX_TENSORS);
    const yt_pk *params = module_dict(w, m, prefix, "_parameters");
    const yt_pk *buffers = params ? module_dict(w, m, prefix, "_buffers") : NULL;
    const yt_pk *children = buffers ? module_dict(w, m, prefix, "_modules") : NULL;
    if (!children) return -1;
    const yt_pk *non_persistent = yt_pk_attr(m, "_non_persistent_buffers_set");
    for (size_t k = 0; k + 1 < params->n; k += 2)
        if (params->items[k]->kind != YT_PK_STR)
            return yt_error("%s: parameter name is not a string", yt_pt_name(w->pt));
        else if (params->items[k + 1]->kind != YT_PK_NONE &&
                 add_tensor(w, prefix, params->items[k], params->items[k + 1]) < 0)
            return -1;
    for (size_t k = 0; k + 1 < buffers->n; k += 2)
        if (buffers->items[k]->kind != YT_PK_STR)
            return yt_error("%s: buffer name is not a string", yt_pt_name(w->pt));
        else if (buffers->items[k + 1]->kind != YT_PK_NONE && !in_list(non_persistent, buffers->items[k]) &&
                 add_tensor(w, prefix, buffers->items[k], buffers->items[k + 1]) < 0)
            return -1;
    for (size_t k = 0; k + 1 < children->n; k += 2) {
        const yt_pk *key = children->items[k], *child = children->items[k + 1];
        if (key->kind != YT_PK_STR) return yt_error("%s: module name is not a string", yt_pt_name(w->pt));
        if (child->kind == YT_PK_NONE) continue;
        if (strlen(prefix) + key->len > 4096)
            return yt_error("%s: module names longer than 4096 bytes", yt_pt_name(w->pt));
        char *sub = malloc(strlen(prefix) + key->len + 2);
        if (!sub) return yt_error("out of memory");
        sprintf(sub, "%s%s.", prefix, key->s);
        int rc = walk_module(w, child, sub, depth + 1);
        free(sub);
        if (rc < 0) return -1;
    }
    return 0;
}

int yt_pt_state_dict(yt_pt *pt, const yt_pk *module, yt_tensor_file *out)
{
    memset(out, 0, sizeof *out);
    if (!yt_pt_is_module(module)) return yt_error("%s: not a pickled nn.Module", yt_pt_name(pt));
    walk w = {pt, out, 0, 0};
    if (walk_module(&w, module, "", 0) < 0) {
        yt_tensor_file_free(out);
        return -1;
    }
    return 0;
}
