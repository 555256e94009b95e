/* YOLO-format detection datasets: image listing, label parsing and verification, the label cache, rect batch
 * shapes, the shared decoded-image cache, and per-sample transforms (train: mosaic / perspective / mixup /
 * HSV / flips; val: letterbox). Semantics follow Ultralytics 8.2 (see docs/data.md for deviations). */
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
 * duplicates were removed), or -1 with the reason in err. */
int yt_data_parse_labels(const char *text, size_t len, int nc, yt_label_entry *e, int *ndup, char *err,
                         size_t errlen);

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

typedef struct {
    int imgsz;
    int augment;       /* train transforms */
    int rect;
    int stride;
    double pad;        /* rect padding: 0 train, 0.5 val */
    int batch_size;
    double mosaic, degrees, translate, scale, shear, perspective, flipud, fliplr, hsv_h, hsv_s, hsv_v, mixup;
    int cache_ram;     /* keep every loaded image in memory */
    int use_label_cache;
    int single_cls;
    const int *classes; /* keep only these classes (NULL = all) */
    int nclasses;
    double fraction;
    int nc;
    const char *prefix; /* e.g. "train: " */
} yt_dataset_cfg;

void yt_dataset_cfg_defaults(yt_dataset_cfg *c);

typedef struct yt_dataset {
    yt_dataset_cfg cfg;
    int *classes;
    int n;
    yt_label_entry *labels;
    yt_scan_stats stats;
    yt_strlist msgs;               /* warnings, for the caller to print */
    int nb;                        /* number of batches for rect */
    int *batch_shapes;             /* nb x 2 (h, w) when rect */
    int buffer_len;                /* mosaic source window (Ultralytics' max_buffer_length) */
    /* decoded-image cache (long side resized to imgsz) */
    pthread_mutex_t mu;
    yt_image **cache;
    uint64_t *cache_stamp;
    uint64_t clock;
    int cache_count, cache_cap;
    long long cache_hits, cache_misses;
} yt_dataset;

/* Scans (parallel), verifies, caches labels and builds the dataset. NULL + yt_error on failure. */
yt_dataset *yt_dataset_create(const char *const *files, int nfiles, const yt_dataset_cfg *cfg);
void yt_dataset_destroy(yt_dataset *ds);
/* Sets the cache capacity in images (>= 0); used by the loader. */
void yt_dataset_set_cache_capacity(yt_dataset *ds, int cap);
/* Disables mosaic and mixup (Ultralytics' close_mosaic). */
void yt_dataset_close_mosaic(yt_dataset *ds);

/* The image i loaded with its long side at imgsz (retained; release with yt_image_release). */
yt_image *yt_dataset_load_image(yt_dataset *ds, int i, char *err, size_t errlen);

/* Where mosaic/mixup take their extra images from: the dataset indices at the most recent buffer_len
 * positions of the loader's order (deterministic stand-in for Ultralytics' buffer). */
typedef struct {
    const int *cur, *prev; /* order of this epoch / the previous epoch (NULL for the first epoch) */
    int n, pos;
} yt_pool;

int yt_pool_pick(const yt_dataset *ds, const yt_pool *pool, yt_rng *rng);

/* Builds sample i: training transforms when cfg.augment, else letterbox (to the rect batch shape when rect).
 * Returns 0, or -1 with err. */
int yt_dataset_get_sample(yt_dataset *ds, int i, const yt_pool *pool, yt_rng *rng, yt_sample *out, char *err,
                          size_t errlen);

#endif
