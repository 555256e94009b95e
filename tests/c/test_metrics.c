/* Metrics: box IoU, matching, AP per class, curves, confusion matrix. Parity with metrics.json (read by the small
 * JSON reader below) and metrics_curves.safetensors (Ultralytics 8.2.100). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "metrics/ap.h"
#include "metrics/plots.h"
#include "testutil.h"

/* ---- a minimal JSON DOM, enough for the fixture ---- */
typedef enum { J_NULL, J_NUM, J_STR, J_ARR, J_OBJ, J_BOOL } jtype;
typedef struct jv {
    jtype t;
    double num;
    char *str;
    int n;
    char **keys;
    struct jv **items;
} jv;

static const char *jp;

static void skip_ws(void)
{
    while (*jp == ' ' || *jp == '\n' || *jp == '\r' || *jp == '\t') jp++;
}

static jv *jparse(void);

static char *jstring(void)
{
    jp++; /* opening quote */
    const char *s = jp;
    while (*jp && *jp != '"') {
        if (*jp == '\\' && jp[1]) jp++;
        jp++;
    }
    size_t n = (size_t)(jp - s);
    char *o = malloc(n + 1);
    memcpy(o, s, n);
    o[n] = 0;
    if (*jp) jp++;
    return o;
}

static jv *jparse(void)
{
    skip_ws();
    jv *v = calloc(1, sizeof *v);
    if (*jp == '{' || *jp == '[') {
        int obj = *jp == '{';
        v->t = obj ? J_OBJ : J_ARR;
        jp++;
        int cap = 0;
        for (;;) {
            skip_ws();
            if (*jp == (obj ? '}' : ']')) {
                jp++;
                break;
            }
            if (!*jp) break;
            if (v->n == cap) {
                cap = cap ? cap * 2 : 8;
                v->items = realloc(v->items, cap * sizeof *v->items);
                v->keys = realloc(v->keys, cap * sizeof *v->keys);
            }
            v->keys[v->n] = NULL;
            if (obj) {
                v->keys[v->n] = jstring();
                skip_ws();
                jp++; /* : */
            }
            v->items[v->n++] = jparse();
            skip_ws();
            if (*jp == ',') jp++;
        }
    } else if (*jp == '"') {
        v->t = J_STR;
        v->str = jstring();
    } else if (!strncmp(jp, "null", 4)) {
        jp += 4;
    } else if (!strncmp(jp, "true", 4) || !strncmp(jp, "false", 5)) {
        v->t = J_BOOL;
        v->num = *jp == 't';
        jp += *jp == 't' ? 4 : 5;
    } else {
        char *end;
        v->t = J_NUM;
        v->num = strtod(jp, &end);
        if (end == jp)
            jp++;
        else
            jp = end;
    }
    return v;
}

static void jfree(jv *v)
{
    if (!v) return;
    for (int i = 0; i < v->n; i++) {
        jfree(v->items[i]);
        free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static jv *jget(const jv *o, const char *k)
{
    if (!o || o->t != J_OBJ) return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], k)) return o->items[i];
    return NULL;
}

static jv *load_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    jp = buf;
    jv *v = jparse();
    free(buf);
    return v;
}

/* ---- parity ---- */

typedef struct {
    /* concatenation over images, as the validator's stats */
    int64_t n, nt;
    uint8_t *tp;
    float *conf;
    int64_t *pred_cls, *target_cls;
} stats;

static void test_parity(void)
{
    jv *m = load_json(YT_PARITY_DIR "/metrics.json");
    CHECK(m != NULL, "metrics.json loads");
    if (!m) return;
    jv *images = jget(m, "images");
    CHECK(images && images->n == 20, "20 images");
    float iouv[YT_AP_NIOU];
    yt_iou_thresholds(iouv);
    jv *thr = jget(m, "iou_thresholds_float32");
    for (int k = 0; k < YT_AP_NIOU; k++)
        CHECK(iouv[k] == (float)thr->items[k]->num, "threshold %d: %.9g vs %.9g", k, iouv[k], thr->items[k]->num);

    stats s = {0};
    s.tp = malloc(4096 * YT_AP_NIOU);
    s.conf = malloc(4096 * sizeof(float));
    s.pred_cls = malloc(4096 * sizeof(int64_t));
    s.target_cls = malloc(4096 * sizeof(int64_t));
    int tp_mismatch = 0;
    for (int i = 0; i < images->n; i++) {
        jv *im = images->items[i];
        jv *gt = jget(im, "gt_xyxy"), *gc = jget(im, "gt_cls"), *pr = jget(im, "pred_xyxy_conf_cls"),
           *tp = jget(im, "tp_10");
        int ng = gt->n, np = pr->n;
        float *gb = malloc((size_t)(ng + 1) * 4 * sizeof(float)), *pb = malloc((size_t)(np + 1) * 4 * sizeof(float));
        int64_t *gcl = malloc((size_t)(ng + 1) * sizeof(int64_t)), *pcl = malloc((size_t)(np + 1) * sizeof(int64_t));
        for (int g = 0; g < ng; g++) {
            for (int k = 0; k < 4; k++) gb[4 * g + k] = (float)gt->items[g]->items[k]->num;
            gcl[g] = (int64_t)gc->items[g]->num;
            s.target_cls[s.nt++] = gcl[g];
        }
        for (int p = 0; p < np; p++) {
            for (int k = 0; k < 4; k++) pb[4 * p + k] = (float)pr->items[p]->items[k]->num;
            pcl[p] = (int64_t)pr->items[p]->items[5]->num;
        }
        float *iou = malloc((size_t)(ng * np + 1) * sizeof(float));
        uint8_t *correct = malloc((size_t)(np + 1) * YT_AP_NIOU);
        yt_box_iou_forward(gb, ng, pb, np, iou); /* (GT, predictions) as the validator */
        CHECK(yt_match_predictions_forward(pcl, np, gcl, ng, iou, iouv, YT_AP_NIOU, correct) == 0, "match");
        for (int p = 0; p < np; p++) {
            for (int k = 0; k < YT_AP_NIOU; k++) {
                if (correct[p * YT_AP_NIOU + k] != (uint8_t)tp->items[p]->items[k]->num) tp_mismatch++;
                s.tp[s.n * YT_AP_NIOU + k] = correct[p * YT_AP_NIOU + k];
            }
            s.conf[s.n] = (float)pr->items[p]->items[4]->num;
            s.pred_cls[s.n] = pcl[p];
            s.n++;
        }
        free(gb);
        free(pb);
        free(gcl);
        free(pcl);
        free(iou);
        free(correct);
    }
    CHECK(tp_mismatch == 0, "tp_10 identical for every prediction (%d mismatches)", tp_mismatch);
    CHECK(s.n == 122 && s.nt == 116, "122 predictions, 116 targets");

    yt_ap_result r;
    int rc = yt_ap_per_class(s.tp, s.n, YT_AP_NIOU, s.conf, s.pred_cls, s.target_cls, s.nt, &r);
    CHECK(rc == 0, "ap_per_class: %s", yt_last_error());
    if (rc == 0) {
        jv *pc = jget(m, "per_class"), *res = jget(m, "results");
        CHECK(r.nc == pc->n, "%d classes with GT", r.nc);
        CHECK(r.best_index == (int)jget(m, "max_f1_index")->num, "max F1 index %d", r.best_index);
        double md = 0, mp = 0, mr = 0, map50 = 0, map75 = 0, map = 0;
        for (int c = 0; c < r.nc && c < pc->n; c++) {
            jv *e = pc->items[c];
            CHECK(r.ap_class_index[c] == (int64_t)jget(e, "class")->num, "class index %d", c);
            CHECK(r.nt[c] == (int64_t)jget(e, "n_targets")->num, "n_targets %d", c);
            double d[4] = {fabs(r.p[c] - jget(e, "precision")->num), fabs(r.r[c] - jget(e, "recall")->num),
                           fabs(r.f1[c] - jget(e, "f1")->num), 0};
            double apm = 0;
            for (int k = 0; k < YT_AP_NIOU; k++) {
                double dd = fabs(r.ap[c * YT_AP_NIOU + k] - jget(e, "ap_10")->items[k]->num);
                if (dd > d[3]) d[3] = dd;
                apm += r.ap[c * YT_AP_NIOU + k];
            }
            apm /= YT_AP_NIOU;
            double d5 = fabs(apm - jget(e, "ap50_95")->num);
            for (int k = 0; k < 4; k++)
                if (d[k] > md) md = d[k];
            if (d5 > md) md = d5;
            mp += r.p[c];
            mr += r.r[c];
            map50 += r.ap[c * YT_AP_NIOU];
            map75 += r.ap[c * YT_AP_NIOU + 5];
            map += apm;
        }
        CHECK(md <= 1e-6, "per-class P/R/F1/AP max diff %.3g", md);
        mp /= r.nc;
        mr /= r.nc;
        map50 /= r.nc;
        map75 /= r.nc;
        map /= r.nc;
        double fit = 0.1 * map50 + 0.9 * map;
        double rd = 0;
        double got[6] = {mp, mr, map50, map75, map, fit};
        const char *keys[6] = {"precision", "recall", "mAP50", "mAP75", "mAP50-95", "fitness"};
        for (int k = 0; k < 6; k++) {
            double d = fabs(got[k] - jget(res, keys[k])->num);
            CHECK(d <= 1e-6, "%s: %.9g vs %.9g", keys[k], got[k], jget(res, keys[k])->num);
            if (d > rd) rd = d;
        }
        printf("metrics parity: per-class max diff %.3g, results max diff %.3g\n", md, rd);

        /* curves */
        yt_tensor_file f;
        rc = yt_safetensors_load(YT_PARITY_DIR "/metrics_curves.safetensors", &f);
        CHECK(rc == 0, "load metrics_curves: %s", yt_last_error());
        if (rc == 0) {
            const char *names[5] = {"x", "p_curve", "r_curve", "f1_curve", "ap"};
            const double *ours[5] = {r.x, r.p_curve, r.r_curve, r.f1_curve, r.ap};
            double cd = 0;
            for (int k = 0; k < 5; k++) {
                yt_tensor *t = yt_tensor_file_get(&f, names[k]);
                int64_t want = k == 0 ? 1000 : k == 4 ? (int64_t)r.nc * 10 : (int64_t)r.nc * 1000;
                CHECK(t && yt_numel(t) == want, "%s has %lld values", names[k], (long long)want);
                if (!t || yt_numel(t) != want) continue;
                double d = 0;
                for (int64_t i = 0; i < want; i++) {
                    double dd = fabs(ours[k][i] - yt_f32(t)[i]);
                    if (dd > d || dd != dd) d = dd;
                }
                CHECK(d <= 1e-6, "%s max diff %.3g", names[k], d);
                if (d > cd) cd = d;
            }
            yt_tensor *aci = yt_tensor_file_get(&f, "ap_class_index");
            CHECK(aci && yt_numel(aci) == r.nc && !memcmp(yt_i64(aci), r.ap_class_index, r.nc * 8),
                  "ap_class_index identical");
            printf("curves parity: max diff %.3g (float32 fixture)\n", cd);
            yt_tensor_file_free(&f);
        }

        yt_ap_result_free(&r);
    }
    free(s.tp);
    free(s.conf);
    free(s.pred_cls);
    free(s.target_cls);
    jfree(m);
}

/* ---- unit cases ---- */

static void test_box_iou(void)
{
    const float a[8] = {0, 0, 10, 10, 5, 5, 15, 15};
    const float b[8] = {0, 0, 10, 10, 20, 20, 30, 30};
    float o[4];
    yt_box_iou_forward(a, 2, b, 2, o);
    CHECK_CLOSE(o[0], 1.0, 1e-6);
    CHECK(o[1] == 0.0f, "disjoint boxes have IoU 0");
    CHECK_CLOSE(o[2], 25.0 / 175.0, 1e-6);
    int64_t sa[2] = {2, 4}, sb[2] = {2, 4};
    yt_tensor *ta = yt_tensor_from_data(YT_F32, 2, sa, a), *tb = yt_tensor_from_data(YT_F32, 2, sb, b);
    yt_tensor *t = yt_box_iou(ta, tb);
    CHECK(t && t->shape[0] == 2 && t->shape[1] == 2 && yt_f32(t)[2] == o[2], "tensor box_iou");
    yt_tensor_release(t);
    int64_t s3[1] = {8};
    yt_tensor *bad = yt_tensor_from_data(YT_F32, 1, s3, a);
    CHECK(yt_box_iou(bad, tb) == NULL, "1-d boxes rejected");
    yt_tensor_release(bad);
    yt_tensor_release(ta);
    yt_tensor_release(tb);
}

static void test_match(void)
{
    float iouv[YT_AP_NIOU];
    yt_iou_thresholds(iouv);
    /* lowest prediction index wins the GT even with a lower IoU */
    {
        const float gt[4] = {0, 0, 10, 10};
        const float pr[8] = {0, 0, 10, 8.7f, 0, 0, 10, 10};
        int64_t gc[1] = {0}, pc[2] = {0, 0};
        float iou[2];
        uint8_t c[20];
        yt_box_iou_forward(gt, 1, pr, 2, iou);
        yt_match_predictions_forward(pc, 2, gc, 1, iou, iouv, YT_AP_NIOU, c);
        const uint8_t want[20] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
        CHECK(!memcmp(c, want, 20), "lowest-index rule");
    }
    /* a prediction that loses its best GT does not fall back to another GT; class mismatch never matches */
    {
        const float gt[8] = {0, 0, 10, 10, 0, 0, 10, 9.6f};
        const float pr[12] = {0, 0, 10, 10, 0, 0, 10, 9.9f, 0, 0, 10, 10};
        int64_t gc[2] = {0, 0}, pc[3] = {0, 0, 1};
        float iou[6];
        uint8_t c[30];
        yt_box_iou_forward(gt, 2, pr, 3, iou);
        yt_match_predictions_forward(pc, 3, gc, 2, iou, iouv, YT_AP_NIOU, c);
        int s0 = 0, s1 = 0, s2 = 0;
        for (int k = 0; k < 10; k++) {
            s0 += c[k];
            s1 += c[10 + k];
            s2 += c[20 + k];
        }
        CHECK(s0 == 10 && s1 == 0 && s2 == 0, "no fallback: %d %d %d", s0, s1, s2);
    }
    /* tensor form: shapes checked */
    {
        int64_t s1[1] = {2}, s2[2] = {1, 2}, s3[2] = {2, 1};
        float pcf[2] = {0, 0}, gcf[1] = {0}, iou[2] = {0.58f, 0.4f};
        yt_tensor *pc = yt_tensor_from_data(YT_F32, 1, s1, pcf);
        int64_t sg[1] = {1};
        yt_tensor *gc = yt_tensor_from_data(YT_F32, 1, sg, gcf);
        yt_tensor *io = yt_tensor_from_data(YT_F32, 2, s2, iou);
        yt_tensor *tp = yt_match_predictions(pc, gc, io, NULL);
        CHECK(tp && tp->dtype == YT_U8 && tp->shape[0] == 2 && tp->shape[1] == 10, "tp (2, 10) uint8");
        if (tp) CHECK(yt_u8(tp)[0] == 1 && yt_u8(tp)[1] == 1 && yt_u8(tp)[2] == 0 && yt_u8(tp)[10] == 0, "values");
        yt_tensor_release(tp);
        yt_tensor *io2 = yt_tensor_from_data(YT_F32, 2, s3, iou);
        CHECK(yt_match_predictions(pc, gc, io2, NULL) == NULL, "iou of the wrong shape rejected");
        yt_tensor_release(io2);
        yt_tensor_release(pc);
        yt_tensor_release(gc);
        yt_tensor_release(io);
    }
}

static void test_ap_cases(void)
{
    /* one perfect prediction: AP 0.995 (101-point interpolation, the point at recall 1 has precision 0) */
    {
        double rec[1] = {1}, pre[1] = {1}, mrec[3], mpre[3];
        CHECK_CLOSE(yt_compute_ap(rec, pre, 1, mrec, mpre), 0.995, 1e-12);
    }
    /* interp */
    {
        double xp[4] = {0, 0.5, 0.5, 1}, fp[4] = {0, 1, 2, 3};
        CHECK_CLOSE(yt_interp(0.25, xp, fp, 4, -1, 9), 0.5, 1e-15);
        CHECK_CLOSE(yt_interp(0.5, xp, fp, 4, -1, 9), 2.0, 0);
        CHECK_CLOSE(yt_interp(0.75, xp, fp, 4, -1, 9), 2.5, 1e-15);
        CHECK_CLOSE(yt_interp(-0.1, xp, fp, 4, -1, 9), -1, 0);
        CHECK_CLOSE(yt_interp(1.1, xp, fp, 4, -1, 9), 9, 0);
        CHECK_CLOSE(yt_interp(1.0, xp, fp, 4, -1, 9), 3, 0);
    }
    yt_ap_result r;
    /* no predictions: every GT class has AP 0 */
    {
        int64_t tc[3] = {2, 0, 2};
        CHECK(yt_ap_per_class(NULL, 0, 10, NULL, NULL, tc, 3, &r) == 0, "no predictions");
        CHECK(r.nc == 2 && r.ap_class_index[0] == 0 && r.ap_class_index[1] == 2 && r.nt[1] == 2, "classes");
        double s = 0;
        for (int i = 0; i < 20; i++) s += r.ap[i];
        CHECK(s == 0 && r.p[0] == 0 && r.r[1] == 0, "all zero");
        yt_ap_result_free(&r);
    }
    /* no GT: no classes */
    {
        uint8_t tp[10] = {0};
        float conf[1] = {0.9f};
        int64_t pc[1] = {1};
        CHECK(yt_ap_per_class(tp, 1, 10, conf, pc, NULL, 0, &r) == 0, "no GT");
        CHECK(r.nc == 0 && r.best_index == 0, "no classes");
        yt_ap_result_free(&r);
    }
    /* a class with GT and no predictions; another class with one perfect prediction; a class only predicted */
    {
        uint8_t tp[20] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        float conf[2] = {0.9f, 0.8f};
        int64_t pc[2] = {1, 7};
        int64_t tc[2] = {1, 3};
        CHECK(yt_ap_per_class(tp, 2, 10, conf, pc, tc, 2, &r) == 0, "mixed");
        CHECK(r.nc == 2 && r.ap_class_index[0] == 1 && r.ap_class_index[1] == 3, "classes with GT only");
        CHECK_CLOSE(r.ap[0], 0.995, 1e-12);
        CHECK_CLOSE(r.ap[9], 0.995, 1e-12);
        CHECK(r.ap[10] == 0 && r.ap[19] == 0 && !r.has_prec[1] && r.has_prec[0], "class 3 has AP 0");
        CHECK(r.p[0] == 1.0 && r.r[0] > 0.999 && r.p[1] == 0 && r.r[1] == 0, "P/R at best F1: %g %g", r.p[0], r.r[0]);
        CHECK(r.x[0] == 0.0 && r.x[999] == 1.0, "grid");
        /* recall curve is 0 above the prediction's confidence and 1 below it */
        CHECK(r.r_curve[950] == 0.0 && r.r_curve[100] == 1.0 && r.p_curve[950] == 1.0, "curves");
        yt_ap_result_free(&r);
    }
}

static void test_confusion(void)
{
    double m[9];
    memset(m, 0, sizeof m);
    const float gt[8] = {0, 0, 10, 10, 20, 20, 30, 30};
    int64_t gc[2] = {0, 1};
    const float dets[24] = {0,  0,  10, 10, 0.9f, 0, 20, 20, 30, 30, 0.8f, 0,
                            50, 50, 60, 60, 0.7f, 1, 0,  0,  10, 10, 0.1f, 1};
    CHECK(yt_confusion_matrix_update(m, 2, dets, 4, gt, gc, 2, 0.25f, 0.45f) == 0, "update");
    const double want[9] = {1, 1, 0, 0, 0, 1, 0, 0, 0};
    CHECK(!memcmp(m, want, sizeof m), "matrix [pred][true]: %g %g %g / %g %g %g / %g %g %g", m[0], m[1], m[2], m[3],
          m[4], m[5], m[6], m[7], m[8]);
    /* no detections: every GT is background; no GT: every detection above conf is a false positive */
    memset(m, 0, sizeof m);
    yt_confusion_matrix_update(m, 2, NULL, 0, gt, gc, 2, 0.25f, 0.45f);
    CHECK(m[6] == 1 && m[7] == 1, "missed GT counted in the background row");
    memset(m, 0, sizeof m);
    yt_confusion_matrix_update(m, 2, dets, 4, NULL, NULL, 0, 0.25f, 0.45f);
    CHECK(m[2] == 2 && m[5] == 1, "false positives in the background column");
    /* no pair passes the IoU threshold: GT counted as missed, detections not counted (Ultralytics 8.2.100) */
    memset(m, 0, sizeof m);
    yt_confusion_matrix_update(m, 2, dets + 12, 1, gt, gc, 1, 0.25f, 0.45f);
    CHECK(m[6] == 1 && m[5] == 0, "no-match quirk");
    int64_t badc[1] = {5};
    CHECK(yt_confusion_matrix_update(m, 2, NULL, 0, gt, badc, 1, 0.25f, 0.45f) < 0, "class id out of range");
}

static void test_plots(void)
{
    char dir[] = "/tmp/yt_metrics_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char path[256];
    double m[16] = {5, 1, 0, 2, 0, 7, 1, 0, 1, 0, 3, 1, 2, 1, 0, 0};
    const char *names[3] = {"person", "bicycle", "car"};
    snprintf(path, sizeof path, "%s/confusion_matrix_normalized.png", dir);
    CHECK(yt_plot_confusion_matrix(path, m, 3, names, 1) == 0, "confusion plot: %s", yt_last_error());
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    if (f) {
        fread(sig, 1, 8, f);
        fclose(f);
    }
    CHECK(sig[0] == 0x89 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G', "PNG written");
    double px[1000], py[3000], ap[3] = {0.9, 0.5, 0.1};
    for (int i = 0; i < 1000; i++) {
        px[i] = i / 999.0;
        for (int k = 0; k < 3; k++) py[k * 1000 + i] = 1.0 - pow(px[i], 4 - k);
    }
    snprintf(path, sizeof path, "%s/PR_curve.png", dir);
    CHECK(yt_plot_pr_curve(path, px, 1000, py, 3, ap, names) == 0, "PR plot: %s", yt_last_error());
    snprintf(path, sizeof path, "%s/F1_curve.png", dir);
    CHECK(yt_plot_mc_curve(path, px, 1000, py, 3, names, "Confidence", "F1") == 0, "F1 plot: %s", yt_last_error());
    CHECK(yt_plot_pr_curve("/nonexistent-dir/x.png", px, 1000, py, 3, ap, names) < 0, "unwritable path fails");
    const char *files[3] = {"confusion_matrix_normalized.png", "PR_curve.png", "F1_curve.png"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size > 10000, "%s written (%lld bytes)", files[i], (long long)st.st_size);
        remove(path);
    }
    rmdir(dir);
}

int main(void)
{
    test_parity();
    test_box_iou();
    test_match();
    test_ap_cases();
    test_confusion();
    test_plots();
    tu_drop_font_caches();
    return tu_finish();
}
