/*
 * track_write.c — writing what the merge decided into the user tables:
 * upserts, updates of the cells won and deletes, each statement built
 * once per shape, cell values bound from the change being merged or from
 * the log row that owns the cell.
 */
#include "track_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int dimple_track__row_delete(dimple *db, const dimple_ttable *tt,
                             const dimple_value *kv)
{
    struct dimple_track *tr = T(db);
    dimple_track__wst_key(
        tr, 3, tt, NULL, 0); /* 3: not one of dimple_track__row_write's modes */
    sqlite3_stmt *st = dimple_track__wst_find(tr);
    if (!st) {
        sqlite3_str *s = sqlite3_str_new(db->sql);
        sqlite3_str_appendf(s, "DELETE FROM \"%w\"", tt->name);
        sql_key_where(s, tt, 1, "=");
        st = stmt_str(db, s);
        if (!st)
            return db->errcode;
        dimple_track__wst_key(tr, 3, tt, NULL, 0);
        dimple_track__wst_add(tr, st);
    }
    int r = bind_key(db, st, kv, tt->n_key, 1);
    if (r == DIMPLE_OK)
        r = dimple_track__step(db, st, "change tracking: merge delete");
    sqlite3_clear_bindings(st); /* the key was bound without a copy */
    return r;
}

int dimple_track__row_exists(dimple *db, const dimple_ttable *tt,
                             const dimple_pbuf *key, bool *out)
{
    size_t nk;
    int r = dimple_track__decode_key(db, key->p, key->n, &nk);
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

/* Bind the value of the cell owned by log row `seq` for column cid. */
static int bind_cell(dimple *db, sqlite3_stmt *st, int idx, int64_t seq,
                     int64_t cid, const dimple_merge_src *x)
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
    sqlite3_stmt *q =
        dimple_track__cstmt(db, "SELECT v FROM _dimple_log WHERE seq = ?1");
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

/* Write cells of tr->cells into the user table (mode: see track_impl.h). */
int dimple_track__row_write(dimple *db, const dimple_ttable *tt,
                            const dimple_value *kv, int mode, const bool *want,
                            const dimple_merge_src *x, int *changes)
{
    bool upsert = mode != DIMPLE_W_UPDATE;
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
        dimple_rcell *e = dimple_track__cell_find(tr, (uint64_t)tt->cid[i] + 1);
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
    dimple_track__wst_key(tr, mode, tt, cols, ncol);
    st = dimple_track__wst_find(tr);
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
    dimple_track__wst_key(tr, mode, tt, cols, ncol);
    dimple_track__wst_add(tr, st);
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
