#include "core/autograd.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    yt_node **nodes;
    size_t len, cap;
} tape;

static _Thread_local tape the_tape;
static _Thread_local int grad_disabled;

int yt_grad_enabled(void) { return !grad_disabled; }

int yt_set_grad_enabled(int enabled)
{
    int prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}

int yt_needs_grad(int n, yt_tensor *const *inputs)
{
    if (grad_disabled) return 0;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return 1;
    return 0;
}

size_t yt_tape_length(void) { return the_tape.len; }

/* Drops what the node holds for backward; the node struct lives on while outputs point at it. */
static void node_consume(yt_node *node)
{
    if (node->consumed) return;
    node->consumed = 1;
    /* what only this node and the scope still hold is dead: its storage goes now, not at the scope's end */
    for (int i = 0; i < node->n_in; i++) {
        if (!node->in[i]) continue;
        node->in[i]->header_refs--;
        yt_tensor_release_consumed(node->in[i]);
        node->in[i] = NULL;
    }
    for (int i = 0; i < node->n_saved; i++) {
        yt_tensor_release_consumed(node->saved[i]);
        node->saved[i] = NULL;
    }
    for (int i = 0; i < node->n_out; i++) {
        yt_tensor_release(node->out_grad[i]);
        node->out_grad[i] = NULL;
    }
    if (node->ctx && node->free_ctx) node->free_ctx(node->ctx);
    node->ctx = NULL;
}

void yt_node_release(yt_node *node)
{
    if (!node || --node->refcount > 0) return;
    node_consume(node);
    free(node);
}

void yt_node_forget_output(yt_node *node, int index)
{
    if (index >= 0 && index < node->n_out) node->out[index] = NULL;
}

static void release_grad_fn(yt_tensor *t)
{
    yt_node_forget_output(t->grad_fn, t->grad_fn_output);
    yt_node_release(t->grad_fn);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void)
{
    const yt_autograd_hooks hooks = {.release_grad_fn = release_grad_fn, .clear_tape = yt_tape_clear};
    yt_tensor_set_autograd_hooks(&hooks);
}

yt_node *yt_node_new(const char *name, yt_backward_fn backward, int n_in, yt_tensor *const *inputs)
{
    pthread_once(&hooks_once, install_hooks);
    if (n_in > YT_NODE_MAX_IN) {
        yt_error("%s: too many autograd inputs (%d)", name, n_in);
        return NULL;
    }
    if (the_tape.len == the_tape.cap) {
        size_t cap = the_tape.cap ? the_tape.cap * 2 : 1024;
        yt_node **nodes = realloc(the_tape.nodes, cap * sizeof *nodes);
        if (!nodes) {
            yt_error("out of memory growing the autograd tape");
            return NULL;
        }
        the_tape.nodes = nodes;
        the_tape.cap = cap;
    }
    yt_node *node = calloc(1, sizeof *node);
    if (!node) {
        yt_error("out of memory");
        return NULL;
    }
    node->refcount = 1; /* the tape's */
    node->name = name;
    node->backward = backward;
    node->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        /* inputs that need no gradient are not kept: backward only accumulates into the others. An input is a
         * gradient target: backward reads its shape and grad_fn, never its data (what it reads is saved), so the
         * reference does not keep the storage alive once nothing else reads it (header_refs) */
        if (inputs[i] && inputs[i]->requires_grad) {
            node->in[i] = inputs[i];
            yt_tensor_retain(inputs[i]);
            inputs[i]->header_refs++;
        }
    }
    the_tape.nodes[the_tape.len++] = node;
    return node;
}

yt_node *yt_record(const char *name, yt_backward_fn backward, int n_in, yt_tensor *const *inputs, yt_tensor **y)
{
    if (!*y || !yt_needs_grad(n_in, inputs)) return NULL;
    yt_node *node = yt_node_new(name, backward, n_in, inputs);
    if (!node) {
        yt_tensor_release(*y);
        *y = NULL;
        return NULL;
    }
    yt_node_add_output(node, *y);
    return node;
}

void yt_node_save(yt_node *node, yt_tensor *t)
{
    if (node->n_saved >= YT_NODE_MAX_SAVED || !t) return;
    yt_tensor_retain(t);
    node->saved[node->n_saved++] = t;
}

void yt_node_add_output(yt_node *node, yt_tensor *t)
{
    if (node->n_out >= YT_NODE_MAX_OUT) return;
    if (t->grad_fn) release_grad_fn(t); /* re-recording the same tensor: the newest producer wins */
    t->grad_fn = node;
    t->grad_fn_output = node->n_out;
    t->requires_grad = 1;
    node->refcount++;
    node->out[node->n_out++] = t;
}

yt_tensor *yt_node_grad_out(yt_node *node, int i)
{
    if (i < 0 || i >= node->n_out) {
        yt_error("%s: no output %d", node->name, i);
        return NULL;
    }
    if (!node->out_grad[i]) {
        /* an output that received no gradient contributes zeros; its shape is needed, so the
         * output must still be alive (it is: a dead output cannot have been used) */
        if (!node->out[i]) {
            yt_error("%s: output %d was freed before backward", node->name, i);
            return NULL;
        }
        node->out_grad[i] = yt_tensor_zeros_unscoped(YT_F32, node->out[i]->ndim, node->out[i]->shape);
    }
    return node->out_grad[i];
}

/* The gradient slot of a tensor: for the outputs of a node it is the node's out_grad slot; for leaves
 * (parameters, or tensors a user marked) it is t->grad, which outlives scopes. NULL when t needs no gradient. */
static yt_tensor **grad_slot(yt_tensor *t)
{
    if (!t || !t->requires_grad) return NULL;
    if (t->grad_fn && !t->grad_fn->consumed) return &t->grad_fn->out_grad[t->grad_fn_output];
    return &t->grad;
}

/* A new gradient buffer in *slot, owned by the slot alone, never by a scope: an output's gradient is freed as soon
 * as its node has run. */
static float *new_grad(yt_tensor *t, yt_tensor **slot, int zero)
{
    *slot = zero ? yt_tensor_zeros_unscoped(YT_F32, t->ndim, t->shape)
                 : yt_tensor_empty_unscoped(YT_F32, t->ndim, t->shape);
    if (!*slot) return NULL;
    yt_tensor_keep(*slot);
    return yt_f32(*slot);
}

float *yt_grad_accum(yt_tensor *t)
{
    yt_tensor **slot = grad_slot(t);
    if (!slot) return NULL;
    return *slot ? yt_f32(*slot) : new_grad(t, slot, 1);
}

float *yt_grad_dest(yt_tensor *t, int *accumulate)
{
    *accumulate = 1;
    yt_tensor **slot = grad_slot(t);
    if (!slot) return NULL;
    if (*slot) return yt_f32(*slot);
    float *g = new_grad(t, slot, 0);
    *accumulate = g ? 0 : 1;
    return g;
}

void yt_tape_clear(void)
{
    for (size_t i = 0; i < the_tape.len; i++) {
        node_consume(the_tape.nodes[i]);
        yt_node_release(the_tape.nodes[i]);
    }
    the_tape.len = 0;
    if (the_tape.cap > 65536) {
        free(the_tape.nodes);
        the_tape.nodes = NULL;
        the_tape.cap = 0;
    }
}

typedef struct {
    const yt_storage *storage;
    const char *name;
    size_t bytes;
} held_storage;

static int cmp_held(const void *a, const void *b)
{
    const held_storage *x = a, *y = b;
    return x->storage < y->storage ? -1 : x->storage > y->storage;
}

static int cmp_entry_bytes(const void *a, const void *b)
{
    const yt_tape_mem_entry *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : strcmp(x->name, y->name);
}

int yt_tape_memory(yt_tape_mem_entry *out, int max)
{
    size_t cap = the_tape.len * (YT_NODE_MAX_IN + YT_NODE_MAX_SAVED + YT_NODE_MAX_OUT) + 1, n = 0;
    held_storage *held = malloc(cap * sizeof *held);
    if (!held) return yt_error("tape memory: out of memory");
    for (size_t i = 0; i < the_tape.len; i++) {
        const yt_node *node = the_tape.nodes[i];
        if (node->consumed) continue;
        const yt_tensor *ts[YT_NODE_MAX_IN + YT_NODE_MAX_SAVED + YT_NODE_MAX_OUT];
        int k = 0;
        for (int j = 0; j < node->n_in; j++) ts[k++] = node->in[j];
        for (int j = 0; j < node->n_saved; j++) ts[k++] = node->saved[j];
        for (int j = 0; j < node->n_out; j++) ts[k++] = node->out_grad[j];
        for (int j = 0; j < k; j++) {
            const yt_tensor *t = ts[j];
            if (!t || !t->storage) continue;
            const char *name = j >= node->n_in + node->n_saved ? "(output gradients)"
                               : t->grad_fn                    ? t->grad_fn->name
                                                               : "leaf";
            held[n++] = (held_storage){t->storage, name, t->storage->nbytes};
        }
    }
    qsort(held, n, sizeof *held, cmp_held);
    yt_tape_mem_entry *sums = malloc((n + 1) * sizeof *sums);
    if (!sums) {
        free(held);
        return yt_error("tape memory: out of memory");
    }
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && held[i].storage == held[i - 1].storage) continue;
        size_t e = 0;
        while (e < ns && strcmp(sums[e].name, held[i].name) != 0) e++;
        if (e == ns) sums[ns++] = (yt_tape_mem_entry){held[i].name, 0, 0};
        sums[e].bytes += held[i].bytes;
        sums[e].count++;
    }
    qsort(sums, ns, sizeof *sums, cmp_entry_bytes);
    for (size_t i = 0; i < ns && (int)i < max; i++) out[i] = sums[i];
    free(held);
    free(sums);
    return (int)ns;
}

int yt_backward(int n, yt_tensor *const *roots, yt_tensor *const *grads)
{
    for (int r = 0; r < n; r++) {
        yt_tensor *t = roots[r];
        if (!t || yt_tensor_is_released(t)) return yt_error("backward: root %d is missing or released", r + 1);
        if (!t->requires_grad) return yt_error("backward: root %d does not require a gradient", r + 1);
        if (t->dtype != YT_F32) return yt_error("backward: root %d is not F32", r + 1);
        if (t->grad_fn && t->grad_fn->consumed)
            return yt_error("backward: the graph of root %d was already used by a backward or freed", r + 1);
        yt_tensor *g = grads ? grads[r] : NULL;
        if (g) {
            if (g->dtype != YT_F32 || yt_numel(g) != yt_numel(t)) {
                char a[128], b[128];
                return yt_error("backward: gradient %s does not match root %s", yt_shape_str(g, a, sizeof a),
                                yt_shape_str(t, b, sizeof b));
            }
        } else if (yt_numel(t) != 1) {
            return yt_error("backward: root %d has %lld elements; give its gradient", r + 1, (long long)yt_numel(t));
        }
    }
    int was = yt_set_grad_enabled(0);
    for (int r = 0; r < n; r++) {
        yt_tensor *t = roots[r];
        float *acc = yt_grad_accum(t);
        if (!acc) {
            yt_set_grad_enabled(was);
            return -1;
        }
        yt_tensor *g = grads ? grads[r] : NULL;
        int64_t m = yt_numel(t);
        if (!g) {
            acc[0] += 1.0f;
        } else if (yt_is_contiguous(g)) {
            const float *gp = yt_f32(g);
            for (int64_t i = 0; i < m; i++) acc[i] += gp[i];
        } else {
            yt_tensor *gc = yt_tensor_clone(g);
            if (!gc) {
                yt_set_grad_enabled(was);
                return -1;
            }
            const float *gp = yt_f32(gc);
            for (int64_t i = 0; i < m; i++) acc[i] += gp[i];
            yt_tensor_release(gc);
        }
    }
    int rc = 0;
    for (size_t i = the_tape.len; i-- > 0;) {
        yt_node *node = the_tape.nodes[i];
        if (node->consumed) continue;
        int has_grad = 0;
        for (int o = 0; o < node->n_out; o++)
            if (node->out_grad[o]) has_grad = 1;
        if (has_grad) {
            int any_input = 0;
            for (int k = 0; k < node->n_in; k++)
                if (node->in[k]) any_input = 1;
            if (any_input && node->backward(node) < 0) {
                yt_error_prefix("backward of %s: ", node->name);
                rc = -1;
                break;
            }
        }
        node_consume(node); /* frees its saved tensors and output grads right away: memory falls as we go */
    }
    yt_set_grad_enabled(was);
    yt_tape_clear();
    return rc;
}
