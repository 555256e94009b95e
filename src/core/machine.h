/* The machine, measured: a monotonic clock, this process's memory use, and the sgemm rate every speed target is
 * a ratio of (benchmarks and memory tests). */
#ifndef YT_CORE_MACHINE_H
#define YT_CORE_MACHINE_H

/* GFLOP/s of single-precision n x n x n sgemm through OpenBLAS with the current thread count, best of
 * repeated runs lasting at least min_seconds in total. */
double yt_measure_sgemm_gflops(int n, double min_seconds);
/* Monotonic wall clock in seconds. */
double yt_now(void);
/* Resident set size of this process in bytes (0 when unknown), and its peak (VmHWM). */
long yt_rss_bytes(void);
long yt_peak_rss_bytes(void);

#endif
