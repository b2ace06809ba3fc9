/*
 * track_stmt.c — change tracking's prepared statements: a cache by SQL
 * text (dynamic SQL, bounded), one by address for string literals (the
 * hot paths), and the merge writes' statements found by their shape
 * without formatting SQL.
 */
#include "track_impl.h"

#include <stdlib.h>
#include <string.h>

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

void dimple_track__stmts_clear(struct dimple_track *tr)
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
sqlite3_stmt *dimple_track__cstmt(dimple *db, const char *sql)
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
int dimple_track__step(dimple *db, sqlite3_stmt *st, const char *what)
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

int dimple_track__exec(dimple *db, const char *sql, const char *what)
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
/* The shape of a merge write: kind, table, key columns and written
 * columns, as name ids (names are interned forever, so a shape always
 * means the same SQL text). Built in tr->wkey. */
void dimple_track__wst_key(struct dimple_track *tr, int kind,
                           const dimple_ttable *tt, const size_t *cols,
                           size_t ncol)
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
sqlite3_stmt *dimple_track__wst_find(struct dimple_track *tr)
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
void dimple_track__wst_add(struct dimple_track *tr, sqlite3_stmt *st)
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
