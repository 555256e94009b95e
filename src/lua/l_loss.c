/* Lua binding of the detection loss and its pieces (src/loss):
 *
 *   yt.loss.detect_loss(preds, batch, opts)      -> loss (0-d, differentiable w.r.t. preds), loss_items [3] [, extras]
 *       preds: {p0, p1, p2} raw Detect outputs [B, 4*reg_max+nc, H, W]
 *       batch: {batch_idx = [N], cls = [N,1], bboxes = [N,4] normalised xywh}
 *       opts:  {box=7.5, cls=0.5, dfl=1.5, nc=(from the channels), reg_max=16, strides={8,16,32},
 *               cls_pw=nil|{...}|tensor, topk=10, alpha=0.5, beta=6, extras=false,
 *               global_norm=false (data-parallel: normalise by the sum of target scores over all ranks)}
 *       extras (opts.extras = true): table with anchor_points, stride_tensor, pd_bboxes, pd_scores, gt_labels,
 *               gt_bboxes, mask_gt, target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx,
 *               grad_preds = {...}, target_scores_sum, num_fg, num_gt, loss_raw = {box, cls, dfl}
 *   yt.loss.bbox_iou(a, b, {xywh=false, ciou=false, diou=false, giou=false}) -> [..., 1], differentiable (a and b)
 *   yt.loss.task_aligned_assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt,
 *                          {topk=10, alpha=0.5, beta=6, eps=1e-9, num_classes=C})
 *       -> {target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx}
 *   yt.loss.make_anchors(feats_or_shapes, strides, offset=0.5) -> anchor_points [A,2], stride_tensor [A,1]
 *       feats_or_shapes: list of [B,C,H,W] tensors or of {H, W}
 *   yt.loss.dfl_loss(pred_dist [N*4,R], target [N,4]) -> [N,1], differentiable w.r.t. pred_dist
 *   yt.loss.bce_with_logits(pred, target, weight?) -> 0-d sum, differentiable w.r.t. pred and target
 *   yt.loss.xywh2xyxy(t), yt.loss.xyxy2xywh(t), yt.loss.dist2bbox(dist, anchors, xywh=false),
 * yt.loss.bbox2dist(anchors, boxes, max_dist=15) -> new tensors (no autograd); dist/boxes [..., A, 4] with anchors [A,
 * 2]. */
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "loss/assigner.h"
#include "loss/bbox.h"
#include "loss/detect_loss.h"
#include "lua/yt_lua.h"
#ifdef YT_HAVE_MPI
#include "distributed/dist.h"
#include "ops/shape_ops.h"

/* opts.global_norm: normalise by the target-score sum of the whole data-parallel batch */
static double sum_over_ranks(double local, void *userdata)
{
    (void)userdata;
    double v = local;
    return yt_dist_allreduce_f64(&v, 1, YT_DIST_SUM) < 0 ? -1.0 : v;
}
#endif

static void set_tensor_field(lua_State *L, int tbl, const char *key, yt_tensor *t)
{
    if (!t) return;
    yt_tensor_retain(t);
    yt_lua_push_tensor(L, t);
    lua_setfield(L, tbl, key);
}

static void push_assign(lua_State *L, yt_tal_result *r)
{
    lua_newtable(L);
    int tbl = lua_gettop(L);
    set_tensor_field(L, tbl, "target_labels", r->target_labels);
    set_tensor_field(L, tbl, "target_bboxes", r->target_bboxes);
    set_tensor_field(L, tbl, "target_scores", r->target_scores);
    set_tensor_field(L, tbl, "fg_mask", r->fg_mask);
    set_tensor_field(L, tbl, "target_gt_idx", r->target_gt_idx);
}

static const yt_tensor *batch_field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    if (!luaL_testudata(L, -1, YT_TENSOR_MT)) luaL_error(L, "detect_loss: batch.%s must be a tensor", key);
    yt_tensor *t = yt_lua_check_tensor(L, -1);
    lua_pop(L, 1); /* the batch table keeps it alive */
    return t;
}

static int l_detect_loss(lua_State *L)
{
    yt_tensor *preds[YT_DETECT_MAX_LEVELS];
    int nl = yt_lua_check_tensor_list(L, 1, preds, YT_DETECT_MAX_LEVELS);
    if (nl < 1) return luaL_argerror(L, 1, "need at least one level");
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    yt_detect_targets tg = {batch_field(L, 2, "batch_idx"), batch_field(L, 2, "cls"), batch_field(L, 2, "bboxes")};

    yt_detect_loss_cfg cfg;
    int reg_max = (int)yt_lua_opt_number_field(L, 3, "reg_max", 16);
    int nc_default = preds[0]->ndim == 4 ? (int)preds[0]->shape[1] - 4 * reg_max : 0;
    yt_detect_loss_cfg_default(&cfg, (int)yt_lua_opt_number_field(L, 3, "nc", nc_default));
    cfg.reg_max = reg_max;
    cfg.nl = nl;
    cfg.box = (float)yt_lua_opt_number_field(L, 3, "box", 7.5);
    cfg.cls = (float)yt_lua_opt_number_field(L, 3, "cls", 0.5);
    cfg.dfl = (float)yt_lua_opt_number_field(L, 3, "dfl", 1.5);
    cfg.topk = (int)yt_lua_opt_number_field(L, 3, "topk", 10);
    cfg.alpha = (float)yt_lua_opt_number_field(L, 3, "alpha", 0.5);
    cfg.beta = (float)yt_lua_opt_number_field(L, 3, "beta", 6.0);
    for (int l = 0; l < YT_DETECT_MAX_LEVELS; l++) cfg.strides[l] = (float)(8 << l);
    int want_extras = yt_lua_opt_bool_field(L, 3, "extras", 0);
    if (!lua_isnoneornil(L, 3)) {
        lua_getfield(L, 3, "strides");
        if (!lua_isnil(L, -1)) {
            if (lua_istable(L, -1)) {
                if ((int)luaL_len(L, -1) != nl)
                    return luaL_error(L, "detect_loss: %d strides for %d levels", (int)luaL_len(L, -1), nl);
                for (int l = 0; l < nl; l++) {
                    lua_geti(L, -1, l + 1);
                    cfg.strides[l] = (float)luaL_checknumber(L, -1);
                    lua_pop(L, 1);
                }
            } else {
                return luaL_error(L, "detect_loss: strides must be a table");
            }
        }
        lua_pop(L, 1);
    }
    /* class weights: a table or a tensor of nc numbers; copied into Lua-owned memory */
    float *pw = NULL;
    if (!lua_isnoneornil(L, 3)) {
        lua_getfield(L, 3, "cls_pw");
        int t = lua_gettop(L);
        if (!lua_isnil(L, t)) {
            if (cfg.nc < 1) return luaL_error(L, "detect_loss: cls_pw needs nc >= 1");
            pw = lua_newuserdatauv(L, sizeof(float) * (size_t)cfg.nc, 0);
            if (lua_istable(L, t)) {
                if ((int)luaL_len(L, t) != cfg.nc)
                    return luaL_error(L, "detect_loss: cls_pw has %d entries, nc is %d", (int)luaL_len(L, t), cfg.nc);
                for (int c = 0; c < cfg.nc; c++) {
                    lua_geti(L, t, c + 1);
                    pw[c] = (float)luaL_checknumber(L, -1);
                    lua_pop(L, 1);
                }
            } else {
                yt_tensor *w = yt_lua_check_tensor(L, t);
                if (w->dtype != YT_F32 || yt_numel(w) != cfg.nc || !yt_is_contiguous(w))
                    return luaL_error(L, "detect_loss: cls_pw must be a contiguous float32 tensor of %d values",
                                      cfg.nc);
                memcpy(pw, yt_f32(w), sizeof(float) * (size_t)cfg.nc);
            }
            /* the userdata stays on the stack until we return */
        }
    }
    cfg.cls_pw = pw;
    if (yt_lua_opt_bool_field(L, 3, "global_norm", 0)) {
#ifdef YT_HAVE_MPI
        if (yt_dist_is_initialized() && yt_dist_size() > 1) cfg.reduce_score_sum = sum_over_ranks;
#else
        return luaL_error(L, "detect_loss: global_norm needs a build with MPI");
#endif
    }

    yt_detect_loss_extras ex;
    yt_tensor *loss = NULL;
    float items[3];
    if (yt_detect_loss(preds, &tg, &cfg, &loss, items, want_extras ? &ex : NULL) < 0) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, loss);
    int64_t s3[1] = {3};
    yt_tensor *it = yt_tensor_from_data(YT_F32, 1, s3, items);
    if (!it) {
        if (want_extras) yt_detect_loss_extras_free(&ex);
        return yt_lua_core_error(L);
    }
    yt_lua_push_tensor(L, it);
    if (!want_extras) return 2;
    lua_newtable(L);
    int tbl = lua_gettop(L);
    set_tensor_field(L, tbl, "anchor_points", ex.anchor_points);
    set_tensor_field(L, tbl, "stride_tensor", ex.stride_tensor);
    set_tensor_field(L, tbl, "pd_bboxes", ex.pd_bboxes);
    set_tensor_field(L, tbl, "pd_scores", ex.pd_scores);
    set_tensor_field(L, tbl, "gt_labels", ex.gt_labels);
    set_tensor_field(L, tbl, "gt_bboxes", ex.gt_bboxes);
    set_tensor_field(L, tbl, "mask_gt", ex.mask_gt);
    set_tensor_field(L, tbl, "target_labels", ex.assign.target_labels);
    set_tensor_field(L, tbl, "target_bboxes", ex.assign.target_bboxes);
    set_tensor_field(L, tbl, "target_scores", ex.assign.target_scores);
    set_tensor_field(L, tbl, "fg_mask", ex.assign.fg_mask);
    set_tensor_field(L, tbl, "target_gt_idx", ex.assign.target_gt_idx);
    lua_newtable(L);
    for (int l = 0; l < nl; l++) {
        yt_tensor_retain(ex.grad_preds[l]);
        yt_lua_push_tensor(L, ex.grad_preds[l]);
        lua_seti(L, -2, l + 1);
    }
    lua_setfield(L, tbl, "grad_preds");
    lua_pushnumber(L, ex.target_scores_sum);
    lua_setfield(L, tbl, "target_scores_sum");
    lua_pushinteger(L, ex.num_fg);
    lua_setfield(L, tbl, "num_fg");
    lua_pushinteger(L, ex.num_gt);
    lua_setfield(L, tbl, "num_gt");
    lua_createtable(L, 3, 0);
    for (int k = 0; k < 3; k++) {
        lua_pushnumber(L, ex.loss_raw[k]);
        lua_seti(L, -2, k + 1);
    }
    lua_setfield(L, tbl, "loss_raw");
    yt_detect_loss_extras_free(&ex);
    return 3;
}

static int l_bbox_iou(lua_State *L)
{
    yt_tensor *a = yt_lua_check_tensor(L, 1), *b = yt_lua_check_tensor(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    int xywh = yt_lua_opt_bool_field(L, 3, "xywh", 0);
    yt_iou_kind kind = YT_IOU;
    if (yt_lua_opt_bool_field(L, 3, "ciou", 0) || yt_lua_opt_bool_field(L, 3, "CIoU", 0))
        kind = YT_CIOU;
    else if (yt_lua_opt_bool_field(L, 3, "diou", 0) || yt_lua_opt_bool_field(L, 3, "DIoU", 0))
        kind = YT_DIOU;
    else if (yt_lua_opt_bool_field(L, 3, "giou", 0) || yt_lua_opt_bool_field(L, 3, "GIoU", 0))
        kind = YT_GIOU;
    yt_lua_push_tensor(L, yt_bbox_iou(a, b, kind, xywh));
    return 1;
}

static int l_task_aligned_assign(lua_State *L)
{
    yt_tensor *in[6];
    for (int i = 0; i < 6; i++) in[i] = yt_lua_check_tensor(L, i + 1);
    if (!lua_isnoneornil(L, 7)) luaL_checktype(L, 7, LUA_TTABLE);
    yt_tal_cfg cfg;
    int64_t C = in[0]->ndim == 3 ? in[0]->shape[2] : 0;
    yt_tal_cfg_default(&cfg, (int)yt_lua_opt_number_field(L, 7, "num_classes", (double)C));
    cfg.topk = (int)yt_lua_opt_number_field(L, 7, "topk", 10);
    cfg.alpha = (float)yt_lua_opt_number_field(L, 7, "alpha", 0.5);
    cfg.beta = (float)yt_lua_opt_number_field(L, 7, "beta", 6.0);
    cfg.eps = (float)yt_lua_opt_number_field(L, 7, "eps", 1e-9);
    yt_tal_result r;
    if (yt_task_aligned_assign(in[0], in[1], in[2], in[3], in[4], in[5], &cfg, &r) < 0) return yt_lua_core_error(L);
    push_assign(L, &r);
    yt_tal_result_free(&r);
    return 1;
}

static int l_make_anchors(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    float offset = (float)luaL_optnumber(L, 3, 0.5);
    int nl = (int)luaL_len(L, 1);
    if (nl < 1 || nl > YT_DETECT_MAX_LEVELS) return luaL_argerror(L, 1, "1 to 8 levels");
    if ((int)luaL_len(L, 2) != nl)
        return luaL_error(L, "make_anchors: %d levels but %d strides", nl, (int)luaL_len(L, 2));
    int64_t hw[2 * YT_DETECT_MAX_LEVELS];
    float strides[YT_DETECT_MAX_LEVELS];
    for (int l = 0; l < nl; l++) {
        lua_geti(L, 1, l + 1);
        if (luaL_testudata(L, -1, YT_TENSOR_MT)) {
            yt_tensor *t = yt_lua_check_tensor(L, -1);
            if (t->ndim < 2) return luaL_error(L, "make_anchors: feature %d needs at least 2 dimensions", l + 1);
            hw[2 * l] = t->shape[t->ndim - 2];
            hw[2 * l + 1] = t->shape[t->ndim - 1];
        } else if (lua_istable(L, -1)) {
            lua_geti(L, -1, 1);
            lua_geti(L, -2, 2);
            hw[2 * l] = luaL_checkinteger(L, -2);
            hw[2 * l + 1] = luaL_checkinteger(L, -1);
            lua_pop(L, 2);
        } else {
            return luaL_error(L, "make_anchors: level %d must be a tensor or {H, W}", l + 1);
        }
        lua_pop(L, 1);
        lua_geti(L, 2, l + 1);
        strides[l] = (float)luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    yt_tensor *pts, *st;
    if (yt_make_anchors(nl, hw, strides, offset, &pts, &st) < 0) return yt_lua_core_error(L);
    yt_lua_push_tensor(L, pts);
    yt_lua_push_tensor(L, st);
    return 2;
}

static int l_dfl_loss(lua_State *L)
{
    yt_lua_push_tensor(L, yt_dfl_loss(yt_lua_check_tensor(L, 1), yt_lua_check_tensor(L, 2)));
    return 1;
}

static int l_bce_with_logits(lua_State *L)
{
    yt_lua_push_tensor(
        L, yt_bce_with_logits(yt_lua_check_tensor(L, 1), yt_lua_check_tensor(L, 2), yt_lua_opt_tensor(L, 3)));
    return 1;
}

/* box helpers without autograd */
static yt_tensor *check_boxes(lua_State *L, int idx, int last)
{
    yt_tensor *t = yt_lua_check_tensor(L, idx);
    if (t->dtype != YT_F32 || t->ndim < 1 || t->shape[t->ndim - 1] != last)
        luaL_error(L, "expected a float32 tensor with a last dimension of %d", last);
    return t;
}

static int box_convert(lua_State *L, int to_xyxy)
{
    yt_tensor *t = yt_contiguous(check_boxes(L, 1, 4));
    if (!t) return yt_lua_core_error(L);
    yt_tensor *o = yt_tensor_empty_like(t);
    if (o) {
        if (to_xyxy)
            yt_xywh2xyxy(yt_f32(t), yt_f32(o), yt_numel(t) / 4);
        else
            yt_xyxy2xywh(yt_f32(t), yt_f32(o), yt_numel(t) / 4);
    }
    yt_tensor_release(t);
    yt_lua_push_tensor(L, o);
    return 1;
}

static int l_xywh2xyxy(lua_State *L) { return box_convert(L, 1); }
static int l_xyxy2xywh(lua_State *L) { return box_convert(L, 0); }

static int l_dist2bbox(lua_State *L)
{
    yt_tensor *d = check_boxes(L, 1, 4), *a = check_boxes(L, 2, 2);
    int xywh = lua_toboolean(L, 3);
    int64_t A = yt_numel(a) / 2, n = yt_numel(d) / 4;
    if (A < 1 || n % A != 0) return luaL_error(L, "dist2bbox: %d boxes for %d anchors", (int)n, (int)A);
    yt_tensor *dc = yt_contiguous(d), *ac = dc ? yt_contiguous(a) : NULL;
    yt_tensor *o = ac ? yt_tensor_empty_like(dc) : NULL;
    if (o)
        for (int64_t r = 0; r < n / A; r++)
            yt_dist2bbox(yt_f32(dc) + 4 * A * r, yt_f32(ac), yt_f32(o) + 4 * A * r, A, xywh);
    yt_tensor_release(dc);
    yt_tensor_release(ac);
    yt_lua_push_tensor(L, o);
    return 1;
}

static int l_bbox2dist(lua_State *L)
{
    yt_tensor *a = check_boxes(L, 1, 2), *b = check_boxes(L, 2, 4);
    float max_dist = (float)luaL_optnumber(L, 3, 15);
    int64_t A = yt_numel(a) / 2, n = yt_numel(b) / 4;
    if (A < 1 || n % A != 0) return luaL_error(L, "bbox2dist: %d boxes for %d anchors", (int)n, (int)A);
    yt_tensor *bc = yt_contiguous(b), *ac = bc ? yt_contiguous(a) : NULL;
    yt_tensor *o = ac ? yt_tensor_empty_like(bc) : NULL;
    if (o)
        for (int64_t r = 0; r < n / A; r++)
            yt_bbox2dist(yt_f32(ac), yt_f32(bc) + 4 * A * r, yt_f32(o) + 4 * A * r, A, max_dist);
    yt_tensor_release(bc);
    yt_tensor_release(ac);
    yt_lua_push_tensor(L, o);
    return 1;
}

static const luaL_Reg functions[] = {
    {"detect_loss", l_detect_loss},
    {"bbox_iou", l_bbox_iou},
    {"task_aligned_assign", l_task_aligned_assign},
    {"make_anchors", l_make_anchors},
    {"dfl_loss", l_dfl_loss},
    {"bce_with_logits", l_bce_with_logits},
    {"xywh2xyxy", l_xywh2xyxy},
    {"xyxy2xywh", l_xyxy2xywh},
    {"dist2bbox", l_dist2bbox},
    {"bbox2dist", l_bbox2dist},
    {NULL, NULL},
};

void yt_lua_open_loss(lua_State *L, int module_index)
{
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
