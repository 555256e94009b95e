/* libFuzzer harness: the Lua reader 'args_yaml' of tests/fuzz/targets.lua (see lua_target.h). */
#define FUZZ_TARGET "args_yaml"
#include "lua_target.h"
