/*
 * sync_bench.c — what sync costs, against plain SQLite in the same run.
 *
 *   sync_bench [CHANGES] [BIG]        (defaults 100000 and 1000000)
 *
 * 1. Throughput: replica A inserts CHANGES rows (tracked) and pushes them to
 *    a file store; then, three rounds, a fresh replica pulls and applies
 *    them and a plain bulk INSERT of the same rows goes into a fresh plain
 *    SQLite database (same WAL setup, one transaction), back to back in the
 *    same process. Prints changes/s of the push and of each pull+apply,
 *    each round's ratio pull+apply / plain, and the median round (target
 *    >= 0.25x).
 * 2. Requests of a sync that finds nothing new (target: one listing of
 *    log/ plus one per other author, no reads).
 * 3. Memory: a fresh process pulls BIG changes; its resident set is sampled
 *    after every batch (target <= 64 MiB peak, flat as the log grows).
 *
 * The file store runs with fsync = off (the point is the engine, not the
 * disk; with fsync on each batch put costs two fsyncs). The databases use
 * dimple's defaults (WAL). Scratch data goes to $DIMPLE_BENCH_DIR or /tmp.
 */
#include <dimple.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *SCHEMA[] = {
    "CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT, done INTEGER,"
    " score REAL)"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process: on a loaded machine wall time measures the
 * scheduler; both are printed. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, dimple *db)
{
    fprintf(stderr, "sync_bench: %s: %s\n", what,
            db ? dimple_errmsg(db) : "failed");
    exit(1);
}

static char base[512];

static dimple *open_replica(const char *name)
{
    char conf[700];
    snprintf(conf, sizeof conf, "%s/%s.conf", base, name);
    FILE *f = fopen(conf, "w");
    if (!f)
        die("write conf", NULL);
    fprintf(f,
            "[dimple]\ndatabase = %s/%s.db\n"
            "[storage]\nplugin = file\npath = %s/store\nfsync = off\n",
            base, name, base);
    fclose(f);
    dimple *db = NULL;
    if (dimple_open(&db, conf) != DIMPLE_OK)
        die("open", db);
    int v = 0;
    if (dimple_schema_version(&v, db) != DIMPLE_OK ||
        (v == 0 && dimple_migrate(db, SCHEMA, 1) != DIMPLE_OK))
        die("migrate", db);
    return db;
}

static void key_of(long i, char out[40])
{
    snprintf(out, 40, "0190f5c2-%04lx-7c3d-8e9f-%012lx", (i >> 16) & 0xffff, i);
}

/* The same rows, the same statement, one transaction. */
static double fill(sqlite3 *s, long from, long n)
{
    sqlite3_stmt *st = NULL;
    char key[40], title[40];
    double t0 = now_s();
    sqlite3_exec(s, "BEGIN", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(s, "INSERT INTO todo VALUES(?1, ?2, ?3, ?4)", -1,
                           &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sync_bench: prepare: %s\n", sqlite3_errmsg(s));
        exit(1);
    }
    for (long i = from; i < from + n; i++) {
        key_of(i, key);
        snprintf(title, sizeof title, "buy item %ld", i % 1000000);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, title, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, (int)(i & 1));
        sqlite3_bind_double(st, 4, (double)i * 0.25);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "sync_bench: insert: %s\n", sqlite3_errmsg(s));
            exit(1);
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_exec(s, "COMMIT", NULL, NULL, NULL);
    return now_s() - t0;
}

static double plain_cpu;

static double plain_insert(long n, int round)
{
    char path[700];
    sqlite3 *s = NULL;
    snprintf(path, sizeof path, "%s/plain%d.db", base, round);
    if (sqlite3_open(path, &s) != SQLITE_OK)
        exit(1);
    sqlite3_exec(s, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;", NULL,
                 NULL, NULL);
    sqlite3_exec(s, SCHEMA[0], NULL, NULL, NULL);
    double c0 = cpu_s();
    double t = fill(s, 0, n);
    plain_cpu = cpu_s() - c0;
    sqlite3_close(s);
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

typedef struct rss_track {
    long max_kib;
    long at[4]; /* RSS at 25%, 50%, 75%, 100% of the changes */
    long total;
} rss_track;

static int rss_cb(void *payload, const dimple_sync_progress *p)
{
    rss_track *t = payload;
    long r = rss_kib();
    if (r > t->max_kib)
        t->max_kib = r;
    for (int q = 0; q < 4; q++)
        if (t->at[q] == 0 && (long)p->changes_done >= t->total * (q + 1) / 4)
            t->at[q] = r;
    return 0;
}

/* Child mode: pull everything into replica NAME and report memory. */
static int pull_child(const char *dir, const char *name, long total)
{
    snprintf(base, sizeof base, "%s", dir);
    dimple *db = open_replica(name);
    rss_track t = {0};
    t.total = total;
    long before = rss_kib();
    dimple_sync_options o = {.size = sizeof o,
                             .progress = rss_cb,
                             .payload = &t,
                             .flags = DIMPLE_SYNC_NO_PUSH};
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    double t0 = now_s();
    if (dimple_sync(&st, db, &o) != DIMPLE_OK)
        die("pull (big)", db);
    double secs = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("pull %llu changes in %llu batches: %.2f s, %.0f changes/s\n",
           (unsigned long long)st.changes_pulled,
           (unsigned long long)st.batches_pulled, secs,
           (double)st.changes_pulled / secs);
    printf("memory while pulling: RSS %.1f MiB before, %.1f / %.1f / %.1f / "
           "%.1f MiB at 25/50/75/100%% of the log; peak %.1f MiB (VmHWM of "
           "the process %.1f MiB; target <= 64, flat)\n",
           before / 1024.0, t.at[0] / 1024.0, t.at[1] / 1024.0,
           t.at[2] / 1024.0, t.at[3] / 1024.0, t.max_kib / 1024.0,
           ru.ru_maxrss / 1024.0);
    dimple_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--pull") == 0)
        return pull_child(argv[2], argv[3], atol(argv[4]));
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long big = argc > 2 ? atol(argv[2]) : 1000000;
    const char *root = getenv("DIMPLE_BENCH_DIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/sync-bench-XXXXXX", root ? root : "/tmp");
    if (!mkdtemp(tmpl))
        die("mkdtemp", NULL);
    snprintf(base, sizeof base, "%s", tmpl);
    printf("sync_bench: %ld changes through a file store in %s (fsync off)\n",
           n, base);

    /* 1. throughput. A pushes once; then ROUNDS rounds each time a plain
     * bulk insert into a fresh database and a pull into a fresh replica,
     * back to back, so that the machine's drift hits both sides of a
     * round's ratio; the median round is the figure. */
    enum { ROUNDS = 3 };
    dimple *a = open_replica("a"), *b = NULL;
    double t_ins = fill(dimple_sqlite(a), 0, n);
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    dimple_sync_options push = {.size = sizeof push,
                                .flags = DIMPLE_SYNC_NO_PULL};
    dimple_sync_options pull = {.size = sizeof pull,
                                .flags = DIMPLE_SYNC_NO_PUSH};
    double t0 = now_s(), c0 = cpu_s();
    if (dimple_sync(&st, a, &push) != DIMPLE_OK)
        die("push", a);
    double t_push = now_s() - t0;
    printf("push: %llu changes in %llu batches (%.1f MiB): %.3f s, %.0f "
           "changes/s; tracked insert on A: %.0f rows/s\n",
           (unsigned long long)st.changes_pushed,
           (unsigned long long)st.batches_pushed, st.bytes_pushed / 1048576.0,
           t_push, n / t_push, n / t_ins);
    double wall_ratio[ROUNDS], cpu_ratio[ROUNDS], e2e[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double plain = plain_insert(n, r);
        char name[16];
        snprintf(name, sizeof name, "b%d", r);
        dimple_close(b);
        b = open_replica(name);
        t0 = now_s();
        c0 = cpu_s();
        if (dimple_sync(&st, b, &pull) != DIMPLE_OK)
            die("pull", b);
        double t_pull = now_s() - t0, c_pull = cpu_s() - c0;
        wall_ratio[r] = plain / t_pull;
        cpu_ratio[r] = plain_cpu / c_pull;
        e2e[r] = plain / (t_push + t_pull);
        printf("round %d: pull+apply %llu changes in %llu batches: %.3f s "
               "(%.3f CPU), %.0f changes/s; plain bulk INSERT of the same "
               "rows %.3f s (%.3f CPU); ratio %.2fx wall, %.2fx CPU\n",
               r + 1, (unsigned long long)st.changes_pulled,
               (unsigned long long)st.batches_pulled, t_pull, c_pull,
               n / t_pull, plain, plain_cpu, wall_ratio[r], cpu_ratio[r]);
    }
    qsort(wall_ratio, ROUNDS, sizeof wall_ratio[0], cmp_double);
    qsort(cpu_ratio, ROUNDS, sizeof cpu_ratio[0], cmp_double);
    qsort(e2e, ROUNDS, sizeof e2e[0], cmp_double);
    printf("ratio pull+apply / plain insert, median of %d rounds: %.2fx "
           "wall, %.2fx CPU (range %.2f-%.2fx wall; target >= 0.25x); "
           "push+pull end to end / plain: %.2fx wall\n",
           ROUNDS, wall_ratio[ROUNDS / 2], cpu_ratio[ROUNDS / 2], wall_ratio[0],
           wall_ratio[ROUNDS - 1], e2e[ROUNDS / 2]);

    /* 2. a sync that finds nothing new */
    if (dimple_sync(&st, b, NULL) != DIMPLE_OK)
        die("sync", b);
    printf("nothing-new sync: %llu storage requests with %llu other "
           "author(s), %llu batches read (target: 1 + authors, no "
           "reads)\n",
           (unsigned long long)st.requests, (unsigned long long)st.authors,
           (unsigned long long)st.batches_pulled);
    dimple_close(a);
    dimple_close(b);

    /* 3. memory while pulling a big log, in a fresh process */
    if (big > 0) {
        dimple *c = open_replica("c");
        t0 = now_s();
        fill(dimple_sqlite(c), n, big);
        if (dimple_sync(&st, c, &push) != DIMPLE_OK)
            die("push (big)", c);
        printf("big log: %ld tracked inserts + push of %llu batches: "
               "%.1f s\n",
               big, (unsigned long long)st.batches_pushed, now_s() - t0);
        dimple_close(c);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            char total[32];
            snprintf(total, sizeof total, "%ld", big + n);
            execl("/proc/self/exe", argv[0], "--pull", base, "d", total,
                  (char *)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "sync_bench: the pulling process failed\n");
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "sync_bench: could not remove %s\n", base);
    return 0;
}
