/*
 * db.c — the SQLite side of the handle: open with WAL, foreign keys and a
 * busy timeout; SQL with bound parameters; rows as callbacks or JSON;
 * migrations (from C strings or a folder of NNN_name.sql files).
 */
#include "internal.h"

#include "json.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
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

static int need_sql(dimple *db)
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

/* Run sql. single: exactly one statement required. A callback's non-zero
 * return stops and is returned (its error, if it set one, is kept). */
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
            if ((rc = dimple_track__refresh(db)) < 0)
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
    if ((rc = need_sql(db)) < 0)
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
    if ((rc = need_sql(db)) < 0)
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

/* ------------------------------------------------------------ migrations */

static int user_version(dimple *db, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = dimple__sqlerr(db, rc, "reading PRAGMA user_version");
        sqlite3_finalize(st);
        return rc;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return DIMPLE_OK;
}

int dimple_schema_version(int *out, dimple *db)
{
    int rc;
    if (!db || !out)
        return DIMPLE_EINVAL;
    if ((rc = need_sql(db)) < 0 || (rc = user_version(db, out)) < 0)
        return rc;
    return dimple__ok(db);
}

/* One migration in its own transaction, with user_version bumped in it;
 * a failure rolls all of it back and the error names the migration. */
static int migrate_one_tx(dimple *db, const char *sql, size_t version,
                          const char *label);

/* Writes inside a migration are not tracked, whatever way it ends. */
static int migrate_one(dimple *db, const char *sql, size_t version,
                       const char *label)
{
    int rc = migrate_one_tx(db, sql, version, label);
    dimple_track__migration_end(db);
    return rc;
}

static int migrate_one_tx(dimple *db, const char *sql, size_t version,
                          const char *label)
{
    char *err = NULL, bump[64], msg[sizeof db->errmsg];
    int rc = sqlite3_exec(db->sql, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, label);
    /* The tracking triggers go for the migration (it may drop a column
     * they name) and come back, regenerated for the new schema, in the
     * same transaction: no write can slip in untracked. */
    if (dimple_track__migration_begin(db) < 0)
        goto track_failed;
    rc = sqlite3_exec(db->sql, sql, NULL, NULL, &err);
    if (rc == SQLITE_OK) {
        snprintf(bump, sizeof bump, "PRAGMA user_version = %zu", version);
        rc = sqlite3_exec(db->sql, bump, NULL, NULL, &err);
    }
    if (rc == SQLITE_OK && dimple_track__refresh(db) < 0)
        goto track_failed;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db->sql, "COMMIT", NULL, NULL, &err);
    if (rc == SQLITE_OK)
        return DIMPLE_OK;
    rc = dimple__sqlite_code(rc);
    dimple__seterr(db, rc == DIMPLE_EBUSY ? rc : DIMPLE_ESQL,
                   "%s failed, rolled back: %s", label,
                   err ? err : sqlite3_errmsg(db->sql));
    sqlite3_free(err);
    if (!sqlite3_get_autocommit(db->sql))
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    return db->errcode;
track_failed:
    sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    snprintf(msg, sizeof msg, "%s", db->errmsg);
    return dimple__seterr(db, db->errcode, "%s failed, rolled back: %s", label,
                          msg);
}

/* names[i] names migration i+1 in messages (a file), or NULL (index). */
static int migrate_run(dimple *db, const char *const *sqls,
                       const char *const *names, size_t n)
{
    int version = 0, rc;
    char label[4200];
    if ((rc = user_version(db, &version)) < 0)
        return rc;
    if (version < 0 || (size_t)version > n)
        return dimple__seterr(db, DIMPLE_ESCHEMA,
                              "database %s is at schema version %d, newer "
                              "than the %zu migration%s given",
                              db->path, version, n, n == 1 ? "" : "s");
    for (size_t i = (size_t)version; i < n; i++) {
        if (names)
            snprintf(label, sizeof label, "migration %zu (%s)", i + 1,
                     names[i]);
        else
            snprintf(label, sizeof label, "migration %zu (index %zu)", i + 1,
                     i);
        if (!sqls[i])
            return dimple__seterr(db, DIMPLE_EINVAL, "%s is NULL", label);
        if ((rc = migrate_one(db, sqls[i], i + 1, label)) < 0)
            return rc;
    }
    /* Also when nothing ran: the synced tables may have changed in the
     * configuration since the database was last opened. */
    if ((rc = dimple_track__refresh(db)) < 0)
        return rc;
    return dimple__ok(db);
}

int dimple_migrate(dimple *db, const char *const *migrations, size_t n)
{
    int rc;
    if (!db)
        return DIMPLE_EINVAL;
    if (n && !migrations)
        return dimple__seterr(db, DIMPLE_EINVAL, "migrations is NULL");
    if ((rc = need_sql(db)) < 0)
        return rc;
    rc = migrate_run(db, migrations, NULL, n);
    return dimple__finish(db, rc);
}

typedef struct mig_file {
    long num;
    char *name; /* dir/NNN_name.sql */
    char *sql;
} mig_file;

static int cmp_mig(const void *a, const void *b)
{
    const mig_file *x = a, *y = b;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int read_file(dimple *db, const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    dimple_buf b = {0};
    char chunk[8192];
    size_t n;
    int rc = DIMPLE_OK;
    *out = NULL;
    if (!f)
        return dimple__seterr(db, DIMPLE_EIO, "cannot read %s: %s", path,
                              strerror(errno));
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (dimple_buf__append(&b, chunk, n) < 0) {
            rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
    if (ferror(f)) {
        rc = dimple__seterr(db, DIMPLE_EIO, "cannot read %s", path);
        goto out;
    }
    if (!b.p && dimple_buf__append(&b, " ", 1) < 0) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    *out = (char *)b.p;
    b.p = NULL;
out:
    dimple_buf__free(&b);
    fclose(f);
    return rc;
}

int dimple_migrate_dir(dimple *db, const char *dir)
{
    DIR *d = NULL;
    struct dirent *e;
    mig_file *files = NULL;
    const char **sqls = NULL, **names = NULL;
    size_t n = 0, cap = 0;
    int rc;
    if (!db)
        return DIMPLE_EINVAL;
    if (!dir)
        return dimple__seterr(db, DIMPLE_EINVAL, "no migrations folder");
    if ((rc = need_sql(db)) < 0)
        return rc;
    d = opendir(dir);
    if (!d) {
        rc = dimple__seterr(db, DIMPLE_EIO,
                            "cannot read migrations folder %s: %s", dir,
                            strerror(errno));
        goto out;
    }
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        char *end;
        long num;
        if (nm[0] == '.' || len < 4 || strcmp(nm + len - 4, ".sql") != 0)
            continue; /* README and the like are not migrations */
        errno = 0;
        num = isdigit((unsigned char)nm[0]) ? strtol(nm, &end, 10) : -1;
        if (num < 1 || errno || *end != '_') {
            rc = dimple__seterr(db, DIMPLE_EINVAL,
                                "%s/%s: not named NNN_name.sql (NNN = 1, 2, "
                                "...)",
                                dir, nm);
            goto out;
        }
        if (n == cap) {
            mig_file *p;
            cap = cap ? cap * 2 : 16;
            p = realloc(files, cap * sizeof *p);
            if (!p) {
                rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
                goto out;
            }
            files = p;
        }
        files[n].num = num;
        files[n].sql = NULL;
        files[n].name = malloc(strlen(dir) + len + 2);
        if (!files[n].name) {
            rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        sprintf(files[n].name, "%s/%s", dir, nm);
        n++;
    }
    if (n)
        qsort(files, n, sizeof *files, cmp_mig);
    for (size_t i = 0; i < n; i++) {
        if (i && files[i].num == files[i - 1].num) {
            rc = dimple__seterr(
                db, DIMPLE_EINVAL, "%s: two migrations numbered %ld: %s and %s",
                dir, files[i].num, files[i - 1].name, files[i].name);
            goto out;
        }
        if (files[i].num != (long)i + 1) {
            rc = dimple__seterr(db, DIMPLE_EINVAL,
                                "%s: migration %zu is missing (found %s "
                                "next)",
                                dir, i + 1, files[i].name);
            goto out;
        }
    }
    sqls = calloc(n + 1, sizeof *sqls);
    names = calloc(n + 1, sizeof *names);
    if (!sqls || !names) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = read_file(db, files[i].name, &files[i].sql)) < 0)
            goto out;
        sqls[i] = files[i].sql;
        names[i] = files[i].name;
    }
    rc = migrate_run(db, sqls, names, n);
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].sql);
    }
    free(files);
    free(sqls);
    free(names);
    return dimple__finish(db, rc);
}
