#include "io/durable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/error.h"

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The directory holding path ("." when it has no slash). */
static void parent_dir(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

/* The YT_CHAOS_KILL hook (see durable.h). */
static void chaos_point(const char *path)
{
    static int seen;
    const char *spec = getenv("YT_CHAOS_KILL");
    if (!spec || !*spec) return;
    char text[256];
    int nth = 1;
    const char *colon = strrchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len >= sizeof text) return;
    memcpy(text, spec, len);
    text[len] = 0;
    if (colon) nth = atoi(colon + 1);
    if (strstr(path, text) && ++seen == nth) raise(SIGKILL);
}

char *yt_temp_path(const char *path)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) {
        yt_error("out of memory");
        return NULL;
    }
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    return tmp;
}

int yt_durable_rename(const char *tmp, const char *path)
{
    if (fsync_path(tmp, O_RDONLY) != 0) {
        int e = errno;
        remove(tmp);
        return yt_error("cannot sync %s: %s", tmp, strerror(e));
    }
    chaos_point(path);
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return yt_error("cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    char dir[PATH_MAX];
    parent_dir(path, dir, sizeof dir);
    /* some file systems cannot sync a directory (EINVAL): the rename has happened, so only a real I/O error counts */
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0 && errno == EIO)
        return yt_error("cannot sync directory %s after writing %s: %s", dir, path, strerror(EIO));
    return 0;
}

/* The pid of a "<name>.<tag><pid>" file name (the last <tag> in it), or 0 when the name is not of that form. */
static long writer_pid(const char *name, const char *tag)
{
    const char *mark = NULL;
    size_t tl = strlen(tag);
    for (const char *p = strstr(name, tag); p; p = strstr(p + 1, tag)) mark = p;
    if (!mark || mark == name) return 0;
    char *end;
    errno = 0;
    long pid = strtol(mark + tl, &end, 10);
    if (errno || *end || pid <= 0 || end == mark + tl || pid > INT_MAX) return 0;
    return pid;
}

int yt_is_stale_temp(const char *name)
{
    long pid = writer_pid(name, ".tmp.");
    if (pid == 0) pid = writer_pid(name, ".old.");
    if (pid == 0 || pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH; /* alive, or not ours to judge: keep */
}

int yt_remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return yt_error("cannot read directory %s: %s", dir, strerror(errno));
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!yt_is_stale_temp(e->d_name)) continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}
