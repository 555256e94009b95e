/* Convolution throughput on the YOLOv8n conv shapes (batch 16, 320x320), as a ratio to the machine's sgemm
 * rate measured in the same run.
 *
 *   bench_conv [batch] [imgsz] [reps]
 *
 * For each backend and strategy (the GEMM path's 1 = images in parallel with single-threaded BLAS, 2 = images in
 * sequence with multithreaded BLAS, 0 = automatic; and oneDNN) it times forward and forward+backward of every conv
 * of the network (backward: grad input except for the first layer, whose input is the image; grad weight; grad
 * bias for the Detect head's final 1x1 convs), taking the best of `reps` runs per layer, and prints the layers
 * side by side: GEMM (automatic strategy) against oneDNN. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "ops/autocast.h"
#include "ops/conv2d_dnnl.h"
#include "ops/conv2d.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const char *name;
    int C, O, k, s, div; /* input at imgsz / div */
    int count;           /* how many convs of this shape in the network */
    int bias, first;
} layer;

/* YOLOv8n (width 0.25, depth 0.33), every conv of one forward pass. */
static const layer layers[] = {
    {"0 Conv 3->16 k3s2", 3, 16, 3, 2, 1, 1, 0, 1},
    {"1 Conv 16->32 k3s2", 16, 32, 3, 2, 2, 1, 0, 0},
    {"2 C2f cv1 32->32 1x1", 32, 32, 1, 1, 4, 1, 0, 0},
    {"2 C2f m 16->16 k3", 16, 16, 3, 1, 4, 2, 0, 0},
    {"2 C2f cv2 48->32 1x1", 48, 32, 1, 1, 4, 1, 0, 0},
    {"3 Conv 32->64 k3s2", 32, 64, 3, 2, 4, 1, 0, 0},
    {"4 C2f cv1 64->64 1x1", 64, 64, 1, 1, 8, 1, 0, 0},
    {"4 C2f m 32->32 k3", 32, 32, 3, 1, 8, 4, 0, 0},
    {"4 C2f cv2 128->64 1x1", 128, 64, 1, 1, 8, 1, 0, 0},
    {"5 Conv 64->128 k3s2", 64, 128, 3, 2, 8, 1, 0, 0},
    {"6 C2f cv1 128->128 1x1", 128, 128, 1, 1, 16, 1, 0, 0},
    {"6 C2f m 64->64 k3", 64, 64, 3, 1, 16, 4, 0, 0},
    {"6 C2f cv2 256->128 1x1", 256, 128, 1, 1, 16, 1, 0, 0},
    {"7 Conv 128->256 k3s2", 128, 256, 3, 2, 16, 1, 0, 0},
    {"8 C2f cv1 256->256 1x1", 256, 256, 1, 1, 32, 1, 0, 0},
    {"8 C2f m 128->128 k3", 128, 128, 3, 1, 32, 2, 0, 0},
    {"8 C2f cv2 384->256 1x1", 384, 256, 1, 1, 32, 1, 0, 0},
    {"9 SPPF cv1 256->128 1x1", 256, 128, 1, 1, 32, 1, 0, 0},
    {"9 SPPF cv2 512->256 1x1", 512, 256, 1, 1, 32, 1, 0, 0},
    {"12 C2f cv1 384->128 1x1", 384, 128, 1, 1, 16, 1, 0, 0},
    {"12 C2f m 64->64 k3", 64, 64, 3, 1, 16, 2, 0, 0},
    {"12 C2f cv2 192->128 1x1", 192, 128, 1, 1, 16, 1, 0, 0},
    {"15 C2f cv1 192->64 1x1", 192, 64, 1, 1, 8, 1, 0, 0},
    {"15 C2f m 32->32 k3", 32, 32, 3, 1, 8, 2, 0, 0},
    {"15 C2f cv2 96->64 1x1", 96, 64, 1, 1, 8, 1, 0, 0},
    {"16 Conv 64->64 k3s2", 64, 64, 3, 2, 8, 1, 0, 0},
    {"18 C2f cv1 192->128 1x1", 192, 128, 1, 1, 16, 1, 0, 0},
    {"18 C2f m 64->64 k3", 64, 64, 3, 1, 16, 2, 0, 0},
    {"18 C2f cv2 192->128 1x1", 192, 128, 1, 1, 16, 1, 0, 0},
    {"19 Conv 128->128 k3s2", 128, 128, 3, 2, 16, 1, 0, 0},
    {"21 C2f cv1 384->256 1x1", 384, 256, 1, 1, 32, 1, 0, 0},
    {"21 C2f m 128->128 k3", 128, 128, 3, 1, 32, 2, 0, 0},
    {"21 C2f cv2 384->256 1x1", 384, 256, 1, 1, 32, 1, 0, 0},
    {"22 Detect P3 box 64->64 k3", 64, 64, 3, 1, 8, 2, 0, 0},
    {"22 Detect P3 box 64->64 1x1", 64, 64, 1, 1, 8, 1, 1, 0},
    {"22 Detect P3 cls 64->80 k3", 64, 80, 3, 1, 8, 1, 0, 0},
    {"22 Detect P3 cls 80->80 k3", 80, 80, 3, 1, 8, 1, 0, 0},
    {"22 Detect P3 cls 80->80 1x1", 80, 80, 1, 1, 8, 1, 1, 0},
    {"22 Detect P4 box 128->64 k3", 128, 64, 3, 1, 16, 1, 0, 0},
    {"22 Detect P4 box 64->64 k3", 64, 64, 3, 1, 16, 1, 0, 0},
    {"22 Detect P4 box 64->64 1x1", 64, 64, 1, 1, 16, 1, 1, 0},
    {"22 Detect P4 cls 128->80 k3", 128, 80, 3, 1, 16, 1, 0, 0},
    {"22 Detect P4 cls 80->80 k3", 80, 80, 3, 1, 16, 1, 0, 0},
    {"22 Detect P4 cls 80->80 1x1", 80, 80, 1, 1, 16, 1, 1, 0},
    {"22 Detect P5 box 256->64 k3", 256, 64, 3, 1, 32, 1, 0, 0},
    {"22 Detect P5 box 64->64 k3", 64, 64, 3, 1, 32, 1, 0, 0},
    {"22 Detect P5 box 64->64 1x1", 64, 64, 1, 1, 32, 1, 1, 0},
    {"22 Detect P5 cls 256->80 k3", 256, 80, 3, 1, 32, 1, 0, 0},
    {"22 Detect P5 cls 80->80 k3", 80, 80, 3, 1, 32, 1, 0, 0},
    {"22 Detect P5 cls 80->80 1x1", 80, 80, 1, 1, 32, 1, 1, 0},
};
#define NLAYERS ((int)(sizeof layers / sizeof layers[0]))

static void fill(float *p, size_t n)
{
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = ((s >> 9) & 0xffff) / 32768.0f - 1.0f;
    }
}

static double sgemm_rate(int n, int reps)
{
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    fill(a, (size_t)n * n);
    fill(b, (size_t)n * n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); /* warm up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t = now() - t;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

#define MAXL 64
typedef struct {
    double fwd_flops, bwd_flops, fwd_time, step_time;
    double layer_fwd[MAXL], layer_step[MAXL]; /* best times per layer */
} totals;

/* Times every layer for the nv variants (backend[v], strategy[v], precision[v]), interleaved rep by rep so that a
 * change in the machine's load hits all variants alike. */
static int run(int nv, const int *backend, const int *strategy, const int *precision, int batch, int imgsz, int reps,
               totals *tot)
{
    memset(tot, 0, nv * sizeof *tot);
    for (int li = 0; li < NLAYERS; li++) {
        const layer *L = &layers[li];
        yt_conv2d_shape s = {batch, L->C, imgsz / L->div, imgsz / L->div, L->O, L->k, L->k,
                             L->s,  L->s, L->k / 2,       L->k / 2,       0,    0,    0,
                             0,     0};
        if (yt_conv2d_shape_init(&s) < 0) {
            fprintf(stderr, "%s: %s\n", L->name, yt_last_error());
            return -1;
        }
        size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.O * s.C * s.KH * s.KW;
        size_t ny = (size_t)s.N * s.O * s.OH * s.OW;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(s.O * 4), *y = malloc(ny * 4);
        float *gy = malloc(ny * 4), *gx = malloc(nx * 4), *gw = malloc(nw * 4), *gb = malloc(s.O * 4);
        if (!x || !w || !b || !y || !gy || !gx || !gw || !gb) {
            fprintf(stderr, "out of memory\n");
            return -1;
        }
        fill(x, nx);
        fill(w, nw);
        fill(b, s.O);
        fill(gy, ny);
        memset(gx, 0, nx * 4);
        memset(gw, 0, nw * 4);
        memset(gb, 0, s.O * 4);
        double f1 = 2.0 * s.N * s.O * (double)s.C * s.KH * s.KW * s.OH * s.OW;
        double fb = f1 * (L->first ? 1 : 2);
        double tf[8], ts[8];
        for (int v = 0; v < nv; v++) tf[v] = ts[v] = 1e30;
        for (int r = 0; r < reps + 1; r++) { /* first run warms caches, thread pools, primitive creation */
            for (int v = 0; v < nv; v++) {
                s.backend = backend[v];
                s.strategy = strategy[v];
                s.precision = precision[v];
                double t0 = now();
                int rc = yt_conv2d_forward(x, y, w, L->bias ? b : NULL, &s);
                double t1 = now();
                if (rc == 0) rc = yt_conv2d_backward(x, gy, L->first ? NULL : gx, w, gw, L->bias ? gb : NULL, &s);
                if (rc < 0) {
                    fprintf(stderr, "%s: %s\n", L->name, yt_last_error());
                    return -1;
                }
                double t2 = now();
                if (r > 0) {
                    if (t1 - t0 < tf[v]) tf[v] = t1 - t0;
                    if (t2 - t0 < ts[v]) ts[v] = t2 - t0;
                }
            }
        }
        for (int v = 0; v < nv; v++) {
            tot[v].fwd_flops += f1 * L->count;
            tot[v].bwd_flops += fb * L->count;
            tot[v].fwd_time += tf[v] * L->count;
            tot[v].step_time += ts[v] * L->count;
            tot[v].layer_fwd[li] = tf[v];
            tot[v].layer_step[li] = ts[v];
        }
        free(x);
        free(w);
        free(b);
        free(y);
        free(gy);
        free(gx);
        free(gw);
        free(gb);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int batch = argc > 1 ? atoi(argv[1]) : 16;
    int imgsz = argc > 2 ? atoi(argv[2]) : 320;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    if (batch < 1 || imgsz < 32 || imgsz % 32 || reps < 1) {
        fprintf(stderr, "usage: bench_conv [batch>=1] [imgsz, multiple of 32] [reps>=1]\n");
        return 2;
    }
    printf("threads: %d (OpenMP), OpenBLAS config: %s\n", omp_get_max_threads(), openblas_get_config());
    double peak = sgemm_rate(1024, 5);
    double peak1 = 0;
    {
        int was = openblas_get_num_threads();
        openblas_set_num_threads(1);
        peak1 = sgemm_rate(1024, 3);
        openblas_set_num_threads(was);
    }
    printf("sgemm 1024^3: %.1f GFLOP/s (all threads), %.1f GFLOP/s (1 thread)\n", peak, peak1);
    printf("YOLOv8n convs, batch %d, %dx%d, best of %d\n\n", batch, imgsz, imgsz, reps);

    static const char *names[] = {"GEMM, automatic strategy", "GEMM, images in parallel, 1-thread BLAS",
                                  "GEMM, images in sequence, threaded BLAS",
                                  "oneDNN, every pass (YT_CONV=dnnl_all; the default dnnl runs the forward on GEMM)",
                                  "oneDNN bf16 (amp=true; bf16 products, float32 accumulation and results)"};
    static const int backend[] = {YT_CONV_GEMM, YT_CONV_GEMM, YT_CONV_GEMM, YT_CONV_DNNL_ALL, YT_CONV_DNNL_ALL};
    static const int strategy[] = {0, 1, 2, 0, 0};
    static const int precision[] = {0, 0, 0, 0, YT_CONV_BF16};
    /* bf16 only where the CPU runs it natively (oneDNN would emulate it, or refuse) */
    int nv = yt_autocast_bf16_supported() ? 5 : 4;
    printf("oneDNN ISA %s: %s\n\n", yt_conv2d_dnnl_isa(),
           nv == 5 ? "bf16 timed too" : "no BF16 instructions, bf16 not timed");
    static totals t[5];
    if (run(nv, backend, strategy, precision, batch, imgsz, reps, t) < 0) return 1;
    printf("per layer, ms (GEMM automatic strategy vs oneDNN; fwd = forward, f+b = forward + backward):\n");
    printf("%-32s %9s %8s %8s %6s %8s %8s %6s %8s\n", "layer (x count)", "MFLOP/fw", "fwd gemm", "fwd dnnl", "ratio",
           "f+b gemm", "f+b dnnl", "ratio", "%sgemm");
    for (int li = 0; li < NLAYERS; li++) {
        const layer *L = &layers[li];
        int sz = imgsz / L->div;
        double f1 = 2.0 * batch * L->O * (double)L->C * L->k * L->k * (sz / L->s) * (sz / L->s);
        double fb = f1 * (L->first ? 2 : 3);
        char nm[64];
        snprintf(nm, sizeof nm, "%s x%d", L->name, L->count);
        printf("%-32s %9.1f %8.2f %8.2f %5.2fx %8.2f %8.2f %5.2fx %7.0f%%\n", nm, f1 / 1e6, t[0].layer_fwd[li] * 1e3,
               t[3].layer_fwd[li] * 1e3, t[0].layer_fwd[li] / t[3].layer_fwd[li], t[0].layer_step[li] * 1e3,
               t[3].layer_step[li] * 1e3, t[0].layer_step[li] / t[3].layer_step[li],
               100 * fb / t[3].layer_step[li] / 1e9 / peak);
    }
    printf("(%%sgemm: oneDNN's forward+backward rate as a fraction of the sgemm rate)\n");
    printf("\nnetwork totals: forward %.2f GFLOP, forward+backward %.2f GFLOP per step\n", t[0].fwd_flops / 1e9,
           (t[0].fwd_flops + t[0].bwd_flops) / 1e9);
    for (int v = 0; v < nv; v++) {
        double rf = t[v].fwd_flops / t[v].fwd_time / 1e9;
        double rs = (t[v].fwd_flops + t[v].bwd_flops) / t[v].step_time / 1e9;
        printf("%s:\n  forward %.1f ms  %.1f GFLOP/s = %.0f%% of sgemm;  forward+backward %.1f ms  "
               "%.1f GFLOP/s = %.0f%% of sgemm\n",
               names[v], t[v].fwd_time * 1e3, rf, 100 * rf / peak, t[v].step_time * 1e3, rs, 100 * rs / peak);
    }
    printf("oneDNN / GEMM (automatic) speed: forward x%.2f, forward+backward x%.2f\n", t[0].fwd_time / t[3].fwd_time,
           t[0].step_time / t[3].step_time);
    if (nv == 5) {
        printf("oneDNN bf16 / oneDNN float32 speed: forward x%.2f, forward+backward x%.2f\n",
               t[3].fwd_time / t[4].fwd_time, t[3].step_time / t[4].step_time);
        printf("per layer, ms, forward+backward: float32 (oneDNN) vs bf16, and bf16's rate as a fraction of sgemm:\n");
        for (int li = 0; li < NLAYERS; li++) {
            const layer *L = &layers[li];
            int sz = imgsz / L->div;
            double fb =
                2.0 * batch * L->O * (double)L->C * L->k * L->k * (sz / L->s) * (sz / L->s) * (L->first ? 2 : 3);
            char nm[64];
            snprintf(nm, sizeof nm, "%s x%d", L->name, L->count);
            printf("%-32s %8.2f %8.2f %5.2fx %7.0f%%\n", nm, t[3].layer_step[li] * 1e3, t[4].layer_step[li] * 1e3,
                   t[3].layer_step[li] / t[4].layer_step[li], 100 * fb / t[4].layer_step[li] / 1e9 / peak);
        }
    }
    double again = sgemm_rate(1024, 5);
    printf("\nsgemm 1024^3 again at the end: %.1f GFLOP/s (difference from the start = machine noise)\n", again);
    return 0;
}
