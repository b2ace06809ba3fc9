/*
 * live_bench.c — live queries: commit-to-callback latency and the cost of
 * live queries for writers.
 *
 *   live_bench [ROWS]        (default 20000; DIMPLE_BENCH_DIR for files)
 *
 * 1. Latency in the same process: from just before dimple_exec(INSERT) to
 *    the callback (SYNC delivery: the commit, the rerun and the call), and
 *    through dimple_live_fd + dimple_live_dispatch (DISPATCH delivery). The
 *    plain dimple_exec(INSERT) time is printed alongside as the baseline.
 * 2. Latency from another process: a child writes rows stamped with
 *    CLOCK_MONOTONIC (system-wide); this process sees them (a) through the
 *    notify fd (watcher thread, 50 ms period) and (b) by calling
 *    dimple_live_dispatch every millisecond.
 * 3. Write throughput with 0 and with 100 live queries on unrelated tables,
 *    one commit per row (the flush after each commit is where live queries
 *    cost) and ROWS rows in one transaction (the per-row hook), runs
 *    interleaved, best of 5. Target: >= 0.95x.
 */
#include <dimple.h>
#include <sqlite3.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stats(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("  %-44s median %9.1f us   p99 %9.1f us   (n=%d)\n", what, v[n / 2],
           v[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1], n);
}

static char dir[512];

static void db_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/live_bench_%d_%s.db", dir, (int)getpid(), name);
}

static void rm_db(const char *path)
{
    char side[600];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static dimple *open_db(const char *path, const char *tables, int sync_off)
{
    dimple *db = NULL;
    dimple_options o = DIMPLE_OPTIONS_INIT;
    o.tables = tables;
    rm_db(path);
    if (dimple_open_path(&db, path, &o) != DIMPLE_OK) {
        fprintf(stderr, "live_bench: open %s: %s\n", path, dimple_errmsg(db));
        exit(1);
    }
    if (sync_off)
        dimple_exec(db, "PRAGMA synchronous=OFF", NULL, 0, NULL, NULL);
    return db;
}

static void must(dimple *db, int rc, const char *what)
{
    if (rc != DIMPLE_OK) {
        fprintf(stderr, "live_bench: %s: %s\n", what, dimple_errmsg(db));
        exit(1);
    }
}

/* ------------------------------------------------------------ latency */

typedef struct lat {
    double t0;    /* set before the write (in-process) */
    double got;   /* callback time */
    double stamp; /* newest row's stamp (cross-process) */
    int calls;
} lat;

static void on_lat(void *payload, dimple_live_query *q, const dimple_result *r)
{
    lat *l = payload;
    (void)q;
    l->got = now_us();
    l->calls++;
    if (r->rc == DIMPLE_OK && r->n_rows == 1 && r->n_cols == 1 &&
        r->values[0].type == DIMPLE_REAL)
        l->stamp = r->values[0].r;
}

static void latency_local(int n)
{
    char path[600];
    dimple *db;
    dimple_live_query *q = NULL;
    dimple_live_options dopt = {sizeof dopt, DIMPLE_LIVE_DISPATCH};
    lat l = {0};
    double *plain = calloc((size_t)n, sizeof *plain);
    double *syn = calloc((size_t)n, sizeof *syn);
    double *dis = calloc((size_t)n, sizeof *dis);
    int fd;
    db_path(path, sizeof path, "lat");
    db = open_db(path, "", 1);
    must(db,
         dimple_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)", NULL, 0,
                     NULL, NULL),
         "create");
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        must(db,
             dimple_exec(db, "INSERT INTO t(v) VALUES(1)", NULL, 0, NULL, NULL),
             "insert");
        plain[i] = now_us() - t0;
    }
    must(db,
         dimple_live_open(&q, db, "SELECT count(*) FROM t", NULL, 0, on_lat, &l,
                          NULL),
         "live open");
    for (int i = 0; i < n; i++) {
        int before = l.calls;
        l.t0 = now_us();
        must(db,
             dimple_exec(db, "INSERT INTO t(v) VALUES(1)", NULL, 0, NULL, NULL),
             "insert");
        syn[i] = l.calls > before ? l.got - l.t0 : -1;
    }
    dimple_live_close(q);
    fd = dimple_live_fd(db);
    must(db,
         dimple_live_open(&q, db, "SELECT count(*) FROM t", NULL, 0, on_lat, &l,
                          &dopt),
         "live open");
    dimple_live_dispatch(db);
    for (int i = 0; i < n; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        int before = l.calls;
        l.t0 = now_us();
        must(db,
             dimple_exec(db, "INSERT INTO t(v) VALUES(1)", NULL, 0, NULL, NULL),
             "insert");
        while (l.calls == before && poll(&p, 1, 1000) == 1)
            dimple_live_dispatch(db);
        dis[i] = l.got - l.t0;
    }
    dimple_live_close(q);
    printf("latency, same process (%d commits each; synchronous=OFF so the "
           "disk's fsync does not hide the rest):\n",
           n);
    stats("dimple_exec(INSERT), no live query", plain, n);
    stats("INSERT -> callback (SYNC delivery)", syn, n);
    stats("INSERT -> callback (notify fd + dispatch)", dis, n);
    dimple_close(db);
    rm_db(path);
    free(plain);
    free(syn);
    free(dis);
}

static void child_writer(const char *path, int n, int gap_us)
{
    sqlite3 *c;
    sqlite3_stmt *st;
    if (sqlite3_open(path, &c) != SQLITE_OK)
        _exit(1);
    sqlite3_busy_timeout(c, 5000);
    sqlite3_prepare_v2(c, "INSERT INTO s(stamp) VALUES(?1)", -1, &st, NULL);
    for (int i = 0; i < n; i++) {
        usleep((useconds_t)(gap_us / 2 + rand() % gap_us));
        sqlite3_bind_double(st, 1, now_us());
        if (sqlite3_step(st) != SQLITE_DONE)
            _exit(1);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    _exit(0);
}

static void latency_remote(int n, int mode)
{
    char path[600];
    dimple *db;
    dimple_live_query *q = NULL;
    dimple_live_options dopt = {sizeof dopt, DIMPLE_LIVE_DISPATCH};
    lat l = {0};
    double *v = calloc((size_t)n, sizeof *v);
    int got = 0, fd = -1, st = 0;
    double last_stamp = 0;
    pid_t pid;
    db_path(path, sizeof path, "remote");
    db = open_db(path, "", 0);
    must(db,
         dimple_exec(db,
                     "CREATE TABLE s(id INTEGER PRIMARY KEY, stamp REAL);"
                     "INSERT INTO s(stamp) VALUES(0)",
                     NULL, 0, NULL, NULL),
         "create");
    if (mode == 0)
        fd = dimple_live_fd(db);
    must(db,
         dimple_live_open(&q, db, "SELECT max(stamp) FROM s", NULL, 0, on_lat,
                          &l, mode == 0 ? &dopt : NULL),
         "live open");
    dimple_live_dispatch(db);
    last_stamp = l.stamp;
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        child_writer(path, n, 20000);
    while (got < n) {
        if (mode == 0) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 2000) != 1)
                break;
            dimple_live_dispatch(db);
        } else {
            usleep(1000);
            dimple_live_dispatch(db);
        }
        if (l.stamp != last_stamp) {
            v[got++] = l.got - l.stamp;
            last_stamp = l.stamp;
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            dimple_live_dispatch(db);
            if (l.stamp != last_stamp)
                v[got++] = l.got - l.stamp;
            pid = 0;
            break;
        }
    }
    if (pid > 0)
        waitpid(pid, &st, 0);
    stats(mode == 0 ? "other process -> callback (notify fd, watcher)"
                    : "other process -> callback (poll every 1 ms)",
          v, got);
    dimple_live_close(q);
    dimple_close(db);
    rm_db(path);
    free(v);
}

/* --------------------------------------------------------- throughput */

static void on_nothing(void *payload, dimple_live_query *q,
                       const dimple_result *r)
{
    (void)payload;
    (void)q;
    (void)r;
}

/* rows/s for `rows` single-row commits, or one transaction when batch */
static double write_rate(dimple *db, int rows, int batch)
{
    static long counter;
    double t0 = now_us();
    dimple_value v[2];
    char key[32];
    if (batch)
        must(db, dimple_exec(db, "BEGIN", NULL, 0, NULL, NULL), "begin");
    for (int i = 0; i < rows; i++) {
        snprintf(key, sizeof key, "k%ld", counter++);
        v[0] = dimple_value_text(key);
        v[1] = dimple_value_int(i);
        must(db,
             dimple_exec(db, "INSERT INTO w(id, n) VALUES(?1, ?2)", v, 2, NULL,
                         NULL),
             "insert");
    }
    if (batch)
        must(db, dimple_exec(db, "COMMIT", NULL, 0, NULL, NULL), "commit");
    return rows / ((now_us() - t0) / 1e6);
}

/* One handle, one file: rounds alternate 0 and 100 live queries (opened
 * before and closed after their run), so both see the same load. */
static void throughput(int rows, const char *tables, int sync_off)
{
    char p0[600];
    dimple *d;
    dimple_live_query *qs[100];
    double best[2][2] = {{0, 0}, {0, 0}};
    db_path(p0, sizeof p0, "w");
    d = open_db(p0, tables, sync_off);
    {
        /* one migration, so change tracking (when on) covers every table */
        char *schema = calloc(1, 8192);
        const char *mig[1];
        size_t len = (size_t)snprintf(schema, 8192,
                                      "CREATE TABLE w(id TEXT PRIMARY KEY, "
                                      "n);");
        for (int i = 0; i < 100; i++)
            len += (size_t)snprintf(schema + len, 8192 - len,
                                    "CREATE TABLE u%d(id TEXT PRIMARY KEY, "
                                    "x);",
                                    i);
        mig[0] = schema;
        must(d, dimple_migrate(d, mig, 1), "migrate");
        free(schema);
    }
    for (int round = 0; round < 7; round++)
        for (int k = 0; k < 2; k++) {
            if (k)
                for (int i = 0; i < 100; i++) {
                    char sql[128];
                    snprintf(sql, sizeof sql,
                             "SELECT count(*), max(x) FROM u%d", i);
                    must(d,
                         dimple_live_open(&qs[i], d, sql, NULL, 0, on_nothing,
                                          NULL, NULL),
                         "live open");
                }
            for (int batch = 0; batch < 2; batch++) {
                int n = batch ? rows : rows / 10;
                double r = write_rate(d, n, batch);
                if (r > best[k][batch])
                    best[k][batch] = r;
            }
            if (k)
                for (int i = 0; i < 100; i++)
                    dimple_live_close(qs[i]);
        }
    printf("write throughput, %s, %s, best of 7 interleaved:\n",
           *tables ? "change tracking on" : "no change tracking",
           sync_off ? "synchronous=OFF" : "synchronous=FULL");
    for (int batch = 0; batch < 2; batch++)
        printf("  %-20s 0 live: %9.0f rows/s   100 live (other tables): "
               "%9.0f rows/s   ratio %.3fx\n",
               batch ? "one transaction" : "one commit per row", best[0][batch],
               best[1][batch], best[1][batch] / best[0][batch]);
    dimple_close(d);
    rm_db(p0);
}

int main(int argc, char **argv)
{
    int rows = argc > 1 ? atoi(argv[1]) : 20000;
    const char *d = getenv("DIMPLE_BENCH_DIR");
    snprintf(dir, sizeof dir, "%s", d && *d ? d : "/tmp");
    if (rows < 100)
        rows = 100;
    srand((unsigned)getpid());
    latency_local(2000);
    printf("latency, another process (200 commits, 10-30 ms apart):\n");
    latency_remote(200, 0);
    latency_remote(200, 1);
    throughput(rows, "", 1);
    throughput(rows, "*", 1);
    return 0;
}
