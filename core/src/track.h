/*
 * track.h — the change-tracking module as the rest of the core sees it
 * (internal): the change log for sync, live queries and history, the
 * tracked tables' shapes, names and authors, and the one merge rule.
 *
 * Implemented by track.c and track_*.c (their shared state is in
 * track_impl.h, which no other core file includes); clock.c holds the id
 * arithmetic. Ids are UUIDv7 as 16 raw bytes; byte order = time order
 * (memcmp).
 */
#ifndef DIMPLE_TRACK_H
#define DIMPLE_TRACK_H

#include "clock.h"
#include "err.h"
#include "internal.h"
#include "pack.h"

#include <stdbool.h>

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
 * per-cell clock rule as local writes; docs/tracking.md). The caller holds a
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

/* Is change tracking set up on db (its metadata tables exist)? */
bool dimple_track__ready(dimple *db);

/* This database's author id as text, or NULL (not set up, or a read-only
 * database without one). Valid until the author changes or db closes. */
const char *dimple_track__author_text(dimple *db);

/* A tracked table as the schema shows it (read-only for other modules;
 * valid until the next refresh). */
typedef struct dimple_ttable {
    int64_t tid; /* interned name id */
    char *name;
    size_t n_cols; /* writable columns in table order */
    int64_t *cid;  /* interned column name ids */
    char **cname;
    bool *is_key;
    size_t n_key;
    size_t *key_col; /* column index of each key part, in key order */
    int *pre_col;    /* each column as sqlite3_preupdate_old() numbers it */
} dimple_ttable;

/* The tracked table with that name (case-insensitive), or NULL. */
const dimple_ttable *dimple_track__table(dimple *db, const char *name);
/* The tracked table with that interned id, or NULL. */
const dimple_ttable *dimple_track__table_by_tid(dimple *db, int64_t tid);
/* Does tt hold a row with this packed key? (Uses the merge scratch: not
 * during a merge.) */
int dimple_track__row_exists(dimple *db, const dimple_ttable *tt,
                             const dimple_pbuf *key, bool *out);

/* The name of an interned id, or NULL. */
const char *dimple_track__name(dimple *db, int64_t id);
/* The interned id of name (case-insensitive) without interning it, or 0
 * when the log has never named it. */
int64_t dimple_track__name_id(dimple *db, const char *name);
/* The UUID of an author idx, or NULL. */
const uint8_t *dimple_track__author_uuid(dimple *db, int64_t idx);
/* An author's idx, or 0 when unknown. */
int64_t dimple_track__author_idx(dimple *db, const uint8_t uuid[16]);
/* The 16-byte id of a log row from its columns seq, author, id. */
void dimple_track__row_id(dimple *db, int64_t seq, int64_t author,
                          const void *id_blob, int id_len, uint8_t out[16]);

/* The merge rule for one cell: which of two versions wins. current and
 * incoming carry table, column, id, author (UUID text) and value; the
 * configured resolver decides (the one the merge calls), or without one
 * the greater id wins. *take is true when incoming wins. A resolver's
 * failure or refused answer is an error set on db. */
int dimple_track__resolve(dimple *db, const dimple_cell *current,
                          const dimple_cell *incoming, bool *take);

/* Sync, as a run begins: local changes with ids up to pushed (NULL: none)
 * have left this database. A pulled change that wins a cell over a later
 * local write (one nobody else has seen) is logged as a warning. */
void dimple_track__sync_begin(dimple *db, const uint8_t *pushed);

/* Bring the per-cell clock up to date with every logged change. */
int dimple_track__fold(dimple *db);

/* Author remedies for a copied database file (history.h's API). */
int dimple_track__author_reset(dimple *db);
int dimple_track__author_keep(dimple *db);

/* For track_replace.c: are local writes being logged now (tracking set up, no
 * merge writing user tables, no migration running)? */
bool dimple_track__logging(dimple *db);
/* track_replace.c's notes of trigger-less deletes, kept with db's tracking
 * state (created at open, freed at close), or NULL. */
struct dimple_replace *dimple_track__replace(dimple *db);

/*
 * The module's hooks, called by dimple.c (open after db.c opened the
 * connection, close before it closes it; a failed open is still closed,
 * so close accepts a partly opened module) and by migrate.c.
 */
int dimple_track__open(dimple *db);
void dimple_track__close(dimple *db);
/* Create or refresh the triggers of every synced table (dimple.c also
 * installs it as db->on_ddl: DDL through dimple_exec is tracked at once). */
int dimple_track__refresh(dimple *db);
/* Migrations (migrate.c): call after BEGIN of each migration, before its
 * SQL. Drops the tracking triggers inside that transaction so the
 * migration may ALTER TABLE ... DROP COLUMN a synced column (SQLite
 * refuses to drop a column a trigger names); dimple_track__refresh
 * recreates them. Best called before that migration's COMMIT too (then no
 * write from another connection can slip in untracked between the two).
 * Writes made by the migration itself are not tracked: every replica runs
 * the same migrations (rows of newly tracked tables are adopted, see
 * docs/tracking.md). */
int dimple_track__migration_begin(dimple *db);
/* After a migration, committed or not: tracking of every write resumes. */
void dimple_track__migration_end(dimple *db);

#endif /* DIMPLE_TRACK_H */
