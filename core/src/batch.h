/*
 * batch.h — the remote batch format v1 (docs/FORMAT.md): encode a run of
 * one author's changes into a JSON object, decode and validate one.
 *
 * Self-contained on purpose (no handle, no storage): the fuzz target and
 * the unit tests link batch.c alone. Errors come back as a negative
 * DIMPLE_E* code and a message in a caller-given buffer; sync.c puts it on
 * the handle with the object's key.
 */
#ifndef DIMPLE_BATCH_H
#define DIMPLE_BATCH_H

#include "track.h"

#include <stddef.h>
#include <stdint.h>

#define DIMPLE_BATCH_FORMAT 1 /* major version written and read */
#define DIMPLE_BATCH_FORMAT_MINOR 0
#define DIMPLE_BATCH_MAX_OBJECT ((size_t)64 << 20) /* reader: object bytes */
#define DIMPLE_BATCH_MAX_CHANGES 100000            /* reader: per batch */
#define DIMPLE_BATCH_MAX_VALUE ((size_t)32 << 20)  /* one decoded value */
#define DIMPLE_BATCH_MAX_NAME 1024                 /* table, column bytes */
#define DIMPLE_BATCH_MAX_KEY 64                    /* key values */
#define DIMPLE_BATCH_MAX_COLS 32767                /* columns per change */

/* Writer defaults ([sync] batch_max_changes, batch_max_bytes). */
#define DIMPLE_BATCH_DEFAULT_CHANGES 5000
#define DIMPLE_BATCH_DEFAULT_BYTES ((size_t)1 << 20)

/* dimple_batch__enc_add: the change does not fit; finish this batch and
 * start the next one with it. */
#define DIMPLE_BATCH_FULL 1

typedef struct dimple_batch_enc {
    char *p; /* the object so far (complete after enc_finish) */
    size_t n, cap;
    size_t count;       /* changes in this batch */
    uint8_t author[16]; /* every change must carry it */
    uint8_t first[16];  /* id of the first change (valid if count) */
    uint8_t last[16];   /* id of the last change (valid if count) */
    size_t max_changes, max_bytes;
    int finished;
    char err[512]; /* message of the last failure */
} dimple_batch_enc;

/* Start an empty batch for author. max_changes/max_bytes 0: defaults;
 * both are capped at the reader's limits. */
void dimple_batch__enc_init(dimple_batch_enc *e, const uint8_t author[16],
                            size_t max_changes, size_t max_bytes);
/* Append c (ids must increase). Returns DIMPLE_OK, DIMPLE_BATCH_FULL (not
 * added: the batch holds something and c would pass a limit), or a
 * negative code with e->err set (c cannot be encoded, e.g. a value over
 * DIMPLE_BATCH_MAX_VALUE or a NaN). A change alone over max_bytes is added
 * to an empty batch (it goes alone). */
int dimple_batch__enc_add(dimple_batch_enc *e, const dimple_change *c);
/* Close the object: e->p/e->n then hold the batch. count must be > 0. */
int dimple_batch__enc_finish(dimple_batch_enc *e);
/* Empty the batch for reuse (keeps the buffer). */
void dimple_batch__enc_reset(dimple_batch_enc *e);
void dimple_batch__enc_free(dimple_batch_enc *e);

/* A decoded batch. changes[i] and everything they point to stay valid
 * until dimple_batch__free. */
typedef struct dimple_batch {
    uint8_t author[16];
    size_t n;
    dimple_change *changes;
    /* private */
    char *arena_; /* the strings changes point into */
    dimple_value *vals_;
    const char **names_;
} dimple_batch;

/* Parse and strictly validate json (len bytes, not NUL-terminated) as a
 * batch. want_author / want_first (may be NULL) must equal the batch's
 * author and its first change's id (they come from the object's key).
 * name prefixes err (the object's key). On failure returns DIMPLE_ECORRUPT
 * (DIMPLE_EFORMAT for a newer major format, DIMPLE_ENOMEM) with err set
 * and *out zeroed; nothing to free. */
int dimple_batch__decode(dimple_batch *out, const char *name, const void *json,
                         size_t len, const uint8_t *want_author,
                         const uint8_t *want_first, char *err, size_t errlen);
void dimple_batch__free(dimple_batch *b);

/* The text of a $int value: strict "-?(0|[1-9][0-9]*)" within int64; of a
 * $real: strict decimal "-?digits[.digits][e[+-]digits]", "inf", "-inf"
 * (finite otherwise). Return 0, or -1 with *out untouched. */
int dimple_batch__parse_int(const char *s, int64_t *out);
int dimple_batch__parse_real(const char *s, double *out);

/* UUID text: clock.h (dimple_uuid__format, dimple_uuid__parse_n with
 * DIMPLE_UUID_CANONICAL: the format holds lowercase ids only). */

/* "log/<author>/<first>.json" (+ ".age" if encrypted). out >= 96 bytes. */
void dimple_batch__key(char *out, size_t cap, const uint8_t author[16],
                       const uint8_t first[16], int encrypted);
/* Parse a batch file name "<uuid7>.json" or "<uuid7>.json.age" (the part
 * after the author's folder). Returns 0 or -1. */
int dimple_batch__parse_name(const char *file, uint8_t first[16],
                             int *encrypted);

/* Format marker (dimple.json): encode for a new store id, decode/check.
 * check returns DIMPLE_OK, DIMPLE_EFORMAT (newer major: err says so) or
 * DIMPLE_ECORRUPT. */
int dimple_batch__marker(char *out, size_t cap, const uint8_t store[16]);
int dimple_batch__marker_check(const void *json, size_t len, uint8_t store[16],
                               char *err, size_t errlen);

#endif /* DIMPLE_BATCH_H */
