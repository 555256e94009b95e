/* SGD / Adam / AdamW with PyTorch's single-tensor semantics (see optim.h). */
#include "optim/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

/* Elementwise loops of big tensors are split across threads; results do not depend on the split. */
#define PAR_MIN 32768

int yt_optim_kind_from_name(const char *name)
{
    if (!name) return -1;
    if (strcasecmp(name, "SGD") == 0) return YT_OPTIM_SGD;
    if (strcasecmp(name, "Adam") == 0) return YT_OPTIM_ADAM;
    if (strcasecmp(name, "AdamW") == 0) return YT_OPTIM_ADAMW;
    return -1;
}

const char *yt_optim_kind_name(yt_optim_kind kind)
{
    switch (kind) {
    case YT_OPTIM_SGD:
        return "SGD";
    case YT_OPTIM_ADAM:
        return "Adam";
    case YT_OPTIM_ADAMW:
        return "AdamW";
    }
    return "?";
}

void yt_param_group_defaults(yt_optim_kind kind, yt_param_group *g)
{
    g->lr = kind == YT_OPTIM_SGD ? NAN : 1e-3;
    g->momentum = kind == YT_OPTIM_SGD ? 0.0 : 0.9;
    g->beta2 = 0.999;
    g->eps = 1e-8;
    g->weight_decay = kind == YT_OPTIM_ADAMW ? 1e-2 : 0.0;
    g->dampening = 0.0;
    g->nesterov = 0;
}

int yt_param_group_check(yt_optim_kind kind, const yt_param_group *g, int which)
{
    if (!(g->lr >= 0) || isinf(g->lr))
        return yt_error("%s group %d: invalid lr %g (SGD needs an explicit lr)", yt_optim_kind_name(kind), which,
                        g->lr);
    if (!(g->weight_decay >= 0) || isinf(g->weight_decay))
        return yt_error("%s group %d: invalid weight_decay %g", yt_optim_kind_name(kind), which, g->weight_decay);
    if (kind == YT_OPTIM_SGD) {
        if (!(g->momentum >= 0) || isinf(g->momentum))
            return yt_error("SGD group %d: invalid momentum %g", which, g->momentum);
        if (!(g->dampening >= 0 && g->dampening <= 1))
            return yt_error("SGD group %d: invalid dampening %g", which, g->dampening);
        if (g->nesterov && (g->momentum <= 0 || g->dampening != 0))
            return yt_error("SGD group %d: nesterov needs momentum > 0 and dampening 0", which);
    } else {
        if (!(g->momentum >= 0 && g->momentum < 1))
            return yt_error("%s group %d: invalid beta1 (momentum) %g", yt_optim_kind_name(kind), which, g->momentum);
        if (!(g->beta2 >= 0 && g->beta2 < 1))
            return yt_error("%s group %d: invalid beta2 %g", yt_optim_kind_name(kind), which, g->beta2);
        if (!(g->eps >= 0) || isinf(g->eps))
            return yt_error("%s group %d: invalid eps %g", yt_optim_kind_name(kind), which, g->eps);
    }
    return 0;
}

void yt_optim_free(yt_optimizer *o)
{
    if (!o) return;
    for (int gi = 0; gi < o->n_groups; gi++) {
        yt_param_group *g = &o->groups[gi];
        for (int i = 0; i < g->n_params; i++)
            if (g->params[i]) yt_tensor_release(g->params[i]);
        free(g->params);
    }
    free(o->groups);
    for (int k = 0; k < o->n_params; k++) {
        if (o->buf1 && o->buf1[k]) yt_tensor_release(o->buf1[k]);
        if (o->buf2 && o->buf2[k]) yt_tensor_release(o->buf2[k]);
    }
    free(o->buf1);
    free(o->buf2);
    free(o->steps);
    free(o);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static yt_tensor *new_state(const yt_tensor *p)
{
    yt_tensor *t = yt_tensor_zeros(YT_F32, p->ndim, p->shape);
    if (t) yt_tensor_keep(t); /* lives as long as the optimizer, not the current scope */
    return t;
}

yt_optimizer *yt_optim_new(yt_optim_kind kind, int n_groups, const yt_param_group *groups)
{
    if ((unsigned)kind > YT_OPTIM_ADAMW) {
        yt_error("unknown optimizer kind %d", (int)kind);
        return NULL;
    }
    if (n_groups < 1) {
        yt_error("%s: needs at least one parameter group", yt_optim_kind_name(kind));
        return NULL;
    }
    int total = 0;
    for (int gi = 0; gi < n_groups; gi++) {
        const yt_param_group *g = &groups[gi];
        if (yt_param_group_check(kind, g, gi + 1) < 0) return NULL;
        if (g->n_params < 0 || (g->n_params > 0 && !g->params)) {
            yt_error("%s group %d: bad parameter list", yt_optim_kind_name(kind), gi + 1);
            return NULL;
        }
        for (int i = 0; i < g->n_params; i++) {
            const yt_tensor *p = g->params[i];
            char sb[96];
            if (!p || yt_tensor_is_released(p)) {
                yt_error("%s group %d: parameter %d is missing or released", yt_optim_kind_name(kind), gi + 1, i + 1);
                return NULL;
            }
            if (p->dtype != YT_F32 || !yt_is_contiguous(p)) {
                yt_error("%s group %d: parameter %d (%s %s) must be a contiguous float32 tensor",
                         yt_optim_kind_name(kind), gi + 1, i + 1, yt_dtype_name(p->dtype),
                         yt_shape_str(p, sb, sizeof sb));
                return NULL;
            }
        }
        total += g->n_params;
    }
    /* the same tensor in two places would be updated twice */
    if (total > 1) {
        yt_tensor **all = malloc((size_t)total * sizeof *all);
        if (!all) {
            yt_error("out of memory");
            return NULL;
        }
        int k = 0;
        for (int gi = 0; gi < n_groups; gi++)
            for (int i = 0; i < groups[gi].n_params; i++) all[k++] = groups[gi].params[i];
        if (total > 1) qsort(all, (size_t)total, sizeof *all, cmp_ptr);
        int dup = 0;
        for (int i = 1; i < total; i++) dup |= all[i] == all[i - 1];
        free(all);
        if (dup) {
            yt_error("%s: a parameter appears more than once in the parameter groups", yt_optim_kind_name(kind));
            return NULL;
        }
    }

    yt_optimizer *o = calloc(1, sizeof *o);
    if (!o) goto oom;
    o->kind = kind;
    o->groups = calloc((size_t)n_groups, sizeof *o->groups);
    if (!o->groups) goto oom;
    o->n_groups = n_groups;
    for (int gi = 0; gi < n_groups; gi++) {
        yt_param_group *g = &o->groups[gi];
        *g = groups[gi];
        g->params = NULL;
        g->n_params = 0;
        if (groups[gi].n_params) {
            g->params = malloc((size_t)groups[gi].n_params * sizeof *g->params);
            if (!g->params) goto oom;
        }
        for (int i = 0; i < groups[gi].n_params; i++) {
            g->params[i] = groups[gi].params[i];
            yt_tensor_retain(g->params[i]);
            g->n_params++;
        }
    }
    o->buf1 = calloc(total ? (size_t)total : 1, sizeof *o->buf1);
    o->buf2 = calloc(total ? (size_t)total : 1, sizeof *o->buf2);
    o->steps = calloc(total ? (size_t)total : 1, sizeof *o->steps);
    if (!o->buf1 || !o->buf2 || !o->steps) goto oom;
    o->n_params = total;
    int k = 0;
    for (int gi = 0; gi < n_groups; gi++) {
        yt_param_group *g = &o->groups[gi];
        for (int i = 0; i < g->n_params; i++, k++) {
            yt_tensor *p = g->params[i];
            if (kind == YT_OPTIM_SGD) {
                /* the buffer exists when any group might use momentum later (set_group can raise it) */
                if (!(o->buf1[k] = new_state(p))) goto fail;
            } else {
                if (!(o->buf1[k] = new_state(p)) || !(o->buf2[k] = new_state(p))) goto fail;
            }
        }
    }
    return o;
oom:
    yt_error("out of memory");
fail:
    yt_optim_free(o);
    return NULL;
}

/* ---- the update rules (float32 math in torch's operation order) ---- */

static void sgd_update(float *p, const float *grad, float *buf, int64_t n, const yt_param_group *g, int first)
{
    const float wd = (float)g->weight_decay, mom = (float)g->momentum, damp1 = (float)(1.0 - g->dampening);
    const float neg_lr = (float)(-g->lr);
    const int use_wd = g->weight_decay != 0, use_mom = g->momentum != 0, nesterov = g->nesterov;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = grad[i];
        if (use_wd) d = d + wd * p[i];
        if (use_mom) {
            float b;
            if (first)
                b = d;
            else {
                b = buf[i] * mom;
                b = b + damp1 * d;
            }
            buf[i] = b;
            d = nesterov ? d + mom * b : b;
        }
        p[i] = p[i] + neg_lr * d;
    }
}

static void adam_update(float *p, const float *grad, float *m, float *v, int64_t n, const yt_param_group *g,
                        int64_t step, int decoupled)
{
    const double lr = g->lr, b1 = g->momentum, b2 = g->beta2;
    const float fb1 = (float)b1, fb2 = (float)b2, one_m_b1 = (float)(1.0 - b1), one_m_b2 = (float)(1.0 - b2);
    const float wd = (float)g->weight_decay, decay = (float)(1.0 - lr * g->weight_decay);
    const int use_wd = g->weight_decay != 0;
    const double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    const float neg_step_size = (float)(-(lr / bc1)), bc2_sqrt = (float)sqrt(bc2), eps = (float)g->eps;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i], gi = grad[i];
        if (use_wd) {
            if (decoupled)
                pi = pi * decay;
            else
                gi = gi + wd * pi;
        }
        float mi = m[i] * fb1;
        mi = mi + one_m_b1 * gi;
        float vi = v[i] * fb2;
        vi = vi + one_m_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi + neg_step_size * (mi / denom);
    }
}

int yt_optim_step(yt_optimizer *o)
{
    int k = 0;
    /* validate every gradient first so a bad one leaves all parameters untouched */
    for (int gi = 0; gi < o->n_groups; gi++) {
        const yt_param_group *g = &o->groups[gi];
        for (int i = 0; i < g->n_params; i++) {
            const yt_tensor *p = g->params[i], *gr = p->grad;
            if (yt_tensor_is_released(p))
                return yt_error("%s: parameter %d of group %d was released", yt_optim_kind_name(o->kind), i + 1,
                                gi + 1);
            if (!gr) continue;
            if (yt_tensor_is_released(gr) || gr->dtype != YT_F32 || !yt_is_contiguous(gr) ||
                yt_numel(gr) != yt_numel(p))
                return yt_error("%s: the gradient of parameter %d of group %d is not a contiguous float32 tensor of "
                                "its shape",
                                yt_optim_kind_name(o->kind), i + 1, gi + 1);
        }
    }
    for (int gi = 0; gi < o->n_groups; gi++) {
        const yt_param_group *g = &o->groups[gi];
        for (int i = 0; i < g->n_params; i++, k++) {
            yt_tensor *p = g->params[i];
            if (!p->grad) continue;
            int64_t n = yt_numel(p);
            int64_t step = ++o->steps[k];
            if (o->kind == YT_OPTIM_SGD)
                sgd_update(yt_f32(p), yt_f32(p->grad), yt_f32(o->buf1[k]), n, g, step == 1);
            else
                adam_update(yt_f32(p), yt_f32(p->grad), yt_f32(o->buf1[k]), yt_f32(o->buf2[k]), n, g, step,
                            o->kind == YT_OPTIM_ADAMW);
        }
    }
    return 0;
}

void yt_optim_zero_grad(yt_optimizer *o, int set_to_none)
{
    for (int gi = 0; gi < o->n_groups; gi++) {
        yt_param_group *g = &o->groups[gi];
        for (int i = 0; i < g->n_params; i++) {
            yt_tensor *p = g->params[i];
            if (!p->grad) continue;
            if (set_to_none) {
                yt_tensor_release(p->grad);
                p->grad = NULL;
            } else if (!yt_tensor_is_released(p->grad)) {
                memset(yt_data(p->grad), 0, (size_t)yt_numel(p->grad) * yt_dtype_size(p->grad->dtype));
            }
        }
    }
}

/* ---- state as named tensors ---- */

static const char *state_suffix(const yt_optimizer *o, int which)
{
    if (which == 0) return o->kind == YT_OPTIM_SGD ? "momentum_buffer" : "exp_avg";
    if (which == 1) return o->kind == YT_OPTIM_SGD ? NULL : "exp_avg_sq";
    return "step";
}

void yt_optim_state_free(int n, char **names, yt_tensor **tensors)
{
    for (int i = 0; i < n; i++) {
        if (names) free(names[i]);
        if (tensors && tensors[i]) yt_tensor_release(tensors[i]);
    }
    free(names);
    free(tensors);
}

int yt_optim_state_export(const yt_optimizer *o, char ***names_out, yt_tensor ***tensors_out)
{
    int per = o->kind == YT_OPTIM_SGD ? 2 : 3;
    int cap = o->n_params * per;
    char **names = calloc(cap ? (size_t)cap : 1, sizeof *names);
    yt_tensor **ts = calloc(cap ? (size_t)cap : 1, sizeof *ts);
    if (!names || !ts) {
        free(names);
        free(ts);
        return yt_error("out of memory");
    }
    int n = 0;
    for (int k = 0; k < o->n_params; k++) {
        for (int w = 0; w < 3; w++) {
            const char *suf = state_suffix(o, w);
            if (!suf) continue;
            char buf[64];
            snprintf(buf, sizeof buf, "%d.%s", k, suf);
            names[n] = strdup(buf);
            if (w == 2) {
                ts[n] = yt_tensor_empty(YT_I64, 0, NULL);
                if (ts[n]) yt_i64(ts[n])[0] = o->steps[k];
            } else {
                ts[n] = w == 0 ? o->buf1[k] : o->buf2[k];
                yt_tensor_retain(ts[n]);
            }
            n++;
            if (!names[n - 1] || !ts[n - 1]) {
                yt_optim_state_free(n, names, ts);
                return yt_error("out of memory");
            }
        }
    }
    *names_out = names;
    *tensors_out = ts;
    return n;
}

int yt_optim_state_import(yt_optimizer *o, int n, const char *const *names, yt_tensor *const *tensors)
{
    /* pass 1: validate everything; pass 2: copy */
    int per = o->kind == YT_OPTIM_SGD ? 2 : 3;
    int want = o->n_params * per;
    char *seen = calloc(want ? (size_t)want : 1, 1);
    if (!seen) return yt_error("out of memory");
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (int i = 0; i < n && rc == 0; i++) {
            const char *nm = names[i];
            char *dot = NULL;
            long k = strtol(nm, &dot, 10);
            if (dot == nm || *dot != '.' || k < 0 || k >= o->n_params) {
                rc = yt_error("optimizer state: unexpected entry '%s' (this %s has %d parameters)", nm,
                              yt_optim_kind_name(o->kind), o->n_params);
                break;
            }
            int w = -1;
            for (int c = 0; c < 3; c++)
                if (state_suffix(o, c) && strcmp(dot + 1, state_suffix(o, c)) == 0) w = c;
            if (w < 0) {
                rc = yt_error("optimizer state: unexpected entry '%s' for %s", nm, yt_optim_kind_name(o->kind));
                break;
            }
            int slot = (int)k * per + (w == 2 ? per - 1 : w);
            const yt_tensor *t = tensors[i];
            if (pass == 0) {
                if (seen[slot]) {
                    rc = yt_error("optimizer state: duplicate entry '%s'", nm);
                    break;
                }
                seen[slot] = 1;
                if (!t || yt_tensor_is_released(t)) {
                    rc = yt_error("optimizer state: '%s' is missing or released", nm);
                    break;
                }
                if (w == 2) {
                    if (yt_numel(t) != 1 || (t->dtype != YT_I64 && t->dtype != YT_F32 && t->dtype != YT_F64)) {
                        rc = yt_error("optimizer state: '%s' must be a number", nm);
                        break;
                    }
                } else {
                    const yt_tensor *dst = w == 0 ? o->buf1[k] : o->buf2[k];
                    if (t->dtype != YT_F32 || !yt_same_shape(t, dst)) {
                        char a[96], b[96];
                        rc = yt_error("optimizer state: '%s' is %s %s, expected F32 %s", nm, yt_dtype_name(t->dtype),
                                      yt_shape_str(t, a, sizeof a), yt_shape_str(dst, b, sizeof b));
                        break;
                    }
                }
            } else if (w == 2) {
                int64_t s = t->dtype == YT_I64   ? yt_i64(t)[0]
                            : t->dtype == YT_F32 ? (int64_t)yt_f32(t)[0]
                                                 : (int64_t)yt_f64(t)[0];
                o->steps[k] = s < 0 ? 0 : s;
            } else {
                yt_tensor *dst = w == 0 ? o->buf1[k] : o->buf2[k];
                if (yt_tensor_copy_(dst, t) < 0) rc = -1;
            }
        }
        if (pass == 0 && rc == 0)
            for (int s = 0; s < want; s++)
                if (!seen[s]) {
                    int k = s / per, w = s % per;
                    const char *suf = w == per - 1 ? "step" : state_suffix(o, w);
                    rc = yt_error("optimizer state: missing entry '%d.%s'", k, suf);
                    break;
                }
    }
    free(seen);
    return rc;
}
