/*
 * db.h — the connection (internal; db.c): open and close db->sql, and the
 * end of every public call that may have written. The public SQL calls
 * (dimple_exec, dimple_json_query, dimple_value_*) are in dimple.h.
 */
#ifndef DIMPLE_DB_H
#define DIMPLE_DB_H

#include "err.h"
#include "internal.h"

/* Open db->path (WAL, foreign_keys=ON, busy timeout; read_only honoured)
 * into db->sql / close it. */
int dimple_db__open(dimple *db);
void dimple_db__close(dimple *db);
/* DIMPLE_EINVAL "no database open on this handle" when db->sql is NULL. */
int dimple_db__need(dimple *db);
/* The end of every public call that may have written: runs db->on_finish
 * (the live-query flush, once live queries are open) and returns rc with
 * db's error as it was before (a live callback cannot clobber the call's
 * own result). */
int dimple__finish(dimple *db, int rc);

#endif /* DIMPLE_DB_H */
