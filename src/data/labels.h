/* YOLO-format labels: one label file parsed and checked, every image + label pair verified in parallel
 * (Ultralytics' verify_image_label), and the label cache kept beside the labels. Errors: -1 with yt_error (per
 * thread, so the scan's OpenMP threads report through it too). */
#ifndef YT_DATA_LABELS_H
#define YT_DATA_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "data/listing.h"

/* Most classes a dataset may declare (nc, names): far above any real dataset (LVIS has 1,203), and every class
 * id stays exact in the float labels. */
#define YT_DATA_MAX_CLASSES 65536

typedef struct {
    char *im_file;
    int h, w;     /* image size after EXIF orientation */
    int n;        /* instances */
    float *cls;   /* n */
    float *xywhn; /* n x 4 */
    int *poly_n;  /* points per polygon, or NULL (as read from the label file) */
    float *poly;  /* concatenated normalised points (x, y) */
    float *segn;  /* n x YT_SEG_PTS x 2 resampled polygons when every instance has one, else NULL */
} yt_label_entry;

void yt_label_entry_free(yt_label_entry *e);
/* Sets e->segn from the polygons: YT_SEG_PTS points each (closed, linear interpolation along the vertex index),
 * when every instance has a polygon (else NULL). 0, or -1 when out of memory. */
int yt_label_entry_build_segn(yt_label_entry *e);

/* Parses and checks one label file's text (nc = class count, classes must be < nc). Returns 0 (ok; *ndup
 * duplicates were removed), or -1 with the reason in yt_error. */
int yt_data_parse_labels(const char *text, size_t len, int nc, yt_label_entry *e, int *ndup);

typedef struct {
    int nf, nm, ne, nc; /* found, missing labels, empty labels, corrupt */
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
    int nc; /* classes must be < nc (any class id when single_cls: they all become 0 later) */
    int single_cls;
    int use_label_cache; /* read and write "<labels folder>.yt.cache" */
    const char *prefix;  /* e.g. "train: ", put before every message */
} yt_scan_cfg;

typedef struct {
    yt_label_entry *entries; /* n valid images, in file order */
    int n;
    yt_scan_stats stats;
    yt_strlist msgs; /* warnings, for the caller to print */
} yt_label_set;

/* Verifies every image and label file (in parallel) or reads them from the label cache. 0, or -1 with yt_error
 * when no image is valid. */
int yt_data_scan_labels(const char *const *files, int nfiles, const yt_scan_cfg *cfg, yt_label_set *out);
void yt_label_set_free(yt_label_set *s);

#endif
