/* TensorBoard event files (see tfevents.h): Event messages of tfevents.proto packed by protobuf-c, framed as
 * TFRecords, queued in memory and appended to the file with pwrite at a known offset, so that a failed write can
 * be cut back with ftruncate. */
#include "io/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "tfevents.pb-c.h"

/* ---- CRC32C and framing ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t yt_crc32c(const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t yt_tfrecord_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

static void put_le32(uint8_t *out, uint32_t v)
{
    for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* The 12 bytes before a record's n bytes of data: the length and its masked CRC. */
static void frame_head(uint64_t n, uint8_t *out)
{
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(n >> (8 * i));
    put_le32(out + 8, yt_tfrecord_mask(yt_crc32c(out, 8)));
}

void yt_tfrecord_frame(const void *data, size_t n, uint8_t *out)
{
    frame_head(n, out);
    if (n) memcpy(out + 12, data, n);
    put_le32(out + 12 + n, yt_tfrecord_mask(yt_crc32c(out + 12, n)));
}

/* ---- the writer ---- */

struct yt_tfevents {
    int fd;
    char *path;
    off_t written;  /* bytes of whole records in the file */
    uint8_t *queue; /* framed records not yet written */
    size_t queued, cap;
};

/* The files this process opened, for the last part of their names. */
static atomic_uint files_opened;

double yt_tfevents_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *yt_tfevents_path(const yt_tfevents *w) { return w->path; }

/* Packs ev and appends it, framed, to the queue. */
static int queue_event(yt_tfevents *w, const Tensorboard__Event *ev)
{
    size_t n = tensorboard__event__get_packed_size(ev);
    size_t need = n + YT_TFRECORD_OVERHEAD;
    if (need > SIZE_MAX - w->queued) return yt_error("%s: event queue overflow", w->path);
    if (w->queued + need > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->queued + need) cap = cap > SIZE_MAX / 2 ? w->queued + need : cap * 2;
        uint8_t *q = realloc(w->queue, cap);
        if (!q) return yt_error("%s: out of memory (%zu bytes of queued events)", w->path, cap);
        w->queue = q;
        w->cap = cap;
    }
    /* packed in place between its head and its data CRC */
    uint8_t *rec = w->queue + w->queued;
    frame_head(n, rec);
    if (tensorboard__event__pack(ev, rec + 12) != n) return yt_error("%s: protobuf-c packed an event wrongly", w->path);
    put_le32(rec + 12 + n, yt_tfrecord_mask(yt_crc32c(rec + 12, n)));
    w->queued += need;
    return 0;
}

int yt_tfevents_flush(yt_tfevents *w)
{
    size_t done = 0;
    while (done < w->queued) {
        ssize_t k = pwrite(w->fd, w->queue + done, w->queued - done, w->written + (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            w->queued = 0;
            /* a record cut in the middle would end what a reader can read: drop the partial tail */
            if (done > 0 && ftruncate(w->fd, w->written) != 0)
                return yt_error("cannot write %s: %s (and cannot cut its partial record off: %s)", w->path, strerror(e),
                                strerror(errno));
            return yt_error("cannot write %s: %s", w->path, strerror(e));
        }
        done += (size_t)k;
    }
    w->written += (off_t)done;
    w->queued = 0;
    return 0;
}

/* "<dir>/events.out.tfevents.<time>.<host>.<pid>.<n>" with the next n; NULL + yt_error when out of memory. */
static char *event_file_name(const char *dir, double wall_time)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
    unsigned n = atomic_fetch_add(&files_opened, 1);
    size_t len = strlen(dir) + strlen(host) + 96;
    char *path = malloc(len);
    if (!path) {
        yt_error("out of memory");
        return NULL;
    }
    snprintf(path, len, "%s/events.out.tfevents.%010lld.%s.%ld.%u", dir, (long long)wall_time, host, (long)getpid(), n);
    return path;
}

yt_tfevents *yt_tfevents_open(const char *dir, double wall_time)
{
    yt_tfevents *w = calloc(1, sizeof *w);
    if (!w) {
        yt_error("out of memory");
        return NULL;
    }
    w->fd = -1;
    /* a name already taken (a file of an earlier process with this pid) is skipped, never overwritten */
    int taken = 0;
    for (int attempt = 0; attempt < 64 && w->fd < 0; attempt++) {
        free(w->path);
        if (!(w->path = event_file_name(dir, wall_time))) break;
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        taken = w->fd < 0 && errno == EEXIST;
        if (w->fd < 0 && !taken) {
            yt_error("cannot create %s: %s", w->path, strerror(errno));
            break;
        }
    }
    if (w->fd < 0) {
        if (taken) yt_error("cannot create an event file in %s: the names tried are taken (last %s)", dir, w->path);
        free(w->path);
        free(w);
        return NULL;
    }
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = wall_time;
    ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
    ev.file_version = YT_TFEVENTS_FILE_VERSION;
    if (queue_event(w, &ev) < 0 || yt_tfevents_flush(w) < 0) {
        close(w->fd);
        unlink(w->path);
        free(w->queue);
        free(w->path);
        free(w);
        return NULL;
    }
    return w;
}

int yt_tfevents_add_scalar(yt_tfevents *w, const char *tag, int64_t step, float value, double wall_time)
{
    size_t len = tag ? strlen(tag) : 0;
    if (len == 0 || len > YT_TFEVENTS_MAX_TAG)
        return yt_error("%s: a tag must have 1..%d bytes, not %zu", w->path, YT_TFEVENTS_MAX_TAG, len);
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = value;
    Tensorboard__Summary__Value *values[1] = {&v};
    Tensorboard__Summary summary = TENSORBOARD__SUMMARY__INIT;
    summary.n_value = 1;
    summary.value = values;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = wall_time;
    ev.step = step;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
    ev.summary = &summary;
    return queue_event(w, &ev);
}

int yt_tfevents_close(yt_tfevents *w)
{
    if (!w) return 0;
    int rc = yt_tfevents_flush(w);
    if (close(w->fd) != 0 && rc == 0) rc = yt_error("cannot close %s: %s", w->path, strerror(errno));
    free(w->queue);
    free(w->path);
    free(w);
    return rc;
}
