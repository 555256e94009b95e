/* File formats for Lua: YAML (load/dump) and safetensors (load/save).
 *
 *   yt.io.load_yaml(path [, opts])       -> value          maps -> tables, sequences -> arrays, scalars typed like
 *   yt.io.load_yaml_string(text [,name [,opts]]) -> value  PyYAML's safe_load (YAML 1.1): ints (0x, 0o-style 017,
 *                                                       0b, 1_000), floats (1.5, .inf, -.inf, .nan, and 1e-3),
 *                                                       booleans (true/false/yes/no/on/off in any of the three
 *                                                       cases), null (~, null, empty). Quoted scalars stay strings
 *                                                       ("None" is a string, as in PyYAML).
 *       Nulls: a null map value leaves the key absent (t.key == nil); a null inside a sequence becomes the
 *       sentinel `yt.io.null` (a light userdata) so arrays stay dense; a null document returns nil.
 *       Errors name file:line:column. opts.key_order = true returns a second table: each map of the
 *       document -> the array of its keys in file order (Lua tables have none; a model's first scale needs it).
 *   yt.io.dump_yaml(value [, key_order]) -> string         block style; arrays of scalars (and nested arrays of
 *       scalars) in flow style `[a, b]`. key_order (array of keys) fixes the order of the top-level keys;
 *       other keys follow sorted (numbers, then strings, then booleans), nested maps are sorted. Strings are
 *       quoted when they would otherwise read back as something else. nil/yt.io.null -> null. Empty table -> [].
 *   yt.io.null                                             the sentinel above
 *
 *   yt.io.load_safetensors(path)         -> tensors, metadata     tensors: name -> tensor; metadata: key -> string
 *   yt.io.load_safetensors_metadata(path) -> metadata            the header checked, no tensor data read
 *                                                              (F16/BF16 entries load as F32 tensors)
 *   yt.io.save_safetensors(path, tensors [, metadata [, {dtype = "F16"}]])
 *       tensors: a table name -> tensor (written in sorted name order) or an array of {name, tensor} (written
 *       in the given order). metadata: key -> string (numbers are converted). dtype "F16" stores the F32
 *       tensors as F16. Durable (temp file, fsync, rename). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/yaml.h"
#include "lua/yt_lua.h"

static const char null_sentinel_key = 0; /* its address is yt.io.null */
#define YT_NULL ((void *)&null_sentinel_key)

/* ------------------------------------------------------------------------------------------------------------
 * YAML -> Lua
 * ------------------------------------------------------------------------------------------------------------ */

/* Pushes the value of a node; returns 0 when it is null (pushes nothing). Raises Lua errors.
 * order_idx, when not 0, is the stack index of a table that receives map -> array of its keys in file order. */
static int push_node(lua_State *L, const yt_yaml_node *n, const char *where, int order_idx)
{
    luaL_checkstack(L, 6, "YAML nesting too deep");
    switch (n->kind) {
    case YT_YAML_SCALAR: {
        yt_yaml_value v;
        if (yt_yaml_resolve(n, where, &v) < 0) return yt_lua_core_error(L);
        switch (v.type) {
        case YT_YAML_NULL:
            return 0;
        case YT_YAML_BOOL:
            lua_pushboolean(L, v.b);
            break;
        case YT_YAML_INT:
            lua_pushinteger(L, (lua_Integer)v.i);
            break;
        case YT_YAML_FLOAT:
            lua_pushnumber(L, v.f);
            break;
        case YT_YAML_STR:
            lua_pushlstring(L, n->value, n->length);
            break;
        }
        return 1;
    }
    case YT_YAML_SEQ:
        lua_createtable(L, n->count, 0);
        for (int i = 0; i < n->count; i++) {
            if (!push_node(L, n->items[i], where, order_idx)) lua_pushlightuserdata(L, YT_NULL);
            lua_rawseti(L, -2, i + 1);
        }
        return 1;
    case YT_YAML_MAP: {
        lua_createtable(L, 0, n->count);
        int map_idx = lua_gettop(L), keys_idx = 0;
        if (order_idx) {
            lua_createtable(L, n->count, 0);
            keys_idx = lua_gettop(L);
        }
        for (int i = 0; i < n->count; i++) {
            const yt_yaml_node *k = n->keys[i];
            if (k->kind != YT_YAML_SCALAR)
                return luaL_error(L, "%s:%d:%d: mapping keys must be scalars", where, k->line, k->column);
            if (!push_node(L, k, where, order_idx))
                return luaL_error(L, "%s:%d:%d: null mapping key", where, k->line, k->column);
            if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))
                return luaL_error(L, "%s:%d:%d: NaN mapping key", where, k->line, k->column);
            if (keys_idx) {
                lua_pushvalue(L, -1);
                lua_rawseti(L, keys_idx, i + 1);
            }
            if (!push_node(L, n->items[i], where, order_idx)) {
                /* null value: the key is absent */
                lua_pushnil(L);
            }
            lua_rawset(L, map_idx);
        }
        if (keys_idx) {
            lua_pushvalue(L, map_idx);
            lua_insert(L, keys_idx); /* ... map map keys */
            lua_rawset(L, order_idx);
        }
        return 1;
    }
    }
    return 0;
}

/* The tree is freed even when conversion raises: it is held by a to-be-closed-like userdata with __gc. */
typedef struct {
    yt_yaml_node *root;
} yaml_box;

static int yaml_box_gc(lua_State *L)
{
    yaml_box *b = lua_touserdata(L, 1);
    if (b->root) yt_yaml_free(b->root);
    b->root = NULL;
    return 0;
}

static yaml_box *new_yaml_box(lua_State *L)
{
    yaml_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->root = NULL;
    if (luaL_newmetatable(L, "yt.yaml_tree")) {
        lua_pushcfunction(L, yaml_box_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, yaml_box_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    return b;
}

/* Pushes the document (and, when opts at opts_idx has key_order=true, the map -> keys-in-order table). */
static int convert_tree(lua_State *L, yaml_box *b, int opts_idx, const char *where)
{
    int order_idx = 0;
    if (opts_idx && lua_istable(L, opts_idx) && lua_getfield(L, opts_idx, "key_order") != LUA_TNIL &&
        lua_toboolean(L, -1)) {
        lua_newtable(L);
        order_idx = lua_gettop(L);
    }
    if (!push_node(L, b->root, where, order_idx)) lua_pushnil(L);
    yt_yaml_free(b->root);
    b->root = NULL;
    if (!order_idx) return 1;
    lua_pushvalue(L, order_idx);
    return 2;
}

static int l_load_yaml(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    yaml_box *b = new_yaml_box(L);
    b->root = yt_yaml_load_file(path);
    if (!b->root) return yt_lua_core_error(L);
    return convert_tree(L, b, 2, path);
}

static int l_load_yaml_string(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "<string>");
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    yaml_box *b = new_yaml_box(L);
    b->root = yt_yaml_load_string(text, len, name);
    if (!b->root) return yt_lua_core_error(L);
    return convert_tree(L, b, 3, name);
}

/* ------------------------------------------------------------------------------------------------------------
 * Lua -> YAML text: this file decides the layout (which tables are maps, which arrays go inline, key order) and
 * io/yaml.c's writer renders it through libyaml.
 * ------------------------------------------------------------------------------------------------------------ */

static int is_null(lua_State *L, int idx)
{
    return lua_isnil(L, idx) || (lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == YT_NULL);
}

/* A table whose keys are exactly 1..n (n >= 0). */
static int is_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1 || k > n) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n;
}

#define FLOW_LEVELS 16
#define BLOCK_DEPTH 100

static int is_scalar_value(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    return t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING || is_null(L, idx);
}

/* Scalars, and arrays (possibly empty) of flow-able values nested at most `levels` deep. */
static int flowable(lua_State *L, int idx, int levels)
{
    if (is_scalar_value(L, idx)) return 1;
    if (!lua_istable(L, idx) || levels <= 0 || !is_array(L, idx)) return 0;
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    luaL_checkstack(L, 4, "dump_yaml: too deep");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        int ok = flowable(L, -1, levels - 1);
        lua_pop(L, 1);
        if (!ok) return 0;
    }
    return 1;
}

typedef struct {
    yt_yaml_writer *w;
} writer_box;

static int writer_box_gc(lua_State *L)
{
    writer_box *b = lua_touserdata(L, 1);
    yt_yaml_writer_free(b->w);
    b->w = NULL;
    return 0;
}

static void check_write(lua_State *L, int rc)
{
    if (rc < 0) yt_lua_core_error(L);
}

/* Scalars only (including nil/yt.io.null). */
static void write_scalar(lua_State *L, yt_yaml_writer *w, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        check_write(L, yt_yaml_write_null(w));
        return;
    case LUA_TBOOLEAN:
        check_write(L, yt_yaml_write_bool(w, lua_toboolean(L, idx)));
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            check_write(L, yt_yaml_write_int(w, (long long)lua_tointeger(L, idx)));
        else
            check_write(L, yt_yaml_write_double(w, lua_tonumber(L, idx)));
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        check_write(L, yt_yaml_write_string(w, s, n));
        return;
    }
    default:
        if (is_null(L, idx)) {
            check_write(L, yt_yaml_write_null(w));
            return;
        }
        luaL_error(L, "dump_yaml: cannot write a %s", luaL_typename(L, idx));
    }
}

/* A scalar, or an array of flow-able values as a flow sequence ([a, b, [c]]). */
static void write_flow(lua_State *L, yt_yaml_writer *w, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) {
        write_scalar(L, w, idx);
        return;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    check_write(L, yt_yaml_write_seq_begin(w, 1));
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        write_flow(L, w, -1);
        lua_pop(L, 1);
    }
    check_write(L, yt_yaml_write_seq_end(w));
}

/* Key sorting: numbers < strings < booleans. */
static int key_rank(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        return 0;
    case LUA_TSTRING:
        return 1;
    case LUA_TBOOLEAN:
        return 2;
    default:
        return 3;
    }
}

static int key_less(lua_State *L, int a, int b)
{
    int ra = key_rank(L, a), rb = key_rank(L, b);
    if (ra != rb) return ra < rb;
    if (ra == 0) return lua_compare(L, a, b, LUA_OPLT);
    if (ra == 1) {
        size_t la, lb;
        const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
        int c = memcmp(sa, sb, la < lb ? la : lb);
        return c < 0 || (c == 0 && la < lb);
    }
    if (ra == 2) return !lua_toboolean(L, a) && lua_toboolean(L, b);
    return 0;
}

/* Pushes an array of the table's keys in writing order: first those of `order_idx` (0 = none) present in the
 * table, then the rest sorted. */
static void push_sorted_keys(lua_State *L, int tidx, int order_idx)
{
    tidx = lua_absindex(L, tidx);
    lua_newtable(L); /* keys */
    int keys = lua_gettop(L);
    lua_newtable(L); /* set of keys already placed */
    int placed = lua_gettop(L);
    lua_Integer n = 0;
    if (order_idx) {
        lua_Integer m = (lua_Integer)lua_rawlen(L, order_idx);
        for (lua_Integer i = 1; i <= m; i++) {
            lua_rawgeti(L, order_idx, i);
            lua_pushvalue(L, -1);
            lua_rawget(L, tidx);
            int present = !lua_isnil(L, -1);
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawget(L, placed);
            int dup = !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (present && !dup) {
                lua_pushvalue(L, -1);
                lua_pushboolean(L, 1);
                lua_rawset(L, placed);
                lua_rawseti(L, keys, ++n);
            } else {
                lua_pop(L, 1);
            }
        }
    }
    lua_Integer first_sorted = n + 1;
    lua_pushnil(L);
    while (lua_next(L, tidx)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawget(L, placed);
        int dup = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!dup) {
            int t = lua_type(L, -1);
            if (t != LUA_TNUMBER && t != LUA_TSTRING && t != LUA_TBOOLEAN)
                luaL_error(L, "dump_yaml: cannot write a %s key", luaL_typename(L, -1));
            lua_pushvalue(L, -1);
            lua_rawseti(L, keys, ++n);
        }
    }
    /* insertion sort of keys[first_sorted..n] (maps are small) */
    for (lua_Integer i = first_sorted + 1; i <= n; i++) {
        for (lua_Integer j = i; j > first_sorted; j--) {
            lua_rawgeti(L, keys, j);
            lua_rawgeti(L, keys, j - 1);
            int less = key_less(L, -2, -1);
            if (!less) {
                lua_pop(L, 2);
                break;
            }
            lua_rawseti(L, keys, j);
            lua_rawseti(L, keys, j - 1);
        }
    }
    lua_pop(L, 1); /* placed */
}

static void write_block(lua_State *L, yt_yaml_writer *w, int idx, int order_idx, int depth);

/* A value after a key (nested_flow 0: only scalars and arrays of scalars go inline) or in a sequence
 * (nested_flow 1: any flow-able array goes inline), else a nested block. So a model's layer list is written one
 * layer per line: `backbone:` / `- [-1, 1, Conv, [64, 3, 2]]`. */
static void write_value(lua_State *L, yt_yaml_writer *w, int vidx, int depth, int nested_flow)
{
    vidx = lua_absindex(L, vidx);
    if (flowable(L, vidx, nested_flow ? FLOW_LEVELS : 1)) {
        write_flow(L, w, vidx);
        return;
    }
    if (!lua_istable(L, vidx)) luaL_error(L, "dump_yaml: cannot write a %s", luaL_typename(L, vidx));
    write_block(L, w, vidx, 0, depth + 1); /* a non-empty map, or an array holding maps */
}

static void write_block(lua_State *L, yt_yaml_writer *w, int idx, int order_idx, int depth)
{
    if (depth > BLOCK_DEPTH) luaL_error(L, "dump_yaml: nesting deeper than %d levels (a cycle?)", BLOCK_DEPTH);
    luaL_checkstack(L, 10, "dump_yaml: too deep");
    idx = lua_absindex(L, idx);
    if (is_array(L, idx)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        check_write(L, yt_yaml_write_seq_begin(w, 0));
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            write_value(L, w, -1, depth, 1);
            lua_pop(L, 1);
        }
        check_write(L, yt_yaml_write_seq_end(w));
        return;
    }
    push_sorted_keys(L, idx, order_idx);
    int keys = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, keys);
    check_write(L, yt_yaml_write_map_begin(w));
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, keys, i);
        write_scalar(L, w, lua_gettop(L));
        lua_pushvalue(L, -1);
        lua_rawget(L, idx);
        write_value(L, w, -1, depth, 0);
        lua_pop(L, 2);
    }
    check_write(L, yt_yaml_write_map_end(w));
    lua_pop(L, 1);
}

static int l_dump_yaml(lua_State *L)
{
    lua_settop(L, 2);
    int order_idx = 0;
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        order_idx = 2;
    }
    writer_box *b = yt_lua_new_scratch(L, sizeof *b, writer_box_gc);
    b->w = yt_yaml_writer_new();
    if (!b->w) return yt_lua_core_error(L);
    if (lua_istable(L, 1) && !flowable(L, 1, 1))
        write_block(L, b->w, 1, order_idx, 0);
    else
        write_flow(L, b->w, 1); /* a scalar or a flow array document */
    const char *text;
    size_t len;
    check_write(L, yt_yaml_writer_finish(b->w, &text, &len));
    lua_pushlstring(L, text, len);
    return 1;
}

/* ------------------------------------------------------------------------------------------------------------
 * safetensors
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct {
    yt_tensor_file f;
    int loaded;
} tfile_box;

static int tfile_gc(lua_State *L)
{
    tfile_box *b = lua_touserdata(L, 1);
    if (b->loaded) yt_tensor_file_free(&b->f);
    b->loaded = 0;
    return 0;
}

/* Pushes the file's metadata as a table key -> string. */
static void push_metadata(lua_State *L, const yt_tensor_file *f)
{
    lua_createtable(L, 0, f->n_meta);
    for (int i = 0; i < f->n_meta; i++) {
        lua_pushstring(L, f->meta_values[i]);
        lua_setfield(L, -2, f->meta_keys[i]);
    }
}

static int l_load_safetensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    tfile_box *b = yt_lua_new_scratch(L, sizeof *b, tfile_gc);
    if (yt_safetensors_load(path, &b->f) < 0) return yt_lua_core_error(L);
    b->loaded = 1;
    lua_createtable(L, 0, b->f.count);
    for (int i = 0; i < b->f.count; i++) {
        yt_tensor *t = b->f.items[i].tensor;
        yt_tensor_retain(t);
        yt_lua_push_tensor(L, t);
        lua_setfield(L, -2, b->f.items[i].name);
    }
    push_metadata(L, &b->f);
    yt_tensor_file_free(&b->f);
    b->loaded = 0;
    return 2;
}

static int l_load_safetensors_metadata(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    tfile_box *b = yt_lua_new_scratch(L, sizeof *b, tfile_gc);
    if (yt_safetensors_load_metadata(path, &b->f) < 0) return yt_lua_core_error(L);
    b->loaded = 1;
    push_metadata(L, &b->f);
    yt_tensor_file_free(&b->f);
    b->loaded = 0;
    return 1;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Scratch arrays owned by a userdata so a Lua error cannot leak them. */
typedef struct {
    const char **names;
    yt_tensor **tensors;
    const char **mkeys, **mvals;
} save_scratch;

static int scratch_gc(lua_State *L)
{
    save_scratch *s = lua_touserdata(L, 1);
    free(s->names);
    free(s->tensors);
    free(s->mkeys);
    free(s->mvals);
    memset(s, 0, sizeof *s);
    return 0;
}

static int table_count(lua_State *L, int idx)
{
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    return n;
}

static int l_save_safetensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    int half = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "dtype");
        const char *dt = lua_tostring(L, -1);
        if (dt && strcmp(dt, "F16") == 0)
            half = 1;
        else if (dt && strcmp(dt, "F32") != 0)
            return luaL_error(L, "save_safetensors: dtype '%s' (F32 or F16)", dt);
        lua_pop(L, 1);
    }
    lua_settop(L, 3);
    save_scratch *s = yt_lua_new_scratch(L, sizeof *s, scratch_gc);
    /* the strings and tensors stay referenced by the argument tables during the call */
    int total = table_count(L, 2);
    s->names = calloc(total ? (size_t)total : 1, sizeof *s->names);
    s->tensors = calloc(total ? (size_t)total : 1, sizeof *s->tensors);
    if (!s->names || !s->tensors) return luaL_error(L, "save_safetensors: out of memory");
    int n = 0;
    lua_rawgeti(L, 2, 1);
    int array_form = lua_istable(L, -1) && !luaL_testudata(L, -1, YT_TENSOR_MT);
    lua_pop(L, 1);
    if (array_form) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, 2);
        if (len != total) return luaL_argerror(L, 2, "mixes an array of {name, tensor} with named entries");
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, 2, i);
            if (!lua_istable(L, -1))
                return luaL_error(L, "save_safetensors: entry %d is not a {name, tensor} pair", (int)i);
            lua_rawgeti(L, -1, 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "save_safetensors: entry %d: the name must be a string", (int)i);
            s->names[n] = lua_tostring(L, -1); /* kept alive by the entry table */
            lua_pop(L, 1);
            lua_rawgeti(L, -1, 2);
            s->tensors[n] = yt_lua_check_tensor(L, -1);
            lua_pop(L, 2);
            n++;
        }
    } else {
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "save_safetensors: tensor names must be strings");
            s->names[n++] = lua_tostring(L, -2);
            lua_pop(L, 1);
        }
        if (n > 1) qsort(s->names, (size_t)n, sizeof *s->names, cmp_cstr);
        for (int i = 0; i < n; i++) {
            lua_getfield(L, 2, s->names[i]);
            if (!luaL_testudata(L, -1, YT_TENSOR_MT))
                return luaL_error(L, "save_safetensors: '%s' is not a tensor", s->names[i]);
            s->tensors[i] = yt_lua_check_tensor(L, -1);
            lua_pop(L, 1);
        }
    }
    int nm = 0;
    if (!lua_isnil(L, 3)) {
        /* values converted to strings are stored in a helper table so they stay alive */
        lua_newtable(L);
        int keep = lua_gettop(L);
        int cnt = table_count(L, 3);
        s->mkeys = calloc(cnt ? (size_t)cnt : 1, sizeof *s->mkeys);
        s->mvals = calloc(cnt ? (size_t)cnt : 1, sizeof *s->mvals);
        if (!s->mkeys || !s->mvals) return luaL_error(L, "save_safetensors: out of memory");
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "save_safetensors: metadata keys must be strings");
            int vt = lua_type(L, -1);
            if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
                return luaL_error(L, "save_safetensors: metadata '%s' must be a string", lua_tostring(L, -2));
            s->mkeys[nm] = lua_tostring(L, -2);
            lua_pushvalue(L, -1);
            const char *v = lua_tostring(L, -1); /* converts a number copy, not the key */
            s->mvals[nm] = v;
            lua_rawseti(L, keep, nm + 1);
            lua_pop(L, 1);
            nm++;
        }
        /* sort metadata by key for deterministic files */
        for (int i = 1; i < nm; i++)
            for (int j = i; j > 0 && strcmp(s->mkeys[j], s->mkeys[j - 1]) < 0; j--) {
                const char *tk = s->mkeys[j], *tv = s->mvals[j];
                s->mkeys[j] = s->mkeys[j - 1];
                s->mvals[j] = s->mvals[j - 1];
                s->mkeys[j - 1] = tk;
                s->mvals[j - 1] = tv;
            }
    }
    int rc = yt_safetensors_save_as(path, n, s->names, s->tensors, nm, s->mkeys, s->mvals, half);
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

static const luaL_Reg io_functions[] = {
    {"load_yaml", l_load_yaml},
    {"load_yaml_string", l_load_yaml_string},
    {"dump_yaml", l_dump_yaml},
    {"load_safetensors", l_load_safetensors},
    {"load_safetensors_metadata", l_load_safetensors_metadata},
    {"save_safetensors", l_save_safetensors},
    {NULL, NULL},
};

void yt_lua_open_io(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, io_functions, 0);
    lua_pushlightuserdata(L, YT_NULL);
    lua_setfield(L, -2, "null");
    lua_pop(L, 1);
}
