/*
 * migrate.c — the schema's migrations, from C strings or a folder of
 * NNN_name.sql files: each in its own transaction with PRAGMA user_version
 * bumped in it. Above change tracking: a migration drops the tracking
 * triggers (it may drop a column they name) and has them regenerated for
 * the new schema before its COMMIT.
 */
#include "buf.h"
#include "db.h"
#include "err.h"
#include "track.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if ((rc = dimple_db__need(db)) < 0 || (rc = user_version(db, out)) < 0)
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
    if ((rc = dimple_db__need(db)) < 0)
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
    if ((rc = dimple_db__need(db)) < 0)
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
        if (dimple__grow((void **)&files, &cap, n + 1, sizeof *files) < 0) {
            rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            goto out;
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
