/* Labels: one label file parsed and checked, image + label pairs verified, the label cache, the scan. */
#include "data/labels.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "data/augment.h"
#include "data/image.h"
#include "io/durable.h"

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
            while (p < end &&
                   (text[p] == ' ' || text[p] == '\t' || text[p] == '\r' || text[p] == '\v' || text[p] == '\f'))
                p++;
            if (p >= end) break;
            size_t q = p;
            while (q < end &&
                   !(text[q] == ' ' || text[q] == '\t' || text[q] == '\r' || text[q] == '\v' || text[q] == '\f'))
                q++;
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
            yt_error("Label class %.0f exceeds dataset class count %d. Possible class labels are 0-%d", (double)c, nc,
                     nc - 1);
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
                    yt_error("non-normalized or out of bounds coordinates (polygon point on label %d)", r + 1);
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
                if (!drop[j] && e->cls[i] == e->cls[j] &&
                    memcmp(e->xywhn + 4 * i, e->xywhn + 4 * j, sizeof(float) * 4) == 0)
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

int yt_label_entry_build_segn(yt_label_entry *e)
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
    int status; /* 0 ok, 1 corrupt */
    int missing, empty, found;
    char *msg; /* warning (may be set for ok images too) */
    yt_label_entry e;
} scan_result;

/* Runs on the scan's OpenMP threads: a failure's reason is read from this thread's yt_error right away. */
static void verify_one(const char *im_file, const char *lb_file, int nc, const char *prefix, scan_result *r)
{
    char err[1024], warn[1024] = "";
    memset(r, 0, sizeof *r);
    yt_image im;
    yt_image_info info;
    if (yt_image_read(im_file, &im, &info) < 0) goto failed;
    int h = im.h, w = im.w;
    yt_image_free(&im);
    if (h < 10 || w < 10) {
        snprintf(err, sizeof err, "image size %dx%d <10 pixels", w, h);
        goto corrupt;
    }
    if (info.format == YT_IMFMT_JPEG && !info.jpeg_has_eoi)
        snprintf(warn, sizeof warn, "%sWARNING ⚠️ %s: corrupt JPEG (no end-of-image marker), decoded anyway",
                 prefix, im_file);
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
            snprintf(warn + strlen(warn), sizeof warn - strlen(warn),
                     "%s%sWARNING ⚠️ %s: %d duplicate labels removed", warn[0] ? "\n" : "", prefix, im_file, ndup);
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
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    struct stat dst;
    if (stat(dir, &dst) != 0 || !(dst.st_mode & 0222) || access(dir, W_OK) != 0) return -1;
    char *tmp = yt_temp_path(path);
    if (!tmp) return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(tmp);
        return -1;
    }
    int bad = wr(f, CACHE_MAGIC, 8) || wr(f, &hash, 8) || wr_i32(f, st->nf) || wr_i32(f, st->nm) || wr_i32(f, st->ne) ||
              wr_i32(f, st->nc) || wr_i32(f, msgs->n);
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
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
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
        if (r->status == 0 && rc == 0)
            out->entries[out->n++] = r->e;
        else if (r->status == 0)
            yt_label_entry_free(&r->e);
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
                yt_strlist_pushf(&out->msgs, "%sWARNING ⚠️ Cache directory %s is not writeable, cache not saved.",
                                 prefix, dir);
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
        yt_strlist_pushf(&out->msgs, "%sWARNING ⚠️ No labels found in %s, training may not work correctly.", prefix,
                         st->cache_path);
    return 0;
}
