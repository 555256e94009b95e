/* Where a dataset's files are: string lists, image listing, label paths. */
#include "data/listing.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- string lists ---- */

int yt_strlist_push(yt_strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, sizeof(char *) * nc);
        if (!v) return -1;
        l->v = v;
        l->cap = nc;
    }
    char *c = strdup(s);
    if (!c) return -1;
    l->v[l->n++] = c;
    return 0;
}

void yt_strlist_free(yt_strlist *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int yt_strlist_pushf(yt_strlist *l, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return yt_strlist_push(l, buf);
}

/* ---- listing ---- */

static const char *const IMG_EXTS[] = {"bmp", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", NULL};

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (int i = 0; IMG_EXTS[i]; i++)
        if (strcasecmp(dot + 1, IMG_EXTS[i]) == 0) return 1;
    return 0;
}

static int walk_dir(const char *dir, yt_strlist *out, int depth)
{
    if (depth > 64) return 0;
    DIR *d = opendir(dir);
    if (!d) return yt_error("%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) && rc == 0) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p) {
            rc = yt_error("out of memory listing %s", dir);
            break;
        }
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk_dir(p, out, depth + 1);
            else if (S_ISREG(st.st_mode) && is_image_name(e->d_name) && yt_strlist_push(out, p) < 0)
                rc = yt_error("out of memory listing %s", dir);
        }
        free(p);
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *strip_trailing_slashes(const char *p)
{
    char *s = strdup(p);
    if (!s) return NULL;
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/') s[--n] = 0;
    return s;
}

static int list_txt(const char *path, yt_strlist *out)
{
    FILE *f = fopen(path, "r");
    if (!f) return yt_error("%s: cannot open image list: %s", path, strerror(errno));
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash)
        slash[1] = 0;
    else
        strcpy(parent, "./");
    char line[8192];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s && isspace((unsigned char)*s)) s++;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
        if (!n || !is_image_name(s)) continue;
        char full[12288];
        if (strncmp(s, "./", 2) == 0)
            snprintf(full, sizeof full, "%s%s", parent, s + 2);
        else
            snprintf(full, sizeof full, "%s", s);
        if (yt_strlist_push(out, full) < 0) {
            rc = yt_error("out of memory");
            break;
        }
    }
    fclose(f);
    return rc;
}

int yt_data_list_images(const char *const *paths, int npaths, yt_strlist *out)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < npaths; k++) {
        char *p = strip_trailing_slashes(paths[k]);
        if (!p) return yt_error("out of memory");
        struct stat st;
        int rc = 0;
        if (stat(p, &st) != 0)
            rc = yt_error("%s does not exist", p);
        else if (S_ISDIR(st.st_mode))
            rc = walk_dir(p, out, 0);
        else if (strlen(p) > 4 && strcasecmp(p + strlen(p) - 4, ".txt") == 0)
            rc = list_txt(p, out);
        else if (is_image_name(p))
            rc = yt_strlist_push(out, p) < 0 ? yt_error("out of memory") : 0;
        else
            rc = yt_error("%s is not a folder, an image list (.txt) or an image", p);
        free(p);
        if (rc < 0) {
            yt_strlist_free(out);
            return -1;
        }
    }
    if (out->n == 0) {
        yt_strlist_free(out);
        return yt_error("No images found in %s%s", npaths ? paths[0] : "(no paths)", npaths > 1 ? " ..." : "");
    }
    qsort(out->v, out->n, sizeof(char *), cmp_str);
    return 0;
}

char *yt_data_label_path(const char *im)
{
    const char *key = "/images/";
    const char *last = NULL;
    for (const char *p = strstr(im, key); p; p = strstr(p + 1, key)) last = p;
    size_t n = strlen(im);
    char *out = malloc(n + 16);
    if (!out) return NULL;
    if (last) {
        size_t pre = (size_t)(last - im);
        memcpy(out, im, pre);
        strcpy(out + pre, "/labels/");
        strcat(out, last + strlen(key));
    } else if (strncmp(im, "images/", 7) == 0) {
        strcpy(out, "labels/");
        strcat(out, im + 7);
    } else {
        strcpy(out, im);
    }
    char *slash = strrchr(out, '/');
    char *dot = strrchr(out, '.');
    if (dot && (!slash || dot > slash)) *dot = 0;
    strcat(out, ".txt");
    return out;
}
