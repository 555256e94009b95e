/* Pieces of the `yolotrain` executable. */
#ifndef YT_CLI_H
#define YT_CLI_H

#include "lua/yt_repl.h"

/* The readline line editor with history in ~/.yolotrain_history (history only when $HOME is writable).
 * The first call loads the history. */
const yt_line_editor *yt_cli_readline_editor(void);
/* Trims the history file; call once before exiting. */
void yt_cli_history_close(void);

#endif
