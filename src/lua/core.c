#include "lua/yt_lua.h"

int yt_lua_open_core(lua_State *L)
{
    lua_newtable(L);
    int module_index = lua_gettop(L);
#define YT_LUA_MODULE(name) yt_lua_open_##name(L, module_index);
#include "lua/modules.def"
#undef YT_LUA_MODULE
    lua_pushstring(L, YT_VERSION);
    lua_setfield(L, module_index, "version");
    return 1;
}
