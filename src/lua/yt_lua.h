/* The Lua <-> C boundary. Only files in src/lua (and src/cli) include lua.h.
 *
 * Each area registers its functions from one file l_<area>.c that defines
 *     void yt_lua_open_<area>(lua_State *L, int module_index);
 * which sets fields on the module table at module_index. The list lives in src/lua/modules.def. */
#ifndef YT_LUA_H
#define YT_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "core/tensor.h"

#define YT_TENSOR_MT "yt.Tensor"

/* Pushes a tensor as userdata, taking over the caller's reference (t may be NULL: raises the core error). */
void yt_lua_push_tensor(lua_State *L, yt_tensor *t);
/* The tensor at idx (raises a Lua error for a non-tensor or a released tensor). No new reference. */
yt_tensor *yt_lua_check_tensor(lua_State *L, int idx);
yt_tensor *yt_lua_opt_tensor(lua_State *L, int idx); /* nil/none -> NULL */
/* ---- boundary-wide helpers (l_aux.c) ---- */
/* Raises the current core error as a Lua error (with the caller's file:line). Never returns. */
int yt_lua_core_error(lua_State *L);
/* Fields of an options table at t (none/nil: every field takes its default). A field of the wrong type raises
 * "option '<k>' must be a number" (or an integer: whole and within int range). Booleans: Lua truthiness. */
double yt_lua_opt_number_field(lua_State *L, int t, const char *k, double def);
int yt_lua_opt_int_field(lua_State *L, int t, const char *k, int def);
int yt_lua_opt_bool_field(lua_State *L, int t, const char *k, int def);
/* The same for a field that must be present (nil raises "option '<k>' is required"); t must be a table. */
double yt_lua_number_field(lua_State *L, int t, const char *k);
int yt_lua_int_field(lua_State *L, int t, const char *k);
int yt_lua_bool_field(lua_State *L, int t, const char *k);
/* Reads a shape from a table {d1, d2, ...} or from the integer arguments starting at idx. Returns ndim. */
int yt_lua_check_shape(lua_State *L, int idx, int64_t *shape);
/* Pushes a table of integers for the shape. */
void yt_lua_push_shape(lua_State *L, const yt_tensor *t);
/* Checks that arg idx is a table of tensors and fills out[] (at most max); returns the count. */
int yt_lua_check_tensor_list(lua_State *L, int idx, yt_tensor **out, int max);

/* Pushes a new zero-filled userdata of size bytes (at least 1) whose own metatable has __gc = gc (none when gc is
 * NULL): scratch memory that is freed by the GC even when a Lua error is raised. Returns its address. */
void *yt_lua_new_scratch(lua_State *L, size_t size, lua_CFunction gc);

/* Adds methods to tensors from another binding file (names starting with "__" become metamethods). */
void yt_lua_add_tensor_methods(lua_State *L, const luaL_Reg *fns);

#define YT_LUA_MODULE(name, group) void yt_lua_open_##name(lua_State *L, int module_index);
#include "lua/modules.def"
#undef YT_LUA_MODULE

/* Builds the yolotrain.core module table and leaves it on the stack. */
int yt_lua_open_core(lua_State *L);

#endif
