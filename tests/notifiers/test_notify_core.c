/*
 * test_notify_core.c — notifiers fed by the core: a dimple.conf with a
 * jsonl and a webhook notifier; local commits (any API, raw SQL included),
 * rolled-back ones (nothing), and changes applied from another author
 * (origin "remote", as sync applies them). The webhook posts to a real
 * HTTP server on loopback started here.
 */
#include "test.h"

#include "clock.h"
#include "internal.h"
#include "live_hooks.h"
#include "track.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[128], conf_path[256], jsonl_path[256], sink_log[256];
static pid_t sink_pid;
static int sink_out = -1, sink_port;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int start_sink(void)
{
    int p[2];
    char buf[32] = {0}, script[4096];
    const char *src = getenv("DIMPLE_TEST_SRCDIR");
    ssize_t r;
    snprintf(script, sizeof script, "%s/tests/notifiers/http_sink.py",
             src ? src : ".");
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    sink_pid = fork();
    if (sink_pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execlp("python3", "python3", script, sink_log, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    r = read(p[0], buf, sizeof buf - 1);
    sink_out = p[0];
    sink_port = r > 0 ? atoi(buf) : 0;
    return sink_port > 0 ? 0 : -1;
}

static void stop_sink(void)
{
    if (sink_pid > 0) {
        kill(sink_pid, SIGTERM);
        waitpid(sink_pid, NULL, 0);
    }
    if (sink_out >= 0)
        close(sink_out);
}

/* The jsonl file as an array of event objects. */
static cJSON *events(void)
{
    char *text = slurp(jsonl_path), *s = text;
    cJSON *a = cJSON_CreateArray();
    while (s && *s) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        cJSON_AddItemToArray(a, cJSON_Parse(s));
        s = nl ? nl + 1 : s + strlen(s);
    }
    free(text);
    return a;
}

static const char *field(cJSON *a, int i, const char *name)
{
    cJSON *o = cJSON_GetArrayItem(a, i);
    cJSON *f = o ? cJSON_GetObjectItem(o, name) : NULL;
    static char keybuf[256];
    char *k;
    if (!f)
        return "(missing)";
    if (cJSON_IsString(f))
        return f->valuestring;
    k = cJSON_PrintUnformatted(f);
    snprintf(keybuf, sizeof keybuf, "%s", k ? k : "");
    free(k);
    return keybuf;
}

/* lines of the sink log starting with prefix, waiting up to ms */
static int sink_wait(const char *prefix, int want, int ms)
{
    for (int waited = 0;; waited += 20) {
        char *text = slurp(sink_log), *s = text;
        int n = 0;
        while (s && *s) {
            n += strncmp(s, prefix, strlen(prefix)) == 0;
            s = strchr(s, '\n');
            if (s)
                s++;
        }
        free(text);
        if (n >= want || waited >= ms)
            return n;
        usleep(20000);
    }
}

TEST(local_commits_reach_the_notifiers)
{
    dimple *db = NULL;
    cJSON *a;
    const char *mig[] = {"CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT);"
                         "CREATE TABLE pair(a INTEGER, b TEXT, v,"
                         " PRIMARY KEY(a, b));"
                         "CREATE TABLE untracked_scratch(x)"};
    CHECK_RC(dimple_open(&db, conf_path), DIMPLE_OK);
    if (dimple_errcode(db))
        printf("# %s\n", dimple_errmsg(db));
    CHECK_STR(dimple_plugin_in_use(db, "notifier.log"), "jsonl");
    CHECK_STR(dimple_plugin_in_use(db, "notifier.hook"), "webhook");
    CHECK_RC(dimple_migrate(db, mig, 1), DIMPLE_OK);
    /* migrations themselves write no tracked rows */
    a = events();
    CHECK(cJSON_GetArraySize(a) == 0);
    cJSON_Delete(a);

    CHECK_RC(dimple_exec(db,
                         "INSERT INTO todo VALUES('k1', 'milk');"
                         "INSERT INTO pair VALUES(1, 'x', 'v1')",
                         NULL, 0, NULL, NULL),
             DIMPLE_OK);
    a = events();
    CHECK(cJSON_GetArraySize(a) == 2);
    CHECK_STR(field(a, 0, "table"), "todo");
    CHECK_STR(field(a, 0, "key"), "k1");
    CHECK_STR(field(a, 0, "op"), "insert");
    CHECK_STR(field(a, 0, "origin"), "local");
    CHECK(strlen(field(a, 0, "id")) == 36 &&
          strlen(field(a, 0, "author")) == 36);
    CHECK_STR(field(a, 1, "table"), "pair");
    CHECK_STR(field(a, 1, "key"), "[1,\"x\"]");
    cJSON_Delete(a);

    /* rolled back: nothing; raw SQL: seen at the next call */
    CHECK_RC(dimple_exec(db, "BEGIN; DELETE FROM todo; ROLLBACK", NULL, 0, NULL,
                         NULL),
             DIMPLE_OK);
    CHECK(sqlite3_exec(dimple_sqlite(db),
                       "UPDATE todo SET title = 'oat milk' WHERE id = 'k1';"
                       "DELETE FROM pair",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK_RC(dimple_live_dispatch(db), DIMPLE_OK);
    a = events();
    CHECK(cJSON_GetArraySize(a) == 4);
    CHECK_STR(field(a, 2, "op"), "update");
    CHECK_STR(field(a, 2, "key"), "k1");
    CHECK_STR(field(a, 3, "op"), "delete");
    CHECK_STR(field(a, 3, "table"), "pair");
    /* ids ascend */
    CHECK(strcmp(field(a, 0, "id"), field(a, 3, "id")) < 0);
    cJSON_Delete(a);

    /* the webhook got one JSON array per flush */
    CHECK(sink_wait("/core 200", 2, 5000) == 2);

    /* changes of another author, applied as sync applies them */
    {
        uint8_t author[16], id[16];
        dimple_value key = dimple_value_text("r1"),
                     val = dimple_value_text("remote");
        const char *cols[] = {"title"};
        dimple_change c;
        memset(&c, 0, sizeof c);
        dimple_uuid__v7(author);
        author[0] ^= 0x55;
        dimple_uuid__v7(id);
        memcpy(c.id, id, 16);
        memcpy(c.author, author, 16);
        c.table = "todo";
        c.op = DIMPLE_OP_INSERT;
        c.n_key = 1;
        c.key = &key;
        c.n_cols = 1;
        c.col_names = cols;
        c.cols = &val;
        CHECK(sqlite3_exec(dimple_sqlite(db), "BEGIN IMMEDIATE", NULL, NULL,
                           NULL) == SQLITE_OK);
        CHECK_RC(dimple_track__apply(db, &c, 1), DIMPLE_OK);
        CHECK(sqlite3_exec(dimple_sqlite(db), "COMMIT", NULL, NULL, NULL) ==
              SQLITE_OK);
        dimple_live__flush(db); /* what sync does after its commit */
    }
    a = events();
    CHECK(cJSON_GetArraySize(a) == 5);
    CHECK_STR(field(a, 4, "origin"), "remote");
    CHECK_STR(field(a, 4, "key"), "r1");
    CHECK(strcmp(field(a, 4, "author"), field(a, 0, "author")) != 0);
    cJSON_Delete(a);
    CHECK(sink_wait("/core 200", 3, 5000) == 3);
    {
        char *text = slurp(sink_log);
        CHECK_CONTAINS(text, "\"origin\":\"remote\"");
        CHECK_CONTAINS(text, "\"key\":[1,\"x\"]");
        free(text);
    }
    dimple_close(db);
}

int main(void)
{
    FILE *f;
    snprintf(dir, sizeof dir, "/tmp/dimple-notify-core-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    snprintf(conf_path, sizeof conf_path, "%s/dimple.conf", dir);
    snprintf(jsonl_path, sizeof jsonl_path, "%s/events.jsonl", dir);
    snprintf(sink_log, sizeof sink_log, "%s/sink.log", dir);
    CHECK(start_sink() == 0); /* a real HTTP server on loopback, or fail */
    f = fopen(conf_path, "w");
    fprintf(f,
            "[dimple]\ndatabase = %s/db.sqlite\ntables = todo, pair\n"
            "[notifier.log]\nplugin = jsonl\npath = %s\n"
            "[notifier.hook]\nplugin = webhook\nurl = "
            "http://127.0.0.1:%d/core\ntimeout = 2\n",
            dir, jsonl_path, sink_port);
    fclose(f);
    if (sink_port > 0)
        RUN(local_commits_reach_the_notifiers);
    stop_sink();
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", dir);
    }
    return test_done();
}
