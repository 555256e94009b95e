/* libFuzzer harness: the Lua reader 'results_csv' of tests/fuzz/targets.lua (see lua_target.h). */
#define FUZZ_TARGET "results_csv"
#include "lua_target.h"
