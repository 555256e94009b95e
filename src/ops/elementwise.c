#include "ops/elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/shape_ops.h"

#define PAR_MIN 32768

/* ---- raw kernels: unary ---- */

#define UN_LOOP(EXPR)                                                                                                  \
    do {                                                                                                               \
        _Pragma("omp parallel for schedule(static) if (n > PAR_MIN)") for (size_t i = 0; i < n; i++)                   \
        {                                                                                                              \
            float v = x[i];                                                                                            \
            y[i] = (EXPR);                                                                                             \
        }                                                                                                              \
    } while (0)

void yt_unary_forward(yt_unary_op op, const float *x, float *y, size_t n, float p0, float p1)
{
    switch (op) {
    case YT_UN_NEG:
        UN_LOOP(-v);
        break;
    case YT_UN_EXP:
        UN_LOOP(expf(v));
        break;
    case YT_UN_LOG:
        UN_LOOP(logf(v));
        break;
    case YT_UN_SQRT:
        UN_LOOP(sqrtf(v));
        break;
    case YT_UN_ABS:
        UN_LOOP(fabsf(v));
        break;
    case YT_UN_POW:
        /* exact special cases, like PyTorch's pow kernel */
        if (p0 == 2.0f)
            UN_LOOP(v * v);
        else if (p0 == 3.0f)
            UN_LOOP(v * v * v);
        else if (p0 == 1.0f)
            UN_LOOP(v);
        else if (p0 == 0.0f)
            UN_LOOP(1.0f + 0.0f * v);
        else if (p0 == 0.5f)
            UN_LOOP(sqrtf(v));
        else if (p0 == -1.0f)
            UN_LOOP(1.0f / v);
        else if (p0 == -2.0f)
            UN_LOOP(1.0f / (v * v));
        else
            UN_LOOP(powf(v, p0));
        break;
    case YT_UN_CLAMP:
        UN_LOOP(v < p0 ? p0 : (v > p1 ? p1 : v));
        break;
    case YT_UN_ADDS:
        UN_LOOP(v + p0);
        break;
    case YT_UN_MULS:
        UN_LOOP(v * p0);
        break;
    case YT_UN_DIVS:
        UN_LOOP(v / p0);
        break;
    case YT_UN_RSUBS:
        UN_LOOP(p0 - v);
        break;
    case YT_UN_RDIVS:
        UN_LOOP(p0 / v);
        break;
    default:
        break;
    }
}

#define UNB_LOOP(EXPR)                                                                                                 \
    do {                                                                                                               \
        _Pragma("omp parallel for schedule(static) if (n > PAR_MIN)") for (size_t i = 0; i < n; i++) gx[i] += (EXPR);  \
    } while (0)

void yt_unary_backward(yt_unary_op op, const float *x, const float *y, const float *gy, float *gx, size_t n, float p0,
                       float p1)
{
    switch (op) {
    case YT_UN_NEG:
        UNB_LOOP(-gy[i]);
        break;
    case YT_UN_EXP:
        UNB_LOOP(gy[i] * y[i]);
        break;
    case YT_UN_LOG:
        UNB_LOOP(gy[i] / x[i]);
        break;
    case YT_UN_SQRT:
        UNB_LOOP(gy[i] / (2.0f * y[i]));
        break;
    case YT_UN_ABS:
        UNB_LOOP(x[i] > 0 ? gy[i] : (x[i] < 0 ? -gy[i] : 0.0f));
        break;
    case YT_UN_POW:
        if (p0 == 0.0f) break;
        if (p0 == 1.0f)
            UNB_LOOP(gy[i]);
        else if (p0 == 2.0f)
            UNB_LOOP(gy[i] * 2.0f * x[i]);
        else if (p0 == 3.0f)
            UNB_LOOP(gy[i] * 3.0f * x[i] * x[i]);
        else
            UNB_LOOP(gy[i] * p0 * powf(x[i], p0 - 1.0f));
        break;
    case YT_UN_CLAMP:
        UNB_LOOP((x[i] >= p0 && x[i] <= p1) ? gy[i] : 0.0f);
        break;
    case YT_UN_ADDS:
        UNB_LOOP(gy[i]);
        break;
    case YT_UN_MULS:
        UNB_LOOP(gy[i] * p0);
        break;
    case YT_UN_DIVS:
        UNB_LOOP(gy[i] / p0);
        break;
    case YT_UN_RSUBS:
        UNB_LOOP(-gy[i]);
        break;
    case YT_UN_RDIVS:
        UNB_LOOP(-gy[i] * p0 / (x[i] * x[i]));
        break;
    default:
        break;
    }
    (void)p1;
}

/* ---- raw kernels: binary, same shape ---- */

#define BIN_LOOP(EXPR)                                                                                                 \
    do {                                                                                                               \
        _Pragma("omp parallel for schedule(static) if (n > PAR_MIN)") for (size_t i = 0; i < n; i++)                   \
        {                                                                                                              \
            float av = a[i], bv = b[i];                                                                                \
            y[i] = (EXPR);                                                                                             \
        }                                                                                                              \
    } while (0)

void yt_binary_forward(yt_binary_op op, const float *a, const float *b, float *y, size_t n)
{
    switch (op) {
    case YT_BIN_ADD:
        BIN_LOOP(av + bv);
        break;
    case YT_BIN_SUB:
        BIN_LOOP(av - bv);
        break;
    case YT_BIN_MUL:
        BIN_LOOP(av * bv);
        break;
    case YT_BIN_DIV:
        BIN_LOOP(av / bv);
        break;
    default:
        break;
    }
}

void yt_binary_backward(yt_binary_op op, const float *a, const float *b, const float *gy, float *ga, float *gb,
                        size_t n)
{
    float *gx = ga;
    if (ga) {
        switch (op) {
        case YT_BIN_ADD:
        case YT_BIN_SUB:
            UNB_LOOP(gy[i]);
            break;
        case YT_BIN_MUL:
            UNB_LOOP(gy[i] * b[i]);
            break;
        case YT_BIN_DIV:
            UNB_LOOP(gy[i] / b[i]);
            break;
        default:
            break;
        }
    }
    gx = gb;
    if (gb) {
        switch (op) {
        case YT_BIN_ADD:
            UNB_LOOP(gy[i]);
            break;
        case YT_BIN_SUB:
            UNB_LOOP(-gy[i]);
            break;
        case YT_BIN_MUL:
            UNB_LOOP(gy[i] * a[i]);
            break;
        case YT_BIN_DIV:
            UNB_LOOP(-gy[i] * a[i] / (b[i] * b[i]));
            break;
        default:
            break;
        }
    }
}

/* ---- broadcasting machinery ---- */

int yt_broadcast_shape(const char *op, const yt_tensor *a, const yt_tensor *b, int64_t *shape)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa == sb || sb == 1)
            shape[d] = sa;
        else if (sa == 1)
            shape[d] = sb;
        else {
            char x[128], y[128];
            return yt_error("%s: shapes %s and %s cannot be broadcast together (dimension %d: %lld vs %lld)", op,
                            yt_shape_str(a, x, sizeof x), yt_shape_str(b, y, sizeof y), d + 1, (long long)sa,
                            (long long)sb);
        }
    }
    return nd;
}

/* Strides of t seen as an nd-d tensor of the broadcast shape (right-aligned): 0 on repeated dimensions.
 * real: t's own strides; otherwise the contiguous strides of t's shape (for its gradient buffer). */
static void bcast_strides(const yt_tensor *t, int nd, int64_t *st, int real)
{
    int64_t cst[YT_MAX_DIMS], s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        cst[d] = s;
        s *= t->shape[d];
    }
    int off = nd - t->ndim;
    for (int d = 0; d < nd; d++) {
        int td = d - off;
        if (td < 0 || t->shape[td] == 1)
            st[d] = 0;
        else
            st[d] = real ? t->stride[td] : cst[td];
    }
}

#define MAX_OPS 4

/* A loop nest over a shape for up to MAX_OPS strided operands, with size-1 dimensions dropped and adjacent
 * dimensions merged where every operand allows it. */
typedef struct {
    int nd, nops;
    int64_t shape[YT_MAX_DIMS];
    int64_t st[MAX_OPS][YT_MAX_DIMS];
    int64_t outer, inner;
} iter_t;

static void iter_build(iter_t *it, int nd, const int64_t *shape, int nops, int64_t st[][YT_MAX_DIMS])
{
    int k = 0;
    it->nops = nops;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1) continue;
        int merge = k > 0;
        for (int o = 0; o < nops && merge; o++)
            if (it->st[o][k - 1] != st[o][d] * shape[d]) merge = 0;
        if (merge) {
            it->shape[k - 1] *= shape[d];
            for (int o = 0; o < nops; o++) it->st[o][k - 1] = st[o][d];
        } else {
            it->shape[k] = shape[d];
            for (int o = 0; o < nops; o++) it->st[o][k] = st[o][d];
            k++;
        }
    }
    if (k == 0) {
        it->shape[0] = 1;
        for (int o = 0; o < nops; o++) it->st[o][0] = 0;
        k = 1;
    }
    it->nd = k;
    it->inner = it->shape[k - 1];
    it->outer = 1;
    for (int d = 0; d < k - 1; d++) it->outer *= it->shape[d];
    if (it->inner == 0) it->outer = 0;
}

/* Offsets of every operand at outer index o. */
static inline void iter_offsets(const iter_t *it, int64_t o, int64_t *off)
{
    for (int p = 0; p < it->nops; p++) off[p] = 0;
    for (int d = it->nd - 2; d >= 0; d--) {
        int64_t i = o % it->shape[d];
        o /= it->shape[d];
        for (int p = 0; p < it->nops; p++) off[p] += i * it->st[p][d];
    }
}

static void binary_inner(yt_binary_op op, float *y, int64_t sy, const float *a, int64_t sa, const float *b, int64_t sb,
                         int64_t n)
{
#define BIN_STRIDED(EXPR)                                                                                              \
    do {                                                                                                               \
        if (sy == 1 && sa == 1 && sb == 0) {                                                                           \
            const float bv = b[0];                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float av = a[i];                                                                                 \
                y[i] = (EXPR);                                                                                         \
            }                                                                                                          \
        } else if (sy == 1 && sa == 0 && sb == 1) {                                                                    \
            const float av = a[0];                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float bv = b[i];                                                                                 \
                y[i] = (EXPR);                                                                                         \
            }                                                                                                          \
        } else if (sy == 1 && sa == 1 && sb == 1) {                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float av = a[i], bv = b[i];                                                                      \
                y[i] = (EXPR);                                                                                         \
            }                                                                                                          \
        } else {                                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                const float av = a[i * sa], bv = b[i * sb];                                                            \
                y[i * sy] = (EXPR);                                                                                    \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)
    switch (op) {
    case YT_BIN_ADD:
        BIN_STRIDED(av + bv);
        break;
    case YT_BIN_SUB:
        BIN_STRIDED(av - bv);
        break;
    case YT_BIN_MUL:
        BIN_STRIDED(av * bv);
        break;
    case YT_BIN_DIV:
        BIN_STRIDED(av / bv);
        break;
    default:
        break;
    }
#undef BIN_STRIDED
}

/* Gradient of one input (target 0 = a, 1 = b) over one inner row: into gx (float, no repetition) or into acc
 * (double, when the target is broadcast and several outputs share one element). */
static void grad_inner(yt_binary_op op, int target, const float *g, int64_t sg, const float *a, int64_t sa,
                       const float *b, int64_t sb, float *gx, double *acc, int64_t sx, int64_t n)
{
#define GLOOP(EXPR)                                                                                                    \
    do {                                                                                                               \
        if (acc && sx == 0) {                                                                                          \
            double s = 0;                                                                                              \
            for (int64_t i = 0; i < n; i++) s += (double)(EXPR);                                                       \
            acc[0] += s;                                                                                               \
        } else if (acc) {                                                                                              \
            for (int64_t i = 0; i < n; i++) acc[i * sx] += (double)(EXPR);                                             \
        } else {                                                                                                       \
            for (int64_t i = 0; i < n; i++) gx[i * sx] += (EXPR);                                                      \
        }                                                                                                              \
    } while (0)
#define G (g[i * sg])
#define A (a[i * sa])
#define B (b[i * sb])
    switch (op) {
    case YT_BIN_ADD:
        GLOOP(G);
        break;
    case YT_BIN_SUB:
        if (target == 0)
            GLOOP(G);
        else
            GLOOP(-G);
        break;
    case YT_BIN_MUL:
        if (target == 0)
            GLOOP(G * B);
        else
            GLOOP(G * A);
        break;
    case YT_BIN_DIV:
        if (target == 0)
            GLOOP(G / B);
        else
            GLOOP(-G * A / (B * B));
        break;
    default:
        break;
    }
#undef G
#undef A
#undef B
#undef GLOOP
}

static const char *binary_names[] = {"add", "sub", "mul", "div"};

static int binary_grad_into(yt_binary_op op, int target, yt_tensor *gy, const yt_tensor *av, const yt_tensor *bv,
                            const yt_tensor *x, float *gx)
{
    int nd = gy->ndim;
    int64_t st[MAX_OPS][YT_MAX_DIMS];
    memset(st, 0, sizeof st);
    {
        int64_t s = 1;
        for (int d = nd - 1; d >= 0; d--) {
            st[0][d] = s;
            s *= gy->shape[d];
        }
    }
    if (av) bcast_strides(av, nd, st[1], 1);
    if (bv) bcast_strides(bv, nd, st[2], 1);
    bcast_strides(x, nd, st[3], 0);
    iter_t it;
    iter_build(&it, nd, gy->shape, 4, st);
    const float *g = yt_f32(gy);
    const float *a = av ? yt_f32(av) : NULL, *b = bv ? yt_f32(bv) : NULL;
    int64_t total = it.outer * it.inner;
    int64_t nx = yt_numel(x);
    if (nx == yt_numel(gy)) {
        /* no repetition: each output element owns one gradient element */
#pragma omp parallel for schedule(static) if (total > PAR_MIN)
        for (int64_t o = 0; o < it.outer; o++) {
            int64_t off[MAX_OPS];
            iter_offsets(&it, o, off);
            grad_inner(op, target, g + off[0], it.st[0][it.nd - 1], a ? a + off[1] : NULL, it.st[1][it.nd - 1],
                       b ? b + off[2] : NULL, it.st[2][it.nd - 1], gx + off[3], NULL, it.st[3][it.nd - 1], it.inner);
        }
        return 0;
    }
    double *acc = calloc(nx > 0 ? (size_t)nx : 1, sizeof *acc);
    if (!acc) return yt_error("%s backward: out of memory", binary_names[op]);
    for (int64_t o = 0; o < it.outer; o++) {
        int64_t off[MAX_OPS];
        iter_offsets(&it, o, off);
        grad_inner(op, target, g + off[0], it.st[0][it.nd - 1], a ? a + off[1] : NULL, it.st[1][it.nd - 1],
                   b ? b + off[2] : NULL, it.st[2][it.nd - 1], NULL, acc + off[3], it.st[3][it.nd - 1], it.inner);
    }
    for (int64_t i = 0; i < nx; i++) gx[i] += (float)acc[i];
    free(acc);
    return 0;
}

/* The gradient of an add or sub operand of gy's shape: +-gy, stored into a fresh buffer (no zero fill first). */
static void store_add_grad(const float *gy, float *gx, int negate, size_t n)
{
    if (!negate) {
        memcpy(gx, gy, n * sizeof *gx);
        return;
    }
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) gx[i] = -gy[i];
}

static int binary_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    yt_binary_op op = (yt_binary_op)node->iarg[0];
    int has_vals = op == YT_BIN_MUL || op == YT_BIN_DIV;
    const yt_tensor *av = has_vals ? node->saved[0] : NULL, *bv = has_vals ? node->saved[1] : NULL;
    for (int target = 0; target < 2; target++) {
        yt_tensor *x = node->in[target];
        if (!x) continue;
        /* same shape and contiguous: the flat kernel */
        int flat = yt_numel(x) == yt_numel(gy) && (!av || (yt_same_shape(av, gy) && yt_is_contiguous(av))) &&
                   (!bv || (yt_same_shape(bv, gy) && yt_is_contiguous(bv)));
        /* an add or sub operand of the output's shape gets the whole of +-gy: stored into a fresh gradient (x + x:
         * the second target finds the first's buffer and adds) */
        int acc = 1;
        float *gx = (flat && !has_vals) ? yt_grad_dest(x, &acc) : yt_grad_accum(x);
        if (!gx) return -1;
        if (!acc) {
            store_add_grad(yt_f32(gy), gx, op == YT_BIN_SUB && target == 1, (size_t)yt_numel(gy));
            continue;
        }
        if (flat) {
            yt_binary_backward(op, av ? yt_f32(av) : NULL, bv ? yt_f32(bv) : NULL, yt_f32(gy), target == 0 ? gx : NULL,
                               target == 1 ? gx : NULL, (size_t)yt_numel(gy));
            continue;
        }
        if (binary_grad_into(op, target, gy, av, bv, x, gx) < 0) return -1;
    }
    return 0;
}

yt_tensor *yt_binary(yt_binary_op op, yt_tensor *a, yt_tensor *b)
{
    if ((unsigned)op > YT_BIN_DIV) {
        yt_error("binary op: invalid op %d", (int)op);
        return NULL;
    }
    const char *name = binary_names[op];
    if (yt_check(a, name, YT_F32, -1) < 0 || yt_check(b, name, YT_F32, -1) < 0) return NULL;
    int64_t shape[YT_MAX_DIMS];
    int nd = yt_broadcast_shape(name, a, b, shape);
    if (nd < 0) return NULL;
    yt_tensor *y = yt_tensor_empty(YT_F32, nd, shape);
    if (!y) return NULL;
    if (yt_same_shape(a, b) && yt_is_contiguous(a) && yt_is_contiguous(b)) {
        yt_binary_forward(op, yt_f32(a), yt_f32(b), yt_f32(y), (size_t)yt_numel(y));
    } else {
        int64_t st[MAX_OPS][YT_MAX_DIMS];
        bcast_strides(y, nd, st[0], 1);
        bcast_strides(a, nd, st[1], 1);
        bcast_strides(b, nd, st[2], 1);
        iter_t it;
        iter_build(&it, nd, shape, 3, st);
        float *yp = yt_f32(y);
        const float *ap = yt_f32(a), *bp = yt_f32(b);
        int64_t total = it.outer * it.inner;
#pragma omp parallel for schedule(static) if (total > PAR_MIN)
        for (int64_t o = 0; o < it.outer; o++) {
            int64_t off[MAX_OPS];
            iter_offsets(&it, o, off);
            binary_inner(op, yp + off[0], it.st[0][it.nd - 1], ap + off[1], it.st[1][it.nd - 1], bp + off[2],
                         it.st[2][it.nd - 1], it.inner);
        }
    }
    yt_tensor *in[2] = {a, b};
    yt_node *node = yt_record(name, binary_backward, 2, in, &y);
    if (node) {
        node->iarg[0] = op;
        if (op == YT_BIN_MUL || op == YT_BIN_DIV) {
            yt_node_save(node, a);
            yt_node_save(node, b);
        }
    }
    return y;
}

yt_tensor *yt_add(yt_tensor *a, yt_tensor *b) { return yt_binary(YT_BIN_ADD, a, b); }
yt_tensor *yt_sub(yt_tensor *a, yt_tensor *b) { return yt_binary(YT_BIN_SUB, a, b); }
yt_tensor *yt_mul(yt_tensor *a, yt_tensor *b) { return yt_binary(YT_BIN_MUL, a, b); }
yt_tensor *yt_div(yt_tensor *a, yt_tensor *b) { return yt_binary(YT_BIN_DIV, a, b); }

/* ---- unary ops ---- */

static const char *unary_names[YT_UN_COUNT] = {"neg",        "exp",        "log",         "sqrt",
                                               "abs",        "pow",        "clamp",       "add_scalar",
                                               "mul_scalar", "div_scalar", "rsub_scalar", "rdiv_scalar"};

/* which of x / y the backward reads */
static int unary_needs_x(yt_unary_op op)
{
    return op == YT_UN_LOG || op == YT_UN_ABS || op == YT_UN_POW || op == YT_UN_CLAMP || op == YT_UN_RDIVS;
}
static int unary_needs_y(yt_unary_op op) { return op == YT_UN_EXP || op == YT_UN_SQRT; }

static int unary_backward(yt_node *node)
{
    yt_tensor *gy = yt_node_grad_out(node, 0);
    if (!gy) return -1;
    yt_unary_op op = (yt_unary_op)node->iarg[0];
    int ix = (int)node->iarg[1], iy = (int)node->iarg[2];
    float *gx = yt_grad_accum(node->in[0]);
    if (!gx) return 0;
    const float *x = ix >= 0 ? yt_f32(node->saved[ix]) : NULL;
    const float *y = iy >= 0 ? yt_f32(node->saved[iy]) : NULL;
    yt_unary_backward(op, x, y, yt_f32(gy), gx, (size_t)yt_numel(gy), (float)node->farg[0], (float)node->farg[1]);
    return 0;
}

yt_tensor *yt_unary(yt_unary_op op, yt_tensor *x, double p0, double p1)
{
    if ((unsigned)op >= YT_UN_COUNT) {
        yt_error("unary op: invalid op %d", (int)op);
        return NULL;
    }
    const char *name = unary_names[op];
    if (yt_check(x, name, YT_F32, -1) < 0) return NULL;
    if (op == YT_UN_CLAMP && p0 > p1) {
        yt_error("clamp: min %g is greater than max %g", p0, p1);
        return NULL;
    }
    yt_tensor *xc = yt_contiguous(x);
    if (!xc) return NULL;
    yt_tensor *y = yt_tensor_empty_like(xc);
    if (y) {
        yt_unary_forward(op, yt_f32(xc), yt_f32(y), (size_t)yt_numel(xc), (float)p0, (float)p1);
        yt_node *node = yt_record(name, unary_backward, 1, &xc, &y);
        if (node) {
            node->iarg[0] = op;
            node->iarg[1] = node->iarg[2] = -1;
            node->farg[0] = p0;
            node->farg[1] = p1;
            if (unary_needs_x(op)) {
                node->iarg[1] = node->n_saved;
                yt_node_save(node, xc);
            }
            if (unary_needs_y(op)) {
                node->iarg[2] = node->n_saved;
                yt_node_save(node, y);
            }
        }
    }
    yt_tensor_release(xc);
    return y;
}

yt_tensor *yt_add_scalar(yt_tensor *a, double s) { return yt_unary(YT_UN_ADDS, a, s, 0); }
yt_tensor *yt_sub_scalar(yt_tensor *a, double s) { return yt_unary(YT_UN_ADDS, a, -s, 0); }
yt_tensor *yt_rsub_scalar(yt_tensor *a, double s) { return yt_unary(YT_UN_RSUBS, a, s, 0); }
yt_tensor *yt_mul_scalar(yt_tensor *a, double s) { return yt_unary(YT_UN_MULS, a, s, 0); }
yt_tensor *yt_div_scalar(yt_tensor *a, double s) { return yt_unary(YT_UN_DIVS, a, s, 0); }
yt_tensor *yt_rdiv_scalar(yt_tensor *a, double s) { return yt_unary(YT_UN_RDIVS, a, s, 0); }
yt_tensor *yt_neg(yt_tensor *x) { return yt_unary(YT_UN_NEG, x, 0, 0); }
yt_tensor *yt_exp(yt_tensor *x) { return yt_unary(YT_UN_EXP, x, 0, 0); }
yt_tensor *yt_log(yt_tensor *x) { return yt_unary(YT_UN_LOG, x, 0, 0); }
yt_tensor *yt_sqrt(yt_tensor *x) { return yt_unary(YT_UN_SQRT, x, 0, 0); }
yt_tensor *yt_abs(yt_tensor *x) { return yt_unary(YT_UN_ABS, x, 0, 0); }
yt_tensor *yt_pow_scalar(yt_tensor *x, double p) { return yt_unary(YT_UN_POW, x, p, 0); }
yt_tensor *yt_clamp(yt_tensor *x, double lo, double hi) { return yt_unary(YT_UN_CLAMP, x, lo, hi); }
