/* safetensors files: an 8-byte little-endian header length N, N bytes of JSON
 *   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}
 * then the raw little-endian tensor data (offsets relative to the first data byte).
 *
 * Supported dtypes: F32, F64, I64, U8, and F16 / BF16, which load as F32 tensors (exactly: every 16-bit value is
 * a float). The reader validates everything it is given (header length, JSON syntax,
 * dtype, shape, offsets in range / non-overlapping / matching dtype x shape) so a truncated or hostile file is an
 * error naming the file, never a crash or an allocation larger than the file.
 * The writer pads the header with spaces to an 8-byte boundary, always writes "__metadata__", and writes to
 * "<path>.tmp.<pid>" then renames, so a reader never sees half a file. */
#ifndef YT_SAFETENSORS_H
#define YT_SAFETENSORS_H

#include "core/tensor.h"

typedef struct {
    char *name;
    yt_tensor *tensor; /* owned by the file struct */
} yt_named_tensor;

typedef struct {
    int count;
    yt_named_tensor *items; /* in header order */
    int n_meta;
    char **meta_keys;
    char **meta_values;
} yt_tensor_file;

/* 0 on success, -1 + yt_error naming the file. *out is zeroed first, and left empty on error. */
int yt_safetensors_load(const char *path, yt_tensor_file *out);
/* The same checks of the whole header, but only the metadata is kept (count is 0; no tensor data is read):
 * what a checkpoint's train_args or epoch cost without loading its weights. */
int yt_safetensors_load_metadata(const char *path, yt_tensor_file *out);
/* Borrowed reference, NULL if absent. */
yt_tensor *yt_tensor_file_get(const yt_tensor_file *f, const char *name);
/* NULL if absent. */
const char *yt_tensor_file_meta(const yt_tensor_file *f, const char *key);
/* Releases every tensor (one reference each) and the strings; leaves *f empty. Safe on an empty struct. */
void yt_tensor_file_free(yt_tensor_file *f);

/* Writes n tensors in the given order (names unique, non-empty, not "__metadata__"; any strides). */
int yt_safetensors_save(const char *path, int n, const char *const *names, yt_tensor *const *tensors, int n_meta,
                        const char *const *meta_keys, const char *const *meta_values);

/* The same, storing F32 tensors as F16 when f32_as_f16 (rounded to nearest even; other dtypes as they are):
 * a finished run's weights at half the size, as Ultralytics saves them. */
int yt_safetensors_save_as(const char *path, int n, const char *const *names, yt_tensor *const *tensors, int n_meta,
                           const char *const *meta_keys, const char *const *meta_values, int f32_as_f16);

/* Limits of the reader. */
#define YT_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

#endif
