/*
 * batch_impl.h — what the batch writer (batch.c) and reader (batch_read.c)
 * share (internal to those two files).
 */
#ifndef DIMPLE_BATCH_IMPL_H
#define DIMPLE_BATCH_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* |v| below: exact as a JSON number */
#define DIMPLE_BATCH_SAFE_INT ((int64_t)1 << 53)

/* Where a decode error is reported: "<what> <name>: <message>". */
typedef struct dec {
    const char *what; /* "batch" or "format marker" */
    const char *name;
    char *err;
    size_t errlen;
} dec;

/* Format the message into d->err; return code. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int dimple_batch__dec_err(dec *d, int code, const char *fmt, ...);

/* Length of the UTF-8 sequence at s (avail bytes), 0 if it is not one. */
size_t dimple_batch__utf8_one(const unsigned char *s, size_t avail);

#endif /* DIMPLE_BATCH_IMPL_H */
