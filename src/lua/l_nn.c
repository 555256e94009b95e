/* Neural-network ops for Lua: conv2d, batch_norm, batch_norm_silu, max_pool2d, upsample_nearest (module functions and
 * tensor methods; the tensor is the first argument either way); and the fused inference path: conv2d_plan (a
 * userdata, ops/conv2d_infer.h) and detect_decode (ops/detect_decode.h). */
#include <limits.h>
#include <string.h>

#include "lua/yt_lua.h"
#include "ops/batchnorm.h"
#include "ops/conv2d.h"
#include "ops/conv2d_infer.h"
#include "ops/detect_decode.h"
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

/* ---- conv2d_plan: a prepared fused convolution (inference) ---- */

#define PLAN_MT "yt.Conv2dPlan"

typedef struct {
    yt_conv2d_plan *p;
} plan_box;

static plan_box *check_plan(lua_State *L, int idx)
{
    plan_box *b = luaL_checkudata(L, idx, PLAN_MT);
    if (!b->p) luaL_error(L, "attempt to use a closed conv2d plan");
    return b;
}

/* conv2d_plan(w, b_or_nil, stride = 1, padding = 0, act = "none" | "silu") */
static int l_conv2d_plan(lua_State *L)
{
    yt_tensor *w = yt_lua_check_tensor(L, 1), *b = yt_lua_opt_tensor(L, 2);
    int stride[2], pad[2];
    check_pair(L, 3, 1, 1, 1, "stride", stride);
    check_pair(L, 4, 0, 0, 0, "padding", pad);
    static const char *const acts[] = {"none", "silu", NULL};
    int act = luaL_checkoption(L, 5, "none", acts) == 1 ? YT_INFER_ACT_SILU : YT_INFER_ACT_NONE;
    plan_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->p = NULL;
    luaL_setmetatable(L, PLAN_MT);
    box->p = yt_conv2d_plan_new(w, b, stride[0], stride[1], pad[0], pad[1], act);
    if (!box->p) return yt_lua_core_error(L);
    return 1;
}

/* plan:forward(x, residual_or_nil) -> act(conv(x) + b) [+ residual], channels-last */
static int m_plan_forward(lua_State *L)
{
    plan_box *b = check_plan(L, 1);
    yt_tensor *x = yt_lua_check_tensor(L, 2), *r = yt_lua_opt_tensor(L, 3);
    yt_tensor *y = yt_conv2d_plan_forward(b->p, x, r);
    if (!y) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, y);
    return 1;
}

/* plan:close() (also __close and __gc): frees the primitives and the weights' copies now; idempotent. */
static int m_plan_close(lua_State *L)
{
    plan_box *b = luaL_checkudata(L, 1, PLAN_MT);
    yt_conv2d_plan_free(b->p);
    b->p = NULL;
    return 0;
}

static int m_plan_closed(lua_State *L)
{
    lua_pushboolean(L, ((plan_box *)luaL_checkudata(L, 1, PLAN_MT))->p == NULL);
    return 1;
}

/* plan:shapes() -> input shapes prepared so far; plan:impl() -> oneDNN's implementation of the last one */
static int m_plan_shapes(lua_State *L)
{
    lua_pushinteger(L, yt_conv2d_plan_shapes(check_plan(L, 1)->p));
    return 1;
}

static int m_plan_impl(lua_State *L)
{
    lua_pushstring(L, yt_conv2d_plan_impl(check_plan(L, 1)->p));
    return 1;
}

static int m_plan_tostring(lua_State *L)
{
    plan_box *b = luaL_checkudata(L, 1, PLAN_MT);
    if (!b->p) {
        lua_pushliteral(L, "Conv2dPlan(closed)");
        return 1;
    }
    int O, C, KH, KW, sh, sw, ph, pw, act;
    yt_conv2d_plan_info(b->p, &O, &C, &KH, &KW, &sh, &sw, &ph, &pw, &act);
    const char *impl = yt_conv2d_plan_impl(b->p);
    lua_pushfstring(L, "Conv2dPlan(%d -> %d, %dx%d, stride %d, padding %d, %s, %d shape(s)%s%s)", C, O, KH, KW, sh, ph,
                    act == YT_INFER_ACT_SILU ? "silu" : "no activation", yt_conv2d_plan_shapes(b->p),
                    impl[0] ? ": " : "", impl);
    return 1;
}

static const luaL_Reg plan_methods[] = {
    {"forward", m_plan_forward}, {"close", m_plan_close}, {"closed", m_plan_closed},
    {"shapes", m_plan_shapes},   {"impl", m_plan_impl},   {NULL, NULL},
};

/* detect_decode(levels, strides, nc, dfl_weight_or_nil) -> (B, 4 + nc, A) */
static int l_detect_decode(lua_State *L)
{
    yt_tensor *levels[YT_DECODE_MAX_LEVELS];
    int nl = yt_lua_check_tensor_list(L, 1, levels, YT_DECODE_MAX_LEVELS);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (luaL_len(L, 2) != nl) return luaL_error(L, "detect_decode: %d levels but %d strides", nl, (int)luaL_len(L, 2));
    double strides[YT_DECODE_MAX_LEVELS];
    for (int i = 0; i < nl; i++) {
        lua_geti(L, 2, i + 1);
        int ok;
        strides[i] = lua_tonumberx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok) return luaL_error(L, "detect_decode: stride %d is not a number", i + 1);
    }
    lua_Integer nc = luaL_checkinteger(L, 3);
    if (nc < 0 || nc > INT_MAX / 4) return luaL_argerror(L, 3, "the number of classes must be >= 0");
    yt_tensor *dfl = yt_lua_opt_tensor(L, 4);
    yt_tensor *y = yt_detect_decode(nl, levels, strides, (int)nc, dfl);
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

/* module functions only (not tensor methods) */
static const luaL_Reg infer_functions[] = {
    {"conv2d_plan", l_conv2d_plan},
    {"detect_decode", l_detect_decode},
    {NULL, NULL},
};

void yt_lua_open_nn(lua_State *L, int module_index)
{
    if (luaL_newmetatable(L, PLAN_MT)) {
        luaL_newlib(L, plan_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, m_plan_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, m_plan_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, m_plan_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, nn_functions, 0);
    luaL_setfuncs(L, infer_functions, 0);
    lua_pop(L, 1);
    yt_lua_add_tensor_methods(L, nn_functions);
}
