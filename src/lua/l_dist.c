/* yt.dist: data-parallel communication over MPI for Lua (src/distributed/dist.h). Always present; without MPI at build
 * time (YT_HAVE_MPI undefined) yt.dist.available is false and every collective raises a clear error.
 *
 *   yt.dist.available                 true when built with OpenMPI
 *   yt.dist.init()                    -> rank, size (MPI_Init_thread once; idempotent)
 *   yt.dist.initialized(), rank(), size(), host()
 *   yt.dist.set_timeout(seconds)      deadline of every collective (default $YT_DIST_TIMEOUT or 1800; <= 0 none)
 *   yt.dist.timeout()
 *   yt.dist.barrier()
 *   yt.dist.allreduce(t [, op = "sum" | "max" | "min" [, average = false]])   in place, F32 or F64 -> t
 *   yt.dist.allreduce_numbers({...} [, op])      -> new table (double precision)
 *   yt.dist.allreduce_grads(params [, bucket_mb = 32])   averages p.grad over ranks, bucketed
 *   yt.dist.broadcast(tensors [, root = 0])      in place (tensors contiguous)
 *   yt.dist.broadcast_string(s [, root = 0])     -> root's string
 *   yt.dist.identical(tensors)                   -> true when bitwise equal on every rank
 *   yt.dist.sync_batch_norm(x, weight, bias, running_mean, running_var [, momentum = 0.1, eps = 1e-5]) -> y
 *   yt.dist.abort(msg [, code = 1])              prints msg with the rank and ends every rank (MPI_Abort)
 *   yt.dist.set_exit_ok(flag)                    at exit: finalize when true, abort when false
 *   yt.dist.finalize()
 *   yt.dist.broken()                             -> message of the failure that broke communication, or nil
 *
 * At exit (the program's yt_dist_end, after the Lua state is closed: never a finaliser), a process that
 * initialised MPI finalizes it when set_exit_ok(true) was called after the last init (the trainer does so when
 * training succeeded), and otherwise aborts the job with a message: a rank that ends on an error never leaves the
 * others waiting in a collective. A host program other than yolotrain calls yt_dist_end itself. */
#include <stdlib.h>
#include <string.h>

#include "lua/yt_lua.h"

#ifdef YT_HAVE_MPI

#include "core/error.h"
#include "distributed/dist.h"

static int check_rc(lua_State *L, int rc)
{
    if (rc < 0) return yt_lua_core_error(L);
    return rc;
}

static int l_init(lua_State *L)
{
    check_rc(L, yt_dist_init());
    yt_dist_set_exit_ok(0);
    lua_pushinteger(L, yt_dist_rank());
    lua_pushinteger(L, yt_dist_size());
    return 2;
}

static int l_initialized(lua_State *L)
{
    lua_pushboolean(L, yt_dist_is_initialized());
    return 1;
}
static int l_rank(lua_State *L)
{
    lua_pushinteger(L, yt_dist_rank());
    return 1;
}
static int l_size(lua_State *L)
{
    lua_pushinteger(L, yt_dist_size());
    return 1;
}
static int l_host(lua_State *L)
{
    lua_pushstring(L, yt_dist_host());
    return 1;
}
static int l_set_timeout(lua_State *L)
{
    yt_dist_set_timeout(luaL_checknumber(L, 1));
    return 0;
}
static int l_timeout(lua_State *L)
{
    lua_pushnumber(L, yt_dist_get_timeout());
    return 1;
}
static int l_broken(lua_State *L)
{
    const char *b = yt_dist_broken();
    if (b)
        lua_pushstring(L, b);
    else
        lua_pushnil(L);
    return 1;
}
static int l_barrier(lua_State *L)
{
    check_rc(L, yt_dist_barrier());
    return 0;
}

static yt_dist_op check_op(lua_State *L, int idx)
{
    static const char *const names[] = {"sum", "max", "min", NULL};
    return (yt_dist_op)luaL_checkoption(L, idx, "sum", names);
}

static int l_allreduce(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    yt_dist_op op = check_op(L, 2);
    int average = lua_toboolean(L, 3);
    if (!yt_is_contiguous(t)) return luaL_error(L, "allreduce: the tensor must be contiguous (it is reduced in place)");
    if (t->dtype == YT_F32) {
        check_rc(L, yt_dist_allreduce_f32(yt_f32(t), (size_t)yt_numel(t), op, average));
    } else if (t->dtype == YT_F64) {
        check_rc(L, yt_dist_allreduce_f64(yt_f64(t), (size_t)yt_numel(t), op));
        if (average && op == YT_DIST_SUM) {
            double *p = yt_f64(t);
            for (int64_t i = 0; i < yt_numel(t); i++) p[i] /= yt_dist_size();
        }
    } else {
        return luaL_error(L, "allreduce: expected a float32 or float64 tensor, got %s", yt_dtype_name(t->dtype));
    }
    lua_settop(L, 1);
    return 1;
}

static int l_allreduce_numbers(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    yt_dist_op op = check_op(L, 2);
    lua_Integer n = luaL_len(L, 1);
    if (n < 0 || n > 1 << 24) return luaL_error(L, "allreduce_numbers: bad length %d", (int)n);
    double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(double), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        int isnum = 0;
        v[i - 1] = lua_tonumberx(L, -1, &isnum);
        if (!isnum) return luaL_error(L, "allreduce_numbers: entry %d is not a number", (int)i);
        lua_pop(L, 1);
    }
    check_rc(L, yt_dist_allreduce_f64(v, (size_t)n, op));
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushnumber(L, v[i - 1]);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* Reads an array of tensors into a Lua-owned block left on the stack. */
static yt_tensor **tensor_list(lua_State *L, int idx, int *n_out)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = luaL_len(L, idx);
    if (n < 0 || n > 1 << 24) luaL_error(L, "expected an array of tensors");
    yt_tensor **ts = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ts, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        ts[i - 1] = yt_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    *n_out = (int)n;
    return ts;
}

static int l_allreduce_grads(lua_State *L)
{
    int n = 0;
    double mb = luaL_optnumber(L, 2, 32.0);
    if (!(mb > 0)) return luaL_error(L, "allreduce_grads: bucket_mb must be > 0, got %f", mb);
    yt_tensor **ts = tensor_list(L, 1, &n);
    check_rc(L, yt_dist_allreduce_grads(ts, n, (size_t)(mb * 1048576.0 / sizeof(float))));
    return 0;
}

static int l_broadcast(lua_State *L)
{
    int n = 0;
    int root = (int)luaL_optinteger(L, 2, 0);
    yt_tensor **ts = tensor_list(L, 1, &n);
    check_rc(L, yt_dist_bcast_tensors(ts, n, root));
    return 0;
}

static int l_broadcast_string(lua_State *L)
{
    size_t len = 0;
    const char *s = luaL_optlstring(L, 1, "", &len);
    int root = (int)luaL_optinteger(L, 2, 0);
    int64_t n = (int64_t)len;
    check_rc(L, yt_dist_bcast(&n, sizeof n, root));
    if (n < 0 || n > (int64_t)1 << 30) return luaL_error(L, "broadcast_string: bad length %d", (int)n);
    char *buf = lua_newuserdatauv(L, (size_t)n + 1, 0);
    if (yt_dist_rank() == root) memcpy(buf, s, (size_t)n);
    check_rc(L, yt_dist_bcast(buf, (size_t)n, root));
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int l_identical(lua_State *L)
{
    int n = 0;
    yt_tensor **ts = tensor_list(L, 1, &n);
    lua_pushboolean(L, check_rc(L, yt_dist_tensors_identical(ts, n)) == 1);
    return 1;
}

static int l_sync_batch_norm(lua_State *L)
{
    yt_tensor *x = yt_lua_check_tensor(L, 1);
    yt_tensor *w = yt_lua_opt_tensor(L, 2);
    yt_tensor *b = yt_lua_opt_tensor(L, 3);
    yt_tensor *rm = yt_lua_opt_tensor(L, 4);
    yt_tensor *rv = yt_lua_opt_tensor(L, 5);
    double momentum = luaL_optnumber(L, 6, 0.1);
    double eps = luaL_optnumber(L, 7, 1e-5);
    yt_lua_push_tensor(L, yt_dist_sync_batch_norm(x, w, b, rm, rv, momentum, eps));
    return 1;
}

static int l_abort(lua_State *L)
{
    const char *msg = luaL_optstring(L, 1, "aborted");
    int code = (int)luaL_optinteger(L, 2, 1);
    yt_dist_abort(msg, code);
    return luaL_error(L, "%s", msg); /* only reached when MPI is not initialised */
}

static int l_set_exit_ok(lua_State *L)
{
    yt_dist_set_exit_ok(lua_toboolean(L, 1));
    return 0;
}

static int l_finalize(lua_State *L)
{
    check_rc(L, yt_dist_finalize());
    return 0;
}

static const luaL_Reg dist_fns[] = {
    {"init", l_init},
    {"initialized", l_initialized},
    {"rank", l_rank},
    {"size", l_size},
    {"host", l_host},
    {"set_timeout", l_set_timeout},
    {"timeout", l_timeout},
    {"broken", l_broken},
    {"barrier", l_barrier},
    {"allreduce", l_allreduce},
    {"allreduce_numbers", l_allreduce_numbers},
    {"allreduce_grads", l_allreduce_grads},
    {"broadcast", l_broadcast},
    {"broadcast_string", l_broadcast_string},
    {"identical", l_identical},
    {"sync_batch_norm", l_sync_batch_norm},
    {"abort", l_abort},
    {"set_exit_ok", l_set_exit_ok},
    {"finalize", l_finalize},
    {NULL, NULL},
};

#define DIST_AVAILABLE 1

#else /* no MPI */

static const char no_mpi[] =
    "distributed training is not available: yolotrain was built without MPI (OpenMPI was not found at build "
    "time). Install OpenMPI (Debian: apt-get install libopenmpi-dev openmpi-bin) and rebuild, or train with ranks=1";

static int l_unavailable(lua_State *L) { return luaL_error(L, "%s", no_mpi); }
static int l_false(lua_State *L)
{
    lua_pushboolean(L, 0);
    return 1;
}
static int l_zero(lua_State *L)
{
    lua_pushinteger(L, 0);
    return 1;
}
static int l_one(lua_State *L)
{
    lua_pushinteger(L, 1);
    return 1;
}
static int l_nil(lua_State *L)
{
    lua_pushnil(L);
    return 1;
}

static const luaL_Reg dist_fns[] = {
    {"init", l_unavailable},
    {"initialized", l_false},
    {"rank", l_zero},
    {"size", l_one},
    {"host", l_unavailable},
    {"set_timeout", l_unavailable},
    {"timeout", l_unavailable},
    {"broken", l_nil},
    {"barrier", l_unavailable},
    {"allreduce", l_unavailable},
    {"allreduce_numbers", l_unavailable},
    {"allreduce_grads", l_unavailable},
    {"broadcast", l_unavailable},
    {"broadcast_string", l_unavailable},
    {"identical", l_unavailable},
    {"sync_batch_norm", l_unavailable},
    {"abort", l_unavailable},
    {"set_exit_ok", l_unavailable},
    {"finalize", l_unavailable},
    {NULL, NULL},
};

#define DIST_AVAILABLE 0

#endif

void yt_lua_open_dist(lua_State *L, int module_index)
{
    module_index = lua_absindex(L, module_index);
    luaL_newlib(L, dist_fns);
    lua_pushboolean(L, DIST_AVAILABLE);
    lua_setfield(L, -2, "available");
#if !DIST_AVAILABLE
    lua_pushstring(L, no_mpi);
    lua_setfield(L, -2, "unavailable_reason");
#endif
    lua_setfield(L, module_index, "dist");
}
