#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[1024];

int yt_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

int yt_error_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    size_t plen = strlen(prefix);
    if (plen >= sizeof error_message) plen = sizeof error_message - 1;
    memcpy(error_message, prefix, plen);
    size_t rest = sizeof error_message - 1 - plen;
    size_t olen = strnlen(old, rest);
    memcpy(error_message + plen, old, olen);
    error_message[plen + olen] = 0;
    return -1;
}

const char *yt_last_error(void)
{
    return error_message[0] ? error_message : "unknown error";
}

void yt_clear_error(void) { error_message[0] = '\0'; }
