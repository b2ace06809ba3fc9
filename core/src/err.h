/*
 * err.h — the handle's error state (internal): set, clear, save and
 * restore the code and message that dimple_errmsg()/dimple_errcode()
 * report, and SQLite's codes mapped to DIMPLE_E*. The bottom of the
 * module graph: its callers need only the opaque dimple (dimple.h);
 * err.c reads struct dimple's two error fields (internal.h).
 */
#ifndef DIMPLE_ERR_H
#define DIMPLE_ERR_H

#include "dimple.h"

/* Record an error on db and return code (code < 0). db may be NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int dimple__seterr(dimple *db, int code, const char *fmt, ...);
/* Reset db's error to DIMPLE_OK/"ok" and return DIMPLE_OK. */
int dimple__ok(dimple *db);
/* Map an SQLite result code to a DIMPLE_E* code. */
int dimple__sqlite_code(int rc);
/* dimple__seterr with "<what>: <sqlite3_errmsg>" and the mapped code. */
int dimple__sqlerr(dimple *db, int rc, const char *what);

/* A copy of the handle's error, for code that must run more calls (a
 * rollback, a live-query flush) without losing the message the caller is
 * about to return. */
typedef struct dimple_errsave {
    int code;
    char msg[2048]; /* = DIMPLE_ERRMSG_MAX (internal.h; err.c checks) */
} dimple_errsave;

void dimple__err_save(const dimple *db, dimple_errsave *out);
void dimple__err_restore(dimple *db, const dimple_errsave *saved);

#endif /* DIMPLE_ERR_H */
