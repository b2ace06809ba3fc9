/* age_io.c — errors, the buffered reader, memory sources and buffers. */
#include "age_internal.h"

#include <stdarg.h>
#include <stdlib.h>

int age_fail(age_err *e, int cls, int code, const char *fmt, ...)
{
    if (e && e->cls == AGE_E_NONE) {
        va_list ap;
        e->cls = cls;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *age_class_name(int cls)
{
    switch (cls) {
    case AGE_E_NONE:
        return "success";
    case AGE_E_ARMOR:
        return "armor failure";
    case AGE_E_HEADER:
        return "header failure";
    case AGE_E_NOMATCH:
        return "no match";
    case AGE_E_HMAC:
        return "HMAC failure";
    case AGE_E_PAYLOAD:
        return "payload failure";
    default:
        return "error";
    }
}

int age_reader_init(age_reader *r, const dimple_source *src, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->src = src;
    r->cap = cap;
    r->buf = malloc(cap);
    return r->buf ? DIMPLE_OK : DIMPLE_ENOMEM;
}

void age_reader_free(age_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Read more from the source into the buffer; 0 at the end. */
static ptrdiff_t fill(age_reader *r)
{
    ptrdiff_t got;
    if (r->rc)
        return r->rc;
    if (r->eof)
        return 0;
    if (r->pos > 0 && r->pos == r->len)
        r->pos = r->len = 0;
    if (r->len == r->cap && r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == r->cap)
        return 0;
    got = r->src->read(r->src->ctx, r->buf + r->len, r->cap - r->len);
    if (got < 0)
        return r->rc = (int)got;
    if (got == 0)
        r->eof = 1;
    r->len += (size_t)got;
    return got;
}

ptrdiff_t age_reader_peek(age_reader *r, size_t n, const unsigned char **p)
{
    if (n > r->cap)
        n = r->cap;
    if (r->len - r->pos < n && r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    while (r->len - r->pos < n) {
        ptrdiff_t got = fill(r);
        if (got < 0)
            return got;
        if (got == 0)
            break;
    }
    *p = r->buf + r->pos;
    return (ptrdiff_t)(r->len - r->pos < n ? r->len - r->pos : n);
}

ptrdiff_t age_reader_read(age_reader *r, void *p, size_t n)
{
    unsigned char *o = p;
    size_t done = 0;
    while (done < n) {
        size_t have = r->len - r->pos;
        if (have) {
            size_t k = have < n - done ? have : n - done;
            memcpy(o + done, r->buf + r->pos, k);
            r->pos += k;
            done += k;
            continue;
        }
        if (r->rc)
            return r->rc;
        if (r->eof)
            break;
        if (n - done >= r->cap) {
            /* Large reads bypass the buffer. */
            ptrdiff_t got = r->src->read(r->src->ctx, o + done, n - done);
            if (got < 0)
                return r->rc = (int)got;
            if (got == 0)
                r->eof = 1;
            done += (size_t)got;
            continue;
        }
        ptrdiff_t got = fill(r);
        if (got < 0)
            return got;
    }
    return (ptrdiff_t)done;
}

ptrdiff_t age_reader_line(age_reader *r, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        unsigned char *start = r->buf + r->pos;
        size_t have = r->len - r->pos;
        unsigned char *nl = memchr(start, '\n', have);
        size_t k = nl ? (size_t)(nl - start) + 1 : have;
        if (n + k > cap)
            return -1;
        memcpy(line + n, start, k);
        n += k;
        r->pos += k;
        if (nl)
            return (ptrdiff_t)n;
        ptrdiff_t got = fill(r);
        if (got < 0)
            return got;
        if (got == 0 && r->len == r->pos)
            return (ptrdiff_t)n;
    }
}

static ptrdiff_t mem_read(void *ctx, void *buf, size_t n)
{
    age_mem_source *m = ctx;
    size_t k = m->n - m->pos < n ? m->n - m->pos : n;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ptrdiff_t)k;
}

dimple_source age_mem_source_make(age_mem_source *m, const void *p, size_t n)
{
    dimple_source s;
    m->p = p;
    m->n = n;
    m->pos = 0;
    s.read = mem_read;
    s.ctx = m;
    return s;
}

int age_buf_add(age_buf *b, const void *p, size_t n)
{
    if (!n)
        return DIMPLE_OK;
    if (b->limit && b->n + n > b->limit)
        return DIMPLE_ECORRUPT;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q)
            return DIMPLE_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return DIMPLE_OK;
}

void age_buf_free(age_buf *b)
{
    if (b->p)
        age_wipe(b->p, b->cap);
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static int buf_write(void *ctx, const void *p, size_t n)
{
    return age_buf_add(ctx, p, n);
}

dimple_sink age_buf_sink(age_buf *b)
{
    dimple_sink s;
    s.write = buf_write;
    s.ctx = b;
    return s;
}
