/* Validation plots (confusion matrix heat map, precision-recall and metric-confidence curves), results.png and
 * detections drawn on an image, laid out like Ultralytics' matplotlib figures (see plots.h). */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "metrics/canvas.h"
#include "metrics/plots.h"

/* matplotlib "Blues" (sampled), v in [0, 1] */
static void blues(double v, double *r, double *g, double *b)
{
    static const double s[9][3] = {{0.969, 0.984, 1.000}, {0.871, 0.922, 0.969}, {0.776, 0.859, 0.937},
                                   {0.620, 0.792, 0.882}, {0.420, 0.682, 0.839}, {0.259, 0.573, 0.776},
                                   {0.129, 0.443, 0.710}, {0.031, 0.318, 0.612}, {0.031, 0.188, 0.420}};
    if (!(v >= 0)) v = 0;
    if (v > 1) v = 1;
    double t = v * 8;
    int i = (int)t;
    if (i >= 8) i = 7;
    double f = t - i;
    *r = s[i][0] + f * (s[i + 1][0] - s[i][0]);
    *g = s[i][1] + f * (s[i + 1][1] - s[i][1]);
    *b = s[i][2] + f * (s[i + 1][2] - s[i][2]);
}

int yt_plot_confusion_matrix(const char *path, const double *matrix, int nc, const char *const *names, int normalize)
{
    if (nc < 1) return yt_error("plot_confusion_matrix: nc must be >= 1");
    const int n = nc + 1;
    double *a = malloc((size_t)n * n * sizeof *a);
    if (!a) return yt_error("plot_confusion_matrix: out of memory");
    for (int j = 0; j < n; j++) {
        double col = 0;
        for (int i = 0; i < n; i++) col += matrix[i * n + j];
        for (int i = 0; i < n; i++) a[i * n + j] = normalize ? matrix[i * n + j] / (col + 1e-9) : matrix[i * n + j];
    }
    double vmax = normalize ? 1.0 : 0;
    if (!normalize)
        for (int i = 0; i < n * n; i++)
            if (a[i] > vmax) vmax = a[i];
    if (vmax <= 0) vmax = 1;

    const int W = 1500, H = 1125;
    const int ticks = nc < 99;
    const double left = ticks ? 190 : 100, top = 70, right = 170, bottom = ticks ? 190 : 100;
    const double gw = W - left - right, gh = H - top - bottom;
    const double cw = gw / n, ch = gh / n;
    cairo_surface_t *surf;
    cairo_t *cr = yt_canvas_new(W, H, &surf);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double v = a[i * n + j], r, g, b;
            if (v < 0.005) { /* Ultralytics leaves tiny cells blank */
                r = g = b = 1;
            } else {
                blues(v / vmax, &r, &g, &b);
            }
            cairo_set_source_rgb(cr, r, g, b);
            cairo_rectangle(cr, left + j * cw, top + i * ch, cw + 0.5, ch + 0.5);
            cairo_fill(cr);
            if (nc < 30 && v >= 0.005) {
                char buf[32];
                snprintf(buf, sizeof buf, normalize ? "%.2f" : "%.0f", v);
                double lum = 0.299 * r + 0.587 * g + 0.114 * b;
                cairo_set_source_rgb(cr, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0, lum < 0.5 ? 1 : 0);
                double fs = fmin(cw, ch) * 0.32;
                yt_canvas_text(cr, left + (j + 0.5) * cw, top + (i + 0.5) * ch, buf, fs > 18 ? 18 : fs, 0.5, 0.5, 0);
            }
        }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, left, top, gw, gh);
    cairo_stroke(cr);
    if (ticks) {
        double fs = fmin(14, fmax(5, fmin(cw, ch) * 0.6));
        for (int k = 0; k < n; k++) {
            char buf[64];
            const char *s = k == nc ? "background" : names && names[k] ? names[k] : NULL;
            if (!s) {
                snprintf(buf, sizeof buf, "%d", k);
                s = buf;
            }
            yt_canvas_text(cr, left + (k + 0.5) * cw, top + gh + 8, s, fs, 1.0, 0.5, -M_PI / 2); /* x: true */
            yt_canvas_text(cr, left - 8, top + (k + 0.5) * ch, s, fs, 1.0, 0.5, 0);              /* y: predicted */
        }
    }
    yt_canvas_text(cr, left + gw / 2, H - 30, "True", 20, 0.5, 0.5, 0);
    yt_canvas_text(cr, 30, top + gh / 2, "Predicted", 20, 0.5, 0.5, -M_PI / 2);
    yt_canvas_text(cr, left + gw / 2, 35, normalize ? "Confusion Matrix Normalized" : "Confusion Matrix", 24, 0.5, 0.5,
                   0);
    /* colour bar */
    double bx = W - right + 40, bw = 30;
    for (int k = 0; k < 256; k++) {
        double r, g, b;
        blues(1.0 - k / 255.0, &r, &g, &b);
        cairo_set_source_rgb(cr, r, g, b);
        cairo_rectangle(cr, bx, top + gh * k / 256.0, bw, gh / 256.0 + 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, bx, top, bw, gh);
    cairo_stroke(cr);
    for (int k = 0; k <= 5; k++) {
        char buf[32];
        double v = vmax * k / 5.0;
        snprintf(buf, sizeof buf, normalize ? "%.1f" : "%.0f", v);
        yt_canvas_text(cr, bx + bw + 6, top + gh * (1 - k / 5.0), buf, 14, 0, 0.5, 0);
    }
    free(a);
    return yt_canvas_save(surf, cr, path);
}

/* Axes frame with ticks 0..1 on both axes; returns the plot rectangle. */
static void axes(cairo_t *cr, double x0, double y0, double w, double h, const char *xlabel, const char *ylabel,
                 const char *title)
{
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1.5);
    cairo_rectangle(cr, x0, y0, w, h);
    cairo_stroke(cr);
    for (int k = 0; k <= 5; k++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%.1f", k / 5.0);
        double x = x0 + w * k / 5.0, y = y0 + h - h * k / 5.0;
        cairo_move_to(cr, x, y0 + h);
        cairo_line_to(cr, x, y0 + h + 6);
        cairo_move_to(cr, x0, y);
        cairo_line_to(cr, x0 - 6, y);
        cairo_stroke(cr);
        yt_canvas_text(cr, x, y0 + h + 10, buf, 15, 0.5, 0, 0);
        yt_canvas_text(cr, x0 - 10, y, buf, 15, 1, 0.5, 0);
    }
    yt_canvas_text(cr, x0 + w / 2, y0 + h + 45, xlabel, 18, 0.5, 0.5, 0);
    yt_canvas_text(cr, x0 - 60, y0 + h / 2, ylabel, 18, 0.5, 0.5, -M_PI / 2);
    yt_canvas_text(cr, x0 + w / 2, y0 - 25, title, 20, 0.5, 0.5, 0);
}

static void polyline(cairo_t *cr, double x0, double y0, double w, double h, const double *px, const double *py,
                     int npts)
{
    for (int i = 0; i < npts; i++) {
        double x = x0 + w * px[i], y = y0 + h - h * (py[i] != py[i] ? 0 : py[i]);
        if (i == 0)
            cairo_move_to(cr, x, y);
        else
            cairo_line_to(cr, x, y);
    }
    cairo_stroke(cr);
}

/* Legend entries drawn at the top right outside the axes. */
static void legend(cairo_t *cr, double x, double y, int idx, const double *rgb, double lw, const char *label)
{
    double yy = y + idx * 20;
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_set_line_width(cr, lw);
    cairo_move_to(cr, x, yy);
    cairo_line_to(cr, x + 28, yy);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    yt_canvas_text(cr, x + 36, yy, label, 13, 0, 0.5, 0);
}

static int curve_plot(const char *path, const double *px, int npts, const double *py, int k, const double *ap50,
                      const char *const *labels, const char *xlabel, const char *ylabel, const char *title, int pr_mode)
{
    if (npts < 2 || k < 0) return yt_error("plot %s: need >= 2 points", path);
    double *mean = calloc((size_t)npts, sizeof *mean);
    double *sm = calloc((size_t)npts, sizeof *sm);
    if (!mean || !sm) {
        free(mean);
        free(sm);
        return yt_error("plot %s: out of memory", path);
    }
    for (int c = 0; c < k; c++)
        for (int i = 0; i < npts; i++) mean[i] += py[(size_t)c * npts + i] / k;
    if (!pr_mode) { /* box filter of width ~5% of the points, edge-padded */
        int nf = (int)(lround(npts * 0.05 * 2) / 2 + 1), half = nf / 2;
        for (int i = 0; i < npts; i++) {
            double s = 0;
            for (int j = -half; j <= half; j++) {
                int q = i + j < 0 ? 0 : i + j >= npts ? npts - 1 : i + j;
                s += mean[q];
            }
            sm[i] = s / nf;
        }
    } else {
        memcpy(sm, mean, (size_t)npts * sizeof *sm);
    }
    const int W = 1350, H = 900;
    const double x0 = 110, y0 = 70, w = 850, h = 720;
    cairo_surface_t *surf;
    cairo_t *cr = yt_canvas_new(W, H, &surf);
    axes(cr, x0, y0, w, h, xlabel, ylabel, title);
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, w, h);
    cairo_clip(cr);
    const double grey[3] = {0.5, 0.5, 0.5};
    for (int c = 0; c < k; c++) {
        const double *col = k < 21 ? YT_TAB10[c % 10] : grey;
        cairo_set_source_rgb(cr, col[0], col[1], col[2]);
        cairo_set_line_width(cr, 1.2);
        polyline(cr, x0, y0, w, h, px, py + (size_t)c * npts, npts);
    }
    const double blue[3] = {0, 0, 1};
    if (k > 0) {
        cairo_set_source_rgb(cr, blue[0], blue[1], blue[2]);
        cairo_set_line_width(cr, 3.5);
        polyline(cr, x0, y0, w, h, px, sm, npts);
    }
    cairo_restore(cr);
    int li = 0;
    if (k < 21)
        for (int c = 0; c < k; c++) {
            char buf[128], nb[32];
            const char *nm = labels && labels[c] ? labels[c] : (snprintf(nb, sizeof nb, "class %d", c), nb);
            if (pr_mode)
                snprintf(buf, sizeof buf, "%.40s %.3f", nm, ap50 ? ap50[c] : 0.0);
            else
                snprintf(buf, sizeof buf, "%.40s", nm);
            legend(cr, x0 + w + 25, y0 + 10, li++, YT_TAB10[c % 10], 1.2, buf);
        }
    if (k > 0) {
        char buf[128];
        if (pr_mode) {
            double m = 0;
            for (int c = 0; c < k; c++) m += ap50 ? ap50[c] : 0;
            snprintf(buf, sizeof buf, "all classes %.3f mAP@0.5", m / k);
        } else {
            int bi = 0;
            for (int i = 1; i < npts; i++)
                if (sm[i] > sm[bi]) bi = i;
            snprintf(buf, sizeof buf, "all classes %.2f at %.3f", sm[bi], px[bi]);
        }
        legend(cr, x0 + w + 25, y0 + 10, li++, blue, 3.5, buf);
    }
    free(mean);
    free(sm);
    return yt_canvas_save(surf, cr, path);
}

int yt_plot_pr_curve(const char *path, const double *px, int npts, const double *py, int k, const double *ap50,
                     const char *const *labels)
{
    return curve_plot(path, px, npts, py, k, ap50, labels, "Recall", "Precision", "Precision-Recall Curve", 1);
}

int yt_plot_mc_curve(const char *path, const double *px, int npts, const double *py, int k, const char *const *labels,
                     const char *xlabel, const char *ylabel)
{
    char title[96];
    snprintf(title, sizeof title, "%.60s-Confidence Curve", ylabel ? ylabel : "Metric");
    return curve_plot(path, px, npts, py, k, NULL, labels, xlabel ? xlabel : "Confidence", ylabel ? ylabel : "Metric",
                      title, 0);
}

/* ---- detections drawn on an image (predictor Results.plot) ---- */

int yt_draw_detections(uint8_t *px, int h, int w, const float *rows, int n, const char *const *labels, double lw,
                       double fs)
{
    if (h < 1 || w < 1) return yt_error("draw_detections: empty image");
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        return yt_error("draw_detections: cannot create a %dx%d surface", w, h);
    }
    cairo_surface_flush(surf);
    unsigned char *data = cairo_image_surface_get_data(surf);
    int stride = cairo_image_surface_get_stride(surf);
    for (int y = 0; y < h; y++) {
        uint32_t *d = (uint32_t *)(data + (size_t)y * stride);
        const uint8_t *s = px + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) d[x] = ((uint32_t)s[3 * x] << 16) | ((uint32_t)s[3 * x + 1] << 8) | s[3 * x + 2];
    }
    cairo_surface_mark_dirty(surf);
    cairo_t *cr = cairo_create(surf);
    cairo_select_font_face(cr, YT_PLOT_FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
    for (int i = 0; i < n; i++) {
        const float *r = rows + (size_t)i * 6;
        uint8_t c[3];
        yt_plot_class_color((int)r[5], c);
        double cr_ = c[0] / 255.0, cg = c[1] / 255.0, cb = c[2] / 255.0;
        cairo_set_source_rgb(cr, cr_, cg, cb);
        cairo_set_line_width(cr, lw);
        double x1 = floor(r[0]), y1 = floor(r[1]), x2 = floor(r[2]), y2 = floor(r[3]);
        cairo_rectangle(cr, x1 + lw / 2, y1 + lw / 2, fmax(x2 - x1 - lw, 0), fmax(y2 - y1 - lw, 0));
        cairo_stroke(cr);
        const char *label = labels ? labels[i] : NULL;
        if (!label || !*label) continue;
        cairo_text_extents_t e;
        cairo_font_extents_t fe;
        cairo_set_font_size(cr, fs);
        cairo_text_extents(cr, label, &e);
        cairo_font_extents(cr, &fe);
        double tw = e.x_advance + 2 * lw / 3 + 2, th = fe.ascent + fe.descent + 2;
        int outside = y1 - th >= 0; /* label above the box when it fits */
        double ly = outside ? y1 - th : y1;
        cairo_rectangle(cr, x1, ly, tw, th);
        cairo_fill(cr);
        double tc = yt_plot_text_gray(c);
        cairo_set_source_rgb(cr, tc, tc, tc);
        cairo_move_to(cr, x1 + lw / 3 + 1, ly + 1 + fe.ascent);
        cairo_show_text(cr, label);
    }
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_flush(surf);
    for (int y = 0; y < h; y++) {
        const uint32_t *s = (const uint32_t *)(data + (size_t)y * stride);
        uint8_t *d = px + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            d[3 * x] = (uint8_t)(s[x] >> 16), d[3 * x + 1] = (uint8_t)(s[x] >> 8), d[3 * x + 2] = (uint8_t)s[x];
        }
    }
    cairo_surface_destroy(surf);
    if (st != CAIRO_STATUS_SUCCESS) return yt_error("draw_detections: %s", cairo_status_to_string(st));
    return 0;
}

/* ---- results.png: training curves in a grid ---- */

static void series_path(cairo_t *cr, const double *x, const double *y, int n, double x0, double y0, double w, double h,
                        double xlo, double xhi, double ylo, double yhi)
{
    int pen = 0;
    for (int i = 0; i < n; i++) {
        if (y[i] != y[i]) { /* NaN: a gap */
            pen = 0;
            continue;
        }
        double px = x0 + w * (x[i] - xlo) / (xhi - xlo), py = y0 + h - h * (y[i] - ylo) / (yhi - ylo);
        if (!pen)
            cairo_move_to(cr, px, py);
        else
            cairo_line_to(cr, px, py);
        pen = 1;
    }
}

int yt_plot_results(const char *path, int nplots, const char *const *titles, const double *x, int npts, const double *y,
                    const double *ysmooth, const char *label)
{
    if (nplots < 1 || npts < 0) return yt_error("plot_results: nothing to plot");
    const int ncols = nplots < 5 ? nplots : 5, nrows = (nplots + ncols - 1) / ncols;
    const double cw = 360, chh = 360, W = cw * ncols, H = chh * nrows;
    cairo_surface_t *surf;
    cairo_t *cr = yt_canvas_new((int)W, (int)H, &surf);
    double xlo = 0, xhi = 1;
    if (npts > 0) {
        xlo = xhi = x[0];
        for (int i = 1; i < npts; i++) xlo = fmin(xlo, x[i]), xhi = fmax(xhi, x[i]);
    }
    if (xhi <= xlo) xlo -= 0.5, xhi += 0.5;
    for (int p = 0; p < nplots; p++) {
        const double *yy = y + (size_t)p * npts, *ys = ysmooth ? ysmooth + (size_t)p * npts : NULL;
        double ox = cw * (p % ncols), oy = chh * (p / ncols);
        double x0 = ox + 62, y0 = oy + 40, w = cw - 80, h = chh - 85;
        double ylo = INFINITY, yhi = -INFINITY;
        for (int i = 0; i < npts; i++)
            if (yy[i] == yy[i]) ylo = fmin(ylo, yy[i]), yhi = fmax(yhi, yy[i]);
        if (!(ylo <= yhi)) ylo = 0, yhi = 1;
        if (yhi - ylo < 1e-12) ylo -= fabs(ylo) * 0.05 + 1e-3, yhi += fabs(yhi) * 0.05 + 1e-3;
        double pad = (yhi - ylo) * 0.05;
        ylo -= pad, yhi += pad;
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x0, y0, w, h);
        cairo_stroke(cr);
        yt_canvas_text(cr, x0 + w / 2, oy + 20, titles && titles[p] ? titles[p] : "", 15, 0.5, 0.5, 0);
        double ys_ = yt_canvas_nice_step(yhi - ylo);
        for (double t = ceil(ylo / ys_) * ys_; t <= yhi + 1e-12; t += ys_) {
            char buf[32];
            double py = y0 + h - h * (t - ylo) / (yhi - ylo);
            snprintf(buf, sizeof buf, "%.3g", fabs(t) < ys_ * 1e-6 ? 0.0 : t);
            cairo_move_to(cr, x0 - 4, py);
            cairo_line_to(cr, x0, py);
            cairo_stroke(cr);
            yt_canvas_text(cr, x0 - 6, py, buf, 11, 1, 0.5, 0);
        }
        double xs = yt_canvas_nice_step(xhi - xlo);
        if (xs < 1) xs = 1;
        for (double t = ceil(xlo / xs) * xs; t <= xhi + 1e-12; t += xs) {
            char buf[32];
            double px = x0 + w * (t - xlo) / (xhi - xlo);
            snprintf(buf, sizeof buf, "%.0f", t);
            cairo_move_to(cr, px, y0 + h);
            cairo_line_to(cr, px, y0 + h + 4);
            cairo_stroke(cr);
            yt_canvas_text(cr, px, y0 + h + 7, buf, 11, 0.5, 0, 0);
        }
        cairo_save(cr);
        cairo_rectangle(cr, x0, y0, w, h);
        cairo_clip(cr);
        cairo_set_source_rgb(cr, YT_TAB10[0][0], YT_TAB10[0][1], YT_TAB10[0][2]);
        cairo_set_line_width(cr, 2);
        series_path(cr, x, yy, npts, x0, y0, w, h, xlo, xhi, ylo, yhi);
        cairo_stroke(cr);
        for (int i = 0; i < npts; i++) { /* markers */
            if (yy[i] != yy[i]) continue;
            cairo_arc(cr, x0 + w * (x[i] - xlo) / (xhi - xlo), y0 + h - h * (yy[i] - ylo) / (yhi - ylo), 3, 0,
                      2 * M_PI);
            cairo_fill(cr);
        }
        if (ys) {
            static const double dash[1] = {2.5};
            cairo_set_source_rgb(cr, YT_TAB10[1][0], YT_TAB10[1][1], YT_TAB10[1][2]);
            cairo_set_dash(cr, dash, 1, 0);
            series_path(cr, x, ys, npts, x0, y0, w, h, xlo, xhi, ylo, yhi);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        cairo_restore(cr);
        if (p == 1) { /* legend, as Ultralytics puts it on the second axes */
            legend(cr, x0 + w - 120, y0 + 14, 0, YT_TAB10[0], 2, label ? label : "results");
            if (ys) legend(cr, x0 + w - 120, y0 + 14, 1, YT_TAB10[1], 2, "smooth");
        }
    }
    return yt_canvas_save(surf, cr, path);
}
