/* Helpers the whole Lua boundary shares, none of them about tensors (as lauxlib is to liolib; the tensor userdata
 * helpers are in l_tensor.c): raising the core error, scratch memory owned by the Lua stack, shapes, and reading
 * the fields of an options table with one message per mistake. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "lua/yt_lua.h"

int yt_lua_core_error(lua_State *L)
{
    luaL_where(L, 1);
    lua_pushstring(L, yt_last_error());
    lua_concat(L, 2);
    return lua_error(L);
}

void *yt_lua_new_scratch(lua_State *L, size_t size, lua_CFunction gc)
{
    void *p = lua_newuserdatauv(L, size ? size : 1, 0);
    memset(p, 0, size ? size : 1);
    if (!gc) return p;
    lua_newtable(L);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    return p;
}

int yt_lua_check_shape(lua_State *L, int idx, int64_t *shape)
{
    int ndim = 0;
    if (lua_istable(L, idx)) {
        ndim = (int)luaL_len(L, idx);
        if (ndim > YT_MAX_DIMS) luaL_argerror(L, idx, "too many dimensions");
        for (int d = 0; d < ndim; d++) {
            lua_geti(L, idx, d + 1);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok || v < -1) luaL_argerror(L, idx, "shape entries must be non-negative integers");
            shape[d] = v;
            lua_pop(L, 1);
        }
    } else {
        int top = lua_gettop(L);
        for (int i = idx; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
            if (ndim >= YT_MAX_DIMS) luaL_argerror(L, i, "too many dimensions");
            lua_Integer v = luaL_checkinteger(L, i);
            if (v < -1) luaL_argerror(L, i, "sizes must be non-negative");
            shape[ndim++] = v;
        }
    }
    return ndim;
}

double yt_lua_opt_number_field(lua_State *L, int t, const char *k, double def)
{
    if (lua_isnoneornil(L, t)) return def;
    lua_getfield(L, t, k);
    double v = def;
    if (!lua_isnil(L, -1)) {
        int ok;
        v = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "option '%s' must be a number", k);
    }
    lua_pop(L, 1);
    return v;
}

int yt_lua_opt_int_field(lua_State *L, int t, const char *k, int def)
{
    if (lua_isnoneornil(L, t)) return def;
    lua_getfield(L, t, k);
    int v = def;
    if (!lua_isnil(L, -1)) {
        int ok;
        lua_Integer x = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "option '%s' must be an integer", k);
        if (x < -2147483647 || x > 2147483647) luaL_error(L, "option '%s' is out of range", k);
        v = (int)x;
    }
    lua_pop(L, 1);
    return v;
}

int yt_lua_opt_bool_field(lua_State *L, int t, const char *k, int def)
{
    if (lua_isnoneornil(L, t)) return def;
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A required field: absent (nil) raises "option '<k>' is required". */
static void require_field(lua_State *L, int t, const char *k)
{
    luaL_checktype(L, t, LUA_TTABLE);
    if (lua_getfield(L, t, k) == LUA_TNIL) luaL_error(L, "option '%s' is required", k);
    lua_pop(L, 1);
}

double yt_lua_number_field(lua_State *L, int t, const char *k)
{
    require_field(L, t, k);
    return yt_lua_opt_number_field(L, t, k, 0);
}

int yt_lua_int_field(lua_State *L, int t, const char *k)
{
    require_field(L, t, k);
    return yt_lua_opt_int_field(L, t, k, 0);
}

int yt_lua_bool_field(lua_State *L, int t, const char *k)
{
    require_field(L, t, k);
    return yt_lua_opt_bool_field(L, t, k, 0);
}
