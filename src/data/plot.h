/* Batch plots: a grid of up to max_subplots images with their boxes and class names (cairo for drawing and
 * text with its toy font API; PNG through cairo, JPEG through SDL2_image). Labels show the class name, and the
 * confidence too when conf is given (predictions, drawn when conf > 0.25). */
#ifndef YT_DATA_PLOT_H
#define YT_DATA_PLOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *img; /* B x 3 x H x W RGB */
    int B, H, W;
    int N;
    const float *cls;       /* N */
    const float *bboxes;    /* N x 4 normalised cx cy w h (pixels when boxes_in_pixels) */
    const float *batch_idx; /* N */
    const float *conf;      /* N or NULL (labels) */
    int boxes_in_pixels;
    const char *const *names; /* class names indexed by class id, or NULL */
    int nnames;
    const char *const *paths; /* B file names shown on the tiles, or NULL */
    int max_subplots;         /* 16 */
    int max_size;             /* 1920 */
} yt_plot_batch_args;

/* The text on a box: the class name (the id when name is NULL), then the confidence to two decimals when conf
 * is given ("person 0.87"). Truncated to size. */
void yt_plot_box_label(char *buf, size_t size, const char *name, int cls, const float *conf);

/* Writes the plot to path (.jpg/.jpeg/.png). 0 or -1 with yt_error. */
int yt_plot_batch(const yt_plot_batch_args *a, const char *path);

#endif
