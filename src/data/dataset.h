/* YOLO-format detection datasets: the dataset over verified labels (data/labels.h, files from data/listing.h),
 * rect batch shapes, the shared decoded-image cache (dataset.c), and the per-sample transforms a dataset is given
 * as a list: mosaic, letterbox, perspective, mixup, HSV, flips (sample.c). Semantics follow Ultralytics 8.2 (see
 * docs/data.md for deviations).
 *
 * Errors: NULL or -1 with yt_error (per thread, so loader threads report through it too). The Lua engine
 * (lua/yolotrain/data/dataset.lua) drives these steps: scan -> its label table -> yt_dataset_create -> rect ->
 * transforms. Every parameter is explicit here; the defaults live in lua/yolotrain/cfg/default.lua. */
#ifndef YT_DATA_DATASET_H
#define YT_DATA_DATASET_H

#include <pthread.h>
#include <stdint.h>

#include "data/augment.h"
#include "data/image.h"
#include "data/labels.h"
#include "data/listing.h"

/* ---- transforms: what a sample goes through, in order (Ultralytics' build_transforms) ---- */
typedef enum {
    YT_TF_MOSAIC,      /* p: 4-image mosaic (the image and 3 partners from the pool) */
    YT_TF_LETTERBOX,   /* the image alone, letterboxed to imgsz (or its rect batch shape); a no-op after a mosaic */
    YT_TF_PERSPECTIVE, /* RandomPerspective with persp */
    YT_TF_MIXUP,       /* p: blend with a partner that went through the steps before this one */
    YT_TF_HSV,         /* gains hsv[0..2] */
    YT_TF_FLIPUD,      /* p */
    YT_TF_FLIPLR,      /* p */
} yt_transform_kind;

typedef struct {
    yt_transform_kind kind;
    double p;                 /* mosaic, mixup, flips */
    int scaleup;              /* letterbox: enlarge images smaller than the target */
    yt_perspective_cfg persp; /* perspective */
    double hsv[3];            /* hsv: h, s, v gains */
} yt_transform;

#define YT_MAX_TRANSFORMS 16

/* ---- datasets ---- */
typedef struct {
    int imgsz;
    int augment; /* training set: its images are kept in the partner cache (mosaic / mixup) */
    int rect;    /* set by yt_dataset_set_rect */
    int stride;
    double pad; /* rect padding: 0 train, 0.5 val */
    int batch_size;
    int cache_ram; /* keep every loaded image in memory */
} yt_dataset_cfg;

/* Where images come from instead of their files (a Lua load_image): the image of sample i, any size (it is
 * resized to the long side imgsz), with refcount 1; NULL with yt_error. Called from the thread that builds the
 * sample: a loader over such a dataset must have no worker threads. */
typedef yt_image *(*yt_image_source)(void *ctx, int i);

typedef struct yt_dataset {
    yt_dataset_cfg cfg;
    int n;
    yt_label_entry *labels;
    yt_scan_stats stats;    /* of the scan, when made by yt_dataset_open */
    yt_strlist msgs;        /* warnings of that scan */
    int nb;                 /* number of batches for rect */
    int *batch_shapes;      /* nb x 2 (h, w) when rect */
    int buffer_len;         /* mosaic source window (Ultralytics' max_buffer_length) */
    yt_image_source source; /* NULL: decode im_file */
    void *source_ctx;
    /* guarded by mu: the transforms (read once per sample) and the decoded-image cache (long side at imgsz) */
    pthread_mutex_t mu;
    yt_transform tf[YT_MAX_TRANSFORMS];
    int ntf;
    yt_image **cache;
    uint64_t *cache_stamp;
    uint64_t clock;
    int cache_count, cache_cap;
    long long cache_hits, cache_misses;
} yt_dataset;

/* Builds the dataset from labels (taken over: *labels is emptied). NULL + yt_error on failure. Samples need
 * transforms (yt_dataset_set_transforms) first. */
yt_dataset *yt_dataset_create(yt_label_set *labels, const yt_dataset_cfg *cfg);
/* Scan + create in one call (C tests and benchmarks): the stats and messages of the scan are kept. */
yt_dataset *yt_dataset_open(const char *const *files, int nfiles, const yt_scan_cfg *scan, const yt_dataset_cfg *cfg);
void yt_dataset_destroy(yt_dataset *ds);
/* Rect batches (Ultralytics' set_rectangle): sorts the images by aspect ratio (stable) and gives each batch of
 * cfg.batch_size the shape ceil(shape * imgsz / stride + pad) * stride. order (optional, n) receives the old index
 * of each new position. Empties the image cache. 0 or -1. */
int yt_dataset_set_rect(yt_dataset *ds, int *order);
/* Replaces the transforms (checked: known kinds, a letterbox that only mosaics precede, no mosaic on a rect
 * dataset). Safe while loader threads run; a sample started before keeps the old list. 0 or -1. */
int yt_dataset_set_transforms(yt_dataset *ds, const yt_transform *tf, int n);
/* Sets the probability of the mosaic and mixup steps to 0 (Ultralytics' close_mosaic). */
void yt_dataset_close_mosaic(yt_dataset *ds);
void yt_dataset_set_image_source(yt_dataset *ds, yt_image_source fn, void *ctx);
/* Sets the cache capacity in images (>= 0); used by the loader. */
void yt_dataset_set_cache_capacity(yt_dataset *ds, int cap);
/* Loads every image into the cache (cache_ram; in parallel unless an image source is set). 0 or -1. */
int yt_dataset_cache_all(yt_dataset *ds);

/* The image i with its long side at imgsz, through the cache and the image source (retained; release with
 * yt_image_release). */
yt_image *yt_dataset_load_image(yt_dataset *ds, int i);
/* The image i decoded from its file and resized to the long side imgsz, bypassing cache and source (refcount 1). */
yt_image *yt_dataset_decode_image(yt_dataset *ds, int i);

/* Where mosaic/mixup take their extra images from: the dataset indices at the most recent buffer_len
 * positions of the loader's order (deterministic stand-in for Ultralytics' buffer). */
typedef struct {
    const int *cur, *prev; /* order of this epoch / the previous epoch (NULL for the first epoch) */
    int n, pos;
} yt_pool;

int yt_pool_pick(const yt_dataset *ds, const yt_pool *pool, yt_rng *rng);

/* Builds sample i through the transforms. Returns 0, or -1 with yt_error. */
int yt_dataset_get_sample(yt_dataset *ds, int i, const yt_pool *pool, yt_rng *rng, yt_sample *out);

#endif
