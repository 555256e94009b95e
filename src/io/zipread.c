/* Zip members through libzip, with the limits of zipread.h. */
#include "io/zipread.h"

#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "core/error.h"

struct yt_zip {
    zip_t *archive;
    char *name;
};

static int name_is_safe(const char *member)
{
    if (member[0] == '/' || member[0] == '\0' || strchr(member, '\\')) return 0;
    for (const char *p = member; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!slash) break;
        p = slash + 1;
    }
    return 1;
}

static int check_members(yt_zip *z)
{
    zip_int64_t n = zip_get_num_entries(z->archive, 0);
    if (n < 0 || n > YT_ZIP_MAX_MEMBERS)
        return yt_error("%s: %lld zip members (limit %d)", z->name, (long long)n, YT_ZIP_MAX_MEMBERS);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *member = zip_get_name(z->archive, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!member) return yt_error("%s: zip member %lld has no name", z->name, (long long)i);
        if (!name_is_safe(member))
            return yt_error("%s: zip member name '%s' escapes the archive (absolute, '..' or '\\')", z->name, member);
    }
    return 0;
}

static yt_zip *finish_open(zip_t *archive, const char *name)
{
    yt_zip *z = calloc(1, sizeof *z);
    char *copy = strdup(name);
    if (!z || !copy) {
        free(z);
        free(copy);
        zip_discard(archive);
        yt_error("%s: out of memory", name);
        return NULL;
    }
    z->archive = archive;
    z->name = copy;
    if (check_members(z) < 0) {
        yt_zip_close(z);
        return NULL;
    }
    return z;
}

yt_zip *yt_zip_open_file(const char *path)
{
    int code = 0;
    zip_t *archive = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!archive) {
        zip_error_t err;
        zip_error_init_with_code(&err, code);
        yt_error("%s: not a readable zip archive: %s", path, zip_error_strerror(&err));
        zip_error_fini(&err);
        return NULL;
    }
    return finish_open(archive, path);
}

yt_zip *yt_zip_open_buffer(const void *data, size_t size, const char *name)
{
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(data, size, 0, &err);
    zip_t *archive = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err) : NULL;
    if (!archive) {
        yt_error("%s: not a readable zip archive: %s", name, zip_error_strerror(&err));
        if (src) zip_source_free(src);
        zip_error_fini(&err);
        return NULL;
    }
    zip_error_fini(&err);
    return finish_open(archive, name);
}

int64_t yt_zip_count(const yt_zip *z) { return zip_get_num_entries(z->archive, 0); }

const char *yt_zip_member_name(const yt_zip *z, int64_t index)
{
    if (index < 0 || index >= yt_zip_count(z)) return NULL;
    return zip_get_name(z->archive, (zip_uint64_t)index, ZIP_FL_ENC_RAW);
}

int64_t yt_zip_find(const yt_zip *z, const char *member) { return zip_name_locate(z->archive, member, ZIP_FL_ENC_RAW); }

const char *yt_zip_name(const yt_zip *z) { return z->name; }

/* Stats a member and applies the size limits; fills *st. */
static int stat_member(const yt_zip *z, const char *member, zip_stat_t *st)
{
    int64_t index = yt_zip_find(z, member);
    if (index < 0) return yt_error("%s: no zip member '%s'", z->name, member);
    zip_stat_init(st);
    if (zip_stat_index(z->archive, (zip_uint64_t)index, 0, st) < 0)
        return yt_error("%s: zip member '%s': %s", z->name, member, zip_strerror(z->archive));
    if (!(st->valid & ZIP_STAT_SIZE) || !(st->valid & ZIP_STAT_COMP_SIZE))
        return yt_error("%s: zip member '%s' has no size", z->name, member);
    if (st->size > YT_ZIP_MAX_MEMBER)
        return yt_error("%s: zip member '%s' declares %llu bytes (limit %llu)", z->name, member,
                        (unsigned long long)st->size, (unsigned long long)YT_ZIP_MAX_MEMBER);
    if (st->size > (uint64_t)YT_ZIP_MAX_RATIO * st->comp_size + 4096)
        return yt_error("%s: zip member '%s' inflates %llu bytes to %llu (a zip bomb?)", z->name, member,
                        (unsigned long long)st->comp_size, (unsigned long long)st->size);
    return 0;
}

int64_t yt_zip_member_size(const yt_zip *z, const char *member)
{
    zip_stat_t st;
    if (stat_member(z, member, &st) < 0) return -1;
    return (int64_t)st.size;
}

void *yt_zip_read(yt_zip *z, const char *member, size_t *size)
{
    zip_stat_t st;
    if (stat_member(z, member, &st) < 0) return NULL;
    zip_file_t *f = zip_fopen_index(z->archive, (zip_uint64_t)st.index, 0);
    if (!f) {
        yt_error("%s: cannot open zip member '%s': %s", z->name, member, zip_strerror(z->archive));
        return NULL;
    }
    unsigned char *buf = malloc(st.size ? st.size : 1);
    if (!buf) {
        zip_fclose(f);
        yt_error("%s: out of memory for zip member '%s' (%llu bytes)", z->name, member, (unsigned long long)st.size);
        return NULL;
    }
    uint64_t got = 0;
    while (got < st.size) {
        zip_int64_t r = zip_fread(f, buf + got, st.size - got);
        if (r <= 0) break;
        got += (uint64_t)r;
    }
    /* one more read: must be the end, which is where libzip checks the CRC */
    unsigned char extra;
    zip_int64_t tail = got == st.size ? zip_fread(f, &extra, 1) : -1;
    if (got != st.size || tail != 0) {
        const char *why = zip_file_strerror(f);
        if (got != st.size)
            yt_error("%s: zip member '%s' is truncated or corrupt (%llu of %llu bytes: %s)", z->name, member,
                     (unsigned long long)got, (unsigned long long)st.size, why);
        else if (tail > 0)
            yt_error("%s: zip member '%s' inflates to more than its declared %llu bytes", z->name, member,
                     (unsigned long long)st.size);
        else
            yt_error("%s: zip member '%s' is corrupt: %s", z->name, member, why);
        zip_fclose(f);
        free(buf);
        return NULL;
    }
    zip_fclose(f);
    *size = (size_t)st.size;
    return buf;
}

void yt_zip_close(yt_zip *z)
{
    if (!z) return;
    if (z->archive) zip_discard(z->archive);
    free(z->name);
    free(z);
}
