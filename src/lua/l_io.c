/* File formats for Lua: YAML (load/dump) and safetensors (load/save).
 *
 *   yt.load_yaml(path [, opts])       -> value          maps -> tables, sequences -> arrays, scalars typed like
 *   yt.load_yaml_string(text [,name [,opts]]) -> value  PyYAML's safe_load (YAML 1.1): ints (0x, 0o-style 017,
 *                                                       0b, 1_000), floats (1.5, .inf, -.inf, .nan, and 1e-3),
 *                                                       booleans (true/false/yes/no/on/off in any of the three
 *                                                       cases), null (~, null, empty). Quoted scalars stay strings
 *                                                       ("None" is a string, as in PyYAML).
 *       Nulls: a null map value leaves the key absent (t.key == nil); a null inside a sequence becomes the
 *       sentinel `yt.null` (a light userdata) so arrays stay dense; a null document returns nil.
 *       Errors name file:line:column. opts.key_order = true returns a second table: each map of the
 *       document -> the array of its keys in file order (Lua tables have none; a model's first scale needs it).
 *   yt.dump_yaml(value [, key_order]) -> string         block style; arrays of scalars (and nested arrays of
 *       scalars) in flow style `[a, b]`. key_order (array of keys) fixes the order of the top-level keys;
 *       other keys follow sorted (numbers, then strings, then booleans), nested maps are sorted. Strings are
 *       quoted when they would otherwise read back as something else. nil/yt.null -> null. Empty table -> [].
 *   yt.null                                             the sentinel above
 *
 *   yt.load_safetensors(path)         -> tensors, metadata     tensors: name -> tensor; metadata: key -> string
 *   yt.load_safetensors_metadata(path) -> metadata            the header checked, no tensor data read
 *                                                              (F16/BF16 entries load as F32 tensors)
 *   yt.save_safetensors(path, tensors [, metadata [, {dtype = "F16"}]])
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

static const char null_sentinel_key = 0; /* its address is yt.null */
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
        case YT_YAML_NULL: return 0;
        case YT_YAML_BOOL: lua_pushboolean(L, v.b); break;
        case YT_YAML_INT: lua_pushinteger(L, (lua_Integer)v.i); break;
        case YT_YAML_FLOAT: lua_pushnumber(L, v.f); break;
        case YT_YAML_STR: lua_pushlstring(L, n->value, n->length); break;
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
 * Lua -> YAML text
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

static int plain_safe_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '/' || c == '-' || c == '+' || c == ' ' || c == '(' || c == ')' || c == '=' || c >= 0x80;
}

static int needs_quotes(const char *s, size_t n)
{
    if (n == 0) return 1;
    if (yt_yaml_plain_type(s, n) != YT_YAML_STR) return 1;
    if (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '-' || s[0] == '+' || s[0] == '(' || s[0] == '=') {
        /* a leading '-' or '+' is fine before a letter/digit/dot (e.g. -foo), never alone or before a space */
        if ((s[0] == '-' || s[0] == '+') && n > 1 && s[1] != ' ' && s[1] != '-') {
            /* falls through to the character check */
        } else {
            return 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!plain_safe_char((unsigned char)s[i])) return 1;
    return 0;
}

static void add_string(luaL_Buffer *b, const char *s, size_t n)
{
    if (!needs_quotes(s, n)) {
        luaL_addlstring(b, s, n);
        return;
    }
    luaL_addchar(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        switch (c) {
        case '"': luaL_addstring(b, "\\\""); break;
        case '\\': luaL_addstring(b, "\\\\"); break;
        case '\n': luaL_addstring(b, "\\n"); break;
        case '\t': luaL_addstring(b, "\\t"); break;
        case '\r': luaL_addstring(b, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(tmp, sizeof tmp, "\\x%02x", c);
                luaL_addstring(b, tmp);
            } else {
                luaL_addchar(b, (char)c);
            }
        }
    }
    luaL_addchar(b, '"');
}

static void add_number(lua_State *L, luaL_Buffer *b, int idx)
{
    char tmp[64];
    if (lua_isinteger(L, idx)) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
        luaL_addstring(b, tmp);
        return;
    }
    double v = lua_tonumber(L, idx);
    if (v != v) {
        luaL_addstring(b, ".nan");
        return;
    }
    if (isinf(v)) {
        luaL_addstring(b, v > 0 ? ".inf" : "-.inf");
        return;
    }
    /* shortest text that reads back to the same double */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    /* make sure it reads back as a float, PyYAML style (1.0, 1.0e+20) */
    char out[72];
    char *e = strchr(tmp, 'e');
    if (!strchr(tmp, '.')) {
        if (e) {
            size_t m = (size_t)(e - tmp);
            snprintf(out, sizeof out, "%.*s.0%s", (int)m, tmp, e);
        } else {
            snprintf(out, sizeof out, "%s.0", tmp);
        }
    } else {
        snprintf(out, sizeof out, "%s", tmp);
    }
    luaL_addstring(b, out);
}

/* Scalars only (including nil/yt.null). The value is at idx; it is not popped. */
static void add_scalar(lua_State *L, luaL_Buffer *b, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL: luaL_addstring(b, "null"); return;
    case LUA_TBOOLEAN: luaL_addstring(b, lua_toboolean(L, idx) ? "true" : "false"); return;
    case LUA_TNUMBER: add_number(L, b, idx); return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        add_string(b, s, n);
        return;
    }
    default:
        if (is_null(L, idx)) {
            luaL_addstring(b, "null");
            return;
        }
        luaL_error(L, "dump_yaml: cannot write a %s", luaL_typename(L, idx));
    }
}

/* The writer renders into a growing C string owned by a userdata (freed by __gc even when a Lua error is raised
 * midway), since a luaL_Buffer forbids pushing values between its calls. */
typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static int strbuf_gc(lua_State *L)
{
    strbuf *sb = lua_touserdata(L, 1);
    free(sb->s);
    sb->s = NULL;
    return 0;
}

static void sb_add(lua_State *L, strbuf *sb, const char *s, size_t n)
{
    if (sb->n + n + 1 > sb->cap) {
        size_t nc = sb->cap ? sb->cap : 256;
        while (nc < sb->n + n + 1) nc *= 2;
        char *ns = realloc(sb->s, nc);
        if (!ns) luaL_error(L, "dump_yaml: out of memory");
        sb->s = ns;
        sb->cap = nc;
    }
    memcpy(sb->s + sb->n, s, n);
    sb->n += n;
    sb->s[sb->n] = 0;
}

/* Renders a scalar through a temporary luaL_Buffer and appends it. */
static void sb_scalar(lua_State *L, strbuf *sb, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_scalar(L, &b, idx);
    luaL_pushresult(&b);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    sb_add(L, sb, s, n);
    lua_pop(L, 1);
}

static void sb_indent(lua_State *L, strbuf *sb, int indent)
{
    for (int i = 0; i < indent; i++) sb_add(L, sb, " ", 1);
}

static void write_flow(lua_State *L, strbuf *sb, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) {
        sb_scalar(L, sb, idx);
        return;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    sb_add(L, sb, "[", 1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1) sb_add(L, sb, ", ", 2);
        lua_rawgeti(L, idx, i);
        write_flow(L, sb, -1);
        lua_pop(L, 1);
    }
    sb_add(L, sb, "]", 1);
}

/* Key sorting: numbers < strings < booleans. */
static int key_rank(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: return 0;
    case LUA_TSTRING: return 1;
    case LUA_TBOOLEAN: return 2;
    default: return 3;
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

static void write_block(lua_State *L, strbuf *sb, int idx, int indent, int order_idx, int depth);

static void write_key(lua_State *L, strbuf *sb, int kidx)
{
    sb_scalar(L, sb, kidx);
    sb_add(L, sb, ":", 1);
}

/* A value after "key:" (nested_flow 0: only scalars and arrays of scalars go inline) or "- " (nested_flow 1:
 * any flow-able array goes inline), else newline + nested block. So a model's layer list is written one layer
 * per line: `backbone:` / `  - [-1, 1, Conv, [64, 3, 2]]`. */
static void write_value(lua_State *L, strbuf *sb, int vidx, int indent, int depth, int nested_flow)
{
    vidx = lua_absindex(L, vidx);
    if (flowable(L, vidx, nested_flow ? FLOW_LEVELS : 1)) {
        sb_add(L, sb, " ", 1);
        write_flow(L, sb, vidx);
        sb_add(L, sb, "\n", 1);
        return;
    }
    if (!lua_istable(L, vidx)) luaL_error(L, "dump_yaml: cannot write a %s", luaL_typename(L, vidx));
    /* non-empty map, or an array containing maps */
    sb_add(L, sb, "\n", 1);
    write_block(L, sb, vidx, indent + 2, 0, depth + 1);
}

static void write_block(lua_State *L, strbuf *sb, int idx, int indent, int order_idx, int depth)
{
    if (depth > 100) luaL_error(L, "dump_yaml: nesting deeper than 100 levels (a cycle?)");
    luaL_checkstack(L, 10, "dump_yaml: too deep");
    idx = lua_absindex(L, idx);
    if (is_array(L, idx)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            sb_indent(L, sb, indent);
            sb_add(L, sb, "-", 1);
            if (!flowable(L, -1, FLOW_LEVELS) && !is_array(L, -1)) {
                /* a map: its first key goes on the dash line */
                sb_add(L, sb, " ", 1);
                size_t mark = sb->n;
                write_block(L, sb, -1, indent + 2, 0, depth + 1);
                /* drop the indentation written before the first key */
                size_t skip = (size_t)(indent + 2);
                if (sb->n >= mark + skip) {
                    memmove(sb->s + mark, sb->s + mark + skip, sb->n - mark - skip + 1);
                    sb->n -= skip;
                }
            } else {
                write_value(L, sb, -1, indent, depth, 1);
            }
            lua_pop(L, 1);
        }
        return;
    }
    push_sorted_keys(L, idx, order_idx);
    int keys = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, keys);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, keys, i);
        sb_indent(L, sb, indent);
        write_key(L, sb, lua_gettop(L));
        lua_pushvalue(L, -1);
        lua_rawget(L, idx);
        write_value(L, sb, -1, indent, depth, 0);
        lua_pop(L, 2);
    }
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
    strbuf *sb = yt_lua_new_scratch(L, sizeof *sb, strbuf_gc);
    if (lua_istable(L, 1) && !flowable(L, 1, 1)) {
        write_block(L, sb, 1, 0, order_idx, 0);
    } else {
        /* a scalar or a flow array document */
        write_flow(L, sb, 1);
        sb_add(L, sb, "\n", 1);
    }
    lua_pushlstring(L, sb->s ? sb->s : "", sb->n);
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
    lua_createtable(L, 0, b->f.n_meta);
    for (int i = 0; i < b->f.n_meta; i++) {
        lua_pushstring(L, b->f.meta_values[i]);
        lua_setfield(L, -2, b->f.meta_keys[i]);
    }
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
    lua_createtable(L, 0, b->f.n_meta);
    for (int i = 0; i < b->f.n_meta; i++) {
        lua_pushstring(L, b->f.meta_values[i]);
        lua_setfield(L, -2, b->f.meta_keys[i]);
    }
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
        if (dt && strcmp(dt, "F16") == 0) half = 1;
        else if (dt && strcmp(dt, "F32") != 0) return luaL_error(L, "save_safetensors: dtype '%s' (F32 or F16)", dt);
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
            if (!lua_istable(L, -1)) return luaL_error(L, "save_safetensors: entry %d is not a {name, tensor} pair", (int)i);
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
    {"load_yaml", l_load_yaml}, {"load_yaml_string", l_load_yaml_string}, {"dump_yaml", l_dump_yaml},
    {"load_safetensors", l_load_safetensors}, {"load_safetensors_metadata", l_load_safetensors_metadata},
    {"save_safetensors", l_save_safetensors}, {NULL, NULL},
};

void yt_lua_open_io(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, io_functions, 0);
    lua_pushlightuserdata(L, YT_NULL);
    lua_setfield(L, -2, "null");
    lua_pop(L, 1);
}
