/* Unpacking of received archives (zip, tar, tar.gz, tar.xz, tar.bz2) with libarchive, refusing what could write
 * outside the target or fill the disk.
 *
 * Every member is checked before anything of it is written: an absolute name, a ".." component, a device, FIFO or
 * socket, a hard link to a name of that kind, or a symbolic link whose target is absolute or leads out of the
 * folder is refused, and so is the archive with it. Nothing is written through a symbolic link (libarchive's
 * SECURE_SYMLINKS), and once all is written every link is resolved on the disk and must stay inside. The total of
 * the members' sizes and their count are bounded (a zip bomb stops at the bound, not at a full disk). macOS
 * metadata (__MACOSX/, .DS_Store) is skipped, as Ultralytics does. Permissions are the members' modes under the
 * umask, never set-id; owners and times of the archive are not applied. */
#ifndef YT_IO_UNPACK_H
#define YT_IO_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#define YT_UNPACK_MAX_BYTES (256ULL << 30) /* 256 GiB of members in all */
#define YT_UNPACK_MAX_ENTRIES 4000000ULL   /* members, directories included */

typedef struct {
    uint64_t max_bytes;   /* 0: YT_UNPACK_MAX_BYTES */
    uint64_t max_entries; /* 0: YT_UNPACK_MAX_ENTRIES */
} yt_unpack_limits;

/* What an unpacking wrote. */
typedef struct {
    uint64_t bytes;   /* of the members' contents */
    uint64_t entries; /* members written (skipped metadata not counted) */
} yt_unpack_stats;

/* Extracts every member of archive into dir, an existing folder (normally new and empty). On a refusal or a read
 * error returns -1 with yt_error naming the archive and the member; what was written so far stays in dir for the
 * caller to remove (yt_unpack does). stats may be NULL. */
int yt_unpack_into(const char *archive, const char *dir, const yt_unpack_limits *lim, yt_unpack_stats *stats);

/* The same from an archive held in memory; name is used in messages. */
int yt_unpack_buffer_into(const void *data, size_t size, const char *name, const char *dir, const yt_unpack_limits *lim,
                          yt_unpack_stats *stats);

/* Unpacks archive into the folder parent, as Ultralytics' unzip_file lays it out: an archive whose members all lie
 * in one top-level folder gives parent/<that folder>; any other gives parent/<name>. Everything is extracted into a
 * temporary folder "parent/<name>.tmp.<pid>" first, synced, and renamed into place only when the whole archive
 * checked out, so the final folder is never half there; on failure the temporary folder is removed and nothing
 * else was touched. A final folder that exists already must be empty (it is replaced), else -1. Temporary folders
 * of <name> left by processes that no longer exist are removed first. The final path goes to out (cap bytes). */
int yt_unpack(const char *archive, const char *parent, const char *name, const yt_unpack_limits *lim, char *out,
              size_t cap, yt_unpack_stats *stats);

/* Removes path and, for a folder, everything under it, never following symbolic links. 0, or -1 + yt_error. A
 * missing path is 0. */
int yt_remove_tree(const char *path);

#endif
