/* yolotrain executable: runs Lua recipes with the engine's Lua path set up, evaluates -e code, opens the REPL, and
 * hands `yolotrain [task] mode key=value ...` to the Lua front end yolotrain.cfg.cli. Usage: docs/cli.md. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "cli/cli.h"
#ifdef YT_HAVE_MPI
#include "distributed/dist.h"
#endif
#include "lua/yt_lua.h"
#include "lua/yt_repl.h"

/* The source tree's lua/: set only in the build tree's executable, so an installed one depends on no checkout. */
#ifndef YT_SOURCE_LUA_DIR
#define YT_SOURCE_LUA_DIR ""
#endif
/* The installed engine, relative to the executable's directory (CMake derives it from the GNUInstallDirs layout),
 * or absolute when the install was configured with absolute directories. */
#ifndef YT_EXE_LUA_DIR
#define YT_EXE_LUA_DIR "../share/yolotrain/lua"
#endif

#define EXIT_INTERRUPTED 130 /* 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C */

/* Words that hand the command line to yolotrain.cfg.cli. Ultralytics' other tasks and modes are among them so that
 * the front end can say they are not implemented, rather than look for a recipe file of that name. */
static const char *const tasks[] = {"detect", "segment", "classify", "pose", "obb", NULL};
static const char *const modes[] = {"train", "val", "predict", "export", "track", "benchmark", NULL};
static const char *const commands[] = {"help", "version", "checks", "settings", "cfg", "attach", NULL};

static const char usage_text[] =
    "usage: yolotrain [options] [recipe.lua [args...]]\n"
    "       yolotrain [task] mode [key=value ...]\n"
    "\n"
    "Recipes and code:\n"
    "  recipe.lua args  run the recipe; `arg` and `...` hold the args as the lua interpreter sets them\n"
    "  -e code          run code (several -e allowed; they run in order, before the recipe)\n"
    "  -l [g=]mod       run g = require(\"mod\") (g defaults to mod)\n"
    "  -i               open the REPL after the code and the recipe ran\n"
    "  -                run the recipe read from standard input\n"
    "  --               stop handling options\n"
    "  -v, --version    print the version and exit\n"
    "  -h, --help       print this help and exit\n"
    "With no arguments: the REPL when standard input is a terminal, otherwise standard input is run as a chunk.\n"
    "\n"
    "Training from the command line (Ultralytics' grammar, handled by yolotrain.cfg.cli):\n"
    "  yolotrain detect train data=coco128.yaml model=yolov8n.yaml epochs=3 imgsz=640\n"
    "  yolotrain detect export model=best.safetensors format=onnx imgsz=640\n"
    "  yolotrain train|val|predict|export key=value ...   (the task defaults to detect, the only one)\n"
    "  yolotrain help | version | checks | cfg            (usage, version, this machine's setup, every argument)\n"
    "  yolotrain settings [key=value ...] [reset]          (where datasets, weights and runs go)\n"
    "  yolotrain attach [RUN_DIR | PID]                    (a REPL into a running training; newest when omitted)\n"
    "\n"
    "Environment:\n"
    "  YOLOTRAIN_LUA_PATH    ':'-separated directories searched first for the yolotrain.* Lua modules\n"
    "  YOLOTRAIN_CONFIG_DIR  the folder of settings.yaml (default $XDG_CONFIG_HOME/yolotrain)\n"
    "  YT_TRACEBACK=full     tracebacks keep the engine's frames (by default they start at the user's file:line)\n"
    "\n"
    "Exit status: 0 on success, 1 on an error, 130 when Ctrl-C (or stop() in the paused REPL) stopped a training\n"
    "or interrupted the recipe, 143 when SIGTERM stopped a training (last is saved in both cases).\n";

/* ---- options ----------------------------------------------------------------------------------------------- */

typedef struct cli_options {
    int argc;
    char **argv;
    int script;      /* argv index of the recipe ("-" = stdin), 0 when there is none */
    int command;     /* argv[1] is a task or a mode: hand everything to yolotrain.cfg.cli */
    int interactive; /* -i */
    int has_code;    /* some -e or -l */
    int version, help;
    int status; /* exit status */
} cli_options;

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return 1;
    return 0;
}

/* The argument of -e/-l: attached ("-ecode") or the next word. Returns its argv index, or 0 when missing. */
static int option_value(cli_options *o, int *i)
{
    if (o->argv[*i][2] != '\0') return *i;
    if (*i + 1 >= o->argc) return 0;
    return ++*i;
}

/* Returns 0, or -1 after printing the problem. */
static int parse_options(cli_options *o)
{
    if (o->argc > 1 && (in_list(o->argv[1], tasks) || in_list(o->argv[1], modes) || in_list(o->argv[1], commands))) {
        o->command = 1;
        return 0;
    }
    for (int i = 1; i < o->argc; i++) {
        const char *a = o->argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            o->script = i;
            return 0;
        }
        if (strcmp(a, "--") == 0) {
            if (i + 1 < o->argc) o->script = i + 1;
            return 0;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
            o->version = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
        } else if (strcmp(a, "-i") == 0) {
            o->interactive = 1;
        } else if (a[1] == 'e' || a[1] == 'l') {
            if (!option_value(o, &i)) {
                fprintf(stderr, "yolotrain: '%s' needs an argument\n(see yolotrain --help)\n", a);
                return -1;
            }
            o->has_code = 1;
        } else {
            fprintf(stderr, "yolotrain: unrecognised option '%s'\n(see yolotrain --help)\n", a);
            return -1;
        }
    }
    return 0;
}

/* ---- Lua setup --------------------------------------------------------------------------------------------- */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void add_lua_dir(luaL_Buffer *b, const char *dir, size_t len)
{
    while (len > 1 && dir[len - 1] == '/') len--;
    if (len == 0) return;
    luaL_addlstring(b, dir, len);
    luaL_addstring(b, "/?.lua;");
    luaL_addlstring(b, dir, len);
    luaL_addstring(b, "/?/init.lua;");
}

/* The installed engine's folder: YT_EXE_LUA_DIR from the directory of the running executable (its real path,
 * wherever the tree was moved), resolved to a clean absolute path (tracebacks show no "bin/.."). out has PATH_MAX
 * bytes. Returns 0, or -1 when there is no such folder. */
static int installed_lua_dir(char out[PATH_MAX])
{
    char dir[PATH_MAX];
    if (YT_EXE_LUA_DIR[0] == '/') {
        if (snprintf(dir, sizeof dir, "%s", YT_EXE_LUA_DIR) >= (int)sizeof dir) return -1;
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return -1;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (!slash) return -1;
        *slash = '\0';
        if (snprintf(dir, sizeof dir, "%s/%s", exe, YT_EXE_LUA_DIR) >= (int)sizeof dir) return -1;
    }
    return realpath(dir, out) && is_dir(out) ? 0 : -1;
}

/* package.path = $YOLOTRAIN_LUA_PATH dirs, the installed engine (<exe dir>/../share/yolotrain/lua), the source
 * tree's lua/ (build tree only), then the default. */
static void set_lua_path(lua_State *L)
{
    lua_getglobal(L, "package");
    luaL_Buffer b;
    luaL_buffinit(L, &b);

    const char *env = getenv("YOLOTRAIN_LUA_PATH");
    while (env && *env) {
        const char *end = strchr(env, ':');
        size_t len = end ? (size_t)(end - env) : strlen(env);
        add_lua_dir(&b, env, len);
        env = end ? end + 1 : NULL;
    }

    char installed[PATH_MAX];
    if (installed_lua_dir(installed) == 0) add_lua_dir(&b, installed, strlen(installed));

    add_lua_dir(&b, YT_SOURCE_LUA_DIR, strlen(YT_SOURCE_LUA_DIR));
    lua_getfield(L, -2, "path");
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

static void open_libraries(lua_State *L)
{
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, yt_lua_open_core);
    lua_setfield(L, -2, "yolotrain.core");
    lua_pop(L, 1);
    set_lua_path(L);
}

/* arg[i - script] = argv[i], as the lua interpreter does (arg[0] is the recipe, or the program without one). */
static void set_arg_table(lua_State *L, const cli_options *o)
{
    lua_createtable(L, o->argc, 1);
    for (int i = 0; i < o->argc; i++) {
        lua_pushstring(L, o->argv[i]);
        lua_rawseti(L, -2, i - o->script);
    }
    lua_setglobal(L, "arg");
}

/* ---- running code ------------------------------------------------------------------------------------------ */

/* Prints the error on top of the stack and returns the exit status it means: a report object's exit_status
 * (printed as is when it is not 1: a stopped training's last line), 130 after Ctrl-C raised "interrupted", else 1. */
static int report_error(lua_State *L)
{
    int interrupted = yt_repl_take_interrupted();
    int status = interrupted ? EXIT_INTERRUPTED : 1;
    if (yt_repl_is_report(L, -1)) {
        lua_getfield(L, -1, "exit_status");
        lua_Integer v = lua_tointeger(L, -1);
        lua_pop(L, 1);
        status = v < 1 || v > 255 ? 1 : (int)v;
        if (interrupted && status == 1) status = EXIT_INTERRUPTED; /* a third Ctrl-C failed the step */
    }
    const char *msg = luaL_tolstring(L, -1, NULL);
    fflush(stdout);
    fprintf(stderr, "%s%s\n", status == 1 || interrupted ? "yolotrain: " : "", msg);
    fflush(stderr);
    lua_pop(L, 2);
    return status;
}

/* Calls the function below the nargs arguments. Returns 0 or the exit status of the failure (printed). */
static int run_call(lua_State *L, int nargs)
{
    yt_repl_take_interrupted();
    if (yt_repl_pcall(L, nargs, 0) != LUA_OK) return report_error(L);
    return 0;
}

static int run_string(lua_State *L, const char *code)
{
    if (luaL_loadbufferx(L, code, strlen(code), "=(command line)", "t") != LUA_OK) return report_error(L);
    return run_call(L, 0);
}

/* -l [g=]mod */
static int run_require(lua_State *L, const char *spec)
{
    const char *eq = strchr(spec, '=');
    const char *mod = eq ? eq + 1 : spec;
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    yt_repl_take_interrupted();
    if (yt_repl_pcall(L, 1, 1) != LUA_OK) return report_error(L);
    if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
    else lua_pushstring(L, mod);
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
    return 0;
}

static int run_script(lua_State *L, const cli_options *o)
{
    const char *name = o->argv[o->script];
    if (strcmp(name, "-") == 0) name = NULL; /* stdin */
    else if (is_dir(name)) {
        fprintf(stderr, "yolotrain: cannot run %s: it is a directory\n", name);
        return 1;
    }
    if (luaL_loadfilex(L, name, "t") != LUA_OK) return report_error(L);
    int nargs = o->argc - o->script - 1;
    luaL_checkstack(L, nargs, "too many arguments for the recipe");
    for (int i = o->script + 1; i < o->argc; i++) lua_pushstring(L, o->argv[i]);
    return run_call(L, nargs);
}

/* Runs -e and -l in their order. */
static int run_code_options(lua_State *L, const cli_options *o)
{
    int end = o->script ? o->script : o->argc;
    for (int i = 1; i < end; i++) {
        const char *a = o->argv[i];
        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l')) continue;
        const char *value = a[2] ? a + 2 : o->argv[++i];
        int status = a[1] == 'e' ? run_string(L, value) : run_require(L, value);
        if (status) return status;
    }
    return 0;
}

/* `yolotrain [task] mode k=v ...` -> require("yolotrain.cfg.cli").main({argv[1], ...}) */
static int run_command(lua_State *L, const cli_options *o)
{
    static const char module[] = "yolotrain.cfg.cli";
    if (strcmp(o->argv[1], "attach") == 0 && isatty(STDIN_FILENO)) yt_repl_set_editor(yt_cli_readline_editor());
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    yt_repl_take_interrupted();
    if (yt_repl_pcall(L, 1, 1) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg && strstr(msg, "module 'yolotrain.cfg.cli' not found")) {
            fprintf(stderr, "yolotrain: the command line front end (%s) is not available\n", module);
            lua_pop(L, 1);
            return 1;
        }
        return report_error(L);
    }
    if (lua_type(L, -1) != LUA_TTABLE || lua_getfield(L, -1, "main") != LUA_TFUNCTION) {
        fprintf(stderr, "yolotrain: %s does not provide a main(args) function\n", module);
        return 1;
    }
    lua_createtable(L, o->argc - 1, 0);
    for (int i = 1; i < o->argc; i++) {
        lua_pushstring(L, o->argv[i]);
        lua_rawseti(L, -2, i);
    }
    if (yt_repl_pcall(L, 1, 1) != LUA_OK) return report_error(L);
    int status = 0;
    if (lua_isinteger(L, -1)) {
        lua_Integer v = lua_tointeger(L, -1);
        status = v < 0 || v > 255 ? 1 : (int)v;
    } else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
        status = 1;
    }
    lua_pop(L, 2);
    return status;
}

static void run_repl(lua_State *L)
{
    int tty = isatty(STDIN_FILENO);
    if (tty) yt_repl_set_editor(yt_cli_readline_editor());
    /* `yt` is there without typing require, unless the session already defined it. */
    if (lua_getglobal(L, "yt") == LUA_TNIL) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "yolotrain");
        if (lua_pcall(L, 1, 1, 0) == LUA_OK) lua_setglobal(L, "yt");
        else lua_pop(L, 1); /* no engine on the path: the REPL still works */
    }
    lua_pop(L, 1);
    char banner[160];
    snprintf(banner, sizeof banner,
             "yolotrain %s (%s)  yt = require(\"yolotrain\"); Ctrl-C interrupts, Ctrl-D exits", YT_VERSION,
             LUA_RELEASE);
    yt_repl_run(L, 0, tty ? banner : NULL, 0);
}

/* Everything that touches Lua, run in protected mode so even an allocation failure is reported. */
static int protected_main(lua_State *L)
{
    cli_options *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (o->help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (o->version) {
        printf("yolotrain %s (%s)\n", YT_VERSION, LUA_RELEASE);
        return 0;
    }
    open_libraries(L);
    set_arg_table(L, o);
    if (o->command) {
        o->status = run_command(L, o);
        return 0;
    }
    if ((o->status = run_code_options(L, o)) != 0) return 0;
    if (o->script && (o->status = run_script(L, o)) != 0) return 0;
    if (o->interactive) {
        run_repl(L);
    } else if (!o->script && !o->has_code) {
        if (isatty(STDIN_FILENO)) {
            run_repl(L);
        } else {
            if (luaL_loadfilex(L, NULL, "t") != LUA_OK) o->status = report_error(L);
            else o->status = run_call(L, 0);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_options o = {.argc = argc, .argv = argv};
    if (parse_options(&o) != 0) return 1;
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "yolotrain: cannot create the Lua state: not enough memory\n");
        return 1;
    }
    lua_pushcfunction(L, protected_main);
    lua_pushlightuserdata(L, &o);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "yolotrain: %s\n", msg ? msg : "unexpected error");
        o.status = 1;
    }
    fflush(stdout);
    signal(SIGINT, SIG_DFL); /* no handler may touch the state being closed */
    lua_close(L);
#ifdef YT_HAVE_MPI
    yt_dist_end(); /* MPI finalized after finished work, else the job aborted: decided here, not in a finaliser */
#endif
    yt_cli_history_close();
    return o.status;
}
