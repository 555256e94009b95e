/* ONNX files for Lua (the writer is io/onnx.h; what the graph computes is built by lua/yolotrain/engine/exporter.lua).
 *
 *   local w = yt.io.onnx_writer{ graph = "main_graph", opset = 17, producer = "yolotrain", version = yt.version }
 *   w:initializer(name, tensor)                      -- float32 or int64 weights and constants
 *   w:node(op_type, name, {inputs}, {outputs}[, attrs])
 *       attrs: name -> integer (INT), float (FLOAT), string (STRING), list of integers (INTS) or a list with a
 *       float in it (FLOATS); written in name order, so the file does not depend on table iteration
 *   w:input(name, dims) / w:output(name, dims)       -- float32 tensors; a dim is a size or a symbolic name
 *   w:metadata(key, value)
 *   w:save(path)                                     -- durable: temporary file, fsync, rename
 *   w:close()                                        -- frees it now (the GC does otherwise)
 *   yt.io.onnx_min_opset, yt.io.onnx_max_opset             -- the opsets the writer accepts (io/onnx.h) */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/onnx.h"
#include "lua/yt_lua.h"

#define WRITER_MT "yt.OnnxWriter"
#define MAX_NAMES 4096 /* inputs or outputs of one node, attributes of one node */

typedef struct {
    yt_onnx *m;
} writer;

static writer *check_writer(lua_State *L)
{
    writer *w = luaL_checkudata(L, 1, WRITER_MT);
    if (!w->m) luaL_error(L, "the ONNX writer is closed");
    return w;
}

static int writer_close(lua_State *L)
{
    writer *w = luaL_checkudata(L, 1, WRITER_MT);
    yt_onnx_free(w->m);
    w->m = NULL;
    return 0;
}

static int l_onnx_writer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "graph");
    lua_getfield(L, 1, "opset");
    lua_getfield(L, 1, "producer");
    lua_getfield(L, 1, "version");
    const char *graph = luaL_optstring(L, -4, "main_graph");
    int opset = (int)luaL_checkinteger(L, -3);
    const char *producer = luaL_optstring(L, -2, "yolotrain");
    const char *version = luaL_optstring(L, -1, YT_VERSION);
    writer *w = lua_newuserdatauv(L, sizeof *w, 0);
    w->m = NULL;
    luaL_setmetatable(L, WRITER_MT);
    w->m = yt_onnx_new(graph, opset, producer, version);
    if (!w->m) return yt_lua_core_error(L);
    return 1;
}

/* The strings of the list at idx into a scratch array (lives on the Lua stack until the call returns). */
static const char **string_list(lua_State *L, int idx, size_t *n, const char *what)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len < 0 || len > MAX_NAMES) luaL_error(L, "%s: %d names (at most %d)", what, (int)len, MAX_NAMES);
    const char **out = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *out, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s[%d] is not a string", what, (int)i);
        out[i - 1] = lua_tostring(L, -1); /* the table keeps the string alive */
        lua_pop(L, 1);
    }
    *n = (size_t)len;
    return out;
}

static int compare_attr(const void *a, const void *b)
{
    return strcmp(((const yt_onnx_attr *)a)->name, ((const yt_onnx_attr *)b)->name);
}

/* One attribute value at the top of the stack into a; its arrays are userdata kept in the table at keep. */
static void read_attr(lua_State *L, yt_onnx_attr *a, const char *node, int keep)
{
    int t = lua_gettop(L);
    switch (lua_type(L, t)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, t))
            a->kind = YT_ONNX_ATTR_INT, a->i = lua_tointeger(L, t);
        else
            a->kind = YT_ONNX_ATTR_FLOAT, a->f = (float)lua_tonumber(L, t);
        break;
    case LUA_TSTRING:
        a->kind = YT_ONNX_ATTR_STRING;
        a->s = lua_tostring(L, t);
        break;
    case LUA_TTABLE: {
        lua_Integer len = luaL_len(L, t);
        if (len < 0 || len > MAX_NAMES) luaL_error(L, "node %s: attribute %s has %d values", node, a->name, (int)len);
        int floats = 0;
        for (lua_Integer i = 1; i <= len; i++) {
            if (lua_rawgeti(L, t, i) != LUA_TNUMBER)
                luaL_error(L, "node %s: attribute %s[%d] is not a number", node, a->name, (int)i);
            if (!lua_isinteger(L, -1)) floats = 1;
            lua_pop(L, 1);
        }
        a->n = (size_t)len;
        if (floats) {
            float *v = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *v, 0);
            for (lua_Integer i = 1; i <= len; i++, lua_pop(L, 1))
                v[i - 1] = (lua_rawgeti(L, t, i), (float)lua_tonumber(L, -1));
            a->kind = YT_ONNX_ATTR_FLOATS, a->floats = v;
        } else {
            int64_t *v = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *v, 0);
            for (lua_Integer i = 1; i <= len; i++, lua_pop(L, 1))
                v[i - 1] = (lua_rawgeti(L, t, i), lua_tointeger(L, -1));
            a->kind = YT_ONNX_ATTR_INTS, a->ints = v;
        }
        lua_rawseti(L, keep, (lua_Integer)lua_rawlen(L, keep) + 1);
        break;
    }
    default:
        luaL_error(L, "node %s: attribute %s is a %s", node, a->name, luaL_typename(L, t));
    }
}

static int writer_node(lua_State *L)
{
    writer *w = check_writer(L);
    const char *op = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    lua_settop(L, 6); /* the scratch arrays go above the arguments */
    size_t n_in, n_out, n_attrs = 0;
    const char **inputs = string_list(L, 4, &n_in, "inputs");
    const char **outputs = string_list(L, 5, &n_out, "outputs");
    yt_onnx_attr *attrs = NULL;
    if (!lua_isnoneornil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        attrs = lua_newuserdatauv(L, MAX_NAMES * sizeof *attrs, 0);
        lua_newtable(L);
        int keep = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, 6)) {
            if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "node %s: attribute names must be strings", name);
            if (n_attrs == MAX_NAMES) luaL_error(L, "node %s: more than %d attributes", name, MAX_NAMES);
            yt_onnx_attr *a = &attrs[n_attrs++];
            memset(a, 0, sizeof *a);
            a->name = lua_tostring(L, -2);
            read_attr(L, a, name, keep);
            lua_pop(L, 1);
        }
        qsort(attrs, n_attrs, sizeof *attrs, compare_attr);
    }
    if (yt_onnx_add_node(w->m, op, name, inputs, n_in, outputs, n_out, attrs, n_attrs) < 0) return yt_lua_core_error(L);
    return 0;
}

static int writer_initializer(lua_State *L)
{
    writer *w = check_writer(L);
    const char *name = luaL_checkstring(L, 2);
    yt_tensor *t = yt_lua_check_tensor(L, 3);
    if (yt_onnx_add_initializer(w->m, name, t) < 0) return yt_lua_core_error(L);
    return 0;
}

static int add_value(lua_State *L, int which)
{
    writer *w = check_writer(L);
    const char *name = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer rank = luaL_len(L, 3);
    if (rank < 0 || rank > YT_MAX_DIMS) luaL_error(L, "%s: rank %d (at most %d)", name, (int)rank, YT_MAX_DIMS);
    int64_t dims[YT_MAX_DIMS] = {0};
    const char *params[YT_MAX_DIMS] = {0};
    for (lua_Integer i = 1; i <= rank; i++) {
        lua_rawgeti(L, 3, i);
        if (lua_type(L, -1) == LUA_TSTRING)
            params[i - 1] = lua_tostring(L, -1);
        else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0)
            dims[i - 1] = lua_tointeger(L, -1);
        else
            luaL_error(L, "%s: dimension %d is neither a size nor a name", name, (int)i);
        lua_pop(L, 1); /* the dims table keeps the strings alive */
    }
    if (yt_onnx_add_value(w->m, which, name, YT_ONNX_FLOAT, (int)rank, dims, params) < 0) return yt_lua_core_error(L);
    return 0;
}

static int writer_input(lua_State *L) { return add_value(L, YT_ONNX_INPUT); }
static int writer_output(lua_State *L) { return add_value(L, YT_ONNX_OUTPUT); }

static int writer_metadata(lua_State *L)
{
    writer *w = check_writer(L);
    if (yt_onnx_add_metadata(w->m, luaL_checkstring(L, 2), luaL_checkstring(L, 3)) < 0) return yt_lua_core_error(L);
    return 0;
}

static int writer_save(lua_State *L)
{
    writer *w = check_writer(L);
    if (yt_onnx_save(w->m, luaL_checkstring(L, 2)) < 0) return yt_lua_core_error(L);
    return 0;
}

void yt_lua_open_onnx(lua_State *L, int module_index)
{
    static const luaL_Reg methods[] = {{"node", writer_node},         {"initializer", writer_initializer},
                                       {"input", writer_input},       {"output", writer_output},
                                       {"metadata", writer_metadata}, {"save", writer_save},
                                       {"close", writer_close},       {NULL, NULL}};
    if (luaL_newmetatable(L, WRITER_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, writer_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_onnx_writer);
    lua_setfield(L, module_index, "onnx_writer");
    lua_pushinteger(L, YT_ONNX_MIN_OPSET);
    lua_setfield(L, module_index, "onnx_min_opset");
    lua_pushinteger(L, YT_ONNX_MAX_OPSET);
    lua_setfield(L, module_index, "onnx_max_opset");
}
