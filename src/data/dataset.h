/* YOLO-format detection datasets: image listing, label parsing and verification, the label cache, rect batch
 * shapes, the shared decoded-image cache, and the per-sample transforms a dataset is given as a list (mosaic,
 * letterbox, perspective, mixup, HSV, flips). Semantics follow Ultralytics 8.2 (see docs/data.md for deviations).
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

/* Most classes a dataset may declare (nc, names): far above any real dataset (LVIS has 1,203), and every class
 * id stays exact in the float labels. */
#define YT_DATA_MAX_CLASSES 65536

typedef struct {
    char **v;
    int n, cap;
} yt_strlist;

int yt_strlist_push(yt_strlist *l, const char *s);
void yt_strlist_free(yt_strlist *l);

/* Image files under each path: a folder (recursive), a .txt file listing images (relative "./x" entries
 * resolved against the list's folder), or an image file. Sorted, extensions bmp jpeg jpg mpo png tif tiff
 * webp (case-insensitive). Error when a path does not exist or nothing is found. */
int yt_data_list_images(const char *const *paths, int npaths, yt_strlist *out);

/* ".../images/x/a.jpg" -> ".../labels/x/a.txt" (the last "/images/" is replaced). Caller frees. */
char *yt_data_label_path(const char *im_file);

typedef struct {
    char *im_file;
    int h, w;          /* image size after EXIF orientation */
    int n;             /* instances */
    float *cls;        /* n */
    float *xywhn;      /* n x 4 */
    int *poly_n;       /* points per polygon, or NULL (as read from the label file) */
    float *poly;       /* concatenated normalised points (x, y) */
    float *segn;       /* n x YT_SEG_PTS x 2 resampled polygons when every instance has one, else NULL */
} yt_label_entry;

void yt_label_entry_free(yt_label_entry *e);

/* Parses and checks one label file's text (nc = class count, classes must be < nc). Returns 0 (ok; *ndup
 * duplicates were removed), or -1 with the reason in yt_error. */
int yt_data_parse_labels(const char *text, size_t len, int nc, yt_label_entry *e, int *ndup);

typedef struct {
    int nf, nm, ne, nc;      /* found, missing labels, empty labels, corrupt */
    int from_cache;
    char cache_path[4096];
    char summary[4608];
} yt_scan_stats;

/* Reads a label cache held in memory (as the dataset scan writes it beside the labels). Returns the number of
 * entries (>= 0) into *out (free each with yt_label_entry_free, then the array), or -1 when it is not a cache of
 * these files (hash), is damaged, or holds more than nfiles entries or class ids >= max_cls. Every count is
 * bounded by the bytes that remain before anything is allocated. */
int yt_label_cache_parse(const uint8_t *buf, size_t n, uint64_t hash, int nfiles, int max_cls, yt_scan_stats *st,
                         yt_strlist *msgs, yt_label_entry **out);

/* ---- scanning: image files -> verified labels (Ultralytics' get_labels) ---- */
typedef struct {
    int nc;              /* classes must be < nc (any class id when single_cls: they all become 0 later) */
    int single_cls;
    int use_label_cache; /* read and write "<labels folder>.yt.cache" */
    const char *prefix;  /* e.g. "train: ", put before every message */
} yt_scan_cfg;

typedef struct {
    yt_label_entry *entries; /* n valid images, in file order */
    int n;
    yt_scan_stats stats;
    yt_strlist msgs;         /* warnings, for the caller to print */
} yt_label_set;

/* Verifies every image and label file (in parallel) or reads them from the label cache. 0, or -1 with yt_error
 * when no image is valid. */
int yt_data_scan_labels(const char *const *files, int nfiles, const yt_scan_cfg *cfg, yt_label_set *out);
void yt_label_set_free(yt_label_set *s);

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
    int augment;       /* training set: its images are kept in the partner cache (mosaic / mixup) */
    int rect;          /* set by yt_dataset_set_rect */
    int stride;
    double pad;        /* rect padding: 0 train, 0.5 val */
    int batch_size;
    int cache_ram;     /* keep every loaded image in memory */
} yt_dataset_cfg;

/* Where images come from instead of their files (a Lua load_image): the image of sample i, any size (it is
 * resized to the long side imgsz), with refcount 1; NULL with yt_error. Called from the thread that builds the
 * sample: a loader over such a dataset must have no worker threads. */
typedef yt_image *(*yt_image_source)(void *ctx, int i);

typedef struct yt_dataset {
    yt_dataset_cfg cfg;
    int n;
    yt_label_entry *labels;
    yt_scan_stats stats;           /* of the scan, when made by yt_dataset_open */
    yt_strlist msgs;               /* warnings of that scan */
    int nb;                        /* number of batches for rect */
    int *batch_shapes;             /* nb x 2 (h, w) when rect */
    int buffer_len;                /* mosaic source window (Ultralytics' max_buffer_length) */
    yt_image_source source;        /* NULL: decode im_file */
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
