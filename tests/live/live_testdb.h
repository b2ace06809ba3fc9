/*
 * live_testdb.h — handles for the live tests, through the public API.
 * test_exec goes through dimple_exec (which flushes live queries at its
 * end, like every call that may write); test_raw writes through
 * dimple_sqlite() behind dimple's back.
 */
#ifndef LIVE_TESTDB_H
#define LIVE_TESTDB_H

#include <dimple.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* tables: the synced-tables spec ("" = no change tracking). */
static inline dimple *test_open_t(char *path, size_t n, const char *name,
                                  const char *tables)
{
    dimple *db = NULL;
    dimple_options o = DIMPLE_OPTIONS_INIT;
    char side[300];
    o.tables = tables;
    snprintf(path, n, "/tmp/dimple-live-%d-%s.db", (int)getpid(), name);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    if (dimple_open_path(&db, path, &o) != DIMPLE_OK) {
        printf("Bail out! dimple_open_path %s: %s\n", path, dimple_errmsg(db));
        exit(1);
    }
    return db;
}

static inline dimple *test_open(char *path, size_t n, const char *name)
{
    return test_open_t(path, n, name, "");
}

static inline int test_exec(dimple *db, const char *sql)
{
    return dimple_exec(db, sql, NULL, 0, NULL, NULL) == DIMPLE_OK ? 0 : -1;
}

static inline int test_raw(dimple *db, const char *sql)
{
    return sqlite3_exec(dimple_sqlite(db), sql, NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

static inline void test_close(dimple *db, const char *path)
{
    char side[300];
    dimple_close(db);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

#endif
