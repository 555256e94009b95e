/* The embedded default dataset: a deterministic generator of small synthetic detection datasets (filled shapes on
 * varied backgrounds) in Ultralytics YOLO format.
 *
 *   out_dir/images/{train,val}/NNNNNN.png     imgsz x imgsz RGB PNG (drawn with cairo)
 *   out_dir/labels/{train,val}/NNNNNN.txt     one line per shape: "cls cx cy w h", normalised, tight boxes
 *   out_dir/data.yaml                         path (absolute), train, val, nc, names
 *   out_dir/.complete                         generator version + configuration (written last)
 *
 * Every image is a pure function of (seed, split, index, imgsz, classes): the PRNG is our own (splitmix64), the
 * background is computed in integer arithmetic, shape geometry uses only + - * / and sqrt (no libm trig), boxes
 * come from the geometry (not from the pixels), and only cairo rasterises. Same configuration -> same bytes.
 *
 * Generation is atomic: files are written into out_dir.tmp.<pid>, then renamed to out_dir. An out_dir whose
 * .complete matches the configuration is reused as is; one written by another generator version or configuration
 * is replaced (renamed aside, then deleted). A directory without .complete is never deleted: that is an error. */
#ifndef YT_DATA_SYNTH_H
#define YT_DATA_SYNTH_H

#include <stdint.h>

/* Bumped whenever the output for a given configuration changes: a dataset made by another version regenerates. */
#define YT_SYNTH_VERSION 1

/* Shape kinds, the class names in data.yaml. */
typedef enum {
    YT_SHAPE_CIRCLE = 0,
    YT_SHAPE_SQUARE,
    YT_SHAPE_TRIANGLE,
    YT_SHAPE_CROSS,
    YT_SHAPE_RING,
    YT_SHAPE_COUNT
} yt_synth_shape;
#define YT_SYNTH_MAX_CLASSES YT_SHAPE_COUNT
#define YT_SYNTH_MAX_OBJECTS 4

typedef struct {
    uint64_t seed;
    int n_train, n_val;                /* images per split (n_val may be 0; n_train >= 1) */
    int imgsz;                         /* image side in pixels, 32..1024 */
    int n_classes;                     /* 1..YT_SYNTH_MAX_CLASSES */
    int classes[YT_SYNTH_MAX_CLASSES]; /* class index -> shape kind (distinct kinds) */
} yt_synth_cfg;

/* seed 0, 400 train, 100 val, 160 px, 4 classes: circle, square, triangle, cross. */
void yt_synth_default_cfg(yt_synth_cfg *cfg);

/* "circle", "square", "triangle", "cross", "ring"; NULL when out of range. */
const char *yt_synth_shape_name(int kind);
/* Kind of a name, -1 if unknown. */
int yt_synth_shape_from_name(const char *name);

/* Checks a configuration; -1 with yt_error naming the bad field. */
int yt_synth_check_cfg(const yt_synth_cfg *cfg);

typedef struct {
    int cls;               /* class index (into cfg->classes) */
    double x0, y0, x1, y1; /* tight box in pixels (0..imgsz) */
} yt_synth_box;

enum { YT_SYNTH_TRAIN = 0, YT_SYNTH_VAL = 1 };

/* Renders image `index` of split (YT_SYNTH_TRAIN / YT_SYNTH_VAL) into rgb (imgsz * imgsz * 3, row-major RGB).
 * boxes (may be NULL) receives up to YT_SYNTH_MAX_OBJECTS boxes in drawing order, *n_boxes their count.
 * with_shapes = 0 renders the background alone (the boxes are still reported): tests compare the two.
 * Returns 0, or -1 with yt_error. */
int yt_synth_render(const yt_synth_cfg *cfg, int split, int index, int with_shapes, uint8_t *rgb, yt_synth_box *boxes,
                    int *n_boxes);

/* 1 when out_dir already holds the dataset of cfg (cfg NULL = defaults), else 0 (missing, outdated, unreadable).
 * Never sets yt_error. */
int yt_synth_is_complete(const char *out_dir, const yt_synth_cfg *cfg);

/* Makes sure out_dir holds the dataset of cfg (cfg NULL = defaults), creating missing parent directories.
 * Returns 1 when it generated the dataset, 0 when out_dir was already complete, -1 with yt_error. */
int yt_synth_generate(const char *out_dir, const yt_synth_cfg *cfg);

#endif
