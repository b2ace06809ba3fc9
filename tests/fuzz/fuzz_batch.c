/*
 * fuzz_batch.c — libFuzzer target for the batch parser (core/src/batch.c).
 *
 * Any input: decode must not crash, leak or read out of bounds. Two more
 * properties, each an abort when broken:
 * - differential: the decoder is a hand-written single-pass reader; the
 *   cJSON-based decoder it replaced is kept below as a reference (static,
 *   here only). Whatever the new decoder accepts, cJSON must parse and the
 *   reference must accept with the same changes, value for value (the new
 *   one may refuse more: it is stricter by design).
 * - round trip: a batch it accepts must re-encode, and decode again to the
 *   same changes (the codec is exact on everything the validator lets
 *   through).
 * With -DFUZZ_REPLAY it has a main() instead: it runs each file (or each
 * file of each folder) named on the command line once and prints TAP; meson
 * registers that over tests/fuzz/corpus/batch (suite fuzz).
 */
#include "base64.h"
#include "batch.h"
#include "clock.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ----------------------------------------------------------- reference
 * The cJSON-based decoder as it was before the single-pass reader
 * (core/src/batch.c at issue #4's decode rewrite), renamed; the $int and
 * $real text parsers it had are batch.c's, called from here (the JSON
 * layer is what the two decoders differ in; its old UTF-8 check stays). */

#define SAFE_INT ((int64_t)1 << 53)

typedef struct ref_batch {
    uint8_t author[16];
    size_t n;
    dimple_change *changes;
    void *root_;
    dimple_value *vals_;
    const char **names_;
} ref_batch;

static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

typedef struct dec {
    const char *what; /* "batch" or "format marker" */
    const char *name;
    char *err;
    size_t errlen;
} dec;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
dec_err(dec *d, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->err && d->errlen)
        snprintf(d->err, d->errlen, "%s %s: %s", d->what,
                 d->name ? d->name : "?", msg);
    return code;
}

/* Where a value sits, formatted only when there is an error to report
 * (formatting it for every value cost a tenth of a pull). */
typedef struct where {
    const char *id;  /* the change's id text */
    const char *col; /* column name, or NULL for a key value */
    size_t key;      /* key index when col is NULL */
} where;

static void where_fmt(const where *w, char *out, size_t n)
{
    if (w->col)
        snprintf(out, n, "change %s: column '%.*s'", w->id,
                 DIMPLE_BATCH_MAX_NAME, w->col);
    else
        snprintf(out, n, "change %s: key[%zu]", w->id, w->key);
}

#define VFAIL(...)                                                             \
    do {                                                                       \
        char what[DIMPLE_BATCH_MAX_NAME + 128];                                \
        where_fmt(w, what, sizeof what);                                       \
        return dec_err(d, DIMPLE_ECORRUPT, __VA_ARGS__);                       \
    } while (0)

static int dec_value(dec *d, cJSON *j, dimple_value *v, const where *w)
{
    memset(v, 0, sizeof *v);
    if (cJSON_IsNull(j)) {
        v->type = DIMPLE_NULL;
        return 0;
    }
    if (cJSON_IsNumber(j)) {
        double x = j->valuedouble;
        if (!(x > -(double)SAFE_INT && x < (double)SAFE_INT) || x != floor(x))
            VFAIL("%s: a bare number must be an integer below 2^53 "
                  "in magnitude (use $int or $real)",
                  what);
        v->type = DIMPLE_INTEGER;
        v->i = (int64_t)x;
        return 0;
    }
    if (cJSON_IsString(j)) {
        size_t n = strlen(j->valuestring);
        if (n > DIMPLE_BATCH_MAX_VALUE)
            VFAIL("%s: value over %zu bytes", what, DIMPLE_BATCH_MAX_VALUE);
        if (!utf8_valid((const unsigned char *)j->valuestring, n))
            VFAIL("%s: text is not valid UTF-8", what);
        v->type = DIMPLE_TEXT;
        v->p = j->valuestring;
        v->n = n;
        return 0;
    }
    if (cJSON_IsObject(j)) {
        cJSON *t = j->child;
        if (!t || t->next || !t->string || !cJSON_IsString(t))
            VFAIL("%s: a typed value is an object with one string "
                  "member ($int, $real, $text or $blob)",
                  what);
        const char *tag = t->string, *s = t->valuestring;
        if (strcmp(tag, "$int") == 0) {
            if (dimple_batch__parse_int(s, &v->i))
                VFAIL("%s: $int is not a 64-bit decimal integer", what);
            v->type = DIMPLE_INTEGER;
            return 0;
        }
        if (strcmp(tag, "$real") == 0) {
            if (dimple_batch__parse_real(s, &v->r))
                VFAIL("%s: $real is not a finite decimal, inf or "
                      "-inf",
                      what);
            v->type = DIMPLE_REAL;
            return 0;
        }
        if (strcmp(tag, "$blob") == 0 || strcmp(tag, "$text") == 0) {
            size_t n = strlen(s);
            if (n / 4 * 3 > DIMPLE_BATCH_MAX_VALUE)
                VFAIL("%s: value over %zu bytes", what, DIMPLE_BATCH_MAX_VALUE);
            /* decoded in place: the tree is ours and base64 only shrinks */
            ptrdiff_t len = dimple_base64__decode_into(
                s, n, (unsigned char *)t->valuestring);
            if (len < 0)
                VFAIL("%s: %s is not base64", what, tag);
            v->type = tag[1] == 'b' ? DIMPLE_BLOB : DIMPLE_TEXT;
            v->p = t->valuestring;
            v->n = (size_t)len;
            return 0;
        }
        VFAIL("%s: unknown value tag '%.40s'", what, tag);
    }
    VFAIL("%s: wrong type (want null, number, string or a typed "
          "object)",
          what);
}

static int check_name(dec *d, const char *s, const char *id, const char *member)
{
    size_t n = strlen(s);
    if (n == 0 || n > DIMPLE_BATCH_MAX_NAME ||
        !utf8_valid((const unsigned char *)s, n))
        return dec_err(d, DIMPLE_ECORRUPT,
                       "change %s: %s: must be 1 to %d bytes of UTF-8", id,
                       member, DIMPLE_BATCH_MAX_NAME);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate column names: sort a copy of the pointers (cols can be many,
 * and a hostile batch must not cost quadratic time). */
static int has_dup(const char **names, size_t n, const char **scratch)
{
    if (n < 2)
        return 0;
    memcpy(scratch, names, n * sizeof *names);
    qsort(scratch, n, sizeof *scratch, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(scratch[i - 1], scratch[i]) == 0)
            return 1;
    return 0;
}

static void ref_free(ref_batch *b)
{
    if (!b)
        return;
    cJSON_Delete(b->root_);
    free(b->changes);
    free(b->vals_);
    free(b->names_);
    memset(b, 0, sizeof *b);
}

static int ref_decode(ref_batch *out, const char *name, const void *json,
                      size_t len, const uint8_t *want_author,
                      const uint8_t *want_first, char *err, size_t errlen)
{
    dec d = {"batch", name, err, errlen};
    ref_batch b;
    const char **scratch = NULL;
    cJSON *root = NULL, *jfmt, *jauth, *jch, *c;
    size_t n, nvals = 0, nnames = 0, vi = 0, ni = 0, ci = 0;
    const char *end = NULL;
    int rc = DIMPLE_ECORRUPT;

    memset(&b, 0, sizeof b);
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (len > DIMPLE_BATCH_MAX_OBJECT)
        return dec_err(&d, DIMPLE_ECORRUPT, "%zu bytes, over the %zu limit",
                       len, DIMPLE_BATCH_MAX_OBJECT);
    if (len == 0 || !json)
        return dec_err(&d, DIMPLE_ECORRUPT, "empty object");
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root) {
        /* cJSON stops after the value: anything but whitespace after it
         * means the object is not what its writer wrote */
        const char *lim = (const char *)json + len;
        while (end < lim &&
               (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
            end++;
        if (end != lim) {
            cJSON_Delete(root);
            return dec_err(&d, DIMPLE_ECORRUPT,
                           "trailing bytes after the JSON object at byte %zu",
                           (size_t)(end - (const char *)json));
        }
    }
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off =
            at && at >= (const char *)json && at <= (const char *)json + len
                ? (size_t)(at - (const char *)json)
                : len;
        return dec_err(&d, DIMPLE_ECORRUPT,
                       "not valid JSON (truncated or corrupt) near byte %zu",
                       off);
    }
    b.root_ = root;
    if (!cJSON_IsObject(root)) {
        rc = dec_err(&d, rc, "not a JSON object");
        goto out;
    }
    jfmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsNumber(jfmt) ||
        jfmt->valuedouble != floor(jfmt->valuedouble) ||
        jfmt->valuedouble < 1) {
        rc = dec_err(&d, rc, "'format' missing or not a version number");
        goto out;
    }
    if (jfmt->valuedouble > DIMPLE_BATCH_FORMAT) {
        rc = dec_err(&d, DIMPLE_EFORMAT,
                     "format %.0f is newer than this DimpleDb reads (%d): "
                     "upgrade DimpleDb",
                     jfmt->valuedouble, DIMPLE_BATCH_FORMAT);
        goto out;
    }
    jauth = cJSON_GetObjectItemCaseSensitive(root, "author");
    if (!cJSON_IsString(jauth) ||
        dimple_uuid__parse_n(jauth->valuestring, strlen(jauth->valuestring),
                             b.author, DIMPLE_UUID_CANONICAL)) {
        rc = dec_err(&d, rc, "'author' missing or not a UUID");
        goto out;
    }
    if (want_author && memcmp(want_author, b.author, 16) != 0) {
        char a[37];
        dimple_uuid__format(want_author, a);
        rc = dec_err(&d, rc,
                     "'author' %.36s does not match its folder %s "
                     "(authors write only their own folder)",
                     jauth->valuestring, a);
        goto out;
    }
    jch = cJSON_GetObjectItemCaseSensitive(root, "changes");
    if (!cJSON_IsArray(jch)) {
        rc = dec_err(&d, rc, "'changes' missing or not an array");
        goto out;
    }

    /* pass 1: count, so that one allocation of each kind holds the batch */
    n = 0;
    for (c = jch->child; c; c = c->next) {
        if (++n > DIMPLE_BATCH_MAX_CHANGES) {
            rc = dec_err(&d, rc, "more than %d changes",
                         DIMPLE_BATCH_MAX_CHANGES);
            goto out;
        }
        cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "key");
        cJSON *cols = cJSON_GetObjectItemCaseSensitive(c, "cols");
        for (cJSON *x = k ? k->child : NULL; x; x = x->next)
            nvals++;
        for (cJSON *x = cols ? cols->child : NULL; x; x = x->next)
            nvals++, nnames++;
    }
    if (n == 0) {
        rc = dec_err(&d, rc, "'changes' is empty");
        goto out;
    }
    b.changes = calloc(n, sizeof *b.changes);
    b.vals_ = calloc(nvals ? nvals : 1, sizeof *b.vals_);
    b.names_ = calloc(nnames ? nnames : 1, sizeof *b.names_);
    scratch = calloc(nnames ? nnames : 1, sizeof *scratch);
    if (!b.changes || !b.vals_ || !b.names_ || !scratch) {
        rc = dec_err(&d, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }

    /* pass 2: validate and fill */
    for (c = jch->child; c; c = c->next, ci++) {
        dimple_change *ch = &b.changes[ci];
        cJSON *jid = NULL, *jt = NULL, *jop = NULL, *jk = NULL, *jc = NULL;
        char idtxt[37] = "?";

        if (!cJSON_IsObject(c)) {
            rc = dec_err(&d, rc, "changes[%zu] is not an object", ci);
            goto out;
        }
        for (cJSON *m = c->child; m; m = m->next) {
            cJSON **slot = NULL;
            if (strcmp(m->string, "id") == 0)
                slot = &jid;
            else if (strcmp(m->string, "table") == 0)
                slot = &jt;
            else if (strcmp(m->string, "op") == 0)
                slot = &jop;
            else if (strcmp(m->string, "key") == 0)
                slot = &jk;
            else if (strcmp(m->string, "cols") == 0)
                slot = &jc;
            if (!slot)
                continue; /* unknown members: a later minor version's */
            if (*slot) {
                rc = dec_err(&d, rc, "changes[%zu]: duplicate member '%s'", ci,
                             m->string);
                goto out;
            }
            *slot = m;
        }
        if (!cJSON_IsString(jid) ||
            dimple_uuid__parse_n(jid->valuestring, strlen(jid->valuestring),
                                 ch->id,
                                 DIMPLE_UUID_CANONICAL | DIMPLE_UUID_V7)) {
            rc = dec_err(&d, rc, "changes[%zu]: 'id' missing or not a UUIDv7",
                         ci);
            goto out;
        }
        memcpy(idtxt, jid->valuestring, 36);
        idtxt[36] = '\0';
        if (ci == 0 && want_first && memcmp(want_first, ch->id, 16) != 0) {
            rc = dec_err(&d, rc,
                         "first change id %s does not match the object's "
                         "name",
                         idtxt);
            goto out;
        }
        if (ci > 0 && memcmp(b.changes[ci - 1].id, ch->id, 16) >= 0) {
            rc = dec_err(&d, rc,
                         "changes[%zu] (id %s): ids out of order (must "
                         "strictly increase)",
                         ci, idtxt);
            goto out;
        }
        memcpy(ch->author, b.author, 16);
        if (!cJSON_IsString(jt)) {
            rc = dec_err(&d, rc, "change %s: 'table' missing or not a string",
                         idtxt);
            goto out;
        }
        if ((rc = check_name(&d, jt->valuestring, idtxt, "'table'")) < 0)
            goto out;
        rc = DIMPLE_ECORRUPT;
        ch->table = jt->valuestring;
        if (!cJSON_IsString(jop)) {
            rc = dec_err(&d, rc, "change %s: 'op' missing or not a string",
                         idtxt);
            goto out;
        }
        if (strcmp(jop->valuestring, "insert") == 0)
            ch->op = DIMPLE_OP_INSERT;
        else if (strcmp(jop->valuestring, "update") == 0)
            ch->op = DIMPLE_OP_UPDATE;
        else if (strcmp(jop->valuestring, "delete") == 0)
            ch->op = DIMPLE_OP_DELETE;
        else {
            rc = dec_err(&d, rc,
                         "change %s: unknown op '%.32s' (insert, update or "
                         "delete)",
                         idtxt, jop->valuestring);
            goto out;
        }
        if (!cJSON_IsArray(jk) || !jk->child) {
            rc = dec_err(&d, rc,
                         "change %s: 'key' missing or not a non-empty array",
                         idtxt);
            goto out;
        }
        ch->key = &b.vals_[vi];
        for (cJSON *x = jk->child; x; x = x->next) {
            if (ch->n_key >= DIMPLE_BATCH_MAX_KEY) {
                rc = dec_err(&d, rc, "change %s: more than %d key values",
                             idtxt, DIMPLE_BATCH_MAX_KEY);
                goto out;
            }
            where w = {idtxt, NULL, ch->n_key};
            if ((rc = dec_value(&d, x, &b.vals_[vi], &w)) < 0)
                goto out;
            rc = DIMPLE_ECORRUPT;
            vi++;
            ch->n_key++;
        }
        if (ch->op == DIMPLE_OP_DELETE) {
            if (jc && !(cJSON_IsObject(jc) && !jc->child)) {
                rc = dec_err(&d, rc, "change %s: a delete carries no 'cols'",
                             idtxt);
                goto out;
            }
            continue;
        }
        if (!cJSON_IsObject(jc)) {
            rc = dec_err(&d, rc, "change %s: 'cols' missing or not an object",
                         idtxt);
            goto out;
        }
        ch->cols = &b.vals_[vi];
        ch->col_names = &b.names_[ni];
        for (cJSON *x = jc->child; x; x = x->next) {
            if (ch->n_cols >= DIMPLE_BATCH_MAX_COLS) {
                rc = dec_err(&d, rc, "change %s: more than %d columns", idtxt,
                             DIMPLE_BATCH_MAX_COLS);
                goto out;
            }
            if ((rc = check_name(&d, x->string, idtxt, "column name")) < 0)
                goto out;
            where w = {idtxt, x->string, 0};
            if ((rc = dec_value(&d, x, &b.vals_[vi], &w)) < 0)
                goto out;
            rc = DIMPLE_ECORRUPT;
            b.names_[ni++] = x->string;
            vi++;
            ch->n_cols++;
        }
        if (has_dup(&b.names_[ni - ch->n_cols], ch->n_cols, scratch)) {
            rc = dec_err(&d, rc, "change %s: a column appears twice", idtxt);
            goto out;
        }
    }
    b.n = n;
    *out = b;
    memset(&b, 0, sizeof b);
    rc = DIMPLE_OK;
out:
    free(scratch);
    ref_free(&b);
    return rc;
}

/* ------------------------------------------------------------ the target */

static int same_value(const dimple_value *a, const dimple_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case DIMPLE_INTEGER:
        return a->i == b->i;
    case DIMPLE_REAL:
        return memcmp(&a->r, &b->r, sizeof a->r) == 0;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
    default:
        return 1;
    }
}

static int same_change(const dimple_change *x, const dimple_change *y)
{
    if (memcmp(x->id, y->id, 16) || memcmp(x->author, y->author, 16) ||
        strcmp(x->table, y->table) || x->op != y->op || x->n_key != y->n_key ||
        x->n_cols != y->n_cols)
        return 0;
    for (size_t k = 0; k < x->n_key; k++)
        if (!same_value(&x->key[k], &y->key[k]))
            return 0;
    for (size_t k = 0; k < x->n_cols; k++)
        if (strcmp(x->col_names[k], y->col_names[k]) ||
            !same_value(&x->cols[k], &y->cols[k]))
            return 0;
    return 1;
}

static void fail(const char *why, const char *err)
{
    fprintf(stderr, "fuzz_batch: %s (%s)\n", why, err ? err : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dimple_batch a, b;
    ref_batch ref;
    dimple_batch_enc e;
    char err[1024], rerr[1024];
    int rc;

    rc = dimple_batch__decode(&a, "fuzz", data, size, NULL, NULL, err,
                              sizeof err);
    if (rc != DIMPLE_OK) {
        /* refused: nothing to free, and a message naming the object */
        if (a.n || a.changes || !strstr(err, "batch fuzz: "))
            fail("a refusal left something behind or no message", err);
        return 0;
    }
    if (a.n == 0)
        fail("accepted an empty batch", NULL);

    /* differential: cJSON and the old walk agree, value for value */
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root)
        fail("accepted what cJSON does not parse", NULL);
    cJSON_Delete(root);
    if (ref_decode(&ref, "ref", data, size, NULL, NULL, rerr, sizeof rerr) !=
        DIMPLE_OK)
        fail("accepted what the cJSON-based decoder refuses", rerr);
    if (ref.n != a.n || memcmp(ref.author, a.author, 16) != 0)
        fail("batch differs from the cJSON-based decoder's", NULL);
    for (size_t i = 0; i < a.n; i++)
        if (!same_change(&a.changes[i], &ref.changes[i]))
            fail("a change differs from the cJSON-based decoder's", NULL);
    ref_free(&ref);

    /* the author and first id it names are what the key would carry */
    if (dimple_batch__decode(&b, "fuzz", data, size, a.author, a.changes[0].id,
                             err, sizeof err) != DIMPLE_OK)
        fail("refused with its own author and first id", err);
    dimple_batch__free(&b);

    /* round trip through the writer */
    dimple_batch__enc_init(&e, a.author, DIMPLE_BATCH_MAX_CHANGES,
                           DIMPLE_BATCH_MAX_OBJECT);
    for (size_t i = 0; i < a.n; i++)
        if (dimple_batch__enc_add(&e, &a.changes[i]) != DIMPLE_OK)
            fail("the validator let through what the writer refuses", e.err);
    if (dimple_batch__enc_finish(&e) != DIMPLE_OK)
        fail("finish", e.err);
    if (dimple_batch__decode(&b, "fuzz2", e.p, e.n, a.author, a.changes[0].id,
                             err, sizeof err) != DIMPLE_OK)
        fail("the re-encoded batch does not decode", err);
    if (b.n != a.n)
        fail("the re-encoded batch has another count", NULL);
    for (size_t i = 0; i < a.n; i++)
        if (!same_change(&a.changes[i], &b.changes[i]))
            fail("the re-encoded batch differs", NULL);
    dimple_batch__free(&b);
    dimple_batch__enc_free(&e);
    dimple_batch__free(&a);
    return 0;
}

#ifdef FUZZ_REPLAY
/* replay.c runs every seed; this says what each decoder made of it. */
void fuzz_replay_note(const char *path, const uint8_t *buf, size_t n);

void fuzz_replay_note(const char *path, const uint8_t *buf, size_t n)
{
    dimple_batch b;
    char err[1024];
    ref_batch ref;
    char rerr[1024];
    int rc =
        dimple_batch__decode(&b, "seed", buf, n, NULL, NULL, err, sizeof err);
    int rrc = ref_decode(&ref, "seed", buf, n, NULL, NULL, rerr, sizeof rerr);
    if (rc)
        printf("# %s: refused: %s\n", path, err);
    else
        printf("# %s: %zu changes\n", path, b.n);
    /* where both refuse, say so when the messages differ (a diagnostic:
     * the new reader refuses some things earlier, e.g. as bad JSON) */
    if (rc && rrc && strcmp(err, rerr) != 0)
        printf("# %s: the cJSON-based decoder said: %s\n", path, rerr);
    if (!rrc)
        ref_free(&ref);
    dimple_batch__free(&b);
}
#endif
