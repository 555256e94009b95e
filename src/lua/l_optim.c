/* Optimizers, gradient clipping and EMA for Lua.
 *
 *   local opt = yt.optim.new(kind, groups)
 *       kind: "SGD" | "Adam" | "AdamW" (case-insensitive)
 *       groups: array of { params = {t1, t2, ...}, lr = ..., momentum = ..., weight_decay = ..., nesterov = ...,
 *                          dampening = ..., beta2 = ..., eps = ..., betas = {b1, b2} }
 *         momentum is SGD's momentum and Adam's beta1 (`beta1` and `betas` are accepted as well). Missing fields
 *         take torch.optim's defaults (SGD: lr required, momentum 0; Adam/AdamW: lr 1e-3, betas 0.9/0.999,
 *         eps 1e-8, weight_decay 0 / AdamW 0.01). Unknown fields are an error (they are usually typos).
 *         Parameters are float32 tensors; each may appear once over all groups.
 *   opt:step()                      updates every parameter that has a .grad (others are left alone)
 *   opt:zero_grad([set_to_none])    drops the gradients (default), or fills them with 0 when set_to_none=false
 *   opt:get_group(i)                -> { lr, momentum, beta2, eps, weight_decay, dampening, nesterov, params }
 *   opt:set_group(i, fields)        changes hyperparameters of group i (the warmup schedule uses this)
 *   opt:n_groups(), #opt            number of groups
 *   opt:kind()                      "SGD" | "Adam" | "AdamW"
 *   opt:state_tensors()             -> { ["<k>.momentum_buffer" | "<k>.exp_avg" | "<k>.exp_avg_sq"] = tensor (live
 *                                      buffer), ["<k>.step"] = int64 scalar } with k the 0-based parameter index
 *                                      over all groups (torch's state_dict numbering)
 *   opt:load_state_tensors(t)       copies such a table back (every entry required, shapes checked)
 *
 *   yt.optim.clip_grad_norm(params, max_norm) -> total L2 norm of the grads (double accumulation) before clipping;
 *                                      grads are scaled by max_norm/(norm+1e-6) when that is < 1. max_norm <= 0:
 *                                      norm only. Parameters without a grad are skipped.
 *   yt.optim.ema_decay(updates [, decay=0.9999, tau=2000]) -> decay * (1 - exp(-updates/tau))
 *   yt.optim.ema_update(ema_tensors, model_tensors, d)   in place: ema = d*ema + (1-d)*model for float entries
 *                                      (integer entries such as num_batches_tracked are left alone). Both
 *                                      arrays in the same order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "lua/yt_lua.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/optim.h"

#define OPTIM_MT "yt.Optimizer"

typedef struct {
    yt_optimizer *o;
} optim_box;

static optim_box *check_optim(lua_State *L, int idx)
{
    optim_box *b = luaL_checkudata(L, idx, OPTIM_MT);
    if (!b->o) luaL_error(L, "attempt to use a freed optimizer");
    return b;
}

/* Reads an array of tensors at idx into a scratch block pushed on the stack. */
static yt_tensor **tensor_array(lua_State *L, int idx, int *n_out)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = (lua_Integer)luaL_len(L, idx);
    if (n > 10000000) luaL_argerror(L, idx, "too many tensors");
    yt_tensor **ts = yt_lua_new_scratch(L, (size_t)n * sizeof *ts, NULL);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        if (!luaL_testudata(L, -1, YT_TENSOR_MT)) luaL_error(L, "entry %d is not a tensor", (int)i);
        ts[i - 1] = yt_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    *n_out = (int)n;
    return ts;
}

static int get_number_field(lua_State *L, int t, const char *k, double *out)
{
    int ty = lua_getfield(L, t, k);
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (ty != LUA_TNUMBER) luaL_error(L, "group field '%s' must be a number", k);
    *out = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return 1;
}

/* Applies the hyperparameter fields of table t to g (params handled by the caller). */
static void read_hyper(lua_State *L, int t, yt_param_group *g, int allow_params)
{
    static const char *const known[] = {"params", "lr",           "momentum",  "beta1",    "beta2", "betas",
                                        "eps",    "weight_decay", "dampening", "nesterov", NULL};
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "group fields must be named");
        const char *k = lua_tostring(L, -1);
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= strcmp(k, known[i]) == 0;
        if (!ok || (!allow_params && strcmp(k, "params") == 0)) luaL_error(L, "unknown parameter-group field '%s'", k);
    }
    get_number_field(L, t, "lr", &g->lr);
    get_number_field(L, t, "momentum", &g->momentum);
    get_number_field(L, t, "beta1", &g->momentum);
    get_number_field(L, t, "beta2", &g->beta2);
    get_number_field(L, t, "eps", &g->eps);
    get_number_field(L, t, "weight_decay", &g->weight_decay);
    get_number_field(L, t, "dampening", &g->dampening);
    if (lua_getfield(L, t, "betas") != LUA_TNIL) {
        if (!lua_istable(L, -1) || luaL_len(L, -1) != 2) luaL_error(L, "group field 'betas' must be {beta1, beta2}");
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1)) luaL_error(L, "group field 'betas' must be numbers");
        g->momentum = lua_tonumber(L, -2);
        g->beta2 = lua_tonumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "nesterov") != LUA_TNIL) {
        if (!lua_isboolean(L, -1)) luaL_error(L, "group field 'nesterov' must be a boolean");
        g->nesterov = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
}

static int l_optim_new(lua_State *L)
{
    int kind = yt_optim_kind_from_name(luaL_checkstring(L, 1));
    if (kind < 0) return luaL_argerror(L, 1, "unknown optimizer (use \"SGD\", \"Adam\" or \"AdamW\")");
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer ng = (lua_Integer)luaL_len(L, 2);
    if (ng < 1 || ng > 1000) return luaL_argerror(L, 2, "expected an array of 1 or more parameter groups");
    lua_settop(L, 2);
    optim_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->o = NULL;
    luaL_setmetatable(L, OPTIM_MT);
    int box_idx = lua_gettop(L);
    yt_param_group *groups = yt_lua_new_scratch(L, (size_t)ng * sizeof *groups, NULL);
    for (lua_Integer gi = 1; gi <= ng; gi++) {
        luaL_checkstack(L, 8, "too many parameter groups");
        lua_geti(L, 2, gi);
        int t = lua_gettop(L);
        if (!lua_istable(L, t)) return luaL_error(L, "parameter group %d is not a table", (int)gi);
        yt_param_group *g = &groups[gi - 1];
        yt_param_group_defaults((yt_optim_kind)kind, g);
        read_hyper(L, t, g, 1);
        if (lua_getfield(L, t, "params") != LUA_TTABLE)
            return luaL_error(L, "parameter group %d needs a 'params' array of tensors", (int)gi);
        int n;
        g->params = tensor_array(L, -1, &n); /* scratch stays on the stack until the end of the call */
        g->n_params = n;
        lua_remove(L, -2); /* params table (the scratch block stays) */
        lua_remove(L, t);  /* group table */
    }
    box->o = yt_optim_new((yt_optim_kind)kind, (int)ng, groups);
    if (!box->o) return yt_lua_core_error(L);
    lua_pushvalue(L, box_idx);
    return 1;
}

static int m_step(lua_State *L)
{
    if (yt_optim_step(check_optim(L, 1)->o) < 0) return yt_lua_core_error(L);
    return 0;
}

static int m_zero_grad(lua_State *L)
{
    optim_box *b = check_optim(L, 1);
    yt_optim_zero_grad(b->o, lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2));
    return 0;
}

static yt_param_group *check_group(lua_State *L, optim_box *b, int idx)
{
    lua_Integer i = luaL_checkinteger(L, idx);
    if (i < 1 || i > b->o->n_groups) luaL_error(L, "group %d out of range 1..%d", (int)i, b->o->n_groups);
    return &b->o->groups[i - 1];
}

static int m_get_group(lua_State *L)
{
    optim_box *b = check_optim(L, 1);
    yt_param_group *g = check_group(L, b, 2);
    lua_createtable(L, 0, 9);
    lua_pushnumber(L, g->lr);
    lua_setfield(L, -2, "lr");
    lua_pushnumber(L, g->momentum);
    lua_setfield(L, -2, "momentum");
    lua_pushnumber(L, g->weight_decay);
    lua_setfield(L, -2, "weight_decay");
    if (b->o->kind == YT_OPTIM_SGD) {
        lua_pushnumber(L, g->dampening);
        lua_setfield(L, -2, "dampening");
        lua_pushboolean(L, g->nesterov);
        lua_setfield(L, -2, "nesterov");
    } else {
        lua_pushnumber(L, g->beta2);
        lua_setfield(L, -2, "beta2");
        lua_pushnumber(L, g->eps);
        lua_setfield(L, -2, "eps");
        lua_createtable(L, 2, 0);
        lua_pushnumber(L, g->momentum);
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, g->beta2);
        lua_rawseti(L, -2, 2);
        lua_setfield(L, -2, "betas");
    }
    lua_createtable(L, g->n_params, 0);
    for (int i = 0; i < g->n_params; i++) {
        yt_tensor_retain(g->params[i]);
        yt_lua_push_tensor(L, g->params[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "params");
    return 1;
}

static int m_set_group(lua_State *L)
{
    optim_box *b = check_optim(L, 1);
    yt_param_group *g = check_group(L, b, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    yt_param_group tmp = *g;
    read_hyper(L, 3, &tmp, 0);
    if (yt_param_group_check(b->o->kind, &tmp, (int)lua_tointeger(L, 2)) < 0) return yt_lua_core_error(L);
    *g = tmp;
    return 0;
}

static int m_n_groups(lua_State *L)
{
    lua_pushinteger(L, check_optim(L, 1)->o->n_groups);
    return 1;
}

static int m_kind(lua_State *L)
{
    lua_pushstring(L, yt_optim_kind_name(check_optim(L, 1)->o->kind));
    return 1;
}

typedef struct {
    int n;
    char **names;
    yt_tensor **tensors;
} state_box;

static int state_box_gc(lua_State *L)
{
    state_box *s = lua_touserdata(L, 1);
    if (s->names || s->tensors) yt_optim_state_free(s->n, s->names, s->tensors);
    s->names = NULL;
    s->tensors = NULL;
    s->n = 0;
    return 0;
}

static int m_state_tensors(lua_State *L)
{
    optim_box *b = check_optim(L, 1);
    state_box *s = yt_lua_new_scratch(L, sizeof *s, state_box_gc);
    int n = yt_optim_state_export(b->o, &s->names, &s->tensors);
    if (n < 0) return yt_lua_core_error(L);
    s->n = n;
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        yt_tensor *t = s->tensors[i];
        s->tensors[i] = NULL; /* the Lua value takes this reference */
        yt_lua_push_tensor(L, t);
        lua_setfield(L, -2, s->names[i]);
    }
    return 1;
}

static int m_load_state_tensors(lua_State *L)
{
    optim_box *b = check_optim(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        n++;
    }
    const char **names = yt_lua_new_scratch(L, (size_t)n * sizeof *names, NULL);
    yt_tensor **ts = yt_lua_new_scratch(L, (size_t)n * sizeof *ts, NULL);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "load_state_tensors: keys must be names");
        names[i] = lua_tostring(L, -2); /* alive: the key stays in the table */
        ts[i] = yt_lua_check_tensor(L, -1);
        i++;
        lua_pop(L, 1);
    }
    if (yt_optim_state_import(b->o, n, names, ts) < 0) return yt_lua_core_error(L);
    return 0;
}

static int m_gc(lua_State *L)
{
    optim_box *b = luaL_checkudata(L, 1, OPTIM_MT);
    if (b->o) yt_optim_free(b->o);
    b->o = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    optim_box *b = luaL_checkudata(L, 1, OPTIM_MT);
    if (!b->o) {
        lua_pushliteral(L, "optimizer (freed)");
        return 1;
    }
    lua_pushfstring(L, "%s optimizer: %d groups, %d parameters", yt_optim_kind_name(b->o->kind), b->o->n_groups,
                    b->o->n_params);
    return 1;
}

static int l_clip_grad_norm(lua_State *L)
{
    int n;
    yt_tensor **ps = tensor_array(L, 1, &n);
    double max_norm = luaL_checknumber(L, 2);
    double norm = yt_clip_grad_norm(n, ps, max_norm);
    if (norm < 0) return yt_lua_core_error(L);
    lua_pushnumber(L, norm);
    return 1;
}

static int l_ema_decay(lua_State *L)
{
    lua_Integer updates = luaL_checkinteger(L, 1);
    double decay = luaL_optnumber(L, 2, YT_EMA_DECAY), tau = luaL_optnumber(L, 3, YT_EMA_TAU);
    if (!(tau > 0)) return luaL_argerror(L, 3, "tau must be > 0");
    lua_pushnumber(L, yt_ema_decay(updates, decay, tau));
    return 1;
}

static int l_ema_update(lua_State *L)
{
    int ne, nm;
    yt_tensor **e = tensor_array(L, 1, &ne);
    yt_tensor **m = tensor_array(L, 2, &nm);
    double d = luaL_checknumber(L, 3);
    if (ne != nm) return luaL_error(L, "ema_update: %d ema tensors but %d model tensors", ne, nm);
    if (yt_ema_update(ne, e, m, d) < 0) return yt_lua_core_error(L);
    return 0;
}

static const luaL_Reg optim_methods[] = {
    {"step", m_step},
    {"zero_grad", m_zero_grad},
    {"get_group", m_get_group},
    {"set_group", m_set_group},
    {"n_groups", m_n_groups},
    {"kind", m_kind},
    {"state_tensors", m_state_tensors},
    {"load_state_tensors", m_load_state_tensors},
    {NULL, NULL},
};

static const luaL_Reg top_functions[] = {
    {"clip_grad_norm", l_clip_grad_norm},
    {"ema_decay", l_ema_decay},
    {"ema_update", l_ema_update},
    {NULL, NULL},
};

void yt_lua_open_optim(lua_State *L, int module_index)
{
    if (luaL_newmetatable(L, OPTIM_MT)) {
        luaL_newlib(L, optim_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, m_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, m_gc);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, m_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, m_n_groups);
        lua_setfield(L, -2, "__len");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, top_functions, 0);
    lua_newtable(L);
    lua_pushcfunction(L, l_optim_new);
    lua_setfield(L, -2, "new");
    lua_setfield(L, -2, "optim");
    lua_pop(L, 1);
}
