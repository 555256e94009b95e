/* libFuzzer harness: the Lua reader 'resume_meta' of tests/fuzz/targets.lua (see lua_target.h). */
#define FUZZ_TARGET "resume_meta"
#include "lua_target.h"
