/*
 * buf.h — growable memory for the core (internal): one overflow-checked
 * array growth, and a byte buffer that is always NUL-terminated. The
 * bottom of the module graph: needs nothing but the SDK's dimple_sink.
 */
#ifndef DIMPLE_BUF_H
#define DIMPLE_BUF_H

#include <dimple/plugin.h>
#include <stddef.h>

/* Make *p hold at least need elements of elem bytes: doubles *cap (from
 * 16) until it does, checking every multiplication. On failure *p and
 * *cap are unchanged and DIMPLE_ENOMEM is returned (the caller's array
 * stays valid). */
int dimple__grow(void **p, size_t *cap, size_t need, size_t elem);

/* A growable byte buffer (core-owned). */
typedef struct dimple_buf {
    unsigned char *p;
    size_t n, cap;
} dimple_buf;

int dimple_buf__append(dimple_buf *b, const void *p, size_t n);
/* Make room for extra more bytes (and the NUL kept after them). */
int dimple_buf__reserve(dimple_buf *b, size_t extra);
void dimple_buf__free(dimple_buf *b);
/* A sink that appends to a dimple_buf (ctx = the buf). */
dimple_sink dimple_buf__sink(dimple_buf *b);

#endif /* DIMPLE_BUF_H */
