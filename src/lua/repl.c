/* The REPL core and protected calls that Ctrl-C can interrupt (see yt_repl.h). */
#include "lua/yt_repl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#define PROMPT "yt> "
#define PROMPT_MORE "yt>> "

/* ---- SIGINT state (process-wide by nature: a signal handler has nowhere else to look) ---------------------- */

static lua_State *volatile chunk_target;       /* the thread running the protected chunk */
static volatile sig_atomic_t chunk_sigints;    /* Ctrl-C presses during that chunk not yet turned into an error */
static volatile sig_atomic_t interrupt_raised; /* set when the hook raised "interrupted" */
static volatile sig_atomic_t prompt_sigint;    /* Ctrl-C while a REPL waits for a line */

static void set_sigint(void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking read returns EINTR so the reader can react */
    sigaction(SIGINT, &sa, old);
}

/* Count hook armed by the signal handler: runs at the next Lua instruction, removes itself, raises the error at the
 * line being executed. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    lua_sethook(L, NULL, 0, 0);
    chunk_sigints = 0;
    interrupt_raised = 1;
    (void)ar;
    /* Name the innermost Lua line: the hook may fire on a call to or return from a C function. */
    lua_Debug d;
    for (int level = 0; lua_getstack(L, level, &d); level++) {
        if (lua_getinfo(L, "Sl", &d) && d.currentline > 0) {
            lua_pushfstring(L, "%s:%d: interrupted", d.short_src, d.currentline);
            lua_error(L);
        }
    }
    lua_pushliteral(L, "interrupted");
    lua_error(L);
}

void yt_repl_arm_interrupt(lua_State *L)
{
    if (L) lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

int yt_repl_take_interrupted(void)
{
    int v = interrupt_raised;
    interrupt_raised = 0;
    return v;
}

static void on_chunk_sigint(int sig)
{
    if (chunk_sigints > 0) {
        /* Still stuck (in C code, or a hook-free thread): the second Ctrl-C gets the default action. The signal is
         * blocked while this handler runs, so it is delivered, fatally, right after we return. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    chunk_sigints = 1;
    yt_repl_arm_interrupt(chunk_target);
}

static void on_prompt_sigint(int sig)
{
    (void)sig;
    prompt_sigint = 1;
}

int yt_repl_take_prompt_interrupt(void)
{
    int v = prompt_sigint;
    prompt_sigint = 0;
    return v;
}

/* ---- protected calls --------------------------------------------------------------------------------------- */

/* Is the frame one of the engine's Lua files (lua/yolotrain/...)? */
static int engine_frame(const lua_Debug *ar)
{
    return ar->source && ar->source[0] == '@' && strstr(ar->source, "lua/yolotrain/") != NULL;
}

/* "in function 'name'", as luaL_traceback names a frame (without its search of the loaded modules). */
static void push_frame_name(lua_State *L, const lua_Debug *ar)
{
    if (*ar->namewhat) lua_pushfstring(L, "%s '%s'", ar->namewhat, ar->name);
    else if (*ar->what == 'm') lua_pushliteral(L, "main chunk");
    else if (*ar->what != 'C') lua_pushfstring(L, "function <%s:%d>", ar->short_src, ar->linedefined);
    else lua_pushliteral(L, "?");
}

/* Is the frame one the trimmed traceback shows (a Lua function outside the engine)? Fills ar's fields. */
static int user_frame(lua_State *L1, lua_Debug *ar)
{
    return lua_getinfo(L1, "Slnt", ar) && ar->currentline > 0 && !engine_frame(ar);
}

#define TRACE_HEAD 10   /* user frames shown before, and after, the gap of a deep stack, as luaL_traceback does */
#define TRACE_TAIL 11
#define TRACE_WINDOW 64 /* levels looked at from each end of a deep stack (lua_getstack costs its level) */

/* The deepest existing level of L1 (a binary search, as luaL_traceback finds it). */
static int last_level(lua_State *L1)
{
    lua_Debug ar;
    int li = 1, le = 1;
    while (lua_getstack(L1, le, &ar)) {
        li = le;
        le *= 2;
    }
    while (li < le) {
        int m = (li + le) / 2;
        if (lua_getstack(L1, m, &ar)) li = m + 1;
        else le = m;
    }
    return le - 1;
}

/* Appends the user frames of levels [from, to] to out (at most max), counts the engine frames in *hidden. */
static int user_levels(lua_State *L1, int from, int to, int *out, int max, int *hidden)
{
    int n = 0;
    lua_Debug ar;
    for (int lv = from; lv <= to && n < max && lua_getstack(L1, lv, &ar); lv++) {
        if (user_frame(L1, &ar)) out[n++] = lv;
        else if (ar.currentline > 0) (*hidden)++; /* an engine frame; C functions have nothing to open */
    }
    return n;
}

static void add_frame(lua_State *L, luaL_Buffer *b, lua_State *L1, int lv)
{
    lua_Debug ar;
    if (!lua_getstack(L1, lv, &ar) || !lua_getinfo(L1, "Slnt", &ar)) return;
    lua_pushfstring(L, "\n\t%s:%d: in ", ar.short_src, ar.currentline);
    luaL_addvalue(b);
    push_frame_name(L, &ar);
    luaL_addvalue(b);
}

void yt_repl_traceback(lua_State *L, lua_State *L1, const char *msg, int level)
{
    const char *mode = getenv("YT_TRACEBACK");
    if (mode && strcmp(mode, "full") == 0) {
        luaL_traceback(L, L1, msg, level);
        return;
    }
    /* the user frames among the first and the last TRACE_WINDOW levels (all levels when there are not more) */
    int last = last_level(L1), hidden = 0;
    int head[2 * TRACE_WINDOW], tail[TRACE_WINDOW];
    int deep = last - level + 1 > 2 * TRACE_WINDOW;
    int nh = user_levels(L1, level, deep ? level + TRACE_WINDOW - 1 : last, head, 2 * TRACE_WINDOW, &hidden);
    int nt = deep ? user_levels(L1, last - TRACE_WINDOW + 1, last, tail, TRACE_WINDOW, &hidden) : 0;
    if (!deep && nh > TRACE_HEAD + TRACE_TAIL) { /* one shallow stack with many user frames: its two ends */
        nt = TRACE_TAIL;
        memcpy(tail, head + nh - TRACE_TAIL, sizeof(int) * TRACE_TAIL);
        nh = TRACE_HEAD;
        deep = 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (msg) {
        luaL_addstring(&b, msg);
        luaL_addchar(&b, '\n');
    }
    luaL_addstring(&b, "stack traceback:");
    for (int i = 0; i < nh && (!deep || i < TRACE_HEAD); i++) add_frame(L, &b, L1, head[i]);
    if (deep) {
        luaL_addstring(&b, "\n\t...\t(levels skipped)");
        for (int i = nt > TRACE_TAIL ? nt - TRACE_TAIL : 0; i < nt; i++) add_frame(L, &b, L1, tail[i]);
    }
    if (hidden) luaL_addstring(&b, "\n\t(engine frames hidden; YT_TRACEBACK=full shows them)");
    luaL_pushresult(&b);
}

/* A table with an integer exit_status is a report made by the engine (its message, its own traceback if any, the
 * status to exit with): it passes through handlers unchanged. */
int yt_repl_is_report(lua_State *L, int index)
{
    if (lua_type(L, index) != LUA_TTABLE) return 0;
    int is = lua_getfield(L, index, "exit_status") == LUA_TNUMBER && lua_isinteger(L, -1);
    lua_pop(L, 1);
    return is;
}

int yt_repl_msghandler(lua_State *L)
{
    if (yt_repl_is_report(L, 1)) {
        lua_settop(L, 1);
        return 1;
    }
    const char *msg = NULL;
    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
        msg = lua_tostring(L, 1);
    } else if (luaL_callmeta(L, 1, "__tostring")) {
        msg = lua_tostring(L, -1); /* NULL when __tostring returned a non-string */
    }
    if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    yt_repl_traceback(L, L, msg, 1);
    return 1;
}

int yt_repl_pcall(lua_State *L, int nargs, int nresults)
{
    int handler = lua_gettop(L) - nargs;
    lua_pushcfunction(L, yt_repl_msghandler);
    lua_insert(L, handler);

    lua_State *saved_target = chunk_target;
    sig_atomic_t saved_count = chunk_sigints;
    struct sigaction old;
    chunk_target = L;
    chunk_sigints = 0;
    set_sigint(on_chunk_sigint, &old);

    int status = lua_pcall(L, nargs, nresults, handler);

    sigaction(SIGINT, &old, NULL);
    chunk_target = saved_target;
    chunk_sigints = saved_count;
    if (lua_gethook(L) == interrupt_hook) lua_sethook(L, NULL, 0, 0); /* Ctrl-C came as the chunk ended */
    lua_remove(L, handler);
    return status;
}

/* ---- line editors ------------------------------------------------------------------------------------------ */

static int watch_fd = -1;

void yt_repl_set_watch_fd(int fd) { watch_fd = fd; }
int yt_repl_watch_fd(void) { return watch_fd; }

/* With a watched descriptor: reads standard input unbuffered, so that poll() sees what is left, and ends the input
 * when the watched descriptor becomes readable. */
static char *fd_read_line(const char *prompt, int *status)
{
    static char buf[65536];
    static size_t have;
    int tty = isatty(STDIN_FILENO);
    if (tty) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    for (;;) {
        char *nl = memchr(buf, '\n', have);
        if (nl || have == sizeof buf) {
            size_t n = nl ? (size_t)(nl - buf) : have;
            char *line = malloc(n + 1);
            if (!line) {
                *status = YT_LINE_EOF;
                return NULL;
            }
            memcpy(line, buf, n);
            line[n] = '\0';
            if (n > 0 && line[n - 1] == '\r') line[n - 1] = '\0';
            size_t used = nl ? n + 1 : n;
            memmove(buf, buf + used, have - used);
            have -= used;
            *status = YT_LINE_OK;
            return line;
        }
        struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = watch_fd, .events = POLLIN}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR) {
            if (yt_repl_take_prompt_interrupt()) {
                have = 0;
                if (tty) fputc('\n', stdout);
                *status = YT_LINE_CANCELLED;
                return NULL;
            }
            continue;
        }
        if (r < 0 || (p[1].revents & (POLLIN | POLLHUP | POLLERR))) break;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(STDIN_FILENO, buf + have, sizeof buf - have);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (have > 0) { /* a last line without its newline */
                    buf[have] = '\n';
                    have++;
                    continue;
                }
                break;
            }
            have += (size_t)n;
        }
    }
    if (tty) fputc('\n', stdout);
    *status = YT_LINE_EOF;
    return NULL;
}

/* Without an editor: prompts only on a terminal, reads with stdio. */
static char *stdio_read_line(const char *prompt, int *status)
{
    if (watch_fd >= 0) return fd_read_line(prompt, status);
    int tty = isatty(STDIN_FILENO);
    for (;;) {
        if (tty) {
            fputs(prompt, stdout);
            fflush(stdout);
        }
        char *line = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
            *status = YT_LINE_OK;
            return line;
        }
        free(line);
        if (ferror(stdin) && errno == EINTR) {
            clearerr(stdin);
            if (yt_repl_take_prompt_interrupt()) {
                if (tty) fputc('\n', stdout);
                *status = YT_LINE_CANCELLED;
                return NULL;
            }
            continue; /* another signal: read again */
        }
        if (tty) fputc('\n', stdout);
        *status = YT_LINE_EOF;
        return NULL;
    }
}

static const yt_line_editor stdio_editor = {stdio_read_line, NULL};
static const yt_line_editor *current_editor = &stdio_editor;

void yt_repl_set_editor(const yt_line_editor *editor) { current_editor = editor ? editor : &stdio_editor; }

/* Reads a line with Ctrl-C meaning "discard this line" rather than the caller's SIGINT behaviour. */
static char *read_line(const char *prompt, int *status)
{
    struct sigaction old;
    prompt_sigint = 0;
    set_sigint(on_prompt_sigint, &old);
    char *line = current_editor->read_line(prompt, status);
    sigaction(SIGINT, &old, NULL);
    return line;
}

/* ---- completion -------------------------------------------------------------------------------------------- */

static yt_repl_completer completer_fn;
static void *completer_ud;

void yt_repl_set_completer(yt_repl_completer fn, void *ud)
{
    completer_fn = fn;
    completer_ud = ud;
}

char **yt_repl_complete(const char *text) { return completer_fn ? completer_fn(completer_ud, text) : NULL; }

typedef struct local_completion {
    lua_State *L;
    int env; /* stack index of the chunks' environment, 0 for the globals */
} local_completion;

/* The names yolotrain.repl.complete(text, env) offers, evaluated in this state (it waits at the prompt). */
static char **local_complete(void *ud, const char *text)
{
    local_completion *c = ud;
    lua_State *L = c->L;
    int top = lua_gettop(L);
    char **out = NULL;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "yolotrain.repl");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) && lua_getfield(L, -1, "complete") == LUA_TFUNCTION) {
        lua_pushstring(L, text);
        if (c->env) lua_pushvalue(L, c->env);
        else lua_pushglobaltable(L);
        if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1)) {
            lua_Integer n = luaL_len(L, -1);
            out = calloc((size_t)n + 1, sizeof *out);
            for (lua_Integer i = 1; out && i <= n; i++) {
                lua_rawgeti(L, -1, i);
                const char *w = lua_tostring(L, -1);
                out[i - 1] = w ? strdup(w) : NULL;
                lua_pop(L, 1);
                if (!out[i - 1]) break;
            }
        }
    }
    lua_settop(L, top);
    return out;
}

/* ---- the loop ---------------------------------------------------------------------------------------------- */

#define ENTRY_INCOMPLETE (-1)

/* Does the syntax error message on top of the stack say the input ended too early? */
static int error_at_eof(lua_State *L)
{
    static const char mark[] = "<eof>";
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return msg && n >= sizeof mark - 1 && memcmp(msg + n - (sizeof mark - 1), mark, sizeof mark - 1) == 0;
}

/* Compiles an entry, as an expression first (`return <src>`) and then as statements. Returns LUA_OK with the
 * function pushed, ENTRY_INCOMPLETE with nothing pushed, or an error status with the message pushed. */
static int compile_entry(lua_State *L, const char *src, size_t len)
{
    static const char ret[] = "return ";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, ret, sizeof ret - 1);
    luaL_addlstring(&b, src, len);
    luaL_pushresult(&b);
    size_t rlen;
    const char *rsrc = lua_tolstring(L, -1, &rlen);
    int status = luaL_loadbufferx(L, rsrc, rlen, "=stdin", "t");
    lua_remove(L, -2);
    if (status == LUA_OK) return LUA_OK;
    int expression_incomplete = status == LUA_ERRSYNTAX && error_at_eof(L);
    lua_pop(L, 1);

    status = luaL_loadbufferx(L, src, len, "=stdin", "t");
    if (status == LUA_ERRSYNTAX && (expression_incomplete || error_at_eof(L))) {
        lua_pop(L, 1);
        return ENTRY_INCOMPLETE;
    }
    return status;
}

/* Input ended inside an entry: pushes the syntax error that says so, from whichever reading (expression or
 * statements) ran into the end. Returns the load status. */
static int incomplete_error(lua_State *L, const char *src, size_t len)
{
    lua_pushliteral(L, "return ");
    lua_pushlstring(L, src, len);
    lua_concat(L, 2);
    size_t rlen;
    const char *rsrc = lua_tolstring(L, -1, &rlen);
    int status = luaL_loadbufferx(L, rsrc, rlen, "=stdin", "t");
    lua_remove(L, -2);
    if (status != LUA_OK && error_at_eof(L)) return status;
    lua_pop(L, 1);
    return luaL_loadbufferx(L, src, len, "=stdin", "t");
}

/* repr(v) of the yolotrain.repl module (tables, classes, tensors and modules shown as values), or nil pushed
 * when the engine is not on the path: tostring then. Leaves one value pushed. */
static void push_repr_function(lua_State *L)
{
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "yolotrain.repl");
    if (lua_type(L, -2) == LUA_TFUNCTION && lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) &&
        lua_getfield(L, -1, "repr") == LUA_TFUNCTION) {
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return;
    }
    lua_settop(L, top);
    lua_pushnil(L);
}

static int print_values(lua_State *L)
{
    int n = lua_gettop(L);
    push_repr_function(L);
    int repr = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = NULL;
        if (!lua_isnil(L, repr) && lua_type(L, i) != LUA_TSTRING) { /* a string shows as itself, as in lua */
            lua_pushvalue(L, repr);
            lua_pushvalue(L, i);
            if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) s = lua_tolstring(L, -1, &len);
            else lua_pop(L, 1);
        }
        if (!s) s = luaL_tolstring(L, i, &len);
        if (i > 1) fputc('\t', stdout);
        fwrite(s, 1, len, stdout);
        lua_pop(L, 1);
    }
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
}

static void report(lua_State *L)
{
    const char *msg = luaL_tolstring(L, -1, NULL); /* a report object through its __tostring */
    fflush(stdout);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    lua_pop(L, 2);
}

/* Reads one complete entry (a line plus continuation lines while the code is incomplete). Returns the malloc'ed
 * source with its compiled function or syntax error pushed (*status = load status), or NULL at end of input
 * (*status = YT_LINE_EOF) or when Ctrl-C discarded the entry (*status = YT_LINE_CANCELLED). */
static char *read_entry(lua_State *L, int *status)
{
    int line_status;
    char *src = read_line(PROMPT, &line_status);
    if (!src) {
        *status = line_status;
        return NULL;
    }
    size_t len = strlen(src);
    for (;;) {
        int loaded = compile_entry(L, src, len);
        if (loaded != ENTRY_INCOMPLETE) {
            *status = loaded;
            return src;
        }
        char *more = read_line(PROMPT_MORE, &line_status);
        if (!more) {
            if (line_status == YT_LINE_EOF) {
                *status = incomplete_error(L, src, len);
                return src;
            }
            free(src);
            *status = YT_LINE_CANCELLED;
            return NULL;
        }
        size_t mlen = strlen(more);
        char *joined = realloc(src, len + 1 + mlen + 1);
        if (!joined) {
            free(more);
            free(src);
            lua_pushliteral(L, "not enough memory for the input line");
            *status = LUA_ERRMEM;
            return NULL;
        }
        src = joined;
        src[len] = '\n';
        memcpy(src + len + 1, more, mlen + 1);
        len += 1 + mlen;
        free(more);
    }
}

/* The environment for yt.sys.repl: reads env then the globals, writes into env, and holds cont()/stop(), which
 * record their verdict in the returned state table. */
static const char make_env_code[] =
    "local env, G, controls = ...\n"
    "local state, proxy = {}, {}\n"
    "if controls then\n"
    "  proxy.cont = function() state.result = 'cont' end\n"
    "  proxy.stop = function() state.result = 'stop' end\n"
    "end\n"
    "local meta\n"
    "if env == nil or rawequal(env, G) then\n"
    "  meta = { __index = G, __newindex = G, __names = {} }\n"
    "else\n"
    "  meta = { __index = function(_, k) local v = env[k]; if v == nil then v = G[k] end; return v end,\n"
    "           __newindex = env, __names = { env } }\n"
    "end\n"
    "return setmetatable(proxy, meta), state\n";

int yt_repl_run(lua_State *L, int env_index, const char *banner, int controls)
{
    int top = lua_gettop(L);
    if (env_index) env_index = lua_absindex(L, env_index);
    int env = 0, state = 0;
    if (env_index || controls) {
        if (luaL_loadbufferx(L, make_env_code, sizeof make_env_code - 1, "=(repl)", "t") != LUA_OK) lua_error(L);
        if (env_index) lua_pushvalue(L, env_index);
        else lua_pushnil(L);
        lua_pushglobaltable(L);
        lua_pushboolean(L, controls);
        lua_call(L, 3, 2);
        env = top + 1;
        state = top + 2;
    }
    if (banner) {
        fputs(banner, stdout);
        if (*banner && banner[strlen(banner) - 1] != '\n') fputc('\n', stdout);
        fflush(stdout);
    }

    yt_repl_completer saved_fn = completer_fn;
    void *saved_ud = completer_ud;
    local_completion completion = {L, env};
    yt_repl_set_completer(local_complete, &completion);

    int result = YT_REPL_EOF;
    int base = lua_gettop(L);
    while (result == YT_REPL_EOF) {
        lua_settop(L, base);
        int status;
        char *src = read_entry(L, &status);
        if (!src) {
            if (status == YT_LINE_EOF) break;
            if (status == LUA_ERRMEM) report(L);
            continue; /* cancelled */
        }
        if (src[strspn(src, " \t\r\n")] != '\0' && current_editor->add_history) current_editor->add_history(src);
        free(src);
        if (status != LUA_OK) {
            report(L);
            continue;
        }
        if (env) {
            lua_pushvalue(L, env);
            if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
        }
        if (yt_repl_pcall(L, 0, LUA_MULTRET) != LUA_OK) {
            yt_repl_take_interrupted();
            report(L);
        } else if (lua_gettop(L) > base) {
            int n = lua_gettop(L) - base;
            lua_pushcfunction(L, print_values);
            lua_insert(L, base + 1);
            if (yt_repl_pcall(L, n, 0) != LUA_OK) report(L);
        }
        if (state) {
            lua_getfield(L, state, "result");
            const char *verdict = lua_tostring(L, -1);
            if (verdict && strcmp(verdict, "stop") == 0) result = YT_REPL_STOP;
            else if (verdict) result = YT_REPL_CONT;
        }
    }
    yt_repl_set_completer(saved_fn, saved_ud);
    lua_settop(L, top);
    return result;
}

int yt_repl_run_remote(lua_State *L, const char *banner, int (*eval)(void *ud, const char *src, size_t len),
                       void *ud)
{
    int top = lua_gettop(L);
    if (banner) {
        fputs(banner, stdout);
        if (*banner && banner[strlen(banner) - 1] != '\n') fputc('\n', stdout);
        fflush(stdout);
    }
    for (;;) {
        lua_settop(L, top);
        int status;
        char *src = read_entry(L, &status);
        if (!src) {
            if (status == YT_LINE_EOF) break;
            if (status == LUA_ERRMEM) report(L);
            continue;
        }
        if (src[strspn(src, " \t\r\n")] != '\0' && current_editor->add_history) current_editor->add_history(src);
        if (status != LUA_OK) {
            report(L); /* a syntax error is found here, before the training sees the entry */
            free(src);
            continue;
        }
        int end = eval(ud, src, strlen(src));
        free(src);
        if (end) break;
    }
    lua_settop(L, top);
    return YT_REPL_EOF;
}
