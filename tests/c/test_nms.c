/* NMS: parity with nms.safetensors (Ultralytics 8.2.100) and hand-made edge cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "metrics/nms.h"
#include "ops/shape_ops.h"
#include "testutil.h"

static double g_max_coord_diff = 0;

/* Compares our per-image outputs with dets (B,300,6) / count (B). */
static void compare_variant(const char *name, yt_tensor **out, int B, const yt_tensor *dets, const yt_tensor *count)
{
    CHECK(dets && count, "%s: fixture tensors present", name);
    if (!dets || !count) return;
    int64_t rows = dets->shape[1];
    for (int b = 0; b < B; b++) {
        int64_t want = yt_i64(count)[b], got = out[b]->shape[0];
        CHECK(got == want, "%s image %d: %lld detections, expected %lld", name, b, (long long)got, (long long)want);
        CHECK(out[b]->ndim == 2 && out[b]->shape[1] == 6, "%s image %d: output is (n, 6)", name, b);
        int64_t nn = got < want ? got : want;
        const float *ref = yt_f32(dets) + (int64_t)b * rows * 6;
        const float *o = yt_f32(out[b]);
        int order_ok = 1, cls_ok = 1;
        double cd = 0;
        for (int64_t k = 0; k < nn; k++) {
            for (int j = 0; j < 4; j++) {
                double d = fabs((double)o[6 * k + j] - ref[6 * k + j]);
                if (d > cd || d != d) cd = d;
            }
            if (o[6 * k + 4] != ref[6 * k + 4]) order_ok = 0;
            if (o[6 * k + 5] != ref[6 * k + 5]) cls_ok = 0;
            if (k > 0 && !(o[6 * k + 4] <= o[6 * (k - 1) + 4])) order_ok = 0;
        }
        CHECK(order_ok, "%s image %d: confidences and order identical", name, b);
        CHECK(cls_ok, "%s image %d: classes identical", name, b);
        CHECK(cd <= 1e-4, "%s image %d: max coordinate diff %.3g", name, b, cd);
        if (cd > g_max_coord_diff) g_max_coord_diff = cd;
    }
}

static void run_variant(const char *prefix, const char *variant, const yt_tensor *pred, const yt_tensor_file *f,
                        float conf, double iou, int multi_label)
{
    yt_nms_opts o;
    yt_nms_opts_default(&o);
    o.conf_thres = conf;
    o.iou_thres = iou;
    o.max_det = 300;
    o.multi_label = multi_label;
    int B = (int)pred->shape[0];
    yt_tensor *out[16];
    int rc = yt_nms(pred, &o, out);
    CHECK(rc == 0, "%s%s: nms failed: %s", prefix, variant, yt_last_error());
    if (rc) return;
    char dn[64], cn[64];
    snprintf(dn, sizeof dn, "%s%s.dets", prefix, variant);
    snprintf(cn, sizeof cn, "%s%s.count", prefix, variant);
    compare_variant(dn, out, B, yt_tensor_file_get(f, dn), yt_tensor_file_get(f, cn));
    for (int b = 0; b < B; b++) yt_tensor_release(out[b]);
}

static void test_parity(void)
{
    yt_tensor_file f, fwd;
    int rc = yt_safetensors_load(YT_PARITY_DIR "/nms.safetensors", &f);
    CHECK(rc == 0, "load nms.safetensors: %s", yt_last_error());
    if (rc) return;
    yt_tensor *pred = yt_tensor_file_get(&f, "prediction");
    CHECK(pred != NULL, "prediction present");
    if (!pred) {
        yt_tensor_file_free(&f);
        return;
    }
    /* the input must not be modified */
    yt_tensor *copy = yt_tensor_clone(pred);
    run_variant("", "val", pred, &f, 0.001f, 0.7, 1);
    run_variant("", "val_single", pred, &f, 0.001f, 0.7, 0);
    run_variant("", "pred", pred, &f, 0.25f, 0.45, 0);
    CHECK(memcmp(yt_f32(copy), yt_f32(pred), (size_t)yt_numel(pred) * 4) == 0, "input unchanged");
    yt_tensor_release(copy);

    /* a strided view gives the same result: prediction stored as (B, A, C) and permuted to (B, C, A) */
    {
        int perm[3] = {0, 2, 1};
        yt_tensor *t = yt_permute(pred, perm); /* (B, A, C) view */
        yt_tensor *tc = yt_tensor_clone(t);    /* contiguous (B, A, C) */
        yt_tensor *v = yt_permute(tc, perm);   /* strided (B, C, A) view */
        CHECK(!yt_is_contiguous(v), "view is strided");
        run_variant("", "val", v, &f, 0.001f, 0.7, 1);
        yt_tensor_release(v);
        yt_tensor_release(tc);
        yt_tensor_release(t);
    }

    rc = yt_safetensors_load(YT_PARITY_DIR "/forward.safetensors", &fwd);
    CHECK(rc == 0, "load forward.safetensors: %s", yt_last_error());
    if (rc == 0) {
        yt_tensor *ev = yt_tensor_file_get(&fwd, "eval_out");
        CHECK(ev != NULL, "eval_out present");
        if (ev) {
            run_variant("init.", "val", ev, &f, 0.001f, 0.7, 1);
            run_variant("init.", "val_single", ev, &f, 0.001f, 0.7, 0);
            run_variant("init.", "pred", ev, &f, 0.25f, 0.45, 0);
        }
        yt_tensor_file_free(&fwd);
    }
    yt_tensor_file_free(&f);
    printf("nms parity: max coordinate diff %.3g\n", g_max_coord_diff);
}

/* Builds a (1, 4 + nc, n) prediction from rows {cx, cy, w, h, s0, s1, ...}. */
static yt_tensor *make_pred(int n, int nc, const float *rows)
{
    int64_t shape[3] = {1, 4 + nc, n};
    yt_tensor *t = yt_tensor_zeros(YT_F32, 3, shape);
    for (int a = 0; a < n; a++)
        for (int c = 0; c < 4 + nc; c++) yt_f32(t)[(int64_t)c * n + a] = rows[a * (4 + nc) + c];
    return t;
}

static int64_t nms_count(yt_tensor *p, yt_nms_opts *o, yt_tensor **keep_out)
{
    yt_tensor *out[1];
    if (yt_nms(p, o, out) < 0) return -1;
    int64_t n = out[0]->shape[0];
    if (keep_out)
        *keep_out = out[0];
    else
        yt_tensor_release(out[0]);
    return n;
}

static void test_edges(void)
{
    yt_nms_opts o;
    /* two identical boxes of different classes: class-aware keeps both, agnostic keeps one */
    {
        const float rows[] = {50, 50, 20, 20, 0.9f, 0.0f, 50, 50, 20, 20, 0.0f, 0.8f};
        yt_tensor *p = make_pred(2, 2, rows);
        yt_nms_opts_default(&o);
        CHECK(nms_count(p, &o, NULL) == 2, "class-aware keeps boxes of different classes");
        o.agnostic = 1;
        CHECK(nms_count(p, &o, NULL) == 1, "agnostic suppresses across classes");
        yt_tensor_release(p);
    }
    /* class-aware is exact even for far-apart class ids and large coordinates (no offset trick) */
    {
        enum { NC = 80 };
        float rows[2 * (4 + NC)] = {0};
        float r0[4] = {7000.3f, 7000.7f, 31.1f, 17.9f};
        for (int i = 0; i < 2; i++) {
            memcpy(rows + i * (4 + NC), r0, sizeof r0);
            rows[i * (4 + NC) + 4 + 79] = i == 0 ? 0.9f : 0.8f;
        }
        rows[(4 + NC) + 0] += 0.01f; /* slightly shifted duplicate: IoU ~ 0.999 */
        yt_tensor *p = make_pred(2, NC, rows);
        yt_nms_opts_default(&o);
        yt_tensor *k = NULL;
        CHECK(nms_count(p, &o, &k) == 1, "duplicate of class 79 suppressed");
        if (k) {
            CHECK_CLOSE(yt_f32(k)[0], 7000.3f - 31.1f / 2, 1e-3);
            CHECK(yt_f32(k)[5] == 79.0f, "class 79 kept");
            yt_tensor_release(k);
        }
        yt_tensor_release(p);
    }
    /* strict thresholds: score == conf is not a candidate; IoU == iou is not suppressed */
    {
        /* A = [0,0,10,10], B = [0,0,10,5]: IoU exactly 0.5 */
        const float rows[] = {5, 5, 10, 10, 0.75f, 5, 2.5f, 10, 5, 0.5f, 100, 100, 4, 4, 0.25f};
        yt_tensor *p = make_pred(3, 1, rows);
        yt_nms_opts_default(&o);
        o.iou_thres = 0.5;
        CHECK(nms_count(p, &o, NULL) == 2, "IoU equal to the threshold is kept, score equal to conf dropped");
        o.iou_thres = 0.49;
        CHECK(nms_count(p, &o, NULL) == 1, "IoU above the threshold is suppressed");
        o.conf_thres = 0.2f;
        o.iou_thres = 0.5;
        CHECK(nms_count(p, &o, NULL) == 3, "score above conf is a candidate");
        yt_tensor_release(p);
    }
    /* multi_label, classes filter, max_det, max_nms, descending order */
    {
        const float rows[] = {10, 10, 4, 4, 0.6f,  0.7f, 0.1f,  /* classes 0 and 1 above 0.5 */
                              50, 50, 4, 4, 0.2f,  0.3f, 0.95f, /* class 2 */
                              90, 90, 4, 4, 0.55f, 0.0f, 0.0f}; /* class 0 */
        yt_tensor *p = make_pred(3, 3, rows);
        yt_nms_opts_default(&o);
        o.conf_thres = 0.5f;
        yt_tensor *k = NULL;
        CHECK(nms_count(p, &o, &k) == 3, "best class only: one per anchor");
        if (k) {
            const float *q = yt_f32(k);
            CHECK(q[4] == 0.95f && q[10] == 0.7f && q[16] == 0.55f, "sorted by descending score");
            CHECK(q[5] == 2 && q[11] == 1 && q[17] == 0, "classes of the kept boxes");
            yt_tensor_release(k);
        }
        o.multi_label = 1;
        CHECK(nms_count(p, &o, NULL) == 4, "multi_label adds the second class of anchor 0");
        int64_t cl[1] = {0};
        o.classes = cl;
        o.n_classes = 1;
        CHECK(nms_count(p, &o, NULL) == 2, "classes filter keeps class 0 only");
        o.classes = NULL;
        o.max_det = 2;
        CHECK(nms_count(p, &o, &k) == 2, "max_det");
        if (k) {
            CHECK(yt_f32(k)[4] == 0.95f && yt_f32(k)[10] == 0.7f, "max_det keeps the best");
            yt_tensor_release(k);
        }
        o.max_det = 300;
        o.max_nms = 1;
        CHECK(nms_count(p, &o, &k) == 1, "max_nms keeps the best candidates only");
        if (k) {
            CHECK(yt_f32(k)[4] == 0.95f, "max_nms keeps the best");
            yt_tensor_release(k);
        }
        yt_tensor_release(p);
    }
    /* empty input and errors */
    {
        int64_t shape[3] = {2, 84, 0};
        yt_tensor *p = yt_tensor_zeros(YT_F32, 3, shape);
        yt_tensor *out[2];
        yt_nms_opts_default(&o);
        CHECK(yt_nms(p, &o, out) == 0, "no anchors is fine");
        CHECK(out[0]->shape[0] == 0 && out[1]->shape[0] == 0, "no detections");
        yt_tensor_release(out[0]);
        yt_tensor_release(out[1]);
        yt_tensor_release(p);
        int64_t s2[2] = {84, 10};
        p = yt_tensor_zeros(YT_F32, 2, s2);
        CHECK(yt_nms(p, &o, out) < 0, "2-d prediction rejected");
        CHECK(strstr(yt_last_error(), "prediction") != NULL, "error names the argument: %s", yt_last_error());
        yt_tensor_release(p);
    }
}

int main(void)
{
    test_parity();
    test_edges();
    return tu_finish();
}
