/*
 * track_schema.c — which tables are tracked and how: reading each table's
 * columns and primary key (refusing what cannot sync), the triggers' SQL
 * and keeping the triggers in step with the schema, and refresh after
 * DDL or a migration (adopting rows written before tracking, writing
 * changes held for columns a migration adds).
 */
#include "track_replace.h"
#include "track_impl.h"

#include "buf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void dimple_track__tables_free(struct dimple_track *tr)
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
        /* five arrays share cap: each grow but the last works on a copy,
         * the last (same arithmetic) commits it */
        size_t need = tt->n_cols + 1, c1 = cap, c2 = cap, c3 = cap, c4 = cap;
        if (dimple__grow((void **)&tt->cname, &c1, need, sizeof *tt->cname) ||
            dimple__grow((void **)&tt->cid, &c2, need, sizeof *tt->cid) ||
            dimple__grow((void **)&tt->is_key, &c3, need, sizeof *tt->is_key) ||
            dimple__grow((void **)&tt->key_col, &c4, need,
                         sizeof *tt->key_col) ||
            dimple__grow((void **)&tt->pre_col, &cap, need,
                         sizeof *tt->pre_col)) {
            r = oom(db);
            goto out;
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
        if ((r = dimple_track__name_intern(db, tt->cname[i], &tt->cid[i])))
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
    if ((r = dimple_track__name_intern(db, name, &tt->tid)))
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
        /* have_name and have_sql share caph: the first grow works on a
         * copy, the second (same arithmetic) commits it */
        size_t cap_name = caph;
        if (dimple__grow((void **)&have_name, &cap_name, nh + 1,
                         sizeof *have_name) ||
            dimple__grow((void **)&have_sql, &caph, nh + 1, sizeof *have_sql)) {
            r = oom(db);
            goto out;
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
                    r = dimple_track__exec(db, drop,
                                           "change tracking: drop trigger");
                    sqlite3_free(drop);
                }
                if (r == DIMPLE_OK)
                    r = dimple_track__exec(db, sql,
                                           "change tracking: create trigger");
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
        r = dimple_track__exec(db, drop, "change tracking: drop trigger");
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
        dimple_track__cstmt(db, "SELECT cols FROM _dimple_tables WHERE t = ?1");
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
        if ((r = dimple_track__state_load(db, tt->tid, &tr->kbuf, &exists)))
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
        uint64_t seq = dimple_track__tick(tr);
        if ((r = dimple_track__log_append(db, (int64_t)seq, tr->me, tt->tid,
                                          DIMPLE_OP_INSERT, &tr->kbuf,
                                          &tr->vbuf, NULL, NULL)))
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
        if ((r = dimple_track__state_load(db, tt->tid, &k, &exists)))
            break;
        size_t nk;
        if ((r = dimple_track__decode_key(db, k.p, k.n, &nk)))
            break;
        if (nk != tt->n_key)
            continue; /* changes for another shape of the table */
        int changes = 0;
        if (!dimple_track__state_alive(tr)) {
            if (!prev)
                r = dimple_track__row_delete(db, tt, tr->kv);
        } else if (!prev) {
            r = dimple_track__row_write(db, tt, tr->kv, DIMPLE_W_UPSERT, NULL,
                                        NULL, &changes);
        } else {
            r = dimple_track__row_write(db, tt, tr->kv, DIMPLE_W_UPDATE, want,
                                        NULL, &changes);
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
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "INSERT OR REPLACE INTO _dimple_tables(t, cols) VALUES (?1, ?2)");
    if (!st) {
        sqlite3_free(cols);
        return db->errcode;
    }
    sqlite3_bind_int64(st, 1, tt->tid);
    sqlite3_bind_text(st, 2, cols ? cols : "", -1, SQLITE_TRANSIENT);
    sqlite3_free(cols);
    return dimple_track__step(db, st, "change tracking: write _dimple_tables");
}

/* The body of refresh, inside a savepoint. */
int dimple_track__refresh_locked(dimple *db)
{
    struct dimple_track *tr = T(db);
    int r = dimple_track__caches_check(db);
    if (r == DIMPLE_OK)
        r = dimple_track__clock_sync(db);
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
        if (dimple__grow((void **)&tts, &cap, n + 1, sizeof *tts)) {
            r = oom(db);
            break;
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
        dimple_track__tables_free(tr);
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
            r = dimple_track__exec(db, sql,
                                   "change tracking: write _dimple_tables");
        sqlite3_free(sql);
    }
    if (r == DIMPLE_OK)
        r = dimple_track__fold(db); /* the adopted rows */
    for (size_t i = 0; i < n; i++)
        table_free(&tts[i]);
    free(tts);
    return r;
}

int dimple_track__refresh(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    int r = dimple_track__savepoint(db, dimple_track__refresh_locked,
                                    "change tracking: refresh");
    if (r)
        dimple_track__names_load(db), dimple_track__authors_load(db);
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
