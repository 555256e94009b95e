/* Detection datasets: listing, label verification, label cache, rect shapes, image cache, samples. */
#include "data/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/durable.h"

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

static int strlist_pushf(yt_strlist *l, const char *fmt, ...) YT_PRINTF(2, 3);
static int strlist_pushf(yt_strlist *l, const char *fmt, ...)
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
            if (S_ISDIR(st.st_mode)) rc = walk_dir(p, out, depth + 1);
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
    if (slash) slash[1] = 0;
    else strcpy(parent, "./");
    char line[8192];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s && isspace((unsigned char)*s)) s++;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
        if (!n || !is_image_name(s)) continue;
        char full[12288];
        if (strncmp(s, "./", 2) == 0) snprintf(full, sizeof full, "%s%s", parent, s + 2);
        else snprintf(full, sizeof full, "%s", s);
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
        if (stat(p, &st) != 0) rc = yt_error("%s does not exist", p);
        else if (S_ISDIR(st.st_mode)) rc = walk_dir(p, out, 0);
        else if (strlen(p) > 4 && strcasecmp(p + strlen(p) - 4, ".txt") == 0) rc = list_txt(p, out);
        else if (is_image_name(p)) rc = yt_strlist_push(out, p) < 0 ? yt_error("out of memory") : 0;
        else rc = yt_error("%s is not a folder, an image list (.txt) or an image", p);
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

/* ---- labels ---- */

void yt_label_entry_free(yt_label_entry *e)
{
    free(e->im_file);
    free(e->cls);
    free(e->xywhn);
    free(e->poly_n);
    free(e->poly);
    free(e->segn);
    memset(e, 0, sizeof *e);
}

typedef struct {
    float *v;
    size_t n, cap;
} fvec;

static int fvec_push(fvec *f, float x)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 64;
        float *v = realloc(f->v, sizeof(float) * nc);
        if (!v) return -1;
        f->v = v;
        f->cap = nc;
    }
    f->v[f->n++] = x;
    return 0;
}

int yt_data_parse_labels(const char *text, size_t len, int nc, yt_label_entry *e, int *ndup)
{
    *ndup = 0;
    fvec vals = {0};
    int *row_len = NULL, nrows = 0, rcap = 0, any_poly = 0;
    size_t pos = 0;
    int lineno = 0;
    char tok[256];
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        lineno++;
        int ntok = 0;
        size_t p = pos;
        while (p < end) {
            while (p < end && (text[p] == ' ' || text[p] == '\t' || text[p] == '\r' || text[p] == '\v' || text[p] == '\f')) p++;
            if (p >= end) break;
            size_t q = p;
            while (q < end && !(text[q] == ' ' || text[q] == '\t' || text[q] == '\r' || text[q] == '\v' || text[q] == '\f')) q++;
            size_t tl = q - p;
            if (tl >= sizeof tok) tl = sizeof tok - 1;
            memcpy(tok, text + p, tl);
            tok[tl] = 0;
            char *ep;
            double v = strtod(tok, &ep);
            if (ep == tok || *ep) {
                yt_error("invalid number '%s' on line %d", tok, lineno);
                goto fail;
            }
            if (!isfinite(v)) {
                yt_error("non-finite value '%s' on line %d", tok, lineno);
                goto fail;
            }
            if (fvec_push(&vals, (float)v) < 0) goto oom;
            ntok++;
            p = q;
        }
        if (ntok > 0) {
            if (nrows == rcap) {
                rcap = rcap ? rcap * 2 : 16;
                int *r = realloc(row_len, sizeof(int) * rcap);
                if (!r) goto oom;
                row_len = r;
            }
            row_len[nrows++] = ntok;
            if (ntok > 6) any_poly = 1;
        }
        pos = end + 1;
    }
    e->n = 0;
    if (nrows == 0) {
        free(vals.v);
        free(row_len);
        return 0;
    }
    e->cls = malloc(sizeof(float) * nrows);
    e->xywhn = malloc(sizeof(float) * 4 * nrows);
    if (any_poly) {
        e->poly_n = calloc((size_t)nrows, sizeof(int));
        e->poly = malloc(sizeof(float) * (vals.n + 1));
    }
    if (!e->cls || !e->xywhn || (any_poly && (!e->poly_n || !e->poly))) goto oom;
    size_t off = 0, poff = 0;
    for (int r = 0; r < nrows; r++) {
        const float *v = vals.v + off;
        int nt = row_len[r];
        off += nt;
        float c = v[0];
        if (c < 0) {
            yt_error("negative label values (class %g on label %d)", c, r + 1);
            goto fail;
        }
        if (c != floorf(c)) {
            yt_error("class %g on label %d is not an integer", c, r + 1);
            goto fail;
        }
        if (c >= nc) {
            yt_error("Label class %.0f exceeds dataset class count %d. Possible class labels are 0-%d",
                         (double)c, nc, nc - 1);
            goto fail;
        }
        float box[4];
        if (nt == 5) {
            memcpy(box, v + 1, sizeof box);
        } else if (any_poly && nt > 6) {
            if ((nt - 1) % 2) {
                yt_error("polygon with an odd number of coordinates (%d) on label %d", nt - 1, r + 1);
                goto fail;
            }
            float x1 = 1e30f, y1 = 1e30f, x2 = -1e30f, y2 = -1e30f;
            for (int k = 1; k < nt; k += 2) {
                if (v[k] < 0 || v[k + 1] < 0) {
                    yt_error("negative label values (polygon point on label %d)", r + 1);
                    goto fail;
                }
                if (v[k] > 1 || v[k + 1] > 1) {
                    yt_error("non-normalized or out of bounds coordinates (polygon point on label %d)",
                                 r + 1);
                    goto fail;
                }
                x1 = fminf(x1, v[k]), x2 = fmaxf(x2, v[k]), y1 = fminf(y1, v[k + 1]), y2 = fmaxf(y2, v[k + 1]);
                e->poly[poff++] = v[k];
                e->poly[poff++] = v[k + 1];
            }
            e->poly_n[r] = (nt - 1) / 2;
            box[0] = (x1 + x2) / 2, box[1] = (y1 + y2) / 2, box[2] = x2 - x1, box[3] = y2 - y1;
        } else {
            yt_error("labels require 5 columns, %d columns detected (label %d)", nt, r + 1);
            goto fail;
        }
        for (int k = 0; k < 4; k++) {
            if (box[k] < 0) {
                yt_error("negative label values (label %d: %g)", r + 1, box[k]);
                goto fail;
            }
            if (box[k] > 1) {
                yt_error("non-normalized or out of bounds coordinates (label %d: %g)", r + 1, box[k]);
                goto fail;
            }
        }
        e->cls[r] = c;
        memcpy(e->xywhn + 4 * r, box, sizeof box);
    }
    e->n = nrows;
    /* duplicates (same class and box), first occurrence kept */
    {
        unsigned char *drop = calloc((size_t)nrows, 1);
        if (!drop) goto oom;
        for (int i = 0; i < nrows; i++)
            for (int j = 0; j < i && !drop[i]; j++)
                if (!drop[j] && e->cls[i] == e->cls[j] && memcmp(e->xywhn + 4 * i, e->xywhn + 4 * j, sizeof(float) * 4) == 0)
                    drop[i] = 1;
        int m = 0;
        size_t pin = 0, pout = 0;
        for (int i = 0; i < nrows; i++) {
            int np = any_poly ? e->poly_n[i] : 0;
            if (!drop[i]) {
                e->cls[m] = e->cls[i];
                memmove(e->xywhn + 4 * m, e->xywhn + 4 * i, sizeof(float) * 4);
                if (any_poly) {
                    memmove(e->poly + pout, e->poly + pin, sizeof(float) * 2 * np);
                    e->poly_n[m] = np;
                    pout += 2 * (size_t)np;
                }
                m++;
            } else {
                (*ndup)++;
            }
            pin += 2 * (size_t)np;
        }
        e->n = m;
        free(drop);
    }
    free(vals.v);
    free(row_len);
    return 0;
oom:
    yt_error("out of memory parsing labels");
fail:
    free(vals.v);
    free(row_len);
    free(e->cls);
    free(e->xywhn);
    free(e->poly_n);
    free(e->poly);
    e->cls = e->xywhn = e->poly = NULL;
    e->poly_n = NULL;
    e->n = 0;
    return -1;
}

/* Polygons -> YT_SEG_PTS points each (closed, linear interpolation along the vertex index), when every
 * instance has a polygon. */
static int build_segn(yt_label_entry *e)
{
    free(e->segn);
    e->segn = NULL;
    if (!e->poly_n || e->n == 0) return 0;
    for (int i = 0; i < e->n; i++)
        if (e->poly_n[i] < 1) return 0;
    e->segn = malloc(sizeof(float) * 2 * YT_SEG_PTS * (size_t)(unsigned)e->n);
    if (!e->segn) return -1;
    size_t off = 0;
    for (int i = 0; i < e->n; i++) {
        int m = e->poly_n[i];
        const float *p = e->poly + off;
        float *o = e->segn + (size_t)i * 2 * YT_SEG_PTS;
        for (int k = 0; k < YT_SEG_PTS; k++) {
            double t = (double)m * k / (YT_SEG_PTS - 1);
            int a = (int)floor(t);
            if (a >= m) a = m, t = m;
            double f = t - a;
            int ia = a % m, ib = (a + 1) % m;
            o[2 * k] = (float)(p[2 * ia] + (p[2 * ib] - p[2 * ia]) * f);
            o[2 * k + 1] = (float)(p[2 * ia + 1] + (p[2 * ib + 1] - p[2 * ia + 1]) * f);
        }
        off += 2 * (size_t)m;
    }
    return 0;
}

/* ---- verification of one image + label ---- */

typedef struct {
    int status;   /* 0 ok, 1 corrupt */
    int missing, empty, found;
    char *msg;    /* warning (may be set for ok images too) */
    yt_label_entry e;
} scan_result;

/* The image of a label pair: decoded with its header facts (the reason in yt_error, without the path). */
static int decode_file(const char *path, yt_image *out, yt_image_info *info)
{
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (yt_read_file(path, &buf, &n) < 0) return -1;
    int rc = yt_image_decode_mem(buf, n, out, info);
    free(buf);
    return rc;
}

/* Runs on the scan's OpenMP threads: a failure's reason is read from this thread's yt_error right away. */
static void verify_one(const char *im_file, const char *lb_file, int nc, const char *prefix, scan_result *r)
{
    char err[1024], warn[1024] = "";
    memset(r, 0, sizeof *r);
    yt_image im;
    yt_image_info info;
    if (decode_file(im_file, &im, &info) < 0) goto failed;
    int h = im.h, w = im.w;
    yt_image_free(&im);
    if (h < 10 || w < 10) {
        snprintf(err, sizeof err, "image size %dx%d <10 pixels", w, h);
        goto corrupt;
    }
    if (info.format == YT_IMFMT_JPEG && !info.jpeg_has_eoi)
        snprintf(warn, sizeof warn, "%sWARNING ⚠️ %s: corrupt JPEG (no end-of-image marker), decoded anyway", prefix,
                 im_file);
    r->e.h = h;
    r->e.w = w;
    uint8_t *buf = NULL;
    size_t n = 0;
    struct stat st;
    if (stat(lb_file, &st) == 0) {
        r->found = 1;
        if (yt_read_file(lb_file, &buf, &n) < 0) goto failed;
        int ndup = 0;
        int rc = yt_data_parse_labels((const char *)buf, n, nc, &r->e, &ndup);
        free(buf);
        if (rc < 0) goto failed;
        if (r->e.n == 0) r->empty = 1;
        if (ndup)
            snprintf(warn + strlen(warn), sizeof warn - strlen(warn), "%s%sWARNING ⚠️ %s: %d duplicate labels removed",
                     warn[0] ? "\n" : "", prefix, im_file, ndup);
    } else {
        r->missing = 1;
    }
    r->e.im_file = strdup(im_file);
    if (warn[0]) r->msg = strdup(warn);
    return;
failed:
    snprintf(err, sizeof err, "%s", yt_last_error());
corrupt:
    yt_label_entry_free(&r->e);
    r->status = 1;
    char m[2048];
    snprintf(m, sizeof m, "%sWARNING ⚠️ %s: ignoring corrupt image/label: %s", prefix, im_file, err);
    r->msg = strdup(m);
}

/* ---- label cache ---- */

#define CACHE_MAGIC "YTLBLC02"

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t files_hash(const char *const *ims, char **lbs, int n, int nc)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, CACHE_MAGIC, 8);
    h = fnv(h, &nc, sizeof nc);
    for (int i = 0; i < n; i++) {
        const char *ps[2] = {ims[i], lbs[i]};
        for (int k = 0; k < 2; k++) {
            h = fnv(h, ps[k], strlen(ps[k]) + 1);
            struct stat st;
            int64_t v[3] = {-1, -1, -1};
            if (stat(ps[k], &st) == 0) {
                v[0] = (int64_t)st.st_size;
                v[1] = (int64_t)st.st_mtim.tv_sec;
                v[2] = (int64_t)st.st_mtim.tv_nsec;
            }
            h = fnv(h, v, sizeof v);
        }
    }
    return h;
}

static int wr(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }
static int wr_i32(FILE *f, int32_t v) { return wr(f, &v, 4); }
static int wr_str(FILE *f, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    return wr(f, &n, 4) || wr(f, s, n);
}

static int cache_write(const char *path, uint64_t hash, const yt_scan_stats *st, const yt_strlist *msgs,
                       const yt_label_entry *es, int ne)
{
    /* A folder without any write permission bit counts as read-only even for root (shared datasets). */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    struct stat dst;
    if (stat(dir, &dst) != 0 || !(dst.st_mode & 0222) || access(dir, W_OK) != 0) return -1;
    char *tmp = yt_temp_path(path);
    if (!tmp) return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(tmp);
        return -1;
    }
    int bad = wr(f, CACHE_MAGIC, 8) || wr(f, &hash, 8) || wr_i32(f, st->nf) || wr_i32(f, st->nm) ||
              wr_i32(f, st->ne) || wr_i32(f, st->nc) || wr_i32(f, msgs->n);
    for (int i = 0; i < msgs->n && !bad; i++) bad = wr_str(f, msgs->v[i]);
    bad = bad || wr_i32(f, ne);
    for (int i = 0; i < ne && !bad; i++) {
        const yt_label_entry *e = es + i;
        int has_poly = e->poly_n != NULL;
        bad = wr_str(f, e->im_file) || wr_i32(f, e->h) || wr_i32(f, e->w) || wr_i32(f, e->n) || wr_i32(f, has_poly);
        if (!bad && e->n) bad = wr(f, e->cls, sizeof(float) * e->n) || wr(f, e->xywhn, sizeof(float) * 4 * e->n);
        if (!bad && has_poly && e->n) {
            size_t tot = 0;
            for (int k = 0; k < e->n; k++) tot += (size_t)e->poly_n[k];
            bad = wr(f, e->poly_n, sizeof(int) * e->n) || wr(f, e->poly, sizeof(float) * 2 * tot);
        }
    }
    if (fclose(f) != 0) bad = 1;
    if (bad) {
        unlink(tmp);
        free(tmp);
        return -1;
    }
    int rc = yt_durable_rename(tmp, path); /* a cache that cannot be saved is only a slower next start */
    free(tmp);
    return rc;
}

typedef struct {
    const uint8_t *p, *end;
} rd_t;

static int rd(rd_t *r, void *dst, size_t n)
{
    if ((size_t)(r->end - r->p) < n) return -1;
    memcpy(dst, r->p, n);
    r->p += n;
    return 0;
}

static int rd_i32(rd_t *r, int32_t *v) { return rd(r, v, 4); }

/* At most how many records of min_size bytes each the rest of the cache can hold: every count read from the
 * file is bounded by it before anything is allocated. */
static size_t rd_fits(const rd_t *r, size_t min_size) { return (size_t)(r->end - r->p) / min_size; }

/* A cached entry passes the label parser's checks again (a cache file may come from anywhere). */
static int cached_labels_valid(const yt_label_entry *e, int max_cls)
{
    if (e->h <= 0 || e->w <= 0) return 0;
    for (int k = 0; k < e->n; k++) {
        float c = e->cls[k];
        if (!(c >= 0 && c < (float)max_cls && c == floorf(c))) return 0;
        for (int j = 0; j < 4; j++) {
            float v = e->xywhn[4 * k + j];
            if (!(v >= 0 && v <= 1)) return 0;
        }
    }
    return 1;
}

static char *rd_str(rd_t *r)
{
    uint32_t n;
    if (rd(r, &n, 4) || (size_t)(r->end - r->p) < n) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n;
    return s;
}

int yt_label_cache_parse(const uint8_t *buf, size_t n, uint64_t hash, int nfiles, int max_cls, yt_scan_stats *st,
                         yt_strlist *msgs, yt_label_entry **out)
{
    rd_t r = {buf, buf + n};
    char magic[8];
    uint64_t h;
    int32_t nf, nm, ne, nc, nmsg, nent;
    yt_label_entry *es = NULL;
    int got = 0;
    if (rd(&r, magic, 8) || memcmp(magic, CACHE_MAGIC, 8) || rd(&r, &h, 8) || h != hash || rd_i32(&r, &nf) ||
        rd_i32(&r, &nm) || rd_i32(&r, &ne) || rd_i32(&r, &nc) || rd_i32(&r, &nmsg) || nmsg < 0 ||
        (size_t)nmsg > rd_fits(&r, 4))
        goto bad;
    for (int i = 0; i < nmsg; i++) {
        char *s = rd_str(&r);
        if (!s) goto bad;
        yt_strlist_push(msgs, s);
        free(s);
    }
    /* an entry is at least a name length and four int32s */
    if (rd_i32(&r, &nent) || nent < 0 || nent > nfiles || (size_t)nent > rd_fits(&r, 20)) goto bad;
    es = calloc((size_t)nent + 1, sizeof *es);
    if (!es) goto bad;
    for (got = 0; got < nent; got++) {
        yt_label_entry *e = es + got;
        int32_t hh, ww, nn, hp;
        e->im_file = rd_str(&r);
        /* a label is a class and a box: 20 bytes */
        if (!e->im_file || rd_i32(&r, &hh) || rd_i32(&r, &ww) || rd_i32(&r, &nn) || rd_i32(&r, &hp) || nn < 0 ||
            (size_t)nn > rd_fits(&r, 20) || (hp != 0 && hp != 1))
            goto bad_entries;
        e->h = hh, e->w = ww, e->n = nn;
        if (nn) {
            e->cls = malloc(sizeof(float) * nn);
            e->xywhn = malloc(sizeof(float) * 4 * nn);
            if (!e->cls || !e->xywhn || rd(&r, e->cls, sizeof(float) * nn) || rd(&r, e->xywhn, sizeof(float) * 4 * nn))
                goto bad_entries;
            if (hp) {
                e->poly_n = malloc(sizeof(int) * nn);
                if (!e->poly_n || rd(&r, e->poly_n, sizeof(int) * nn)) goto bad_entries;
                size_t tot = 0;
                size_t fits = rd_fits(&r, 8); /* a polygon point is two floats */
                for (int k = 0; k < nn; k++) {
                    if (e->poly_n[k] < 0 || (size_t)e->poly_n[k] > fits - tot) goto bad_entries;
                    tot += (size_t)e->poly_n[k];
                }
                e->poly = malloc(sizeof(float) * 2 * tot + 1);
                if (!e->poly || rd(&r, e->poly, sizeof(float) * 2 * tot)) goto bad_entries;
            }
        }
        if (!cached_labels_valid(e, max_cls)) goto bad_entries;
    }
    if (r.p != r.end) goto bad_entries; /* trailing bytes: not a cache this program wrote */
    st->nf = nf, st->nm = nm, st->ne = ne, st->nc = nc;
    *out = es;
    return nent;
bad_entries:
    for (int i = 0; i <= got && i < nent; i++) yt_label_entry_free(es + i);
bad:
    free(es);
    yt_strlist_free(msgs);
    return -1;
}

/* -1 when the cache is absent, stale or corrupt: the caller rescans. */
static int cache_read(const char *path, uint64_t hash, int nfiles, int max_cls, yt_scan_stats *st, yt_strlist *msgs,
                      yt_label_entry **out)
{
    uint8_t *buf;
    size_t n;
    if (yt_read_file(path, &buf, &n) < 0) return -1;
    int nent = yt_label_cache_parse(buf, n, hash, nfiles, max_cls, st, msgs, out);
    free(buf);
    return nent;
}

/* ---- scanning ---- */

void yt_label_set_free(yt_label_set *s)
{
    for (int i = 0; i < s->n; i++) yt_label_entry_free(s->entries + i);
    free(s->entries);
    yt_strlist_free(&s->msgs);
    memset(s, 0, sizeof *s);
}

/* "<label folder>.yt.cache" of the first label file */
static void cache_path_of(const char *lb0, char *out, size_t n)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", lb0);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    snprintf(out, n, "%s.yt.cache", dir);
}

/* Verifies every file in parallel; the valid ones become out->entries. */
static int scan_files(const char *const *files, char **lbs, int nfiles, const yt_scan_cfg *cfg, int max_cls,
                      yt_label_set *out)
{
    const char *prefix = cfg->prefix ? cfg->prefix : "";
    scan_result *res = calloc((size_t)nfiles, sizeof *res);
    if (!res) return yt_error("out of memory scanning %d files", nfiles);
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < nfiles; i++) verify_one(files[i], lbs[i], max_cls, prefix, res + i);
    out->entries = calloc((size_t)nfiles + 1, sizeof *out->entries);
    int rc = out->entries ? 0 : yt_error("out of memory scanning %d files", nfiles);
    for (int i = 0; i < nfiles; i++) {
        scan_result *r = res + i;
        out->stats.nf += r->found;
        out->stats.nm += r->missing;
        out->stats.ne += r->empty;
        out->stats.nc += r->status;
        if (r->msg) {
            yt_strlist_push(&out->msgs, r->msg);
            free(r->msg);
        }
        if (r->status == 0 && rc == 0) out->entries[out->n++] = r->e;
        else if (r->status == 0) yt_label_entry_free(&r->e);
    }
    free(res);
    return rc;
}

int yt_data_scan_labels(const char *const *files, int nfiles, const yt_scan_cfg *cfg, yt_label_set *out)
{
    memset(out, 0, sizeof *out);
    if (nfiles <= 0) return yt_error("dataset: no image files");
    if (cfg->nc < 1) return yt_error("dataset: invalid nc %d", cfg->nc);
    const char *prefix = cfg->prefix ? cfg->prefix : "";
    char **lbs = calloc((size_t)nfiles, sizeof(char *));
    if (!lbs) return yt_error("out of memory");
    int rc = 0;
    for (int i = 0; i < nfiles && rc == 0; i++)
        if (!(lbs[i] = yt_data_label_path(files[i]))) rc = yt_error("out of memory");
    if (rc == 0) {
        yt_scan_stats *st = &out->stats;
        cache_path_of(lbs[0], st->cache_path, sizeof st->cache_path);
        uint64_t hash = files_hash(files, lbs, nfiles, cfg->nc);
        /* single_cls: every labelled class becomes class 0, so any class id is acceptable here */
        int max_cls = cfg->single_cls ? INT_MAX : cfg->nc;
        int nent = cfg->use_label_cache
                       ? cache_read(st->cache_path, hash, nfiles, max_cls, st, &out->msgs, &out->entries)
                       : -1;
        if (nent >= 0) {
            st->from_cache = 1;
            out->n = nent;
        } else {
            rc = scan_files(files, lbs, nfiles, cfg, max_cls, out);
            if (rc == 0 && cfg->use_label_cache &&
                cache_write(st->cache_path, hash, st, &out->msgs, out->entries, out->n) < 0) {
                char dir[4096];
                snprintf(dir, sizeof dir, "%s", st->cache_path);
                char *slash = strrchr(dir, '/');
                if (slash) *slash = 0;
                strlist_pushf(&out->msgs, "%sWARNING ⚠️ Cache directory %s is not writeable, cache not saved.", prefix,
                              dir);
            }
        }
    }
    for (int i = 0; i < nfiles; i++) free(lbs[i]);
    free(lbs);
    if (rc < 0) {
        yt_label_set_free(out);
        return -1;
    }
    yt_scan_stats *st = &out->stats;
    char stem[4096];
    snprintf(stem, sizeof stem, "%s", st->cache_path);
    size_t sl = strlen(stem);
    if (sl > 9) stem[sl - 9] = 0; /* drop ".yt.cache" */
    snprintf(st->summary, sizeof st->summary, "%sScanning %s... %d images, %d backgrounds, %d corrupt%s", prefix, stem,
             st->nf, st->nm + st->ne, st->nc, st->from_cache ? " (cached)" : "");
    if (out->n == 0) {
        yt_label_set_free(out);
        return yt_error("%sNo valid images found (%d files scanned, all corrupt)", prefix, nfiles);
    }
    int nl = 0;
    for (int i = 0; i < out->n; i++) nl += out->entries[i].n;
    if (nl == 0)
        strlist_pushf(&out->msgs, "%sWARNING ⚠️ No labels found in %s, training may not work correctly.", prefix,
                      st->cache_path);
    return 0;
}

/* ---- dataset ---- */

static int cmp_ar(const void *a, const void *b, void *ctx)
{
    const yt_label_entry *L = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    double ai = (double)L[i].h / L[i].w, aj = (double)L[j].h / L[j].w;
    if (ai < aj) return -1;
    if (ai > aj) return 1;
    return i < j ? -1 : i > j; /* stable */
}

static void cache_clear(yt_dataset *ds)
{
    pthread_mutex_lock(&ds->mu);
    for (int i = 0; i < ds->n; i++) {
        if (ds->cache[i]) yt_image_release(ds->cache[i]);
        ds->cache[i] = NULL;
        ds->cache_stamp[i] = 0;
    }
    ds->cache_count = 0;
    pthread_mutex_unlock(&ds->mu);
}

int yt_dataset_set_rect(yt_dataset *ds, int *order_out)
{
    const yt_dataset_cfg *c = &ds->cfg;
    if (c->batch_size < 1 || c->stride < 1) return yt_error("rect: invalid batch %d or stride %d", c->batch_size, c->stride);
    for (int t = 0; t < ds->ntf; t++)
        if (ds->tf[t].kind == YT_TF_MOSAIC && ds->tf[t].p > 0)
            return yt_error("rect: the dataset's transforms hold a mosaic (rect batches take whole images)");
    int n = ds->n, bs = c->batch_size, nb = (n + bs - 1) / bs;
    int *order = malloc(sizeof(int) * n);
    yt_label_entry *sorted = malloc(sizeof *sorted * n);
    int *shapes = malloc(sizeof(int) * 2 * nb);
    if (!order || !sorted || !shapes) {
        free(order);
        free(sorted);
        free(shapes);
        return yt_error("out of memory");
    }
    cache_clear(ds);
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof(int), cmp_ar, ds->labels);
    for (int i = 0; i < n; i++) sorted[i] = ds->labels[order[i]];
    free(ds->labels);
    ds->labels = sorted;
    if (order_out) memcpy(order_out, order, sizeof(int) * n);
    free(order);
    for (int b = 0; b < nb; b++) {
        double mini = 1e300, maxi = -1e300;
        for (int i = b * bs; i < n && i < (b + 1) * bs; i++) {
            double ar = (double)ds->labels[i].h / ds->labels[i].w;
            mini = fmin(mini, ar);
            maxi = fmax(maxi, ar);
        }
        double sh[2] = {1, 1};
        if (maxi < 1) sh[0] = maxi, sh[1] = 1;
        else if (mini > 1) sh[0] = 1, sh[1] = 1 / mini;
        for (int k = 0; k < 2; k++)
            shapes[2 * b + k] = (int)ceil(sh[k] * c->imgsz / c->stride + c->pad) * c->stride;
    }
    free(ds->batch_shapes);
    ds->batch_shapes = shapes;
    ds->nb = nb;
    ds->cfg.rect = 1;
    return 0;
}

yt_dataset *yt_dataset_create(yt_label_set *set, const yt_dataset_cfg *cfg)
{
    if (set->n <= 0) return (yt_error("dataset: no labelled images"), NULL);
    if (cfg->imgsz < 32 || cfg->batch_size < 1 || cfg->stride < 1)
        return (yt_error("dataset: invalid imgsz %d, batch %d or stride %d", cfg->imgsz, cfg->batch_size, cfg->stride),
                NULL);
    yt_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return (yt_error("out of memory"), NULL);
    pthread_mutex_init(&ds->mu, NULL);
    ds->cfg = *cfg;
    ds->cfg.rect = 0;
    ds->n = set->n;
    ds->labels = set->entries;
    ds->stats = set->stats;
    ds->msgs = set->msgs;
    memset(set, 0, sizeof *set);
    for (int i = 0; i < ds->n; i++)
        if (build_segn(ds->labels + i) < 0) goto oom;
    int b = ds->n < cfg->batch_size * 8 ? ds->n : cfg->batch_size * 8;
    ds->buffer_len = b < 1000 ? b : 1000;
    ds->cache = calloc((size_t)ds->n, sizeof(yt_image *));
    ds->cache_stamp = calloc((size_t)ds->n, sizeof(uint64_t));
    if (!ds->cache || !ds->cache_stamp) goto oom;
    yt_dataset_set_cache_capacity(ds, cfg->cache_ram ? ds->n : cfg->augment ? ds->buffer_len : 0);
    return ds;
oom:
    yt_dataset_destroy(ds);
    return (yt_error("out of memory building the dataset"), NULL);
}

yt_dataset *yt_dataset_open(const char *const *files, int nfiles, const yt_scan_cfg *scan, const yt_dataset_cfg *cfg)
{
    yt_label_set set;
    if (yt_data_scan_labels(files, nfiles, scan, &set) < 0) return NULL;
    yt_dataset *ds = yt_dataset_create(&set, cfg);
    yt_label_set_free(&set);
    if (ds && cfg->rect && yt_dataset_set_rect(ds, NULL) < 0) {
        yt_dataset_destroy(ds);
        return NULL;
    }
    return ds;
}

int yt_dataset_cache_all(yt_dataset *ds)
{
    yt_dataset_set_cache_capacity(ds, ds->n);
    if (ds->source) { /* the source may run only on this thread */
        for (int i = 0; i < ds->n; i++) {
            yt_image *im = yt_dataset_load_image(ds, i);
            if (!im) return -1;
            yt_image_release(im);
        }
        return 0;
    }
    int failed = -1;
    char ferr[1024] = "";
#pragma omp parallel for schedule(dynamic, 2)
    for (int i = 0; i < ds->n; i++) {
        yt_image *im = yt_dataset_load_image(ds, i);
        if (im) yt_image_release(im);
        else {
#pragma omp critical
            if (failed < 0) {
                failed = i;
                snprintf(ferr, sizeof ferr, "%s", yt_last_error()); /* this thread's message */
            }
        }
    }
    if (failed >= 0) return yt_error("%s", ferr);
    return 0;
}

void yt_dataset_destroy(yt_dataset *ds)
{
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) {
        yt_label_entry_free(ds->labels + i);
        if (ds->cache && ds->cache[i]) yt_image_release(ds->cache[i]);
    }
    free(ds->labels);
    free(ds->cache);
    free(ds->cache_stamp);
    free(ds->batch_shapes);
    yt_strlist_free(&ds->msgs);
    pthread_mutex_destroy(&ds->mu);
    free(ds);
}

static void evict_locked(yt_dataset *ds)
{
    while (ds->cache_count > ds->cache_cap) {
        int victim = -1;
        uint64_t best = UINT64_MAX;
        for (int i = 0; i < ds->n; i++)
            if (ds->cache[i] && ds->cache_stamp[i] < best) best = ds->cache_stamp[i], victim = i;
        if (victim < 0) break;
        yt_image_release(ds->cache[victim]);
        ds->cache[victim] = NULL;
        ds->cache_count--;
    }
}

void yt_dataset_set_cache_capacity(yt_dataset *ds, int cap)
{
    pthread_mutex_lock(&ds->mu);
    if (ds->cfg.cache_ram) cap = ds->n;
    ds->cache_cap = cap < 0 ? 0 : cap > ds->n ? ds->n : cap;
    evict_locked(ds);
    pthread_mutex_unlock(&ds->mu);
}

static const char *const TF_NAMES[] = {"mosaic", "letterbox", "random_perspective", "mixup", "random_hsv", "flipud", "fliplr"};

int yt_dataset_set_transforms(yt_dataset *ds, const yt_transform *tf, int n)
{
    if (n < 1 || n > YT_MAX_TRANSFORMS) return yt_error("transforms: %d steps (1..%d)", n, YT_MAX_TRANSFORMS);
    int letterbox = -1;
    for (int t = 0; t < n; t++) {
        if ((unsigned)tf[t].kind > YT_TF_FLIPLR) return yt_error("transforms: step %d has an unknown kind", t + 1);
        const char *name = TF_NAMES[tf[t].kind];
        if (tf[t].kind == YT_TF_LETTERBOX && letterbox < 0) letterbox = t;
        if (letterbox < 0 && tf[t].kind != YT_TF_MOSAIC && tf[t].kind != YT_TF_LETTERBOX)
            return yt_error("transforms: step %d (%s) comes before the letterbox (only a mosaic may)", t + 1, name);
        if (!(tf[t].p >= 0 && tf[t].p <= 1)) return yt_error("transforms: step %d (%s): p = %g is not in 0..1", t + 1, name, tf[t].p);
        if (tf[t].kind == YT_TF_MOSAIC && tf[t].p > 0 && ds->cfg.rect)
            return yt_error("transforms: step %d is a mosaic, which rect batches cannot take", t + 1);
    }
    if (letterbox < 0) return yt_error("transforms: no letterbox step (it sizes every image that is not a mosaic)");
    pthread_mutex_lock(&ds->mu);
    memcpy(ds->tf, tf, sizeof *tf * (size_t)n);
    ds->ntf = n;
    pthread_mutex_unlock(&ds->mu);
    return 0;
}

void yt_dataset_close_mosaic(yt_dataset *ds)
{
    pthread_mutex_lock(&ds->mu);
    for (int t = 0; t < ds->ntf; t++)
        if (ds->tf[t].kind == YT_TF_MOSAIC || ds->tf[t].kind == YT_TF_MIXUP) ds->tf[t].p = 0;
    pthread_mutex_unlock(&ds->mu);
}

void yt_dataset_set_image_source(yt_dataset *ds, yt_image_source fn, void *ctx)
{
    cache_clear(ds);
    ds->source = fn;
    ds->source_ctx = ctx;
}

/* raw with its long side at s: the other side ceil, capped at s (Ultralytics' load_image). Frees raw. */
static yt_image *resize_long_side(yt_image *raw, int s, const char *what)
{
    int h0 = raw->h, w0 = raw->w;
    double r = (double)s / (h0 > w0 ? h0 : w0);
    int h = h0, w = w0;
    if (r != 1) {
        w = (int)ceil(w0 * r);
        h = (int)ceil(h0 * r);
        if (w > s) w = s;
        if (h > s) h = s;
        if (w < 1) w = 1;
        if (h < 1) h = 1;
    }
    yt_image *im = yt_image_new(h, w);
    if (im) yt_resize_linear_u8(raw->px, h0, w0, (size_t)w0 * 3, im->px, h, w, (size_t)w * 3);
    else yt_error("out of memory for image %s", what);
    return im;
}

yt_image *yt_dataset_decode_image(yt_dataset *ds, int i)
{
    if (i < 0 || i >= ds->n) return (yt_error("image index %d out of range 0..%d", i, ds->n - 1), NULL);
    const yt_label_entry *e = ds->labels + i;
    yt_image raw;
    if (decode_file(e->im_file, &raw, NULL) < 0) {
        yt_error_prefix("Image Not Found or unreadable %s: ", e->im_file);
        return NULL;
    }
    yt_image *im = resize_long_side(&raw, ds->cfg.imgsz, e->im_file);
    yt_image_free(&raw);
    return im;
}

/* The image from the source, resized when its long side is not imgsz. */
static yt_image *source_image(yt_dataset *ds, int i)
{
    yt_image *src = ds->source(ds->source_ctx, i);
    if (!src) return NULL;
    int s = ds->cfg.imgsz;
    if ((src->h > src->w ? src->h : src->w) == s) return src;
    yt_image *im = resize_long_side(src, s, ds->labels[i].im_file);
    yt_image_release(src);
    return im;
}

yt_image *yt_dataset_load_image(yt_dataset *ds, int i)
{
    if (i < 0 || i >= ds->n) return (yt_error("image index %d out of range 0..%d", i, ds->n - 1), NULL);
    pthread_mutex_lock(&ds->mu);
    yt_image *c = ds->cache[i];
    if (c) {
        yt_image_retain(c);
        ds->cache_stamp[i] = ++ds->clock;
        ds->cache_hits++;
        pthread_mutex_unlock(&ds->mu);
        return c;
    }
    ds->cache_misses++;
    pthread_mutex_unlock(&ds->mu);
    yt_image *im = ds->source ? source_image(ds, i) : yt_dataset_decode_image(ds, i);
    if (!im) return NULL;
    /* im holds one reference: the caller's */
    pthread_mutex_lock(&ds->mu);
    if (ds->cache_cap > 0) {
        if (ds->cache[i]) { /* another thread decoded it meanwhile */
            yt_image_release(im);
            im = ds->cache[i];
            yt_image_retain(im);
        } else {
            ds->cache[i] = im;
            yt_image_retain(im); /* the cache's reference */
            ds->cache_count++;
            ds->cache_stamp[i] = ++ds->clock;
            evict_locked(ds);
        }
    }
    pthread_mutex_unlock(&ds->mu);
    return im;
}

int yt_pool_pick(const yt_dataset *ds, const yt_pool *pool, yt_rng *rng)
{
    int B = ds->buffer_len > 0 ? ds->buffer_len : 1;
    int n = pool ? pool->n : 0;
    if (!pool || !pool->cur || n <= 0) return (int)yt_rng_int(rng, ds->n);
    if (B > n) B = n;
    int lo = pool->pos - B + 1;
    if (lo < 0 && !pool->prev) { /* first epoch: the first B positions */
        int k = (int)yt_rng_int(rng, B);
        return pool->cur[k];
    }
    int q = lo + (int)yt_rng_int(rng, B);
    return q >= 0 ? pool->cur[q] : pool->prev[n + q];
}

/* ---- samples ---- */

static void make_view(const yt_dataset *ds, int i, const yt_image *im, yt_labeled_view *v)
{
    const yt_label_entry *e = ds->labels + i;
    v->px = im->px;
    v->h = im->h;
    v->w = im->w;
    v->n = e->n;
    v->cls = e->cls;
    v->xywhn = e->xywhn;
    v->segn = e->segn;
    v->ori_h = e->h;
    v->ori_w = e->w;
}

static void target_shape(const yt_dataset *ds, int i, int *H, int *W)
{
    if (ds->cfg.rect && ds->batch_shapes) {
        int b = i / ds->cfg.batch_size;
        *H = ds->batch_shapes[2 * b];
        *W = ds->batch_shapes[2 * b + 1];
        return;
    }
    *H = *W = ds->cfg.imgsz;
}

static int letterboxed(yt_dataset *ds, int i, int scaleup, yt_sample *out)
{
    yt_image *im = yt_dataset_load_image(ds, i);
    if (!im) return -1;
    yt_labeled_view v;
    make_view(ds, i, im, &v);
    int rc = yt_sample_from_view(&v, out);
    yt_image_release(im);
    if (rc < 0) return yt_error("out of memory");
    int H, W;
    target_shape(ds, i, &H, &W);
    if (yt_letterbox(out, H, W, scaleup) < 0) {
        yt_sample_free(out);
        return yt_error("out of memory");
    }
    return 0;
}

static int mosaic(yt_dataset *ds, int i, const yt_pool *pool, yt_rng *rng, yt_sample *out)
{
    int idx[4] = {i, yt_pool_pick(ds, pool, rng), yt_pool_pick(ds, pool, rng), yt_pool_pick(ds, pool, rng)};
    yt_image *ims[4] = {0};
    yt_labeled_view v[4];
    for (int k = 0; k < 4; k++) {
        ims[k] = yt_dataset_load_image(ds, idx[k]);
        if (!ims[k]) {
            for (int j = 0; j < k; j++) yt_image_release(ims[j]);
            return -1;
        }
        make_view(ds, idx[k], ims[k], &v[k]);
    }
    int s = ds->cfg.imgsz;
    int xc = (int)yt_rng_uniform(rng, s / 2.0, 2 * s - s / 2.0);
    int yc = (int)yt_rng_uniform(rng, s / 2.0, 2 * s - s / 2.0);
    int rc = yt_mosaic4(v, s, xc, yc, out);
    for (int k = 0; k < 4; k++) yt_image_release(ims[k]);
    return rc < 0 ? yt_error("out of memory") : 0;
}

/* Runs steps tf[0..n) on sample i. A step with p > 0 draws from rng (p = 0 draws nothing, so a closed mosaic
 * leaves the later draws where an Ultralytics pipeline without it has them); flips always draw. */
static int run_transforms(yt_dataset *ds, const yt_transform *tf, int n, int i, const yt_pool *pool, yt_rng *rng,
                          yt_sample *out)
{
    int have = 0;
    for (int t = 0; t < n; t++) {
        const yt_transform *s = tf + t;
        int rc = 0;
        switch (s->kind) {
        case YT_TF_MOSAIC:
            if (!have && s->p > 0 && yt_rng_u01(rng) <= s->p) {
                rc = mosaic(ds, i, pool, rng, out);
                have = rc == 0;
            }
            break;
        case YT_TF_LETTERBOX:
            if (!have) {
                rc = letterboxed(ds, i, s->scaleup, out);
                have = rc == 0;
            }
            break;
        case YT_TF_PERSPECTIVE:
            if (yt_random_perspective(out, &s->persp, rng) < 0) rc = yt_error("out of memory");
            break;
        case YT_TF_MIXUP:
            if (s->p > 0 && yt_rng_u01(rng) <= s->p) {
                yt_sample o;
                memset(&o, 0, sizeof o);
                int j = yt_pool_pick(ds, pool, rng);
                rc = run_transforms(ds, tf, t, j, pool, rng, &o);
                if (rc == 0) {
                    double r = yt_rng_beta(rng, 32.0, 32.0);
                    rc = yt_mixup(out, &o, r);
                    yt_sample_free(&o);
                    if (rc < 0) rc = yt_error("mixup: sample sizes differ or out of memory");
                }
            }
            break;
        case YT_TF_HSV:
            yt_hsv_augment(out->px, (size_t)out->h * out->w, s->hsv[0], s->hsv[1], s->hsv[2], rng);
            break;
        case YT_TF_FLIPUD:
            if (yt_rng_u01(rng) < s->p) yt_flip_ud(out);
            break;
        case YT_TF_FLIPLR:
            if (yt_rng_u01(rng) < s->p) yt_flip_lr(out);
            break;
        }
        if (rc < 0) {
            if (have) yt_sample_free(out);
            return -1;
        }
    }
    return 0;
}

int yt_dataset_get_sample(yt_dataset *ds, int i, const yt_pool *pool, yt_rng *rng, yt_sample *out)
{
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= ds->n) return yt_error("sample index %d out of range 0..%d", i, ds->n - 1);
    yt_transform tf[YT_MAX_TRANSFORMS];
    pthread_mutex_lock(&ds->mu);
    int n = ds->ntf;
    memcpy(tf, ds->tf, sizeof *tf * (size_t)n);
    pthread_mutex_unlock(&ds->mu);
    if (n == 0) return yt_error("dataset: no transforms set (yt_dataset_set_transforms)");
    return run_transforms(ds, tf, n, i, pool, rng, out);
}
