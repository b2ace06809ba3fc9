/*
 * base64.c — standard base64 (RFC 4648, with padding), strict on decode:
 * only the canonical text of a value is accepted, so one value has one
 * text form (the batch format and JSON blobs rely on it). No dependencies,
 * so the batch codec's tests and fuzzer link it alone.
 */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t dimple_base64__encode_into(char *out, const void *p, size_t n)
{
    const unsigned char *s = p;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = b64[w >> 18];
        *o++ = b64[(w >> 12) & 63];
        *o++ = b64[(w >> 6) & 63];
        *o++ = b64[w & 63];
    }
    if (n - i == 1) {
        uint32_t w = (uint32_t)s[i] << 16;
        *o++ = b64[w >> 18];
        *o++ = b64[(w >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = b64[w >> 18];
        *o++ = b64[(w >> 12) & 63];
        *o++ = b64[(w >> 6) & 63];
        *o++ = '=';
    }
    return (size_t)(o - out);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ptrdiff_t dimple_base64__decode_into(const char *s, size_t n,
                                     unsigned char *out)
{
    size_t o = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad) /* data after '=' */
                return -1;
            if ((v[k] = b64val(c)) < 0)
                return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return -1; /* non-zero pad bits: not the canonical encoding */
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return (ptrdiff_t)o;
}

int dimple_base64__decode(const char *s, size_t len, unsigned char **out,
                          size_t *n)
{
    unsigned char *r = malloc(len / 4 * 3 + 1);
    ptrdiff_t got;
    *out = NULL;
    *n = 0;
    if (!r)
        return DIMPLE_ENOMEM;
    if ((got = dimple_base64__decode_into(s, len, r)) < 0) {
        free(r);
        return DIMPLE_ECORRUPT;
    }
    *out = r;
    *n = (size_t)got;
    return DIMPLE_OK;
}
