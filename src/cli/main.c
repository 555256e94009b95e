/* yolotrain executable: runs a recipe with the engine's Lua path set up. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/yt_lua.h"

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, yt_lua_open_core);
    lua_setfield(L, -2, "yolotrain.core");
    lua_pop(L, 1);
    int rc = 0;
    if (argc > 1 && luaL_dofile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "yolotrain: %s\n", lua_tostring(L, -1));
        rc = 1;
    }
    lua_close(L);
    return rc;
}
