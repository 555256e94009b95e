/* Unpacking of zip and tar archives for Lua (io/unpack.h).
 *
 *   yt.io.unpack(archive, parent, name [, {max_bytes =, max_entries =}]) -> final folder, {bytes =, entries =}
 *       staged in parent/<name>.tmp.<pid>, renamed to parent/<its one top folder> or parent/<name>
 *   yt.io.unpack_into(archive, dir [, limits]) -> {bytes =, entries =}     -- into an existing folder, no staging
 *   yt.io.remove_tree(path)                                                -- rm -r, never following links */
#include <limits.h>
#include <stdint.h>

#include "core/error.h"
#include "io/unpack.h"
#include "lua/yt_lua.h"

static void check_limits(lua_State *L, int idx, yt_unpack_limits *lim)
{
    lim->max_bytes = lim->max_entries = 0;
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    const char *keys[2] = {"max_bytes", "max_entries"};
    uint64_t *dst[2] = {&lim->max_bytes, &lim->max_entries};
    for (int i = 0; i < 2; i++) {
        lua_getfield(L, idx, keys[i]);
        if (!lua_isnil(L, -1)) {
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok || v < 1) luaL_error(L, "unpack limit %s must be an integer >= 1", keys[i]);
            *dst[i] = (uint64_t)v;
        }
        lua_pop(L, 1);
    }
}

static void push_stats(lua_State *L, const yt_unpack_stats *st)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)st->bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushinteger(L, (lua_Integer)st->entries);
    lua_setfield(L, -2, "entries");
}

static int l_unpack(lua_State *L)
{
    const char *archive = luaL_checkstring(L, 1);
    const char *parent = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    yt_unpack_limits lim;
    check_limits(L, 4, &lim);
    char out[PATH_MAX];
    yt_unpack_stats st = {0};
    if (yt_unpack(archive, parent, name, &lim, out, sizeof out, &st) != 0) return yt_lua_core_error(L);
    lua_pushstring(L, out);
    push_stats(L, &st);
    return 2;
}

static int l_unpack_into(lua_State *L)
{
    const char *archive = luaL_checkstring(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    yt_unpack_limits lim;
    check_limits(L, 3, &lim);
    yt_unpack_stats st = {0};
    if (yt_unpack_into(archive, dir, &lim, &st) != 0) return yt_lua_core_error(L);
    push_stats(L, &st);
    return 1;
}

static int l_remove_tree(lua_State *L)
{
    if (yt_remove_tree(luaL_checkstring(L, 1)) != 0) return yt_lua_core_error(L);
    return 0;
}

static const luaL_Reg unpack_functions[] = {
    {"unpack", l_unpack},
    {"unpack_into", l_unpack_into},
    {"remove_tree", l_remove_tree},
    {NULL, NULL},
};

void yt_lua_open_unpack(lua_State *L, int module_index)
{
    for (const luaL_Reg *r = unpack_functions; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, module_index, r->name);
    }
}
