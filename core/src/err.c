/*
 * err.c — the handle's error state (see err.h) and the public calls that
 * read it: dimple_errmsg, dimple_errcode, dimple_errstr.
 */
#include "err.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(((dimple_errsave *)0)->msg) == DIMPLE_ERRMSG_MAX,
               "dimple_errsave holds the whole message");

int dimple__seterr(dimple *db, int code, const char *fmt, ...)
{
    va_list ap;
    if (!db)
        return code;
    db->errcode = code;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

int dimple__ok(dimple *db)
{
    if (db) {
        db->errcode = DIMPLE_OK;
        strcpy(db->errmsg, "ok");
    }
    return DIMPLE_OK;
}

int dimple__sqlite_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return DIMPLE_OK;
    case SQLITE_NOMEM:
        return DIMPLE_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DIMPLE_EBUSY;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return DIMPLE_EIO;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return DIMPLE_ECORRUPT;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        return DIMPLE_EINVAL;
    default:
        return DIMPLE_ESQL;
    }
}

int dimple__sqlerr(dimple *db, int rc, const char *what)
{
    const char *msg = db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        return dimple__seterr(db, DIMPLE_EBUSY,
                              "%s: %s (database %s is held by another "
                              "connection; waited %d ms)",
                              what, msg, db->path ? db->path : "?",
                              db->busy_timeout_ms);
    return dimple__seterr(db, dimple__sqlite_code(rc), "%s: %s", what, msg);
}

void dimple__err_save(const dimple *db, dimple_errsave *out)
{
    out->code = db ? db->errcode : DIMPLE_OK;
    snprintf(out->msg, sizeof out->msg, "%s", db ? db->errmsg : "ok");
}

void dimple__err_restore(dimple *db, const dimple_errsave *saved)
{
    if (!db)
        return;
    db->errcode = saved->code;
    snprintf(db->errmsg, sizeof db->errmsg, "%s", saved->msg);
}

const char *dimple_errmsg(const dimple *db)
{
    if (!db)
        return "out of memory (no handle)";
    return db->errmsg[0] ? db->errmsg : "ok";
}

int dimple_errcode(const dimple *db)
{
    return db ? db->errcode : DIMPLE_ENOMEM;
}

const char *dimple_errstr(int code)
{
    switch (code) {
    case DIMPLE_OK:
        return "DIMPLE_OK";
    case DIMPLE_ERROR:
        return "DIMPLE_ERROR";
    case DIMPLE_ENOMEM:
        return "DIMPLE_ENOMEM";
    case DIMPLE_EINVAL:
        return "DIMPLE_EINVAL";
    case DIMPLE_ENOTFOUND:
        return "DIMPLE_ENOTFOUND";
    case DIMPLE_EEXISTS:
        return "DIMPLE_EEXISTS";
    case DIMPLE_EIO:
        return "DIMPLE_EIO";
    case DIMPLE_EAUTH:
        return "DIMPLE_EAUTH";
    case DIMPLE_ECONFLICT:
        return "DIMPLE_ECONFLICT";
    case DIMPLE_EBUSY:
        return "DIMPLE_EBUSY";
    case DIMPLE_ECONFIG:
        return "DIMPLE_ECONFIG";
    case DIMPLE_EPLUGIN:
        return "DIMPLE_EPLUGIN";
    case DIMPLE_ECORRUPT:
        return "DIMPLE_ECORRUPT";
    case DIMPLE_ESQL:
        return "DIMPLE_ESQL";
    case DIMPLE_EFORMAT:
        return "DIMPLE_EFORMAT";
    case DIMPLE_ESCHEMA:
        return "DIMPLE_ESCHEMA";
    case DIMPLE_ELIMIT:
        return "DIMPLE_ELIMIT";
    }
    return "DIMPLE_E(unknown)";
}
