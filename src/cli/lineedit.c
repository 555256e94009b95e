/* readline behind the REPL's line-editor interface.
 *
 * readline's blocking call cannot tell "Ctrl-C: forget this line" from other signals, so this uses its callback
 * interface: wait for input with select(), feed characters one at a time, and when select() is interrupted by the
 * REPL's SIGINT flag, throw the partial line away and return YT_LINE_CANCELLED. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#define HISTORY_LINES 1000

static char *history_path; /* NULL: no history file */
static int initialised;

static char *got_line;
static int got_eof;
static int line_done;

static void on_line(char *line)
{
    got_line = line;
    got_eof = line == NULL;
    line_done = 1;
    rl_callback_handler_remove(); /* keeps readline from printing the next prompt by itself */
}

static char *cli_read_line(const char *prompt, int *status)
{
    got_line = NULL;
    got_eof = 0;
    line_done = 0;
    rl_callback_handler_install(prompt, on_line);
    while (!line_done) {
        int fd = fileno(rl_instream ? rl_instream : stdin);
        int watch = yt_repl_watch_fd();
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        if (watch >= 0) FD_SET(watch, &fds);
        int r = select((watch > fd ? watch : fd) + 1, &fds, NULL, NULL, NULL);
        if (r > 0 && watch >= 0 && FD_ISSET(watch, &fds)) {
            got_eof = 1; /* the other end spoke first (attach: the training ended) */
            break;
        }
        if (r < 0) {
            if (errno != EINTR) {
                got_eof = 1;
                break;
            }
            if (yt_repl_take_prompt_interrupt()) {
                /* Leave the discarded text visible with ^C after it, as shells do, then go to a fresh line.
                 * Print before removing the handler: un-prepping the terminal may emit a carriage return. */
                FILE *out = rl_outstream ? rl_outstream : stdout;
                fputs("^C", out);
                fflush(out);
                rl_free_line_state();
                rl_callback_sigcleanup();
                rl_callback_handler_remove();
                fputs("\n", out);
                fflush(out);
                *status = YT_LINE_CANCELLED;
                return NULL;
            }
            continue;
        }
        if (r > 0) rl_callback_read_char();
    }
    if (!line_done) rl_callback_handler_remove();
    if (got_eof || !got_line) {
        fputc('\n', rl_outstream ? rl_outstream : stdout);
        free(got_line);
        *status = YT_LINE_EOF;
        return NULL;
    }
    *status = YT_LINE_OK;
    return got_line;
}

/* Tab completion through yt_repl_complete: the candidates of the current REPL (local or attached). */
static char **candidates;
static size_t candidate_next;

static void free_candidates(void)
{
    for (size_t i = candidate_next; candidates && candidates[i]; i++) free(candidates[i]); /* the rest not taken */
    free(candidates);
    candidates = NULL;
}

static char *next_candidate(const char *text, int state)
{
    if (state == 0) {
        free_candidates();
        candidate_next = 0;
        candidates = yt_repl_complete(text);
    }
    if (!candidates || !candidates[candidate_next]) return NULL;
    char *c = candidates[candidate_next];
    candidates[candidate_next++] = NULL; /* readline frees what it is given */
    return c;
}

static char **complete(const char *text, int start, int end)
{
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* no file names */
    return rl_completion_matches(text, next_candidate);
}

static void cli_add_history(const char *entry)
{
    add_history(entry);
    if (history_path) append_history(1, history_path);
}

static const yt_line_editor readline_editor = {cli_read_line, cli_add_history};

const yt_line_editor *yt_cli_readline_editor(void)
{
    if (initialised) return &readline_editor;
    initialised = 1;
    rl_readline_name = "yolotrain";
    rl_catch_signals = 0; /* SIGINT is ours */
    rl_attempted_completion_function = complete;
    rl_completer_word_break_characters = (char *)" \t\n\"'`@$><=;|&{(,+-*/%^~#[]";
    rl_completion_append_character = '\0';
    using_history();
    stifle_history(HISTORY_LINES);

    const char *home = getenv("HOME");
    if (home && *home && access(home, W_OK) == 0) {
        static const char name[] = "/.yolotrain_history";
        history_path = malloc(strlen(home) + sizeof name);
        if (history_path) {
            strcpy(history_path, home);
            strcat(history_path, name);
            if (read_history(history_path) != 0 && write_history(history_path) != 0) {
                free(history_path); /* cannot create it: run without a history file */
                history_path = NULL;
            }
        }
    }
    return &readline_editor;
}

void yt_cli_history_close(void)
{
    if (history_path) history_truncate_file(history_path, HISTORY_LINES);
    free(history_path);
    history_path = NULL;
}
