/* The embedded default dataset (src/data/synth.h) for Lua:
 *
 *   yt.synth.generate(out_dir [, opts])   -> data_yaml_path, generated
 *       Makes sure out_dir holds the synthetic shapes dataset (generating it atomically when missing or made by
 *       another generator version / configuration). generated is true when it was written by this call.
 *   yt.synth.is_complete(out_dir [, opts]) -> boolean    out_dir already holds that dataset (nothing to generate)
 *   yt.synth.render([opts,] split, index [, with_shapes]) -> uint8 tensor (imgsz, imgsz, 3), boxes
 *       One image as generate writes it (split "train" or "val", index from 0); with_shapes=false gives the
 *       background alone. boxes: array of {cls, x0, y0, x1, y1} in pixels (cls from 0).
 *   yt.synth.shapes                        {"circle", "square", "triangle", "cross", "ring"}
 *   yt.synth.version                       generator version (a new version regenerates old datasets)
 *
 * opts: seed (integer >= 0, default 0), n_train (400), n_val (100), imgsz (160), classes: a count (4: the first
 * names of synth_shapes) or a list of shape names. Unknown keys are errors. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/synth.h"
#include "lua/yt_lua.h"

/* Reads the options table at idx (or none) into cfg; raises on bad input. */
static void check_cfg(lua_State *L, int idx, yt_synth_cfg *cfg)
{
    yt_synth_default_cfg(cfg);
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    static const char *const known[] = {"seed", "n_train", "n_val", "imgsz", "classes", NULL};
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        for (int i = 0; k && known[i]; i++) ok |= strcmp(k, known[i]) == 0;
        if (!ok)
            luaL_error(L, "unknown synth option '%s' (valid: seed, n_train, n_val, imgsz, classes)",
                       k ? k : luaL_typename(L, -1));
    }
    lua_getfield(L, idx, "seed");
    if (!lua_isnil(L, -1)) {
        int isint;
        lua_Integer s = lua_tointegerx(L, -1, &isint);
        if (!isint || s < 0) luaL_error(L, "synth option 'seed' must be an integer >= 0");
        cfg->seed = (uint64_t)s;
    }
    lua_pop(L, 1);
    cfg->n_train = yt_lua_opt_int_field(L, idx, "n_train", cfg->n_train);
    cfg->n_val = yt_lua_opt_int_field(L, idx, "n_val", cfg->n_val);
    cfg->imgsz = yt_lua_opt_int_field(L, idx, "imgsz", cfg->imgsz);
    lua_getfield(L, idx, "classes");
    if (lua_type(L, -1) == LUA_TTABLE) {
        int n = (int)luaL_len(L, -1);
        if (n < 1 || n > YT_SYNTH_MAX_CLASSES)
            luaL_error(L, "synth option 'classes' must list 1..%d shape names", YT_SYNTH_MAX_CLASSES);
        for (int i = 0; i < n; i++) {
            lua_geti(L, -1, i + 1);
            const char *name = lua_tostring(L, -1);
            int kind = yt_synth_shape_from_name(name);
            if (kind < 0)
                luaL_error(L, "synth: unknown shape '%s' in classes (known: circle, square, triangle, cross, ring)",
                           name ? name : luaL_typename(L, -1));
            cfg->classes[i] = kind;
            lua_pop(L, 1);
        }
        cfg->n_classes = n;
    } else if (!lua_isnil(L, -1)) {
        int isint;
        lua_Integer n = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_error(L, "synth option 'classes' must be a count or a list of shape names");
        cfg->n_classes = (int)(n < -1 ? -1 : n > 1000 ? 1000 : n);
    }
    lua_pop(L, 1);
    if (yt_synth_check_cfg(cfg) < 0) yt_lua_core_error(L);
}

static int l_synth_generate(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    yt_synth_cfg cfg;
    check_cfg(L, 2, &cfg);
    int rc = yt_synth_generate(dir, &cfg);
    if (rc < 0) return yt_lua_core_error(L);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    lua_pushlstring(L, dir, n);
    lua_pushstring(L, "/data.yaml");
    lua_concat(L, 2);
    lua_pushboolean(L, rc == 1);
    return 2;
}

static int l_synth_is_complete(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    yt_synth_cfg cfg;
    check_cfg(L, 2, &cfg);
    lua_pushboolean(L, yt_synth_is_complete(dir, &cfg));
    return 1;
}

static int l_synth_render(lua_State *L)
{
    int a = 1;
    yt_synth_cfg cfg;
    if (lua_istable(L, 1)) {
        check_cfg(L, 1, &cfg);
        a = 2;
    } else {
        yt_synth_default_cfg(&cfg);
    }
    static const char *const splits[] = {"train", "val", NULL};
    int split = luaL_checkoption(L, a, NULL, splits);
    lua_Integer index = luaL_checkinteger(L, a + 1);
    int with_shapes = lua_isnoneornil(L, a + 2) ? 1 : lua_toboolean(L, a + 2);
    if (index < 0 || index > 2147483647) return luaL_error(L, "synth_render: index %d out of range", (int)index);
    int64_t shape[3] = {cfg.imgsz, cfg.imgsz, 3};
    yt_tensor *t = yt_tensor_empty(YT_U8, 3, shape);
    if (!t) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, t); /* owned by Lua from here: an error below cannot leak it */
    yt_synth_box boxes[YT_SYNTH_MAX_OBJECTS];
    int nb = 0;
    uint8_t *px = (uint8_t *)t->storage->data + t->offset;
    if (yt_synth_render(&cfg, split, (int)index, with_shapes, px, boxes, &nb) < 0) return yt_lua_core_error(L);
    lua_createtable(L, nb, 0);
    for (int i = 0; i < nb; i++) {
        lua_createtable(L, 5, 0);
        lua_pushinteger(L, boxes[i].cls);
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, boxes[i].x0);
        lua_rawseti(L, -2, 2);
        lua_pushnumber(L, boxes[i].y0);
        lua_rawseti(L, -2, 3);
        lua_pushnumber(L, boxes[i].x1);
        lua_rawseti(L, -2, 4);
        lua_pushnumber(L, boxes[i].y1);
        lua_rawseti(L, -2, 5);
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

static const luaL_Reg synth_functions[] = {
    {"synth_generate", l_synth_generate},
    {"synth_render", l_synth_render},
    {"synth_is_complete", l_synth_is_complete},
    {NULL, NULL},
};

void yt_lua_open_synth(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, synth_functions, 0);
    lua_createtable(L, YT_SHAPE_COUNT, 0);
    for (int i = 0; i < YT_SHAPE_COUNT; i++) {
        lua_pushstring(L, yt_synth_shape_name(i));
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "synth_shapes");
    lua_pushinteger(L, YT_SYNTH_VERSION);
    lua_setfield(L, -2, "synth_version");
    lua_pop(L, 1);
}
