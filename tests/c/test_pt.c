/* .pt checkpoints: the Ultralytics fixtures read bitwise equal to expected.safetensors, and hostile files (crafted
 * here: a tiny torch.save-like zip whose pickle is written opcode by opcode) each give a clear error. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "io/pt.h"
#include "io/safetensors.h"
#include "testutil.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* ---- the fixtures ------------------------------------------------------------------------------------------------ */

/* Every `<prefix>.<name>` of expected equals the state dict entry `name` bitwise, and the counts agree. */
static void compare_state_dict(const yt_tensor_file *sd, const yt_tensor_file *expected, const char *prefix)
{
    int n_expected = 0, equal = 0;
    size_t plen = strlen(prefix);
    for (int i = 0; i < expected->count; i++)
        if (!strncmp(expected->items[i].name, prefix, plen) && expected->items[i].name[plen] == '.') n_expected++;
    CHECK(sd->count == n_expected, "%s: %d state-dict entries, expected %d", prefix, sd->count, n_expected);
    for (int i = 0; i < sd->count; i++) {
        char name[512];
        snprintf(name, sizeof name, "%s.%s", prefix, sd->items[i].name);
        const yt_tensor *want = yt_tensor_file_get(expected, name);
        const yt_tensor *got = sd->items[i].tensor;
        if (!want) {
            CHECK(0, "%s: not in expected.safetensors", name);
            continue;
        }
        int same_shape = got->ndim == want->ndim && !memcmp(got->shape, want->shape, got->ndim * sizeof *got->shape);
        /* expected stores everything as F32 except integer buffers (num_batches_tracked: I64) */
        int same_dtype = got->dtype == want->dtype;
        int same_bits = same_shape && same_dtype &&
                        !memcmp(yt_data(got), yt_data(want), (size_t)yt_numel(got) * yt_dtype_size(got->dtype));
        CHECK(same_bits, "%s: shape/dtype/bits differ (dtype %s vs %s)", name, yt_dtype_name(got->dtype),
              yt_dtype_name(want->dtype));
        equal += same_bits;
    }
    printf("%s: %d/%d tensors bitwise equal\n", prefix, equal, n_expected);
}

static const yt_pk *checkpoint_key(const yt_pt *pt, const char *key)
{
    const yt_pk *v = yt_pk_dict_get(yt_pt_root(pt), key);
    CHECK(v != NULL, "checkpoint has key '%s'", key);
    return v;
}

static void test_fixtures(void)
{
    yt_tensor_file expected;
    if (yt_safetensors_load(YT_PARITY_DIR "/pt/expected.safetensors", &expected) < 0) {
        CHECK(0, "fixture: %s", yt_last_error());
        return;
    }
    yt_pt *best = yt_pt_open(YT_PARITY_DIR "/pt/yolov8n_coco128.pt");
    CHECK(best != NULL, "open yolov8n_coco128.pt: %s", yt_last_error());
    if (best) {
        const yt_pk *model = checkpoint_key(best, "model");
        CHECK(yt_pk_is_str(yt_pk_attr(model, "yaml") ? yt_pk_dict_get(yt_pk_attr(model, "yaml"), "yaml_file") : NULL,
                           "yolov8n.yaml"),
              "model.yaml.yaml_file is yolov8n.yaml");
        const yt_pk *nc = yt_pk_attr(model, "nc");
        CHECK(nc && nc->kind == YT_PK_INT && nc->i == 80, "model.nc = 80");
        const yt_pk *names = yt_pk_attr(model, "names");
        CHECK(names && names->kind == YT_PK_DICT && names->n == 160 && yt_pk_is_str(names->items[1], "person"),
              "model.names has 80 entries, 0 = person");
        const yt_pk *epoch = checkpoint_key(best, "epoch");
        CHECK(epoch && epoch->kind == YT_PK_INT && epoch->i == -1, "epoch = -1 in a stripped best.pt");
        const yt_pk *ema = checkpoint_key(best, "ema"), *opt = checkpoint_key(best, "optimizer");
        CHECK(ema && ema->kind == YT_PK_NONE && opt && opt->kind == YT_PK_NONE, "stripped: ema and optimizer None");
        yt_tensor_file sd;
        CHECK(yt_pt_state_dict(best, model, &sd) == 0, "state dict: %s", yt_last_error());
        compare_state_dict(&sd, &expected, "weights");
        yt_tensor_file_free(&sd);
        yt_pt_close(best);
    }
    yt_pt *epoch1 = yt_pt_open(YT_PARITY_DIR "/pt/epoch1.pt");
    CHECK(epoch1 != NULL, "open epoch1.pt: %s", yt_last_error());
    if (epoch1) {
        const yt_pk *epoch = checkpoint_key(epoch1, "epoch"), *updates = checkpoint_key(epoch1, "updates");
        CHECK(epoch && epoch->kind == YT_PK_INT && epoch->i == 1, "epoch = 1");
        CHECK(updates && updates->kind == YT_PK_INT && updates->i == 4, "updates = 4");
        const yt_pk *opt = checkpoint_key(epoch1, "optimizer");
        const yt_pk *groups = yt_pk_dict_get(opt, "param_groups");
        CHECK(groups && groups->kind == YT_PK_LIST && groups->n == 3, "optimizer has 3 param groups");
        const yt_pk *args = yt_pk_attr(checkpoint_key(epoch1, "ema"), "args");
        CHECK(args && args->kind == YT_PK_OBJECT && !strcmp(args->s, "ultralytics.utils.IterableSimpleNamespace"),
              "ema.args is an IterableSimpleNamespace record");
        yt_tensor_file sd;
        CHECK(yt_pt_state_dict(epoch1, checkpoint_key(epoch1, "ema"), &sd) == 0, "ema state dict: %s", yt_last_error());
        compare_state_dict(&sd, &expected, "ema");
        yt_tensor_file_free(&sd);
        yt_pt_close(epoch1);
    }
    yt_tensor_file_free(&expected);
}

/* ---- a tiny checkpoint written opcode by opcode -------------------------------------------------------------------
 */

typedef struct {
    unsigned char b[8192];
    size_t n;
} buf;

enum { GOOD, EVIL_GLOBAL, TEXT_OPCODE, HUGE_MEMO, MODULE_CYCLE, EXTENT, SHORT_STORAGE };

static void op(buf *p, unsigned char c) { p->b[p->n++] = c; }
static void str(buf *p, const char *s)
{
    size_t len = strlen(s);
    op(p, 'X');
    for (int k = 0; k < 4; k++) op(p, (unsigned char)(len >> (8 * k)));
    memcpy(p->b + p->n, s, len);
    p->n += len;
}
static void global(buf *p, const char *module, const char *name)
{
    op(p, 'c');
    p->n += (size_t)sprintf((char *)p->b + p->n, "%s\n%s\n", module, name);
}
static void int1(buf *p, int v) { op(p, 'K'), op(p, (unsigned char)v); }
static void ordered_dict_begin(buf *p) { global(p, "collections", "OrderedDict"), op(p, ')'), op(p, 'R'), op(p, '('); }
static void ordered_dict_end(buf *p) { op(p, 'u'); }

static void tensor(buf *p, const char *storage_type, const char *key, int numel, int n, int d0, int d1, int s0, int s1)
{
    global(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    op(p, '('), str(p, "storage"), global(p, "torch", storage_type), str(p, key), str(p, "cpu"), int1(p, numel),
        op(p, 't');
    op(p, 'Q');
    int1(p, 0);
    if (n == 1)
        int1(p, d0), op(p, 0x85), int1(p, s0), op(p, 0x85);
    else
        int1(p, d0), int1(p, d1), op(p, 0x86), int1(p, s0), int1(p, s1), op(p, 0x86);
    op(p, 0x89);
    ordered_dict_begin(p), ordered_dict_end(p);
    op(p, 't'), op(p, 'R');
}

static void submodule(buf *p, int variant)
{
    global(p, "ultralytics.nn.modules.conv", "Conv"), op(p, ')'), op(p, 0x81);
    op(p, '}'), op(p, '(');
    str(p, "_parameters"), ordered_dict_begin(p), str(p, "bias"), tensor(p, "LongStorage", "2", 2, 1, 2, 0, 1, 0);
    ordered_dict_end(p);
    str(p, "_buffers"), ordered_dict_begin(p), ordered_dict_end(p);
    str(p, "_modules"), ordered_dict_begin(p);
    if (variant == MODULE_CYCLE) str(p, "again"), op(p, 'h'), op(p, 0); /* the parent module, from the memo */
    ordered_dict_end(p);
    op(p, 'u'), op(p, 'b');
}

static size_t make_pickle(buf *p, int variant)
{
    p->n = 0;
    op(p, 0x80), op(p, 2);
    op(p, '}'), op(p, '(');
    str(p, "epoch"), int1(p, 3);
    if (variant == EVIL_GLOBAL) str(p, "evil"), global(p, "os", "system"), str(p, "true"), op(p, 0x85), op(p, 'R');
    if (variant == TEXT_OPCODE) str(p, "old"), p->n += (size_t)sprintf((char *)p->b + p->n, "I42\n");
    str(p, "model");
    global(p, "torch.nn.modules.conv", "Conv2d"), op(p, ')'), op(p, 0x81);
    if (variant == HUGE_MEMO)
        op(p, 'r'), op(p, 0xff), op(p, 0xff), op(p, 0xff), op(p, 0x7f);
    else
        op(p, 'q'), op(p, 0);
    op(p, '}'), op(p, '(');
    str(p, "_parameters"), ordered_dict_begin(p);
    str(p, "weight"), tensor(p, "HalfStorage", "0", 4, 2, 2, 2, 1, 2); /* a transposed view */
    ordered_dict_end(p);
    str(p, "_buffers"), ordered_dict_begin(p);
    str(p, "running"),
        tensor(p, "FloatStorage", "1", variant == SHORT_STORAGE ? 100 : 3, 1, variant == EXTENT ? 5 : 3, 0, 1, 0);
    str(p, "np"), tensor(p, "FloatStorage", "1", 3, 1, 3, 0, 1, 0);
    ordered_dict_end(p);
    str(p, "_non_persistent_buffers_set"), global(p, "__builtin__", "set"), op(p, ']'), str(p, "np"), op(p, 'a'),
        op(p, 0x85), op(p, 'R');
    str(p, "_modules"), ordered_dict_begin(p);
    str(p, "sub"), submodule(p, variant);
    str(p, "none"), op(p, 'N');
    ordered_dict_end(p);
    str(p, "training"), op(p, 0x89);
    op(p, 'u'), op(p, 'b');
    op(p, 'u');
    op(p, '.');
    return p->n;
}

static const unsigned char half_data[] = {0x00, 0x3c, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44}; /* 1 2 3 4 */
static const float float_data[] = {0.5f, 1.5f, 2.5f};
static const int64_t long_data[] = {7, -9};

/* Writes a checkpoint zip with the given pickle; extra_member (may be NULL) is added too. Stored, not deflated. */
static void write_checkpoint(const char *path, const buf *pickle, const char *extra_member)
{
    int err = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    const struct {
        const char *name;
        const void *data;
        size_t size;
    } members[] = {
        {"ckpt/data.pkl", pickle->b, pickle->n},      {"ckpt/byteorder", "little", 6},
        {"ckpt/data/0", half_data, sizeof half_data}, {"ckpt/data/1", float_data, sizeof float_data},
        {"ckpt/data/2", long_data, sizeof long_data}, {extra_member, "x", 1},
    };
    for (size_t k = 0; k < sizeof members / sizeof *members; k++) {
        if (!members[k].name) continue;
        zip_source_t *s = zip_source_buffer(z, members[k].data, members[k].size, 0);
        zip_int64_t index = zip_file_add(z, members[k].name, s, ZIP_FL_ENC_UTF_8);
        zip_set_file_compression(z, (zip_uint64_t)index, ZIP_CM_STORE, 0);
    }
    CHECK(zip_close(z) == 0, "writing %s", path);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    *n = fread(b, 1, *n, f);
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* Opens the file and takes the state dict of "model"; expects it to fail with a message naming the file and
 * containing needle. */
static void expect_error(const char *label, const char *path, const char *needle)
{
    yt_clear_error();
    yt_pt *pt = yt_pt_open(path);
    int rc = -1;
    if (pt) {
        yt_tensor_file sd;
        rc = yt_pt_state_dict(pt, yt_pk_dict_get(yt_pt_root(pt), "model"), &sd);
        if (rc == 0)
            yt_tensor_file_free(&sd);
        else
            CHECK(sd.count == 0 && sd.items == NULL, "%s: output left empty", label);
        yt_pt_close(pt);
    }
    CHECK(rc == -1, "%s: should fail", label);
    const char *msg = yt_last_error();
    CHECK(strstr(msg, path) != NULL, "%s: message names the file: %s", label, msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' should mention '%s'", label, msg, needle);
    printf("%-22s -> %s\n", label, msg);
}

static void test_crafted_good(void)
{
    buf p;
    make_pickle(&p, GOOD);
    const char *path = tmp_path("good.pt");
    write_checkpoint(path, &p, NULL);
    yt_pt *pt = yt_pt_open(path);
    CHECK(pt != NULL, "open good.pt: %s", yt_last_error());
    if (!pt) return;
    yt_tensor_file sd;
    CHECK(yt_pt_state_dict(pt, yt_pk_dict_get(yt_pt_root(pt), "model"), &sd) == 0, "state dict: %s", yt_last_error());
    CHECK(sd.count == 3, "3 entries (None child and non-persistent buffer left out), got %d", sd.count);
    if (sd.count == 3) {
        CHECK(!strcmp(sd.items[0].name, "weight") && !strcmp(sd.items[1].name, "running") &&
                  !strcmp(sd.items[2].name, "sub.bias"),
              "state_dict() order: %s %s %s", sd.items[0].name, sd.items[1].name, sd.items[2].name);
        const float *w = yt_f32(sd.items[0].tensor);
        CHECK(sd.items[0].tensor->dtype == YT_F32 && w[0] == 1 && w[1] == 3 && w[2] == 2 && w[3] == 4,
              "fp16 transposed view -> [[1,3],[2,4]]: %g %g %g %g", w[0], w[1], w[2], w[3]);
        CHECK(yt_f32(sd.items[1].tensor)[2] == 2.5f, "float buffer");
        CHECK(sd.items[2].tensor->dtype == YT_I64 && yt_i64(sd.items[2].tensor)[1] == -9, "long parameter");
    }
    yt_tensor_file_free(&sd);
    yt_pt_close(pt);
    /* the same bytes from memory (the fuzz harness' path) */
    size_t n;
    unsigned char *bytes = read_all(path, &n);
    pt = yt_pt_open_buffer(bytes, n, "good-in-memory");
    CHECK(pt != NULL, "open from a buffer: %s", yt_last_error());
    yt_pt_close(pt);
    free(bytes);
}

static void hostile_pickle(const char *label, int variant, const char *needle)
{
    buf p;
    make_pickle(&p, variant);
    char name[64];
    snprintf(name, sizeof name, "variant%d.pt", variant);
    const char *path = tmp_path(name);
    write_checkpoint(path, &p, NULL);
    expect_error(label, path, needle);
}

/* Finds the bytes of a stored member in the archive image. */
static unsigned char *find_bytes(unsigned char *b, size_t n, const void *needle, size_t len)
{
    for (size_t k = 0; k + len <= n; k++)
        if (!memcmp(b + k, needle, len)) return b + k;
    return NULL;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}

/* Sets the uncompressed size of member `name` in its local and central headers. */
static void patch_size(unsigned char *b, size_t n, const char *name, uint32_t size)
{
    size_t len = strlen(name);
    for (size_t k = 0; k + 46 + len <= n; k++) {
        if (!memcmp(b + k, "PK\3\4", 4) && !memcmp(b + k + 30, name, len) && b[k + 26] == len)
            put_le32(b + k + 22, size);
        if (!memcmp(b + k, "PK\1\2", 4) && !memcmp(b + k + 46, name, len) && b[k + 28] == len)
            put_le32(b + k + 24, size);
    }
}

static void test_hostile_files(void)
{
    hostile_pickle("forbidden global", EVIL_GLOBAL, "global 'os.system' is not allowed");
    hostile_pickle("text opcode", TEXT_OPCODE, "opcode INT");
    hostile_pickle("huge memo index", HUGE_MEMO, "memo index");
    hostile_pickle("module cycle", MODULE_CYCLE, "nested deeper than");
    hostile_pickle("tensor beyond storage", EXTENT, "tensor needs 5 elements");
    hostile_pickle("storage too short", SHORT_STORAGE, "claims 100 elements");

    buf p;
    make_pickle(&p, GOOD);
    const char *path = tmp_path("traversal.pt");
    write_checkpoint(path, &p, "ckpt/../../etc/evil");
    expect_error("path traversal", path, "escapes the archive");
    path = tmp_path("absolute.pt");
    write_checkpoint(path, &p, "/etc/evil");
    expect_error("absolute member name", path, "escapes the archive");

    size_t n;
    path = tmp_path("crc.pt");
    write_checkpoint(path, &p, NULL);
    unsigned char *b = read_all(path, &n);
    unsigned char *at = find_bytes(b, n, float_data, sizeof float_data);
    CHECK(at != NULL, "found the stored float storage");
    if (at) at[1] ^= 0x40;
    write_all(path, b, n);
    expect_error("bad CRC", path, "CRC");

    path = tmp_path("truncated.pt");
    write_all(path, b, n * 6 / 10);
    expect_error("truncated archive", path, "not a readable zip archive");
    free(b);

    path = tmp_path("bomb.pt");
    write_checkpoint(path, &p, NULL);
    b = read_all(path, &n);
    patch_size(b, n, "ckpt/data/1", 200u << 20); /* 12 stored bytes that claim to inflate to 200 MiB */
    write_all(path, b, n);
    expect_error("zip bomb (ratio)", path, "zip bomb");
    patch_size(b, n, "ckpt/data/1", 0xFFFFFFF0u);
    write_all(path, b, n);
    expect_error("zip bomb (4 GiB)", path, "limit");
    free(b);

    path = tmp_path("not_a_zip.pt");
    write_all(path, (const unsigned char *)"\x80\x02}q\x00.", 6);
    expect_error("a bare pickle", path, "not a readable zip archive");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/yt_test_pt_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    test_fixtures();
    test_crafted_good();
    test_hostile_files();
    if (getenv("YT_PT_KEEP"))
        printf("crafted files kept in %s\n", tmpdir);
    else {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return tu_finish();
}
