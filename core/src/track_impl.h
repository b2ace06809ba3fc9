/*
 * track_impl.h — the state the change-tracking files share (track.c and
 * track_*.c include it; every other file uses track.h). struct
 * dimple_track is private to those files: what other modules need of it
 * is a function in track.h.
 *
 * Who does what:
 *   track.c         the module's life (open, close), its metadata, names
 *                   and authors, the clock, the author remedies
 *   track_stmt.c    the prepared-statement caches
 *   track_schema.c  which tables are tracked, their keys and columns, the
 *                   triggers' SQL, refresh and migrations
 *   track_log.c     writing the change log (the SQL functions the
 *                   triggers call) and walking it
 *   track_merge.c   the per-cell clock, the merge rule and the resolver,
 *                   folding local changes and applying pulled ones
 *   track_write.c   writing merged cells into the user tables
 */
#ifndef DIMPLE_TRACK_IMPL_H
#define DIMPLE_TRACK_IMPL_H

#include "pack.h"
#include "track.h"

#include <stdbool.h>

/* One entry of a row's clock: c = 0 the newest tombstone, 1 the newest
 * insert/update, name id + 1 a column's owner. */
typedef struct dimple_rcell {
    uint64_t c;
    int64_t seq; /* log row of the owning change */
    uint8_t id[16];
} dimple_rcell;

typedef struct dimple_stmt_entry {
    char *sql;
    sqlite3_stmt *st;
    struct dimple_stmt_entry *next;
} dimple_stmt_entry;

/* A merge's write statement found by its shape (kind, table, key and
 * column name ids) without formatting its SQL; st is owned by stmts[]. */
typedef struct dimple_wst_entry {
    uint8_t *key;
    size_t n;
    sqlite3_stmt *st;
    struct dimple_wst_entry *next;
} dimple_wst_entry;

struct dimple_track {
    dimple *db;
    bool ready;  /* the metadata tables exist */
    bool muted;  /* merge writing user tables: triggers do nothing */
    bool copied; /* the file identity changed: local writes refused */
    char copied_msg[512];

    uint64_t last;     /* clock: the newest hi issued or observed */
    uint64_t max_seen; /* the newest remote hi received, unbounded */
    int64_t skew_ms;   /* bound on how far a remote id moves the clock */
    int64_t offset_ms; /* tests: simulated wall-clock error */
    uint64_t data_version;
    bool dv_valid;

    int64_t me; /* our author's row in _dimple_authors */
    uint8_t author[16];
    char author_text[37];

    char **names; /* interned names by id (index 0 unused) */
    size_t n_names, cap_names;
    char **grave; /* names replaced by a reload, freed at close */
    size_t n_grave, cap_grave;
    uint8_t (*authors)[16]; /* authors by idx (index 0 unused) */
    bool *author_known;
    size_t n_authors, cap_authors;

    dimple_ttable *tables;
    size_t n_tables;

    sqlite3_stmt *log_ins;        /* the write path's one statement */
    sqlite3_stmt *log_ins_remote; /* the same, skipping ids held */
    sqlite3_stmt *res_fetch;      /* a cell's current value for a resolver */
    struct {
        const char *sql; /* a string literal: compared by address */
        sqlite3_stmt *st;
    } cst[48];
    size_t n_cst;
    dimple_stmt_entry *stmts[128];
    size_t n_stmts;
    dimple_wst_entry *wst[128]; /* cleared whenever stmts[] drops any */
    dimple_pbuf wkey;

    dimple_pbuf kbuf, kbuf2, vbuf, vbuf2, sbuf;
    /* merge scratch (merges never nest: they run muted) */
    dimple_rcell *cells;
    size_t n_cells, cap_cells;
    dimple_value *kv, *cv;
    int64_t *cids;
    size_t cap_kv, cap_cv;
    int64_t *lseq, *lauth; /* local rows in an apply's id range */
    size_t n_l, cap_l;
    struct dimple_replace *replace; /* deletes without a trigger (replace.c) */
    bool migrating;     /* inside a migration: its writes are not tracked */
    uint8_t pushed[16]; /* local ids up to this had left at sync start */
    bool pushed_known;  /* false: no sync began; every local id unsynced */
};

static inline struct dimple_track *T(dimple *db)
{
    return db->track;
}

static inline int oom(dimple *db)
{
    return dimple__seterr(db, DIMPLE_ENOMEM, "change tracking: out of memory");
}

/* ---------------------------------------------------------- track.c */

/* The metadata table _dimple_meta: an integer under k (*found false when
 * absent), and setting one. */
int dimple_track__meta_get(dimple *db, const char *k, int64_t *out,
                           bool *found);
int dimple_track__meta_set(dimple *db, const char *k, int64_t v);
/* Reload the name and author caches from their tables. */
int dimple_track__names_load(dimple *db);
int dimple_track__authors_load(dimple *db);
/* The id of name / the idx of an author UUID, interned when new. */
int dimple_track__name_intern(dimple *db, const char *name, int64_t *out);
int dimple_track__author_intern(dimple *db, const uint8_t uuid[16],
                                int64_t *out);
/* The caches may hold names or authors of a transaction the caller rolled
 * back: reload when the tables disagree with them. */
int dimple_track__caches_check(dimple *db);
/* The clock: re-read when another connection committed; the next value
 * for a local change; a remote id raising it (up to the skew bound). */
int dimple_track__clock_sync(dimple *db);
uint64_t dimple_track__tick(struct dimple_track *tr);
void dimple_track__observe(struct dimple_track *tr, const uint8_t id[16]);
/* Run fn in a savepoint (BEGIN IMMEDIATE outside a transaction), rolled
 * back when it fails, keeping its first error. */
int dimple_track__savepoint(dimple *db, int (*fn)(dimple *), const char *what);

/* ----------------------------------------------------- track_stmt.c */

/* A cached prepared statement for sql (reset, bindings cleared). NULL on
 * error with db's error set. Never hand one out across a callback. */
sqlite3_stmt *dimple_track__stmt(dimple *db, const char *sql);
/* The same for a string literal, looked up by its address. */
sqlite3_stmt *dimple_track__cstmt(dimple *db, const char *sql);
/* Finalize every cached statement (close). */
void dimple_track__stmts_clear(struct dimple_track *tr);
/* Step a cached statement to completion (no rows expected), then reset. */
int dimple_track__step(dimple *db, sqlite3_stmt *st, const char *what);
/* sqlite3_exec with the error set on db as "<what>: <message>". */
int dimple_track__exec(dimple *db, const char *sql, const char *what);
/* The merge writes' statements by shape: build the shape in tr->wkey,
 * find its statement (NULL: not cached), remember one for it. */
void dimple_track__wst_key(struct dimple_track *tr, int kind,
                           const dimple_ttable *tt, const size_t *cols,
                           size_t ncol);
sqlite3_stmt *dimple_track__wst_find(struct dimple_track *tr);
void dimple_track__wst_add(struct dimple_track *tr, sqlite3_stmt *st);

/* --------------------------------------------------- track_schema.c */

/* Free the table list (close). */
void dimple_track__tables_free(struct dimple_track *tr);
/* Refresh's body, inside a savepoint (also the end of open). */
int dimple_track__refresh_locked(dimple *db);

/* ------------------------------------------------------ track_log.c */

/* Append a change; a remote change (id given) whose id the log already
 * holds is not appended (*added false; added may be NULL). */
int dimple_track__log_append(dimple *db, int64_t seq, int64_t author, int64_t t,
                             int op, const dimple_pbuf *k, const dimple_pbuf *v,
                             const uint8_t *id, bool *added);
/* Register the SQL functions the triggers call (dimple_ins, ...). */
int dimple_track__register_functions(dimple *db);

/* ---------------------------------------------------- track_merge.c */

/* Decode a packed key into tr->kv (*nk values). */
int dimple_track__decode_key(dimple *db, const uint8_t *p, size_t n,
                             size_t *nk);
/* Read the clock of row (t, k) into tr->cells. */
int dimple_track__state_load(dimple *db, int64_t t, const dimple_pbuf *k,
                             bool *exists);
/* The clock entry c in tr->cells, or NULL. */
dimple_rcell *dimple_track__cell_find(struct dimple_track *tr, uint64_t c);
/* Does the clock in tr->cells say the row exists? */
bool dimple_track__state_alive(struct dimple_track *tr);
/* Must a local write be merged at once (it may lose to a version already
 * held)? */
bool dimple_track__local_may_lose(dimple *db);

/* ---------------------------------------------------- track_write.c */

/* A merge source for cell values: the change being merged (its decoded
 * columns) or, for older owners, the log row of the owner. */
typedef struct dimple_merge_src {
    int64_t seq;
    size_t n;
    const int64_t *cids;
    const dimple_value *vals;
} dimple_merge_src;

/* dimple_track__row_write's modes: update the row's columns in want[], or
 * upsert the row (dimple_track__row_delete's statements use shape kind 3). */
enum { DIMPLE_W_UPDATE = 0, DIMPLE_W_UPSERT = 1 };

/* Write cells of tr->cells into the user table: DIMPLE_W_UPSERT inserts
 * the row if missing (with every cell it has an owner for); DIMPLE_W_UPDATE
 * updates only the columns in want[] (NULL: all owned). *changes: rows
 * written. x (may be NULL) holds the values of the change being merged. */
int dimple_track__row_write(dimple *db, const dimple_ttable *tt,
                            const dimple_value *kv, int mode, const bool *want,
                            const dimple_merge_src *x, int *changes);
/* Delete the row with key kv from the user table. */
int dimple_track__row_delete(dimple *db, const dimple_ttable *tt,
                             const dimple_value *kv);

#endif /* DIMPLE_TRACK_IMPL_H */
