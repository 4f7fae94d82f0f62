// io/ckpt_quant.c — reading and writing the int8 sections (ckpt_quant.h).
#include "io/ckpt_quant.h"
#include "model/quant.h"
#include "model/shape.h"
#include "common/util.h"

#include <math.h>
#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char HEADER[] = "int8 per-output-symmetric\n";

void quant_sections(const Model *m, CkptSection sec[QUANT_SECTIONS], void *owned[QUANT_SECTIONS]) {
    const struct QuantModel *q = m->quant;
    size_t nq = 0, ns = 0, nf = 0, tab_cap = sizeof HEADER + 1;
    for (size_t i = 0; i < q->n; i++) {
        nq += q->t[i].q.n * q->t[i].q.k;
        ns += q->t[i].q.n;
        tab_cap += 96;
    }
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) nf += m->tensors[i].rows * m->tensors[i].cols;
    char *tab = xmalloc(tab_cap), *p = tab;
    int8_t *w = xmalloc(nq ? nq : 1);
    float *sc = xmalloc((ns ? ns : 1) * sizeof(float));
    real *f = xmalloc((nf ? nf : 1) * sizeof(real));
    p += snprintf(p, tab_cap, "%s", HEADER);
    size_t iw = 0, is = 0, iff = 0, j = 0;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        if (j < q->n && q->t[j].tensor == (size_t)i) {
            const QMatrix *x = &q->t[j++].q;
            p += snprintf(p, tab_cap - (size_t)(p - tab), "%s %zu %zu\n", t->name, x->n, x->k);
            for (size_t r = 0; r < x->n; r++, iw += x->k) memcpy(w + iw, x->q + r * x->kp, x->k);
            memcpy(sc + is, x->scale, x->n * sizeof(float));
            is += x->n;
        } else {
            memcpy(f + iff, m->params + t->offset, t->rows * t->cols * sizeof(real));
            iff += t->rows * t->cols;
        }
    }
    sec[0] = (CkptSection){"quant", tab, (uint64_t)(p - tab)};
    sec[1] = (CkptSection){"qweights", w, nq};
    sec[2] = (CkptSection){"qscales", sc, ns * sizeof(float)};
    sec[3] = (CkptSection){"fparams", f, iff * sizeof(real)};
    owned[0] = tab, owned[1] = w, owned[2] = sc, owned[3] = f;
}

size_t quant_param_bound(const CkptFile *f, size_t ntensors) {
    uint64_t nw = 0, nf = 0;
    ckpt_section(f, "qweights", &nw);
    ckpt_section(f, "fparams", &nf);
    return (size_t)nw + (size_t)(nf / sizeof(real)) + 16 * ntensors;
}

// One line "name n k\n"; *pp advances past it.
static int read_line(const char **pp, char name[64], size_t *n, size_t *k) {
    const char *p = *pp;
    size_t len = 0;
    while (*p && *p != ' ' && *p != '\n' && len < 63) name[len++] = *p++;
    name[len] = 0;
    char *end;
    if (len == 0 || *p++ != ' ' || *p < '0' || *p > '9') return 0;
    unsigned long long a = strtoull(p, &end, 10);
    if (*end != ' ' || end[1] < '0' || end[1] > '9') return 0;
    unsigned long long b = strtoull(end + 1, &end, 10);
    if (*end != '\n') return 0;
    *n = (size_t)a;
    *k = (size_t)b;
    *pp = end + 1;
    return 1;
}

static const void *section(const CkptFile *f, const char *name, uint64_t want, const char *path) {
    uint64_t size = 0;
    const void *p = ckpt_section(f, name, &size);
    if (!p) err_set(NMT_ERR_INPUT, "%s: int8 checkpoint has no '%s' section", path, name);
    else if (size != want)
        err_set(NMT_ERR_INPUT, "%s: section '%s' holds %llu bytes, the quant table and the config's model need %llu",
                path, name, (unsigned long long)size, (unsigned long long)want);
    return p && size == want ? p : NULL;
}

// The int8 sections' table and sizes, read against the model.
typedef struct {
    QTensor *qt;          // the quantized tensors, in order (nq of them)
    size_t nq, nw, ns, nf;  // counts: tensors, int8 weights, scales, float values
    const int8_t *w;
    const float *sc;
    const real *fp;
} QuantRead;

// The table must list exactly the eligible tensors, in order, with their shapes.
static int read_table(QuantRead *q, const Model *m, const char *tab, const char *path) {
    const char *p = tab + sizeof HEADER - 1;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        int in_out;
        if (!quant_tensor_eligible(t, &in_out)) {
            q->nf += t->rows * t->cols;
            continue;
        }
        char name[64];
        size_t n, k, wn, wk;
        quant_tensor_dims(t, in_out, &wn, &wk);
        if (!*p || !read_line(&p, name, &n, &k))
            return err_set(NMT_ERR_INPUT, "%s: section 'quant' ends early or is malformed before tensor '%s'", path,
                           t->name);
        if (strcmp(name, t->name) != 0 || n != wn || k != wk)
            return err_set(NMT_ERR_INPUT, "%s: section 'quant' lists '%s' %zux%zu where the model has '%s' %zux%zu",
                           path, name, n, k, t->name, wn, wk);
        q->qt[q->nq].tensor = (size_t)i;
        q->qt[q->nq++].in_out = in_out;
        q->nw += n * k;
        q->ns += n;
    }
    if (*p) return err_set(NMT_ERR_INPUT, "%s: section 'quant' lists tensors the model does not have", path);
    return NMT_OK;
}

// The value sections: their sizes, int8 values in -127..127, scales finite
// and >= 0, and the weights they make (127 * scale at most) and the float
// values within +-bound (model_weight_bound).
static int check_values(QuantRead *q, const CkptFile *f, double bound, const char *path) {
    q->w = section(f, "qweights", q->nw, path);
    q->sc = q->w ? section(f, "qscales", q->ns * sizeof(float), path) : NULL;
    q->fp = q->sc ? section(f, "fparams", q->nf * sizeof(real), path) : NULL;
    if (!q->fp) return NMT_ERR_INPUT;
    for (size_t i = 0; i < q->nw; i++)
        if (q->w[i] == -128)
            return err_set(NMT_ERR_INPUT, "%s: section 'qweights' holds -128 at byte %zu (values are -127..127)", path, i);
    for (size_t i = 0; i < q->ns; i++)
        if (!(isfinite(q->sc[i]) && q->sc[i] >= 0))
            return err_set(NMT_ERR_INPUT, "%s: section 'qscales' holds %g at %zu (scales are finite and >= 0)", path,
                           (double)q->sc[i], i);
        else if (127 * (double)q->sc[i] > bound)
            return err_set(NMT_ERR_INPUT, "%s: section 'qscales' holds %g at %zu: weights up to %g, beyond the +-%.3g "
                           "a model this wide can carry", path, (double)q->sc[i], i,
                           127 * (double)q->sc[i], bound);
    for (size_t i = 0; i < q->nf; i++)
        if (!isfinite(q->fp[i]))
            return err_set(NMT_ERR_INPUT, "%s: section 'fparams' holds a non-finite value at %zu", path, i);
        else if (fabs((double)q->fp[i]) > bound)
            return err_set(NMT_ERR_INPUT, "%s: section 'fparams' holds %g at %zu, beyond the +-%.3g a model this "
                           "wide can carry", path, (double)q->fp[i], i, bound);
    return NMT_OK;
}

// Everything checked: the model's quantized matrices and float values.
static void fill_model(QuantRead *q, Model *m) {
    memset(m->params, 0, m->nparams * sizeof(real));
    size_t j = 0, iw = 0, is = 0, iff = 0;
    for (ptrdiff_t i = 0; i < arrlen(m->tensors); i++) {
        const Tensor *t = &m->tensors[i];
        if (j < q->nq && q->qt[j].tensor == (size_t)i) {
            size_t n, k;
            quant_tensor_dims(t, q->qt[j].in_out, &n, &k);
            qmatrix_from_int8(&q->qt[j].q, q->w + iw, q->sc + is, n, k);
            iw += n * k;
            is += n;
            j++;
        } else {
            memcpy(m->params + t->offset, q->fp + iff, t->rows * t->cols * sizeof(real));
            iff += t->rows * t->cols;
        }
    }
    model_set_quant(m, q->qt, q->nq);
    q->qt = NULL;
}

int quant_load(const CkptFile *f, Model *m, const char *path) {
    uint64_t tlen;
    const char *text = ckpt_section(f, "quant", &tlen);
    char *tab = xmalloc((size_t)tlen + 1);
    memcpy(tab, text, (size_t)tlen);
    tab[tlen] = 0;
    QuantRead q;
    memset(&q, 0, sizeof q);
    int rc = NMT_OK;
    if (strlen(tab) != (size_t)tlen || strncmp(tab, HEADER, sizeof HEADER - 1) != 0)
        rc = err_set(NMT_ERR_INPUT, "%s: section 'quant' does not start with \"int8 per-output-symmetric\"", path);
    if (!rc) {
        q.qt = xcalloc((size_t)arrlen(m->tensors) + 1, sizeof *q.qt);
        rc = read_table(&q, m, tab, path);
    }
    if (!rc) rc = check_values(&q, f, model_weight_bound(&m->s), path);
    if (!rc) fill_model(&q, m);
    free(q.qt);
    free(tab);
    return rc;
}
