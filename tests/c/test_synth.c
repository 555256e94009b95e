/* The embedded default dataset (src/data/synth.c): determinism, atomic generation and reuse, labels in range,
 * boxes that match the drawn pixels, and the class / size statistics the quickstart relies on. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/image.h"
#include "data/synth.h"
#include "testutil.h"

static char tmpdir[512];

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *buf = NULL;
    if (yt_read_file(path, &buf, n) < 0) return NULL;
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Byte-compares the split's images and labels of two dataset directories; returns the number of files compared
 * (-1 on the first difference or missing file). */
static int compare_split(const char *a, const char *b, const char *split, int count, int verbose)
{
    int files = 0;
    for (int i = 0; i < count; i++) {
        for (int k = 0; k < 2; k++) {
            char pa[1024], pb[1024];
            const char *kind = k ? "labels" : "images", *ext = k ? "txt" : "png";
            snprintf(pa, sizeof pa, "%s/%s/%s/%06d.%s", a, kind, split, i, ext);
            snprintf(pb, sizeof pb, "%s/%s/%s/%06d.%s", b, kind, split, i, ext);
            size_t na, nb;
            uint8_t *da = slurp(pa, &na), *db = slurp(pb, &nb);
            int same = da && db && na == nb && memcmp(da, db, na) == 0;
            free(da);
            free(db);
            if (!same) {
                if (verbose) fprintf(stderr, "differ: %s vs %s\n", pa, pb);
                return -1;
            }
            files++;
        }
    }
    return files;
}

/* data.yaml without its `path:` line (the absolute location differs between two directories). */
static char *yaml_without_path(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/data.yaml", dir);
    size_t n;
    char *s = (char *)slurp(p, &n);
    if (!s) return NULL;
    s = realloc(s, n + 1);
    s[n] = 0;
    char *l = strstr(s, "\npath: ");
    if (l) {
        char *e = strchr(l + 1, '\n');
        memmove(l, e, strlen(e) + 1);
    }
    return s;
}

static int count_leftovers(const char *parent, const char *base)
{
    DIR *d = opendir(parent);
    if (!d) return -1;
    int n = 0;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, base, bl) == 0 && (strstr(e->d_name, ".tmp.") || strstr(e->d_name, ".old."))) n++;
    closedir(d);
    return n;
}

static void small_cfg(yt_synth_cfg *cfg)
{
    yt_synth_default_cfg(cfg);
    cfg->seed = 7;
    cfg->n_train = 24;
    cfg->n_val = 6;
    cfg->imgsz = 96;
}

static void test_cfg_errors(void)
{
    yt_synth_cfg cfg;
    yt_synth_default_cfg(&cfg);
    CHECK(yt_synth_check_cfg(&cfg) == 0, "defaults are valid: %s", yt_last_error());
    CHECK(cfg.n_train == 400 && cfg.n_val == 100 && cfg.imgsz == 160 && cfg.n_classes == 4, "default sizes");
    cfg.imgsz = 16;
    CHECK(yt_synth_check_cfg(&cfg) < 0 && strstr(yt_last_error(), "imgsz"), "imgsz 16 rejected: %s", yt_last_error());
    yt_synth_default_cfg(&cfg);
    cfg.n_classes = 6;
    CHECK(yt_synth_check_cfg(&cfg) < 0 && strstr(yt_last_error(), "classes"), "6 classes rejected");
    yt_synth_default_cfg(&cfg);
    cfg.classes[1] = cfg.classes[0];
    CHECK(yt_synth_check_cfg(&cfg) < 0 && strstr(yt_last_error(), "twice"), "duplicate shape rejected: %s",
          yt_last_error());
    CHECK(yt_synth_shape_from_name("ring") == YT_SHAPE_RING && yt_synth_shape_from_name("blob") == -1, "names");
    uint8_t px[32 * 32 * 3];
    yt_synth_default_cfg(&cfg);
    cfg.imgsz = 32;
    CHECK(yt_synth_render(&cfg, 2, 0, 1, px, NULL, NULL) < 0 && strstr(yt_last_error(), "split"), "bad split");
}

static void test_generate_determinism(void)
{
    yt_synth_cfg cfg;
    small_cfg(&cfg);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/nested/a", tmpdir);
    snprintf(b, sizeof b, "%s/b/", tmpdir); /* trailing slash accepted */
    CHECK(yt_synth_generate(a, &cfg) == 1, "first generation of a: %s", yt_last_error());
    CHECK(yt_synth_generate(b, &cfg) == 1, "first generation of b: %s", yt_last_error());
    snprintf(b, sizeof b, "%s/b", tmpdir);
    CHECK(compare_split(a, b, "train", cfg.n_train, 1) == 2 * cfg.n_train, "train files byte-identical");
    CHECK(compare_split(a, b, "val", cfg.n_val, 1) == 2 * cfg.n_val, "val files byte-identical");
    char *ya = yaml_without_path(a), *yb = yaml_without_path(b);
    CHECK(ya && yb && strcmp(ya, yb) == 0, "data.yaml identical apart from path");
    CHECK(ya && strstr(ya, "train: images/train\nval: images/val\nnc: 4\nnames:\n  0: circle\n  1: square\n"
                           "  2: triangle\n  3: cross\n"),
          "data.yaml keys: %s", ya ? ya : "(missing)");
    free(ya);
    free(yb);
    char p[1024];
    snprintf(p, sizeof p, "%s/images/train/%06d.png", a, cfg.n_train);
    CHECK(!exists(p), "no extra image");
    snprintf(p, sizeof p, "%s/.complete", a);
    CHECK(exists(p), ".complete written");
    CHECK(count_leftovers(tmpdir, "b") == 0, "no temp directories left");

    /* reuse, and regeneration when the configuration (or the version in the marker) changes */
    CHECK(yt_synth_generate(a, &cfg) == 0, "complete dataset reused: %s", yt_last_error());
    yt_synth_cfg other = cfg;
    other.seed = 8;
    CHECK(yt_synth_generate(b, &other) == 1, "another seed regenerates: %s", yt_last_error());
    CHECK(compare_split(a, b, "train", cfg.n_train, 0) < 0, "another seed gives other images");
    snprintf(p, sizeof p, "%s/.complete", b);
    FILE *f = fopen(p, "wb");
    fputs("yolotrain synth v0\n", f);
    fclose(f);
    CHECK(yt_synth_generate(b, &cfg) == 1, "an outdated marker regenerates: %s", yt_last_error());
    CHECK(compare_split(a, b, "train", cfg.n_train, 1) == 2 * cfg.n_train, "regenerated = original");
    CHECK(count_leftovers(tmpdir, "b") == 0, "outdated copy removed");

    /* a directory that is not ours is never touched */
    char c[600], keep[700];
    snprintf(c, sizeof c, "%s/userdir", tmpdir);
    mkdir(c, 0777);
    snprintf(keep, sizeof keep, "%s/precious.txt", c);
    f = fopen(keep, "wb");
    fputs("x", f);
    fclose(f);
    CHECK(yt_synth_generate(c, &cfg) < 0 && strstr(yt_last_error(), "not a generated dataset"),
          "refuses a foreign directory: %s", yt_last_error());
    CHECK(exists(keep), "foreign file kept");
    CHECK(count_leftovers(tmpdir, "userdir") == 0, "no temp left after the refusal");
}

/* A generation killed midway leaves no dataset at out_dir; the next one cleans the dead temp dir and completes. */
static void test_interrupted(void)
{
    yt_synth_cfg cfg;
    small_cfg(&cfg);
    cfg.n_train = 3000;
    cfg.imgsz = 128;
    char d[600];
    snprintf(d, sizeof d, "%s/killed", tmpdir);
    pid_t pid = fork();
    if (pid == 0) {
        yt_synth_generate(d, &cfg);
        _exit(0);
    }
    usleep(300 * 1000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status), "generator killed mid-way (took less than 0.3 s?)");
    CHECK(!exists(d), "no half dataset at the final path");
    CHECK(count_leftovers(tmpdir, "killed") == 1, "the killed run's temp dir exists");
    cfg.n_train = 5;
    CHECK(yt_synth_generate(d, &cfg) == 1, "generation after a kill: %s", yt_last_error());
    CHECK(count_leftovers(tmpdir, "killed") == 0, "dead temp dir cleaned");
}

static int read_labels(const char *path, double (*lab)[5], int max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int n = 0;
    while (n < max && fscanf(f, "%lf %lf %lf %lf %lf", &lab[n][0], &lab[n][1], &lab[n][2], &lab[n][3], &lab[n][4]) == 5)
        n++;
    int extra = fgetc(f);
    fclose(f);
    return extra == EOF ? n : -1;
}

static int pxdiff(const uint8_t *a, const uint8_t *b)
{
    return abs(a[0] - b[0]) + abs(a[1] - b[1]) + abs(a[2] - b[2]);
}

/* Labels on disk equal the rendered boxes; the PNG equals the render; outside every box (1 px margin) the image
 * equals the background alone; inside, the shape fills a good part of its box and touches all four sides. */
static void test_pixels_match_boxes(void)
{
    yt_synth_cfg cfg;
    small_cfg(&cfg);
    char a[600];
    snprintf(a, sizeof a, "%s/nested/a", tmpdir);
    int S = cfg.imgsz;
    uint8_t *full = malloc((size_t)S * S * 3), *bg = malloc((size_t)S * S * 3);
    int bad_outside = 0, bad_fill = 0, bad_edge = 0, bad_label = 0, bad_png = 0, boxes_seen = 0;
    for (int split = 0; split < 2; split++) {
        int count = split ? cfg.n_val : cfg.n_train;
        for (int i = 0; i < count; i++) {
            yt_synth_box bx[YT_SYNTH_MAX_OBJECTS], bx2[YT_SYNTH_MAX_OBJECTS];
            int n = -1, n2 = -2;
            CHECK(yt_synth_render(&cfg, split, i, 1, full, bx, &n) == 0, "render: %s", yt_last_error());
            CHECK(yt_synth_render(&cfg, split, i, 0, bg, bx2, &n2) == 0, "render bg: %s", yt_last_error());
            int same = n == n2 && n >= 1 && n <= 4;
            for (int k = 0; same && k < n; k++)
                same = bx[k].cls == bx2[k].cls && bx[k].x0 == bx2[k].x0 && bx[k].y0 == bx2[k].y0 && bx[k].x1 == bx2[k].x1 &&
                       bx[k].y1 == bx2[k].y1;
            CHECK(same, "image %d/%d: same scene with and without shapes", split, i);

            char p[1024];
            snprintf(p, sizeof p, "%s/images/%s/%06d.png", a, split ? "val" : "train", i);
            yt_image im = {0};
            if (yt_image_load(p, &im, NULL) < 0 || im.w != S || im.h != S || memcmp(im.px, full, (size_t)S * S * 3) != 0)
                bad_png++;
            yt_image_free(&im);

            double lab[8][5];
            snprintf(p, sizeof p, "%s/labels/%s/%06d.txt", a, split ? "val" : "train", i);
            int nl = read_labels(p, lab, 8);
            if (nl != n) bad_label++;
            for (int k = 0; k < nl && k < n; k++) {
                for (int j = 1; j < 5; j++)
                    if (!(lab[k][j] >= 0.0 && lab[k][j] <= 1.0)) bad_label++;
                if (lab[k][0] != bx[k].cls || lab[k][0] < 0 || lab[k][0] >= cfg.n_classes) bad_label++;
                if (lab[k][1] - lab[k][3] / 2 < 0 || lab[k][1] + lab[k][3] / 2 > 1 + 1e-6) bad_label++;
                if (lab[k][2] - lab[k][4] / 2 < 0 || lab[k][2] + lab[k][4] / 2 > 1 + 1e-6) bad_label++;
                if (fabs(lab[k][1] * S - (bx[k].x0 + bx[k].x1) / 2) > 1e-3 || fabs(lab[k][3] * S - (bx[k].x1 - bx[k].x0)) > 1e-3)
                    bad_label++;
            }

            /* outside: pixel squares more than 1 px away from every box equal the background */
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    int near = 0;
                    for (int k = 0; k < n && !near; k++)
                        near = x + 1 > bx[k].x0 - 1 && x < bx[k].x1 + 1 && y + 1 > bx[k].y0 - 1 && y < bx[k].y1 + 1;
                    size_t o = ((size_t)y * S + x) * 3;
                    if (!near && pxdiff(full + o, bg + o) != 0) bad_outside++;
                }
            /* inside: a shape covers >= 25% of its box; each side has a shape pixel within 1.5 px */
            for (int k = 0; k < n; k++, boxes_seen++) {
                int x0 = (int)floor(bx[k].x0), x1 = (int)ceil(bx[k].x1), y0 = (int)floor(bx[k].y0), y1 = (int)ceil(bx[k].y1);
                int inside = 0, total = 0, left = 0, right = 0, top = 0, bottom = 0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        size_t o = ((size_t)y * S + x) * 3;
                        int on = pxdiff(full + o, bg + o) > 60;
                        total++;
                        inside += on;
                        if (!on) continue;
                        double cx = x + 0.5, cy = y + 0.5;
                        left |= cx < bx[k].x0 + 1.5;
                        right |= cx > bx[k].x1 - 1.5;
                        top |= cy < bx[k].y0 + 1.5;
                        bottom |= cy > bx[k].y1 - 1.5;
                    }
                if (inside < 0.25 * total) bad_fill++;
                if (!(left && right && top && bottom)) {
                    bad_edge++;
                    fprintf(stderr, "image %d/%d box %d (%.1f %.1f %.1f %.1f): sides l%d r%d t%d b%d\n", split, i, k,
                            bx[k].x0, bx[k].y0, bx[k].x1, bx[k].y1, left, right, top, bottom);
                }
            }
        }
    }
    CHECK(boxes_seen >= 30, "boxes checked: %d", boxes_seen);
    CHECK(bad_png == 0, "%d PNGs differ from their render", bad_png);
    CHECK(bad_label == 0, "%d label problems", bad_label);
    CHECK(bad_outside == 0, "%d pixels outside the boxes differ from the background", bad_outside);
    CHECK(bad_fill == 0, "%d boxes mostly empty", bad_fill);
    CHECK(bad_edge == 0, "%d boxes not tight (a side without shape pixels)", bad_edge);
    free(full);
    free(bg);
}

/* The default dataset's statistics: every class well represented, sizes within 10%..45% of the side, 1..4 objects
 * per image, and the geometry pinned (labels come from exact arithmetic, so their hash is the same everywhere;
 * when a change of the generator moves it, bump YT_SYNTH_VERSION and update the hash). */
static void test_default_stats(void)
{
    yt_synth_cfg cfg;
    yt_synth_default_cfg(&cfg);
    int S = cfg.imgsz;
    uint8_t *px = malloc((size_t)S * S * 3);
    int per_class[YT_SYNTH_MAX_CLASSES] = {0}, objects = 0, per_count[5] = {0};
    double min_side = 1e9, max_side = 0;
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 200; i++) {
        yt_synth_box bx[YT_SYNTH_MAX_OBJECTS];
        int n = 0;
        if (yt_synth_render(&cfg, YT_SYNTH_TRAIN, i, 0, px, bx, &n) < 0) break;
        per_count[n]++;
        for (int k = 0; k < n; k++) {
            per_class[bx[k].cls]++;
            objects++;
            double side = fmax(bx[k].x1 - bx[k].x0, bx[k].y1 - bx[k].y0) / S;
            min_side = fmin(min_side, side);
            max_side = fmax(max_side, side);
            char line[128];
            snprintf(line, sizeof line, "%d %.4f %.4f %.4f %.4f\n", bx[k].cls, bx[k].x0, bx[k].y0, bx[k].x1, bx[k].y1);
            for (char *c = line; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
        }
    }
    free(px);
    CHECK(per_count[0] == 0 && per_count[1] > 20 && per_count[4] > 20, "objects per image: %d %d %d %d", per_count[1],
          per_count[2], per_count[3], per_count[4]);
    for (int c = 0; c < cfg.n_classes; c++)
        CHECK(per_class[c] > objects / 8, "class %d has %d of %d objects", c, per_class[c], objects);
    CHECK(min_side >= 0.0999 && min_side < 0.12 && max_side <= 0.4501 && max_side > 0.42, "sides %.3f..%.3f", min_side,
          max_side);
    printf("default dataset, first 200 train images: %d objects, per class %d %d %d %d, label hash %016llx\n", objects,
           per_class[0], per_class[1], per_class[2], per_class[3], (unsigned long long)h);
    CHECK(h == 0x2ad9d4e4f5e5ab93ULL, "label hash %016llx changed: bump YT_SYNTH_VERSION", (unsigned long long)h);
}

static void rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/yt_test_synth_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_cfg_errors();
    test_generate_determinism();
    test_pixels_match_boxes();
    test_interrupted();
    test_default_stats();
    rm_rf(tmpdir);
    return tu_finish();
}
