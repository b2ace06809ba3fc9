/* b64.c — strict canonical base64; see b64.h. */
#include "b64.h"

#include <stdint.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value(unsigned char c)
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

size_t age_b64_enc_len(size_t n, int pad)
{
    if (pad)
        return (n + 2) / 3 * 4;
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void age_b64_encode(const unsigned char *in, size_t n, char *out, int pad)
{
    size_t i = 0;
    char *o = out;
    for (; i + 3 <= n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        if (pad) {
            *o++ = '=';
            *o++ = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        if (pad)
            *o++ = '=';
    }
    *o = '\0';
}

int age_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                   size_t *outlen, int pad)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t data = len, n = 0, i;
    uint32_t acc = 0;
    int bits = 0;

    if (pad) {
        if (len % 4)
            return -1;
        if (len >= 1 && s[len - 1] == '=')
            data--;
        if (len >= 2 && s[len - 2] == '=')
            data--;
    }
    if (data % 4 == 1)
        return -1;
    /* Each 4 chars give 3 bytes; a tail of 2 or 3 chars gives 1 or 2. */
    if (data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0) > cap)
        return -1;
    for (i = 0; i < data; i++) {
        int v = value(s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Canonical: the unused low bits of the last char are zero. */
    if (acc != 0)
        return -1;
    *outlen = n;
    return 0;
}
