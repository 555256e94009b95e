/* Detection datasets: created from labels, rect batch shapes, transforms, the shared decoded-image cache. */
#include "data/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

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
    if (c->batch_size < 1 || c->stride < 1)
        return yt_error("rect: invalid batch %d or stride %d", c->batch_size, c->stride);
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
        if (maxi < 1)
            sh[0] = maxi, sh[1] = 1;
        else if (mini > 1)
            sh[0] = 1, sh[1] = 1 / mini;
        for (int k = 0; k < 2; k++) shapes[2 * b + k] = (int)ceil(sh[k] * c->imgsz / c->stride + c->pad) * c->stride;
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
        if (yt_label_entry_build_segn(ds->labels + i) < 0) goto oom;
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
        if (im)
            yt_image_release(im);
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

static const char *const TF_NAMES[] = {"mosaic", "letterbox", "random_perspective", "mixup", "random_hsv",
                                       "flipud", "fliplr"};

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
        if (!(tf[t].p >= 0 && tf[t].p <= 1))
            return yt_error("transforms: step %d (%s): p = %g is not in 0..1", t + 1, name, tf[t].p);
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
    if (im)
        yt_resize_linear_u8(raw->px, h0, w0, (size_t)w0 * 3, im->px, h, w, (size_t)w * 3);
    else
        yt_error("out of memory for image %s", what);
    return im;
}

yt_image *yt_dataset_decode_image(yt_dataset *ds, int i)
{
    if (i < 0 || i >= ds->n) return (yt_error("image index %d out of range 0..%d", i, ds->n - 1), NULL);
    const yt_label_entry *e = ds->labels + i;
    yt_image raw;
    if (yt_image_read(e->im_file, &raw, NULL) < 0) {
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
