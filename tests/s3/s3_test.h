/*
 * s3_test.h — shared by the S3 test programs: the radosgw the suite started
 * (tests/servers/s3.sh exports DIMPLE_TEST_S3_*), a host that keeps every
 * message the plugin reports (to search for secrets), a unique prefix per
 * run, and tests/s3/fake_s3.py (misbehaving servers, a killable proxy).
 */
#ifndef DIMPLE_TEST_S3_H
#define DIMPLE_TEST_S3_H

#include "plugin_load.h"
#include "test.h"

#include <dimple/plugin.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct s3env {
    const char *endpoint, *access_key, *secret_key, *region, *bucket;
    int ok;
} s3env;

/* Missing variables are a failure, never a skip (COMMON.md). */
static inline s3env s3env_get(void)
{
    s3env e;
    e.endpoint = getenv("DIMPLE_TEST_S3_ENDPOINT");
    e.access_key = getenv("DIMPLE_TEST_S3_ACCESS_KEY");
    e.secret_key = getenv("DIMPLE_TEST_S3_SECRET_KEY");
    e.region = getenv("DIMPLE_TEST_S3_REGION");
    e.bucket = getenv("DIMPLE_TEST_S3_BUCKET");
    if (!e.bucket || !*e.bucket)
        e.bucket = "dimple-test";
    e.ok = e.endpoint && *e.endpoint && e.access_key && *e.access_key &&
           e.secret_key && *e.secret_key && e.region && *e.region;
    if (!e.ok)
        printf("# DIMPLE_TEST_S3_ENDPOINT/ACCESS_KEY/SECRET_KEY/REGION are "
               "not set: run through tests/run-suite.sh (it starts "
               "tests/servers/s3.sh), or source its s3.env\n");
    return e;
}

/* "t<time>-<random>": a fresh, empty corner of the shared bucket. */
static inline void s3_unique(char *out, size_t cap, const char *what)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)getpid();
    snprintf(out, cap, "run-%ld-%08x/%s", (long)time(NULL), r, what);
}

/* A host that records every error and log line. */
typedef struct cap_host {
    dimple_host host;
    int last_code;
    char last_msg[1024];
    char *all; /* every message, '\n'-separated */
    size_t len, cap;
    int debug_requests; /* DEBUG lines that are requests ("s3: ...: GET ") */
    int list_requests;
} cap_host;

static inline void cap_add(cap_host *h, const char *msg)
{
    size_t n = strlen(msg);
    if (h->len + n + 2 > h->cap) {
        size_t cap = h->cap ? h->cap : 4096;
        while (cap < h->len + n + 2)
            cap *= 2;
        h->all = realloc(h->all, cap);
        if (!h->all)
            abort();
        h->cap = cap;
    }
    memcpy(h->all + h->len, msg, n);
    h->len += n;
    h->all[h->len++] = '\n';
    h->all[h->len] = '\0';
}

static inline void cap_error(void *ctx, int code, const char *msg)
{
    cap_host *h = ctx;
    h->last_code = code;
    snprintf(h->last_msg, sizeof h->last_msg, "%s", msg);
    cap_add(h, msg);
}

static inline void cap_log(void *ctx, int level, const char *msg)
{
    cap_host *h = ctx;
    if (level == DIMPLE_LOG_DEBUG && strstr(msg, ": GET /"))
        h->debug_requests++;
    if (level == DIMPLE_LOG_DEBUG && strstr(msg, "list-type=2"))
        h->list_requests++;
    cap_add(h, msg);
}

static inline void cap_init(cap_host *h)
{
    memset(h, 0, sizeof *h);
    h->host.size = sizeof h->host;
    h->host.ctx = h;
    h->host.error = cap_error;
    h->host.log = cap_log;
    h->host.config_file = "s3-test.conf";
    h->host.section = "storage";
}

static inline void cap_clear(cap_host *h)
{
    h->last_code = 0;
    h->last_msg[0] = '\0';
    h->list_requests = h->debug_requests = 0;
}

static inline void cap_free(cap_host *h)
{
    free(h->all);
    h->all = NULL;
    h->len = h->cap = 0;
}

/* A configuration: the radosgw's keys, overridden/extended by `extra`
 * (key, value pairs ending with NULL; a NULL value drops the key). */
typedef struct s3conf {
    dimple_kv kv[24];
    char endpoint[256];
} s3conf;

static inline void s3conf_set(s3conf *c, const char *k, const char *v)
{
    size_t i = 0;
    for (; c->kv[i].key; i++)
        if (strcmp(c->kv[i].key, k) == 0)
            break;
    if (!v) { /* drop */
        for (; c->kv[i].key; i++)
            c->kv[i] = c->kv[i + 1];
        return;
    }
    if (!c->kv[i].key && i + 1 < sizeof c->kv / sizeof c->kv[0])
        c->kv[i + 1] = (dimple_kv){NULL, NULL, 0};
    c->kv[i] = (dimple_kv){k, v, (int)i + 1};
}

static inline void s3conf_init(s3conf *c, const s3env *e, const char *prefix)
{
    memset(c, 0, sizeof *c);
    s3conf_set(c, "endpoint", e->endpoint);
    s3conf_set(c, "bucket", e->bucket);
    s3conf_set(c, "region", e->region);
    s3conf_set(c, "access_key", e->access_key);
    s3conf_set(c, "secret_key", e->secret_key);
    if (prefix)
        s3conf_set(c, "prefix", prefix);
}

/* ------------------------------------------------------- fake_s3.py */

typedef struct fake {
    pid_t pid;
    int port;
    char endpoint[64];
} fake;

/* Start tests/s3/fake_s3.py MODE [args]; it prints its port. */
static inline int fake_start(fake *f, const char *mode, const char *arg1,
                             const char *arg2)
{
    const char *src = getenv("DIMPLE_TEST_SRCDIR");
    char script[4096];
    int fds[2];
    char line[64] = "";
    FILE *in;
    memset(f, 0, sizeof *f);
    if (!src) {
        printf("# DIMPLE_TEST_SRCDIR is not set\n");
        return -1;
    }
    snprintf(script, sizeof script, "%s/tests/s3/fake_s3.py", src);
    if (pipe(fds))
        return -1;
    f->pid = fork();
    if (f->pid < 0)
        return -1;
    if (f->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", script, mode, arg1, arg2, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    in = fdopen(fds[0], "r");
    if (!in || !fgets(line, sizeof line, in)) {
        if (in)
            fclose(in);
        printf("# fake_s3.py %s did not start\n", mode);
        return -1;
    }
    fclose(in);
    f->port = atoi(line);
    snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:%d", f->port);
    return f->port > 0 ? 0 : -1;
}

static inline void fake_stop(fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
}

/* ---------------------------------------------------------- sinks */

typedef struct membuf {
    char *p;
    size_t n;
} membuf;

static inline int membuf_write(void *ctx, const void *p, size_t n)
{
    membuf *b = ctx;
    char *q = realloc(b->p, b->n + n + 1);
    if (!q)
        return DIMPLE_ENOMEM;
    memcpy(q + b->n, p, n);
    b->n += n;
    q[b->n] = '\0';
    b->p = q;
    return 0;
}

#endif /* DIMPLE_TEST_S3_H */
