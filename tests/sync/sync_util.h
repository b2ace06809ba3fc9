/*
 * sync_util.h — shared helpers of the sync tests: temporary folders,
 * replicas opened from a generated dimple.conf, table and history dumps.
 */
#ifndef SYNC_UTIL_H
#define SYNC_UTIL_H

/* not every test uses every helper */
#pragma GCC diagnostic ignored "-Wunused-function"

#include "batch.h"
#include "clock.h"
#include "internal.h"
#include "remote.h"
#include "test.h"
#include "track.h"

#include <dimple.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The test schema: a TEXT key and a composite key, every value type. */
static const char *const SCHEMA[] = {
    "CREATE TABLE t(k TEXT PRIMARY KEY, a, b, c);"
    "CREATE TABLE p(x INTEGER NOT NULL, y TEXT NOT NULL, v,"
    " PRIMARY KEY(x, y));"};

/* In /dev/shm when there is one: the tests commit often, and fsync on a
 * busy disk would dominate their time (files there survive a killed
 * process all the same). */
static const char *su_tmp_root(void)
{
    struct stat sb;
    return stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
                   access("/dev/shm", W_OK) == 0
               ? "/dev/shm"
               : "/tmp";
}

static char *su_tmpdir(const char *tag)
{
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/dimple-sync-%s-XXXXXX", su_tmp_root(), tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static void su_rmrf(const char *dir)
{
    char cmd[600];
    if (!dir || (strncmp(dir, "/tmp/dimple-sync-", 17) != 0 &&
                 strncmp(dir, "/dev/shm/dimple-sync-", 21) != 0))
        return; /* only ever our own folders */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", dir);
}

/* The folder where this suite's test plugins (faulty, max) are built. */
static const char *su_plugin_dir(void)
{
    static char buf[1024];
    const char *b = getenv("DIMPLE_TEST_BUILDDIR");
    snprintf(buf, sizeof buf, "%s/tests/sync", b ? b : ".");
    return buf;
}

/* Write DIR/NAME.conf for database DIR/NAME.db with the storage section
 * text `storage` (e.g. "plugin = memory\nname = s1\n") and extra sections,
 * then open it. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static dimple *
su_open(const char *dir, const char *name, const char *storage,
        const char *extra_fmt, ...)
{
    char conf[1024], extra[2048] = "";
    snprintf(conf, sizeof conf, "%s/%s.conf", dir, name);
    if (extra_fmt) {
        va_list ap;
        va_start(ap, extra_fmt);
        vsnprintf(extra, sizeof extra, extra_fmt, ap);
        va_end(ap);
    }
    FILE *f = fopen(conf, "w");
    if (!f)
        return NULL;
    fprintf(f,
            "[dimple]\ndatabase = %s/%s.db\nplugin_dir = %s\n"
            "[storage]\n%s\n%s\n",
            dir, name, su_plugin_dir(), storage, extra);
    fclose(f);
    dimple *db = NULL;
    if (dimple_open(&db, conf) != DIMPLE_OK) {
        printf("# open %s: %s\n", conf, dimple_errmsg(db));
        dimple_close(db);
        return NULL;
    }
    int v = 0;
    if (dimple_schema_version(&v, db) == DIMPLE_OK && v == 0 &&
        dimple_migrate(db, SCHEMA, 1) != DIMPLE_OK) {
        printf("# migrate %s: %s\n", conf, dimple_errmsg(db));
        dimple_close(db);
        return NULL;
    }
    return db;
}

static int su_exec(dimple *db, const char *sql)
{
    int rc = dimple_exec(db, sql, NULL, 0, NULL, NULL);
    if (rc)
        printf("# exec %s: %s\n", sql, dimple_errmsg(db));
    return rc;
}

/* Dump both tables as JSON (caller frees). */
static char *su_dump(dimple *db)
{
    char *a = NULL, *b = NULL, *out = NULL;
    if (dimple_json_query(&a, db, "SELECT * FROM t ORDER BY k", NULL, 0) ||
        dimple_json_query(&b, db, "SELECT * FROM p ORDER BY x, y", NULL, 0)) {
        printf("# dump: %s\n", dimple_errmsg(db));
        goto out;
    }
    size_t n = strlen(a) + strlen(b) + 2;
    out = malloc(n);
    if (out)
        snprintf(out, n, "%s\n%s", a, b);
out:
    dimple_free(a);
    dimple_free(b);
    return out;
}

/* A growable string. */
typedef struct su_str {
    char *p;
    size_t n, cap;
} su_str;

static void su_add(su_str *s, const char *fmt, ...)
{
    va_list ap;
    char tmp[512];
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (s->n + (size_t)n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        while (cap < s->n + (size_t)n + 1)
            cap *= 2;
        s->p = realloc(s->p, cap);
        s->cap = cap;
    }
    memcpy(s->p + s->n, tmp, (size_t)n + 1);
    s->n += (size_t)n;
}

static void su_value(su_str *s, const dimple_value *v)
{
    switch (v->type) {
    case DIMPLE_INTEGER:
        su_add(s, "i%lld", (long long)v->i);
        break;
    case DIMPLE_REAL:
        su_add(s, "r%a", v->r);
        break;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        su_add(s, "%c%zu:", v->type == DIMPLE_TEXT ? 't' : 'b', v->n);
        for (size_t i = 0; i < v->n; i++)
            su_add(s, "%02x", ((const unsigned char *)v->p)[i]);
        break;
    default:
        su_add(s, "null");
    }
}

/* One line per change: the same text on every replica for the same
 * change, so sorted dumps compare histories. */
static void su_change_line(su_str *s, const dimple_change *c)
{
    char id[37], a[37];
    dimple_uuid__format(c->id, id);
    dimple_uuid__format(c->author, a);
    su_add(s, "%s %s %s %d [", id, a, c->table, (int)c->op);
    for (size_t i = 0; i < c->n_key; i++) {
        su_value(s, &c->key[i]);
        su_add(s, ",");
    }
    su_add(s, "] {");
    for (size_t i = 0; i < c->n_cols; i++) {
        su_add(s, "%s=", c->col_names[i]);
        su_value(s, &c->cols[i]);
        su_add(s, ",");
    }
    su_add(s, "}\n");
}

typedef struct su_lines {
    char **v;
    size_t n, cap;
} su_lines;

static int su_hist_cb(void *payload, const dimple_change *c)
{
    su_lines *l = payload;
    su_str s = {0};
    su_change_line(&s, c);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s.p;
    return 0;
}

static int su_cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The whole change log of db (local and applied remote changes), sorted
 * by id, as one string (caller frees); *count gets the number. */
static char *su_history(dimple *db, size_t *count)
{
    su_lines l = {0};
    su_str out = {0};
    int64_t seq = 0;
    if (dimple_track__each_since(db, &seq, su_hist_cb, &l) != DIMPLE_OK)
        printf("# history: %s\n", dimple_errmsg(db));
    qsort(l.v, l.n, sizeof *l.v, su_cmp_line);
    su_add(&out, "%s", "");
    for (size_t i = 0; i < l.n; i++) {
        su_add(&out, "%s", l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
    if (count)
        *count = l.n;
    return out.p;
}

static int su_integrity_ok(dimple *db)
{
    char *j = NULL;
    int ok = dimple_json_query(&j, db, "PRAGMA integrity_check", NULL, 0) ==
                 DIMPLE_OK &&
             j && strstr(j, "\"ok\"");
    if (!ok)
        printf("# integrity: %s\n", j ? j : dimple_errmsg(db));
    dimple_free(j);
    return ok;
}

static int su_sync(dimple *db, unsigned flags, uint64_t max_batches,
                   dimple_sync_stats *st)
{
    dimple_sync_options o = DIMPLE_SYNC_OPTIONS_INIT;
    o.flags = flags;
    o.max_batches = max_batches;
    return dimple_sync(st, db, &o);
}

#endif /* SYNC_UTIL_H */
