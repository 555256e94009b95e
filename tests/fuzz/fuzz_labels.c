/* libFuzzer harness for the YOLO label-file parser (data/dataset.h: yt_data_parse_labels): class ids, boxes,
 * polygons, duplicates. The class count comes from the first byte, so class bounds are exercised too. A label
 * file that parses must hold what the parser promises: whole class ids below nc and normalised coordinates. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int nc = 1 + data[0];
    yt_label_entry e = {0};
    int ndup = 0;
    if (yt_data_parse_labels((const char *)data + 1, size - 1, nc, &e, &ndup) == 0) {
        if (e.n < 0 || ndup < 0) abort();
        for (int k = 0; k < e.n; k++) {
            float c = e.cls[k];
            if (!(c >= 0 && c < nc && c == floorf(c))) abort();
            for (int j = 0; j < 4; j++)
                if (!(e.xywhn[4 * k + j] >= 0 && e.xywhn[4 * k + j] <= 1)) abort();
        }
    }
    yt_label_entry_free(&e);
    yt_clear_error();
    return 0;
}
