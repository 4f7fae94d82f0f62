// serve/models.c — the served models, their languages and detection (models.h).
#include "serve/models.h"
#include "text/langid.h"
#include "common/util.h"

#include <stb/stb_ds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Cut at position at (the separator's): both sides codes?
static int split_at(const char *pair, size_t at, char *src, char *tgt) {
    size_t n = strlen(pair);
    if (at >= LANG_CODE_MAX || n - at - 1 >= LANG_CODE_MAX) return 0;
    memcpy(src, pair, at);
    src[at] = 0;
    memcpy(tgt, pair + at + 1, n - at);
    return config_lang_code_ok(src) && config_lang_code_ok(tgt) && strcmp(src, tgt);
}

int lang_pair_parse(const char *pair, char *src, char *tgt) {
    const char *colon = strchr(pair, ':');
    if (colon) return split_at(pair, (size_t)(colon - pair), src, tgt);
    int found = 0;  // "pt-BR-en": the one cut at a '-' that leaves two codes
    char s[LANG_CODE_MAX], t[LANG_CODE_MAX];
    for (const char *p = strchr(pair, '-'); p; p = strchr(p + 1, '-'))
        if (split_at(pair, (size_t)(p - pair), s, t)) {
            found++;
            strcpy(src, s);
            strcpy(tgt, t);
        }
    return found == 1;
}

const char *lang_name(const char *code) {
    static const char *const names[][2] = {
        {"ar", "Arabic"}, {"az", "Azerbaijani"}, {"bg", "Bulgarian"}, {"bn", "Bengali"}, {"ca", "Catalan"},
        {"cs", "Czech"}, {"da", "Danish"}, {"de", "German"}, {"el", "Greek"}, {"en", "English"},
        {"eo", "Esperanto"}, {"es", "Spanish"}, {"et", "Estonian"}, {"eu", "Basque"}, {"fa", "Persian"},
        {"fi", "Finnish"}, {"fr", "French"}, {"ga", "Irish"}, {"gl", "Galician"}, {"he", "Hebrew"},
        {"hi", "Hindi"}, {"hu", "Hungarian"}, {"id", "Indonesian"}, {"it", "Italian"}, {"ja", "Japanese"},
        {"ko", "Korean"}, {"lt", "Lithuanian"}, {"lv", "Latvian"}, {"ms", "Malay"}, {"nb", "Norwegian"},
        {"nl", "Dutch"}, {"pl", "Polish"}, {"pt", "Portuguese"}, {"pt-BR", "Portuguese (Brazil)"},
        {"ro", "Romanian"}, {"ru", "Russian"}, {"sk", "Slovak"}, {"sl", "Slovenian"}, {"sq", "Albanian"},
        {"sr", "Serbian"}, {"sv", "Swedish"}, {"th", "Thai"}, {"tl", "Tagalog"}, {"tr", "Turkish"},
        {"uk", "Ukrainian"}, {"ur", "Urdu"}, {"vi", "Vietnamese"}, {"zh", "Chinese"},
        {"zh-Hans", "Chinese (Simplified)"}, {"zh-Hant", "Chinese (Traditional)"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(code, names[i][0])) return names[i][1];
    return code;
}

// The model's languages: the pair asked for, checked against the checkpoint's.
static int model_languages(ServedModel *m, const ModelSpec *sp) {
    const Config *c = &m->l->c;
    int asked = sp->src && *sp->src, recorded = c->src_lang[0] != 0;
    if (asked && recorded && (strcmp(sp->src, c->src_lang) || strcmp(sp->tgt, c->tgt_lang)))
        return err_set(NMT_ERR_INPUT, "%s: the checkpoint translates %s -> %s, not %s -> %s as given", sp->path,
                       c->src_lang, c->tgt_lang, sp->src, sp->tgt);
    snprintf(m->src, sizeof m->src, "%s", asked ? sp->src : c->src_lang);
    snprintf(m->tgt, sizeof m->tgt, "%s", asked ? sp->tgt : c->tgt_lang);
    return NMT_OK;
}

// The checkpoints of FILE,FILE,... loaded as one model.
static int load_members(ServedModel *m, const ModelSpec *sp, int int8) {
    char *list = xstrdup(sp->path), **paths = NULL;
    for (char *p = list, *comma; p; p = comma ? comma + 1 : NULL) {
        if ((comma = strchr(p, ','))) *comma = 0;
        arrput(paths, p);
    }
    int rc = members_load(&m->ms, paths, (size_t)arrlen(paths), sp->weights, int8);
    arrfree(paths);
    free(list);
    m->l = rc ? NULL : &m->ms.l[0];
    return rc;
}

int served_load(Served *s, const ModelSpec *specs, size_t n, int int8, int max_batch, int beam) {
    memset(s, 0, sizeof *s);
    s->m = xcalloc(n + 1, sizeof *s->m);
    int rc = NMT_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        ServedModel *m = &s->m[i];
        m->path = specs[i].path;
        if ((rc = load_members(m, &specs[i], int8))) break;
        s->n++;
        if ((rc = model_languages(m, &specs[i]))) break;
        if (n > 1 && !m->src[0])
            rc = err_set(NMT_ERR_INPUT, "%s: the checkpoint records no languages; give them: --model SRC-TGT=%s",
                         m->path, m->path);
        for (size_t k = 0; k < i && !rc; k++)
            if (!strcmp(s->m[k].src, m->src) && !strcmp(s->m[k].tgt, m->tgt))
                rc = err_set(NMT_ERR_INPUT, "%s and %s both translate %s -> %s; serve one model per pair",
                             s->m[k].path, m->path, m->src, m->tgt);
        // A call decodes at most what max_batch sentences of the default beam do;
        // the decoder's buffers stay from call to call.
        m->env = (JobEnv){m->ms.e, &m->l->t, m->l->c.max_src_len, (size_t)max_batch, (size_t)max_batch * (size_t)beam,
                          decode_scratch_create()};
    }
    if (rc) served_free(s);
    return rc;
}

void served_free(Served *s) {
    for (size_t i = 0; i < s->n; i++) {
        decode_scratch_free(s->m[i].env.scratch);
        members_free(&s->m[i].ms);
    }
    free(s->m);
    memset(s, 0, sizeof *s);
}

const ServedModel *served_find(const Served *s, const char *src, const char *tgt) {
    if (!src && !tgt) return s->n == 1 ? &s->m[0] : NULL;
    for (size_t i = 0; i < s->n; i++)
        if ((!src || !strcmp(s->m[i].src, src)) && (!tgt || !strcmp(s->m[i].tgt, tgt))) return &s->m[i];
    return NULL;
}

int served_knows(const Served *s, const char *code) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->m[i].src, code) || !strcmp(s->m[i].tgt, code)) return 1;
    return 0;
}

// Every language served (sources first, in the order of the models), once.
static size_t languages(const Served *s, const char **codes) {
    size_t n = 0;
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < s->n; i++) {
            const char *c = side ? s->m[i].tgt : s->m[i].src;
            int seen = !*c;
            for (size_t k = 0; k < n && !seen; k++) seen = !strcmp(codes[k], c);
            if (!seen) codes[n++] = c;
        }
    return n;
}

cJSON *served_languages(const Served *s) {
    const char **codes = xcalloc(2 * s->n + 1, sizeof *codes);
    size_t n = languages(s, codes);
    cJSON *list = cJSON_CreateArray();
    for (size_t k = 0; k < n; k++) {
        cJSON *e = cJSON_CreateObject(), *targets = cJSON_CreateArray();
        cJSON_AddStringToObject(e, "code", codes[k]);
        cJSON_AddStringToObject(e, "name", lang_name(codes[k]));
        for (size_t i = 0; i < s->n; i++)
            if (!strcmp(s->m[i].src, codes[k])) cJSON_AddItemToArray(targets, cJSON_CreateString(s->m[i].tgt));
        cJSON_AddItemToObject(e, "targets", targets);
        cJSON_AddItemToArray(list, e);
    }
    free(codes);
    return list;
}

// The profile of code's text that some model carries (its source or target side), or NULL.
static const LangProfile *profile_of(const Served *s, const char *code) {
    for (size_t i = 0; i < s->n; i++) {
        const Tokenizer *t = &s->m[i].l->t;
        if (!strcmp(s->m[i].src, code) && t->src_profile) return t->src_profile;
        if (!strcmp(s->m[i].tgt, code) && t->tgt_profile) return t->tgt_profile;
    }
    return NULL;
}

// The candidates for a text into target (NULL: any language served).
static size_t candidates(const Served *s, const char *target, const char **codes) {
    if (!target) return languages(s, codes);
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->m[i].tgt, target) && s->m[i].src[0]) codes[n++] = s->m[i].src;
    codes[n++] = target;
    return n;
}

size_t served_detect(const Served *s, const char *text, const char *target, const char **codes, double *conf,
                     size_t max) {
    const char **cand = xcalloc(2 * s->n + 2, sizeof *cand), **ranked = xcalloc(2 * s->n + 2, sizeof *ranked);
    const LangProfile **prof = xcalloc(2 * s->n + 2, sizeof *prof);
    double *c = xcalloc(2 * s->n + 2, sizeof *c);
    size_t n = candidates(s, target, cand), np = 0;
    for (size_t k = 0; k < n; k++)
        if ((prof[np] = profile_of(s, cand[k]))) ranked[np++] = cand[k];
    if (np) {
        langid_rank(prof, np, text, c);
        n = np;
    } else {  // no evidence: equal
        for (size_t k = 0; k < n; k++) {
            ranked[k] = cand[k];
            c[k] = 100.0 / (double)n;
        }
    }
    size_t out = 0;
    for (; out < n && out < max; out++) {  // the best left, first
        size_t best = 0;
        for (size_t k = 1; k < n; k++)
            if (c[k] > c[best]) best = k;
        codes[out] = ranked[best];
        conf[out] = c[best];
        c[best] = -1;
    }
    free(cand);
    free(ranked);
    free(prof);
    free(c);
    return out;
}
