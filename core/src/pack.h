/*
 * pack.h — the change log's value encoding (internal; pack.c).
 *
 * A packed value is one tag byte and a payload:
 *   0 NULL      (no payload)
 *   1 INTEGER   zigzag LEB128 varint (1..10 bytes; the full 64-bit range)
 *   2 REAL      8 bytes, the IEEE-754 bits big-endian (bit-exact, NaN too)
 *   3 TEXT      varint length + bytes (any bytes, embedded NUL included)
 *   4 BLOB      varint length + bytes
 * A key is a sequence of packed values; a column set is a sequence of
 * (varint name id, packed value). docs/tracking.md documents both.
 */
#ifndef DIMPLE_PACK_H
#define DIMPLE_PACK_H

#include <dimple/common.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dimple_pbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom; /* set once an append failed; the content is then unusable */
} dimple_pbuf;

void dimple_pbuf__reset(dimple_pbuf *b);
void dimple_pbuf__free(dimple_pbuf *b);
void dimple_pbuf__add(dimple_pbuf *b, const void *p, size_t n);
void dimple_pack__varint(dimple_pbuf *b, uint64_t v);
void dimple_pack__sqlite(dimple_pbuf *b, sqlite3_value *v);
void dimple_pack__value(dimple_pbuf *b, const dimple_value *v);

/* Read a varint at *pos; false when truncated or over-long. */
bool dimple_unpack__varint(const uint8_t *p, size_t n, size_t *pos,
                           uint64_t *out);
/* Read one value at *pos; TEXT/BLOB point into p. false when malformed. */
bool dimple_unpack__value(const uint8_t *p, size_t n, size_t *pos,
                          dimple_value *out);

/* Exact equality of two SQLite values: same type and same bytes (so 1 and
 * 1.0 differ, unlike SQL's IS). */
bool dimple_pack__same(sqlite3_value *a, sqlite3_value *b);
/* Exact equality of two dimple values. */
bool dimple_value__same(const dimple_value *a, const dimple_value *b);

/* Bind a dimple value to a statement parameter (TEXT/BLOB copied). */
int dimple_value__bind(sqlite3_stmt *st, int i, const dimple_value *v);
/* The same without the copy: the bytes must outlive the statement's next
 * step, and the caller clears the bindings after it (the merge writes:
 * copying every pulled value cost a twentieth of an apply). */
int dimple_value__bind_static(sqlite3_stmt *st, int i, const dimple_value *v);
/* A column of the current row as a dimple value (pointers valid until the
 * statement steps again). */
void dimple_value__column(sqlite3_stmt *st, int i, dimple_value *out);

#endif /* DIMPLE_PACK_H */
