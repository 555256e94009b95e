/* YAML -> generic tree with libyaml's event API (so explicit tags, styles and positions are kept). */
#include "io/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"

#define MAX_DEPTH 512
#define NODE_BUDGET 2000000L /* nodes per document, including copies made for aliases */

#define TAG_PREFIX "tag:yaml.org,2002:"

/* ---- tree helpers ---- */

void yt_yaml_free(yt_yaml_node *n)
{
    if (!n) return;
    for (int i = 0; i < n->count; i++) {
        if (n->items) yt_yaml_free(n->items[i]);
        if (n->keys) yt_yaml_free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->value);
    free(n->tag);
    free(n);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

const yt_yaml_node *yt_yaml_get(const yt_yaml_node *n, const char *key)
{
    if (!n || n->kind != YT_YAML_MAP) return NULL;
    for (int i = 0; i < n->count; i++)
        if (n->keys[i]->kind == YT_YAML_SCALAR && strcmp(n->keys[i]->value, key) == 0) return n->items[i];
    return NULL;
}

/* ---- builder ---- */

typedef struct {
    char *name;
    yt_yaml_node *node;
} anchor_t;

typedef struct {
    yt_yaml_node *node;
    char *anchor;
    yt_yaml_node *pending_key;
    int cap;
} frame_t;

typedef struct {
    const char *where;
    anchor_t *anchors;
    int n_anchors, cap_anchors;
    frame_t stack[MAX_DEPTH];
    int depth;
    long budget;
    yt_yaml_node *root;
    yt_yaml_node **grave; /* detached merge keys/values, freed with the builder */
    int n_grave, cap_grave;
} builder_t;

static yt_yaml_node *node_new(builder_t *b, yt_yaml_kind kind, const yaml_mark_t *m)
{
    if (--b->budget < 0) {
        yt_error("%s:%zu:%zu: document too large (more than %ld nodes, aliases included)", b->where, m->line + 1,
                 m->column + 1, NODE_BUDGET);
        return NULL;
    }
    yt_yaml_node *n = calloc(1, sizeof *n);
    if (!n) {
        yt_error("out of memory");
        return NULL;
    }
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->column = (int)m->column + 1;
    return n;
}

static yt_yaml_node *node_copy(builder_t *b, const yt_yaml_node *src, const yaml_mark_t *m)
{
    yaml_mark_t pos = *m;
    yt_yaml_node *n = node_new(b, src->kind, &pos);
    if (!n) return NULL;
    n->line = src->line;
    n->column = src->column;
    n->quoted = src->quoted;
    n->length = src->length;
    if (src->value && !(n->value = dup_n(src->value, src->length))) goto oom;
    if (src->tag && !(n->tag = dup_n(src->tag, strlen(src->tag)))) goto oom;
    if (src->count) {
        n->items = calloc((size_t)src->count, sizeof *n->items);
        if (!n->items) goto oom;
        if (src->keys && !(n->keys = calloc((size_t)src->count, sizeof *n->keys))) goto oom;
        for (int i = 0; i < src->count; i++) {
            n->count = i + 1;
            if (!(n->items[i] = node_copy(b, src->items[i], m))) goto fail;
            if (src->keys && !(n->keys[i] = node_copy(b, src->keys[i], m))) goto fail;
        }
    }
    return n;
oom:
    yt_error("out of memory");
fail:
    yt_yaml_free(n);
    return NULL;
}

/* Appends child (and key for maps) to a container; takes ownership of both, also on failure. */
static int container_push(frame_t *f, yt_yaml_node *key, yt_yaml_node *child)
{
    yt_yaml_node *c = f->node;
    if (c->count == f->cap) {
        int nc = f->cap ? f->cap * 2 : 8;
        yt_yaml_node **ni = realloc(c->items, (size_t)nc * sizeof *ni);
        if (ni) c->items = ni;
        if (ni && c->kind == YT_YAML_MAP) {
            yt_yaml_node **nk = realloc(c->keys, (size_t)nc * sizeof *nk);
            if (nk)
                c->keys = nk;
            else
                ni = NULL;
        }
        if (!ni) {
            yt_yaml_free(key);
            yt_yaml_free(child);
            return yt_error("out of memory");
        }
        f->cap = nc;
    }
    c->items[c->count] = child;
    if (c->kind == YT_YAML_MAP) c->keys[c->count] = key;
    c->count++;
    return 0;
}

/* A finished node goes to its parent (or becomes the root). Takes ownership. */
static int attach(builder_t *b, yt_yaml_node *n)
{
    if (b->depth == 0) {
        if (b->root) yt_yaml_free(b->root);
        b->root = n;
        return 0;
    }
    frame_t *f = &b->stack[b->depth - 1];
    if (f->node->kind == YT_YAML_SEQ) return container_push(f, NULL, n);
    if (!f->pending_key) {
        f->pending_key = n;
        return 0;
    }
    yt_yaml_node *k = f->pending_key;
    f->pending_key = NULL;
    return container_push(f, k, n);
}

static int register_anchor(builder_t *b, const char *name, yt_yaml_node *n)
{
    /* a later anchor of the same name shadows earlier ones: search from the end */
    if (b->n_anchors == b->cap_anchors) {
        int nc = b->cap_anchors ? b->cap_anchors * 2 : 8;
        anchor_t *na = realloc(b->anchors, (size_t)nc * sizeof *na);
        if (!na) return yt_error("out of memory");
        b->anchors = na;
        b->cap_anchors = nc;
    }
    char *nm = dup_n(name, strlen(name));
    if (!nm) return yt_error("out of memory");
    b->anchors[b->n_anchors].name = nm;
    b->anchors[b->n_anchors].node = n; /* borrowed: owned by the tree */
    b->n_anchors++;
    return 0;
}

static int key_equal(const yt_yaml_node *a, const yt_yaml_node *b)
{
    return a->kind == YT_YAML_SCALAR && b->kind == YT_YAML_SCALAR && a->length == b->length &&
           memcmp(a->value, b->value, a->length) == 0;
}

static int has_key(const yt_yaml_node *m, const yt_yaml_node *key)
{
    for (int i = 0; i < m->count; i++)
        if (m->keys[i] && key_equal(m->keys[i], key)) return 1;
    return 0;
}

static int is_merge_key(const yt_yaml_node *k)
{
    return k->kind == YT_YAML_SCALAR && !k->quoted && strcmp(k->value, "<<") == 0 &&
           (!k->tag || strcmp(k->tag, TAG_PREFIX "merge") == 0);
}

/* Applies `<<` keys of a finished map (PyYAML semantics: explicit keys win, then the merged maps in order).
 * The merge sources are kept alive in the graveyard (an anchor may still point at them); pairs are copied. */
static int apply_merges(builder_t *b, frame_t *f)
{
    yt_yaml_node *m = f->node;
    int nmerge = 0;
    for (int i = 0; i < m->count; i++) {
        if (!is_merge_key(m->keys[i])) continue;
        yt_yaml_node *v = m->items[i];
        int ok = v->kind == YT_YAML_MAP;
        if (v->kind == YT_YAML_SEQ) {
            ok = 1;
            for (int j = 0; j < v->count; j++) ok &= v->items[j]->kind == YT_YAML_MAP;
        }
        if (!ok)
            return yt_error("%s:%d:%d: a merge key (<<) needs a mapping or a sequence of mappings", b->where, v->line,
                            v->column);
        nmerge++;
    }
    if (!nmerge) return 0;
    if (b->n_grave + 2 * nmerge > b->cap_grave) {
        int nc = (b->cap_grave + 2 * nmerge) * 2;
        yt_yaml_node **ng = realloc(b->grave, (size_t)nc * sizeof *ng);
        if (!ng) return yt_error("out of memory");
        b->grave = ng;
        b->cap_grave = nc;
    }
    /* detach the merge pairs (in order) */
    int first = b->n_grave, w = 0;
    for (int i = 0; i < m->count; i++) {
        if (is_merge_key(m->keys[i])) {
            b->grave[b->n_grave++] = m->keys[i];
            b->grave[b->n_grave++] = m->items[i];
        } else {
            m->keys[w] = m->keys[i];
            m->items[w] = m->items[i];
            w++;
        }
    }
    m->count = w;
    for (int g = first + 1; g < b->n_grave; g += 2) {
        yt_yaml_node *v = b->grave[g];
        int nmaps = v->kind == YT_YAML_MAP ? 1 : v->count;
        for (int j = 0; j < nmaps; j++) {
            yt_yaml_node *src = v->kind == YT_YAML_MAP ? v : v->items[j];
            for (int k = 0; k < src->count; k++) {
                if (has_key(m, src->keys[k])) continue;
                yaml_mark_t pos = {0, (size_t)src->line - 1, (size_t)src->column - 1};
                yt_yaml_node *kc = node_copy(b, src->keys[k], &pos);
                yt_yaml_node *vc = kc ? node_copy(b, src->items[k], &pos) : NULL;
                if (!vc) {
                    yt_yaml_free(kc);
                    return -1;
                }
                if (container_push(f, kc, vc) < 0) return -1;
            }
        }
    }
    return 0;
}

static void builder_cleanup(builder_t *b)
{
    for (int i = b->depth - 1; i >= 0; i--) {
        yt_yaml_free(b->stack[i].node);
        yt_yaml_free(b->stack[i].pending_key);
        free(b->stack[i].anchor);
    }
    b->depth = 0;
    for (int i = 0; i < b->n_anchors; i++) free(b->anchors[i].name);
    free(b->anchors);
    b->anchors = NULL;
    b->n_anchors = 0;
    for (int i = 0; i < b->n_grave; i++) yt_yaml_free(b->grave[i]);
    free(b->grave);
    b->grave = NULL;
    b->n_grave = 0;
}

static int parser_error(yaml_parser_t *p, const char *where)
{
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->error == YAML_MEMORY_ERROR) return yt_error("%s: out of memory while parsing", where);
    if (p->context)
        return yt_error("%s:%zu:%zu: %s %s (line %zu, column %zu)", where, p->problem_mark.line + 1,
                        p->problem_mark.column + 1, problem, p->context, p->context_mark.line + 1,
                        p->context_mark.column + 1);
    return yt_error("%s:%zu:%zu: %s", where, p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

static yt_yaml_node *load(yaml_parser_t *parser, const char *where)
{
    builder_t *b = calloc(1, sizeof *b);
    if (!b) {
        yt_error("out of memory");
        return NULL;
    }
    b->where = where;
    b->budget = NODE_BUDGET;
    int rc = 0, done = 0, in_doc = 0, docs = 0;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) {
            rc = parser_error(parser, where);
            break;
        }
        const yaml_mark_t *m = &ev.start_mark;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            in_doc = 1;
            docs++;
            break;
        case YAML_DOCUMENT_END_EVENT:
            in_doc = 0;
            if (docs == 1) done = 1; /* only the first document */
            break;
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            yt_yaml_node *target = NULL;
            for (int i = b->n_anchors - 1; i >= 0 && !target; i--)
                if (strcmp(b->anchors[i].name, name) == 0) target = b->anchors[i].node;
            if (!target) {
                rc = yt_error("%s:%zu:%zu: unknown alias *%s", where, m->line + 1, m->column + 1, name);
                break;
            }
            yt_yaml_node *c = node_copy(b, target, m);
            if (!c)
                rc = -1;
            else
                rc = attach(b, c);
            break;
        }
        case YAML_SCALAR_EVENT: {
            yt_yaml_node *n = node_new(b, YT_YAML_SCALAR, m);
            if (!n) {
                rc = -1;
                break;
            }
            n->length = strnlen((const char *)ev.data.scalar.value, ev.data.scalar.length);
            n->value = dup_n((const char *)ev.data.scalar.value, n->length);
            n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            if (ev.data.scalar.tag)
                n->tag = dup_n((const char *)ev.data.scalar.tag, strlen((const char *)ev.data.scalar.tag));
            if (!n->value || (ev.data.scalar.tag && !n->tag)) {
                yt_yaml_free(n);
                rc = yt_error("out of memory");
                break;
            }
            if (ev.data.scalar.anchor && register_anchor(b, (const char *)ev.data.scalar.anchor, n) < 0) {
                yt_yaml_free(n);
                rc = -1;
                break;
            }
            rc = attach(b, n);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (b->depth >= MAX_DEPTH) {
                rc =
                    yt_error("%s:%zu:%zu: nesting deeper than %d levels", where, m->line + 1, m->column + 1, MAX_DEPTH);
                break;
            }
            int is_map = ev.type == YAML_MAPPING_START_EVENT;
            yt_yaml_node *n = node_new(b, is_map ? YT_YAML_MAP : YT_YAML_SEQ, m);
            if (!n) {
                rc = -1;
                break;
            }
            const yaml_char_t *tag = is_map ? ev.data.mapping_start.tag : ev.data.sequence_start.tag;
            const yaml_char_t *anc = is_map ? ev.data.mapping_start.anchor : ev.data.sequence_start.anchor;
            if (tag) n->tag = dup_n((const char *)tag, strlen((const char *)tag));
            frame_t *f = &b->stack[b->depth++];
            memset(f, 0, sizeof *f);
            f->node = n;
            if (anc) f->anchor = dup_n((const char *)anc, strlen((const char *)anc));
            if ((tag && !n->tag) || (anc && !f->anchor)) rc = yt_error("out of memory");
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            frame_t *f = &b->stack[b->depth - 1];
            if (f->node->kind == YT_YAML_MAP) rc = apply_merges(b, f);
            if (rc) break;
            yt_yaml_node *n = f->node;
            char *anc = f->anchor;
            f->node = NULL;
            f->anchor = NULL;
            b->depth--;
            if (anc) {
                rc = register_anchor(b, anc, n);
                free(anc);
                if (rc) {
                    yt_yaml_free(n);
                    break;
                }
            }
            rc = attach(b, n);
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    (void)in_doc;
    yt_yaml_node *root = b->root;
    b->root = NULL;
    builder_cleanup(b);
    free(b);
    if (rc) {
        yt_yaml_free(root);
        return NULL;
    }
    if (!root) {
        /* empty stream: null */
        yaml_mark_t zero = {0, 0, 0};
        builder_t tmp = {.where = where, .budget = 1};
        root = node_new(&tmp, YT_YAML_SCALAR, &zero);
        if (root && !(root->value = dup_n("", 0))) {
            free(root);
            root = NULL;
            yt_error("out of memory");
        }
    }
    return root;
}

yt_yaml_node *yt_yaml_load_string(const char *text, size_t len, const char *name)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        yt_error("%s: cannot initialise the YAML parser", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yt_yaml_node *n = load(&parser, name);
    yaml_parser_delete(&parser);
    return n;
}

yt_yaml_node *yt_yaml_load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        yt_error("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        yt_error("%s: cannot initialise the YAML parser", path);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    yt_yaml_node *n = load(&parser, path);
    yaml_parser_delete(&parser);
    fclose(f);
    return n;
}

/* ---- scalar typing (PyYAML's YAML 1.1 implicit resolvers, see the header) ---- */

static int one_of(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(*words, s, n) == 0) return 1;
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parses [0-9_]* from s[*i], appending digits to buf; returns the count of digits. */
static int digits_(const char *s, size_t n, size_t *i, char *buf, size_t *o, size_t cap)
{
    int nd = 0;
    while (*i < n && (is_digit(s[*i]) || s[*i] == '_')) {
        if (s[*i] != '_') {
            if (*o + 1 < cap) buf[(*o)++] = s[*i];
            nd++;
        }
        (*i)++;
    }
    return nd;
}

/* Sexagesimal: [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+ (int) or with .[0-9_]* (float). */
static int sexagesimal(const char *s, size_t n, double *val, int *is_float)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i >= n || !is_digit(s[i])) return 0;
    int int_form = s[i] != '0';
    double acc = 0;
    while (i < n && (is_digit(s[i]) || s[i] == '_')) {
        if (s[i] != '_') acc = acc * 10 + (s[i] - '0');
        i++;
    }
    int parts = 0;
    while (i < n && s[i] == ':') {
        i++;
        int nd = 0, v = 0;
        while (i < n && is_digit(s[i]) && nd < 2) v = v * 10 + (s[i++] - '0'), nd++;
        if (nd == 0 || (nd == 2 && v >= 60) || (nd == 2 && s[i - 2] > '5')) return 0;
        acc = acc * 60 + v;
        parts++;
    }
    if (!parts) return 0;
    *is_float = 0;
    if (i < n && s[i] == '.') {
        i++;
        double scale = 0.1, frac = 0;
        while (i < n && (is_digit(s[i]) || s[i] == '_')) {
            if (s[i] != '_') frac += (s[i] - '0') * scale, scale /= 10;
            i++;
        }
        acc += frac;
        *is_float = 1;
    } else if (!int_form) {
        return 0;
    }
    if (i != n) return 0;
    *val = neg ? -acc : acc;
    return 1;
}

/* Integer forms; returns 1 and sets *v (or *overflow) on a match. */
static int parse_int(const char *s, size_t n, int64_t *v, int *overflow)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i >= n) return 0;
    int base = 10;
    size_t start;
    if (n - i >= 2 && s[i] == '0' && s[i + 1] == 'b')
        base = 2, start = i + 2;
    else if (n - i >= 2 && s[i] == '0' && s[i + 1] == 'x')
        base = 16, start = i + 2;
    else if (s[i] == '0' && n - i >= 2)
        base = 8, start = i + 1;
    else if (s[i] == '0')
        base = 10, start = i;
    else if (is_digit(s[i]))
        base = 10, start = i;
    else
        return 0;
    if (start >= n) return 0;
    uint64_t acc = 0;
    int nd = 0;
    *overflow = 0;
    for (size_t k = start; k < n; k++) {
        char c = s[k];
        if (c == '_') continue;
        int d;
        if (is_digit(c))
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        if (d >= base) return 0;
        if (acc > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            *overflow = 1;
        else
            acc = acc * (uint64_t)base + (uint64_t)d;
        nd++;
    }
    if (nd == 0) return base == 8; /* "0_" style: zero */
    if (!*overflow && acc > (uint64_t)INT64_MAX + (uint64_t)neg) *overflow = 1;
    if (!*overflow) *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 1;
}

/* Float forms: [-+]?([0-9][0-9_]*)?(\.[0-9_]*)?([eE][-+]?[0-9]+)? with a digit and a dot or an exponent,
 * plus [-+]?.inf and .nan. */
static int parse_float(const char *s, size_t n, double *v)
{
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    size_t i = 0;
    int neg = 0;
    if (one_of(s, n, nans)) {
        *v = NAN;
        return 1;
    }
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (one_of(s + i, n - i, infs)) {
        *v = neg ? -INFINITY : INFINITY;
        return 1;
    }
    char buf[128];
    size_t o = 0;
    if (neg) buf[o++] = '-';
    int nd = 0, dot = 0, ex = 0;
    if (i < n && is_digit(s[i])) nd += digits_(s, n, &i, buf, &o, sizeof buf);
    if (i < n && s[i] == '.') {
        dot = 1;
        buf[o++] = '.';
        i++;
        if (nd == 0 && (i >= n || !is_digit(s[i]))) return 0; /* ".5" but not "._5" */
        nd += digits_(s, n, &i, buf, &o, sizeof buf);
    }
    if (nd == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ex = 1;
        if (o + 1 < sizeof buf) buf[o++] = 'e';
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) {
            if (o + 1 < sizeof buf) buf[o++] = s[i];
            i++;
        }
        int ed = 0;
        while (i < n && is_digit(s[i])) {
            if (o + 1 < sizeof buf) buf[o++] = s[i];
            i++;
            ed++;
        }
        if (!ed) return 0;
    }
    if (i != n || (!dot && !ex) || o + 1 >= sizeof buf) return 0;
    buf[o] = 0;
    *v = strtod(buf, NULL);
    return 1;
}

static yt_yaml_type classify(const char *s, size_t n, yt_yaml_value *out)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
    static const char *const falses[] = {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};
    yt_yaml_value tmp;
    if (!out) out = &tmp;
    memset(out, 0, sizeof *out);
    if (n == 0 || one_of(s, n, nulls)) return out->type = YT_YAML_NULL;
    if (one_of(s, n, trues)) {
        out->b = 1;
        return out->type = YT_YAML_BOOL;
    }
    if (one_of(s, n, falses)) return out->type = YT_YAML_BOOL;
    int64_t iv = 0;
    int ovf = 0;
    if (parse_int(s, n, &iv, &ovf)) {
        if (!ovf) {
            out->i = iv;
            out->f = (double)iv;
            return out->type = YT_YAML_INT;
        }
        out->f = strtod(s, NULL); /* beyond int64: a float, like Lua would */
        return out->type = YT_YAML_FLOAT;
    }
    double fv;
    if (parse_float(s, n, &fv)) {
        out->f = fv;
        return out->type = YT_YAML_FLOAT;
    }
    int sf;
    if (sexagesimal(s, n, &fv, &sf)) {
        if (sf) {
            out->f = fv;
            return out->type = YT_YAML_FLOAT;
        }
        out->f = fv;
        /* beyond int64 (acc is a double; 2^63 is exact): a float, as for decimal integers */
        if (!(fv >= -9223372036854775808.0 && fv < 9223372036854775808.0)) return out->type = YT_YAML_FLOAT;
        out->i = (int64_t)fv;
        return out->type = YT_YAML_INT;
    }
    return out->type = YT_YAML_STR;
}

yt_yaml_type yt_yaml_plain_type(const char *s, size_t len) { return classify(s, len, NULL); }

int yt_yaml_resolve(const yt_yaml_node *n, const char *where, yt_yaml_value *out)
{
    memset(out, 0, sizeof *out);
    if (!where) where = "<yaml>";
    if (n->kind != YT_YAML_SCALAR) return yt_error("%s:%d:%d: expected a scalar", where, n->line, n->column);
    const char *tag = n->tag;
    if (tag && strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0) {
        const char *t = tag + strlen(TAG_PREFIX);
        yt_yaml_type ty = classify(n->value, n->length, out);
        if (strcmp(t, "str") == 0) {
            out->type = YT_YAML_STR;
            return 0;
        }
        if (strcmp(t, "null") == 0 && ty == YT_YAML_NULL) return 0;
        if (strcmp(t, "bool") == 0 && ty == YT_YAML_BOOL) return 0;
        if (strcmp(t, "int") == 0 && ty == YT_YAML_INT) return 0;
        if (strcmp(t, "float") == 0 && (ty == YT_YAML_FLOAT || ty == YT_YAML_INT)) {
            out->type = YT_YAML_FLOAT;
            return 0;
        }
        if (strcmp(t, "null") == 0 || strcmp(t, "bool") == 0 || strcmp(t, "int") == 0 || strcmp(t, "float") == 0)
            return yt_error("%s:%d:%d: '%.40s' is not a valid !!%s", where, n->line, n->column, n->value, t);
        out->type = YT_YAML_STR;
        return 0;
    }
    if (n->quoted || tag) {
        out->type = YT_YAML_STR;
        return 0;
    }
    classify(n->value, n->length, out);
    return 0;
}

/* ---- writing: a document through libyaml's emitter ---- */

#define WRITER_MAX_DEPTH 128

struct yt_yaml_writer {
    yaml_emitter_t emitter;
    int initialized;
    char *text;
    size_t len, cap;
    int depth;
    int failed;
};

static int writer_output(void *data, unsigned char *buffer, size_t size)
{
    yt_yaml_writer *w = data;
    if (w->len + size + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 512;
        while (cap < w->len + size + 1) cap *= 2;
        char *t = realloc(w->text, cap);
        if (!t) return 0; /* libyaml reports a write error */
        w->text = t;
        w->cap = cap;
    }
    memcpy(w->text + w->len, buffer, size);
    w->len += size;
    w->text[w->len] = 0;
    return 1;
}

/* Hands one event to the emitter; after the first failure every call fails with the same error. */
static int emit(yt_yaml_writer *w, yaml_event_t *ev, int ok)
{
    if (w->failed) return -1;
    if (!ok) {
        w->failed = 1;
        return yt_error("yaml writer: out of memory");
    }
    if (!yaml_emitter_emit(&w->emitter, ev)) {
        w->failed = 1;
        return yt_error("yaml writer: %s", w->emitter.problem ? w->emitter.problem : "emitter error");
    }
    return 0;
}

yt_yaml_writer *yt_yaml_writer_new(void)
{
    yt_yaml_writer *w = calloc(1, sizeof *w);
    if (!w || !yaml_emitter_initialize(&w->emitter)) {
        free(w);
        yt_error("yaml writer: out of memory");
        return NULL;
    }
    w->initialized = 1;
    yaml_emitter_set_output(&w->emitter, writer_output, w);
    yaml_emitter_set_unicode(&w->emitter, 1);
    yaml_emitter_set_width(&w->emitter, -1); /* never fold long scalars */
    yaml_emitter_set_indent(&w->emitter, 2);
    yaml_event_t ev;
    if (emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) < 0 ||
        emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) < 0) {
        yt_yaml_writer_free(w);
        return NULL;
    }
    return w;
}

void yt_yaml_writer_free(yt_yaml_writer *w)
{
    if (!w) return;
    if (w->initialized) yaml_emitter_delete(&w->emitter);
    free(w->text);
    free(w);
}

static int open_collection(yt_yaml_writer *w)
{
    if (w->depth >= WRITER_MAX_DEPTH) {
        w->failed = 1;
        return yt_error("yaml writer: nesting deeper than %d levels", WRITER_MAX_DEPTH);
    }
    w->depth++;
    return 0;
}

int yt_yaml_write_map_begin(yt_yaml_writer *w)
{
    yaml_event_t ev;
    if (open_collection(w) < 0) return -1;
    return emit(w, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

int yt_yaml_write_seq_begin(yt_yaml_writer *w, int flow)
{
    yaml_event_t ev;
    if (open_collection(w) < 0) return -1;
    return emit(w, &ev,
                yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                     flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

int yt_yaml_write_map_end(yt_yaml_writer *w)
{
    yaml_event_t ev;
    w->depth--;
    return emit(w, &ev, yaml_mapping_end_event_initialize(&ev));
}

int yt_yaml_write_seq_end(yt_yaml_writer *w)
{
    yaml_event_t ev;
    w->depth--;
    return emit(w, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int write_scalar(yt_yaml_writer *w, const char *s, size_t n, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    return emit(w, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, style));
}

/* Characters a plain string may hold in every context it is written in (keys, values, flow sequences). */
static int plain_safe_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '/' || c == '-' || c == '+' || c == ' ' || c == '(' || c == ')' || c == '=' || c >= 0x80;
}

/* Quoted unless the plain text reads back as this same string (not a number, bool or null) and holds nothing
 * YAML could take for syntax. */
static int needs_quotes(const char *s, size_t n)
{
    if (n == 0 || n > INT32_MAX) return 1;
    if (yt_yaml_plain_type(s, n) != YT_YAML_STR) return 1;
    if (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '(' || s[0] == '=') return 1;
    /* a leading '-' or '+' is fine before a letter, digit or dot (-foo), never alone or before a space or dash */
    if ((s[0] == '-' || s[0] == '+') && (n == 1 || s[1] == ' ' || s[1] == '-')) return 1;
    for (size_t i = 0; i < n; i++)
        if (!plain_safe_char((unsigned char)s[i])) return 1;
    return 0;
}

int yt_yaml_write_string(yt_yaml_writer *w, const char *s, size_t n)
{
    if (n > INT32_MAX) {
        w->failed = 1;
        return yt_error("yaml writer: a %zu-byte string is too long", n);
    }
    return write_scalar(w, s, n, needs_quotes(s, n) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
}

int yt_yaml_write_int(yt_yaml_writer *w, long long v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", v);
    return write_scalar(w, t, (size_t)n, YAML_PLAIN_SCALAR_STYLE);
}

/* The shortest text that reads back to the same double, always with a '.' (PyYAML's 1.0, 1.0e+20) so that it
 * reads back as a float. */
int yt_yaml_write_double(yt_yaml_writer *w, double v)
{
    char tmp[64], out[72];
    if (v != v) return write_scalar(w, ".nan", 4, YAML_PLAIN_SCALAR_STYLE);
    if (isinf(v))
        return v > 0 ? write_scalar(w, ".inf", 4, YAML_PLAIN_SCALAR_STYLE)
                     : write_scalar(w, "-.inf", 5, YAML_PLAIN_SCALAR_STYLE);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    char *e = strchr(tmp, 'e');
    if (strchr(tmp, '.'))
        snprintf(out, sizeof out, "%s", tmp);
    else if (e)
        snprintf(out, sizeof out, "%.*s.0%s", (int)(e - tmp), tmp, e);
    else
        snprintf(out, sizeof out, "%s.0", tmp);
    return write_scalar(w, out, strlen(out), YAML_PLAIN_SCALAR_STYLE);
}

int yt_yaml_write_bool(yt_yaml_writer *w, int b)
{
    return b ? write_scalar(w, "true", 4, YAML_PLAIN_SCALAR_STYLE)
             : write_scalar(w, "false", 5, YAML_PLAIN_SCALAR_STYLE);
}

int yt_yaml_write_null(yt_yaml_writer *w) { return write_scalar(w, "null", 4, YAML_PLAIN_SCALAR_STYLE); }

int yt_yaml_writer_finish(yt_yaml_writer *w, const char **text, size_t *len)
{
    yaml_event_t ev;
    if (w->depth != 0) {
        w->failed = 1;
        return yt_error("yaml writer: %d collections left open", w->depth);
    }
    if (emit(w, &ev, yaml_document_end_event_initialize(&ev, 1)) < 0 ||
        emit(w, &ev, yaml_stream_end_event_initialize(&ev)) < 0)
        return -1;
    if (!yaml_emitter_flush(&w->emitter)) return yt_error("yaml writer: out of memory");
    *text = w->text ? w->text : "";
    *len = w->len;
    return 0;
}
