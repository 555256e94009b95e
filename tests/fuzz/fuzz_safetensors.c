/* libFuzzer harness for the safetensors reader (io/safetensors.h): header length, JSON header, dtypes, shapes,
 * offsets and the tensor data. The reader takes a path, so each input goes to an in-memory file (memfd) read
 * through /proc/self/fd. Every tensor and metadata value of a file that loads is looked up once. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "io/safetensors.h"

static int input_fd = -1;
static char input_path[64];

static int write_input(const uint8_t *data, size_t size)
{
    if (input_fd < 0) {
        input_fd = memfd_create("fuzz.safetensors", 0);
        if (input_fd < 0) abort();
        snprintf(input_path, sizeof input_path, "/proc/self/fd/%d", input_fd);
    }
    if (ftruncate(input_fd, 0) != 0 || pwrite(input_fd, data, size, 0) != (ssize_t)size) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(data, size);
    yt_tensor_file f;
    if (yt_safetensors_load(input_path, &f) == 0) {
        for (int i = 0; i < f.count; i++)
            if (yt_tensor_file_get(&f, f.items[i].name) != f.items[i].tensor) abort();
        for (int i = 0; i < f.n_meta; i++)
            if (!yt_tensor_file_meta(&f, f.meta_keys[i])) abort();
        yt_tensor_file_free(&f);
    }
    yt_clear_error();
    return 0;
}
