/* Data-parallel communication over MPI: see dist.h. */
#include "distributed/dist.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

/* Process-wide, as MPI is. */
static struct {
    int own_init; /* we called MPI_Init_thread */
    int ready;    /* comm is usable */
    MPI_Comm comm;
    int rank, size;
    char host[MPI_MAX_PROCESSOR_NAME + 1];
    double timeout; /* seconds, <= 0 = forever */
    int timeout_set;
    char broken[1024]; /* non-empty after a failed collective */
    float *bucket[2];  /* gradient buckets, grown on demand */
    size_t bucket_cap;
    int exit_ok; /* the work finished: yt_dist_end may finalize */
} D = {.size = 1, .timeout = 1800.0};

static int mpi_fail(int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
    snprintf(D.broken, sizeof D.broken, "rank %d/%d (%s): %s failed: %s", D.rank, D.size, D.host, what, s);
    return yt_error("%s", D.broken);
}

static int check_ready(const char *what)
{
    if (!D.ready) return yt_error("%s: the distributed runtime is not initialised (call yt.dist.init() first)", what);
    if (D.broken[0]) return yt_error("%s: not possible after an earlier failure: %s", what, D.broken);
    return 0;
}

int yt_dist_init(void)
{
    if (D.ready) return 0;
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) return yt_error("dist init: MPI was already finalised in this process (it cannot restart)");
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return yt_error("dist init: MPI_Init_thread failed (error %d)", rc);
        D.own_init = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &D.comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_dup");
    MPI_Comm_set_errhandler(D.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(D.comm, &D.rank);
    MPI_Comm_size(D.comm, &D.size);
    int len = 0;
    MPI_Get_processor_name(D.host, &len);
    D.host[len < 0 ? 0 : len] = '\0';
    if (!D.timeout_set) {
        const char *env = getenv("YT_DIST_TIMEOUT");
        if (env && *env) {
            char *end = NULL;
            double v = strtod(env, &end);
            if (end && *end == '\0') D.timeout = v;
        }
    }
    D.ready = 1;
    return 0;
}

int yt_dist_is_initialized(void) { return D.ready; }
int yt_dist_rank(void) { return D.rank; }
int yt_dist_size(void) { return D.size; }
const char *yt_dist_host(void) { return D.host; }
void yt_dist_set_timeout(double seconds)
{
    D.timeout = seconds;
    D.timeout_set = 1;
}
double yt_dist_get_timeout(void) { return D.timeout; }
const char *yt_dist_broken(void) { return D.broken[0] ? D.broken : NULL; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Waits for a request with the deadline. Spins for the first 20 ms (ranks in step answer fast; MPI's
 * non-blocking collectives progress only inside MPI calls), then tests every 0.2-2 ms so a rank waiting for a
 * slow peer (rank 0 validating) costs no CPU. */
static int wait_req(MPI_Request *req, const char *what, size_t count)
{
    const double t0 = now_s();
    const double deadline = D.timeout > 0 ? t0 + D.timeout : INFINITY;
    long sleep_ns = 200000;
    for (;;) {
        int flag = 0;
        int rc = MPI_Test(req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
        if (flag) return 0;
        double t = now_s();
        if (t > deadline) {
            snprintf(D.broken, sizeof D.broken,
                     "rank %d/%d (%s): %s (%zu values) got no answer from the other ranks within %.0f s "
                     "(YT_DIST_TIMEOUT): a rank died, raised an error, hangs, or took a different code path",
                     D.rank, D.size, D.host, what, count, D.timeout);
            return yt_error("%s", D.broken);
        }
        if (t - t0 > 0.02) {
            struct timespec ts = {0, sleep_ns};
            nanosleep(&ts, NULL);
            if (sleep_ns < 2000000) sleep_ns += sleep_ns / 4;
        }
    }
}

static MPI_Op to_mpi_op(yt_dist_op op) { return op == YT_DIST_MAX ? MPI_MAX : op == YT_DIST_MIN ? MPI_MIN : MPI_SUM; }

/* Large buffers go in chunks of at most INT_MAX/2 elements (MPI counts are int). */
#define CHUNK ((size_t)1 << 28)

static int allreduce_typed(void *buf, size_t n, size_t esize, MPI_Datatype dt, MPI_Op op, const char *what)
{
    if (check_ready(what) < 0) return -1;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t m = n - off < CHUNK ? n - off : CHUNK;
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * esize, (int)m, dt, op, D.comm, &req);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
        if (wait_req(&req, what, m) < 0) return -1;
    }
    return 0;
}

int yt_dist_barrier(void)
{
    if (check_ready("barrier") < 0) return -1;
    MPI_Request req;
    int rc = MPI_Ibarrier(D.comm, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "barrier");
    return wait_req(&req, "barrier", 0);
}

int yt_dist_allreduce_f32(float *buf, size_t n, yt_dist_op op, int average)
{
    if (allreduce_typed(buf, n, sizeof(float), MPI_FLOAT, to_mpi_op(op), "allreduce (float32)") < 0) return -1;
    if (average && op == YT_DIST_SUM && D.size > 1) {
        const float k = 1.0f / (float)D.size;
        for (size_t i = 0; i < n; i++) buf[i] *= k;
    }
    return 0;
}

int yt_dist_allreduce_f64(double *buf, size_t n, yt_dist_op op)
{
    return allreduce_typed(buf, n, sizeof(double), MPI_DOUBLE, to_mpi_op(op), "allreduce (float64)");
}

int yt_dist_allreduce_u8_max(uint8_t *buf, size_t n)
{
    return allreduce_typed(buf, n, 1, MPI_UNSIGNED_CHAR, MPI_MAX, "allreduce (flags)");
}

int yt_dist_bcast(void *buf, size_t nbytes, int root)
{
    if (check_ready("broadcast") < 0) return -1;
    if (root < 0 || root >= D.size) return yt_error("broadcast: root %d is not a rank (0..%d)", root, D.size - 1);
    for (size_t off = 0; off < nbytes; off += CHUNK) {
        size_t m = nbytes - off < CHUNK ? nbytes - off : CHUNK;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + off, (int)m, MPI_BYTE, root, D.comm, &req);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast");
        if (wait_req(&req, "broadcast", m) < 0) return -1;
    }
    return 0;
}

/* ---- gradients ---- */

static int ensure_buckets(size_t n)
{
    if (n <= D.bucket_cap) return 0;
    for (int i = 0; i < 2; i++) {
        free(D.bucket[i]);
        D.bucket[i] = malloc(n * sizeof(float));
        if (!D.bucket[i]) {
            D.bucket_cap = 0;
            free(D.bucket[0]);
            D.bucket[0] = NULL;
            return yt_error("allreduce_grads: out of memory for a bucket of %zu floats", n);
        }
    }
    D.bucket_cap = n;
    return 0;
}

/* One slice of one gradient inside a bucket. */
typedef struct {
    float *g;
    size_t n;
} piece;

typedef struct {
    MPI_Request req;
    int active;
    size_t n;
    float *buf;
    piece *pieces;
    int npieces;
} bucket_run;

static int finish_bucket(bucket_run *b)
{
    if (!b->active) return 0;
    b->active = 0;
    if (wait_req(&b->req, "allreduce of gradients", b->n) < 0) return -1;
    const float k = 1.0f / (float)D.size;
    size_t off = 0;
    for (int i = 0; i < b->npieces; i++) {
        float *g = b->pieces[i].g;
        const float *s = b->buf + off;
        for (size_t j = 0; j < b->pieces[i].n; j++) g[j] = s[j] * k;
        off += b->pieces[i].n;
    }
    return 0;
}

int yt_dist_allreduce_grads(yt_tensor *const *params, int n, size_t bucket_elems)
{
    if (check_ready("allreduce_grads") < 0) return -1;
    if (bucket_elems < 1024) bucket_elems = 1024;
    /* 1. which tensors have a gradient anywhere */
    uint8_t *has = calloc(n > 0 ? (size_t)n : 1, 1);
    if (!has) return yt_error("allreduce_grads: out of memory");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i] || params[i]->dtype != YT_F32) {
            free(has);
            return yt_error("allreduce_grads: parameter %d is not a float32 tensor", i + 1);
        }
        has[i] = params[i]->grad != NULL;
    }
    if (yt_dist_allreduce_u8_max(has, (size_t)n) < 0) {
        free(has);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!has[i]) continue;
        if (!yt_grad_accum(params[i])) {
            free(has);
            return yt_error_prefix("allreduce_grads: parameter %d: ", i + 1);
        }
        total += (size_t)yt_numel(params[i]);
    }
    if (D.size == 1 || total == 0) {
        free(has);
        return 0;
    }
    size_t bsz = bucket_elems < total ? bucket_elems : total;
    if (ensure_buckets(bsz) < 0) {
        free(has);
        return -1;
    }
    /* at most one piece per tensor per bucket, plus the slices of tensors split across buckets */
    size_t max_pieces = (size_t)n + total / bsz + 2;
    piece *pieces = malloc(2 * max_pieces * sizeof *pieces);
    if (!pieces) {
        free(has);
        return yt_error("allreduce_grads: out of memory");
    }
    bucket_run run[2] = {{.buf = D.bucket[0], .pieces = pieces}, {.buf = D.bucket[1], .pieces = pieces + max_pieces}};
    int cur = 0, rc = 0;
    int ti = 0;
    size_t toff = 0; /* offset inside tensor ti */
    while (rc == 0) {
        while (ti < n && !has[ti]) ti++;
        if (ti >= n) break;
        bucket_run *b = &run[cur];
        b->n = 0;
        b->npieces = 0;
        /* pack */
        while (ti < n && b->n < bsz) {
            if (!has[ti]) {
                ti++;
                continue;
            }
            float *g = yt_f32(params[ti]->grad);
            size_t len = (size_t)yt_numel(params[ti]);
            size_t take = len - toff;
            if (take > bsz - b->n) take = bsz - b->n;
            memcpy(b->buf + b->n, g + toff, take * sizeof(float));
            b->pieces[b->npieces++] = (piece){g + toff, take};
            b->n += take;
            toff += take;
            if (toff == len) {
                ti++;
                toff = 0;
            }
        }
        int mrc = MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)b->n, MPI_FLOAT, MPI_SUM, D.comm, &b->req);
        if (mrc != MPI_SUCCESS) {
            rc = mpi_fail(mrc, "allreduce of gradients");
            break;
        }
        b->active = 1;
        /* the other bucket was started before this one: complete it while this one is in flight */
        rc = finish_bucket(&run[1 - cur]);
        cur = 1 - cur;
    }
    if (rc == 0) rc = finish_bucket(&run[1 - cur]);
    if (rc == 0) rc = finish_bucket(&run[cur]);
    free(pieces);
    free(has);
    return rc;
}

/* ---- tensors ---- */

int yt_dist_bcast_tensors(yt_tensor *const *ts, int n, int root)
{
    if (check_ready("broadcast") < 0) return -1;
    for (int i = 0; i < n; i++) {
        if (!ts[i] || yt_tensor_is_released(ts[i])) return yt_error("broadcast: tensor %d is released", i + 1);
        if (!yt_is_contiguous(ts[i])) return yt_error("broadcast: tensor %d is not contiguous", i + 1);
    }
    for (int i = 0; i < n; i++) {
        size_t nbytes = (size_t)yt_numel(ts[i]) * yt_dtype_size(ts[i]->dtype);
        if (nbytes && yt_dist_bcast(yt_data(ts[i]), nbytes, root) < 0)
            return yt_error_prefix("broadcast of tensor %d: ", i + 1);
    }
    return 0;
}

int yt_dist_tensors_identical(yt_tensor *const *ts, int n)
{
    if (check_ready("tensors_identical") < 0) return -1;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over every byte */
    for (int i = 0; i < n; i++) {
        if (!ts[i] || yt_tensor_is_released(ts[i])) return yt_error("tensors_identical: tensor %d is released", i + 1);
        yt_tensor *c = yt_contiguous(ts[i]);
        if (!c) return -1;
        const unsigned char *p = yt_data(c);
        size_t nb = (size_t)yt_numel(c) * yt_dtype_size(c->dtype);
        for (size_t j = 0; j < nb; j++) {
            h ^= p[j];
            h *= 1099511628211ULL;
        }
        yt_tensor_release(c);
    }
    uint64_t v[2] = {h, ~h}; /* max(h) and ~min(h) */
    if (check_ready("tensors_identical") < 0) return -1;
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, D.comm, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "tensors_identical");
    if (wait_req(&req, "tensors_identical", 2) < 0) return -1;
    return v[0] == ~v[1];
}

/* ---- lifetime ---- */

void yt_dist_abort(const char *msg, int code)
{
    fflush(stdout);
    if (D.ready)
        fprintf(stderr, "\nyolotrain [rank %d/%d on %s]: %s\n", D.rank, D.size, D.host, msg ? msg : "");
    else
        fprintf(stderr, "yolotrain: %s\n", msg ? msg : "");
    fflush(stderr);
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

void yt_dist_set_exit_ok(int ok) { D.exit_ok = ok; }

void yt_dist_end(void)
{
    if (!yt_dist_is_initialized() || yt_dist_is_finalized()) return;
    if (D.broken[0])
        yt_dist_abort("aborting the job after the communication failure reported above", 1);
    else if (!D.exit_ok)
        yt_dist_abort("this rank is exiting without having finished its distributed work (an error outside "
                      "training, or yt.dist.finalize() not called): aborting the job",
                      1);
    else if (yt_dist_finalize() < 0)
        yt_dist_abort(yt_last_error(), 1);
}

int yt_dist_finalize(void)
{
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized) return 0;
    if (D.broken[0]) return yt_error("finalize: not possible after an earlier failure: %s", D.broken);
    if (D.ready) MPI_Comm_free(&D.comm);
    D.ready = 0;
    free(D.bucket[0]);
    free(D.bucket[1]);
    D.bucket[0] = D.bucket[1] = NULL;
    D.bucket_cap = 0;
    if (!D.own_init) return 0;
    int rc = MPI_Finalize();
    if (rc != MPI_SUCCESS) return yt_error("finalize: MPI_Finalize failed (error %d)", rc);
    return 0;
}

int yt_dist_is_finalized(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    return finalized;
}
