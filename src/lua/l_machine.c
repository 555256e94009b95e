/* Machine probes for benchmarks and memory tests: yt.machine.sgemm_gflops(n, seconds), yt.machine.now(),
 * yt.machine.rss(), yt.machine.peak_rss(). */
#include "core/machine.h"
#include "lua/yt_lua.h"

static int l_sgemm_gflops(lua_State *L)
{
    int n = (int)luaL_optinteger(L, 1, 1024);
    double secs = luaL_optnumber(L, 2, 1.0);
    luaL_argcheck(L, n > 0 && n <= 8192, 1, "size must be 1..8192");
    lua_pushnumber(L, yt_measure_sgemm_gflops(n, secs));
    return 1;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, yt_now());
    return 1;
}

static int l_rss(lua_State *L)
{
    lua_pushinteger(L, yt_rss_bytes());
    return 1;
}

static int l_peak_rss(lua_State *L)
{
    lua_pushinteger(L, yt_peak_rss_bytes());
    return 1;
}

static const luaL_Reg functions[] = {
    {"sgemm_gflops", l_sgemm_gflops}, {"now", l_now}, {"rss", l_rss}, {"peak_rss", l_peak_rss}, {NULL, NULL},
};

void yt_lua_open_machine(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
