/* Unpacking received archives (src/io/unpack.c): the layouts of Ultralytics' unzip_file, every refusal (absolute
 * names, '..', links out, devices, FIFOs, bombs by size and by count) with nothing left outside the target and no
 * half-unpacked folder at the final name; and the SHA-256 of io/download.c. Archives are written here with
 * libarchive's writer, so members no well-behaved tool would produce can be made. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "io/download.h"
#include "io/unpack.h"
#include "testutil.h"

static char tmpdir[512];

/* One member of a test archive: type 'f' file (data), 'd' folder, 'l' symlink (data = target), 'h' hard link (data
 * = target), 'c' character device, 'p' FIFO. size > 0 with data NULL: that many zero bytes. */
typedef struct {
    char type;
    const char *name;
    const char *data;
    size_t size;
} member;

enum { ZIP, TAR_GZ, TAR_XZ, TAR };

static int write_archive(const char *path, int kind, const member *m, int n)
{
    struct archive *a = archive_write_new();
    if (kind == ZIP)
        archive_write_set_format_zip(a);
    else
        archive_write_set_format_pax_restricted(a);
    if (kind == TAR_GZ) archive_write_add_filter_gzip(a);
    if (kind == TAR_XZ) archive_write_add_filter_xz(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) return -1;
    static char zeros[1 << 16];
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        size_t size = m[i].data ? strlen(m[i].data) : m[i].size;
        switch (m[i].type) {
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            size = 0;
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, m[i].data);
            size = 0;
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m[i].data);
            size = 0;
            break;
        case 'c':
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdev(e, 0x0103);
            size = 0;
            break;
        case 'p':
            archive_entry_set_filetype(e, AE_IFIFO);
            size = 0;
            break;
        default:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            break;
        }
        archive_entry_set_size(e, (la_int64_t)size);
        if (archive_write_header(a, e) != ARCHIVE_OK) {
            fprintf(stderr, "write_archive %s: %s\n", m[i].name, archive_error_string(a));
            archive_entry_free(e);
            archive_write_free(a);
            return -1;
        }
        if (m[i].type == 'f') {
            if (m[i].data)
                archive_write_data(a, m[i].data, size);
            else
                for (size_t left = size; left > 0;) {
                    size_t k = left < sizeof zeros ? left : sizeof zeros;
                    archive_write_data(a, zeros, k);
                    left -= k;
                }
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return 0;
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static int file_is(const char *p, const char *want)
{
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strcmp(buf, want) == 0;
}

/* Entries in dir (without . and ..). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* A fresh case folder <tmpdir>/<name> holding an empty "parent" (the unpack target's parent); the archive goes
 * beside parent, so anything written outside parent shows up as a third entry of the case folder. */
static void case_dirs(const char *name, char *casedir, char *parent, char *archive, const char *ext)
{
    snprintf(casedir, 1024, "%s/%s", tmpdir, name);
    mkdir(casedir, 0755);
    snprintf(parent, 1024, "%s/parent", casedir);
    mkdir(parent, 0755);
    snprintf(archive, 1024, "%s/a%s", casedir, ext);
}

/* The archive is refused with a message naming it and the member, and parent is left empty. */
static void expect_refused(const char *name, int kind, const member *m, int n, const char *bad_member, const char *why,
                           const yt_unpack_limits *lim)
{
    char casedir[1024], parent[1024], archive[1024], out[1024];
    case_dirs(name, casedir, parent, archive, kind == ZIP ? ".zip" : ".tar.gz");
    CHECK(write_archive(archive, kind, m, n) == 0, "%s: cannot write the test archive", name);
    int rc = yt_unpack(archive, parent, "ds", lim, out, sizeof out, NULL);
    const char *msg = yt_last_error();
    if (getenv("VERBOSE")) fprintf(stderr, "%s: %s\n", name, msg);
    CHECK(rc == -1, "%s: unpacked, expected a refusal", name);
    CHECK(strstr(msg, archive) != NULL, "%s: message does not name the archive: %s", name, msg);
    CHECK(bad_member == NULL || strstr(msg, bad_member) != NULL, "%s: message does not name '%s': %s", name, bad_member,
          msg);
    CHECK(strstr(msg, why) != NULL, "%s: message does not say '%s': %s", name, why, msg);
    CHECK(count_entries(parent) == 0, "%s: %d entries left in the target's parent", name, count_entries(parent));
    CHECK(count_entries(casedir) == 2, "%s: something was written beside the target (%d entries)", name,
          count_entries(casedir));
    char outside[1200];
    snprintf(outside, sizeof outside, "%s/evil", casedir);
    CHECK(!exists(outside), "%s: %s was written", name, outside);
    CHECK(!exists("/tmp/yt_unpack_evil"), "%s: /tmp/yt_unpack_evil was written", name);
}

static void test_layouts(void)
{
    char casedir[1024], parent[1024], archive[1024], out[1024], p[1200];
    /* one top-level folder: parent/<that folder>, as Ultralytics' coco128.zip gives datasets/coco128 */
    member one[] = {{'d', "coco/", NULL, 0},
                    {'d', "coco/images/", NULL, 0},
                    {'f', "coco/images/a.txt", "A", 0},
                    {'f', "coco/labels/a.txt", "0 0.5 0.5 0.1 0.1\n", 0},
                    {'f', "__MACOSX/._a", "junk", 0},
                    {'f', "coco/.DS_Store", "junk", 0},
                    {'l', "coco/link", "images/a.txt", 0}};
    case_dirs("top", casedir, parent, archive, ".zip");
    CHECK(write_archive(archive, ZIP, one, 7) == 0, "zip");
    yt_unpack_stats st = {0};
    int rc = yt_unpack(archive, parent, "a", NULL, out, sizeof out, &st);
    CHECK(rc == 0, "unpack: %s", yt_last_error());
    snprintf(p, sizeof p, "%s/coco", parent);
    CHECK(strcmp(out, p) == 0, "final folder %s, expected %s", out, p);
    snprintf(p, sizeof p, "%s/coco/images/a.txt", parent);
    CHECK(file_is(p, "A"), "%s", p);
    snprintf(p, sizeof p, "%s/coco/link", parent);
    CHECK(file_is(p, "A"), "an inside link is kept: %s", p);
    snprintf(p, sizeof p, "%s/coco/.DS_Store", parent);
    CHECK(!exists(p), ".DS_Store skipped");
    CHECK(count_entries(parent) == 1, "only coco/ in parent (no __MACOSX, no staging): %d", count_entries(parent));
    CHECK(st.entries == 5 && st.bytes == 1 + 18, "stats: %llu entries, %llu bytes", (unsigned long long)st.entries,
          (unsigned long long)st.bytes);

    /* several top-level entries: parent/<name> */
    member flat[] = {{'f', "images/a.txt", "A", 0}, {'f', "data.yaml", "names: [a]\n", 0}};
    case_dirs("flat", casedir, parent, archive, ".tar.xz");
    CHECK(write_archive(archive, TAR_XZ, flat, 2) == 0, "tar.xz");
    rc = yt_unpack(archive, parent, "mine", NULL, out, sizeof out, NULL);
    CHECK(rc == 0, "unpack tar.xz: %s", yt_last_error());
    snprintf(p, sizeof p, "%s/mine/images/a.txt", parent);
    CHECK(rc == 0 && file_is(p, "A"), "%s", p);
    CHECK(count_entries(parent) == 1, "parent holds mine/ only: %d", count_entries(parent));

    /* tar.gz, with a leading "./" on every name and an inside hard link */
    member dot[] = {{'d', "./", NULL, 0}, {'f', "./ds/x.txt", "X", 0}, {'h', "./ds/y.txt", "./ds/x.txt", 0}};
    case_dirs("dot", casedir, parent, archive, ".tar.gz");
    CHECK(write_archive(archive, TAR_GZ, dot, 3) == 0, "tar.gz");
    rc = yt_unpack(archive, parent, "dot", NULL, out, sizeof out, NULL);
    CHECK(rc == 0, "unpack tar.gz: %s", yt_last_error());
    snprintf(p, sizeof p, "%s/ds/y.txt", parent);
    CHECK(file_is(p, "X"), "hard link inside: %s", p);

    /* an existing empty target is replaced; a non-empty one is left alone and the archive refused */
    case_dirs("exists", casedir, parent, archive, ".zip");
    CHECK(write_archive(archive, ZIP, one, 4) == 0, "zip");
    snprintf(p, sizeof p, "%s/coco", parent);
    mkdir(p, 0755);
    CHECK(yt_unpack(archive, parent, "a", NULL, out, sizeof out, NULL) == 0, "empty target: %s", yt_last_error());
    rmdir(p);
    yt_remove_tree(p);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/coco/keep.txt", parent);
    FILE *f = fopen(p, "w");
    fputs("mine", f);
    fclose(f);
    rc = yt_unpack(archive, parent, "a", NULL, out, sizeof out, NULL);
    CHECK(rc == -1 && strstr(yt_last_error(), "exists already"), "non-empty target: rc %d %s", rc, yt_last_error());
    CHECK(file_is(p, "mine") && count_entries(parent) == 1, "the existing folder is untouched");
}

static void test_refusals(void)
{
    member dotdot[] = {{'f', "ds/ok.txt", "ok", 0}, {'f', "ds/../../evil", "x", 0}};
    expect_refused("dotdot_zip", ZIP, dotdot, 2, "ds/../../evil", "'..'", NULL);
    expect_refused("dotdot_tar", TAR_GZ, dotdot, 2, "ds/../../evil", "'..'", NULL);
    member abs[] = {{'f', "ds/ok.txt", "ok", 0}, {'f', "/tmp/yt_unpack_evil", "x", 0}};
    expect_refused("absolute", ZIP, abs, 2, "/tmp/yt_unpack_evil", "absolute path", NULL);
    member link_abs[] = {{'l', "ds/passwd", "/etc/passwd", 0}};
    expect_refused("link_absolute", TAR_GZ, link_abs, 1, "ds/passwd", "absolute path", NULL);
    member link_up[] = {{'d', "ds/", NULL, 0}, {'l', "ds/up", "../../evil", 0}};
    expect_refused("link_up", ZIP, link_up, 2, "ds/up", "leads outside", NULL);
    /* each link looks inside by its names, but on the disk b -> a/.. is the target's parent */
    member chain[] = {{'l', "a", ".", 0}, {'l', "b", "a/..", 0}, {'f', "c.txt", "c", 0}};
    expect_refused("link_chain", TAR_GZ, chain, 3, "b", "leads outside", NULL);
    /* a write through a link to a folder inside: refused too (nothing is written through links) */
    member through[] = {{'d', "ds/sub/", NULL, 0}, {'l', "ds/l", "sub", 0}, {'f', "ds/l/f.txt", "f", 0}};
    expect_refused("through_link", TAR_GZ, through, 3, "ds/l/f.txt", "", NULL);
    member hard_up[] = {{'f', "ds/ok.txt", "ok", 0}, {'h', "ds/h", "../evil", 0}};
    expect_refused("hardlink_up", TAR_GZ, hard_up, 2, "ds/h", "hard link", NULL);
    member dev[] = {{'f', "ds/ok.txt", "ok", 0}, {'c', "ds/null", NULL, 0}};
    expect_refused("device", TAR_GZ, dev, 2, "ds/null", "device", NULL);
    member fifo[] = {{'p', "ds/fifo", NULL, 0}};
    expect_refused("fifo", TAR_GZ, fifo, 1, "ds/fifo", "FIFO", NULL);

    /* bombs: 8 MiB of zeros (a few KiB packed) against a 1 MiB bound; and more members than the count bound */
    yt_unpack_limits small = {1 << 20, 0};
    member bomb[] = {{'f', "ds/ok.txt", "ok", 0}, {'f', "ds/zeros.bin", NULL, 8 << 20}};
    expect_refused("bomb_zip", ZIP, bomb, 2, "ds/zeros.bin", "bound", &small);
    expect_refused("bomb_tar", TAR_GZ, bomb, 2, "ds/zeros.bin", "bound", &small);
    yt_unpack_limits few = {0, 3};
    member many[] = {{'f', "ds/1", "1", 0}, {'f', "ds/2", "2", 0}, {'f', "ds/3", "3", 0}, {'f', "ds/4", "4", 0}};
    expect_refused("too_many", ZIP, many, 4, "ds/4", "member count", &few);

    /* not an archive at all */
    char casedir[1024], parent[1024], archive[1024], out[1024];
    case_dirs("garbage", casedir, parent, archive, ".zip");
    FILE *f = fopen(archive, "wb");
    fputs("<html>404 Not Found</html>", f);
    fclose(f);
    int rc = yt_unpack(archive, parent, "a", NULL, out, sizeof out, NULL);
    CHECK(rc == -1 && strstr(yt_last_error(), archive), "garbage refused naming it: %s", yt_last_error());
    CHECK(count_entries(parent) == 0, "nothing left after garbage");
}

static void test_buffer(void)
{
    char casedir[1024], parent[1024], archive[1024];
    member m[] = {{'f', "x/y.txt", "Y", 0}};
    case_dirs("buffer", casedir, parent, archive, ".zip");
    write_archive(archive, ZIP, m, 1);
    FILE *f = fopen(archive, "rb");
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(yt_unpack_buffer_into(buf, n, "mem.zip", parent, NULL, NULL) == 0, "buffer: %s", yt_last_error());
    char p[1200];
    snprintf(p, sizeof p, "%s/x/y.txt", parent);
    CHECK(file_is(p, "Y"), "%s", p);
    /* cut inside the member's data (its local header is 30 bytes + the name) */
    CHECK(yt_unpack_buffer_into(buf, 30 + 7, "cut.zip", parent, NULL, NULL) == -1, "a cut archive is an error");
}

static void test_sha256(void)
{
    char p[1024], hex[65];
    snprintf(p, sizeof p, "%s/abc.txt", tmpdir);
    FILE *f = fopen(p, "wb");
    fputs("abc", f);
    fclose(f);
    /* FIPS 180-2's example "abc" */
    CHECK(yt_sha256_file(p, hex) == 0, "%s", yt_last_error());
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "sha256(abc) = %s",
          hex);
    CHECK(yt_sha256_file("/nonexistent/x", hex) == -1, "a missing file is an error");
    /* bad arguments are refused before anything is created */
    snprintf(p, sizeof p, "%s/dl.bin", tmpdir);
    CHECK(yt_download_begin("ftp://127.0.0.1/x", p, NULL) == NULL && strstr(yt_last_error(), "http"), "ftp refused: %s",
          yt_last_error());
    yt_download_opts o = {.sha256 = "xyz"};
    CHECK(yt_download_begin("http://127.0.0.1:1/x", p, &o) == NULL && strstr(yt_last_error(), "64 hex"),
          "bad sha256 refused: %s", yt_last_error());
    char partial[1100];
    snprintf(partial, sizeof partial, "%s.partial", p);
    CHECK(!exists(p) && !exists(partial), "nothing created by a refused download");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/yt_test_unpack_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_layouts();
    test_refusals();
    test_buffer();
    test_sha256();
    yt_remove_tree(tmpdir);
    return tu_finish();
}
