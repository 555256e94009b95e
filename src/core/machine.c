#include "core/machine.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double yt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double yt_measure_sgemm_gflops(int n, double min_seconds)
{
    size_t nn = (size_t)n * n;
    float *a = aligned_alloc(64, nn * sizeof(float)), *b = aligned_alloc(64, nn * sizeof(float)),
          *c = aligned_alloc(64, nn * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 7) % 13) * 0.01f;
        b[i] = (float)((i * 5) % 11) * 0.01f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm up */
    double best = 0, total = 0;
    int runs = 0;
    while (total < min_seconds || runs < 3) {
        double t0 = yt_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = yt_now() - t0;
        total += dt;
        runs++;
        double g = 2.0 * n * (double)n * n / dt / 1e9;
        if (g > best) best = g;
    }
    free(a), free(b), free(c);
    return best;
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long kb = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0) {
            kb = strtol(line + klen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

long yt_rss_bytes(void) { return status_kb("VmRSS:") * 1024; }
long yt_peak_rss_bytes(void) { return status_kb("VmHWM:") * 1024; }
