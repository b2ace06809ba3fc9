/*
 * test_notifiers.c — the jsonl and webhook notifier plugins, loaded from
 * their .so files the way the core loads them, against a real HTTP server
 * on loopback (tests/notifiers/http_sink.py, started here; the test fails
 * if it cannot start).
 */
#include "test.h"

#include <dimple/plugin.h>

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- host table ---- */

typedef struct th {
    char err[1024];
    int err_code;
    char logs[8192];
} th;

static void host_error(void *ctx, int code, const char *msg)
{
    th *t = ctx;
    t->err_code = code;
    snprintf(t->err, sizeof t->err, "%s", msg);
}

static void host_log(void *ctx, int level, const char *msg)
{
    th *t = ctx;
    size_t n = strlen(t->logs);
    snprintf(t->logs + n, sizeof t->logs - n, "%d %s\n", level, msg);
}

static dimple_host make_host(th *t, const char *section)
{
    dimple_host h = {sizeof h, t, host_error, host_log, "test.conf", section};
    memset(t, 0, sizeof *t);
    return h;
}

/* ---- plugin loading ---- */

static void *handles[8];
static const dimple_notifier_vtable *loaded[8];
static const char *loaded_name[8];
static size_t n_handles;

static const dimple_notifier_vtable *load_file(const char *name);

static const dimple_notifier_vtable *load(const char *name)
{
    for (size_t i = 0; i < n_handles; i++)
        if (strcmp(loaded_name[i], name) == 0)
            return loaded[i];
    return load_file(name);
}

static const dimple_notifier_vtable *load_file(const char *name)
{
    const char *paths = getenv("DIMPLE_PLUGIN_PATH");
    char dir[4096], file[4200];
    const char *p = paths;
    while (p && *p) {
        size_t len = strcspn(p, ":");
        void *h;
        snprintf(dir, sizeof dir, "%.*s", (int)len, p);
        snprintf(file, sizeof file, "%s/dimple-%s.so", dir, name);
        h = access(file, R_OK) == 0 ? dlopen(file, RTLD_NOW | RTLD_LOCAL)
                                    : NULL;
        if (h) {
            dimple_plugin_entry_fn *entry =
                (dimple_plugin_entry_fn *)dlsym(h, "dimple_plugin_entry");
            const dimple_plugin *pl = entry ? entry() : NULL;
            const dimple_notifier_vtable *vt = NULL;
            if (pl && pl->abi == DIMPLE_ABI &&
                pl->kind == DIMPLE_KIND_NOTIFIER && strcmp(pl->name, name) == 0)
                vt = pl->vt.notifier;
            handles[n_handles] = h;
            loaded[n_handles] = vt;
            loaded_name[n_handles++] = name;
            return vt;
        }
        p += len;
        if (*p == ':')
            p++;
    }
    return NULL;
}

/* ---- events ---- */

static const dimple_event evs[] = {
    {"0190f5c2-7a8b-7c3d-8e9f-0123456789ab", "todo", "\"k1\"", "insert",
     "11111111-2222-4333-8444-555555555555", "local"},
    {"0190f5c2-7a8b-7c3d-8e9f-0123456789ac", "we\"ird\ttable", "[1,\"a\"]",
     "delete", "66666666-2222-4333-8444-555555555555", "remote"},
};

static int check_event(const cJSON *o, const dimple_event *e)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(o, "key");
    char *k = key ? cJSON_PrintUnformatted(key) : NULL;
    int ok =
        cJSON_IsObject(o) && cJSON_GetArraySize(o) == 6 &&
        strcmp(cJSON_GetObjectItem(o, "id")->valuestring, e->id) == 0 &&
        strcmp(cJSON_GetObjectItem(o, "table")->valuestring, e->table) == 0 &&
        strcmp(cJSON_GetObjectItem(o, "op")->valuestring, e->op) == 0 &&
        strcmp(cJSON_GetObjectItem(o, "author")->valuestring, e->author) == 0 &&
        strcmp(cJSON_GetObjectItem(o, "origin")->valuestring, e->origin) == 0 &&
        k && strcmp(k, e->key_json) == 0;
    free(k);
    return ok;
}

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

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* line i (0-based) of s, copied */
static char *line_at(const char *s, int i)
{
    const char *end;
    while (s && i-- > 0) {
        s = strchr(s, '\n');
        if (s)
            s++;
    }
    if (!s || !*s)
        return NULL;
    end = strchr(s, '\n');
    return strndup(s, end ? (size_t)(end - s) : strlen(s));
}

/* ---------------------------------------------------------------- jsonl */

TEST(jsonl_config_errors)
{
    const dimple_notifier_vtable *vt = load("jsonl");
    th t;
    dimple_host h = make_host(&t, "notifier.log");
    void *self = NULL;
    dimple_kv none[] = {{NULL, NULL, 0}};
    dimple_kv unknown[] = {
        {"path", "-", 3}, {"colour", "red", 4}, {NULL, NULL, 0}};
    dimple_kv nodir[] = {{"path", "/nonexistent-dir/x.jsonl", 3},
                         {NULL, NULL, 0}};
    CHECK(vt != NULL);
    if (!vt)
        return;
    CHECK_RC(vt->create(&self, none, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "path");
    CHECK_RC(vt->create(&self, unknown, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "test.conf:4: unknown key 'colour'");
    CHECK_RC(vt->create(&self, nodir, &h), DIMPLE_EIO);
    CHECK_CONTAINS(t.err, "/nonexistent-dir/x.jsonl");
}

TEST(jsonl_writes_one_line_per_change)
{
    const dimple_notifier_vtable *vt = load("jsonl");
    th t;
    dimple_host h = make_host(&t, "notifier.log");
    char path[128];
    dimple_kv conf[] = {{"path", path, 3}, {NULL, NULL, 0}};
    void *self = NULL;
    char *text, *l;
    cJSON *o;
    if (!vt)
        return;
    snprintf(path, sizeof path, "/tmp/dimple-jsonl-%d.jsonl", (int)getpid());
    unlink(path);
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs, 2), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs, 1), DIMPLE_OK);
    vt->destroy(self);
    text = slurp(path);
    CHECK(count_lines(text) == 3);
    for (int i = 0; i < 3; i++) {
        l = line_at(text, i);
        o = l ? cJSON_Parse(l) : NULL;
        CHECK(o && check_event(o, &evs[i == 1 ? 1 : 0]));
        cJSON_Delete(o);
        free(l);
    }
    free(text);
    /* a second instance appends */
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs + 1, 1), DIMPLE_OK);
    vt->destroy(self);
    text = slurp(path);
    CHECK(count_lines(text) == 4);
    free(text);
    unlink(path);
}

TEST(jsonl_to_stdout)
{
    const dimple_notifier_vtable *vt = load("jsonl");
    th t;
    dimple_host h = make_host(&t, "notifier.log");
    dimple_kv conf[] = {{"path", "-", 3}, {NULL, NULL, 0}};
    char path[128];
    void *self = NULL;
    int saved, fd, rc1, rc2;
    char *text, *l;
    cJSON *o;
    if (!vt)
        return;
    snprintf(path, sizeof path, "/tmp/dimple-jsonl-out-%d", (int)getpid());
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    /* no CHECK while stdout is the file */
    rc1 = vt->create(&self, conf, &h);
    rc2 = rc1 ? rc1 : vt->notify(self, evs + 1, 1);
    if (!rc1)
        vt->destroy(self);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK_RC(rc1, DIMPLE_OK);
    CHECK_RC(rc2, DIMPLE_OK);
    text = slurp(path);
    CHECK(count_lines(text) == 1);
    if (count_lines(text) != 1)
        printf("# got: %s|\n", text ? text : "(null)");
    l = line_at(text, 0);
    o = l ? cJSON_Parse(l) : NULL;
    CHECK(o && check_event(o, &evs[1]));
    cJSON_Delete(o);
    free(l);
    free(text);
    unlink(path);
}

/* -------------------------------------------------------------- webhook */

static pid_t sink_pid;
static int sink_out = -1; /* kept open: the server must not get EPIPE */
static int sink_port;
static char sink_log[128];

static int start_sink(void)
{
    int p[2];
    char buf[32] = {0};
    const char *src = getenv("DIMPLE_TEST_SRCDIR");
    char script[4096];
    ssize_t r;
    snprintf(script, sizeof script, "%s/tests/notifiers/http_sink.py",
             src ? src : ".");
    snprintf(sink_log, sizeof sink_log, "/tmp/dimple-sink-%d.log",
             (int)getpid());
    unlink(sink_log);
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
    do
        r = read(p[0], buf, sizeof buf - 1);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        printf("# http_sink.py: no port (%s)\n",
               r < 0 ? strerror(errno) : "eof");
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
    unlink(sink_log);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Lines of the sink's log that start with prefix, waiting up to ms for at
 * least want of them. */
static int sink_count(const char *prefix, int want, int ms)
{
    double end = now_ms() + ms;
    int n;
    for (;;) {
        char *text = slurp(sink_log), *s = text;
        n = 0;
        while (s && *s) {
            if (strncmp(s, prefix, strlen(prefix)) == 0)
                n++;
            s = strchr(s, '\n');
            if (s)
                s++;
        }
        free(text);
        if (n >= want || now_ms() > end)
            return n;
        usleep(20000);
    }
}

static void url_for(char *out, size_t n, const char *path)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", sink_port, path);
}

TEST(webhook_config_errors)
{
    const dimple_notifier_vtable *vt = load("webhook");
    th t;
    dimple_host h = make_host(&t, "notifier.hook");
    void *self = NULL;
    dimple_kv none[] = {{NULL, NULL, 0}};
    dimple_kv ftp[] = {{"url", "ftp://x/", 2}, {NULL, NULL, 0}};
    dimple_kv badt[] = {{"url", "http://127.0.0.1:1/", 2},
                        {"timeout", "soon", 3},
                        {NULL, NULL, 0}};
    dimple_kv badr[] = {{"url", "http://127.0.0.1:1/", 2},
                        {"retries", "1.5", 3},
                        {NULL, NULL, 0}};
    dimple_kv badq[] = {{"url", "http://127.0.0.1:1/", 2},
                        {"queue_max", "0", 7},
                        {NULL, NULL, 0}};
    dimple_kv unk[] = {
        {"url", "http://127.0.0.1:1/", 2}, {"secret", "x", 9}, {NULL, NULL, 0}};
    CHECK(vt != NULL);
    if (!vt)
        return;
    CHECK_RC(vt->create(&self, none, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "url");
    CHECK_RC(vt->create(&self, ftp, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "http://");
    CHECK_RC(vt->create(&self, badt, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "test.conf:3: timeout");
    CHECK_RC(vt->create(&self, badr, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "whole");
    CHECK_RC(vt->create(&self, badq, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "test.conf:7: queue_max");
    CHECK_RC(vt->create(&self, unk, &h), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.err, "test.conf:9: unknown key 'secret'");
}

TEST(webhook_posts_a_json_array_per_commit)
{
    const dimple_notifier_vtable *vt = load("webhook");
    th t;
    dimple_host h = make_host(&t, "notifier.hook");
    char url[128];
    dimple_kv conf[] = {{"url", url, 2}, {NULL, NULL, 0}};
    void *self = NULL;
    char *text, *l;
    if (!vt)
        return;
    url_for(url, sizeof url, "/ok");
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs, 2), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs + 1, 1), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs, 0), DIMPLE_OK); /* nothing to send */
    CHECK(sink_count("/ok 200 application/json ", 2, 5000) == 2);
    vt->destroy(self);
    CHECK(sink_count("/ok ", 3, 300) == 2);
    text = slurp(sink_log);
    for (int i = 0; i < 2; i++) {
        cJSON *a;
        l = line_at(text, i);
        a = l ? cJSON_Parse(l + strlen("/ok 200 application/json ")) : NULL;
        CHECK(cJSON_IsArray(a) && cJSON_GetArraySize(a) == (i ? 1 : 2));
        if (i == 0 && cJSON_GetArraySize(a) == 2) {
            CHECK(check_event(cJSON_GetArrayItem(a, 0), &evs[0]));
            CHECK(check_event(cJSON_GetArrayItem(a, 1), &evs[1]));
        } else if (i == 1 && cJSON_GetArraySize(a) == 1) {
            CHECK(check_event(cJSON_GetArrayItem(a, 0), &evs[1]));
        }
        cJSON_Delete(a);
        free(l);
    }
    free(text);
    CHECK(strstr(t.logs, "commit(s) dropped") == NULL);
    CHECK(strstr(t.logs, "not delivered") == NULL);
    CHECK_CONTAINS(t.logs, "stopped: 2 sent, 0 dropped, 0 failed");
}

TEST(webhook_retries_with_backoff)
{
    const dimple_notifier_vtable *vt = load("webhook");
    th t;
    dimple_host h = make_host(&t, "notifier.hook");
    char url[128];
    dimple_kv conf[] = {{"url", url, 2}, {"retries", "3", 3}, {NULL, NULL, 0}};
    void *self = NULL;
    double t0;
    if (!vt)
        return;
    url_for(url, sizeof url, "/fail-2");
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    t0 = now_ms();
    CHECK_RC(vt->notify(self, evs, 1), DIMPLE_OK);
    CHECK(now_ms() - t0 < 50); /* the writer did not wait */
    CHECK(sink_count("/fail-2 200 ", 1, 5000) == 1);
    /* two 500s first, then the batch got through after 0.1 + 0.2 s */
    CHECK(sink_count("/fail-2 500 ", 2, 0) == 2);
    CHECK(now_ms() - t0 >= 300);
    vt->destroy(self);
    CHECK(strstr(t.logs, "not delivered") == NULL);

    /* retries used up: counted and reported, no secret in the message */
    url_for(url, sizeof url, "/fail-99?token=SECRET");
    conf[1].value = "1";
    h = make_host(&t, "notifier.hook");
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs, 1), DIMPLE_OK);
    CHECK(sink_count("/fail-99?token=SECRET 500", 2, 5000) == 2);
    usleep(100000);
    vt->destroy(self);
    CHECK(sink_count("/fail-99?token=SECRET 500", 3, 200) == 2);
    CHECK_CONTAINS(t.logs, "1 commit(s) not delivered");
    CHECK_CONTAINS(t.logs, "HTTP 500");
    CHECK(strstr(t.logs, "SECRET") == NULL);

    /* a 400 is final: not retried */
    url_for(url, sizeof url, "/reject");
    conf[1].value = "3";
    h = make_host(&t, "notifier.hook");
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    CHECK_RC(vt->notify(self, evs, 1), DIMPLE_OK);
    CHECK(sink_count("/reject 400", 1, 5000) == 1);
    usleep(400000);
    vt->destroy(self);
    CHECK(sink_count("/reject 400", 2, 0) == 1);
    CHECK_CONTAINS(t.logs, "HTTP 400");
}

TEST(webhook_never_blocks_writers)
{
    const dimple_notifier_vtable *vt = load("webhook");
    th t;
    dimple_host h = make_host(&t, "notifier.hook");
    char url[128];
    dimple_kv conf[] = {{"url", url, 2},
                        {"queue_max", "3", 3},
                        {"timeout", "0.3", 4},
                        {"retries", "0", 5},
                        {NULL, NULL, 0}};
    void *self = NULL;
    double t0, worst = 0, td;
    if (!vt)
        return;
    /* a server that takes 1 s per request, and a burst of 50 commits */
    url_for(url, sizeof url, "/slow");
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    for (int i = 0; i < 50; i++) {
        double a = now_ms();
        CHECK_RC(vt->notify(self, evs, 2), DIMPLE_OK);
        if (now_ms() - a > worst)
            worst = now_ms() - a;
    }
    printf("# slowest notify %.3f ms\n", worst);
    CHECK(worst < 20);
    CHECK_CONTAINS(t.logs, "dropped: queue full (queue_max = 3)");
    td = now_ms();
    vt->destroy(self);
    td = now_ms() - td;
    printf("# destroy took %.0f ms\n", td);
    /* bounded: the request in flight (timeout 0.3 s) + 0.3 s for the rest */
    CHECK(td < 1500);
    CHECK_CONTAINS(t.logs, "not delivered");

    /* a dead server: connection refused, counted, never blocking */
    snprintf(url, sizeof url, "http://127.0.0.1:1/");
    h = make_host(&t, "notifier.hook");
    CHECK_RC(vt->create(&self, conf, &h), DIMPLE_OK);
    t0 = now_ms();
    for (int i = 0; i < 10; i++)
        vt->notify(self, evs, 1);
    CHECK(now_ms() - t0 < 50);
    vt->destroy(self);
    CHECK_CONTAINS(t.logs, "not delivered");
    CHECK_CONTAINS(t.logs, "http://127.0.0.1:1");
}

int main(void)
{
    RUN(jsonl_config_errors);
    RUN(jsonl_writes_one_line_per_change);
    RUN(jsonl_to_stdout);
    CHECK(start_sink() == 0); /* a real HTTP server on loopback, or fail */
    if (sink_port > 0) {
        RUN(webhook_config_errors);
        RUN(webhook_posts_a_json_array_per_commit);
        RUN(webhook_retries_with_backoff);
        RUN(webhook_never_blocks_writers);
    }
    stop_sink();
    for (size_t i = 0; i < n_handles; i++)
        dlclose(handles[i]);
    return test_done();
}
