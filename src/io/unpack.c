#include "io/unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "core/error.h"
#include "io/durable.h"

/* ---- member names ------------------------------------------------------------------------------------------ */

/* The member name without leading "./" (and repeated slashes there); NULL when nothing is left. */
static const char *strip_dot_prefix(const char *name)
{
    while (name[0] == '.' && name[1] == '/') {
        name += 2;
        while (*name == '/') name++;
    }
    if (name[0] == '.' && name[1] == 0) return NULL;
    return *name ? name : NULL;
}

/* Whether a (relative) path has a ".." component. */
static int has_dotdot(const char *p)
{
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return 1;
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

/* macOS metadata Ultralytics skips too: a __MACOSX component or a .DS_Store file. */
static int is_mac_metadata(const char *p)
{
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 8 && memcmp(s, "__MACOSX", 8) == 0) || (n == 9 && memcmp(s, ".DS_Store", 9) == 0)) return 1;
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

/* Whether a symbolic link at member path `member` with relative target `target` stays inside the root, reading
 * the names only: each ".." must leave a folder the link is below. (Links through other links are checked on the
 * disk once everything is written.) */
static int link_stays_inside(const char *member, const char *target)
{
    if (target[0] == '/') return 0;
    long depth = 0; /* folders of member above the link itself */
    for (const char *s = member; (s = strchr(s, '/')); s++) depth++;
    for (const char *s = target; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (--depth < 0) return 0;
        } else if (n > 0 && !(n == 1 && s[0] == '.')) {
            depth++;
        }
        if (!e) break;
        s = e + 1;
    }
    return 1;
}

/* ---- extraction -------------------------------------------------------------------------------------------- */

typedef struct {
    const char *archive; /* name for messages */
    const char *root;    /* the real path of the target folder */
    uint64_t max_bytes, max_entries;
    uint64_t bytes, entries, seen;
} unpacker;

static int refuse(const unpacker *u, const char *member, const char *why)
{
    return yt_error("%s: member '%s' %s; the archive is not unpacked", u->archive, member, why);
}

/* "<root>/<rel>" into out; -1 when too long. */
static int under_root(const unpacker *u, const char *rel, char *out, size_t cap, const char *member)
{
    if ((size_t)snprintf(out, cap, "%s/%s", u->root, rel) >= cap) return refuse(u, member, "has too long a name");
    return 0;
}

/* Copies the data of the current member, counting its bytes against the bound. */
static int copy_data(unpacker *u, struct archive *in, struct archive *out, const char *member)
{
    uint64_t entry_end = 0;
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(in, &buf, &size, &offset);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN)
            return yt_error("%s: cannot read member '%s': %s", u->archive, member, archive_error_string(in));
        /* a sparse hole counts with its size: the file claims it */
        if (offset < 0 || (uint64_t)offset > u->max_bytes || size > u->max_bytes - (uint64_t)offset ||
            (uint64_t)offset + size > u->max_bytes - u->bytes)
            return refuse(u, member, "takes the unpacked size past its bound (a zip bomb?)");
        if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
            return yt_error("%s: cannot write member '%s': %s", u->archive, member, archive_error_string(out));
        if ((uint64_t)offset + size > entry_end) entry_end = (uint64_t)offset + size;
    }
    u->bytes += entry_end;
    return 0;
}

/* Checks one member and rewrites its names to lie under the root. Returns 1 to write it, 0 to skip it, -1 to
 * refuse the archive. */
static int check_entry(unpacker *u, struct archive_entry *e, char *shown, size_t cap)
{
    const char *rawname = archive_entry_pathname(e);
    if (!rawname) rawname = archive_entry_pathname_utf8(e);
    if (!rawname)
        return yt_error("%s: member %" PRIu64 " has a name that cannot be read; the archive is not unpacked",
                        u->archive, u->seen);
    snprintf(shown, cap, "%s", rawname); /* the entry's own strings change below */
    const char *raw = shown;
    char namebuf[PATH_MAX], hardbuf[PATH_MAX];
    if (strlen(rawname) >= sizeof namebuf) return refuse(u, raw, "has too long a name");
    snprintf(namebuf, sizeof namebuf, "%s", rawname);
    const char *name = strip_dot_prefix(namebuf);
    mode_t type = archive_entry_filetype(e);
    if (!name) {
        if (type == AE_IFDIR) return 0; /* "./": the root itself */
        return refuse(u, raw, "has an empty name");
    }
    if (name[0] == '/') return refuse(u, raw, "has an absolute path");
    if (has_dotdot(name)) return refuse(u, raw, "has a '..' component");
    if (is_mac_metadata(name)) return 0;
    const char *hard = archive_entry_hardlink(e);
    if (hard) {
        if (strlen(hard) >= sizeof hardbuf) return refuse(u, raw, "is a hard link with too long a target");
        snprintf(hardbuf, sizeof hardbuf, "%s", hard);
        hard = hardbuf;
        const char *h = strip_dot_prefix(hard);
        if (!h || h[0] == '/' || has_dotdot(h)) return refuse(u, raw, "is a hard link to a name outside the archive");
    } else if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        if (!target || !*target) return refuse(u, raw, "is a symbolic link with no target");
        if (target[0] == '/') return refuse(u, raw, "is a symbolic link to an absolute path");
        if (!link_stays_inside(name, target))
            return refuse(u, raw, "is a symbolic link that leads outside the archive");
    } else if (type == AE_IFCHR || type == AE_IFBLK) {
        return refuse(u, raw, "is a device");
    } else if (type == AE_IFIFO) {
        return refuse(u, raw, "is a FIFO");
    } else if (type == AE_IFSOCK) {
        return refuse(u, raw, "is a socket");
    } else if (type != AE_IFREG && type != AE_IFDIR) {
        return refuse(u, raw, "is not a file, folder or link");
    }
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        (uint64_t)archive_entry_size(e) > u->max_bytes - u->bytes)
        return refuse(u, raw, "takes the unpacked size past its bound (a zip bomb?)");
    if (++u->entries > u->max_entries) return refuse(u, raw, "is one more than the bound on the member count");

    char path[PATH_MAX];
    if (under_root(u, name, path, sizeof path, raw) < 0) return -1;
    archive_entry_copy_pathname(e, path);
    if (hard) {
        if (under_root(u, strip_dot_prefix(hard), path, sizeof path, raw) < 0) return -1;
        archive_entry_copy_hardlink(e, path);
    }
    /* the owner may always read, write and enter what was unpacked (and remove it); never set-id or sticky */
    if (type == AE_IFDIR)
        archive_entry_set_perm(e, 0755);
    else if (type == AE_IFREG)
        archive_entry_set_perm(e, (archive_entry_perm(e) & 0777) | 0600);
    archive_entry_set_uid(e, getuid());
    archive_entry_set_gid(e, getgid());
    return 1;
}

/* After everything is written: every symbolic link, resolved on the disk, must lead to something inside root. */
static _Thread_local const unpacker *walk_u; /* nftw passes no user data */
static _Thread_local char walk_bad[PATH_MAX];
static int check_link(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_SL && flag != FTW_SLN) return 0;
    char real[PATH_MAX];
    size_t n = strlen(walk_u->root);
    if (!realpath(path, real) || strncmp(real, walk_u->root, n) != 0 || (real[n] != '/' && real[n] != 0)) {
        snprintf(walk_bad, sizeof walk_bad, "%s", path + n + (path[n] == '/'));
        return 1;
    }
    return 0;
}

static int check_links_on_disk(const unpacker *u)
{
    walk_u = u;
    walk_bad[0] = 0;
    int rc = nftw(u->root, check_link, 32, FTW_PHYS);
    walk_u = NULL;
    if (rc < 0) return yt_error("%s: cannot walk %s: %s", u->archive, u->root, strerror(errno));
    if (rc > 0) return refuse(u, walk_bad, "is a symbolic link that leads outside the archive or to nothing");
    return 0;
}

static int extract(unpacker *u, struct archive *in)
{
    struct archive *out = archive_write_disk_new();
    if (!out) return yt_error("%s: out of memory", u->archive);
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    int rc = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            rc = yt_error("%s: not a readable zip or tar archive (after %" PRIu64 " members): %s", u->archive, u->seen,
                          archive_error_string(in));
            break;
        }
        u->seen++;
        char shown[PATH_MAX];
        int what = check_entry(u, e, shown, sizeof shown);
        if (what < 0) {
            rc = -1;
            break;
        }
        if (what == 0) continue;
        if (archive_write_header(out, e) < ARCHIVE_WARN) {
            rc = yt_error("%s: cannot write member '%s': %s", u->archive, shown, archive_error_string(out));
            break;
        }
        if (archive_entry_filetype(e) == AE_IFREG) {
            if (copy_data(u, in, out, shown) < 0) {
                rc = -1;
                break;
            }
        }
        if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
            rc = yt_error("%s: cannot write member '%s': %s", u->archive, shown, archive_error_string(out));
            break;
        }
    }
    if (archive_write_close(out) < ARCHIVE_WARN && rc == 0)
        rc = yt_error("%s: cannot finish writing into %s: %s", u->archive, u->root, archive_error_string(out));
    archive_write_free(out);
    if (rc == 0) rc = check_links_on_disk(u);
    return rc;
}

static struct archive *reader_new(const char *name)
{
    struct archive *in = archive_read_new();
    if (!in) {
        yt_error("%s: out of memory", name);
        return NULL;
    }
    /* only formats and filters built into libarchive: no external program is ever started */
    archive_read_support_format_zip(in);
    archive_read_support_format_tar(in);
    archive_read_support_filter_gzip(in);
    archive_read_support_filter_xz(in);
    archive_read_support_filter_bzip2(in);
    return in;
}

static int unpack_with(struct archive *in, const char *name, const char *dir, const yt_unpack_limits *lim,
                       yt_unpack_stats *stats)
{
    char root[PATH_MAX];
    if (!realpath(dir, root)) {
        int e = errno;
        archive_read_free(in);
        return yt_error("%s: cannot unpack into %s: %s", name, dir, strerror(e));
    }
    unpacker u = {name,
                  root,
                  lim && lim->max_bytes ? lim->max_bytes : YT_UNPACK_MAX_BYTES,
                  lim && lim->max_entries ? lim->max_entries : YT_UNPACK_MAX_ENTRIES,
                  0,
                  0,
                  0};
    int rc = extract(&u, in);
    archive_read_free(in);
    if (stats) {
        stats->bytes = u.bytes;
        stats->entries = u.entries;
    }
    return rc;
}

int yt_unpack_into(const char *archive, const char *dir, const yt_unpack_limits *lim, yt_unpack_stats *stats)
{
    struct archive *in = reader_new(archive);
    if (!in) return -1;
    if (archive_read_open_filename(in, archive, 1 << 16) != ARCHIVE_OK) {
        yt_error("%s: cannot open as an archive: %s", archive, archive_error_string(in));
        archive_read_free(in);
        return -1;
    }
    return unpack_with(in, archive, dir, lim, stats);
}

int yt_unpack_buffer_into(const void *data, size_t size, const char *name, const char *dir, const yt_unpack_limits *lim,
                          yt_unpack_stats *stats)
{
    struct archive *in = reader_new(name);
    if (!in) return -1;
    if (archive_read_open_memory(in, data, size) != ARCHIVE_OK) {
        yt_error("%s: cannot open as an archive: %s", name, archive_error_string(in));
        archive_read_free(in);
        return -1;
    }
    return unpack_with(in, name, dir, lim, stats);
}

/* ---- removal ----------------------------------------------------------------------------------------------- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DNR) chmod(path, 0700);
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int yt_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : yt_error("cannot remove %s: %s", path, strerror(errno));
    if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return yt_error("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* ---- staged unpacking -------------------------------------------------------------------------------------- */

/* Removes "<name>.tmp.<pid>" folders in parent left by processes that no longer exist. */
static void remove_stale_staging(const char *parent, const char *name)
{
    DIR *d = opendir(parent);
    if (!d) return;
    size_t n = strlen(name);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, name, n) != 0 || strncmp(e->d_name + n, ".tmp.", 5) != 0) continue;
        if (!yt_is_stale_temp(e->d_name)) continue;
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", parent, e->d_name) < sizeof p) yt_remove_tree(p);
    }
    closedir(d);
}

/* The one top-level folder of dir, or "" when dir holds anything else (several entries, a file, a link). */
static int single_top_folder(const char *dir, char *out, size_t cap)
{
    out[0] = 0;
    DIR *d = opendir(dir);
    if (!d) return yt_error("cannot read %s: %s", dir, strerror(errno));
    int count = 0;
    char first[NAME_MAX + 1] = "";
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (count++ == 0) snprintf(first, sizeof first, "%s", e->d_name);
    }
    closedir(d);
    if (count != 1) return 0;
    char p[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, first) >= sizeof p || lstat(p, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) snprintf(out, cap, "%s", first);
    return 0;
}

/* A target that exists must be an empty folder (rename(2) then replaces it). */
static int target_free(const char *archive, const char *target)
{
    struct stat st;
    if (lstat(target, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode) && rmdir(target) == 0) return 0;
    return yt_error("%s: cannot unpack to %s, which exists already and is not an empty folder: move it away, or "
                    "remove it to unpack again",
                    archive, target);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = syncfs(fd) == 0 && fsync(fd) == 0 ? 0 : -1;
    close(fd);
    return rc;
}

int yt_unpack(const char *archive, const char *parent, const char *name, const yt_unpack_limits *lim, char *out,
              size_t cap, yt_unpack_stats *stats)
{
    if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return yt_error("%s: '%s' is not a folder name to unpack to", archive, name);
    char base[PATH_MAX];
    if ((size_t)snprintf(base, sizeof base, "%s/%s", parent, name) >= sizeof base)
        return yt_error("%s: the folder name %s/%s is too long", archive, parent, name);
    remove_stale_staging(parent, name);
    char *staging = yt_temp_path(base);
    if (!staging) return -1;
    int rc = -1;
    char top[NAME_MAX + 1], src[PATH_MAX], target[PATH_MAX];
    if (yt_remove_tree(staging) != 0) goto done;
    if (mkdir(staging, 0755) != 0) {
        yt_error("%s: cannot create %s: %s", archive, staging, strerror(errno));
        goto done;
    }
    if (yt_unpack_into(archive, staging, lim, stats) != 0) goto done;
    if (single_top_folder(staging, top, sizeof top) != 0) goto done;
    if (top[0]) {
        snprintf(src, sizeof src, "%s/%s", staging, top);
        if ((size_t)snprintf(target, sizeof target, "%s/%s", parent, top) >= sizeof target) {
            yt_error("%s: the folder name %s/%s is too long", archive, parent, top);
            goto done;
        }
    } else {
        snprintf(src, sizeof src, "%s", staging);
        snprintf(target, sizeof target, "%s", base);
    }
    if (target_free(archive, target) != 0) goto done;
    /* the members' data on the disk before the folder takes its name */
    if (sync_dir(staging) != 0) {
        yt_error("%s: cannot sync %s: %s", archive, staging, strerror(errno));
        goto done;
    }
    if (rename(src, target) != 0) {
        yt_error("%s: cannot rename %s to %s: %s", archive, src, target, strerror(errno));
        goto done;
    }
    if (sync_dir(parent) != 0 && errno == EIO) {
        yt_error("%s: cannot sync %s after unpacking: %s", archive, parent, strerror(EIO));
        goto done;
    }
    if ((size_t)snprintf(out, cap, "%s", target) >= cap) {
        yt_error("%s: the path %s is too long for the caller", archive, target);
        goto done;
    }
    rc = 0;
done:;
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", yt_last_error());
    yt_remove_tree(staging); /* what is left of it: everything on failure, the emptied folder on success */
    if (rc != 0) yt_error("%s", saved);
    free(staging);
    return rc;
}
