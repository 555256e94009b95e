/* The training-label figures Ultralytics writes when training starts (its plot_labels): labels.jpg and
 * labels_correlogram.jpg. The binning is here too, so tests check the numbers the figures show. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "metrics/canvas.h"
#include "metrics/plots.h"

static const char *const VAR_NAMES[4] = {"x", "y", "width", "height"};

/* seaborn's "light:C0" colour map: from C0 at lightness 0.95 to C0 */
static const double LIGHT_C0[3] = {0.915, 0.956, 0.985};

#define TICK_FS 22.0
#define LABEL_FS 27.0
#define TICK_LEN 8.0

/* ---- binning ---- */

int yt_label_class_counts(const float *cls, int64_t n, int nc, int64_t *counts)
{
    if (nc < 1) return yt_error("label class counts: nc must be >= 1, got %d", nc);
    memset(counts, 0, (size_t)nc * sizeof *counts);
    for (int64_t i = 0; i < n; i++) {
        float c = cls[i];
        if (!(c >= 0 && c < nc) || c != floorf(c))
            return yt_error("label class counts: box %lld has class %g, not an integer in 0..%d", (long long)i, c,
                            nc - 1);
        counts[(int)c]++;
    }
    return 0;
}

/* v in 0..1 -> bin 0..bins-1 (1 itself in the last bin, outliers clamped) */
static int bin_of(float v, int bins)
{
    int b = (int)floor((double)v * bins);
    return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

static int check_box(const float *xywh, int64_t i)
{
    const float *b = xywh + 4 * i;
    for (int k = 0; k < 4; k++)
        if (!isfinite(b[k]))
            return yt_error("label histogram: box %lld has a non-finite %s (%g)", (long long)i, VAR_NAMES[k], b[k]);
    return 0;
}

int yt_label_hist1d(const float *xywh, int64_t n, int col, int bins, int64_t *counts)
{
    if (col < 0 || col > 3 || bins < 1) return yt_error("label histogram: column %d / %d bins", col, bins);
    memset(counts, 0, (size_t)bins * sizeof *counts);
    for (int64_t i = 0; i < n; i++) {
        if (check_box(xywh, i) < 0) return -1;
        counts[bin_of(xywh[4 * i + col], bins)]++;
    }
    return 0;
}

int yt_label_hist2d(const float *xywh, int64_t n, int cx, int cy, int bins, int64_t *counts)
{
    if (cx < 0 || cx > 3 || cy < 0 || cy > 3 || bins < 1)
        return yt_error("label histogram: columns %d, %d / %d bins", cx, cy, bins);
    memset(counts, 0, (size_t)bins * bins * sizeof *counts);
    for (int64_t i = 0; i < n; i++) {
        if (check_box(xywh, i) < 0) return -1;
        counts[(size_t)bin_of(xywh[4 * i + cy], bins) * bins + bin_of(xywh[4 * i + cx], bins)]++;
    }
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

double yt_hist_pmax_level(const int64_t *counts, int64_t ncells, double pmax)
{
    int64_t total = 0;
    for (int64_t i = 0; i < ncells; i++) total += counts[i];
    if (total <= 0) return 0;
    int64_t *s = malloc((size_t)ncells * sizeof *s);
    if (!s) { /* no scratch: saturate at the largest count instead */
        int64_t m = 0;
        for (int64_t i = 0; i < ncells; i++) m = counts[i] > m ? counts[i] : m;
        return (double)m;
    }
    memcpy(s, counts, (size_t)ncells * sizeof *s);
    qsort(s, (size_t)ncells, sizeof *s, cmp_desc);
    double want = (1.0 - pmax) * (double)total, run = 0, level = (double)s[ncells - 1];
    for (int64_t i = 0; i < ncells; i++) {
        run += (double)s[i];
        if (run >= want) {
            level = (double)s[i];
            break;
        }
    }
    free(s);
    return level;
}

static const int PAIRS[6][2] = {{1, 0}, {2, 0}, {2, 1}, {3, 0}, {3, 1}, {3, 2}}; /* (row var, column var) */

int yt_label_correlogram_bins(const float *xywh, int64_t n, int64_t *diag, int64_t *pairs)
{
    const int B = YT_LABEL_BINS;
    for (int k = 0; k < 4; k++)
        if (yt_label_hist1d(xywh, n, k, B, diag + (size_t)k * B) < 0) return -1;
    for (int p = 0; p < 6; p++)
        if (yt_label_hist2d(xywh, n, PAIRS[p][1], PAIRS[p][0], B, pairs + (size_t)p * B * B) < 0) return -1;
    return 0;
}

/* ---- drawing ---- */

/* An axes rectangle (pixels) and the data range it maps. */
typedef struct {
    double x0, y0, w, h;
    double xlo, xhi, ylo, yhi;
} frame;

static double fx(const frame *f, double v) { return f->x0 + f->w * (v - f->xlo) / (f->xhi - f->xlo); }
static double fy(const frame *f, double v) { return f->y0 + f->h - f->h * (v - f->ylo) / (f->yhi - f->ylo); }

static void ink(cairo_t *cr) { cairo_set_source_rgb(cr, 0.15, 0.15, 0.15); }

/* Ticks every step over [lo, hi] on the bottom (axis 0) or left (axis 1) edge, labelled with `decimals` digits
 * when labelled. */
static void ticks(cairo_t *cr, const frame *f, int axis, double lo, double hi, double step, int decimals, int labelled)
{
    ink(cr);
    cairo_set_line_width(cr, 1.5);
    for (double t = ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.*f", decimals, fabs(t) < step * 1e-6 ? 0.0 : t);
        if (axis) {
            double y = round(fy(f, t)) + 0.5;
            cairo_move_to(cr, f->x0, y);
            cairo_line_to(cr, f->x0 - TICK_LEN, y);
            cairo_stroke(cr);
            if (labelled) yt_canvas_text(cr, f->x0 - TICK_LEN - 6, y, buf, TICK_FS, 1, 0.5, 0);
        } else {
            double x = round(fx(f, t)) + 0.5;
            cairo_move_to(cr, x, f->y0 + f->h);
            cairo_line_to(cr, x, f->y0 + f->h + TICK_LEN);
            cairo_stroke(cr);
            if (labelled) yt_canvas_text(cr, x, f->y0 + f->h + TICK_LEN + 6, buf, TICK_FS, 0.5, 0, 0);
        }
    }
}

/* Ticks 0.0, 0.2 .. 1.0 of a unit axis. */
static void unit_ticks(cairo_t *cr, const frame *f, int axis, int labelled)
{
    ticks(cr, f, axis, 0, 1, 0.2, 1, labelled);
}

/* The left and bottom edges (seaborn's despined axes). */
static void spines(cairo_t *cr, const frame *f)
{
    ink(cr);
    cairo_set_line_width(cr, 1.5);
    cairo_move_to(cr, f->x0, f->y0);
    cairo_line_to(cr, f->x0, f->y0 + f->h);
    cairo_line_to(cr, f->x0 + f->w, f->y0 + f->h);
    cairo_stroke(cr);
}

static void xlabel(cairo_t *cr, const frame *f, const char *s, double below)
{
    ink(cr);
    yt_canvas_text(cr, f->x0 + f->w / 2, f->y0 + f->h + below, s, LABEL_FS, 0.5, 0, 0);
}

static void ylabel(cairo_t *cr, const frame *f, const char *s, double left)
{
    ink(cr);
    yt_canvas_text(cr, f->x0 - left, f->y0 + f->h / 2, s, LABEL_FS, 0.5, 1, -M_PI / 2);
}

/* A filled rectangle snapped to whole pixels, so neighbouring cells and bars meet without seams. */
static void pixel_rect(cairo_t *cr, double xa, double ya, double xb, double yb)
{
    double x1 = round(fmin(xa, xb)), x2 = round(fmax(xa, xb)), y1 = round(fmin(ya, yb)), y2 = round(fmax(ya, yb));
    if (x2 <= x1) x2 = x1 + 1;
    if (y2 <= y1) return;
    cairo_rectangle(cr, x1, y1, x2 - x1, y2 - y1);
    cairo_fill(cr);
}

/* A bins x bins histogram over the unit square of f, coloured by "light:C0" up to its pmax level. */
static void draw_hist2d(cairo_t *cr, const frame *f, const int64_t *counts, int bins)
{
    double vmax = yt_hist_pmax_level(counts, (int64_t)bins * bins, YT_LABEL_PMAX);
    if (vmax <= 0) return;
    for (int r = 0; r < bins; r++)
        for (int c = 0; c < bins; c++) {
            int64_t v = counts[(size_t)r * bins + c];
            if (v <= 0) continue;
            double t = fmin((double)v / vmax, 1.0);
            cairo_set_source_rgb(cr, LIGHT_C0[0] + t * (YT_TAB10[0][0] - LIGHT_C0[0]),
                                 LIGHT_C0[1] + t * (YT_TAB10[0][1] - LIGHT_C0[1]),
                                 LIGHT_C0[2] + t * (YT_TAB10[0][2] - LIGHT_C0[2]));
            pixel_rect(cr, fx(f, (double)c / bins), fy(f, (double)r / bins), fx(f, (double)(c + 1) / bins),
                       fy(f, (double)(r + 1) / bins));
        }
}

/* A 1-D histogram over 0..1 as C0 bars (seaborn's default look: translucent fill, solid edge). */
static void draw_hist1d(cairo_t *cr, const frame *f, const int64_t *counts, int bins)
{
    for (int k = 0; k < bins; k++) {
        if (counts[k] <= 0) continue;
        double xa = round(fx(f, (double)k / bins)), xb = round(fx(f, (double)(k + 1) / bins));
        double ya = round(fy(f, (double)counts[k])), yb = round(fy(f, 0));
        cairo_set_source_rgba(cr, YT_TAB10[0][0], YT_TAB10[0][1], YT_TAB10[0][2], 0.75);
        pixel_rect(cr, xa, ya, xb, yb);
        cairo_set_source_rgb(cr, YT_TAB10[0][0] * 0.8, YT_TAB10[0][1] * 0.8, YT_TAB10[0][2] * 0.8);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, xa + 0.5, ya + 0.5, xb - xa - 1, yb - ya - 1);
        cairo_stroke(cr);
    }
}

static const char *class_name(const char *const *names, int c, char *buf, size_t n)
{
    if (names && names[c]) return names[c];
    snprintf(buf, n, "%d", c);
    return buf;
}

/* s cut (at a UTF-8 character boundary, with an ellipsis) to fit maxw pixels at the current font size. */
static const char *fit_text(cairo_t *cr, const char *s, double maxw, char *buf, size_t n)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    if (e.x_advance <= maxw) return s;
    size_t len = strlen(s);
    if (len + 4 > n) len = n - 4;
    while (len > 0) {
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--; /* not inside a character */
        memcpy(buf, s, len);
        memcpy(buf + len, "\xe2\x80\xa6", 4); /* "…" and the terminator */
        cairo_text_extents(cr, buf, &e);
        if (e.x_advance <= maxw) return buf;
        len--;
    }
    return "";
}

/* Instances per class as bars in the class colours; names under the bars when 0 < nc < 30, else ids. */
static void bars_panel(cairo_t *cr, double ox, double oy, double side, const int64_t *counts, int nc,
                       const char *const *names)
{
    int named = names && nc > 0 && nc < 30;
    int64_t top = 0;
    for (int c = 0; c < nc; c++) top = counts[c] > top ? counts[c] : top;
    double margin = 0.05 * nc; /* matplotlib's 5% either side */
    frame f = {ox + 120, oy + 30, side - 150, 0, -0.5 - margin, nc - 0.5 + margin, 0, top > 0 ? top * 1.05 : 1};
    /* room under the axis for the longest name (up to 40% of the panel), the font shrunk for many classes */
    double name_fs = fmin(TICK_FS, 0.9 * (side - 150) / (nc + 2 * margin));
    double below = 110;
    if (named) {
        double widest = 0;
        cairo_set_font_size(cr, name_fs);
        for (int c = 0; c < nc; c++) {
            char buf[16];
            cairo_text_extents_t e;
            cairo_text_extents(cr, class_name(names, c, buf, sizeof buf), &e);
            widest = fmax(widest, e.x_advance);
        }
        below = fmin(fmax(widest + TICK_LEN + 20, 60), side * 0.4);
    }
    f.h = side - 30 - below;
    for (int c = 0; c < nc; c++) {
        if (counts[c] == 0) continue;
        uint8_t rgb[3];
        yt_plot_class_color(c, rgb);
        double xa = round(fx(&f, c - 0.4)), xb = round(fx(&f, c + 0.4)), ya = round(fy(&f, (double)counts[c]));
        double yb = round(fy(&f, 0));
        cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
        pixel_rect(cr, xa, ya, xb, yb);
        if (xb - xa >= 4 && yb - ya >= 4) { /* a darker edge keeps light colours (F3F3F3) visible on white */
            cairo_set_source_rgb(cr, rgb[0] / 255.0 * 0.7, rgb[1] / 255.0 * 0.7, rgb[2] / 255.0 * 0.7);
            cairo_set_line_width(cr, 1);
            cairo_rectangle(cr, xa + 0.5, ya + 0.5, xb - xa - 1, yb - ya - 1);
            cairo_stroke(cr);
        }
    }
    ticks(cr, &f, 1, 0, f.yhi, fmax(1, yt_canvas_nice_step(f.yhi)), 0, 1);
    ylabel(cr, &f, "instances", 85);
    if (named) {
        ink(cr);
        cairo_set_line_width(cr, 1.5);
        cairo_set_font_size(cr, name_fs);
        for (int c = 0; c < nc; c++) {
            char id[16], cut[256];
            double x = round(fx(&f, c)) + 0.5;
            cairo_move_to(cr, x, f.y0 + f.h);
            cairo_line_to(cr, x, f.y0 + f.h + TICK_LEN);
            cairo_stroke(cr);
            const char *s = fit_text(cr, class_name(names, c, id, sizeof id), below - TICK_LEN - 20, cut, sizeof cut);
            yt_canvas_text(cr, x, f.y0 + f.h + TICK_LEN + 6, s, name_fs, 1, 0.5, -M_PI / 2);
        }
    } else {
        ticks(cr, &f, 0, 0, nc - 1, fmax(1, yt_canvas_nice_step(nc > 1 ? nc - 1 : 1)), 0, 1);
        xlabel(cr, &f, "classes", TICK_LEN + 40);
    }
}

/* The first YT_LABEL_PLOT_BOXES boxes centred in a white square, to scale, outlined in their class colours. */
static void boxes_panel(cairo_t *cr, double ox, double oy, double side, const float *cls, const float *xywh, int64_t n)
{
    double pad = 40, s = side - 2 * pad, cx = ox + side / 2, cy = oy + side / 2;
    cairo_set_line_width(cr, 1);
    cairo_save(cr);
    cairo_rectangle(cr, ox + pad, oy + pad, s, s);
    cairo_clip(cr);
    for (int64_t i = 0; i < n && i < YT_LABEL_PLOT_BOXES; i++) {
        uint8_t rgb[3];
        yt_plot_class_color((int)cls[i], rgb);
        cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
        double w = fmin(fmax(xywh[4 * i + 2], 0), 1) * s, h = fmin(fmax(xywh[4 * i + 3], 0), 1) * s;
        cairo_rectangle(cr, round(cx - w / 2) + 0.5, round(cy - h / 2) + 0.5, round(w), round(h));
        cairo_stroke(cr);
    }
    cairo_restore(cr);
}

/* A 2-D histogram panel over the unit square with its axis names. */
static void hist2d_panel(cairo_t *cr, double ox, double oy, double side, const int64_t *counts, const char *xname,
                         const char *yname)
{
    frame f = {ox + 120, oy + 30, side - 150, side - 150, 0, 1, 0, 1};
    draw_hist2d(cr, &f, counts, YT_LABEL_BINS);
    unit_ticks(cr, &f, 0, 1);
    unit_ticks(cr, &f, 1, 1);
    xlabel(cr, &f, xname, TICK_LEN + 40);
    ylabel(cr, &f, yname, 85);
}

int yt_plot_labels(const char *path, const float *cls, const float *xywh, int64_t n, int nc, const char *const *names)
{
    if (n < 0) return yt_error("plot %s: %lld boxes", path, (long long)n);
    const int B = YT_LABEL_BINS;
    int64_t *counts = malloc((size_t)(nc > 0 ? nc : 1) * sizeof *counts);
    int64_t *xy = malloc((size_t)B * B * sizeof *xy), *wh = malloc((size_t)B * B * sizeof *wh);
    int rc = -1;
    if (!counts || !xy || !wh) {
        yt_error("plot %s: out of memory", path);
        goto done;
    }
    if (yt_label_class_counts(cls, n, nc, counts) < 0 || yt_label_hist2d(xywh, n, 0, 1, B, xy) < 0 ||
        yt_label_hist2d(xywh, n, 2, 3, B, wh) < 0) {
        yt_error_prefix("plot %s: ", path);
        goto done;
    }
    const int side = 800;
    cairo_surface_t *surf;
    cairo_t *cr = yt_canvas_new(2 * side, 2 * side, &surf);
    bars_panel(cr, 0, 0, side, counts, nc, names);
    boxes_panel(cr, side, 0, side, cls, xywh, n);
    hist2d_panel(cr, 0, side, side, xy, "x", "y");
    hist2d_panel(cr, side, side, side, wh, "width", "height");
    rc = yt_canvas_save(surf, cr, path);
done:
    free(counts);
    free(xy);
    free(wh);
    return rc;
}

int yt_plot_labels_correlogram(const char *path, const float *xywh, int64_t n)
{
    if (n < 0) return yt_error("plot %s: %lld boxes", path, (long long)n);
    const int B = YT_LABEL_BINS;
    int64_t *diag = malloc((size_t)4 * B * sizeof *diag), *pairs = malloc((size_t)6 * B * B * sizeof *pairs);
    int rc = -1;
    if (!diag || !pairs) {
        yt_error("plot %s: out of memory", path);
        goto done;
    }
    if (yt_label_correlogram_bins(xywh, n, diag, pairs) < 0) {
        yt_error_prefix("plot %s: ", path);
        goto done;
    }
    const int W = 2000, left = 150, top = 30, right = 40, gap = 64; /* 160 left below for the x labels */
    const double cell = (W - left - right - 3.0 * gap) / 4;
    cairo_surface_t *surf;
    cairo_t *cr = yt_canvas_new(W, W, &surf);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c <= r; c++) {
            frame f = {left + c * (cell + gap), top + r * (cell + gap), cell, cell, 0, 1, 0, 1};
            if (r == c) { /* the diagonal: counts on its own (unlabelled) scale */
                int64_t m = 0;
                for (int k = 0; k < B; k++) m = diag[(size_t)r * B + k] > m ? diag[(size_t)r * B + k] : m;
                f.yhi = m > 0 ? m * 1.05 : 1;
                draw_hist1d(cr, &f, diag + (size_t)r * B, B);
            } else {
                int p = 0;
                while (PAIRS[p][0] != r || PAIRS[p][1] != c) p++;
                draw_hist2d(cr, &f, pairs + (size_t)p * B * B, B);
                unit_ticks(cr, &f, 1, c == 0);
                if (c == 0) ylabel(cr, &f, VAR_NAMES[r], 85);
            }
            spines(cr, &f);
            unit_ticks(cr, &f, 0, r == 3);
            if (r == 3) xlabel(cr, &f, VAR_NAMES[c], TICK_LEN + 40);
        }
    rc = yt_canvas_save(surf, cr, path);
done:
    free(diag);
    free(pairs);
    return rc;
}
