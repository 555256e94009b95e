/* Shared cairo plumbing of the figures (see canvas.h). */
#include "metrics/canvas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "data/image.h"
#include "io/durable.h"

#define JPEG_QUALITY 90

const double YT_TAB10[10][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741},
    {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
};

static const unsigned PALETTE[20] = {0x042AFF, 0x0BDBEB, 0xF3F3F3, 0x00DFB7, 0x111F68, 0xFF6FDD, 0xFF444F,
                                     0xCCED00, 0x00F344, 0xBD00FF, 0x00B4FF, 0xDD00BA, 0x00FFFF, 0x26C000,
                                     0x01FFB3, 0x7D24FF, 0x7B0068, 0xFF1B6C, 0xFC6D2F, 0xA2FF0B};

void yt_plot_class_color(int cls, uint8_t rgb[3])
{
    unsigned c = PALETTE[((cls % 20) + 20) % 20];
    rgb[0] = (uint8_t)(c >> 16), rgb[1] = (uint8_t)(c >> 8), rgb[2] = (uint8_t)c;
}

double yt_plot_text_gray(const uint8_t rgb[3])
{
    double lum = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0;
    return lum > 0.6 ? 0.0 : 1.0; /* dark text on light colours */
}

cairo_t *yt_canvas_new(int w, int h, cairo_surface_t **surf)
{
    *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(*surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, YT_PLOT_FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return cr;
}

void yt_canvas_text(cairo_t *cr, double x, double y, const char *s, double size, double halign, double valign,
                    double angle)
{
    cairo_text_extents_t e;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, s, &e);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -e.x_bearing - e.width * halign, -e.y_bearing - e.height * valign);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

double yt_canvas_nice_step(double span)
{
    if (!(span > 0)) return 1;
    double raw = span / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static int ends_with_png(const char *path)
{
    size_t n = strlen(path);
    return n >= 4 && strcasecmp(path + n - 4, ".png") == 0;
}

/* JPEG: the pixels go through yt_image_save (SDL2_image), which writes durably itself. */
static int save_jpeg(cairo_surface_t *surf, const char *path)
{
    int w = cairo_image_surface_get_width(surf), h = cairo_image_surface_get_height(surf);
    uint8_t *rgb = malloc((size_t)w * h * 3 + 1);
    if (!rgb) return yt_error("plot %s: out of memory", path);
    cairo_surface_flush(surf);
    const uint8_t *d = cairo_image_surface_get_data(surf);
    int stride = cairo_image_surface_get_stride(surf);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(d + (size_t)y * stride);
        uint8_t *o = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++)
            o[3 * x] = row[x] >> 16 & 255, o[3 * x + 1] = row[x] >> 8 & 255, o[3 * x + 2] = row[x] & 255;
    }
    int rc = yt_image_save(path, rgb, h, w, JPEG_QUALITY);
    free(rgb);
    return rc;
}

/* PNG straight from the surface, through a temporary and yt_durable_rename. */
static int save_png(cairo_surface_t *surf, const char *path)
{
    char *tmp = yt_temp_path(path);
    if (!tmp) return yt_error_prefix("plot %s: ", path);
    cairo_status_t st = cairo_surface_write_to_png(surf, tmp);
    if (st != CAIRO_STATUS_SUCCESS) {
        remove(tmp);
        free(tmp);
        return yt_error("plot %s: %s", path, cairo_status_to_string(st));
    }
    int rc = yt_durable_rename(tmp, path);
    free(tmp);
    return rc < 0 ? yt_error_prefix("plot %s: ", path) : 0;
}

int yt_canvas_save(cairo_surface_t *surf, cairo_t *cr, const char *path)
{
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(surf);
    int rc;
    if (st != CAIRO_STATUS_SUCCESS)
        rc = yt_error("plot %s: %s", path, cairo_status_to_string(st));
    else
        rc = ends_with_png(path) ? save_png(surf, path) : save_jpeg(surf, path);
    cairo_surface_destroy(surf);
    return rc;
}
