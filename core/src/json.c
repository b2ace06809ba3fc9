/*
 * json.c — JSON text for SQLite values and rows (see json.h), written by
 * hand rather than through cJSON because cJSON keeps numbers as doubles:
 * 64-bit integers and "1.0 stays REAL" need exact control of the text.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_SAFE_INT 9007199254740992LL /* 2^53 */

static int put(dimple_buf *b, const char *s)
{
    return dimple_buf__append(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int dimple_json__str(dimple_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    int rc;
    if ((rc = put(b, "\"")) < 0)
        return rc;
    while (i < n) {
        const char *esc = NULL;
        char tmp[8];
        size_t len;
        unsigned char c = p[i];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
            }
        }
        len = esc ? 1 : utf8_len(p + i, n - i);
        if (!esc && len == 0) {
            esc = "\xEF\xBF\xBD"; /* U+FFFD for an invalid byte */
            len = 1;
        }
        if (esc) {
            if ((rc = dimple_buf__append(b, p + i - run, run)) < 0 ||
                (rc = put(b, esc)) < 0)
                return rc;
            run = 0;
            i += len;
        } else {
            run += len;
            i += len;
        }
    }
    if ((rc = dimple_buf__append(b, p + i - run, run)) < 0)
        return rc;
    return put(b, "\"");
}

void dimple_json__real(double d, char out[32])
{
    if (isinf(d)) {
        strcpy(out, d > 0 ? "1e999" : "-1e999");
        return;
    }
    if (isnan(d)) { /* SQLite stores NaN as NULL; be safe anyway */
        strcpy(out, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (!strpbrk(out, ".eEn"))
        strcat(out, ".0");
}

int dimple_json__value(dimple_buf *b, const dimple_value *v)
{
    char tmp[40];
    int rc;
    switch (v->type) {
    case DIMPLE_INTEGER:
        if (v->i > JSON_SAFE_INT || v->i < -JSON_SAFE_INT)
            snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)v->i);
        else
            snprintf(tmp, sizeof tmp, "%lld", (long long)v->i);
        return put(b, tmp);
    case DIMPLE_REAL:
        dimple_json__real(v->r, tmp);
        return put(b, tmp);
    case DIMPLE_TEXT:
        return dimple_json__str(b, v->p ? v->p : "", v->n);
    case DIMPLE_BLOB:
        if ((rc = put(b, "{\"$blob\":\"")) < 0 ||
            (rc = dimple_base64__encode(b, v->p, v->n)) < 0)
            return rc;
        return put(b, "\"}");
    case DIMPLE_NULL:
    default:
        return put(b, "null");
    }
}

int dimple_json__row(dimple_buf *b, size_t n, const char *const *names,
                     const dimple_value *values)
{
    int rc;
    if ((rc = put(b, "{")) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i] ? names[i] : "";
        if ((i && (rc = put(b, ",")) < 0) ||
            (rc = dimple_json__str(b, name, strlen(name))) < 0 ||
            (rc = put(b, ":")) < 0 ||
            (rc = dimple_json__value(b, &values[i])) < 0)
            return rc;
    }
    return put(b, "}");
}

int dimple_base64__encode(dimple_buf *b, const void *p, size_t n)
{
    int rc = dimple_buf__reserve(b, (n + 2) / 3 * 4);
    if (rc < 0)
        return rc;
    b->n += dimple_base64__encode_into((char *)b->p + b->n, p, n);
    b->p[b->n] = 0;
    return DIMPLE_OK;
}
