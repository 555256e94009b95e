/* Samples: one dataset item through its transforms (mosaic, letterbox, perspective, mixup, HSV, flips). */
#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int yt_pool_pick(const yt_dataset *ds, const yt_pool *pool, yt_rng *rng)
{
    int B = ds->buffer_len > 0 ? ds->buffer_len : 1;
    int n = pool ? pool->n : 0;
    if (!pool || !pool->cur || n <= 0) return (int)yt_rng_int(rng, ds->n);
    if (B > n) B = n;
    int lo = pool->pos - B + 1;
    if (lo < 0 && !pool->prev) { /* first epoch: the first B positions */
        int k = (int)yt_rng_int(rng, B);
        return pool->cur[k];
    }
    int q = lo + (int)yt_rng_int(rng, B);
    return q >= 0 ? pool->cur[q] : pool->prev[n + q];
}

/* ---- samples ---- */

static void make_view(const yt_dataset *ds, int i, const yt_image *im, yt_labeled_view *v)
{
    const yt_label_entry *e = ds->labels + i;
    v->px = im->px;
    v->h = im->h;
    v->w = im->w;
    v->n = e->n;
    v->cls = e->cls;
    v->xywhn = e->xywhn;
    v->segn = e->segn;
    v->ori_h = e->h;
    v->ori_w = e->w;
}

static void target_shape(const yt_dataset *ds, int i, int *H, int *W)
{
    if (ds->cfg.rect && ds->batch_shapes) {
        int b = i / ds->cfg.batch_size;
        *H = ds->batch_shapes[2 * b];
        *W = ds->batch_shapes[2 * b + 1];
        return;
    }
    *H = *W = ds->cfg.imgsz;
}

static int letterboxed(yt_dataset *ds, int i, int scaleup, yt_sample *out)
{
    yt_image *im = yt_dataset_load_image(ds, i);
    if (!im) return -1;
    yt_labeled_view v;
    make_view(ds, i, im, &v);
    int rc = yt_sample_from_view(&v, out);
    yt_image_release(im);
    if (rc < 0) return yt_error("out of memory");
    int H, W;
    target_shape(ds, i, &H, &W);
    if (yt_letterbox(out, H, W, scaleup) < 0) {
        yt_sample_free(out);
        return yt_error("out of memory");
    }
    return 0;
}

static int mosaic(yt_dataset *ds, int i, const yt_pool *pool, yt_rng *rng, yt_sample *out)
{
    int idx[4] = {i, yt_pool_pick(ds, pool, rng), yt_pool_pick(ds, pool, rng), yt_pool_pick(ds, pool, rng)};
    yt_image *ims[4] = {0};
    yt_labeled_view v[4];
    for (int k = 0; k < 4; k++) {
        ims[k] = yt_dataset_load_image(ds, idx[k]);
        if (!ims[k]) {
            for (int j = 0; j < k; j++) yt_image_release(ims[j]);
            return -1;
        }
        make_view(ds, idx[k], ims[k], &v[k]);
    }
    int s = ds->cfg.imgsz;
    int xc = (int)yt_rng_uniform(rng, s / 2.0, 2 * s - s / 2.0);
    int yc = (int)yt_rng_uniform(rng, s / 2.0, 2 * s - s / 2.0);
    int rc = yt_mosaic4(v, s, xc, yc, out);
    for (int k = 0; k < 4; k++) yt_image_release(ims[k]);
    return rc < 0 ? yt_error("out of memory") : 0;
}

/* Runs steps tf[0..n) on sample i. A step with p > 0 draws from rng (p = 0 draws nothing, so a closed mosaic
 * leaves the later draws where an Ultralytics pipeline without it has them); flips always draw. */
static int run_transforms(yt_dataset *ds, const yt_transform *tf, int n, int i, const yt_pool *pool, yt_rng *rng,
                          yt_sample *out)
{
    int have = 0;
    for (int t = 0; t < n; t++) {
        const yt_transform *s = tf + t;
        int rc = 0;
        switch (s->kind) {
        case YT_TF_MOSAIC:
            if (!have && s->p > 0 && yt_rng_u01(rng) <= s->p) {
                rc = mosaic(ds, i, pool, rng, out);
                have = rc == 0;
            }
            break;
        case YT_TF_LETTERBOX:
            if (!have) {
                rc = letterboxed(ds, i, s->scaleup, out);
                have = rc == 0;
            }
            break;
        case YT_TF_PERSPECTIVE:
            if (yt_random_perspective(out, &s->persp, rng) < 0) rc = yt_error("out of memory");
            break;
        case YT_TF_MIXUP:
            if (s->p > 0 && yt_rng_u01(rng) <= s->p) {
                yt_sample o;
                memset(&o, 0, sizeof o);
                int j = yt_pool_pick(ds, pool, rng);
                rc = run_transforms(ds, tf, t, j, pool, rng, &o);
                if (rc == 0) {
                    double r = yt_rng_beta(rng, 32.0, 32.0);
                    rc = yt_mixup(out, &o, r);
                    yt_sample_free(&o);
                    if (rc < 0) rc = yt_error("mixup: sample sizes differ or out of memory");
                }
            }
            break;
        case YT_TF_HSV:
            yt_hsv_augment(out->px, (size_t)out->h * out->w, s->hsv[0], s->hsv[1], s->hsv[2], rng);
            break;
        case YT_TF_FLIPUD:
            if (yt_rng_u01(rng) < s->p) yt_flip_ud(out);
            break;
        case YT_TF_FLIPLR:
            if (yt_rng_u01(rng) < s->p) yt_flip_lr(out);
            break;
        }
        if (rc < 0) {
            if (have) yt_sample_free(out);
            return -1;
        }
    }
    return 0;
}

int yt_dataset_get_sample(yt_dataset *ds, int i, const yt_pool *pool, yt_rng *rng, yt_sample *out)
{
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= ds->n) return yt_error("sample index %d out of range 0..%d", i, ds->n - 1);
    yt_transform tf[YT_MAX_TRANSFORMS];
    pthread_mutex_lock(&ds->mu);
    int n = ds->ntf;
    memcpy(tf, ds->tf, sizeof *tf * (size_t)n);
    pthread_mutex_unlock(&ds->mu);
    if (n == 0) return yt_error("dataset: no transforms set (yt_dataset_set_transforms)");
    return run_transforms(ds, tf, n, i, pool, rng, out);
}
