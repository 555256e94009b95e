/* The ONNX writer: what it packs unpacks to the same model (protobuf-c's own reader), and bad requests fail. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/onnx.h"
#include "onnx.pb-c.h"
#include "ops/shape_ops.h"
#include "testutil.h"

static Onnx__ModelProto *round_trip(const yt_onnx *m)
{
    size_t size = 0;
    void *buf = yt_onnx_pack(m, &size);
    CHECK(buf != NULL, "pack: %s", yt_last_error());
    if (!buf) return NULL;
    Onnx__ModelProto *p = onnx__model_proto__unpack(NULL, size, buf);
    free(buf);
    CHECK(p != NULL, "protobuf-c cannot read what was packed");
    return p;
}

static void test_round_trip(void)
{
    yt_onnx *m = yt_onnx_new("g", 13, "yolotrain", "9.9");
    CHECK(m != NULL, "new: %s", yt_last_error());
    /* a permuted (non-contiguous) view: raw_data must hold the elements in its logical order */
    int64_t shape[2] = {3, 2};
    float v[6] = {0, 1, 2, 3, 4, 5}; /* [[0,1],[2,3],[4,5]] */
    yt_tensor *w = yt_tensor_from_data(YT_F32, 2, shape, v);
    int perm[2] = {1, 0};
    yt_tensor *wt = yt_permute(w, perm); /* [[0,2,4],[1,3,5]] */
    CHECK(yt_onnx_add_initializer(m, "w", wt) == 0, "%s", yt_last_error());
    int64_t ishape[1] = {3};
    int64_t iv[3] = {-1, 0, 1LL << 40};
    yt_tensor *idx = yt_tensor_from_data(YT_I64, 1, ishape, iv);
    CHECK(yt_onnx_add_initializer(m, "idx", idx) == 0, "%s", yt_last_error());
    int64_t ints[2] = {3, -4};
    float floats[2] = {0.5f, -2.0f};
    yt_onnx_attr attrs[5] = {
        {.name = "axis", .kind = YT_ONNX_ATTR_INT, .i = -7},
        {.name = "eps", .kind = YT_ONNX_ATTR_FLOAT, .f = 1e-3f},
        {.name = "mode", .kind = YT_ONNX_ATTR_STRING, .s = "nearest"},
        {.name = "pads", .kind = YT_ONNX_ATTR_INTS, .ints = ints, .n = 2},
        {.name = "scales", .kind = YT_ONNX_ATTR_FLOATS, .floats = floats, .n = 2},
    };
    const char *in[3] = {"x", "w", ""}, *out[2] = {"y", "z"};
    CHECK(yt_onnx_add_node(m, "Custom", "/n", in, 3, out, 2, attrs, 5) == 0, "%s", yt_last_error());
    int64_t dims[3] = {1, 3, 0};
    const char *params[3] = {"batch", NULL, "width"};
    CHECK(yt_onnx_add_value(m, YT_ONNX_INPUT, "x", YT_ONNX_FLOAT, 3, dims, params) == 0, "%s", yt_last_error());
    CHECK(yt_onnx_add_value(m, YT_ONNX_OUTPUT, "y", YT_ONNX_FLOAT, 3, dims, NULL) == 0, "%s", yt_last_error());
    CHECK(yt_onnx_add_metadata(m, "names", "{0: 'a'}") == 0, "%s", yt_last_error());

    Onnx__ModelProto *p = round_trip(m);
    if (p) {
        CHECK(p->ir_version == YT_ONNX_IR_VERSION, "ir %lld", (long long)p->ir_version);
        CHECK(p->n_opset_import == 1 && p->opset_import[0]->version == 13, "opset");
        CHECK(!strcmp(p->producer_name, "yolotrain") && !strcmp(p->producer_version, "9.9"), "producer");
        Onnx__GraphProto *g = p->graph;
        CHECK(g && !strcmp(g->name, "g"), "graph name");
        CHECK(g->n_initializer == 2, "%zu initializers", g->n_initializer);
        Onnx__TensorProto *t = g->initializer[0];
        float want[6] = {0, 2, 4, 1, 3, 5};
        CHECK(t->n_dims == 2 && t->dims[0] == 2 && t->dims[1] == 3, "dims of w");
        CHECK(t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->raw_data.len == sizeof want &&
                  !memcmp(t->raw_data.data, want, sizeof want),
              "raw data of w in logical order");
        t = g->initializer[1];
        CHECK(t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && t->raw_data.len == sizeof iv &&
                  !memcmp(t->raw_data.data, iv, sizeof iv),
              "raw data of idx");
        CHECK(g->n_node == 1, "nodes");
        Onnx__NodeProto *n = g->node[0];
        CHECK(!strcmp(n->op_type, "Custom") && !strcmp(n->name, "/n"), "node names");
        CHECK(n->n_input == 3 && !strcmp(n->input[1], "w") && !strcmp(n->input[2], ""), "inputs (an omitted one kept)");
        CHECK(n->n_output == 2 && !strcmp(n->output[1], "z"), "outputs");
        CHECK(n->n_attribute == 5, "attributes");
        if (n->n_attribute == 5) {
            CHECK(n->attribute[0]->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT && n->attribute[0]->i == -7,
                  "int");
            CHECK(n->attribute[1]->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT && n->attribute[1]->f == 1e-3f,
                  "float");
            CHECK(n->attribute[2]->s.len == 7 && !memcmp(n->attribute[2]->s.data, "nearest", 7), "string");
            CHECK(n->attribute[3]->n_ints == 2 && n->attribute[3]->ints[1] == -4, "ints");
            CHECK(n->attribute[4]->n_floats == 2 && n->attribute[4]->floats[1] == -2.0f, "floats");
        }
        CHECK(g->n_input == 1 && g->n_output == 1, "graph inputs/outputs");
        Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
        CHECK(s->n_dim == 3 && s->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                  !strcmp(s->dim[0]->dim_param, "batch") && s->dim[1]->dim_value == 3 &&
                  !strcmp(s->dim[2]->dim_param, "width"),
              "symbolic and fixed dims");
        s = g->output[0]->type->tensor_type->shape;
        CHECK(s->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                  s->dim[0]->dim_value == 1,
              "fixed dims without names");
        CHECK(p->n_metadata_props == 1 && !strcmp(p->metadata_props[0]->value, "{0: 'a'}"), "metadata");
        onnx__model_proto__free_unpacked(p, NULL);
    }

    /* durable save: the file is the packed model; a missing folder is an error naming the path */
    char dir[] = "/tmp/yt_test_onnx_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], bad[256];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(bad, sizeof bad, "%s/missing/m.onnx", dir);
    CHECK(yt_onnx_save(m, path) == 0, "save: %s", yt_last_error());
    size_t size = 0;
    void *buf = yt_onnx_pack(m, &size);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (size_t)st.st_size == size, "saved size");
    free(buf);
    CHECK(yt_onnx_save(m, bad) < 0 && strstr(yt_last_error(), bad), "error names the path: %s", yt_last_error());
    remove(path);
    rmdir(dir);
    yt_onnx_free(m);
    yt_tensor_release(wt);
    yt_tensor_release(w);
    yt_tensor_release(idx);
}

static void test_refusals(void)
{
    CHECK(yt_onnx_new("g", YT_ONNX_MIN_OPSET - 1, "p", "v") == NULL && strstr(yt_last_error(), "opset=10"), "%s",
          yt_last_error());
    CHECK(yt_onnx_new("g", YT_ONNX_MAX_OPSET + 1, "p", "v") == NULL && strstr(yt_last_error(), "opset=18"), "%s",
          yt_last_error());
    yt_onnx *m = yt_onnx_new("g", 17, "p", "v");
    int64_t shape[1] = {4};
    yt_tensor *u8 = yt_tensor_zeros(YT_U8, 1, shape);
    CHECK(yt_onnx_add_initializer(m, "u", u8) < 0 && strstr(yt_last_error(), "U8"), "%s", yt_last_error());
    CHECK(yt_onnx_add_initializer(m, "none", NULL) < 0, "a NULL tensor");
    int64_t dims[1] = {1};
    CHECK(yt_onnx_add_value(m, YT_ONNX_INPUT, "x", YT_ONNX_FLOAT, YT_MAX_DIMS + 1, dims, NULL) < 0, "rank");
    yt_onnx_attr bad = {.name = "a", .kind = (yt_onnx_attr_kind)99};
    const char *io[1] = {"x"};
    CHECK(yt_onnx_add_node(m, "Op", "/n", io, 1, io, 1, &bad, 1) < 0 && strstr(yt_last_error(), "/n"), "%s",
          yt_last_error());
    Onnx__ModelProto *p = round_trip(m); /* a failed node leaves a model that still packs */
    if (p) onnx__model_proto__free_unpacked(p, NULL);
    yt_onnx_free(m);
    yt_tensor_release(u8);
}

int main(void)
{
    test_round_trip();
    test_refusals();
    return tu_finish();
}
