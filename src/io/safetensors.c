/* safetensors reader/writer with a small bounded JSON parser of our own for the header. */
#include "io/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/half.h"
#include "io/durable.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* ------------------------------------------------------------------------------------------------------------
 * JSON (objects, arrays, strings with escapes, numbers, true/false/null). The tree lives in one array of nodes;
 * children are linked by index. Depth is limited, every allocation is bounded by the header length.
 * ------------------------------------------------------------------------------------------------------------ */

enum { J_NULL, J_BOOL, J_INT, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct {
    int type;
    int first_child; /* -1 if none; for objects children alternate key (J_STR), value */
    int next;        /* next sibling, -1 at the end */
    int count;       /* number of children (objects: number of key/value pairs) */
    int64_t ival;
    double dval;
    char *str;  /* J_STR: NUL-terminated, no embedded NULs (rejected) */
    size_t pos; /* byte offset in the header, for messages */
} jnode;

typedef struct {
    const char *s;
    size_t n, i;
    jnode *nodes;
    int nnodes, cap;
    int depth;
    char err[160];
} jparser;

#define J_MAX_DEPTH 64

static int jfail(jparser *p, const char *msg)
{
    if (!p->err[0]) snprintf(p->err, sizeof p->err, "%s at byte %zu of the header", msg, p->i);
    return -1;
}

static void jskip_ws(jparser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int jnew(jparser *p, int type)
{
    if (p->nnodes == p->cap) {
        int nc = p->cap ? p->cap * 2 : 64;
        jnode *nn = realloc(p->nodes, (size_t)nc * sizeof *nn);
        if (!nn) return jfail(p, "out of memory");
        p->nodes = nn;
        p->cap = nc;
    }
    jnode *j = &p->nodes[p->nnodes];
    memset(j, 0, sizeof *j);
    j->type = type;
    j->first_child = j->next = -1;
    j->pos = p->i;
    return p->nnodes++;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_u4(jparser *p, unsigned *out)
{
    if (p->i + 4 > p->n) return jfail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval((unsigned char)p->s[p->i + k]);
        if (h < 0) return jfail(p, "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    p->i += 4;
    *out = v;
    return 0;
}

static int jparse_string(jparser *p, int *out)
{
    /* at the opening quote; the decoded string is never longer than the raw one */
    size_t start = ++p->i;
    size_t end = start;
    while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->n) return jfail(p, "unterminated string");
    char *buf = malloc(end - start + 1);
    if (!buf) return jfail(p, "out of memory");
    size_t o = 0;
    while (p->i < p->n && p->s[p->i] != '"') {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) {
            free(buf);
            return jfail(p, "control character in string");
        }
        if (c != '\\') {
            buf[o++] = (char)c;
            p->i++;
            continue;
        }
        p->i++;
        if (p->i >= p->n) break;
        char e = p->s[p->i++];
        switch (e) {
        case '"':
            buf[o++] = '"';
            break;
        case '\\':
            buf[o++] = '\\';
            break;
        case '/':
            buf[o++] = '/';
            break;
        case 'b':
            buf[o++] = '\b';
            break;
        case 'f':
            buf[o++] = '\f';
            break;
        case 'n':
            buf[o++] = '\n';
            break;
        case 'r':
            buf[o++] = '\r';
            break;
        case 't':
            buf[o++] = '\t';
            break;
        case 'u': {
            unsigned cp;
            if (read_u4(p, &cp) < 0) {
                free(buf);
                return -1;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                    free(buf);
                    return jfail(p, "unpaired surrogate in \\u escape");
                }
                p->i += 2;
                if (read_u4(p, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    free(buf);
                    return jfail(p, "bad surrogate pair in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(buf);
                return jfail(p, "unpaired surrogate in \\u escape");
            }
            if (cp == 0) {
                free(buf);
                return jfail(p, "NUL character in string");
            }
            /* \uXXXX (6 raw bytes) encodes to at most 3 bytes, a pair (12 raw) to 4: fits */
            if (cp < 0x80)
                buf[o++] = (char)cp;
            else if (cp < 0x800) {
                buf[o++] = (char)(0xC0 | (cp >> 6));
                buf[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                buf[o++] = (char)(0xE0 | (cp >> 12));
                buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[o++] = (char)(0xF0 | (cp >> 18));
                buf[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[o++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            free(buf);
            return jfail(p, "bad escape in string");
        }
    }
    if (p->i >= p->n) {
        free(buf);
        return jfail(p, "unterminated string");
    }
    p->i++; /* closing quote */
    buf[o] = 0;
    int id = jnew(p, J_STR);
    if (id < 0) {
        free(buf);
        return -1;
    }
    p->nodes[id].pos = start - 1;
    p->nodes[id].str = buf;
    *out = id;
    return 0;
}

static int jparse_number(jparser *p, int *out)
{
    size_t start = p->i;
    int is_float = 0;
    if (p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return jfail(p, "bad number");
    if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
        return jfail(p, "leading zero in number");
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (p->i < p->n && p->s[p->i] == '.') {
        is_float = 1;
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return jfail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        is_float = 1;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return jfail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    size_t len = p->i - start;
    if (len > 63) return jfail(p, "number too long");
    char tmp[64];
    memcpy(tmp, p->s + start, len);
    tmp[len] = 0;
    int id = jnew(p, is_float ? J_NUM : J_INT);
    if (id < 0) return -1;
    p->nodes[id].pos = start;
    if (is_float) {
        p->nodes[id].dval = strtod(tmp, NULL);
    } else {
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE) {
            p->nodes[id].type = J_NUM; /* too large for int64: kept as a float, rejected where an int is needed */
            p->nodes[id].dval = strtod(tmp, NULL);
        } else {
            p->nodes[id].ival = v;
            p->nodes[id].dval = (double)v;
        }
    }
    *out = id;
    return 0;
}

static int jparse_value(jparser *p, int *out);

static void jappend(jparser *p, int parent, int *last, int child)
{
    if (*last < 0)
        p->nodes[parent].first_child = child;
    else
        p->nodes[*last].next = child;
    *last = child;
}

static int jparse_container(jparser *p, int *out, int is_obj)
{
    if (++p->depth > J_MAX_DEPTH) return jfail(p, "nesting too deep");
    int id = jnew(p, is_obj ? J_OBJ : J_ARR);
    if (id < 0) return -1;
    p->i++; /* [ or { */
    int last = -1;
    char close = is_obj ? '}' : ']';
    jskip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        *out = id;
        return 0;
    }
    for (;;) {
        jskip_ws(p);
        int child;
        if (is_obj) {
            if (p->i >= p->n || p->s[p->i] != '"') return jfail(p, "expected a string key");
            if (jparse_string(p, &child) < 0) return -1;
            jappend(p, id, &last, child);
            jskip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return jfail(p, "expected ':'");
            p->i++;
        }
        if (jparse_value(p, &child) < 0) return -1;
        jappend(p, id, &last, child);
        p->nodes[id].count++;
        jskip_ws(p);
        if (p->i >= p->n) return jfail(p, is_obj ? "unterminated object" : "unterminated array");
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == close) {
            p->i++;
            break;
        }
        return jfail(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    p->depth--;
    *out = id;
    return 0;
}

static int jparse_literal(jparser *p, const char *word, int type, int bval, int *out)
{
    size_t l = strlen(word);
    if (p->i + l > p->n || memcmp(p->s + p->i, word, l) != 0) return jfail(p, "unexpected character");
    int id = jnew(p, type);
    if (id < 0) return -1;
    p->nodes[id].ival = bval;
    p->i += l;
    *out = id;
    return 0;
}

static int jparse_value(jparser *p, int *out)
{
    jskip_ws(p);
    if (p->i >= p->n) return jfail(p, "unexpected end of header");
    char c = p->s[p->i];
    if (c == '{') return jparse_container(p, out, 1);
    if (c == '[') return jparse_container(p, out, 0);
    if (c == '"') return jparse_string(p, out);
    if (c == '-' || (c >= '0' && c <= '9')) return jparse_number(p, out);
    if (c == 't') return jparse_literal(p, "true", J_BOOL, 1, out);
    if (c == 'f') return jparse_literal(p, "false", J_BOOL, 0, out);
    if (c == 'n') return jparse_literal(p, "null", J_NULL, 0, out);
    return jfail(p, "unexpected character");
}

static void jfree(jparser *p)
{
    for (int k = 0; k < p->nnodes; k++) free(p->nodes[k].str);
    free(p->nodes);
    p->nodes = NULL;
    p->nnodes = p->cap = 0;
}

/* Value of key in object node obj, or -1. */
static int jget(const jparser *p, int obj, const char *key)
{
    for (int k = p->nodes[obj].first_child; k >= 0; k = p->nodes[p->nodes[k].next].next)
        if (strcmp(p->nodes[k].str, key) == 0) return p->nodes[k].next;
    return -1;
}

/* ------------------------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static const char *dtype_to_st(yt_dtype dt);

/* How a tensor is stored in the file. The 16-bit float types load as F32 tensors. */
typedef enum { ST_AS_IS, ST_F16, ST_BF16 } storage;

static int dtype_from_st(const char *s, storage *how)
{
    *how = ST_AS_IS;
    if (strcmp(s, "F32") == 0) return YT_F32;
    if (strcmp(s, "F64") == 0) return YT_F64;
    if (strcmp(s, "I64") == 0) return YT_I64;
    if (strcmp(s, "U8") == 0) return YT_U8;
    *how = strcmp(s, "F16") == 0 ? ST_F16 : strcmp(s, "BF16") == 0 ? ST_BF16 : ST_AS_IS;
    return *how == ST_AS_IS ? -1 : YT_F32;
}

static size_t stored_size(yt_dtype dt, storage how) { return how == ST_AS_IS ? yt_dtype_size(dt) : 2; }

static const char *stored_name(yt_dtype dt, storage how)
{
    if (how == ST_F16) return "F16";
    if (how == ST_BF16) return "BF16";
    return dtype_to_st(dt);
}

static const char *dtype_to_st(yt_dtype dt)
{
    switch (dt) {
    case YT_F32:
        return "F32";
    case YT_F64:
        return "F64";
    case YT_I64:
        return "I64";
    case YT_U8:
        return "U8";
    default:
        return NULL;
    }
}

typedef struct {
    int node;       /* index of the name key node */
    yt_dtype dtype; /* of the tensor in memory */
    storage how;    /* in the file */
    int ndim;
    int64_t shape[YT_MAX_DIMS];
    uint64_t begin, end;
} entry;

static int cmp_entry_begin(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void yt_tensor_file_free(yt_tensor_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->count; i++) {
        free(f->items[i].name);
        if (f->items[i].tensor) yt_tensor_release(f->items[i].tensor);
    }
    free(f->items);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    memset(f, 0, sizeof *f);
}

/* Validates one tensor entry of the header. Returns 0 or -1 with a message (without the file name). */
static int parse_entry(const jparser *p, int key, uint64_t data_size, entry *e)
{
    const char *name = p->nodes[key].str;
    int v = p->nodes[key].next;
    if (p->nodes[v].type != J_OBJ) return yt_error("tensor '%s': header entry is not an object", name);
    int jd = jget(p, v, "dtype"), js = jget(p, v, "shape"), jo = jget(p, v, "data_offsets");
    if (jd < 0 || js < 0 || jo < 0)
        return yt_error("tensor '%s': header entry needs \"dtype\", \"shape\" and \"data_offsets\"", name);
    if (p->nodes[jd].type != J_STR) return yt_error("tensor '%s': dtype is not a string", name);
    int dt = dtype_from_st(p->nodes[jd].str, &e->how);
    if (dt < 0)
        return yt_error("tensor '%s': unsupported dtype '%.32s' (supported: F32, F16, BF16, F64, I64, U8)", name,
                        p->nodes[jd].str);
    e->dtype = (yt_dtype)dt;
    if (p->nodes[js].type != J_ARR) return yt_error("tensor '%s': shape is not an array", name);
    if (p->nodes[js].count > YT_MAX_DIMS)
        return yt_error("tensor '%s': %d dimensions (at most %d supported)", name, p->nodes[js].count, YT_MAX_DIMS);
    e->ndim = 0;
    uint64_t numel = 1;
    int overflow = 0;
    for (int c = p->nodes[js].first_child; c >= 0; c = p->nodes[c].next) {
        if (p->nodes[c].type != J_INT || p->nodes[c].ival < 0)
            return yt_error("tensor '%s': shape entries must be non-negative integers", name);
        uint64_t d = (uint64_t)p->nodes[c].ival;
        if (d && numel > UINT64_MAX / 16 / d)
            overflow = 1;
        else
            numel *= d;
        e->shape[e->ndim++] = (int64_t)d;
    }
    if (overflow) return yt_error("tensor '%s': shape too large", name);
    if (p->nodes[jo].type != J_ARR || p->nodes[jo].count != 2)
        return yt_error("tensor '%s': data_offsets must be [begin, end]", name);
    int b = p->nodes[jo].first_child, en = p->nodes[b].next;
    if (p->nodes[b].type != J_INT || p->nodes[en].type != J_INT || p->nodes[b].ival < 0 || p->nodes[en].ival < 0)
        return yt_error("tensor '%s': data_offsets must be non-negative integers", name);
    e->begin = (uint64_t)p->nodes[b].ival;
    e->end = (uint64_t)p->nodes[en].ival;
    if (e->end < e->begin) return yt_error("tensor '%s': data_offsets end < begin", name);
    if (e->end > data_size)
        return yt_error("tensor '%s': data_offsets [%llu, %llu] beyond the data section (%llu bytes)", name,
                        (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)data_size);
    uint64_t want = numel * stored_size(e->dtype, e->how);
    if (e->end - e->begin != want) {
        char sh[160];
        int o = 0;
        sh[o++] = '[';
        for (int d = 0; d < e->ndim && o < 140; d++)
            o += snprintf(sh + o, sizeof sh - o, "%s%lld", d ? ", " : "", (long long)e->shape[d]);
        snprintf(sh + o, sizeof sh - o, "]");
        return yt_error("tensor '%s': %llu data bytes but %s %s needs %llu", name,
                        (unsigned long long)(e->end - e->begin), stored_name(e->dtype, e->how), sh,
                        (unsigned long long)want);
    }
    return 0;
}

static int load_impl(const char *path, FILE *fp, yt_tensor_file *out, int metadata_only)
{
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) return yt_error("cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode)) return yt_error("not a regular file");
    uint64_t fsize = (uint64_t)st.st_size;
    unsigned char lenb[8];
    if (fsize < 8 || fread(lenb, 1, 8, fp) != 8)
        return yt_error("file too short for a safetensors header (%llu bytes)", (unsigned long long)fsize);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | lenb[k];
    if (hlen > YT_SAFETENSORS_MAX_HEADER)
        return yt_error("header length %llu exceeds the limit of %u bytes", (unsigned long long)hlen,
                        YT_SAFETENSORS_MAX_HEADER);
    if (hlen < 2 || 8 + hlen > fsize)
        return yt_error("header length %llu does not fit the file (%llu bytes)", (unsigned long long)hlen,
                        (unsigned long long)fsize);
    char *hdr = malloc((size_t)hlen + 1);
    if (!hdr) return yt_error("out of memory reading a %llu-byte header", (unsigned long long)hlen);
    if (fread(hdr, 1, (size_t)hlen, fp) != hlen) {
        free(hdr);
        return yt_error("truncated header");
    }
    hdr[hlen] = 0;
    uint64_t data_size = fsize - 8 - hlen;

    jparser p = {.s = hdr, .n = (size_t)hlen};
    int root = -1;
    int rc = jparse_value(&p, &root);
    if (rc == 0) {
        jskip_ws(&p);
        if (p.i != p.n) rc = jfail(&p, "trailing characters after the header object");
    }
    if (rc < 0) {
        yt_error("bad header JSON: %s", p.err);
        jfree(&p);
        free(hdr);
        return -1;
    }
    free(hdr);
    p.s = NULL;
    if (p.nodes[root].type != J_OBJ) {
        jfree(&p);
        return yt_error("header is not a JSON object");
    }

    int npairs = p.nodes[root].count;
    entry *ents = calloc(npairs ? (size_t)npairs : 1, sizeof *ents);
    if (!ents) {
        jfree(&p);
        return yt_error("out of memory");
    }
    int nent = 0, meta = -1;
    rc = 0;
    for (int k = p.nodes[root].first_child; k >= 0 && rc == 0; k = p.nodes[p.nodes[k].next].next) {
        if (strcmp(p.nodes[k].str, "__metadata__") == 0) {
            if (meta >= 0) rc = yt_error("duplicate \"__metadata__\"");
            meta = p.nodes[k].next;
            continue;
        }
        ents[nent].node = k;
        rc = parse_entry(&p, k, data_size, &ents[nent]);
        nent++;
    }
    /* names unique */
    if (rc == 0 && nent > 1) {
        char **names = malloc((size_t)nent * sizeof *names);
        if (!names) rc = yt_error("out of memory");
        for (int k = 0; rc == 0 && k < nent; k++) names[k] = p.nodes[ents[k].node].str;
        if (rc == 0) {
            qsort(names, (size_t)nent, sizeof *names, cmp_str);
            for (int k = 1; k < nent; k++)
                if (strcmp(names[k - 1], names[k]) == 0) {
                    rc = yt_error("duplicate tensor name '%s'", names[k]);
                    break;
                }
        }
        free(names);
    }
    /* offsets non-overlapping */
    if (rc == 0 && nent > 1) {
        entry *sorted = malloc((size_t)nent * sizeof *sorted);
        if (!sorted)
            rc = yt_error("out of memory");
        else {
            memcpy(sorted, ents, (size_t)nent * sizeof *sorted);
            qsort(sorted, (size_t)nent, sizeof *sorted, cmp_entry_begin);
            for (int k = 1; k < nent; k++)
                if (sorted[k].begin < sorted[k - 1].end) {
                    rc = yt_error("tensors '%s' and '%s' overlap in the data section", p.nodes[sorted[k - 1].node].str,
                                  p.nodes[sorted[k].node].str);
                    break;
                }
            free(sorted);
        }
    }
    /* metadata: string -> string */
    if (rc == 0 && meta >= 0) {
        if (p.nodes[meta].type != J_OBJ) rc = yt_error("\"__metadata__\" is not an object");
        int nm = p.nodes[meta].count;
        if (rc == 0 && nm > 0) {
            out->meta_keys = calloc((size_t)nm, sizeof(char *));
            out->meta_values = calloc((size_t)nm, sizeof(char *));
            if (!out->meta_keys || !out->meta_values) rc = yt_error("out of memory");
        }
        for (int k = rc == 0 ? p.nodes[meta].first_child : -1; k >= 0; k = p.nodes[p.nodes[k].next].next) {
            int v = p.nodes[k].next;
            if (p.nodes[v].type != J_STR) {
                rc = yt_error("metadata value of '%s' is not a string", p.nodes[k].str);
                break;
            }
            out->meta_keys[out->n_meta] = xstrdup(p.nodes[k].str);
            out->meta_values[out->n_meta] = xstrdup(p.nodes[v].str);
            out->n_meta++;
            if (!out->meta_keys[out->n_meta - 1] || !out->meta_values[out->n_meta - 1]) {
                rc = yt_error("out of memory");
                break;
            }
        }
    }
    /* data */
    if (metadata_only) nent = 0;
    if (rc == 0 && nent > 0) {
        out->items = calloc((size_t)nent, sizeof *out->items);
        if (!out->items) rc = yt_error("out of memory");
    }
    uint64_t data_start = 8 + hlen;
    for (int k = 0; rc == 0 && k < nent; k++) {
        entry *e = &ents[k];
        yt_named_tensor *it = &out->items[out->count];
        it->name = xstrdup(p.nodes[e->node].str);
        if (!it->name) {
            rc = yt_error("out of memory");
            break;
        }
        out->count++;
        it->tensor = yt_tensor_empty(e->dtype, e->ndim, e->shape);
        if (!it->tensor) {
            rc = yt_error_prefix("tensor '%s': ", it->name);
            break;
        }
        size_t nb = (size_t)(e->end - e->begin);
        /* 16-bit values are read into the upper half of the F32 buffer and widened in place */
        unsigned char *dst = (unsigned char *)yt_data(it->tensor) + (e->how == ST_AS_IS ? 0 : nb);
        if (nb > 0) {
            if (fseeko(fp, (off_t)(data_start + e->begin), SEEK_SET) != 0 || fread(dst, 1, nb, fp) != nb) {
                rc = yt_error("tensor '%s': read failed (file truncated?)", it->name);
                break;
            }
            if (e->how == ST_F16) yt_f16_to_f32_tail(yt_data(it->tensor), nb / 2);
            if (e->how == ST_BF16) yt_bf16_to_f32_tail(yt_data(it->tensor), nb / 2);
        }
    }
    free(ents);
    jfree(&p);
    return rc;
}

static int load_file(const char *path, yt_tensor_file *out, int metadata_only)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return yt_error("cannot open %s: %s", path, strerror(errno));
    int rc = load_impl(path, fp, out, metadata_only);
    fclose(fp);
    if (rc < 0) {
        yt_tensor_file_free(out);
        return yt_error_prefix("%s: ", path);
    }
    return 0;
}

int yt_safetensors_load(const char *path, yt_tensor_file *out) { return load_file(path, out, 0); }

int yt_safetensors_load_metadata(const char *path, yt_tensor_file *out) { return load_file(path, out, 1); }

yt_tensor *yt_tensor_file_get(const yt_tensor_file *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->items[i].name, name) == 0) return f->items[i].tensor;
    return NULL;
}

const char *yt_tensor_file_meta(const yt_tensor_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------
 * Saving
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char tmp[8];
        switch (*c) {
        case '"':
            sb_add(b, "\\\"", 2);
            break;
        case '\\':
            sb_add(b, "\\\\", 2);
            break;
        case '\n':
            sb_add(b, "\\n", 2);
            break;
        case '\r':
            sb_add(b, "\\r", 2);
            break;
        case '\t':
            sb_add(b, "\\t", 2);
            break;
        default:
            if (*c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", *c);
                sb_add(b, tmp, 6);
            } else {
                sb_add(b, (const char *)c, 1);
            }
        }
    }
    sb_add(b, "\"", 1);
}

/* Writes t's elements (contiguous or not); F32 tensors as F16 when half. 1 on success, 0 on a write error. */
static int write_tensor(FILE *fp, yt_tensor *t, int half, const char *name, int *oom)
{
    size_t n = (size_t)yt_numel(t);
    if (n == 0) return 1;
    yt_tensor *c = yt_is_contiguous(t) ? t : yt_tensor_clone(t);
    if (!c) {
        *oom = 1;
        yt_error_prefix("tensor '%s': ", name);
        return 0;
    }
    int ok;
    if (half) {
        uint16_t *h = malloc(n * sizeof *h);
        if (!h) {
            *oom = 1;
            yt_error("tensor '%s': out of memory converting to F16", name);
            ok = 0;
        } else {
            yt_f32_to_f16_n(yt_data(c), h, n);
            ok = fwrite(h, sizeof *h, n, fp) == n;
            free(h);
        }
    } else {
        size_t nb = n * yt_dtype_size(c->dtype);
        ok = fwrite(yt_data(c), 1, nb, fp) == nb;
    }
    if (c != t) yt_tensor_release(c);
    return ok;
}

static int save_impl(const char *path, const char *tmp, int n, const char *const *names, yt_tensor *const *tensors,
                     int n_meta, const char *const *meta_keys, const char *const *meta_values, int f32_as_f16)
{
    if (n < 0 || n_meta < 0) return yt_error("negative tensor or metadata count");
    for (int i = 0; i < n; i++) {
        if (!names[i] || !names[i][0]) return yt_error("tensor %d has an empty name", i + 1);
        if (strcmp(names[i], "__metadata__") == 0) return yt_error("'__metadata__' is not a valid tensor name");
        if (!tensors[i]) return yt_error("tensor '%s' is NULL", names[i]);
        if (yt_tensor_is_released(tensors[i])) return yt_error("tensor '%s' was released", names[i]);
        if (!dtype_to_st(tensors[i]->dtype)) return yt_error("tensor '%s' has an unsupported dtype", names[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) return yt_error("duplicate tensor name '%s'", names[i]);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_values[i]) return yt_error("metadata entry %d is NULL", i + 1);
        for (int j = 0; j < i; j++)
            if (strcmp(meta_keys[i], meta_keys[j]) == 0) return yt_error("duplicate metadata key '%s'", meta_keys[i]);
    }

    sbuf h = {0};
    uint64_t off = 0;
    char num[64];
    sb_str(&h, "{\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
        if (i) sb_str(&h, ",");
        sb_json_string(&h, meta_keys[i]);
        sb_str(&h, ":");
        sb_json_string(&h, meta_values[i]);
    }
    sb_str(&h, "}");
    for (int i = 0; i < n; i++) {
        const yt_tensor *t = tensors[i];
        sb_str(&h, ",");
        sb_json_string(&h, names[i]);
        sb_str(&h, ":{\"dtype\":\"");
        storage how = f32_as_f16 && t->dtype == YT_F32 ? ST_F16 : ST_AS_IS;
        sb_str(&h, stored_name(t->dtype, how));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            sb_str(&h, num);
        }
        uint64_t nb = (uint64_t)yt_numel(t) * stored_size(t->dtype, how);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + nb));
        sb_str(&h, num);
        off += nb;
    }
    sb_str(&h, "}");
    while ((8 + h.n) % 8) sb_add(&h, " ", 1);
    if (h.oom) {
        free(h.s);
        return yt_error("out of memory building the header");
    }

    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(h.s);
        return yt_error("cannot create %s: %s", tmp, strerror(errno));
    }
    unsigned char lenb[8];
    uint64_t hl = h.n;
    for (int k = 0; k < 8; k++) lenb[k] = (unsigned char)(hl >> (8 * k));
    int ok = fwrite(lenb, 1, 8, fp) == 8 && fwrite(h.s, 1, h.n, fp) == h.n;
    free(h.s);
    int oom = 0;
    for (int i = 0; ok && i < n; i++)
        ok = write_tensor(fp, tensors[i], f32_as_f16 && tensors[i]->dtype == YT_F32, names[i], &oom);
    if (oom) {
        fclose(fp);
        remove(tmp);
        return -1;
    }
    if (ok) ok = fflush(fp) == 0;
    int err = errno;
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok) {
        remove(tmp);
        return yt_error("write to %s failed: %s", tmp, strerror(err));
    }
    return yt_durable_rename(tmp, path);
}

int yt_safetensors_save(const char *path, int n, const char *const *names, yt_tensor *const *tensors, int n_meta,
                        const char *const *meta_keys, const char *const *meta_values)
{
    return yt_safetensors_save_as(path, n, names, tensors, n_meta, meta_keys, meta_values, 0);
}

int yt_safetensors_save_as(const char *path, int n, const char *const *names, yt_tensor *const *tensors, int n_meta,
                           const char *const *meta_keys, const char *const *meta_values, int f32_as_f16)
{
    char *tmp = yt_temp_path(path);
    if (!tmp) return yt_error_prefix("saving %s: ", path);
    int rc = save_impl(path, tmp, n, names, tensors, n_meta, meta_keys, meta_values, f32_as_f16);
    free(tmp);
    if (rc < 0) return yt_error_prefix("saving %s: ", path);
    return 0;
}
