/* The YAML writer (io/yaml.c on libyaml's emitter): exact layout, strings quoted exactly when a plain scalar would
 * read back as something else, doubles that read back bit-exactly, and misuse reported as errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/yaml.h"
#include "testutil.h"

/* Finishes w, compares with the expected text, frees w. */
static void expect_text(yt_yaml_writer *w, const char *expected, const char *label)
{
    const char *text = NULL;
    size_t len = 0;
    int rc = yt_yaml_writer_finish(w, &text, &len);
    CHECK(rc == 0, "%s: finish: %s", label, yt_last_error());
    if (rc == 0) {
        CHECK(len == strlen(text), "%s: length %zu", label, len);
        CHECK(strcmp(text, expected) == 0, "%s: got\n%s\nexpected\n%s", label, text, expected);
    }
    yt_yaml_writer_free(w);
}

static void key(yt_yaml_writer *w, const char *k) { CHECK(yt_yaml_write_string(w, k, strlen(k)) == 0, "key %s", k); }

static void test_layout(void)
{
    yt_yaml_writer *w = yt_yaml_writer_new();
    CHECK(w != NULL, "new: %s", yt_last_error());
    if (!w) return;
    yt_yaml_write_map_begin(w);
    key(w, "task");
    key(w, "detect");
    key(w, "imgsz");
    yt_yaml_write_seq_begin(w, 1);
    yt_yaml_write_int(w, 640);
    yt_yaml_write_int(w, 480);
    yt_yaml_write_seq_end(w);
    key(w, "backbone");
    yt_yaml_write_seq_begin(w, 0);
    yt_yaml_write_seq_begin(w, 1);
    yt_yaml_write_int(w, -1);
    key(w, "Conv");
    yt_yaml_write_seq_end(w);
    yt_yaml_write_map_begin(w);
    key(w, "k");
    yt_yaml_write_bool(w, 1);
    key(w, "n");
    yt_yaml_write_null(w);
    yt_yaml_write_map_end(w);
    yt_yaml_write_seq_end(w);
    key(w, "nested");
    yt_yaml_write_map_begin(w);
    key(w, "lr0");
    yt_yaml_write_double(w, 0.01);
    yt_yaml_write_map_end(w);
    yt_yaml_write_map_end(w);
    expect_text(
        w, "task: detect\nimgsz: [640, 480]\nbackbone:\n- [-1, Conv]\n- k: true\n  n: null\nnested:\n  lr0: 0.01\n",
        "layout");
}

/* Writes one string as a document and reads it back. */
static void string_round_trip(const char *s, int expect_quoted)
{
    yt_yaml_writer *w = yt_yaml_writer_new();
    if (!w) return;
    CHECK(yt_yaml_write_string(w, s, strlen(s)) == 0, "write '%s'", s);
    const char *text;
    size_t len;
    if (yt_yaml_writer_finish(w, &text, &len) == 0) {
        CHECK((text[0] == '"') == expect_quoted, "'%s' written as %s", s, text);
        yt_yaml_node *n = yt_yaml_load_string(text, len, "test");
        CHECK(n && n->kind == YT_YAML_SCALAR, "'%s' reads back", s);
        if (n) {
            yt_yaml_value v;
            CHECK(yt_yaml_resolve(n, "test", &v) == 0 && v.type == YT_YAML_STR, "'%s' reads back as a string", s);
            CHECK(strcmp(n->value, s) == 0, "'%s' reads back as '%s'", s, n->value);
            yt_yaml_free(n);
        }
    }
    yt_yaml_writer_free(w);
}

static void test_strings(void)
{
    const char *quoted[] = {"",      "yes",          "no",         "true", "null", "~",        "1e-3",   "0x10",
                            "12",    "3.5",          ".inf",       "-",    "- a",  " lead",    "trail ", "a: b",
                            "a # c", "line1\nline2", "say \"hi\"", "[x]",  "{x}",  "*a",       "&a",     "!t",
                            "%d",    "@x",           "`x`",        "(x",   "=x",   "tab\there"};
    for (size_t i = 0; i < sizeof quoted / sizeof quoted[0]; i++) string_round_trip(quoted[i], 1);
    const char *plain[] = {"detect", "yolov8n.yaml", "runs/detect/train", "-foo",
                           "+x",     "a b",          "mAP50-95(B)",       "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) string_round_trip(plain[i], 0);
}

static void test_doubles(void)
{
    const double vs[] = {1.0, 0.1, 2.5e-7, 1e20, -0.0, 123456789.123456789, 5e-324, 1.7976931348623157e308, M_PI};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        yt_yaml_writer *w = yt_yaml_writer_new();
        if (!w) return;
        yt_yaml_write_double(w, vs[i]);
        const char *text;
        size_t len;
        if (yt_yaml_writer_finish(w, &text, &len) == 0) {
            yt_yaml_node *n = yt_yaml_load_string(text, len, "test");
            yt_yaml_value v;
            CHECK(n && yt_yaml_resolve(n, "test", &v) == 0 && v.type == YT_YAML_FLOAT, "%.17g as %s is a float", vs[i],
                  text);
            if (n && v.type == YT_YAML_FLOAT)
                CHECK(memcmp(&v.f, &vs[i], sizeof v.f) == 0, "%.17g reads back as %.17g", vs[i], v.f);
            yt_yaml_free(n);
        }
        yt_yaml_writer_free(w);
    }
    yt_yaml_writer *w = yt_yaml_writer_new();
    if (!w) return;
    yt_yaml_write_seq_begin(w, 1);
    yt_yaml_write_double(w, NAN);
    yt_yaml_write_double(w, INFINITY);
    yt_yaml_write_double(w, -INFINITY);
    yt_yaml_write_double(w, 1.0);
    yt_yaml_write_seq_end(w);
    expect_text(w, "[.nan, .inf, -.inf, 1.0]\n", "special doubles");
}

static void test_misuse(void)
{
    yt_yaml_writer *w = yt_yaml_writer_new();
    if (!w) return;
    yt_yaml_write_map_begin(w);
    const char *text;
    size_t len;
    CHECK(yt_yaml_writer_finish(w, &text, &len) == -1, "finishing with a map open fails");
    CHECK(strstr(yt_last_error(), "left open") != NULL, "%s", yt_last_error());
    yt_yaml_writer_free(w);

    w = yt_yaml_writer_new();
    if (!w) return;
    int rc = 0;
    for (int i = 0; i < 200 && rc == 0; i++) rc = yt_yaml_write_seq_begin(w, 0);
    CHECK(rc == -1 && strstr(yt_last_error(), "deeper") != NULL, "depth bounded: %s", yt_last_error());
    CHECK(yt_yaml_write_int(w, 1) == -1, "every call fails after a failure");
    yt_yaml_writer_free(w);
}

int main(void)
{
    test_layout();
    test_strings();
    test_doubles();
    test_misuse();
    return tu_finish();
}
