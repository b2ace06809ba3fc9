/*
 * dimple/live.h — live queries: part of the DimpleDb app API; include
 * <dimple.h>. The guide with the thread rules and an epoll example is
 * docs/live.md.
 *
 * A live query is one read-only SQL statement whose callback receives the
 * full result once at open and then again after every commit that touched
 * a table the statement reads, but only when the result actually changed.
 * The tables a statement reads are what SQLite's authorizer reports while
 * preparing it (joins, views, subqueries and CTEs are exact; no parsing).
 *
 * What triggers a rerun: a commit on the handle's connection (any API, raw
 * SQL through dimple_sqlite() included, applied sync batches), and a commit
 * by another connection or process to the same file (PRAGMA data_version;
 * SQLite does not say which tables another connection wrote, so that reruns
 * every live query of the handle — callbacks still fire only on changed
 * results). A rolled-back transaction triggers nothing.
 *
 * Threads (see docs/live.md): a handle is used by one thread at a time;
 * dimple_live_* calls, dimple_live_dispatch included, are uses of the
 * handle like any other call. Only dimple_live_fd's descriptor may be
 * watched (poll/epoll/read) from any thread at any time.
 */
#ifndef DIMPLE_LIVE_H
#define DIMPLE_LIVE_H

#include <dimple/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;
/* One live query (struct dimple_live is the handle's internal state). */
typedef struct dimple_live_query dimple_live_query;

/* A query result handed to a live callback. Everything is borrowed for the
 * duration of the call. */
typedef struct dimple_result {
    int rc;             /* DIMPLE_OK, or the error of this run (no rows) */
    const char *errmsg; /* "ok", or what failed (e.g. the table is gone) */
    size_t n_rows;
    size_t n_cols;
    const char *const *names;   /* n_cols column names */
    const dimple_value *values; /* n_rows * n_cols, row-major */
    const char *json; /* the result as one JSON array of row objects, the
                         encoding of dimple_json_query; never NULL */
} dimple_result;

/* Called with the full result (see above). May call any dimple function on
 * the same handle, dimple_live_close(q) included; writes it makes trigger
 * live queries again once it returns. */
typedef void (*dimple_live_cb)(void *payload, dimple_live_query *q,
                               const dimple_result *r);

/* How a live query's callback is delivered. */
enum {
    /* Default: on the thread of the call that committed, right after the
     * commit, before that call returns (never inside a SQLite hook).
     * Commits by other processes: at the next dimple call that may write
     * on this handle, or dimple_live_dispatch(). */
    DIMPLE_LIVE_SYNC = 0,
    /* Only from dimple_live_dispatch(): a commit marks the query and makes
     * dimple_live_fd() readable; the app's loop calls dimple_live_dispatch()
     * on its own thread, which reruns and calls back. */
    DIMPLE_LIVE_DISPATCH = 1
};

/* Options for dimple_live_open(): dimple_live_options o =
 * DIMPLE_LIVE_OPTIONS_INIT; then set fields. */
typedef struct dimple_live_options {
    size_t size;  /* set by DIMPLE_LIVE_OPTIONS_INIT */
    int delivery; /* DIMPLE_LIVE_SYNC (default) or DIMPLE_LIVE_DISPATCH */
} dimple_live_options;
#define DIMPLE_LIVE_OPTIONS_INIT DIMPLE_INIT_(dimple_live_options)

/* Open a live query: sql is ONE read-only statement; params bind in order
 * (?1..?n; strings and blobs are copied). The first callback comes with the
 * initial result: before this returns (SYNC) or at the next
 * dimple_live_dispatch (DISPATCH). opts may be NULL. On failure *out is NULL
 * and the handle's message says why (a syntax error, a write statement, ...).
 */
DIMPLE_API int dimple_live_open(dimple_live_query **out, dimple *db,
                                const char *sql, const dimple_value *params,
                                size_t n_params, dimple_live_cb cb,
                                void *payload, const dimple_live_options *opts);

/* Stop and free a live query; no callback comes after this returns. May
 * be called from its own callback. NULL is fine. Queries still open at
 * dimple_close() are closed with the handle. */
DIMPLE_API void dimple_live_close(dimple_live_query *q);

/* The statement's SQL. Borrowed, valid until dimple_live_close(q). */
DIMPLE_API const char *dimple_live_sql(const dimple_live_query *q);
/* The number of tables q depends on, and the i-th as "schema.table"
 * ("*.table" when SQLite did not say which schema). Borrowed, valid until
 * dimple_live_close(q). */
DIMPLE_API size_t dimple_live_dep_count(const dimple_live_query *q);
DIMPLE_API const char *dimple_live_dep(const dimple_live_query *q, size_t i);
/* How often q ran (the first run included) and how often its callback was
 * called: runs - calls = reruns whose result had not changed. */
DIMPLE_API uint64_t dimple_live_runs(const dimple_live_query *q);
DIMPLE_API uint64_t dimple_live_calls(const dimple_live_query *q);

/* A file descriptor (an eventfd) that becomes readable when live queries
 * in DISPATCH mode have something to do: a local commit touched one, or
 * another connection or process committed to the file (a watcher thread
 * with its own read-only connection checks PRAGMA data_version every
 * 50 ms, so such a commit shows within about 50 ms). Owned by the handle,
 * valid until dimple_close; the first call starts the watcher. Returns the
 * fd (>= 0) or a negative code: DIMPLE_EIO when the watcher cannot run.
 * A watcher that stops later makes dimple_live_dispatch return DIMPLE_EIO until
 * this is called again, which starts a new one. Watch it for POLLIN/EPOLLIN;
 * there is no need to read it (dimple_live_dispatch drains it). */
DIMPLE_API int dimple_live_fd(dimple *db);

/* Run what is pending on the calling thread: notice commits by other
 * connections, rerun the live queries (of both modes) whose tables changed
 * and call back those whose result changed, DISPATCH queries' first
 * results included. Drains the notify fd. Returns DIMPLE_OK or a negative
 * code (a rerun's own failure goes to its callback, not here). An app
 * without an event loop calls it on a timer or before it reads, to pick
 * up other processes' commits. */
DIMPLE_API int dimple_live_dispatch(dimple *db);

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_LIVE_H */
