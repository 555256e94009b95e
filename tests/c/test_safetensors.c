/* safetensors: round trip, the parity init weights, and hostile files (each must be a clean error). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "ops/shape_ops.h"
#include "testutil.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* Writes an 8-byte length + header + data, with an explicit (possibly lying) length. */
static void write_raw(const char *path, unsigned long long hlen, const char *header, const void *data, size_t ndata)
{
    FILE *f = fopen(path, "wb");
    unsigned char b[8];
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(hlen >> (8 * k));
    fwrite(b, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (ndata) fwrite(data, 1, ndata, f);
    fclose(f);
}

static void write_file(const char *path, const char *header, const void *data, size_t ndata)
{
    write_raw(path, strlen(header), header, data, ndata);
}

/* Expects the load to fail with a message containing both the file name and `needle`; the metadata-only load
 * checks the same header, so it must fail the same way. */
static void expect_error_of(int (*load)(const char *, yt_tensor_file *), const char *label, const char *path,
                            const char *needle)
{
    yt_tensor_file f;
    yt_clear_error();
    int rc = load(path, &f);
    CHECK(rc == -1, "%s: load should fail", label);
    if (rc == 0) {
        yt_tensor_file_free(&f);
        return;
    }
    CHECK(f.count == 0 && f.items == NULL && f.n_meta == 0, "%s: output left empty", label);
    const char *msg = yt_last_error();
    CHECK(strstr(msg, path) != NULL, "%s: message names the file: %s", label, msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' should mention '%s'", label, msg, needle);
}

static void expect_error(const char *label, const char *path, const char *needle)
{
    expect_error_of(yt_safetensors_load, label, path, needle);
    expect_error_of(yt_safetensors_load_metadata, label, path, needle);
}

static void test_round_trip(void)
{
    int64_t s1[] = {2, 3}, s2[] = {4}, s3[] = {5};
    yt_tensor *a = tu_rand(2, s1, -1, 1);
    yt_tensor *b = yt_tensor_empty(YT_I64, 1, s2);
    for (int i = 0; i < 4; i++) yt_i64(b)[i] = (int64_t)i * 1000000000000LL - 7;
    yt_tensor *c = yt_tensor_empty(YT_U8, 1, s3);
    for (int i = 0; i < 5; i++) yt_u8(c)[i] = (uint8_t)(250 + i);
    yt_tensor *d = yt_tensor_empty(YT_F64, 0, NULL);
    yt_f64(d)[0] = M_PI;
    int64_t s0[] = {0, 3};
    yt_tensor *e = yt_tensor_empty(YT_F32, 2, s0);
    /* a non-contiguous view: transpose of a */
    int perm[] = {1, 0};
    yt_tensor *at = yt_permute(a, perm);

    const char *names[] = {"w.a", "b \"quoted\"\\name", "img", "scalar", "empty", "a_t"};
    yt_tensor *ts[] = {a, b, c, d, e, at};
    const char *mk[] = {"format", "json", "nl"};
    const char *mv[] = {"pt", "{\"a\": [1, 2]}", "line1\nline2\t\x01"};
    const char *path = tmp_path("rt.safetensors");
    int rc = yt_safetensors_save(path, 6, names, ts, 3, mk, mv);
    CHECK(rc == 0, "save: %s", yt_last_error());

    /* header length is a multiple of 8 and the temp file is gone */
    FILE *fp = fopen(path, "rb");
    unsigned char lb[8] = {0};
    CHECK(fp && fread(lb, 1, 8, fp) == 8, "read length");
    if (fp) fclose(fp);
    unsigned long long hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | lb[k];
    CHECK((8 + hl) % 8 == 0, "header padded: %llu", hl);
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmpname, F_OK) != 0, "temp file renamed away");

    yt_tensor_file f;
    rc = yt_safetensors_load(path, &f);
    CHECK(rc == 0, "load: %s", yt_last_error());
    if (rc == 0) {
        CHECK(f.count == 6, "count %d", f.count);
        for (int i = 0; i < f.count && i < 6; i++)
            CHECK(strcmp(f.items[i].name, names[i]) == 0, "order kept: %s vs %s", f.items[i].name, names[i]);
        yt_tensor *la = yt_tensor_file_get(&f, "w.a");
        CHECK(la && la->dtype == YT_F32 && la->ndim == 2 && la->shape[0] == 2 && la->shape[1] == 3, "a shape");
        if (la) CHECK(memcmp(yt_data(la), yt_data(a), 6 * sizeof(float)) == 0, "a bytes");
        yt_tensor *lb2 = yt_tensor_file_get(&f, "b \"quoted\"\\name");
        CHECK(lb2 && lb2->dtype == YT_I64 && yt_i64(lb2)[3] == 3000000000000LL - 7, "i64 values");
        yt_tensor *lc = yt_tensor_file_get(&f, "img");
        CHECK(lc && lc->dtype == YT_U8 && yt_u8(lc)[4] == 254, "u8 values");
        yt_tensor *ld = yt_tensor_file_get(&f, "scalar");
        CHECK(ld && ld->dtype == YT_F64 && ld->ndim == 0 && yt_f64(ld)[0] == M_PI, "f64 scalar");
        yt_tensor *le = yt_tensor_file_get(&f, "empty");
        CHECK(le && le->ndim == 2 && le->shape[0] == 0 && le->shape[1] == 3, "empty tensor shape");
        yt_tensor *lt = yt_tensor_file_get(&f, "a_t");
        CHECK(lt && lt->shape[0] == 3 && lt->shape[1] == 2, "transposed shape");
        if (lt) CHECK(yt_f32(lt)[1] == yt_f32(a)[3] && yt_f32(lt)[2] == yt_f32(a)[1], "transposed values");
        CHECK(yt_tensor_file_get(&f, "nope") == NULL, "absent name");
        CHECK(f.n_meta == 3, "n_meta %d", f.n_meta);
        const char *m = yt_tensor_file_meta(&f, "json");
        CHECK(m && strcmp(m, mv[1]) == 0, "meta json: %s", m ? m : "(null)");
        m = yt_tensor_file_meta(&f, "nl");
        CHECK(m && strcmp(m, mv[2]) == 0, "meta escapes");
        CHECK(yt_tensor_file_meta(&f, "missing") == NULL, "absent meta");
        yt_tensor_file_free(&f);
        CHECK(f.count == 0, "freed");
    }
    /* the metadata alone: the same keys and values, no tensors */
    rc = yt_safetensors_load_metadata(path, &f);
    CHECK(rc == 0, "load metadata: %s", yt_last_error());
    if (rc == 0) {
        CHECK(f.count == 0 && f.items == NULL, "no tensors read (count %d)", f.count);
        CHECK(f.n_meta == 3, "n_meta %d", f.n_meta);
        const char *m = yt_tensor_file_meta(&f, "json");
        CHECK(m && strcmp(m, mv[1]) == 0, "metadata-only json: %s", m ? m : "(null)");
        yt_tensor_file_free(&f);
    }

    /* writer refuses bad input */
    const char *dup[] = {"x", "x"};
    yt_tensor *two[] = {a, b};
    CHECK(yt_safetensors_save(tmp_path("dup.safetensors"), 2, dup, two, 0, NULL, NULL) == -1, "duplicate names");
    CHECK(strstr(yt_last_error(), "duplicate") != NULL, "%s", yt_last_error());
    const char *meta_name[] = {"__metadata__"};
    CHECK(yt_safetensors_save(tmp_path("m.safetensors"), 1, meta_name, two, 0, NULL, NULL) == -1, "reserved name");
    CHECK(yt_safetensors_save("/nonexistent-dir/x.safetensors", 1, names, ts, 0, NULL, NULL) == -1, "bad dir");
    CHECK(strstr(yt_last_error(), "/nonexistent-dir/x.safetensors") != NULL, "%s", yt_last_error());

    /* zero tensors, no metadata */
    rc = yt_safetensors_save(tmp_path("none.safetensors"), 0, NULL, NULL, 0, NULL, NULL);
    CHECK(rc == 0, "empty save: %s", yt_last_error());
    rc = yt_safetensors_load(tmp_path("none.safetensors"), &f);
    CHECK(rc == 0 && f.count == 0 && f.n_meta == 0, "empty load: %s", yt_last_error());
    yt_tensor_file_free(&f);

    yt_tensor_release(at);
    yt_tensor_release(a);
    yt_tensor_release(b);
    yt_tensor_release(c);
    yt_tensor_release(d);
    yt_tensor_release(e);
}

static void test_parity_init(void)
{
    yt_tensor_file f;
    const char *path = YT_PARITY_DIR "/yolov8n_init.safetensors";
    int rc = yt_safetensors_load(path, &f);
    CHECK(rc == 0, "load init: %s", yt_last_error());
    if (rc) return;
    CHECK(f.count == 355, "355 tensors, got %d", f.count);
    yt_tensor *dfl = yt_tensor_file_get(&f, "model.22.dfl.conv.weight");
    CHECK(dfl && dfl->dtype == YT_F32 && dfl->ndim == 4 && dfl->shape[0] == 1 && dfl->shape[1] == 16 &&
              dfl->shape[2] == 1 && dfl->shape[3] == 1,
          "dfl shape");
    if (dfl)
        for (int i = 0; i < 16; i++) CHECK(yt_f32(dfl)[i] == (float)i, "dfl[%d] = %g", i, yt_f32(dfl)[i]);
    yt_tensor *w0 = yt_tensor_file_get(&f, "model.0.conv.weight");
    CHECK(w0 && w0->shape[0] == 16 && w0->shape[1] == 3 && w0->shape[2] == 3 && w0->shape[3] == 3, "conv0 shape");
    yt_tensor *nbt = yt_tensor_file_get(&f, "model.0.bn.num_batches_tracked");
    CHECK(nbt && nbt->dtype == YT_I64 && nbt->ndim == 0 && yt_i64(nbt)[0] == 1, "num_batches_tracked");
    yt_tensor *rv = yt_tensor_file_get(&f, "model.0.bn.running_var");
    CHECK(rv && fabsf(yt_f32(rv)[0] - 0.9f) < 1e-6f, "running_var 0.9");
    yt_tensor *cb = yt_tensor_file_get(&f, "model.22.cv3.0.2.bias");
    CHECK(cb && cb->shape[0] == 80 && fabs(yt_f32(cb)[0] - (-11.537)) < 1e-3, "cls bias %g", cb ? yt_f32(cb)[0] : 0);
    const char *v = yt_tensor_file_meta(&f, "ultralytics_version");
    CHECK(v && strcmp(v, "8.2.100") == 0, "version meta %s", v ? v : "(null)");
    yt_tensor_file_free(&f);
}

static void test_hostile(void)
{
    float data[4] = {1, 2, 3, 4};
    const char *p;

    p = tmp_path("missing.safetensors");
    expect_error("missing file", p, "cannot open");

    p = tmp_path("short.safetensors");
    FILE *fp = fopen(p, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    expect_error("shorter than 8 bytes", p, "too short");

    p = tmp_path("hlen_big.safetensors");
    write_raw(p, 1000, "{}", NULL, 0);
    expect_error("header length > file", p, "does not fit");

    p = tmp_path("hlen_huge.safetensors");
    write_raw(p, 0xFFFFFFFFFFFFFFF0ULL, "{}", NULL, 0);
    expect_error("header length huge", p, "limit");

    p = tmp_path("badjson.safetensors");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}", data, 16);
    expect_error("unterminated object", p, "JSON");
    write_file(p, "{\"a\": {\"dtype\": \"F32\" \"shape\": [4]}}", data, 16);
    expect_error("missing comma", p, "JSON");
    write_file(p, "{\"a\\q\": 1}", data, 16);
    expect_error("bad escape", p, "escape");
    write_file(p, "[1, 2]  ", data, 16);
    expect_error("not an object", p, "object");
    write_file(p, "{\"a\": 1} x", data, 16);
    expect_error("trailing garbage", p, "trailing");
    {
        /* deep nesting must not overflow the stack */
        char deep[2100];
        int o = 0;
        o += sprintf(deep + o, "{\"m\":");
        for (int i = 0; i < 1000; i++) deep[o++] = '[';
        deep[o] = 0;
        write_file(p, deep, NULL, 0);
        expect_error("deep nesting", p, "deep");
    }

    p = tmp_path("dtype.safetensors");
    write_file(p, "{\"a\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 4]}}", data, 4);
    expect_error("unsupported dtype", p, "F8_E4M3");

    p = tmp_path("range.safetensors");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 32]}}", data, 16);
    expect_error("offsets beyond data", p, "beyond");

    p = tmp_path("count.safetensors");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 16]}}", data, 16);
    expect_error("byte count mismatch", p, "needs 12");

    p = tmp_path("overlap.safetensors");
    write_file(p,
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
               data, 16);
    expect_error("overlapping", p, "overlap");

    p = tmp_path("reversed.safetensors");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", data, 16);
    expect_error("end < begin", p, "end < begin");

    p = tmp_path("hugedims.safetensors");
    write_file(
        p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 16]}}",
        data, 16);
    expect_error("huge dims (overflow)", p, "too large");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1000000000, 1000], \"data_offsets\": [0, 16]}}", data, 16);
    expect_error("huge dims (byte count)", p, "needs");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}}", data, 16);
    expect_error("negative dim", p, "non-negative");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,4], \"data_offsets\": [0, 16]}}", data, 16);
    expect_error("too many dims", p, "dimensions");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999999], \"data_offsets\": [0, 16]}}",
               data, 16);
    expect_error("dim beyond int64", p, "integers");

    p = tmp_path("fields.safetensors");
    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4]}}", data, 16);
    expect_error("missing data_offsets", p, "data_offsets");
    write_file(p,
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
               data, 16);
    expect_error("duplicate names", p, "duplicate");
    write_file(p, "{\"__metadata__\": {\"k\": 3}}", NULL, 0);
    expect_error("metadata not string", p, "metadata");

    /* a valid file truncated at every length must fail cleanly, never crash */
    {
        int64_t s[] = {3, 5};
        yt_tensor *t = tu_rand(2, s, 0, 1);
        const char *nm[] = {"t"};
        const char *full = tmp_path("full.safetensors");
        CHECK(yt_safetensors_save(full, 1, nm, &t, 0, NULL, NULL) == 0, "save full");
        FILE *in = fopen(full, "rb");
        char buf[512];
        size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
        if (in) fclose(in);
        CHECK(n > 60 && n < sizeof buf, "size %zu", n);
        int failures = 0;
        const char *cut = tmp_path("cut.safetensors");
        for (size_t len = 0; len < n; len++) {
            FILE *o = fopen(cut, "wb");
            fwrite(buf, 1, len, o);
            fclose(o);
            yt_tensor_file f;
            if (yt_safetensors_load(cut, &f) == 0) {
                yt_tensor_file_free(&f);
                failures++;
            }
        }
        CHECK(failures == 0, "%d truncations loaded", failures);
        /* flip each header byte: must load or fail, never crash */
        for (size_t k = 8; k < n - 60; k++) {
            char saved = buf[k];
            buf[k] ^= 0x5A;
            FILE *o = fopen(cut, "wb");
            fwrite(buf, 1, n, o);
            fclose(o);
            yt_tensor_file f;
            if (yt_safetensors_load(cut, &f) == 0) yt_tensor_file_free(&f);
            buf[k] = saved;
        }
        yt_tensor_release(t);
    }
}

/* The 16-bit conversions against the compiler's own _Float16 (IEEE round to nearest even), over every F16
 * value and a spread of floats including the rounding boundaries, subnormals, overflow, inf and NaN. */
static void test_half_conversions(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 ref;
        uint16_t hh = (uint16_t)h;
        memcpy(&ref, &hh, 2);
        float want = (float)ref, got = yt_f16_to_f32(hh);
        if (isnan(want) ? !isnan(got) : memcmp(&want, &got, 4) != 0) bad++;
        if (!isnan(want) && yt_f32_to_f16(got) != hh) bad++; /* widening then narrowing is the identity */
    }
    CHECK(bad == 0, "f16 -> f32 -> f16 over all 65536 values: %d mismatches", bad);
    bad = 0;
    uint32_t x = 12345u;
    for (int k = 0; k < 2000000; k++) {
        x = x * 1664525u + 1013904223u;
        /* uniform bits below 2^-25 .. above 65504, plus exact halfway points (low 13 bits 0x1000) */
        uint32_t u = (k & 1) ? x : ((x & ~0x1fffu) | 0x1000u);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        _Float16 r = (_Float16)f;
        uint16_t want;
        memcpy(&want, &r, 2);
        if (yt_f32_to_f16(f) != want) bad++;
    }
    CHECK(bad == 0, "f32 -> f16 vs _Float16 on 2M floats: %d mismatches", bad);
    CHECK(yt_f32_to_f16(65520.0f) == 0x7c00 && yt_f32_to_f16(65519.0f) == 0x7bff, "overflow to inf at 65520");
    CHECK((yt_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (yt_f32_to_f16(NAN) & 0x3ff) != 0, "NaN stays NaN");
    CHECK(yt_f32_to_bf16(1.0f) == 0x3f80 && yt_bf16_to_f32(0x3f80) == 1.0f, "bf16 of 1");
    CHECK(yt_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 tie rounds to even (down)");
    CHECK(yt_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 tie rounds to even (up)");
    CHECK(isnan(yt_bf16_to_f32(yt_f32_to_bf16(NAN))), "bf16 NaN stays NaN");
}

/* F32 tensors saved as F16 load back as F32 holding exactly the F16-rounded values; other dtypes unchanged. */
static void test_save_f16(void)
{
    int64_t shape[2] = {3, 5};
    yt_tensor *a = yt_tensor_empty(YT_F32, 2, shape);
    for (int i = 0; i < 15; i++) yt_f32(a)[i] = (float)(tu_uniform(-3.0, 3.0) * (i == 7 ? 1e-6 : 1.0));
    int perm[] = {1, 0};
    yt_tensor *at = yt_permute(a, perm); /* a strided view is written in logical order */
    int64_t n1[1] = {4};
    yt_tensor *ids = yt_tensor_empty(YT_I64, 1, n1);
    for (int i = 0; i < 4; i++) yt_i64(ids)[i] = 1000000007LL * i;
    const char *names[3] = {"a", "at", "ids"};
    yt_tensor *ts[3] = {a, at, ids};
    const char *mk[1] = {"k"}, *mv[1] = {"v"};
    const char *path = tmp_path("half.safetensors");
    CHECK(yt_safetensors_save_as(path, 3, names, ts, 1, mk, mv, 1) == 0, "save as F16: %s", yt_last_error());
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size < 8 + 400 + 15 * 2 * 2 + 32, "F16 payload is 2 bytes a value");
    yt_tensor_file f;
    CHECK(yt_safetensors_load(path, &f) == 0, "load: %s", yt_last_error());
    yt_tensor *la = yt_tensor_file_get(&f, "a"), *lt = yt_tensor_file_get(&f, "at"),
              *li = yt_tensor_file_get(&f, "ids");
    CHECK(la && la->dtype == YT_F32 && yt_numel(la) == 15, "a comes back F32 [3,5]");
    CHECK(lt && lt->shape[0] == 5 && lt->shape[1] == 3, "at comes back [5,3]");
    int bad = 0;
    for (int i = 0; la && lt && i < 15; i++) {
        float want = yt_f16_to_f32(yt_f32_to_f16(yt_f32(a)[i]));
        if (yt_f32(la)[i] != want) bad++;
        if (yt_f32(lt)[(i % 5) * 3 + i / 5] != want) bad++;
    }
    CHECK(bad == 0, "values are the F16 rounding of the originals: %d mismatches", bad);
    CHECK(li && li->dtype == YT_I64 && yt_i64(li)[3] == 3000000021LL, "I64 stays I64");
    yt_tensor_file_free(&f);
    /* a hand-made BF16 file (as other tools write) loads as F32 */
    uint16_t bf[2] = {0x3f80, 0xc040}; /* 1, -3 */
    const char *bpath = tmp_path("bf16.safetensors");
    write_file(bpath, "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", bf, sizeof bf);
    CHECK(yt_safetensors_load(bpath, &f) == 0, "load BF16: %s", yt_last_error());
    yt_tensor *lb = yt_tensor_file_get(&f, "b");
    CHECK(lb && lb->dtype == YT_F32 && yt_f32(lb)[0] == 1.0f && yt_f32(lb)[1] == -3.0f, "BF16 values");
    yt_tensor_file_free(&f);
    uint16_t eight_bytes[4] = {0};
    write_file(bpath, "{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", eight_bytes, 8);
    expect_error("F16 size", bpath, "needs 4");
    yt_tensor_release(at);
    yt_tensor_release(a);
    yt_tensor_release(ids);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/yt_test_safetensors_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    tu_seed(3);
    test_round_trip();
    test_parity_init();
    test_hostile();
    test_half_conversions();
    test_save_f16();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return tu_finish();
}
