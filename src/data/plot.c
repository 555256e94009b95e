/* Batch plots drawn with cairo (see plot.h). */
#include "data/plot.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/image.h"

/* 20-colour palette (the one Ultralytics' plots use), RGB hex */
static const uint32_t PALETTE[20] = {0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17,
                                     0x3DDB86, 0x1A9334, 0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF,
                                     0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7};

static void set_rgb(cairo_t *cr, uint32_t c) { cairo_set_source_rgb(cr, (c >> 16 & 255) / 255.0, (c >> 8 & 255) / 255.0, (c & 255) / 255.0); }

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
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
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
            if (a->conf && a->conf[j] < 0.25f) continue;
            const float *b = a->bboxes + 4 * j;
            double sx = a->boxes_in_pixels ? 1 : a->W, sy = a->boxes_in_pixels ? 1 : a->H;
            double x1 = (b[0] - b[2] / 2) * sx * scale + ox, y1 = (b[1] - b[3] / 2) * sy * scale + oy;
            double bw = b[2] * sx * scale, bh = b[3] * sy * scale;
            int c = (int)a->cls[j];
            uint32_t col = PALETTE[(c < 0 ? -c : c) % 20];
            set_rgb(cr, col);
            cairo_set_line_width(cr, fmax(1.0, fmin(th, tw) / 200.0));
            cairo_rectangle(cr, x1, y1, bw, bh);
            cairo_stroke(cr);
            char label[160];
            const char *name = (a->names && c >= 0 && c < a->nnames && a->names[c]) ? a->names[c] : NULL;
            if (name) snprintf(label, sizeof label, "%s", name);
            else snprintf(label, sizeof label, "%d", c);
            if (a->conf) snprintf(label + strlen(label), sizeof label - strlen(label), " %.1f", a->conf[j]);
            double lfs = fs * 0.8;
            cairo_set_font_size(cr, lfs);
            cairo_text_extents_t ext;
            cairo_text_extents(cr, label, &ext);
            double ty = y1 - lfs - 4 >= oy ? y1 - lfs - 4 : y1;
            cairo_rectangle(cr, x1, ty, ext.x_advance + 4, lfs + 4);
            cairo_fill(cr);
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_move_to(cr, x1 + 2, ty + lfs);
            cairo_show_text(cr, label);
        }
    }
    cairo_destroy(cr);
    cairo_surface_destroy(tile);
    cairo_surface_flush(cs);
    /* surface -> RGB -> file */
    uint8_t *rgb = malloc((size_t)MH * MW * 3 + 1);
    if (!rgb) {
        cairo_surface_destroy(cs);
        return yt_error("plot_batch: out of memory");
    }
    uint8_t *d = cairo_image_surface_get_data(cs);
    int st = cairo_image_surface_get_stride(cs);
    for (int y = 0; y < MH; y++) {
        const uint32_t *row = (const uint32_t *)(d + (size_t)y * st);
        for (int x = 0; x < MW; x++) {
            uint8_t *o = rgb + ((size_t)y * MW + x) * 3;
            o[0] = row[x] >> 16 & 255, o[1] = row[x] >> 8 & 255, o[2] = row[x] & 255;
        }
    }
    cairo_surface_destroy(cs);
    int rc = yt_image_save(path, rgb, MH, MW, 90);
    free(rgb);
    return rc;
}
