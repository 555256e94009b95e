/* Lua binding of src/metrics: NMS, box IoU, matching, AP per class, confusion matrix, the run-directory plots. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/image.h"
#include "lua/yt_lua.h"
#include "metrics/ap.h"
#include "metrics/canvas.h"
#include "metrics/nms.h"
#include "metrics/plots.h"
#include "ops/shape_ops.h"

/* Flattens any tensor (any dtype, any strides) to doubles in row-major order, into scratch memory. */
static double *flat_f64(lua_State *L, const yt_tensor *t, int64_t *n_out)
{
    int64_t n = yt_numel(t);
    double *o = yt_lua_new_scratch(L, (size_t)n * sizeof *o, NULL);
    int64_t idx[YT_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        o[i] = yt_tensor_elem_f64(t, off);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    *n_out = n;
    return o;
}

static const char *shape_of(const yt_tensor *t, char *b, size_t n) { return yt_shape_str(t, b, n); }

/* yt.metrics.nms(prediction, {conf=0.25, iou=0.45, max_det=300, max_nms=30000, multi_label=false, agnostic=false,
 *                     classes={...}}) -> { (n,6) tensor per image } */
static int l_nms(lua_State *L)
{
    yt_tensor *pred = yt_lua_check_tensor(L, 1);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    yt_nms_opts o;
    yt_nms_opts_default(&o);
    o.conf_thres = (float)yt_lua_opt_number_field(L, 2, "conf", o.conf_thres);
    o.iou_thres = yt_lua_opt_number_field(L, 2, "iou", o.iou_thres);
    double md = yt_lua_opt_number_field(L, 2, "max_det", o.max_det),
           mn = yt_lua_opt_number_field(L, 2, "max_nms", o.max_nms);
    if (md < 0 || md > 1e9 || mn < 0 || mn > 1e9) return luaL_error(L, "nms: max_det/max_nms out of range");
    o.max_det = (int)md;
    o.max_nms = (int)mn;
    o.multi_label = yt_lua_opt_bool_field(L, 2, "multi_label", 0);
    o.agnostic = yt_lua_opt_bool_field(L, 2, "agnostic", 0);
    int64_t *classes = NULL;
    if (!lua_isnoneornil(L, 2)) {
        lua_getfield(L, 2, "classes");
        if (lua_istable(L, -1)) {
            int n = (int)luaL_len(L, -1);
            classes = yt_lua_new_scratch(L, (size_t)n * sizeof *classes, NULL);
            for (int i = 0; i < n; i++) {
                lua_geti(L, -2, i + 1);
                int ok;
                classes[i] = (int64_t)lua_tointegerx(L, -1, &ok);
                if (!ok) return luaL_error(L, "nms: classes must be a list of integers");
                lua_pop(L, 1);
            }
            o.classes = classes;
            o.n_classes = n;
        } else if (lua_isinteger(L, -1)) {
            lua_Integer c = lua_tointeger(L, -1);
            classes = yt_lua_new_scratch(L, sizeof *classes, NULL);
            classes[0] = c;
            o.classes = classes;
            o.n_classes = 1;
        } else if (!lua_isnil(L, -1)) {
            return luaL_error(L, "nms: classes must be a list of class ids");
        }
    }
    if (pred->ndim != 3) {
        char b[96];
        return luaL_error(L, "nms: prediction must be (B, 4 + nc, A), got %s", shape_of(pred, b, sizeof b));
    }
    int B = (int)pred->shape[0];
    yt_tensor **out = yt_lua_new_scratch(L, (size_t)B * sizeof *out, NULL);
    if (yt_nms(pred, &o, out) < 0) return yt_lua_core_error(L);
    lua_createtable(L, B, 0);
    for (int b = 0; b < B; b++) {
        yt_lua_push_tensor(L, out[b]); /* takes the reference */
        out[b] = NULL;
        lua_rawseti(L, -2, b + 1);
    }
    return 1;
}

static int l_box_iou(lua_State *L)
{
    yt_tensor *a = yt_lua_check_tensor(L, 1), *b = yt_lua_check_tensor(L, 2);
    yt_lua_push_tensor(L, yt_box_iou(a, b));
    return 1;
}

static int l_match_predictions(lua_State *L)
{
    yt_tensor *pc = yt_lua_check_tensor(L, 1), *gc = yt_lua_check_tensor(L, 2), *iou = yt_lua_check_tensor(L, 3);
    yt_tensor *iouv = yt_lua_opt_tensor(L, 4);
    yt_lua_push_tensor(L, yt_match_predictions(pc, gc, iou, iouv));
    return 1;
}

/* yt.metrics.iou_thresholds() -> (10) float32 tensor 0.5:0.05:0.95 */
static int l_iou_thresholds(lua_State *L)
{
    float v[YT_AP_NIOU];
    yt_iou_thresholds(v);
    int64_t shape[1] = {YT_AP_NIOU};
    yt_lua_push_tensor(L, yt_tensor_from_data(YT_F32, 1, shape, v));
    return 1;
}

/* yt.metrics.ap_per_class(tp (n,K), conf (n), pred_cls (n), target_cls (nt)) -> table (see yt_ap_result) */
static int l_ap_per_class(lua_State *L)
{
    yt_tensor *tp = yt_lua_check_tensor(L, 1), *conf = yt_lua_check_tensor(L, 2);
    yt_tensor *pc = yt_lua_check_tensor(L, 3), *tc = yt_lua_check_tensor(L, 4);
    char b1[96], b2[96];
    int64_t n = tp->ndim >= 1 ? tp->shape[0] : 0;
    int niou = tp->ndim == 2 ? (int)tp->shape[1] : tp->ndim == 1 && n == 0 ? YT_AP_NIOU : 1;
    if (tp->ndim > 2 || niou < 1)
        return luaL_error(L, "ap_per_class: tp must be (n, K), got %s", shape_of(tp, b1, sizeof b1));
    if (yt_numel(conf) != n || yt_numel(pc) != n)
        return luaL_error(L, "ap_per_class: tp %s, conf %s and pred_cls must have n entries",
                          shape_of(tp, b1, sizeof b1), shape_of(conf, b2, sizeof b2));
    int64_t k, m;
    double *tpd = flat_f64(L, tp, &k), *cd = flat_f64(L, conf, &k), *pcd = flat_f64(L, pc, &k);
    double *tcd = flat_f64(L, tc, &m);
    uint8_t *tpu = yt_lua_new_scratch(L, (size_t)n * niou, NULL);
    float *cf = yt_lua_new_scratch(L, (size_t)n * sizeof(float), NULL);
    int64_t *pci = yt_lua_new_scratch(L, (size_t)n * sizeof(int64_t), NULL);
    int64_t *tci = yt_lua_new_scratch(L, (size_t)m * sizeof(int64_t), NULL);
    for (int64_t i = 0; i < n * niou; i++) tpu[i] = tpd[i] != 0;
    for (int64_t i = 0; i < n; i++) {
        cf[i] = (float)cd[i];
        pci[i] = (int64_t)pcd[i];
    }
    for (int64_t i = 0; i < m; i++) tci[i] = (int64_t)tcd[i];
    yt_ap_result r;
    if (yt_ap_per_class(tpu, n, niou, cf, pci, tci, m, &r) < 0) return yt_lua_core_error(L);
    /* copy everything into tensors; free r before anything can raise */
    const int NP = YT_AP_CURVE_POINTS, nc = r.nc;
    int64_t s1[1] = {nc}, s2[2] = {nc, niou}, sc[2] = {nc, NP}, sx[1] = {NP};
    yt_tensor *t[14] = {
        yt_tensor_from_data(YT_F64, 1, s1, r.tp),
        yt_tensor_from_data(YT_F64, 1, s1, r.fp),
        yt_tensor_from_data(YT_F64, 1, s1, r.p),
        yt_tensor_from_data(YT_F64, 1, s1, r.r),
        yt_tensor_from_data(YT_F64, 1, s1, r.f1),
        yt_tensor_from_data(YT_F64, 2, s2, r.ap),
        yt_tensor_from_data(YT_I64, 1, s1, r.ap_class_index),
        yt_tensor_from_data(YT_F64, 2, sc, r.p_curve),
        yt_tensor_from_data(YT_F64, 2, sc, r.r_curve),
        yt_tensor_from_data(YT_F64, 2, sc, r.f1_curve),
        yt_tensor_from_data(YT_F64, 1, sx, r.x),
        yt_tensor_from_data(YT_F64, 2, sc, r.prec_values),
        yt_tensor_from_data(YT_I64, 1, s1, r.nt),
        yt_tensor_from_data(YT_U8, 1, s1, r.has_prec),
    };
    static const char *names[14] = {"tp",      "fp",      "p",        "r", "f1",          "ap", "ap_class_index",
                                    "p_curve", "r_curve", "f1_curve", "x", "prec_values", "nt", "has_prec"};
    int best = r.best_index;
    yt_ap_result_free(&r);
    int ok = 1;
    for (int i = 0; i < 14; i++) ok = ok && t[i];
    if (!ok) {
        for (int i = 0; i < 14; i++)
            if (t[i]) yt_tensor_release(t[i]);
        return yt_lua_core_error(L);
    }
    lua_createtable(L, 0, 16);
    for (int i = 0; i < 14; i++) {
        yt_lua_push_tensor(L, t[i]);
        lua_setfield(L, -2, names[i]);
    }
    lua_pushinteger(L, best);
    lua_setfield(L, -2, "max_f1_index"); /* 0-based index into x */
    lua_pushinteger(L, nc);
    lua_setfield(L, -2, "nc");
    return 1;
}

/* Reads a (N, >=k) tensor into a float array of N*k (first k columns). */
static float *rows_f32(lua_State *L, const yt_tensor *t, int k, const char *what, int64_t *n_out)
{
    char b[96];
    if (t->ndim == 1 && t->shape[0] == 0) {
        *n_out = 0;
        return yt_lua_new_scratch(L, 4, NULL);
    }
    if (t->ndim != 2 || t->shape[1] < k)
        luaL_error(L, "%s: expected (N, %d), got %s", what, k, shape_of(t, b, sizeof b));
    int64_t n = t->shape[0];
    float *o = yt_lua_new_scratch(L, (size_t)n * k * sizeof *o, NULL);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            o[i * k + j] = (float)yt_tensor_elem_f64(t, t->offset + i * t->stride[0] + j * t->stride[1]);
    *n_out = n;
    return o;
}

/* yt.metrics.confusion_matrix_update(matrix (nc+1, nc+1) F64, detections (n,6)|nil, gt_bboxes (m,4), gt_cls (m),
 *                            {conf=0.25, iou=0.45}) -> matrix (updated in place) */
static int l_confusion_matrix_update(lua_State *L)
{
    yt_tensor *mt = yt_lua_check_tensor(L, 1);
    yt_tensor *dt = yt_lua_opt_tensor(L, 2);
    yt_tensor *gb = yt_lua_check_tensor(L, 3), *gc = yt_lua_check_tensor(L, 4);
    char b[96];
    if (mt->dtype != YT_F64 || mt->ndim != 2 || mt->shape[0] != mt->shape[1] || mt->shape[0] < 2 ||
        !yt_is_contiguous(mt))
        return luaL_error(L, "confusion_matrix_update: matrix must be a contiguous square float64 (nc+1, nc+1), got %s",
                          shape_of(mt, b, sizeof b));
    float conf = (float)yt_lua_opt_number_field(L, 5, "conf", YT_PREDICT_CONF),
          iou = (float)yt_lua_opt_number_field(L, 5, "iou", 0.45);
    int nc = (int)mt->shape[0] - 1;
    int64_t nd = 0, ng, ngc;
    float *dets = dt ? rows_f32(L, dt, 6, "confusion_matrix_update detections", &nd) : NULL;
    float *boxes = rows_f32(L, gb, 4, "confusion_matrix_update gt_bboxes", &ng);
    double *cls = flat_f64(L, gc, &ngc);
    if (ngc != ng) return luaL_error(L, "confusion_matrix_update: %d GT boxes but %d classes", (int)ng, (int)ngc);
    int64_t *ci = yt_lua_new_scratch(L, (size_t)ng * sizeof *ci, NULL);
    for (int64_t i = 0; i < ng; i++) ci[i] = (int64_t)cls[i];
    if (yt_confusion_matrix_update(yt_f64(mt), nc, dets, nd, boxes, ci, ng, conf, iou) < 0) return yt_lua_core_error(L);
    lua_pushvalue(L, 1);
    return 1;
}

/* Names for class ids 0..nc-1 from a table that is either 0-based ({[0]="person", ...}) or a 1-based list. */
static const char **class_names(lua_State *L, int idx, int nc)
{
    const char **nm = yt_lua_new_scratch(L, (size_t)(nc ? nc : 1) * sizeof *nm, NULL);
    for (int i = 0; i < nc; i++) nm[i] = NULL;
    if (idx == 0 || !lua_istable(L, idx)) return nm;
    lua_geti(L, idx, 0);
    int zero_based = !lua_isnil(L, -1);
    lua_pop(L, 1);
    for (int i = 0; i < nc; i++) {
        lua_geti(L, idx, zero_based ? i : i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            nm[i] = lua_tostring(L, -1); /* alive: the names table stays on the stack while we draw */
        }
        lua_pop(L, 1);
    }
    return nm;
}

/* yt.metrics.plot_confusion_matrix(matrix, path, {names=, normalize=true}) */
static int l_plot_confusion_matrix(lua_State *L)
{
    yt_tensor *mt = yt_lua_check_tensor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    char b[96];
    if (mt->ndim != 2 || mt->shape[0] != mt->shape[1] || mt->shape[0] < 2)
        return luaL_error(L, "plot_confusion_matrix: matrix must be square (nc+1, nc+1), got %s",
                          shape_of(mt, b, sizeof b));
    int nc = (int)mt->shape[0] - 1;
    int64_t n;
    double *m = flat_f64(L, mt, &n);
    int normalize = yt_lua_opt_bool_field(L, 3, "normalize", 1);
    const char **nm;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "names");
        nm = class_names(L, lua_gettop(L), nc);
    } else {
        nm = class_names(L, 0, nc);
    }
    int rc = yt_plot_confusion_matrix(path, m, nc, nm, normalize);
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

/* labels for k curve rows from opts.names (1-based list) */
static const char **row_labels(lua_State *L, int opts, int k)
{
    if (lua_isnoneornil(L, opts)) return class_names(L, 0, k);
    luaL_checktype(L, opts, LUA_TTABLE);
    lua_getfield(L, opts, "names");
    int t = lua_gettop(L);
    const char **nm = yt_lua_new_scratch(L, (size_t)(k ? k : 1) * sizeof *nm, NULL);
    for (int i = 0; i < k; i++) {
        nm[i] = NULL;
        if (!lua_istable(L, t)) continue;
        lua_geti(L, t, i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            nm[i] = lua_tostring(L, -1); /* alive: the names table stays on the stack while we draw */
        }
        lua_pop(L, 1);
    }
    return nm;
}

static double *curve_rows(lua_State *L, yt_tensor *py, int npts, int *k_out)
{
    char b[96];
    int64_t n;
    if (py->ndim == 1 && py->shape[0] == npts)
        *k_out = 1;
    else if (py->ndim == 2 && py->shape[1] == npts)
        *k_out = (int)py->shape[0];
    else
        luaL_error(L, "plot: curves must be (k, %d), got %s", npts, shape_of(py, b, sizeof b));
    return flat_f64(L, py, &n);
}

/* yt.metrics.plot_pr_curve(path, px (npts), py (k, npts), ap (k) or (k, K) [column 0 used], {names = {k labels}}) */
static int l_plot_pr_curve(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    yt_tensor *px = yt_lua_check_tensor(L, 2), *py = yt_lua_check_tensor(L, 3), *ap = yt_lua_check_tensor(L, 4);
    int64_t npts;
    double *x = flat_f64(L, px, &npts);
    int k;
    double *y = curve_rows(L, py, (int)npts, &k);
    int64_t na;
    double *a = flat_f64(L, ap, &na);
    int cols = ap->ndim == 2 ? (int)ap->shape[1] : 1;
    if (na != (int64_t)k * cols) return luaL_error(L, "plot_pr_curve: ap must have one row per curve");
    double *a50 = yt_lua_new_scratch(L, (size_t)k * sizeof *a50, NULL);
    for (int i = 0; i < k; i++) a50[i] = a[i * cols];
    const char **nm = row_labels(L, 5, k);
    int rc = yt_plot_pr_curve(path, x, (int)npts, y, k, a50, nm);
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

/* yt.metrics.plot_mc_curve(path, px (npts), py (k, npts), {names=, xlabel="Confidence", ylabel="Metric"}) */
static int l_plot_mc_curve(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    yt_tensor *px = yt_lua_check_tensor(L, 2), *py = yt_lua_check_tensor(L, 3);
    int64_t npts;
    double *x = flat_f64(L, px, &npts);
    int k;
    double *y = curve_rows(L, py, (int)npts, &k);
    const char *xl = "Confidence", *yl = "Metric";
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "xlabel");
        if (lua_isstring(L, -1)) xl = lua_tostring(L, -1);
        lua_getfield(L, 4, "ylabel");
        if (lua_isstring(L, -1)) yl = lua_tostring(L, -1);
        /* both strings stay on the stack (alive) until we return */
    }
    const char **nm = row_labels(L, 4, k);
    int rc = yt_plot_mc_curve(path, x, (int)npts, y, k, nm, xl, yl);
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

/* yt.metrics.draw_detections(img (H,W,3) uint8, rows (n,6) x1 y1 x2 y2 conf cls, labels {n strings} | nil,
 *                    {line_width=, font_size=}) -> new (H,W,3) uint8 tensor with the boxes drawn */
static int l_draw_detections(lua_State *L)
{
    yt_tensor *img = yt_lua_check_tensor(L, 1), *rt = yt_lua_check_tensor(L, 2);
    char b[96];
    if (img->dtype != YT_U8 || img->ndim != 3 || img->shape[2] != 3)
        return luaL_error(L, "draw_detections: image must be a uint8 (H, W, 3) tensor, got %s %s",
                          yt_dtype_name(img->dtype), shape_of(img, b, sizeof b));
    int64_t n;
    float *rows = rows_f32(L, rt, 6, "draw_detections rows", &n);
    const char **labels = yt_lua_new_scratch(L, (size_t)(n ? n : 1) * sizeof *labels, NULL);
    for (int64_t i = 0; i < n; i++) labels[i] = NULL;
    if (lua_istable(L, 3)) {
        for (int64_t i = 0; i < n; i++) {
            lua_geti(L, 3, i + 1);
            if (lua_type(L, -1) == LUA_TSTRING) labels[i] = lua_tostring(L, -1); /* alive: held by the table */
            lua_pop(L, 1);
        }
    }
    int H = (int)img->shape[0], W = (int)img->shape[1];
    double auto_lw = floor((H + W) / 2.0 * 0.003 + 0.5);
    if (auto_lw < 2) auto_lw = 2;
    double lw = yt_lua_opt_number_field(L, 4, "line_width", auto_lw);
    if (!(lw > 0)) lw = auto_lw;
    double fs = yt_lua_opt_number_field(L, 4, "font_size", 0);
    if (!(fs > 0)) fs = fmax(12.0, lw * 6.0);
    yt_tensor *out = yt_contiguous(img);
    if (!out) return yt_lua_core_error(L);
    if (out == img) { /* never draw on the caller's image */
        yt_tensor_release(out);
        out = yt_tensor_clone(img);
        if (!out) return yt_lua_core_error(L);
    }
    yt_lua_push_tensor(L, out);
    if (yt_draw_detections(yt_u8(out), H, W, rows, (int)n, labels, lw, fs) < 0) return yt_lua_core_error(L);
    return 1;
}

/* yt.metrics.save_image(img (H,W,3) uint8, path [, quality 95]): .png (cairo) or .jpg/.jpeg (SDL2_image) */
static int l_save_image(lua_State *L)
{
    yt_tensor *img = yt_lua_check_tensor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    lua_Integer q = luaL_optinteger(L, 3, 95);
    char b[96];
    if (img->dtype != YT_U8 || img->ndim != 3 || img->shape[2] != 3)
        return luaL_error(L, "save_image: image must be a uint8 (H, W, 3) tensor, got %s %s", yt_dtype_name(img->dtype),
                          shape_of(img, b, sizeof b));
    yt_tensor *c = yt_contiguous(img);
    if (!c) return yt_lua_core_error(L);
    int rc = yt_image_save(path, yt_u8(c), (int)img->shape[0], (int)img->shape[1], (int)q);
    yt_tensor_release(c);
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

static double *number_list(lua_State *L, int idx, int n, const char *what)
{
    double *o = yt_lua_new_scratch(L, (size_t)(n ? n : 1) * sizeof *o, NULL);
    for (int i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        int ok;
        o[i] = lua_tonumberx(L, -1, &ok);
        if (!ok) o[i] = NAN; /* missing values are gaps */
        lua_pop(L, 1);
    }
    (void)what;
    return o;
}

/* yt.metrics.plot_results(path, titles {k}, x {npts}, ys {k lists of npts}, ysmooth {k lists} | nil [, label]) */
static int l_plot_results(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    int k = (int)luaL_len(L, 2), npts = (int)luaL_len(L, 3);
    if (k < 1 || k > 64) return luaL_error(L, "plot_results: 1..64 plots, got %d", k);
    if ((int)luaL_len(L, 4) != k) return luaL_error(L, "plot_results: %d titles but %d series", k, (int)luaL_len(L, 4));
    const char **titles = yt_lua_new_scratch(L, (size_t)k * sizeof *titles, NULL);
    for (int i = 0; i < k; i++) {
        lua_geti(L, 2, i + 1);
        titles[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* strings stay alive in the titles table */
    }
    double *x = number_list(L, 3, npts, "x");
    double *y = yt_lua_new_scratch(L, (size_t)(k * (npts ? npts : 1)) * sizeof *y, NULL);
    double *ys = NULL;
    int smooth = lua_istable(L, 5);
    if (smooth) ys = yt_lua_new_scratch(L, (size_t)(k * (npts ? npts : 1)) * sizeof *ys, NULL);
    for (int i = 0; i < k; i++) {
        lua_geti(L, 4, i + 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "plot_results: series %d is not a list", i + 1);
        double *row = number_list(L, lua_gettop(L), npts, "y");
        memcpy(y + (size_t)i * npts, row, (size_t)npts * sizeof *row);
        lua_pop(L, 2);
        if (smooth) {
            lua_geti(L, 5, i + 1);
            if (!lua_istable(L, -1)) return luaL_error(L, "plot_results: smooth series %d is not a list", i + 1);
            row = number_list(L, lua_gettop(L), npts, "ysmooth");
            memcpy(ys + (size_t)i * npts, row, (size_t)npts * sizeof *row);
            lua_pop(L, 2);
        }
    }
    const char *label = luaL_optstring(L, 6, "results");
    if (yt_plot_results(path, k, titles, x, npts, y, ys, label) < 0) return yt_lua_core_error(L);
    return 0;
}

/* yt.metrics.plot_labels(path, bboxes (N, 4) normalised xywh, cls (N) or (N, 1), {nc = at least max class + 1, names =
 * {...}})
 * -> labels.jpg; yt.metrics.plot_labels_correlogram(path, bboxes) -> labels_correlogram.jpg */
static int l_plot_labels(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    yt_tensor *bt = yt_lua_check_tensor(L, 2), *ct = yt_lua_check_tensor(L, 3);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    int64_t n, ncls;
    float *boxes = rows_f32(L, bt, 4, "plot_labels bboxes", &n);
    double *cd = flat_f64(L, ct, &ncls);
    if (ncls != n) return luaL_error(L, "plot_labels: %I boxes but %I classes", (lua_Integer)n, (lua_Integer)ncls);
    float *cls = yt_lua_new_scratch(L, (size_t)n * sizeof *cls, NULL);
    double top = -1;
    for (int64_t i = 0; i < n; i++) {
        cls[i] = (float)cd[i];
        if (cd[i] > top) top = cd[i];
    }
    double nc = yt_lua_opt_number_field(L, 4, "nc", 1);
    if (top >= nc) nc = floor(top) + 1; /* every class present gets its bar */
    if (!(nc >= 1 && nc <= YT_DATA_MAX_CLASSES) || nc != floor(nc))
        return luaL_error(L, "plot_labels: nc must be an integer in 1..%d, got %g", YT_DATA_MAX_CLASSES, nc);
    const char **names = NULL;
    if (!lua_isnoneornil(L, 4)) {
        lua_getfield(L, 4, "names");
        if (!lua_isnil(L, -1)) names = class_names(L, lua_gettop(L), (int)nc);
    }
    if (yt_plot_labels(path, cls, boxes, n, (int)nc, names) < 0) return yt_lua_core_error(L);
    return 0;
}

static int l_plot_labels_correlogram(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int64_t n;
    float *boxes = rows_f32(L, yt_lua_check_tensor(L, 2), 4, "plot_labels_correlogram bboxes", &n);
    if (yt_plot_labels_correlogram(path, boxes, n) < 0) return yt_lua_core_error(L);
    return 0;
}

/* yt.metrics.plot_class_color(cls) -> r, g, b (0..255): the class colour of every plot */
static int l_plot_class_color(lua_State *L)
{
    uint8_t rgb[3];
    yt_plot_class_color((int)(luaL_checkinteger(L, 1) % 20), rgb);
    for (int k = 0; k < 3; k++) lua_pushinteger(L, rgb[k]);
    return 3;
}

static const luaL_Reg functions[] = {
    {"plot_labels", l_plot_labels},
    {"plot_labels_correlogram", l_plot_labels_correlogram},
    {"plot_class_color", l_plot_class_color},
    {"draw_detections", l_draw_detections},
    {"save_image", l_save_image},
    {"plot_results", l_plot_results},
    {"nms", l_nms},
    {"box_iou", l_box_iou},
    {"match_predictions", l_match_predictions},
    {"iou_thresholds", l_iou_thresholds},
    {"ap_per_class", l_ap_per_class},
    {"confusion_matrix_update", l_confusion_matrix_update},
    {"plot_confusion_matrix", l_plot_confusion_matrix},
    {"plot_pr_curve", l_plot_pr_curve},
    {"plot_mc_curve", l_plot_mc_curve},
    {NULL, NULL},
};

void yt_lua_open_metrics(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
