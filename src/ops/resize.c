#include "ops/resize.h"

#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

void yt_upsample_nearest_forward(const float *x, float *y, size_t nc, int h, int w, int scale)
{
    const size_t ow = (size_t)w * scale, plane_out = (size_t)h * scale * ow, plane_in = (size_t)h * w;
#pragma omp parallel for schedule(static) if (nc * plane_out > 65536)
    for (size_t p = 0; p < nc; p++) {
        const float *xp = x + p * plane_in;
        float *yp = y + p * plane_out;
        for (int i = 0; i < h; i++) {
            float *row = yp + (size_t)i * scale * ow;
            const float *xr = xp + (size_t)i * w;
            for (int j = 0; j < w; j++)
                for (int k = 0; k < scale; k++) row[(size_t)j * scale + k] = xr[j];
            for (int r = 1; r < scale; r++)
                for (size_t j = 0; j < ow; j++) row[r * ow + j] = row[j];
        }
    }
}

void yt_upsample_nearest_backward(const float *gy, float *gx, size_t nc, int h, int w, int scale)
{
    const size_t ow = (size_t)w * scale, plane_out = (size_t)h * scale * ow, plane_in = (size_t)h * w;
#pragma omp parallel for schedule(static) if (nc * plane_out > 65536)
    for (size_t p = 0; p < nc; p++) {
        const float *gp = gy + p * plane_out;
        float *gxp = gx + p * plane_in;
        for (int i = 0; i < h; i++) {
            float *gr = gxp + (size_t)i * w;
            for (int j = 0; j < w; j++) {
                float acc = 0.0f;
                for (int r = 0; r < scale; r++) {
                    const float *src = gp + ((size_t)i * scale + r) * ow + (size_t)j * scale;
                    for (int k = 0; k < scale; k++) acc += src[k];
                }
                gr[j] += acc;
            }
        }
    }
}

static int upsample_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    yt_tensor *x = node->in[0];
    float *gx = yt_grad_accum(x);
    if (!gx) return x ? -1 : 0;
    yt_upsample_nearest_backward(yt_f32(gy), gx, (size_t)(x->shape[0] * x->shape[1]), (int)x->shape[2],
                                 (int)x->shape[3], (int)node->iarg[0]);
    return 0;
}

yt_tensor *yt_upsample_nearest(yt_tensor *x, int scale)
{
    if (yt_check(x, "upsample_nearest input", YT_F32, 4) < 0) return NULL;
    char b[128];
    if (scale < 1) {
        yt_error("upsample_nearest: scale must be an integer >= 1, got %d", scale);
        return NULL;
    }
    if (x->shape[2] * scale > INT32_MAX / 4 || x->shape[3] * scale > INT32_MAX / 4) {
        yt_error("upsample_nearest: input %s x %d too large", yt_shape_str(x, b, sizeof b), scale);
        return NULL;
    }
    if (yt_is_channels_last(x) && !yt_needs_grad(1, &x)) {
        /* the fused inference path's layout, kept (shape_ops.h): each pixel's C values copied scale x scale times */
        const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
        const int64_t OH = H * scale, OW = W * scale;
        yt_tensor *y = yt_tensor_empty_channels_last(N, C, OH, OW);
        if (!y) return NULL;
        const float *xd = yt_f32(x);
        float *yd = yt_f32(y);
        const int64_t rows = N * OH;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * OW * C > 65536)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t n = r / OH, h = (r % OH) / scale;
            const float *src = xd + n * x->stride[0] + h * x->stride[2];
            float *dst = yd + r * OW * C;
            for (int64_t w = 0; w < OW; w++)
                memcpy(dst + w * C, src + (w / scale) * x->stride[3], (size_t)C * sizeof(float));
        }
        return y;
    }
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) return NULL;
    int64_t ys[4] = {xc->shape[0], xc->shape[1], xc->shape[2] * scale, xc->shape[3] * scale};
    yt_tensor *y = yt_tensor_empty(YT_F32, 4, ys);
    if (y) {
        yt_upsample_nearest_forward(yt_f32(xc), yt_f32(y), (size_t)(xc->shape[0] * xc->shape[1]), (int)xc->shape[2],
                                    (int)xc->shape[3], scale);
        yt_node *node = yt_record("upsample_nearest", upsample_backward, 1, &xc, &y);
        if (node) node->iarg[0] = scale;
    }
    yt_tensor_release(xc);
    return y;
}
