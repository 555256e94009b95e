/* Data pipeline bindings (yolotrain.core):
 *   data_list_images(path | {paths})              -> {files}
 *   data_dataset({files}, opts)                   -> Dataset userdata
 *   data_loader(ds, batch, workers, shuffle, seed[, world, rank]) -> Loader userdata (sharded when world > 1)
 *   data_load_image(path)                          -> uint8 tensor H x W x 3 (RGB, EXIF applied)
 *   data_letterbox(img, H, W [, scaleup])          -> uint8 tensor H x W x 3, {r, dw, dh, left, top}
 *   data_plot_batch(batch, names, path [, conf])   -> writes a JPEG/PNG grid with boxes, names (and confidences)
 *   plot_box_label(name | nil, cls [, conf])       -> "person" / "person 0.87", the text on a plotted box
 * A batch is a table: img (uint8 B x 3 x H x W), cls (N x 1), bboxes (N x 4 normalised xywh), batch_idx (N),
 * im_file, ori_shape {{h,w}}, ratio_pad {{{rh,rw},{padw,padh}}}, resized_shape {{h,w}}. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/plot.h"
#include "lua/yt_lua.h"
#include "ops/shape_ops.h"

#define DATASET_MT "yt.DataDataset"
#define LOADER_MT "yt.DataLoader"

typedef struct {
    yt_dataset *ds;
} ds_box;

typedef struct {
    yt_loader *l;
    int workers;
} loader_box;

/* ---- helpers ---- */

static void check_string_list(lua_State *L, int idx, yt_strlist *out)
{
    memset(out, 0, sizeof *out);
    if (lua_type(L, idx) == LUA_TSTRING) {
        yt_strlist_push(out, lua_tostring(L, idx));
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    for (int i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        const char *s = lua_tostring(L, -1);
        if (!s) {
            yt_strlist_free(out);
            luaL_error(L, "entry %d of the path list is not a string", i);
        }
        yt_strlist_push(out, s);
        lua_pop(L, 1);
    }
}

static void push_strlist(lua_State *L, const yt_strlist *l)
{
    lua_createtable(L, l->n, 0);
    for (int i = 0; i < l->n; i++) {
        lua_pushstring(L, l->v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static double opt_num_field(lua_State *L, int t, const char *k, double def)
{
    lua_getfield(L, t, k);
    double v = def;
    if (lua_isnumber(L, -1)) v = lua_tonumber(L, -1);
    else if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
    else if (!lua_isnil(L, -1)) {
        lua_pop(L, 1);
        luaL_error(L, "option '%s' must be a number", k);
    }
    lua_pop(L, 1);
    return v;
}

/* An integer option: a number that is whole and fits an int (a float-to-int cast of anything else is undefined). */
static int opt_int_field(lua_State *L, int t, const char *k, int def)
{
    double v = opt_num_field(L, t, k, def);
    if (!(v == floor(v) && v >= -(double)(1 << 30) && v <= (double)(1 << 30)))
        luaL_error(L, "option '%s' = %g is not an integer in range", k, v);
    return (int)v;
}

static int l_list_images(lua_State *L)
{
    yt_strlist paths, files;
    check_string_list(L, 1, &paths);
    int rc = yt_data_list_images((const char *const *)paths.v, paths.n, &files);
    yt_strlist_free(&paths);
    if (rc < 0) return yt_lua_core_error(L);
    push_strlist(L, &files);
    yt_strlist_free(&files);
    return 1;
}

/* ---- dataset ---- */

static yt_dataset *check_ds(lua_State *L, int idx)
{
    ds_box *b = luaL_checkudata(L, idx, DATASET_MT);
    if (!b->ds) luaL_error(L, "attempt to use a closed dataset");
    return b->ds;
}

static int l_dataset(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    yt_dataset_cfg c;
    yt_dataset_cfg_defaults(&c);
    int t = 2;
    c.imgsz = opt_int_field(L, t, "imgsz", c.imgsz);
    c.augment = opt_int_field(L, t, "augment", 0);
    c.rect = opt_int_field(L, t, "rect", 0);
    c.stride = opt_int_field(L, t, "stride", 32);
    c.pad = opt_num_field(L, t, "pad", 0);
    c.batch_size = opt_int_field(L, t, "batch_size", 16);
    c.mosaic = opt_num_field(L, t, "mosaic", c.mosaic);
    c.degrees = opt_num_field(L, t, "degrees", 0);
    c.translate = opt_num_field(L, t, "translate", c.translate);
    c.scale = opt_num_field(L, t, "scale", c.scale);
    c.shear = opt_num_field(L, t, "shear", 0);
    c.perspective = opt_num_field(L, t, "perspective", 0);
    c.flipud = opt_num_field(L, t, "flipud", 0);
    c.fliplr = opt_num_field(L, t, "fliplr", c.fliplr);
    c.hsv_h = opt_num_field(L, t, "hsv_h", c.hsv_h);
    c.hsv_s = opt_num_field(L, t, "hsv_s", c.hsv_s);
    c.hsv_v = opt_num_field(L, t, "hsv_v", c.hsv_v);
    c.mixup = opt_num_field(L, t, "mixup", 0);
    c.cache_ram = opt_int_field(L, t, "cache_ram", 0);
    c.use_label_cache = opt_int_field(L, t, "label_cache", 1);
    c.single_cls = opt_int_field(L, t, "single_cls", 0);
    c.fraction = opt_num_field(L, t, "fraction", 1.0);
    c.nc = opt_int_field(L, t, "nc", 80);
    lua_getfield(L, t, "prefix");
    c.prefix = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
    int classes[1024], ncls = 0;
    lua_getfield(L, t, "classes");
    if (lua_istable(L, -1)) {
        int n = (int)luaL_len(L, -1);
        for (int i = 1; i <= n && ncls < 1024; i++) {
            lua_geti(L, -1, i);
            classes[ncls++] = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    } else if (lua_isinteger(L, -1)) {
        classes[ncls++] = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    c.classes = ncls ? classes : NULL;
    c.nclasses = ncls;
    if (c.imgsz < 32 || c.batch_size < 1 || c.stride < 1 || c.nc < 1 || c.nc > YT_DATA_MAX_CLASSES)
        return luaL_error(L, "dataset: invalid imgsz %d, batch %d, stride %d or nc %d (1..%d)", c.imgsz, c.batch_size,
                          c.stride, c.nc, YT_DATA_MAX_CLASSES);
    yt_strlist files; /* listed last: an error raised above would leak it */
    check_string_list(L, 1, &files);
    ds_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->ds = NULL;
    luaL_setmetatable(L, DATASET_MT);
    b->ds = yt_dataset_create((const char *const *)files.v, files.n, &c);
    yt_strlist_free(&files);
    if (!b->ds) return yt_lua_core_error(L);
    return 1;
}

static int ds_gc(lua_State *L)
{
    ds_box *b = luaL_checkudata(L, 1, DATASET_MT);
    if (b->ds) yt_dataset_destroy(b->ds);
    b->ds = NULL;
    return 0;
}

static int ds_len(lua_State *L)
{
    lua_pushinteger(L, check_ds(L, 1)->n);
    return 1;
}

static int ds_summary(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    lua_pushstring(L, ds->stats.summary);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, ds->stats.nf), lua_setfield(L, -2, "found");
    lua_pushinteger(L, ds->stats.nm), lua_setfield(L, -2, "missing");
    lua_pushinteger(L, ds->stats.ne), lua_setfield(L, -2, "empty");
    lua_pushinteger(L, ds->stats.nc), lua_setfield(L, -2, "corrupt");
    lua_pushboolean(L, ds->stats.from_cache), lua_setfield(L, -2, "from_cache");
    lua_pushstring(L, ds->stats.cache_path), lua_setfield(L, -2, "cache_path");
    return 2;
}

static int ds_msgs(lua_State *L)
{
    push_strlist(L, &check_ds(L, 1)->msgs);
    return 1;
}

static int ds_im_files(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    lua_createtable(L, ds->n, 0);
    for (int i = 0; i < ds->n; i++) {
        lua_pushstring(L, ds->labels[i].im_file);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* labels(i) (1-based) -> {im_file, shape = {h, w}, cls = N x 1, bboxes = N x 4 normalised xywh} */
static int ds_labels(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && i <= ds->n, 2, "index out of range");
    const yt_label_entry *e = ds->labels + (i - 1);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, e->im_file);
    lua_setfield(L, -2, "im_file");
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, e->h), lua_rawseti(L, -2, 1);
    lua_pushinteger(L, e->w), lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, "shape");
    int64_t s1[2] = {e->n, 1}, s4[2] = {e->n, 4};
    yt_lua_push_tensor(L, yt_tensor_from_data(YT_F32, 2, s1, e->cls ? e->cls : (const float *)"\0\0\0"));
    lua_setfield(L, -2, "cls");
    yt_lua_push_tensor(L, yt_tensor_from_data(YT_F32, 2, s4, e->xywhn ? e->xywhn : (const float *)"\0\0\0"));
    lua_setfield(L, -2, "bboxes");
    return 1;
}

/* ds:all_labels() -> cls (N, 1), bboxes (N, 4) normalised xywh: every image's labels in dataset order */
static int ds_all_labels(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    int64_t n = 0;
    for (int i = 0; i < ds->n; i++) n += ds->labels[i].n;
    int64_t s1[2] = {n, 1}, s4[2] = {n, 4};
    yt_tensor *cls = yt_tensor_empty(YT_F32, 2, s1);
    yt_lua_push_tensor(L, cls);
    yt_tensor *boxes = yt_tensor_empty(YT_F32, 2, s4);
    yt_lua_push_tensor(L, boxes); /* both raise on a failed allocation; the first is then collected */
    int64_t k = 0;
    for (int i = 0; i < ds->n; i++) {
        const yt_label_entry *e = ds->labels + i;
        if (e->n < 1) continue;
        memcpy(yt_f32(cls) + k, e->cls, (size_t)e->n * sizeof(float));
        memcpy(yt_f32(boxes) + 4 * k, e->xywhn, (size_t)e->n * 4 * sizeof(float));
        k += e->n;
    }
    return 2;
}

static int ds_batch_shapes(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    if (!ds->batch_shapes) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, ds->nb, 0);
    for (int b = 0; b < ds->nb; b++) {
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, ds->batch_shapes[2 * b]), lua_rawseti(L, -2, 1);
        lua_pushinteger(L, ds->batch_shapes[2 * b + 1]), lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, b + 1);
    }
    return 1;
}

static int ds_close_mosaic(lua_State *L)
{
    yt_dataset_close_mosaic(check_ds(L, 1));
    return 0;
}

static int ds_cache_stats(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    lua_pushinteger(L, (lua_Integer)ds->cache_hits);
    lua_pushinteger(L, (lua_Integer)ds->cache_misses);
    return 2;
}

static int ds_index(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "rect") == 0) lua_pushboolean(L, ds->cfg.rect);
    else if (strcmp(k, "augment") == 0) lua_pushboolean(L, ds->cfg.augment);
    else if (strcmp(k, "imgsz") == 0) lua_pushinteger(L, ds->cfg.imgsz);
    else if (strcmp(k, "batch_size") == 0) lua_pushinteger(L, ds->cfg.batch_size);
    else if (strcmp(k, "mosaic") == 0) lua_pushnumber(L, ds->cfg.mosaic);
    else if (strcmp(k, "mixup") == 0) lua_pushnumber(L, ds->cfg.mixup);
    else {
        luaL_getmetatable(L, DATASET_MT);
        lua_getfield(L, -1, "__methods");
        lua_getfield(L, -1, k);
    }
    return 1;
}

/* ---- batches ---- */

static void push_batch(lua_State *L, yt_batch *b)
{
    lua_createtable(L, 0, 8);
    yt_tensor *ts[4] = {b->img, b->cls, b->bboxes, b->batch_idx};
    const char *names[4] = {"img", "cls", "bboxes", "batch_idx"};
    for (int k = 0; k < 4; k++) {
        yt_lua_push_tensor(L, ts[k]); /* takes over the batch's reference */
        lua_setfield(L, -2, names[k]);
    }
    b->img = b->cls = b->bboxes = b->batch_idx = NULL;
    lua_createtable(L, b->B, 0);
    for (int i = 0; i < b->B; i++) {
        lua_pushstring(L, b->im_file[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "im_file");
    lua_createtable(L, b->B, 0);
    for (int i = 0; i < b->B; i++) {
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, b->ori_shape[2 * i]), lua_rawseti(L, -2, 1);
        lua_pushinteger(L, b->ori_shape[2 * i + 1]), lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "ori_shape");
    lua_createtable(L, b->B, 0);
    for (int i = 0; i < b->B; i++) {
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, b->resized_shape[2 * i]), lua_rawseti(L, -2, 1);
        lua_pushinteger(L, b->resized_shape[2 * i + 1]), lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "resized_shape");
    lua_createtable(L, b->B, 0);
    for (int i = 0; i < b->B; i++) {
        lua_createtable(L, 2, 0);
        lua_createtable(L, 2, 0);
        lua_pushnumber(L, b->ratio_pad[4 * i]), lua_rawseti(L, -2, 1);
        lua_pushnumber(L, b->ratio_pad[4 * i + 1]), lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, 1);
        lua_createtable(L, 2, 0);
        lua_pushnumber(L, b->ratio_pad[4 * i + 2]), lua_rawseti(L, -2, 1);
        lua_pushnumber(L, b->ratio_pad[4 * i + 3]), lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "ratio_pad");
    lua_createtable(L, b->B, 0);
    for (int i = 0; i < b->B; i++) {
        lua_pushinteger(L, b->index[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "index");
    yt_batch_free(b);
}

/* ---- loader ---- */

static loader_box *check_loader_box(lua_State *L, int idx)
{
    loader_box *b = luaL_checkudata(L, idx, LOADER_MT);
    if (!b->l) luaL_error(L, "attempt to use a closed data loader");
    return b;
}

static int l_loader(lua_State *L)
{
    check_ds(L, 1);
    ds_box *db = lua_touserdata(L, 1);
    lua_Integer batch = luaL_checkinteger(L, 2), workers = luaL_optinteger(L, 3, 0);
    int shuffle = lua_toboolean(L, 4);
    lua_Integer seed = luaL_optinteger(L, 5, 0);
    luaL_argcheck(L, batch >= 1, 2, "batch must be >= 1");
    luaL_argcheck(L, workers >= 0 && workers <= 64, 3, "workers must be 0..64");
    loader_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->l = NULL;
    b->workers = (int)workers;
    luaL_setmetatable(L, LOADER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the dataset alive */
    lua_Integer world = luaL_optinteger(L, 6, 1), rank = luaL_optinteger(L, 7, 0);
    b->l = yt_loader_create(db->ds, (int)batch, (int)workers, shuffle, (uint64_t)seed);
    if (!b->l) return yt_lua_core_error(L);
    if (world > 1 && yt_loader_set_shard(b->l, (int)world, (int)rank) < 0) return yt_lua_core_error(L);
    return 1;
}

static int loader_gc(lua_State *L)
{
    loader_box *b = luaL_checkudata(L, 1, LOADER_MT);
    if (b->l) yt_loader_destroy(b->l);
    b->l = NULL;
    return 0;
}

static int loader_next(lua_State *L)
{
    loader_box *b = check_loader_box(L, 1);
    yt_batch *out;
    int rc = yt_loader_next(b->l, &out);
    if (rc < 0) return yt_lua_core_error(L);
    if (rc == 0) {
        lua_pushnil(L);
        return 1;
    }
    push_batch(L, out);
    return 1;
}

static int loader_build(lua_State *L)
{
    loader_box *b = check_loader_box(L, 1);
    lua_Integer epoch = luaL_checkinteger(L, 2), bi = luaL_checkinteger(L, 3);
    yt_batch *out;
    char err[1024];
    if (yt_loader_build_batch(b->l, (int)epoch, (int)bi - 1, &out, err, sizeof err) < 0) return luaL_error(L, "%s", err);
    push_batch(L, out);
    return 1;
}

static int loader_len(lua_State *L)
{
    lua_pushinteger(L, yt_loader_len(check_loader_box(L, 1)->l));
    return 1;
}

static int loader_set_epoch(lua_State *L)
{
    loader_box *b = check_loader_box(L, 1);
    lua_Integer e = luaL_checkinteger(L, 2);
    luaL_argcheck(L, e >= 0, 2, "epoch must be >= 0");
    yt_loader_set_epoch(b->l, (int)e);
    return 0;
}

static int loader_epoch(lua_State *L)
{
    lua_pushinteger(L, yt_loader_epoch(check_loader_box(L, 1)->l));
    return 1;
}

static int loader_close_mosaic(lua_State *L)
{
    yt_loader_close_mosaic(check_loader_box(L, 1)->l);
    return 0;
}

static int loader_set_mosaic(lua_State *L)
{
    yt_loader *l = check_loader_box(L, 1)->l;
    double p = luaL_checknumber(L, 2);
    luaL_argcheck(L, p >= 0 && p <= 1, 2, "the mosaic probability must be between 0 and 1");
    yt_loader_set_mosaic(l, p);
    return 0;
}

/* ---- images ---- */

static int l_load_image(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    yt_image im;
    if (yt_image_load(path, &im) < 0) return yt_lua_core_error(L);
    int64_t shape[3] = {im.h, im.w, 3};
    yt_tensor *t = yt_tensor_from_data(YT_U8, 3, shape, im.px);
    yt_image_free(&im);
    yt_lua_push_tensor(L, t);
    return 1;
}

static int l_letterbox(lua_State *L)
{
    yt_tensor *t = yt_lua_check_tensor(L, 1);
    lua_Integer H = luaL_checkinteger(L, 2), W = luaL_checkinteger(L, 3);
    int scaleup = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
    if (t->dtype != YT_U8 || t->ndim != 3 || t->shape[2] != 3) return luaL_error(L, "letterbox: expected a uint8 H x W x 3 tensor");
    luaL_argcheck(L, H >= 1 && W >= 1 && H <= 65536 && W <= 65536, 2, "invalid size");
    yt_tensor *c = yt_contiguous(t);
    if (!c) return yt_lua_core_error(L);
    yt_sample s = {0};
    s.h = (int)t->shape[0], s.w = (int)t->shape[1];
    s.px = malloc((size_t)s.h * s.w * 3 + 1);
    if (!s.px) {
        yt_tensor_release(c);
        return luaL_error(L, "out of memory");
    }
    memcpy(s.px, yt_u8(c), (size_t)s.h * s.w * 3);
    yt_tensor_release(c);
    double r = (double)H / s.h < (double)W / s.w ? (double)H / s.h : (double)W / s.w;
    if (!scaleup && r > 1) r = 1;
    if (yt_letterbox(&s, (int)H, (int)W, scaleup) < 0) {
        yt_sample_free(&s);
        return luaL_error(L, "out of memory");
    }
    int64_t shape[3] = {s.h, s.w, 3};
    yt_tensor *o = yt_tensor_from_data(YT_U8, 3, shape, s.px);
    int left = s.pad_left, top = s.pad_top;
    yt_sample_free(&s);
    yt_lua_push_tensor(L, o);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, r), lua_setfield(L, -2, "ratio");
    lua_pushinteger(L, left), lua_setfield(L, -2, "left");
    lua_pushinteger(L, top), lua_setfield(L, -2, "top");
    return 2;
}

/* plot_batch(batch, names, path [, conf (N) float32: predictions, labelled with their confidence]) */
static int l_plot_batch(lua_State *L)
{
    lua_settop(L, 4); /* conf stays at 4 (nil when not given) below the fields pushed next */
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *path = luaL_checkstring(L, 3);
    lua_getfield(L, 1, "img");
    yt_tensor *img = yt_lua_check_tensor(L, -1);
    lua_getfield(L, 1, "cls");
    yt_tensor *cls = yt_lua_opt_tensor(L, -1);
    lua_getfield(L, 1, "bboxes");
    yt_tensor *bb = yt_lua_opt_tensor(L, -1);
    lua_getfield(L, 1, "batch_idx");
    yt_tensor *bi = yt_lua_opt_tensor(L, -1);
    if (img->ndim != 4 || img->shape[1] != 3) return luaL_error(L, "plot_batch: img must be B x 3 x H x W");
    yt_tensor *imgc = NULL;
    if (img->dtype == YT_U8) {
        imgc = yt_contiguous(img);
    } else if (img->dtype == YT_F32) { /* 0..1 floats */
        yt_tensor *f = yt_contiguous(img);
        if (f) {
            imgc = yt_tensor_empty(YT_U8, 4, img->shape);
            if (imgc) {
                const float *p = yt_f32(f);
                for (int64_t i = 0; i < yt_numel(f); i++) {
                    float v = p[i] * 255.f + 0.5f;
                    yt_u8(imgc)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
            yt_tensor_release(f);
        }
    } else {
        return luaL_error(L, "plot_batch: img must be uint8 or float32");
    }
    if (!imgc) return yt_lua_core_error(L);
    int N = 0;
    yt_tensor *cc = NULL, *bc = NULL, *ic = NULL;
    if (cls && bb && bi) {
        N = (int)yt_numel(bi);
        if (cls->dtype != YT_F32 || bb->dtype != YT_F32 || bi->dtype != YT_F32 || yt_numel(cls) != N || yt_numel(bb) != 4 * N) {
            yt_tensor_release(imgc);
            return luaL_error(L, "plot_batch: cls (N x 1), bboxes (N x 4), batch_idx (N) must be float32 and agree");
        }
        cc = yt_contiguous(cls), bc = yt_contiguous(bb), ic = yt_contiguous(bi);
    }
    /* confidences (predictions): one per box, shown on the labels */
    yt_tensor *conf = yt_lua_opt_tensor(L, 4), *fc = NULL;
    if (conf) {
        if (conf->dtype != YT_F32 || yt_numel(conf) != N) {
            yt_tensor_release(imgc);
            yt_tensor_release(cc);
            yt_tensor_release(bc);
            yt_tensor_release(ic);
            return luaL_error(L, "plot_batch: conf must be float32 with one value per box (%d), got %s %d",
                              N, yt_dtype_name(conf->dtype), (int)yt_numel(conf));
        }
        fc = yt_contiguous(conf);
    }
    /* names: table indexed from 0 (or a 1-based list) */
    const char *names[1024] = {0};
    int nn = 0;
    if (lua_istable(L, 2)) {
        lua_geti(L, 2, 0);
        int zero = !lua_isnil(L, -1);
        lua_pop(L, 1);
        for (int c = 0; c < 1024; c++) {
            lua_geti(L, 2, zero ? c : c + 1);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            names[c] = lua_tostring(L, -1); /* stays valid: the table holds the string */
            nn = c + 1;
            lua_pop(L, 1);
        }
    }
    const char *paths[64] = {0};
    lua_getfield(L, 1, "im_file");
    if (lua_istable(L, -1)) {
        int n = (int)luaL_len(L, -1);
        for (int i = 0; i < n && i < 64; i++) {
            lua_geti(L, -1, i + 1);
            paths[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    }
    yt_plot_batch_args a = {0};
    a.img = yt_u8(imgc);
    a.B = (int)imgc->shape[0], a.H = (int)imgc->shape[2], a.W = (int)imgc->shape[3];
    a.N = N;
    a.cls = cc ? yt_f32(cc) : NULL;
    a.bboxes = bc ? yt_f32(bc) : NULL;
    a.batch_idx = ic ? yt_f32(ic) : NULL;
    a.conf = fc ? yt_f32(fc) : NULL;
    a.names = names;
    a.nnames = nn;
    a.paths = paths;
    int rc = yt_plot_batch(&a, path);
    yt_tensor_release(imgc);
    yt_tensor_release(cc);
    yt_tensor_release(bc);
    yt_tensor_release(ic);
    yt_tensor_release(fc);
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

/* plot_box_label(name | nil, cls [, conf]) -> the text on a plotted box: "person" or "person 0.87" */
static int l_plot_box_label(lua_State *L)
{
    const char *name = luaL_optstring(L, 1, NULL);
    lua_Integer cls = luaL_checkinteger(L, 2);
    float conf = (float)luaL_optnumber(L, 3, 0);
    char buf[128];
    yt_plot_box_label(buf, sizeof buf, name, (int)cls, lua_isnoneornil(L, 3) ? NULL : &conf);
    lua_pushstring(L, buf);
    return 1;
}

static const luaL_Reg ds_methods[] = {
    {"size", ds_len}, {"summary", ds_summary}, {"msgs", ds_msgs}, {"im_files", ds_im_files},
    {"labels", ds_labels}, {"all_labels", ds_all_labels}, {"batch_shapes", ds_batch_shapes}, {"close_mosaic", ds_close_mosaic},
    {"cache_stats", ds_cache_stats}, {"close", ds_gc}, {NULL, NULL},
};

static const luaL_Reg loader_methods[] = {
    {"next", loader_next}, {"build", loader_build}, {"set_epoch", loader_set_epoch}, {"epoch", loader_epoch},
    {"close_mosaic", loader_close_mosaic}, {"set_mosaic", loader_set_mosaic}, {"close", loader_gc}, {"len", loader_len}, {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"data_list_images", l_list_images}, {"data_dataset", l_dataset}, {"data_loader", l_loader},
    {"data_load_image", l_load_image}, {"data_letterbox", l_letterbox}, {"data_plot_batch", l_plot_batch},
    {"plot_box_label", l_plot_box_label}, {NULL, NULL},
};

void yt_lua_open_data(lua_State *L, int module_index)
{
    if (luaL_newmetatable(L, DATASET_MT)) {
        lua_pushcfunction(L, ds_gc), lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, ds_gc), lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, ds_len), lua_setfield(L, -2, "__len");
        lua_pushcfunction(L, ds_index), lua_setfield(L, -2, "__index");
        luaL_newlib(L, ds_methods);
        lua_setfield(L, -2, "__methods");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, LOADER_MT)) {
        lua_pushcfunction(L, loader_gc), lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, loader_gc), lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, loader_len), lua_setfield(L, -2, "__len");
        luaL_newlib(L, loader_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, module_index);
    luaL_setfuncs(L, functions, 0);
    lua_pushinteger(L, YT_DATA_MAX_CLASSES);
    lua_setfield(L, -2, "data_max_classes");
    lua_pop(L, 1);
}
