/*
 * live_testdb.h — a database handle for the live tests. Until the
 * foundation's dimple_open_path lands, it builds struct dimple by hand and
 * drives dimple_live__open/flush/close the way dimple.c does.
 */
#ifndef LIVE_TESTDB_H
#define LIVE_TESTDB_H

#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Stand-ins for the foundation's functions while they do not exist yet:
 * weak, so the real ones win as soon as they are linked. */
__attribute__((weak)) int dimple__seterr(dimple *db, int code,
                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    db->errcode = code;
    return code;
}
__attribute__((weak)) int dimple__ok(dimple *db)
{
    db->errcode = 0;
    snprintf(db->errmsg, sizeof db->errmsg, "ok");
    return 0;
}
__attribute__((weak)) int dimple__sqlite_code(int rc)
{
    return rc == SQLITE_OK ? DIMPLE_OK : DIMPLE_ESQL;
}
__attribute__((weak)) int dimple__sqlerr(dimple *db, int rc, const char *what)
{
    return dimple__seterr(db, dimple__sqlite_code(rc), "%s: %s", what,
                          sqlite3_errmsg(db->sql));
}
__attribute__((weak)) const char *dimple_errmsg(const dimple *db)
{
    return db ? db->errmsg : "no handle";
}
__attribute__((weak)) dimple_value dimple_int(int64_t v)
{
    dimple_value x = {DIMPLE_INTEGER, v, 0, NULL, 0};
    return x;
}
__attribute__((weak)) dimple_value dimple_text(const char *s)
{
    dimple_value x = {DIMPLE_TEXT, 0, 0, s, strlen(s)};
    return x;
}

static inline dimple *test_open(char *path, size_t n, const char *name)
{
    dimple *db = calloc(1, sizeof *db);
    snprintf(path, n, "/tmp/dimple-live-%d-%s.db", (int)getpid(), name);
    unlink(path);
    if (!db || sqlite3_open(path, &db->sql) != SQLITE_OK)
        abort();
    sqlite3_busy_timeout(db->sql, 5000);
    sqlite3_exec(db->sql, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (dimple_live__open(db) != DIMPLE_OK)
        abort();
    return db;
}

/* Raw SQL on the connection, then the flush every public call ends with. */
static inline int test_exec(dimple *db, const char *sql)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
    dimple_live__flush(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static inline void test_close(dimple *db, const char *path)
{
    char side[300];
    dimple_live__close(db);
    sqlite3_close(db->sql);
    free(db);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

#endif
