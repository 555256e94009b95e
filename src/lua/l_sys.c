/* yt.sys: small system helpers for Lua (files, time, processes, threads) and the hooks of interactive training
 * (a flag-only SIGINT handler and the REPL). Documented in docs/cli.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include <lualib.h>

#include "core/error.h"
#include "io/durable.h"
#include "ops/autocast.h"
#include "ops/conv2d.h"
#include "ops/conv2d_dnnl.h"
#include "lua/yt_lua.h"
#include "lua/yt_repl.h"

void openblas_set_num_threads(int num_threads); /* from OpenBLAS' cblas.h */

/* Pushes nil, "<what>: <strerror>" and errno, the io library's convention; returns 3. */
static int push_errno(lua_State *L, const char *what)
{
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(e));
    lua_pushinteger(L, e);
    return 3;
}

/* ---- interrupt handler for training ------------------------------------------------------------------------ */

static atomic_int sys_interrupts;      /* Ctrl-C presses since the last yt.sys.interrupted() */
static lua_State *volatile sys_target; /* thread that installed the handler (forced interrupt on the 3rd press) */
static struct sigaction sys_saved;     /* disposition before install */
static int sys_installed;
static int sys_target_ref = LUA_NOREF;  /* registry reference keeping sys_target from being collected */
static atomic_int sys_terminations;     /* SIGTERMs since the last yt.sys.terminated() */
static struct sigaction sys_saved_term; /* SIGTERM disposition before install */

static void on_sigint_flag(int sig)
{
    (void)sig;
    int n = atomic_fetch_add(&sys_interrupts, 1) + 1;
    if (n >= 3) yt_repl_arm_interrupt(sys_target); /* the step boundary never came: stop the Lua code now */
}

/* SIGTERM asks for the same clean stop as Ctrl-C, without a REPL; a second one ends the process at once. */
static void on_sigterm_flag(int sig)
{
    if (atomic_fetch_add(&sys_terminations, 1) >= 1) {
        /* blocked while this handler runs: delivered, with the default (fatal) action, when it returns */
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

static int l_install_interrupt_handler(lua_State *L)
{
    if (sys_installed) {
        lua_pushboolean(L, 0);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_flag;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* only a flag: let blocking calls in the training loop carry on */
    atomic_store(&sys_interrupts, 0);
    lua_pushthread(L);
    sys_target_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sys_target = L;
    atomic_store(&sys_terminations, 0);
    struct sigaction st = sa;
    st.sa_handler = on_sigterm_flag;
    int failed = sigaction(SIGINT, &sa, &sys_saved) != 0;
    if (!failed && sigaction(SIGTERM, &st, &sys_saved_term) != 0) {
        failed = 1;
        int e = errno;
        sigaction(SIGINT, &sys_saved, NULL);
        errno = e;
    }
    if (failed) {
        int e = errno;
        sys_target = NULL;
        luaL_unref(L, LUA_REGISTRYINDEX, sys_target_ref);
        sys_target_ref = LUA_NOREF;
        return luaL_error(L, "install_interrupt_handler: %s", strerror(e));
    }
    sys_installed = 1;
    lua_pushboolean(L, 1);
    return 1;
}

static int l_restore_interrupt_handler(lua_State *L)
{
    if (!sys_installed) {
        lua_pushboolean(L, 0);
        return 1;
    }
    sigaction(SIGINT, &sys_saved, NULL);
    sigaction(SIGTERM, &sys_saved_term, NULL);
    sys_installed = 0;
    sys_target = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, sys_target_ref);
    sys_target_ref = LUA_NOREF;
    lua_pushboolean(L, 1);
    return 1;
}

static int l_interrupted(lua_State *L)
{
    int n = atomic_exchange(&sys_interrupts, 0);
    lua_pushboolean(L, n > 0);
    lua_pushinteger(L, n);
    return 2;
}

static int l_terminated(lua_State *L)
{
    int n = atomic_exchange(&sys_terminations, 0);
    lua_pushboolean(L, n > 0);
    return 1;
}

/* yt.sys.traceback([msg [, level]]): the traceback without the engine's frames (YT_TRACEBACK=full: all of them). */
static int l_traceback(lua_State *L)
{
    const char *msg = luaL_optstring(L, 1, NULL);
    int level = (int)luaL_optinteger(L, 2, 1);
    yt_repl_traceback(L, L, msg, level);
    return 1;
}

static int l_interrupt_count(lua_State *L)
{
    lua_pushinteger(L, atomic_load(&sys_interrupts));
    return 1;
}

static int l_repl(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
    const char *banner = luaL_optstring(L, 2, NULL);
    int env = lua_isnoneornil(L, 1) ? 0 : 1;
    int sys_was_installed = sys_installed;
    /* The REPL handles Ctrl-C itself; presses there must not count as training interrupts. */
    int result = yt_repl_run(L, env, banner, 1);
    if (sys_was_installed) atomic_store(&sys_interrupts, 0);
    lua_pushstring(L, result == YT_REPL_STOP ? "stop" : "cont");
    return 1;
}

/* ---- files ------------------------------------------------------------------------------------------------- */

static int l_isatty(lua_State *L)
{
    int fd;
    if (lua_isinteger(L, 1)) {
        fd = (int)lua_tointeger(L, 1);
    } else {
        luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
        if (s->closef == NULL || s->f == NULL) return luaL_error(L, "isatty: attempt to use a closed file");
        fd = fileno(s->f);
    }
    lua_pushboolean(L, isatty(fd));
    return 1;
}

static int l_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    if (rename(from, to) != 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "rename %s -> %s: %s", from, to, strerror(e));
        lua_pushinteger(L, e);
        return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* yt.sys.temp_path(path) -> "<path>.tmp.<pid>", the name a writer of path uses (io/durable.h). */
static int l_temp_path(lua_State *L)
{
    char *tmp = yt_temp_path(luaL_checkstring(L, 1));
    if (!tmp) return yt_lua_core_error(L);
    lua_pushstring(L, tmp);
    free(tmp);
    return 1;
}

/* yt.sys.durable_rename(tmp, path): fsync tmp, rename it to path, fsync the directory (io/durable.h). */
static int l_durable_rename(lua_State *L)
{
    const char *tmp = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (yt_durable_rename(tmp, path) < 0) return yt_lua_core_error(L);
    return 0;
}

/* yt.sys.remove_stale_temps(dir) -> n: removes "<name>.tmp.<pid>" / ".old.<pid>" files of processes that no longer
 * exist. */
static int l_remove_stale_temps(lua_State *L)
{
    int n = yt_remove_stale_temps(luaL_checkstring(L, 1));
    if (n < 0) return yt_lua_core_error(L);
    lua_pushinteger(L, n);
    return 1;
}

static int l_mkdir_p(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    if (len == 0) return luaL_argerror(L, 1, "empty path");
    char *p = malloc(len + 1);
    if (!p) return luaL_error(L, "mkdir_p: out of memory");
    memcpy(p, path, len + 1);
    /* Create each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && p[i] != '/') continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            lua_pushnil(L);
            lua_pushfstring(L, "mkdir %s: %s", p, strerror(e));
            lua_pushinteger(L, e);
            free(p);
            return 3;
        }
        p[i] = saved;
    }
    free(p);
    struct stat st;
    if (stat(path, &st) != 0) return push_errno(L, path);
    if (!S_ISDIR(st.st_mode)) {
        lua_pushnil(L);
        lua_pushfstring(L, "mkdir %s: exists and is not a directory", path);
        lua_pushinteger(L, ENOTDIR);
        return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int l_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) return push_errno(L, path);
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    int failed = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            char **grown = realloc(names, ncap * sizeof *names);
            if (!grown) {
                failed = 1;
                break;
            }
            names = grown;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            failed = 1;
            break;
        }
        n++;
    }
    closedir(d);
    if (!failed) {
        if (n > 1) qsort(names, n, sizeof *names, cmp_names);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lua_pushstring(L, names[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (failed) return luaL_error(L, "listdir %s: out of memory", path);
    return 1;
}

static int l_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) return push_errno(L, path);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec * 1e-9);
    lua_setfield(L, -2, "mtime");
    lua_pushboolean(L, S_ISDIR(st.st_mode));
    lua_setfield(L, -2, "is_dir");
    return 1;
}

static int l_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *r = realpath(path, NULL);
    if (!r) return push_errno(L, path);
    lua_pushstring(L, r);
    free(r);
    return 1;
}

/* ---- process ----------------------------------------------------------------------------------------------- */

static int l_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

/* yt.sys.sleep(seconds): waits (a retry's back-off); an interrupting signal ends the wait early. */
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 3600, 1, "seconds must be in 0..3600");
    struct timespec ts = {(time_t)s, (long)((s - (lua_Number)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
    return 0;
}

/* ---- file locks -------------------------------------------------------------------------------------------- */

#define LOCK_MT "yt.FileLock"

typedef struct {
    int fd;
} file_lock;

static int lock_release(lua_State *L)
{
    file_lock *k = luaL_checkudata(L, 1, LOCK_MT);
    if (k->fd >= 0) close(k->fd); /* closing drops the flock */
    k->fd = -1;
    return 0;
}

/* yt.sys.lock(path) -> lock: an exclusive flock on path (created when missing), waiting while another process
 * holds it. Released by lock:unlock(), a to-be-closed variable, or collection. Serialises downloads of the same
 * file by several processes (the ranks of a distributed run, two runs started at once). */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    file_lock *k = lua_newuserdatauv(L, sizeof *k, 0);
    k->fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return luaL_error(L, "cannot create the lock file %s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        return luaL_error(L, "cannot lock %s: %s", path, strerror(e));
    }
    k->fd = fd;
    return 1;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int l_getenv(lua_State *L)
{
    const char *v = getenv(luaL_checkstring(L, 1));
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static int l_setenv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int rc = lua_isnoneornil(L, 2) ? unsetenv(name) : setenv(name, luaL_checkstring(L, 2), 1);
    if (rc != 0) return push_errno(L, name);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_rss(lua_State *L)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return push_errno(L, "/proc/self/statm");
    unsigned long long size_pages = 0, resident_pages = 0;
    int ok = fscanf(f, "%llu %llu", &size_pages, &resident_pages) == 2;
    fclose(f);
    if (!ok) return luaL_error(L, "rss: cannot parse /proc/self/statm");
    lua_pushinteger(L, (lua_Integer)(resident_pages * (unsigned long long)sysconf(_SC_PAGESIZE)));
    return 1;
}

static int l_nproc(lua_State *L)
{
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

static int l_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 4096, 1, "thread count must be in 1..4096");
    omp_set_num_threads((int)n);
    openblas_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, omp_get_max_threads());
    return 1;
}

/* "dnnl", "dnnl_all" or "gemm": the convolution backend (YT_CONV, else the default for oneDNN's ISA; an invalid
 * value raises its error), and oneDNN's ISA ("avx512_core_bf16", "avx2", ...) */
static int l_conv_backend(lua_State *L)
{
    int b = yt_conv2d_backend();
    if (b < 0) return luaL_error(L, "%s", yt_last_error());
    lua_pushstring(L, yt_conv2d_backend_name(b));
    lua_pushstring(L, yt_conv2d_dnnl_isa());
    return 2;
}

/* set_conv_backend("gemm" | "dnnl" | "dnnl_all" | nil): nil goes back to YT_CONV's choice (benchmarks compare) */
static int l_set_conv_backend(lua_State *L)
{
    int b = 0;
    if (!lua_isnoneornil(L, 1)) {
        const char *name = luaL_checkstring(L, 1);
        b = yt_conv2d_backend_of(name);
        if (b < 0) return luaL_error(L, "conv backend '%s': expected gemm, dnnl or dnnl_all", name);
    }
    yt_conv2d_set_backend(b);
    return 0;
}

/* set_autocast(on): bf16 mixed precision for what is recorded for backward (ops/autocast.h); returns the previous
 * request */
static int l_set_autocast(lua_State *L)
{
    lua_pushboolean(L, yt_autocast_set(lua_toboolean(L, 1)));
    return 1;
}

/* autocast() -> requested, precision: whether bf16 is requested, and what recorded convolutions run in ("bf16", or
 * "float32" when it is not requested or the CPU lacks BF16) */
static int l_autocast(lua_State *L)
{
    lua_pushboolean(L, yt_autocast_enabled());
    lua_pushstring(L, yt_autocast_active() ? "bf16" : "float32");
    return 2;
}

/* cpu_isa() -> name, bf16: oneDNN's effective instruction set ("avx512_core_bf16", "avx2", ...; DNNL_MAX_CPU_ISA
 * lowers it) and whether it runs bf16 convolutions natively */
static int l_cpu_isa(lua_State *L)
{
    lua_pushstring(L, yt_conv2d_dnnl_isa());
    lua_pushboolean(L, yt_autocast_bf16_supported());
    return 2;
}

static const luaL_Reg sys_functions[] = {
    {"install_interrupt_handler", l_install_interrupt_handler},
    {"restore_interrupt_handler", l_restore_interrupt_handler},
    {"interrupted", l_interrupted},
    {"interrupt_count", l_interrupt_count},
    {"terminated", l_terminated},
    {"traceback", l_traceback},
    {"repl", l_repl},
    {"isatty", l_isatty},
    {"time", l_time},
    {"getpid", l_getpid},
    {"sleep", l_sleep},
    {"lock", l_lock},
    {"rename", l_rename},
    {"durable_rename", l_durable_rename},
    {"remove_stale_temps", l_remove_stale_temps},
    {"temp_path", l_temp_path},
    {"mkdir_p", l_mkdir_p},
    {"listdir", l_listdir},
    {"stat", l_stat},
    {"realpath", l_realpath},
    {"getenv", l_getenv},
    {"setenv", l_setenv},
    {"rss", l_rss},
    {"nproc", l_nproc},
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads},
    {"conv_backend", l_conv_backend},
    {"set_conv_backend", l_set_conv_backend},
    {"set_autocast", l_set_autocast},
    {"autocast", l_autocast},
    {"cpu_isa", l_cpu_isa},
    {NULL, NULL},
};

void yt_lua_open_sys(lua_State *L, int module_index)
{
    luaL_newmetatable(L, LOCK_MT);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "unlock");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, sys_functions);
    lua_setfield(L, module_index, "sys");
}
