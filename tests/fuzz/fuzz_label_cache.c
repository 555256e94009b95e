/* libFuzzer harness for the label cache reader (data/dataset.h: yt_label_cache_parse), the file a dataset scan
 * writes beside the labels and trusts on the next start. The hash is taken from the input itself (bytes 8..16)
 * so mutations get past the staleness check into the counts, strings, labels and polygons. Entries that come
 * back must be at most the dataset's file count and pass the label parser's checks. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"

#define FUZZ_NC 80
#define FUZZ_NFILES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t hash = 0;
    if (size >= 16) memcpy(&hash, data + 8, 8);
    int nfiles = FUZZ_NFILES;
    yt_scan_stats st;
    memset(&st, 0, sizeof st);
    yt_strlist msgs = {0};
    yt_label_entry *es = NULL;
    int n = yt_label_cache_parse(data, size, hash, nfiles, FUZZ_NC, &st, &msgs, &es);
    if (n > nfiles) abort();
    for (int i = 0; i < n; i++) {
        const yt_label_entry *e = es + i;
        if (!e->im_file || e->h <= 0 || e->w <= 0 || e->n < 0) abort();
        for (int k = 0; k < e->n; k++)
            if (!(e->cls[k] >= 0 && e->cls[k] < FUZZ_NC && e->cls[k] == floorf(e->cls[k]))) abort();
        yt_label_entry_free(es + i);
    }
    free(es);
    yt_strlist_free(&msgs);
    yt_clear_error();
    return 0;
}
