/*
 * track.h — the change log as the sync engine sees it (internal).
 *
 * Owned by the change-tracking module (track.c, clock.c, history.c); used by
 * sync.c. Ids are UUIDv7 as 16 raw bytes; byte order = time order (memcmp).
 */
#ifndef DIMPLE_TRACK_H
#define DIMPLE_TRACK_H

#include "internal.h"

typedef enum dimple_op {
    DIMPLE_OP_INSERT = 1,
    DIMPLE_OP_UPDATE = 2,
    DIMPLE_OP_DELETE = 3 /* a row tombstone: n_cols == 0 */
} dimple_op;

/* One change: what one write did to one row. All pointers are borrowed. */
typedef struct dimple_change {
    uint8_t id[16];     /* UUIDv7: the change's clock, unique */
    uint8_t author[16]; /* the author's UUID */
    const char *table;
    dimple_op op;
    size_t n_key; /* primary-key values in the table's key order */
    const dimple_value *key;
    size_t n_cols; /* the columns this change wrote */
    const char *const *col_names;
    const dimple_value *cols;
} dimple_change;

typedef int (*dimple_change_cb)(void *payload, const dimple_change *c);

/* This replica's own changes with id > after (after NULL: all), in id order,
 * one at a time (nothing loads the whole log). cb's non-zero return stops
 * the walk and is returned. */
int dimple_track__each_local(dimple *db, const uint8_t *after,
                             dimple_change_cb cb, void *payload);

/* Apply changes from other authors through the one merge path (the same
 * per-cell clock rule as local writes; DESIGN §3, §5). The caller holds a
 * write transaction (BEGIN IMMEDIATE ... COMMIT) and commits it together
 * with its own bookkeeping (the sync cursor). Idempotent: a change whose id
 * is already held is ignored. Changes for unknown tables or columns are
 * kept and applied when a migration adds them. Moves the local clock up to
 * the newest id seen (bounded by the configured maximum skew). */
int dimple_track__apply(dimple *db, const dimple_change *changes, size_t n);

/* Every change appended to the local log (local writes and applied remote
 * changes) after *seq, in append order; *seq advances past each one given
 * to cb. Start with *seq = dimple_track__last_seq() to skip history. For
 * live queries and notifiers (origin "local" when author == ours). */
int dimple_track__each_since(dimple *db, int64_t *seq, dimple_change_cb cb,
                             void *payload);
int64_t dimple_track__last_seq(dimple *db);

/* This database's author id. */
int dimple_track__author(dimple *db, uint8_t out[16]);

/* UUID text <-> bytes: "0190f5c2-7a8b-7c3d-8e9f-0123456789ab" (36 chars,
 * lowercase). parse returns DIMPLE_OK or DIMPLE_EINVAL. */
void dimple_uuid__format(const uint8_t id[16], char out[37]);
int dimple_uuid__parse(const char *text, uint8_t out[16]);

#endif /* DIMPLE_TRACK_H */
