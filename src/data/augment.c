/* Augmentation primitives (see augment.h). Written from Ultralytics 8.2's documented behaviour. */
#include "data/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"

/* ---- instances ---- */

int yt_inst_reserve(yt_inst *in, int cap, int with_seg)
{
    if (cap < 1) cap = 1;
    if (cap <= in->cap && (!with_seg || in->seg)) return 0;
    int nc = cap > in->cap ? cap : in->cap;
    float *c = realloc(in->cls, sizeof(float) * nc);
    if (!c) return -1;
    in->cls = c;
    float *b = realloc(in->box, sizeof(float) * 4 * nc);
    if (!b) return -1;
    in->box = b;
    if (with_seg) {
        float *s = realloc(in->seg, sizeof(float) * 2 * YT_SEG_PTS * (size_t)nc);
        if (!s) return -1;
        in->seg = s;
    }
    in->cap = nc;
    return 0;
}

void yt_inst_free(yt_inst *in)
{
    free(in->cls);
    free(in->box);
    free(in->seg);
    memset(in, 0, sizeof *in);
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void yt_inst_clip(yt_inst *in, float w, float h)
{
    for (int i = 0; i < in->n; i++) {
        float *b = in->box + 4 * i;
        b[0] = clampf(b[0], 0, w);
        b[2] = clampf(b[2], 0, w);
        b[1] = clampf(b[1], 0, h);
        b[3] = clampf(b[3], 0, h);
    }
    if (in->has_seg) {
        size_t m = (size_t)in->n * YT_SEG_PTS;
        for (size_t k = 0; k < m; k++) {
            in->seg[2 * k] = clampf(in->seg[2 * k], 0, w);
            in->seg[2 * k + 1] = clampf(in->seg[2 * k + 1], 0, h);
        }
    }
}

static void inst_keep(yt_inst *in, const unsigned char *keep)
{
    int j = 0;
    for (int i = 0; i < in->n; i++) {
        if (!keep[i]) continue;
        if (j != i) {
            in->cls[j] = in->cls[i];
            memcpy(in->box + 4 * j, in->box + 4 * i, sizeof(float) * 4);
            if (in->has_seg)
                memmove(in->seg + (size_t)j * 2 * YT_SEG_PTS, in->seg + (size_t)i * 2 * YT_SEG_PTS,
                        sizeof(float) * 2 * YT_SEG_PTS);
        }
        j++;
    }
    in->n = j;
}

void yt_inst_remove_zero_area(yt_inst *in)
{
    if (in->n == 0) return;
    unsigned char *keep = malloc((size_t)in->n);
    if (!keep) return;
    for (int i = 0; i < in->n; i++) {
        const float *b = in->box + 4 * i;
        keep[i] = (b[2] - b[0]) * (b[3] - b[1]) > 0;
    }
    inst_keep(in, keep);
    free(keep);
}

void yt_sample_free(yt_sample *s)
{
    free(s->px);
    s->px = NULL;
    yt_inst_free(&s->inst);
}

/* Appends the view's labels (denormalised to the view's size, shifted by pad) to in. */
static int append_view_labels(yt_inst *in, const yt_labeled_view *v, float padw, float padh, int with_seg)
{
    if (yt_inst_reserve(in, in->n + v->n, with_seg) < 0) return -1;
    for (int i = 0; i < v->n; i++) {
        const float *q = v->xywhn + 4 * i;
        float *b = in->box + 4 * (in->n + i);
        float cx = q[0] * v->w, cy = q[1] * v->h, bw = q[2] * v->w, bh = q[3] * v->h;
        b[0] = cx - bw / 2 + padw;
        b[1] = cy - bh / 2 + padh;
        b[2] = cx + bw / 2 + padw;
        b[3] = cy + bh / 2 + padh;
        in->cls[in->n + i] = v->cls[i];
        if (with_seg) {
            const float *sp = v->segn + (size_t)i * 2 * YT_SEG_PTS;
            float *dp = in->seg + (size_t)(in->n + i) * 2 * YT_SEG_PTS;
            for (int k = 0; k < YT_SEG_PTS; k++) {
                dp[2 * k] = sp[2 * k] * v->w + padw;
                dp[2 * k + 1] = sp[2 * k + 1] * v->h + padh;
            }
        }
    }
    in->n += v->n;
    return 0;
}

int yt_sample_from_view(const yt_labeled_view *v, yt_sample *out)
{
    memset(out, 0, sizeof *out);
    out->px = malloc((size_t)v->h * v->w * 3 + 1);
    if (!out->px) return -1;
    memcpy(out->px, v->px, (size_t)v->h * v->w * 3);
    out->h = v->h;
    out->w = v->w;
    out->ori_h = v->ori_h;
    out->ori_w = v->ori_w;
    out->res_h = v->h;
    out->res_w = v->w;
    out->ratio_h = (double)v->h / v->ori_h;
    out->ratio_w = (double)v->w / v->ori_w;
    out->inst.has_seg = v->segn != NULL && v->n > 0;
    if (append_view_labels(&out->inst, v, 0, 0, out->inst.has_seg) < 0) {
        yt_sample_free(out);
        return -1;
    }
    return 0;
}

int yt_letterbox(yt_sample *s, int H, int W, int scaleup)
{
    int h = s->h, w = s->w;
    double r = fmin((double)H / h, (double)W / w);
    if (!scaleup) r = fmin(r, 1.0);
    int nw = (int)yt_pyround(w * r), nh = (int)yt_pyround(h * r);
    double dw = (W - nw) / 2.0, dh = (H - nh) / 2.0;
    int top = (int)yt_pyround(dh - 0.1), bottom = (int)yt_pyround(dh + 0.1);
    int left = (int)yt_pyround(dw - 0.1), right = (int)yt_pyround(dw + 0.1);
    int oh = nh + top + bottom, ow = nw + left + right; /* == H, W */
    uint8_t *dst = malloc((size_t)oh * ow * 3 + 1);
    if (!dst) return -1;
    memset(dst, YT_PAD_VALUE, (size_t)oh * ow * 3);
    yt_resize_linear_u8(s->px, h, w, (size_t)w * 3, dst + ((size_t)top * ow + left) * 3, nh, nw, (size_t)ow * 3);
    free(s->px);
    s->px = dst;
    s->h = oh;
    s->w = ow;
    for (int i = 0; i < s->inst.n; i++) {
        float *b = s->inst.box + 4 * i;
        b[0] = (float)(b[0] * r + dw);
        b[2] = (float)(b[2] * r + dw);
        b[1] = (float)(b[1] * r + dh);
        b[3] = (float)(b[3] * r + dh);
    }
    if (s->inst.has_seg) {
        size_t m = (size_t)s->inst.n * YT_SEG_PTS;
        for (size_t k = 0; k < m; k++) {
            s->inst.seg[2 * k] = (float)(s->inst.seg[2 * k] * r + dw);
            s->inst.seg[2 * k + 1] = (float)(s->inst.seg[2 * k + 1] * r + dh);
        }
    }
    s->pad_left = left;
    s->pad_top = top;
    return 0;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

int yt_mosaic4(const yt_labeled_view *v, int s, int xc, int yc, yt_sample *out)
{
    memset(out, 0, sizeof *out);
    int S = 2 * s;
    out->px = malloc((size_t)S * S * 3 + 1);
    if (!out->px) return -1;
    memset(out->px, YT_PAD_VALUE, (size_t)S * S * 3);
    out->h = out->w = S;
    int with_seg = 1, total = 0;
    for (int i = 0; i < 4; i++) {
        if (v[i].n > 0 && !v[i].segn) with_seg = 0;
        total += v[i].n;
    }
    if (total == 0) with_seg = 0;
    out->inst.has_seg = with_seg;
    if (yt_inst_reserve(&out->inst, total, with_seg) < 0) goto oom;
    for (int i = 0; i < 4; i++) {
        int h = v[i].h, w = v[i].w;
        int x1a, y1a, x2a, y2a, x1b, y1b, x2b, y2b;
        if (i == 0) { /* top left */
            x1a = imax(xc - w, 0), y1a = imax(yc - h, 0), x2a = xc, y2a = yc;
            x1b = w - (x2a - x1a), y1b = h - (y2a - y1a), x2b = w, y2b = h;
        } else if (i == 1) { /* top right */
            x1a = xc, y1a = imax(yc - h, 0), x2a = imin(xc + w, S), y2a = yc;
            x1b = 0, y1b = h - (y2a - y1a), x2b = imin(w, x2a - x1a), y2b = h;
        } else if (i == 2) { /* bottom left */
            x1a = imax(xc - w, 0), y1a = yc, x2a = xc, y2a = imin(S, yc + h);
            x1b = w - (x2a - x1a), y1b = 0, x2b = w, y2b = imin(y2a - y1a, h);
        } else { /* bottom right */
            x1a = xc, y1a = yc, x2a = imin(xc + w, S), y2a = imin(S, yc + h);
            x1b = 0, y1b = 0, x2b = imin(w, x2a - x1a), y2b = imin(y2a - y1a, h);
        }
        int cw = x2a - x1a, ch = y2a - y1a;
        if (cw > 0 && ch > 0 && x2b - x1b == cw && y2b - y1b == ch)
            for (int y = 0; y < ch; y++)
                memcpy(out->px + ((size_t)(y1a + y) * S + x1a) * 3, v[i].px + ((size_t)(y1b + y) * w + x1b) * 3,
                       (size_t)cw * 3);
        if (append_view_labels(&out->inst, &v[i], (float)(x1a - x1b), (float)(y1a - y1b), with_seg) < 0) goto oom;
    }
    yt_inst_clip(&out->inst, (float)S, (float)S);
    yt_inst_remove_zero_area(&out->inst);
    out->ori_h = v[0].ori_h;
    out->ori_w = v[0].ori_w;
    out->res_h = out->res_w = S;
    out->ratio_h = (double)v[0].h / v[0].ori_h;
    out->ratio_w = (double)v[0].w / v[0].ori_w;
    out->mosaic_border = -s / 2;
    return 0;
oom:
    yt_sample_free(out);
    return -1;
}

/* ---- perspective ---- */

static void mat3_mul(const double *A, const double *B, double *C)
{
    double t[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) t[3 * i + j] = A[3 * i] * B[j] + A[3 * i + 1] * B[3 + j] + A[3 * i + 2] * B[6 + j];
    memcpy(C, t, sizeof t);
}

static int mat3_inv(const double *m, double *o)
{
    double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5], g = m[6], h = m[7], i = m[8];
    double A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
    double det = a * A + b * B + c * C;
    if (fabs(det) < 1e-300) return -1;
    double id = 1.0 / det;
    o[0] = A * id, o[1] = -(b * i - c * h) * id, o[2] = (b * f - c * e) * id;
    o[3] = B * id, o[4] = (a * i - c * g) * id, o[5] = -(a * f - c * d) * id;
    o[6] = C * id, o[7] = -(a * h - b * g) * id, o[8] = (a * e - b * d) * id;
    return 0;
}

/* Bilinear sample at fixed-point (1/32 px) coordinates, taps outside the image read 114. */
static inline void sample_px(const uint8_t *src, int sh, int sw, int X, int Y, uint8_t *d)
{
    int sx = X >> 5, sy = Y >> 5, fx = X & 31, fy = Y & 31;
    int w00 = (32 - fx) * (32 - fy), w01 = fx * (32 - fy), w10 = (32 - fx) * fy, w11 = fx * fy;
    if (sx >= 0 && sy >= 0 && sx + 1 < sw && sy + 1 < sh) {
        const uint8_t *p = src + ((size_t)sy * sw + sx) * 3, *q = p + (size_t)sw * 3;
        for (int c = 0; c < 3; c++)
            d[c] = (uint8_t)((p[c] * w00 + p[c + 3] * w01 + q[c] * w10 + q[c + 3] * w11 + 512) >> 10);
        return;
    }
    if (sx < -1 || sy < -1 || sx >= sw || sy >= sh) {
        d[0] = d[1] = d[2] = YT_PAD_VALUE;
        return;
    }
    static const uint8_t pad[3] = {YT_PAD_VALUE, YT_PAD_VALUE, YT_PAD_VALUE};
    const uint8_t *t[4];
    int xs[2] = {sx, sx + 1}, ys[2] = {sy, sy + 1};
    for (int k = 0; k < 4; k++) {
        int xx = xs[k & 1], yy = ys[k >> 1];
        t[k] = (xx >= 0 && yy >= 0 && xx < sw && yy < sh) ? src + ((size_t)yy * sw + xx) * 3 : pad;
    }
    for (int c = 0; c < 3; c++)
        d[c] = (uint8_t)((t[0][c] * w00 + t[1][c] * w01 + t[2][c] * w10 + t[3][c] * w11 + 512) >> 10);
}

void yt_warp_u8(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw, const double M[9], int persp)
{
    double Mi[9];
    if (mat3_inv(M, Mi) < 0) {
        memset(dst, YT_PAD_VALUE, (size_t)dh * dw * 3);
        return;
    }
    for (int y = 0; y < dh; y++) {
        uint8_t *d = dst + (size_t)y * dw * 3;
        if (!persp) {
            double bx = Mi[1] * y + Mi[2], by = Mi[4] * y + Mi[5];
            for (int x = 0; x < dw; x++) {
                double X = bx + Mi[0] * x, Y = by + Mi[3] * x;
                int iX = (int)lrint(fmax(fmin(X, 1e7), -1e7) * 32), iY = (int)lrint(fmax(fmin(Y, 1e7), -1e7) * 32);
                sample_px(src, sh, sw, iX, iY, d + 3 * x);
            }
        } else {
            for (int x = 0; x < dw; x++) {
                double W = Mi[6] * x + Mi[7] * y + Mi[8];
                W = W != 0 ? 1.0 / W : 0;
                double X = (Mi[0] * x + Mi[1] * y + Mi[2]) * W, Y = (Mi[3] * x + Mi[4] * y + Mi[5]) * W;
                int iX = (int)lrint(fmax(fmin(X, 1e7), -1e7) * 32), iY = (int)lrint(fmax(fmin(Y, 1e7), -1e7) * 32);
                sample_px(src, sh, sw, iX, iY, d + 3 * x);
            }
        }
    }
}

static void apply_pt(const double *M, int persp, double x, double y, double *ox, double *oy)
{
    double X = M[0] * x + M[1] * y + M[2], Y = M[3] * x + M[4] * y + M[5];
    if (persp) {
        double W = M[6] * x + M[7] * y + M[8];
        X /= W;
        Y /= W;
    }
    *ox = X;
    *oy = Y;
}

int yt_random_perspective(yt_sample *s, const yt_perspective_cfg *cfg, yt_rng *rng)
{
    int border = s->mosaic_border;
    int height = s->h + 2 * border, width = s->w + 2 * border;
    if (height < 1 || width < 1) return -1;
    double C[9] = {1, 0, -s->w / 2.0, 0, 1, -s->h / 2.0, 0, 0, 1};
    double P[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    P[6] = yt_rng_uniform(rng, -cfg->perspective, cfg->perspective);
    P[7] = yt_rng_uniform(rng, -cfg->perspective, cfg->perspective);
    double a = yt_rng_uniform(rng, -cfg->degrees, cfg->degrees);
    double sc = yt_rng_uniform(rng, 1 - cfg->scale, 1 + cfg->scale);
    /* rotation about (0,0) by a degrees (counter-clockwise, OpenCV's convention), scaled by sc */
    double al = sc * cos(a * M_PI / 180), be = sc * sin(a * M_PI / 180);
    double R[9] = {al, be, 0, -be, al, 0, 0, 0, 1};
    double S[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    S[1] = tan(yt_rng_uniform(rng, -cfg->shear, cfg->shear) * M_PI / 180);
    S[3] = tan(yt_rng_uniform(rng, -cfg->shear, cfg->shear) * M_PI / 180);
    double T[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    T[2] = yt_rng_uniform(rng, 0.5 - cfg->translate, 0.5 + cfg->translate) * width;
    T[5] = yt_rng_uniform(rng, 0.5 - cfg->translate, 0.5 + cfg->translate) * height;
    double M[9];
    mat3_mul(S, R, M);
    mat3_mul(M, P, M);
    mat3_mul(M, C, M);
    mat3_mul(T, M, M);
    int persp = cfg->perspective != 0;
    int identity = 1;
    static const double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int k = 0; k < 9; k++)
        if (M[k] != I[k]) identity = 0;
    if (border != 0 || !identity) {
        uint8_t *dst = malloc((size_t)height * width * 3 + 1);
        if (!dst) return -1;
        yt_warp_u8(s->px, s->h, s->w, dst, height, width, M, persp);
        free(s->px);
        s->px = dst;
    }
    s->h = height;
    s->w = width;
    yt_inst *in = &s->inst;
    if (in->n == 0) {
        in->has_seg = 0;
        return 0;
    }
    float *nb = malloc(sizeof(float) * 4 * in->n);
    unsigned char *keep = malloc((size_t)in->n);
    if (!nb || !keep) {
        free(nb);
        free(keep);
        return -1;
    }
    for (int i = 0; i < in->n; i++) {
        float *o = nb + 4 * i;
        if (in->has_seg) {
            double x1 = 1e30, y1 = 1e30, x2 = -1e30, y2 = -1e30;
            int any = 0;
            float *sp = in->seg + (size_t)i * 2 * YT_SEG_PTS;
            for (int k = 0; k < YT_SEG_PTS; k++) {
                double X, Y;
                apply_pt(M, persp, sp[2 * k], sp[2 * k + 1], &X, &Y);
                if (X >= 0 && Y >= 0 && X <= width && Y <= height) {
                    any = 1;
                    x1 = fmin(x1, X), y1 = fmin(y1, Y), x2 = fmax(x2, X), y2 = fmax(y2, Y);
                }
            }
            if (!any) x1 = y1 = x2 = y2 = 0;
            o[0] = (float)x1, o[1] = (float)y1, o[2] = (float)x2, o[3] = (float)y2;
        } else {
            const float *b = in->box + 4 * i;
            double xs[4] = {b[0], b[2], b[0], b[2]}, ys[4] = {b[1], b[3], b[3], b[1]};
            double x1 = 1e30, y1 = 1e30, x2 = -1e30, y2 = -1e30;
            for (int k = 0; k < 4; k++) {
                double X, Y;
                apply_pt(M, persp, xs[k], ys[k], &X, &Y);
                x1 = fmin(x1, X), y1 = fmin(y1, Y), x2 = fmax(x2, X), y2 = fmax(y2, Y);
            }
            o[0] = (float)x1, o[1] = (float)y1, o[2] = (float)x2, o[3] = (float)y2;
        }
        o[0] = clampf(o[0], 0, (float)width);
        o[2] = clampf(o[2], 0, (float)width);
        o[1] = clampf(o[1], 0, (float)height);
        o[3] = clampf(o[3], 0, (float)height);
        const float *b = in->box + 4 * i;
        double w1 = (b[2] - b[0]) * sc, h1 = (b[3] - b[1]) * sc;
        double w2 = o[2] - o[0], h2 = o[3] - o[1];
        double ar = fmax(w2 / (h2 + 1e-16), h2 / (w2 + 1e-16));
        double area_thr = in->has_seg ? 0.01 : 0.10;
        keep[i] = w2 > 2 && h2 > 2 && (w2 * h2 / (w1 * h1 + 1e-16)) > area_thr && ar < 100;
    }
    memcpy(in->box, nb, sizeof(float) * 4 * in->n);
    in->has_seg = 0; /* polygons are not needed after the geometric transforms */
    inst_keep(in, keep);
    free(nb);
    free(keep);
    return 0;
}

int yt_mixup(yt_sample *s, yt_sample *o, double r)
{
    if (s->h != o->h || s->w != o->w) return -1;
    size_t n = (size_t)s->h * s->w * 3;
    for (size_t k = 0; k < n; k++) s->px[k] = (uint8_t)(s->px[k] * r + o->px[k] * (1 - r));
    int base = s->inst.n;
    if (yt_inst_reserve(&s->inst, base + o->inst.n, 0) < 0) return -1;
    for (int i = 0; i < o->inst.n; i++) {
        s->inst.cls[base + i] = o->inst.cls[i];
        memcpy(s->inst.box + 4 * (base + i), o->inst.box + 4 * i, sizeof(float) * 4);
    }
    s->inst.n += o->inst.n;
    s->inst.has_seg = 0;
    return 0;
}

/* ---- HSV (OpenCV 8-bit conventions: H in [0, 180), S and V in [0, 255]) ---- */

void yt_hsv_apply(uint8_t *px, size_t npix, double rh, double rs, double rv)
{
    uint8_t lut_h[256], lut_s[256], lut_v[256];
    for (int x = 0; x < 256; x++) {
        lut_h[x] = (uint8_t)(int)fmod(fmod(x * rh, 180.0) + 180.0, 180.0);
        double sv = x * rs, vv = x * rv;
        lut_s[x] = (uint8_t)(sv < 0 ? 0 : sv > 255 ? 255 : (int)sv);
        lut_v[x] = (uint8_t)(vv < 0 ? 0 : vv > 255 ? 255 : (int)vv);
    }
    static int sdiv[256], hdiv[256];
    static int tables_ready;
    if (!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) {
        /* idempotent: racing threads write identical values */
        for (int i = 1; i < 256; i++) {
            sdiv[i] = (int)lrint((255 << 12) / (double)i);
            hdiv[i] = (int)lrint((180 << 12) / (6.0 * i));
        }
        sdiv[0] = hdiv[0] = 0;
        __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
    }
    static const int sector_data[6][3] = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
    for (size_t k = 0; k < npix; k++) {
        uint8_t *p = px + 3 * k;
        int r = p[0], g = p[1], b = p[2];
        int v = r > g ? r : g;
        v = v > b ? v : b;
        int vmin = r < g ? r : g;
        vmin = vmin < b ? vmin : b;
        int diff = v - vmin;
        int s = (diff * sdiv[v] + (1 << 11)) >> 12;
        int h;
        if (v == r)
            h = g - b;
        else if (v == g)
            h = b - r + 2 * diff;
        else
            h = r - g + 4 * diff;
        h = (h * hdiv[diff] + (1 << 11)) >> 12;
        if (h < 0) h += 180;
        /* LUTs */
        int H = lut_h[h], Sv = lut_s[s], V = lut_v[v];
        /* back to RGB (float path as OpenCV's HSV2RGB for 8-bit) */
        float fs = Sv * (1.f / 255.f), fv = V * (1.f / 255.f);
        float fb, fg, fr;
        if (fs == 0) {
            fb = fg = fr = fv;
        } else {
            float fh = H * (6.f / 180.f);
            if (fh < 0)
                fh += 6;
            else if (fh >= 6)
                fh -= 6;
            int sector = (int)floorf(fh);
            fh -= sector;
            if ((unsigned)sector >= 6u) sector = 0, fh = 0;
            float tab[4] = {fv, fv * (1.f - fs), fv * (1.f - fs * fh), fv * (1.f - fs * (1.f - fh))};
            fb = tab[sector_data[sector][0]];
            fg = tab[sector_data[sector][1]];
            fr = tab[sector_data[sector][2]];
        }
        int ob = (int)lrintf(fb * 255.f), og = (int)lrintf(fg * 255.f), orr = (int)lrintf(fr * 255.f);
        p[0] = (uint8_t)(orr < 0 ? 0 : orr > 255 ? 255 : orr);
        p[1] = (uint8_t)(og < 0 ? 0 : og > 255 ? 255 : og);
        p[2] = (uint8_t)(ob < 0 ? 0 : ob > 255 ? 255 : ob);
    }
}

void yt_hsv_augment(uint8_t *px, size_t npix, double hgain, double sgain, double vgain, yt_rng *rng)
{
    if (hgain == 0 && sgain == 0 && vgain == 0) return;
    double rh = yt_rng_uniform(rng, -1, 1) * hgain + 1;
    double rs = yt_rng_uniform(rng, -1, 1) * sgain + 1;
    double rv = yt_rng_uniform(rng, -1, 1) * vgain + 1;
    yt_hsv_apply(px, npix, rh, rs, rv);
}

void yt_flip_lr(yt_sample *s)
{
    for (int y = 0; y < s->h; y++) {
        uint8_t *row = s->px + (size_t)y * s->w * 3;
        for (int a = 0, b = s->w - 1; a < b; a++, b--) {
            uint8_t t[3];
            memcpy(t, row + 3 * a, 3);
            memcpy(row + 3 * a, row + 3 * b, 3);
            memcpy(row + 3 * b, t, 3);
        }
    }
    for (int i = 0; i < s->inst.n; i++) {
        float *b = s->inst.box + 4 * i;
        float x1 = s->w - b[2], x2 = s->w - b[0];
        b[0] = x1;
        b[2] = x2;
    }
    if (s->inst.has_seg)
        for (size_t k = 0; k < (size_t)s->inst.n * YT_SEG_PTS; k++) s->inst.seg[2 * k] = s->w - s->inst.seg[2 * k];
}

void yt_flip_ud(yt_sample *s)
{
    size_t rb = (size_t)s->w * 3;
    uint8_t *tmp = malloc(rb);
    if (tmp) {
        for (int a = 0, b = s->h - 1; a < b; a++, b--) {
            memcpy(tmp, s->px + a * rb, rb);
            memcpy(s->px + a * rb, s->px + b * rb, rb);
            memcpy(s->px + b * rb, tmp, rb);
        }
        free(tmp);
    }
    for (int i = 0; i < s->inst.n; i++) {
        float *b = s->inst.box + 4 * i;
        float y1 = s->h - b[3], y2 = s->h - b[1];
        b[1] = y1;
        b[3] = y2;
    }
    if (s->inst.has_seg)
        for (size_t k = 0; k < (size_t)s->inst.n * YT_SEG_PTS; k++)
            s->inst.seg[2 * k + 1] = s->h - s->inst.seg[2 * k + 1];
}
