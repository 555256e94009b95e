/* libFuzzer harness: the Lua reader 'cli' of tests/fuzz/targets.lua (see lua_target.h). */
#define FUZZ_TARGET "cli"
#include "lua_target.h"
