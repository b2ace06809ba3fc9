/*
 * s3_uri.c — growable buffers and strict RFC 3986 encoding.
 *
 * S3 signs the path and query exactly as sent, so they are encoded once,
 * here, the way SigV4 wants them: every byte but A-Z a-z 0-9 - . _ ~ as
 * uppercase %XX ('/' kept in paths). Never '+' for a space: R2 and others
 * read it as a plus.
 */
#include "s3.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void s3_buf_free(s3_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

void s3_buf_reset(s3_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int grow(s3_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return -1;
    }
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int s3_buf_add(s3_buf *b, const void *p, size_t n)
{
    if (grow(b, n))
        return -1;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int s3_buf_adds(s3_buf *b, const char *s)
{
    return s3_buf_add(b, s, strlen(s));
}

int s3_buf_addc(s3_buf *b, char c)
{
    return s3_buf_add(b, &c, 1);
}

int s3_buf_addf(s3_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || grow(b, (size_t)n)) {
        b->oom = 1;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

int s3_uri_encode(s3_buf *b, const char *s, size_t n, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    if (grow(b, n * 3))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            b->p[b->len++] = (char)c;
        } else {
            b->p[b->len++] = '%';
            b->p[b->len++] = digits[c >> 4];
            b->p[b->len++] = digits[c & 15];
        }
    }
    b->p[b->len] = '\0';
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int s3_uri_decode(s3_buf *out, const char *s, size_t n)
{
    s3_buf_reset(out);
    if (grow(out, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        out->p[out->len++] = c;
    }
    out->p[out->len] = '\0';
    return 0;
}

typedef struct enc_param {
    char *name;
    char *value;
} enc_param;

static int cmp_param(const void *a, const void *b)
{
    const enc_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

int s3_query_build(s3_buf *out, const s3_param *params, size_t n)
{
    enc_param *e = calloc(n ? n : 1, sizeof *e);
    int rc = DIMPLE_ENOMEM;
    if (!e)
        return rc;
    for (size_t i = 0; i < n; i++) {
        s3_buf nb = {0}, vb = {0};
        s3_uri_encode(&nb, params[i].name, strlen(params[i].name), 0);
        s3_uri_encode(&vb, params[i].value, strlen(params[i].value), 0);
        s3_buf_add(&nb, "", 0); /* NUL-terminated even when empty */
        s3_buf_add(&vb, "", 0);
        e[i].name = nb.p;
        e[i].value = vb.p;
        if (nb.oom || vb.oom)
            goto out;
    }
    qsort(e, n, sizeof *e, cmp_param);
    s3_buf_reset(out);
    s3_buf_add(out, "", 0);
    for (size_t i = 0; i < n; i++)
        s3_buf_addf(out, "%s%s=%s", i ? "&" : "", e[i].name, e[i].value);
    rc = out->oom ? DIMPLE_ENOMEM : DIMPLE_OK;
out:
    for (size_t i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].value);
    }
    free(e);
    return rc;
}
