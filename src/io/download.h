/* HTTP(S) downloads to a file, with libcurl.
 *
 * A download writes to "<dest>.partial" and, once every byte has arrived and checked out, fsyncs it and renames it
 * to dest (io/durable.h): dest never holds half a file, whatever stops the transfer. It follows redirects (GitHub's
 * release assets redirect to a storage host), fails on an HTTP status >= 400, gives up when the connection cannot
 * be made or the transfer stalls, refuses a body larger than a bound, detects a truncated body (fewer bytes than
 * Content-Length, or curl's own transfer errors) and, when the caller knows it, checks the SHA-256 of the bytes.
 * Only http:// and https:// URLs, for the first request and every redirect. Proxies come from the usual
 * environment variables (https_proxy, no_proxy ...), the CA certificates from the system's store.
 *
 * The transfer runs step by step so that the caller can draw progress between steps (no callback into the caller):
 *
 *   yt_download *d = yt_download_begin(url, dest, &opts);
 *   while ((rc = yt_download_poll(d, 100)) == 1) { yt_download_progress(d, &got, &total); ... }
 *   yt_download_end(d);            // rc 0: dest is complete; rc -1: yt_last_error() says why
 */
#ifndef YT_IO_DOWNLOAD_H
#define YT_IO_DOWNLOAD_H

#include <stdint.h>

/* Defaults of the zero fields of yt_download_opts. */
#define YT_DOWNLOAD_CONNECT_TIMEOUT_S 30L /* to open the connection (DNS, TCP, TLS) */
#define YT_DOWNLOAD_STALL_TIME_S 60L      /* give up when slower than YT_DOWNLOAD_STALL_BYTES/s for this long */
#define YT_DOWNLOAD_STALL_BYTES 1024L
#define YT_DOWNLOAD_MAX_BYTES (64ULL << 30) /* 64 GiB: larger than any dataset archive a YAML names */
#define YT_DOWNLOAD_MAX_REDIRECTS 10L

typedef struct {
    long connect_timeout_s; /* 0: YT_DOWNLOAD_CONNECT_TIMEOUT_S */
    long stall_time_s;      /* 0: YT_DOWNLOAD_STALL_TIME_S */
    long stall_bytes;       /* bytes/s below which the transfer counts as stalled; 0: YT_DOWNLOAD_STALL_BYTES */
    uint64_t max_bytes;     /* 0: YT_DOWNLOAD_MAX_BYTES */
    const char *sha256;     /* the expected digest as 64 hex digits (either case), or NULL: not checked */
} yt_download_opts;

typedef struct yt_download yt_download;

/* Opens "<dest>.partial" (its folder must exist) and starts the request. NULL + yt_error on a bad URL, a bad
 * sha256 string, or a file that cannot be created. */
yt_download *yt_download_begin(const char *url, const char *dest, const yt_download_opts *opts);

/* Moves the transfer on, waiting up to timeout_ms for the network. Returns 1 while it runs, 0 once dest is in
 * place, -1 when it failed (yt_error says why, naming the URL; "<dest>.partial" is removed). After 0 or -1 it
 * returns the same again. */
int yt_download_poll(yt_download *d, int timeout_ms);

/* Bytes received so far and the size the server announced (0 when it did not). */
void yt_download_progress(const yt_download *d, uint64_t *received, uint64_t *total);

/* After a failure: 1 when trying again may succeed (a timeout, a cut connection, a truncated body, HTTP 5xx or
 * 429), 0 when it cannot (a refused connection, an unknown host, HTTP 4xx, a size or checksum refusal). */
int yt_download_transient(const yt_download *d);

/* The HTTP status of the last response (0 before one arrived). */
long yt_download_http_status(const yt_download *d);

/* Stops the transfer if it still runs, removes "<dest>.partial" unless dest was completed, frees d (NULL: no-op). */
void yt_download_end(yt_download *d);

/* The whole transfer in one call: 0 or -1 as yt_download_poll. */
int yt_download_file(const char *url, const char *dest, const yt_download_opts *opts);

/* SHA-256 of a file as 64 lowercase hex digits plus NUL. 0, or -1 + yt_error naming the file. */
int yt_sha256_file(const char *path, char hex[65]);

#endif
