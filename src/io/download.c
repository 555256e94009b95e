#include "io/download.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "io/durable.h"

enum { DL_RUNNING = 1, DL_DONE = 0, DL_FAILED = -1 };

struct yt_download {
    CURL *easy;
    CURLM *multi;
    char *url, *dest, *partial;
    int fd;
    int state;
    int transient;
    long http_status;
    uint64_t received, max_bytes;
    EVP_MD_CTX *sha;
    char want_sha[65];                 /* "" when not checked */
    int write_errno;                   /* a failed write(2) of the body */
    int too_large;                     /* the body passed max_bytes */
    int space_checked;                 /* the announced size was compared with the free disk space */
    uint64_t space_needed, space_free; /* when the disk has no room for it */
    char curl_msg[CURL_ERROR_SIZE];
    char error[1024]; /* the failure, kept for later polls */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* "1.5 MB" style sizes for messages */
static void fmt_size(uint64_t n, char *out, size_t cap)
{
    if (n < 1024)
        snprintf(out, cap, "%" PRIu64 " bytes", n);
    else if (n < (1ULL << 20))
        snprintf(out, cap, "%.1f KiB", n / 1024.0);
    else if (n < (1ULL << 30))
        snprintf(out, cap, "%.1f MiB", n / (double)(1ULL << 20));
    else
        snprintf(out, cap, "%.2f GiB", n / (double)(1ULL << 30));
}

/* The failure: message kept in d (later polls repeat it), .partial removed. Returns -1. */
static int fail(yt_download *d, int transient, const char *fmt, ...) YT_PRINTF(3, 4);
static int fail(yt_download *d, int transient, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
    d->state = DL_FAILED;
    d->transient = transient;
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
    unlink(d->partial);
    return yt_error("%s", d->error);
}

/* With the size known, a file that cannot fit on the disk is refused before it fills it. */
static int disk_has_room(yt_download *d)
{
    d->space_checked = 1;
    curl_off_t announced = -1;
    curl_easy_getinfo(d->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
    struct statvfs vfs;
    if (announced <= 0 || fstatvfs(d->fd, &vfs) != 0) return 1;
    uint64_t free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if ((uint64_t)announced <= free_bytes) return 1;
    d->space_needed = (uint64_t)announced;
    d->space_free = free_bytes;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    yt_download *d = userdata;
    size_t n = size * nmemb;
    if (!d->space_checked && !disk_has_room(d)) return 0;
    if (d->received + n > d->max_bytes) {
        d->too_large = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(d->fd, data + off, n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            d->write_errno = errno;
            return 0;
        }
        off += (size_t)w;
    }
    if (d->sha) EVP_DigestUpdate(d->sha, data, n);
    d->received += n;
    return n;
}

static int parse_sha256(const char *s, char out[65])
{
    if (strlen(s) != 64) return -1;
    for (int i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i])) return -1;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = 0;
    return 0;
}

static int is_http_url(const char *url) { return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0; }

/* Opens .partial for writing, locked so that a second writer of the same dest in another process is refused
 * instead of interleaving its bytes; truncated only once the lock is held. */
static int open_partial(yt_download *d)
{
    d->fd = open(d->partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (d->fd < 0) return yt_error("cannot create %s: %s", d->partial, strerror(errno));
    if (flock(d->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(d->fd);
        d->fd = -1;
        if (e == EWOULDBLOCK)
            return yt_error("%s is being downloaded by another process (%s is locked)", d->dest, d->partial);
        return yt_error("cannot lock %s: %s", d->partial, strerror(e));
    }
    if (ftruncate(d->fd, 0) != 0) {
        int e = errno;
        close(d->fd);
        d->fd = -1;
        return yt_error("cannot truncate %s: %s", d->partial, strerror(e));
    }
    return 0;
}

static int setup_easy(yt_download *d, const yt_download_opts *o)
{
    CURL *c = d->easy;
    long connect = o->connect_timeout_s > 0 ? o->connect_timeout_s : YT_DOWNLOAD_CONNECT_TIMEOUT_S;
    long stall_t = o->stall_time_s > 0 ? o->stall_time_s : YT_DOWNLOAD_STALL_TIME_S;
    long stall_b = o->stall_bytes > 0 ? o->stall_bytes : YT_DOWNLOAD_STALL_BYTES;
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_URL, d->url) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_MAXREDIRS, YT_DOWNLOAD_MAX_REDIRECTS) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L) != CURLE_OK; /* no error page written as the file */
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, stall_b) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_t) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d->max_bytes) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "yolotrain/" YT_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->curl_msg) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, d) != CURLE_OK;
    return bad ? yt_error("libcurl refused an option for %s (libcurl too old?)", d->url) : 0;
}

yt_download *yt_download_begin(const char *url, const char *dest, const yt_download_opts *opts)
{
    yt_download_opts none = {0};
    const yt_download_opts *o = opts ? opts : &none;
    if (!is_http_url(url)) {
        yt_error("cannot download '%s': only http:// and https:// URLs are supported", url);
        return NULL;
    }
    char want[65] = "";
    if (o->sha256 && parse_sha256(o->sha256, want) != 0) {
        yt_error("sha256 '%s' for %s is not 64 hex digits", o->sha256, url);
        return NULL;
    }
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        yt_error("libcurl cannot start: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    yt_download *d = calloc(1, sizeof *d);
    if (!d) {
        yt_error("out of memory");
        return NULL;
    }
    d->fd = -1;
    d->state = DL_RUNNING;
    d->max_bytes = o->max_bytes ? o->max_bytes : YT_DOWNLOAD_MAX_BYTES;
    memcpy(d->want_sha, want, sizeof want);
    size_t plen = strlen(dest) + sizeof ".partial";
    d->url = dup_str(url);
    d->dest = dup_str(dest);
    d->partial = malloc(plen);
    if (!d->url || !d->dest || !d->partial) {
        yt_error("out of memory");
        goto fail;
    }
    snprintf(d->partial, plen, "%s.partial", dest);
    if (want[0]) {
        d->sha = EVP_MD_CTX_new();
        if (!d->sha || EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) != 1) {
            yt_error("cannot start a SHA-256 digest (OpenSSL)");
            goto fail;
        }
    }
    d->easy = curl_easy_init();
    d->multi = curl_multi_init();
    if (!d->easy || !d->multi) {
        yt_error("libcurl cannot create a transfer for %s", url);
        goto fail;
    }
    if (setup_easy(d, o) != 0) goto fail;
    if (open_partial(d) != 0) goto fail;
    if (curl_multi_add_handle(d->multi, d->easy) != CURLM_OK) {
        yt_error("libcurl cannot start the transfer of %s", url);
        goto fail;
    }
    return d;
fail:
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
        unlink(d->partial);
    }
    d->state = DL_FAILED;
    yt_download_end(d);
    return NULL;
}

/* Whether curl's error may go away on a new attempt. */
static int curl_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

/* The transfer ended with rc: check it, then put the file in place. */
static int finish(yt_download *d, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    d->http_status = status;
    char got[32], lim[32];
    fmt_size(d->received, got, sizeof got);
    fmt_size(d->max_bytes, lim, sizeof lim);
    if (d->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return fail(d, 0, "%s: the file is larger than the %s a download may have", d->url, lim);
    if (d->space_needed) {
        char need[32], have[32];
        fmt_size(d->space_needed, need, sizeof need);
        fmt_size(d->space_free, have, sizeof have);
        return fail(d, 0, "%s: the file has %s but the disk holding %s has %s free", d->url, need, d->partial, have);
    }
    if (d->write_errno) return fail(d, 0, "%s: cannot write %s: %s", d->url, d->partial, strerror(d->write_errno));
    if (rc == CURLE_HTTP_RETURNED_ERROR || (rc == CURLE_OK && status >= 400))
        return fail(d, status >= 500 || status == 429, "%s: the server answered HTTP %ld", d->url, status);
    if (rc != CURLE_OK) {
        const char *detail = d->curl_msg[0] ? d->curl_msg : curl_easy_strerror(rc);
        if (rc == CURLE_PARTIAL_FILE)
            return fail(d, 1, "%s: the download was cut off after %s (%s)", d->url, got, detail);
        return fail(d, curl_transient(rc), "%s: %s", d->url, detail);
    }
    curl_off_t announced = -1;
    curl_easy_getinfo(d->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
    if (announced >= 0 && (uint64_t)announced != d->received) {
        char want[32];
        fmt_size((uint64_t)announced, want, sizeof want);
        return fail(d, 1, "%s: the download was cut off: %s of %s arrived", d->url, got, want);
    }
    if (d->sha) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char hex[65];
        EVP_DigestFinal_ex(d->sha, md, &mdlen);
        for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (strcmp(hex, d->want_sha) != 0)
            return fail(d, 0, "%s: SHA-256 mismatch: expected %s, the %s received hash to %s", d->url, d->want_sha, got,
                        hex);
    }
    if (close(d->fd) != 0) {
        d->fd = -1;
        return fail(d, 0, "%s: cannot write %s: %s", d->url, d->partial, strerror(errno));
    }
    d->fd = -1;
    if (yt_durable_rename(d->partial, d->dest) != 0) return fail(d, 0, "%s: %s", d->url, yt_last_error());
    d->state = DL_DONE;
    return 0;
}

int yt_download_poll(yt_download *d, int timeout_ms)
{
    if (d->state == DL_FAILED) return yt_error("%s", d->error);
    if (d->state == DL_DONE) return 0;
    int running = 0;
    CURLMcode mc = curl_multi_perform(d->multi, &running);
    if (mc == CURLM_OK && running) mc = curl_multi_poll(d->multi, NULL, 0, timeout_ms, NULL);
    if (mc != CURLM_OK) return fail(d, 0, "%s: libcurl: %s", d->url, curl_multi_strerror(mc));
    int left;
    for (CURLMsg *m; (m = curl_multi_info_read(d->multi, &left));)
        if (m->msg == CURLMSG_DONE && m->easy_handle == d->easy) return finish(d, m->data.result);
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->http_status);
    return 1;
}

void yt_download_progress(const yt_download *d, uint64_t *received, uint64_t *total)
{
    curl_off_t announced = -1;
    if (d->easy) curl_easy_getinfo(d->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
    if (received) *received = d->received;
    if (total) *total = announced > 0 ? (uint64_t)announced : 0;
}

int yt_download_transient(const yt_download *d) { return d->state == DL_FAILED && d->transient; }

long yt_download_http_status(const yt_download *d) { return d->http_status; }

void yt_download_end(yt_download *d)
{
    if (!d) return;
    if (d->multi && d->easy) curl_multi_remove_handle(d->multi, d->easy);
    if (d->easy) curl_easy_cleanup(d->easy);
    if (d->multi) curl_multi_cleanup(d->multi);
    if (d->fd >= 0) {
        close(d->fd);
        unlink(d->partial); /* stopped midway: nothing left behind */
    }
    if (d->sha) EVP_MD_CTX_free(d->sha);
    free(d->url);
    free(d->dest);
    free(d->partial);
    free(d);
}

int yt_download_file(const char *url, const char *dest, const yt_download_opts *opts)
{
    yt_download *d = yt_download_begin(url, dest, opts);
    if (!d) return -1;
    int rc;
    while ((rc = yt_download_poll(d, 200)) == 1) {}
    yt_download_end(d);
    return rc;
}

int yt_sha256_file(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return yt_error("cannot read %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        close(fd);
        EVP_MD_CTX_free(ctx);
        return yt_error("cannot start a SHA-256 digest (OpenSSL)");
    }
    static _Thread_local unsigned char buf[1 << 16];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            EVP_MD_CTX_free(ctx);
            return yt_error("cannot read %s: %s", path, strerror(e));
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    }
    close(fd);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}
