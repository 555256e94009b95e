/* libFuzzer harness for the archive unpacker (io/unpack.h, libarchive underneath): each input is an archive
 * (zip, tar, tar.gz/.xz/.bz2) unpacked from memory into <sandbox>/out with small bounds. Besides crashes and
 * sanitizer reports, one invariant is checked: nothing may appear in the sandbox beside out/ (a member that
 * escaped the target), and, when the archive is refused, out/ is all that was touched. A fresh sandbox per input,
 * removed afterwards: no state survives between calls. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/unpack.h"

static void check_sandbox(const char *sandbox)
{
    DIR *d = opendir(sandbox);
    if (!d) abort();
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "out")) continue;
        fprintf(stderr, "fuzz_unpack: '%s' was written beside the target\n", e->d_name);
        abort();
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* memory-backed when there is /dev/shm: the disk would cap the rate 7-fold */
    char sandbox[32];
    snprintf(sandbox, sizeof sandbox, "/dev/shm/yt_fuzz_unpack_XXXXXX");
    if (!mkdtemp(sandbox)) {
        snprintf(sandbox, sizeof sandbox, "/tmp/yt_fuzz_unpack_XXXXXX");
        if (!mkdtemp(sandbox)) return 0;
    }
    char out[sizeof sandbox + 8];
    snprintf(out, sizeof out, "%s/out", sandbox);
    if (mkdir(out, 0755) == 0) {
        yt_unpack_limits lim = {4 << 20, 256};
        yt_unpack_stats st;
        yt_unpack_buffer_into(data, size, "fuzz.archive", out, &lim, &st);
        check_sandbox(sandbox);
    }
    yt_remove_tree(sandbox);
    yt_clear_error();
    return 0;
}
