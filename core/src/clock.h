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

/* The next clock value after last, not below now_ms: counter + 1 within a
 * millisecond, rolling into the next millisecond after 4095. */
uint64_t dimple_clock__next(uint64_t last, int64_t now_ms);

/* Big-endian halves of an id. */
uint64_t dimple_id__hi(const uint8_t id[16]);
uint64_t dimple_id__lo(const uint8_t id[16]);
void dimple_id__make(uint8_t id[16], uint64_t hi, uint64_t lo);

/* A fresh random UUIDv7 for now (authors, mapping keys). */
void dimple_uuid__v7(uint8_t out[16]);

/* UUID text <-> bytes: "0190f5c2-7a8b-7c3d-8e9f-0123456789ab" (36 chars,
 * lowercase). parse returns DIMPLE_OK or DIMPLE_EINVAL. */
void dimple_uuid__format(const uint8_t id[16], char out[37]);
int dimple_uuid__parse(const char *text, uint8_t out[16]);

#endif /* DIMPLE_CLOCK_H */
