/* Reverse-mode autograd on a tape.
 *
 * Every differentiable op that runs while grad mode is on and one of its inputs requires a gradient appends a
 * node to the (per-thread) tape. yt_backward walks the tape from the newest node to the oldest, calling each
 * node whose outputs received a gradient; each backward function *accumulates* (+=) into its inputs' grads.
 * After a backward the tape is cleared, which releases everything the nodes saved for it.
 *
 * How an op records itself (see src/ops/activation.c for a complete example):
 *
 *     yt_tensor *y = yt_tensor_empty_like(x);
 *     yt_silu_forward(yt_f32(x), yt_f32(y), n);
 *     yt_node *node = yt_record("silu", silu_backward, 1, &x, &y);    // NULL when x needs no gradient
 *     if (node) yt_node_save(node, x);                                 // anything backward reads
 *     return y;                                                        // NULL (released) if recording failed
 *
 *     static int silu_backward(yt_node *node) {
 *         yt_tensor *x = node->saved[0], *gy = yt_node_grad_out(node, 0);
 *         float *gx = yt_grad_accum(node->in[0]);   // NULL when x needs no gradient
 *         if (gx) yt_silu_backward(yt_f32(x), yt_f32(gy), gx, n);
 *         return 0;
 *     }
 *
 * A backward reads data only from what its node saved: node->in[] are gradient targets (their shape and grad_fn),
 * and their storage is freed as soon as nothing but the scope and such targets hold it (tensor.h: header_refs),
 * which is what lets the forward free each activation after its last reader (not one backward needs).
 *
 * A backward that writes every element of an input's gradient may take yt_grad_dest's buffer instead: it stores
 * into a fresh one (no zero fill first) and adds into one that already holds a gradient.
 */
#ifndef YT_AUTOGRAD_H
#define YT_AUTOGRAD_H

#include "core/tensor.h"

#define YT_NODE_MAX_IN 8
#define YT_NODE_MAX_OUT 8
#define YT_NODE_MAX_SAVED 8

typedef int (*yt_backward_fn)(yt_node *node);

struct yt_node {
    int refcount;
    const char *name;
    yt_backward_fn backward;
    int n_in;
    yt_tensor *in[YT_NODE_MAX_IN]; /* owned refs (counted in header_refs); backward accumulates into their grads */
    int n_out;
    yt_tensor *out[YT_NODE_MAX_OUT];      /* weak: cleared when the output tensor dies */
    yt_tensor *out_grad[YT_NODE_MAX_OUT]; /* gradients arriving at the outputs (owned) */
    int n_saved;
    yt_tensor *saved[YT_NODE_MAX_SAVED]; /* owned refs */
    int64_t iarg[8];                     /* op parameters (stride, padding, dim, ...) */
    double farg[8];
    void *ctx; /* op-specific state, freed with free_ctx */
    void (*free_ctx)(void *ctx);
    int consumed; /* its backward ran or the tape was cleared */
};

/* Grad mode (per thread). set returns the previous value. */
int yt_grad_enabled(void);
int yt_set_grad_enabled(int enabled);
/* 1 when grad mode is on and any of the n inputs (NULLs allowed) requires a gradient. */
int yt_needs_grad(int n, yt_tensor *const *inputs);

yt_node *yt_node_new(const char *name, yt_backward_fn backward, int n_in, yt_tensor *const *inputs);
/* The record-or-release step of an op with one output: when *y is set and an input needs a gradient, a new node
 * with *y as its output, returned so the op can save tensors and set arguments on it. NULL when nothing needs
 * recording, or when the node could not be made: then *y is released and set to NULL (the error is set). */
yt_node *yt_record(const char *name, yt_backward_fn backward, int n_in, yt_tensor *const *inputs, yt_tensor **y);
void yt_node_save(yt_node *node, yt_tensor *t);
void yt_node_add_output(yt_node *node, yt_tensor *t);
/* Gradient arriving at output i: a contiguous F32 tensor of its shape (zeros if none arrived). */
yt_tensor *yt_node_grad_out(yt_node *node, int i);
/* Contiguous F32 gradient buffer of t, zero-initialised on first use, to accumulate into.
 * NULL when t does not require a gradient. */
float *yt_grad_accum(yt_tensor *t);
/* The same for a backward that writes every element of t's gradient: when t has no gradient yet, a new buffer
 * that is NOT zeroed and *accumulate = 0 (the caller stores into it: = instead of +=, no zero fill first);
 * otherwise t's buffer and *accumulate = 1 (add into it). NULL (*accumulate = 1) when t does not require a
 * gradient or on out of memory (error set), as yt_grad_accum. A tensor that is two inputs of one node gets the
 * buffer of the first call again with *accumulate = 1: the caller must have stored every element of the first
 * before it adds the second (or use yt_grad_accum for both). */
float *yt_grad_dest(yt_tensor *t, int *accumulate);

/* Called by tensor release: the output is gone, forget the weak pointer. */
void yt_node_forget_output(yt_node *node, int index);
void yt_node_release(yt_node *node);

/* Backward from n roots. grads[i] may be NULL for a one-element root (gradient 1). Returns 0 or -1. */
int yt_backward(int n, yt_tensor *const *roots, yt_tensor *const *grads);
/* Drops every recorded node (and what they saved). */
void yt_tape_clear(void);
size_t yt_tape_length(void);

/* Where the tape's memory is: the bytes of every distinct storage the live nodes hold (inputs, saved tensors,
 * output gradients), each counted once and charged to the op that produced it (its grad_fn's name; "leaf" for a
 * tensor no recorded op made). Fills up to max entries of (name, bytes), largest first; returns the number of
 * distinct names (may exceed max) or -1. A debugging aid for benchmarks: it walks the whole tape. */
typedef struct {
    const char *name;
    size_t bytes;
    size_t count; /* distinct storages */
} yt_tape_mem_entry;
int yt_tape_memory(yt_tape_mem_entry *out, int max);

#endif
