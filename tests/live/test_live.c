/*
 * test_live.c — live queries: dependencies from the authorizer, reruns only
 * on touched tables, callbacks only on changed results, rollback, other
 * connections, DDL, re-entrancy, dispatch mode and the notify fd.
 */
#include "test.h"

#include <dimple.h>

#include <poll.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "live_testdb.h"

typedef struct seen {
    int calls;
    int rc;
    char json[4096];
    size_t rows, cols;
    dimple_value v0; /* first cell, when any */
    char text0[64];
} seen;

static void record(void *payload, dimple_live_query *q, const dimple_result *r)
{
    seen *s = payload;
    (void)q;
    s->calls++;
    s->rc = r->rc;
    s->rows = r->n_rows;
    s->cols = r->n_cols;
    snprintf(s->json, sizeof s->json, "%s", r->json);
    if (r->n_rows && r->n_cols) {
        s->v0 = r->values[0];
        if (s->v0.type == DIMPLE_TEXT)
            snprintf(s->text0, sizeof s->text0, "%.*s", (int)s->v0.n,
                     (const char *)s->v0.p);
    }
}

static int has_dep(dimple_live_query *q, const char *name)
{
    for (size_t i = 0; i < dimple_live_dep_count(q); i++)
        if (strcmp(dimple_live_dep(q, i), name) == 0)
            return 1;
    return 0;
}

static const char *schema_sql =
    "CREATE TABLE a(id INTEGER PRIMARY KEY, x);"
    "CREATE TABLE b(k TEXT PRIMARY KEY, y) WITHOUT ROWID;"
    "CREATE TABLE c(z);"
    "CREATE TABLE other(w);"
    "CREATE VIEW v AS SELECT a.x, b.y FROM a JOIN b ON a.id = b.k;";

TEST(dependencies_are_exact)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "deps");
    dimple_live_query *q = NULL;
    seen s = {0};
    CHECK(test_exec(db, schema_sql) == 0);

    CHECK_RC(
        dimple_live_open(&q, db, "SELECT * FROM v", NULL, 0, record, &s, NULL),
        DIMPLE_OK);
    CHECK(has_dep(q, "main.a") && has_dep(q, "main.b"));
    CHECK(!has_dep(q, "main.c") && !has_dep(q, "main.other"));
    dimple_live_close(q);

    CHECK_RC(dimple_live_open(&q, db,
                              "WITH r AS (SELECT x FROM a) SELECT * FROM r, "
                              "(SELECT max(z) FROM c)",
                              NULL, 0, record, &s, NULL),
             DIMPLE_OK);
    CHECK(has_dep(q, "main.a") && has_dep(q, "main.c"));
    CHECK(!has_dep(q, "main.b") && !has_dep(q, "main.other"));
    dimple_live_close(q);

    CHECK_RC(dimple_live_open(&q, db,
                              "SELECT count(*) FROM a WHERE EXISTS "
                              "(SELECT 1 FROM b)",
                              NULL, 0, record, &s, NULL),
             DIMPLE_OK);
    CHECK(dimple_live_dep_count(q) == 2);
    CHECK(has_dep(q, "*.a") && has_dep(q, "*.b"));
    dimple_live_close(q);
    test_close(db, path);
}

TEST(reruns_only_when_touched_and_fires_only_on_change)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "reruns");
    dimple_live_query *q = NULL;
    seen s = {0};
    CHECK(test_exec(db, schema_sql) == 0);
    CHECK(test_exec(db, "INSERT INTO a VALUES(1, 'one')") == 0);

    CHECK_RC(dimple_live_open(&q, db,
                              "SELECT x FROM a WHERE id < 10 ORDER BY id", NULL,
                              0, record, &s, NULL),
             DIMPLE_OK);
    /* the initial result arrives before open returns */
    CHECK(s.calls == 1);
    CHECK_STR(s.json, "[{\"x\":\"one\"}]");
    CHECK(dimple_live_runs(q) == 1);

    /* unrelated tables: no rerun at all */
    CHECK(test_exec(
              db, "INSERT INTO other VALUES(1); INSERT INTO c VALUES(2)") == 0);
    CHECK(dimple_live_runs(q) == 1 && s.calls == 1);

    /* a dependency changed the result: rerun and call */
    CHECK(test_exec(db, "INSERT INTO a VALUES(2, 'two')") == 0);
    CHECK(dimple_live_runs(q) == 2 && s.calls == 2);
    CHECK_STR(s.json, "[{\"x\":\"one\"},{\"x\":\"two\"}]");
    CHECK(s.rows == 2 && s.cols == 1);

    /* touched but the result is the same: rerun, no call */
    CHECK(test_exec(db, "INSERT INTO a VALUES(50, 'filtered out')") == 0);
    CHECK(test_exec(db, "UPDATE a SET x = x") == 0);
    CHECK(dimple_live_runs(q) == 4 && s.calls == 2);

    /* a transaction of several statements: one rerun after its commit */
    CHECK(test_exec(db, "BEGIN; UPDATE a SET x = 'uno' WHERE id = 1;"
                        "INSERT INTO a VALUES(3, 'three'); INSERT INTO other "
                        "VALUES(5); COMMIT") == 0);
    CHECK(dimple_live_runs(q) == 5 && s.calls == 3);
    CHECK_STR(s.json, "[{\"x\":\"uno\"},{\"x\":\"two\"},{\"x\":\"three\"}]");

    /* rolled back: nothing */
    CHECK(test_exec(db, "BEGIN; DELETE FROM a; ROLLBACK") == 0);
    CHECK(dimple_live_runs(q) == 5 && s.calls == 3);

    /* a failing autocommit statement rolls back: nothing */
    CHECK(test_exec(db, "INSERT INTO a VALUES(4, 'four'), (1, 'dup')") != 0);
    CHECK(dimple_live_runs(q) == 5 && s.calls == 3);

    /* raw SQL through dimple_sqlite(): seen at the next call that flushes
     * (here a read-only one, dimple_live_dispatch) */
    CHECK(test_raw(db, "INSERT INTO a VALUES(5, 'five')") == 0);
    CHECK(dimple_live_runs(q) == 5 && s.calls == 3);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(dimple_live_runs(q) == 6 && s.calls == 4);
    CHECK(test_raw(db, "BEGIN; DELETE FROM a WHERE id = 5; ROLLBACK") == 0);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(dimple_live_runs(q) == 6);
    CHECK(test_raw(db, "DELETE FROM a WHERE id = 5") == 0);
    CHECK(test_exec(db, "SELECT 1") == 0); /* any dimple call flushes */
    CHECK(dimple_live_runs(q) == 7 && s.calls == 5);

    /* inside an open transaction a flush runs nothing */
    CHECK(test_exec(db, "BEGIN; DELETE FROM a WHERE id = 3") == 0);
    CHECK(dimple_live_runs(q) == 7 && s.calls == 5);
    CHECK(test_exec(db, "COMMIT") == 0);
    CHECK(dimple_live_runs(q) == 8 && s.calls == 6);

    dimple_live_close(q);
    test_close(db, path);
}

TEST(views_ctes_subqueries_without_rowid)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "views");
    dimple_live_query *qv = NULL, *qc = NULL, *qs = NULL;
    seen sv = {0}, sc = {0}, ss = {0};
    CHECK(test_exec(db, schema_sql) == 0);
    CHECK_RC(dimple_live_open(&qv, db, "SELECT * FROM v ORDER BY x", NULL, 0,
                              record, &sv, NULL),
             DIMPLE_OK);
    CHECK_RC(dimple_live_open(&qc, db,
                              "WITH t AS (SELECT z FROM c) SELECT count(*) "
                              "AS n FROM t",
                              NULL, 0, record, &sc, NULL),
             DIMPLE_OK);
    CHECK_RC(dimple_live_open(&qs, db, "SELECT (SELECT count(*) FROM b) AS nb",
                              NULL, 0, record, &ss, NULL),
             DIMPLE_OK);
    CHECK_STR(sv.json, "[]");
    CHECK_STR(sc.json, "[{\"n\":0}]");

    CHECK(test_exec(db, "INSERT INTO a VALUES(1, 'x1')") == 0);
    /* a changed, but the join has no b row yet: view reran, no call */
    CHECK(dimple_live_runs(qv) == 2 && sv.calls == 1);
    CHECK(dimple_live_runs(qc) == 1 && dimple_live_runs(qs) == 1);

    /* b is WITHOUT ROWID (SQLite's update hook would not report it; the
     * preupdate hook does) */
    CHECK(test_exec(db, "INSERT INTO b VALUES('1', 'y1')") == 0);
    CHECK(sv.calls == 2);
    CHECK_STR(sv.json, "[{\"x\":\"x1\",\"y\":\"y1\"}]");
    CHECK(ss.calls == 2);
    CHECK_STR(ss.json, "[{\"nb\":1}]");
    CHECK(dimple_live_runs(qc) == 1);

    CHECK(test_exec(db, "INSERT INTO c VALUES(7)") == 0);
    CHECK(sc.calls == 2 && dimple_live_runs(qv) == 3);
    CHECK_STR(sc.json, "[{\"n\":1}]");
    dimple_live_close(qv);
    dimple_live_close(qc);
    dimple_live_close(qs);
    test_close(db, path);
}

TEST(virtual_tables_through_their_shadow_tables)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "vtab");
    dimple_live_query *q = NULL;
    seen s = {0};
    CHECK(test_exec(db, "CREATE VIRTUAL TABLE ft USING fts5(body);"
                        "CREATE TABLE ft_like(x); CREATE TABLE other(w)") == 0);
    CHECK_RC(dimple_live_open(&q, db,
                              "SELECT count(*) AS n FROM ft WHERE ft MATCH "
                              "'milk'",
                              NULL, 0, record, &s, NULL),
             DIMPLE_OK);
    CHECK(has_dep(q, "main.ft"));
    CHECK(test_exec(db, "INSERT INTO ft VALUES('buy milk')") == 0);
    CHECK(s.calls == 2);
    CHECK_STR(s.json, "[{\"n\":1}]");
    CHECK(test_exec(db, "INSERT INTO other VALUES(1)") == 0);
    CHECK(dimple_live_runs(q) == 2);
    dimple_live_close(q);
    test_close(db, path);
}

TEST(values_round_trip)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "values");
    dimple_live_query *q = NULL;
    seen s = {0};
    dimple_value p[2];
    p[0] = dimple_value_text("al");
    p[1] = dimple_value_int(2);
    CHECK(test_exec(db, "CREATE TABLE t(name TEXT, n INTEGER, r REAL, b BLOB,"
                        " z);"
                        "INSERT INTO t VALUES('alice', 9223372036854775807,"
                        " 1.0, x'00ff', NULL);"
                        "INSERT INTO t VALUES('bob', 1, 2.5, x'', NULL)") == 0);
    CHECK_RC(dimple_live_open(&q, db,
                              "SELECT * FROM t WHERE substr(name, 1, ?2) = ?1",
                              p, 2, record, &s, NULL),
             DIMPLE_OK);
    CHECK(s.calls == 1 && s.rows == 1 && s.cols == 5);
    CHECK_STR(s.text0, "alice");
    CHECK_STR(s.json, "[{\"name\":\"alice\",\"n\":\"9223372036854775807\","
                      "\"r\":1.0,\"b\":{\"$blob\":\"AP8=\"},\"z\":null}]");
    /* a REAL that becomes an equal INTEGER is a change (z: no affinity) */
    CHECK(test_exec(db, "UPDATE t SET z = 1.0 WHERE name = 'alice'") == 0);
    CHECK(s.calls == 2);
    CHECK_CONTAINS(s.json, "\"z\":1.0}");
    CHECK(test_exec(db, "UPDATE t SET z = 1 WHERE name = 'alice'") == 0);
    CHECK(s.calls == 3);
    CHECK_CONTAINS(s.json, "\"z\":1}");
    /* REAL affinity keeps 1 as 1.0: not a change */
    CHECK(test_exec(db, "UPDATE t SET r = 1 WHERE name = 'alice'") == 0);
    CHECK(s.calls == 3 && dimple_live_runs(q) == 4);
    dimple_live_close(q);
    test_close(db, path);
}

TEST(bad_input)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "bad");
    dimple_live_query *q = (dimple_live_query *)1;
    seen s = {0};
    dimple_value one = dimple_value_int(1);
    CHECK(test_exec(db, schema_sql) == 0);
    CHECK_RC(dimple_live_open(&q, db, "INSERT INTO a VALUES(1, 2)", NULL, 0,
                              record, &s, NULL),
             DIMPLE_EINVAL);
    CHECK(q == NULL);
    CHECK_CONTAINS(dimple_errmsg(db), "read-only");
    CHECK_RC(dimple_live_open(&q, db, "SELECT 1; SELECT 2", NULL, 0, record, &s,
                              NULL),
             DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "one statement");
    CHECK(dimple_live_open(&q, db, "SELEC x FROM a", NULL, 0, record, &s,
                           NULL) < 0);
    CHECK_CONTAINS(dimple_errmsg(db), "syntax error");
    CHECK(dimple_live_open(&q, db, "SELECT * FROM nosuch", NULL, 0, record, &s,
                           NULL) < 0);
    CHECK_CONTAINS(dimple_errmsg(db), "nosuch");
    CHECK_RC(dimple_live_open(&q, db, "SELECT * FROM a WHERE id = ?", NULL, 0,
                              record, &s, NULL),
             DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "parameters");
    CHECK_RC(
        dimple_live_open(&q, db, "SELECT * FROM a", &one, 1, record, &s, NULL),
        DIMPLE_EINVAL);
    CHECK_RC(
        dimple_live_open(&q, db, "SELECT * FROM a", NULL, 0, NULL, &s, NULL),
        DIMPLE_EINVAL);
    CHECK_RC(dimple_live_open(&q, db, "", NULL, 0, record, &s, NULL),
             DIMPLE_EINVAL);
    {
        dimple_live_options o = {sizeof o, 7};
        CHECK_RC(dimple_live_open(&q, db, "SELECT 1", NULL, 0, record, &s, &o),
                 DIMPLE_EINVAL);
        CHECK_CONTAINS(dimple_errmsg(db), "delivery");
    }
    CHECK(s.calls == 0);
    /* none of that left state behind: a good open still works */
    CHECK_RC(
        dimple_live_open(&q, db, "SELECT 1 AS one", NULL, 0, record, &s, NULL),
        DIMPLE_OK);
    CHECK(s.calls == 1 && dimple_live_dep_count(q) == 0);
    dimple_live_close(q);
    dimple_live_close(NULL);
    test_close(db, path);
}

TEST(schema_change_reaches_the_callback)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "ddl");
    dimple_live_query *q = NULL;
    seen s = {0};
    CHECK(test_exec(db, schema_sql) == 0);
    CHECK(test_exec(db, "INSERT INTO c VALUES(1)") == 0);
    CHECK_RC(
        dimple_live_open(&q, db, "SELECT * FROM c", NULL, 0, record, &s, NULL),
        DIMPLE_OK);
    CHECK(test_exec(db, "CREATE TABLE unrelated(u)") == 0);
    CHECK(s.calls == 1); /* DDL reran it, same result, no call */
    CHECK(test_exec(db, "DROP TABLE c") == 0);
    CHECK(s.calls == 2 && s.rc != DIMPLE_OK);
    CHECK_STR(s.json, "[]");
    CHECK(test_exec(db, "INSERT INTO other VALUES(1); CREATE TABLE c(z);"
                        "INSERT INTO c VALUES(5)") == 0);
    CHECK(s.calls == 3 && s.rc == DIMPLE_OK);
    CHECK_STR(s.json, "[{\"z\":5}]");
    dimple_live_close(q);
    test_close(db, path);
}

/* ---- re-entrancy: callbacks that write, open and close ---- */

typedef struct reent {
    dimple *db;
    int calls;
    dimple_live_query *self;
    dimple_live_query *opened;
    seen inner;
    int close_self_at;
} reent;

static void writer_cb(void *payload, dimple_live_query *q,
                      const dimple_result *r)
{
    reent *R = payload;
    (void)r;
    R->calls++;
    /* keep bumping a counter until 3: each write re-triggers this query */
    test_exec(R->db, "UPDATE c SET z = z + 1 WHERE z < 3");
    if (R->calls == 2 && !R->opened)
        dimple_live_open(&R->opened, R->db, "SELECT count(*) FROM other", NULL,
                         0, record, &R->inner, NULL);
    if (R->calls == R->close_self_at)
        dimple_live_close(q);
}

TEST(callbacks_may_write_open_and_close)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "reent");
    reent R = {0};
    R.db = db;
    R.close_self_at = 100;
    CHECK(test_exec(db, schema_sql) == 0);
    CHECK(test_exec(db, "INSERT INTO c VALUES(0)") == 0);
    CHECK_RC(dimple_live_open(&R.self, db, "SELECT z FROM c", NULL, 0,
                              writer_cb, &R, NULL),
             DIMPLE_OK);
    /* z: 0 -> 1 -> 2 -> 3, then the write changes nothing */
    CHECK(R.calls == 4);
    CHECK(R.opened && R.inner.calls == 1);
    CHECK(test_exec(db, "INSERT INTO other VALUES(1)") == 0);
    CHECK(R.inner.calls == 2);
    CHECK(R.calls == 4);
    /* close itself from its own callback: no call after */
    R.close_self_at = 5;
    CHECK(test_exec(db, "UPDATE c SET z = 0") == 0);
    CHECK(R.calls == 5);
    CHECK(test_exec(db, "UPDATE c SET z = 10") == 0);
    CHECK(R.calls == 5);
    dimple_live_close(R.opened);
    test_close(db, path);
}

/* ---- other connections and processes ---- */

TEST(other_connections_and_processes)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "others");
    dimple_live_query *q = NULL, *qo = NULL;
    seen s = {0}, so = {0};
    sqlite3 *other = NULL;
    pid_t pid;
    int st = 0;
    CHECK(test_exec(db, schema_sql) == 0);
    CHECK_RC(dimple_live_open(&q, db, "SELECT count(*) AS n FROM a", NULL, 0,
                              record, &s, NULL),
             DIMPLE_OK);
    CHECK_RC(dimple_live_open(&qo, db, "SELECT count(*) AS n FROM other", NULL,
                              0, record, &so, NULL),
             DIMPLE_OK);
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    CHECK(sqlite3_exec(other, "INSERT INTO a VALUES(1, 1)", NULL, NULL, NULL) ==
          SQLITE_OK);
    CHECK(s.calls == 1); /* nothing ran yet: nobody asked */
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(s.calls == 2);
    CHECK_STR(s.json, "[{\"n\":1}]");
    /* SQLite does not say which tables: both reran, one changed */
    CHECK(dimple_live_runs(qo) == 2 && so.calls == 1);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(dimple_live_runs(q) == 2); /* nothing new: no rerun */
    /* a rolled-back transaction elsewhere changes nothing */
    CHECK(sqlite3_exec(other, "BEGIN; INSERT INTO a VALUES(2, 2); ROLLBACK",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(dimple_live_runs(q) == 2 && s.calls == 2);
    sqlite3_close(other);

    /* another process */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sqlite3 *c;
        int rc = sqlite3_open(path, &c);
        sqlite3_busy_timeout(c, 5000);
        rc |= sqlite3_exec(c, "INSERT INTO a VALUES(7, 7)", NULL, NULL, NULL);
        sqlite3_close(c);
        _exit(rc ? 1 : 0);
    }
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
          WEXITSTATUS(st) == 0);
    /* a local write to an unrelated table also notices it (flush) */
    CHECK(test_exec(db, "INSERT INTO c VALUES(1)") == 0);
    CHECK(s.calls == 3);
    CHECK_STR(s.json, "[{\"n\":2}]");
    dimple_live_close(q);
    dimple_live_close(qo);
    test_close(db, path);
}

/* ---- dispatch mode and the notify fd ---- */

static int readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

TEST(dispatch_mode_and_notify_fd)
{
    char path[256];
    dimple *db = test_open(path, sizeof path, "dispatch");
    dimple_live_query *q = NULL, *qs = NULL;
    dimple_live_options o = {sizeof o, DIMPLE_LIVE_DISPATCH};
    seen s = {0}, ss = {0};
    sqlite3 *other = NULL;
    int fd;
    struct timespec t0, t1;
    double ms;
    CHECK(test_exec(db, schema_sql) == 0);
    fd = dimple_live_fd(db);
    CHECK(fd >= 0);
    CHECK(dimple_live_fd(db) == fd);
    CHECK_RC(dimple_live_open(&q, db, "SELECT count(*) AS n FROM a", NULL, 0,
                              record, &s, &o),
             DIMPLE_OK);
    CHECK_RC(dimple_live_open(&qs, db, "SELECT count(*) AS n FROM a", NULL, 0,
                              record, &ss, NULL),
             DIMPLE_OK);
    CHECK(s.calls == 0 && ss.calls == 1);
    CHECK(readable(fd, 0));
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(s.calls == 1 && !readable(fd, 0));

    CHECK(test_exec(db, "INSERT INTO a VALUES(1, 1)") == 0);
    /* the committing call ran the SYNC query; the DISPATCH one waits */
    CHECK(ss.calls == 2 && s.calls == 1 && dimple_live_runs(q) == 1);
    CHECK(readable(fd, 0));
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(s.calls == 2);
    CHECK_STR(s.json, "[{\"n\":1}]");

    /* unrelated write: the fd stays quiet */
    CHECK(test_exec(db, "INSERT INTO other VALUES(1)") == 0);
    CHECK(!readable(fd, 0));

    /* another connection: the watcher makes the fd readable */
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(sqlite3_exec(other, "INSERT INTO a VALUES(2, 2)", NULL, NULL, NULL) ==
          SQLITE_OK);
    CHECK(readable(fd, 2000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
         (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("# watcher latency %.1f ms\n", ms);
    CHECK(ms < 1000);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(s.calls == 3 && ss.calls == 3);
    CHECK_STR(s.json, "[{\"n\":2}]");
    sqlite3_close(other);
    dimple_live_close(q);
    dimple_live_close(qs);
    test_close(db, path);
}

/* The test build's hook (core/src/live.c, DIMPLE_TESTING): the watcher's
 * next poll fails as an unreadable file would. */
void dimple_live__test_break_watcher(dimple *db);

/* A watcher that cannot run must not leave a descriptor nothing writes to:
 * dimple_live_fd fails when it cannot start, and dimple_live_dispatch says so
 * when it stopped later, until dimple_live_fd starts it again. */
TEST(watcher_failure_is_reported)
{
    char path[256], side[300];
    dimple *db = test_open(path, sizeof path, "watchfail");
    dimple_live_query *q = NULL;
    dimple_live_options o = {sizeof o, DIMPLE_LIVE_DISPATCH};
    seen s = {0};
    sqlite3 *other = NULL;
    int fd;
    CHECK(test_exec(db, schema_sql) == 0);
    /* The watcher opens the file by name: gone, it cannot. */
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    fd = dimple_live_fd(db);
    printf("# notify fd with the file gone: %d (%s)\n", fd, dimple_errmsg(db));
    CHECK_RC(fd, DIMPLE_EIO);
    CHECK(strstr(dimple_errmsg(db), "watcher") != NULL);
    CHECK(strstr(dimple_errmsg(db), "cannot open") != NULL);
    CHECK_RC(dimple_live_fd(db), DIMPLE_EIO); /* still cannot */
    /* the handle itself works on */
    CHECK(test_exec(db, "INSERT INTO a VALUES(1, 1)") == 0);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    test_close(db, path);

    /* A watcher that stops later: the fd wakes the app, whose dispatch
     * reports it (and still runs the queries). */
    db = test_open(path, sizeof path, "watchdies");
    CHECK(test_exec(db, schema_sql) == 0);
    CHECK_RC(dimple_live_open(&q, db, "SELECT count(*) AS n FROM a", NULL, 0,
                              record, &s, &o),
             DIMPLE_OK);
    fd = dimple_live_fd(db);
    CHECK(fd >= 0);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(s.calls == 1 && !readable(fd, 0));
    dimple_live__test_break_watcher(db);
    CHECK(readable(fd, 2000));
    CHECK(test_exec(db, "INSERT INTO a VALUES(1, 1)") == 0);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_EIO);
    printf("# dispatch after the watcher stopped: %s\n", dimple_errmsg(db));
    CHECK(strstr(dimple_errmsg(db), "watcher stopped") != NULL);
    CHECK(strstr(dimple_errmsg(db), "disk I/O error") != NULL);
    CHECK(s.calls == 2);
    CHECK_STR(s.json, "[{\"n\":1}]");
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_EIO); /* until restarted */
    /* dimple_live_fd starts a new watcher on the same fd */
    CHECK(dimple_live_fd(db) == fd);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(!readable(fd, 0));
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    CHECK(sqlite3_exec(other, "INSERT INTO a VALUES(2, 2)", NULL, NULL, NULL) ==
          SQLITE_OK);
    CHECK(readable(fd, 2000));
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    CHECK(s.calls == 3);
    CHECK_STR(s.json, "[{\"n\":2}]");
    sqlite3_close(other);
    dimple_live_close(q);
    test_close(db, path);
}

/* ---- sync in the same process: applied batches trigger live queries ---- */

static dimple *open_conf(const char *dir, const char *name)
{
    char conf[512];
    FILE *f;
    dimple *db = NULL;
    snprintf(conf, sizeof conf, "%s/%s.conf", dir, name);
    f = fopen(conf, "w");
    if (!f)
        return NULL;
    fprintf(f,
            "[dimple]\ndatabase = %s/%s.db\ntables = todo\n"
            "[storage]\nplugin = memory\nname = live-test-%d\n",
            dir, name, (int)getpid());
    fclose(f);
    if (dimple_open(&db, conf) != DIMPLE_OK) {
        printf("# open %s: %s\n", conf, dimple_errmsg(db));
        dimple_close(db);
        return NULL;
    }
    return db;
}

TEST(applied_sync_batches_trigger)
{
    char dir[] = "/tmp/dimple-live-sync-XXXXXX", cmd[600];
    dimple *a, *b;
    dimple_live_query *q = NULL, *qo = NULL;
    seen s = {0}, so = {0};
    const char *mig[] = {"CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT);"
                         "CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT)"};
    CHECK(mkdtemp(dir) != NULL);
    a = open_conf(dir, "a");
    b = open_conf(dir, "b");
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(dimple_migrate(a, mig, 1), DIMPLE_OK);
    CHECK_RC(dimple_migrate(b, mig, 1), DIMPLE_OK);
    /* the first sync creates sync's own tables (DDL reruns everything) */
    CHECK_RC(dimple_sync(NULL, a, NULL), DIMPLE_OK);
    CHECK_RC(dimple_live_open(&q, a, "SELECT id, title FROM todo ORDER BY id",
                              NULL, 0, record, &s, NULL),
             DIMPLE_OK);
    CHECK_RC(dimple_live_open(&qo, a, "SELECT count(*) AS n FROM notes", NULL,
                              0, record, &so, NULL),
             DIMPLE_OK);
    CHECK(test_exec(b, "INSERT INTO todo VALUES('r1', 'from b')") == 0);
    CHECK_RC(dimple_sync(NULL, b, NULL), DIMPLE_OK);
    CHECK(s.calls == 1);
    CHECK_RC(dimple_sync(NULL, a, NULL), DIMPLE_OK);
    /* the batch was applied on a's connection: the call reran its query */
    CHECK(s.calls == 2);
    CHECK_STR(s.json, "[{\"id\":\"r1\",\"title\":\"from b\"}]");
    /* and only the query on the table the batch wrote */
    CHECK(dimple_live_runs(qo) == 1 && so.calls == 1);
    /* nothing new: a sync that applies nothing reruns nothing */
    CHECK_RC(dimple_sync(NULL, a, NULL), DIMPLE_OK);
    CHECK(dimple_live_runs(q) == 2);
    dimple_live_close(q);
    dimple_live_close(qo);
out:
    dimple_close(a);
    dimple_close(b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    if (getenv("ONLY_DISPATCH")) {
        RUN(dispatch_mode_and_notify_fd);
        return test_done();
    }
    RUN(dependencies_are_exact);
    RUN(reruns_only_when_touched_and_fires_only_on_change);
    RUN(views_ctes_subqueries_without_rowid);
    RUN(virtual_tables_through_their_shadow_tables);
    RUN(values_round_trip);
    RUN(bad_input);
    RUN(schema_change_reaches_the_callback);
    RUN(callbacks_may_write_open_and_close);
    RUN(other_connections_and_processes);
    RUN(dispatch_mode_and_notify_fd);
    RUN(watcher_failure_is_reported);
    RUN(applied_sync_batches_trigger);
    return test_done();
}
