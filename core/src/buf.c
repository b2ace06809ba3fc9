/*
 * buf.c — the core's growable memory: one overflow-checked way to grow an
 * array, and the byte buffer built on it (see buf.h).
 */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int dimple__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 16;
    void *q;
    if (need <= *cap)
        return DIMPLE_OK;
    if (elem == 0 || need > SIZE_MAX / elem)
        return DIMPLE_ENOMEM;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    if (n > SIZE_MAX / elem)
        n = need; /* doubling overshot what size_t holds: take just enough */
    q = realloc(*p, n * elem);
    if (!q)
        return DIMPLE_ENOMEM;
    *p = q;
    *cap = n;
    return DIMPLE_OK;
}

int dimple_buf__reserve(dimple_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->n)
        return DIMPLE_ENOMEM;
    return dimple__grow((void **)&b->p, &b->cap, b->n + extra + 1, 1);
}

int dimple_buf__append(dimple_buf *b, const void *p, size_t n)
{
    int rc;
    if (!n)
        return DIMPLE_OK;
    if ((rc = dimple_buf__reserve(b, n)) < 0)
        return rc;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0; /* always NUL-terminated: text users need no copy */
    return DIMPLE_OK;
}

void dimple_buf__free(dimple_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static int buf_write(void *ctx, const void *p, size_t n)
{
    return dimple_buf__append(ctx, p, n);
}

dimple_sink dimple_buf__sink(dimple_buf *b)
{
    dimple_sink s = {buf_write, b};
    return s;
}
