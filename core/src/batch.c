/*
 * batch.c — remote format v1 (docs/FORMAT.md): batches of one author's
 * changes as JSON, written directly into a buffer (deterministic, so a
 * re-push rewrites the same bytes); object names, typed values and the
 * format marker. The strict reader of a batch object is batch_read.c:
 * anything a hostile or broken store hands us is an error that names the
 * object and the member, never a crash or a partial batch.
 */
#include "base64.h"
#include "batch.h"
#include "batch_impl.h"
#include "buf.h"
#include "clock.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

void dimple_batch__key(char *out, size_t cap, const uint8_t author[16],
                       const uint8_t first[16], int encrypted)
{
    char a[37], f[37];
    dimple_uuid__format(author, a);
    dimple_uuid__format(first, f);
    snprintf(out, cap, "log/%s/%s.json%s", a, f, encrypted ? ".age" : "");
}

int dimple_batch__parse_name(const char *file, uint8_t first[16],
                             int *encrypted)
{
    size_t n = strlen(file);
    if (n < 36 ||
        dimple_uuid__parse_n(file, 36, first,
                             DIMPLE_UUID_CANONICAL | DIMPLE_UUID_V7) != 0)
        return -1;
    if (strcmp(file + 36, ".json") == 0)
        *encrypted = 0;
    else if (strcmp(file + 36, ".json.age") == 0)
        *encrypted = 1;
    else
        return -1;
    return 0;
}

/* Length of the UTF-8 sequence at s (avail bytes), 0 if it is not one. */
size_t dimple_batch__utf8_one(const unsigned char *s, size_t avail)
{
    unsigned c = s[0], cp, min;
    size_t len;
    if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (avail < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = dimple_batch__utf8_one(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* --------------------------------------------------------------- encode */

static int enc_grow(dimple_batch_enc *e, size_t more)
{
    if (more > SIZE_MAX - e->n)
        return -1;
    return dimple__grow((void **)&e->p, &e->cap, e->n + more, 1) ? -1 : 0;
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
        if (v->i > -DIMPLE_BATCH_SAFE_INT && v->i < DIMPLE_BATCH_SAFE_INT)
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

    dimple_uuid__format(c->id, id);
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
        dimple_uuid__format(e->author, a);
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
        dimple_uuid__format(c->id, id);
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

/* ---------------------------------------- decode: messages, typed values */

int dimple_batch__dec_err(dec *d, int code, const char *fmt, ...)
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

int dimple_batch__parse_int(const char *s, int64_t *out)
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

int dimple_batch__parse_real(const char *s, double *out)
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

/* --------------------------------------------------------------- marker */

int dimple_batch__marker(char *out, size_t cap, const uint8_t store[16])
{
    char s[37];
    dimple_uuid__format(store, s);
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
        return dimple_batch__dec_err(&d, rc, "over 64 KiB");
    root = cJSON_ParseWithLength(json, len);
    if (!root)
        return dimple_batch__dec_err(&d, rc, "not valid JSON");
    f = cJSON_GetObjectItemCaseSensitive(root, "format");
    ma = cJSON_GetObjectItemCaseSensitive(root, "major");
    mi = cJSON_GetObjectItemCaseSensitive(root, "minor");
    st = cJSON_GetObjectItemCaseSensitive(root, "store");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, "dimple") != 0 ||
        !cJSON_IsNumber(ma) || !cJSON_IsNumber(mi) || ma->valuedouble < 1 ||
        ma->valuedouble != floor(ma->valuedouble) || ma->valuedouble > 1e6) {
        rc = dimple_batch__dec_err(&d, rc,
                                   "not a DimpleDb format marker (want "
                                   "{\"format\":\"dimple\",\"major\":1,...})");
        goto out;
    }
    if (ma->valuedouble > DIMPLE_BATCH_FORMAT) {
        rc = dimple_batch__dec_err(
            &d, DIMPLE_EFORMAT,
            "store format %.0f.%.0f is newer than this DimpleDb "
            "reads (%d.x): upgrade DimpleDb",
            ma->valuedouble, mi->valuedouble, DIMPLE_BATCH_FORMAT);
        goto out;
    }
    if (!cJSON_IsString(st) ||
        dimple_uuid__parse_n(st->valuestring, strlen(st->valuestring), store,
                             DIMPLE_UUID_CANONICAL)) {
        rc = dimple_batch__dec_err(&d, rc, "'store' missing or not a UUID");
        goto out;
    }
    rc = DIMPLE_OK;
out:
    cJSON_Delete(root);
    return rc;
}
