/* Batch plots drawn with cairo (see plot.h). */
#include "data/plot.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "metrics/canvas.h"
#include "metrics/nms.h"

void yt_plot_box_label(char *buf, size_t size, const char *name, int cls, const float *conf)
{
    if (!buf || size == 0) return;
    int k = name ? snprintf(buf, size, "%.100s", name) : snprintf(buf, size, "%d", cls);
    if (conf && k >= 0 && (size_t)k < size) snprintf(buf + k, size - (size_t)k, " %.2f", *conf);
}

int yt_plot_batch(const yt_plot_batch_args *a, const char *path)
{
    int maxsub = a->max_subplots > 0 ? a->max_subplots : 16;
    int maxsize = a->max_size > 0 ? a->max_size : 1920;
    int bs = a->B < maxsub ? a->B : maxsub;
    if (bs < 1 || a->H < 1 || a->W < 1) return yt_error("plot_batch: empty batch");
    int ns = (int)ceil(sqrt((double)bs));
    double scale = (double)maxsize / (ns * (a->H > a->W ? a->H : a->W));
    if (scale > 1) scale = 1;
    int th = (int)ceil(a->H * scale), tw = (int)ceil(a->W * scale);
    int MH = ns * th, MW = ns * tw;
    cairo_surface_t *tile = cairo_image_surface_create(CAIRO_FORMAT_RGB24, a->W, a->H);
    cairo_surface_t *cs = cairo_image_surface_create(CAIRO_FORMAT_RGB24, MW, MH);
    if (cairo_surface_status(cs) != CAIRO_STATUS_SUCCESS || cairo_surface_status(tile) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(cs);
        cairo_surface_destroy(tile);
        return yt_error("plot_batch: cannot create a %dx%d surface", MW, MH);
    }
    cairo_t *cr = cairo_create(cs);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    double fs = fmax(10.0, fmin(th, tw) / 22.0);
    cairo_select_font_face(cr, YT_PLOT_FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    size_t plane = (size_t)a->H * a->W;
    for (int k = 0; k < bs; k++) {
        int ox = (k % ns) * tw, oy = (k / ns) * th;
        /* image -> tile surface */
        cairo_surface_flush(tile);
        uint8_t *d = cairo_image_surface_get_data(tile);
        int st = cairo_image_surface_get_stride(tile);
        const uint8_t *R = a->img + (size_t)k * 3 * plane, *G = R + plane, *Bc = G + plane;
        for (int y = 0; y < a->H; y++) {
            uint32_t *row = (uint32_t *)(d + (size_t)y * st);
            for (int x = 0; x < a->W; x++) {
                size_t q = (size_t)y * a->W + x;
                row[x] = (uint32_t)R[q] << 16 | (uint32_t)G[q] << 8 | Bc[q];
            }
        }
        cairo_surface_mark_dirty(tile);
        cairo_save(cr);
        cairo_translate(cr, ox, oy);
        cairo_scale(cr, scale, scale);
        cairo_set_source_surface(cr, tile, 0, 0);
        cairo_paint(cr);
        cairo_restore(cr);
        /* tile border */
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_set_line_width(cr, 2);
        cairo_rectangle(cr, ox + 1, oy + 1, tw - 2, th - 2);
        cairo_stroke(cr);
        /* file name */
        if (a->paths && a->paths[k]) {
            const char *base = strrchr(a->paths[k], '/');
            base = base ? base + 1 : a->paths[k];
            char nm[41];
            snprintf(nm, sizeof nm, "%s", base);
            cairo_set_font_size(cr, fs);
            cairo_set_source_rgb(cr, 220 / 255.0, 220 / 255.0, 220 / 255.0);
            cairo_move_to(cr, ox + 5, oy + fs + 3);
            cairo_show_text(cr, nm);
        }
        /* boxes */
        for (int j = 0; j < a->N; j++) {
            if ((int)a->batch_idx[j] != k) continue;
            if (a->conf && !(a->conf[j] > YT_PREDICT_CONF)) continue;
            const float *b = a->bboxes + 4 * j;
            double sx = a->boxes_in_pixels ? 1 : a->W, sy = a->boxes_in_pixels ? 1 : a->H;
            double x1 = (b[0] - b[2] / 2) * sx * scale + ox, y1 = (b[1] - b[3] / 2) * sy * scale + oy;
            double bw = b[2] * sx * scale, bh = b[3] * sy * scale;
            int c = (int)a->cls[j];
            uint8_t col[3];
            yt_plot_class_color(c, col);
            cairo_set_source_rgb(cr, col[0] / 255.0, col[1] / 255.0, col[2] / 255.0);
            cairo_set_line_width(cr, fmax(1.0, fmin(th, tw) / 200.0));
            cairo_rectangle(cr, x1, y1, bw, bh);
            cairo_stroke(cr);
            char label[128];
            const char *name = (a->names && c >= 0 && c < a->nnames && a->names[c]) ? a->names[c] : NULL;
            yt_plot_box_label(label, sizeof label, name, c, a->conf ? a->conf + j : NULL);
            double lfs = fs * 0.8;
            cairo_set_font_size(cr, lfs);
            cairo_text_extents_t ext;
            cairo_text_extents(cr, label, &ext);
            double ty = y1 - lfs - 4 >= oy ? y1 - lfs - 4 : y1;
            cairo_rectangle(cr, x1, ty, ext.x_advance + 4, lfs + 4);
            cairo_fill(cr);
            double gray = yt_plot_text_gray(col);
            cairo_set_source_rgb(cr, gray, gray, gray);
            cairo_move_to(cr, x1 + 2, ty + lfs);
            cairo_show_text(cr, label);
        }
    }
    cairo_surface_destroy(tile);
    return yt_canvas_save(cs, cr, path);
}
