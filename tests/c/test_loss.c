/* Detection loss: CIoU / DFL / BCE gradients by finite differences, the task-aligned assigner and the whole
 * v8 loss against the Ultralytics fixture (../shared/parity/loss.safetensors), and bad inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "loss/assigner.h"
#include "loss/bbox.h"
#include "loss/detect_loss.h"
#include "testutil.h"

/* ---------- gradchecks of the pieces ---------- */

typedef struct {
    yt_iou_kind kind;
    int xywh;
} iou_ud;

static yt_tensor *f_iou(yt_tensor **in, void *ud)
{
    iou_ud *u = ud;
    return yt_bbox_iou(in[0], in[1], u->kind, u->xywh);
}

static yt_tensor *rand_boxes_xyxy(int n)
{
    int64_t s[2] = {n, 4};
    yt_tensor *t = yt_tensor_empty(YT_F32, 2, s);
    float *p = yt_f32(t);
    for (int i = 0; i < n; i++) {
        float x = tu_uniform(0, 10), y = tu_uniform(0, 10);
        p[4 * i] = x;
        p[4 * i + 1] = y;
        p[4 * i + 2] = x + tu_uniform(0.5f, 6);
        p[4 * i + 3] = y + tu_uniform(0.5f, 6);
    }
    return t;
}

static void test_iou_values(void)
{
    float a[4] = {0, 0, 2, 2}, b[4] = {1, 1, 3, 3}, far[4] = {10, 10, 11, 11};
    CHECK_CLOSE(yt_bbox_iou_one(a, b, YT_IOU), 1.0 / 7.0, 1e-6);
    CHECK_CLOSE(yt_bbox_iou_one(a, a, YT_CIOU), 1.0, 1e-6);
    /* disjoint: IoU 0, DIoU = -rho2/c2 = -(2*9.5^2)/(2*11^2)... compute: centres (1,1),(10.5,10.5), c = 11 */
    CHECK_CLOSE(yt_bbox_iou_one(a, far, YT_IOU), 0.0, 1e-9);
    CHECK_CLOSE(yt_bbox_iou_one(a, far, YT_DIOU), -(9.5 * 9.5 * 2) / (11.0 * 11 * 2), 1e-5);
    CHECK_CLOSE(yt_bbox_iou_one(a, far, YT_GIOU), -(121.0 - 5) / 121.0, 1e-5);
    /* aspect term: a square vs a 2:1 box centred the same */
    float c[4] = {0, 0.5f, 2, 1.5f};
    double iou = 2.0 / 4.0, v = 4 / (M_PI * M_PI) * pow(atan(2.0) - atan(1.0), 2), al = v / (v - iou + 1);
    CHECK_CLOSE(yt_bbox_iou_one(a, c, YT_CIOU), iou - v * al, 1e-5);
    /* dist <-> bbox round trip with the 14.99 clamp */
    float anc[2] = {5, 5}, box[4] = {2, 4, 30, 6}, d[4], back[4];
    yt_bbox2dist(anc, box, d, 1, 15);
    CHECK_CLOSE(d[0], 3, 0);
    CHECK_CLOSE(d[2], 14.99f, 0);
    yt_dist2bbox(d, anc, back, 1, 0);
    CHECK_CLOSE(back[1], 4, 1e-6);
    float xywh[4] = {5, 6, 4, 2}, xy[4], rt[4];
    yt_xywh2xyxy(xywh, xy, 1);
    CHECK(xy[0] == 3 && xy[1] == 5 && xy[2] == 7 && xy[3] == 7, "xywh2xyxy %g %g %g %g", xy[0], xy[1], xy[2], xy[3]);
    yt_xyxy2xywh(xy, rt, 1);
    CHECK(memcmp(rt, xywh, sizeof rt) == 0, "xyxy2xywh round trip");
}

static void test_iou_grads(void)
{
    const char *names[4] = {"iou", "giou", "diou", "ciou"};
    /* CIoU's alpha is a constant for the gradient (as in the reference), so finite differences of its forward do
     * not match by design: IoU/GIoU/DIoU here (incl. the xywh chain rule), CIoU below with alpha held fixed. */
    for (int kind = 0; kind < 3; kind++)
        for (int xywh = 0; xywh < 2; xywh++) {
            yt_tensor *in[2] = {rand_boxes_xyxy(12), rand_boxes_xyxy(12)};
            if (xywh) {
                yt_xyxy2xywh(yt_f32(in[0]), yt_f32(in[0]), 12);
                yt_xyxy2xywh(yt_f32(in[1]), yt_f32(in[1]), 12);
            }
            /* make a few pairs overlap strongly, one contain the other */
            memcpy(yt_f32(in[1]), yt_f32(in[0]), 4 * sizeof(float));
            yt_f32(in[1])[0] += 0.3f;
            yt_f32(in[1])[1] -= 0.2f;
            in[0]->requires_grad = in[1]->requires_grad = 1;
            iou_ud u = {(yt_iou_kind)kind, xywh};
            char name[64];
            snprintf(name, sizeof name, "bbox_iou %s %s", names[kind], xywh ? "xywh" : "xyxy");
            tu_gradcheck(name, f_iou, 2, in, &u, 1e-3f, 2e-3f, 2e-2f);
            yt_tensor_release(in[0]);
            yt_tensor_release(in[1]);
        }
    /* the raw CIoU gradient directly, in double precision differences */
    tu_seed(7);
    double worst = 0;
    for (int trial = 0; trial < 200; trial++) {
        float b1[4], b2[4];
        float x = tu_uniform(0, 5), y = tu_uniform(0, 5);
        b1[0] = x, b1[1] = y, b1[2] = x + tu_uniform(0.5f, 5), b1[3] = y + tu_uniform(0.5f, 5);
        x = tu_uniform(0, 5), y = tu_uniform(0, 5);
        b2[0] = x, b2[1] = y, b2[2] = x + tu_uniform(0.5f, 5), b2[3] = y + tu_uniform(0.5f, 5);
        double g[4];
        yt_bbox_iou_grad(b1, b2, YT_CIOU, g);
        for (int j = 0; j < 4; j++) {
            /* numeric derivative of the double-precision CIoU with alpha held at its value */
            const double h = 1e-4;
            double vals[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                double p[4] = {b1[0], b1[1], b1[2], b1[3]}, q[4] = {b2[0], b2[1], b2[2], b2[3]};
                p[j] += sgn ? -h : h;
                double e = 1e-7, w1 = p[2] - p[0], h1 = p[3] - p[1] + e, w2 = q[2] - q[0], h2 = q[3] - q[1] + e;
                double iw = fmax(fmin(p[2], q[2]) - fmax(p[0], q[0]), 0),
                       ih = fmax(fmin(p[3], q[3]) - fmax(p[1], q[1]), 0);
                double inter = iw * ih, uni = w1 * h1 + w2 * h2 - inter + e, iou = inter / uni;
                double cw = fmax(p[2], q[2]) - fmin(p[0], q[0]), ch = fmax(p[3], q[3]) - fmin(p[1], q[1]);
                double c2 = cw * cw + ch * ch + e;
                double rho2 = (pow(q[0] + q[2] - p[0] - p[2], 2) + pow(q[1] + q[3] - p[1] - p[3], 2)) / 4;
                double v = 4 / (M_PI * M_PI) * pow(atan(w2 / h2) - atan(w1 / h1), 2);
                /* alpha at the unperturbed point */
                double W1 = b1[2] - b1[0], H1 = b1[3] - b1[1] + e;
                double IW = fmax(fmin(b1[2], b2[2]) - fmax(b1[0], b2[0]), 0),
                       IH = fmax(fmin(b1[3], b2[3]) - fmax(b1[1], b2[1]), 0);
                double U = W1 * H1 + w2 * h2 - IW * IH + e, I0 = IW * IH / U;
                double V0 = 4 / (M_PI * M_PI) * pow(atan(w2 / h2) - atan(W1 / H1), 2);
                double alpha = V0 / (V0 - I0 + 1 + e);
                vals[sgn] = iou - (rho2 / c2 + v * alpha);
            }
            double num = (vals[0] - vals[1]) / (2 * h);
            double err = fabs(num - g[j]);
            if (err > worst) worst = err;
        }
    }
    printf("CIoU analytic vs double finite differences (200 random pairs): max abs diff %.3g\n", worst);
    CHECK(worst < 1e-6, "CIoU gradient max diff %.3g", worst);
}

static yt_tensor *f_dfl(yt_tensor **in, void *ud) { return yt_dfl_loss(in[0], in[1]); }
static yt_tensor *f_bce(yt_tensor **in, void *ud) { return yt_bce_with_logits(in[0], in[1], in[2]); }

static void test_dfl_bce(void)
{
    int64_t sp[2] = {3 * 4, 16}, st[2] = {3, 4};
    yt_tensor *in[2] = {tu_rand(2, sp, -3, 3), tu_rand(2, st, -1, 16)}; /* targets outside [0,14.99] get clamped */
    in[0]->requires_grad = 1;
    tu_gradcheck("dfl_loss", f_dfl, 2, in, NULL, 1e-2f, 1e-3f, 1e-2f);
    /* value: uniform logits -> CE = log 16 for both bins */
    yt_tensor *z = yt_tensor_zeros(YT_F32, 2, sp);
    yt_tensor *y = yt_dfl_loss(z, in[1]);
    CHECK_CLOSE(yt_f32(y)[0], log(16.0), 1e-5);
    yt_tensor_release(y);
    yt_tensor_release(z);
    yt_tensor_release(in[0]);
    yt_tensor_release(in[1]);

    int64_t sb[2] = {5, 7}, sw[1] = {7};
    yt_tensor *b[3] = {tu_rand(2, sb, -6, 6), tu_rand(2, sb, 0, 1), tu_rand(1, sw, 0.5f, 2)};
    b[0]->requires_grad = b[1]->requires_grad = 1;
    tu_gradcheck("bce_with_logits (per-class weight)", f_bce, 3, b, NULL, 1e-2f, 1e-3f, 1e-2f);
    yt_tensor *w = b[2];
    b[2] = NULL;
    tu_gradcheck("bce_with_logits", f_bce, 3, b, NULL, 1e-2f, 1e-3f, 1e-2f);
    /* value against the textbook formula */
    yt_tensor *v = yt_bce_with_logits(b[0], b[1], w);
    double ref = 0;
    for (int i = 0; i < 35; i++) {
        double x = yt_f32(b[0])[i], t = yt_f32(b[1])[i], s = 1 / (1 + exp(-x));
        ref += yt_f32(w)[i % 7] * -(t * log(s) + (1 - t) * log(1 - s));
    }
    CHECK_CLOSE(yt_f32(v)[0], ref, 1e-4 * fabs(ref));
    yt_tape_clear();
    yt_tensor_release(v);
    yt_tensor_release(w);
    yt_tensor_release(b[0]);
    yt_tensor_release(b[1]);
}

/* ---------- a tiny synthetic detection batch ---------- */

typedef struct {
    yt_detect_loss_cfg cfg;
    yt_detect_targets tg;
} dl_ud;

static yt_tensor *f_detect(yt_tensor **in, void *ud)
{
    dl_ud *u = ud;
    yt_tensor *loss = NULL;
    float items[3];
    if (yt_detect_loss(in, &u->tg, &u->cfg, &loss, items, NULL) < 0) return NULL;
    return loss;
}

static void make_tiny(int B, int nc, int R, yt_tensor **preds, float scale)
{
    int64_t hw[3] = {4, 2, 1};
    for (int l = 0; l < 3; l++) {
        int64_t s[4] = {B, 4 * R + nc, hw[l], hw[l]};
        preds[l] = tu_rand(4, s, -scale, scale);
        preds[l]->requires_grad = 1;
    }
}

static void test_tiny_loss(void)
{
    tu_seed(3);
    const int B = 2, nc = 3, R = 8;
    yt_tensor *preds[3];
    make_tiny(B, nc, R, preds, 2.0f);
    /* image 32x32; image 0 two boxes, image 1 one box + a zero-width box that must be ignored */
    float bi[4] = {0, 0, 1, 1}, cl[4] = {1, 2, 0, 1};
    float bx[16] = {0.5f, 0.5f, 0.6f, 0.7f, 0.3f, 0.35f, 0.4f, 0.3f, 0.55f, 0.45f, 0.8f, 0.6f, 0.2f, 0.2f, 0.0f, 0.3f};
    int64_t sn[1] = {4}, sc[2] = {4, 1}, sb[2] = {4, 4};
    yt_tensor *tbi = yt_tensor_from_data(YT_F32, 1, sn, bi), *tcl = yt_tensor_from_data(YT_F32, 2, sc, cl),
              *tbx = yt_tensor_from_data(YT_F32, 2, sb, bx);
    dl_ud u;
    yt_detect_loss_cfg_default(&u.cfg, nc);
    u.cfg.reg_max = R;
    u.tg.batch_idx = tbi;
    u.tg.cls = tcl;
    u.tg.bboxes = tbx;

    yt_detect_loss_extras ex;
    yt_tensor *loss = NULL;
    float items[3];
    int rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, &ex);
    CHECK(rc == 0, "tiny loss: %s", yt_last_error());
    if (rc == 0) {
        CHECK(ex.num_gt == 3, "num_gt %d (zero-width box dropped)", ex.num_gt);
        CHECK(ex.num_fg > 0, "some foreground anchors");
        CHECK(yt_f32(ex.mask_gt)[3] == 0.0f, "zero-width row masked");
        CHECK_CLOSE(yt_f32(loss)[0], B * (items[0] + items[1] + items[2]), 1e-4 * fabs(yt_f32(loss)[0]));
        yt_tape_clear();
        yt_tensor_release(loss);
        /* with the assignment held fixed the loss is smooth in preds: check the whole analytic gradient.
         * The box term's CIoU treats alpha as a constant (as the reference does), so its finite differences
         * differ slightly by design: cls + dfl are checked tightly, the box term alone more loosely (its exact
         * gradient with alpha held is checked above and against the fixture below). */
        u.cfg.fixed_assign = &ex.assign;
        u.cfg.box = 0;
        tu_gradcheck("detect_loss cls+dfl (fixed assignment) wrt preds", f_detect, 3, preds, &u, 1e-2f, 3e-4f, 3e-3f);
        float pw[3] = {0.5f, 2.0f, 1.0f};
        u.cfg.cls_pw = pw;
        tu_gradcheck("detect_loss cls+dfl with cls_pw", f_detect, 3, preds, &u, 1e-2f, 3e-4f, 3e-3f);
        u.cfg.cls_pw = NULL;
        u.cfg.box = 7.5f;
        u.cfg.cls = u.cfg.dfl = 0;
        tu_gradcheck("detect_loss box term (fixed assignment)", f_detect, 3, preds, &u, 1e-2f, 2e-3f, 3e-2f);
        u.cfg.cls = 0.5f;
        u.cfg.dfl = 1.5f;
        u.cfg.cls_pw = NULL;
        u.cfg.fixed_assign = NULL;
        yt_detect_loss_extras_free(&ex);
    }

    /* every image without GT: loss = background BCE only, tss = 1 */
    {
        int64_t s0[1] = {0}, s01[2] = {0, 1}, s04[2] = {0, 4};
        yt_tensor *e0 = yt_tensor_empty(YT_F32, 1, s0), *e1 = yt_tensor_empty(YT_F32, 2, s01),
                  *e4 = yt_tensor_empty(YT_F32, 2, s04);
        yt_detect_targets none = {e0, e1, e4};
        rc = yt_detect_loss(preds, &none, &u.cfg, &loss, items, &ex);
        CHECK(rc == 0, "no-GT loss: %s", yt_last_error());
        if (rc == 0) {
            double bce = 0;
            for (int l = 0; l < 3; l++) {
                const yt_tensor *p = preds[l];
                int64_t hw = p->shape[2] * p->shape[3];
                for (int b = 0; b < B; b++)
                    for (int c = 0; c < nc; c++)
                        for (int64_t j = 0; j < hw; j++) {
                            double x = yt_f32(p)[(b * (4 * R + nc) + 4 * R + c) * hw + j];
                            bce += fmax(x, 0) + log1p(exp(-fabs(x)));
                        }
            }
            CHECK(items[0] == 0 && items[2] == 0, "box/dfl zero without GT: %g %g", items[0], items[2]);
            CHECK_CLOSE(items[1], 0.5 * bce, 1e-5 * bce);
            CHECK(ex.num_fg == 0 && ex.target_scores_sum == 1.0f, "fg %d tss %g", ex.num_fg, ex.target_scores_sum);
            CHECK(yt_i64(ex.assign.target_labels)[0] == nc, "background label = nc when there is no GT at all");
            /* and its gradient still reaches the class logits */
            CHECK(yt_backward(1, &loss, NULL) == 0, "backward: %s", yt_last_error());
            CHECK(preds[0]->grad && tu_max_abs(preds[0]->grad) > 0, "class gradient without GT");
            for (int l = 0; l < 3; l++) {
                yt_tensor_release(preds[l]->grad);
                preds[l]->grad = NULL;
            }
            yt_tensor_release(loss);
            yt_detect_loss_extras_free(&ex);
        }
        /* one image without GT, one with only padding-like rows */
        float bi1[1] = {1}, c1[1] = {0}, b1[4] = {0.5f, 0.5f, 0.5f, 0.5f};
        int64_t s1[1] = {1}, s11[2] = {1, 1}, s14[2] = {1, 4};
        yt_tensor *t0 = yt_tensor_from_data(YT_F32, 1, s1, bi1), *t1 = yt_tensor_from_data(YT_F32, 2, s11, c1),
                  *t4 = yt_tensor_from_data(YT_F32, 2, s14, b1);
        yt_detect_targets one = {t0, t1, t4};
        rc = yt_detect_loss(preds, &one, &u.cfg, &loss, items, &ex);
        CHECK(rc == 0, "one-GT loss: %s", yt_last_error());
        if (rc == 0) {
            const uint8_t *fg = yt_u8(ex.assign.fg_mask);
            int64_t A = ex.anchor_points->shape[0], fg0 = 0, fg1 = 0;
            for (int64_t a = 0; a < A; a++) {
                fg0 += fg[a];
                fg1 += fg[A + a];
            }
            CHECK(fg0 == 0 && fg1 > 0, "image 0 (no GT) has no foreground: %lld / %lld", (long long)fg0,
                  (long long)fg1);
            yt_tape_clear();
            yt_tensor_release(loss);
            yt_detect_loss_extras_free(&ex);
        }
        yt_tensor_release(t0);
        yt_tensor_release(t1);
        yt_tensor_release(t4);
        yt_tensor_release(e0);
        yt_tensor_release(e1);
        yt_tensor_release(e4);
    }

    /* bad inputs */
    {
        float saved = yt_f32(preds[1])[5];
        yt_f32(preds[1])[5] = NAN;
        rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, NULL);
        CHECK(rc < 0 && strstr(yt_last_error(), "preds[1]") && strstr(yt_last_error(), "NaN"), "NaN error: %s",
              yt_last_error());
        yt_f32(preds[1])[5] = INFINITY;
        rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, NULL);
        CHECK(rc < 0 && strstr(yt_last_error(), "Inf"), "Inf error: %s", yt_last_error());
        yt_f32(preds[1])[5] = saved;
        CHECK(loss == NULL, "no loss on error");

        float badb = yt_f32(tbi)[2];
        yt_f32(tbi)[2] = 2; /* batch of 2 */
        rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, NULL);
        CHECK(rc < 0 && strstr(yt_last_error(), "batch_idx"), "batch_idx error: %s", yt_last_error());
        yt_f32(tbi)[2] = badb;
        yt_f32(tcl)[0] = 3; /* nc = 3 */
        rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, NULL);
        CHECK(rc < 0 && strstr(yt_last_error(), "cls"), "cls error: %s", yt_last_error());
        yt_f32(tcl)[0] = 1;
        yt_f32(tbx)[5] = NAN;
        rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, NULL);
        CHECK(rc < 0 && strstr(yt_last_error(), "bboxes[1]"), "bbox NaN error: %s", yt_last_error());
        yt_f32(tbx)[5] = 0.35f;
        u.cfg.nc = 4; /* channel count no longer matches */
        rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, NULL);
        CHECK(rc < 0 && strstr(yt_last_error(), "preds[0]"), "shape error: %s", yt_last_error());
        u.cfg.nc = nc;
        rc = yt_detect_loss(preds, &u.tg, &u.cfg, &loss, items, NULL);
        CHECK(rc == 0, "restored inputs work again: %s", yt_last_error());
        yt_tape_clear();
        yt_tensor_release(loss);
    }
    for (int l = 0; l < 3; l++) yt_tensor_release(preds[l]);
    yt_tensor_release(tbi);
    yt_tensor_release(tcl);
    yt_tensor_release(tbx);
}

/* ---------- parity with Ultralytics ---------- */

static double max_rel(const yt_tensor *a, const yt_tensor *ref)
{
    double m = tu_max_abs(ref);
    return tu_max_abs_diff(a, ref) / (m > 0 ? m : 1);
}

/* element mismatches; -1 (fails `== 0`) when the tensors cannot be compared */
static int64_t count_diff_i64(const yt_tensor *a, const yt_tensor *b)
{
    if (!a || !b || a->dtype != b->dtype || yt_numel(a) != yt_numel(b) || !yt_is_contiguous(a) || !yt_is_contiguous(b))
        return -1;
    int64_t n = 0;
    for (int64_t i = 0; i < yt_numel(a); i++) n += yt_i64(a)[i] != yt_i64(b)[i];
    return n;
}

/* element mismatches; -1 (fails `== 0`) when the tensors cannot be compared */
static int64_t count_diff_u8(const yt_tensor *a, const yt_tensor *b)
{
    if (!a || !b || a->dtype != b->dtype || yt_numel(a) != yt_numel(b) || !yt_is_contiguous(a) || !yt_is_contiguous(b))
        return -1;
    int64_t n = 0;
    for (int64_t i = 0; i < yt_numel(a); i++) n += yt_u8(a)[i] != yt_u8(b)[i];
    return n;
}

static void compare_assignment(const char *what, const yt_tal_result *r, const yt_tensor_file *f)
{
    const yt_tensor *fg = yt_tensor_file_get(f, "fg_mask"), *gi = yt_tensor_file_get(f, "target_gt_idx"),
                    *tl = yt_tensor_file_get(f, "target_labels"), *ts = yt_tensor_file_get(f, "target_scores"),
                    *tb = yt_tensor_file_get(f, "target_bboxes");
    int64_t dfg = count_diff_u8(r->fg_mask, fg), dgi = count_diff_i64(r->target_gt_idx, gi),
            dtl = count_diff_i64(r->target_labels, tl);
    int64_t nfg = 0, mine = 0;
    for (int64_t i = 0; i < yt_numel(fg); i++) {
        nfg += yt_u8(fg)[i];
        mine += yt_u8(r->fg_mask)[i];
    }
    double dts = tu_max_abs_diff(r->target_scores, ts), dtb = tu_max_abs_diff(r->target_bboxes, tb);
    printf("%s: fg %lld (ref %lld), fg_mask mismatches %lld, target_gt_idx mismatches %lld, target_labels "
           "mismatches %lld, target_scores max diff %.3g, target_bboxes max diff %.3g\n",
           what, (long long)mine, (long long)nfg, (long long)dfg, (long long)dgi, (long long)dtl, dts, dtb);
    CHECK(dfg == 0, "%s fg_mask: %lld mismatches", what, (long long)dfg);
    CHECK(dgi == 0, "%s target_gt_idx: %lld mismatches", what, (long long)dgi);
    CHECK(dtl == 0, "%s target_labels: %lld mismatches", what, (long long)dtl);
    CHECK(dts <= 1e-4, "%s target_scores max diff %.3g", what, dts);
    CHECK(dtb <= 1e-4, "%s target_bboxes max diff %.3g", what, dtb);
}

static void test_parity(void)
{
    yt_tensor_file f;
    if (yt_safetensors_load(YT_PARITY_DIR "/loss.safetensors", &f) < 0) {
        CHECK(0, "loading loss.safetensors: %s", yt_last_error());
        return;
    }
    yt_tensor *preds[3];
    const char *pn[3] = {"preds.0", "preds.1", "preds.2"}, *gn[3] = {"grad_preds.0", "grad_preds.1", "grad_preds.2"};
    for (int l = 0; l < 3; l++) {
        preds[l] = yt_tensor_clone(yt_tensor_file_get(&f, pn[l]));
        preds[l]->requires_grad = 1;
    }
    const int64_t B = preds[0]->shape[0], nc = 80, R = 16;
    int64_t A = 0;
    for (int l = 0; l < 3; l++) A += preds[l]->shape[2] * preds[l]->shape[3];

    /* 1. the assigner alone, from the stored inputs + sigmoid(class logits) */
    {
        int64_t s[3] = {B, A, nc};
        yt_tensor *sc = yt_tensor_empty(YT_F32, 3, s);
        int64_t a0 = 0;
        for (int l = 0; l < 3; l++) {
            int64_t hw = preds[l]->shape[2] * preds[l]->shape[3];
            for (int64_t b = 0; b < B; b++)
                for (int64_t c = 0; c < nc; c++)
                    for (int64_t j = 0; j < hw; j++) {
                        float x = yt_f32(preds[l])[(b * (4 * R + nc) + 4 * R + c) * hw + j];
                        yt_f32(sc)[(b * A + a0 + j) * nc + c] = 1.0f / (1.0f + expf(-x));
                    }
            a0 += hw;
        }
        yt_tal_cfg cfg;
        yt_tal_cfg_default(&cfg, (int)nc);
        yt_tal_result r;
        int rc = yt_task_aligned_assign(
            sc, yt_tensor_file_get(&f, "assigner_in.pd_bboxes"), yt_tensor_file_get(&f, "assigner_in.anc_points"),
            yt_tensor_file_get(&f, "assigner_in.gt_labels"), yt_tensor_file_get(&f, "assigner_in.gt_bboxes"),
            yt_tensor_file_get(&f, "assigner_in.mask_gt"), &cfg, &r);
        CHECK(rc == 0, "assigner: %s", yt_last_error());
        if (rc == 0) {
            compare_assignment("assigner (fixture inputs)", &r, &f);
            yt_tal_result_free(&r);
        }
        yt_tensor_release(sc);
    }

    /* 2. the whole loss from preds + batch */
    {
        yt_detect_targets tg = {yt_tensor_file_get(&f, "batch_idx"), yt_tensor_file_get(&f, "cls"),
                                yt_tensor_file_get(&f, "bboxes")};
        yt_detect_loss_cfg cfg;
        yt_detect_loss_cfg_default(&cfg, (int)nc);
        yt_detect_loss_extras ex;
        yt_tensor *loss = NULL;
        float items[3];
        int rc = yt_detect_loss(preds, &tg, &cfg, &loss, items, &ex);
        CHECK(rc == 0, "detect_loss: %s", yt_last_error());
        if (rc == 0) {
            const float *ri = yt_f32(yt_tensor_file_get(&f, "loss_items"));
            float rl = yt_f32(yt_tensor_file_get(&f, "loss"))[0];
            float rtss = yt_f32(yt_tensor_file_get(&f, "target_scores_sum"))[0];
            printf("loss_items [%.7g %.7g %.7g] ref [%.7g %.7g %.7g]; loss %.8g ref %.8g; tss %.7g ref %.7g\n",
                   items[0], items[1], items[2], ri[0], ri[1], ri[2], yt_f32(loss)[0], rl, ex.target_scores_sum, rtss);
            for (int k = 0; k < 3; k++) {
                double rel = fabs(items[k] - ri[k]) / fabs(ri[k]);
                printf("  loss_items[%d] rel diff %.3g\n", k, rel);
                CHECK(rel <= 1e-5, "loss_items[%d] = %.8g vs %.8g (rel %.3g)", k, items[k], ri[k], rel);
            }
            double rel = fabs(yt_f32(loss)[0] - rl) / fabs(rl);
            printf("  loss rel diff %.3g, tss rel diff %.3g\n", rel, fabs(ex.target_scores_sum - rtss) / rtss);
            CHECK(rel <= 1e-5, "loss %.8g vs %.8g", yt_f32(loss)[0], rl);
            CHECK_CLOSE(ex.target_scores_sum, rtss, 1e-5 * rtss);
            /* intermediate tensors */
            double dpb = tu_max_abs_diff(ex.pd_bboxes, yt_tensor_file_get(&f, "assigner_in.pd_bboxes"));
            double dan = tu_max_abs_diff(ex.anchor_points, yt_tensor_file_get(&f, "anchor_points"));
            double dst = tu_max_abs_diff(ex.stride_tensor, yt_tensor_file_get(&f, "stride_tensor"));
            double dgb = tu_max_abs_diff(ex.gt_bboxes, yt_tensor_file_get(&f, "assigner_in.gt_bboxes"));
            double dgl = tu_max_abs_diff(ex.gt_labels, yt_tensor_file_get(&f, "assigner_in.gt_labels"));
            double dmg = tu_max_abs_diff(ex.mask_gt, yt_tensor_file_get(&f, "assigner_in.mask_gt"));
            printf("  pd_bboxes max diff %.3g px, anchors %.3g, strides %.3g, gt_bboxes %.3g, gt_labels %.3g, "
                   "mask_gt %.3g\n",
                   dpb, dan, dst, dgb, dgl, dmg);
            CHECK(dpb <= 1e-3, "pd_bboxes max diff %.3g", dpb);
            CHECK(dan == 0 && dst == 0 && dgl == 0 && dmg == 0, "anchors/strides/labels/mask exact");
            CHECK(dgb <= 1e-4, "gt_bboxes max diff %.3g", dgb);
            compare_assignment("assigner inside detect_loss", &ex.assign, &f);

            /* 3. gradient through autograd */
            rc = yt_backward(1, &loss, NULL);
            CHECK(rc == 0, "backward: %s", yt_last_error());
            for (int l = 0; l < 3 && rc == 0; l++) {
                const yt_tensor *ref = yt_tensor_file_get(&f, gn[l]);
                double mr = max_rel(preds[l]->grad, ref), rl2 = tu_rel_l2(preds[l]->grad, ref);
                double mr2 = max_rel(ex.grad_preds[l], ref);
                printf("  grad_preds.%d: max diff %.3g (max|ref| %.3g, rel %.3g), rel-L2 %.3g\n", l,
                       tu_max_abs_diff(preds[l]->grad, ref), tu_max_abs(ref), mr, rl2);
                CHECK(mr <= 1e-3, "grad_preds.%d rel max diff %.3g", l, mr);
                CHECK(rl2 <= 1e-3, "grad_preds.%d rel-L2 %.3g", l, rl2);
                CHECK(mr2 == mr, "extras grad equals autograd grad (loss backward scale 1)");
            }
            yt_tensor_release(loss);
            yt_detect_loss_extras_free(&ex);
        }
    }
    for (int l = 0; l < 3; l++) yt_tensor_release(preds[l]);
    yt_tensor_file_free(&f);
}

int main(void)
{
    tu_seed(1);
    test_iou_values();
    test_iou_grads();
    test_dfl_bce();
    test_tiny_loss();
    test_parity();
    return tu_finish();
}
