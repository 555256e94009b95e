/* Downloads for Lua (io/download.h), stepped from Lua so that the caller draws the progress between steps.
 *
 *   local d = yt.io.download_begin(url, dest, { sha256 =, max_bytes =, connect_timeout =, stall_time =, stall_bytes =
 * }) d:poll(ms)      -> "running" | "done", or nil, message, transient (boolean), http_status d:progress()    ->
 * received, total (0 when the server did not say) d:close()       -- also by __close / __gc: stops a running transfer
 * and removes "<dest>.partial" yt.io.sha256_file(path) -> 64 lowercase hex digits */
#include <stdint.h>

#include "core/error.h"
#include "io/download.h"
#include "lua/yt_lua.h"

#define DOWNLOAD_MT "yt.Download"

typedef struct {
    yt_download *d;
} download_handle;

static download_handle *check_download(lua_State *L)
{
    download_handle *h = luaL_checkudata(L, 1, DOWNLOAD_MT);
    if (!h->d) luaL_error(L, "attempt to use a closed download");
    return h;
}

static lua_Integer opt_field(lua_State *L, int idx, const char *key, lua_Integer min)
{
    lua_getfield(L, idx, key);
    lua_Integer v = 0;
    if (!lua_isnil(L, -1)) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < min) luaL_error(L, "download option %s must be an integer >= %d", key, (int)min);
    }
    lua_pop(L, 1);
    return v;
}

static int l_download_begin(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    const char *dest = luaL_checkstring(L, 2);
    yt_download_opts o = {0};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        o.connect_timeout_s = (long)opt_field(L, 3, "connect_timeout", 1);
        o.stall_time_s = (long)opt_field(L, 3, "stall_time", 1);
        o.stall_bytes = (long)opt_field(L, 3, "stall_bytes", 1);
        o.max_bytes = (uint64_t)opt_field(L, 3, "max_bytes", 1);
        lua_getfield(L, 3, "sha256");
        if (!lua_isnil(L, -1)) o.sha256 = luaL_checkstring(L, -1); /* kept alive by the options table */
        lua_pop(L, 1);
    }
    download_handle *h = lua_newuserdatauv(L, sizeof *h, 0); /* the safe empty state first */
    h->d = NULL;
    luaL_setmetatable(L, DOWNLOAD_MT);
    h->d = yt_download_begin(url, dest, &o);
    if (!h->d) return yt_lua_core_error(L);
    return 1;
}

static int l_download_poll(lua_State *L)
{
    download_handle *h = check_download(L);
    lua_Integer ms = luaL_optinteger(L, 2, 100);
    luaL_argcheck(L, ms >= 0 && ms <= 60000, 2, "wait must be 0..60000 ms");
    int rc = yt_download_poll(h->d, (int)ms);
    if (rc == 1) {
        lua_pushliteral(L, "running");
        return 1;
    }
    if (rc == 0) {
        lua_pushliteral(L, "done");
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, yt_last_error());
    lua_pushboolean(L, yt_download_transient(h->d));
    lua_pushinteger(L, yt_download_http_status(h->d));
    return 4;
}

static int l_download_progress(lua_State *L)
{
    download_handle *h = check_download(L);
    uint64_t got, total;
    yt_download_progress(h->d, &got, &total);
    lua_pushinteger(L, (lua_Integer)got);
    lua_pushinteger(L, (lua_Integer)total);
    return 2;
}

static int l_download_close(lua_State *L)
{
    download_handle *h = luaL_checkudata(L, 1, DOWNLOAD_MT);
    yt_download_end(h->d);
    h->d = NULL;
    return 0;
}

static int l_sha256_file(lua_State *L)
{
    char hex[65];
    if (yt_sha256_file(luaL_checkstring(L, 1), hex) != 0) return yt_lua_core_error(L);
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg download_methods[] = {
    {"poll", l_download_poll},
    {"progress", l_download_progress},
    {"close", l_download_close},
    {NULL, NULL},
};

void yt_lua_open_download(lua_State *L, int module_index)
{
    luaL_newmetatable(L, DOWNLOAD_MT);
    luaL_newlib(L, download_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_download_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_download_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_download_begin);
    lua_setfield(L, module_index, "download_begin");
    lua_pushcfunction(L, l_sha256_file);
    lua_setfield(L, module_index, "sha256_file");
}
