/*
 * db.c — the SQLite side of the handle: open with WAL, foreign keys and a
 * busy timeout; SQL with bound parameters; rows as callbacks or JSON; the
 * end of every public call that wrote (dimple__finish). It sits below the
 * modules that react to SQL (tracking, live queries): it reaches them only
 * through the hooks in struct dimple that dimple.c sets (db.h).
 */
#include "db.h"

#include "err.h"
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "in "<first 60 chars of sql>"" for error messages. */
static void snippet(char *out, size_t n, const char *sql)
{
    size_t len = strcspn(sql, "\n");
    while (isspace((unsigned char)*sql) && len) {
        sql++;
        len--;
    }
    if (len > 60)
        snprintf(out, n, "SQL \"%.60s...\"", sql);
    else
        snprintf(out, n, "SQL \"%.*s\"", (int)len, sql);
}

static int run_simple(dimple *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        char what[128];
        snippet(what, sizeof what, sql);
        rc = dimple__sqlerr(db, rc, what);
    }
    sqlite3_free(err);
    return rc;
}

int dimple_db__open(dimple *db)
{
    int flags = db->read_only ? SQLITE_OPEN_READONLY
                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite3_stmt *st = NULL;
    char what[4200];
    int rc;
    /* NOMUTEX: a handle is used by one thread at a time (docs/API.md), so
     * SQLite's per-call connection mutex only costs: it was a fifth of the
     * instructions of a tracked write (each trigger runs a nested
     * statement). The live-query watcher has its own connection. */
    rc = sqlite3_open_v2(db->path, &db->sql,
                         flags | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = dimple__seterr(
            db, dimple__sqlite_code(rc), "cannot open database %s: %s",
            db->path, db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_extended_result_codes(db->sql, 1);
    sqlite3_busy_timeout(db->sql, db->busy_timeout_ms);
    snprintf(what, sizeof what, "database %s", db->path);
    /* Read the header now so an unreadable file fails at open. */
    rc = sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM sqlite_master", -1,
                            &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = dimple__sqlerr(db, rc, what);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!db->read_only) {
        rc = sqlite3_prepare_v2(db->sql, "PRAGMA journal_mode=WAL", -1, &st,
                                NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            rc = dimple__sqlerr(db, rc, what);
            goto out;
        }
    }
    if ((rc = run_simple(db, "PRAGMA foreign_keys=ON")) < 0)
        goto out;
    if (db->cache_size_kib > 0) {
        /* negative: a size in KiB, not a page count */
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", db->cache_size_kib);
        if ((rc = run_simple(db, sql)) < 0)
            goto out;
    }
    rc = DIMPLE_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

void dimple_db__close(dimple *db)
{
    if (db->sql) {
        sqlite3_close_v2(db->sql);
        db->sql = NULL;
    }
}

int dimple__finish(dimple *db, int rc)
{
    dimple_errsave saved;
    if (!db || !db->sql || !db->on_finish)
        return rc;
    dimple__err_save(db, &saved);
    db->on_finish(db);
    dimple__err_restore(db, &saved);
    return rc;
}

int dimple_db__need(dimple *db)
{
    if (!db->sql)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "no database open on this handle");
    return DIMPLE_OK;
}

/* 1 if s holds only spaces, comments and ';'. */
static int only_space(const char *s)
{
    for (;;) {
        while (isspace((unsigned char)*s) || *s == ';')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            s += strcspn(s, "\n");
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            if (!e)
                return 1; /* an unterminated comment runs to the end */
            s = e + 2;
        } else {
            return *s == '\0';
        }
    }
}

static int bind_all(dimple *db, sqlite3_stmt *st, const dimple_value *params,
                    size_t n, const char *what)
{
    int want = sqlite3_bind_parameter_count(st);
    if ((size_t)want != n)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "%s: the statement has %d parameter%s, %zu "
                              "given",
                              what, want, want == 1 ? "" : "s", n);
    for (size_t i = 0; i < n; i++) {
        const dimple_value *v = &params[i];
        int idx = (int)i + 1, rc;
        switch (v->type) {
        case DIMPLE_INTEGER:
            rc = sqlite3_bind_int64(st, idx, v->i);
            break;
        case DIMPLE_REAL:
            rc = sqlite3_bind_double(st, idx, v->r);
            break;
        case DIMPLE_TEXT:
            rc = sqlite3_bind_text64(st, idx, v->p ? v->p : "", v->n,
                                     SQLITE_TRANSIENT, SQLITE_UTF8);
            break;
        case DIMPLE_BLOB:
            rc = v->p ? sqlite3_bind_blob64(st, idx, v->p, v->n,
                                            SQLITE_TRANSIENT)
                      : sqlite3_bind_zeroblob(st, idx, 0);
            break;
        case DIMPLE_NULL:
            rc = sqlite3_bind_null(st, idx);
            break;
        default:
            return dimple__seterr(db, DIMPLE_EINVAL,
                                  "%s: parameter %d has unknown type %d", what,
                                  idx, (int)v->type);
        }
        if (rc != SQLITE_OK)
            return dimple__sqlerr(db, rc, what);
    }
    return DIMPLE_OK;
}

static void column_value(sqlite3_stmt *st, int i, dimple_value *v)
{
    memset(v, 0, sizeof *v);
    v->type = (dimple_type)sqlite3_column_type(st, i);
    switch (v->type) {
    case DIMPLE_INTEGER:
        v->i = sqlite3_column_int64(st, i);
        break;
    case DIMPLE_REAL:
        v->r = sqlite3_column_double(st, i);
        break;
    case DIMPLE_TEXT:
        v->p = sqlite3_column_text(st, i);
        v->n = (size_t)sqlite3_column_bytes(st, i);
        break;
    case DIMPLE_BLOB:
        v->p = sqlite3_column_blob(st, i);
        v->n = (size_t)sqlite3_column_bytes(st, i);
        break;
    default:
        v->type = DIMPLE_NULL;
    }
}

/* Does the statement at sql (after blanks and comments) change the
 * schema? DDL is exactly CREATE, ALTER and DROP. */
static int is_ddl(const char *sql)
{
    static const char *const verbs[] = {"CREATE", "ALTER", "DROP"};
    for (;;) {
        while (isspace((unsigned char)*sql))
            sql++;
        if (sql[0] == '-' && sql[1] == '-') {
            sql += strcspn(sql, "\n");
        } else if (sql[0] == '/' && sql[1] == '*') {
            const char *end = strstr(sql + 2, "*/");
            sql = end ? end + 2 : sql + strlen(sql);
        } else {
            break;
        }
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        size_t n = strlen(verbs[i]);
        if (strncasecmp(sql, verbs[i], n) == 0 &&
            !isalnum((unsigned char)sql[n]) && sql[n] != '_')
            return 1;
    }
    return 0;
}

/* Run sql. single: exactly one statement required. A callback's non-zero
 * return stops and is returned (its error, if it set one, is kept). */
static int exec_impl(dimple *db, const char *sql, const dimple_value *params,
                     size_t n_params, int single, dimple_row_cb cb,
                     void *payload)
{
    const char *tail = sql;
    const char **names = NULL;
    dimple_value *vals = NULL;
    sqlite3_stmt *st = NULL;
    int rc = DIMPLE_OK, first = 1, ddl = 0;
    char what[128];
    if (!sql)
        return dimple__seterr(db, DIMPLE_EINVAL, "no SQL given");
    if (n_params && !params)
        return dimple__seterr(db, DIMPLE_EINVAL, "params is NULL");
    while (*tail) {
        const char *next = NULL;
        int ncol;
        snippet(what, sizeof what, tail);
        rc = sqlite3_prepare_v2(db->sql, tail, -1, &st, &next);
        if (rc != SQLITE_OK) {
            rc = dimple__sqlerr(db, rc, what);
            goto out;
        }
        if (!st) { /* only spaces or comments left */
            if (!next || next == tail)
                break;
            tail = next;
            continue;
        }
        if ((single || n_params) && first && !only_space(next)) {
            rc = dimple__seterr(db, DIMPLE_EINVAL,
                                "%s: %s takes exactly one statement", what,
                                single ? "this call" : "SQL with parameters");
            goto out;
        }
        if ((rc = bind_all(db, st, params, first ? n_params : 0, what)) < 0)
            goto out;
        /* DDL runs in a savepoint with the tracking refresh it needs, so
         * that a table that cannot be tracked is not left created. */
        if ((ddl = is_ddl(tail)) &&
            sqlite3_exec(db->sql, "SAVEPOINT dimple_ddl", NULL, NULL, NULL) !=
                SQLITE_OK) {
            rc = dimple__sqlerr(db, sqlite3_errcode(db->sql), what);
            ddl = 0;
            goto out;
        }
        ncol = sqlite3_column_count(st);
        free(names);
        free(vals);
        names = calloc((size_t)ncol + 1, sizeof *names);
        vals = calloc((size_t)ncol + 1, sizeof *vals);
        if (!names || !vals) {
            rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < ncol; i++)
            names[i] = sqlite3_column_name(st, i);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (!cb)
                continue;
            for (int i = 0; i < ncol; i++)
                column_value(st, i, &vals[i]);
            dimple__ok(db);
            rc = cb(payload, (size_t)ncol, names, vals);
            if (rc != 0) {
                if (rc < 0 && db->errcode == DIMPLE_OK)
                    dimple__seterr(db, rc,
                                   "%s: stopped by the row callback "
                                   "(%s)",
                                   what, dimple_errstr(rc));
                goto out;
            }
        }
        if (rc != SQLITE_DONE) {
            rc = dimple__sqlerr(db, rc, what);
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (ddl) {
            /* A table created or altered by plain SQL gets its tracking
             * triggers now, not at the next migration or open. */
            if (db->on_ddl && (rc = db->on_ddl(db)) < 0)
                goto out;
            sqlite3_exec(db->sql, "RELEASE dimple_ddl", NULL, NULL, NULL);
            ddl = 0;
        }
        first = 0;
        tail = next ? next : "";
    }
    if (first && single) {
        rc = dimple__seterr(db, DIMPLE_EINVAL, "no SQL statement given");
        goto out;
    }
    rc = dimple__ok(db);
out:
    sqlite3_finalize(st);
    if (ddl) { /* the statement or its refresh failed: undo both */
        sqlite3_exec(db->sql, "ROLLBACK TO dimple_ddl", NULL, NULL, NULL);
        sqlite3_exec(db->sql, "RELEASE dimple_ddl", NULL, NULL, NULL);
    }
    free(names);
    free(vals);
    return rc;
}

int dimple_exec(dimple *db, const char *sql, const dimple_value *params,
                size_t n_params, dimple_row_cb cb, void *payload)
{
    int rc;
    if (!db)
        return DIMPLE_EINVAL;
    if ((rc = dimple_db__need(db)) < 0)
        return rc;
    rc = exec_impl(db, sql, params, n_params, 0, cb, payload);
    return dimple__finish(db, rc);
}

typedef struct json_rows {
    dimple_buf b;
    int n;
} json_rows;

static int json_row_cb(void *payload, size_t n, const char *const *names,
                       const dimple_value *values)
{
    json_rows *j = payload;
    if ((j->n++ && dimple_buf__append(&j->b, ",", 1) < 0) ||
        dimple_json__row(&j->b, n, names, values) < 0)
        return DIMPLE_ENOMEM;
    return 0;
}

int dimple_json_query(char **out, dimple *db, const char *sql,
                      const dimple_value *params, size_t n_params)
{
    json_rows j = {{0}, 0};
    int rc;
    if (out)
        *out = NULL;
    if (!db)
        return DIMPLE_EINVAL;
    if (!out)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_json_query: out is NULL");
    if ((rc = dimple_db__need(db)) < 0)
        return rc;
    if (dimple_buf__append(&j.b, "[", 1) < 0) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    rc = exec_impl(db, sql, params, n_params, 1, json_row_cb, &j);
    if (rc == DIMPLE_ENOMEM && db->errcode == DIMPLE_OK)
        rc = dimple__seterr(db, rc, "out of memory");
    if (rc < 0)
        goto out;
    if (dimple_buf__append(&j.b, "]", 1) < 0) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    *out = (char *)j.b.p;
    j.b.p = NULL;
    rc = DIMPLE_OK;
out:
    dimple_buf__free(&j.b);
    return dimple__finish(db, rc);
}

int dimple_json_row(char **out, size_t n, const char *const *names,
                    const dimple_value *values)
{
    dimple_buf b = {0};
    if (!out)
        return DIMPLE_EINVAL;
    *out = NULL;
    if (n && (!names || !values))
        return DIMPLE_EINVAL;
    if (dimple_json__row(&b, n, names, values) < 0) {
        dimple_buf__free(&b);
        return DIMPLE_ENOMEM;
    }
    *out = (char *)b.p;
    return DIMPLE_OK;
}

void dimple_free(void *p)
{
    free(p);
}

sqlite3 *dimple_sqlite(dimple *db)
{
    return db ? db->sql : NULL;
}

dimple_value dimple_value_int(int64_t v)
{
    dimple_value x = {.type = DIMPLE_INTEGER, .i = v};
    return x;
}

dimple_value dimple_value_real(double v)
{
    dimple_value x = {.type = DIMPLE_REAL, .r = v};
    return x;
}

dimple_value dimple_value_text(const char *s)
{
    dimple_value x = {
        .type = s ? DIMPLE_TEXT : DIMPLE_NULL, .p = s, .n = s ? strlen(s) : 0};
    return x;
}

dimple_value dimple_value_blob(const void *p, size_t n)
{
    dimple_value x = {.type = DIMPLE_BLOB, .p = p, .n = n};
    return x;
}

dimple_value dimple_value_null(void)
{
    dimple_value x = {.type = DIMPLE_NULL};
    return x;
}
