/* bech32.c — Bech32 for age keys; see bech32.h. */
#include "bech32.h"

#include <stdint.h>
#include <string.h>

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t polymod_step(uint32_t chk, unsigned v)
{
    static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
                                    0x3d4233dd, 0x2a1462b3};
    uint32_t b = chk >> 25;
    chk = (chk & 0x1ffffff) << 5 ^ v;
    for (int i = 0; i < 5; i++)
        if (b >> i & 1)
            chk ^= gen[i];
    return chk;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static uint32_t hrp_polymod(const char *hrp, size_t n)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (unsigned)lower((unsigned char)hrp[i]) >> 5);
    chk = polymod_step(chk, 0);
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (unsigned)lower((unsigned char)hrp[i]) & 31);
    return chk;
}

int age_bech32_encode(const char *hrp, const unsigned char *data, size_t len,
                      char *out, size_t cap)
{
    size_t hn = strlen(hrp), n5 = (len * 8 + 4) / 5, o = 0;
    int upper = 0;
    uint32_t chk, acc = 0;
    int bits = 0;

    if (hn == 0 || hn + 1 + n5 + 6 + 1 > cap)
        return -1;
    for (size_t i = 0; i < hn; i++) {
        unsigned char c = (unsigned char)hrp[i];
        if (c < 33 || c > 126)
            return -1;
        if (c >= 'A' && c <= 'Z')
            upper = 1;
        out[o++] = (char)c;
    }
    out[o++] = '1';
    chk = hrp_polymod(hrp, hn);
    for (size_t i = 0; i < len; i++) {
        acc = acc << 8 | data[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            unsigned v = acc >> bits & 31;
            chk = polymod_step(chk, v);
            out[o++] = charset[v];
        }
    }
    if (bits) {
        unsigned v = acc << (5 - bits) & 31;
        chk = polymod_step(chk, v);
        out[o++] = charset[v];
    }
    for (int i = 0; i < 6; i++)
        chk = polymod_step(chk, 0);
    chk ^= 1;
    for (int i = 0; i < 6; i++)
        out[o++] = charset[chk >> (5 * (5 - i)) & 31];
    out[o] = '\0';
    if (upper)
        for (size_t i = 0; i < o; i++)
            if (out[i] >= 'a' && out[i] <= 'z')
                out[i] = (char)(out[i] - 32);
    return 0;
}

int age_bech32_decode(const char *s, char *hrp, size_t hrp_cap,
                      unsigned char *data, size_t data_cap, size_t *len)
{
    size_t n = strlen(s), sep = 0, o = 0;
    int has_lower = 0, has_upper = 0;
    uint32_t chk, acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126)
            return -1;
        if (c >= 'a' && c <= 'z')
            has_lower = 1;
        if (c >= 'A' && c <= 'Z')
            has_upper = 1;
        if (c == '1')
            sep = i;
    }
    if (has_lower && has_upper)
        return -1;
    /* At least one hrp char, and six checksum chars after the separator. */
    if (sep < 1 || sep + 7 > n || sep + 1 > hrp_cap)
        return -1;
    memcpy(hrp, s, sep);
    hrp[sep] = '\0';
    chk = hrp_polymod(s, sep);
    for (size_t i = sep + 1; i < n; i++) {
        const char *p = strchr(charset, lower((unsigned char)s[i]));
        if (!p || !*p)
            return -1;
        unsigned v = (unsigned)(p - charset);
        chk = polymod_step(chk, v);
        if (i + 6 < n) { /* a data char, not part of the checksum */
            acc = acc << 5 | v;
            bits += 5;
            if (bits >= 8) {
                bits -= 8;
                if (o >= data_cap)
                    return -1;
                data[o++] = (unsigned char)(acc >> bits);
                acc &= (1u << bits) - 1;
            }
        }
    }
    if (chk != 1)
        return -1;
    /* Padding: fewer than 5 leftover bits, all zero. */
    if (bits >= 5 || acc != 0)
        return -1;
    *len = o;
    return 0;
}
