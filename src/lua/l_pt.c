/* PyTorch `.pt` checkpoints for Lua (the reader is io/pt.h: data only, nothing executed).
 *
 *   yt.io.load_pt(path) -> checkpoint
 *       The pickled object as plain Lua values: dicts -> tables (string / integer / float / boolean keys; a None
 *       value leaves the key absent), lists and tuples -> arrays (None -> yt.io.null), str and bytes -> strings,
 *       tensors -> tensors (fp16/fp32 -> F32, integers -> I64), a global name -> its "module.name" string.
 *       A numpy scalar (np.float64(0.01) ...) -> a number.
 *       An object -> a table with __class = "module.Class" and its attributes (its BUILD state). A pickled
 *       nn.Module additionally gets `state_dict` (name -> tensor, names as torch's state_dict() gives them) and
 *       `state_dict_order` (the names in state_dict() order); its private attributes (`_modules`, `_parameters`,
 *       `_buffers`, `_forward_hooks` ...) are left out, so submodules appear only through the state dict.
 *       Other objects without a dict state get `__args` (constructor arguments) and `__state`.
 *       Nesting deeper than YT_PK_MAX_DEPTH (which includes any cycle) is an error. */
#include <string.h>

#include "core/error.h"
#include "io/pt.h"
#include "lua/yt_lua.h"

typedef struct {
    yt_pt *pt;
} pt_handle;

static int handle_gc(lua_State *L)
{
    pt_handle *h = lua_touserdata(L, 1);
    yt_pt_close(h->pt);
    h->pt = NULL;
    return 0;
}

typedef struct {
    lua_State *L;
    yt_pt *pt;
    int null_idx; /* stack index of yt.io.null */
} converter;

static void push_value(converter *c, const yt_pk *v, int depth);

static void push_state_dict(converter *c, const yt_pk *module)
{
    lua_State *L = c->L;
    yt_tensor_file sd;
    if (yt_pt_state_dict(c->pt, module, &sd) < 0) yt_lua_core_error(L);
    lua_createtable(L, 0, sd.count);
    lua_createtable(L, sd.count, 0);
    for (int i = 0; i < sd.count; i++) {
        lua_pushstring(L, sd.items[i].name);
        lua_rawseti(L, -2, i + 1);
        yt_tensor_retain(sd.items[i].tensor);
        lua_pushstring(L, sd.items[i].name);
        yt_lua_push_tensor(L, sd.items[i].tensor);
        lua_rawset(L, -4);
    }
    yt_tensor_file_free(&sd);
    lua_setfield(L, -3, "state_dict_order");
    lua_setfield(L, -2, "state_dict");
}

/* dict entries into the table on top; skip_private drops keys starting with '_' (a module's internals). */
static void set_entries(converter *c, const yt_pk *dict, int depth, int skip_private)
{
    lua_State *L = c->L;
    for (size_t k = 0; k + 1 < dict->n; k += 2) {
        const yt_pk *key = dict->items[k], *value = dict->items[k + 1];
        if (value->kind == YT_PK_NONE) continue;
        switch (key->kind) {
        case YT_PK_STR:
            if (skip_private && key->s[0] == '_') continue;
            lua_pushlstring(L, key->s, key->len);
            break;
        case YT_PK_INT:
        case YT_PK_BOOL:
        case YT_PK_FLOAT:
            push_value(c, key, depth + 1);
            break;
        default:
            luaL_error(L, "%s: a dict key of type %s", yt_pt_name(c->pt), yt_pk_kind_name(key->kind));
        }
        push_value(c, value, depth + 1);
        lua_rawset(L, -3);
    }
}

static void push_object(converter *c, const yt_pk *v, int depth)
{
    lua_State *L = c->L;
    lua_newtable(L);
    lua_pushstring(L, v->s);
    lua_setfield(L, -2, "__class");
    const yt_pk *state = v->items[1];
    if (state->kind == YT_PK_TUPLE && state->n == 2 && state->items[0]->kind == YT_PK_DICT) state = state->items[0];
    int module = yt_pt_is_module(v);
    if (state->kind == YT_PK_DICT)
        set_entries(c, state, depth, module);
    else {
        push_value(c, state, depth + 1);
        lua_setfield(L, -2, "__state");
    }
    if (v->items[0]->n) {
        push_value(c, v->items[0], depth + 1);
        lua_setfield(L, -2, "__args");
    }
    if (module) push_state_dict(c, v);
}

static void push_value(converter *c, const yt_pk *v, int depth)
{
    lua_State *L = c->L;
    if (depth > YT_PK_MAX_DEPTH)
        luaL_error(L, "%s: values nested deeper than %d (a cycle?)", yt_pt_name(c->pt), YT_PK_MAX_DEPTH);
    luaL_checkstack(L, 8, "checkpoint nesting");
    switch (v->kind) {
    case YT_PK_NONE:
        lua_pushvalue(L, c->null_idx);
        break;
    case YT_PK_BOOL:
        lua_pushboolean(L, (int)v->i);
        break;
    case YT_PK_INT:
        lua_pushinteger(L, (lua_Integer)v->i);
        break;
    case YT_PK_FLOAT:
        lua_pushnumber(L, v->f);
        break;
    case YT_PK_STR:
    case YT_PK_BYTES:
    case YT_PK_GLOBAL:
        lua_pushlstring(L, v->s, v->len);
        break;
    case YT_PK_TUPLE:
    case YT_PK_LIST:
        lua_createtable(L, (int)v->n, 0);
        for (size_t k = 0; k < v->n; k++) {
            push_value(c, v->items[k], depth + 1);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        break;
    case YT_PK_DICT:
        lua_createtable(L, 0, (int)(v->n / 2));
        set_entries(c, v, depth, 0);
        break;
    case YT_PK_OBJECT: {
        double f;
        int64_t i;
        int is_int;
        if (!yt_pk_numpy_scalar(v, &f, &i, &is_int))
            push_object(c, v, depth);
        else if (is_int)
            lua_pushinteger(L, (lua_Integer)i);
        else
            lua_pushnumber(L, f);
        break;
    }
    case YT_PK_TENSOR:
        yt_lua_push_tensor(L, yt_pt_tensor(c->pt, v));
        break;
    default:
        luaL_error(L, "%s: a bare %s in the checkpoint", yt_pt_name(c->pt), yt_pk_kind_name(v->kind));
    }
}

static int l_load_pt(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1)); /* yt.io.null */
    int null_idx = lua_gettop(L);
    pt_handle *h = yt_lua_new_scratch(L, sizeof *h, handle_gc); /* closes the file even when an error is raised */
    h->pt = yt_pt_open(path);
    if (!h->pt) return yt_lua_core_error(L);
    converter c = {L, h->pt, null_idx};
    const yt_pk *root = yt_pt_root(h->pt);
    if (root->kind == YT_PK_NONE)
        lua_pushnil(L);
    else
        push_value(&c, root, 0);
    yt_pt_close(h->pt);
    h->pt = NULL;
    return 1;
}

void yt_lua_open_pt(lua_State *L, int module_index)
{
    lua_getfield(L, module_index, "null");
    if (lua_isnil(L, -1)) luaL_error(L, "yt.io.null must be registered (l_io) before l_pt");
    lua_pushcclosure(L, l_load_pt, 1);
    lua_setfield(L, module_index, "load_pt");
}
