/* YAML files (libyaml) as a generic tree: maps, sequences and scalars with their source positions.
 *
 * Scalars keep their text and style: `quoted` is 1 for every non-plain scalar ('single', "double", | literal,
 * > folded), which always stays a string. Explicit tags (!!str, !!int, !!float, !!bool, !!null) are kept in `tag`
 * (the full "tag:yaml.org,2002:..." form; NULL when absent). Anchors and aliases are resolved (an alias becomes a
 * deep copy, bounded by a node budget), merge keys (`<<: *base`) are applied like PyYAML does.
 * Only the first document of a stream is read; an empty file is a plain empty scalar (null).
 *
 * yt_yaml_resolve() types a scalar the way PyYAML's safe_load (YAML 1.1) does, with one deliberate extension:
 * "1e-3" / "1E5" (no dot) are floats here, as in YAML 1.2 (PyYAML reads them as strings). */
#ifndef YT_YAML_H
#define YT_YAML_H

#include <stddef.h>
#include <stdint.h>

typedef enum { YT_YAML_SCALAR, YT_YAML_SEQ, YT_YAML_MAP } yt_yaml_kind;

typedef struct yt_yaml_node {
    yt_yaml_kind kind;
    int line, column; /* 1-based position of the node's start */
    /* scalars */
    char *value;   /* NUL-terminated (a scalar holding NUL is cut there) */
    size_t length; /* bytes in value */
    int quoted;    /* not plain */
    char *tag;     /* explicit tag or NULL */
    /* sequences: items[0..count); maps: keys[0..count) -> items[0..count) in document order */
    int count;
    struct yt_yaml_node **items;
    struct yt_yaml_node **keys;
} yt_yaml_node;

/* NULL + yt_error("file:line:column: problem (context)") on failure. */
yt_yaml_node *yt_yaml_load_file(const char *path);
/* name is used in messages. */
yt_yaml_node *yt_yaml_load_string(const char *text, size_t len, const char *name);
void yt_yaml_free(yt_yaml_node *n);

/* Map lookup by plain key text (first match); NULL if absent or n is not a map. */
const yt_yaml_node *yt_yaml_get(const yt_yaml_node *n, const char *key);

typedef enum { YT_YAML_NULL, YT_YAML_BOOL, YT_YAML_INT, YT_YAML_FLOAT, YT_YAML_STR } yt_yaml_type;
typedef struct {
    yt_yaml_type type;
    int b;
    int64_t i;
    double f;
} yt_yaml_value;

/* Types a scalar node (see the header comment). Integers that overflow int64 become floats. An explicit tag
 * that does not fit the text (e.g. `!!int abc`) is an error naming the position; unknown tags give strings.
 * `where` (file name) is used in messages and may be NULL. */
int yt_yaml_resolve(const yt_yaml_node *n, const char *where, yt_yaml_value *out);
/* The same rules on a bare plain text (used by writers to decide whether a string needs quotes). */
yt_yaml_type yt_yaml_plain_type(const char *s, size_t len);

/* ---- writing ----
 * A document built by calls in document order (a map's entries as key, value, key, value ...), rendered by
 * libyaml's emitter in block style with 2-space indents, sequences inside maps unindented (PyYAML's layout), flow
 * sequences where the caller asks, no line folding. Strings are plain when they read back as the same string,
 * double-quoted otherwise; doubles are the shortest text that reads back exactly, always as floats. Each call
 * returns 0, or -1 with yt_error (after a failure every later call fails too). */
typedef struct yt_yaml_writer yt_yaml_writer;

yt_yaml_writer *yt_yaml_writer_new(void); /* NULL + yt_error when out of memory */
void yt_yaml_writer_free(yt_yaml_writer *w);
int yt_yaml_write_map_begin(yt_yaml_writer *w);
int yt_yaml_write_map_end(yt_yaml_writer *w);
int yt_yaml_write_seq_begin(yt_yaml_writer *w, int flow);
int yt_yaml_write_seq_end(yt_yaml_writer *w);
int yt_yaml_write_string(yt_yaml_writer *w, const char *s, size_t n);
int yt_yaml_write_int(yt_yaml_writer *w, long long v);
int yt_yaml_write_double(yt_yaml_writer *w, double v);
int yt_yaml_write_bool(yt_yaml_writer *w, int b);
int yt_yaml_write_null(yt_yaml_writer *w);
/* Ends the document: *text is the NUL-terminated YAML (owned by w, valid until yt_yaml_writer_free). */
int yt_yaml_writer_finish(yt_yaml_writer *w, const char **text, size_t *len);

#endif
