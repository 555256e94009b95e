/* Neural-network ops for Lua: conv2d, batch_norm, batch_norm_silu, max_pool2d, upsample_nearest (module functions and
 * tensor methods; the tensor is the first argument either way). */
#include <limits.h>

#include "lua/yt_lua.h"
#include "ops/batchnorm.h"
#include "ops/conv2d.h"
#include "ops/pool.h"
#include "ops/resize.h"

/* Arg idx: nil/none -> (def, def); integer n -> (n, n); table {h, w} -> (h, w). Values must be >= min. */
static void check_pair(lua_State *L, int idx, int def_h, int def_w, int min, const char *what, int out[2])
{
    if (lua_isnoneornil(L, idx)) {
        out[0] = def_h;
        out[1] = def_w;
        return;
    }
    if (lua_istable(L, idx)) {
        if (luaL_len(L, idx) != 2)
            luaL_error(L, "bad argument #%d (%s): expected a number or a table {h, w}", idx, what);
        for (int i = 0; i < 2; i++) {
            lua_geti(L, idx, i + 1);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok || v < min || v > INT_MAX / 4)
                luaL_error(L, "bad argument #%d (%s): entries must be integers >= %d", idx, what, min);
            out[i] = (int)v;
        }
        return;
    }
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok || v < min || v > INT_MAX / 4)
        luaL_error(L, "bad argument #%d (%s): expected an integer >= %d or a table {h, w}", idx, what, min);
    out[0] = out[1] = (int)v;
}

/* conv2d(x, w, b_or_nil, stride = 1, padding = 0) */
static int l_conv2d(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1), *w = yt_lua_check_tensor(L, 2), *b = yt_lua_opt_tensor(L, 3);
    int stride[2], pad[2];
    check_pair(L, 4, 1, 1, 1, "stride", stride);
    check_pair(L, 5, 0, 0, 0, "padding", pad);
    yt_tensor *y = yt_conv2d(x, w, b, stride[0], stride[1], pad[0], pad[1]);
    if (!y) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, y);
    return 1;
}

/* batch_norm(x, weight, bias, running_mean, running_var, training = false, momentum = 0.1, eps = 1e-5)
 * (torch.nn.functional.batch_norm's defaults; YOLOv8 passes momentum 0.03, eps 1e-3) */
typedef yt_tensor *(*batch_norm_fn)(yt_tensor *, yt_tensor *, yt_tensor *, yt_tensor *, yt_tensor *, int, double,
                                    double);

/* Reads batch_norm's arguments and pushes fn's result (batch_norm or its fused twin). */
static int push_batch_norm(lua_State *L, batch_norm_fn fn)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    yt_tensor *weight = yt_lua_opt_tensor(L, 2), *bias = yt_lua_opt_tensor(L, 3);
    yt_tensor *rm = yt_lua_opt_tensor(L, 4), *rv = yt_lua_opt_tensor(L, 5);
    int training = lua_toboolean(L, 6);
    double momentum = luaL_optnumber(L, 7, 0.1), eps = luaL_optnumber(L, 8, 1e-5);
    yt_tensor *y = fn(x, weight, bias, rm, rv, training, momentum, eps);
    if (!y) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, y);
    return 1;
}

static int l_batch_norm(lua_State *L) { return push_batch_norm(L, yt_batch_norm); }

/* batch_norm_silu(...): silu(batch_norm(...)) as one op, with batch_norm's arguments */
static int l_batch_norm_silu(lua_State *L) { return push_batch_norm(L, yt_batch_norm_silu); }

/* max_pool2d(x, kernel, stride = kernel, padding = 0) */
static int l_max_pool2d(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    int k[2], s[2], p[2];
    luaL_checkany(L, 2);
    check_pair(L, 2, 1, 1, 1, "kernel", k);
    check_pair(L, 3, k[0], k[1], 1, "stride", s);
    check_pair(L, 4, 0, 0, 0, "padding", p);
    yt_tensor *y = yt_max_pool2d(x, k[0], k[1], s[0], s[1], p[0], p[1]);
    if (!y) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, y);
    return 1;
}

/* upsample_nearest(x, scale) with an integer scale >= 1 */
static int l_upsample_nearest(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    int ok;
    lua_Integer scale = lua_tointegerx(L, 2, &ok);
    if (!ok || scale < 1 || scale > 4096) return luaL_argerror(L, 2, "scale must be an integer >= 1");
    yt_tensor *y = yt_upsample_nearest(x, (int)scale);
    if (!y) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, y);
    return 1;
}

static const luaL_Reg nn_functions[] = {
    {"conv2d", l_conv2d},
    {"batch_norm", l_batch_norm},
    {"batch_norm_silu", l_batch_norm_silu},
    {"max_pool2d", l_max_pool2d},
    {"upsample_nearest", l_upsample_nearest},
    {NULL, NULL},
};

void yt_lua_open_nn(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, nn_functions, 0);
    lua_pop(L, 1);
    yt_lua_add_tensor_methods(L, nn_functions);
}
