/* Entry point of build/lua/yolotrain/core.so for `require("yolotrain.core")` from any Lua 5.4. */
#include "lua/yt_lua.h"

int luaopen_yolotrain_core(lua_State *L);

__attribute__((visibility("default"))) int luaopen_yolotrain_core(lua_State *L) { return yt_lua_open_core(L); }
