/* Augmentation primitives with Ultralytics 8.2 semantics (our own implementation of the documented behaviour):
 * letterbox, 4-image mosaic, random perspective with box filtering, mixup blend, HSV, flips.
 *
 * A yt_sample is a working RGB image plus its instances in pixel xyxy (optionally with polygons resampled to
 * YT_SEG_PTS points, which Ultralytics uses to recompute tight boxes after a perspective warp). */
#ifndef YT_DATA_AUGMENT_H
#define YT_DATA_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h" /* yt_rng: the per-sample streams (seeded from seed, epoch, position) */

#define YT_SEG_PTS 1000
#define YT_PAD_VALUE 114

/* ---- instances ---- */
typedef struct {
    int n, cap;
    int has_seg; /* every instance has a YT_SEG_PTS-point polygon */
    float *cls;  /* n */
    float *box;  /* n x 4: x1 y1 x2 y2 pixels */
    float *seg;  /* n x YT_SEG_PTS x 2 pixels (when has_seg) */
} yt_inst;

int yt_inst_reserve(yt_inst *in, int cap, int with_seg);
void yt_inst_free(yt_inst *in);
/* Clips boxes (and polygons) to [0,w] x [0,h]. */
void yt_inst_clip(yt_inst *in, float w, float h);
/* Drops instances whose (clipped) box has zero area. */
void yt_inst_remove_zero_area(yt_inst *in);

typedef struct {
    uint8_t *px; /* h x w x 3 RGB, owned (malloc) */
    int h, w;
    yt_inst inst;
    /* Meta for the batch (per Ultralytics' keys). */
    int ori_h, ori_w;        /* original image size */
    int res_h, res_w;        /* size after the long-side resize (load_image) */
    double ratio_h, ratio_w; /* res / ori */
    int pad_left, pad_top;   /* integer letterbox padding */
    int mosaic_border;       /* -imgsz/2 when the sample is a mosaic, else 0 */
} yt_sample;

void yt_sample_free(yt_sample *s);

/* Read-only view of an image loaded with its long side at imgsz and its normalised labels. */
typedef struct {
    const uint8_t *px;
    int h, w;
    int n;
    const float *cls;   /* n */
    const float *xywhn; /* n x 4 normalised cx cy w h */
    const float *segn;  /* n x YT_SEG_PTS x 2 normalised, or NULL */
    int ori_h, ori_w;
} yt_labeled_view;

/* A sample holding a copy of v with boxes in pixels (no geometric change). */
int yt_sample_from_view(const yt_labeled_view *v, yt_sample *out);

/* Ultralytics LetterBox(new_shape=(H, W), auto=False, scaleup, center=True) applied to s in place:
 * r = min(H/h, W/w) (capped at 1 unless scaleup), new size = python-round(w*r, h*r), padding split
 * round(d - 0.1) / round(d + 0.1), fill 114; boxes scaled by r and shifted by the fractional half-padding.
 * Sets s->pad_left/pad_top. Returns 0 or -1 (out of memory; no yt_error). */
int yt_letterbox(yt_sample *s, int H, int W, int scaleup);

/* Mosaic of 4 views on a 2s x 2s canvas (fill 114) with the centre (xc, yc); v[0] is the top-left image.
 * Labels are shifted, clipped to the canvas and zero-area boxes dropped. mosaic_border = -s/2. */
int yt_mosaic4(const yt_labeled_view *v, int s, int xc, int yc, yt_sample *out);

typedef struct {
    double degrees, translate, scale, shear, perspective;
} yt_perspective_cfg;

/* RandomPerspective: output (h + 2*border) x (w + 2*border) where border = s->mosaic_border. Draws
 * perspective, rotation+scale, shear, translation in that order from rng; warps with bilinear interpolation
 * and fill 114; transforms boxes (or polygons), clips, and keeps the box candidates (w, h > 2 px,
 * area ratio > 0.1 (0.01 with polygons), aspect < 100). Polygons are dropped afterwards. */
int yt_random_perspective(yt_sample *s, const yt_perspective_cfg *cfg, yt_rng *rng);

/* Warps src (sh x sw) with the 3x3 matrix M (dst = M * src) into dst (dh x dw), bilinear, fill 114. */
void yt_warp_u8(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw, const double M[9], int persp);

/* MixUp: s = s * r + other * (1 - r) (uint8), labels concatenated. Same sizes required. */
int yt_mixup(yt_sample *s, yt_sample *other, double r);

/* RandomHSV with OpenCV's 8-bit HSV (H in [0,180)): gains drawn uniform(-1, 1) * gain + 1. */
void yt_hsv_augment(uint8_t *px, size_t npix, double hgain, double sgain, double vgain, yt_rng *rng);
void yt_hsv_apply(uint8_t *px, size_t npix, double rh, double rs, double rv);

void yt_flip_lr(yt_sample *s);
void yt_flip_ud(yt_sample *s);

#endif
