/* Reading members of a zip archive (the container of a PyTorch `.pt`), through libzip.
 *
 * Hostile archives are errors, never crashes or unbounded allocations: the archive is opened with libzip's
 * consistency checks; member names that are absolute, contain a `..` component or a backslash are refused at open;
 * a member is read into exactly the size its directory entry declares, which is bounded (YT_ZIP_MAX_MEMBER, and a
 * compression ratio of at most YT_ZIP_MAX_RATIO, so a zip bomb is refused before inflating), and a member that
 * inflates to more or fewer bytes or whose CRC differs is an error. */
#ifndef YT_ZIPREAD_H
#define YT_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct yt_zip yt_zip;

#define YT_ZIP_MAX_MEMBER ((uint64_t)2 << 30) /* 2 GiB: far above any YOLO checkpoint member */
#define YT_ZIP_MAX_RATIO 1100u                /* deflate cannot exceed ~1032:1 */
#define YT_ZIP_MAX_MEMBERS 1000000

/* NULL + yt_error naming `name` (the path, or a label for a buffer). The buffer must outlive the archive. */
yt_zip *yt_zip_open_file(const char *path);
yt_zip *yt_zip_open_buffer(const void *data, size_t size, const char *name);
int64_t yt_zip_count(const yt_zip *z);
const char *yt_zip_member_name(const yt_zip *z, int64_t index); /* NULL when out of range */
/* Index of the member, -1 when absent (no error set). */
int64_t yt_zip_find(const yt_zip *z, const char *member);
/* Declared (uncompressed) size of a member, -1 + yt_error when absent. */
int64_t yt_zip_member_size(const yt_zip *z, const char *member);
/* The whole member in a new malloc'd buffer (free it); *size its length. NULL + yt_error on any problem. */
void *yt_zip_read(yt_zip *z, const char *member, size_t *size);
const char *yt_zip_name(const yt_zip *z);
void yt_zip_close(yt_zip *z);

#endif
