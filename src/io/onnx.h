/* ONNX model files, written with protobuf-c from the public onnx.proto schema (Debian's libonnx-dev).
 *
 * A builder collects one graph: nodes (operator, inputs, outputs, attributes), initializers (the weights, F32 or
 * I64 tensors stored as raw little-endian data), the graph's inputs and outputs (element type and shape, each
 * dimension a size or a symbolic name such as "height"), and the model's metadata_props. yt_onnx_save packs it
 * and writes it durably (temporary file, fsync, rename). What the graph computes is the caller's business: the
 * exporter (lua/yolotrain/engine/exporter.lua) walks a model; this file only knows the container.
 *
 *   yt_onnx *m = yt_onnx_new("main_graph", 17, "yolotrain", "0.1.0");
 *   yt_onnx_add_initializer(m, "w", weight);
 *   yt_onnx_add_node(m, "Conv", "/conv", (const char *[]){"images", "w"}, 2, (const char *[]){"y"}, 1, attrs, 2);
 *   yt_onnx_add_value(m, YT_ONNX_INPUT, "images", YT_ONNX_FLOAT, 4, dims, NULL);
 *   yt_onnx_save(m, "model.onnx");
 *   yt_onnx_free(m);
 *
 * Every function returns 0 or -1 with yt_error set (NULL for yt_onnx_new); strings and arrays are copied. */
#ifndef YT_IO_ONNX_H
#define YT_IO_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct yt_onnx yt_onnx;

/* TensorProto.DataType values used for graph inputs and outputs */
enum { YT_ONNX_FLOAT = 1, YT_ONNX_INT64 = 7 };
enum { YT_ONNX_INPUT = 0, YT_ONNX_OUTPUT = 1 };

typedef enum {
    YT_ONNX_ATTR_INT,
    YT_ONNX_ATTR_FLOAT,
    YT_ONNX_ATTR_STRING,
    YT_ONNX_ATTR_INTS,
    YT_ONNX_ATTR_FLOATS
} yt_onnx_attr_kind;

typedef struct {
    const char *name;
    yt_onnx_attr_kind kind;
    int64_t i;
    float f;
    const char *s;
    const int64_t *ints;
    const float *floats;
    size_t n; /* entries of ints / floats */
} yt_onnx_attr;

/* The ONNX IR version written: 8, the one of the opsets yt_onnx_new accepts (ONNX 1.12). */
#define YT_ONNX_IR_VERSION 8
#define YT_ONNX_MIN_OPSET 11
#define YT_ONNX_MAX_OPSET 17
/* protobuf messages are limited to 2 GiB; larger models need ONNX's external data, which this writer lacks */
#define YT_ONNX_MAX_BYTES ((size_t)2147483647)

yt_onnx *yt_onnx_new(const char *graph_name, int opset, const char *producer, const char *producer_version);
int yt_onnx_add_node(yt_onnx *m, const char *op_type, const char *name, const char *const *inputs, size_t n_inputs,
                     const char *const *outputs, size_t n_outputs, const yt_onnx_attr *attrs, size_t n_attrs);
/* t: F32 or I64 (any layout; copied) */
int yt_onnx_add_initializer(yt_onnx *m, const char *name, const yt_tensor *t);
/* which: YT_ONNX_INPUT or YT_ONNX_OUTPUT. dims[i] >= 0 is a fixed size; with dim_params[i] non-NULL that
 * dimension is symbolic instead (dims[i] is then ignored). dim_params may be NULL. */
int yt_onnx_add_value(yt_onnx *m, int which, const char *name, int elem_type, int rank, const int64_t *dims,
                      const char *const *dim_params);
int yt_onnx_add_metadata(yt_onnx *m, const char *key, const char *value);
/* The packed model (malloc'd, *size bytes) */
void *yt_onnx_pack(const yt_onnx *m, size_t *size);
int yt_onnx_save(const yt_onnx *m, const char *path);
void yt_onnx_free(yt_onnx *m);

#endif
