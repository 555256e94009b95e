#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "ops/activation.h"
#include "ops/batchnorm.h"
#include "ops/conv2d.h"
#include "ops/conv2d_dnnl.h"
#include "ops/shape_ops.h"
#include "testutil.h"

typedef struct {
    int sh, sw, ph, pw;
} conv_opts;

static yt_tensor *f_conv(yt_tensor **in, void *ud)
{
    conv_opts *o = ud;
    return yt_conv2d(in[0], in[1], in[2], o->sh, o->sw, o->ph, o->pw);
}

static double max_abs_d(const double *r, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(r[i]) > m) m = fabs(r[i]);
    return m;
}

/* max |a - r| / max |r| */
static double rel_err(const float *a, const double *r, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - r[i]);
        if (d > m || d != d) m = d;
    }
    double s = max_abs_d(r, n);
    return s > 0 ? m / s : m;
}

static float *rand_buf(size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = tu_uniform(lo, hi);
    return p;
}

/* The raw-kernel variants every check runs: the GEMM path with both parallel strategies, oneDNN's backward
 * (dnnl, the default) and oneDNN for every pass (dnnl_all). */
#define N_VARIANTS 4
static const int variant_backend[N_VARIANTS] = {YT_CONV_GEMM, YT_CONV_GEMM, YT_CONV_DNNL, YT_CONV_DNNL_ALL};
static const int variant_strategy[N_VARIANTS] = {1, 2, 0, 0};
static const char *const variant_name[N_VARIANTS] = {"gemm strategy 1", "gemm strategy 2", "dnnl", "dnnl_all"};

/* Raw kernels against the double reference, for every variant; gradients accumulate onto a nonzero starting
 * value to check +=. */
static void check_raw(int N, int C, int H, int W, int O, int KH, int KW, int sh, int sw, int ph, int pw, int with_bias,
                      double tol)
{
    for (int v = 0; v < N_VARIANTS; v++) {
        yt_conv2d_shape s = {N, C, H, W, O, KH, KW, sh, sw, ph, pw, 0, 0, variant_strategy[v], variant_backend[v], 0};
        if (yt_conv2d_shape_init(&s) < 0) {
            CHECK(0, "shape init failed: %s", yt_last_error());
            return;
        }
        size_t nx = (size_t)N * C * H * W, nw = (size_t)O * C * KH * KW, ny = (size_t)N * O * s.OH * s.OW;
        float *x = rand_buf(nx, -1, 1), *w = rand_buf(nw, -1, 1), *b = with_bias ? rand_buf(O, -1, 1) : NULL;
        float *gy = rand_buf(ny, -1, 1);
        float *y = malloc(ny * sizeof *y);
        float *gx = malloc(nx * sizeof *gx), *gw = malloc(nw * sizeof *gw), *gb = malloc(O * sizeof *gb);
        for (size_t i = 0; i < nx; i++) gx[i] = 0.5f;
        for (size_t i = 0; i < nw; i++) gw[i] = 0.25f;
        for (int i = 0; i < O; i++) gb[i] = -1.0f;
        double *ry = calloc(ny, sizeof *ry), *rgx = calloc(nx, sizeof *rgx), *rgw = calloc(nw, sizeof *rgw);
        double *rgb = calloc(O, sizeof *rgb);
        for (size_t i = 0; i < nx; i++) rgx[i] = 0.5;
        for (size_t i = 0; i < nw; i++) rgw[i] = 0.25;
        for (int i = 0; i < O; i++) rgb[i] = -1.0;
        tu_conv2d_ref_forward(x, w, b, ry, &s);
        tu_conv2d_ref_backward(x, gy, rgx, w, rgw, rgb, &s);
        CHECK(yt_conv2d_forward(x, y, w, b, &s) == 0, "forward");
        CHECK(yt_conv2d_backward(x, gy, gx, w, gw, with_bias ? gb : NULL, &s) == 0, "backward");
        double ey = rel_err(y, ry, ny), ex = rel_err(gx, rgx, nx), ew = rel_err(gw, rgw, nw);
        char desc[160];
        snprintf(desc, sizeof desc, "N%d C%d %dx%d O%d k%dx%d s%d,%d p%d,%d bias%d %s", N, C, H, W, O, KH, KW, sh, sw,
                 ph, pw, with_bias, variant_name[v]);
        CHECK(ey <= tol, "%s: forward rel err %.3g", desc, ey);
        CHECK(ex <= tol, "%s: grad input rel err %.3g", desc, ex);
        CHECK(ew <= tol, "%s: grad weight rel err %.3g", desc, ew);
        if (with_bias) {
            double eb = rel_err(gb, rgb, O);
            CHECK(eb <= tol, "%s: grad bias rel err %.3g", desc, eb);
        }
        /* only some gradients wanted */
        memset(gw, 0, nw * sizeof *gw);
        CHECK(yt_conv2d_backward(x, gy, NULL, w, gw, NULL, &s) == 0, "backward gw only");
        for (size_t i = 0; i < nw; i++) rgw[i] -= 0.25;
        ew = rel_err(gw, rgw, nw);
        CHECK(ew <= tol, "%s: grad weight only rel err %.3g", desc, ew);
        free(x);
        free(w);
        free(b);
        free(gy);
        free(y);
        free(gx);
        free(gw);
        free(gb);
        free(ry);
        free(rgx);
        free(rgw);
        free(rgb);
    }
}

/* which: bit mask of the inputs (x, w, b) that require a gradient */
static void gradcheck_mask(int N, int C, int H, int W, int O, int KH, int KW, int sh, int sw, int ph, int pw,
                           int with_bias, int which)
{
    int64_t xs[] = {N, C, H, W}, ws[] = {O, C, KH, KW}, bs[] = {O};
    yt_tensor *in[3];
    in[0] = tu_rand(4, xs, -1, 1);
    in[1] = tu_rand(4, ws, -1, 1);
    in[2] = with_bias ? tu_rand(1, bs, -1, 1) : NULL;
    for (int i = 0; i < 3; i++)
        if (in[i] && (which >> i & 1)) in[i]->requires_grad = 1;
    conv_opts o = {sh, sw, ph, pw};
    char name[128];
    snprintf(name, sizeof name, "conv2d N%d C%d %dx%d O%d k%dx%d s%d,%d p%d,%d bias%d grads%d", N, C, H, W, O, KH, KW,
             sh, sw, ph, pw, with_bias, which);
    tu_gradcheck(name, f_conv, 3, in, &o, 1e-2f, 2e-3f, 1e-2f);
    for (int i = 0; i < 3; i++) yt_tensor_release(in[i]);
}

static void gradcheck_case(int N, int C, int H, int W, int O, int KH, int KW, int sh, int sw, int ph, int pw,
                           int with_bias)
{
    gradcheck_mask(N, C, H, W, O, KH, KW, sh, sw, ph, pw, with_bias, 7);
}

/* Weight gradient over many positions (4 x 160 x 160 = 102400 per weight), as in YOLOv8's first layers at
 * batch 4 / 640 or batch 16 / 320: parity wants <= 1e-3 relative. */
static void check_long_sums(void)
{
    for (int v = 0; v < N_VARIANTS; v++) {
        yt_conv2d_shape s = {4, 16, 160, 160, 16, 3, 3, 1, 1, 1, 1, 0, 0, variant_strategy[v], variant_backend[v], 0};
        yt_conv2d_shape_init(&s);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.O * s.C * 9, ny = (size_t)s.N * s.O * s.OH * s.OW;
        /* all-positive inputs make the sums large and cancellation-free: the hardest case for float */
        float *x = rand_buf(nx, 0, 1), *gy = rand_buf(ny, 0, 1);
        float *w = rand_buf(nw, -1, 1);
        float *gw = calloc(nw, sizeof *gw), *gb = calloc(s.O, sizeof *gb);
        double *rgw = calloc(nw, sizeof *rgw), *rgb = calloc(s.O, sizeof *rgb);
        tu_conv2d_ref_backward(x, gy, NULL, w, rgw, rgb, &s);
        yt_conv2d_backward(x, gy, NULL, w, gw, gb, &s);
        double ew = rel_err(gw, rgw, nw), eb = rel_err(gb, rgb, s.O);
        CHECK(ew <= 1e-4, "%s: 409600-term weight gradient rel err %.3g", variant_name[v], ew);
        CHECK(eb <= 1e-6, "%s: bias gradient rel err %.3g", variant_name[v], eb);
        printf("long sums (%s): weight grad rel err %.3g, bias grad rel err %.3g\n", variant_name[v], ew, eb);
        free(x);
        free(gy);
        free(w);
        free(gw);
        free(gb);
        free(rgw);
        free(rgb);
    }
}

static void check_errors(void)
{
    int64_t xs[] = {2, 4, 8, 8}, wg[] = {6, 2, 3, 3}, wbad[] = {6, 3, 3, 3}, wok[] = {6, 4, 3, 3}, bbad[] = {5};
    int64_t wbig[] = {6, 4, 11, 3}, x3[] = {4, 8, 8};
    yt_tensor *x = tu_rand(4, xs, -1, 1), *w1 = tu_rand(4, wg, -1, 1), *w2 = tu_rand(4, wbad, -1, 1);
    yt_tensor *w3 = tu_rand(4, wok, -1, 1), *b = tu_rand(1, bbad, -1, 1), *w4 = tu_rand(4, wbig, -1, 1);
    yt_tensor *xb = tu_rand(3, x3, -1, 1);
    yt_tensor *y = yt_conv2d(x, w1, NULL, 1, 1, 1, 1);
    CHECK(!y && strstr(yt_last_error(), "grouped"), "groups error: %s", yt_last_error());
    y = yt_conv2d(x, w2, NULL, 1, 1, 1, 1);
    CHECK(!y && strstr(yt_last_error(), "channels"), "channel error: %s", yt_last_error());
    y = yt_conv2d(x, w3, b, 1, 1, 1, 1);
    CHECK(!y && strstr(yt_last_error(), "bias"), "bias error: %s", yt_last_error());
    y = yt_conv2d(x, w3, NULL, 0, 1, 1, 1);
    CHECK(!y && strstr(yt_last_error(), "stride"), "stride error: %s", yt_last_error());
    y = yt_conv2d(x, w3, NULL, 1, 1, -1, 1);
    CHECK(!y && strstr(yt_last_error(), "padding"), "padding error: %s", yt_last_error());
    y = yt_conv2d(x, w4, NULL, 1, 1, 1, 1);
    CHECK(!y && strstr(yt_last_error(), "larger"), "kernel error: %s", yt_last_error());
    y = yt_conv2d(xb, w3, NULL, 1, 1, 1, 1);
    CHECK(!y && strstr(yt_last_error(), "dimensions"), "ndim error: %s", yt_last_error());
    y = yt_conv2d(x, w3, NULL, 2, 1, 0, 2);
    CHECK(y && y->shape[0] == 2 && y->shape[1] == 6 && y->shape[2] == 3 && y->shape[3] == 10, "output shape");
    yt_tensor_release(y);
    yt_tensor_release(x);
    yt_tensor_release(w1);
    yt_tensor_release(w2);
    yt_tensor_release(w3);
    yt_tensor_release(b);
    yt_tensor_release(w4);
    yt_tensor_release(xb);
}

/* A known value: 1x1 input 3x3 of ones, kernel of ones, padding 1 -> corner 4, edge 6, centre 9 (+ bias). */
static void check_known(void)
{
    int64_t xs[] = {1, 1, 3, 3}, ws[] = {1, 1, 3, 3}, bs[] = {1};
    yt_tensor *x = yt_tensor_full(4, xs, 1.0f), *w = yt_tensor_full(4, ws, 1.0f), *b = yt_tensor_full(1, bs, 0.5f);
    yt_tensor *y = yt_conv2d(x, w, b, 1, 1, 1, 1);
    const float *p = yt_f32(y);
    CHECK(p[0] == 4.5f && p[1] == 6.5f && p[4] == 9.5f && p[8] == 4.5f, "known values %g %g %g %g", p[0], p[1], p[4],
          p[8]);
    yt_tensor_release(y);
    yt_tensor_release(x);
    yt_tensor_release(w);
    yt_tensor_release(b);
}

/* Non-contiguous input (a permuted view) gives the same result as its contiguous copy; memory returns to
 * the starting level after forward + backward + release. */
static void check_views_and_memory(void)
{
    int64_t xs[] = {2, 5, 6, 3}, ws[] = {4, 3, 3, 3};
    yt_tensor *xt = tu_rand(4, xs, -1, 1), *w = tu_rand(4, ws, -1, 1);
    int perm[] = {0, 3, 2, 1};
    yt_tensor *xv = yt_permute(xt, perm); /* (2, 3, 6, 5) */
    yt_tensor *xc = yt_tensor_clone(xv);
    yt_tensor *a = yt_conv2d(xv, w, NULL, 1, 2, 1, 0), *b = yt_conv2d(xc, w, NULL, 1, 2, 1, 0);
    CHECK(a && b && tu_max_abs_diff(a, b) == 0.0, "strided input differs");
    yt_tensor_release(a);
    yt_tensor_release(b);
    yt_tensor_release(xv);
    yt_tensor_release(xc);

    size_t before = yt_bytes_in_use();
    w->requires_grad = 1;
    yt_scope_begin();
    int64_t x2s[] = {2, 3, 6, 5};
    yt_tensor *x2 = tu_rand(4, x2s, -1, 1);
    yt_tensor *y = yt_conv2d(x2, w, NULL, 1, 1, 1, 1);
    CHECK(y != NULL, "conv: %s", yt_last_error());
    CHECK(yt_tape_length() == 1, "tape %zu", yt_tape_length());
    CHECK(yt_backward(1, &y, &y) == 0, "backward: %s", yt_last_error());
    yt_scope_end();
    yt_tensor_release(y);
    yt_tensor_release(x2);
    CHECK(w->grad != NULL, "weight grad");
    yt_tensor_release(w->grad);
    w->grad = NULL;
    CHECK(yt_bytes_in_use() == before, "bytes %zu vs %zu", yt_bytes_in_use(), before);
    yt_tensor_release(xt);
    yt_tensor_release(w);
}

/* max |a - ref| / max |ref| over two tensors of the same size (a may be a batch prefix of a larger tensor) */
static double rel_tensor(const yt_tensor *a, const yt_tensor *ref)
{
    double m = 0, s = 0;
    const float *pa = yt_f32(a), *pr = yt_f32(ref);
    for (int64_t i = 0; i < yt_numel(ref); i++) {
        double d = fabs((double)pa[i] - pr[i]);
        if (d > m || d != d) m = d;
        if (fabs(pr[i]) > s) s = fabs(pr[i]);
    }
    return s > 0 ? m / s : m;
}

/* One conv + BN + SiLU block of YOLOv8n as Ultralytics ran it (fixtures in YT_PARITY_DIR): the training
 * forward's BN running-stat update (momentum 0.03, unbiased var), the recalibrated batch statistics, and the
 * eval-mode output of layer k for image 0. x_train / x_eval: the block inputs of the train / eval chains. */
static void parity_block(const yt_tensor_file *init, const yt_tensor_file *fw, int k, yt_tensor *x_train,
                         yt_tensor *x_eval, yt_tensor **out_train, yt_tensor **out_eval)
{
    char n_w[64], n_g[64], n_b[64], n_rm[64], n_rv[64], r_rm[96], r_rv[96], c_rm[96], c_rv[96], lay[64];
    snprintf(n_w, sizeof n_w, "model.%d.conv.weight", k);
    snprintf(n_g, sizeof n_g, "model.%d.bn.weight", k);
    snprintf(n_b, sizeof n_b, "model.%d.bn.bias", k);
    snprintf(n_rm, sizeof n_rm, "model.%d.bn.running_mean", k);
    snprintf(n_rv, sizeof n_rv, "model.%d.bn.running_var", k);
    snprintf(r_rm, sizeof r_rm, "bn_after_train.%s", n_rm);
    snprintf(r_rv, sizeof r_rv, "bn_after_train.%s", n_rv);
    snprintf(c_rm, sizeof c_rm, "calib.%s", n_rm);
    snprintf(c_rv, sizeof c_rv, "calib.%s", n_rv);
    snprintf(lay, sizeof lay, "calib_layer.%d", k);
    yt_tensor *w = yt_tensor_file_get(init, n_w), *g = yt_tensor_file_get(init, n_g);
    yt_tensor *b = yt_tensor_file_get(init, n_b);
    yt_tensor *rm = yt_tensor_clone(yt_tensor_file_get(init, n_rm)),
              *rv = yt_tensor_clone(yt_tensor_file_get(init, n_rv));
    yt_tensor *after_rm = yt_tensor_file_get(fw, r_rm), *after_rv = yt_tensor_file_get(fw, r_rv);
    yt_tensor *cal_rm = yt_tensor_file_get(fw, c_rm), *cal_rv = yt_tensor_file_get(fw, c_rv);
    yt_tensor *ref_layer = yt_tensor_file_get(fw, lay);
    *out_train = *out_eval = NULL;
    if (!w || !g || !b || !after_rm || !cal_rm || !ref_layer) {
        CHECK(0, "parity layer %d: tensors missing from the fixtures", k);
        return;
    }
    /* train mode: batch statistics; running stats move by momentum 0.03 */
    yt_tensor *y = yt_conv2d(x_train, w, NULL, 2, 2, 1, 1);
    yt_tensor *z = yt_batch_norm(y, g, b, rm, rv, 1, 0.03, 1e-3);
    double e1 = rel_tensor(rm, after_rm), e2 = rel_tensor(rv, after_rv);
    CHECK(e1 < 1e-5 && e2 < 1e-5, "layer %d running stats after train forward: rel err mean %.3g var %.3g", k, e1, e2);
    /* recalibrated: momentum 1 leaves exactly the batch mean and unbiased variance */
    yt_tensor *tmp = yt_batch_norm(y, g, b, rm, rv, 1, 1.0, 1e-3);
    e1 = rel_tensor(rm, cal_rm);
    e2 = rel_tensor(rv, cal_rv);
    CHECK(e1 < 1e-5 && e2 < 1e-5, "layer %d recalibrated stats: rel err mean %.3g var %.3g", k, e1, e2);
    printf("parity layer %d: batch stats rel err mean %.2g var %.2g\n", k, e1, e2);
    *out_train = yt_silu(z);
    /* eval mode with the recalibrated statistics: image 0 against calib_layer.<k> */
    yt_tensor *ye = yt_conv2d(x_eval, w, NULL, 2, 2, 1, 1);
    yt_tensor *ze = yt_batch_norm(ye, g, b, cal_rm, cal_rv, 0, 0.03, 1e-3);
    *out_eval = yt_silu(ze);
    double e3 = rel_tensor(*out_eval, ref_layer);
    CHECK(e3 < 1e-5, "layer %d eval output (image 0): rel err %.3g", k, e3);
    printf("parity layer %d: eval output rel err %.2g\n", k, e3);
    yt_tensor_release(y);
    yt_tensor_release(z);
    yt_tensor_release(tmp);
    yt_tensor_release(ye);
    yt_tensor_release(ze);
    yt_tensor_release(rm);
    yt_tensor_release(rv);
}

static void check_parity(void)
{
    yt_tensor_file init, fw;
    if (yt_safetensors_load(YT_PARITY_DIR "/yolov8n_init.safetensors", &init) < 0) {
        CHECK(0, "fixtures: %s", yt_last_error());
        return;
    }
    if (yt_safetensors_load(YT_PARITY_DIR "/forward.safetensors", &fw) < 0) {
        CHECK(0, "fixtures: %s", yt_last_error());
        yt_tensor_file_free(&init);
        return;
    }
    yt_tensor *x = yt_tensor_file_get(&fw, "images");
    if (x) {
        yt_tensor *t0, *e0, *t1, *e1;
        parity_block(&init, &fw, 0, x, x, &t0, &e0);
        if (t0 && e0) {
            parity_block(&init, &fw, 1, t0, e0, &t1, &e1);
            yt_tensor_release(t1);
            yt_tensor_release(e1);
        }
        yt_tensor_release(t0);
        yt_tensor_release(e0);
    } else {
        CHECK(0, "fixtures: no images");
    }
    yt_tensor_file_free(&fw);
    yt_tensor_file_free(&init);
}

/* oneDNN (every pass) against the GEMM path on one YOLOv8-like layer, forward and both gradients; a second oneDNN run
 * on the same inputs is bit-identical (training must be reproducible at a fixed thread count). */
static void check_dnnl_vs_gemm(int N, int C, int HW, int O, int k, int stride)
{
    yt_conv2d_shape s = {N, C, HW, HW, O, k, k, stride, stride, k / 2, k / 2, 0, 0, 0, YT_CONV_GEMM, 0};
    yt_conv2d_shape_init(&s);
    yt_conv2d_shape sd = s;
    sd.backend = YT_CONV_DNNL_ALL;
    CHECK(yt_conv2d_dnnl_supports(&sd), "oneDNN takes N%d C%d %dx%d O%d k%d s%d", N, C, HW, HW, O, k, stride);
    size_t nx = (size_t)N * C * HW * HW, nw = (size_t)O * C * k * k, ny = (size_t)N * O * s.OH * s.OW;
    float *x = rand_buf(nx, -1, 1), *w = rand_buf(nw, -0.2f, 0.2f), *b = rand_buf(O, -1, 1), *gy = rand_buf(ny, -1, 1);
    float *y[3], *gx[3], *gw[3], *gb[3];
    for (int r = 0; r < 3; r++) { /* 0: gemm, 1 and 2: dnnl */
        y[r] = malloc(ny * sizeof(float));
        gx[r] = calloc(nx, sizeof(float));
        gw[r] = calloc(nw, sizeof(float));
        gb[r] = calloc(O, sizeof(float));
        const yt_conv2d_shape *ss = r ? &sd : &s;
        CHECK(yt_conv2d_forward(x, y[r], w, b, ss) == 0, "forward: %s", yt_last_error());
        CHECK(yt_conv2d_backward(x, gy, gx[r], w, gw[r], gb[r], ss) == 0, "backward: %s", yt_last_error());
    }
    double d[4] = {0}, m[4] = {0};
    float *pairs[4][2] = {{y[0], y[1]}, {gx[0], gx[1]}, {gw[0], gw[1]}, {gb[0], gb[1]}};
    size_t len[4] = {ny, nx, nw, (size_t)O};
    for (int q = 0; q < 4; q++) {
        for (size_t i = 0; i < len[q]; i++) {
            double e = fabs((double)pairs[q][0][i] - pairs[q][1][i]);
            if (e > d[q] || e != e) d[q] = e;
            if (fabs(pairs[q][0][i]) > m[q]) m[q] = fabs(pairs[q][0][i]);
        }
        d[q] /= m[q] > 0 ? m[q] : 1;
    }
    /* gw: up to N*OH*OW = 327680 terms per weight; check_long_sums bounds that sum at 1e-4 too */
    CHECK(d[0] < 1e-5 && d[1] < 1e-5 && d[2] < 1e-4 && d[3] < 1e-6,
          "N%d C%d %d O%d k%d s%d: dnnl vs gemm rel diff y %.3g gx %.3g gw %.3g gb %.3g", N, C, HW, O, k, stride, d[0],
          d[1], d[2], d[3]);
    CHECK(memcmp(y[1], y[2], ny * 4) == 0 && memcmp(gx[1], gx[2], nx * 4) == 0 && memcmp(gw[1], gw[2], nw * 4) == 0 &&
              memcmp(gb[1], gb[2], (size_t)O * 4) == 0,
          "N%d C%d %d O%d k%d s%d: two oneDNN runs differ", N, C, HW, O, k, stride);
    for (int r = 0; r < 3; r++) {
        free(y[r]);
        free(gx[r]);
        free(gw[r]);
        free(gb[r]);
    }
    free(x);
    free(w);
    free(b);
    free(gy);
}

/* The primitive cache: one entry per (shape, pass), reused on the next call, and bounded. */
static void check_dnnl_cache(void)
{
    yt_conv2d_dnnl_clear_cache();
    CHECK(yt_conv2d_dnnl_cache_size() == 0, "cache cleared: %d", yt_conv2d_dnnl_cache_size());
    float x[2 * 3 * 6 * 6], y[2 * 2 * 6 * 6], w[2 * 3 * 9], gx[2 * 3 * 6 * 6], gw[2 * 3 * 9];
    for (int i = 0; i < (int)(sizeof x / sizeof x[0]); i++) x[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < (int)(sizeof w / sizeof w[0]); i++) w[i] = (float)(i % 5) * 0.1f;
    memset(gx, 0, sizeof gx);
    memset(gw, 0, sizeof gw);
    yt_conv2d_shape s = {2, 3, 6, 6, 2, 3, 3, 1, 1, 1, 1, 0, 0, 0, YT_CONV_DNNL_ALL, 0};
    yt_conv2d_shape_init(&s);
    for (int r = 0; r < 3; r++) {
        CHECK(yt_conv2d_forward(x, y, w, NULL, &s) == 0, "forward: %s", yt_last_error());
        CHECK(yt_conv2d_backward(x, y, gx, w, gw, NULL, &s) == 0, "backward: %s", yt_last_error());
    }
    CHECK(yt_conv2d_dnnl_cache_size() == 3, "one entry per pass, reused: %d", yt_conv2d_dnnl_cache_size());
    /* more shapes than the bound: the oldest entries go */
    int made = 0;
    for (int hw = 1; made <= YT_CONV2D_DNNL_CACHE_MAX + 8; hw++) {
        yt_conv2d_shape t = {1, 1, hw, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, YT_CONV_DNNL_ALL, 0};
        yt_conv2d_shape_init(&t);
        float *a = calloc((size_t)hw, 4), *c = calloc((size_t)hw, 4), k1 = 1.0f;
        CHECK(yt_conv2d_forward(a, c, &k1, NULL, &t) == 0, "forward %d: %s", hw, yt_last_error());
        free(a);
        free(c);
        made++;
    }
    CHECK(yt_conv2d_dnnl_cache_size() == YT_CONV2D_DNNL_CACHE_MAX, "cache bounded: %d entries",
          yt_conv2d_dnnl_cache_size());
    yt_conv2d_dnnl_clear_cache();
    CHECK(yt_conv2d_dnnl_cache_size() == 0, "cache cleared: %d", yt_conv2d_dnnl_cache_size());
}

static void check_backend_switch(void)
{
    CHECK(yt_conv2d_set_backend(7) < 0 && strstr(yt_last_error(), "unknown backend"), "bad backend refused");
    CHECK(yt_conv2d_set_backend(YT_CONV_GEMM) == 0 && yt_conv2d_backend() == YT_CONV_GEMM, "set gemm");
    CHECK(strcmp(yt_conv2d_backend_name(YT_CONV_GEMM), "gemm") == 0, "name gemm");
    CHECK(yt_conv2d_set_backend(YT_CONV_DNNL) == 0 && yt_conv2d_backend() == YT_CONV_DNNL, "set dnnl");
    CHECK(strcmp(yt_conv2d_backend_name(YT_CONV_DNNL), "dnnl") == 0, "name dnnl");
    CHECK(yt_conv2d_backend_of("dnnl_all") == YT_CONV_DNNL_ALL && yt_conv2d_backend_of("gemm") == YT_CONV_GEMM &&
              yt_conv2d_backend_of("dnnl") == YT_CONV_DNNL && yt_conv2d_backend_of("blas") == -1,
          "names to backends");
    CHECK(yt_conv2d_set_backend(0) == 0, "back to the environment's choice");
    /* the default follows oneDNN's ISA: every pass on oneDNN with AVX-512 kernels */
    const char *isa = yt_conv2d_dnnl_isa();
    int avx512 = strncmp(isa, "avx512_core", 11) == 0;
    printf("oneDNN ISA %s, default backend %s\n", isa, yt_conv2d_backend_name(yt_conv2d_default_backend()));
    CHECK(*isa && strncmp(isa, "cpu_isa_", 8) != 0 && strcmp(isa, "unknown") != 0, "ISA name: '%s'", isa);
    CHECK(yt_conv2d_dnnl_isa_avx512() == avx512, "AVX-512 of %s: %d", isa, yt_conv2d_dnnl_isa_avx512());
    CHECK(yt_conv2d_default_backend() == (avx512 ? YT_CONV_DNNL_ALL : YT_CONV_DNNL), "default backend on %s: %s", isa,
          yt_conv2d_backend_name(yt_conv2d_default_backend()));
    const char *env = getenv("YT_CONV");
    if (!env || !*env)
        CHECK(yt_conv2d_backend() == yt_conv2d_default_backend(), "without YT_CONV: %s",
              yt_conv2d_backend_name(yt_conv2d_backend()));
    /* shapes oneDNN does not take run the GEMM path: right padding implied by the output size is negative */
    yt_conv2d_shape s = {1, 1, 6, 6, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0, YT_CONV_DNNL, 0};
    yt_conv2d_shape_init(&s);
    CHECK(!yt_conv2d_dnnl_supports(&s), "negative right padding goes to the GEMM path");
}

/* The tensor-level checks (autograd, gradcheck, parity, views), run once per backend. */
static void check_tensor_level(int backend)
{
    yt_conv2d_set_backend(backend);
    printf("-- tensor-level checks, backend %s\n", yt_conv2d_backend_name(backend));
    check_known();
    /* finite differences through the autograd op */
    gradcheck_case(2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1);
    gradcheck_case(2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 0);
    gradcheck_case(2, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1, 0);
    gradcheck_case(2, 3, 4, 5, 4, 1, 1, 1, 1, 0, 0, 1);
    gradcheck_case(3, 2, 7, 8, 3, 2, 3, 2, 1, 0, 2, 1);
    gradcheck_case(1, 2, 6, 6, 2, 5, 5, 1, 1, 2, 2, 0);
    gradcheck_case(2, 9, 6, 6, 10, 3, 3, 1, 1, 1, 1, 1); /* channels not a multiple of oneDNN's blocks */
    /* frozen weights (DFL-style), input images without gradient, bias only */
    gradcheck_mask(2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1);
    gradcheck_mask(2, 4, 5, 6, 1, 1, 1, 1, 1, 0, 0, 0, 1);
    gradcheck_mask(2, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1, 1, 6);
    gradcheck_mask(2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 4);
    check_parity();
    check_errors();
    check_views_and_memory();
    yt_conv2d_set_backend(0);
}

int main(void)
{
    tu_seed(7);
    check_backend_switch();
    /* raw kernels vs double references: kernel / stride / padding combos incl. asymmetric ones */
    check_raw(3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1e-5);
    check_raw(3, 3, 9, 11, 5, 3, 3, 2, 2, 1, 1, 0, 1e-5);
    check_raw(2, 4, 8, 7, 6, 1, 1, 1, 1, 0, 0, 1, 1e-5); /* pointwise: direct GEMM */
    check_raw(2, 4, 8, 7, 6, 1, 1, 2, 2, 0, 0, 1, 1e-5); /* 1x1 strided: im2col */
    check_raw(2, 4, 8, 7, 6, 1, 1, 1, 1, 1, 0, 0, 1e-5); /* 1x1 padded: im2col */
    check_raw(5, 2, 10, 9, 3, 3, 2, 2, 3, 0, 1, 1, 1e-5);
    check_raw(1, 3, 5, 5, 2, 5, 5, 1, 1, 2, 2, 1, 1e-5);
    check_raw(3, 2, 6, 6, 4, 4, 4, 3, 3, 3, 3, 1, 1e-5); /* padding wider than the stride */
    check_raw(2, 1, 4, 4, 3, 4, 4, 1, 1, 0, 0, 1, 1e-5); /* 1x1 output */
    check_raw(17, 8, 12, 12, 16, 3, 3, 2, 2, 1, 1, 0, 1e-5);
    check_raw(3, 20, 9, 9, 24, 3, 3, 1, 1, 1, 1, 1, 1e-5); /* channels past one oneDNN block, not a multiple */
    check_long_sums();

    /* oneDNN against the GEMM path on YOLOv8n-like layers (k3 s2, k3 s1, 1x1), and reproducibility */
    check_dnnl_vs_gemm(4, 16, 40, 32, 3, 2);
    check_dnnl_vs_gemm(4, 32, 20, 32, 3, 1);
    check_dnnl_vs_gemm(4, 64, 20, 64, 1, 1);
    check_dnnl_vs_gemm(2, 3, 64, 16, 3, 2);   /* the first layer: 3 input channels */
    check_dnnl_vs_gemm(5, 16, 256, 16, 3, 1); /* 4 MB per image: the batch runs in chunks, the last one smaller */
    check_dnnl_cache();

    check_tensor_level(YT_CONV_GEMM);
    check_tensor_level(YT_CONV_DNNL);
    check_tensor_level(YT_CONV_DNNL_ALL);
    return tu_finish();
}
