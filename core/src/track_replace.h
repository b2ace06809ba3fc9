/*
 * track_replace.h — logging the deletes of OR REPLACE, which fire no
 * DELETE trigger (track_replace.c says how and why). Part of the tracking
 * module: only track_*.c include it.
 */
#ifndef DIMPLE_TRACK_REPLACE_H
#define DIMPLE_TRACK_REPLACE_H

#include "internal.h"
#include "pack.h"

struct dimple_replace;

/* Start noting deletes (dimple_replace__row, registered with rowhook.c)
 * into *notes, created
 * here when NULL (the tracking state keeps it; dimple_track__replace()
 * hands it back). */
int dimple_replace__install(dimple *db, struct dimple_replace **notes);
/* The preupdate hook's part for tracking (a dimple_rowhook_fn). */
void dimple_replace__row(dimple *db, sqlite3 *s, int op, const char *zdb,
                         const char *ztab);
/* The AFTER DELETE trigger logged this row: its note is done. */
void dimple_replace__taken(dimple *db, int64_t t, const dimple_pbuf *key);
/* Log every note left (a delete without a trigger) through log(), for
 * rows that are gone; called before a tracked insert or update is logged.
 * Fails when a note could not be taken (out of memory). */
typedef int dimple_replace_log_fn(dimple *db, int64_t t,
                                  const dimple_pbuf *key);
int dimple_replace__flush(dimple *db, dimple_replace_log_fn *log);
/* Drop every note (the writes of a migration are not tracked). */
void dimple_replace__forget(dimple *db);
void dimple_replace__free(struct dimple_replace *r);

#endif /* DIMPLE_TRACK_REPLACE_H */
