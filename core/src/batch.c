/*
 * batch.c — remote format v1 (docs/FORMAT.md): batches of one author's
 * changes as JSON, written directly into a buffer (deterministic, so a
 * re-push rewrites the same bytes) and read back with cJSON under strict
 * validation: anything a hostile or broken store hands us is an error that
 * names the object and the member, never a crash or a partial batch.
 */
#include "base64.h"
#include "batch.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAFE_INT ((int64_t)1 << 53) /* |v| below: exact as a JSON number */

/* ------------------------------------------------------------ helpers */

static const char hexd[] = "0123456789abcdef";

void dimple_batch__uuid_format(const uint8_t id[16], char out[37])
{
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hexd[id[i] >> 4];
        *o++ = hexd[id[i] & 15];
    }
    *o = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase refused: the canonical form is lowercase */
}

int dimple_batch__uuid_parse(const char *s, size_t n, uint8_t out[16],
                             int want_v7)
{
    size_t j = 0;
    if (!s || n != 36)
        return -1;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[j++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    if (want_v7 && ((out[6] >> 4) != 7 || (out[8] & 0xc0) != 0x80))
        return -1;
    return 0;
}

void dimple_batch__key(char *out, size_t cap, const uint8_t author[16],
                       const uint8_t first[16], int encrypted)
{
    char a[37], f[37];
    dimple_batch__uuid_format(author, a);
    dimple_batch__uuid_format(first, f);
    snprintf(out, cap, "log/%s/%s.json%s", a, f, encrypted ? ".age" : "");
}

int dimple_batch__parse_name(const char *file, uint8_t first[16],
                             int *encrypted)
{
    size_t n = strlen(file);
    if (n < 36 || dimple_batch__uuid_parse(file, 36, first, 1) != 0)
        return -1;
    if (strcmp(file + 36, ".json") == 0)
        *encrypted = 0;
    else if (strcmp(file + 36, ".json.age") == 0)
        *encrypted = 1;
    else
        return -1;
    return 0;
}

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
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

/* --------------------------------------------------------------- encode */

static int enc_grow(dimple_batch_enc *e, size_t more)
{
    if (e->cap - e->n >= more)
        return 0;
    size_t cap = e->cap ? e->cap : 4096;
    while (cap - e->n < more) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(e->p, cap);
    if (!p)
        return -1;
    e->p = p;
    e->cap = cap;
    return 0;
}

static int put(dimple_batch_enc *e, const void *p, size_t n)
{
    if (enc_grow(e, n))
        return -1;
    memcpy(e->p + e->n, p, n);
    e->n += n;
    return 0;
}

static int puts_(dimple_batch_enc *e, const char *s)
{
    return put(e, s, strlen(s));
}

static int put_jstr(dimple_batch_enc *e, const unsigned char *s, size_t n)
{
    /* worst case: every byte becomes \u00XX */
    if (n > (SIZE_MAX - 2) / 6 || enc_grow(e, n * 6 + 2))
        return -1;
    char *o = e->p + e->n;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c >= 0x20) {
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\', *o++ = 'n';
        } else if (c == '\t') {
            *o++ = '\\', *o++ = 't';
        } else if (c == '\r') {
            *o++ = '\\', *o++ = 'r';
        } else {
            o += sprintf(o, "\\u%04x", c);
        }
    }
    *o++ = '"';
    e->n = (size_t)(o - e->p);
    return 0;
}

static int put_b64(dimple_batch_enc *e, const unsigned char *s, size_t n)
{
    if (enc_grow(e, (n + 2) / 3 * 4 + 2))
        return -1;
    char *o = e->p + e->n;
    *o++ = '"';
    o += dimple_base64__encode_into(o, s, n);
    *o++ = '"';
    e->n = (size_t)(o - e->p);
    return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
enc_err(dimple_batch_enc *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
    return code;
}

/* The shortest of %.15g/%.16g/%.17g that reads back to the same bits. */
static void real_text(double r, char out[40])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, r);
        double back = strtod(out, NULL);
        if (memcmp(&back, &r, sizeof r) == 0)
            return;
    }
}

/* Where a value sits, for a message (formatted only on an error). */
typedef struct ewhere {
    const char *id, *table, *col; /* col NULL: a key value */
    size_t key;
} ewhere;

static int put_value_(dimple_batch_enc *e, const dimple_value *v,
                      const char *what);

static int put_value(dimple_batch_enc *e, const dimple_value *v,
                     const ewhere *w)
{
    int rc = put_value_(e, v, "");
    if (rc < 0 && rc != DIMPLE_ENOMEM) {
        char what[DIMPLE_BATCH_MAX_NAME * 2 + 128];
        if (w->col)
            snprintf(what, sizeof what, "change %s in %s: column '%s'", w->id,
                     w->table, w->col);
        else
            snprintf(what, sizeof what, "change %s in %s: key value %zu", w->id,
                     w->table, w->key + 1);
        rc = put_value_(e, v, what); /* again, for the message */
    }
    return rc;
}

static int put_value_(dimple_batch_enc *e, const dimple_value *v,
                      const char *what)
{
    char num[64];
    switch (v->type) {
    case DIMPLE_NULL:
        return puts_(e, "null") ? DIMPLE_ENOMEM : 0;
    case DIMPLE_INTEGER:
        if (v->i > -SAFE_INT && v->i < SAFE_INT)
            snprintf(num, sizeof num, "%" PRId64, v->i);
        else
            snprintf(num, sizeof num, "{\"$int\":\"%" PRId64 "\"}", v->i);
        return puts_(e, num) ? DIMPLE_ENOMEM : 0;
    case DIMPLE_REAL: {
        char t[40];
        if (isnan(v->r))
            return enc_err(e, DIMPLE_EINVAL, "%s: REAL NaN cannot be synced",
                           what);
        if (isinf(v->r))
            snprintf(t, sizeof t, "%s", v->r < 0 ? "-inf" : "inf");
        else
            real_text(v->r, t);
        snprintf(num, sizeof num, "{\"$real\":\"%s\"}", t);
        return puts_(e, num) ? DIMPLE_ENOMEM : 0;
    }
    case DIMPLE_TEXT:
    case DIMPLE_BLOB: {
        const unsigned char *p = v->p ? v->p : (const unsigned char *)"";
        if (v->n > DIMPLE_BATCH_MAX_VALUE)
            return enc_err(e, DIMPLE_EINVAL,
                           "%s: value of %zu bytes is over the format's "
                           "limit of %zu bytes",
                           what, v->n, DIMPLE_BATCH_MAX_VALUE);
        if (v->type == DIMPLE_TEXT && !memchr(p, 0, v->n) &&
            utf8_valid(p, v->n))
            return put_jstr(e, p, v->n) ? DIMPLE_ENOMEM : 0;
        /* BLOBs, and TEXT that JSON strings cannot carry exactly */
        if (puts_(e, v->type == DIMPLE_BLOB ? "{\"$blob\":" : "{\"$text\":") ||
            put_b64(e, p, v->n) || puts_(e, "}"))
            return DIMPLE_ENOMEM;
        return 0;
    }
    }
    return enc_err(e, DIMPLE_EINVAL, "%s: unknown value type %d", what,
                   (int)v->type);
}

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= DIMPLE_BATCH_MAX_NAME &&
           utf8_valid((const unsigned char *)s, n);
}

void dimple_batch__enc_init(dimple_batch_enc *e, const uint8_t author[16],
                            size_t max_changes, size_t max_bytes)
{
    memset(e, 0, sizeof *e);
    memcpy(e->author, author, 16);
    e->max_changes = max_changes ? max_changes : DIMPLE_BATCH_DEFAULT_CHANGES;
    if (e->max_changes > DIMPLE_BATCH_MAX_CHANGES)
        e->max_changes = DIMPLE_BATCH_MAX_CHANGES;
    e->max_bytes = max_bytes ? max_bytes : DIMPLE_BATCH_DEFAULT_BYTES;
    if (e->max_bytes > DIMPLE_BATCH_MAX_OBJECT)
        e->max_bytes = DIMPLE_BATCH_MAX_OBJECT;
}

void dimple_batch__enc_reset(dimple_batch_enc *e)
{
    e->n = 0;
    e->count = 0;
    e->finished = 0;
    e->err[0] = '\0';
}

void dimple_batch__enc_free(dimple_batch_enc *e)
{
    free(e->p);
    e->p = NULL;
    e->n = e->cap = 0;
}

static int enc_change(dimple_batch_enc *e, const dimple_change *c)
{
    char id[37];
    const char *op;
    int rc;

    dimple_batch__uuid_format(c->id, id);
    if (!name_ok(c->table))
        return enc_err(e, DIMPLE_EINVAL, "change %s: bad table name", id);
    if (memcmp(c->author, e->author, 16) != 0)
        return enc_err(e, DIMPLE_EINVAL,
                       "change %s: author differs from the batch's", id);
    if (e->count && memcmp(c->id, e->last, 16) <= 0)
        return enc_err(e, DIMPLE_EINVAL,
                       "change %s: ids must increase within a batch", id);
    switch (c->op) {
    case DIMPLE_OP_INSERT:
        op = "insert";
        break;
    case DIMPLE_OP_UPDATE:
        op = "update";
        break;
    case DIMPLE_OP_DELETE:
        op = "delete";
        break;
    default:
        return enc_err(e, DIMPLE_EINVAL, "change %s: unknown op %d", id,
                       (int)c->op);
    }
    if (c->n_key < 1 || c->n_key > DIMPLE_BATCH_MAX_KEY)
        return enc_err(e, DIMPLE_EINVAL, "change %s in %s: %zu key values", id,
                       c->table, c->n_key);
    if (c->n_cols > DIMPLE_BATCH_MAX_COLS)
        return enc_err(e, DIMPLE_EINVAL, "change %s in %s: %zu columns", id,
                       c->table, c->n_cols);

    if (puts_(e, "{\"id\":\"") || puts_(e, id) || puts_(e, "\",\"table\":") ||
        put_jstr(e, (const unsigned char *)c->table, strlen(c->table)) ||
        puts_(e, ",\"op\":\"") || puts_(e, op) || puts_(e, "\",\"key\":["))
        return DIMPLE_ENOMEM;
    for (size_t i = 0; i < c->n_key; i++) {
        ewhere w = {id, c->table, NULL, i};
        if (i && puts_(e, ","))
            return DIMPLE_ENOMEM;
        if ((rc = put_value(e, &c->key[i], &w)) < 0)
            return rc == DIMPLE_ENOMEM ? enc_err(e, rc, "out of memory") : rc;
    }
    if (puts_(e, "]"))
        return DIMPLE_ENOMEM;
    if (c->op != DIMPLE_OP_DELETE) {
        if (puts_(e, ",\"cols\":{"))
            return DIMPLE_ENOMEM;
        for (size_t i = 0; i < c->n_cols; i++) {
            const char *cn = c->col_names[i];
            if (!name_ok(cn))
                return enc_err(e, DIMPLE_EINVAL,
                               "change %s in %s: bad column name", id,
                               c->table);
            ewhere w = {id, c->table, cn, 0};
            if ((i && puts_(e, ",")) ||
                put_jstr(e, (const unsigned char *)cn, strlen(cn)) ||
                puts_(e, ":"))
                return DIMPLE_ENOMEM;
            if ((rc = put_value(e, &c->cols[i], &w)) < 0)
                return rc;
        }
        if (puts_(e, "}"))
            return DIMPLE_ENOMEM;
    } else if (c->n_cols) {
        return enc_err(e, DIMPLE_EINVAL,
                       "change %s in %s: a delete carries no columns", id,
                       c->table);
    }
    return puts_(e, "}") ? DIMPLE_ENOMEM : 0;
}

int dimple_batch__enc_add(dimple_batch_enc *e, const dimple_change *c)
{
    size_t mark;
    int rc;

    if (e->finished)
        return enc_err(e, DIMPLE_EINVAL, "batch already finished");
    if (e->count >= e->max_changes)
        return DIMPLE_BATCH_FULL;
    if (e->count == 0) {
        char a[37];
        e->n = 0;
        dimple_batch__uuid_format(e->author, a);
        if (puts_(e, "{\"format\":1,\"author\":\"") || puts_(e, a) ||
            puts_(e, "\",\"changes\":[\n"))
            return enc_err(e, DIMPLE_ENOMEM, "out of memory");
    }
    mark = e->n;
    if (e->count && puts_(e, ",\n"))
        return enc_err(e, DIMPLE_ENOMEM, "out of memory");
    rc = enc_change(e, c);
    if (rc < 0) {
        e->n = mark;
        if (e->count == 0)
            e->n = 0;
        if (rc == DIMPLE_ENOMEM && !e->err[0])
            enc_err(e, rc, "out of memory");
        return rc;
    }
    /* +4: the closing "\n]}\n" */
    if (e->n + 4 > e->max_bytes && e->count > 0) {
        e->n = mark;
        return DIMPLE_BATCH_FULL;
    }
    if (e->n + 4 > DIMPLE_BATCH_MAX_OBJECT) {
        char id[37];
        size_t sz = e->n;
        dimple_batch__uuid_format(c->id, id);
        e->n = 0;
        return enc_err(e, DIMPLE_EINVAL,
                       "change %s in %s: %zu bytes encoded, over the "
                       "format's object limit",
                       id, c->table, sz);
    }
    if (e->count == 0)
        memcpy(e->first, c->id, 16);
    memcpy(e->last, c->id, 16);
    e->count++;
    return DIMPLE_OK;
}

int dimple_batch__enc_finish(dimple_batch_enc *e)
{
    if (!e->count)
        return enc_err(e, DIMPLE_EINVAL, "empty batch");
    if (!e->finished) {
        if (puts_(e, "\n]}\n"))
            return enc_err(e, DIMPLE_ENOMEM, "out of memory");
        e->finished = 1;
    }
    return DIMPLE_OK;
}

/* --------------------------------------------------------------- decode */

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

/* Strict "-?(0|[1-9][0-9]*)" within int64. */
static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    char *end;
    if (*p == '-')
        p++;
    if (!(*p >= '0' && *p <= '9') || (p[0] == '0' && p[1] != '\0'))
        return -1;
    for (const char *q = p; *q; q++)
        if (!(*q >= '0' && *q <= '9'))
            return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Strict decimal "-?digits[.digits][e[+-]digits]", "inf", "-inf". */
static int parse_real(const char *s, double *out)
{
    const char *p = s;
    char *end;
    if (strcmp(s, "inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    if (*p == '-')
        p++;
    if (!(*p >= '0' && *p <= '9'))
        return -1;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return -1;
    double v = strtod(s, &end);
    if (*end || isinf(v) || isnan(v)) /* overflow is not a value we wrote */
        return -1;
    *out = v;
    return 0;
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
            if (parse_int(s, &v->i))
                VFAIL("%s: $int is not a 64-bit decimal integer", what);
            v->type = DIMPLE_INTEGER;
            return 0;
        }
        if (strcmp(tag, "$real") == 0) {
            if (parse_real(s, &v->r))
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

void dimple_batch__free(dimple_batch *b)
{
    if (!b)
        return;
    cJSON_Delete(b->root_);
    free(b->changes);
    free(b->vals_);
    free(b->names_);
    memset(b, 0, sizeof *b);
}

int dimple_batch__decode(dimple_batch *out, const char *name, const void *json,
                         size_t len, const uint8_t *want_author,
                         const uint8_t *want_first, char *err, size_t errlen)
{
    dec d = {"batch", name, err, errlen};
    dimple_batch b;
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
        dimple_batch__uuid_parse(jauth->valuestring, strlen(jauth->valuestring),
                                 b.author, 0)) {
        rc = dec_err(&d, rc, "'author' missing or not a UUID");
        goto out;
    }
    if (want_author && memcmp(want_author, b.author, 16) != 0) {
        char a[37];
        dimple_batch__uuid_format(want_author, a);
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
            dimple_batch__uuid_parse(jid->valuestring, strlen(jid->valuestring),
                                     ch->id, 1)) {
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
    dimple_batch__free(&b);
    return rc;
}

/* --------------------------------------------------------------- marker */

int dimple_batch__marker(char *out, size_t cap, const uint8_t store[16])
{
    char s[37];
    dimple_batch__uuid_format(store, s);
    int n = snprintf(out, cap,
                     "{\"format\":\"dimple\",\"major\":%d,\"minor\":%d,"
                     "\"store\":\"%s\"}\n",
                     DIMPLE_BATCH_FORMAT, DIMPLE_BATCH_FORMAT_MINOR, s);
    return n > 0 && (size_t)n < cap ? n : DIMPLE_EINVAL;
}

int dimple_batch__marker_check(const void *json, size_t len, uint8_t store[16],
                               char *err, size_t errlen)
{
    dec d = {"format marker", "dimple.json", err, errlen};
    cJSON *root, *f, *ma, *mi, *st;
    int rc = DIMPLE_ECORRUPT;

    if (len > 65536)
        return dec_err(&d, rc, "over 64 KiB");
    root = cJSON_ParseWithLength(json, len);
    if (!root)
        return dec_err(&d, rc, "not valid JSON");
    f = cJSON_GetObjectItemCaseSensitive(root, "format");
    ma = cJSON_GetObjectItemCaseSensitive(root, "major");
    mi = cJSON_GetObjectItemCaseSensitive(root, "minor");
    st = cJSON_GetObjectItemCaseSensitive(root, "store");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, "dimple") != 0 ||
        !cJSON_IsNumber(ma) || !cJSON_IsNumber(mi) || ma->valuedouble < 1 ||
        ma->valuedouble != floor(ma->valuedouble) || ma->valuedouble > 1e6) {
        rc = dec_err(&d, rc,
                     "not a DimpleDb format marker (want "
                     "{\"format\":\"dimple\",\"major\":1,...})");
        goto out;
    }
    if (ma->valuedouble > DIMPLE_BATCH_FORMAT) {
        rc = dec_err(&d, DIMPLE_EFORMAT,
                     "store format %.0f.%.0f is newer than this DimpleDb "
                     "reads (%d.x): upgrade DimpleDb",
                     ma->valuedouble, mi->valuedouble, DIMPLE_BATCH_FORMAT);
        goto out;
    }
    if (!cJSON_IsString(st) ||
        dimple_batch__uuid_parse(st->valuestring, strlen(st->valuestring),
                                 store, 0)) {
        rc = dec_err(&d, rc, "'store' missing or not a UUID");
        goto out;
    }
    rc = DIMPLE_OK;
out:
    cJSON_Delete(root);
    return rc;
}
