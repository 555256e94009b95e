/* Error reporting for the C core: functions return NULL or a negative code and leave a message here.
 * The message is per thread, so loader threads and the main thread never overwrite each other's. */
#ifndef YT_ERROR_H
#define YT_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define YT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define YT_PRINTF(a, b)
#endif

/* Sets the message (printf-style) and returns -1, so `return yt_error("...")` reads naturally. */
int yt_error(const char *fmt, ...) YT_PRINTF(1, 2);
/* Prepends context ("while loading x.safetensors: ") to the current message; returns -1. */
int yt_error_prefix(const char *fmt, ...) YT_PRINTF(1, 2);
const char *yt_last_error(void);
void yt_clear_error(void);

#endif
