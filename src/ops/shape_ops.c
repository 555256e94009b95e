#include "ops/shape_ops.h"

#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/reduce.h"

#define PAR_MIN 32768

static yt_tensor *cat_channels_last(int n, yt_tensor *const *ts, int64_t total);

/* ---- views: reshape, narrow, contiguous, permute (the tensor header is core's; recording is here) ---- */

/* The backward of reshape and contiguous: the output gradient is contiguous in the output's shape and holds the
 * same elements in the same order as the input's (contiguous) gradient buffer, so in.grad += gy element-wise. */
static int same_order_backward(yt_node *node)
{
    yt_tensor *in = node->in[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    int acc;
    float *gx = yt_grad_dest(in, &acc); /* written whole: a fresh buffer is a copy of gy */
    if (!gx) return in ? -1 : 0;
    const float *g = yt_f32(gy);
    int64_t n = yt_numel(gy);
    if (!acc) {
        memcpy(gx, g, (size_t)n * sizeof *gx);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) gx[i] += g[i];
    return 0;
}

yt_tensor *yt_reshape(yt_tensor *t, int ndim, const int64_t *shape)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    if (ndim < 0 || ndim > YT_MAX_DIMS) {
        yt_error("reshape: %d dimensions", ndim);
        return NULL;
    }
    int64_t n = yt_numel(t), known = 1;
    int infer = -1;
    int64_t sh[YT_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        sh[d] = shape[d];
        if (shape[d] == -1) {
            if (infer >= 0) {
                yt_error("reshape: only one dimension can be -1");
                return NULL;
            }
            infer = d;
        } else if (shape[d] < 0) {
            yt_error("reshape: negative size %lld", (long long)shape[d]);
            return NULL;
        } else {
            known *= shape[d];
        }
    }
    if (infer >= 0) sh[infer] = known ? n / known : 0;
    int64_t m = 1;
    for (int d = 0; d < ndim; d++) m *= sh[d];
    if (m != n) {
        char b[128];
        yt_error("reshape: cannot view %s (%lld elements) as %d-d with %lld elements", yt_shape_str(t, b, sizeof b),
                 (long long)n, ndim, (long long)m);
        return NULL;
    }
    yt_tensor *src = yt_contiguous(t);
    if (!src) return NULL;
    yt_tensor *v = yt_tensor_alias(src);
    if (v) {
        v->ndim = ndim;
        for (int d = 0; d < ndim; d++) v->shape[d] = sh[d];
        yt_tensor_set_contiguous_strides(v);
        yt_record("reshape", same_order_backward, 1, &src, &v);
    }
    yt_tensor_release(src);
    return v;
}

/* The first narrow backward to reach the input (a split's pieces run one after the other) stores its slice into a
 * fresh gradient and zeroes the rest, instead of zeroing all of it and adding; the others add their slices. */
static int narrow_backward(yt_node *node)
{
    yt_tensor *in = node->in[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    int acc;
    float *gx = yt_grad_dest(in, &acc);
    if (!gx) return in ? -1 : 0;
    int dim = (int)node->iarg[0];
    int64_t start = node->iarg[1], len = node->iarg[2];
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < dim; d++) outer *= in->shape[d];
    for (int d = dim + 1; d < in->ndim; d++) inner *= in->shape[d];
    int64_t full = in->shape[dim];
    const float *g = yt_f32(gy);
#pragma omp parallel for schedule(static) if (outer * full * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        float *row = gx + o * full * inner, *dst = row + start * inner;
        const float *src = g + o * len * inner;
        if (acc) {
            for (int64_t i = 0; i < len * inner; i++) dst[i] += src[i];
            continue;
        }
        memset(row, 0, (size_t)(start * inner) * sizeof *row);
        memcpy(dst, src, (size_t)(len * inner) * sizeof *dst);
        memset(dst + len * inner, 0, (size_t)((full - start - len) * inner) * sizeof *dst);
    }
    return 0;
}

yt_tensor *yt_narrow(yt_tensor *t, int dim, int64_t start, int64_t length)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    if (dim < 0 || dim >= t->ndim) {
        yt_error("narrow: dimension %d out of range for a %d-d tensor", dim + 1, t->ndim);
        return NULL;
    }
    if (start < 0 || length < 0 || start + length > t->shape[dim]) {
        yt_error("narrow: range %lld..%lld out of bounds for size %lld in dimension %d", (long long)start + 1,
                 (long long)(start + length), (long long)t->shape[dim], dim + 1);
        return NULL;
    }
    yt_tensor *v = yt_tensor_alias(t);
    if (!v) return NULL;
    v->offset += start * t->stride[dim];
    v->shape[dim] = length;
    if (yt_needs_grad(1, &t)) {
        if (t->dtype != YT_F32 || !yt_is_contiguous(t)) {
            /* gradients are tracked for contiguous F32 bases only */
            yt_tensor *c = yt_contiguous(t);
            yt_tensor_release(v);
            if (!c) return NULL;
            v = yt_narrow(c, dim, start, length);
            yt_tensor_release(c);
            return v;
        }
        yt_node *node = yt_record("narrow", narrow_backward, 1, &t, &v);
        if (node) {
            node->iarg[0] = dim;
            node->iarg[1] = start;
            node->iarg[2] = length;
        }
    }
    return v;
}

yt_tensor *yt_contiguous(yt_tensor *t)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    if (yt_is_contiguous(t)) {
        yt_tensor_retain(t);
        return t;
    }
    yt_tensor *c = yt_tensor_empty(t->dtype, t->ndim, t->shape);
    if (!c) return NULL;
    yt_tensor_copy_(c, t);
    yt_record("contiguous", same_order_backward, 1, &t, &c);
    return c;
}

static int permute_backward(yt_node *node)
{
    yt_tensor *in = node->in[0], *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(in);
    if (!gx) return 0;
    /* gy is contiguous in the permuted shape; walk it and add into gx at the un-permuted position */
    int nd = in->ndim;
    int64_t in_strides[YT_MAX_DIMS], st = 1;
    for (int d = nd - 1; d >= 0; d--) {
        in_strides[d] = st;
        st *= in->shape[d];
    }
    int64_t out_stride_in[YT_MAX_DIMS]; /* stride in gx for each output dim */
    for (int d = 0; d < nd; d++) out_stride_in[d] = in_strides[node->iarg[d]];
    int64_t idx[YT_MAX_DIMS] = {0};
    const float *g = yt_f32(gy);
    int64_t n = yt_numel(gy);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) off += idx[d] * out_stride_in[d];
        gx[off] += g[i];
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < gy->shape[d]) break;
            idx[d] = 0;
        }
    }
    return 0;
}

yt_tensor *yt_permute(yt_tensor *t, const int *perm)
{
    if (yt_tensor_is_released(t)) {
        yt_error("attempt to use a released tensor");
        return NULL;
    }
    int seen[YT_MAX_DIMS] = {0};
    for (int d = 0; d < t->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= t->ndim || seen[perm[d]]) {
            yt_error("permute: invalid permutation of %d dimensions", t->ndim);
            return NULL;
        }
        seen[perm[d]] = 1;
    }
    yt_tensor *src = t;
    yt_tensor_retain(src);
    if (yt_needs_grad(1, &t) && !yt_is_contiguous(t)) {
        yt_tensor_release(src);
        src = yt_contiguous(t);
        if (!src) return NULL;
    }
    yt_tensor *v = yt_tensor_alias(src);
    if (!v) {
        yt_tensor_release(src);
        return NULL;
    }
    for (int d = 0; d < src->ndim; d++) {
        v->shape[d] = src->shape[perm[d]];
        v->stride[d] = src->stride[perm[d]];
    }
    yt_node *node = yt_record("permute", permute_backward, 1, &src, &v);
    if (node)
        for (int d = 0; d < src->ndim; d++) node->iarg[d] = perm[d];
    yt_tensor_release(src);
    return v;
}

/* ---- cat ---- */

void yt_cat_forward(int n, const void *const *xs, const int64_t *sizes, void *y, int64_t outer, int64_t inner,
                    size_t esz)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    size_t row = (size_t)(total * inner) * esz;
#pragma omp parallel for schedule(static) if (outer * total * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        char *dst = (char *)y + (size_t)o * row;
        for (int i = 0; i < n; i++) {
            size_t blk = (size_t)(sizes[i] * inner) * esz;
            memcpy(dst, (const char *)xs[i] + (size_t)o * blk, blk);
            dst += blk;
        }
    }
}

void yt_cat_backward(int n, const float *gy, float *const *gxs, const int *accumulate, const int64_t *sizes,
                     int64_t outer, int64_t inner)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
#pragma omp parallel for schedule(static) if (outer * total * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        const float *g = gy + o * total * inner;
        /* in input order: an input given twice is stored by its first block, then added to */
        for (int i = 0; i < n; i++) {
            int64_t blk = sizes[i] * inner;
            if (gxs[i]) {
                float *gx = gxs[i] + o * blk;
                if (!accumulate || accumulate[i])
                    for (int64_t j = 0; j < blk; j++) gx[j] += g[j];
                else
                    memcpy(gx, g, (size_t)blk * sizeof *gx);
            }
            g += blk;
        }
    }
}

typedef struct {
    int dim;
    int64_t sizes[YT_NODE_MAX_IN];
} cat_ctx;

static int cat_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    cat_ctx *c = node->ctx;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < c->dim; d++) outer *= gy->shape[d];
    for (int d = c->dim + 1; d < gy->ndim; d++) inner *= gy->shape[d];
    float *gxs[YT_NODE_MAX_IN] = {0};
    int acc[YT_NODE_MAX_IN];
    for (int i = 0; i < node->n_in; i++) {
        acc[i] = 1;
        if (!node->in[i]) continue;
        gxs[i] = yt_grad_dest(node->in[i], &acc[i]); /* each input's gradient is one slice of gy, written whole */
        if (!gxs[i]) return -1;
    }
    yt_cat_backward(node->n_in, yt_f32(gy), gxs, acc, c->sizes, outer, inner);
    return 0;
}

yt_tensor *yt_cat(int n, yt_tensor *const *ts, int dim)
{
    if (n < 1 || !ts) {
        yt_error("cat: expected at least one tensor");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            yt_error("cat: tensor %d is missing", i + 1);
            return NULL;
        }
        if (yt_tensor_is_released(ts[i])) {
            yt_error("cat: tensor %d: attempt to use a released tensor", i + 1);
            return NULL;
        }
    }
    const yt_tensor *t0 = ts[0];
    if (t0->ndim == 0) {
        yt_error("cat: zero-dimensional tensors cannot be concatenated");
        return NULL;
    }
    int d = yt_norm_dim("cat", dim, t0->ndim);
    if (d < 0) return NULL;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const yt_tensor *t = ts[i];
        int ok = t->dtype == t0->dtype && t->ndim == t0->ndim;
        for (int k = 0; ok && k < t->ndim; k++)
            if (k != d && t->shape[k] != t0->shape[k]) ok = 0;
        if (!ok) {
            char a[128], b[128];
            if (t->dtype != t0->dtype)
                yt_error("cat: tensor %d is %s but tensor 1 is %s", i + 1, yt_dtype_name(t->dtype),
                         yt_dtype_name(t0->dtype));
            else
                yt_error("cat: tensor %d has shape %s, tensor 1 has %s: they must match except in dimension %d", i + 1,
                         yt_shape_str(t, a, sizeof a), yt_shape_str(t0, b, sizeof b), d + 1);
            return NULL;
        }
        total += t->shape[d];
    }
    if (d == 1 && !yt_needs_grad(n, ts)) {
        int cl = 1;
        for (int i = 0; i < n && cl; i++) cl = yt_is_channels_last(ts[i]);
        if (cl) return cat_channels_last(n, ts, total);
    }
    if (n > YT_NODE_MAX_IN && yt_needs_grad(n, ts)) {
        /* a node holds at most YT_NODE_MAX_IN inputs: concatenate in groups, then the groups */
        yt_tensor *parts[YT_NODE_MAX_IN];
        int np = 0, group = (n + YT_NODE_MAX_IN - 1) / YT_NODE_MAX_IN;
        if (group < YT_NODE_MAX_IN) group = YT_NODE_MAX_IN;
        yt_tensor *res = NULL;
        for (int i = 0; i < n; i += group) {
            int m = n - i < group ? n - i : group;
            parts[np] = yt_cat(m, ts + i, d);
            if (!parts[np]) goto done;
            np++;
        }
        res = yt_cat(np, parts, d);
    done:
        for (int i = 0; i < np; i++) yt_tensor_release(parts[i]);
        return res;
    }
    yt_tensor *cs[YT_NODE_MAX_IN > 64 ? YT_NODE_MAX_IN : 64];
    yt_tensor **xs = n <= 64 ? cs : malloc((size_t)n * sizeof *xs);
    int64_t *sizes = malloc((size_t)n * sizeof *sizes);
    const void **ptrs = malloc((size_t)n * sizeof *ptrs);
    yt_tensor *y = NULL;
    int made = 0;
    if (!xs || !sizes || !ptrs) {
        yt_error("cat: out of memory");
        goto out;
    }
    for (; made < n; made++) {
        xs[made] = yt_contiguous(ts[made]);
        if (!xs[made]) goto out;
        sizes[made] = ts[made]->shape[d];
        ptrs[made] = yt_data(xs[made]);
    }
    int64_t shape[YT_MAX_DIMS];
    for (int k = 0; k < t0->ndim; k++) shape[k] = t0->shape[k];
    shape[d] = total;
    y = yt_tensor_empty(t0->dtype, t0->ndim, shape);
    if (!y) goto out;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < d; k++) outer *= shape[k];
    for (int k = d + 1; k < t0->ndim; k++) inner *= shape[k];
    if (yt_numel(y) > 0) yt_cat_forward(n, ptrs, sizes, yt_data(y), outer, inner, yt_dtype_size(t0->dtype));
    if (yt_needs_grad(n, xs)) {
        cat_ctx *c = calloc(1, sizeof *c);
        yt_node *node = c ? yt_node_new("cat", cat_backward, n, xs) : NULL;
        if (!node) {
            if (!c) yt_error("cat: out of memory");
            free(c);
            yt_tensor_release(y);
            y = NULL;
            goto out;
        }
        c->dim = d;
        for (int i = 0; i < n; i++) c->sizes[i] = sizes[i];
        node->ctx = c;
        node->free_ctx = free;
        yt_node_add_output(node, y);
    }
out:
    for (int i = 0; i < made; i++) yt_tensor_release(xs[i]);
    if (xs != cs) free(xs);
    free(sizes);
    free(ptrs);
    return y;
}

/* ---- split / chunk ---- */

int yt_split(yt_tensor *x, int n_sizes, const int64_t *sizes, int dim, yt_tensor **out)
{
    if (!x || yt_tensor_is_released(x)) return yt_error("split: attempt to use a released tensor");
    int d = yt_norm_dim("split", dim, x->ndim);
    if (d < 0) return -1;
    if (x->ndim == 0) return yt_error("split: cannot split a 0-d tensor");
    int64_t sum = 0;
    for (int i = 0; i < n_sizes; i++) {
        if (sizes[i] < 0) return yt_error("split: negative size %lld", (long long)sizes[i]);
        sum += sizes[i];
    }
    if (sum != x->shape[d]) {
        char b[128];
        return yt_error("split: sizes add up to %lld but dimension %d of %s has size %lld", (long long)sum, d + 1,
                        yt_shape_str(x, b, sizeof b), (long long)x->shape[d]);
    }
    int64_t start = 0;
    for (int i = 0; i < n_sizes; i++) {
        out[i] = yt_narrow(x, d, start, sizes[i]);
        if (!out[i]) {
            for (int k = 0; k < i; k++) {
                yt_tensor_release(out[k]);
                out[k] = NULL;
            }
            return -1;
        }
        start += sizes[i];
    }
    return 0;
}

int yt_split_size(yt_tensor *x, int64_t split_size, int dim, yt_tensor **out, int max_out)
{
    if (!x || yt_tensor_is_released(x)) return yt_error("split: attempt to use a released tensor");
    int d = yt_norm_dim("split", dim, x->ndim);
    if (d < 0) return -1;
    if (x->ndim == 0) return yt_error("split: cannot split a 0-d tensor");
    if (split_size <= 0) return yt_error("split: size must be positive, got %lld", (long long)split_size);
    int64_t s = x->shape[d];
    int64_t count = s == 0 ? 1 : (s + split_size - 1) / split_size;
    if (count > max_out) return yt_error("split: %lld pieces exceed the limit of %d", (long long)count, max_out);
    int64_t sizes[count > 0 ? count : 1];
    for (int64_t i = 0; i < count; i++) sizes[i] = s - i * split_size < split_size ? s - i * split_size : split_size;
    if (yt_split(x, (int)count, sizes, d, out) < 0) return -1;
    return (int)count;
}

int yt_chunk(yt_tensor *x, int chunks, int dim, yt_tensor **out, int max_out)
{
    if (!x || yt_tensor_is_released(x)) return yt_error("chunk: attempt to use a released tensor");
    if (chunks <= 0) return yt_error("chunk: number of chunks must be positive, got %d", chunks);
    int d = yt_norm_dim("chunk", dim, x->ndim);
    if (d < 0) return -1;
    if (x->ndim == 0) return yt_error("chunk: cannot chunk a 0-d tensor");
    int64_t s = x->shape[d];
    int64_t size = (s + chunks - 1) / chunks;
    if (size == 0) size = 1;
    return yt_split_size(x, size, d, out, max_out);
}

/* ---- index_select ---- */

static int index_select_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    float *gx = yt_grad_accum(node->in[0]);
    if (!gx) return 0;
    int64_t outer = node->iarg[0], s = node->iarg[1], inner = node->iarg[2];
    const int64_t *idx = yt_i64(node->saved[0]);
    int64_t m = yt_numel(node->saved[0]);
    const float *g = yt_f32(gy);
    /* parallel over outer only: several k may hit the same row */
#pragma omp parallel for schedule(static) if (outer * m * inner > PAR_MIN && outer > 1)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < m; k++) {
            float *dst = gx + (o * s + idx[k]) * inner;
            const float *src = g + (o * m + k) * inner;
            for (int64_t j = 0; j < inner; j++) dst[j] += src[j];
        }
    return 0;
}

yt_tensor *yt_index_select(yt_tensor *x, int dim, const yt_tensor *index)
{
    if (!x || yt_tensor_is_released(x)) {
        yt_error("index_select: attempt to use a released tensor");
        return NULL;
    }
    if (yt_check(index, "index_select index", YT_I64, -1) < 0) return NULL;
    if (index->ndim > 1) {
        char b[128];
        yt_error("index_select: index must be 1-d, got shape %s", yt_shape_str(index, b, sizeof b));
        return NULL;
    }
    int d = yt_norm_dim("index_select", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t s = x->ndim ? x->shape[d] : 1;
    yt_tensor *ic = yt_contiguous((yt_tensor *)index);
    if (!ic) return NULL;
    const int64_t *idx = yt_i64(ic);
    int64_t m = yt_numel(ic);
    for (int64_t k = 0; k < m; k++) {
        if (idx[k] < 0 || idx[k] >= s) {
            yt_error("index_select: index %lld out of range for size %lld in dimension %d", (long long)idx[k],
                     (long long)s, d + 1);
            yt_tensor_release(ic);
            return NULL;
        }
    }
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) {
        yt_tensor_release(ic);
        return NULL;
    }
    int64_t shape[YT_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) shape[k] = x->shape[k];
    int ond = x->ndim;
    if (ond == 0) ond = 1; /* a 0-d input gives a 1-d result of m elements */
    shape[ond == x->ndim ? d : 0] = m;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < d; k++) outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) inner *= x->shape[k];
    yt_tensor *y = yt_tensor_empty(x->dtype, ond, shape);
    if (y) {
        size_t esz = yt_dtype_size(x->dtype), row = (size_t)inner * esz;
        const char *src = yt_data(xc);
        char *dst = yt_data(y);
        if (row > 0) {
#pragma omp parallel for schedule(static) if (outer * m * inner > PAR_MIN)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t k = 0; k < m; k++)
                    memcpy(dst + (size_t)(o * m + k) * row, src + (size_t)(o * s + idx[k]) * row, row);
        }
        yt_node *node = x->dtype == YT_F32 ? yt_record("index_select", index_select_backward, 1, &xc, &y) : NULL;
        if (node) {
            node->iarg[0] = outer;
            node->iarg[1] = s;
            node->iarg[2] = inner;
            yt_node_save(node, ic);
        }
    }
    yt_tensor_release(xc);
    yt_tensor_release(ic);
    return y;
}

/* ---- squeeze / unsqueeze / flatten / transpose ---- */

/* x with a new shape that only adds or removes size-1 dimensions: a view. strides gives the view's strides
 * (used when x is not contiguous and no gradient is recorded; otherwise a non-contiguous x is copied). */
static yt_tensor *restride(yt_tensor *x, int nd, const int64_t *shape, const int64_t *strides)
{
    if (yt_is_contiguous(x) || x->ndim == 0 || yt_needs_grad(1, &x)) return yt_reshape(x, nd, shape);
    yt_tensor *v = yt_narrow(x, 0, 0, x->shape[0]);
    if (!v) return NULL;
    v->ndim = nd;
    for (int k = 0; k < nd; k++) {
        v->shape[k] = shape[k];
        v->stride[k] = strides[k];
    }
    return v;
}

yt_tensor *yt_squeeze(yt_tensor *x, int dim)
{
    if (!x || yt_tensor_is_released(x)) {
        yt_error("squeeze: attempt to use a released tensor");
        return NULL;
    }
    int d = yt_norm_dim("squeeze", dim, x->ndim);
    if (d < 0) return NULL;
    if (x->ndim == 0) return yt_reshape(x, 0, NULL);
    if (x->shape[d] != 1) {
        /* PyTorch leaves the tensor unchanged when the dimension is not 1 */
        return yt_reshape(x, x->ndim, x->shape);
    }
    int64_t shape[YT_MAX_DIMS], st[YT_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (k == d) continue;
        shape[nd] = x->shape[k];
        st[nd++] = x->stride[k];
    }
    return restride(x, nd, shape, st);
}

yt_tensor *yt_squeeze_all(yt_tensor *x)
{
    if (!x || yt_tensor_is_released(x)) {
        yt_error("squeeze: attempt to use a released tensor");
        return NULL;
    }
    int64_t shape[YT_MAX_DIMS], st[YT_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (x->shape[k] == 1) continue;
        shape[nd] = x->shape[k];
        st[nd++] = x->stride[k];
    }
    return restride(x, nd, shape, st);
}

yt_tensor *yt_unsqueeze(yt_tensor *x, int dim)
{
    if (!x || yt_tensor_is_released(x)) {
        yt_error("unsqueeze: attempt to use a released tensor");
        return NULL;
    }
    if (x->ndim >= YT_MAX_DIMS) {
        yt_error("unsqueeze: tensors have at most %d dimensions", YT_MAX_DIMS);
        return NULL;
    }
    int d = dim < 0 ? dim + x->ndim + 1 : dim;
    if (d < 0 || d > x->ndim) {
        yt_error("unsqueeze: dimension %d out of range for a %d-d tensor", dim, x->ndim);
        return NULL;
    }
    int64_t shape[YT_MAX_DIMS], st[YT_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k <= x->ndim; k++) {
        if (k == d) {
            shape[nd] = 1;
            st[nd++] = k < x->ndim ? x->shape[k] * x->stride[k] : 1;
        }
        if (k < x->ndim) {
            shape[nd] = x->shape[k];
            st[nd++] = x->stride[k];
        }
    }
    return restride(x, nd, shape, st);
}

yt_tensor *yt_flatten(yt_tensor *x, int start_dim, int end_dim)
{
    if (!x || yt_tensor_is_released(x)) {
        yt_error("flatten: attempt to use a released tensor");
        return NULL;
    }
    if (x->ndim == 0) {
        int64_t one = 1;
        return yt_reshape(x, 1, &one);
    }
    int s = yt_norm_dim("flatten", start_dim, x->ndim), e = yt_norm_dim("flatten", end_dim, x->ndim);
    if (s < 0 || e < 0) return NULL;
    if (s > e) {
        yt_error("flatten: start dimension %d comes after end dimension %d", s + 1, e + 1);
        return NULL;
    }
    int64_t shape[YT_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < s; k++) shape[nd++] = x->shape[k];
    int64_t m = 1;
    for (int k = s; k <= e; k++) m *= x->shape[k];
    shape[nd++] = m;
    for (int k = e + 1; k < x->ndim; k++) shape[nd++] = x->shape[k];
    return yt_reshape(x, nd, shape);
}

yt_tensor *yt_transpose(yt_tensor *x, int d0, int d1)
{
    if (!x || yt_tensor_is_released(x)) {
        yt_error("transpose: attempt to use a released tensor");
        return NULL;
    }
    int a = yt_norm_dim("transpose", d0, x->ndim), b = yt_norm_dim("transpose", d1, x->ndim);
    if (a < 0 || b < 0) return NULL;
    if (x->ndim == 0) return yt_reshape(x, 0, NULL);
    int perm[YT_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) perm[k] = k;
    perm[a] = b;
    perm[b] = a;
    return yt_permute(x, perm);
}

/* ---- channels-last tensors (shape_ops.h) ---- */

int yt_is_channels_last(const yt_tensor *t)
{
    if (!t || !t->storage || t->dtype != YT_F32 || t->ndim != 4 || t->shape[1] < 2 || t->stride[1] != 1) return 0;
    for (int d = 0; d < 4; d++)
        if (d != 1 && t->shape[d] > 1 && t->stride[d] < t->shape[1]) return 0;
    return 1;
}

int yt_is_channels_last_dense(const yt_tensor *t)
{
    if (!yt_is_channels_last(t)) return 0;
    const int64_t C = t->shape[1], W = t->shape[3], H = t->shape[2];
    const int64_t want[4] = {H * W * C, 1, W * C, C};
    for (int d = 0; d < 4; d++)
        if (t->shape[d] > 1 && t->stride[d] != want[d]) return 0;
    return 1;
}

yt_tensor *yt_tensor_empty_channels_last(int64_t N, int64_t C, int64_t H, int64_t W)
{
    int64_t mem[4] = {N, H, W, C};
    yt_tensor *t = yt_tensor_empty(YT_F32, 4, mem);
    if (!t) return NULL;
    t->shape[0] = N, t->shape[1] = C, t->shape[2] = H, t->shape[3] = W;
    t->stride[0] = H * W * C, t->stride[1] = 1, t->stride[2] = W * C, t->stride[3] = C;
    return t;
}

/* n floats: a pixel's channels are a few dozen values, too few for memcpy's call to pay */
static inline void copy_pixel(float *restrict dst, const float *restrict src, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}

void yt_copy_to_channels_last(const yt_tensor *x, float *y)
{
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t *st = x->stride;
    const float *xd = yt_f32(x);
    const int64_t rows = N * H;
#pragma omp parallel for schedule(static) if (rows > 1 && N * C * H * W > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t n = r / H, h = r % H;
        const float *src = xd + n * st[0] + h * st[2];
        float *dst = y + r * W * C;
        if (st[1] == 1 && st[3] == C) {
            memcpy(dst, src, (size_t)(W * C) * sizeof(float)); /* the row is dense already */
        } else if (st[1] == 1) {
            for (int64_t w = 0; w < W; w++) copy_pixel(dst + w * C, src + w * st[3], C);
        } else {
            /* an NCHW row: each channel's run read in order, written C apart */
            for (int64_t c = 0; c < C; c++) {
                const float *sc = src + c * st[1];
                float *dc = dst + c;
                for (int64_t w = 0; w < W; w++) dc[w * C] = sc[w * st[3]];
            }
        }
    }
}

yt_tensor *yt_channels_last(yt_tensor *x)
{
    if (yt_check(x, "channels_last input", YT_F32, 4) < 0) return NULL;
    if (yt_is_channels_last_dense(x)) {
        yt_tensor_retain(x);
        return x;
    }
    yt_tensor *y = yt_tensor_empty_channels_last(x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
    if (y) yt_copy_to_channels_last(x, yt_f32(y));
    return y;
}

/* cat along the channels of channels-last inputs into a dense channels-last result: per pixel, the inputs' C_i
 * values one after the other. */
static yt_tensor *cat_channels_last(int n, yt_tensor *const *ts, int64_t total)
{
    const int64_t N = ts[0]->shape[0], H = ts[0]->shape[2], W = ts[0]->shape[3];
    yt_tensor *y = yt_tensor_empty_channels_last(N, total, H, W);
    if (!y) return NULL;
    float *yd = yt_f32(y);
    const int64_t rows = N * H;
#pragma omp parallel for schedule(static) if (rows > 1 && N * total * H * W > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t b = r / H, h = r % H;
        float *dst = yd + r * W * total;
        for (int64_t w = 0; w < W; w++) {
            float *px = dst + w * total;
            for (int i = 0; i < n; i++) {
                const yt_tensor *t = ts[i];
                const int64_t c = t->shape[1];
                copy_pixel(px, yt_f32(t) + b * t->stride[0] + h * t->stride[2] + w * t->stride[3], c);
                px += c;
            }
        }
    }
    return y;
}
