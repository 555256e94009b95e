/* TensorBoard event files: CRC32C against the standard check values, TFRecord framing and masking, and a writer
 * whose file protobuf-c reads back record by record; a failed write leaves only whole records. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/tfevents.h"
#include "testutil.h"
#include "tfevents.pb-c.h"

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p + 4) << 32 | le32(p); }

static void test_crc32c(void)
{
    CHECK(yt_crc32c("123456789", 9) == 0xE3069283u, "check value: %08x", yt_crc32c("123456789", 9));
    CHECK(yt_crc32c("", 0) == 0, "empty: %08x", yt_crc32c("", 0));
    CHECK(yt_crc32c("a", 1) == 0xC1D04330u, "'a': %08x", yt_crc32c("a", 1));
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xFF, sizeof ones);
    /* RFC 3720 (iSCSI) B.4 vectors */
    CHECK(yt_crc32c(zeros, 32) == 0x8A9136AAu, "32 zeros: %08x", yt_crc32c(zeros, 32));
    CHECK(yt_crc32c(ones, 32) == 0x62A8AB43u, "32 x 0xFF: %08x", yt_crc32c(ones, 32));
}

static void test_mask_and_frame(void)
{
    /* values computed independently (Python) from TFRecord's definition */
    CHECK(yt_tfrecord_mask(0) == 0xa282ead8u, "mask(0): %08x", yt_tfrecord_mask(0));
    CHECK(yt_tfrecord_mask(0xE3069283u) == 0xc78ab0e5u, "mask(check value): %08x", yt_tfrecord_mask(0xE3069283u));
    const char data[] = "123456789";
    uint8_t rec[9 + YT_TFRECORD_OVERHEAD];
    yt_tfrecord_frame(data, 9, rec);
    CHECK(le64(rec) == 9, "length %llu", (unsigned long long)le64(rec));
    CHECK(le32(rec + 8) == yt_tfrecord_mask(yt_crc32c(rec, 8)), "length CRC");
    CHECK(memcmp(rec + 12, data, 9) == 0, "data");
    CHECK(le32(rec + 21) == 0xc78ab0e5u, "data CRC %08x", le32(rec + 21));
    uint8_t empty[YT_TFRECORD_OVERHEAD];
    yt_tfrecord_frame(NULL, 0, empty);
    CHECK(le64(empty) == 0 && le32(empty + 12) == 0xa282ead8u, "an empty record");
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    *n = fread(buf, 1, (size_t)size, f);
    fclose(f);
    return buf;
}

/* Unpacks every record of the file, checking both CRCs; returns the count (-1 on a broken record). */
static int read_events(const char *path, Tensorboard__Event **out, int max)
{
    size_t n = 0, at = 0;
    uint8_t *buf = read_all(path, &n);
    int count = 0;
    while (buf && at < n) {
        if (n - at < YT_TFRECORD_OVERHEAD || count == max) break;
        uint64_t len = le64(buf + at);
        if (le32(buf + at + 8) != yt_tfrecord_mask(yt_crc32c(buf + at, 8)) || len > n - at - YT_TFRECORD_OVERHEAD)
            break;
        const uint8_t *data = buf + at + 12;
        if (le32(data + len) != yt_tfrecord_mask(yt_crc32c(data, len))) break;
        out[count] = tensorboard__event__unpack(NULL, len, data);
        if (!out[count]) break;
        count++;
        at += len + YT_TFRECORD_OVERHEAD;
    }
    free(buf);
    return at == n ? count : -1;
}

static void free_events(Tensorboard__Event **ev, int n)
{
    for (int i = 0; i < n; i++) tensorboard__event__free_unpacked(ev[i], NULL);
}

static char *make_dir(void)
{
    static char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "/tmp/yt_tfevents_XXXXXX");
    return mkdtemp(tmpl);
}

static void test_round_trip(void)
{
    char *dir = make_dir();
    double t0 = yt_tfevents_now();
    CHECK(fabs(t0 - (double)time(NULL)) < 5, "the wall clock: %.3f", t0);
    yt_tfevents *w = yt_tfevents_open(dir, 1700000000.25);
    CHECK(w != NULL, "open: %s", yt_last_error());
    if (!w) return;
    char name[64];
    snprintf(name, sizeof name, "/events.out.tfevents.1700000000.");
    CHECK(strstr(yt_tfevents_path(w), name) != NULL, "file name %s", yt_tfevents_path(w));
    char pid[32];
    snprintf(pid, sizeof pid, ".%ld.", (long)getpid());
    CHECK(strstr(yt_tfevents_path(w), pid) != NULL, "file name %s has the pid", yt_tfevents_path(w));
    char path[512];
    snprintf(path, sizeof path, "%s", yt_tfevents_path(w));
    /* the file_version record is in the file from the start */
    Tensorboard__Event *ev[8];
    int n = read_events(path, ev, 8);
    CHECK(n == 1, "%d records after open", n);
    if (n == 1) {
        CHECK(ev[0]->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION &&
                  strcmp(ev[0]->file_version, YT_TFEVENTS_FILE_VERSION) == 0,
              "file_version record");
        CHECK(ev[0]->wall_time == 1700000000.25 && ev[0]->step == 0, "its wall time and step");
    }
    free_events(ev, n > 0 ? n : 0);
    CHECK(yt_tfevents_add_scalar(w, "train/box_loss", 1, 1.25f, 1700000001.5) == 0, "%s", yt_last_error());
    CHECK(yt_tfevents_add_scalar(w, "metrics/mAP50(B)", 1, 0.0f, 1700000002.0) == 0, "%s", yt_last_error());
    CHECK(yt_tfevents_add_scalar(w, "lr/pg0", 3, -1e-30f, 1700000003.0) == 0, "%s", yt_last_error());
    n = read_events(path, ev, 8);
    CHECK(n == 1, "queued records are not written before the flush (%d records)", n);
    free_events(ev, n > 0 ? n : 0);
    CHECK(yt_tfevents_flush(w) == 0, "flush: %s", yt_last_error());
    n = read_events(path, ev, 8);
    CHECK(n == 4, "%d records after the flush", n);
    if (n == 4) {
        const char *tags[3] = {"train/box_loss", "metrics/mAP50(B)", "lr/pg0"};
        const float values[3] = {1.25f, 0.0f, -1e-30f};
        const int64_t steps[3] = {1, 1, 3};
        const double times[3] = {1700000001.5, 1700000002.0, 1700000003.0};
        for (int i = 0; i < 3; i++) {
            Tensorboard__Event *e = ev[i + 1];
            CHECK(e->what_case == TENSORBOARD__EVENT__WHAT_SUMMARY && e->summary->n_value == 1, "record %d", i);
            if (e->what_case != TENSORBOARD__EVENT__WHAT_SUMMARY || e->summary->n_value != 1) continue;
            Tensorboard__Summary__Value *v = e->summary->value[0];
            CHECK(strcmp(v->tag, tags[i]) == 0, "tag %s", v->tag);
            /* a 0 is still a scalar: TensorBoard skips a value whose oneof is unset */
            CHECK(v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE, "%s has a simple_value", tags[i]);
            CHECK(v->simple_value == values[i], "%s = %g", tags[i], v->simple_value);
            CHECK(e->step == steps[i] && e->wall_time == times[i], "%s step and time", tags[i]);
        }
    }
    free_events(ev, n > 0 ? n : 0);
    /* a second writer of this process gets the next name */
    yt_tfevents *w2 = yt_tfevents_open(dir, 1700000000.25);
    CHECK(w2 != NULL && strcmp(yt_tfevents_path(w2), path) != 0, "a second file beside the first");
    CHECK(yt_tfevents_close(w2) == 0, "close: %s", yt_last_error());
    CHECK(yt_tfevents_close(w) == 0, "close: %s", yt_last_error());
    CHECK(yt_tfevents_close(NULL) == 0, "close(NULL)");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm");
}

static void test_bad_requests(void)
{
    CHECK(yt_tfevents_open("/nonexistent/yt/dir", 1.0) == NULL, "open in a missing folder");
    CHECK(strstr(yt_last_error(), "cannot create /nonexistent/yt/dir/events.out.tfevents.") != NULL, "%s",
          yt_last_error());
    char *dir = make_dir();
    yt_tfevents *w = yt_tfevents_open(dir, 1.0);
    CHECK(w != NULL, "open: %s", yt_last_error());
    if (!w) return;
    CHECK(yt_tfevents_add_scalar(w, "", 1, 1.0f, 1.0) < 0, "an empty tag is refused");
    CHECK(strstr(yt_last_error(), "a tag must have 1..4096 bytes, not 0") != NULL, "%s", yt_last_error());
    char *long_tag = malloc(YT_TFEVENTS_MAX_TAG + 2);
    memset(long_tag, 'x', YT_TFEVENTS_MAX_TAG + 1);
    long_tag[YT_TFEVENTS_MAX_TAG + 1] = 0;
    CHECK(yt_tfevents_add_scalar(w, long_tag, 1, 1.0f, 1.0) < 0, "a tag over the bound is refused");
    long_tag[YT_TFEVENTS_MAX_TAG] = 0;
    CHECK(yt_tfevents_add_scalar(w, long_tag, 1, 1.0f, 1.0) == 0, "a tag at the bound: %s", yt_last_error());
    free(long_tag);
    CHECK(yt_tfevents_close(w) == 0, "close: %s", yt_last_error());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm");
}

/* A write past the file-size limit fails half-way (EFBIG): the error names the file, the partial record is cut
 * off, the file still reads, and later flushes work again once there is room. */
static void test_failed_write(void)
{
    char *dir = make_dir();
    yt_tfevents *w = yt_tfevents_open(dir, 1.0);
    CHECK(w != NULL, "open: %s", yt_last_error());
    if (!w) return;
    char path[512];
    snprintf(path, sizeof path, "%s", yt_tfevents_path(w));
    CHECK(yt_tfevents_add_scalar(w, "a", 1, 1.0f, 2.0) == 0 && yt_tfevents_flush(w) == 0, "%s", yt_last_error());
    struct stat st;
    stat(path, &st);
    off_t good = st.st_size;
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)good + 30; /* room for part of the next two records */
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    CHECK(yt_tfevents_add_scalar(w, "train/box_loss", 2, 2.0f, 3.0) == 0, "%s", yt_last_error());
    CHECK(yt_tfevents_add_scalar(w, "train/cls_loss", 2, 3.0f, 3.0) == 0, "%s", yt_last_error());
    int rc = yt_tfevents_flush(w);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    CHECK(rc < 0, "the flush fails");
    char want[600];
    snprintf(want, sizeof want, "cannot write %s: File too large", path);
    CHECK(strcmp(yt_last_error(), want) == 0, "%s", yt_last_error());
    stat(path, &st);
    CHECK(st.st_size == good, "the partial record is cut off: %lld bytes, %lld before", (long long)st.st_size,
          (long long)good);
    Tensorboard__Event *ev[8];
    int n = read_events(path, ev, 8);
    CHECK(n == 2, "the file reads: %d records", n);
    free_events(ev, n > 0 ? n : 0);
    CHECK(yt_tfevents_add_scalar(w, "b", 3, 4.0f, 4.0) == 0 && yt_tfevents_flush(w) == 0, "%s", yt_last_error());
    n = read_events(path, ev, 8);
    CHECK(n == 3 && ev[2]->step == 3, "a later flush appends after the last whole record: %d records", n);
    free_events(ev, n > 0 ? n : 0);
    CHECK(yt_tfevents_close(w) == 0, "close: %s", yt_last_error());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm");
}

int main(void)
{
    test_crc32c();
    test_mask_and_frame();
    test_round_trip();
    test_bad_requests();
    test_failed_write();
    return tu_finish();
}
