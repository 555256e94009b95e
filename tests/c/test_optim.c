/* Optimizers, gradient clipping and EMA: parity with one torch step on the YOLOv8n fixtures, plus multi-step
 * checks against double-precision reference loops, state export/import, and error cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/optim.h"
#include "testutil.h"

/* ---------------------------------------------------------------------------------------------------------
 * Parity with optimizer_step.safetensors
 * --------------------------------------------------------------------------------------------------------- */

#define MAX_NAMES 256

typedef struct {
    int n;
    char *names[MAX_NAMES];
} name_list;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

/* The k-th (0-based) "param_names": [...] list of optimizer_groups.json (variants sgd, adamw, sgd_clip in file
 * order, three groups each). The fixture file is plain JSON with simple names: a scan for quoted strings is
 * enough. Returns 0 on success. */
static int json_param_names(const char *json, int k, name_list *out)
{
    out->n = 0;
    const char *p = json;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "\"param_names\"");
        if (!p) return -1;
        p += 13;
    }
    p = strchr(p, '[');
    if (!p) return -1;
    const char *end = strchr(p, ']');
    if (!end) return -1;
    for (;;) {
        const char *q = strchr(p, '"');
        if (!q || q > end) break;
        const char *e = strchr(q + 1, '"');
        if (!e || e > end || out->n >= MAX_NAMES) return -1;
        out->names[out->n] = strndup(q + 1, (size_t)(e - q - 1));
        out->n++;
        p = e + 1;
    }
    return 0;
}

static void free_names(name_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    l->n = 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Ultralytics' grouping rule from the names: 0 = biases, 2 = BatchNorm weights, 1 = other weights. */
static int group_of(const char *name)
{
    if (strstr(name, "bias")) return 0;
    if (ends_with(name, ".bn.weight")) return 2;
    return 1;
}

typedef struct {
    const char *prefix;
    yt_optim_kind kind;
    double lr, momentum, beta2, eps;
    int nesterov;
    double clip;    /* 0 = none */
    int json_index; /* first group list of this variant in the JSON */
} variant;

static void run_variant(const variant *v, const yt_tensor_file *init, const yt_tensor_file *loss,
                        const yt_tensor_file *ref, const char *json, double *max_rel_out)
{
    name_list groups[3];
    yt_param_group pg[3];
    yt_tensor *params[3][MAX_NAMES];
    const double wd[3] = {0.0, 0.0005, 0.0}; /* optimizer_groups.json: 5e-4 x 4 x 16 / 64 for group 1 */
    int total = 0, with_grad = 0;
    for (int g = 0; g < 3; g++) {
        int rc = json_param_names(json, v->json_index + g, &groups[g]);
        CHECK(rc == 0, "%s: param_names of group %d", v->prefix, g);
        for (int i = 0; i < groups[g].n; i++) {
            const char *nm = groups[g].names[i];
            CHECK(group_of(nm) == g, "%s: %s is in group %d of the fixture, the name rule says %d", v->prefix, nm, g,
                  group_of(nm));
            yt_tensor *w = yt_tensor_file_get(init, nm);
            CHECK(w != NULL, "init weight %s", nm);
            params[g][i] = w ? yt_tensor_clone(w) : yt_tensor_zeros(YT_F32, 0, NULL);
            char gname[300];
            snprintf(gname, sizeof gname, "grad.%s", nm);
            yt_tensor *gr = yt_tensor_file_get(loss, gname);
            if (gr) {
                params[g][i]->grad = yt_tensor_clone(gr);
                params[g][i]->requires_grad = 1;
                with_grad++;
            } else {
                CHECK(strcmp(nm, "model.22.dfl.conv.weight") == 0, "only the frozen DFL weight has no grad: %s", nm);
            }
        }
        total += groups[g].n;
        yt_param_group_defaults(v->kind, &pg[g]);
        pg[g].lr = v->lr;
        pg[g].momentum = v->momentum;
        pg[g].beta2 = v->beta2;
        pg[g].eps = v->eps;
        pg[g].nesterov = v->nesterov;
        pg[g].weight_decay = wd[g];
        pg[g].n_params = groups[g].n;
        pg[g].params = params[g];
    }
    CHECK(groups[0].n == 63 && groups[1].n == 64 && groups[2].n == 57, "%s: group sizes %d %d %d", v->prefix,
          groups[0].n, groups[1].n, groups[2].n);
    CHECK(total == 184 && with_grad == 183, "%s: %d params, %d with grad", v->prefix, total, with_grad);

    if (v->clip > 0) {
        yt_tensor *all[MAX_NAMES * 3];
        int n = 0;
        for (int g = 0; g < 3; g++)
            for (int i = 0; i < groups[g].n; i++) all[n++] = params[g][i];
        double norm = yt_clip_grad_norm(n, all, v->clip);
        yt_tensor *ref_norm = yt_tensor_file_get(ref, "clip.total_norm");
        CHECK(ref_norm != NULL, "clip.total_norm present");
        if (ref_norm) {
            double r = yt_f32(ref_norm)[0];
            printf("  clip.total_norm: ours %.9g, torch %.9g, rel diff %.3g\n", norm, r, fabs(norm - r) / r);
            CHECK(fabs(norm - r) <= 2e-6 * r, "total norm %.9g vs %.9g", norm, r);
        }
    }

    yt_optimizer *o = yt_optim_new(v->kind, 3, pg);
    CHECK(o != NULL, "%s: new: %s", v->prefix, yt_last_error());
    if (o) {
        CHECK(yt_optim_step(o) == 0, "%s: step: %s", v->prefix, yt_last_error());
        double max_rel = 0;
        const char *worst = "";
        int compared = 0, failed = 0;
        for (int g = 0; g < 3; g++)
            for (int i = 0; i < groups[g].n; i++) {
                const char *nm = groups[g].names[i];
                char rname[300];
                snprintf(rname, sizeof rname, "%s.%s", v->prefix, nm);
                yt_tensor *r = yt_tensor_file_get(ref, rname);
                yt_tensor *p = params[g][i];
                if (!p->grad) {
                    /* no gradient: unchanged, bit for bit */
                    yt_tensor *w = yt_tensor_file_get(init, nm);
                    CHECK(w && memcmp(yt_data(w), yt_data(p), (size_t)yt_numel(w) * 4) == 0, "%s unchanged", nm);
                    CHECK(o->steps[o->n_params - 1] >= 0, "steps");
                }
                if (!r) continue; /* not in the stored subset */
                compared++;
                CHECK(yt_numel(r) == yt_numel(p), "%s size", rname);
                const float *a = yt_f32(p), *b = yt_f32(r);
                for (int64_t j = 0; j < yt_numel(r); j++) {
                    double tol_scale = fmax(1.0, fabs(b[j]));
                    double rel = fabs((double)a[j] - b[j]) / tol_scale;
                    if (rel > max_rel) {
                        max_rel = rel;
                        worst = nm;
                    }
                    if (rel > 1e-6) failed++;
                }
            }
        CHECK(compared == 167, "%s: compared %d tensors (expected the 167 stored)", v->prefix, compared);
        CHECK(failed == 0, "%s: %d elements beyond 1e-6*max(1,|p|)", v->prefix, failed);
        printf("  %-8s max |ours - torch| / max(1,|p|) = %.3g (%s), %d tensors\n", v->prefix, max_rel, worst, compared);
        *max_rel_out = max_rel;
        yt_optim_free(o);
    }
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < groups[g].n; i++) yt_tensor_release(params[g][i]);
        free_names(&groups[g]);
    }
}

static void test_parity(void)
{
    yt_tensor_file init, loss, ref;
    int ok = yt_safetensors_load(YT_PARITY_DIR "/yolov8n_init.safetensors", &init) == 0;
    CHECK(ok, "%s", yt_last_error());
    if (!ok) return;
    ok = yt_safetensors_load(YT_PARITY_DIR "/loss.safetensors", &loss) == 0;
    CHECK(ok, "%s", yt_last_error());
    if (!ok) {
        yt_tensor_file_free(&init);
        return;
    }
    ok = yt_safetensors_load(YT_PARITY_DIR "/optimizer_step.safetensors", &ref) == 0;
    CHECK(ok, "%s", yt_last_error());
    char *json = read_text(YT_PARITY_DIR "/optimizer_groups.json");
    CHECK(json != NULL, "optimizer_groups.json");
    if (ok && json) {
        /* the hyperparameters hard-coded below are those of the file */
        CHECK(strstr(json, "\"lr\": 0.01,") && strstr(json, "\"momentum\": 0.937,") &&
                  strstr(json, "\"nesterov\": true") && strstr(json, "\"lr\": 0.001,") &&
                  strstr(json, "\"eps\": 1e-08") && strstr(json, "\"weight_decay\": 0.0005,") && strstr(json, "0.999"),
              "hyperparameters in optimizer_groups.json");
        const variant vs[] = {
            {"sgd", YT_OPTIM_SGD, 0.01, 0.937, 0.999, 1e-8, 1, 0, 0},
            {"adamw", YT_OPTIM_ADAMW, 0.001, 0.937, 0.999, 1e-8, 0, 0, 3},
            {"sgd_clip", YT_OPTIM_SGD, 0.01, 0.937, 0.999, 1e-8, 1, 10.0, 6},
        };
        for (int i = 0; i < 3; i++) {
            double m = 0;
            run_variant(&vs[i], &init, &loss, &ref, json, &m);
        }
    }
    free(json);
    if (ok) yt_tensor_file_free(&ref);
    yt_tensor_file_free(&loss);
    yt_tensor_file_free(&init);
}

/* ---------------------------------------------------------------------------------------------------------
 * Multi-step behaviour against double-precision reference loops
 * --------------------------------------------------------------------------------------------------------- */

#define N 37
#define STEPS 5

static void ref_sgd(double *p, double grads[STEPS][N], double lr, double mom, double damp, double wd, int nesterov,
                    int steps)
{
    double buf[N];
    for (int s = 0; s < steps; s++)
        for (int i = 0; i < N; i++) {
            double d = grads[s][i] + wd * p[i];
            if (mom != 0) {
                buf[i] = s == 0 ? d : mom * buf[i] + (1 - damp) * d;
                d = nesterov ? d + mom * buf[i] : buf[i];
            }
            p[i] -= lr * d;
        }
}

static void ref_adam(double *p, double grads[STEPS][N], double lr, double b1, double b2, double eps, double wd,
                     int decoupled, int steps)
{
    double m[N] = {0}, v[N] = {0};
    for (int s = 0; s < steps; s++)
        for (int i = 0; i < N; i++) {
            double g = grads[s][i];
            if (decoupled)
                p[i] *= 1 - lr * wd;
            else
                g += wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double mh = m[i] / (1 - pow(b1, s + 1)), vh = v[i] / (1 - pow(b2, s + 1));
            p[i] -= lr * mh / (sqrt(vh) + eps);
        }
}

static void check_against_ref(const char *label, yt_optim_kind kind, yt_param_group hp, int use_ref_sgd)
{
    double grads[STEPS][N], p0[N], pr[N];
    for (int i = 0; i < N; i++) p0[i] = pr[i] = tu_uniform(-2, 2);
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < N; i++) grads[s][i] = tu_uniform(-1, 1);
    int64_t shape[] = {N};
    yt_tensor *p = yt_tensor_empty(YT_F32, 1, shape);
    for (int i = 0; i < N; i++) yt_f32(p)[i] = (float)p0[i];
    /* the reference starts from the float-rounded values */
    for (int i = 0; i < N; i++) pr[i] = yt_f32(p)[i];
    yt_tensor *frozen = yt_tensor_full(1, shape, 0.5f);
    yt_tensor *plist[] = {p, frozen};
    hp.n_params = 2;
    hp.params = plist;
    yt_optimizer *o = yt_optim_new(kind, 1, &hp);
    CHECK(o != NULL, "%s: %s", label, yt_last_error());
    if (!o) return;
    for (int s = 0; s < STEPS; s++) {
        if (!p->grad) p->grad = yt_tensor_empty(YT_F32, 1, shape);
        for (int i = 0; i < N; i++) yt_f32(p->grad)[i] = (float)grads[s][i];
        CHECK(yt_optim_step(o) == 0, "%s step", label);
        yt_optim_zero_grad(o, s % 2); /* both flavours */
    }
    if (use_ref_sgd)
        ref_sgd(pr, grads, hp.lr, hp.momentum, hp.dampening, hp.weight_decay, hp.nesterov, STEPS);
    else
        ref_adam(pr, grads, hp.lr, hp.momentum, hp.beta2, hp.eps, hp.weight_decay, kind == YT_OPTIM_ADAMW, STEPS);
    double md = 0;
    for (int i = 0; i < N; i++) md = fmax(md, fabs(yt_f32(p)[i] - pr[i]));
    CHECK(md < 2e-6, "%s: max diff vs double reference %.3g", label, md);
    /* grads were dropped by zero_grad; the frozen parameter never moved and never counted a step */
    CHECK(o->steps[0] == STEPS && o->steps[1] == 0, "%s: steps %lld %lld", label, (long long)o->steps[0],
          (long long)o->steps[1]);
    for (int i = 0; i < N; i++) CHECK(yt_f32(frozen)[i] == 0.5f, "%s: frozen parameter unchanged", label);
    yt_optim_free(o);
    yt_tensor_release(p);
    yt_tensor_release(frozen);
}

static void test_rules(void)
{
    yt_param_group hp;
    yt_param_group_defaults(YT_OPTIM_SGD, &hp);
    hp.lr = 0.1;
    check_against_ref("plain SGD", YT_OPTIM_SGD, hp, 1);
    hp.momentum = 0.9;
    hp.weight_decay = 0.01;
    check_against_ref("SGD momentum + wd", YT_OPTIM_SGD, hp, 1);
    hp.dampening = 0.3;
    check_against_ref("SGD dampening", YT_OPTIM_SGD, hp, 1);
    hp.dampening = 0;
    hp.nesterov = 1;
    check_against_ref("SGD nesterov", YT_OPTIM_SGD, hp, 1);

    yt_param_group_defaults(YT_OPTIM_ADAM, &hp);
    hp.lr = 0.01;
    check_against_ref("Adam", YT_OPTIM_ADAM, hp, 0);
    hp.weight_decay = 0.1;
    check_against_ref("Adam L2", YT_OPTIM_ADAM, hp, 0);
    yt_param_group_defaults(YT_OPTIM_ADAMW, &hp);
    CHECK(hp.weight_decay == 0.01 && hp.lr == 1e-3 && hp.momentum == 0.9, "AdamW defaults as torch");
    hp.lr = 0.01;
    hp.weight_decay = 0.1;
    check_against_ref("AdamW", YT_OPTIM_ADAMW, hp, 0);
    hp.momentum = 0.937;
    check_against_ref("AdamW beta1 0.937", YT_OPTIM_ADAMW, hp, 0);

    /* first AdamW step: p*(1-lr*wd) - lr*g/(|g|+eps) */
    {
        int64_t s1[] = {3};
        float g0[] = {0.5f, -2.0f, 1e-3f};
        yt_tensor *p = yt_tensor_full(1, s1, 1.0f);
        p->grad = yt_tensor_from_data(YT_F32, 1, s1, g0);
        yt_param_group_defaults(YT_OPTIM_ADAMW, &hp);
        hp.lr = 0.001;
        hp.weight_decay = 0.0005;
        hp.momentum = 0.937;
        hp.n_params = 1;
        hp.params = &p;
        yt_optimizer *o = yt_optim_new(YT_OPTIM_ADAMW, 1, &hp);
        yt_optim_step(o);
        for (int i = 0; i < 3; i++) {
            double want = 1.0 * (1 - 0.001 * 0.0005) - 0.001 * g0[i] / (fabs(g0[i]) + 1e-8);
            CHECK_CLOSE(yt_f32(p)[i], want, 1e-6);
        }
        yt_optim_free(o);
        yt_tensor_release(p);
    }
}

static void test_state_round_trip(void)
{
    /* run 2 steps, export, continue 2 steps on A; import into a fresh B (same start weights), continue: equal */
    for (int kind = 0; kind < 3; kind++) {
        int64_t shape[] = {4, 5};
        tu_seed(10 + kind);
        yt_tensor *a = tu_rand(2, shape, -1, 1);
        yt_param_group hp;
        yt_param_group_defaults((yt_optim_kind)kind, &hp);
        hp.lr = 0.05;
        hp.momentum = 0.9;
        hp.n_params = 1;
        hp.params = &a;
        yt_optimizer *oa = yt_optim_new((yt_optim_kind)kind, 1, &hp);
        yt_tensor *grads[4];
        for (int s = 0; s < 4; s++) grads[s] = tu_rand(2, shape, -1, 1);
        for (int s = 0; s < 2; s++) {
            yt_tensor_release(a->grad);
            a->grad = yt_tensor_clone(grads[s]);
            yt_optim_step(oa);
        }
        char **names;
        yt_tensor **ts;
        int n = yt_optim_state_export(oa, &names, &ts);
        CHECK(n == (kind == YT_OPTIM_SGD ? 2 : 3), "%s: %d state entries", yt_optim_kind_name(kind), n);
        /* write + read through safetensors, as a checkpoint would */
        char path[] = "/tmp/yt_optim_state_XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0) close(fd);
        CHECK(yt_safetensors_save(path, n, (const char *const *)names, ts, 0, NULL, NULL) == 0, "%s", yt_last_error());
        yt_tensor_file f;
        CHECK(yt_safetensors_load(path, &f) == 0, "%s", yt_last_error());
        remove(path);
        yt_tensor *b = yt_tensor_clone(a);
        hp.params = &b;
        yt_optimizer *ob = yt_optim_new((yt_optim_kind)kind, 1, &hp);
        const char *fn[8];
        yt_tensor *ft[8];
        for (int i = 0; i < f.count && i < 8; i++) fn[i] = f.items[i].name, ft[i] = f.items[i].tensor;
        CHECK(yt_optim_state_import(ob, f.count, fn, ft) == 0, "import: %s", yt_last_error());
        CHECK(ob->steps[0] == 2, "step count restored");
        for (int s = 2; s < 4; s++) {
            yt_tensor_release(a->grad);
            a->grad = yt_tensor_clone(grads[s]);
            yt_tensor_release(b->grad);
            b->grad = yt_tensor_clone(grads[s]);
            yt_optim_step(oa);
            yt_optim_step(ob);
        }
        CHECK(memcmp(yt_data(a), yt_data(b), 20 * sizeof(float)) == 0, "%s: resumed run identical",
              yt_optim_kind_name(kind));

        /* refused: missing entry, wrong shape, unknown name */
        CHECK(yt_optim_state_import(ob, f.count - 1, fn, ft) == -1, "missing entry refused");
        CHECK(strstr(yt_last_error(), "missing") != NULL, "%s", yt_last_error());
        const char *bad_names[8];
        memcpy(bad_names, fn, sizeof(char *) * (size_t)f.count);
        bad_names[0] = "7.exp_avg";
        CHECK(yt_optim_state_import(ob, f.count, bad_names, ft) == -1, "out-of-range index refused");
        int64_t wrong[] = {5, 4};
        yt_tensor *w = yt_tensor_zeros(YT_F32, 2, wrong);
        yt_tensor *ft2[8];
        memcpy(ft2, ft, sizeof(yt_tensor *) * (size_t)f.count);
        int bi = strstr(fn[0], "step") ? 1 : 0;
        ft2[bi] = w;
        CHECK(yt_optim_state_import(ob, f.count, fn, ft2) == -1, "wrong shape refused");
        CHECK(strstr(yt_last_error(), "expected F32 [4, 5]") != NULL, "%s", yt_last_error());
        yt_tensor_release(w);

        yt_tensor_file_free(&f);
        yt_optim_state_free(n, names, ts);
        yt_optim_free(oa);
        yt_optim_free(ob);
        for (int s = 0; s < 4; s++) yt_tensor_release(grads[s]);
        yt_tensor_release(a);
        yt_tensor_release(b);
    }
}

static void test_errors(void)
{
    int64_t s[] = {3};
    yt_tensor *p = yt_tensor_zeros(YT_F32, 1, s), *q = yt_tensor_zeros(YT_I64, 1, s);
    yt_param_group hp;
    yt_param_group_defaults(YT_OPTIM_SGD, &hp);
    hp.n_params = 1;
    hp.params = &p;
    CHECK(yt_optim_new(YT_OPTIM_SGD, 1, &hp) == NULL, "SGD without lr refused");
    CHECK(strstr(yt_last_error(), "lr") != NULL, "%s", yt_last_error());
    hp.lr = 0.1;
    hp.nesterov = 1;
    CHECK(yt_optim_new(YT_OPTIM_SGD, 1, &hp) == NULL, "nesterov without momentum refused");
    hp.nesterov = 0;
    hp.params = &q;
    CHECK(yt_optim_new(YT_OPTIM_SGD, 1, &hp) == NULL, "int64 parameter refused");
    CHECK(strstr(yt_last_error(), "float32") != NULL, "%s", yt_last_error());
    yt_tensor *twice[] = {p, p};
    hp.params = twice;
    hp.n_params = 2;
    CHECK(yt_optim_new(YT_OPTIM_SGD, 1, &hp) == NULL, "duplicate parameter refused");
    yt_param_group_defaults(YT_OPTIM_ADAM, &hp);
    hp.momentum = 1.0;
    hp.params = &p;
    hp.n_params = 1;
    CHECK(yt_optim_new(YT_OPTIM_ADAM, 1, &hp) == NULL, "beta1 = 1 refused");
    CHECK(yt_optim_kind_from_name("adamw") == YT_OPTIM_ADAMW && yt_optim_kind_from_name("RMSProp") == -1, "names");

    /* a gradient of the wrong size is refused before anything moves */
    hp.momentum = 0.9;
    yt_tensor *p2 = yt_tensor_full(1, s, 1.0f);
    yt_tensor *both[] = {p2, p};
    hp.params = both;
    hp.n_params = 2;
    yt_optimizer *o = yt_optim_new(YT_OPTIM_ADAM, 1, &hp);
    p2->grad = yt_tensor_full(1, s, 1.0f);
    int64_t s4[] = {4};
    p->grad = yt_tensor_zeros(YT_F32, 1, s4);
    CHECK(yt_optim_step(o) == -1, "bad grad refused");
    CHECK(yt_f32(p2)[0] == 1.0f && o->steps[0] == 0, "nothing moved");
    yt_optim_free(o);
    yt_tensor_release(p);
    yt_tensor_release(p2);
    yt_tensor_release(q);
}

static void test_clip(void)
{
    int64_t s[] = {2}, s2[] = {1};
    float a[] = {3, 0}, b[] = {4};
    yt_tensor *p = yt_tensor_zeros(YT_F32, 1, s), *q = yt_tensor_zeros(YT_F32, 1, s2),
              *r = yt_tensor_zeros(YT_F32, 1, s);
    p->grad = yt_tensor_from_data(YT_F32, 1, s, a);
    q->grad = yt_tensor_from_data(YT_F32, 1, s2, b);
    yt_tensor *ps[] = {p, q, r}; /* r has no grad */
    double n = yt_clip_grad_norm(3, ps, 10.0);
    CHECK_CLOSE(n, 5.0, 1e-12);
    CHECK(yt_f32(p->grad)[0] == 3.0f && yt_f32(q->grad)[0] == 4.0f, "under max_norm: untouched");
    n = yt_clip_grad_norm(3, ps, 1.0);
    CHECK_CLOSE(n, 5.0, 1e-12);
    CHECK_CLOSE(yt_f32(p->grad)[0], 3.0 / (5.0 + 1e-6), 1e-7);
    CHECK_CLOSE(yt_f32(q->grad)[0], 4.0 / (5.0 + 1e-6), 1e-7);
    n = yt_clip_grad_norm(3, ps, 0); /* norm only */
    CHECK_CLOSE(n, 1.0, 1e-6);
    yt_tensor *wrong = yt_tensor_zeros(YT_F32, 1, s);
    yt_tensor_release(q->grad);
    q->grad = wrong;
    CHECK(yt_clip_grad_norm(3, ps, 1.0) < 0, "grad of the wrong size refused");
    /* large tensor: double accumulation */
    int64_t big[] = {1 << 20};
    yt_tensor *g = yt_tensor_full(1, big, 0.1f);
    double nb = yt_clip_tensors_norm(1, &g, 0);
    CHECK_CLOSE(nb, sqrt((double)(1 << 20) * (double)0.1f * (double)0.1f), 1e-9);
    yt_tensor_release(g);
    yt_tensor_release(p);
    yt_tensor_release(q);
    yt_tensor_release(r);
}

static void test_ema(void)
{
    CHECK_CLOSE(yt_ema_decay(1, YT_EMA_DECAY, YT_EMA_TAU), 0.9999 * (1 - exp(-1.0 / 2000)), 1e-15);
    CHECK_CLOSE(yt_ema_decay(100000, YT_EMA_DECAY, YT_EMA_TAU), 0.9999, 1e-12);
    int64_t s[] = {4};
    float e0[] = {1, 2, 3, 4}, m0[] = {5, 6, 7, 8};
    yt_tensor *e = yt_tensor_from_data(YT_F32, 1, s, e0), *m = yt_tensor_from_data(YT_F32, 1, s, m0);
    yt_tensor *ei = yt_tensor_zeros(YT_I64, 0, NULL), *mi = yt_tensor_zeros(YT_I64, 0, NULL);
    yt_i64(ei)[0] = 1;
    yt_i64(mi)[0] = 7;
    yt_tensor *es[] = {e, ei}, *ms[] = {m, mi};
    double d = yt_ema_decay(3, YT_EMA_DECAY, YT_EMA_TAU);
    CHECK(yt_ema_update(2, es, ms, d) == 0, "%s", yt_last_error());
    for (int i = 0; i < 4; i++) CHECK_CLOSE(yt_f32(e)[i], d * e0[i] + (1 - d) * m0[i], 1e-6);
    CHECK(yt_i64(ei)[0] == 1, "integer buffers are not averaged");
    yt_tensor *wrong = yt_tensor_zeros(YT_F32, 0, NULL);
    yt_tensor *ws[] = {wrong};
    CHECK(yt_ema_update(1, es, ws, d) == -1, "shape mismatch refused");
    CHECK(yt_ema_update(1, es, ms, 1.5) == -1, "decay > 1 refused");
    yt_tensor_release(wrong);
    yt_tensor_release(e);
    yt_tensor_release(m);
    yt_tensor_release(ei);
    yt_tensor_release(mi);
}

int main(void)
{
    tu_seed(7);
    test_parity();
    test_rules();
    test_state_round_trip();
    test_errors();
    test_clip();
    test_ema();
    return tu_finish();
}
