/* The training-label figures (labels.jpg, labels_correlogram.jpg) and their binning, and the box labels of the
 * batch plots (names, and confidences on predictions). Images are decoded back and checked by their pixels. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "data/image.h"
#include "data/plot.h"
#include "metrics/canvas.h"
#include "metrics/plots.h"
#include "testutil.h"

static char dir[] = "/tmp/yt_plots_XXXXXX";

static const char *tmp_file(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int64_t sum(const int64_t *v, int64_t n)
{
    int64_t s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    return s;
}

/* A synthetic label set: class 0 x30, class 1 x10 (classes interleaved), boxes spread over the image. */
#define N0 30
#define N1 10
#define NB (N0 + N1)
static float CLS[NB], XYWH[NB * 4];

static void make_labels(void)
{
    tu_seed(7);
    for (int i = 0; i < NB; i++) {
        CLS[i] = (i % 4 == 3) ? 1.0f : 0.0f; /* every 4th box is class 1: 10 of 40 */
        XYWH[4 * i] = tu_uniform(0.05f, 0.95f);
        XYWH[4 * i + 1] = tu_uniform(0.05f, 0.95f);
        XYWH[4 * i + 2] = tu_uniform(0.02f, 0.6f);
        XYWH[4 * i + 3] = tu_uniform(0.02f, 0.6f);
    }
}

static void test_class_counts(void)
{
    int64_t c[3];
    CHECK(yt_label_class_counts(CLS, NB, 3, c) == 0, "counts: %s", yt_last_error());
    CHECK(c[0] == N0 && c[1] == N1 && c[2] == 0, "class counts %lld %lld %lld", (long long)c[0], (long long)c[1],
          (long long)c[2]);
    float bad[2] = {0, 3};
    CHECK(yt_label_class_counts(bad, 2, 3, c) < 0 && strstr(yt_last_error(), "box 1"), "class 3 of nc 3 refused: %s",
          yt_last_error());
    float frac[1] = {0.5f};
    CHECK(yt_label_class_counts(frac, 1, 3, c) < 0, "a fractional class is refused");
}

static void test_histograms(void)
{
    const int B = YT_LABEL_BINS;
    /* placement: 0 -> first bin, 1 -> last bin, 0.51 -> bin 25, outliers clamped */
    float pts[5 * 4] = {0, 0, 0.1f, 0.1f, 1, 1, 0.2f, 0.2f, 0.51f, 0.51f, 0.3f, 0.3f, -0.2f, 1.5f, 0.4f, 0.4f,
                        0.999f, 0.001f, 0.5f, 0.5f};
    int64_t h1[YT_LABEL_BINS], h2[YT_LABEL_BINS * YT_LABEL_BINS];
    CHECK(yt_label_hist1d(pts, 5, 0, B, h1) == 0, "hist1d: %s", yt_last_error());
    CHECK(h1[0] == 2 && h1[25] == 1 && h1[B - 1] == 2 && sum(h1, B) == 5, "x bins %lld %lld %lld",
          (long long)h1[0], (long long)h1[25], (long long)h1[B - 1]);
    CHECK(yt_label_hist2d(pts, 5, 0, 1, B, h2) == 0, "hist2d: %s", yt_last_error());
    CHECK(h2[0] == 1 && h2[(B - 1) * B + B - 1] == 1 && h2[25 * B + 25] == 1 && h2[(B - 1) * B + 0] == 1 &&
              h2[0 * B + B - 1] == 1,
          "x-y cells: row = y bin, column = x bin");
    CHECK(sum(h2, (int64_t)B * B) == 5, "2-D histogram sums to the boxes");

    /* the correlogram's ten histograms each hold every box */
    int64_t *diag = malloc(sizeof(int64_t) * 4 * B), *pairs = malloc(sizeof(int64_t) * 6 * B * B);
    CHECK(yt_label_correlogram_bins(XYWH, NB, diag, pairs) == 0, "correlogram bins: %s", yt_last_error());
    for (int k = 0; k < 4; k++)
        CHECK(sum(diag + k * B, B) == NB, "diagonal %d sums to %d: %lld", k, NB, (long long)sum(diag + k * B, B));
    for (int p = 0; p < 6; p++)
        CHECK(sum(pairs + (int64_t)p * B * B, (int64_t)B * B) == NB, "pair %d sums to %d", p, NB);
    /* pair 5 is (height, width): width across, height up */
    int64_t want[YT_LABEL_BINS * YT_LABEL_BINS];
    yt_label_hist2d(XYWH, NB, 2, 3, B, want);
    CHECK(memcmp(want, pairs + 5 * B * B, sizeof want) == 0, "pair 5 is width across, height up");
    float nan_box[4] = {0.5f, NAN, 0.1f, 0.1f};
    CHECK(yt_label_correlogram_bins(nan_box, 1, diag, pairs) < 0 && strstr(yt_last_error(), "non-finite y"),
          "a NaN coordinate is refused: %s", yt_last_error());
    free(diag);
    free(pairs);
}

static void test_pmax(void)
{
    int64_t c[6] = {1, 0, 10, 3, 5, 1}; /* total 20; sorted 10 5 3 1 1 0 */
    CHECK(yt_hist_pmax_level(c, 6, 0.9) == 10, "top 10%% lies in the 10-cell");
    CHECK(yt_hist_pmax_level(c, 6, 0.3) == 5, "70%% needs 10 + 5");
    CHECK(yt_hist_pmax_level(c, 6, 0.1) == 3, "90%% needs 10 + 5 + 3");
    int64_t z[3] = {0, 0, 0};
    CHECK(yt_hist_pmax_level(z, 3, 0.9) == 0, "empty histogram");
}

static int near(const uint8_t *p, const uint8_t rgb[3], int tol)
{
    return abs(p[0] - rgb[0]) + abs(p[1] - rgb[1]) + abs(p[2] - rgb[2]) <= tol;
}

/* The tallest column of pixels of colour rgb inside [x0, x1) x [y0, y1) */
static int tallest(const yt_image *im, int x0, int x1, int y0, int y1, const uint8_t rgb[3])
{
    int best = 0;
    for (int x = x0; x < x1; x++) {
        int n = 0;
        for (int y = y0; y < y1; y++) n += near(im->px + ((size_t)y * im->w + x) * 3, rgb, 60);
        best = n > best ? n : best;
    }
    return best;
}

static int64_t non_white(const yt_image *im, int x0, int x1, int y0, int y1)
{
    int64_t n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = im->px + ((size_t)y * im->w + x) * 3;
            n += p[0] + p[1] + p[2] < 3 * 235;
        }
    return n;
}

static void test_labels_jpg(void)
{
    const char *names[3] = {"person", "bicycle", "car"};
    const char *path = tmp_file("labels.jpg");
    CHECK(yt_plot_labels(path, CLS, XYWH, NB, 3, names) == 0, "labels.jpg: %s", yt_last_error());
    yt_image im = {0};
    if (yt_image_load(path, &im, NULL) < 0) {
        CHECK(0, "decode labels.jpg: %s", yt_last_error());
        return;
    }
    CHECK(im.w == 1600 && im.h == 1600, "labels.jpg is 1600x1600, got %dx%d", im.w, im.h);
    uint8_t c0[3], c1[3];
    yt_plot_class_color(0, c0);
    yt_plot_class_color(1, c1);
    /* the bars: top-left quadrant; their interiors are in the class colour, edges 1 px darker */
    int h0 = tallest(&im, 0, 800, 0, 800, c0) + 2, h1 = tallest(&im, 0, 800, 0, 800, c1) + 2;
    CHECK(h1 > 50, "class 1 bar found (%d px)", h1);
    CHECK(fabs((double)h0 / h1 - (double)N0 / N1) < 0.03 * N0 / N1, "bar heights %d : %d, want %d : %d", h0, h1, N0,
          N1);
    /* the box panel (top right) shows boxes of both classes, the histograms (bottom) are drawn */
    int64_t blue = 0; /* 1 px outlines: JPEG blurs their colour, so count blue-dominated pixels */
    for (int y = 0; y < 800; y++)
        for (int x = 800; x < 1600; x++) {
            const uint8_t *p = im.px + ((size_t)y * im.w + x) * 3;
            blue += p[2] > 200 && p[2] - p[0] > 60;
        }
    CHECK(blue > 2000, "boxes drawn in the class colours (%lld blue pixels)", (long long)blue);
    CHECK(non_white(&im, 120, 770, 830, 1440) > 2000, "x-y histogram drawn");
    CHECK(non_white(&im, 920, 1570, 830, 1440) > 2000, "width-height histogram drawn");
    yt_image_free(&im);

    /* bad input: a class beyond nc, an unwritable place; nothing is left behind */
    float bad[1] = {5};
    CHECK(yt_plot_labels(tmp_file("bad.jpg"), bad, XYWH, 1, 3, names) < 0 && strstr(yt_last_error(), "bad.jpg"),
          "class out of range names the file: %s", yt_last_error());
    CHECK(access(tmp_file("bad.jpg"), F_OK) != 0, "no file for a refused plot");
    CHECK(yt_plot_labels("/nonexistent-dir/labels.jpg", CLS, XYWH, NB, 3, names) < 0, "unwritable path fails");
    /* no labels at all still gives the figure (empty panels) */
    CHECK(yt_plot_labels(tmp_file("empty.jpg"), NULL, NULL, 0, 3, names) == 0, "empty label set: %s",
          yt_last_error());
}

static void test_correlogram_jpg(void)
{
    const char *path = tmp_file("labels_correlogram.jpg");
    CHECK(yt_plot_labels_correlogram(path, XYWH, NB) == 0, "correlogram: %s", yt_last_error());
    yt_image im = {0};
    if (yt_image_load(path, &im, NULL) < 0) {
        CHECK(0, "decode correlogram: %s", yt_last_error());
        return;
    }
    CHECK(im.w == 2000 && im.h == 2000, "correlogram is 2000x2000, got %dx%d", im.w, im.h);
    /* the 4 x 4 grid (left margin 150, top 30, cells 404.5 px, 64 apart): the diagonal and below drawn, above
     * blank; the insides only (spines and ticks lie on and outside the edges) */
    const double left = 150, top = 30, cell = 404.5, pitch = cell + 64;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            int x0 = (int)(left + c * pitch) + 4, y0 = (int)(top + r * pitch) + 4;
            int64_t ink = non_white(&im, x0, x0 + (int)cell - 8, y0, y0 + (int)cell - 8);
            if (c <= r) CHECK(ink > 300, "cell (%d, %d) drawn (%lld px)", r, c, (long long)ink);
            else CHECK(ink == 0, "cell (%d, %d) above the diagonal is blank (%lld px)", r, c, (long long)ink);
        }
    yt_image_free(&im);
}

static void test_box_label(void)
{
    char b[64];
    float conf = 0.8712f;
    yt_plot_box_label(b, sizeof b, "person", 0, &conf);
    CHECK(strcmp(b, "person 0.87") == 0, "prediction label '%s'", b);
    yt_plot_box_label(b, sizeof b, "person", 0, NULL);
    CHECK(strcmp(b, "person") == 0, "ground-truth label '%s'", b);
    conf = 0.5f;
    yt_plot_box_label(b, sizeof b, NULL, 7, &conf);
    CHECK(strcmp(b, "7 0.50") == 0, "no name: the id '%s'", b);
    conf = 1.0f;
    yt_plot_box_label(b, sizeof b, "dog", 1, &conf);
    CHECK(strcmp(b, "dog 1.00") == 0, "two decimals always '%s'", b);
    char small[6];
    yt_plot_box_label(small, sizeof small, "elephant", 3, &conf);
    CHECK(strcmp(small, "eleph") == 0, "truncated to the buffer '%s'", small);
}

/* One 3 x 128 x 128 grey image with one box, plotted without and with confidences. */
static void test_batch_conf(void)
{
    enum { H = 128, W = 128 };
    uint8_t *img = malloc(3 * H * W);
    memset(img, 90, 3 * H * W);
    float cls[1] = {0}, box[4] = {0.5f, 0.6f, 0.5f, 0.4f}, bidx[1] = {0};
    const char *names[1] = {"person"};
    yt_plot_batch_args a = {.img = img, .B = 1, .H = H, .W = W, .N = 1, .cls = cls, .bboxes = box,
                            .batch_idx = bidx, .names = names, .nnames = 1};
    const char *p_gt = tmp_file("gt.png"), *p_pred = tmp_file("pred.png"), *p_low = tmp_file("low.png"),
               *p_none = tmp_file("none.png");
    CHECK(yt_plot_batch(&a, p_gt) == 0, "labels plot: %s", yt_last_error());
    float conf = 0.87f;
    a.conf = &conf;
    CHECK(yt_plot_batch(&a, p_pred) == 0, "prediction plot: %s", yt_last_error());
    float low = 0.2f;
    a.conf = &low;
    CHECK(yt_plot_batch(&a, p_low) == 0, "low-confidence plot: %s", yt_last_error());
    a.conf = NULL, a.N = 0;
    CHECK(yt_plot_batch(&a, p_none) == 0, "empty plot: %s", yt_last_error());
    yt_image gt = {0}, pred = {0}, lowi = {0}, none = {0};
    if (yt_image_load(p_gt, &gt, NULL) < 0 || yt_image_load(p_pred, &pred, NULL) < 0 || yt_image_load(p_low, &lowi, NULL) < 0 ||
        yt_image_load(p_none, &none, NULL) < 0) {
        CHECK(0, "decode batch plots: %s", yt_last_error());
    } else {
        size_t n = (size_t)gt.w * gt.h * 3, diff = 0;
        CHECK(gt.w == pred.w && gt.h == pred.h, "same size");
        for (size_t i = 0; i < n; i++) diff += gt.px[i] != pred.px[i];
        CHECK(diff > 30, "the confidence changes the label (%zu bytes differ)", diff);
        /* only the label (above the box) differs: from just below the box's top edge down, both are alike */
        size_t row = (size_t)gt.w * 3, from = (size_t)((0.6f - 0.2f) * H + 2);
        CHECK(memcmp(gt.px + from * row, pred.px + from * row, (gt.h - from) * row) == 0,
              "the box itself is drawn alike");
        CHECK(memcmp(lowi.px, none.px, n) == 0, "a prediction at conf 0.2 (<= 0.25) is not drawn");
    }
    yt_image_free(&gt);
    yt_image_free(&pred);
    yt_image_free(&lowi);
    yt_image_free(&none);
    free(img);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_labels();
    test_class_counts();
    test_histograms();
    test_pmax();
    test_labels_jpg();
    test_correlogram_jpg();
    test_box_label();
    test_batch_conf();
    const char *files[] = {"labels.jpg", "empty.jpg", "labels_correlogram.jpg", "gt.png", "pred.png", "low.png",
                           "none.png"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) remove(tmp_file(files[i]));
    rmdir(dir);
    tu_drop_font_caches();
    return tu_finish();
}
