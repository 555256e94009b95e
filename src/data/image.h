/* Images for the data pipeline: decoding (SDL2_image), header probing, EXIF orientation, OpenCV-style bilinear
 * resize, saving (cairo PNG / SDL2_image JPEG).
 *
 * yt_image is a plain RGB (HWC, uint8) buffer. Images shared between loader threads (the decoded-image cache)
 * are refcounted through yt_image_retain/yt_image_release; a stack yt_image with refcount 0 is freed with
 * yt_image_free. */
#ifndef YT_DATA_IMAGE_H
#define YT_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct yt_image {
    int h, w;     /* pixels */
    uint8_t *px;  /* h * w * 3 bytes, RGB, row-major */
    int refcount; /* for shared (heap) images; see yt_image_new */
} yt_image;

typedef enum { YT_IMFMT_UNKNOWN = 0, YT_IMFMT_JPEG, YT_IMFMT_PNG, YT_IMFMT_BMP, YT_IMFMT_WEBP, YT_IMFMT_TIFF } yt_imfmt;

/* Largest image accepted (pixels), checked from the file header before any pixel buffer is allocated.
 * Same order as PIL's decompression-bomb error threshold (2 x 89,478,485). */
#define YT_IMAGE_MAX_PIXELS 178956970LL
#define YT_IMAGE_MAX_SIDE 65500

/* Header facts, read without decoding. orientation = EXIF orientation 1..8 (1 when absent). */
typedef struct {
    yt_imfmt format;
    int w, h; /* as stored (before EXIF rotation) */
    int orientation;
    int jpeg_has_eoi; /* JPEG only: the file ends with the FFD9 marker */
} yt_image_info;

const char *yt_imfmt_name(yt_imfmt f);

/* Parses the header of an in-memory file. Returns 0, or -1 with the reason in yt_error (per thread: loader threads
 * report through it too). */
int yt_image_probe_mem(const uint8_t *buf, size_t n, yt_image_info *info);

/* Largest file read whole (images, label files, label caches): a bigger one is refused before allocating. */
#define YT_MAX_INPUT_FILE_BYTES ((size_t)1 << 30)

/* Reads a whole file (at most YT_MAX_INPUT_FILE_BYTES) into a malloc'd buffer. -1 with yt_error (the reason,
 * without the path) on failure. */
int yt_read_file(const char *path, uint8_t **buf, size_t *n);

/* Decodes to RGB with the EXIF orientation applied (like OpenCV's imread). Refuses images larger than
 * YT_IMAGE_MAX_PIXELS / YT_IMAGE_MAX_SIDE before allocating. out->px is malloc'd (out->refcount = 0).
 * info (optional) receives the header facts. -1 with yt_error on failure: decode_mem and read (a file) give the
 * reason alone, load (a file) prefixes it with the path. */
int yt_image_decode_mem(const uint8_t *buf, size_t n, yt_image *out, yt_image_info *info);
int yt_image_read(const char *path, yt_image *out, yt_image_info *info);
int yt_image_load(const char *path, yt_image *out, yt_image_info *info);

/* Heap image with refcount 1 (px allocated, uninitialised); NULL on allocation failure (no yt_error). */
yt_image *yt_image_new(int h, int w);
void yt_image_retain(yt_image *im);
void yt_image_release(yt_image *im); /* frees at refcount 0 */
void yt_image_free(yt_image *im);    /* frees px of a stack image */

/* Applies an EXIF orientation (1..8) to src, writing a new buffer into dst. */
int yt_image_orient(const yt_image *src, int orientation, yt_image *dst);

/* Bilinear resize with OpenCV INTER_LINEAR semantics (half-pixel centres, 11-bit fixed-point weights, the
 * rounding of OpenCV's SIMD vertical pass: bit-exact with letterbox.safetensors).
 * src: sh x sw x 3, dst: dh x dw x 3 (separate buffers; row strides in bytes). */
void yt_resize_linear_u8(const uint8_t *src, int sh, int sw, size_t sstride, uint8_t *dst, int dh, int dw,
                         size_t dstride);

/* Python's round(): halves to even. */
double yt_pyround(double x);

/* Saves RGB pixels: .png through cairo, .jpg/.jpeg through SDL2_image (quality 0..100). yt_error on failure. */
int yt_image_save(const char *path, const uint8_t *px, int h, int w, int quality);

#endif
