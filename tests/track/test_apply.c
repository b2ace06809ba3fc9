/*
 * test_apply.c — the fast paths of dimple_track__apply: a batch of this
 * database's own changes coming back (held: nothing appended, answered by
 * one range read of own ids), brand-new rows (no clock read), a row that
 * exists untracked, idempotence, the capped range read of own ids falling
 * back to per-change lookups, and a held change with an outdated key shape
 * after a migration (skipped) next to a new one (refused).
 *
 * Which way "is this change our own?" was answered is observed through
 * SQLite's statement trace: the range read and the per-change lookup are
 * two different statements.
 */
#include "track.h"
#include "internal.h"
#include "clock.h"
#include <dimple.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define EXPECT(c) CHECK(c)
static char dir[] = "/tmp/dimple-apply.XXXXXX";
static char xpath[300], ypath[300];

static long q1(dimple *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long v = -1;
    if (sqlite3_prepare_v2(dimple_sqlite(db), sql, -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}
static char *qs(dimple *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(dimple_sqlite(db), sql, -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v ? v : strdup("(null)");
}

/* deep copies of changes */
typedef struct col {
    dimple_change ch[512];
    dimple_value v[512][8];
    char *bytes[4096];
    int nb;
    const char *names[512][8];
    int n;
} col;
static int grab(void *p, const dimple_change *c)
{
    col *k = p;
    dimple_change *d = &k->ch[k->n];
    *d = *c;
    size_t need = c->n_key + c->n_cols;
    for (size_t i = 0; i < need; i++) {
        dimple_value v = i < c->n_key ? c->key[i] : c->cols[i - c->n_key];
        if (v.type == DIMPLE_TEXT || v.type == DIMPLE_BLOB) {
            char *b = malloc(v.n + 1);
            memcpy(b, v.p, v.n);
            k->bytes[k->nb++] = b;
            v.p = b;
        }
        k->v[k->n][i] = v;
    }
    for (size_t i = 0; i < c->n_cols; i++)
        k->names[k->n][i] = c->col_names[i];
    d->key = k->v[k->n];
    d->cols = k->v[k->n] + c->n_key;
    d->col_names = k->names[k->n];
    k->n++;
    return 0;
}
static void col_free(col *k)
{
    for (int i = 0; i < k->nb; i++)
        free(k->bytes[i]);
    k->nb = k->n = 0;
}

static dimple *open_db(const char *path)
{
    unlink(path);
    char p2[256];
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof p2, "%s-shm", path);
    unlink(p2);
    dimple *db = NULL;
    dimple_options o = DIMPLE_OPTIONS_INIT;
    o.tables = "*";
    if (dimple_open_path(&db, path, &o) != DIMPLE_OK) {
        printf("open: %s\n", dimple_errmsg(db));
        exit(1);
    }
    const char *m[] = {
        "CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT, n INTEGER);"
        "CREATE TABLE audit(id TEXT PRIMARY KEY, note TEXT);"
        "CREATE TRIGGER mk_audit AFTER INSERT ON todo BEGIN INSERT OR IGNORE "
        "INTO audit(id, note) VALUES (NEW.id, 'derived'); END;"};
    if (dimple_migrate(db, m, 1) != DIMPLE_OK) {
        printf("migrate: %s\n", dimple_errmsg(db));
        exit(1);
    }
    return db;
}
/* Statements run on a connection, by kind (SQLITE_TRACE_STMT). */
typedef struct runs {
    int range;  /* the range read of own ids (one per apply call) */
    int lookup; /* the per-change "is this seq ours?" lookup */
} runs;
static int on_stmt(unsigned type, void *ctx, void *p, void *x)
{
    runs *r = ctx;
    const char *sql = x;
    (void)p;
    if (type != SQLITE_TRACE_STMT || !sql)
        return 0;
    if (strstr(sql, "FROM _dimple_log WHERE seq BETWEEN"))
        r->range++;
    else if (strstr(sql, "FROM _dimple_log WHERE seq = ?1 AND id IS NULL"))
        r->lookup++;
    return 0;
}
static void trace(dimple *db, runs *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_trace_v2(dimple_sqlite(db), SQLITE_TRACE_STMT, on_stmt, r);
}
static void untrace(dimple *db)
{
    sqlite3_trace_v2(dimple_sqlite(db), 0, NULL, NULL);
}

static int apply(dimple *db, dimple_change *c, size_t n)
{
    sqlite3_exec(dimple_sqlite(db), "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int rc = dimple_track__apply(db, c, n);
    if (rc)
        printf("# apply: %s\n", dimple_errmsg(db));
    sqlite3_exec(dimple_sqlite(db), rc ? "ROLLBACK" : "COMMIT", NULL, NULL,
                 NULL);
    return rc;
}

TEST(apply_paths)
{
    dimple *x = open_db(xpath);
    dimple *y = open_db(ypath);
    /* A: own changes come back in a batch (n > 1): all held */
    dimple_exec(x,
                "INSERT INTO todo(id, title, n) VALUES ('a','A',1),('b','B',2)",
                NULL, 0, NULL, NULL);
    dimple_exec(x, "UPDATE todo SET n = 5 WHERE id = 'a'", NULL, 0, NULL, NULL);
    col *own = calloc(1, sizeof *own);
    dimple_track__each_local(x, NULL, grab, own);
    long log0 = q1(x, "SELECT count(*) FROM _dimple_log");
    printf("# own changes: %d, log %ld\n", own->n, log0);
    EXPECT(own->n >= 3);
    runs ru;
    trace(x, &ru);
    EXPECT(apply(x, own->ch, (size_t)own->n) == 0);
    untrace(x);
    EXPECT(q1(x, "SELECT count(*) FROM _dimple_log") == log0);
    /* answered by the one range read, no per-change lookup */
    printf("# A: range reads %d, per-change lookups %d\n", ru.range, ru.lookup);
    EXPECT(ru.range == 1 && ru.lookup == 0);
    /* B: y pulls x's changes as a batch: inserts new rows (fresh path) */
    EXPECT(apply(y, own->ch, (size_t)own->n) == 0);
    char *s = qs(y, "SELECT group_concat(id||title||n, ',') FROM (SELECT * "
                    "FROM todo ORDER BY id)");
    printf("# y todo: %s\n", s);
    EXPECT(strcmp(s, "aA5,bB2") == 0);
    free(s);
    long ylog = q1(y, "SELECT count(*) FROM _dimple_log");
    /* again: idempotent */
    EXPECT(apply(y, own->ch, (size_t)own->n) == 0);
    EXPECT(q1(y, "SELECT count(*) FROM _dimple_log") == ylog);
    /* the audit rows y's trigger wrote while merging are untracked, have no
     * clock */
    EXPECT(q1(y, "SELECT count(*) FROM audit") == 2);
    /* C: x writes audit 'a' (x has its own derived audit rows, tracked? they
     * were written by x's trigger on a local insert: tracked) */
    col *x2 = calloc(1, sizeof *x2);
    dimple_exec(x, "UPDATE audit SET note = 'from x' WHERE id = 'a'", NULL, 0,
                NULL, NULL);
    dimple_track__each_local(x, NULL, grab, x2);
    /* y gets x's whole log again: the audit insert for 'a' lands on a row that
     * exists untracked (W_INSERT falls back) */
    EXPECT(apply(y, x2->ch, (size_t)x2->n) == 0);
    s = qs(y, "SELECT group_concat(id||note, ',') FROM (SELECT * FROM audit "
              "ORDER BY id)");
    printf("# y audit: %s\n", s);
    EXPECT(strcmp(s, "afrom x,bderived") == 0);
    free(s);
    s = qs(y, "PRAGMA integrity_check");
    EXPECT(strcmp(s, "ok") == 0);
    free(s);
    /* D: cap overflow: a range full of remote rows -> per-change lookups; own
     * change still held */
    col *big = calloc(1, sizeof *big);
    dimple_exec(x, "INSERT INTO todo(id, title, n) VALUES ('z','Z',9)", NULL, 0,
                NULL, NULL);
    /* 60 remote changes applied one by one from y's author onto x: seqs after
     * x's 'z' change */
    for (int i = 0; i < 60; i++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "INSERT INTO todo(id, title, n) VALUES ('y%02d','Y',%d)", i,
                 i);
        dimple_exec(y, sql, NULL, 0, NULL, NULL);
    }
    col *ych = calloc(1, sizeof *ych);
    /* y's own changes only (the 60 inserts and their derived audit rows are
     * untracked on y? no: y's local trigger-derived rows are tracked) */
    dimple_track__each_local(y, NULL, grab, ych);
    printf("# y local changes: %d\n", ych->n);
    for (int i = 0; i < ych->n; i++)
        EXPECT(apply(x, &ych->ch[i], 1) == 0);
    dimple_track__each_local(x, NULL, grab, big);
    /* the last own change of x is 'z' insert; pair it with a remote change far
     * later */
    dimple_change pair[2];
    pair[0] = big->ch[big->n - 1];
    uint8_t xauthor[16];
    EXPECT(dimple_track__author(x, xauthor) == DIMPLE_OK);
    EXPECT(memcmp(pair[0].author, xauthor, 16) == 0);
    EXPECT(pair[0].op == DIMPLE_OP_INSERT && pair[0].n_key == 1 &&
           pair[0].key[0].type == DIMPLE_TEXT && pair[0].key[0].n == 1 &&
           memcmp(pair[0].key[0].p, "z", 1) == 0);
    /* a remote change with an id 1 s in the future, by a new author */

    dimple_change r;
    memset(&r, 0, sizeof r);
    uint8_t au[16];
    dimple_uuid__v7(au);
    memcpy(r.author, au, 16);
    dimple_id__make(r.id, dimple_clock__at(dimple_clock__now_ms() + 1000),
                    dimple_id__lo(au));
    dimple_value k = dimple_value_text("far");
    r.table = "todo";
    r.op = DIMPLE_OP_INSERT;
    r.key = &k;
    r.n_key = 1;
    const char *nm[] = {"title"};
    dimple_value cv = dimple_value_text("F");
    r.col_names = nm;
    r.cols = &cv;
    r.n_cols = 1;
    pair[1] = r;
    long l1 = q1(x, "SELECT count(*) FROM _dimple_log");
    /* the log rows between the pair's two ids: more than the cap of a
     * two-change call (4 * 2 + 64) */
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM _dimple_log WHERE seq BETWEEN %lld AND "
             "%lld",
             (long long)dimple_id__hi(pair[0].id),
             (long long)dimple_id__hi(pair[1].id));
    long inrange = q1(x, sql);
    printf("# x log before pair: %ld, %ld rows in the pair's range (cap 72; "
           "y changes %d)\n",
           l1, inrange, ych->n);
    EXPECT(inrange > 4 * 2 + 64);
    trace(x, &ru);
    EXPECT(apply(x, pair, 2) == 0);
    untrace(x);
    /* the range read gave up; each change was looked up */
    printf("# D: range reads %d, per-change lookups %d\n", ru.range, ru.lookup);
    EXPECT(ru.range == 1 && ru.lookup == 2);
    EXPECT(q1(x, "SELECT count(*) FROM _dimple_log") == l1 + 1);
    s = qs(x, "SELECT title FROM todo WHERE id = 'far'");
    EXPECT(strcmp(s, "F") == 0);
    free(s);
    EXPECT(q1(x, "SELECT count(*) FROM todo WHERE id LIKE 'y%'") == 60);
    /* E: after a migration changes todo's key, re-pulling a held change
     * with the old key shape is skipped; a new one is refused */
    {
        const char *m2[] = {
            "CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT, n INTEGER);"
            "CREATE TABLE audit(id TEXT PRIMARY KEY, note TEXT);"
            "CREATE TRIGGER mk_audit AFTER INSERT ON todo BEGIN INSERT OR "
            "IGNORE INTO audit(id, note) VALUES (NEW.id, 'derived'); END;",
            "DROP TRIGGER mk_audit; DROP TABLE todo; CREATE TABLE todo(id "
            "TEXT, n INTEGER, title TEXT, PRIMARY KEY(id, n))"};
        sqlite3_exec(dimple_sqlite(y), "BEGIN IMMEDIATE", 0, 0, 0);
        dimple_track__fold(y);
        sqlite3_exec(dimple_sqlite(y), "COMMIT", 0, 0, 0);
        int mr = dimple_migrate(y, m2, 2);
        printf("# migrate y: %d %s\n", mr, mr ? dimple_errmsg(y) : "");
        EXPECT(mr == 0);
        long before = q1(y, "SELECT count(*) FROM _dimple_log");
        EXPECT(apply(y, own->ch, (size_t)own->n) == 0); /* held: skipped */
        EXPECT(q1(y, "SELECT count(*) FROM _dimple_log") == before);
        dimple_change nc = pair[1];
        uint8_t au2[16];
        dimple_uuid__v7(au2);
        memcpy(nc.author, au2, 16);
        dimple_id__make(nc.id, dimple_clock__at(dimple_clock__now_ms() + 2000),
                        dimple_id__lo(au2));
        EXPECT(apply(y, &nc, 1) != 0); /* new, wrong key shape: refused */
        EXPECT(q1(y, "SELECT count(*) FROM _dimple_log") == before);
    }
    col_free(own);
    col_free(x2);
    col_free(big);
    col_free(ych);
    free(own);
    free(x2);
    free(big);
    free(ych);
    dimple_close(x);
    dimple_close(y);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    snprintf(xpath, sizeof xpath, "%s/x.db", dir);
    snprintf(ypath, sizeof ypath, "%s/y.db", dir);
    RUN(apply_paths);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return test_done();
}
