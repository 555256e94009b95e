/* What every cairo figure of the run directory shares: a white canvas, text placed by its alignment, "nice"
 * axis steps, matplotlib's tab10 and Ultralytics' class colours, and the durable write (PNG or JPEG). */
#ifndef YT_METRICS_CANVAS_H
#define YT_METRICS_CANVAS_H

#include <cairo.h>
#include <stdint.h>

/* The font of every figure (fonts-dejavu-core). */
#define YT_PLOT_FONT "DejaVu Sans"

/* matplotlib's tab10 cycle (rgb 0..1); entry 0 is the default line/bar colour ("C0"). */
extern const double YT_TAB10[10][3];

/* Ultralytics' class colour: entry cls % 20 of its 20-colour palette (042AFF, 0BDBEB, ...), rgb 0..255. */
void yt_plot_class_color(int cls, uint8_t rgb[3]);

/* The grey (0 black or 1 white) that reads best on a label background of colour rgb. */
double yt_plot_text_gray(const uint8_t rgb[3]);

/* A white w x h RGB24 canvas with the plot font selected; the surface goes to *surf. Check the context's status
 * (cairo_status) before drawing much: a failed allocation gives an inert context. */
cairo_t *yt_canvas_new(int w, int h, cairo_surface_t **surf);

/* Draws s with its box anchored at (x, y): halign 0 left .. 1 right, valign 0 top .. 1 bottom, in the frame
 * rotated by angle (radians) about the anchor. */
void yt_canvas_text(cairo_t *cr, double x, double y, const char *s, double size, double halign, double valign,
                    double angle);

/* An axis step of 1, 2 or 5 x 10^k giving about five intervals over span. */
double yt_canvas_nice_step(double span);

/* Writes the canvas to path (.png, or .jpg/.jpeg at JPEG quality 90) through a temporary and a durable rename,
 * so a kill mid-plot leaves the old file or none; destroys cr and surf either way. 0 or -1 with yt_error
 * naming the path. */
int yt_canvas_save(cairo_surface_t *surf, cairo_t *cr, const char *path);

#endif
