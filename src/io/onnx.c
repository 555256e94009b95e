/* ONNX writer: builds protobuf-c messages of onnx.proto (generated at build time by protoc-c) and packs them.
 * Every string, array and sub-message is malloc'd, so protobuf_c_message_free_unpacked frees the whole tree. */
#include "io/onnx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/durable.h"
#include "onnx.pb-c.h"
#include "ops/shape_ops.h"

struct yt_onnx {
    Onnx__ModelProto *model;
    Onnx__GraphProto *graph;
    size_t node_cap, init_cap, input_cap, output_cap, meta_cap;
    size_t bytes; /* raw tensor data so far, to refuse a model over the 2 GiB protobuf limit early */
};

static char *dup_str(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) yt_error("out of memory");
    return d;
}

/* Makes room for one more entry of a repeated field (*items, n used, *cap allocated). */
static int grow(void *items_ptr, size_t n, size_t *cap, size_t item_size)
{
    void **items = items_ptr;
    if (n < *cap) return 0;
    size_t cap2 = *cap ? *cap * 2 : 16;
    void *p = realloc(*items, cap2 * item_size);
    if (!p) return yt_error("out of memory");
    *items = p;
    *cap = cap2;
    return 0;
}

yt_onnx *yt_onnx_new(const char *graph_name, int opset, const char *producer, const char *producer_version)
{
    if (opset < YT_ONNX_MIN_OPSET || opset > YT_ONNX_MAX_OPSET) {
        yt_error("opset=%d is not supported: give %d..%d", opset, YT_ONNX_MIN_OPSET, YT_ONNX_MAX_OPSET);
        return NULL;
    }
    yt_onnx *m = calloc(1, sizeof *m);
    Onnx__ModelProto *model = calloc(1, sizeof *model);
    Onnx__GraphProto *graph = calloc(1, sizeof *graph);
    Onnx__OperatorSetIdProto *ops = calloc(1, sizeof *ops);
    Onnx__OperatorSetIdProto **opsets = calloc(1, sizeof *opsets);
    if (!m || !model || !graph || !ops || !opsets) {
        free(m), free(model), free(graph), free(ops), free(opsets);
        yt_error("out of memory");
        return NULL;
    }
    onnx__model_proto__init(model);
    onnx__graph_proto__init(graph);
    onnx__operator_set_id_proto__init(ops);
    m->model = model;
    m->graph = graph;
    model->graph = graph;
    model->has_ir_version = 1;
    model->ir_version = YT_ONNX_IR_VERSION;
    ops->domain = NULL; /* the default domain "" (ai.onnx) */
    ops->has_version = 1;
    ops->version = opset;
    opsets[0] = ops;
    model->opset_import = opsets;
    model->n_opset_import = 1;
    if (!(model->producer_name = dup_str(producer)) || !(model->producer_version = dup_str(producer_version)) ||
        !(graph->name = dup_str(graph_name))) {
        yt_onnx_free(m);
        return NULL;
    }
    return m;
}

static char **dup_list(const char *const *items, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    if (!out) {
        yt_error("out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = dup_str(items[i]))) {
            for (size_t j = 0; j < i; j++) free(out[j]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static Onnx__AttributeProto *new_attr(const yt_onnx_attr *a)
{
    Onnx__AttributeProto *p = calloc(1, sizeof *p);
    if (!p) {
        yt_error("out of memory");
        return NULL;
    }
    onnx__attribute_proto__init(p);
    p->name = dup_str(a->name);
    if (!p->name) goto fail;
    p->has_type = 1;
    switch (a->kind) {
    case YT_ONNX_ATTR_INT:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        p->has_i = 1, p->i = a->i;
        break;
    case YT_ONNX_ATTR_FLOAT:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        p->has_f = 1, p->f = a->f;
        break;
    case YT_ONNX_ATTR_STRING:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        if (!(p->s.data = (uint8_t *)dup_str(a->s))) goto fail;
        p->has_s = 1, p->s.len = strlen((char *)p->s.data);
        break;
    case YT_ONNX_ATTR_INTS:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        if (!(p->ints = malloc((a->n ? a->n : 1) * sizeof *p->ints))) goto oom;
        if (a->n) memcpy(p->ints, a->ints, a->n * sizeof *p->ints);
        p->n_ints = a->n;
        break;
    case YT_ONNX_ATTR_FLOATS:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        if (!(p->floats = malloc((a->n ? a->n : 1) * sizeof *p->floats))) goto oom;
        if (a->n) memcpy(p->floats, a->floats, a->n * sizeof *p->floats);
        p->n_floats = a->n;
        break;
    default:
        yt_error("attribute %s: unknown kind %d", a->name, (int)a->kind);
        goto fail;
    }
    return p;
oom:
    yt_error("out of memory");
fail:
    protobuf_c_message_free_unpacked(&p->base, NULL);
    return NULL;
}

int yt_onnx_add_node(yt_onnx *m, const char *op_type, const char *name, const char *const *inputs, size_t n_inputs,
                     const char *const *outputs, size_t n_outputs, const yt_onnx_attr *attrs, size_t n_attrs)
{
    Onnx__GraphProto *g = m->graph;
    if (grow(&g->node, g->n_node, &m->node_cap, sizeof *g->node) < 0) return -1;
    Onnx__NodeProto *node = calloc(1, sizeof *node);
    if (!node) return yt_error("out of memory");
    onnx__node_proto__init(node);
    g->node[g->n_node++] = node; /* owned by the graph from here on, even when filling it fails */
    if (!(node->op_type = dup_str(op_type)) || !(node->name = dup_str(name))) return -1;
    if (!(node->input = dup_list(inputs, n_inputs))) return -1;
    node->n_input = n_inputs;
    if (!(node->output = dup_list(outputs, n_outputs))) return -1;
    node->n_output = n_outputs;
    if (n_attrs) {
        if (!(node->attribute = calloc(n_attrs, sizeof *node->attribute))) return yt_error("out of memory");
        for (size_t i = 0; i < n_attrs; i++) {
            if (!(node->attribute[i] = new_attr(&attrs[i]))) return yt_error_prefix("node %s: ", name);
            node->n_attribute = i + 1;
        }
    }
    return 0;
}

int yt_onnx_add_initializer(yt_onnx *m, const char *name, const yt_tensor *t)
{
    if (!t || !t->storage) return yt_error("initializer %s: no tensor (released?)", name);
    if (t->dtype != YT_F32 && t->dtype != YT_I64)
        return yt_error("initializer %s: dtype %s (ONNX export writes float32 and int64)", name,
                        yt_dtype_name(t->dtype));
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
    size_t nbytes = numel * yt_dtype_size(t->dtype);
    if (nbytes > YT_ONNX_MAX_BYTES - m->bytes)
        return yt_error("initializer %s: the weights exceed the 2 GiB limit of an ONNX file without external data",
                        name);
    Onnx__GraphProto *g = m->graph;
    if (grow(&g->initializer, g->n_initializer, &m->init_cap, sizeof *g->initializer) < 0) return -1;
    Onnx__TensorProto *tp = calloc(1, sizeof *tp);
    if (!tp) return yt_error("out of memory");
    onnx__tensor_proto__init(tp);
    g->initializer[g->n_initializer++] = tp;
    if (!(tp->name = dup_str(name))) return -1;
    tp->has_data_type = 1;
    tp->data_type = t->dtype == YT_F32 ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    if (!(tp->dims = malloc((t->ndim ? t->ndim : 1) * sizeof *tp->dims))) return yt_error("out of memory");
    for (int d = 0; d < t->ndim; d++) tp->dims[d] = t->shape[d];
    tp->n_dims = (size_t)t->ndim;
    /* raw_data is little-endian; a contiguous copy of the elements, whatever the tensor's strides */
    yt_tensor *c = yt_contiguous((yt_tensor *)t);
    if (!c) return yt_error_prefix("initializer %s: ", name);
    uint8_t *raw = malloc(nbytes ? nbytes : 1);
    if (!raw) {
        yt_tensor_release(c);
        return yt_error("out of memory");
    }
    if (nbytes) memcpy(raw, yt_data(c), nbytes);
    yt_tensor_release(c);
    tp->has_raw_data = 1;
    tp->raw_data.data = raw;
    tp->raw_data.len = nbytes;
    m->bytes += nbytes;
    return 0;
}

static Onnx__ValueInfoProto *new_value(const char *name, int elem_type, int rank, const int64_t *dims,
                                       const char *const *dim_params)
{
    Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
    Onnx__TypeProto *type = calloc(1, sizeof *type);
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    Onnx__TensorShapeProto *shape = calloc(1, sizeof *shape);
    if (!v || !type || !tt || !shape) {
        free(v), free(type), free(tt), free(shape);
        yt_error("out of memory");
        return NULL;
    }
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    v->type = type;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    tt->shape = shape;
    if (!(v->name = dup_str(name))) goto fail;
    if (!(shape->dim = calloc(rank ? rank : 1, sizeof *shape->dim))) goto oom;
    for (int d = 0; d < rank; d++) {
        Onnx__TensorShapeProto__Dimension *dim = calloc(1, sizeof *dim);
        if (!dim) goto oom;
        onnx__tensor_shape_proto__dimension__init(dim);
        shape->dim[d] = dim;
        shape->n_dim = d + 1;
        if (dim_params && dim_params[d]) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            if (!(dim->dim_param = dup_str(dim_params[d]))) goto fail;
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d];
        }
    }
    return v;
oom:
    yt_error("out of memory");
fail:
    protobuf_c_message_free_unpacked(&v->base, NULL);
    return NULL;
}

int yt_onnx_add_value(yt_onnx *m, int which, const char *name, int elem_type, int rank, const int64_t *dims,
                      const char *const *dim_params)
{
    if (rank < 0 || rank > YT_MAX_DIMS) return yt_error("graph %s %s: rank %d", which ? "output" : "input", name, rank);
    Onnx__GraphProto *g = m->graph;
    Onnx__ValueInfoProto ***items = which == YT_ONNX_OUTPUT ? &g->output : &g->input;
    size_t *n = which == YT_ONNX_OUTPUT ? &g->n_output : &g->n_input;
    size_t *cap = which == YT_ONNX_OUTPUT ? &m->output_cap : &m->input_cap;
    if (grow(items, *n, cap, sizeof **items) < 0) return -1;
    Onnx__ValueInfoProto *v = new_value(name, elem_type, rank, dims, dim_params);
    if (!v) return -1;
    (*items)[(*n)++] = v;
    return 0;
}

int yt_onnx_add_metadata(yt_onnx *m, const char *key, const char *value)
{
    Onnx__ModelProto *model = m->model;
    if (grow(&model->metadata_props, model->n_metadata_props, &m->meta_cap, sizeof *model->metadata_props) < 0)
        return -1;
    Onnx__StringStringEntryProto *e = calloc(1, sizeof *e);
    if (!e) return yt_error("out of memory");
    onnx__string_string_entry_proto__init(e);
    model->metadata_props[model->n_metadata_props++] = e;
    if (!(e->key = dup_str(key)) || !(e->value = dup_str(value))) return -1;
    return 0;
}

void *yt_onnx_pack(const yt_onnx *m, size_t *size)
{
    size_t n = onnx__model_proto__get_packed_size(m->model);
    if (n > YT_ONNX_MAX_BYTES) {
        yt_error("the model packs to %zu bytes, over the 2 GiB limit of an ONNX file without external data", n);
        return NULL;
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        yt_error("out of memory (%zu bytes)", n);
        return NULL;
    }
    *size = onnx__model_proto__pack(m->model, buf);
    return buf;
}

int yt_onnx_save(const yt_onnx *m, const char *path)
{
    size_t size = 0;
    void *buf = yt_onnx_pack(m, &size);
    if (!buf) return yt_error_prefix("saving %s: ", path);
    char *tmp = yt_temp_path(path);
    if (!tmp) {
        free(buf);
        return yt_error_prefix("saving %s: ", path);
    }
    FILE *fp = fopen(tmp, "wb");
    int ok = fp != NULL, err = errno;
    if (ok) {
        ok = fwrite(buf, 1, size, fp) == size && fflush(fp) == 0;
        err = errno;
        if (fclose(fp) != 0 && ok) ok = 0, err = errno;
    }
    free(buf);
    int rc;
    if (!ok) {
        if (fp) remove(tmp);
        rc = yt_error("saving %s: write to %s failed: %s", path, tmp, strerror(err));
    } else {
        rc = yt_durable_rename(tmp, path);
    }
    free(tmp);
    return rc;
}

void yt_onnx_free(yt_onnx *m)
{
    if (!m) return;
    if (m->model) protobuf_c_message_free_unpacked(&m->model->base, NULL);
    free(m);
}
