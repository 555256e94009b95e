/* Image decoding (SDL2_image), header probing, EXIF orientation, OpenCV-style bilinear resize, saving. */
#include "data/image.h"

#include <SDL2/SDL.h>
#include <SDL2/SDL_image.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/durable.h"

const char *yt_imfmt_name(yt_imfmt f)
{
    switch (f) {
    case YT_IMFMT_JPEG:
        return "jpeg";
    case YT_IMFMT_PNG:
        return "png";
    case YT_IMFMT_BMP:
        return "bmp";
    case YT_IMFMT_WEBP:
        return "webp";
    case YT_IMFMT_TIFF:
        return "tiff";
    default:
        return "unknown";
    }
}

/* SDL2_image's decoder of one format. IMG_LoadTyped_RW is no substitute: it still asks every format's detector
 * in its own order (SVG before WebP) and uses the type only for formats without a signature. */
static SDL_Surface *decode_as(yt_imfmt f, SDL_RWops *rw)
{
    switch (f) {
    case YT_IMFMT_JPEG:
        return IMG_LoadJPG_RW(rw);
    case YT_IMFMT_PNG:
        return IMG_LoadPNG_RW(rw);
    case YT_IMFMT_BMP:
        return IMG_LoadBMP_RW(rw);
    case YT_IMFMT_WEBP:
        return IMG_LoadWEBP_RW(rw);
    case YT_IMFMT_TIFF:
        return IMG_LoadTIF_RW(rw);
    default:
        SDL_SetError("unsupported format");
        return NULL;
    }
}

double yt_pyround(double x) { return nearbyint(x); /* default rounding mode: ties to even */ }

/* ---- header probing ---- */

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned le16(const uint8_t *p) { return (unsigned)p[1] << 8 | p[0]; }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* TIFF structure (EXIF payload or a .tif file): finds tags in IFD0. Returns 0 when the structure is readable. */
static int tiff_ifd0(const uint8_t *t, size_t n, int *orientation, long *width, long *height)
{
    if (n < 8) return -1;
    int le;
    if (t[0] == 'I' && t[1] == 'I')
        le = 1;
    else if (t[0] == 'M' && t[1] == 'M')
        le = 0;
    else
        return -1;
    unsigned (*r16)(const uint8_t *) = le ? le16 : be16;
    uint32_t (*r32)(const uint8_t *) = le ? le32 : be32;
    if (r16(t + 2) != 42) return -1;
    uint32_t off = r32(t + 4);
    if (off > n - 2 || off < 8) return -1;
    unsigned cnt = r16(t + off);
    for (unsigned i = 0; i < cnt; i++) {
        size_t e = (size_t)off + 2 + (size_t)i * 12;
        if (e + 12 > n) break;
        unsigned tag = r16(t + e), type = r16(t + e + 2);
        long val = type == 3 ? (long)r16(t + e + 8) : type == 4 ? (long)r32(t + e + 8) : -1;
        if (tag == 0x0112 && orientation && val >= 1 && val <= 8) *orientation = (int)val;
        if (tag == 0x0100 && width) *width = val;
        if (tag == 0x0101 && height) *height = val;
    }
    return 0;
}

static int probe_jpeg(const uint8_t *b, size_t n, yt_image_info *info)
{
    size_t p = 2;
    int have_sof = 0;
    while (p + 4 <= n) {
        if (b[p] != 0xFF) {
            yt_error("corrupt JPEG: expected a marker at byte %zu", p);
            return -1;
        }
        unsigned m = b[p + 1];
        if (m == 0xFF) {
            p++;
            continue;
        }
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            p += 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA) break; /* end / start of scan: header done */
        unsigned len = be16(b + p + 2);
        if (len < 2 || p + 2 + len > n) {
            yt_error("corrupt JPEG: truncated segment 0x%02X", m);
            return -1;
        }
        const uint8_t *seg = b + p + 4;
        size_t slen = len - 2;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (slen < 6) {
                yt_error("corrupt JPEG: short frame header");
                return -1;
            }
            info->h = (int)be16(seg + 1);
            info->w = (int)be16(seg + 3);
            have_sof = 1;
        } else if (m == 0xE1 && slen > 6 && memcmp(seg, "Exif\0\0", 6) == 0) {
            tiff_ifd0(seg + 6, slen - 6, &info->orientation, NULL, NULL);
        }
        p += 2 + len;
    }
    if (!have_sof) {
        yt_error("corrupt JPEG: no frame header (truncated or not a JPEG)");
        return -1;
    }
    /* the end marker, allowing trailing padding bytes after it */
    size_t e = n;
    while (e > 2 && (b[e - 1] == 0x00 || b[e - 1] == 0x0A || b[e - 1] == 0x0D || b[e - 1] == 0x20)) e--;
    info->jpeg_has_eoi = e >= 2 && b[e - 2] == 0xFF && b[e - 1] == 0xD9;
    return 0;
}

/* Every chunk up to IEND must lie inside the file. libpng, fed through SDL2_image's reader (which does not report
 * the end of the data), reads a chunk that runs past the end again and again: a 100-byte file hangs a decoder. */
static int check_png_chunks(const uint8_t *b, size_t n)
{
    for (size_t p = 8;;) {
        if (n - p < 12) {
            yt_error("truncated PNG: the file ends at byte %zu before its IEND chunk", n);
            return -1;
        }
        uint32_t len = be32(b + p);
        if (len > 0x7fffffff || len > n - p - 12) {
            yt_error("truncated PNG: chunk '%.4s' of %u bytes at byte %zu runs past the end (%zu bytes)",
                     (const char *)b + p + 4, (unsigned)len, p, n);
            return -1;
        }
        if (memcmp(b + p + 4, "IEND", 4) == 0) return 0;
        p += 12 + (size_t)len;
    }
}

int yt_image_probe_mem(const uint8_t *b, size_t n, yt_image_info *info)
{
    memset(info, 0, sizeof *info);
    info->orientation = 1;
    info->jpeg_has_eoi = 1;
    if (n == 0) {
        yt_error("empty file");
        return -1;
    }
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        info->format = YT_IMFMT_JPEG;
        if (probe_jpeg(b, n, info) < 0) return -1;
    } else if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
        info->format = YT_IMFMT_PNG;
        if (n < 24 || memcmp(b + 12, "IHDR", 4) != 0) {
            yt_error("corrupt PNG: no IHDR chunk");
            return -1;
        }
        uint32_t w = be32(b + 16), h = be32(b + 20);
        if (w > 0x7fffffff || h > 0x7fffffff) {
            yt_error("corrupt PNG: dimensions %ux%u", (unsigned)w, (unsigned)h);
            return -1;
        }
        info->w = (int)w;
        info->h = (int)h;
    } else if (n >= 26 && b[0] == 'B' && b[1] == 'M') {
        info->format = YT_IMFMT_BMP;
        uint32_t dib = le32(b + 14);
        if (dib == 12) {
            info->w = (int)le16(b + 18);
            info->h = (int)le16(b + 20);
        } else {
            int32_t w = (int32_t)le32(b + 18), h = (int32_t)le32(b + 22);
            if (w == INT32_MIN || h == INT32_MIN) {
                yt_error("corrupt BMP header");
                return -1;
            }
            info->w = w < 0 ? -w : w;
            info->h = h < 0 ? -h : h;
        }
    } else if (n >= 30 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) {
        info->format = YT_IMFMT_WEBP;
        if (memcmp(b + 12, "VP8 ", 4) == 0) {
            if (b[23] != 0x9d || b[24] != 0x01 || b[25] != 0x2a) {
                yt_error("corrupt WebP (VP8) header");
                return -1;
            }
            info->w = (int)(le16(b + 26) & 0x3fff);
            info->h = (int)(le16(b + 28) & 0x3fff);
        } else if (memcmp(b + 12, "VP8L", 4) == 0) {
            if (b[20] != 0x2f) {
                yt_error("corrupt WebP (VP8L) header");
                return -1;
            }
            uint32_t v = le32(b + 21);
            info->w = (int)(v & 0x3fff) + 1;
            info->h = (int)((v >> 14) & 0x3fff) + 1;
        } else if (memcmp(b + 12, "VP8X", 4) == 0) {
            info->w = (int)((uint32_t)b[24] | (uint32_t)b[25] << 8 | (uint32_t)b[26] << 16) + 1;
            info->h = (int)((uint32_t)b[27] | (uint32_t)b[28] << 8 | (uint32_t)b[29] << 16) + 1;
        } else {
            yt_error("unsupported WebP chunk");
            return -1;
        }
    } else if (n >= 8 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) {
        info->format = YT_IMFMT_TIFF;
        long w = -1, h = -1;
        if (tiff_ifd0(b, n, &info->orientation, &w, &h) < 0 || w <= 0 || h <= 0) {
            yt_error("corrupt TIFF header");
            return -1;
        }
        if (w > 0x7fffffff || h > 0x7fffffff) w = h = 0x7fffffff;
        info->w = (int)w;
        info->h = (int)h;
    } else {
        yt_error("not a supported image (JPEG, PNG, BMP, WebP, TIFF)");
        return -1;
    }
    if (info->w <= 0 || info->h <= 0) {
        yt_error("invalid %s dimensions %dx%d", yt_imfmt_name(info->format), info->w, info->h);
        return -1;
    }
    if (info->w > YT_IMAGE_MAX_SIDE || info->h > YT_IMAGE_MAX_SIDE ||
        (long long)info->w * info->h > YT_IMAGE_MAX_PIXELS) {
        yt_error("image too large: header announces %dx%d (limit %lld pixels, %d a side)", info->w, info->h,
                 (long long)YT_IMAGE_MAX_PIXELS, YT_IMAGE_MAX_SIDE);
        return -1;
    }
    if (info->format == YT_IMFMT_PNG && check_png_chunks(b, n) < 0) return -1;
    return 0;
}

int yt_read_file(const char *path, uint8_t **buf, size_t *n)
{
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        yt_error("cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        yt_error("not a regular file");
        return -1;
    }
    if ((unsigned long long)st.st_size > YT_MAX_INPUT_FILE_BYTES) {
        fclose(f);
        yt_error("file too large: %lld bytes (limit %zu)", (long long)st.st_size, YT_MAX_INPUT_FILE_BYTES);
        return -1;
    }
    size_t sz = (size_t)st.st_size;
    uint8_t *b = malloc(sz ? sz : 1);
    if (!b) {
        fclose(f);
        yt_error("out of memory reading %zu bytes", sz);
        return -1;
    }
    size_t got = sz ? fread(b, 1, sz, f) : 0;
    fclose(f);
    if (got != sz) {
        free(b);
        yt_error("short read (%zu of %zu bytes)", got, sz);
        return -1;
    }
    *buf = b;
    *n = sz;
    return 0;
}

/* ---- decoding ---- */

static pthread_once_t img_once = PTHREAD_ONCE_INIT;
static void img_init(void) { IMG_Init(IMG_INIT_JPG | IMG_INIT_PNG | IMG_INIT_TIF | IMG_INIT_WEBP); }

yt_image *yt_image_new(int h, int w)
{
    yt_image *im = malloc(sizeof *im);
    if (!im) return NULL;
    im->h = h;
    im->w = w;
    im->refcount = 1;
    im->px = malloc((size_t)h * w * 3 + 1);
    if (!im->px) {
        free(im);
        return NULL;
    }
    return im;
}

void yt_image_retain(yt_image *im)
{
    if (im) __atomic_add_fetch(&im->refcount, 1, __ATOMIC_RELAXED);
}

void yt_image_release(yt_image *im)
{
    if (im && __atomic_sub_fetch(&im->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        free(im->px);
        free(im);
    }
}

void yt_image_free(yt_image *im)
{
    if (!im) return;
    free(im->px);
    im->px = NULL;
    im->h = im->w = 0;
}

int yt_image_orient(const yt_image *src, int o, yt_image *dst)
{
    int H = src->h, W = src->w;
    int swap = o >= 5 && o <= 8;
    int dh = swap ? W : H, dw = swap ? H : W;
    uint8_t *d = malloc((size_t)dh * dw * 3 + 1);
    if (!d) return -1;
    for (int r = 0; r < dh; r++) {
        for (int c = 0; c < dw; c++) {
            int sr, sc;
            switch (o) {
            case 2:
                sr = r, sc = W - 1 - c;
                break;
            case 3:
                sr = H - 1 - r, sc = W - 1 - c;
                break;
            case 4:
                sr = H - 1 - r, sc = c;
                break;
            case 5:
                sr = c, sc = r;
                break;
            case 6:
                sr = H - 1 - c, sc = r;
                break;
            case 7:
                sr = H - 1 - c, sc = W - 1 - r;
                break;
            case 8:
                sr = c, sc = W - 1 - r;
                break;
            default:
                sr = r, sc = c;
                break;
            }
            memcpy(d + ((size_t)r * dw + c) * 3, src->px + ((size_t)sr * W + sc) * 3, 3);
        }
    }
    dst->px = d;
    dst->h = dh;
    dst->w = dw;
    dst->refcount = 0;
    return 0;
}

#if defined(__SANITIZE_THREAD__)
#define YT_NO_TSAN __attribute__((no_sanitize_thread))
#else
#define YT_NO_TSAN
#endif

/* A surface's pixel format. SDL shares one SDL_PixelFormat among all surfaces of a format and guards it with its
 * own spinlock, which ThreadSanitizer cannot see inside the uninstrumented SDL: this read is exempt from it
 * (tests/tsan.supp covers the accesses inside SDL). */
YT_NO_TSAN static Uint32 pixel_format_of(const SDL_Surface *s) { return s->format->format; }

int yt_image_decode_mem(const uint8_t *buf, size_t n, yt_image *out, yt_image_info *info_out)
{
    memset(out, 0, sizeof *out);
    yt_image_info info;
    if (yt_image_probe_mem(buf, n, &info) < 0) return -1;
    if (info_out) *info_out = info;
    pthread_once(&img_once, img_init);
    SDL_RWops *rw = SDL_RWFromConstMem(buf, (int)n);
    if (!rw) {
        yt_error("SDL_RWFromConstMem failed: %s", SDL_GetError());
        return -1;
    }
    /* decode as the probed format only: SDL2_image's own detection tries other formats first (SVG before WebP),
     * and a file whose header passed the pixel limit could be rasterised as a huge SVG */
    SDL_Surface *s = decode_as(info.format, rw);
    SDL_RWclose(rw);
    if (!s) {
        yt_error("cannot decode %s: %s", yt_imfmt_name(info.format), IMG_GetError());
        return -1;
    }
    if (s->w != info.w || s->h != info.h) {
        yt_error("corrupt %s: header says %dx%d, decoded %dx%d", yt_imfmt_name(info.format), info.w, info.h, s->w,
                 s->h);
        SDL_FreeSurface(s);
        return -1;
    }
    SDL_Surface *rgb = s;
    if (pixel_format_of(s) != SDL_PIXELFORMAT_RGB24) {
        rgb = SDL_ConvertSurfaceFormat(s, SDL_PIXELFORMAT_RGB24, 0);
        SDL_FreeSurface(s);
        if (!rgb) {
            yt_error("cannot convert %s to RGB: %s", yt_imfmt_name(info.format), SDL_GetError());
            return -1;
        }
    }
    int h = rgb->h, w = rgb->w;
    if (w < 1 || h < 1) {
        SDL_FreeSurface(rgb);
        yt_error("decoded an empty image");
        return -1;
    }
    uint8_t *px = malloc((size_t)h * w * 3 + 1);
    if (!px) {
        SDL_FreeSurface(rgb);
        yt_error("out of memory for %dx%d image", w, h);
        return -1;
    }
    if (SDL_MUSTLOCK(rgb)) SDL_LockSurface(rgb);
    for (int y = 0; y < h; y++)
        memcpy(px + (size_t)y * w * 3, (uint8_t *)rgb->pixels + (size_t)y * rgb->pitch, (size_t)w * 3);
    if (SDL_MUSTLOCK(rgb)) SDL_UnlockSurface(rgb);
    SDL_FreeSurface(rgb);
    out->px = px;
    out->h = h;
    out->w = w;
    if (info.orientation > 1) {
        yt_image o;
        if (yt_image_orient(out, info.orientation, &o) < 0) {
            yt_image_free(out);
            yt_error("out of memory rotating image");
            return -1;
        }
        yt_image_free(out);
        *out = o;
    }
    return 0;
}

int yt_image_read(const char *path, yt_image *out, yt_image_info *info)
{
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (yt_read_file(path, &buf, &n) < 0) return -1;
    int rc = yt_image_decode_mem(buf, n, out, info);
    free(buf);
    return rc;
}

int yt_image_load(const char *path, yt_image *out, yt_image_info *info)
{
    if (yt_image_read(path, out, info) < 0) return yt_error_prefix("%s: ", path);
    return 0;
}

/* ---- resize ---- */

#define RCOEF_BITS 11
#define RCOEF_ONE (1 << RCOEF_BITS)

static short coef_round(float v) { return (short)lrintf(v * RCOEF_ONE); }

void yt_resize_linear_u8(const uint8_t *src, int sh, int sw, size_t sstride, uint8_t *dst, int dh, int dw,
                         size_t dstride)
{
    if (sh == dh && sw == dw) {
        for (int y = 0; y < dh; y++) memcpy(dst + y * dstride, src + y * sstride, (size_t)dw * 3);
        return;
    }
    double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    int *xofs = malloc(sizeof(int) * dw);
    short *xa = malloc(sizeof(short) * 2 * dw);
    int *rows = malloc(sizeof(int) * 2 * 3 * (size_t)dw);
    if (!xofs || !xa || !rows) {
        /* allocation failure: fall back to nearest neighbour without buffers */
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                int sy = (int)((long long)y * sh / dh), sx = (int)((long long)x * sw / dw);
                memcpy(dst + y * dstride + x * 3, src + sy * sstride + sx * 3, 3);
            }
        free(xofs);
        free(xa);
        free(rows);
        return;
    }
    for (int x = 0; x < dw; x++) {
        float fx = (float)((x + 0.5) * scale_x - 0.5);
        int sx = (int)floorf(fx);
        fx -= sx;
        if (sx < 0) fx = 0, sx = 0;
        if (sx >= sw - 1) fx = 0, sx = sw - 1;
        xofs[x] = sx;
        xa[2 * x] = coef_round(1.f - fx);
        xa[2 * x + 1] = coef_round(fx);
    }
    int *rbuf[2] = {rows, rows + (size_t)3 * dw};
    int have[2] = {-1, -1}; /* source row held by rbuf[k] */
    for (int y = 0; y < dh; y++) {
        float fy = (float)((y + 0.5) * scale_y - 0.5);
        int sy = (int)floorf(fy);
        fy -= sy;
        if (sy < 0) fy = 0, sy = 0;
        if (sy >= sh - 1) fy = 0, sy = sh - 1;
        int b0 = coef_round(1.f - fy), b1 = coef_round(fy);
        int need[2] = {sy, sy + 1 < sh ? sy + 1 : sh - 1};
        if (have[0] != need[0] && have[1] == need[0]) { /* slide down one row */
            int *t = rbuf[0];
            rbuf[0] = rbuf[1];
            rbuf[1] = t;
            have[0] = have[1];
            have[1] = -1;
        }
        for (int k = 0; k < 2; k++) {
            if (have[k] == need[k]) continue;
            const uint8_t *s = src + (size_t)need[k] * sstride;
            int *r = rbuf[k];
            for (int x = 0; x < dw; x++) {
                const uint8_t *p = s + xofs[x] * 3;
                const uint8_t *q = xofs[x] + 1 < sw ? p + 3 : p;
                int a0 = xa[2 * x], a1 = xa[2 * x + 1];
                r[3 * x] = p[0] * a0 + q[0] * a1;
                r[3 * x + 1] = p[1] * a0 + q[1] * a1;
                r[3 * x + 2] = p[2] * a0 + q[2] * a1;
            }
            have[k] = need[k];
        }
        const int *r0 = rbuf[0], *r1 = rbuf[1];
        uint8_t *d = dst + y * dstride;
        for (int i = 0; i < 3 * dw; i++) {
            /* OpenCV's SIMD vertical pass rounding (bit-exact with the letterbox fixtures) */
            int v = ((((r0[i] >> 4) * b0) >> 16) + (((r1[i] >> 4) * b1) >> 16) + 2) >> 2;
            d[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(xofs);
    free(xa);
    free(rows);
}

/* ---- saving ---- */

static int ends_with_ci(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

static int save_png(const char *path, const uint8_t *px, int h, int w)
{
    cairo_surface_t *cs = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(cs) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(cs);
        return yt_error("%s: cannot create a %dx%d surface", path, w, h);
    }
    cairo_surface_flush(cs);
    uint8_t *d = cairo_image_surface_get_data(cs);
    int st = cairo_image_surface_get_stride(cs);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(d + (size_t)y * st);
        const uint8_t *s = px + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) row[x] = (uint32_t)s[3 * x] << 16 | (uint32_t)s[3 * x + 1] << 8 | s[3 * x + 2];
    }
    cairo_surface_mark_dirty(cs);
    cairo_status_t rc = cairo_surface_write_to_png(cs, path);
    cairo_surface_destroy(cs);
    if (rc != CAIRO_STATUS_SUCCESS) return yt_error("%s: cannot write PNG: %s", path, cairo_status_to_string(rc));
    return 0;
}

static int save_jpg(const char *path, const uint8_t *px, int h, int w, int quality)
{
    pthread_once(&img_once, img_init);
    SDL_Surface *s = SDL_CreateRGBSurfaceWithFormatFrom((void *)px, w, h, 24, w * 3, SDL_PIXELFORMAT_RGB24);
    if (!s) return yt_error("%s: cannot wrap pixels: %s", path, SDL_GetError());
    int rc = IMG_SaveJPG(s, path, quality);
    SDL_FreeSurface(s);
    if (rc != 0) return yt_error("%s: cannot write JPEG: %s", path, IMG_GetError());
    return 0;
}

/* Through a temporary and yt_durable_rename, as every file of a run directory. */
int yt_image_save(const char *path, const uint8_t *px, int h, int w, int quality)
{
    int png = ends_with_ci(path, ".png");
    if (!png && !ends_with_ci(path, ".jpg") && !ends_with_ci(path, ".jpeg"))
        return yt_error("%s: unsupported output format (use .png, .jpg or .jpeg)", path);
    char *tmp = yt_temp_path(path);
    if (!tmp) return -1;
    int rc = png ? save_png(tmp, px, h, w) : save_jpg(tmp, px, h, w, quality);
    if (rc == 0)
        rc = yt_durable_rename(tmp, path);
    else
        remove(tmp);
    free(tmp);
    return rc;
}
