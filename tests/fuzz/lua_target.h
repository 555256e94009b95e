/* The body of a libFuzzer harness for a reader written in Lua (tests/fuzz/targets.lua): the harness defines
 * FUZZ_TARGET (the name of a function of that table) and includes this file. One Lua state with yolotrain's
 * modules serves all inputs; each input is passed as a string. A Lua error with a message is a clean refusal;
 * a Lua runtime error (indexing nil, a bad argument to a library function, ...) means the reader let bad input
 * reach code that does not expect it, and stops the run like a crash.
 *
 * Debian's Lua interpreter is not instrumented, so libFuzzer would see none of the Lua code it drives: a line hook
 * maps each (function source, line) run to a slot of an extra coverage-counter array that libFuzzer reads like its
 * own, which makes the Lua readers coverage-guided too. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "lua/yt_lua.h"

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET before including lua_target.h"
#endif

static lua_State *fuzz_L;
static int fuzz_run_ref;
static char fuzz_dir[] = "/tmp/yt_fuzz_XXXXXX";

#define LUA_COVERAGE_SLOTS (1 << 16)
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_coverage[LUA_COVERAGE_SLOTS];

static void count_line(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar)) return;
    /* a chunk's source string is interned: its address names the file */
    uint64_t h =
        ((uint64_t)(uintptr_t)ar->source * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)ar->currentline * 0xC2B2AE3D27D4EB4FULL);
    lua_coverage[(h >> 32) % LUA_COVERAGE_SLOTS]++;
}

static int open_core(lua_State *L) { return yt_lua_open_core(L); }

static void remove_fuzz_dir(void)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fuzz_dir);
}

static void fuzz_init(void)
{
    if (!mkdtemp(fuzz_dir)) abort();
    atexit(remove_fuzz_dir);
    lua_State *L = luaL_newstate();
    if (!L) abort();
    luaL_openlibs(L);
    luaL_requiref(L, "yolotrain.core", open_core, 0);
    lua_pop(L, 1);
    const char *setup = "package.path = ... .. '/?.lua;' .. ... .. '/?/init.lua;' .. select(2, ...) .. '/?.lua;' "
                        ".. package.path\n"
                        "return require('targets')";
    if (luaL_loadstring(L, setup) != LUA_OK) abort();
    lua_pushstring(L, YT_SOURCE_LUA_DIR);
    lua_pushstring(L, YT_FUZZ_DIR);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        fprintf(stderr, "fuzz: cannot load tests/fuzz/targets.lua: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_getfield(L, -1, "setup");
    lua_pushstring(L, fuzz_dir);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "run");
    fuzz_run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    fuzz_L = L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_L) fuzz_init();
    lua_State *L = fuzz_L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_run_ref);
    lua_pushstring(L, FUZZ_TARGET);
    lua_pushlstring(L, (const char *)data, size);
    lua_sethook(L, count_line, LUA_MASKLINE, 0);
    int rc = lua_pcall(L, 2, 1, 0);
    lua_sethook(L, NULL, 0, 0);
    if (rc != LUA_OK) {
        fprintf(stderr, "fuzz: the target runner failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (lua_isstring(L, -1)) {
        fprintf(stderr, "fuzz: %s: internal error on this input (not a clean refusal):\n%s\n", FUZZ_TARGET,
                lua_tostring(L, -1));
        abort();
    }
    lua_pop(L, 1);
    static unsigned runs;
    if (++runs % 256 == 0) lua_gc(L, LUA_GCCOLLECT); /* keeps the shared state's heap flat */
    yt_clear_error();
    return 0;
}
