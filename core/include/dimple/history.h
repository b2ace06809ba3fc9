/* dimple/history.h — part of the DimpleDb app API; include <dimple.h>.
 *
 * History is the change log (docs/tracking.md): every write to a synced
 * table, local or pulled from another author, with who (author), when
 * (the time inside the change's UUIDv7 id) and what (table, key, op, the
 * columns it wrote). Every replica holding the same changes lists the same
 * history, in id order.
 */
#ifndef DIMPLE_HISTORY_H
#define DIMPLE_HISTORY_H

#include <dimple/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;

/* One change. Every pointer is borrowed for the duration of the callback. */
typedef struct dimple_history_entry {
    const char *id;     /* UUIDv7 text of the change */
    const char *author; /* UUID text of its author */
    int64_t time_ms;    /* Unix time in ms, from the id */
    const char *table;
    const char *op; /* "insert", "update" or "delete" */
    size_t n_key;   /* the primary key, in key order */
    const dimple_value *key;
    size_t n_cols; /* the columns the change wrote (none for a delete) */
    const char *const *col_names;
    const dimple_value *cols;
} dimple_history_entry;

/* What to list: dimple_history_query q = DIMPLE_HISTORY_QUERY_INIT; then
 * set fields. Unset fields do not filter. */
typedef struct dimple_history_query {
    size_t size;             /* set by DIMPLE_HISTORY_QUERY_INIT */
    const char *table;       /* one table (case-insensitive) */
    const dimple_value *key; /* with table: one row (n_key values) */
    size_t n_key;
    const char *author; /* UUID text of one author */
    int64_t since_ms;   /* > 0: changes at or after this time */
    int64_t until_ms;   /* > 0: changes at or before this time */
} dimple_history_query;
#define DIMPLE_HISTORY_QUERY_INIT DIMPLE_INIT_(dimple_history_query)

/* Return 0 to go on; anything else stops the walk and is returned. */
typedef int (*dimple_history_cb)(void *payload, const dimple_history_entry *e);

/* Every change that q selects (q NULL: all), in id order. */
DIMPLE_API int dimple_history_list(dimple *db, dimple_history_cb cb,
                                   void *payload,
                                   const dimple_history_query *q);

/* One entry as one line of JSON (no newline): {"id", "time" (ISO 8601
 * UTC), "author", "table", "key" (the value, or an array for a composite
 * key), "op", "columns" (object; values typed as dimple_json_query)}, into
 * *out (dimple_free). DIMPLE_OK or DIMPLE_ENOMEM (*out NULL). */
DIMPLE_API int dimple_history_json(char **out, const dimple_history_entry *e);

/* The row(s) of table as they were at time_ms (every change with a time
 * <= time_ms applied by the merge rule): one row when key is given
 * (n_key values), else every row that existed then (one callback each,
 * grouped by key, in no particular order). Columns
 * are the table's current columns; a cell nobody had written is NULL. */
DIMPLE_API int dimple_history_as_of(dimple *db, const char *table,
                                    const dimple_value *key, size_t n_key,
                                    int64_t time_ms, dimple_row_cb cb,
                                    void *payload);

/* ------------------------------------------------------------ authors */

/* This database's author id (UUIDv7 text, created with the database), or
 * NULL when change tracking is not set up (a read-only database dimple
 * never wrote). Borrowed; valid until the next call on db. */
DIMPLE_API const char *dimple_author_id(dimple *db);

/* A database file copied to a second device must not write as the same
 * author: dimple records the file's identity (device and inode) with the
 * author, and a copy refuses local writes with a message saying so.
 * dimple_author_reset gives this copy a new author (the changes made
 * before keep theirs); dimple_author_keep records the new identity when
 * the file was moved or restored, not copied. CLI: `dimple author
 * --reset` / `--keep`. */
DIMPLE_API int dimple_author_reset(dimple *db);
DIMPLE_API int dimple_author_keep(dimple *db);

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_HISTORY_H */
