/* The read-eval-print loop and protected calls with Ctrl-C, shared by the `yolotrain` executable (src/cli) and
 * the yolotrain.core module (`yt.sys.repl`, used by interactive training).
 *
 * Line editing is pluggable: the executable registers a readline editor (src/cli/lineedit.c); the Lua module
 * loaded by plain `lua`/busted uses the built-in stdio reader (no editing, no history).
 *
 * SIGINT handling needs process-wide state (the thread to interrupt and a few flags): that is the one exception to
 * "no global mutable state" and it lives only here and in l_sys.c. */
#ifndef YT_REPL_H
#define YT_REPL_H

#include <lua.h>

/* Status of one read_line call. */
enum { YT_LINE_OK = 0, YT_LINE_EOF = 1, YT_LINE_CANCELLED = 2 };

typedef struct yt_line_editor {
    /* Reads one line: returns it malloc'ed without the trailing newline (YT_LINE_OK), or NULL with *status set to
     * YT_LINE_EOF (end of input) or YT_LINE_CANCELLED (Ctrl-C at the prompt, see yt_repl_take_prompt_interrupt). */
    char *(*read_line)(const char *prompt, int *status);
    /* Records one complete entry (possibly several lines) in the history; may be NULL. */
    void (*add_history)(const char *entry);
} yt_line_editor;

/* Sets the editor used by every REPL of the process (NULL: the built-in stdio reader). The pointer must stay valid. */
void yt_repl_set_editor(const yt_line_editor *editor);

/* While a REPL waits for a line, SIGINT only sets a flag. A line editor whose read was interrupted (EINTR) calls
 * this to learn whether it was Ctrl-C: returns 1 once per Ctrl-C and clears the flag. */
int yt_repl_take_prompt_interrupt(void);

/* Pushes msg (may be NULL) and the traceback of L1 from level on, as luaL_traceback does, but without the frames
 * of the engine (Lua files under lua/yolotrain/) and of C functions, so that the first frame is the user's
 * file:line; a last line says when engine frames were left out. YT_TRACEBACK=full in the environment: every
 * frame (luaL_traceback). */
void yt_repl_traceback(lua_State *L, lua_State *L1, const char *msg, int level);

/* 1 if the value at index is a report object: a table with an integer exit_status (the engine's errors and stops,
 * yolotrain.utils.errors), which carries its message, its own traceback if any, and the status to exit with. */
int yt_repl_is_report(lua_State *L, int index);

/* Message handler for lua_pcall: a report object passes through unchanged; any other error object becomes a string
 * (strings as they are, __tostring for objects that have one, "(error object is a <type> value)" otherwise)
 * followed by yt_repl_traceback. */
int yt_repl_msghandler(lua_State *L);

/* lua_pcall with yt_repl_msghandler, during which the first Ctrl-C makes the running Lua code raise the error
 * "interrupted" at its next instruction (a second Ctrl-C before that ends the process, as the default action
 * would). The previous SIGINT disposition is restored afterwards. */
int yt_repl_pcall(lua_State *L, int nargs, int nresults);

/* Makes Lua code running on L raise "interrupted" at its next instruction. Async-signal-safe. */
void yt_repl_arm_interrupt(lua_State *L);

/* 1 if an "interrupted" error was raised (by Ctrl-C) since the last call; clears the flag. */
int yt_repl_take_interrupted(void);

/* How yt_repl_run ended. */
enum { YT_REPL_EOF = 0, YT_REPL_CONT = 1, YT_REPL_STOP = 2 };

/* Runs the REPL on L until end of input.
 * env_index: 0 to evaluate in the globals, or the stack index of a table: chunks then read names from that table
 *            first and from the globals next, and assignments to globals go into that table.
 * banner:    printed once before the first prompt when not NULL.
 * controls:  when set, cont() and stop() are defined for the chunks and end the loop (YT_REPL_CONT/YT_REPL_STOP).
 * Each entry: `return <line>` is tried first so expressions print all their values (tostring, tab-separated);
 * an incomplete entry (a syntax error at <eof>) reads more lines; errors print a traceback to stderr and the loop
 * carries on; Ctrl-C while an entry runs interrupts that entry; Ctrl-C at the prompt discards the line. */
int yt_repl_run(lua_State *L, int env_index, const char *banner, int controls);

/* The same loop, but each complete entry goes to eval (a chunk with a syntax error is reported here and not sent);
 * eval returns nonzero when the session is over. Used by `yolotrain attach` (src/lua/l_control.c). */
int yt_repl_run_remote(lua_State *L, const char *banner, int (*eval)(void *ud, const char *src, size_t len),
                       void *ud);

/* A descriptor the line editors also wait on while they read (-1: none): when it becomes readable, the read ends
 * as at end of input (YT_LINE_EOF). attach watches its connection, so the training ending ends the session. */
void yt_repl_set_watch_fd(int fd);
int yt_repl_watch_fd(void);

/* Tab completion: returns a malloc'ed NULL-terminated array of malloc'ed candidates that start with text (which
 * may be a dotted path such as "trainer.ar"), or NULL. yt_repl_run installs one that asks yolotrain.repl.complete
 * in its state; attach installs one that asks the training. The line editor calls yt_repl_complete. */
typedef char **(*yt_repl_completer)(void *ud, const char *text);
void yt_repl_set_completer(yt_repl_completer fn, void *ud);
char **yt_repl_complete(const char *text);

#endif
