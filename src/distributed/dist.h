/* Data-parallel communication over MPI (compiled only when OpenMPI is found: YT_HAVE_MPI).
 *
 * One communicator (a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN) per process. Every collective is
 * started non-blocking and waited for with a deadline (yt_dist_set_timeout, default 1800 s or $YT_DIST_TIMEOUT):
 * a peer that died, hangs or took another code path makes the call fail with a message naming the operation,
 * the rank and the wait, instead of blocking forever. After such a failure the communicator is "broken": every
 * later call fails at once with the same message, and the caller is expected to yt_dist_abort (MPI offers no
 * way to cancel a pending collective).
 *
 * Functions return 0 or -1 after yt_error, like the rest of the core. This is the one place with process-wide
 * state (MPI itself is process-wide). Call only from the thread that called yt_dist_init. */
#ifndef YT_DIST_H
#define YT_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum { YT_DIST_SUM = 0, YT_DIST_MAX, YT_DIST_MIN } yt_dist_op;

/* MPI_Init_thread (FUNNELED) unless MPI is already initialised. Idempotent. */
int yt_dist_init(void);
int yt_dist_is_initialized(void);
int yt_dist_rank(void); /* 0 before init */
int yt_dist_size(void); /* 1 before init */
/* The processor name (host) of this rank; "" before init. */
const char *yt_dist_host(void);

void yt_dist_set_timeout(double seconds); /* <= 0: wait forever */
double yt_dist_get_timeout(void);
/* The message of the failure that broke the communicator, or NULL. */
const char *yt_dist_broken(void);

/* Collectives (all ranks must call them in the same order with the same sizes). */
int yt_dist_barrier(void);
/* In place. average: divide the sum by the number of ranks (only with YT_DIST_SUM). */
int yt_dist_allreduce_f32(float *buf, size_t n, yt_dist_op op, int average);
int yt_dist_allreduce_f64(double *buf, size_t n, yt_dist_op op);
int yt_dist_allreduce_u8_max(uint8_t *buf, size_t n);
int yt_dist_bcast(void *buf, size_t nbytes, int root);

/* Averages the gradients of n tensors in place, packed into buckets of bucket_elems floats (two buckets in
 * flight: the next one is packed while the previous one is reduced). A tensor whose gradient is missing on
 * every rank is left without one; missing on some ranks only: zero-filled there first, so all ranks agree. */
int yt_dist_allreduce_grads(yt_tensor *const *params, int n, size_t bucket_elems);
/* Copies the data of n contiguous tensors from root to every rank (one packed message per bucket). */
int yt_dist_bcast_tensors(yt_tensor *const *ts, int n, int root);
/* 1 when the n tensors hold bitwise the same data on every rank, 0 otherwise, -1 on error. */
int yt_dist_tensors_identical(yt_tensor *const *ts, int n);

/* Synchronised batch normalisation (training mode): the batch statistics and, in backward, the sums of the
 * input gradient are reduced over all ranks, so N ranks with batch b compute what one process computes with
 * batch N*b. Same arguments and running-stat update as yt_batch_norm (src/ops/batchnorm.h); the per-rank
 * weight/bias gradients are the local sums (the gradient averaging over ranks completes them). */
yt_tensor *yt_dist_sync_batch_norm(yt_tensor *x, yt_tensor *weight, yt_tensor *bias, yt_tensor *running_mean,
                                   yt_tensor *running_var, double momentum, double eps);

/* Prints "yolotrain [rank r/N on host]: msg" to stderr and MPI_Abort(code): every rank of the job ends.
 * Does not return (when MPI is initialised; otherwise returns). */
void yt_dist_abort(const char *msg, int code);
/* MPI_Finalize (a collective: all ranks must reach it). Idempotent. */
int yt_dist_finalize(void);
int yt_dist_is_finalized(void);

/* Whether this rank finished its distributed work (the trainer says so after the last barrier); reset by init. */
void yt_dist_set_exit_ok(int ok);
/* The end of a process that may have initialised MPI, called by the program after its work (never from a
 * finaliser): finalizes MPI when the work finished, and otherwise aborts the job with a message, so a rank that
 * ends on an error never leaves the others waiting in a collective. Nothing to do when MPI is not initialised. */
void yt_dist_end(void);

#endif
