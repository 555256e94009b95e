/* Data pipeline bindings (yolotrain.core); lua/yolotrain/data/dataset.lua drives them:
 *   data_list_images(path | {paths})              -> {files}
 *   data_scan({files}, {nc, single_cls, label_cache, prefix}) -> labels, stats, msgs: the verified label table
 *       (entries {im_file, shape = {h, w}, cls = N x 1, bboxes = N x 4 normalised xywh[, segments = {M x 2}]})
 *   data_dataset(labels, {imgsz, augment, stride, pad, batch_size, cache_ram, nc}) -> Dataset userdata
 *   ds:set_rect() -> {old index of each position}; ds:set_transforms({{"mosaic", p = 1}, ...});
 *   ds:set_image_source(obj | nil): images from obj:load_image(i) (a Lua method, run on the calling thread)
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

/* A dataset userdata; its user value 1 is the Lua object whose load_image is the image source (or nil). While a
 * call from Lua may build samples, L and obj_idx say where that object is on the calling thread's stack. */
typedef struct {
    yt_dataset *ds;
    lua_State *L;
    int obj_idx;
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

/* ---- the label table ---- */

static int label_set_gc(lua_State *L)
{
    yt_label_set_free(lua_touserdata(L, 1));
    return 0;
}

static void push_f32(lua_State *L, int64_t rows, int64_t cols, const float *v)
{
    int64_t shape[2] = {rows, cols};
    static const float zero = 0;
    yt_lua_push_tensor(L, yt_tensor_from_data(YT_F32, 2, shape, rows * cols > 0 ? v : &zero));
}

static void push_entry(lua_State *L, const yt_label_entry *e)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, e->im_file);
    lua_setfield(L, -2, "im_file");
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, e->h), lua_rawseti(L, -2, 1);
    lua_pushinteger(L, e->w), lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, "shape");
    push_f32(L, e->n, 1, e->cls);
    lua_setfield(L, -2, "cls");
    push_f32(L, e->n, 4, e->xywhn);
    lua_setfield(L, -2, "bboxes");
    if (e->poly_n) {
        lua_createtable(L, e->n, 0);
        size_t off = 0;
        for (int k = 0; k < e->n; k++) {
            push_f32(L, e->poly_n[k], 2, e->poly + off);
            off += 2 * (size_t)e->poly_n[k];
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "segments");
    }
}

/* data_scan({files}, {nc, single_cls, label_cache, prefix}) -> labels, stats, msgs */
static int l_scan(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    yt_scan_cfg c;
    c.nc = yt_lua_int_field(L, 2, "nc");
    c.single_cls = yt_lua_bool_field(L, 2, "single_cls");
    c.use_label_cache = yt_lua_bool_field(L, 2, "label_cache");
    lua_getfield(L, 2, "prefix");
    c.prefix = lua_isstring(L, -1) ? lua_tostring(L, -1) : ""; /* stays on the stack */
    if (c.nc < 1 || c.nc > YT_DATA_MAX_CLASSES) return luaL_error(L, "scan: nc %d is not in 1..%d", c.nc, YT_DATA_MAX_CLASSES);
    yt_strlist files;
    check_string_list(L, 1, &files);
    yt_label_set *set = yt_lua_new_scratch(L, sizeof *set, label_set_gc);
    int rc = yt_data_scan_labels((const char *const *)files.v, files.n, &c, set);
    yt_strlist_free(&files);
    if (rc < 0) return yt_lua_core_error(L);
    lua_createtable(L, set->n, 0);
    for (int i = 0; i < set->n; i++) {
        push_entry(L, set->entries + i);
        lua_rawseti(L, -2, i + 1);
    }
    const yt_scan_stats *st = &set->stats;
    lua_createtable(L, 0, 7);
    lua_pushstring(L, st->summary), lua_setfield(L, -2, "summary");
    lua_pushinteger(L, st->nf), lua_setfield(L, -2, "found");
    lua_pushinteger(L, st->nm), lua_setfield(L, -2, "missing");
    lua_pushinteger(L, st->ne), lua_setfield(L, -2, "empty");
    lua_pushinteger(L, st->nc), lua_setfield(L, -2, "corrupt");
    lua_pushboolean(L, st->from_cache), lua_setfield(L, -2, "from_cache");
    lua_pushstring(L, st->cache_path), lua_setfield(L, -2, "cache_path");
    push_strlist(L, &set->msgs);
    return 3;
}

/* The value at the top (popped): a float32 tensor of rows x cols values (rows returned), made contiguous. */
static yt_tensor *f32_at_top(lua_State *L, int i, const char *k, int cols, int64_t *rows)
{
    yt_tensor *t = luaL_testudata(L, -1, YT_TENSOR_MT) ? yt_lua_check_tensor(L, -1) : NULL;
    if (!t || t->dtype != YT_F32 || yt_numel(t) % cols)
        luaL_error(L, "labels[%d].%s must be a float32 tensor of N x %d values", i, k, cols);
    *rows = yt_numel(t) / cols;
    yt_tensor *c = yt_contiguous(t);
    if (!c) yt_lua_core_error(L);
    lua_pop(L, 1);
    return c;
}

static int valid_unit(const float *v, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (!(v[k] >= 0 && v[k] <= 1)) return 0;
    return 1;
}

/* Fills e from labels[i] (the table at the top), checked as the label parser checks a file. */
static void read_entry(lua_State *L, int i, int nc, yt_label_entry *e)
{
    if (!lua_istable(L, -1)) luaL_error(L, "labels[%d] must be a table {im_file, shape, cls, bboxes}", i);
    lua_getfield(L, -1, "im_file");
    const char *f = lua_tostring(L, -1);
    if (!f) luaL_error(L, "labels[%d].im_file must be a string", i);
    e->im_file = strdup(f);
    lua_pop(L, 1);
    lua_getfield(L, -1, "shape");
    if (!lua_istable(L, -1)) luaL_error(L, "labels[%d] (%s): shape must be {h, w}", i, e->im_file);
    lua_geti(L, -1, 1), lua_geti(L, -2, 2);
    lua_Integer h = lua_tointeger(L, -2), w = lua_tointeger(L, -1);
    if (h < 1 || w < 1 || h > YT_IMAGE_MAX_SIDE || w > YT_IMAGE_MAX_SIDE)
        luaL_error(L, "labels[%d] (%s): shape must be {h, w} in pixels", i, e->im_file);
    e->h = (int)h, e->w = (int)w;
    lua_pop(L, 3);
    int64_t n, nb;
    lua_getfield(L, -1, "cls");
    yt_tensor *cls = f32_at_top(L, i, "cls", 1, &n);
    lua_getfield(L, -1, "bboxes");
    yt_tensor *box = f32_at_top(L, i, "bboxes", 4, &nb);
    e->n = (int)n;
    e->cls = malloc(sizeof(float) * (size_t)(n + 1));
    e->xywhn = malloc(sizeof(float) * 4 * (size_t)(n + 1));
    int ok = e->cls && e->xywhn;
    if (ok) {
        memcpy(e->cls, yt_f32(cls), sizeof(float) * (size_t)n);
        memcpy(e->xywhn, yt_f32(box), sizeof(float) * 4 * (size_t)n);
    }
    yt_tensor_release(cls);
    yt_tensor_release(box);
    if (!ok) luaL_error(L, "out of memory");
    if (nb != n) luaL_error(L, "labels[%d] (%s): %d classes but %d boxes", i, e->im_file, (int)n, (int)nb);
    for (int k = 0; k < e->n; k++)
        if (!(e->cls[k] >= 0 && e->cls[k] < nc && e->cls[k] == floorf(e->cls[k])))
            luaL_error(L, "labels[%d] (%s): class %g is not an integer in 0..%d", i, e->im_file, e->cls[k], nc - 1);
    if (!valid_unit(e->xywhn, 4 * n))
        luaL_error(L, "labels[%d] (%s): boxes must be normalised xywh in 0..1", i, e->im_file);
    if (lua_getfield(L, -1, "segments") != LUA_TNIL) {
        if (!lua_istable(L, -1) || luaL_len(L, -1) != n)
            luaL_error(L, "labels[%d] (%s): segments must list one M x 2 tensor per box", i, e->im_file);
        e->poly_n = calloc((size_t)n + 1, sizeof(int));
        if (!e->poly_n) luaL_error(L, "out of memory");
        size_t tot = 0;
        for (int k = 0; k < e->n; k++) {
            lua_geti(L, -1, k + 1);
            int64_t m;
            yt_tensor *seg = f32_at_top(L, i, "segments[k]", 2, &m);
            float *p = realloc(e->poly, sizeof(float) * (tot + 2 * (size_t)m + 1));
            if (p) memcpy(p + tot, yt_f32(seg), sizeof(float) * 2 * (size_t)m);
            yt_tensor_release(seg);
            if (!p) luaL_error(L, "out of memory");
            e->poly = p;
            if (!valid_unit(p + tot, 2 * m))
                luaL_error(L, "labels[%d] (%s): segment %d must hold normalised points", i, e->im_file, k + 1);
            tot += 2 * (size_t)m;
            e->poly_n[k] = (int)m;
        }
    }
    lua_pop(L, 1);
}

/* ---- dataset ---- */

static ds_box *check_ds_box(lua_State *L, int idx)
{
    ds_box *b = luaL_checkudata(L, idx, DATASET_MT);
    if (!b->ds) luaL_error(L, "attempt to use a closed dataset");
    return b;
}

static yt_dataset *check_ds(lua_State *L, int idx) { return check_ds_box(L, idx)->ds; }

/* data_dataset(labels, {imgsz, augment, stride, pad, batch_size, cache_ram, nc}) */
static int l_dataset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    yt_dataset_cfg c = {0};
    c.imgsz = yt_lua_int_field(L, 2, "imgsz");
    c.augment = yt_lua_bool_field(L, 2, "augment");
    c.stride = yt_lua_int_field(L, 2, "stride");
    c.pad = yt_lua_number_field(L, 2, "pad");
    c.batch_size = yt_lua_int_field(L, 2, "batch_size");
    c.cache_ram = yt_lua_bool_field(L, 2, "cache_ram");
    int nc = yt_lua_int_field(L, 2, "nc");
    if (c.imgsz < 32 || c.batch_size < 1 || c.stride < 1 || nc < 1 || nc > YT_DATA_MAX_CLASSES)
        return luaL_error(L, "dataset: invalid imgsz %d, batch %d, stride %d or nc %d (1..%d)", c.imgsz, c.batch_size,
                          c.stride, nc, YT_DATA_MAX_CLASSES);
    int n = (int)luaL_len(L, 1);
    if (n < 1) return luaL_error(L, "dataset: the label table is empty");
    if (lua_geti(L, 1, 1) == LUA_TSTRING)
        return luaL_error(L, "data_dataset takes the label table of data_scan, not image files: build datasets with "
                             "yolotrain.data.build_yolo_dataset or a data.Dataset class");
    lua_pop(L, 1);
    yt_label_set *set = yt_lua_new_scratch(L, sizeof *set, label_set_gc);
    set->entries = calloc((size_t)n + 1, sizeof *set->entries);
    if (!set->entries) return luaL_error(L, "out of memory");
    for (int i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        set->n = i; /* the scratch frees what read_entry filled when it raises */
        read_entry(L, i, nc, set->entries + i - 1);
        lua_pop(L, 1);
    }
    ds_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, DATASET_MT);
    b->ds = yt_dataset_create(set, &c);
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

/* labels(i) (1-based) -> {im_file, shape = {h, w}, cls = N x 1, bboxes = N x 4 normalised xywh[, segments]} */
static int ds_labels(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && i <= ds->n, 2, "index out of range");
    push_entry(L, ds->labels + (i - 1));
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

/* ds:set_rect() -> {old index (1-based) of each new position} */
static int ds_set_rect(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    int *order = yt_lua_new_scratch(L, sizeof(int) * (size_t)ds->n, NULL);
    if (yt_dataset_set_rect(ds, order) < 0) return yt_lua_core_error(L);
    lua_createtable(L, ds->n, 0);
    for (int i = 0; i < ds->n; i++) {
        lua_pushinteger(L, order[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* One transform {name, params...}: every parameter of its kind is required. */
static void read_transform(lua_State *L, int t, int i, yt_transform *tf)
{
    if (!lua_istable(L, t)) luaL_error(L, "transforms[%d] must be a table {\"name\", param = value, ...}", i);
    lua_geti(L, t, 1);
    const char *name = lua_tostring(L, -1);
    if (!name) luaL_error(L, "transforms[%d]: the first entry must be the transform's name", i);
    memset(tf, 0, sizeof *tf);
    if (strcmp(name, "mosaic") == 0 || strcmp(name, "mixup") == 0 || strcmp(name, "flipud") == 0 ||
        strcmp(name, "fliplr") == 0) {
        tf->kind = name[0] == 'm' ? (name[1] == 'o' ? YT_TF_MOSAIC : YT_TF_MIXUP)
                                  : (name[4] == 'u' ? YT_TF_FLIPUD : YT_TF_FLIPLR);
        tf->p = yt_lua_number_field(L, t, "p");
    } else if (strcmp(name, "letterbox") == 0) {
        tf->kind = YT_TF_LETTERBOX;
        tf->scaleup = yt_lua_bool_field(L, t, "scaleup");
    } else if (strcmp(name, "random_perspective") == 0) {
        tf->kind = YT_TF_PERSPECTIVE;
        tf->persp.degrees = yt_lua_number_field(L, t, "degrees");
        tf->persp.translate = yt_lua_number_field(L, t, "translate");
        tf->persp.scale = yt_lua_number_field(L, t, "scale");
        tf->persp.shear = yt_lua_number_field(L, t, "shear");
        tf->persp.perspective = yt_lua_number_field(L, t, "perspective");
    } else if (strcmp(name, "random_hsv") == 0) {
        tf->kind = YT_TF_HSV;
        tf->hsv[0] = yt_lua_number_field(L, t, "hgain");
        tf->hsv[1] = yt_lua_number_field(L, t, "sgain");
        tf->hsv[2] = yt_lua_number_field(L, t, "vgain");
    } else {
        luaL_error(L, "transforms[%d]: unknown transform '%s' (mosaic, letterbox, random_perspective, mixup, "
                      "random_hsv, flipud, fliplr)", i, name);
    }
    lua_pop(L, 1);
}

static int ds_set_transforms(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    if (n < 1 || n > YT_MAX_TRANSFORMS) return luaL_error(L, "transforms: %d steps (1..%d)", n, YT_MAX_TRANSFORMS);
    yt_transform tf[YT_MAX_TRANSFORMS];
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        read_transform(L, lua_gettop(L), i + 1, tf + i);
        lua_pop(L, 1);
    }
    if (yt_dataset_set_transforms(ds, tf, n) < 0) return yt_lua_core_error(L);
    return 0;
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

static void push_image(lua_State *L, yt_image *im)
{
    if (!im) yt_lua_core_error(L);
    int64_t shape[3] = {im->h, im->w, 3};
    yt_tensor *t = yt_tensor_from_data(YT_U8, 3, shape, im->px);
    yt_image_release(im);
    yt_lua_push_tensor(L, t);
}

/* ds:decode_image(i) -> uint8 H x W x 3, long side imgsz, from the file (no cache, no image source) */
static int ds_decode_image(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && i <= ds->n, 2, "index out of range");
    push_image(L, yt_dataset_decode_image(ds, (int)i - 1));
    return 1;
}

/* Runs obj:load_image(i) (protected): the arguments are obj, i; returns a contiguous uint8 H x W x 3 tensor. */
static int source_call(lua_State *L)
{
    lua_getfield(L, 1, "load_image");
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    yt_tensor *t = luaL_testudata(L, -1, YT_TENSOR_MT) ? yt_lua_check_tensor(L, -1) : NULL;
    if (!t || t->dtype != YT_U8 || t->ndim != 3 || t->shape[2] != 3 || t->shape[0] < 1 || t->shape[1] < 1)
        return luaL_error(L, "must return a uint8 H x W x 3 tensor (RGB)");
    yt_lua_push_tensor(L, yt_contiguous(t));
    return 1;
}

/* The image source of a dataset with a Lua load_image: runs it on the thread that called into C from Lua. */
static yt_image *lua_image_source(void *ctx, int i)
{
    ds_box *b = ctx;
    lua_State *L = b->L;
    const char *file = b->ds->labels[i].im_file;
    if (!L) return (yt_error("%s: the Lua load_image can run only inside a call from Lua", file), NULL);
    int top = lua_gettop(L);
    lua_pushcfunction(L, source_call);
    lua_pushvalue(L, b->obj_idx);
    lua_pushinteger(L, i + 1);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        yt_error("%s: load_image: %s", file, lua_tostring(L, -1));
        lua_settop(L, top);
        return NULL;
    }
    yt_tensor *t = yt_lua_check_tensor(L, -1);
    yt_image *im = yt_image_new((int)t->shape[0], (int)t->shape[1]);
    if (im) memcpy(im->px, yt_u8(t), (size_t)im->h * im->w * 3);
    else yt_error("%s: out of memory for the image of load_image", file);
    lua_settop(L, top);
    return im;
}

/* Pushes the Lua object of the dataset userdata at idx and lets the image source use it until disarm. */
static ds_box *arm_source(lua_State *L, int idx)
{
    ds_box *b = luaL_checkudata(L, idx, DATASET_MT);
    lua_getiuservalue(L, idx, 1);
    b->L = L;
    b->obj_idx = lua_gettop(L);
    return b;
}

static void disarm_source(ds_box *b) { b->L = NULL; }

/* ds:set_image_source(obj | nil): images come from obj:load_image(i) (1-based, a uint8 H x W x 3 tensor) */
static int ds_set_image_source(lua_State *L)
{
    ds_box *b = check_ds_box(L, 1);
    int on = !lua_isnoneornil(L, 2);
    if (on) luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, 1);
    yt_dataset_set_image_source(b->ds, on ? lua_image_source : NULL, on ? b : NULL);
    return 0;
}

/* ds:cache_all(): every image into the cache (cache=ram) */
static int ds_cache_all(lua_State *L)
{
    check_ds_box(L, 1);
    ds_box *b = arm_source(L, 1);
    int rc = yt_dataset_cache_all(b->ds);
    disarm_source(b);
    if (rc < 0) return yt_lua_core_error(L);
    return 0;
}

static int ds_index(lua_State *L)
{
    yt_dataset *ds = check_ds(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "rect") == 0) lua_pushboolean(L, ds->cfg.rect);
    else if (strcmp(k, "augment") == 0) lua_pushboolean(L, ds->cfg.augment);
    else if (strcmp(k, "imgsz") == 0) lua_pushinteger(L, ds->cfg.imgsz);
    else if (strcmp(k, "batch_size") == 0) lua_pushinteger(L, ds->cfg.batch_size);
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
    ds_box *db = check_ds_box(L, 1);
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

/* Pushes the loader's dataset userdata and arms its image source (see arm_source). */
static ds_box *arm_loader(lua_State *L)
{
    lua_getiuservalue(L, 1, 1);
    return arm_source(L, lua_gettop(L));
}

static int loader_next(lua_State *L)
{
    loader_box *b = check_loader_box(L, 1);
    yt_batch *out;
    ds_box *db = arm_loader(L);
    int rc = yt_loader_next(b->l, &out);
    disarm_source(db);
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
    ds_box *db = arm_loader(L);
    int rc = yt_loader_build_batch(b->l, (int)epoch, (int)bi - 1, &out);
    disarm_source(db);
    if (rc < 0) return yt_lua_core_error(L);
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
    if (yt_loader_close_mosaic(check_loader_box(L, 1)->l) < 0) return yt_lua_core_error(L);
    return 0;
}

/* loader:restart(): drops the batches built ahead (after the dataset's transforms changed) */
static int loader_restart(lua_State *L)
{
    if (yt_loader_restart(check_loader_box(L, 1)->l) < 0) return yt_lua_core_error(L);
    return 0;
}

/* ---- images ---- */

static int l_load_image(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    yt_image im;
    if (yt_image_load(path, &im, NULL) < 0) return yt_lua_core_error(L);
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
    {"size", ds_len}, {"im_files", ds_im_files}, {"labels", ds_labels}, {"all_labels", ds_all_labels},
    {"batch_shapes", ds_batch_shapes}, {"set_rect", ds_set_rect}, {"set_transforms", ds_set_transforms},
    {"close_mosaic", ds_close_mosaic}, {"cache_stats", ds_cache_stats}, {"cache_all", ds_cache_all},
    {"decode_image", ds_decode_image}, {"set_image_source", ds_set_image_source}, {"close", ds_gc}, {NULL, NULL},
};

static const luaL_Reg loader_methods[] = {
    {"next", loader_next}, {"build", loader_build}, {"set_epoch", loader_set_epoch}, {"epoch", loader_epoch},
    {"close_mosaic", loader_close_mosaic}, {"restart", loader_restart}, {"close", loader_gc}, {"len", loader_len}, {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"data_list_images", l_list_images}, {"data_scan", l_scan}, {"data_dataset", l_dataset}, {"data_loader", l_loader},
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
