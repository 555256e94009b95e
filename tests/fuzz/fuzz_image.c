/* libFuzzer harness for images (data/image.h): the header probe of every supported format (JPEG with EXIF,
 * PNG, BMP, WebP, TIFF) and, for headers within a small pixel budget, the decode through SDL2_image as the
 * probed format with the orientation applied. A decode must give the probed size (rotated by the
 * orientation): anything else is how the pixel limit was once bypassed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "data/image.h"

/* decoding is what costs: keep each input fast (the pixel limit itself is checked from the header) */
#define FUZZ_DECODE_MAX_PIXELS (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yt_image_info info;
    if (yt_image_probe_mem(data, size, &info) != 0) return 0;
    if (info.w <= 0 || info.h <= 0 || (long long)info.w * info.h > YT_IMAGE_MAX_PIXELS) abort();
    if ((long long)info.w * info.h > FUZZ_DECODE_MAX_PIXELS) return 0;
    yt_image im = {0};
    yt_image_info dinfo;
    if (yt_image_decode_mem(data, size, &im, &dinfo) == 0) {
        int swap = dinfo.orientation >= 5 && dinfo.orientation <= 8;
        if (im.w != (swap ? info.h : info.w) || im.h != (swap ? info.w : info.h)) abort();
        yt_image_free(&im);
    }
    yt_clear_error();
    return 0;
}
