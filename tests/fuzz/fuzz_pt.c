/* libFuzzer harness for the .pt reader (io/pt.h, io/pickle.h, io/zipread.h). An input starting with "PK" is a
 * checkpoint archive: opened from memory, and the state dict of every module stored in its top-level dict is
 * taken (which reads and converts every tensor). Anything else goes straight to the pickle interpreter, so
 * mutations are not all stopped by the zip CRC. No state survives between calls. */
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/pt.h"

static void read_checkpoint(const uint8_t *data, size_t size)
{
    yt_pt *pt = yt_pt_open_buffer(data, size, "fuzz.pt");
    if (!pt) return;
    const yt_pk *root = yt_pt_root(pt);
    if (root->kind == YT_PK_DICT)
        for (size_t k = 1; k < root->n; k += 2) {
            if (!yt_pt_is_module(root->items[k])) continue;
            yt_tensor_file sd;
            if (yt_pt_state_dict(pt, root->items[k], &sd) == 0) yt_tensor_file_free(&sd);
        }
    yt_pt_close(pt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 2 && data[0] == 'P' && data[1] == 'K')
        read_checkpoint(data, size);
    else
        yt_pickle_free(yt_pickle_load(data, size, "fuzz.pkl"));
    yt_clear_error();
    return 0;
}
