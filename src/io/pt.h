/* PyTorch `.pt` checkpoints (torch.save's zip format) read as data, never executed.
 *
 * The archive holds `<name>/data.pkl` (the pickled object, read by the restricted interpreter of io/pickle.h)
 * and `<name>/data/<key>` (raw little-endian storages). Tensors are materialised on request: the storage member is
 * read (io/zipread.h limits), its size checked against what the tensor needs, and the (possibly strided) elements
 * copied into a new contiguous tensor: half/float -> F32 (fp16 -> fp32 is exact), double -> F64, integers -> I64,
 * byte/bool -> U8.
 *
 * A pickled nn.Module is an OBJECT whose state has `_parameters`, `_buffers`, `_non_persistent_buffers_set` and
 * `_modules`; yt_pt_state_dict walks them in that order, depth first, and produces the names and order of
 * `module.state_dict()` (None entries and non-persistent buffers left out). */
#ifndef YT_PT_H
#define YT_PT_H

#include "io/pickle.h"
#include "io/safetensors.h"

typedef struct yt_pt yt_pt;

#define YT_PT_MAX_MODULE_DEPTH 64
#define YT_PT_MAX_TENSORS (1 << 20)

/* NULL + yt_error naming the file on any problem. The buffer must outlive the checkpoint. */
yt_pt *yt_pt_open(const char *path);
yt_pt *yt_pt_open_buffer(const void *data, size_t size, const char *name);
const yt_pk *yt_pt_root(const yt_pt *pt);
const char *yt_pt_name(const yt_pt *pt);
/* A TENSOR value as a new contiguous tensor (new reference), NULL + yt_error. */
yt_tensor *yt_pt_tensor(yt_pt *pt, const yt_pk *tensor);
/* Is v a pickled nn.Module (an object with a `_modules` attribute)? */
int yt_pt_is_module(const yt_pk *v);
/* The state dict of a module, names and order as state_dict() gives them. *out zeroed first, empty on error. */
int yt_pt_state_dict(yt_pt *pt, const yt_pk *module, yt_tensor_file *out);
void yt_pt_close(yt_pt *pt);

#endif
