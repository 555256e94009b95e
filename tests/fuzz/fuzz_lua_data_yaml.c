/* libFuzzer harness: the Lua reader 'data_yaml' of tests/fuzz/targets.lua (see lua_target.h). */
#define FUZZ_TARGET "data_yaml"
#include "lua_target.h"
