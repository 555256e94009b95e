/* Threaded batch loader (see loader.h). */
#include "data/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct yt_loader {
    yt_dataset *ds;
    int batch, workers, shuffle, nb;
    int world, rank, per_rank; /* data-parallel shard: this rank sees padded positions rank, rank+world, ... */
    uint64_t seed;
    int epoch;          /* epoch of the current / next pass */
    int pass_active;    /* a pass has started (order computed) */
    int *order, *prev;  /* this epoch's order, the previous epoch's (NULL for epoch 0) */
    /* workers */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t *threads;
    int nthreads;
    int next_claim, next_take, depth, stop;
    yt_batch **slots;   /* nb */
    char **errs;        /* nb */
};

void yt_batch_free(yt_batch *b)
{
    if (!b) return;
    yt_tensor_release(b->img);
    yt_tensor_release(b->cls);
    yt_tensor_release(b->bboxes);
    yt_tensor_release(b->batch_idx);
    if (b->im_file)
        for (int i = 0; i < b->B; i++) free(b->im_file[i]);
    free(b->im_file);
    free(b->ori_shape);
    free(b->resized_shape);
    free(b->ratio_pad);
    free(b->index);
    free(b);
}

yt_batch *yt_collate(yt_sample *s, int B, const int *index, char *const *files)
{
    if (B < 1) return (yt_error("collate: empty batch"), NULL);
    int H = s[0].h, W = s[0].w, N = 0;
    for (int k = 0; k < B; k++) {
        if (s[k].h != H || s[k].w != W) {
            yt_error("collate: sample %d is %dx%d, sample 0 is %dx%d", k, s[k].w, s[k].h, W, H);
            return NULL;
        }
        N += s[k].inst.n;
    }
    yt_batch *b = calloc(1, sizeof *b);
    if (!b) return (yt_error("out of memory"), NULL);
    b->B = B;
    int64_t ishape[4] = {B, 3, H, W}, cshape[2] = {N, 1}, bshape[2] = {N, 4}, ishape1[1] = {N};
    b->img = yt_tensor_empty(YT_U8, 4, ishape);
    b->cls = yt_tensor_empty(YT_F32, 2, cshape);
    b->bboxes = yt_tensor_empty(YT_F32, 2, bshape);
    b->batch_idx = yt_tensor_empty(YT_F32, 1, ishape1);
    b->im_file = calloc((size_t)B, sizeof(char *));
    b->ori_shape = malloc(sizeof(int) * 2 * B);
    b->resized_shape = malloc(sizeof(int) * 2 * B);
    b->ratio_pad = malloc(sizeof(double) * 4 * B);
    b->index = malloc(sizeof(int) * B);
    if (!b->img || !b->cls || !b->bboxes || !b->batch_idx || !b->im_file || !b->ori_shape || !b->resized_shape ||
        !b->ratio_pad || !b->index) {
        yt_batch_free(b);
        return (yt_error("out of memory collating a %dx3x%dx%d batch", B, H, W), NULL);
    }
    uint8_t *img = yt_u8(b->img);
    float *cls = yt_f32(b->cls), *bb = yt_f32(b->bboxes), *bi = yt_f32(b->batch_idx);
    size_t plane = (size_t)H * W;
    int j = 0;
    for (int k = 0; k < B; k++) {
        const uint8_t *px = s[k].px;
        uint8_t *r = img + (size_t)k * 3 * plane, *g = r + plane, *bl = g + plane;
        for (size_t q = 0; q < plane; q++) {
            r[q] = px[3 * q];
            g[q] = px[3 * q + 1];
            bl[q] = px[3 * q + 2];
        }
        for (int i = 0; i < s[k].inst.n; i++, j++) {
            const float *x = s[k].inst.box + 4 * i;
            cls[j] = s[k].inst.cls[i];
            bb[4 * j] = (x[0] + x[2]) / 2 / W;
            bb[4 * j + 1] = (x[1] + x[3]) / 2 / H;
            bb[4 * j + 2] = (x[2] - x[0]) / W;
            bb[4 * j + 3] = (x[3] - x[1]) / H;
            bi[j] = (float)k;
        }
        b->im_file[k] = strdup(files[k] ? files[k] : "");
        b->ori_shape[2 * k] = s[k].ori_h;
        b->ori_shape[2 * k + 1] = s[k].ori_w;
        b->resized_shape[2 * k] = H;
        b->resized_shape[2 * k + 1] = W;
        b->ratio_pad[4 * k] = s[k].ratio_h;
        b->ratio_pad[4 * k + 1] = s[k].ratio_w;
        b->ratio_pad[4 * k + 2] = s[k].pad_left;
        b->ratio_pad[4 * k + 3] = s[k].pad_top;
        b->index[k] = index[k];
    }
    return b;
}

static int *make_order(const yt_loader *l, int epoch)
{
    int n = l->ds->n;
    int *o = malloc(sizeof(int) * (n + 1));
    if (!o) return NULL;
    for (int i = 0; i < n; i++) o[i] = i;
    if (l->shuffle) {
        yt_rng r;
        yt_rng_seed(&r, l->seed, (uint64_t)epoch, 0xFFFFFFFFFFFFULL);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)yt_rng_int(&r, i + 1);
            int t = o[i];
            o[i] = o[j];
            o[j] = t;
        }
    }
    return o;
}

static int build_batch(yt_loader *l, const int *order, const int *prev, int epoch, int b, yt_batch **out)
{
    int n = l->ds->n;
    int p0 = b * l->batch, p1 = p0 + l->batch < l->per_rank ? p0 + l->batch : l->per_rank;
    int B = p1 - p0;
    if (B < 1) return yt_error("empty batch %d", b);
    yt_sample *s = calloc((size_t)B, sizeof *s);
    int *idx = malloc(sizeof(int) * B);
    char **files = malloc(sizeof(char *) * B);
    if (!s || !idx || !files) {
        free(s);
        free(idx);
        free(files);
        return yt_error("out of memory");
    }
    int rc = 0, k;
    for (k = 0; k < B; k++) {
        /* global position in the epoch's order, padded by wrapping (like a distributed sampler); the sample's
         * randomness is keyed on it, so N ranks see exactly the samples one process would */
        int gp = (p0 + k) * l->world + l->rank;
        int p = gp % n;
        yt_rng rng;
        yt_rng_seed(&rng, l->seed, (uint64_t)epoch, (uint64_t)gp);
        yt_pool pool = {order, prev, n, p};
        idx[k] = order[p];
        files[k] = l->ds->labels[order[p]].im_file;
        if (yt_dataset_get_sample(l->ds, order[p], &pool, &rng, s + k) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        *out = yt_collate(s, B, idx, files);
        if (!*out) rc = -1;
    }
    for (int j = 0; j < k && j < B; j++) yt_sample_free(s + j);
    free(s);
    free(idx);
    free(files);
    return rc;
}

int yt_loader_build_batch(yt_loader *l, int epoch, int b, yt_batch **out)
{
    if (b < 0 || b >= l->nb) return yt_error("batch %d out of range 0..%d", b, l->nb - 1);
    int *o = make_order(l, epoch), *p = epoch > 0 ? make_order(l, epoch - 1) : NULL;
    if (!o || (epoch > 0 && !p)) {
        free(o);
        free(p);
        return yt_error("out of memory");
    }
    int rc = build_batch(l, o, p, epoch, b, out);
    free(o);
    free(p);
    return rc;
}

static void *worker_main(void *arg)
{
    yt_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->next_claim >= l->nb) break;
        if (l->next_claim - l->next_take >= l->depth) {
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        int b = l->next_claim++;
        pthread_mutex_unlock(&l->mu);
        yt_batch *out = NULL;
        int rc = build_batch(l, l->order, l->prev, l->epoch, b, &out);
        pthread_mutex_lock(&l->mu);
        if (rc < 0) l->errs[b] = strdup(yt_last_error()); /* this thread's message */
        else l->slots[b] = out;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_workers(yt_loader *l)
{
    if (!l->nthreads) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
    l->nthreads = 0;
    l->stop = 0;
    for (int b = l->next_take; b < l->nb; b++) {
        yt_batch_free(l->slots[b]);
        l->slots[b] = NULL;
        free(l->errs[b]);
        l->errs[b] = NULL;
    }
    l->next_claim = l->next_take;
}

static int start_workers(yt_loader *l)
{
    if (l->workers <= 0 || l->nthreads) return 0;
    l->stop = 0;
    l->next_claim = l->next_take;
    for (int i = 0; i < l->workers; i++) {
        if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
            stop_workers(l);
            return yt_error("cannot start loader thread %d", i);
        }
        l->nthreads++;
    }
    return 0;
}

static void end_pass(yt_loader *l)
{
    stop_workers(l);
    for (int b = 0; b < l->nb; b++) {
        yt_batch_free(l->slots[b]);
        l->slots[b] = NULL;
        free(l->errs[b]);
        l->errs[b] = NULL;
    }
    free(l->order);
    free(l->prev);
    l->order = l->prev = NULL;
    l->pass_active = 0;
    l->next_take = l->next_claim = 0;
}

static int begin_pass(yt_loader *l)
{
    l->order = make_order(l, l->epoch);
    l->prev = l->epoch > 0 ? make_order(l, l->epoch - 1) : NULL;
    if (!l->order || (l->epoch > 0 && !l->prev)) {
        free(l->order);
        free(l->prev);
        l->order = l->prev = NULL;
        return yt_error("out of memory");
    }
    l->pass_active = 1;
    l->next_take = l->next_claim = 0;
    return start_workers(l);
}

yt_loader *yt_loader_create(yt_dataset *ds, int batch, int workers, int shuffle, uint64_t seed)
{
    if (!ds || batch < 1 || workers < 0) return (yt_error("loader: invalid batch %d or workers %d", batch, workers), NULL);
    if (ds->source && workers > 0)
        return (yt_error("loader: the dataset's images come from a source that runs on the calling thread only: "
                         "workers must be 0"), NULL);
    if (ds->cfg.rect && shuffle) return (yt_error("loader: rect batches cannot be shuffled"), NULL);
    /* a rect dataset smaller than its batch holds one batch of all its images */
    if (ds->cfg.rect && batch != ds->cfg.batch_size && !(batch == ds->n && ds->n < ds->cfg.batch_size))
        return (yt_error("loader: rect dataset was built for batch %d, loader batch is %d", ds->cfg.batch_size, batch), NULL);
    yt_loader *l = calloc(1, sizeof *l);
    if (!l) return (yt_error("out of memory"), NULL);
    l->ds = ds;
    l->batch = batch;
    l->workers = workers;
    l->shuffle = shuffle;
    l->seed = seed;
    l->world = 1;
    l->rank = 0;
    l->per_rank = ds->n;
    l->nb = (ds->n + batch - 1) / batch;
    l->depth = workers > 0 ? 2 * workers : 1;
    l->slots = calloc((size_t)l->nb, sizeof *l->slots);
    l->errs = calloc((size_t)l->nb, sizeof *l->errs);
    l->threads = calloc((size_t)(workers > 0 ? workers : 1), sizeof(pthread_t));
    if (!l->slots || !l->errs || !l->threads) {
        free(l->slots);
        free(l->errs);
        free(l->threads);
        free(l);
        return (yt_error("out of memory"), NULL);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (ds->cfg.augment) {
        int cap = ds->buffer_len + batch * (workers + 2);
        yt_dataset_set_cache_capacity(ds, cap);
    }
    return l;
}

void yt_loader_destroy(yt_loader *l)
{
    if (!l) return;
    end_pass(l);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->slots);
    free(l->errs);
    free(l->threads);
    free(l);
}

int yt_loader_set_shard(yt_loader *l, int world, int rank)
{
    if (world < 1 || rank < 0 || rank >= world) return yt_error("loader: invalid shard rank %d of %d", rank, world);
    if (l->pass_active) return yt_error("loader: set the shard before the first batch");
    if (world > 1 && l->ds->cfg.rect) return yt_error("loader: rect batches cannot be sharded across ranks");
    l->world = world;
    l->rank = rank;
    l->per_rank = (l->ds->n + world - 1) / world;
    l->nb = (l->per_rank + l->batch - 1) / l->batch;
    free(l->slots);
    free(l->errs);
    l->slots = calloc((size_t)l->nb, sizeof *l->slots);
    l->errs = calloc((size_t)l->nb, sizeof *l->errs);
    if (!l->slots || !l->errs) return yt_error("out of memory");
    return 0;
}

int yt_loader_len(const yt_loader *l) { return l->nb; }
int yt_loader_epoch(const yt_loader *l) { return l->epoch; }

int yt_loader_next(yt_loader *l, yt_batch **out)
{
    *out = NULL;
    if (!l->pass_active && begin_pass(l) < 0) return -1;
    if (l->next_take >= l->nb) {
        end_pass(l);
        l->epoch++;
        /* prefetch the next epoch right away */
        if (begin_pass(l) < 0) return -1;
        return 0;
    }
    int b = l->next_take;
    if (l->workers <= 0) {
        if (build_batch(l, l->order, l->prev, l->epoch, b, out) < 0) return -1;
        l->next_take++;
        return 1;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->slots[b] && !l->errs[b]) pthread_cond_wait(&l->cv, &l->mu);
    if (l->errs[b]) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", l->errs[b]);
        free(l->errs[b]);
        l->errs[b] = NULL;
        /* the failed batch stays failed: rebuild it on the next call */
        pthread_mutex_unlock(&l->mu);
        stop_workers(l);
        start_workers(l);
        return yt_error("%s", msg);
    }
    *out = l->slots[b];
    l->slots[b] = NULL;
    l->next_take++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return 1;
}

void yt_loader_set_epoch(yt_loader *l, int epoch)
{
    if (l->pass_active && l->epoch == epoch && l->next_take == 0) return; /* already prefetching it */
    end_pass(l);
    l->epoch = epoch;
}

int yt_loader_restart(yt_loader *l)
{
    stop_workers(l); /* batches built ahead but not yet taken are dropped */
    return l->pass_active ? start_workers(l) : 0;
}

int yt_loader_close_mosaic(yt_loader *l)
{
    yt_dataset_close_mosaic(l->ds);
    return yt_loader_restart(l);
}
