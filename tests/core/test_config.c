/*
 * test_config.c — dimple.conf parsing: a good file, ${VAR}, and every error
 * with its file:line (config.c).
 */
#include "../test.h"
#include "batch.h"
#include "clock.h"
#include "config.h"
#include "util.h"

#include <dimple/sync.h>

static dimple *db; /* receives error messages */

/* Load text as a conf file; returns the rc and keeps the config in *out. */
static int load(const char *text, dimple_config **out)
{
    const char *path = write_tmp("t.conf", "%s", text);
    return dimple_config__load(db, path, out);
}

static int load_err(const char *text)
{
    dimple_config *cfg = NULL;
    int rc = load(text, &cfg);
    dimple_config__free(cfg);
    return rc;
}

TEST(good_file)
{
    dimple_config *cfg = NULL;
    const dimple_kv *kv;
    setenv("DIMPLE_TEST_SECRET", "s3cr3t", 1);
    CHECK_RC(load("; comment\n"
                  "# another comment\n"
                  "[dimple]\n"
                  "database   = todo.db      ; inline comment\n"
                  "tables     = Todo, Tag\n"
                  "busy_timeout_ms = 250\n"
                  "max_clock_skew = 60000\n"
                  "[sync]\n"
                  "batch_max_changes = 100\n"
                  "[storage]\n"
                  "plugin = file\n"
                  "path   = /tmp/x\n"
                  "fsync  = off\n"
                  "[cipher]\n"
                  "plugin     = age\n"
                  "passphrase = ${DIMPLE_TEST_SECRET}-and-$literal\n"
                  "[notifier.log]\n"
                  "plugin = jsonl\n"
                  "path = -\n"
                  "[notifier.hook-2]\n"
                  "plugin = webhook\n",
                  &cfg),
             DIMPLE_OK);
    CHECK(cfg != NULL);
    CHECK_STR(dimple_config__get(cfg, "dimple", "database"), "todo.db");
    CHECK_STR(dimple_config__get(cfg, "dimple", "tables"), "Todo, Tag");
    CHECK(dimple_config__line(cfg, "dimple", "database") == 4);
    CHECK_STR(dimple_config__get(cfg, "storage", "plugin"), "file");
    CHECK(dimple_config__line(cfg, "storage", "plugin") == 11);
    kv = dimple_config__section(cfg, "storage");
    /* plugin is not passed to create(); the rest in file order */
    CHECK(kv && kv[0].key && strcmp(kv[0].key, "path") == 0);
    CHECK(kv && kv[0].line == 12);
    CHECK(kv && kv[1].key && strcmp(kv[1].key, "fsync") == 0);
    CHECK(kv && kv[2].key == NULL);
    CHECK_STR(dimple_config__get(cfg, "cipher", "passphrase"),
              "s3cr3t-and-$literal");
    CHECK_STR(dimple_config__get(cfg, "notifier.log", "path"), "-");
    CHECK_STR(dimple_config__section_name(cfg, 0), "dimple");
    CHECK_STR(dimple_config__section_name(cfg, 5), "notifier.hook-2");
    CHECK(dimple_config__section_name(cfg, 6) == NULL);
    CHECK(dimple_config__section(cfg, "resolver") == NULL);
    CHECK(dimple_config__get(cfg, "dimple", "plugin_dir") == NULL);
    {
        char *r = dimple_config__resolve(cfg, "a/b.db");
        char want[600];
        snprintf(want, sizeof want, "%s/a/b.db", tmp_dir());
        CHECK_STR(r, want);
        free(r);
        r = dimple_config__resolve(cfg, "/abs.db");
        CHECK_STR(r, "/abs.db");
        free(r);
    }
    dimple_config__free(cfg);
}

/* The error rc is ECONFIG and the message starts with path:line. */
static void expect_err(const char *text, int line, const char *needle)
{
    char want[600];
    CHECK_RC(load_err(text), DIMPLE_ECONFIG);
    snprintf(want, sizeof want, "%s:%d: ", tmp_path("t.conf"), line);
    CHECK_CONTAINS(dimple_errmsg(db), want);
    CHECK_CONTAINS(dimple_errmsg(db), needle);
}

TEST(errors_name_file_and_line)
{
    expect_err("[dimple]\ndatabase = a\n[nosuch]\nx = 1\n", 3,
               "unknown section [nosuch]");
    expect_err("[dimple]\ndatabase = a\nfrobnicate = 1\n", 3,
               "unknown key 'frobnicate' in [dimple]");
    expect_err("[sync]\nbatch_max_changes = 5\nspeed = 9\n", 3,
               "unknown key 'speed' in [sync]");
    expect_err("[dimple]\ndatabase = a\n\ndatabase = b\n", 4,
               "duplicate key 'database' in [dimple] (first at line 2)");
    expect_err("[storage]\nplugin = a\nplugin = b\n", 3,
               "duplicate key 'plugin'");
    expect_err("[dimple]\ndatabase = a\n[dimple]\n", 3,
               "duplicate section [dimple]");
    expect_err("database = a\n", 1, "key 'database' outside a section");
    expect_err("[dimple]\ndatabase = a\nthis line has no equals sign\n", 3,
               "syntax error");
    expect_err("[dimple]\ndatabase = a\n[storage\nplugin = x\n", 3,
               "syntax error");
    expect_err("[dimple]\n\n[storage]\npath = /x\n", 3,
               "[storage] needs plugin = NAME");
    expect_err("[cipher]\nplugin =\n", 2, "empty plugin name in [cipher]");
    expect_err("[notifier.]\nplugin = x\n", 1, "unknown section [notifier.]");
    expect_err("[notifier.a/b]\nplugin = x\n", 1, "unknown section");
    {
        char longline[400];
        char text[500];
        memset(longline, 'x', sizeof longline - 1);
        longline[sizeof longline - 1] = '\0';
        snprintf(text, sizeof text, "[storage]\nplugin = %s\n", longline);
        expect_err(text, 2, "line longer than");
    }
}

TEST(env_vars)
{
    unsetenv("DIMPLE_TEST_UNSET");
    setenv("DIMPLE_TEST_SET", "v", 1);
    expect_err("[storage]\nplugin = file\npath = /a/${DIMPLE_TEST_UNSET}/b\n",
               3,
               "environment variable 'DIMPLE_TEST_UNSET' is not set (key "
               "'path' in [storage])");
    expect_err("[storage]\nplugin = file\npath = ${DIMPLE_TEST_SET\n", 3,
               "unterminated ${");
    expect_err("[storage]\nplugin = file\npath = ${}\n", 3,
               "bad variable name");
    expect_err("[storage]\nplugin = file\npath = ${A-B}\n", 3,
               "bad variable name");
    {
        dimple_config *cfg = NULL;
        setenv("DIMPLE_TEST_EMPTY", "", 1);
        CHECK_RC(load("[storage]\nplugin = ${DIMPLE_TEST_SET}x\n"
                      "path = a${DIMPLE_TEST_EMPTY}b${DIMPLE_TEST_SET}\n",
                      &cfg),
                 DIMPLE_OK);
        CHECK_STR(dimple_config__get(cfg, "storage", "plugin"), "vx");
        CHECK_STR(dimple_config__get(cfg, "storage", "path"), "abv");
        dimple_config__free(cfg);
    }
}

TEST(secrets_stay_out_of_messages)
{
    setenv("DIMPLE_TEST_PASS", "hunter2", 1);
    CHECK_RC(load_err("[dimple]\ndatabase = a\npassword = hunter2\n"),
             DIMPLE_ECONFIG);
    CHECK(strstr(dimple_errmsg(db), "hunter2") == NULL);
    CHECK_RC(load_err("[dimple]\ndatabase = a\npassword = hunter2\n"
                      "password = hunter3\n"),
             DIMPLE_ECONFIG);
    CHECK(strstr(dimple_errmsg(db), "hunter") == NULL);
    CHECK_RC(load_err("[dimple]\nbusy_timeout_ms = ${DIMPLE_TEST_PASS}\n"
                      "[nosuch]\n"),
             DIMPLE_ECONFIG);
    CHECK(strstr(dimple_errmsg(db), "hunter2") == NULL);
}

TEST(missing_file)
{
    dimple_config *cfg = (dimple_config *)1;
    CHECK_RC(dimple_config__load(db, "/nonexistent/dimple.conf", &cfg),
             DIMPLE_ECONFIG);
    CHECK(cfg == NULL);
    CHECK_CONTAINS(dimple_errmsg(db), "cannot read /nonexistent/dimple.conf");
}

/* Integer keys are validated when a handle opens, with file:line. */
TEST(open_validates_core_keys)
{
    dimple *h = NULL;
    char want[600];
    const char *p = write_tmp("i.conf", "[dimple]\ndatabase = i.db\n"
                                        "busy_timeout_ms = soon\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_ECONFIG);
    snprintf(want, sizeof want,
             "%s:3: [dimple] busy_timeout_ms must be an "
             "integer in 0..3600000",
             p);
    CHECK_STR(dimple_errmsg(h), want);
    CHECK(strstr(dimple_errmsg(h), "soon") == NULL);
    dimple_close(h);

    p = write_tmp("i.conf", "[dimple]\ndatabase = i.db\n[sync]\n"
                            "batch_max_bytes = -5\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(h), ":4: [sync] batch_max_bytes");
    dimple_close(h);

    p = write_tmp("i.conf", "[dimple]\ndatabase = i.db\n"
                            "max_clock_skew = 1.5\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(h), ":3: [dimple] max_clock_skew");
    dimple_close(h);

    p = write_tmp("i.conf", "[dimple]\ndatabase = i.db\n"
                            "cache_size_kib = -1\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(h), ":3: [dimple] cache_size_kib must be an"
                                     " integer in 0..16777216");
    dimple_close(h);

    /* a valid one reaches the connection */
    p = write_tmp("i.conf", "[dimple]\ndatabase = i.db\n"
                            "cache_size_kib = 65536\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_OK);
    {
        sqlite3_stmt *st = NULL;
        CHECK(sqlite3_prepare_v2(dimple_sqlite(h), "PRAGMA cache_size", -1, &st,
                                 NULL) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW &&
              sqlite3_column_int(st, 0) == -65536);
        sqlite3_finalize(st);
    }
    dimple_close(h);

    p = write_tmp("i.conf", "[dimple]\ntables = *\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(h), "[dimple] database = FILE is not set");
    dimple_close(h);

    /* Empty optional keys mean "not set". */
    p = write_tmp("i.conf", "[dimple]\ndatabase = e.db\nmigrations =\n"
                            "plugin_dir =\ntables =\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_OK);
    CHECK(dimple_migrations_dir(h) == NULL);
    CHECK_STR(dimple_tables(h), "");
    dimple_close(h);

    /* A relative database resolves against the conf file's folder; so do
     * migrations and plugin_dir. */
    p = write_tmp("i.conf", "[dimple]\ndatabase = sub.db\n"
                            "max_clock_skew = 5000\nmigrations = mig\n");
    CHECK_RC(dimple_open(&h, p), DIMPLE_OK);
    CHECK_STR(dimple_db_path(h), tmp_path("sub.db"));
    CHECK_STR(dimple_migrations_dir(h), tmp_path("mig"));
    CHECK_STR(dimple_tables(h), "*");
    {
        /* the file's value, else the table's default */
        int64_t skew = dimple_config__int(h->conf, DIMPLE_CONF_MAX_CLOCK_SKEW);
        CHECK(skew == 5000);
        skew = dimple_config__int(h->conf, DIMPLE_CONF_BATCH_MAX_CHANGES);
        CHECK(skew == DIMPLE_BATCH_DEFAULT_CHANGES);
    }
    dimple_close(h);
}

/* A bad value of a core key fails `config check` and open alike, with the
 * same file:line message: sync never meets a value it cannot use. */
static void bad_value(const char *sec, const char *key, const char *value,
                      const char *range)
{
    dimple *h = NULL;
    char want[700];
    /* the key on line 5 in either section */
    const char *p =
        strcmp(sec, "dimple") == 0
            ? write_tmp("b.conf",
                        "[sync]\n[dimple]\ndatabase = b.db\n\n%s = %s\n", key,
                        value)
            : write_tmp("b.conf",
                        "[dimple]\ndatabase = b.db\n[%s]\n\n%s = %s\n", sec,
                        key, value);
    snprintf(want, sizeof want, "%s:5: [%s] %s must be an integer in %s", p,
             sec, key, range);
    CHECK_RC(dimple_config_check(&h, p), DIMPLE_ECONFIG);
    CHECK_STR(dimple_errmsg(h), want);
    dimple_close(h);
    CHECK_RC(dimple_open(&h, p), DIMPLE_ECONFIG);
    CHECK_STR(dimple_errmsg(h), want);
    dimple_close(h);
    CHECK(access(tmp_path("b.db"), F_OK) != 0);
}

TEST(bad_values_fail_check_and_open)
{
    bad_value("sync", "batch_max_changes", "0", "1..100000");
    bad_value("sync", "batch_max_changes", "100001", "1..100000");
    bad_value("sync", "batch_max_changes", "many", "1..100000");
    bad_value("sync", "batch_max_bytes", "1023", "1024..67108864");
    bad_value("sync", "batch_max_bytes", "67108865", "1024..67108864");
    bad_value("sync", "batch_max_bytes", "1e6", "1024..67108864");
    bad_value("dimple", "max_clock_skew", "31536000001", "0..31536000000");
    bad_value("dimple", "max_clock_skew", "-1", "0..31536000000");
    bad_value("dimple", "max_clock_skew", "+5", "0..31536000000");
    bad_value("dimple", "max_clock_skew", "99999999999999999999",
              "0..31536000000");
    bad_value("dimple", "busy_timeout_ms", "3600001", "0..3600000");
    bad_value("dimple", "cache_size_kib", "0x10", "0..16777216");
}

/* Both ends of every integer key's range open, and sync runs with them. */
TEST(range_edges_pass)
{
    for (size_t i = 0; i < DIMPLE_CONF_N_KEYS; i++) {
        const dimple_config_key *k = &dimple_config__keys[i];
        int64_t edge[2] = {k->min, k->max};
        if (k->type != DIMPLE_CONF_INT)
            continue;
        for (int e = 0; e < 2; e++) {
            dimple *h = NULL;
            const char *p = write_tmp(
                "e.conf",
                "[storage]\nplugin = memory\n[dimple]\ndatabase = :memory:\n"
                "%s%s = %lld\n",
                strcmp(k->section, "dimple") ? "[sync]\n" : "", k->key,
                (long long)edge[e]);
            if (!CHECK(dimple_config_check(&h, p) == DIMPLE_OK))
                printf("#   %s\n", dimple_errmsg(h));
            dimple_close(h);
            if (!CHECK(dimple_open(&h, p) == DIMPLE_OK)) {
                printf("#   %s\n", dimple_errmsg(h));
                dimple_close(h);
                continue;
            }
            CHECK(dimple_config__int(h->conf, (dimple_config_id)i) == edge[e]);
            CHECK_RC(dimple_exec(h,
                                 "CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT);"
                                 "INSERT INTO t VALUES ('a', 'x'), ('b', 'y')",
                                 NULL, 0, NULL, NULL),
                     DIMPLE_OK);
            if (!CHECK(dimple_sync(NULL, h, NULL) == DIMPLE_OK))
                printf("#   %s = %lld: %s\n", k->key, (long long)edge[e],
                       dimple_errmsg(h));
            dimple_close(h);
        }
    }
}

/* The table is sane: every default parses and lies in its range, and
 * matches the constants the modules use without a configuration. */
TEST(table_defaults)
{
    char why[128];
    for (size_t i = 0; i < DIMPLE_CONF_N_KEYS; i++) {
        const dimple_config_key *k = &dimple_config__keys[i];
        int64_t v = -1;
        CHECK(k->section && k->key && k->doc && *k->doc);
        CHECK(dimple_config__find_key(k->section, k->key) == k);
        if (k->type == DIMPLE_CONF_INT) {
            CHECK(k->def != NULL && k->min <= k->max && k->unit);
            CHECK_RC(dimple_config__parse(k, k->def, &v, why, sizeof why),
                     DIMPLE_OK);
            CHECK(dimple_config__int(NULL, (dimple_config_id)i) == v);
        }
    }
    CHECK(dimple_config__int(NULL, DIMPLE_CONF_BATCH_MAX_BYTES) ==
          (int64_t)DIMPLE_BATCH_DEFAULT_BYTES);
    CHECK(dimple_config__int(NULL, DIMPLE_CONF_BATCH_MAX_CHANGES) ==
          DIMPLE_BATCH_DEFAULT_CHANGES);
    CHECK(dimple_config__int(NULL, DIMPLE_CONF_MAX_CLOCK_SKEW) ==
          DIMPLE_CLOCK_SKEW_DEFAULT_MS);
    CHECK(dimple_config__find_key("notifier.log", "plugin") ==
          &dimple_config__keys[DIMPLE_CONF_NOTIFIER_PLUGIN]);
    CHECK(dimple_config__find_key("notifier.", "plugin") == NULL);
    CHECK(dimple_config__find_key("storage", "path") == NULL);
}

TEST(one_boolean_parser)
{
    static const char *const yes[] = {"true", "TRUE", "Yes", "on", "ON", "1"};
    static const char *const no[] = {"false", "False", "no", "NO", "off", "0"};
    static const char *const bad[] = {
        "", "2", "onn", "y", "t", "off ", "01", "\x10" /* not "0" */, "\x11"};
    int b;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        CHECK(dimple_conf_parse_bool(yes[i], &b) == 0 && b == 1);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        CHECK(dimple_conf_parse_bool(no[i], &b) == 0 && b == 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(dimple_conf_parse_bool(bad[i], &b) == -1);
    {
        dimple_config_key k = {"dimple", "flag", DIMPLE_CONF_BOOL, "off", 0, 0,
                               0,        NULL,   "a test key"};
        int64_t v = -1;
        char why[128];
        CHECK_RC(dimple_config__parse(&k, "Yes", &v, why, sizeof why),
                 DIMPLE_OK);
        CHECK(v == 1);
        CHECK_RC(dimple_config__parse(&k, "maybe", &v, why, sizeof why),
                 DIMPLE_ECONFIG);
        CHECK_CONTAINS(why, "true/false, yes/no, on/off or 1/0");
    }
}

/* An unknown plugin name points at its `plugin =` line and lists the
 * folders searched, from `config check` and open alike. */
TEST(unknown_plugin_has_file_line)
{
    dimple *h = NULL;
    char want[700];
    const char *p = write_tmp("u.conf",
                              "[dimple]\ndatabase = u.db\n"
                              "plugin_dir = %s\n\n[storage]\n"
                              "; a typo\nplugin = fiel\n",
                              tmp_dir());
    snprintf(want, sizeof want,
             "%s:7: [storage] plugin 'fiel' not found: no dimple-fiel.so "
             "(searched: %s, ",
             p, tmp_dir());
    CHECK_RC(dimple_config_check(&h, p), DIMPLE_ENOTFOUND);
    CHECK_CONTAINS(dimple_errmsg(h), want);
    CHECK_CONTAINS(dimple_errmsg(h), DIMPLE_PLUGIN_INSTALL_DIR);
    dimple_close(h);
    CHECK_RC(dimple_open(&h, p), DIMPLE_ENOTFOUND);
    CHECK_CONTAINS(dimple_errmsg(h), want);
    dimple_close(h);

    p = write_tmp("u.conf", "[dimple]\ndatabase = u.db\n[notifier.x]\n"
                            "plugin = ../jsonl\n");
    CHECK_RC(dimple_config_check(&h, p), DIMPLE_EPLUGIN);
    snprintf(want, sizeof want, "%s:4: [notifier.x]: plugin name", p);
    CHECK_CONTAINS(dimple_errmsg(h), want);
    dimple_close(h);
}

int main(void)
{
    CHECK_RC(dimple_open_path(&db, ":memory:", NULL), DIMPLE_OK);
    RUN(good_file);
    RUN(errors_name_file_and_line);
    RUN(env_vars);
    RUN(secrets_stay_out_of_messages);
    RUN(missing_file);
    RUN(open_validates_core_keys);
    RUN(bad_values_fail_check_and_open);
    RUN(range_edges_pass);
    RUN(table_defaults);
    RUN(one_boolean_parser);
    RUN(unknown_plugin_has_file_line);
    dimple_close(db);
    tmp_cleanup();
    return test_done();
}
