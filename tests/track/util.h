/*
 * util.h — helpers shared by the change-tracking tests: open a database,
 * run SQL, dump tables and history exactly, ship changes between replicas
 * through dimple_track__each_local / dimple_track__apply (what sync does).
 */
#ifndef TRACK_TEST_UTIL_H
#define TRACK_TEST_UTIL_H

#include "test.h"

#include "clock.h"
#include "track.h"

#include <dimple.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tu_dir[256];

static __attribute__((unused)) void tu_init(void)
{
    snprintf(tu_dir, sizeof tu_dir, "/tmp/dimple-track-XXXXXX");
    if (!mkdtemp(tu_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static __attribute__((unused)) void tu_cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", tu_dir);
}

static __attribute__((unused)) char *tu_path(const char *name)
{
    static char buf[8][400];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 400, "%s/%s", tu_dir, name);
    return p;
}

static __attribute__((unused)) dimple *tu_open(const char *name,
                                               const char *tables)
{
    dimple *db = NULL;
    dimple_options o = DIMPLE_OPTIONS_INIT;
    o.tables = tables;
    int rc = dimple_open_path(&db, tu_path(name), &o);
    if (rc != DIMPLE_OK) {
        printf("# open %s: %s\n", name, dimple_errmsg(db));
        dimple_close(db);
        return NULL;
    }
    /* tests need no durability: keep them fast */
    sqlite3_exec(db->sql, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    return db;
}

/* Run SQL; returns the dimple code (prints the message on failure). */
static __attribute__((unused)) int tu_exec(dimple *db, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    int rc = dimple_exec(db, sql, NULL, 0, NULL, NULL);
    if (rc != DIMPLE_OK)
        printf("# exec %s: %s\n", sql, dimple_errmsg(db));
    return rc;
}

/* ---------------------------------------------------- an exact dump */

typedef struct tu_str {
    char *p;
    size_t n, cap;
} tu_str;

static __attribute__((unused)) void tu_add(tu_str *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (s->n + (size_t)n + 1 > s->cap) {
        s->cap = (s->cap + (size_t)n + 1) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->n, tmp, (size_t)n + 1);
    s->n += (size_t)n;
}

static __attribute__((unused)) void tu_value(tu_str *s, const dimple_value *v)
{
    switch (v->type) {
    case DIMPLE_INTEGER:
        tu_add(s, "i%lld", (long long)v->i);
        break;
    case DIMPLE_REAL: {
        uint64_t bits;
        memcpy(&bits, &v->r, 8);
        tu_add(s, "r%016llx", (unsigned long long)bits);
        break;
    }
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        tu_add(s, "%c%zu:", v->type == DIMPLE_TEXT ? 't' : 'b', v->n);
        for (size_t i = 0; i < v->n; i++)
            tu_add(s, "%02x", ((const unsigned char *)v->p)[i]);
        break;
    default:
        tu_add(s, "n");
    }
}

static __attribute__((unused)) int tu_dump_row(void *payload, size_t n,
                                               const char *const *names,
                                               const dimple_value *values)
{
    tu_str *s = payload;
    for (size_t i = 0; i < n; i++) {
        tu_add(s, "%s%s=", i ? " " : "", names[i]);
        tu_value(s, &values[i]);
    }
    tu_add(s, "\n");
    return 0;
}

/* Every row of table in key order, each value with its exact type/bytes.
 * Caller frees. */
static __attribute__((unused)) char *tu_dump(dimple *db, const char *table)
{
    tu_str s = {0};
    tu_add(&s, "");
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY 1, 2", table);
    if (dimple_exec(db, sql, NULL, 0, tu_dump_row, &s) != DIMPLE_OK)
        tu_add(&s, "error: %s", dimple_errmsg(db));
    return s.p;
}

static __attribute__((unused)) int tu_hist_line(void *payload,
                                                const dimple_change *c)
{
    tu_str *s = payload;
    char id[37], au[37];
    dimple_uuid__format(c->id, id);
    dimple_uuid__format(c->author, au);
    tu_add(s, "%s %s %s %d [", id, au, c->table, (int)c->op);
    for (size_t i = 0; i < c->n_key; i++)
        tu_value(s, &c->key[i]);
    tu_add(s, "]");
    for (size_t i = 0; i < c->n_cols; i++) {
        tu_add(s, " %s=", c->col_names[i]);
        tu_value(s, &c->cols[i]);
    }
    tu_add(s, "\n");
    return 0;
}

static __attribute__((unused)) int tu_cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The whole change log, one line per change, sorted by id. */
static __attribute__((unused)) char *tu_history(dimple *db)
{
    tu_str s = {0};
    tu_add(&s, "");
    int64_t seq = 0;
    if (dimple_track__each_since(db, &seq, tu_hist_line, &s) != DIMPLE_OK)
        tu_add(&s, "error: %s\n", dimple_errmsg(db));
    /* sort the lines (ids first: id order) */
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++)
        n += s.p[i] == '\n';
    char **lines = calloc(n + 1, sizeof *lines);
    size_t k = 0;
    for (char *p = s.p; *p && k < n;) {
        char *e = strchr(p, '\n');
        *e = 0;
        lines[k++] = p;
        p = e + 1;
    }
    qsort(lines, k, sizeof *lines, tu_cmp_lines);
    tu_str out = {0};
    tu_add(&out, "");
    for (size_t i = 0; i < k; i++) {
        /* lines can be longer than tu_add's buffer */
        size_t len = strlen(lines[i]);
        if (out.n + len + 2 > out.cap) {
            out.cap = (out.cap + len + 2) * 2;
            out.p = realloc(out.p, out.cap);
        }
        memcpy(out.p + out.n, lines[i], len);
        out.n += len;
        out.p[out.n++] = '\n';
        out.p[out.n] = 0;
    }
    free(lines);
    free(s.p);
    return out.p;
}

/* ------------------------------------------------ shipping changes */

typedef struct tu_ship {
    dimple *dst;
    uint8_t last[16];
    int have_last;
    long limit; /* stop after this many (< 0: all) */
    long count;
    int rc;
} tu_ship;

static __attribute__((unused)) int tu_ship_one(void *payload,
                                               const dimple_change *c)
{
    tu_ship *s = payload;
    if (s->limit >= 0 && s->count >= s->limit)
        return 1;
    s->rc = dimple_track__apply(s->dst, c, 1);
    if (s->rc != DIMPLE_OK) {
        printf("# apply: %s\n", dimple_errmsg(s->dst));
        return 2;
    }
    memcpy(s->last, c->id, 16);
    s->have_last = 1;
    s->count++;
    return 0;
}

/* Pull src's own changes after *cursor into dst (at most limit; < 0 all),
 * in one transaction, like a sync pull of src's folder. */
static __attribute__((unused)) int tu_pull(dimple *dst, dimple *src,
                                           uint8_t cursor[16], int *have_cursor,
                                           long limit)
{
    tu_ship s = {dst, {0}, 0, limit, 0, 0};
    if (sqlite3_exec(dst->sql, "BEGIN IMMEDIATE", NULL, NULL, NULL))
        return -1;
    int r = dimple_track__each_local(src, *have_cursor ? cursor : NULL,
                                     tu_ship_one, &s);
    if (s.rc != DIMPLE_OK || (r != 0 && r != 1)) {
        sqlite3_exec(dst->sql, "ROLLBACK", NULL, NULL, NULL);
        return s.rc ? s.rc : r;
    }
    if (sqlite3_exec(dst->sql, "COMMIT", NULL, NULL, NULL))
        return -1;
    if (s.have_last) {
        memcpy(cursor, s.last, 16);
        *have_cursor = 1;
    }
    return 0;
}

#endif /* TRACK_TEST_UTIL_H */
