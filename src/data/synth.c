/* The embedded default dataset: synthetic shapes on varied backgrounds (see synth.h). */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/synth.h"
#include "io/durable.h"

static const char *const shape_names[YT_SHAPE_COUNT] = {"circle", "square", "triangle", "cross", "ring"};

void yt_synth_default_cfg(yt_synth_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 0;
    cfg->n_train = 400;
    cfg->n_val = 100;
    cfg->imgsz = 160;
    cfg->n_classes = 4;
    for (int i = 0; i < YT_SYNTH_MAX_CLASSES; i++) cfg->classes[i] = i;
}

const char *yt_synth_shape_name(int kind) { return kind >= 0 && kind < YT_SHAPE_COUNT ? shape_names[kind] : NULL; }

int yt_synth_shape_from_name(const char *name)
{
    for (int i = 0; i < YT_SHAPE_COUNT; i++)
        if (name && strcmp(name, shape_names[i]) == 0) return i;
    return -1;
}

int yt_synth_check_cfg(const yt_synth_cfg *cfg)
{
    if (!cfg) return yt_error("synth: no configuration");
    if (cfg->n_train < 1 || cfg->n_train > 1000000)
        return yt_error("synth: n_train must be 1..1000000 (got %d)", cfg->n_train);
    if (cfg->n_val < 0 || cfg->n_val > 1000000) return yt_error("synth: n_val must be 0..1000000 (got %d)", cfg->n_val);
    if (cfg->imgsz < 32 || cfg->imgsz > 1024) return yt_error("synth: imgsz must be 32..1024 (got %d)", cfg->imgsz);
    if (cfg->n_classes < 1 || cfg->n_classes > YT_SYNTH_MAX_CLASSES)
        return yt_error("synth: classes must be 1..%d (got %d)", YT_SYNTH_MAX_CLASSES, cfg->n_classes);
    for (int i = 0; i < cfg->n_classes; i++) {
        if (cfg->classes[i] < 0 || cfg->classes[i] >= YT_SHAPE_COUNT)
            return yt_error("synth: class %d has an unknown shape kind %d", i, cfg->classes[i]);
        for (int j = 0; j < i; j++)
            if (cfg->classes[j] == cfg->classes[i])
                return yt_error("synth: shape '%s' is listed twice in classes", shape_names[cfg->classes[i]]);
    }
    return 0;
}

/* ---- PRNG: splitmix64, one independent stream per image ---------------------------------------------------- */

typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) { return yt_splitmix64(&r->s); }

/* [0, 1) with 53 random bits: exact in double on every machine. */
static double rng_unit(rng *r) { return yt_unit_from_bits(rng_next(r)); }
static double rng_uniform(rng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }
/* Integer in [lo, hi] (inclusive). */
static int rng_int(rng *r, int lo, int hi) { return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1)); }

static rng image_rng(const yt_synth_cfg *cfg, int split, int index)
{
    rng r = {cfg->seed ^ 0x5EED5EED5EED5EEDULL};
    rng_next(&r);
    r.s ^= ((uint64_t)split + 1) * 0xD1B54A32D192ED03ULL;
    rng_next(&r);
    r.s ^= ((uint64_t)index + 1) * 0xABC98388FB8FAC03ULL;
    rng_next(&r);
    return r;
}

/* Per-pixel noise: a hash of (image key, x, y, channel), no sequential state. */
static uint32_t hash_px(uint64_t key, int x, int y, int c)
{
    uint64_t z = key ^ ((uint64_t)(uint32_t)x << 40) ^ ((uint64_t)(uint32_t)y << 16) ^ (uint64_t)c;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (uint32_t)(z ^ (z >> 31));
}

/* ---- the scene: every random choice, made before anything is drawn ------------------------------------------ */

typedef struct {
    int kind;             /* shape kind */
    int cls;              /* class index */
    double cx, cy, scale; /* centre and scale (pixels per unit) */
    double c, s;          /* rotation cos / sin */
    double hole;          /* ring: inner radius (units) */
    int rgb[3];
    double x0, y0, x1, y1; /* tight box (pixels) */
} shape;

typedef struct {
    int n;
    shape sh[YT_SYNTH_MAX_OBJECTS];
} scene;

static int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* Background: solid or linear gradient, then nothing, light noise or stripes. Integer arithmetic only. */
static void make_background(rng *r, int S, uint32_t *bg)
{
    int c0[3], c1[3], c2[3];
    for (int k = 0; k < 3; k++) c0[k] = rng_int(r, 0, 255);
    int gradient = rng_int(r, 0, 1);
    for (int k = 0; k < 3; k++) c1[k] = clamp255(c0[k] + (gradient ? rng_int(r, -90, 90) : 0));
    int gx = rng_int(r, -16, 16), gy = rng_int(r, -16, 16);
    if (gx == 0 && gy == 0) gx = 1;
    int overlay = rng_int(r, 0, 9); /* 0..3 none, 4..6 noise, 7..9 stripes */
    int amp = rng_int(r, 4, 16);
    for (int k = 0; k < 3; k++) c2[k] = rng_int(r, -45, 45);
    int sx = rng_int(r, -4, 4), sy = rng_int(r, -4, 4);
    if (sx == 0 && sy == 0) sy = 1;
    int period = rng_int(r, 4, 14) * (abs(sx) > abs(sy) ? abs(sx) : abs(sy));
    int phase = rng_int(r, 0, period - 1);
    uint64_t key = rng_next(r);

    /* gradient parameter t = (x*gx + y*gy - tmin) * 256 / (tmax - tmin) over the image corners */
    int tmin = 0, tmax = 0;
    int corners[4] = {0, (S - 1) * gx, (S - 1) * gy, (S - 1) * (gx + gy)};
    tmin = tmax = corners[0];
    for (int i = 1; i < 4; i++) {
        if (corners[i] < tmin) tmin = corners[i];
        if (corners[i] > tmax) tmax = corners[i];
    }
    int span = tmax - tmin > 0 ? tmax - tmin : 1;
    int soff = 8 * S * period; /* keeps the stripe coordinate positive */
    for (int y = 0; y < S; y++) {
        for (int x = 0; x < S; x++) {
            int t = (x * gx + y * gy - tmin) * 256 / span;
            int v[3];
            for (int k = 0; k < 3; k++) v[k] = c0[k] + (c1[k] - c0[k]) * t / 256;
            if (overlay >= 4 && overlay <= 6) {
                for (int k = 0; k < 3; k++) v[k] += (int)(hash_px(key, x, y, k) % (uint32_t)(2 * amp + 1)) - amp;
            } else if (overlay >= 7) {
                int u = x * sx + y * sy + soff + phase;
                if ((u / period) % 2)
                    for (int k = 0; k < 3; k++) v[k] += c2[k];
            }
            bg[(size_t)y * S + x] = (uint32_t)clamp255(v[0]) << 16 | (uint32_t)clamp255(v[1]) << 8 | clamp255(v[2]);
        }
    }
}

/* Unit outlines (centred at the origin, y down). Polygons as vertex lists; circle and ring are radius 1. */
static const double tri_v[3][2] = {{0.0, -1.0}, {-0.8660254037844386, 0.5}, {0.8660254037844386, 0.5}};
static const double sq_v[4][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
#define CROSS_A 0.32
static const double cross_v[12][2] = {
    {-CROSS_A, -1}, {CROSS_A, -1}, {CROSS_A, -CROSS_A}, {1, -CROSS_A}, {1, CROSS_A},   {CROSS_A, CROSS_A},
    {CROSS_A, 1},   {-CROSS_A, 1}, {-CROSS_A, CROSS_A}, {-1, CROSS_A}, {-1, -CROSS_A}, {-CROSS_A, -CROSS_A}};

static int shape_polygon(int kind, const double (**v)[2])
{
    switch (kind) {
    case YT_SHAPE_SQUARE:
        *v = sq_v;
        return 4;
    case YT_SHAPE_TRIANGLE:
        *v = tri_v;
        return 3;
    case YT_SHAPE_CROSS:
        *v = cross_v;
        return 12;
    default:
        *v = NULL;
        return 0;
    }
}

/* Box of the rotated unit shape. */
static void unit_box(const shape *p, double *bx0, double *by0, double *bx1, double *by1)
{
    const double(*v)[2];
    int n = shape_polygon(p->kind, &v);
    if (n == 0) { /* circle, ring */
        *bx0 = *by0 = -1.0;
        *bx1 = *by1 = 1.0;
        return;
    }
    *bx0 = *by0 = 1e30;
    *bx1 = *by1 = -1e30;
    for (int i = 0; i < n; i++) {
        double x = v[i][0] * p->c - v[i][1] * p->s, y = v[i][0] * p->s + v[i][1] * p->c;
        if (x < *bx0) *bx0 = x;
        if (x > *bx1) *bx1 = x;
        if (y < *by0) *by0 = y;
        if (y > *by1) *by1 = y;
    }
}

static int colour_dist2(const int *a, uint32_t b)
{
    int dr = a[0] - (int)(b >> 16 & 255), dg = a[1] - (int)(b >> 8 & 255), db = a[2] - (int)(b & 255);
    return dr * dr + dg * dg + db * db;
}

/* Picks a colour far from the background under the box and from the shapes it overlaps. */
static void pick_colour(rng *r, const uint32_t *bg, int S, const scene *sc, shape *p)
{
    int x0 = (int)p->x0, y0 = (int)p->y0, x1 = (int)ceil(p->x1), y1 = (int)ceil(p->y1);
    if (x1 > S) x1 = S;
    if (y1 > S) y1 = S;
    int best = -1, cand[3];
    for (int attempt = 0; attempt < 64; attempt++) {
        for (int k = 0; k < 3; k++) cand[k] = rng_int(r, 0, 255);
        int worst = INT_MAX;
        for (int y = y0; y < y1; y += 2)
            for (int x = x0; x < x1; x += 2) {
                int d = colour_dist2(cand, bg[(size_t)y * S + x]);
                if (d < worst) worst = d;
            }
        for (int j = 0; j < sc->n; j++) {
            const shape *q = &sc->sh[j];
            if (q->x1 <= p->x0 || p->x1 <= q->x0 || q->y1 <= p->y0 || p->y1 <= q->y0) continue;
            uint32_t qc = (uint32_t)q->rgb[0] << 16 | (uint32_t)q->rgb[1] << 8 | (uint32_t)q->rgb[2];
            int d = colour_dist2(cand, qc) * 2; /* shapes need less contrast between them than with the ground */
            if (d < worst) worst = d;
        }
        if (worst > best) {
            best = worst;
            memcpy(p->rgb, cand, sizeof cand);
        }
        if (best >= 110 * 110) break;
    }
}

static double box_area(double x0, double y0, double x1, double y1) { return (x1 - x0) * (y1 - y0); }

static void make_scene(rng *r, const yt_synth_cfg *cfg, const uint32_t *bg, scene *sc)
{
    int S = cfg->imgsz;
    memset(sc, 0, sizeof *sc);
    int want = rng_int(r, 1, YT_SYNTH_MAX_OBJECTS);
    for (int o = 0; o < want; o++) {
        shape p;
        int placed = 0;
        int cls = rng_int(r, 0, cfg->n_classes - 1);
        for (int attempt = 0; attempt < 40 && !placed; attempt++) {
            memset(&p, 0, sizeof p);
            p.cls = cls;
            p.kind = cfg->classes[cls];
            /* rotation from t in [-1, 1): angle in [-90, 90) degrees, exact rational cos/sin */
            double t = rng_uniform(r, -1.0, 1.0);
            if (p.kind == YT_SHAPE_CIRCLE || p.kind == YT_SHAPE_RING) t = 0.0;
            p.c = (1.0 - t * t) / (1.0 + t * t);
            p.s = 2.0 * t / (1.0 + t * t);
            p.hole = rng_uniform(r, 0.45, 0.65);
            double size = rng_uniform(r, 0.10, 0.45) * S; /* larger box side, pixels */
            double ux0, uy0, ux1, uy1;
            unit_box(&p, &ux0, &uy0, &ux1, &uy1);
            double uw = ux1 - ux0, uh = uy1 - uy0;
            p.scale = size / (uw > uh ? uw : uh);
            double lo_x = 1.0 - p.scale * ux0, hi_x = S - 1.0 - p.scale * ux1;
            double lo_y = 1.0 - p.scale * uy0, hi_y = S - 1.0 - p.scale * uy1;
            p.cx = rng_uniform(r, lo_x, hi_x);
            p.cy = rng_uniform(r, lo_y, hi_y);
            p.x0 = p.cx + p.scale * ux0;
            p.x1 = p.cx + p.scale * ux1;
            p.y0 = p.cy + p.scale * uy0;
            p.y1 = p.cy + p.scale * uy1;
            /* partial overlaps only: the intersection is at most 15% of the smaller box */
            placed = 1;
            for (int j = 0; j < sc->n && placed; j++) {
                const shape *q = &sc->sh[j];
                double ix = fmin(p.x1, q->x1) - fmax(p.x0, q->x0), iy = fmin(p.y1, q->y1) - fmax(p.y0, q->y0);
                if (ix <= 0 || iy <= 0) continue;
                double amin = fmin(box_area(p.x0, p.y0, p.x1, p.y1), box_area(q->x0, q->y0, q->x1, q->y1));
                if (ix * iy > 0.15 * amin) placed = 0;
            }
        }
        if (!placed) continue;
        pick_colour(r, bg, S, sc, &p);
        sc->sh[sc->n++] = p;
    }
}

static void draw_shape(cairo_t *cr, const shape *p)
{
    cairo_set_source_rgb(cr, p->rgb[0] / 255.0, p->rgb[1] / 255.0, p->rgb[2] / 255.0);
    cairo_new_path(cr);
    if (p->kind == YT_SHAPE_CIRCLE || p->kind == YT_SHAPE_RING) {
        cairo_arc(cr, p->cx, p->cy, p->scale, 0.0, 2.0 * M_PI);
        cairo_close_path(cr);
        if (p->kind == YT_SHAPE_RING) {
            cairo_new_sub_path(cr);
            cairo_arc(cr, p->cx, p->cy, p->scale * p->hole, 0.0, 2.0 * M_PI);
            cairo_close_path(cr);
        }
        cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
    } else {
        const double(*v)[2];
        int n = shape_polygon(p->kind, &v);
        for (int i = 0; i < n; i++) {
            double x = p->cx + p->scale * (v[i][0] * p->c - v[i][1] * p->s);
            double y = p->cy + p->scale * (v[i][0] * p->s + v[i][1] * p->c);
            if (i == 0)
                cairo_move_to(cr, x, y);
            else
                cairo_line_to(cr, x, y);
        }
        cairo_close_path(cr);
        cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
    }
    cairo_fill(cr);
}

/* Renders one image into a new RGB24 surface (NULL + yt_error on failure). */
static cairo_surface_t *render_surface(const yt_synth_cfg *cfg, int split, int index, int with_shapes, scene *sc)
{
    int S = cfg->imgsz;
    uint32_t *bg = malloc((size_t)S * S * sizeof *bg);
    if (!bg) {
        yt_error("synth: out of memory for a %dx%d image", S, S);
        return NULL;
    }
    rng r = image_rng(cfg, split, index);
    make_background(&r, S, bg);
    make_scene(&r, cfg, bg, sc);

    cairo_surface_t *cs = cairo_image_surface_create(CAIRO_FORMAT_RGB24, S, S);
    if (cairo_surface_status(cs) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(cs);
        free(bg);
        yt_error("synth: cannot create a %dx%d cairo surface", S, S);
        return NULL;
    }
    cairo_surface_flush(cs);
    uint8_t *d = cairo_image_surface_get_data(cs);
    int stride = cairo_image_surface_get_stride(cs);
    for (int y = 0; y < S; y++) memcpy(d + (size_t)y * stride, bg + (size_t)y * S, (size_t)S * 4);
    free(bg);
    cairo_surface_mark_dirty(cs);
    if (with_shapes) {
        cairo_t *cr = cairo_create(cs);
        cairo_set_antialias(cr, CAIRO_ANTIALIAS_GRAY);
        for (int i = 0; i < sc->n; i++) draw_shape(cr, &sc->sh[i]);
        cairo_status_t st = cairo_status(cr);
        cairo_destroy(cr);
        if (st != CAIRO_STATUS_SUCCESS) {
            cairo_surface_destroy(cs);
            yt_error("synth: drawing failed: %s", cairo_status_to_string(st));
            return NULL;
        }
    }
    cairo_surface_flush(cs);
    return cs;
}

static void scene_boxes(const scene *sc, yt_synth_box *boxes, int *n_boxes)
{
    if (boxes)
        for (int i = 0; i < sc->n; i++) {
            boxes[i].cls = sc->sh[i].cls;
            boxes[i].x0 = sc->sh[i].x0;
            boxes[i].y0 = sc->sh[i].y0;
            boxes[i].x1 = sc->sh[i].x1;
            boxes[i].y1 = sc->sh[i].y1;
        }
    if (n_boxes) *n_boxes = sc->n;
}

int yt_synth_render(const yt_synth_cfg *cfg, int split, int index, int with_shapes, uint8_t *rgb, yt_synth_box *boxes,
                    int *n_boxes)
{
    if (yt_synth_check_cfg(cfg) < 0) return -1;
    if (split != YT_SYNTH_TRAIN && split != YT_SYNTH_VAL) return yt_error("synth: split must be train (0) or val (1)");
    if (index < 0) return yt_error("synth: image index %d is negative", index);
    scene sc;
    cairo_surface_t *cs = render_surface(cfg, split, index, with_shapes, &sc);
    if (!cs) return -1;
    int S = cfg->imgsz;
    const uint8_t *d = cairo_image_surface_get_data(cs);
    int stride = cairo_image_surface_get_stride(cs);
    for (int y = 0; y < S; y++) {
        const uint32_t *row = (const uint32_t *)(d + (size_t)y * stride);
        uint8_t *o = rgb + (size_t)y * S * 3;
        for (int x = 0; x < S; x++) {
            o[3 * x] = row[x] >> 16 & 255;
            o[3 * x + 1] = row[x] >> 8 & 255;
            o[3 * x + 2] = row[x] & 255;
        }
    }
    cairo_surface_destroy(cs);
    scene_boxes(&sc, boxes, n_boxes);
    return 0;
}

/* ---- files ---------------------------------------------------------------------------------------------------- */

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return yt_error("%s: cannot create: %s", path, strerror(errno));
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, f) != n;
    if (fclose(f) != 0) bad = 1;
    if (bad) return yt_error("%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* Reads a small text file into buf (NUL-terminated); -1 when missing or larger than the buffer. */
static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (more) return -1;
    buf[n] = 0;
    return 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        return yt_error("%s: exists and is not a directory", path);
    }
    return yt_error("%s: cannot create directory: %s", path, strerror(errno));
}

static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf) return yt_error("%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (make_dir(buf) < 0) return -1;
        *p = '/';
    }
    return make_dir(buf);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Deletes a tree we created ourselves (a temp or replaced dataset directory). Cleanup only: leaves yt_error alone. */
static int rm_tree(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) return -1;
    return 0;
}

/* The .complete marker: generator version and configuration. */
static void marker_text(const yt_synth_cfg *cfg, char *buf, size_t cap)
{
    int n =
        snprintf(buf, cap, "yolotrain synth v%d\nseed=%llu\nn_train=%d\nn_val=%d\nimgsz=%d\nclasses=", YT_SYNTH_VERSION,
                 (unsigned long long)cfg->seed, cfg->n_train, cfg->n_val, cfg->imgsz);
    for (int i = 0; i < cfg->n_classes && n > 0 && (size_t)n < cap; i++)
        n += snprintf(buf + n, cap - n, "%s%s", i ? "," : "", shape_names[cfg->classes[i]]);
    if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - n, "\n");
}

/* 1: out_dir holds this configuration's dataset; 0: it does not exist (or is an empty directory);
 * 2: it holds another version's dataset (marker present, different); -1: something else is there (yt_error). */
static int dir_state(const char *out_dir, const char *want)
{
    struct stat st;
    if (stat(out_dir, &st) != 0) {
        if (errno == ENOENT) return 0;
        return yt_error("%s: %s", out_dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) return yt_error("%s: exists and is not a directory", out_dir);
    char path[PATH_MAX], have[1024];
    snprintf(path, sizeof path, "%s/.complete", out_dir);
    if (read_small(path, have, sizeof have) == 0) {
        if (strcmp(have, want) != 0) return 2;
        snprintf(path, sizeof path, "%s/data.yaml", out_dir);
        return access(path, R_OK) == 0 ? 1 : 2;
    }
    DIR *d = opendir(out_dir);
    if (!d) return yt_error("%s: cannot open: %s", out_dir, strerror(errno));
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    if (empty) return 0;
    return yt_error("%s: exists and is not a generated dataset (no .complete marker): remove it or choose another "
                    "directory",
                    out_dir);
}

/* Removes <base>.tmp.<pid> / <base>.old.<pid> trees left behind by processes that no longer exist. */
static void clean_stale(const char *parent, const char *base)
{
    DIR *d = opendir(parent);
    if (!d) return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || (strncmp(n + bl, ".tmp.", 5) != 0 && strncmp(n + bl, ".old.", 5) != 0) ||
            !yt_is_stale_temp(n))
            continue;
        char path[PATH_MAX + NAME_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", parent, n);
        rm_tree(path);
    }
    closedir(d);
}

static int write_split(const char *root, const yt_synth_cfg *cfg, int split)
{
    const char *name = split == YT_SYNTH_TRAIN ? "train" : "val";
    int count = split == YT_SYNTH_TRAIN ? cfg->n_train : cfg->n_val;
    char img_dir[PATH_MAX], lbl_dir[PATH_MAX], path[PATH_MAX + 32];
    snprintf(img_dir, sizeof img_dir, "%s/images/%s", root, name);
    snprintf(lbl_dir, sizeof lbl_dir, "%s/labels/%s", root, name);
    if (make_dirs(img_dir) < 0 || make_dirs(lbl_dir) < 0) return -1;
    double S = cfg->imgsz;
    for (int i = 0; i < count; i++) {
        scene sc;
        cairo_surface_t *cs = render_surface(cfg, split, i, 1, &sc);
        if (!cs) return -1;
        snprintf(path, sizeof path, "%s/%06d.png", img_dir, i);
        cairo_status_t st = cairo_surface_write_to_png(cs, path);
        cairo_surface_destroy(cs);
        if (st != CAIRO_STATUS_SUCCESS) return yt_error("%s: cannot write PNG: %s", path, cairo_status_to_string(st));
        char text[YT_SYNTH_MAX_OBJECTS * 64 + 1];
        int n = 0;
        text[0] = 0;
        for (int k = 0; k < sc.n; k++) {
            const shape *p = &sc.sh[k];
            n += snprintf(text + n, sizeof text - n, "%d %.6f %.6f %.6f %.6f\n", p->cls, (p->x0 + p->x1) / 2 / S,
                          (p->y0 + p->y1) / 2 / S, (p->x1 - p->x0) / S, (p->y1 - p->y0) / S);
        }
        snprintf(path, sizeof path, "%s/%06d.txt", lbl_dir, i);
        if (write_text(path, text) < 0) return -1;
    }
    return 0;
}

/* YAML single-quoted scalar. */
static void yaml_quote(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (cap < 3) return;
    out[n++] = '\'';
    for (; *s && n + 3 < cap; s++) {
        if (*s == '\'') out[n++] = '\'';
        out[n++] = *s;
    }
    out[n++] = '\'';
    out[n] = 0;
}

int yt_synth_is_complete(const char *out_dir, const yt_synth_cfg *cfg_in)
{
    yt_synth_cfg cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        yt_synth_default_cfg(&cfg);
    if (!out_dir || strlen(out_dir) >= PATH_MAX - 64) return 0;
    char marker[1024], path[PATH_MAX], have[1024];
    marker_text(&cfg, marker, sizeof marker);
    snprintf(path, sizeof path, "%s/.complete", out_dir);
    if (read_small(path, have, sizeof have) != 0 || strcmp(have, marker) != 0) return 0;
    snprintf(path, sizeof path, "%s/data.yaml", out_dir);
    return access(path, R_OK) == 0;
}

int yt_synth_generate(const char *out_dir, const yt_synth_cfg *cfg_in)
{
    yt_synth_cfg cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        yt_synth_default_cfg(&cfg);
    if (yt_synth_check_cfg(&cfg) < 0) return -1;
    if (!out_dir || !*out_dir) return yt_error("synth: empty output directory");

    /* absolute, without trailing slashes: parent (created, resolved) + "/" + base */
    char dir[PATH_MAX];
    if (strlen(out_dir) >= sizeof dir - 64) return yt_error("%s: path too long", out_dir);
    strcpy(dir, out_dir);
    size_t L = strlen(dir);
    while (L > 1 && dir[L - 1] == '/') dir[--L] = 0;
    char *slash = strrchr(dir, '/');
    char parent_in[PATH_MAX], base[NAME_MAX + 1];
    if (!slash) {
        strcpy(parent_in, ".");
        snprintf(base, sizeof base, "%s", dir);
    } else {
        size_t pl = slash == dir ? 1 : (size_t)(slash - dir);
        memcpy(parent_in, dir, pl);
        parent_in[pl] = 0;
        snprintf(base, sizeof base, "%s", slash + 1);
    }
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return yt_error("%s: give the dataset directory a name", out_dir);
    if (make_dirs(parent_in) < 0) return yt_error_prefix("synth: ");
    char parent[PATH_MAX];
    if (!realpath(parent_in, parent)) return yt_error("%s: %s", parent_in, strerror(errno));
    char final[PATH_MAX], tmp[PATH_MAX + 32], old[PATH_MAX + 32];
    if (snprintf(final, sizeof final, "%s/%s", strcmp(parent, "/") ? parent : "", base) >= (int)sizeof final - 40)
        return yt_error("%s: path too long", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", final, (long)getpid());
    snprintf(old, sizeof old, "%s.old.%ld", final, (long)getpid());

    char marker[1024];
    marker_text(&cfg, marker, sizeof marker);
    int state = dir_state(final, marker);
    if (state < 0) return -1;
    if (state == 1) return 0;
    clean_stale(parent, base);

    rm_tree(tmp);
    if (make_dir(tmp) < 0) return -1;
    if (write_split(tmp, &cfg, YT_SYNTH_TRAIN) < 0 || write_split(tmp, &cfg, YT_SYNTH_VAL) < 0) goto fail;

    /* data.yaml */
    {
        char qpath[2 * PATH_MAX + 3], yaml[2 * PATH_MAX + 1024], path[PATH_MAX + 64];
        yaml_quote(final, qpath, sizeof qpath);
        int n =
            snprintf(yaml, sizeof yaml,
                     "# Synthetic shapes: a dataset generated by yolotrain (src/data/synth.c, datasets/README.md).\n"
                     "# Generator v%d, seed %llu, %d train + %d val images of %dx%d. Regenerated, do not edit.\n"
                     "path: %s\ntrain: images/train\nval: images/val\nnc: %d\nnames:\n",
                     YT_SYNTH_VERSION, (unsigned long long)cfg.seed, cfg.n_train, cfg.n_val, cfg.imgsz, cfg.imgsz,
                     qpath, cfg.n_classes);
        for (int i = 0; i < cfg.n_classes && n > 0 && (size_t)n < sizeof yaml; i++)
            n += snprintf(yaml + n, sizeof yaml - n, "  %d: %s\n", i, shape_names[cfg.classes[i]]);
        snprintf(path, sizeof path, "%s/data.yaml", tmp);
        if (write_text(path, yaml) < 0) goto fail;
        snprintf(path, sizeof path, "%s/.complete", tmp);
        if (write_text(path, marker) < 0) goto fail;
    }

    /* publish */
    if (rename(tmp, final) == 0) return 1;
    if (errno != EEXIST && errno != ENOTEMPTY) {
        yt_error("%s: cannot rename %s into place: %s", final, tmp, strerror(errno));
        goto fail;
    }
    state = dir_state(final, marker);
    if (state < 0) goto fail;
    if (state == 1) { /* another process finished the same dataset first */
        rm_tree(tmp);
        return 0;
    }
    if (state == 0)
        rmdir(final); /* empty directory */
    else if (rename(final, old) != 0) {
        yt_error("%s: cannot move the outdated dataset aside: %s", final, strerror(errno));
        goto fail;
    }
    if (rename(tmp, final) != 0) {
        yt_error("%s: cannot rename %s into place: %s", final, tmp, strerror(errno));
        goto fail;
    }
    if (state == 2) rm_tree(old);
    return 1;

fail:
    rm_tree(tmp);
    return -1;
}
