/*
 * track.c — change tracking: the change log, the triggers that fill it, the
 * per-cell clock and the one merge rule (DESIGN §3, §5; docs/tracking.md).
 *
 * Write path: a generated AFTER trigger calls one C function (dimple_ins,
 * dimple_upd, dimple_del) that packs the key and the changed columns and
 * appends ONE row to _dimple_log, keyed by the clock value itself. Nothing
 * else is maintained per write. The per-cell clock (_dimple_rows) is folded
 * from the log in bulk before a merge ("fold"). A local write carries the
 * newest id, so applying it directly equals the merge; only when a remote
 * id is ahead of our clock ("behind") does the trigger fold at once, and
 * the fold restores the winning values.
 */
#include "replace.h" /* first: it enables the preupdate hook API */
#include "track_impl.h"

#include "clock.h"
#include "config.h"
#include "rowhook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define C_DEAD 0
#define C_ALIVE 1

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS _dimple_meta(k TEXT PRIMARY KEY, v)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _dimple_names(id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS _dimple_authors(idx INTEGER PRIMARY KEY,"
    " uuid BLOB NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS _dimple_log(seq INTEGER PRIMARY KEY,"
    " author INTEGER NOT NULL, t INTEGER NOT NULL, op INTEGER NOT NULL,"
    " k BLOB NOT NULL, v BLOB, id BLOB);"
    "CREATE UNIQUE INDEX IF NOT EXISTS _dimple_log_id ON _dimple_log(id)"
    " WHERE id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS _dimple_rows(t INTEGER NOT NULL,"
    " k BLOB NOT NULL, s BLOB NOT NULL, PRIMARY KEY(t, k)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _dimple_tables(t INTEGER PRIMARY KEY,"
    " cols TEXT NOT NULL);";

/* ------------------------------------------------------------ helpers */

static struct dimple_track *T(dimple *db)
{
    return db->track;
}

static int oom(dimple *db)
{
    return dimple__seterr(db, DIMPLE_ENOMEM, "change tracking: out of memory");
}

static unsigned stmt_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void wst_clear(struct dimple_track *tr)
{
    for (size_t b = 0; b < 128; b++) {
        dimple_wst_entry *e = tr->wst[b];
        while (e) {
            dimple_wst_entry *n = e->next;
            free(e->key);
            free(e);
            e = n;
        }
        tr->wst[b] = NULL;
    }
}

static void stmts_clear(struct dimple_track *tr)
{
    wst_clear(tr);
    for (size_t b = 0; b < 128; b++) {
        dimple_stmt_entry *e = tr->stmts[b];
        while (e) {
            dimple_stmt_entry *n = e->next;
            sqlite3_finalize(e->st);
            free(e->sql);
            free(e);
            e = n;
        }
        tr->stmts[b] = NULL;
    }
    tr->n_stmts = 0;
}

/* Drop the cached statements that are not running (one may be mid-walk
 * in a caller up the stack). */
static void stmts_evict(struct dimple_track *tr)
{
    wst_clear(tr); /* its entries point at statements finalized below */
    for (size_t b = 0; b < 128; b++) {
        dimple_stmt_entry **pe = &tr->stmts[b];
        while (*pe) {
            dimple_stmt_entry *e = *pe;
            if (sqlite3_stmt_busy(e->st)) {
                pe = &e->next;
                continue;
            }
            *pe = e->next;
            sqlite3_finalize(e->st);
            free(e->sql);
            free(e);
            tr->n_stmts--;
        }
    }
}

sqlite3_stmt *dimple_track__stmt(dimple *db, const char *sql)
{
    struct dimple_track *tr = T(db);
    unsigned b = stmt_hash(sql) & 127;
    for (dimple_stmt_entry *e = tr->stmts[b]; e; e = e->next)
        if (strcmp(e->sql, sql) == 0) {
            sqlite3_reset(e->st);
            sqlite3_clear_bindings(e->st);
            return e->st;
        }
    if (tr->n_stmts >= 512)
        stmts_evict(tr); /* a cache, not a leak: dynamic SQL varies */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &st, NULL);
    if (rc != SQLITE_OK) {
        dimple__sqlerr(db, rc, "change tracking: prepare");
        return NULL;
    }
    dimple_stmt_entry *e = calloc(1, sizeof *e);
    char *copy = strdup(sql);
    if (!e || !copy) {
        free(e);
        free(copy);
        sqlite3_finalize(st);
        oom(db);
        return NULL;
    }
    e->sql = copy;
    e->st = st;
    e->next = tr->stmts[b];
    tr->stmts[b] = e;
    tr->n_stmts++;
    return st;
}

/* The statement of a string literal: looked up by its address (cheaper
 * than hashing the text on every change). Only for literals: a freed
 * buffer's address could come back holding other SQL. */
static sqlite3_stmt *cstmt(dimple *db, const char *sql)
{
    struct dimple_track *tr = T(db);
    for (size_t i = 0; i < tr->n_cst; i++)
        if (tr->cst[i].sql == sql) {
            sqlite3_reset(tr->cst[i].st);
            sqlite3_clear_bindings(tr->cst[i].st);
            return tr->cst[i].st;
        }
    if (tr->n_cst == sizeof tr->cst / sizeof tr->cst[0])
        return dimple_track__stmt(db, sql);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &st, NULL);
    if (rc != SQLITE_OK) {
        dimple__sqlerr(db, rc, "change tracking: prepare");
        return NULL;
    }
    tr->cst[tr->n_cst].sql = sql;
    tr->cst[tr->n_cst++].st = st;
    return st;
}

/* Step a cached statement to completion (no rows expected). */
static int step_done(dimple *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        int r = dimple__sqlerr(db, rc, what);
        sqlite3_reset(st);
        return r;
    }
    sqlite3_reset(st);
    return DIMPLE_OK;
}

static int exec_sql(dimple *db, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int r = dimple__seterr(db, dimple__sqlite_code(rc), "%s: %s", what,
                               msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return r;
    }
    return DIMPLE_OK;
}

static int id_cmp(const uint8_t a[16], const uint8_t b[16])
{
    return memcmp(a, b, 16);
}

static const uint8_t zero_id[16];

/* ------------------------------------------------------------- meta */

static int meta_get(dimple *db, const char *k, int64_t *out, bool *found)
{
    sqlite3_stmt *st = cstmt(db, "SELECT v FROM _dimple_meta WHERE k = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_meta");
    return DIMPLE_OK;
}

static int meta_get_text(dimple *db, const char *k, char *out, size_t cap)
{
    sqlite3_stmt *st = cstmt(db, "SELECT v FROM _dimple_meta WHERE k = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    out[0] = 0;
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_meta");
    return DIMPLE_OK;
}

static int meta_set(dimple *db, const char *k, int64_t v)
{
    sqlite3_stmt *st =
        cstmt(db, "INSERT OR REPLACE INTO _dimple_meta(k, v) VALUES (?1, ?2)");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return step_done(db, st, "change tracking: write _dimple_meta");
}

static int meta_set_text(dimple *db, const char *k, const char *v)
{
    sqlite3_stmt *st =
        cstmt(db, "INSERT OR REPLACE INTO _dimple_meta(k, v) VALUES (?1, ?2)");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    return step_done(db, st, "change tracking: write _dimple_meta");
}

/* ------------------------------------------------- names and authors */

static void names_free(struct dimple_track *tr)
{
    for (size_t i = 0; i < tr->n_names; i++)
        free(tr->names[i]);
    free(tr->names);
    tr->names = NULL;
    tr->n_names = tr->cap_names = 0;
}

static int names_set(dimple *db, int64_t id, const char *name)
{
    struct dimple_track *tr = T(db);
    if (id <= 0 || id > (int64_t)1 << 40)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: _dimple_names id %lld",
                              (long long)id);
    if ((size_t)id >= tr->cap_names) {
        size_t cap = tr->cap_names ? tr->cap_names : 64;
        while (cap <= (size_t)id)
            cap *= 2;
        char **p = realloc(tr->names, cap * sizeof *p);
        if (!p)
            return oom(db);
        memset(p + tr->cap_names, 0, (cap - tr->cap_names) * sizeof *p);
        tr->names = p;
        tr->cap_names = cap;
    }
    if (!tr->names[id]) {
        tr->names[id] = strdup(name);
        if (!tr->names[id])
            return oom(db);
    }
    if ((size_t)id >= tr->n_names)
        tr->n_names = (size_t)id + 1;
    return DIMPLE_OK;
}

static int names_load(dimple *db)
{
    struct dimple_track *tr = T(db);
    /* names handed out (a change being walked) stay valid until close:
     * the old strings are kept, not freed */
    for (size_t i = 0; i < tr->n_names; i++) {
        if (!tr->names[i])
            continue;
        if (tr->n_grave == tr->cap_grave) {
            size_t cap = tr->cap_grave ? tr->cap_grave * 2 : 64;
            char **g = realloc(tr->grave, cap * sizeof *g);
            if (!g)
                return oom(db);
            tr->grave = g;
            tr->cap_grave = cap;
        }
        tr->grave[tr->n_grave++] = tr->names[i];
        tr->names[i] = NULL;
    }
    tr->n_names = 0;
    sqlite3_stmt *st = cstmt(db, "SELECT id, name FROM _dimple_names");
    if (!st)
        return db->errcode;
    int rc, r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && r == DIMPLE_OK)
        r = names_set(db, sqlite3_column_int64(st, 0),
                      (const char *)sqlite3_column_text(st, 1));
    sqlite3_reset(st);
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_names");
    return r;
}

const char *dimple_track__name(dimple *db, int64_t id)
{
    struct dimple_track *tr = T(db);
    if (id <= 0 || (size_t)id >= tr->n_names || !tr->names[id]) {
        if (names_load(db) != DIMPLE_OK)
            return NULL;
        if (id <= 0 || (size_t)id >= tr->n_names)
            return NULL;
    }
    return tr->names[id];
}

/* The id of name, interned when new. */
static int name_intern(dimple *db, const char *name, int64_t *out)
{
    struct dimple_track *tr = T(db);
    for (size_t i = 1; i < tr->n_names; i++)
        if (tr->names[i] && sqlite3_stricmp(tr->names[i], name) == 0) {
            *out = (int64_t)i;
            return DIMPLE_OK;
        }
    sqlite3_stmt *st = cstmt(db, "INSERT INTO _dimple_names(name) VALUES (?1)"
                                 " ON CONFLICT(name) DO NOTHING");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = step_done(db, st, "change tracking: write _dimple_names");
    if (r)
        return r;
    st = cstmt(db, "SELECT id, name FROM _dimple_names"
                   " WHERE name = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_names");
    }
    *out = sqlite3_column_int64(st, 0);
    r = names_set(db, *out, (const char *)sqlite3_column_text(st, 1));
    sqlite3_reset(st);
    return r;
}

static int authors_set(dimple *db, int64_t idx, const uint8_t *uuid)
{
    struct dimple_track *tr = T(db);
    if (idx <= 0 || idx > (int64_t)1 << 40)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: _dimple_authors idx %lld",
                              (long long)idx);
    if ((size_t)idx >= tr->cap_authors) {
        size_t cap = tr->cap_authors ? tr->cap_authors : 16;
        while (cap <= (size_t)idx)
            cap *= 2;
        uint8_t(*p)[16] = realloc(tr->authors, cap * sizeof *p);
        if (!p)
            return oom(db);
        tr->authors = p;
        bool *k = realloc(tr->author_known, cap * sizeof *k);
        if (!k)
            return oom(db);
        memset(k + tr->cap_authors, 0, (cap - tr->cap_authors) * sizeof *k);
        tr->author_known = k;
        tr->cap_authors = cap;
    }
    memcpy(tr->authors[idx], uuid, 16);
    tr->author_known[idx] = true;
    if ((size_t)idx >= tr->n_authors)
        tr->n_authors = (size_t)idx + 1;
    return DIMPLE_OK;
}

static int authors_load(dimple *db)
{
    struct dimple_track *tr = T(db);
    tr->n_authors = 0;
    if (tr->author_known)
        memset(tr->author_known, 0, tr->cap_authors * sizeof(bool));
    sqlite3_stmt *st = cstmt(db, "SELECT idx, uuid FROM _dimple_authors");
    if (!st)
        return db->errcode;
    int rc, r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && r == DIMPLE_OK) {
        if (sqlite3_column_bytes(st, 1) != 16) {
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "change tracking: _dimple_authors holds a"
                               " uuid that is not 16 bytes");
            break;
        }
        r = authors_set(db, sqlite3_column_int64(st, 0),
                        sqlite3_column_blob(st, 1));
    }
    sqlite3_reset(st);
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_authors");
    return r;
}

const uint8_t *dimple_track__author_uuid(dimple *db, int64_t idx)
{
    struct dimple_track *tr = T(db);
    if (idx <= 0 || (size_t)idx >= tr->n_authors || !tr->author_known[idx]) {
        if (authors_load(db) != DIMPLE_OK)
            return NULL;
        if (idx <= 0 || (size_t)idx >= tr->n_authors || !tr->author_known[idx])
            return NULL;
    }
    return tr->authors[idx];
}

int64_t dimple_track__author_idx(dimple *db, const uint8_t uuid[16])
{
    struct dimple_track *tr = T(db);
    for (size_t i = 1; i < tr->n_authors; i++)
        if (tr->author_known[i] && memcmp(tr->authors[i], uuid, 16) == 0)
            return (int64_t)i;
    return 0;
}

static int author_intern(dimple *db, const uint8_t uuid[16], int64_t *out)
{
    *out = dimple_track__author_idx(db, uuid);
    if (*out)
        return DIMPLE_OK;
    sqlite3_stmt *st = cstmt(db, "INSERT INTO _dimple_authors(uuid) VALUES (?1)"
                                 " ON CONFLICT(uuid) DO NOTHING");
    if (!st)
        return db->errcode;
    sqlite3_bind_blob(st, 1, uuid, 16, SQLITE_STATIC);
    int r = step_done(db, st, "change tracking: write _dimple_authors");
    if (r)
        return r;
    st = cstmt(db, "SELECT idx FROM _dimple_authors WHERE uuid = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_blob(st, 1, uuid, 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_authors");
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return authors_set(db, *out, uuid);
}

void dimple_track__row_id(dimple *db, int64_t seq, int64_t author,
                          const void *id_blob, int id_len, uint8_t out[16])
{
    if (id_blob && id_len == 16) {
        memcpy(out, id_blob, 16);
        return;
    }
    /* a local change: the clock value and the author's low half */
    const uint8_t *a = dimple_track__author_uuid(db, author);
    dimple_id__make(out, (uint64_t)seq, a ? dimple_id__lo(a) : 0);
}

/* The caches may hold names or authors of a transaction the caller rolled
 * back: reload when the tables disagree with them. */
static int caches_check(dimple *db)
{
    struct dimple_track *tr = T(db);
    sqlite3_stmt *st =
        cstmt(db, "SELECT (SELECT count(*) FROM _dimple_names),"
                  " (SELECT coalesce(max(id), 0) FROM _dimple_names),"
                  " (SELECT count(*) FROM _dimple_authors),"
                  " (SELECT coalesce(max(idx), 0) FROM _dimple_authors)");
    if (!st)
        return db->errcode;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return dimple__sqlerr(db, rc, "change tracking: read metadata");
    }
    int64_t nn = sqlite3_column_int64(st, 0), mn = sqlite3_column_int64(st, 1);
    int64_t na = sqlite3_column_int64(st, 2), ma = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    size_t have_n = 0, have_a = 0;
    for (size_t i = 1; i < tr->n_names; i++)
        have_n += tr->names[i] != NULL;
    for (size_t i = 1; i < tr->n_authors; i++)
        have_a += tr->author_known[i];
    int r = DIMPLE_OK;
    if ((int64_t)have_n != nn || (int64_t)tr->n_names != mn + 1)
        r = names_load(db);
    if (r == DIMPLE_OK &&
        ((int64_t)have_a != na || (int64_t)tr->n_authors != ma + 1))
        r = authors_load(db);
    return r;
}

/* --------------------------------------------------------------- clock */

static int64_t now_ms(struct dimple_track *tr)
{
    return dimple_clock__now_ms() + tr->offset_ms;
}

/* Another connection may have committed (a second process on the file):
 * then the clock and the newest remote id are re-read. */
static int clock_sync(dimple *db)
{
    struct dimple_track *tr = T(db);
    unsigned int dv = 0;
    if (sqlite3_file_control(db->sql, "main", SQLITE_FCNTL_DATA_VERSION, &dv) ==
            SQLITE_OK &&
        tr->dv_valid && dv == tr->data_version)
        return DIMPLE_OK;
    sqlite3_stmt *st = cstmt(db, "SELECT max(seq) FROM _dimple_log");
    if (!st)
        return db->errcode;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        uint64_t m = (uint64_t)sqlite3_column_int64(st, 0);
        if (m > tr->last)
            tr->last = m;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    int64_t v = 0;
    bool found = false;
    int r = meta_get(db, "max_seen", &v, &found);
    if (r)
        return r;
    if (found && (uint64_t)v > tr->max_seen)
        tr->max_seen = (uint64_t)v;
    if (tr->max_seen > tr->last) {
        /* a remote id beyond the skew bound: follow it only up to the
         * bound (the same rule as when it arrived) */
        uint64_t bound = dimple_clock__at(now_ms(tr) + tr->skew_ms);
        uint64_t to = tr->max_seen < bound ? tr->max_seen : bound;
        if (to > tr->last)
            tr->last = to;
    }
    tr->data_version = dv;
    tr->dv_valid = true;
    return DIMPLE_OK;
}

static uint64_t tick(struct dimple_track *tr)
{
    tr->last = dimple_clock__next(tr->last, now_ms(tr));
    return tr->last;
}

/* A remote id raises our clock, at most to the skew bound. */
static void observe(struct dimple_track *tr, const uint8_t id[16])
{
    uint64_t hi = dimple_id__hi(id);
    if (hi > tr->max_seen)
        tr->max_seen = hi;
    uint64_t bound = dimple_clock__at(now_ms(tr) + tr->skew_ms);
    uint64_t to = hi < bound ? hi : bound;
    if (to > tr->last)
        tr->last = to;
}

void dimple_track__set_clock_offset(dimple *db, int64_t ms)
{
    if (db && db->track)
        db->track->offset_ms = ms;
}

/* ------------------------------------------------------------ the log */

/* Append a change; a remote change (id given) whose id the log already
 * holds is not appended (*added false): the unique index answers "held?"
 * in the same seek that inserts. */
static int log_append_x(dimple *db, int64_t seq, int64_t author, int64_t t,
                        int op, const dimple_pbuf *k, const dimple_pbuf *v,
                        const uint8_t *id, bool *added)
{
    struct dimple_track *tr = T(db);
    /* the hot path: its own statement, no cache lookup */
    sqlite3_stmt **pst = id ? &tr->log_ins_remote : &tr->log_ins;
    if (!*pst) {
        int rc = sqlite3_prepare_v3(
            db->sql,
            id ? "INSERT INTO _dimple_log(seq, author, t, op, k, v, id)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                 " ON CONFLICT(id) WHERE id IS NOT NULL DO NOTHING"
               : "INSERT INTO _dimple_log(seq, author, t, op, k, v, id)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            -1, SQLITE_PREPARE_PERSISTENT, pst, NULL);
        if (rc != SQLITE_OK)
            return dimple__sqlerr(db, rc, "change tracking: prepare");
    }
    sqlite3_stmt *st = *pst;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, author);
    sqlite3_bind_int64(st, 3, t);
    sqlite3_bind_int(st, 4, op);
    sqlite3_bind_blob(st, 5, k->p ? (const void *)k->p : "", (int)k->n,
                      SQLITE_STATIC);
    if (v)
        sqlite3_bind_blob(st, 6, v->p ? (const void *)v->p : "", (int)v->n,
                          SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    if (id)
        sqlite3_bind_blob(st, 7, id, 16, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    int r = step_done(db, st, "change tracking: append to _dimple_log");
    if (added)
        *added = r == DIMPLE_OK && sqlite3_changes(db->sql) > 0;
    return r;
}

static int log_append(dimple *db, int64_t seq, int64_t author, int64_t t,
                      int op, const dimple_pbuf *k, const dimple_pbuf *v,
                      const uint8_t *id)
{
    return log_append_x(db, seq, author, t, op, k, v, id, NULL);
}

/* Decode a packed key into tr->kv. */
static int decode_key(dimple *db, const uint8_t *p, size_t n, size_t *nk)
{
    struct dimple_track *tr = T(db);
    size_t pos = 0, i = 0;
    while (pos < n) {
        if (i >= tr->cap_kv) {
            size_t cap = tr->cap_kv ? tr->cap_kv * 2 : 8;
            dimple_value *kv = realloc(tr->kv, cap * sizeof *kv);
            if (!kv)
                return oom(db);
            tr->kv = kv;
            tr->cap_kv = cap;
        }
        if (!dimple_unpack__value(p, n, &pos, &tr->kv[i]))
            return dimple__seterr(db, DIMPLE_ECORRUPT,
                                  "change tracking: malformed key in the log");
        i++;
    }
    *nk = i;
    return DIMPLE_OK;
}

/* Decode packed columns into tr->cids / tr->cv. */
static int decode_cols(dimple *db, const uint8_t *p, size_t n, size_t *nc)
{
    struct dimple_track *tr = T(db);
    size_t pos = 0, i = 0;
    while (pos < n) {
        if (i >= tr->cap_cv) {
            size_t cap = tr->cap_cv ? tr->cap_cv * 2 : 16;
            dimple_value *cv = realloc(tr->cv, cap * sizeof *cv);
            if (!cv)
                return oom(db);
            tr->cv = cv;
            int64_t *ci = realloc(tr->cids, cap * sizeof *ci);
            if (!ci)
                return oom(db);
            tr->cids = ci;
            tr->cap_cv = cap;
        }
        uint64_t cid;
        if (!dimple_unpack__varint(p, n, &pos, &cid) ||
            !dimple_unpack__value(p, n, &pos, &tr->cv[i]))
            return dimple__seterr(
                db, DIMPLE_ECORRUPT,
                "change tracking: malformed columns in the log");
        tr->cids[i] = (int64_t)cid;
        i++;
    }
    *nc = i;
    return DIMPLE_OK;
}

/* ----------------------------------------------------------- row clock */

static int cells_reserve(dimple *db, size_t n)
{
    struct dimple_track *tr = T(db);
    if (n <= tr->cap_cells)
        return DIMPLE_OK;
    size_t cap = tr->cap_cells ? tr->cap_cells : 16;
    while (cap < n)
        cap *= 2;
    dimple_rcell *c = realloc(tr->cells, cap * sizeof *c);
    if (!c)
        return oom(db);
    tr->cells = c;
    tr->cap_cells = cap;
    return DIMPLE_OK;
}

/* A row clock (_dimple_rows.s) is either a list of cells, each
 * (varint c, varint seq, 16-byte id) — the first cell is always the row's
 * alive or dead entry, so it starts with byte 0 or 1 — or, as written
 * now, CLOCK_OWNERS, varint n, n owners (varint seq, 16-byte id), then
 * the cells as (varint c, varint owner index): the cells a change owns
 * share its seq and id (an insert's row clock: ~35 bytes, not ~105). */
#define CLOCK_OWNERS 2
#define CLOCK_MAX_OWNERS 32

static int clock_bad(dimple *db)
{
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change tracking: malformed row clock in"
                          " _dimple_rows");
}

static int state_decode_owners(dimple *db, const uint8_t *p, size_t n)
{
    struct dimple_track *tr = T(db);
    size_t pos = 1;
    uint64_t no;
    if (!dimple_unpack__varint(p, n, &pos, &no) || no > CLOCK_MAX_OWNERS)
        return clock_bad(db);
    size_t first = pos;
    for (uint64_t i = 0; i < no; i++) {
        uint64_t seq;
        if (!dimple_unpack__varint(p, n, &pos, &seq) || n - pos < 16)
            return clock_bad(db);
        pos += 16;
    }
    while (pos < n) {
        uint64_t c, o;
        if (!dimple_unpack__varint(p, n, &pos, &c) ||
            !dimple_unpack__varint(p, n, &pos, &o) || o >= no)
            return clock_bad(db);
        int r = cells_reserve(db, tr->n_cells + 1);
        if (r)
            return r;
        /* owner o: walk to it (owners are few) */
        size_t at = first;
        uint64_t seq = 0;
        for (uint64_t i = 0; i <= o; i++) {
            dimple_unpack__varint(p, n, &at, &seq);
            if (i < o)
                at += 16;
        }
        dimple_rcell *e = &tr->cells[tr->n_cells++];
        e->c = c;
        e->seq = (int64_t)seq;
        memcpy(e->id, p + at, 16);
    }
    return DIMPLE_OK;
}

/* Read the clock of row (t, k) into tr->cells. */
static int state_load(dimple *db, int64_t t, const dimple_pbuf *k, bool *exists)
{
    struct dimple_track *tr = T(db);
    tr->n_cells = 0;
    sqlite3_stmt *st =
        cstmt(db, "SELECT s FROM _dimple_rows WHERE t = ?1 AND k = ?2");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, t);
    sqlite3_bind_blob(st, 2, k->p ? (const void *)k->p : "", (int)k->n,
                      SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    int r = DIMPLE_OK;
    if (rc == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0), pos = 0;
        if (n && p[0] == CLOCK_OWNERS) {
            r = state_decode_owners(db, p, n);
            n = 0; /* decoded */
        }
        while (pos < n && r == DIMPLE_OK) {
            uint64_t c, seq;
            if ((r = cells_reserve(db, tr->n_cells + 1)))
                break;
            if (!dimple_unpack__varint(p, n, &pos, &c) ||
                !dimple_unpack__varint(p, n, &pos, &seq) || n - pos < 16) {
                r = dimple__seterr(db, DIMPLE_ECORRUPT,
                                   "change tracking: malformed row clock in"
                                   " _dimple_rows");
                break;
            }
            dimple_rcell *e = &tr->cells[tr->n_cells++];
            e->c = c;
            e->seq = (int64_t)seq;
            memcpy(e->id, p + pos, 16);
            pos += 16;
        }
    } else if (rc != SQLITE_DONE) {
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_rows");
    }
    sqlite3_reset(st);
    return r;
}

/* Write the clock in tr->cells for row (t, k): replacing it, or only
 * when the row has none yet (*added tells). */
static int state_write(dimple *db, int64_t t, const dimple_pbuf *k,
                       bool only_new, bool *added)
{
    struct dimple_track *tr = T(db);
    dimple_pbuf *s = &tr->sbuf;
    dimple_pbuf__reset(s);
    /* the owners: each distinct (seq, id) once, in first-use order; more
     * than CLOCK_MAX_OWNERS (a wide row edited cell by cell): the plain
     * list, so neither side ever searches long */
    size_t n_own = 0, first[CLOCK_MAX_OWNERS]; /* a cell of each owner */
    bool compact = tr->n_cells > 0;
    for (size_t i = 0; compact && i < tr->n_cells; i++) {
        size_t o = 0;
        while (o < n_own &&
               (tr->cells[first[o]].seq != tr->cells[i].seq ||
                memcmp(tr->cells[first[o]].id, tr->cells[i].id, 16) != 0))
            o++;
        if (o == n_own) {
            if (n_own == CLOCK_MAX_OWNERS)
                compact = false;
            else
                first[n_own++] = i;
        }
    }
    if (!compact) {
        for (size_t i = 0; i < tr->n_cells; i++) {
            dimple_pack__varint(s, tr->cells[i].c);
            dimple_pack__varint(s, (uint64_t)tr->cells[i].seq);
            dimple_pbuf__add(s, tr->cells[i].id, 16);
        }
    } else {
        uint8_t mark = CLOCK_OWNERS;
        dimple_pbuf__add(s, &mark, 1);
        dimple_pack__varint(s, n_own);
        for (size_t o = 0; o < n_own; o++) {
            dimple_pack__varint(s, (uint64_t)tr->cells[first[o]].seq);
            dimple_pbuf__add(s, tr->cells[first[o]].id, 16);
        }
        for (size_t i = 0; i < tr->n_cells; i++) {
            size_t o = 0;
            while (tr->cells[first[o]].seq != tr->cells[i].seq ||
                   memcmp(tr->cells[first[o]].id, tr->cells[i].id, 16) != 0)
                o++;
            dimple_pack__varint(s, tr->cells[i].c);
            dimple_pack__varint(s, o);
        }
    }
    if (s->oom)
        return oom(db);
    sqlite3_stmt *st = cstmt(
        db, only_new ? "INSERT INTO _dimple_rows(t, k, s) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT DO NOTHING"
                     : "INSERT OR REPLACE INTO _dimple_rows(t, k, s)"
                       " VALUES (?1, ?2, ?3)");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, t);
    sqlite3_bind_blob(st, 2, k->p ? (const void *)k->p : "", (int)k->n,
                      SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, s->p ? (const void *)s->p : "", (int)s->n,
                      SQLITE_STATIC);
    int r = step_done(db, st, "change tracking: write _dimple_rows");
    if (added)
        *added = r == DIMPLE_OK && sqlite3_changes(db->sql) > 0;
    return r;
}

static int state_save(dimple *db, int64_t t, const dimple_pbuf *k)
{
    return state_write(db, t, k, false, NULL);
}

static dimple_rcell *cell_find(struct dimple_track *tr, uint64_t c)
{
    for (size_t i = 0; i < tr->n_cells; i++)
        if (tr->cells[i].c == c)
            return &tr->cells[i];
    return NULL;
}

/* Set cell c to (id, seq) when id is newer; true when it won. */
static int cell_offer(dimple *db, uint64_t c, const uint8_t id[16], int64_t seq,
                      bool *won)
{
    struct dimple_track *tr = T(db);
    dimple_rcell *e = cell_find(tr, c);
    *won = false;
    if (e && id_cmp(id, e->id) <= 0)
        return DIMPLE_OK;
    if (!e) {
        int r = cells_reserve(db, tr->n_cells + 1);
        if (r)
            return r;
        e = &tr->cells[tr->n_cells++];
        e->c = c;
    }
    memcpy(e->id, id, 16);
    e->seq = seq;
    *won = true;
    return DIMPLE_OK;
}

static bool state_alive(struct dimple_track *tr)
{
    dimple_rcell *a = cell_find(tr, C_ALIVE), *d = cell_find(tr, C_DEAD);
    return id_cmp(a ? a->id : zero_id, d ? d->id : zero_id) > 0;
}

/* ------------------------------------------------ writing user tables */

/* The shape of a merge write: kind, table, key columns and written
 * columns, as name ids (names are interned forever, so a shape always
 * means the same SQL text). Built in tr->wkey. */
static void wst_key(struct dimple_track *tr, int kind, const dimple_ttable *tt,
                    const size_t *cols, size_t ncol)
{
    dimple_pbuf *k = &tr->wkey;
    dimple_pbuf__reset(k);
    dimple_pack__varint(k, (uint64_t)kind);
    dimple_pack__varint(k, (uint64_t)tt->tid);
    dimple_pack__varint(k, tt->n_key);
    for (size_t i = 0; i < tt->n_key; i++)
        dimple_pack__varint(k, (uint64_t)tt->cid[tt->key_col[i]]);
    for (size_t i = 0; i < ncol; i++)
        dimple_pack__varint(k, (uint64_t)tt->cid[cols[i]]);
}

static unsigned wst_hash(const dimple_pbuf *k)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < k->n; i++)
        h = (h ^ k->p[i]) * 16777619u;
    return h & 127;
}

/* The cached statement of the shape in tr->wkey (reset; the caller
 * binds every parameter), or NULL when not cached yet. */
static sqlite3_stmt *wst_find(struct dimple_track *tr)
{
    if (tr->wkey.oom)
        return NULL;
    for (dimple_wst_entry *e = tr->wst[wst_hash(&tr->wkey)]; e; e = e->next)
        if (e->n == tr->wkey.n && memcmp(e->key, tr->wkey.p, e->n) == 0) {
            sqlite3_reset(e->st);
            return e->st;
        }
    return NULL;
}

/* Remember st for the shape in tr->wkey (best effort: a cache). */
static void wst_add(struct dimple_track *tr, sqlite3_stmt *st)
{
    if (tr->wkey.oom || !tr->wkey.n)
        return;
    dimple_wst_entry *e = calloc(1, sizeof *e);
    uint8_t *key = malloc(tr->wkey.n);
    if (!e || !key) {
        free(e);
        free(key);
        return;
    }
    memcpy(key, tr->wkey.p, tr->wkey.n);
    e->key = key;
    e->n = tr->wkey.n;
    e->st = st;
    unsigned b = wst_hash(&tr->wkey);
    e->next = tr->wst[b];
    tr->wst[b] = e;
}

/* " WHERE k1 <op> ?first AND k2 <op> ?first+1 ..." over the key. */
static void sql_key_where(sqlite3_str *s, const dimple_ttable *tt, int first,
                          const char *op)
{
    for (size_t i = 0; i < tt->n_key; i++)
        sqlite3_str_appendf(s, "%s\"%w\" %s ?%d", i ? " AND " : " WHERE ",
                            tt->cname[tt->key_col[i]], op, first + (int)i);
}

static int bind_key(dimple *db, sqlite3_stmt *st, const dimple_value *kv,
                    size_t nk, int first)
{
    for (size_t i = 0; i < nk; i++) {
        int rc = dimple_value__bind_static(st, first + (int)i, &kv[i]);
        if (rc != SQLITE_OK)
            return dimple__sqlerr(db, rc, "change tracking: bind key");
    }
    return DIMPLE_OK;
}

static sqlite3_stmt *stmt_str(dimple *db, sqlite3_str *s)
{
    char *sql = sqlite3_str_finish(s);
    if (!sql) {
        oom(db);
        return NULL;
    }
    sqlite3_stmt *st = dimple_track__stmt(db, sql);
    sqlite3_free(sql);
    return st;
}

static int tbl_delete(dimple *db, const dimple_ttable *tt,
                      const dimple_value *kv)
{
    struct dimple_track *tr = T(db);
    wst_key(tr, 3, tt, NULL, 0); /* 3: not one of tbl_write's modes */
    sqlite3_stmt *st = wst_find(tr);
    if (!st) {
        sqlite3_str *s = sqlite3_str_new(db->sql);
        sqlite3_str_appendf(s, "DELETE FROM \"%w\"", tt->name);
        sql_key_where(s, tt, 1, "=");
        st = stmt_str(db, s);
        if (!st)
            return db->errcode;
        wst_key(tr, 3, tt, NULL, 0);
        wst_add(tr, st);
    }
    int r = bind_key(db, st, kv, tt->n_key, 1);
    if (r == DIMPLE_OK)
        r = step_done(db, st, "change tracking: merge delete");
    sqlite3_clear_bindings(st); /* the key was bound without a copy */
    return r;
}

int dimple_track__row_exists(dimple *db, const dimple_ttable *tt,
                             const dimple_pbuf *key, bool *out)
{
    size_t nk;
    int r = decode_key(db, key->p, key->n, &nk);
    if (r)
        return r;
    if (nk != tt->n_key)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: a key of table \"%s\" has"
                              " %zu values, not %zu",
                              tt->name, nk, tt->n_key);
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendf(s, "SELECT 1 FROM \"%w\"", tt->name);
    sql_key_where(s, tt, 1, "IS");
    sqlite3_stmt *st = stmt_str(db, s);
    if (!st)
        return db->errcode;
    if ((r = bind_key(db, st, T(db)->kv, nk, 1)) == DIMPLE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            *out = rc == SQLITE_ROW;
        else
            r = dimple__sqlerr(db, rc, "change tracking: read a replaced row");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* the key was bound without a copy */
    return r;
}

/* A merge source for cell values: the change being merged (its decoded
 * columns) or, for older owners, the log row of the owner. */
typedef struct merge_src {
    int64_t seq;
    size_t n;
    const int64_t *cids;
    const dimple_value *vals;
} merge_src;

/* Bind the value of the cell owned by log row `seq` for column cid. */
static int bind_cell(dimple *db, sqlite3_stmt *st, int idx, int64_t seq,
                     int64_t cid, const merge_src *x)
{
    if (x && seq == x->seq) {
        for (size_t i = 0; i < x->n; i++)
            if (x->cids[i] == cid) {
                int rc = dimple_value__bind_static(st, idx, &x->vals[i]);
                return rc == SQLITE_OK
                           ? DIMPLE_OK
                           : dimple__sqlerr(db, rc, "change tracking: bind");
            }
    }
    sqlite3_stmt *q = cstmt(db, "SELECT v FROM _dimple_log WHERE seq = ?1");
    if (!q)
        return db->errcode;
    sqlite3_bind_int64(q, 1, seq);
    int rc = sqlite3_step(q);
    int r = DIMPLE_OK;
    if (rc == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(q, 0);
        size_t n = (size_t)sqlite3_column_bytes(q, 0), pos = 0;
        bool found = false;
        while (pos < n) {
            uint64_t c;
            dimple_value v;
            if (!dimple_unpack__varint(p, n, &pos, &c) ||
                !dimple_unpack__value(p, n, &pos, &v)) {
                r = dimple__seterr(db, DIMPLE_ECORRUPT,
                                   "change tracking: malformed columns in"
                                   " log row %lld",
                                   (long long)seq);
                break;
            }
            if ((int64_t)c == cid) {
                rc = dimple_value__bind(st, idx, &v);
                if (rc != SQLITE_OK)
                    r = dimple__sqlerr(db, rc, "change tracking: bind");
                found = true;
                break;
            }
        }
        if (r == DIMPLE_OK && !found)
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "change tracking: log row %lld lacks the"
                               " value of its cell",
                               (long long)seq);
    } else {
        r = dimple__seterr(db, DIMPLE_ECORRUPT,
                           "change tracking: the owner of a cell (log row"
                           " %lld) is missing",
                           (long long)seq);
    }
    sqlite3_reset(q);
    return r;
}

/* tbl_write's modes: update the row's columns in want[], or upsert the
 * row (tbl_delete's statements use shape kind 3). */
enum { W_UPDATE = 0, W_UPSERT = 1 };

/* Write cells of tr->cells into the user table. upsert: insert the row if
 * missing (with every cell it has an owner for); else UPDATE only the
 * columns in want[] (NULL: all owned). */
static int tbl_write(dimple *db, const dimple_ttable *tt,
                     const dimple_value *kv, int mode, const bool *want,
                     const merge_src *x, int *changes)
{
    bool upsert = mode != W_UPDATE;
    struct dimple_track *tr = T(db);
    sqlite3_stmt *st = NULL;
    size_t ncol = 0;
    size_t idx[512];
    size_t *cols = idx;
    size_t *heap = NULL;
    if (tt->n_cols > 512) {
        heap = malloc(tt->n_cols * sizeof *heap);
        if (!heap)
            return oom(db);
        cols = heap;
    }
    dimple_rcell *own[512];
    dimple_rcell **owners = own;
    dimple_rcell **heap2 = NULL;
    if (tt->n_cols > 512) {
        heap2 = malloc(tt->n_cols * sizeof *heap2);
        if (!heap2) {
            free(heap);
            return oom(db);
        }
        owners = heap2;
    }
    for (size_t i = 0; i < tt->n_cols; i++) {
        if (tt->is_key[i] || (want && !want[i]))
            continue;
        dimple_rcell *e = cell_find(tr, (uint64_t)tt->cid[i] + 1);
        if (!e)
            continue;
        owners[ncol] = e;
        cols[ncol++] = i;
    }
    int r = DIMPLE_OK;
    if (!upsert && ncol == 0) {
        *changes = 1;
        goto out;
    }
    wst_key(tr, mode, tt, cols, ncol);
    st = wst_find(tr);
    if (st)
        goto bind;
    sqlite3_str *s = sqlite3_str_new(db->sql);
    if (upsert) {
        sqlite3_str_appendf(s, "INSERT INTO \"%w\"(", tt->name);
        for (size_t i = 0; i < tt->n_key; i++)
            sqlite3_str_appendf(s, "%s\"%w\"", i ? ", " : "",
                                tt->cname[tt->key_col[i]]);
        for (size_t i = 0; i < ncol; i++)
            sqlite3_str_appendf(s, ", \"%w\"", tt->cname[cols[i]]);
        sqlite3_str_appendall(s, ") VALUES (");
        for (size_t i = 0; i < tt->n_key + ncol; i++)
            sqlite3_str_appendf(s, "%s?%d", i ? ", " : "", (int)i + 1);
        sqlite3_str_appendall(s, ") ON CONFLICT(");
        for (size_t i = 0; i < tt->n_key; i++)
            sqlite3_str_appendf(s, "%s\"%w\"", i ? ", " : "",
                                tt->cname[tt->key_col[i]]);
        if (ncol == 0) {
            sqlite3_str_appendall(s, ") DO NOTHING");
        } else {
            sqlite3_str_appendall(s, ") DO UPDATE SET ");
            for (size_t i = 0; i < ncol; i++)
                sqlite3_str_appendf(s, "%s\"%w\" = excluded.\"%w\"",
                                    i ? ", " : "", tt->cname[cols[i]],
                                    tt->cname[cols[i]]);
        }
    } else {
        sqlite3_str_appendf(s, "UPDATE \"%w\" SET ", tt->name);
        for (size_t i = 0; i < ncol; i++)
            sqlite3_str_appendf(s, "%s\"%w\" = ?%d", i ? ", " : "",
                                tt->cname[cols[i]], (int)(tt->n_key + i) + 1);
        sql_key_where(s, tt, 1, "=");
    }
    st = stmt_str(db, s);
    if (!st) {
        r = db->errcode;
        goto out;
    }
    /* preparing may have evicted the cache: the shape again */
    wst_key(tr, mode, tt, cols, ncol);
    wst_add(tr, st);
bind:
    if ((r = bind_key(db, st, kv, tt->n_key, 1)))
        goto out;
    for (size_t i = 0; i < ncol; i++) {
        r = bind_cell(db, st, (int)(tt->n_key + i) + 1, owners[i]->seq,
                      tt->cid[cols[i]], x);
        if (r)
            goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        *changes = sqlite3_changes(db->sql);
    } else if (upsert &&
               sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_NOTNULL) {
        /* a row brought in by an update whose insert has not arrived yet
         * (another author's, pulled later) lacks a NOT NULL column: the
         * row clock keeps it, and the change that fills the column writes
         * the row then (the merge's "row went missing" path) */
        *changes = 0;
    } else {
        r = dimple__sqlerr(db, rc, "change tracking: merge write");
    }
    sqlite3_reset(st);
out:
    if (st)
        sqlite3_clear_bindings(st); /* values were bound without a copy */
    free(heap);
    free(heap2);
    if (r && db->errcode == r && !strstr(db->errmsg, tt->name)) {
        char msg[sizeof db->errmsg];
        snprintf(msg, sizeof msg, "%s", db->errmsg);
        dimple__seterr(db, r, "table \"%s\": %s", tt->name, msg);
    }
    return r;
}

const dimple_ttable *dimple_track__table_by_tid(dimple *db, int64_t t)
{
    struct dimple_track *tr = T(db);
    for (size_t i = 0; tr && i < tr->n_tables; i++)
        if (tr->tables[i].tid == t)
            return &tr->tables[i];
    return NULL;
}

const dimple_ttable *dimple_track__table(dimple *db, const char *name)
{
    struct dimple_track *tr = T(db);
    if (!tr)
        return NULL;
    for (size_t i = 0; i < tr->n_tables; i++)
        if (sqlite3_stricmp(tr->tables[i].name, name) == 0)
            return &tr->tables[i];
    return NULL;
}

/* The resolver plugin that decides cells (lww by default: sync loads it
 * when the configuration names none), or NULL when none is loaded: a
 * database opened without configuration merges by the core's built-in
 * rule, the greater id wins (lww's rule; test track-converge shows the
 * two give the same tables). */
static const dimple_instance *resolver(dimple *db)
{
    const dimple_instance *r = db->resolver;
    return r && r->vt.resolver.resolve ? r : NULL;
}

/* Must a local write be merged at once (it may lose to a version already
 * held)? Not when the newest version always wins (DIMPLE_RESOLVE_NEWEST_WINS,
 * or the built-in rule): then the fold before the next apply records it. */
static bool local_may_lose(dimple *db)
{
    const dimple_instance *r = resolver(db);
    return r && !(r->vt.resolver.flags & DIMPLE_RESOLVE_NEWEST_WINS);
}

/* Ask the resolver which of two versions of a cell wins, and record the
 * winner in the cell's clock entry e. */
static int resolve_answer(dimple *db, const dimple_instance *res,
                          dimple_rcell *e, const dimple_cell *current,
                          const dimple_cell *in, int64_t seq, bool *won)
{
    const char *table = current->table ? current->table : "?";
    const char *column = current->column ? current->column : "?";
    dimple_value merged;
    memset(&merged, 0, sizeof merged);
    db->plugin_err = 0;
    int v = res->vt.resolver.resolve(&merged, res->self, current, in);
    if (v == DIMPLE_TAKE_INCOMING) {
        memcpy(e->id, in->id, 16);
        e->seq = seq;
        *won = true;
        return DIMPLE_OK;
    }
    if (v == DIMPLE_KEEP_CURRENT)
        return DIMPLE_OK;
    if (v == DIMPLE_MERGED)
        return dimple__seterr(db, DIMPLE_EPLUGIN,
                              "resolver %s: returned a merged value for"
                              " \"%s\".\"%s\"; this core keeps one of the"
                              " versions (KEEP_CURRENT or TAKE_INCOMING)",
                              res->plugin->name, table, column);
    if (v < 0) {
        if (!db->plugin_err)
            dimple__seterr(db, v, "resolver %s failed on \"%s\".\"%s\"",
                           res->plugin->name, table, column);
        return v;
    }
    return dimple__seterr(db, DIMPLE_EPLUGIN, "resolver %s: unknown answer %d",
                          res->plugin->name, v);
}

/* cell_offer through the resolver: it sees both versions (value, id,
 * author) and keeps one. Its order must be total (a join), so the owner
 * is the same whatever order the versions arrive in; a merged value
 * would not be any change's value, so it is refused. */
static int cell_resolve(dimple *db, int64_t t, uint64_t c, const uint8_t id[16],
                        int64_t seq, int64_t author,
                        const dimple_value *incoming, bool *won)
{
    struct dimple_track *tr = T(db);
    dimple_rcell *e = cell_find(tr, c);
    if (!e || memcmp(e->id, id, 16) == 0)
        return cell_offer(db, c, id, seq, won);
    *won = false;
    const dimple_instance *res = resolver(db);
    const char *table = dimple_track__name(db, t);
    const char *column = dimple_track__name(db, (int64_t)c - 1);
    if (res->vt.resolver.flags & DIMPLE_RESOLVE_IDS_ONLY) {
        /* the plugin reads the ids alone: no value or author to fetch */
        dimple_value none;
        memset(&none, 0, sizeof none);
        none.type = DIMPLE_NULL;
        dimple_cell current = {table, column, e->id, "", none};
        dimple_cell in = {table, column, id, "", none};
        return resolve_answer(db, res, e, &current, &in, seq, won);
    }
    if (!tr->res_fetch &&
        sqlite3_prepare_v3(
            db->sql, "SELECT v, author FROM _dimple_log WHERE seq = ?1", -1,
            SQLITE_PREPARE_PERSISTENT, &tr->res_fetch, NULL) != SQLITE_OK)
        return dimple__sqlerr(db, sqlite3_errcode(db->sql),
                              "change tracking: prepare");
    sqlite3_stmt *st = tr->res_fetch;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, e->seq);
    int r = DIMPLE_OK;
    if (sqlite3_step(st) != SQLITE_ROW) {
        r = dimple__seterr(db, DIMPLE_ECORRUPT,
                           "change tracking: the owner of a cell (log row"
                           " %lld) is missing",
                           (long long)e->seq);
        goto out;
    }
    const uint8_t *p = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0), pos = 0;
    dimple_value cur;
    bool found = false;
    while (pos < n && !found) {
        uint64_t cid;
        if (!dimple_unpack__varint(p, n, &pos, &cid) ||
            !dimple_unpack__value(p, n, &pos, &cur)) {
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "change tracking: malformed log row %lld",
                               (long long)e->seq);
            goto out;
        }
        found = cid + 1 == c;
    }
    if (!found) {
        r = dimple__seterr(db, DIMPLE_ECORRUPT,
                           "change tracking: log row %lld lacks the value of"
                           " its cell",
                           (long long)e->seq);
        goto out;
    }
    const uint8_t *ca =
        dimple_track__author_uuid(db, sqlite3_column_int64(st, 1));
    const uint8_t *ia = dimple_track__author_uuid(db, author);
    char cat[37] = "", iat[37] = "";
    if (ca)
        dimple_uuid__format(ca, cat);
    if (ia)
        dimple_uuid__format(ia, iat);
    dimple_cell current = {table, column, e->id, cat, cur};
    dimple_cell in = {table, column, id, iat, *incoming};
    r = resolve_answer(db, res, e, &current, &in, seq, won);
out:
    sqlite3_reset(st);
    return r;
}

/*
 * The one merge rule, for one logged change (DESIGN §5): per cell the
 * greater id owns it; a tombstone orders against cell changes by id; the
 * row exists when its newest insert/update is newer than its newest
 * tombstone. local: the user table already shows the change as written
 * (a trigger logged it), so only a lost cell or a wrong existence is
 * repaired; remote: the winning cells are written.
 */
static int merge_row(dimple *db, int64_t t, int64_t seq, const uint8_t id[16],
                     int64_t author, int op, const dimple_pbuf *k,
                     const uint8_t *v, size_t vn, bool local)
{
    struct dimple_track *tr = T(db);
    bool exists;
    size_t nc = 0;
    int r = decode_cols(db, v, vn, &nc);
    if (r)
        return r;
    /* A pulled insert usually creates its row: then the row's clock is
     * this change's alone, written by one statement that fails over to
     * the general path (load, merge, save) when the row has a clock. */
    bool fresh = false, won;
    if (!local && op == DIMPLE_OP_INSERT) {
        tr->n_cells = 0;
        if ((r = cell_offer(db, C_ALIVE, id, seq, &won)))
            return r;
        for (size_t i = 0; i < nc; i++)
            if ((r = cell_offer(db, (uint64_t)tr->cids[i] + 1, id, seq, &won)))
                return r;
        if ((r = state_write(db, t, k, true, &fresh)))
            return r;
    }
    if (fresh)
        tr->n_cells = 0; /* the clock before this change: none */
    else if ((r = state_load(db, t, k, &exists)))
        return r;
    bool before = state_alive(tr);
    bool any_lost = false;
    const dimple_ttable *tt = dimple_track__table_by_tid(db, t);
    bool want_buf[512], *want = want_buf, *want_heap = NULL;
    if (tt && tt->n_cols > 512) {
        want_heap = calloc(tt->n_cols, sizeof *want_heap);
        if (!want_heap)
            return oom(db);
        want = want_heap;
    }
    if (tt)
        memset(want, 0, tt->n_cols * sizeof *want);
    if (op == DIMPLE_OP_DELETE) {
        if ((r = cell_offer(db, C_DEAD, id, seq, &won)))
            goto out;
    } else {
        if ((r = cell_offer(db, C_ALIVE, id, seq, &won)))
            goto out;
        for (size_t i = 0; i < nc; i++) {
            if (resolver(db))
                r = cell_resolve(db, t, (uint64_t)tr->cids[i] + 1, id, seq,
                                 author, &tr->cv[i], &won);
            else
                r = cell_offer(db, (uint64_t)tr->cids[i] + 1, id, seq, &won);
            if (r)
                goto out;
            if (!tt)
                continue;
            /* local: mark the lost cells (to repair); remote: the won */
            for (size_t j = 0; j < tt->n_cols; j++)
                if (tt->cid[j] == tr->cids[i] && !tt->is_key[j]) {
                    want[j] = local ? !won : won;
                    if (local && !won)
                        any_lost = true;
                }
        }
    }
    bool after = state_alive(tr);
    if (!fresh && (r = state_save(db, t, k)))
        goto out;
    if (!tt)
        goto out; /* kept for when a migration adds the table */
    size_t nk;
    if ((r = decode_key(db, k->p, k->n, &nk)))
        goto out;
    if (nk != tt->n_key) {
        r = dimple__seterr(db, DIMPLE_ECORRUPT,
                           "table \"%s\": a change has %zu key values, the"
                           " table's primary key has %zu",
                           tt->name, nk, tt->n_key);
        goto out;
    }
    merge_src x = {seq, nc, tr->cids, tr->cv};
    int changes = 0;
    if (local) {
        if (op == DIMPLE_OP_DELETE) {
            if (after) /* a newer cell change keeps the row */
                r = tbl_write(db, tt, tr->kv, true, NULL, &x, &changes);
        } else if (!after) {
            r = tbl_delete(db, tt, tr->kv);
        } else if (any_lost) {
            r = tbl_write(db, tt, tr->kv, false, want, &x, &changes);
        }
    } else {
        if (after && !before) {
            r = tbl_write(db, tt, tr->kv, W_UPSERT, NULL, &x, &changes);
        } else if (after) {
            r = tbl_write(db, tt, tr->kv, false, want, &x, &changes);
            if (r == DIMPLE_OK && changes == 0) /* the row went missing */
                r = tbl_write(db, tt, tr->kv, true, NULL, &x, &changes);
        } else if (before) {
            r = tbl_delete(db, tt, tr->kv);
        }
    }
out:
    free(want_heap);
    return r;
}

/* Fold every change logged after the meta 'folded' mark into the row
 * clocks (local changes: the table already shows them). */
int dimple_track__fold(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    int64_t folded = 0;
    bool found;
    int r = meta_get(db, "folded", &folded, &found);
    if (r)
        return r;
    /* cached: fold runs before every apply; merges never re-enter it */
    sqlite3_stmt *st =
        cstmt(db, "SELECT seq, author, t, op, k, v, id FROM _dimple_log"
                  " WHERE seq > ?1 ORDER BY seq");
    int rc;
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, folded);
    bool was_muted = tr->muted;
    tr->muted = true;
    int64_t last = folded;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        uint8_t id[16];
        dimple_track__row_id(db, seq, sqlite3_column_int64(st, 1),
                             sqlite3_column_blob(st, 6),
                             sqlite3_column_bytes(st, 6), id);
        dimple_pbuf k = {(uint8_t *)sqlite3_column_blob(st, 4),
                         (size_t)sqlite3_column_bytes(st, 4), 0, false};
        const uint8_t *v = sqlite3_column_blob(st, 5);
        size_t vn = (size_t)sqlite3_column_bytes(st, 5);
        r = merge_row(db, sqlite3_column_int64(st, 2), seq, id,
                      sqlite3_column_int64(st, 1), sqlite3_column_int(st, 3),
                      &k, v, vn, sqlite3_column_type(st, 6) == SQLITE_NULL);
        if (r)
            break;
        last = seq;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE)
        r = dimple__sqlerr(db, rc, "change tracking: fold");
    sqlite3_reset(st);
    tr->muted = was_muted;
    if (r == DIMPLE_OK && last != folded)
        r = meta_set(db, "folded", last);
    return r;
}

/* ----------------------------------------------- the trigger functions */

static void fn_fail(sqlite3_context *ctx, dimple *db, int r)
{
    (void)r;
    sqlite3_result_error(ctx, db->errmsg, -1);
}

/* Pack the column arguments from argv[i0..]: pairs (cid, value) for an
 * insert, triplets (cid, old, new) for an update, or a BLOB built by
 * dimple_cols() for wide tables. Only changed columns unless all. */
static int pack_cols(dimple *db, bool upd, bool all, int argc,
                     sqlite3_value **argv, int i0, dimple_pbuf *out, size_t *n)
{
    *n = 0;
    for (int i = i0; i < argc;) {
        if (sqlite3_value_type(argv[i]) == SQLITE_BLOB) {
            const uint8_t *p = sqlite3_value_blob(argv[i]);
            size_t len = (size_t)sqlite3_value_bytes(argv[i]), pos = 0;
            while (pos < len) {
                uint64_t cc;
                dimple_value dv;
                if (!dimple_unpack__varint(p, len, &pos, &cc))
                    goto bad;
                size_t at = pos;
                if (!dimple_unpack__value(p, len, &pos, &dv))
                    goto bad;
                if ((cc & 1) || all) {
                    dimple_pack__varint(out, cc >> 1);
                    dimple_pbuf__add(out, p + at, pos - at);
                    (*n)++;
                }
            }
            i++;
            continue;
        }
        int per = upd ? 3 : 2;
        if (i + per > argc || sqlite3_value_type(argv[i]) != SQLITE_INTEGER)
            goto bad;
        sqlite3_int64 cid = sqlite3_value_int64(argv[i]);
        sqlite3_value *nv = argv[i + per - 1];
        if (!upd || all || !dimple_pack__same(argv[i + 1], nv)) {
            dimple_pack__varint(out, (uint64_t)cid);
            dimple_pack__sqlite(out, nv);
            (*n)++;
        }
        i += per;
    }
    if (out->oom)
        return oom(db);
    return DIMPLE_OK;
bad:
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change tracking: unexpected trigger arguments"
                          " (regenerate the triggers: reopen the database)");
}

static int local_begin(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (tr->copied)
        return dimple__seterr(db, DIMPLE_ECONFLICT, "%s", tr->copied_msg);
    return clock_sync(db);
}

/* After a local change: when a remote id is ahead of the clock, fold now
 * so the winning values are restored (DESIGN §3). */
static int local_end(dimple *db, uint64_t seq)
{
    struct dimple_track *tr = T(db);
    if (tr->max_seen < seq && !local_may_lose(db))
        return DIMPLE_OK;
    return dimple_track__fold(db);
}

/* Pack nk key values argv[first], argv[first + stride], ... into b. */
static int pack_key(dimple *db, dimple_pbuf *b, sqlite3_value **argv, int first,
                    int stride, int nk)
{
    dimple_pbuf__reset(b);
    for (int i = 0; i < nk; i++)
        dimple_pack__sqlite(b, argv[first + stride * i]);
    return b->oom ? oom(db) : DIMPLE_OK;
}

/* Append one local change, under the next value of the clock (*seq). */
static int log_local(dimple *db, int64_t t, int op, const dimple_pbuf *k,
                     const dimple_pbuf *v, uint64_t *seq)
{
    struct dimple_track *tr = T(db);
    *seq = tick(tr);
    return log_append(db, (int64_t)*seq, tr->me, t, op, k, v, NULL);
}

/* A delete that fired no trigger (OR REPLACE; replace.c), logged now. */
static int log_replaced(dimple *db, int64_t t, const dimple_pbuf *key)
{
    uint64_t seq;
    int r = log_local(db, t, DIMPLE_OP_DELETE, key, NULL, &seq);
    return r ? r : local_end(db, seq);
}

static void fn_ins(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    struct dimple_track *tr = T(db);
    if (tr->muted)
        return;
    int r = local_begin(db);
    if (r == DIMPLE_OK)
        r = dimple_replace__flush(db, log_replaced);
    if (r)
        goto fail;
    if (argc < 3)
        goto bad;
    int64_t t = sqlite3_value_int64(argv[0]);
    int nk = sqlite3_value_int(argv[1]);
    if (nk < 1 || 2 + nk > argc)
        goto bad;
    dimple_pbuf__reset(&tr->vbuf);
    size_t n;
    uint64_t seq;
    if ((r = pack_key(db, &tr->kbuf, argv, 2, 1, nk)) ||
        (r = pack_cols(db, false, true, argc, argv, 2 + nk, &tr->vbuf, &n)))
        goto fail;
    r = log_local(db, t, DIMPLE_OP_INSERT, &tr->kbuf, &tr->vbuf, &seq);
    if (r == DIMPLE_OK)
        r = local_end(db, seq);
    if (r)
        goto fail;
    return;
bad:
    r = dimple__seterr(db, DIMPLE_ECORRUPT,
                       "change tracking: unexpected trigger arguments");
fail:
    fn_fail(ctx, db, r);
}

static void fn_del(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    struct dimple_track *tr = T(db);
    if (tr->muted)
        return;
    int r = local_begin(db);
    if (r)
        goto fail;
    if (argc < 3)
        goto bad;
    int64_t t = sqlite3_value_int64(argv[0]);
    int nk = sqlite3_value_int(argv[1]);
    if (nk < 1 || 2 + nk != argc)
        goto bad;
    uint64_t seq;
    if ((r = pack_key(db, &tr->kbuf, argv, 2, 1, nk)))
        goto fail;
    r = log_local(db, t, DIMPLE_OP_DELETE, &tr->kbuf, NULL, &seq);
    if (r == DIMPLE_OK)
        dimple_replace__taken(db, t, &tr->kbuf);
    if (r == DIMPLE_OK)
        r = local_end(db, seq);
    if (r)
        goto fail;
    return;
bad:
    r = dimple__seterr(db, DIMPLE_ECORRUPT,
                       "change tracking: unexpected trigger arguments");
fail:
    fn_fail(ctx, db, r);
}

static void fn_upd(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    struct dimple_track *tr = T(db);
    if (tr->muted)
        return;
    int r = local_begin(db);
    if (r == DIMPLE_OK)
        r = dimple_replace__flush(db, log_replaced);
    if (r)
        goto fail;
    if (argc < 4)
        goto bad;
    int64_t t = sqlite3_value_int64(argv[0]);
    int nk = sqlite3_value_int(argv[1]);
    if (nk < 1 || 2 + 2 * nk > argc)
        goto bad;
    bool key_changed = false;
    for (int i = 0; i < nk; i++)
        if (!dimple_pack__same(argv[2 + 2 * i], argv[3 + 2 * i]))
            key_changed = true;
    dimple_pbuf__reset(&tr->vbuf);
    size_t n;
    uint64_t seq;
    if ((r = pack_key(db, &tr->kbuf, argv, 3, 2, nk)) ||
        (r = pack_cols(db, true, key_changed, argc, argv, 2 + 2 * nk, &tr->vbuf,
                       &n)))
        goto fail;
    if (key_changed) {
        /* a new key is another row: the old one is deleted */
        if ((r = pack_key(db, &tr->kbuf2, argv, 2, 2, nk)))
            goto fail;
        r = log_local(db, t, DIMPLE_OP_DELETE, &tr->kbuf2, NULL, &seq);
        if (r == DIMPLE_OK)
            r = log_local(db, t, DIMPLE_OP_INSERT, &tr->kbuf, &tr->vbuf, &seq);
    } else {
        if (n == 0)
            return; /* nothing changed: nothing to record */
        r = log_local(db, t, DIMPLE_OP_UPDATE, &tr->kbuf, &tr->vbuf, &seq);
    }
    if (r == DIMPLE_OK)
        r = local_end(db, seq);
    if (r)
        goto fail;
    return;
bad:
    r = dimple__seterr(db, DIMPLE_ECORRUPT,
                       "change tracking: unexpected trigger arguments");
fail:
    fn_fail(ctx, db, r);
}

/* dimple_cols(upd, cid, [old,] new, ...): a chunk of a wide table's
 * columns, entries (varint cid << 1 | changed, packed new value). */
static void fn_cols(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    if (db->track->muted)
        return;
    dimple_pbuf b = {0};
    if (argc < 1) {
        sqlite3_result_error(ctx, "dimple_cols: arguments", -1);
        return;
    }
    bool upd = sqlite3_value_int(argv[0]) != 0;
    int per = upd ? 3 : 2;
    if ((argc - 1) % per) {
        sqlite3_result_error(ctx, "dimple_cols: arguments", -1);
        return;
    }
    for (int i = 1; i < argc; i += per) {
        sqlite3_value *nv = argv[i + per - 1];
        bool changed = !upd || !dimple_pack__same(argv[i + 1], nv);
        dimple_pack__varint(&b, (uint64_t)sqlite3_value_int64(argv[i]) << 1 |
                                    changed);
        dimple_pack__sqlite(&b, nv);
    }
    if (b.oom) {
        sqlite3_result_error_nomem(ctx);
    } else {
        /* an empty chunk is still a BLOB, never NULL */
        sqlite3_result_blob(ctx, b.p ? (const void *)b.p : "", (int)b.n,
                            SQLITE_TRANSIENT);
    }
    dimple_pbuf__free(&b);
}

/* dimple_id(seq, author, id): a log row's 16-byte change id (history). */
static void fn_id(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    (void)argc;
    uint8_t id[16];
    dimple_track__row_id(
        db, sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]),
        sqlite3_value_blob(argv[2]), sqlite3_value_bytes(argv[2]), id);
    sqlite3_result_blob(ctx, id, 16, SQLITE_TRANSIENT);
}

static int register_functions(dimple *db)
{
    static const struct {
        const char *name;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
        int n;
    } fns[] = {{"dimple_ins", fn_ins, -1},
               {"dimple_upd", fn_upd, -1},
               {"dimple_del", fn_del, -1},
               {"dimple_cols", fn_cols, -1},
               {"dimple_id", fn_id, 3}};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int rc = sqlite3_create_function_v2(db->sql, fns[i].name, fns[i].n,
                                            SQLITE_UTF8, db, fns[i].fn, NULL,
                                            NULL, NULL);
        if (rc != SQLITE_OK)
            return dimple__sqlerr(db, rc,
                                  "change tracking: register"
                                  " functions");
    }
    return DIMPLE_OK;
}

/* ------------------------------------------------------- remote apply */

/* Is id a change this database made itself (under any of its authors)?
 * Remote changes already held are found by the append (log_append_x). */
static int held_local(dimple *db, const uint8_t id[16], bool *out)
{
    *out = false;
    sqlite3_stmt *st = cstmt(db, "SELECT author FROM _dimple_log"
                                 " WHERE seq = ?1 AND id IS NULL");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, (int64_t)dimple_id__hi(id));
    int rc = sqlite3_step(st);
    int64_t a = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    if (a) {
        const uint8_t *u = dimple_track__author_uuid(db, a);
        *out = u && dimple_id__lo(u) == dimple_id__lo(id);
    }
    return DIMPLE_OK;
}

/* Does the log hold remote change id? (The apply loop learns it from the
 * append; this lookup serves only the error path.) */
static int held_remote(dimple *db, const uint8_t id[16], bool *out)
{
    sqlite3_stmt *st = cstmt(db, "SELECT 1 FROM _dimple_log WHERE id = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    *out = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    return DIMPLE_OK;
}

/* The local rows (id NULL) with seq in [lo, hi], in seq order, into
 * tr->lseq / tr->lauth: one range read per apply call answers held_local
 * for every change of the call (applying adds no local rows). *ok false
 * when the range holds more than cap rows of any kind (the read stays
 * bounded): then each change is looked up. */
static int local_range(dimple *db, int64_t lo, int64_t hi, size_t cap, bool *ok)
{
    struct dimple_track *tr = T(db);
    *ok = false;
    tr->n_l = 0;
    if (cap > tr->cap_l) {
        int64_t *a = realloc(tr->lseq, cap * sizeof *a);
        if (!a)
            return oom(db);
        tr->lseq = a;
        int64_t *b = realloc(tr->lauth, cap * sizeof *b);
        if (!b)
            return oom(db);
        tr->lauth = b;
        tr->cap_l = cap;
    }
    sqlite3_stmt *st = cstmt(db, "SELECT seq, author, id IS NULL"
                                 " FROM _dimple_log WHERE seq BETWEEN ?1"
                                 " AND ?2 ORDER BY seq LIMIT ?3");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    sqlite3_bind_int64(st, 3, (int64_t)cap + 1);
    int rc;
    size_t seen = 0;
    bool over = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (seen++ == cap) {
            over = true;
            break;
        }
        if (!sqlite3_column_int(st, 2))
            continue; /* a remote change's row */
        tr->lseq[tr->n_l] = sqlite3_column_int64(st, 0);
        tr->lauth[tr->n_l++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    *ok = !over;
    return DIMPLE_OK;
}

/* held_local answered from local_range's rows. */
static void held_in_range(dimple *db, const uint8_t id[16], bool *out)
{
    struct dimple_track *tr = T(db);
    int64_t seq = (int64_t)dimple_id__hi(id);
    size_t a = 0, b = tr->n_l;
    *out = false;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (tr->lseq[m] < seq)
            a = m + 1;
        else
            b = m;
    }
    if (a < tr->n_l && tr->lseq[a] == seq) {
        const uint8_t *u = dimple_track__author_uuid(db, tr->lauth[a]);
        *out = u && dimple_id__lo(u) == dimple_id__lo(id);
    }
}

static int bad_change(dimple *db, size_t i, const dimple_change *c,
                      const char *why)
{
    char id[37];
    dimple_uuid__format(c->id, id);
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change %zu (id %s, table \"%s\"): %s", i, id,
                          c->table ? c->table : "(null)", why);
}

static int check_change(dimple *db, size_t i, const dimple_change *c)
{
    if ((c->id[6] >> 4) != 7 || (c->id[8] & 0xc0) != 0x80)
        return bad_change(db, i, c, "the id is not a UUIDv7");
    if (!c->table || !c->table[0])
        return bad_change(db, i, c, "no table name");
    if (c->op != DIMPLE_OP_INSERT && c->op != DIMPLE_OP_UPDATE &&
        c->op != DIMPLE_OP_DELETE)
        return bad_change(db, i, c, "unknown op");
    if (c->op == DIMPLE_OP_DELETE && c->n_cols)
        return bad_change(db, i, c, "a delete carries columns");
    if (c->n_key < 1 || !c->key)
        return bad_change(db, i, c, "no primary-key value");
    if (c->n_cols && (!c->cols || !c->col_names))
        return bad_change(db, i, c, "columns without names or values");
    for (size_t j = 0; j < c->n_key; j++)
        if (c->key[j].type < DIMPLE_INTEGER || c->key[j].type > DIMPLE_NULL ||
            ((c->key[j].type == DIMPLE_TEXT || c->key[j].type == DIMPLE_BLOB) &&
             c->key[j].n && !c->key[j].p))
            return bad_change(db, i, c, "a key value has a bad type");
    for (size_t j = 0; j < c->n_cols; j++) {
        if (!c->col_names[j] || !c->col_names[j][0])
            return bad_change(db, i, c, "a column without a name");
        if (c->cols[j].type < DIMPLE_INTEGER || c->cols[j].type > DIMPLE_NULL ||
            ((c->cols[j].type == DIMPLE_TEXT ||
              c->cols[j].type == DIMPLE_BLOB) &&
             c->cols[j].n && !c->cols[j].p))
            return bad_change(db, i, c, "a column value has a bad type");
    }
    return DIMPLE_OK;
}

int dimple_track__apply(dimple *db, const dimple_change *changes, size_t n)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "change tracking is not set up on this"
                              " database (read-only?)");
    if (n && !changes)
        return dimple__seterr(db, DIMPLE_EINVAL, "apply: no changes given");
    for (size_t i = 0; i < n; i++) {
        int r = check_change(db, i, &changes[i]);
        if (r)
            return r;
    }
    int r = caches_check(db);
    if (r == DIMPLE_OK)
        r = clock_sync(db);
    if (r == DIMPLE_OK)
        r = dimple_track__fold(db);
    if (r)
        return r;
    /* a child row may arrive before its parent (another author's batch):
     * foreign keys are checked when the caller commits */
    sqlite3_stmt *fk = cstmt(db, "PRAGMA defer_foreign_keys");
    if (fk && sqlite3_step(fk) == SQLITE_ROW &&
        sqlite3_column_int(fk, 0) == 0) {
        /* setting it expires every prepared statement: only when off (it
         * switches itself off at each COMMIT: once per transaction) */
        sqlite3_reset(fk);
        sqlite3_exec(db->sql, "PRAGMA defer_foreign_keys = ON", NULL, NULL,
                     NULL);
    }
    if (fk)
        sqlite3_reset(fk);
    bool was_muted = tr->muted;
    tr->muted = true;
    uint64_t seen_before = tr->max_seen;
    int64_t last_seq = 0;
    bool ranged = false;
    if (n > 1) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
            int64_t h = (int64_t)dimple_id__hi(changes[i].id);
            lo = h < lo ? h : lo;
            hi = h > hi ? h : hi;
        }
        /* bounded read and memory (1 MiB); beyond, per-change lookups */
        size_t cap = n < 16384 ? 4 * n + 64 : 65536;
        r = local_range(db, lo, hi, cap, &ranged);
    }
    for (size_t i = 0; i < n && r == DIMPLE_OK; i++) {
        const dimple_change *c = &changes[i];
        int64_t aidx, tid;
        bool have;
        if (ranged)
            held_in_range(db, c->id, &have);
        else if ((r = held_local(db, c->id, &have)))
            break;
        if (have)
            continue;
        if ((r = author_intern(db, c->author, &aidx)))
            break;
        if ((r = name_intern(db, c->table, &tid)))
            break;
        const dimple_ttable *tt = dimple_track__table_by_tid(db, tid);
        if (tt && c->n_key != tt->n_key) {
            /* a change held already (from before a migration changed the
             * key) is skipped like any held change, not refused */
            if ((r = held_remote(db, c->id, &have)))
                break;
            if (have)
                continue;
            char why[160];
            snprintf(why, sizeof why,
                     "%zu key values for a primary key of %zu columns",
                     c->n_key, tt->n_key);
            r = bad_change(db, i, c, why);
            break;
        }
        dimple_pbuf__reset(&tr->kbuf);
        dimple_pbuf__reset(&tr->vbuf2);
        for (size_t j = 0; j < c->n_key; j++)
            dimple_pack__value(&tr->kbuf, &c->key[j]);
        for (size_t j = 0; j < c->n_cols && r == DIMPLE_OK; j++) {
            int64_t cid;
            if ((r = name_intern(db, c->col_names[j], &cid)))
                break;
            dimple_pack__varint(&tr->vbuf2, (uint64_t)cid);
            dimple_pack__value(&tr->vbuf2, &c->cols[j]);
        }
        if (r)
            break;
        if (tr->kbuf.oom || tr->vbuf2.oom) {
            r = oom(db);
            break;
        }
        /* observing a change already held changes nothing: it was
         * observed when it arrived */
        observe(tr, c->id);
        int64_t seq = (int64_t)tick(tr);
        bool added = false;
        r = log_append_x(db, seq, aidx, tid, c->op, &tr->kbuf,
                         c->op == DIMPLE_OP_DELETE ? NULL : &tr->vbuf2, c->id,
                         &added);
        if (r)
            break;
        if (!added)
            continue; /* held already: applying it again is a no-op */
        r = merge_row(db, tid, seq, c->id, aidx, c->op, &tr->kbuf, tr->vbuf2.p,
                      tr->vbuf2.n, false);
        last_seq = seq;
    }
    tr->muted = was_muted;
    if (r == DIMPLE_OK && last_seq)
        r = meta_set(db, "folded", last_seq);
    if (r == DIMPLE_OK && tr->max_seen != seen_before)
        r = meta_set(db, "max_seen", (int64_t)tr->max_seen);
    return r;
}

/* ------------------------------------------------------ walking the log */

typedef struct walk {
    dimple_value *kv, *cv;
    const char **names;
    size_t cap_k, cap_c;
} walk;

static void walk_free(walk *w)
{
    free(w->kv);
    free(w->cv);
    free(w->names);
}

/* Decode the current row of st (seq, author, t, op, k, v, id) into c. */
static int walk_row(dimple *db, sqlite3_stmt *st, walk *w, dimple_change *c)
{
    memset(c, 0, sizeof *c);
    int64_t seq = sqlite3_column_int64(st, 0);
    int64_t author = sqlite3_column_int64(st, 1);
    dimple_track__row_id(db, seq, author, sqlite3_column_blob(st, 6),
                         sqlite3_column_bytes(st, 6), c->id);
    const uint8_t *a = dimple_track__author_uuid(db, author);
    if (!a)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: log row %lld names an"
                              " unknown author",
                              (long long)seq);
    memcpy(c->author, a, 16);
    c->table = dimple_track__name(db, sqlite3_column_int64(st, 2));
    if (!c->table)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: log row %lld names an"
                              " unknown table",
                              (long long)seq);
    c->op = (dimple_op)sqlite3_column_int(st, 3);
    const uint8_t *p = sqlite3_column_blob(st, 4);
    size_t n = (size_t)sqlite3_column_bytes(st, 4), pos = 0, i = 0;
    while (pos < n) {
        if (i >= w->cap_k) {
            size_t cap = w->cap_k ? w->cap_k * 2 : 8;
            dimple_value *kv = realloc(w->kv, cap * sizeof *kv);
            if (!kv)
                return oom(db);
            w->kv = kv;
            w->cap_k = cap;
        }
        if (!dimple_unpack__value(p, n, &pos, &w->kv[i++]))
            goto bad;
    }
    c->n_key = i;
    c->key = w->kv;
    p = sqlite3_column_blob(st, 5);
    n = (size_t)sqlite3_column_bytes(st, 5);
    pos = 0;
    i = 0;
    while (pos < n) {
        if (i >= w->cap_c) {
            size_t cap = w->cap_c ? w->cap_c * 2 : 16;
            dimple_value *cv = realloc(w->cv, cap * sizeof *cv);
            if (!cv)
                return oom(db);
            w->cv = cv;
            const char **nm = realloc(w->names, cap * sizeof *nm);
            if (!nm)
                return oom(db);
            w->names = nm;
            w->cap_c = cap;
        }
        uint64_t cid;
        if (!dimple_unpack__varint(p, n, &pos, &cid) ||
            !dimple_unpack__value(p, n, &pos, &w->cv[i]))
            goto bad;
        w->names[i] = dimple_track__name(db, (int64_t)cid);
        if (!w->names[i])
            goto bad;
        i++;
    }
    c->n_cols = i;
    c->cols = w->cv;
    c->col_names = w->names;
    return DIMPLE_OK;
bad:
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change tracking: malformed log row %lld",
                          (long long)seq);
}

int dimple_track__each_local(dimple *db, const uint8_t *after,
                             dimple_change_cb cb, void *payload)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    sqlite3_stmt *st = NULL;
    walk w = {0};
    int rc = sqlite3_prepare_v2(
        db->sql,
        "SELECT seq, author, t, op, k, v, id FROM _dimple_log"
        " WHERE seq >= ?1 AND author = ?2 AND id IS NULL ORDER BY seq",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_bind_int64(st, 1, after ? (int64_t)dimple_id__hi(after) : 0);
    sqlite3_bind_int64(st, 2, tr->me);
    int r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dimple_change c;
        if ((r = walk_row(db, st, &w, &c)))
            break;
        if (after && id_cmp(c.id, after) <= 0)
            continue;
        if ((r = cb(payload, &c)))
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_finalize(st);
    walk_free(&w);
    return r;
}

int dimple_track__each_since(dimple *db, int64_t *seq, dimple_change_cb cb,
                             void *payload)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    sqlite3_stmt *st = NULL;
    walk w = {0};
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT seq, author, t, op, k, v, id FROM"
                                " _dimple_log WHERE seq > ?1 ORDER BY seq",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_bind_int64(st, 1, *seq);
    int r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dimple_change c;
        if ((r = walk_row(db, st, &w, &c)))
            break;
        *seq = sqlite3_column_int64(st, 0);
        if ((r = cb(payload, &c)))
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_finalize(st);
    walk_free(&w);
    return r;
}

int64_t dimple_track__last_seq(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return 0;
    sqlite3_stmt *st =
        cstmt(db, "SELECT coalesce(max(seq), 0) FROM _dimple_log");
    if (!st)
        return 0;
    int64_t v =
        sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return v;
}

int dimple_track__author(dimple *db, uint8_t out[16])
{
    struct dimple_track *tr = T(db);
    /* no message: live asks this at open, where a read-only database
     * without an author is not an error */
    if (!tr || !tr->ready || !tr->me)
        return DIMPLE_ENOTFOUND;
    memcpy(out, tr->author, 16);
    return DIMPLE_OK;
}

/* ------------------------------------------------ tables and triggers */

static void table_free(dimple_ttable *tt)
{
    free(tt->name);
    if (tt->cname)
        for (size_t i = 0; i < tt->n_cols; i++)
            free(tt->cname[i]);
    free(tt->cname);
    free(tt->cid);
    free(tt->is_key);
    free(tt->key_col);
    free(tt->pre_col);
    memset(tt, 0, sizeof *tt);
}

static void tables_free(struct dimple_track *tr)
{
    for (size_t i = 0; i < tr->n_tables; i++)
        table_free(&tr->tables[i]);
    free(tr->tables);
    tr->tables = NULL;
    tr->n_tables = 0;
}

/* Is name in the configured list ("*", "a,b", "")? */
static bool spec_has(const char *spec, const char *name)
{
    if (!spec)
        spec = "*";
    size_t n = strlen(name);
    for (const char *p = spec; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *end = e;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t len = (size_t)(end - p);
        if (len == 1 && *p == '*')
            return true;
        if (len == n && sqlite3_strnicmp(p, name, (int)n) == 0)
            return true;
        p = e;
    }
    return false;
}

/* Read a table's columns and key; refuse what cannot sync. */
static int table_load(dimple *db, const char *name, bool without_rowid,
                      dimple_ttable *tt)
{
    memset(tt, 0, sizeof *tt);
    int r = DIMPLE_OK;
    sqlite3_stmt *st = NULL;
    size_t cap = 0, n_pk_cols = 0;
    int maxpk = 0;
    char *pk_type = NULL;
    int rc = sqlite3_prepare_v2(
        db->sql,
        "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?1, 'main')"
        " ORDER BY cid",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read the schema");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (!(tt->name = strdup(name))) {
        r = oom(db);
        goto out;
    }
    /* how sqlite3_preupdate_old() (3.40) numbers columns, measured: in
     * table order for a WITHOUT ROWID table; as the record stores them
     * for a rowid table, where a VIRTUAL generated column (hidden 2) has
     * no place (replace.c reads keys of deleted rows by these) */
    int n_all = 0, n_stored = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int hidden = sqlite3_column_int(st, 3);
        int pre = without_rowid ? n_all : n_stored;
        n_all++;
        n_stored += hidden != 2;
        if (hidden != 0)
            continue; /* generated columns cannot be written */
        if (tt->n_cols == cap) {
            cap = cap ? cap * 2 : 16;
            char **cn = realloc(tt->cname, cap * sizeof *cn);
            if (cn)
                tt->cname = cn;
            int64_t *ci = realloc(tt->cid, cap * sizeof *ci);
            if (ci)
                tt->cid = ci;
            bool *ik = realloc(tt->is_key, cap * sizeof *ik);
            if (ik)
                tt->is_key = ik;
            size_t *kc = realloc(tt->key_col, cap * sizeof *kc);
            if (kc)
                tt->key_col = kc;
            int *pc = realloc(tt->pre_col, cap * sizeof *pc);
            if (pc)
                tt->pre_col = pc;
            if (!cn || !ci || !ik || !kc || !pc) {
                r = oom(db);
                goto out;
            }
        }
        size_t i = tt->n_cols;
        tt->cname[i] = strdup((const char *)sqlite3_column_text(st, 0));
        if (!tt->cname[i]) {
            r = oom(db);
            goto out;
        }
        tt->pre_col[i] = pre;
        tt->n_cols++;
        int pk = sqlite3_column_int(st, 2);
        tt->is_key[i] = pk > 0;
        tt->key_col[i] = 0;
        if (pk > 0) {
            n_pk_cols++;
            if (pk > maxpk)
                maxpk = pk;
            const char *ty = (const char *)sqlite3_column_text(st, 1);
            free(pk_type);
            pk_type = strdup(ty ? ty : "");
        }
        if ((r = name_intern(db, tt->cname[i], &tt->cid[i])))
            goto out;
    }
    if (rc != SQLITE_DONE) {
        r = dimple__sqlerr(db, rc, "change tracking: read the schema");
        goto out;
    }
    if (n_pk_cols == 0) {
        r = dimple__seterr(db, DIMPLE_ESCHEMA,
                           "table \"%s\" has no primary key: a synced table"
                           " needs one (e.g. id TEXT PRIMARY KEY holding a"
                           " UUIDv7), or leave it out of [dimple] tables",
                           name);
        goto out;
    }
    if (n_pk_cols == 1 && !without_rowid && pk_type &&
        sqlite3_stricmp(pk_type, "INTEGER") == 0) {
        r = dimple__seterr(db, DIMPLE_ESCHEMA,
                           "table \"%s\": its INTEGER PRIMARY KEY is an"
                           " auto-assigned rowid that collides across"
                           " devices; use a TEXT or BLOB key (a UUIDv7) or"
                           " leave it out of [dimple] tables",
                           name);
        goto out;
    }
    /* key_col in key order: the pk column numbers are 1..n */
    tt->n_key = 0;
    sqlite3_reset(st);
    sqlite3_finalize(st);
    st = NULL;
    {
        size_t *order = calloc((size_t)maxpk + 1, sizeof *order);
        int *pkno = calloc(tt->n_cols, sizeof *pkno);
        if (!order || !pkno) {
            free(order);
            free(pkno);
            r = oom(db);
            goto out;
        }
        rc = sqlite3_prepare_v2(db->sql,
                                "SELECT pk FROM pragma_table_xinfo(?1, 'main')"
                                " WHERE hidden = 0 ORDER BY cid",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            size_t i = 0;
            while (sqlite3_step(st) == SQLITE_ROW && i < tt->n_cols)
                pkno[i++] = sqlite3_column_int(st, 0);
        }
        for (size_t i = 0; i < tt->n_cols; i++)
            if (pkno[i] > 0 && pkno[i] <= maxpk)
                order[pkno[i]] = i + 1;
        size_t *kc = calloc(n_pk_cols, sizeof *kc);
        if (!kc) {
            free(order);
            free(pkno);
            r = oom(db);
            goto out;
        }
        for (int p = 1; p <= maxpk; p++)
            if (order[p])
                kc[tt->n_key++] = order[p] - 1;
        free(tt->key_col);
        tt->key_col = kc;
        free(order);
        free(pkno);
    }
    if ((r = name_intern(db, name, &tt->tid)))
        goto out;
out:
    free(pk_type);
    sqlite3_finalize(st);
    if (r)
        table_free(tt);
    return r;
}

/* The trigger statements for a table. */
static char *trigger_sql(dimple *db, const dimple_ttable *tt, int which)
{
    static const char *const kind[] = {"INSERT", "UPDATE", "DELETE"};
    static const char *const tag[] = {"i", "u", "d"};
    static const char *const fn[] = {"dimple_ins", "dimple_upd", "dimple_del"};
    int limit = sqlite3_limit(db->sql, SQLITE_LIMIT_FUNCTION_ARG, -1);
    if (limit < 8)
        limit = 8;
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendf(s,
                        "CREATE TRIGGER \"_dimple_%s_%w\" AFTER %s ON \"%w\""
                        " BEGIN SELECT %s(%lld, %lld",
                        tag[which], tt->name, kind[which], tt->name, fn[which],
                        (long long)tt->tid, (long long)tt->n_key);
    const char *src = which == 2 ? "OLD" : "NEW";
    for (size_t i = 0; i < tt->n_key; i++) {
        const char *c = tt->cname[tt->key_col[i]];
        if (which == 1)
            sqlite3_str_appendf(s, ", OLD.\"%w\", NEW.\"%w\"", c, c);
        else
            sqlite3_str_appendf(s, ", %s.\"%w\"", src, c);
    }
    if (which != 2) {
        size_t per = which == 1 ? 3 : 2;
        size_t n_val = tt->n_cols - tt->n_key;
        size_t head = 2 + tt->n_key * (which == 1 ? 2 : 1);
        bool direct = head + n_val * per <= (size_t)limit;
        size_t chunk = ((size_t)limit - 1) / per, in_chunk = 0;
        for (size_t i = 0; i < tt->n_cols; i++) {
            if (tt->is_key[i])
                continue;
            const char *c = tt->cname[i];
            if (!direct) {
                if (in_chunk == 0)
                    sqlite3_str_appendf(s, ", dimple_cols(%d",
                                        which == 1 ? 1 : 0);
            }
            if (which == 1)
                sqlite3_str_appendf(s, ", %lld, OLD.\"%w\", NEW.\"%w\"",
                                    (long long)tt->cid[i], c, c);
            else
                sqlite3_str_appendf(s, ", %lld, NEW.\"%w\"",
                                    (long long)tt->cid[i], c);
            if (!direct && ++in_chunk == chunk) {
                sqlite3_str_appendall(s, ")");
                in_chunk = 0;
            }
        }
        if (!direct && in_chunk)
            sqlite3_str_appendall(s, ")");
    }
    sqlite3_str_appendall(s, "); END");
    return sqlite3_str_finish(s);
}

/* Make the table's triggers what they should be (only DDL when needed, so
 * other connections' statements are not invalidated for nothing). */
static int triggers_sync(dimple *db, const dimple_ttable *tts, size_t n)
{
    int r = DIMPLE_OK;
    sqlite3_stmt *st = NULL;
    char **have_name = NULL, **have_sql = NULL;
    size_t nh = 0, caph = 0;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT name, sql FROM sqlite_schema WHERE"
                                " type = 'trigger' AND name LIKE"
                                " '\\_dimple\\_%' ESCAPE '\\'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read the schema");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (nh == caph) {
            caph = caph ? caph * 2 : 16;
            char **a = realloc(have_name, caph * sizeof *a);
            if (a)
                have_name = a;
            char **b = realloc(have_sql, caph * sizeof *b);
            if (b)
                have_sql = b;
            if (!a || !b) {
                r = oom(db);
                goto out;
            }
        }
        have_name[nh] = strdup((const char *)sqlite3_column_text(st, 0));
        const char *q = (const char *)sqlite3_column_text(st, 1);
        have_sql[nh] = strdup(q ? q : "");
        nh++;
        if (!have_name[nh - 1] || !have_sql[nh - 1]) {
            r = oom(db);
            goto out;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    bool *keep = calloc(nh ? nh : 1, sizeof *keep);
    if (!keep) {
        r = oom(db);
        goto out;
    }
    for (size_t t = 0; t < n && r == DIMPLE_OK; t++) {
        for (int w = 0; w < 3 && r == DIMPLE_OK; w++) {
            char *sql = trigger_sql(db, &tts[t], w);
            if (!sql) {
                r = oom(db);
                break;
            }
            bool same = false;
            for (size_t h = 0; h < nh; h++)
                if (strcmp(have_sql[h], sql) == 0) {
                    keep[h] = true;
                    same = true;
                }
            if (!same) {
                static const char *const tag[] = {"i", "u", "d"};
                char *drop =
                    sqlite3_mprintf("DROP TRIGGER IF EXISTS \"_dimple_%s_%w\"",
                                    tag[w], tts[t].name);
                if (!drop) {
                    r = oom(db);
                } else {
                    r = exec_sql(db, drop, "change tracking: drop trigger");
                    sqlite3_free(drop);
                }
                if (r == DIMPLE_OK)
                    r = exec_sql(db, sql, "change tracking: create trigger");
                if (r == DIMPLE_OK) {
                    /* the name now holds the new trigger */
                    char nm[16];
                    snprintf(nm, sizeof nm, "_dimple_%s_", tag[w]);
                    for (size_t h = 0; h < nh; h++)
                        if (strncmp(have_name[h], nm, strlen(nm)) == 0 &&
                            sqlite3_stricmp(have_name[h] + strlen(nm),
                                            tts[t].name) == 0)
                            keep[h] = true;
                }
            }
            sqlite3_free(sql);
        }
    }
    for (size_t h = 0; h < nh && r == DIMPLE_OK; h++) {
        if (keep[h])
            continue;
        char *drop =
            sqlite3_mprintf("DROP TRIGGER IF EXISTS \"%w\"", have_name[h]);
        if (!drop) {
            r = oom(db);
            break;
        }
        r = exec_sql(db, drop, "change tracking: drop trigger");
        sqlite3_free(drop);
    }
    free(keep);
out:
    sqlite3_finalize(st);
    for (size_t h = 0; h < nh; h++) {
        free(have_name[h]);
        free(have_sql[h]);
    }
    free(have_name);
    free(have_sql);
    return r;
}

/* The column ids already materialized for table t ("" if none; NULL if
 * the table was not tracked). */
static int tables_prev(dimple *db, int64_t t, char **out)
{
    *out = NULL;
    sqlite3_stmt *st =
        cstmt(db, "SELECT cols FROM _dimple_tables WHERE t = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, t);
    int rc = sqlite3_step(st);
    int r = DIMPLE_OK;
    if (rc == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        size_t len = strlen(c ? c : "");
        *out = malloc(len + 3);
        if (!*out)
            r = oom(db);
        else
            snprintf(*out, len + 3, ",%s,", c ? c : "");
    } else if (rc != SQLITE_DONE) {
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_tables");
    }
    sqlite3_reset(st);
    return r;
}

static bool prev_has(const char *prev, int64_t cid)
{
    char needle[32];
    snprintf(needle, sizeof needle, ",%lld,", (long long)cid);
    return strstr(prev, needle) != NULL;
}

/* Log the rows of a newly tracked table that no change covers yet, as
 * local inserts (rows written before tracking began, e.g. by the
 * migration that created the table). */
static int adopt_rows(dimple *db, const dimple_ttable *tt)
{
    struct dimple_track *tr = T(db);
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendall(s, "SELECT ");
    for (size_t i = 0; i < tt->n_cols; i++)
        sqlite3_str_appendf(s, "%s\"%w\"", i ? ", " : "", tt->cname[i]);
    sqlite3_str_appendf(s, " FROM \"%w\"", tt->name);
    char *sql = sqlite3_str_finish(s);
    if (!sql)
        return oom(db);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read a table");
    int r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dimple_pbuf__reset(&tr->kbuf);
        dimple_pbuf__reset(&tr->vbuf);
        for (size_t i = 0; i < tt->n_key; i++)
            dimple_pack__sqlite(&tr->kbuf,
                                sqlite3_column_value(st, (int)tt->key_col[i]));
        bool exists;
        if ((r = state_load(db, tt->tid, &tr->kbuf, &exists)))
            break;
        if (exists)
            continue;
        for (size_t i = 0; i < tt->n_cols; i++) {
            if (tt->is_key[i])
                continue;
            dimple_pack__varint(&tr->vbuf, (uint64_t)tt->cid[i]);
            dimple_pack__sqlite(&tr->vbuf, sqlite3_column_value(st, (int)i));
        }
        if (tr->kbuf.oom || tr->vbuf.oom) {
            r = oom(db);
            break;
        }
        uint64_t seq = tick(tr);
        if ((r = log_append(db, (int64_t)seq, tr->me, tt->tid, DIMPLE_OP_INSERT,
                            &tr->kbuf, &tr->vbuf, NULL)))
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read a table");
    sqlite3_finalize(st);
    return r;
}

/* Write what the row clocks hold for columns (or a whole table) that the
 * schema did not have before: changes kept for a newer schema. */
static int materialize(dimple *db, const dimple_ttable *tt, const char *prev)
{
    struct dimple_track *tr = T(db);
    bool *want = calloc(tt->n_cols ? tt->n_cols : 1, sizeof *want);
    if (!want)
        return oom(db);
    bool any_new = false;
    for (size_t i = 0; i < tt->n_cols; i++) {
        want[i] = !tt->is_key[i] && (!prev || !prev_has(prev, tt->cid[i]));
        any_new |= want[i];
    }
    int r = DIMPLE_OK;
    if (prev && !any_new)
        goto out;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db->sql, "SELECT k, s FROM _dimple_rows WHERE t = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_rows");
        goto out;
    }
    sqlite3_bind_int64(st, 1, tt->tid);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dimple_pbuf k = {(uint8_t *)sqlite3_column_blob(st, 0),
                         (size_t)sqlite3_column_bytes(st, 0), 0, false};
        bool exists;
        if ((r = state_load(db, tt->tid, &k, &exists)))
            break;
        size_t nk;
        if ((r = decode_key(db, k.p, k.n, &nk)))
            break;
        if (nk != tt->n_key)
            continue; /* changes for another shape of the table */
        int changes = 0;
        if (!state_alive(tr)) {
            if (!prev)
                r = tbl_delete(db, tt, tr->kv);
        } else if (!prev) {
            r = tbl_write(db, tt, tr->kv, true, NULL, NULL, &changes);
        } else {
            r = tbl_write(db, tt, tr->kv, false, want, NULL, &changes);
        }
        if (r)
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_rows");
    sqlite3_finalize(st);
out:
    free(want);
    return r;
}

static int tables_record(dimple *db, const dimple_ttable *tt)
{
    sqlite3_str *s = sqlite3_str_new(db->sql);
    for (size_t i = 0; i < tt->n_cols; i++)
        sqlite3_str_appendf(s, "%s%lld", i ? "," : "", (long long)tt->cid[i]);
    char *cols = sqlite3_str_finish(s);
    if (!cols)
        cols = sqlite3_mprintf("");
    sqlite3_stmt *st = cstmt(
        db, "INSERT OR REPLACE INTO _dimple_tables(t, cols) VALUES (?1, ?2)");
    if (!st) {
        sqlite3_free(cols);
        return db->errcode;
    }
    sqlite3_bind_int64(st, 1, tt->tid);
    sqlite3_bind_text(st, 2, cols ? cols : "", -1, SQLITE_TRANSIENT);
    sqlite3_free(cols);
    return step_done(db, st, "change tracking: write _dimple_tables");
}

/* The body of refresh, inside a savepoint. */
static int refresh_locked(dimple *db)
{
    struct dimple_track *tr = T(db);
    int r = caches_check(db);
    if (r == DIMPLE_OK)
        r = clock_sync(db);
    if (r)
        return r;
    /* list the tables to track */
    dimple_ttable *tts = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db->sql,
        "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND"
        " type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND"
        " name NOT LIKE '\\_dimple\\_%' ESCAPE '\\' ORDER BY name",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read the schema");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!spec_has(db->tables, name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            dimple_ttable *p = realloc(tts, cap * sizeof *p);
            if (!p) {
                r = oom(db);
                break;
            }
            tts = p;
        }
        if ((r = table_load(db, name, sqlite3_column_int(st, 1) != 0, &tts[n])))
            break;
        n++;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE)
        r = dimple__sqlerr(db, rc, "change tracking: read the schema");
    sqlite3_finalize(st);
    if (r == DIMPLE_OK)
        r = triggers_sync(db, tts, n);
    /* swap in the new table list: merges below need it */
    if (r == DIMPLE_OK) {
        tables_free(tr);
        tr->tables = tts;
        tr->n_tables = n;
        tts = NULL;
        n = 0;
    }
    if (r == DIMPLE_OK)
        r = dimple_track__fold(db);
    bool was_muted = tr->muted;
    tr->muted = true;
    for (size_t i = 0; r == DIMPLE_OK && i < tr->n_tables; i++) {
        const dimple_ttable *tt = &tr->tables[i];
        char *prev = NULL;
        if ((r = tables_prev(db, tt->tid, &prev)))
            break;
        r = materialize(db, tt, prev);
        if (r == DIMPLE_OK && !prev)
            r = adopt_rows(db, tt);
        if (r == DIMPLE_OK)
            r = tables_record(db, tt);
        free(prev);
    }
    tr->muted = was_muted;
    /* tables no longer tracked: forget them, so tracking them again
     * rebuilds them from the row clocks */
    if (r == DIMPLE_OK) {
        sqlite3_str *s = sqlite3_str_new(db->sql);
        sqlite3_str_appendall(s, "DELETE FROM _dimple_tables WHERE t NOT IN (");
        for (size_t i = 0; i < tr->n_tables; i++)
            sqlite3_str_appendf(s, "%s%lld", i ? "," : "",
                                (long long)tr->tables[i].tid);
        sqlite3_str_appendall(s, ")");
        char *sql = sqlite3_str_finish(s);
        if (!sql)
            r = oom(db);
        else
            r = exec_sql(db, sql, "change tracking: write _dimple_tables");
        sqlite3_free(sql);
    }
    if (r == DIMPLE_OK)
        r = dimple_track__fold(db); /* the adopted rows */
    for (size_t i = 0; i < n; i++)
        table_free(&tts[i]);
    free(tts);
    return r;
}

static int savepoint_run(dimple *db, int (*fn)(dimple *), const char *what)
{
    /* Outside a transaction, take the write lock up front (BEGIN
     * IMMEDIATE waits out the busy timeout); a deferred savepoint that
     * reads, then writes, fails at once with "database is locked" when
     * another connection committed in between (WAL). */
    bool outer = sqlite3_get_autocommit(db->sql);
    int r = exec_sql(db, outer ? "BEGIN IMMEDIATE" : "SAVEPOINT dimple_track",
                     what);
    if (r)
        return r;
    r = fn(db);
    if (r == DIMPLE_OK) {
        r = exec_sql(db, outer ? "COMMIT" : "RELEASE dimple_track", what);
        if (r == DIMPLE_OK)
            return r;
    }
    /* keep the first error's message */
    char msg[sizeof db->errmsg];
    int code = db->errcode ? db->errcode : r;
    snprintf(msg, sizeof msg, "%s", db->errmsg);
    sqlite3_exec(db->sql,
                 outer ? "ROLLBACK"
                       : "ROLLBACK TO dimple_track; RELEASE dimple_track",
                 NULL, NULL, NULL);
    dimple__seterr(db, code, "%s", msg);
    /* rolled back: the caches may name what no longer exists */
    db->track->dv_valid = false;
    return code;
}

int dimple_track__refresh(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    int r = savepoint_run(db, refresh_locked, "change tracking: refresh");
    if (r)
        names_load(db), authors_load(db);
    return r == DIMPLE_OK ? dimple__ok(db) : r;
}

void dimple_track__migration_end(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr)
        return;
    tr->migrating = false;
    dimple_replace__forget(db);
}

int dimple_track__migration_begin(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    /* Fold the changes logged so far while the schema they were made
     * under still stands: a migration may change a table's key, and the
     * row clocks must record them under the key they were made with. */
    int r = dimple_track__fold(db);
    if (r)
        return r;
    tr->migrating = true; /* no delete notes (replace.c) until the end */
    /* refresh recreates exactly what the schema needs */
    return triggers_sync(db, NULL, 0);
}

/* ---------------------------------------------------- author and file */

static int file_identity(dimple *db, char *out, size_t cap)
{
    const char *path = sqlite3_db_filename(db->sql, "main");
    out[0] = 0;
    if (!path || !path[0])
        return DIMPLE_OK; /* in memory or temporary: nothing to copy */
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dimple__seterr(db, DIMPLE_EIO, "change tracking: stat %s: %s",
                              path, strerror(errno));
    snprintf(out, cap, "%llu:%llu", (unsigned long long)sb.st_dev,
             (unsigned long long)sb.st_ino);
    return DIMPLE_OK;
}

static int author_create(dimple *db)
{
    struct dimple_track *tr = T(db);
    uint8_t uuid[16];
    dimple_uuid__v7(uuid);
    int64_t idx;
    int r = author_intern(db, uuid, &idx);
    if (r == DIMPLE_OK)
        r = meta_set(db, "author", idx);
    char ident[64];
    if (r == DIMPLE_OK)
        r = file_identity(db, ident, sizeof ident);
    if (r == DIMPLE_OK)
        r = meta_set_text(db, "file", ident);
    if (r == DIMPLE_OK) {
        tr->me = idx;
        memcpy(tr->author, uuid, 16);
        dimple_uuid__format(uuid, tr->author_text);
        tr->copied = false;
    }
    return r;
}

static int setup_locked(dimple *db)
{
    struct dimple_track *tr = T(db);
    int r = exec_sql(db, schema_sql, "change tracking: create metadata");
    if (r)
        return r;
    int64_t v = 0;
    bool found = false;
    if ((r = meta_get(db, "format", &v, &found)))
        return r;
    if (found && v > 1)
        return dimple__seterr(db, DIMPLE_EFORMAT,
                              "change tracking: this database's change log"
                              " has format %lld; this dimple reads 1",
                              (long long)v);
    if (!found && (r = meta_set(db, "format", 1)))
        return r;
    if ((r = names_load(db)) || (r = authors_load(db)))
        return r;
    if ((r = meta_get(db, "author", &v, &found)))
        return r;
    if (!found) {
        if ((r = author_create(db)))
            return r;
    } else {
        const uint8_t *u = dimple_track__author_uuid(db, v);
        if (!u)
            return dimple__seterr(db, DIMPLE_ECORRUPT,
                                  "change tracking: the author of this"
                                  " database is missing from"
                                  " _dimple_authors");
        tr->me = v;
        memcpy(tr->author, u, 16);
        dimple_uuid__format(u, tr->author_text);
    }
    return DIMPLE_OK;
}

static int check_copied(dimple *db)
{
    struct dimple_track *tr = T(db);
    char want[64], have[64];
    int r = meta_get_text(db, "file", want, sizeof want);
    if (r == DIMPLE_OK)
        r = file_identity(db, have, sizeof have);
    if (r)
        return r;
    tr->copied = want[0] && have[0] && strcmp(want, have) != 0;
    if (tr->copied)
        snprintf(tr->copied_msg, sizeof tr->copied_msg,
                 "%s is a copy of another database file (author %s): it"
                 " must not write as that author. Run `dimple author"
                 " --reset` to give this copy its own author, or `dimple"
                 " author --keep` if the file was moved, not copied",
                 sqlite3_db_filename(db->sql, "main"), tr->author_text);
    return DIMPLE_OK;
}

static int64_t config_skew(dimple *db)
{
    int64_t v = DIMPLE_CLOCK_SKEW_DEFAULT_MS;
    if (db->conf &&
        dimple_config__int(db, "dimple", "max_clock_skew",
                           DIMPLE_CLOCK_SKEW_DEFAULT_MS, 0,
                           (int64_t)365 * 24 * 3600 * 1000, &v) != DIMPLE_OK)
        return -1;
    return v;
}

int dimple_track__open(dimple *db)
{
    struct dimple_track *tr = calloc(1, sizeof *tr);
    if (!tr)
        return oom(db);
    tr->db = db;
    db->track = tr;
    int64_t skew = config_skew(db);
    if (skew < 0)
        return db->errcode;
    tr->skew_ms = skew;
    int r = register_functions(db);
    if (r)
        return r;
    if (sqlite3_db_readonly(db->sql, "main") == 1) {
        /* read-only: use the metadata if dimple ever wrote it */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db->sql,
                                    "SELECT 1 FROM sqlite_schema WHERE name ="
                                    " '_dimple_log'",
                                    -1, &st, NULL);
        bool has = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (!has)
            return DIMPLE_OK;
        tr->ready = true;
        int64_t v = 0;
        bool found = false;
        if ((r = names_load(db)) || (r = authors_load(db)) ||
            (r = meta_get(db, "author", &v, &found)))
            return r;
        if (found && dimple_track__author_uuid(db, v)) {
            tr->me = v;
            memcpy(tr->author, dimple_track__author_uuid(db, v), 16);
            dimple_uuid__format(tr->author, tr->author_text);
        }
        return dimple__ok(db);
    }
    r = savepoint_run(db, setup_locked, "change tracking: open");
    if (r)
        return r;
    if ((r = dimple_replace__install(db)))
        return r;
    tr->ready = true;
    if ((r = check_copied(db)))
        return r;
    r = savepoint_run(db, refresh_locked, "change tracking: open");
    return r == DIMPLE_OK ? dimple__ok(db) : r;
}

void dimple_track__close(dimple *db)
{
    struct dimple_track *tr = db ? db->track : NULL;
    if (!tr)
        return;
    dimple_rowhook__want(db, DIMPLE_ROWHOOK_REPLACE, false);
    sqlite3_finalize(tr->log_ins);
    sqlite3_finalize(tr->log_ins_remote);
    sqlite3_finalize(tr->res_fetch);
    for (size_t i = 0; i < tr->n_cst; i++)
        sqlite3_finalize(tr->cst[i].st);
    stmts_clear(tr);
    dimple_pbuf__free(&tr->wkey);
    names_free(tr);
    for (size_t i = 0; i < tr->n_grave; i++)
        free(tr->grave[i]);
    free(tr->grave);
    free(tr->authors);
    free(tr->author_known);
    tables_free(tr);
    dimple_replace__free(tr->replace);
    tr->replace = NULL;
    dimple_pbuf__free(&tr->kbuf);
    dimple_pbuf__free(&tr->kbuf2);
    dimple_pbuf__free(&tr->vbuf);
    dimple_pbuf__free(&tr->vbuf2);
    dimple_pbuf__free(&tr->sbuf);
    free(tr->cells);
    free(tr->kv);
    free(tr->cv);
    free(tr->cids);
    free(tr->lseq);
    free(tr->lauth);
    free(tr);
    db->track = NULL;
}

static int reset_locked(dimple *db)
{
    return author_create(db);
}

int dimple_track__author_reset(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "change tracking is not set up on this"
                              " database (read-only?)");
    int r = savepoint_run(db, reset_locked, "author reset");
    return r == DIMPLE_OK ? dimple__ok(db) : r;
}

static int keep_locked(dimple *db)
{
    char ident[64];
    int r = file_identity(db, ident, sizeof ident);
    if (r == DIMPLE_OK)
        r = meta_set_text(db, "file", ident);
    if (r == DIMPLE_OK)
        db->track->copied = false;
    return r;
}

int dimple_track__author_keep(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "change tracking is not set up on this"
                              " database (read-only?)");
    int r = savepoint_run(db, keep_locked, "author keep");
    return r == DIMPLE_OK ? dimple__ok(db) : r;
}
