/* clock.c — UUIDv7 ids as a hybrid logical clock (see clock.h). */
#include "clock.h"

#include "dimple.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t dimple_clock__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t dimple_clock__at(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    return ((uint64_t)ms & 0xffffffffffffULL) << 16 | 0x7000;
}

int64_t dimple_clock__ms(uint64_t hi)
{
    return (int64_t)(hi >> 16);
}

uint64_t dimple_clock__from_ms(int64_t ms)
{
    return ms > 0 ? (uint64_t)ms << 16 : 0;
}

uint64_t dimple_clock__after_ms(int64_t ms)
{
    return ((uint64_t)ms + 1) << 16;
}

uint64_t dimple_clock__next(uint64_t last, int64_t now_ms)
{
    uint64_t next = last + 1;
    /* the counter has 12 bits: past 0xfff, borrow the next millisecond */
    if ((next & 0xf000) != 0x7000)
        next = dimple_clock__at(dimple_clock__ms(last) + 1);
    uint64_t now = dimple_clock__at(now_ms);
    return now > next ? now : next;
}

uint64_t dimple_id__hi(const uint8_t id[16])
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | id[k];
    return v;
}

uint64_t dimple_id__lo(const uint8_t id[16])
{
    uint64_t v = 0;
    for (int k = 8; k < 16; k++)
        v = v << 8 | id[k];
    return v;
}

void dimple_id__make(uint8_t id[16], uint64_t hi, uint64_t lo)
{
    for (int k = 0; k < 8; k++) {
        id[k] = (uint8_t)(hi >> (56 - 8 * k));
        id[8 + k] = (uint8_t)(lo >> (56 - 8 * k));
    }
}

void dimple_uuid__v7(uint8_t out[16])
{
    uint8_t rnd[10];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t r = getrandom(rnd + got, sizeof rnd - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < sizeof rnd) {
        /* getrandom cannot fail on Linux >= 3.17 for 10 bytes; keep going
         * with the clock's bits rather than zeros if it ever does */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x =
            (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
        for (size_t k = got; k < sizeof rnd;
             k++, x = x * 6364136223846793005ULL + 1)
            rnd[k] = (uint8_t)(x >> 56);
    }
    uint64_t hi = dimple_clock__at(dimple_clock__now_ms()) |
                  (((uint64_t)rnd[0] << 8 | rnd[1]) & 0x0fff);
    uint64_t lo = 0;
    for (int k = 2; k < 10; k++)
        lo = lo << 8 | rnd[k];
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; /* variant 10 */
    dimple_id__make(out, hi, lo);
}

void dimple_uuid__format(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int k = 0; k < 16; k++) {
        if (k == 4 || k == 6 || k == 8 || k == 10)
            out[o++] = '-';
        out[o++] = hex[id[k] >> 4];
        out[o++] = hex[id[k] & 15];
    }
    out[o] = 0;
}

/* Hex digit value + 1, 0 for anything else; uppercase A-F carries 0x20
 * so the canonical check is one bit. A table: the sync reader parses an
 * id per change pulled. */
static const uint8_t hex1[256] = {
    ['0'] = 1,    ['1'] = 2,    ['2'] = 3,    ['3'] = 4,    ['4'] = 5,
    ['5'] = 6,    ['6'] = 7,    ['7'] = 8,    ['8'] = 9,    ['9'] = 10,
    ['a'] = 11,   ['b'] = 12,   ['c'] = 13,   ['d'] = 14,   ['e'] = 15,
    ['f'] = 16,   ['A'] = 0x2b, ['B'] = 0x2c, ['C'] = 0x2d, ['D'] = 0x2e,
    ['E'] = 0x2f, ['F'] = 0x30};

int dimple_uuid__parse_n(const char *s, size_t n, uint8_t out[16],
                         unsigned flags)
{
    /* where each byte's two digits start in 8-4-4-4-12 */
    static const uint8_t at[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                   19, 21, 24, 26, 28, 30, 32, 34};
    uint8_t id[16];
    unsigned upper = 0;
    if (!s || n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' ||
        s[23] != '-')
        return DIMPLE_EINVAL;
    for (int j = 0; j < 16; j++) {
        unsigned hi = hex1[(unsigned char)s[at[j]]];
        unsigned lo = hex1[(unsigned char)s[at[j] + 1]];
        if (!hi || !lo)
            return DIMPLE_EINVAL;
        upper |= (hi | lo) & 0x20;
        id[j] = (uint8_t)(((hi - 1) & 15) << 4 | ((lo - 1) & 15));
    }
    if ((flags & DIMPLE_UUID_CANONICAL) && upper)
        return DIMPLE_EINVAL;
    if ((flags & DIMPLE_UUID_V7) &&
        ((id[6] >> 4) != 7 || (id[8] & 0xc0) != 0x80))
        return DIMPLE_EINVAL;
    memcpy(out, id, 16);
    return DIMPLE_OK;
}

int dimple_uuid__parse(const char *text, uint8_t out[16])
{
    return dimple_uuid__parse_n(text, text ? strlen(text) : 0, out, 0);
}
