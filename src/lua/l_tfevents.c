/* TensorBoard event files for Lua (the writer is io/tfevents.h; what a training logs is decided by
 * lua/yolotrain/utils/callbacks/tensorboard.lua).
 *
 *   local w = yt.io.tfevents_writer(dir)      -- creates dir/events.out.tfevents.<time>.<host>.<pid>.<n>
 *   w:path()
 *   w:scalar(tag, step, value)             -- queued, stamped with the wall clock now; value stored as float32
 *   w:flush()                              -- appends the queued records; raises "cannot write <file>: <reason>"
 *   w:close()                              -- flushes and closes (the GC closes a writer left open)
 * Every method of a closed writer raises "the TensorBoard writer is closed". */
#include "io/tfevents.h"
#include "lua/yt_lua.h"

#define TFEVENTS_MT "yt.TfeventsWriter"

typedef struct {
    yt_tfevents *w;
} writer;

static writer *check_writer(lua_State *L)
{
    writer *w = luaL_checkudata(L, 1, TFEVENTS_MT);
    if (!w->w) luaL_error(L, "the TensorBoard writer is closed");
    return w;
}

static int l_tfevents_writer(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    writer *w = lua_newuserdatauv(L, sizeof *w, 0);
    w->w = NULL;
    luaL_setmetatable(L, TFEVENTS_MT);
    w->w = yt_tfevents_open(dir, yt_tfevents_now());
    if (!w->w) return yt_lua_core_error(L);
    return 1;
}

static int writer_path(lua_State *L)
{
    lua_pushstring(L, yt_tfevents_path(check_writer(L)->w));
    return 1;
}

static int writer_scalar(lua_State *L)
{
    writer *w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    lua_Integer step = luaL_checkinteger(L, 3);
    lua_Number value = luaL_checknumber(L, 4);
    if (yt_tfevents_add_scalar(w->w, tag, (int64_t)step, (float)value, yt_tfevents_now()) < 0)
        return yt_lua_core_error(L);
    return 0;
}

static int writer_flush(lua_State *L)
{
    if (yt_tfevents_flush(check_writer(L)->w) < 0) return yt_lua_core_error(L);
    return 0;
}

static int writer_close(lua_State *L)
{
    writer *w = check_writer(L);
    int rc = yt_tfevents_close(w->w);
    w->w = NULL;
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

static int writer_gc(lua_State *L)
{
    writer *w = luaL_checkudata(L, 1, TFEVENTS_MT);
    yt_tfevents_close(w->w); /* nothing to report to at collection time */
    w->w = NULL;
    return 0;
}

void yt_lua_open_tfevents(lua_State *L, int module_index)
{
    static const luaL_Reg methods[] = {{"path", writer_path},
                                       {"scalar", writer_scalar},
                                       {"flush", writer_flush},
                                       {"close", writer_close},
                                       {NULL, NULL}};
    if (luaL_newmetatable(L, TFEVENTS_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, writer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_tfevents_writer);
    lua_setfield(L, module_index, "tfevents_writer");
}
