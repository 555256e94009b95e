/* The yolotrain.core module: every area's names at the top, and each grouped area's also in yt.<group>
 * (src/lua/modules.def says which). */
#include <string.h>

#include "lua/yt_lua.h"

/* Copies the names the area just opened added to the module (those not in the table at `before`) into
 * module.<group>, dropping a "<group>_" prefix. */
static void group_new_names(lua_State *L, int module_index, int before, const char *group)
{
    if (lua_getfield(L, module_index, group) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, module_index, group);
    }
    int grouped = lua_gettop(L);
    size_t prefix = strlen(group);
    lua_pushnil(L);
    while (lua_next(L, module_index)) {
        /* key, value */
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && strcmp(k, group) != 0) {
            int existed = lua_getfield(L, before, k) != LUA_TNIL;
            lua_pop(L, 1);
            const char *shortname = strncmp(k, group, prefix) == 0 && k[prefix] == '_' ? k + prefix + 1 : k;
            if (!existed) {
                lua_pushvalue(L, -1);
                lua_setfield(L, grouped, shortname);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* A shallow copy of the module's names so far. */
static int snapshot(lua_State *L, int module_index)
{
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, module_index)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
    return lua_gettop(L);
}

static void open_area(lua_State *L, int module_index, void (*open)(lua_State *, int), const char *group)
{
    int before = group ? snapshot(L, module_index) : 0;
    open(L, module_index);
    if (group) {
        group_new_names(L, module_index, before, group);
        lua_remove(L, before);
    }
}

int yt_lua_open_core(lua_State *L)
{
    lua_newtable(L);
    int module_index = lua_gettop(L);
#define YT_LUA_MODULE(name, group) open_area(L, module_index, yt_lua_open_##name, group);
#include "lua/modules.def"
#undef YT_LUA_MODULE
    lua_pushstring(L, YT_VERSION);
    lua_setfield(L, module_index, "version");
    return 1;
}
