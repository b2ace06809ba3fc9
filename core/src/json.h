/*
 * json.h — the JSON encoding of SQLite values and rows (internal; json.c),
 * shared by dimple_json_query/dimple_json_row, the CLI and other modules.
 *
 * Encoding: INTEGER as a number, or as a string beyond +-2^53 (JavaScript's
 * exact range); REAL as a number that reads back as a real, bit-exact
 * (1.0 prints "1.0"; +-infinity as +-1e999); TEXT as a string (invalid
 * UTF-8 bytes become U+FFFD); NULL as null; BLOB as {"$blob":"<base64>"}.
 */
#ifndef DIMPLE_JSON_H
#define DIMPLE_JSON_H

#include "base64.h"
#include "buf.h" /* dimple_buf */

/* Append a JSON string literal of s[0..n) to b. */
int dimple_json__str(dimple_buf *b, const char *s, size_t n);
/* Append one value. */
int dimple_json__value(dimple_buf *b, const dimple_value *v);
/* Append one row as an object, keys in column order. */
int dimple_json__row(dimple_buf *b, size_t n, const char *const *names,
                     const dimple_value *values);
/* The shortest "%.*g" text of d that reads back bit-exact, with ".0"
 * added when it would read as an integer. out needs 32 bytes. */
void dimple_json__real(double d, char out[32]);

/* Base64 of p[0..n) appended to b (strict base64: base64.h). */
int dimple_base64__encode(dimple_buf *b, const void *p, size_t n);

#endif /* DIMPLE_JSON_H */
