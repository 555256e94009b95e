/* General-purpose tensor ops for Lua: arithmetic (with numbers on either side), unary math, reductions,
 * cat / split / chunk / index_select, shape views, softmax, silu / sigmoid.
 *
 * Every function is both a module function (yt.sum(x, 2)) and a tensor method (x:sum(2)); arithmetic also
 * works through the operators + - * / unary - and ^ (a number exponent).
 *
 * Conventions: dimensions are 1-based and may be negative (-1 = last). Indices handed to Lua (max/min over a
 * dimension, argmax/argmin, the index of index_select) are 1-based int64 tensors. Full reductions return 0-d
 * tensors (use :item() for the number). split / chunk return a Lua list of views. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "lua/yt_lua.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/softmax.h"

#define MAX_CAT 256

/* Lua dim (1-based, negative from the end) -> C dim (0-based, negative from the end). */
static int check_dim(lua_State *L, int idx)
{
    lua_Integer d = luaL_checkinteger(L, idx);
    if (d == 0) luaL_argerror(L, idx, "dimensions are 1-based (use 1.., or -1 for the last)");
    if (d > 1000 || d < -1000) luaL_argerror(L, idx, "dimension out of range");
    return d > 0 ? (int)d - 1 : (int)d;
}

static int opt_dim(lua_State *L, int idx, int def_c) { return lua_isnoneornil(L, idx) ? def_c : check_dim(L, idx); }

/* Converts a 0-based I64 index tensor we own to 1-based in place. */
static yt_tensor *one_based(yt_tensor *t)
{
    if (t) {
        int64_t *p = yt_i64(t);
        for (int64_t i = 0; i < yt_numel(t); i++) p[i] += 1;
    }
    return t;
}

/* ---- arithmetic ---- */

static int is_tensor(lua_State *L, int idx) { return luaL_testudata(L, idx, YT_TENSOR_MT) != NULL; }

/* tensor (at ti) op number (at si); number_first: the number is the left operand (s - x, s / x). */
static int arith_scalar(lua_State *L, yt_binary_op op, int ti, int si, int number_first)
{
    yt_tensor *x = yt_lua_check_tensor(L, ti);
    double s = lua_tonumber(L, si);
    yt_tensor *y = NULL;
    switch (op) {
    case YT_BIN_ADD:
        y = yt_add_scalar(x, s);
        break;
    case YT_BIN_SUB:
        y = number_first ? yt_rsub_scalar(x, s) : yt_sub_scalar(x, s);
        break;
    case YT_BIN_MUL:
        y = yt_mul_scalar(x, s);
        break;
    case YT_BIN_DIV:
        y = number_first ? yt_rdiv_scalar(x, s) : yt_div_scalar(x, s);
        break;
    }
    yt_lua_push_tensor(L, y);
    return 1;
}

static int arith(lua_State *L, yt_binary_op op)
{
    static const char *names[] = {"add", "sub", "mul", "div"};
    int ta = is_tensor(L, 1), tb = is_tensor(L, 2);
    if (ta && tb) {
        yt_tensor *a = yt_lua_check_tensor(L, 1), *b = yt_lua_check_tensor(L, 2);
        yt_lua_push_tensor(L, yt_binary(op, a, b));
        return 1;
    }
    if (ta && lua_type(L, 2) == LUA_TNUMBER) return arith_scalar(L, op, 1, 2, 0);
    if (tb && lua_type(L, 1) == LUA_TNUMBER) return arith_scalar(L, op, 2, 1, 1);
    return luaL_error(L, "%s: expected tensors or a tensor and a number, got %s and %s", names[op], luaL_typename(L, 1),
                      luaL_typename(L, 2));
}

static int l_add(lua_State *L) { return arith(L, YT_BIN_ADD); }
static int l_sub(lua_State *L) { return arith(L, YT_BIN_SUB); }
static int l_mul(lua_State *L) { return arith(L, YT_BIN_MUL); }
static int l_div(lua_State *L) { return arith(L, YT_BIN_DIV); }

/* f(x) for the tensor argument 1 */
static int unary(lua_State *L, yt_tensor *(*f)(yt_tensor *))
{
    yt_lua_push_tensor(L, f(yt_lua_check_tensor(L, 1)));
    return 1;
}

static int l_neg(lua_State *L) { return unary(L, yt_neg); }
static int l_exp(lua_State *L) { return unary(L, yt_exp); }
static int l_log(lua_State *L) { return unary(L, yt_log); }
static int l_sqrt(lua_State *L) { return unary(L, yt_sqrt); }
static int l_abs(lua_State *L) { return unary(L, yt_abs); }

static int l_pow(lua_State *L)
{
    if (!is_tensor(L, 1))
        return luaL_error(L, "pow: the base must be a tensor and the exponent a number (got %s ^ %s)",
                          luaL_typename(L, 1), luaL_typename(L, 2));
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER) return luaL_argerror(L, 2, "pow: exponent must be a number");
    yt_lua_push_tensor(L, yt_pow_scalar(x, lua_tonumber(L, 2)));
    return 1;
}

static int l_clamp(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3)) return luaL_error(L, "clamp: give at least one of min and max");
    double lo = lua_isnoneornil(L, 2) ? -HUGE_VAL : luaL_checknumber(L, 2);
    double hi = lua_isnoneornil(L, 3) ? HUGE_VAL : luaL_checknumber(L, 3);
    yt_lua_push_tensor(L, yt_clamp(x, lo, hi));
    return 1;
}

static int l_silu(lua_State *L) { return unary(L, yt_silu); }
static int l_sigmoid(lua_State *L) { return unary(L, yt_sigmoid); }

/* ---- reductions ---- */

static int cmp_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

/* sum / mean: no dim = everything; a dim; or a list of dims */
static int sum_mean(lua_State *L, int mean)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    int keepdim = lua_toboolean(L, 3);
    if (lua_isnoneornil(L, 2)) {
        yt_lua_push_tensor(L, mean ? yt_mean(x) : yt_sum(x));
        return 1;
    }
    if (!lua_istable(L, 2)) {
        int d = check_dim(L, 2);
        yt_lua_push_tensor(L, mean ? yt_mean_dim(x, d, keepdim) : yt_sum_dim(x, d, keepdim));
        return 1;
    }
    int n = (int)luaL_len(L, 2), dims[YT_MAX_DIMS];
    if (n > x->ndim || n > YT_MAX_DIMS) return luaL_argerror(L, 2, "more dimensions than the tensor has");
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        int d = check_dim(L, -1);
        lua_pop(L, 1);
        if (d < 0) d += x->ndim;
        if (d < 0 || d >= x->ndim) return luaL_argerror(L, 2, "dimension out of range");
        for (int k = 0; k < i; k++)
            if (dims[k] == d) return luaL_argerror(L, 2, "repeated dimension");
        dims[i] = d;
    }
    qsort(dims, (size_t)n, sizeof dims[0], cmp_desc); /* from the last, so earlier dims keep their position */
    yt_tensor *t = x;
    yt_tensor_retain(t);
    for (int i = 0; i < n; i++) {
        yt_tensor *r = mean ? yt_mean_dim(t, dims[i], keepdim) : yt_sum_dim(t, dims[i], keepdim);
        yt_tensor_release(t);
        if (!r) return yt_lua_core_error(L);
        t = r;
    }
    yt_lua_push_tensor(L, t);
    return 1;
}

static int l_sum(lua_State *L) { return sum_mean(L, 0); }
static int l_mean(lua_State *L) { return sum_mean(L, 1); }

static int max_min(lua_State *L, int is_min)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    if (is_tensor(L, 2))
        return luaL_error(L, "%s(a, b): the elementwise form is not supported; use %s(x, dim)", is_min ? "min" : "max",
                          is_min ? "min" : "max");
    if (lua_isnoneornil(L, 2)) {
        yt_lua_push_tensor(L, is_min ? yt_min(x) : yt_max(x));
        return 1;
    }
    int d = check_dim(L, 2), keepdim = lua_toboolean(L, 3);
    yt_tensor *idx = NULL;
    yt_tensor *v = is_min ? yt_min_dim(x, d, keepdim, &idx) : yt_max_dim(x, d, keepdim, &idx);
    if (!v) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, v);
    yt_lua_push_tensor(L, one_based(idx));
    return 2;
}

static int l_max(lua_State *L) { return max_min(L, 0); }
static int l_min(lua_State *L) { return max_min(L, 1); }

static int arg_max_min(lua_State *L, int is_min)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        yt_lua_push_tensor(L, one_based(is_min ? yt_argmin_all(x) : yt_argmax_all(x)));
        return 1;
    }
    int d = check_dim(L, 2), keepdim = lua_toboolean(L, 3);
    yt_lua_push_tensor(L, one_based(is_min ? yt_argmin(x, d, keepdim) : yt_argmax(x, d, keepdim)));
    return 1;
}

static int l_argmax(lua_State *L) { return arg_max_min(L, 0); }
static int l_argmin(lua_State *L) { return arg_max_min(L, 1); }

/* f(x, dim) with dim argument 2, default the last */
static int along_dim(lua_State *L, yt_tensor *(*f)(yt_tensor *, int))
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    yt_lua_push_tensor(L, f(x, opt_dim(L, 2, -1)));
    return 1;
}

static int l_softmax(lua_State *L) { return along_dim(L, yt_softmax); }
static int l_log_softmax(lua_State *L) { return along_dim(L, yt_log_softmax); }

/* ---- cat / split / chunk / index_select ---- */

static int l_cat(lua_State *L)
{
    yt_tensor *ts[MAX_CAT];
    if (is_tensor(L, 1)) return luaL_argerror(L, 1, "cat: expected a list of tensors, e.g. cat({a, b}, 2)");
    int n = yt_lua_check_tensor_list(L, 1, ts, MAX_CAT);
    if (n == 0) return luaL_argerror(L, 1, "cat: the list is empty");
    int d = opt_dim(L, 2, 0);
    yt_lua_push_tensor(L, yt_cat(n, ts, d));
    return 1;
}

/* Pushes a list of the n tensors (taking the references). */
static void push_list(lua_State *L, yt_tensor **out, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        yt_lua_push_tensor(L, out[i]);
        out[i] = NULL;
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_split(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    int d = opt_dim(L, 3, 0);
    int dn = d < 0 ? d + x->ndim : d;
    if (x->ndim == 0 || dn < 0 || dn >= x->ndim) return luaL_argerror(L, 3, "split: dimension out of range");
    int64_t size = x->shape[dn];
    int cap = (int)(size > 0 ? size : 1);
    yt_tensor **out = lua_newuserdatauv(L, (size_t)cap * sizeof *out, 0); /* scratch, collected by Lua */
    int n;
    if (lua_istable(L, 2)) {
        int m = (int)luaL_len(L, 2);
        if (m < 1 || m > cap) return luaL_argerror(L, 2, "split: too many or no sizes");
        int64_t *sizes = lua_newuserdatauv(L, (size_t)m * sizeof *sizes, 0);
        for (int i = 0; i < m; i++) {
            lua_geti(L, 2, i + 1);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok) return luaL_argerror(L, 2, "split: sizes must be integers");
            sizes[i] = v;
            lua_pop(L, 1);
        }
        if (yt_split(x, m, sizes, d, out) < 0) return yt_lua_core_error(L);
        n = m;
    } else {
        lua_Integer s = luaL_checkinteger(L, 2);
        n = yt_split_size(x, s, d, out, cap);
        if (n < 0) return yt_lua_core_error(L);
    }
    push_list(L, out, n);
    return 1;
}

static int l_chunk(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    lua_Integer chunks = luaL_checkinteger(L, 2);
    luaL_argcheck(L, chunks > 0 && chunks <= 1 << 20, 2, "chunk: number of chunks must be positive");
    int d = opt_dim(L, 3, 0);
    yt_tensor **out = lua_newuserdatauv(L, (size_t)chunks * sizeof *out, 0);
    int n = yt_chunk(x, (int)chunks, d, out, (int)chunks);
    if (n < 0) return yt_lua_core_error(L);
    push_list(L, out, n);
    return 1;
}

static int l_index_select(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    int d = check_dim(L, 2);
    int dn = d < 0 ? d + (x->ndim ? x->ndim : 1) : d;
    int64_t size = x->ndim && dn >= 0 && dn < x->ndim ? x->shape[dn] : 1;
    yt_tensor *idx;
    if (is_tensor(L, 3)) {
        yt_tensor *it = yt_lua_check_tensor(L, 3);
        if (it->dtype != YT_I64) return luaL_argerror(L, 3, "index_select: the index must be an int64 tensor");
        idx = yt_tensor_clone(it);
    } else {
        luaL_checktype(L, 3, LUA_TTABLE);
        int64_t m = (int64_t)luaL_len(L, 3);
        idx = yt_tensor_empty(YT_I64, 1, &m);
        if (idx)
            for (int64_t i = 0; i < m; i++) {
                lua_geti(L, 3, i + 1);
                int ok;
                lua_Integer v = lua_tointegerx(L, -1, &ok);
                lua_pop(L, 1);
                if (!ok) {
                    yt_tensor_release(idx);
                    return luaL_argerror(L, 3, "index_select: indices must be integers");
                }
                yt_i64(idx)[i] = v;
            }
    }
    if (!idx) return yt_lua_core_error(L);
    /* 1-based (negative from the end) -> 0-based; 0 stays invalid */
    int64_t *p = yt_i64(idx);
    for (int64_t i = 0; i < yt_numel(idx); i++) {
        if (p[i] == 0) {
            yt_tensor_release(idx);
            return luaL_argerror(L, 3, "index_select: indices are 1-based (0 is not an index)");
        }
        int64_t given = p[i];
        p[i] = p[i] > 0 ? p[i] - 1 : p[i] + size;
        if (p[i] < 0 || p[i] >= size) {
            yt_tensor_release(idx);
            return luaL_error(L, "index_select: index %d out of range 1..%d (or -%d..-1) in dimension %d", (int)given,
                              (int)size, (int)size, dn + 1);
        }
    }
    yt_tensor *y = yt_index_select(x, d, idx);
    yt_tensor_release(idx);
    yt_lua_push_tensor(L, y);
    return 1;
}

/* ---- shape views ---- */

static int l_transpose(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    int a = check_dim(L, 2), b = check_dim(L, 3);
    yt_lua_push_tensor(L, yt_transpose(x, a, b));
    return 1;
}

static int l_flatten(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    int s = opt_dim(L, 2, 0), e = opt_dim(L, 3, -1);
    yt_lua_push_tensor(L, yt_flatten(x, s, e));
    return 1;
}

static int l_squeeze(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2))
        yt_lua_push_tensor(L, yt_squeeze_all(x));
    else
        yt_lua_push_tensor(L, yt_squeeze(x, check_dim(L, 2)));
    return 1;
}

static int l_unsqueeze(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    yt_lua_push_tensor(L, yt_unsqueeze(x, check_dim(L, 2)));
    return 1;
}

/* both module functions and tensor methods */
static const luaL_Reg ops_common[] = {
    {"add", l_add},
    {"sub", l_sub},
    {"mul", l_mul},
    {"div", l_div},
    {"neg", l_neg},
    {"exp", l_exp},
    {"log", l_log},
    {"sqrt", l_sqrt},
    {"abs", l_abs},
    {"pow", l_pow},
    {"clamp", l_clamp},
    {"sum", l_sum},
    {"mean", l_mean},
    {"max", l_max},
    {"min", l_min},
    {"argmax", l_argmax},
    {"argmin", l_argmin},
    {"split", l_split},
    {"chunk", l_chunk},
    {"softmax", l_softmax},
    {"log_softmax", l_log_softmax},
    {"silu", l_silu},
    {"sigmoid", l_sigmoid},
    {"transpose", l_transpose},
    {"flatten", l_flatten},
    {"squeeze", l_squeeze},
    {"unsqueeze", l_unsqueeze},
    {"index_select", l_index_select},
    {NULL, NULL},
};

/* module functions only */
static const luaL_Reg ops_functions[] = {
    {"cat", l_cat},
    {NULL, NULL},
};

/* tensor metamethods only */
static const luaL_Reg ops_operators[] = {
    {"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul}, {"__div", l_div},
    {"__unm", l_neg}, {"__pow", l_pow}, {NULL, NULL},
};

void yt_lua_open_ops(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, ops_common, 0);
    luaL_setfuncs(L, ops_functions, 0);
    lua_pop(L, 1);
    yt_lua_add_tensor_methods(L, ops_common);
    yt_lua_add_tensor_methods(L, ops_operators);
}
