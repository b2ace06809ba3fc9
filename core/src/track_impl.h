/*
 * track_impl.h — state shared by track.c, history.c and map.c (internal to
 * the change-tracking module; other modules use track.h).
 */
#ifndef DIMPLE_TRACK_IMPL_H
#define DIMPLE_TRACK_IMPL_H

#include "pack.h"
#include "track.h"

#include <stdbool.h>

/* A tracked table as the schema shows it. */
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
    char fnerr[1024];               /* message of a failed trigger function */
    struct dimple_replace *replace; /* deletes without a trigger (replace.c) */
    bool replace_lost; /* a delete could not be noted: refuse the write */
    bool migrating;    /* inside a migration: its writes are not tracked */
};

/* A cached prepared statement for sql (reset, bindings cleared). NULL on
 * error with db's error set. Never hand one out across a callback. */
sqlite3_stmt *dimple_track__stmt(dimple *db, const char *sql);

/* The name of an interned id, or NULL. */
const char *dimple_track__name(dimple *db, int64_t id);
/* The UUID of an author idx, or NULL. */
const uint8_t *dimple_track__author_uuid(dimple *db, int64_t idx);
/* An author's idx, or 0 when unknown. */
int64_t dimple_track__author_idx(dimple *db, const uint8_t uuid[16]);
/* The tracked table with that name (case-insensitive), or NULL. */
const dimple_ttable *dimple_track__table(dimple *db, const char *name);
/* The tracked table with that interned id, or NULL. */
const dimple_ttable *dimple_track__table_by_tid(dimple *db, int64_t tid);
/* Does tt hold a row with this packed key? (Uses the merge scratch: not
 * during a merge.) */
int dimple_track__row_exists(dimple *db, const dimple_ttable *tt,
                             const dimple_pbuf *key, bool *out);

/* The 16-byte id of a log row from its columns seq, author, id. */
void dimple_track__row_id(dimple *db, int64_t seq, int64_t author,
                          const void *id_blob, int id_len, uint8_t out[16]);

/* Bring the per-cell clock up to date with every logged change. */
int dimple_track__fold(dimple *db);

/* Tests: pretend the wall clock is off by ms (a skewed device). */
void dimple_track__set_clock_offset(dimple *db, int64_t ms);

/* Author remedies for a copied database file (history.h's API). */
int dimple_track__author_reset(dimple *db);
int dimple_track__author_keep(dimple *db);

#endif /* DIMPLE_TRACK_IMPL_H */
