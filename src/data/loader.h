/* Threaded data loader: `workers` threads build whole batches ahead (bounded by 2 x workers batches) and the
 * caller takes them in order. Every sample's randomness comes from (seed, epoch, position in the epoch), so
 * batches are identical for any number of workers. Shuffled per epoch (Fisher-Yates, same seed scheme). */
#ifndef YT_DATA_LOADER_H
#define YT_DATA_LOADER_H

#include <stdint.h>

#include "core/tensor.h"
#include "data/dataset.h"

/* One collated batch in Ultralytics' layout. */
typedef struct {
    int B;
    yt_tensor *img;        /* U8 B x 3 x H x W (RGB) */
    yt_tensor *cls;        /* F32 N x 1 */
    yt_tensor *bboxes;     /* F32 N x 4, normalised cx cy w h */
    yt_tensor *batch_idx;  /* F32 N */
    char **im_file;        /* B */
    int *ori_shape;        /* B x 2 (h, w) */
    int *resized_shape;    /* B x 2 (h, w) of the final image */
    double *ratio_pad;     /* B x 4: ratio h, ratio w, pad left, pad top */
    int *index;            /* B dataset indices */
} yt_batch;

void yt_batch_free(yt_batch *b);

/* Collates samples (all of one size) into a batch; idx/files per sample. NULL + yt_error on failure. */
yt_batch *yt_collate(yt_sample *samples, int B, const int *index, char *const *files);

typedef struct yt_loader yt_loader;

/* The loader borrows ds (keep it alive). workers = 0 builds batches on the calling thread. */
yt_loader *yt_loader_create(yt_dataset *ds, int batch, int workers, int shuffle, uint64_t seed);
void yt_loader_destroy(yt_loader *l);
/* Data-parallel sharding (before the first batch): with world ranks, this rank's local position q is the
 * epoch order's position q*world + rank (wrapping to pad the last rows), so every rank has the same number of
 * batches and the union of the ranks' batch i is one process's batch i of world times the size. */
int yt_loader_set_shard(yt_loader *l, int world, int rank);
int yt_loader_len(const yt_loader *l);      /* batches per epoch (last one may be smaller) */
int yt_loader_epoch(const yt_loader *l);    /* epoch of the current / next pass */
/* Next batch of the current pass (starting one if needed): 1 with *out (caller frees), 0 at the end of the
 * pass (the epoch then advances by one), -1 on error (yt_error). */
int yt_loader_next(yt_loader *l, yt_batch **out);
/* Restarts from the beginning of epoch e at the next call. */
void yt_loader_set_epoch(yt_loader *l, int epoch);
/* Drops the batches built ahead and not yet taken (after the dataset's transforms changed): the next batch is
 * built with the dataset as it is now. 0 or -1 (a thread that does not start). */
int yt_loader_restart(yt_loader *l);
/* Disables mosaic and mixup (yt_dataset_close_mosaic) from the next batch taken on. */
int yt_loader_close_mosaic(yt_loader *l);
/* Builds batch b of epoch e directly (no threads). b is 0-based. 0 or -1 with yt_error. */
int yt_loader_build_batch(yt_loader *l, int epoch, int b, yt_batch **out);

#endif
