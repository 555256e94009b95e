#include "loss/bbox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

#define YT_PI_D 3.14159265358979323846

void yt_xywh2xyxy(const float *in, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float cx = in[4 * i], cy = in[4 * i + 1], dw = in[4 * i + 2] / 2, dh = in[4 * i + 3] / 2;
        out[4 * i] = cx - dw;
        out[4 * i + 1] = cy - dh;
        out[4 * i + 2] = cx + dw;
        out[4 * i + 3] = cy + dh;
    }
}

void yt_xyxy2xywh(const float *in, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float x1 = in[4 * i], y1 = in[4 * i + 1], x2 = in[4 * i + 2], y2 = in[4 * i + 3];
        out[4 * i] = (x1 + x2) / 2;
        out[4 * i + 1] = (y1 + y2) / 2;
        out[4 * i + 2] = x2 - x1;
        out[4 * i + 3] = y2 - y1;
    }
}

void yt_dist2bbox(const float *dist, const float *anchors, float *out, int64_t n, int xywh)
{
    for (int64_t i = 0; i < n; i++) {
        float ax = anchors[2 * i], ay = anchors[2 * i + 1];
        float x1 = ax - dist[4 * i], y1 = ay - dist[4 * i + 1];
        float x2 = ax + dist[4 * i + 2], y2 = ay + dist[4 * i + 3];
        if (xywh) {
            out[4 * i] = (x1 + x2) / 2;
            out[4 * i + 1] = (y1 + y2) / 2;
            out[4 * i + 2] = x2 - x1;
            out[4 * i + 3] = y2 - y1;
        } else {
            out[4 * i] = x1;
            out[4 * i + 1] = y1;
            out[4 * i + 2] = x2;
            out[4 * i + 3] = y2;
        }
    }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void yt_bbox2dist(const float *anchors, const float *bbox, float *dist, int64_t n, float max_dist)
{
    float hi = max_dist - 0.01f;
    for (int64_t i = 0; i < n; i++) {
        float ax = anchors[2 * i], ay = anchors[2 * i + 1];
        dist[4 * i] = clampf(ax - bbox[4 * i], 0.0f, hi);
        dist[4 * i + 1] = clampf(ay - bbox[4 * i + 1], 0.0f, hi);
        dist[4 * i + 2] = clampf(bbox[4 * i + 2] - ax, 0.0f, hi);
        dist[4 * i + 3] = clampf(bbox[4 * i + 3] - ay, 0.0f, hi);
    }
}

int64_t yt_make_anchors_raw(int nl, const int64_t *hw, const float *strides, float offset, float *points,
                            float *stride_out)
{
    int64_t a = 0;
    for (int l = 0; l < nl; l++) {
        int64_t h = hw[2 * l], w = hw[2 * l + 1];
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++, a++) {
                if (points) {
                    points[2 * a] = (float)x + offset;
                    points[2 * a + 1] = (float)y + offset;
                }
                if (stride_out) stride_out[a] = strides[l];
            }
    }
    return a;
}

/* ---- IoU family ---- */

float yt_bbox_iou_one(const float b1[4], const float b2[4], yt_iou_kind kind)
{
    const float eps = YT_BBOX_EPS;
    float b1_x1 = b1[0], b1_y1 = b1[1], b1_x2 = b1[2], b1_y2 = b1[3];
    float b2_x1 = b2[0], b2_y1 = b2[1], b2_x2 = b2[2], b2_y2 = b2[3];
    float w1 = b1_x2 - b1_x1, h1 = (b1_y2 - b1_y1) + eps;
    float w2 = b2_x2 - b2_x1, h2 = (b2_y2 - b2_y1) + eps;
    float iw = fminf(b1_x2, b2_x2) - fmaxf(b1_x1, b2_x1);
    float ih = fminf(b1_y2, b2_y2) - fmaxf(b1_y1, b2_y1);
    if (iw < 0) iw = 0;
    if (ih < 0) ih = 0;
    float inter = iw * ih;
    float uni = ((w1 * h1 + w2 * h2) - inter) + eps;
    float iou = inter / uni;
    if (kind == YT_IOU) return iou;
    float cw = fmaxf(b1_x2, b2_x2) - fminf(b1_x1, b2_x1);
    float ch = fmaxf(b1_y2, b2_y2) - fminf(b1_y1, b2_y1);
    if (kind == YT_GIOU) {
        float c_area = cw * ch + eps;
        return iou - (c_area - uni) / c_area;
    }
    float c2 = (cw * cw + ch * ch) + eps;
    float sx = ((b2_x1 + b2_x2) - b1_x1) - b1_x2;
    float sy = ((b2_y1 + b2_y2) - b1_y1) - b1_y2;
    float rho2 = (sx * sx + sy * sy) / 4;
    if (kind == YT_DIOU) return iou - rho2 / c2;
    const float k = (float)(4.0 / (YT_PI_D * YT_PI_D));
    float da = atanf(w2 / h2) - atanf(w1 / h1);
    float v = k * (da * da);
    float alpha = v / ((v - iou) + (1.0f + eps));
    return iou - (rho2 / c2 + v * alpha);
}

/* d min(a, b) / da with PyTorch's tie rule (half the gradient to each side) */
static double dmin_a(double a, double b) { return a < b ? 1.0 : (a == b ? 0.5 : 0.0); }
static double dmax_a(double a, double b) { return a > b ? 1.0 : (a == b ? 0.5 : 0.0); }

float yt_bbox_iou_grad(const float b1[4], const float b2[4], yt_iou_kind kind, double g[4])
{
    const double eps = (double)YT_BBOX_EPS;
    double x1 = b1[0], y1 = b1[1], x2 = b1[2], y2 = b1[3];
    double X1 = b2[0], Y1 = b2[1], X2 = b2[2], Y2 = b2[3];
    double w1 = x2 - x1, h1 = y2 - y1 + eps, w2 = X2 - X1, h2 = Y2 - Y1 + eps;
    double iw_raw = fmin(x2, X2) - fmax(x1, X1), ih_raw = fmin(y2, Y2) - fmax(y1, Y1);
    double iw = iw_raw > 0 ? iw_raw : 0, ih = ih_raw > 0 ? ih_raw : 0;
    double inter = iw * ih;
    double uni = w1 * h1 + w2 * h2 - inter + eps;
    double iou = inter / uni;
    /* derivatives w.r.t. (x1, y1, x2, y2) of box 1 */
    double d_iw[4] = {0, 0, 0, 0}, d_ih[4] = {0, 0, 0, 0};
    if (iw_raw >= 0) {
        d_iw[0] = -dmax_a(x1, X1);
        d_iw[2] = dmin_a(x2, X2);
    }
    if (ih_raw >= 0) {
        d_ih[1] = -dmax_a(y1, Y1);
        d_ih[3] = dmin_a(y2, Y2);
    }
    double d_w1[4] = {-1, 0, 1, 0}, d_h1[4] = {0, -1, 0, 1};
    double d_inter[4], d_uni[4], d_iou[4];
    for (int j = 0; j < 4; j++) {
        d_inter[j] = ih * d_iw[j] + iw * d_ih[j];
        d_uni[j] = h1 * d_w1[j] + w1 * d_h1[j] - d_inter[j];
        d_iou[j] = (d_inter[j] * uni - inter * d_uni[j]) / (uni * uni);
        g[j] = d_iou[j];
    }
    if (kind == YT_IOU) return yt_bbox_iou_one(b1, b2, kind);
    double cw = fmax(x2, X2) - fmin(x1, X1), ch = fmax(y2, Y2) - fmin(y1, Y1);
    double d_cw[4] = {-dmin_a(x1, X1), 0, dmax_a(x2, X2), 0};
    double d_ch[4] = {0, -dmin_a(y1, Y1), 0, dmax_a(y2, Y2)};
    if (kind == YT_GIOU) {
        double c = cw * ch + eps;
        for (int j = 0; j < 4; j++) {
            double d_c = ch * d_cw[j] + cw * d_ch[j];
            /* giou = iou - (c - u)/c = iou - 1 + u/c */
            g[j] += (d_uni[j] * c - uni * d_c) / (c * c);
        }
        return yt_bbox_iou_one(b1, b2, kind);
    }
    double c2 = cw * cw + ch * ch + eps;
    double sx = X1 + X2 - x1 - x2, sy = Y1 + Y2 - y1 - y2;
    double rho2 = (sx * sx + sy * sy) / 4;
    double d_rho2[4] = {-sx / 2, -sy / 2, -sx / 2, -sy / 2};
    for (int j = 0; j < 4; j++) {
        double d_c2 = 2 * cw * d_cw[j] + 2 * ch * d_ch[j];
        g[j] -= (d_rho2[j] * c2 - rho2 * d_c2) / (c2 * c2);
    }
    if (kind == YT_DIOU) return yt_bbox_iou_one(b1, b2, kind);
    const double k = 4.0 / (YT_PI_D * YT_PI_D);
    double da = atan(w2 / h2) - atan(w1 / h1);
    double v = k * da * da;
    double alpha = v / (v - iou + 1.0 + eps); /* constant */
    double den = w1 * w1 + h1 * h1;
    for (int j = 0; j < 4; j++) {
        double d_a1 = (h1 * d_w1[j] - w1 * d_h1[j]) / den;
        double d_v = -2.0 * k * da * d_a1;
        g[j] -= alpha * d_v;
    }
    return yt_bbox_iou_one(b1, b2, kind);
}

static void to_xyxy1(const float *in, float *out, int xywh)
{
    if (xywh)
        yt_xywh2xyxy(in, out, 1);
    else
        memcpy(out, in, 4 * sizeof *out);
}

void yt_bbox_iou_forward(const float *a, const float *b, float *out, int64_t n, yt_iou_kind kind, int xywh)
{
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        float p[4], q[4];
        to_xyxy1(a + 4 * i, p, xywh);
        to_xyxy1(b + 4 * i, q, xywh);
        out[i] = yt_bbox_iou_one(p, q, kind);
    }
}

/* chain rule through cx,cy,w,h -> x1,y1,x2,y2 */
static void grad_to_xywh(const double gx[4], double out[4])
{
    out[0] = gx[0] + gx[2];
    out[1] = gx[1] + gx[3];
    out[2] = (gx[2] - gx[0]) / 2;
    out[3] = (gx[3] - gx[1]) / 2;
}

void yt_bbox_iou_backward(const float *a, const float *b, const float *gout, float *ga, float *gb, int64_t n,
                          yt_iou_kind kind, int xywh)
{
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        float p[4], q[4];
        double g[4], gw[4];
        to_xyxy1(a + 4 * i, p, xywh);
        to_xyxy1(b + 4 * i, q, xywh);
        if (ga) {
            yt_bbox_iou_grad(p, q, kind, g);
            if (xywh)
                grad_to_xywh(g, gw);
            else
                memcpy(gw, g, sizeof gw);
            for (int j = 0; j < 4; j++) ga[4 * i + j] += (float)(gout[i] * gw[j]);
        }
        if (gb) {
            yt_bbox_iou_grad(q, p, kind, g);
            if (xywh)
                grad_to_xywh(g, gw);
            else
                memcpy(gw, g, sizeof gw);
            for (int j = 0; j < 4; j++) gb[4 * i + j] += (float)(gout[i] * gw[j]);
        }
    }
}

/* ---- tensor level ---- */

/* a, b contiguous; b broadcast when it holds one box */
static int iou_backward(yt_node *node)
{
    yt_tensor *a = node->saved[0], *b = node->saved[1], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    int64_t n = yt_numel(a) / 4, nb = yt_numel(b) / 4;
    yt_iou_kind kind = (yt_iou_kind)node->iarg[0];
    int xywh = (int)node->iarg[1];
    float *ga = yt_grad_accum(node->in[0]);
    float *gb = yt_grad_accum(node->in[1]);
    if (nb == n) {
        yt_bbox_iou_backward(yt_f32(a), yt_f32(b), yt_f32(gy), ga, gb, n, kind, xywh);
    } else { /* one box for all */
        double acc[4] = {0, 0, 0, 0};
        const float *pa = yt_f32(a), *pb = yt_f32(b), *g = yt_f32(gy);
        for (int64_t i = 0; i < n; i++) {
            float tmp[4] = {0, 0, 0, 0};
            yt_bbox_iou_backward(pa + 4 * i, pb, g + i, ga ? ga + 4 * i : NULL, gb ? tmp : NULL, 1, kind, xywh);
            for (int j = 0; j < 4; j++) acc[j] += tmp[j];
        }
        if (gb)
            for (int j = 0; j < 4; j++) gb[j] += (float)acc[j];
    }
    return 0;
}

yt_tensor *yt_bbox_iou(yt_tensor *a, yt_tensor *b, yt_iou_kind kind, int xywh)
{
    if (yt_check(a, "bbox_iou box1", YT_F32, -1) < 0 || yt_check(b, "bbox_iou box2", YT_F32, -1) < 0) return NULL;
    char s1[128], s2[128];
    if (a->ndim < 1 || a->shape[a->ndim - 1] != 4 || b->ndim < 1 || b->shape[b->ndim - 1] != 4) {
        yt_error("bbox_iou: boxes need a last dimension of 4, got %s and %s", yt_shape_str(a, s1, sizeof s1),
                 yt_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    int64_t n = yt_numel(a) / 4, nb = yt_numel(b) / 4;
    if (nb != n && nb != 1) {
        yt_error("bbox_iou: %s and %s hold different numbers of boxes", yt_shape_str(a, s1, sizeof s1),
                 yt_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    if ((int)kind < YT_IOU || kind > YT_CIOU) {
        yt_error("bbox_iou: unknown IoU kind %d", (int)kind);
        return NULL;
    }
    yt_tensor *ac = yt_contiguous(a), *bc = ac ? yt_contiguous(b) : NULL;
    if (!bc) {
        yt_tensor_release(ac);
        return NULL;
    }
    int64_t shape[YT_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) shape[d] = a->shape[d];
    shape[a->ndim - 1] = 1;
    yt_tensor *y = yt_tensor_empty(YT_F32, a->ndim, shape);
    if (y) {
        if (nb == n) {
            yt_bbox_iou_forward(yt_f32(ac), yt_f32(bc), yt_f32(y), n, kind, xywh);
        } else {
            for (int64_t i = 0; i < n; i++)
                yt_bbox_iou_forward(yt_f32(ac) + 4 * i, yt_f32(bc), yt_f32(y) + i, 1, kind, xywh);
        }
        yt_tensor *ins[2] = {a, b};
        yt_node *node = yt_record("bbox_iou", iou_backward, 2, ins, &y);
        if (node) {
            yt_node_save(node, ac);
            yt_node_save(node, bc);
            node->iarg[0] = kind;
            node->iarg[1] = xywh;
        }
    }
    yt_tensor_release(ac);
    yt_tensor_release(bc);
    return y;
}

int yt_make_anchors(int nl, const int64_t *hw, const float *strides, float offset, yt_tensor **points,
                    yt_tensor **stride_tensor)
{
    *points = *stride_tensor = NULL;
    if (nl <= 0) return yt_error("make_anchors: no levels");
    for (int l = 0; l < nl; l++)
        if (hw[2 * l] <= 0 || hw[2 * l + 1] <= 0 || !(strides[l] > 0))
            return yt_error("make_anchors: level %d has shape %lldx%lld and stride %g", l, (long long)hw[2 * l],
                            (long long)hw[2 * l + 1], (double)strides[l]);
    int64_t a = yt_make_anchors_raw(nl, hw, strides, offset, NULL, NULL);
    int64_t sp[2] = {a, 2}, ss[2] = {a, 1};
    *points = yt_tensor_empty(YT_F32, 2, sp);
    *stride_tensor = yt_tensor_empty(YT_F32, 2, ss);
    if (!*points || !*stride_tensor) {
        yt_tensor_release(*points);
        yt_tensor_release(*stride_tensor);
        *points = *stride_tensor = NULL;
        return -1;
    }
    yt_make_anchors_raw(nl, hw, strides, offset, yt_f32(*points), yt_f32(*stride_tensor));
    return 0;
}
