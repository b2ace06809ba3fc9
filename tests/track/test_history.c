/* test_history.c — the history API: listing, filters, JSON, as-of, time,
 * authors. */
#include "util.h"

#include "clock.h"

#include <sys/wait.h>

typedef struct collect {
    tu_str lines;
    int n;
} collect;

static int collect_json(void *payload, const dimple_history_entry *e)
{
    collect *c = payload;
    char *j = NULL;
    CHECK_RC(dimple_history_json(&j, e), DIMPLE_OK);
    tu_str *s = &c->lines;
    size_t len = strlen(j);
    if (s->n + len + 2 > s->cap) {
        s->cap = (s->cap + len + 2) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->n, j, len);
    s->n += len;
    s->p[s->n++] = '\n';
    s->p[s->n] = 0;
    dimple_free(j);
    c->n++;
    return 0;
}

static collect list(dimple *db, const dimple_history_query *q)
{
    collect c = {{0}, 0};
    tu_add(&c.lines, "");
    int rc = dimple_history_list(db, collect_json, &c, q);
    if (rc != DIMPLE_OK)
        printf("# history: %s\n", dimple_errmsg(db));
    return c;
}

TEST(time_parse_format)
{
    int64_t ms;
    CHECK_RC(dimple_time_parse(&ms, "1970-01-01"), DIMPLE_OK);
    CHECK(ms == 0);
    CHECK_RC(dimple_time_parse(&ms, "2026-11-26T13:05:00Z"), DIMPLE_OK);
    CHECK(ms == 1795698300000LL);
    CHECK_RC(dimple_time_parse(&ms, "2026-11-26 14:05:00.250+01:00"),
             DIMPLE_OK);
    CHECK(ms == 1795698300250LL);
    CHECK_RC(dimple_time_parse(&ms, "2026-11-26T13:05"), DIMPLE_OK);
    CHECK(ms == 1795698300000LL);
    char out[32];
    dimple_time_format(out, 1795698300250LL);
    CHECK_STR(out, "2026-11-26T13:05:00.250Z");
    CHECK_RC(dimple_time_parse(&ms, "yesterday"), DIMPLE_EINVAL);
    CHECK_RC(dimple_time_parse(&ms, "2026-13-01"), DIMPLE_EINVAL);
    CHECK_RC(dimple_time_parse(&ms, "2026-11-26T25:00"), DIMPLE_EINVAL);
    CHECK_RC(dimple_time_parse(&ms, "2026-11-26T13:05:00Zjunk"), DIMPLE_EINVAL);
    /* a change id stands for its time */
    CHECK_RC(dimple_time_parse(&ms, "01a2182c-9b24-7000-bca5-2ed233630402"),
             DIMPLE_OK);
    CHECK(ms == 0x01a2182c9b24LL);
}

TEST(listing_and_filters)
{
    dimple *db = tu_open("hist.db", "*");
    if (!CHECK(db != NULL))
        return;
    const char *m[] = {"CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT,"
                       " n INTEGER, r REAL, b BLOB);"
                       "CREATE TABLE pair(a TEXT, b INTEGER, v,"
                       " PRIMARY KEY(a, b))"};
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_OK);
    CHECK_RC(tu_exec(db, "INSERT INTO todo VALUES ('a', 'milk',"
                         " 9007199254740993, 1.0, x'00ff')"),
             DIMPLE_OK);
    CHECK_RC(tu_exec(db, "UPDATE todo SET n = 2 WHERE id = 'a'"), DIMPLE_OK);
    CHECK_RC(tu_exec(db, "INSERT INTO pair VALUES ('x', 7, 'seven')"),
             DIMPLE_OK);
    usleep(2000);
    int64_t t_mid = dimple_clock__now_ms();
    usleep(2000);
    CHECK_RC(tu_exec(db, "DELETE FROM todo"), DIMPLE_OK);
    collect c = list(db, NULL);
    CHECK(c.n == 4);
    const char *au = dimple_author_id(db);
    CHECK(au != NULL && strlen(au) == 36);
    char want[512];
    snprintf(want, sizeof want,
             "\"author\":\"%s\",\"table\":\"todo\","
             "\"key\":\"a\",\"op\":\"insert\",\"columns\":{\"title\":"
             "\"milk\",\"n\":\"9007199254740993\",\"r\":1.0,\"b\":"
             "{\"$blob\":\"AP8=\"}}}\n",
             au);
    CHECK_CONTAINS(c.lines.p, want);
    CHECK_CONTAINS(c.lines.p, "\"op\":\"update\",\"columns\":{\"n\":2}}");
    CHECK_CONTAINS(c.lines.p, "\"key\":[\"x\",7]");
    CHECK_CONTAINS(c.lines.p, "\"op\":\"delete\",\"columns\":{}}");
    /* in id order: insert before update before delete */
    const char *i1 = strstr(c.lines.p, "\"insert\""),
               *u1 = strstr(c.lines.p, "\"update\""),
               *d1 = strstr(c.lines.p, "\"delete\"");
    CHECK(i1 && u1 && d1 && i1 < u1 && u1 < d1);
    free(c.lines.p);

    dimple_history_query q = DIMPLE_HISTORY_QUERY_INIT;
    q.table = "PAIR"; /* case-insensitive like SQL */
    c = list(db, &q);
    CHECK(c.n == 1);
    free(c.lines.p);
    dimple_value k[2] = {dimple_value_text("x"), dimple_value_int(7)};
    q.key = k;
    q.n_key = 2;
    c = list(db, &q);
    CHECK(c.n == 1);
    free(c.lines.p);
    k[1] = dimple_value_text("7"); /* keys match exactly, type included */
    c = list(db, &q);
    CHECK(c.n == 0);
    free(c.lines.p);
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.since_ms = t_mid;
    c = list(db, &q);
    CHECK(c.n == 1);
    CHECK_CONTAINS(c.lines.p, "\"delete\"");
    free(c.lines.p);
    q.since_ms = 0;
    q.until_ms = t_mid;
    c = list(db, &q);
    CHECK(c.n == 3);
    free(c.lines.p);
    q.until_ms = 0;
    q.author = au;
    c = list(db, &q);
    CHECK(c.n == 4);
    free(c.lines.p);
    q.author = "01a2182c-9b24-7000-bca5-2ed233630402";
    c = list(db, &q);
    CHECK(c.n == 0);
    free(c.lines.p);
    q.author = "not-a-uuid";
    CHECK_RC(dimple_history_list(db, collect_json, &c, &q), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "not-a-uuid");
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.table = "nosuch";
    c = list(db, &q);
    CHECK(c.n == 0);
    free(c.lines.p);
    dimple_close(db);
}

static int dump_rows(void *payload, size_t n, const char *const *names,
                     const dimple_value *values)
{
    return tu_dump_row(payload, n, names, values);
}

TEST(as_of)
{
    dimple *db = tu_open("asof.db", "*");
    if (!CHECK(db != NULL))
        return;
    const char *m[] = {"CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT,"
                       " n INTEGER)"};
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_OK);
    CHECK_RC(tu_exec(db, "INSERT INTO todo VALUES ('a', 'one', 1);"
                         "INSERT INTO todo VALUES ('b', 'bee', 1)"),
             DIMPLE_OK);
    usleep(3000);
    int64_t t1 = dimple_clock__now_ms();
    usleep(3000);
    CHECK_RC(tu_exec(db, "UPDATE todo SET title = 'two' WHERE id = 'a';"
                         "DELETE FROM todo WHERE id = 'b'"),
             DIMPLE_OK);
    usleep(3000);
    int64_t t2 = dimple_clock__now_ms();
    tu_str s = {0};
    tu_add(&s, "");
    CHECK_RC(dimple_history_as_of(db, "todo", NULL, 0, t1, dump_rows, &s),
             DIMPLE_OK);
    CHECK_STR(s.p, "id=t1:61 title=t3:6f6e65 n=i1\n"
                   "id=t1:62 title=t3:626565 n=i1\n");
    free(s.p);
    s = (tu_str){0};
    tu_add(&s, "");
    CHECK_RC(dimple_history_as_of(db, "todo", NULL, 0, t2, dump_rows, &s),
             DIMPLE_OK);
    CHECK_STR(s.p, "id=t1:61 title=t3:74776f n=i1\n");
    free(s.p);
    s = (tu_str){0};
    tu_add(&s, "");
    dimple_value k = dimple_value_text("b");
    CHECK_RC(dimple_history_as_of(db, "todo", &k, 1, t1, dump_rows, &s),
             DIMPLE_OK);
    CHECK_STR(s.p, "id=t1:62 title=t3:626565 n=i1\n");
    free(s.p);
    s = (tu_str){0};
    tu_add(&s, "");
    CHECK_RC(dimple_history_as_of(db, "todo", NULL, 0, 1000, dump_rows, &s),
             DIMPLE_OK);
    CHECK_STR(s.p, ""); /* before anything existed */
    free(s.p);
    CHECK_RC(dimple_history_as_of(db, "nosuch", NULL, 0, t2, dump_rows, &s),
             DIMPLE_ENOTFOUND);
    CHECK_CONTAINS(dimple_errmsg(db), "nosuch");
    dimple_close(db);
}

TEST(cli_history_and_author)
{
    const char *cli = getenv("DIMPLE_CLI");
    if (!CHECK(cli != NULL))
        return;
    char conf[512], cmd[8192];
    snprintf(conf, sizeof conf, "%s", tu_path("cli.conf"));
    FILE *f = fopen(conf, "w");
    if (!CHECK(f != NULL))
        return;
    fprintf(f, "[dimple]\ndatabase = %s\ntables = *\n", tu_path("cli.db"));
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' -c '%s' sql 'CREATE TABLE t(id TEXT PRIMARY"
             " KEY, v)' && '%s' -c '%s' sql \"INSERT INTO t VALUES ('k', 1.0)\""
             " && '%s' -c '%s' sql \"UPDATE t SET v = 'x'\" && '%s' -c '%s'"
             " history t k > hist.out && '%s' -c '%s' history t"
             " --as-of 2000-01-01 > asof.out && '%s' -c '%s' info > info.out"
             " && '%s' -c '%s' author > author.out",
             tu_dir, cli, conf, cli, conf, cli, conf, cli, conf, cli, conf, cli,
             conf, cli, conf);
    CHECK(system(cmd) == 0);
    char buf[4096];
    f = fopen(tu_path("hist.out"), "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    CHECK_CONTAINS(buf, "\"table\":\"t\",\"key\":\"k\",\"op\":\"insert\","
                        "\"columns\":{\"v\":1.0}}\n");
    CHECK_CONTAINS(buf, "\"op\":\"update\",\"columns\":{\"v\":\"x\"}}\n");
    CHECK_CONTAINS(buf, "\"time\":\"20");
    f = fopen(tu_path("asof.out"), "r");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    CHECK_STR(buf, "");
    f = fopen(tu_path("author.out"), "r");
    char author[64] = "";
    n = f ? fread(author, 1, sizeof author - 1, f) : 0;
    author[n] = 0;
    if (f)
        fclose(f);
    CHECK(n == 37);
    f = fopen(tu_path("info.out"), "r");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    author[36] = 0;
    CHECK_CONTAINS(buf, author);
    CHECK_CONTAINS(buf, "author: ");
    /* bad usage: exit 2 with one line */
    snprintf(cmd, sizeof cmd,
             "'%s' -c '%s' history --since never"
             " 2>/dev/null",
             cli, conf);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    snprintf(cmd, sizeof cmd,
             "'%s' -c '%s' history t --as-of 2000-01-01"
             " --author x 2>/dev/null",
             cli, conf);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

int main(void)
{
    tu_init();
    RUN(time_parse_format);
    RUN(listing_and_filters);
    RUN(as_of);
    RUN(cli_history_and_author);
    tu_cleanup();
    return test_done();
}
