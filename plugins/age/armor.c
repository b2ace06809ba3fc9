/*
 * armor.c — age's ASCII armor (strict PEM, RFC 7468): "-----BEGIN AGE
 * ENCRYPTED FILE-----", canonical padded base64 at 64 columns (only the last
 * data line shorter, never empty), "-----END AGE ENCRYPTED FILE-----".
 * LF or CRLF; up to 1024 bytes of whitespace before and after the block.
 * Decoding streams line by line (constant memory), like age's Go reader.
 */
#include "age_internal.h"

#include "b64.h"

#define COLS 64
#define BYTES 48
#define LINE_CAP 1024

static int fail(age_armor_dec *d, const char *what)
{
    d->done = -1;
    return age_fail(d->e, AGE_E_ARMOR, DIMPLE_ECORRUPT, "malformed armor: %s",
                    what);
}

/* One line without its "\n" or "\r\n"; -2 at the end of input (nothing
 * read), -1 on a failure already recorded. */
static ptrdiff_t get_line(age_armor_dec *d, char *line)
{
    ptrdiff_t n = age_reader_line(d->in, line, LINE_CAP);
    if (n == -1)
        return fail(d, "line too long"), -1;
    if (n < 0) {
        d->done = -1;
        age_fail(d->e, AGE_E_OTHER, (int)n, "reading the armored input failed");
        return -1;
    }
    if (n == 0)
        return -2;
    if (line[n - 1] == '\n')
        n--;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return n;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* After the END line: at most 1024 bytes of whitespace, then the end. */
static int drain(age_armor_dec *d)
{
    unsigned char buf[AGE_ARMOR_MAX_WS];
    ptrdiff_t n = age_reader_read(d->in, buf, sizeof buf);
    if (n < 0) {
        d->done = -1;
        return age_fail(d->e, AGE_E_OTHER, (int)n,
                        "reading the armored input failed");
    }
    for (ptrdiff_t i = 0; i < n; i++)
        if (!is_space(buf[i]))
            return fail(d, "data after the END line");
    if (n == (ptrdiff_t)sizeof buf)
        return fail(d, "too much whitespace after the END line");
    d->done = 1;
    return DIMPLE_OK;
}

static int begin(age_armor_dec *d, char *line)
{
    size_t skipped = 0;
    for (;;) {
        const unsigned char *p;
        ptrdiff_t n = age_reader_peek(d->in, 1, &p);
        if (n < 0) {
            d->done = -1;
            return age_fail(d->e, AGE_E_OTHER, (int)n,
                            "reading the armored input failed");
        }
        if (n == 0)
            return fail(d, "no BEGIN line");
        if (!is_space(p[0]) || *p == '\v' || *p == '\f')
            break;
        d->in->pos++;
        if (++skipped > AGE_ARMOR_MAX_WS)
            return fail(d, "too much whitespace before the BEGIN line");
    }
    ptrdiff_t n = get_line(d, line);
    if (n == -1)
        return d->e->code;
    if (n == -2 || strcmp(line, AGE_ARMOR_BEGIN) != 0)
        return fail(d, "invalid BEGIN line");
    d->started = 1;
    return DIMPLE_OK;
}

/* Decode the next line into d->out. */
static int next(age_armor_dec *d)
{
    char line[LINE_CAP + 1];
    ptrdiff_t n;
    int rc;

    if (!d->started && (rc = begin(d, line)))
        return rc;
    n = get_line(d, line);
    if (n == -1)
        return d->e->code;
    if (n == -2)
        return fail(d, "no END line");
    if (strcmp(line, AGE_ARMOR_END) == 0)
        return drain(d);
    if (n == 0)
        return fail(d, "empty line");
    if (n > COLS)
        return fail(d, "line longer than 64 columns");
    if (age_b64_decode(line, (size_t)n, d->out, sizeof d->out, &d->olen, 1))
        return fail(d, "invalid base64");
    d->opos = 0;
    if (d->olen < BYTES) {
        /* A short line is the last one: END must follow. */
        n = get_line(d, line);
        if (n == -1)
            return d->e->code;
        if (n == -2 || strcmp(line, AGE_ARMOR_END) != 0)
            return fail(d, "short line not followed by the END line");
        if ((rc = drain(d)))
            return rc;
    }
    return DIMPLE_OK;
}

static ptrdiff_t dec_read(void *ctx, void *buf, size_t n)
{
    age_armor_dec *d = ctx;
    size_t done = 0;
    while (done < n) {
        if (d->opos < d->olen) {
            size_t k =
                d->olen - d->opos < n - done ? d->olen - d->opos : n - done;
            memcpy((unsigned char *)buf + done, d->out + d->opos, k);
            d->opos += k;
            done += k;
            continue;
        }
        if (d->done)
            break;
        int rc = next(d);
        if (rc)
            return done ? (ptrdiff_t)done : rc;
    }
    /* A failure after some bytes is reported on the next call. */
    if (!done && d->done < 0)
        return d->e->code ? d->e->code : DIMPLE_ECORRUPT;
    return (ptrdiff_t)done;
}

dimple_source age_armor_source(age_armor_dec *d, age_reader *in, age_err *e)
{
    dimple_source s;
    memset(d, 0, sizeof *d);
    d->in = in;
    d->e = e;
    s.read = dec_read;
    s.ctx = d;
    return s;
}

static int enc_line(age_armor_enc *a, const unsigned char *p, size_t n)
{
    char line[COLS + 2];
    age_b64_encode(p, n, line, 1);
    size_t len = strlen(line);
    line[len++] = '\n';
    return dimple_sink_write(a->out, line, len);
}

static int enc_start(age_armor_enc *a)
{
    if (a->started)
        return DIMPLE_OK;
    a->started = 1;
    return dimple_sink_write(a->out, AGE_ARMOR_BEGIN "\n",
                             sizeof AGE_ARMOR_BEGIN);
}

static int enc_write(void *ctx, const void *p, size_t n)
{
    age_armor_enc *a = ctx;
    const unsigned char *s = p;
    int rc = enc_start(a);
    while (!rc && n) {
        size_t k = BYTES - a->n < n ? BYTES - a->n : n;
        memcpy(a->buf + a->n, s, k);
        a->n += k;
        s += k;
        n -= k;
        if (a->n == BYTES) {
            rc = enc_line(a, a->buf, BYTES);
            a->n = 0;
        }
    }
    return rc;
}

dimple_sink age_armor_sink(age_armor_enc *a, const dimple_sink *out)
{
    dimple_sink s;
    memset(a, 0, sizeof *a);
    a->out = out;
    s.write = enc_write;
    s.ctx = a;
    return s;
}

int age_armor_finish(age_armor_enc *a)
{
    int rc = enc_start(a);
    if (!rc && a->n)
        rc = enc_line(a, a->buf, a->n);
    if (!rc)
        rc =
            dimple_sink_write(a->out, AGE_ARMOR_END "\n", sizeof AGE_ARMOR_END);
    return rc;
}
