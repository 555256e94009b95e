/* Training-pipeline throughput on coco128 (decode + mosaic + perspective + HSV + flip + collate), images/s at
 * imgsz 320 and 640 with 1 and 2 workers, plus the single-thread cost of each stage. Numbers are from one run on
 * a shared machine: compare ratios within the run. Usage: bench_data [epochs=3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int epochs = argc > 1 ? atoi(argv[1]) : 3;
    if (epochs < 2) epochs = 2;
    const char *dir = YT_DATASETS_DIR "/coco128/images/train2017";
    yt_strlist files;
    if (yt_data_list_images(&dir, 1, &files) < 0) {
        fprintf(stderr, "%s\n", yt_last_error());
        return 1;
    }
    /* stage costs, single thread */
    {
        double t0 = now();
        int n = 32;
        for (int i = 0; i < n; i++) {
            yt_image im;
            if (yt_image_load(files.v[i], &im, NULL) == 0) yt_image_free(&im);
        }
        double dec = (now() - t0) / n * 1e3;
        yt_image im;
        yt_image_load(files.v[0], &im, NULL);
        uint8_t *dst = malloc(320 * 320 * 3);
        t0 = now();
        for (int i = 0; i < 50; i++) yt_resize_linear_u8(im.px, im.h, im.w, (size_t)im.w * 3, dst, 240, 320, 320 * 3);
        double rs = (now() - t0) / 50 * 1e3;
        yt_rng rng;
        yt_rng_seed(&rng, 1, 2, 3);
        t0 = now();
        for (int i = 0; i < 50; i++) yt_hsv_augment(dst, 240 * 320, 0.015, 0.7, 0.4, &rng);
        double hs = (now() - t0) / 50 * 1e3;
        printf("stage cost (1 thread): decode %.2f ms/img (coco128 ~640x480), resize->320 %.2f ms, HSV 320x240 %.2f ms\n",
               dec, rs, hs);
        free(dst);
        yt_image_free(&im);
    }
    int sizes[2] = {320, 640}, workers[2] = {1, 2};
    for (int si = 0; si < 2; si++) {
        for (int wi = 0; wi < 2; wi++) {
            yt_scan_cfg scan = {.nc = 80, .single_cls = 0, .use_label_cache = 0, .prefix = ""};
            yt_dataset_cfg cfg = {.imgsz = sizes[si], .augment = 1, .stride = 32, .batch_size = 16};
            /* the training transforms at the hyperparameters of cfg/default.lua */
            const yt_transform tf[] = {
                {.kind = YT_TF_MOSAIC, .p = 1.0},
                {.kind = YT_TF_LETTERBOX, .scaleup = 1},
                {.kind = YT_TF_PERSPECTIVE, .persp = {0, 0.1, 0.5, 0, 0}},
                {.kind = YT_TF_MIXUP, .p = 0},
                {.kind = YT_TF_HSV, .hsv = {0.015, 0.7, 0.4}},
                {.kind = YT_TF_FLIPUD, .p = 0},
                {.kind = YT_TF_FLIPLR, .p = 0.5},
            };
            yt_dataset *ds = yt_dataset_open((const char *const *)files.v, files.n, &scan, &cfg);
            if (ds && yt_dataset_set_transforms(ds, tf, (int)(sizeof tf / sizeof tf[0])) < 0) {
                yt_dataset_destroy(ds);
                ds = NULL;
            }
            yt_loader *l = ds ? yt_loader_create(ds, 16, workers[wi], 1, 0) : NULL;
            if (!l) {
                fprintf(stderr, "%s\n", yt_last_error());
                return 1;
            }
            double first = 0, rest = 0;
            long imgs_first = 0, imgs_rest = 0;
            for (int e = 0; e < epochs; e++) {
                double t0 = now();
                long imgs = 0;
                yt_batch *b;
                int rc;
                while ((rc = yt_loader_next(l, &b)) == 1) {
                    imgs += b->B;
                    yt_batch_free(b);
                }
                if (rc < 0) {
                    fprintf(stderr, "%s\n", yt_last_error());
                    return 1;
                }
                double dt = now() - t0;
                if (e == 0) first += dt, imgs_first += imgs;
                else rest += dt, imgs_rest += imgs;
            }
            printf("imgsz %d, workers %d: epoch 0 (cold decode cache) %.1f img/s, epochs 1-%d %.1f img/s "
                   "(cache hits %lld, misses %lld)\n",
                   sizes[si], workers[wi], imgs_first / first, epochs - 1, imgs_rest / rest, ds->cache_hits,
                   ds->cache_misses);
            fflush(stdout);
            yt_loader_destroy(l);
            yt_dataset_destroy(ds);
        }
    }
    yt_strlist_free(&files);
    return 0;
}
