/* The figures of a run directory, drawn with cairo and laid out like Ultralytics' matplotlib ones:
 * validation plots (confusion matrix, PR and metric-confidence curves), results.png, detections drawn on an
 * image (plots.c), and the training-label statistics labels.jpg / labels_correlogram.jpg (label_plots.c).
 * Files are written through a temporary and a durable rename. Every function returns 0, or -1 with yt_error
 * naming the file. names: one string per class, or NULL (entries may be NULL): class ids are printed instead. */
#ifndef YT_METRICS_PLOTS_H
#define YT_METRICS_PLOTS_H

#include <stdint.h>

/* ---- validation (PNG) ---- */

/* Confusion matrix heat map; normalize divides every column by its sum. */
int yt_plot_confusion_matrix(const char *path, const double *matrix, int nc, const char *const *names, int normalize);
/* Precision-recall curve: px (npts) recall grid, py (k, npts) precision per class, ap50 (k) per class,
 * labels (k) names per row (NULL = "class i"). The mean curve over the k rows is drawn thick. */
int yt_plot_pr_curve(const char *path, const double *px, int npts, const double *py, int k, const double *ap50,
                     const char *const *labels);
/* A metric-confidence curve (F1, P or R): py (k, npts); the mean curve is smoothed (box filter) and labelled
 * with its maximum. */
int yt_plot_mc_curve(const char *path, const double *px, int npts, const double *py, int k, const char *const *labels,
                     const char *xlabel, const char *ylabel);

/* results.png: nplots panels of y (nplots, npts) against x (npts), NaN = no value; ysmooth (nplots, npts) or NULL
 * is drawn dashed; label names the series in the legend. */
int yt_plot_results(const char *path, int nplots, const char *const *titles, const double *x, int npts, const double *y,
                    const double *ysmooth, const char *label);

/* Boxes drawn on px (h x w x 3 RGB, in place): rows (n, 6) x1 y1 x2 y2 conf cls in pixels, labels (n) text or
 * NULL per box, line width lw and font size fs in pixels. */
int yt_draw_detections(uint8_t *px, int h, int w, const float *rows, int n, const char *const *labels, double lw,
                       double fs);

/* ---- training labels (Ultralytics' plot_labels) ---- */

/* Bins per axis of every label histogram; the histograms span the normalised range 0..1. */
#define YT_LABEL_BINS 50
/* Boxes drawn (centred, to scale) in labels.jpg's box panel: the first this many. */
#define YT_LABEL_PLOT_BOXES 1000
/* A 2-D histogram's colour saturates at the count below which this share of the boxes lies (seaborn's pmax). */
#define YT_LABEL_PMAX 0.9

/* counts[c] = instances of class c (nc entries). Classes must be integers in 0..nc-1: -1 naming the first
 * that is not. */
int yt_label_class_counts(const float *cls, int64_t n, int nc, int64_t *counts);

/* Histograms of boxes xywh (n x 4 normalised cx cy w h) over 0..1 in `bins` bins per axis, each summing to n
 * (values outside 0..1 fall in the end bins). 1-D: column col (0 x, 1 y, 2 width, 3 height) into counts (bins).
 * 2-D: columns cx (across) and cy (up) into counts (bins x bins, row = cy bin from 0, column = cx bin).
 * -1 naming the first box with a coordinate that is not finite. */
int yt_label_hist1d(const float *xywh, int64_t n, int col, int bins, int64_t *counts);
int yt_label_hist2d(const float *xywh, int64_t n, int cx, int cy, int bins, int64_t *counts);

/* Where a histogram's colour saturates (seaborn's pmax): with the cells sorted by count, highest first, the count
 * of the first cell at which their running total reaches 1 - pmax of the whole. 0 when every cell is 0. */
double yt_hist_pmax_level(const int64_t *counts, int64_t ncells, double pmax);

/* The histograms labels_correlogram.jpg shows: diag (4 x YT_LABEL_BINS) the 1-D one of x, y, width, height;
 * pairs (6 x YT_LABEL_BINS^2) the 2-D ones below the diagonal in reading order, (row, column) = (y, x),
 * (width, x), (width, y), (height, x), (height, y), (height, width), the column variable across. */
int yt_label_correlogram_bins(const float *xywh, int64_t n, int64_t *diag, int64_t *pairs);

/* labels.jpg (1600 x 1600): instances per class as bars in the class colours (named when 0 < nc < 30), the
 * first YT_LABEL_PLOT_BOXES boxes centred and to scale, and the 2-D histograms of x-y and width-height.
 * cls (n) class ids 0..nc-1, xywh (n x 4) normalised boxes. */
int yt_plot_labels(const char *path, const float *cls, const float *xywh, int64_t n, int nc, const char *const *names);

/* labels_correlogram.jpg (2000 x 2000): the lower-triangle pair plot of x, y, width, height (histograms on the
 * diagonal, 2-D histograms below it). */
int yt_plot_labels_correlogram(const char *path, const float *xywh, int64_t n);

#endif
