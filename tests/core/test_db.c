/*
 * test_db.c — the database side of the handle: open (WAL, foreign keys,
 * busy timeout), errors (locked, unreadable, SQL), exec with parameters,
 * migrations from a list and from a folder.
 */
#include "../test.h"
#include "internal.h"
#include "util.h"

#include <sqlite3.h>

static dimple *open_fresh(const char *name)
{
    dimple *db = NULL;
    unlink(tmp_path(name));
    CHECK_RC(dimple_open_path(&db, tmp_path(name), NULL), DIMPLE_OK);
    return db;
}

/* The first column of the first row as text, in a static buffer. */
static char got[1024];
static int first_cell(void *payload, size_t n, const char *const *names,
                      const dimple_value *v)
{
    (void)payload, (void)names;
    if (n < 1)
        return 0;
    switch (v[0].type) {
    case DIMPLE_INTEGER:
        snprintf(got, sizeof got, "%lld", (long long)v[0].i);
        break;
    case DIMPLE_TEXT:
        snprintf(got, sizeof got, "%.*s", (int)v[0].n, (const char *)v[0].p);
        break;
    default:
        snprintf(got, sizeof got, "type %d", v[0].type);
    }
    return 0;
}

static const char *scalar(dimple *db, const char *sql)
{
    got[0] = '\0';
    if (dimple_exec(db, sql, NULL, 0, first_cell, NULL) < 0)
        snprintf(got, sizeof got, "error: %s", dimple_errmsg(db));
    return got;
}

TEST(open_sets_pragmas)
{
    dimple *db = open_fresh("a.db");
    CHECK_STR(scalar(db, "PRAGMA journal_mode"), "wal");
    CHECK_STR(scalar(db, "PRAGMA foreign_keys"), "1");
    CHECK_STR(scalar(db, "PRAGMA busy_timeout"), "5000");
    CHECK_STR(scalar(db, "PRAGMA cache_size"), "-2000"); /* SQLite's */
    CHECK_STR(dimple_errmsg(db), "ok");
    CHECK(dimple_errcode(db) == DIMPLE_OK);
    CHECK(dimple_sqlite(db) != NULL);
    CHECK_STR(dimple_db_path(db), tmp_path("a.db"));
    dimple_close(db);
    CHECK_STR(dimple_errmsg(NULL), "out of memory (no handle)");
    CHECK(dimple_errcode(NULL) == DIMPLE_ENOMEM);
    CHECK_STR(dimple_errstr(DIMPLE_EBUSY), "DIMPLE_EBUSY");
    CHECK_STR(dimple_errstr(12345), "DIMPLE_E(unknown)");
    dimple_close(NULL);
}

/* dimple_options.cache_size_kib sets the page cache (KiB); out of range
 * is refused before anything opens. */
TEST(cache_size_option)
{
    dimple *db = NULL;
    dimple_options o = {.size = sizeof o, .cache_size_kib = 32768};
    unlink(tmp_path("cs.db"));
    CHECK_RC(dimple_open_path(&db, tmp_path("cs.db"), &o), DIMPLE_OK);
    CHECK_STR(scalar(db, "PRAGMA cache_size"), "-32768");
    dimple_close(db);
    o.cache_size_kib = -1;
    CHECK_RC(dimple_open_path(&db, tmp_path("cs.db"), &o), DIMPLE_EINVAL);
    CHECK_STR(dimple_errmsg(db), "cache_size_kib must be in 0..16777216");
    dimple_close(db);
}

static void on_live(void *payload, dimple_live_query *q, const dimple_result *r)
{
    (void)q, (void)r;
    ++*(int *)payload;
}

static int on_change(void *payload, const dimple_history_entry *e)
{
    (void)e;
    ++*(int *)payload;
    return 0;
}

/* One rule for every options struct: NULL is the defaults; size 0, below
 * the first published layout or above the library's is DIMPLE_EINVAL
 * naming the struct and its _INIT macro; fields past a smaller size keep
 * their defaults. */
TEST(options_structs_versioned)
{
    dimple *db = NULL;
    dimple_options o = DIMPLE_OPTIONS_INIT;
    CHECK(o.size == sizeof(dimple_options) && !o.tables && !o.read_only);

    unlink(tmp_path("opt.db"));
    o.size = 0;
    CHECK_RC(dimple_open_path(&db, tmp_path("opt.db"), &o), DIMPLE_EINVAL);
    CHECK_STR(dimple_errmsg(db), "dimple_options.size is 0: initialise it"
                                 " with DIMPLE_OPTIONS_INIT");
    dimple_close(db);
    o.size = sizeof(size_t);
    CHECK_RC(dimple_open_path(&db, tmp_path("opt.db"), &o), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "dimple_options.size is 8, this"
                                      " library's is");
    CHECK_CONTAINS(dimple_errmsg(db), "DIMPLE_OPTIONS_INIT");
    dimple_close(db);
    o.size = sizeof o + 8;
    CHECK_RC(dimple_open_path(&db, tmp_path("opt.db"), &o), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "dimple_options.size is");
    dimple_close(db);
    /* an older caller's struct ends before cache_size_kib: what lies past
     * its size (here a value that would be refused) is not read */
    o.size = offsetof(dimple_options, cache_size_kib);
    o.cache_size_kib = -1;
    o.tables = "";
    CHECK_RC(dimple_open_path(&db, tmp_path("opt.db"), &o), DIMPLE_OK);
    CHECK_STR(scalar(db, "PRAGMA cache_size"), "-2000");
    CHECK_STR(dimple_tables(db), "");
    dimple_close(db);

    /* the other entry points: NULL works, size 0 is refused by name */
    unlink(tmp_path("opt.db"));
    CHECK_RC(dimple_open_path(&db, tmp_path("opt.db"), NULL), DIMPLE_OK);
    CHECK_RC(dimple_exec(db,
                         "CREATE TABLE t(id TEXT PRIMARY KEY, a);"
                         " INSERT INTO t VALUES ('k', 1)",
                         NULL, 0, NULL, NULL),
             DIMPLE_OK);
    int calls = 0;
    dimple_live_query *q = NULL;
    dimple_live_options lo = DIMPLE_LIVE_OPTIONS_INIT;
    CHECK(lo.size == sizeof lo && lo.delivery == DIMPLE_LIVE_SYNC);
    lo.size = 0;
    CHECK_RC(dimple_live_open(&q, db, "SELECT * FROM t", NULL, 0, on_live,
                              &calls, &lo),
             DIMPLE_EINVAL);
    CHECK_STR(dimple_errmsg(db), "dimple_live_options.size is 0: initialise"
                                 " it with DIMPLE_LIVE_OPTIONS_INIT");
    lo.size = sizeof lo + 1;
    CHECK_RC(dimple_live_open(&q, db, "SELECT * FROM t", NULL, 0, on_live,
                              &calls, &lo),
             DIMPLE_EINVAL);
    CHECK(q == NULL && calls == 0);
    CHECK_RC(dimple_live_open(&q, db, "SELECT * FROM t", NULL, 0, on_live,
                              &calls, NULL),
             DIMPLE_OK);
    CHECK(calls == 1);
    dimple_live_close(q);

    dimple_history_query hq = DIMPLE_HISTORY_QUERY_INIT;
    hq.size = 0;
    CHECK_RC(dimple_history_list(db, on_change, &calls, &hq), DIMPLE_EINVAL);
    CHECK_STR(dimple_errmsg(db), "dimple_history_query.size is 0: initialise"
                                 " it with DIMPLE_HISTORY_QUERY_INIT");
    calls = 0;
    CHECK_RC(dimple_history_list(db, on_change, &calls, NULL), DIMPLE_OK);
    CHECK(calls == 1);

    dimple_sync_options so = DIMPLE_SYNC_OPTIONS_INIT;
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    CHECK(so.size == sizeof so && st.size == sizeof st);
    so.size = 0;
    CHECK_RC(dimple_sync(&st, db, &so), DIMPLE_EINVAL);
    CHECK_STR(dimple_errmsg(db), "dimple_sync_options.size is 0: initialise"
                                 " it with DIMPLE_SYNC_OPTIONS_INIT");
    st.size = 0;
    CHECK_RC(dimple_sync(&st, db, NULL), DIMPLE_EINVAL);
    CHECK_STR(dimple_errmsg(db), "dimple_sync_stats.size is 0: initialise"
                                 " it with DIMPLE_SYNC_STATS_INIT");
    CHECK(st.size == 0 && st.errors == 0); /* not written */
    /* valid structs reach the sync itself (no [storage] here); the stats
     * keep their size */
    st = (dimple_sync_stats)DIMPLE_SYNC_STATS_INIT;
    CHECK_RC(dimple_sync(&st, db, NULL), DIMPLE_ECONFIG);
    CHECK(st.size == sizeof st && st.errors == 1);
    dimple_close(db);
}

TEST(foreign_keys_enforced)
{
    dimple *db = open_fresh("fk.db");
    CHECK_RC(dimple_exec(db,
                         "CREATE TABLE p(id TEXT PRIMARY KEY);"
                         "CREATE TABLE c(id TEXT PRIMARY KEY, "
                         "p TEXT REFERENCES p(id));",
                         NULL, 0, NULL, NULL),
             DIMPLE_OK);
    CHECK_RC(dimple_exec(db, "INSERT INTO c VALUES('x', 'nope')", NULL, 0, NULL,
                         NULL),
             DIMPLE_ESQL);
    CHECK_CONTAINS(dimple_errmsg(db), "FOREIGN KEY constraint failed");
    dimple_close(db);
}

/* With the default tables = *, a table that cannot be tracked (a rowid
 * INTEGER PRIMARY KEY) is refused by plain SQL too, and not left created. */
TEST(exec_untrackable_table_refused)
{
    dimple *db = open_fresh("u.db");
    CHECK_RC(dimple_exec(db,
                         "CREATE TABLE ok(id TEXT PRIMARY KEY, a);"
                         " CREATE TABLE t(id INTEGER PRIMARY KEY, a)",
                         NULL, 0, NULL, NULL),
             DIMPLE_ESCHEMA);
    CHECK_CONTAINS(dimple_errmsg(db), "t");
    CHECK_STR(scalar(db, "SELECT count(*) FROM sqlite_schema WHERE name = 't'"),
              "0");
    /* the statement before it stands, and is tracked at once */
    CHECK_RC(
        dimple_exec(db, "INSERT INTO ok VALUES ('k', 1)", NULL, 0, NULL, NULL),
        DIMPLE_OK);
    CHECK_STR(scalar(db, "SELECT count(*) FROM _dimple_log"), "1");
    dimple_close(db);
}

TEST(exec_and_params)
{
    dimple *db = NULL;
    dimple_options untracked = {.size = sizeof untracked, .tables = ""};
    dimple_value p[3];
    unlink(tmp_path("b.db"));
    CHECK_RC(dimple_open_path(&db, tmp_path("b.db"), &untracked), DIMPLE_OK);
    CHECK_RC(dimple_exec(db,
                         "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b);"
                         " INSERT INTO t(a) VALUES (1); -- comment\n"
                         "INSERT INTO t(a) VALUES (2);",
                         NULL, 0, NULL, NULL),
             DIMPLE_OK);
    CHECK_STR(scalar(db, "SELECT count(*) FROM t"), "2");
    p[0] = dimple_value_text("x");
    p[1] = dimple_value_int(7);
    CHECK_RC(dimple_exec(db, "INSERT INTO t(a, b) VALUES (?1, ?2);  -- end", p,
                         2, NULL, NULL),
             DIMPLE_OK);
    CHECK_STR(scalar(db, "SELECT b FROM t WHERE a = 'x'"), "7");
    /* params with several statements: refused before anything runs */
    CHECK_RC(dimple_exec(db, "INSERT INTO t(a) VALUES (?1); DELETE FROM t", p,
                         1, NULL, NULL),
             DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "exactly one statement");
    CHECK_STR(scalar(db, "SELECT count(*) FROM t"), "3");
    /* wrong number of params */
    CHECK_RC(dimple_exec(db, "SELECT ?1, ?2", p, 1, NULL, NULL), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "the statement has 2 parameters, 1 "
                                      "given");
    CHECK_RC(dimple_exec(db, "SELECT ?", NULL, 0, NULL, NULL), DIMPLE_EINVAL);
    /* an SQL error quotes SQLite and the statement */
    CHECK_RC(dimple_exec(db, "SELEC 1", NULL, 0, NULL, NULL), DIMPLE_ESQL);
    CHECK_CONTAINS(dimple_errmsg(db), "near \"SELEC\": syntax error");
    CHECK_CONTAINS(dimple_errmsg(db), "SQL \"SELEC 1\"");
    CHECK_RC(dimple_exec(db, "SELECT * FROM nosuch", NULL, 0, NULL, NULL),
             DIMPLE_ESQL);
    CHECK_CONTAINS(dimple_errmsg(db), "no such table: nosuch");
    /* success resets the message */
    CHECK_RC(dimple_exec(db, "  ;; -- nothing\n", NULL, 0, NULL, NULL),
             DIMPLE_OK);
    CHECK_STR(dimple_errmsg(db), "ok");
    dimple_close(db);
}

static int stop_at_two(void *payload, size_t n, const char *const *names,
                       const dimple_value *v)
{
    int *count = payload;
    (void)n, (void)names, (void)v;
    return ++*count == 2 ? 42 : 0;
}

TEST(callback_stops)
{
    dimple *db = open_fresh("c.db");
    int count = 0;
    CHECK_RC(dimple_exec(db,
                         "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         "SELECT x + 1 FROM c WHERE x < 10) "
                         "SELECT x FROM c",
                         NULL, 0, stop_at_two, &count),
             42);
    CHECK(count == 2);
    dimple_close(db);
}

TEST(migrations_from_list)
{
    dimple *db = open_fresh("m.db");
    int v = -1;
    const char *m[] = {
        "CREATE TABLE a(id TEXT PRIMARY KEY);",
        "CREATE TABLE b(id TEXT PRIMARY KEY); INSERT INTO a VALUES('1');",
        "CREATE TABLE c(id TEXT PRIMARY KEY); INSERT INTO nosuch VALUES(1);",
    };
    CHECK_RC(dimple_migrate(db, m, 2), DIMPLE_OK);
    CHECK_RC(dimple_schema_version(&v, db), DIMPLE_OK);
    CHECK(v == 2);
    CHECK_STR(scalar(db, "SELECT count(*) FROM a"), "1");
    /* again: nothing to do, nothing re-run */
    CHECK_RC(dimple_migrate(db, m, 2), DIMPLE_OK);
    CHECK_STR(scalar(db, "SELECT count(*) FROM a"), "1");
    /* the third fails: rolled back, named by index, SQLite's message */
    CHECK_RC(dimple_migrate(db, m, 3), DIMPLE_ESQL);
    CHECK_CONTAINS(dimple_errmsg(db), "migration 3 (index 2) failed, rolled "
                                      "back: no such table: nosuch");
    CHECK_RC(dimple_schema_version(&v, db), DIMPLE_OK);
    CHECK(v == 2);
    CHECK_STR(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = "
                         "'c'"),
              "0");
    /* a database newer than the migrations given */
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_ESCHEMA);
    CHECK_CONTAINS(dimple_errmsg(db), "schema version 2, newer than the 1 "
                                      "migration given");
    dimple_close(db);
}

static void mkdir_tmp(const char *name)
{
    mkdir(tmp_path(name), 0777);
}

TEST(migrations_from_folder)
{
    dimple *db = open_fresh("d.db");
    int v = -1;
    char want[700];
    mkdir_tmp("mig");
    write_tmp("mig/001_create.sql", "CREATE TABLE todo(id TEXT PRIMARY KEY,"
                                    " title TEXT);\n");
    write_tmp("mig/002_seed.sql", "INSERT INTO todo VALUES ('a', 'A');\n"
                                  "INSERT INTO todo VALUES ('b', 'B');\n");
    write_tmp("mig/README.md", "not a migration\n");
    CHECK_RC(dimple_migrate_dir(db, tmp_path("mig")), DIMPLE_OK);
    CHECK_RC(dimple_schema_version(&v, db), DIMPLE_OK);
    CHECK(v == 2);
    CHECK_STR(scalar(db, "SELECT count(*) FROM todo"), "2");

    /* a failing file: rolled back, named, SQLite's message quoted */
    write_tmp("mig/003_bad.sql", "CREATE TABLE tag(id TEXT PRIMARY KEY);\n"
                                 "INSERT INTO todo VALUES ('a', 'dup');\n");
    CHECK_RC(dimple_migrate_dir(db, tmp_path("mig")), DIMPLE_ESQL);
    snprintf(want, sizeof want,
             "migration 3 (%s) failed, rolled back: "
             "UNIQUE constraint failed: todo.id",
             tmp_path("mig/003_bad.sql"));
    CHECK_CONTAINS(dimple_errmsg(db), want);
    CHECK_STR(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = "
                         "'tag'"),
              "0");
    CHECK_RC(dimple_schema_version(&v, db), DIMPLE_OK);
    CHECK(v == 2);

    /* a gap */
    unlink(tmp_path("mig/003_bad.sql"));
    write_tmp("mig/004_late.sql", "SELECT 1;\n");
    CHECK_RC(dimple_migrate_dir(db, tmp_path("mig")), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "migration 3 is missing");
    CHECK_CONTAINS(dimple_errmsg(db), "004_late.sql");
    /* a duplicate number */
    write_tmp("mig/003_a.sql", "SELECT 1;\n");
    write_tmp("mig/003_b.sql", "SELECT 1;\n");
    CHECK_RC(dimple_migrate_dir(db, tmp_path("mig")), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "two migrations numbered 3");
    unlink(tmp_path("mig/003_b.sql"));
    /* a badly named file */
    write_tmp("mig/x_extra.sql", "SELECT 1;\n");
    CHECK_RC(dimple_migrate_dir(db, tmp_path("mig")), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "x_extra.sql: not named NNN_name.sql");
    unlink(tmp_path("mig/x_extra.sql"));
    CHECK_RC(dimple_migrate_dir(db, tmp_path("mig")), DIMPLE_OK);
    CHECK_RC(dimple_schema_version(&v, db), DIMPLE_OK);
    CHECK(v == 4);
    /* a missing folder */
    CHECK_RC(dimple_migrate_dir(db, tmp_path("nosuch")), DIMPLE_EIO);
    CHECK_CONTAINS(dimple_errmsg(db), "cannot read migrations folder");
    dimple_close(db);
}

TEST(locked_database)
{
    dimple *db = NULL;
    sqlite3 *other = NULL;
    /* untracked: the raw connection below runs no dimple code */
    dimple_options o = {.size = sizeof o, .tables = "", .busy_timeout_ms = 100};
    const char *path = tmp_path("lock.db");
    unlink(path);
    CHECK_RC(dimple_open_path(&db, path, &o), DIMPLE_OK);
    CHECK_RC(dimple_exec(db, "CREATE TABLE t(x)", NULL, 0, NULL, NULL),
             DIMPLE_OK);
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE; INSERT INTO t VALUES(1)", NULL,
                       NULL, NULL) == SQLITE_OK);
    CHECK_RC(dimple_exec(db, "INSERT INTO t VALUES(2)", NULL, 0, NULL, NULL),
             DIMPLE_EBUSY);
    CHECK_CONTAINS(dimple_errmsg(db), "database is locked");
    CHECK_CONTAINS(dimple_errmsg(db), path);
    CHECK_CONTAINS(dimple_errmsg(db), "waited 100 ms");
    /* a migration waits, fails, and applies nothing */
    {
        const char *m[] = {"CREATE TABLE u(x)"};
        int v = -1;
        CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_EBUSY);
        sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
        CHECK_RC(dimple_schema_version(&v, db), DIMPLE_OK);
        CHECK(v == 0);
    }
    sqlite3_close(other);
    CHECK_RC(dimple_exec(db, "INSERT INTO t VALUES(3)", NULL, 0, NULL, NULL),
             DIMPLE_OK);
    dimple_close(db);
}

TEST(unreadable_database)
{
    dimple *db = NULL;
    const char *junk = write_tmp("junk.db", "this is not an SQLite file, "
                                            "just text, long enough to "
                                            "have a header of 100 bytes "
                                            "................................"
                                            "..............\n");
    CHECK_RC(dimple_open_path(&db, junk, NULL), DIMPLE_ECORRUPT);
    CHECK_CONTAINS(dimple_errmsg(db), junk);
    CHECK_CONTAINS(dimple_errmsg(db), "file is not a database");
    dimple_close(db);

    CHECK_RC(dimple_open_path(&db, "/nonexistent/dir/x.db", NULL), DIMPLE_EIO);
    CHECK_CONTAINS(dimple_errmsg(db), "cannot open database "
                                      "/nonexistent/dir/x.db");
    dimple_close(db);

    if (geteuid() != 0) { /* root reads any file */
        const char *p = tmp_path("noperm.db");
        dimple *ok = open_fresh("noperm.db");
        dimple_close(ok);
        chmod(p, 0);
        CHECK(dimple_open_path(&db, p, NULL) < 0);
        CHECK_CONTAINS(dimple_errmsg(db), p);
        dimple_close(db);
        chmod(p, 0644);
    }

    /* a conf naming an unreadable database */
    {
        const char *conf = write_tmp("u.conf", "[dimple]\ndatabase = "
                                               "junk.db\n");
        CHECK_RC(dimple_open(&db, conf), DIMPLE_ECORRUPT);
        CHECK_CONTAINS(dimple_errmsg(db), "junk.db");
        dimple_close(db);
    }
}

TEST(read_only)
{
    dimple *db = open_fresh("ro.db");
    dimple_options o = {.size = sizeof o, .read_only = 1};
    CHECK_RC(dimple_exec(db, "CREATE TABLE t(x TEXT PRIMARY KEY)", NULL, 0,
                         NULL, NULL),
             DIMPLE_OK);
    dimple_close(db);
    CHECK_RC(dimple_open_path(&db, tmp_path("ro.db"), &o), DIMPLE_OK);
    CHECK_STR(scalar(db, "SELECT count(*) FROM t"), "0");
    CHECK(dimple_exec(db, "INSERT INTO t VALUES(1)", NULL, 0, NULL, NULL) < 0);
    CHECK_CONTAINS(dimple_errmsg(db), "readonly");
    dimple_close(db);
}

TEST(config_check_handle_has_no_database)
{
    dimple *db = NULL;
    const char *conf = write_tmp("cc.conf", "[dimple]\ndatabase = never.db\n");
    CHECK_RC(dimple_config_check(&db, conf), DIMPLE_OK);
    CHECK(access(tmp_path("never.db"), F_OK) != 0);
    CHECK_RC(dimple_exec(db, "SELECT 1", NULL, 0, NULL, NULL), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "no database open");
    dimple_close(db);
}

int main(void)
{
    RUN(open_sets_pragmas);
    RUN(cache_size_option);
    RUN(foreign_keys_enforced);
    RUN(exec_untrackable_table_refused);
    RUN(exec_and_params);
    RUN(callback_stops);
    RUN(migrations_from_list);
    RUN(migrations_from_folder);
    RUN(locked_database);
    RUN(unreadable_database);
    RUN(read_only);
    RUN(options_structs_versioned);
    RUN(config_check_handle_has_no_database);
    tmp_cleanup();
    return test_done();
}
