/* Tensors as Lua userdata (pattern of Lua's liolib.c): the userdata is created first in an empty state, then
 * filled; __gc drops one reference; a tensor released by its scope raises instead of crashing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "lua/yt_lua.h"
#include "ops/shape_ops.h"

typedef struct {
    yt_tensor *t;
} tensor_box;

void yt_lua_push_tensor(lua_State *L, yt_tensor *t)
{
    if (!t) yt_lua_core_error(L);
    tensor_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->t = NULL;
    luaL_setmetatable(L, YT_TENSOR_MT);
    box->t = t;
}

static tensor_box *check_box(lua_State *L, int idx) { return luaL_checkudata(L, idx, YT_TENSOR_MT); }

yt_tensor *yt_lua_check_tensor(lua_State *L, int idx)
{
    tensor_box *box = check_box(L, idx);
    if (!box->t) luaL_error(L, "attempt to use a closed tensor");
    if (yt_tensor_is_released(box->t))
        luaL_error(L, "attempt to use a released tensor (its training step ended; call :keep() to retain one)");
    return box->t;
}

yt_tensor *yt_lua_opt_tensor(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    return yt_lua_check_tensor(L, idx);
}

void yt_lua_push_shape(lua_State *L, const yt_tensor *t)
{
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
}

int yt_lua_check_tensor_list(lua_State *L, int idx, yt_tensor **out, int max)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    if (n > max) luaL_argerror(L, idx, "too many tensors");
    for (int i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        out[i] = yt_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

/* ---- constructors ---- */

static yt_dtype opt_dtype(lua_State *L, int idx, yt_dtype def)
{
    if (lua_type(L, idx) != LUA_TSTRING) return def;
    int dt = yt_dtype_from_name(lua_tostring(L, idx));
    if (dt < 0) luaL_argerror(L, idx, "unknown dtype (use float32, float64, int64 or uint8)");
    return (yt_dtype)dt;
}

/* The dtype name, if given, is the argument after the shape. */
static int dtype_arg_index(lua_State *L, int first)
{
    if (lua_istable(L, first)) return first + 1;
    int i = first;
    while (lua_type(L, i) == LUA_TNUMBER) i++;
    return i;
}

static int l_zeros(lua_State *L)
{
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_lua_check_shape(L, 1, shape);
    yt_lua_push_tensor(L, yt_tensor_zeros(opt_dtype(L, dtype_arg_index(L, 1), YT_F32), nd, shape));
    return 1;
}

static int l_empty(lua_State *L)
{
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_lua_check_shape(L, 1, shape);
    yt_lua_push_tensor(L, yt_tensor_empty(opt_dtype(L, dtype_arg_index(L, 1), YT_F32), nd, shape));
    return 1;
}

static void fill_value(yt_tensor *t, double v)
{
    int64_t n = yt_numel(t);
    switch (t->dtype) {
    case YT_F32:
        for (int64_t i = 0; i < n; i++) yt_f32(t)[i] = (float)v;
        break;
    case YT_F64:
        for (int64_t i = 0; i < n; i++) yt_f64(t)[i] = v;
        break;
    case YT_I64:
        for (int64_t i = 0; i < n; i++) yt_i64(t)[i] = (int64_t)v;
        break;
    case YT_U8:
        for (int64_t i = 0; i < n; i++) yt_u8(t)[i] = (uint8_t)v;
        break;
    default:
        break;
    }
}

static int l_ones(lua_State *L)
{
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_lua_check_shape(L, 1, shape);
    yt_tensor *t = yt_tensor_empty(opt_dtype(L, dtype_arg_index(L, 1), YT_F32), nd, shape);
    if (t) fill_value(t, 1.0);
    yt_lua_push_tensor(L, t);
    return 1;
}

static int l_full(lua_State *L)
{
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_lua_check_shape(L, 1, shape);
    double v = luaL_checknumber(L, 2);
    yt_tensor *t = yt_tensor_empty(opt_dtype(L, 3, YT_F32), nd, shape);
    if (t) fill_value(t, v);
    yt_lua_push_tensor(L, t);
    return 1;
}

/* The generator of yt.rand/yt.randn, seeded by yt.manual_seed: ONE per process (not per Lua state), shared by every
 * Lua state that loads the module and not thread-safe, like torch's default CPU generator. The trainer seeds it
 * (init_seeds) before building the model, so weight initialisation is reproducible; get/set_rng_state save it in
 * checkpoints. The data pipeline and augmentations do not use it (they derive their own per-sample streams). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void) { return yt_splitmix64((uint64_t *)&rng_state); }

static double rng_uniform(void) { return yt_unit_from_bits(rng_next()); }

static int l_manual_seed(lua_State *L)
{
    rng_state = (uint64_t)luaL_checkinteger(L, 1);
    return 0;
}

static int l_rand(lua_State *L)
{
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_lua_check_shape(L, 1, shape);
    yt_tensor *t = yt_tensor_empty(YT_F32, nd, shape);
    if (t)
        for (int64_t i = 0; i < yt_numel(t); i++) yt_f32(t)[i] = (float)rng_uniform();
    yt_lua_push_tensor(L, t);
    return 1;
}

static int l_randn(lua_State *L)
{
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_lua_check_shape(L, 1, shape);
    yt_tensor *t = yt_tensor_empty(YT_F32, nd, shape);
    if (t) {
        for (int64_t i = 0; i < yt_numel(t); i++) {
            double u1 = rng_uniform(), u2 = rng_uniform();
            if (u1 < 1e-300) u1 = 1e-300;
            yt_f32(t)[i] = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
        }
    }
    yt_lua_push_tensor(L, t);
    return 1;
}

/* Nested Lua tables -> tensor. */
static void table_shape(lua_State *L, int idx, int64_t *shape, int *nd)
{
    *nd = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (*nd >= YT_MAX_DIMS) luaL_error(L, "tensor(): too deeply nested table");
        shape[(*nd)++] = (int64_t)luaL_len(L, -1);
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
}

static void table_fill(lua_State *L, int idx, yt_tensor *t, int d, int64_t *pos)
{
    int64_t n = (int64_t)luaL_len(L, idx);
    if (n != t->shape[d])
        luaL_error(L, "tensor(): ragged table at depth %d (%d vs %d entries)", d + 1, (int)n, (int)t->shape[d]);
    for (int64_t i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        if (d + 1 < t->ndim) {
            if (!lua_istable(L, -1)) luaL_error(L, "tensor(): expected a table at depth %d", d + 2);
            table_fill(L, lua_gettop(L), t, d + 1, pos);
        } else {
            int ok;
            lua_Number v = lua_tonumberx(L, -1, &ok);
            if (!ok) luaL_error(L, "tensor(): non-number at element %d", (int)(*pos + 1));
            switch (t->dtype) {
            case YT_F32:
                yt_f32(t)[*pos] = (float)v;
                break;
            case YT_F64:
                yt_f64(t)[*pos] = v;
                break;
            case YT_I64:
                yt_i64(t)[*pos] = (int64_t)v;
                break;
            case YT_U8:
                yt_u8(t)[*pos] = (uint8_t)v;
                break;
            default:
                break;
            }
            (*pos)++;
        }
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L)
{
    yt_dtype dt = opt_dtype(L, 2, YT_F32);
    if (lua_isnumber(L, 1)) {
        yt_tensor *t = yt_tensor_empty(dt, 0, NULL);
        if (t) fill_value(t, lua_tonumber(L, 1));
        yt_lua_push_tensor(L, t);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[YT_MAX_DIMS];
    int nd;
    table_shape(L, 1, shape, &nd);
    yt_tensor *t = yt_tensor_empty(dt, nd, shape);
    yt_lua_push_tensor(L, t);
    int64_t pos = 0;
    if (yt_numel(t) > 0) table_fill(L, 1, t, 0, &pos);
    return 1;
}

/* ---- methods ---- */

static void push_element(lua_State *L, const yt_tensor *t, int64_t off)
{
    if (t->dtype == YT_I64)
        lua_pushinteger(L, ((const int64_t *)t->storage->data)[off]);
    else if (t->dtype == YT_U8)
        lua_pushinteger(L, ((const uint8_t *)t->storage->data)[off]);
    else
        lua_pushnumber(L, yt_tensor_elem_f64(t, off));
}

static int m_shape(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    if (lua_isinteger(L, 2)) {
        lua_Integer d = lua_tointeger(L, 2);
        if (d < 0) d += t->ndim + 1;
        luaL_argcheck(L, d >= 1 && d <= t->ndim, 2, "dimension out of range");
        lua_pushinteger(L, t->shape[d - 1]);
        return 1;
    }
    yt_lua_push_shape(L, t);
    return 1;
}

static int m_dim(lua_State *L)
{
    lua_pushinteger(L, yt_lua_check_tensor(L, 1)->ndim);
    return 1;
}

static int m_numel(lua_State *L)
{
    lua_pushinteger(L, yt_numel(yt_lua_check_tensor(L, 1)));
    return 1;
}

static int m_dtype(lua_State *L)
{
    static const char *lua_names[] = {"float32", "float64", "int64", "uint8"};
    lua_pushstring(L, lua_names[yt_lua_check_tensor(L, 1)->dtype]);
    return 1;
}

static int m_item(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    if (yt_numel(t) != 1) {
        char b[128];
        return luaL_error(L, "item(): tensor of shape %s has %d elements, not 1", yt_shape_str(t, b, sizeof b),
                          (int)yt_numel(t));
    }
    push_element(L, t, t->offset);
    return 1;
}

static void push_table_rec(lua_State *L, const yt_tensor *t, int d, int64_t off)
{
    if (d == t->ndim) {
        push_element(L, t, off);
        return;
    }
    lua_createtable(L, (int)t->shape[d], 0);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        push_table_rec(L, t, d + 1, off + i * t->stride[d]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int m_totable(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    push_table_rec(L, t, 0, t->offset);
    return 1;
}

static int m_tolist(lua_State *L)
{
    /* flat list in row-major order */
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    int64_t n = yt_numel(t);
    lua_createtable(L, (int)n, 0);
    int64_t idx[YT_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        push_element(L, t, off);
        lua_rawseti(L, -2, i + 1);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    return 1;
}

static int m_tostring(lua_State *L)
{
    tensor_box *box = check_box(L, 1);
    if (!box->t) {
        lua_pushliteral(L, "tensor (closed)");
        return 1;
    }
    if (yt_tensor_is_released(box->t)) {
        lua_pushliteral(L, "tensor (released)");
        return 1;
    }
    yt_tensor *t = box->t;
    static const char *lua_names[] = {"float32", "float64", "int64", "uint8"};
    char b[160];
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    lua_pushfstring(L, "tensor %s %s", yt_shape_str(t, b, sizeof b), lua_names[t->dtype]);
    luaL_addvalue(&buf);
    if (t->requires_grad) luaL_addstring(&buf, " requires_grad");
    /* a preview of the first values in row-major order */
    int64_t n = yt_numel(t), show = n < 8 ? n : 8;
    luaL_addstring(&buf, " {");
    int64_t idx[YT_MAX_DIMS] = {0};
    for (int64_t i = 0; i < show; i++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        char num[48];
        const double v = yt_tensor_elem_f64(t, off);
        if (t->dtype == YT_I64 || t->dtype == YT_U8)
            snprintf(num, sizeof num, "%s%.0f", i ? ", " : "", v);
        else
            snprintf(num, sizeof num, "%s%.6g", i ? ", " : "", v);
        luaL_addstring(&buf, num);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    luaL_addstring(&buf, n > show ? ", ...}" : "}");
    luaL_pushresult(&buf);
    return 1;
}

static int m_gc(lua_State *L)
{
    tensor_box *box = check_box(L, 1);
    if (box->t) {
        yt_tensor_release(box->t);
        box->t = NULL;
    }
    return 0;
}

/* __close and :free(): drop the reference now, and the storage with it when nothing else reads the data (what is
 * left is its scope's reference and the tape's gradient targets: yt_tensor_release_consumed). The collector's __gc
 * only drops the reference: when it runs is not deterministic, so the storage it would free waits for the scope. */
static int m_close(lua_State *L)
{
    tensor_box *box = check_box(L, 1);
    if (box->t) {
        yt_tensor_release_consumed(box->t);
        box->t = NULL;
    }
    return 0;
}

static int m_keep(lua_State *L)
{
    yt_tensor_keep(yt_lua_check_tensor(L, 1));
    lua_settop(L, 1);
    return 1;
}

static int m_clone(lua_State *L)
{
    yt_lua_push_tensor(L, yt_tensor_clone(yt_lua_check_tensor(L, 1)));
    return 1;
}

static int m_detach(lua_State *L)
{
    /* a view sharing storage, outside the graph */
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    int was = yt_set_grad_enabled(0);
    yt_tensor *v = t->ndim ? yt_narrow(t, 0, 0, t->shape[0]) : yt_reshape(t, 0, NULL);
    yt_set_grad_enabled(was);
    yt_lua_push_tensor(L, v);
    return 1;
}

/* t:to(dtype[, scale]), t:float([scale]) */
static int m_to(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    int dt = yt_dtype_from_name(luaL_checkstring(L, 2));
    if (dt < 0) return luaL_argerror(L, 2, "unknown dtype (use float32, float64, int64 or uint8)");
    yt_lua_push_tensor(L, yt_tensor_to(t, (yt_dtype)dt, luaL_optnumber(L, 3, 1.0)));
    return 1;
}

static int m_float(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    yt_lua_push_tensor(L, yt_tensor_to(t, YT_F32, luaL_optnumber(L, 2, 1.0)));
    return 1;
}

static int l_get_rng_state(lua_State *L)
{
    lua_pushfstring(L, "%I", (lua_Integer)rng_state);
    return 1;
}

static int l_set_rng_state(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    rng_state = strtoull(s, NULL, 10);
    return 0;
}

static int m_contiguous(lua_State *L)
{
    yt_lua_push_tensor(L, yt_contiguous(yt_lua_check_tensor(L, 1)));
    return 1;
}

static int m_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, yt_is_contiguous(yt_lua_check_tensor(L, 1)));
    return 1;
}

static int m_reshape(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_lua_check_shape(L, 2, shape);
    yt_lua_push_tensor(L, yt_reshape(t, nd, shape));
    return 1;
}

static int m_narrow(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    lua_Integer dim = luaL_checkinteger(L, 2), start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    if (dim < 0) dim += t->ndim + 1;
    yt_lua_push_tensor(L, yt_narrow(t, (int)dim - 1, start - 1, len));
    return 1;
}

static int m_permute(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    int perm[YT_MAX_DIMS];
    int64_t p64[YT_MAX_DIMS];
    int n = yt_lua_check_shape(L, 2, p64);
    luaL_argcheck(L, n == t->ndim, 2, "permutation must name every dimension");
    for (int i = 0; i < n; i++) perm[i] = (int)p64[i] - 1;
    yt_lua_push_tensor(L, yt_permute(t, perm));
    return 1;
}

static int m_copy_(lua_State *L)
{
    yt_tensor *dst = yt_lua_check_tensor(L, 1), *src = yt_lua_check_tensor(L, 2);
    if (yt_tensor_copy_(dst, src) < 0) return yt_lua_core_error(L);
    lua_settop(L, 1);
    return 1;
}

static int m_fill_(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    double v = luaL_checknumber(L, 2);
    if (!yt_is_contiguous(t)) return luaL_error(L, "fill_: tensor is not contiguous");
    fill_value(t, v);
    lua_settop(L, 1);
    return 1;
}

static int m_zero_grad(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    if (t->grad) {
        yt_tensor_release(t->grad);
        t->grad = NULL;
    }
    return 0;
}

static int m_backward(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    yt_tensor *g = yt_lua_opt_tensor(L, 2);
    if (yt_backward(1, &t, g ? &g : NULL) < 0) return yt_lua_core_error(L);
    return 0;
}

static int m_requires_grad_(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    int on = lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2);
    if (on && t->dtype != YT_F32) return luaL_error(L, "requires_grad: only float32 tensors can require gradients");
    if (!on && t->grad_fn) return luaL_error(L, "requires_grad: cannot turn off on a non-leaf tensor; use :detach()");
    t->requires_grad = on;
    lua_settop(L, 1);
    return 1;
}

/* Element access: t:get(i, j, ...) and t:set(v, i, j, ...) with 1-based indices. */
static int64_t element_offset(lua_State *L, yt_tensor *t, int first)
{
    int64_t off = t->offset;
    int given = lua_gettop(L) - first + 1;
    if (given != t->ndim) luaL_error(L, "expected %d indices, got %d", t->ndim, given);
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, first + d);
        if (i < 0) i += t->shape[d] + 1;
        if (i < 1 || i > t->shape[d])
            luaL_error(L, "index %d out of range 1..%d in dimension %d", (int)i, (int)t->shape[d], d + 1);
        off += (i - 1) * t->stride[d];
    }
    return off;
}

static int m_get(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    push_element(L, t, element_offset(L, t, 2));
    return 1;
}

static int m_set(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    double v = luaL_checknumber(L, 2);
    int64_t off = element_offset(L, t, 3);
    char *base = t->storage->data;
    switch (t->dtype) {
    case YT_F32:
        ((float *)base)[off] = (float)v;
        break;
    case YT_F64:
        ((double *)base)[off] = v;
        break;
    case YT_I64:
        ((int64_t *)base)[off] = (int64_t)v;
        break;
    case YT_U8:
        ((uint8_t *)base)[off] = (uint8_t)v;
        break;
    default:
        break;
    }
    return 0;
}

static int m_data_ptr(lua_State *L)
{
    lua_pushlightuserdata(L, yt_data(yt_lua_check_tensor(L, 1)));
    return 1;
}

/* __index: methods first, then the fields grad / requires_grad / is_leaf / ndim / grad_fn, then t[i] (a view
 * of row i along the first dimension, or a number for 1-d tensors). */
static int m_index(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        lua_getmetatable(L, 1);
        lua_getfield(L, -1, "__methods");
        lua_getfield(L, -1, k);
        if (!lua_isnil(L, -1)) return 1;
        lua_pop(L, 3);
        yt_tensor *t = yt_lua_check_tensor(L, 1);
        if (strcmp(k, "grad") == 0) {
            yt_tensor *g = t->grad;
            if (!g && t->grad_fn && !t->grad_fn->consumed) g = t->grad_fn->out_grad[t->grad_fn_output];
            if (!g) {
                lua_pushnil(L);
                return 1;
            }
            yt_tensor_retain(g);
            yt_lua_push_tensor(L, g);
            return 1;
        }
        if (strcmp(k, "requires_grad") == 0) {
            lua_pushboolean(L, t->requires_grad);
            return 1;
        }
        if (strcmp(k, "is_leaf") == 0) {
            lua_pushboolean(L, t->grad_fn == NULL);
            return 1;
        }
        if (strcmp(k, "ndim") == 0) {
            lua_pushinteger(L, t->ndim);
            return 1;
        }
        if (strcmp(k, "grad_fn") == 0) {
            if (t->grad_fn)
                lua_pushstring(L, t->grad_fn->name);
            else
                lua_pushnil(L);
            return 1;
        }
        lua_pushnil(L);
        return 1;
    }
    if (lua_isinteger(L, 2)) {
        yt_tensor *t = yt_lua_check_tensor(L, 1);
        if (t->ndim == 0) return luaL_error(L, "cannot index a 0-d tensor");
        lua_Integer i = lua_tointeger(L, 2);
        if (i < 0) i += t->shape[0] + 1;
        if (i < 1 || i > t->shape[0]) return luaL_error(L, "index %d out of range 1..%d", (int)i, (int)t->shape[0]);
        if (t->ndim == 1) {
            push_element(L, t, t->offset + (i - 1) * t->stride[0]);
            return 1;
        }
        yt_tensor *row = yt_narrow(t, 0, i - 1, 1);
        if (!row) return yt_lua_core_error(L);
        yt_tensor *r = NULL;
        if (yt_is_contiguous(row))
            r = yt_reshape(row, t->ndim - 1, t->shape + 1);
        else {
            /* squeeze the leading 1 without copying */
            r = row;
            yt_tensor_retain(r);
            r->ndim--;
            memmove(r->shape, r->shape + 1, sizeof(int64_t) * r->ndim);
            memmove(r->stride, r->stride + 1, sizeof(int64_t) * r->ndim);
        }
        yt_tensor_release(row);
        yt_lua_push_tensor(L, r);
        return 1;
    }
    return luaL_error(L, "tensors are indexed by an integer (1-based) or a method name, not a %s", luaL_typename(L, 2));
}

static int m_newindex(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (strcmp(k, "requires_grad") == 0) {
            lua_settop(L, 3);
            lua_pushvalue(L, 1);
            lua_replace(L, 2);
            return m_requires_grad_(L) & 0;
        }
        if (strcmp(k, "grad") == 0) {
            if (lua_isnil(L, 3)) {
                if (t->grad) yt_tensor_release(t->grad);
                t->grad = NULL;
                return 0;
            }
            yt_tensor *g = yt_lua_check_tensor(L, 3);
            if (g->dtype != YT_F32 || yt_numel(g) != yt_numel(t))
                return luaL_error(L, "grad must be float32 of the tensor's shape");
            yt_tensor *c = yt_tensor_clone(g);
            if (!c) return yt_lua_core_error(L);
            yt_tensor_keep(c);
            if (t->grad) yt_tensor_release(t->grad);
            t->grad = c;
            return 0;
        }
        return luaL_error(L, "tensors have no settable field '%s'", k);
    }
    if (lua_isinteger(L, 2) && t->ndim == 1) {
        lua_Integer i = lua_tointeger(L, 2);
        if (i < 0) i += t->shape[0] + 1;
        if (i < 1 || i > t->shape[0]) return luaL_error(L, "index %d out of range 1..%d", (int)i, (int)t->shape[0]);
        lua_Number v = luaL_checknumber(L, 3);
        lua_settop(L, 1);
        lua_pushnumber(L, v); /* m_set(t, value, index) */
        lua_pushinteger(L, i);
        return m_set(L);
    }
    return luaL_error(L, "cannot assign to this tensor index");
}

static int m_len(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    lua_pushinteger(L, t->ndim ? t->shape[0] : 1);
    return 1;
}

/* ---- autograd and memory control ---- */

static int l_backward(lua_State *L)
{
    yt_tensor *roots[64], *grads[64];
    int n;
    if (lua_istable(L, 1) && !luaL_testudata(L, 1, YT_TENSOR_MT)) {
        n = yt_lua_check_tensor_list(L, 1, roots, 64);
        if (!lua_isnoneornil(L, 2)) {
            int m = yt_lua_check_tensor_list(L, 2, grads, 64);
            if (m != n) return luaL_error(L, "backward: %d roots but %d gradients", n, m);
        }
    } else {
        n = 1;
        roots[0] = yt_lua_check_tensor(L, 1);
        if (!lua_isnoneornil(L, 2)) grads[0] = yt_lua_check_tensor(L, 2);
    }
    if (yt_backward(n, roots, lua_isnoneornil(L, 2) ? NULL : grads) < 0) return yt_lua_core_error(L);
    return 0;
}

static int l_set_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, yt_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

static int l_is_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, yt_grad_enabled());
    return 1;
}

static int l_scope_begin(lua_State *L)
{
    yt_scope_begin();
    return 0;
}

static int l_scope_end(lua_State *L)
{
    if (yt_scope_depth() == 0) return luaL_error(L, "scope_end without scope_begin");
    yt_scope_end();
    return 0;
}

static int l_tape_clear(lua_State *L)
{
    yt_tape_clear();
    return 0;
}

static int l_tape_length(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)yt_tape_length());
    return 1;
}

static int l_memory(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)yt_bytes_in_use());
    lua_pushinteger(L, (lua_Integer)yt_peak_bytes_in_use());
    lua_pushinteger(L, (lua_Integer)yt_cached_bytes());
    return 3;
}

static int l_reset_peak_memory(lua_State *L)
{
    (void)L;
    yt_reset_peak_bytes_in_use();
    return 0;
}

/* yt.tape_memory() -> { {name=, bytes=, count=}, ... } largest first: what the live tape holds, per producing op */
static int l_tape_memory(lua_State *L)
{
    yt_tape_mem_entry e[64];
    int n = yt_tape_memory(e, 64);
    if (n < 0) return yt_lua_core_error(L);
    if (n > 64) n = 64;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, e[i].name);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, (lua_Integer)e[i].bytes);
        lua_setfield(L, -2, "bytes");
        lua_pushinteger(L, (lua_Integer)e[i].count);
        lua_setfield(L, -2, "count");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_is_tensor(lua_State *L)
{
    lua_pushboolean(L, luaL_testudata(L, 1, YT_TENSOR_MT) != NULL);
    return 1;
}

static const luaL_Reg tensor_methods[] = {
    {"shape", m_shape},
    {"size", m_shape},
    {"dim", m_dim},
    {"numel", m_numel},
    {"dtype", m_dtype},
    {"item", m_item},
    {"totable", m_totable},
    {"tolist", m_tolist},
    {"keep", m_keep},
    {"clone", m_clone},
    {"detach", m_detach},
    {"contiguous", m_contiguous},
    {"is_contiguous", m_is_contiguous},
    {"reshape", m_reshape},
    {"view", m_reshape},
    {"narrow", m_narrow},
    {"permute", m_permute},
    {"copy_", m_copy_},
    {"fill_", m_fill_},
    {"zero_grad", m_zero_grad},
    {"backward", m_backward},
    {"requires_grad_", m_requires_grad_},
    {"get", m_get},
    {"set", m_set},
    {"free", m_close},
    {"data_ptr", m_data_ptr},
    {"to", m_to},
    {"float", m_float},
    {NULL, NULL},
};

static const luaL_Reg tensor_meta[] = {
    {"__gc", m_gc},       {"__close", m_close},       {"__tostring", m_tostring},
    {"__index", m_index}, {"__newindex", m_newindex}, {"__len", m_len},
    {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"zeros", l_zeros},
    {"ones", l_ones},
    {"full", l_full},
    {"empty", l_empty},
    {"rand", l_rand},
    {"randn", l_randn},
    {"tensor", l_tensor},
    {"manual_seed", l_manual_seed},
    {"backward", l_backward},
    {"set_grad_enabled", l_set_grad_enabled},
    {"is_grad_enabled", l_is_grad_enabled},
    {"scope_begin", l_scope_begin},
    {"scope_end", l_scope_end},
    {"tape_clear", l_tape_clear},
    {"tape_length", l_tape_length},
    {"memory", l_memory},
    {"reset_peak_memory", l_reset_peak_memory},
    {"tape_memory", l_tape_memory},
    {"is_tensor", l_is_tensor},
    {"to_float", m_float},
    {"get_rng_state", l_get_rng_state},
    {"set_rng_state", l_set_rng_state},
    {NULL, NULL},
};

void yt_lua_open_tensor(lua_State *L, int module_index)
{
    if (luaL_newmetatable(L, YT_TENSOR_MT)) {
        luaL_setfuncs(L, tensor_meta, 0);
        luaL_newlib(L, tensor_methods);
        lua_setfield(L, -2, "__methods");
        lua_pushliteral(L, "yt.Tensor");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}

/* Lets other binding files add methods to tensors: registers fns into the metatable's __methods and, for
 * names starting with "__", into the metatable itself (arithmetic metamethods). */
void yt_lua_add_tensor_methods(lua_State *L, const luaL_Reg *fns)
{
    luaL_getmetatable(L, YT_TENSOR_MT);
    lua_getfield(L, -1, "__methods");
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushcfunction(L, f->func);
        if (f->name[0] == '_' && f->name[1] == '_')
            lua_setfield(L, -3, f->name);
        else
            lua_setfield(L, -2, f->name);
    }
    lua_pop(L, 2);
}
