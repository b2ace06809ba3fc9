/*
 * clock.h — the UUIDv7 hybrid logical clock (internal; clock.c).
 *
 * A change id is a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, the
 * version nibble 7, 12 bits of counter (rand_a), then the variant and 62
 * bits that come from the author's own UUID. The first 64 bits ("hi") are
 * the clock: monotonic per database, and the log's integer key for local
 * changes. The last 64 bits ("lo") are the author's, so ids of distinct
 * authors never tie and the order is total.
 */
#ifndef DIMPLE_CLOCK_H
#define DIMPLE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Default bound on how far ahead of our wall clock a remote id may move
 * the local clock ([dimple] max_clock_skew, milliseconds). */
#define DIMPLE_CLOCK_SKEW_DEFAULT_MS 300000

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t dimple_clock__now_ms(void);

/* The clock value of a wall time: ms << 16 | 0x7000 (counter 0). */
uint64_t dimple_clock__at(int64_t ms);
/* The millisecond part of a clock value. */
int64_t dimple_clock__ms(uint64_t hi);
/* Bounds for a time range over ids: the lowest clock value of millisecond
 * ms (0 for ms <= 0), and the lowest one after it. */
uint64_t dimple_clock__from_ms(int64_t ms);
uint64_t dimple_clock__after_ms(int64_t ms);

/* The next clock value after last, not below now_ms: counter + 1 within a
 * millisecond, rolling into the next millisecond after 4095. */
uint64_t dimple_clock__next(uint64_t last, int64_t now_ms);

/* Big-endian halves of an id. */
uint64_t dimple_id__hi(const uint8_t id[16]);
uint64_t dimple_id__lo(const uint8_t id[16]);
void dimple_id__make(uint8_t id[16], uint64_t hi, uint64_t lo);

/* A fresh random UUIDv7 for now (authors, mapping keys). */
void dimple_uuid__v7(uint8_t out[16]);

/* UUID text <-> bytes, the one rule for every id the core reads or writes
 * (RFC 9562): "0190f5c2-7a8b-7c3d-8e9f-0123456789ab", 8-4-4-4-12.
 * format writes lowercase. parse reads s[0..n) case-insensitively, as RFC
 * 9562 asks of input from people (the API, the CLI); the remote format
 * (object names, ids and authors in a batch) holds only the canonical
 * lowercase form, so its reader passes DIMPLE_UUID_CANONICAL: names must
 * compare and sort as text. Both return DIMPLE_OK or DIMPLE_EINVAL, and
 * leave out untouched on failure. */
#define DIMPLE_UUID_CANONICAL 1u /* refuse uppercase hex digits */
#define DIMPLE_UUID_V7 2u        /* refuse all but version 7, variant 10 */
void dimple_uuid__format(const uint8_t id[16], char out[37]);
int dimple_uuid__parse_n(const char *s, size_t n, uint8_t out[16],
                         unsigned flags);
/* parse_n of a NUL-terminated text, case-insensitive, any version. */
int dimple_uuid__parse(const char *text, uint8_t out[16]);

#endif /* DIMPLE_CLOCK_H */
