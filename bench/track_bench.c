/*
 * track_bench.c — what change tracking costs on the write path.
 *
 *   track_bench [ROWS] [TXN]
 *
 * Runs the same prepared statements with the same transaction sizes on a
 * plain SQLite database and on a dimple database tracking the table (both
 * WAL, foreign_keys on, in DIMPLE_BENCH_DIR or /tmp), in the same process,
 * one after the other, and prints rows/s and tracked/plain for: insert,
 * one-column update, delete, and point reads; plus three floors: a table
 * whose triggers do nothing (the floor of any trigger-based capture), one
 * whose triggers append a row of just (op, key) to a log table in SQL
 * (the floor of any capture that writes a row per change), and the same
 * with the key passed through a C function (the floor of any capture whose
 * trigger calls C, as a clock must: SQLite then journals each statement,
 * see docs/tracking.md, Performance). Three rounds on
 * fresh databases; the median round per operation is the figure (the
 * machine's drift moves a single run's plain rate by 1.5x). The first
 * round also prints the change log's bytes per changed cell beyond the
 * value itself, the per-cell clock's size after a fold, the cost of that
 * fold, and the rate at which a replica applies every change.
 */
#include "track.h"

#include <dimple.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, sqlite3 *s)
{
    fprintf(stderr, "track_bench: %s: %s\n", what, s ? sqlite3_errmsg(s) : "");
    exit(1);
}

static void exec(sqlite3 *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "track_bench: %s: %s\n", sql, err);
        exit(1);
    }
}

static const char *schema =
    "CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT, done INTEGER,"
    " score REAL)";

static void key_of(long i, char out[40])
{
    /* UUID-shaped text keys, in insertion order like UUIDv7 */
    snprintf(out, 40, "0190f5c2-%04lx-7c3d-8e9f-%012lx", (i >> 16) & 0xffff,
             i & 0xffffffffffffL);
}

typedef enum { OP_INSERT, OP_UPDATE, OP_DELETE, OP_READ } op_kind;
static const char *const names[] = {"insert", "update 1 col", "delete",
                                    "read by key"};

static double run(sqlite3 *s, op_kind op, long rows, long txn)
{
    static const char *const sql[] = {
        "INSERT INTO todo(id, title, done, score) VALUES (?1, ?2, ?3, ?4)",
        "UPDATE todo SET done = ?2 WHERE id = ?1",
        "DELETE FROM todo WHERE id = ?1",
        "SELECT title, done, score FROM todo WHERE id = ?1"};
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s, sql[op], -1, &st, NULL) != SQLITE_OK)
        die("prepare", s);
    char key[40], title[64];
    double t0 = now_s();
    for (long i = 0; i < rows; i++) {
        if (op != OP_READ && i % txn == 0)
            exec(s, "BEGIN");
        key_of(i, key);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (op == OP_INSERT) {
            snprintf(title, sizeof title, "buy item number %ld", i);
            sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, i & 1);
            sqlite3_bind_double(st, 4, (double)i / 7.0);
        } else if (op == OP_UPDATE) {
            sqlite3_bind_int64(st, 2, 2 + (i & 1));
        }
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            die(sql[op], s);
        sqlite3_reset(st);
        if (op != OP_READ && (i % txn == txn - 1 || i == rows - 1))
            exec(s, "COMMIT");
    }
    double dt = now_s() - t0;
    sqlite3_finalize(st);
    return (double)rows / dt;
}

/* SQLite's record size of a value (what the plain table stores). */
static long value_bytes(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: {
        sqlite3_int64 v = sqlite3_column_int64(st, i);
        if (v == 0 || v == 1)
            return 0;
        if (v >= -128 && v < 128)
            return 1;
        if (v >= -32768 && v < 32768)
            return 2;
        if (v >= -8388608 && v < 8388608)
            return 3;
        if (v >= -2147483648LL && v < 2147483648LL)
            return 4;
        return v >= -(1LL << 47) && v < (1LL << 47) ? 6 : 8;
    }
    case SQLITE_FLOAT:
        return 8;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
        return sqlite3_column_bytes(st, i);
    default:
        return 0;
    }
}

static long table_bytes(sqlite3 *s, const char *name)
{
    sqlite3_stmt *st = NULL;
    long n = 0;
    if (sqlite3_prepare_v2(s,
                           "SELECT coalesce(sum(pgsize - unused), 0) FROM"
                           " dbstat WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        die("dbstat", s);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

typedef struct apply_ctx {
    dimple *db;
    long n;
    /* batch mode: deep copies of up to `batch` changes, applied together
     * (what sync does with a pulled batch) */
    size_t batch, nb;
    dimple_change *ch;
    dimple_value *vals;
    size_t n_vals, cap_vals;
    char **bytes;
    size_t n_bytes;
} apply_ctx;

static int flush_batch(apply_ctx *a)
{
    int rc = a->nb ? dimple_track__apply(a->db, a->ch, a->nb) : 0;
    for (size_t i = 0; i < a->n_bytes; i++)
        free(a->bytes[i]);
    a->n_bytes = 0;
    a->nb = 0;
    a->n_vals = 0;
    return rc;
}

static int apply_one(void *payload, const dimple_change *c)
{
    apply_ctx *a = payload;
    a->n++;
    if (a->batch <= 1)
        return dimple_track__apply(a->db, c, 1);
    /* values of this change: key + cols, copied (pointers are per row) */
    size_t need = c->n_key + c->n_cols;
    if (a->n_vals + need > a->cap_vals || a->nb == a->batch) {
        int rc = flush_batch(a);
        if (rc)
            return rc;
    }
    dimple_value *v = a->vals + a->n_vals;
    for (size_t i = 0; i < need; i++) {
        v[i] = i < c->n_key ? c->key[i] : c->cols[i - c->n_key];
        if (v[i].type == DIMPLE_TEXT || v[i].type == DIMPLE_BLOB) {
            char *p = malloc(v[i].n ? v[i].n : 1);
            memcpy(p, v[i].p, v[i].n);
            a->bytes[a->n_bytes++] = p;
            v[i].p = p;
        }
    }
    dimple_change *d = &a->ch[a->nb++];
    *d = *c;
    d->key = v;
    d->cols = v + c->n_key;
    /* col_names point at the handle's interned names: stable */
    a->n_vals += need;
    return 0;
}

/* DIMPLE_BENCH_DIR (or /tmp)/track_bench_NAME.db into out, with the
 * database and its -wal and -shm files removed. */
static void fresh_path(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("DIMPLE_BENCH_DIR");
    snprintf(out, cap, "%s/track_bench_%s.db", dir ? dir : "/tmp", name);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s%s", out, suffix[i]);
        unlink(p);
    }
}

/* The C-call floor's function: returns its argument. */
static void pass_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3_result_value(ctx, argv[0]);
}

/* A fresh plain SQLite database set up as dimple sets up its own (WAL,
 * foreign keys), with the schema and then extra (may be NULL). */
static sqlite3 *open_plain(const char *name, const char *extra)
{
    char path[600];
    fresh_path(name, path, sizeof path);
    sqlite3 *s = NULL;
    if (sqlite3_open(path, &s) != SQLITE_OK)
        die("open", s);
    exec(s, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON");
    exec(s, schema);
    if (extra)
        exec(s, extra);
    return s;
}

/* A fresh dimple database tracking every table, with the schema. */
static dimple *open_tracked(const char *name)
{
    char path[600];
    fresh_path(name, path, sizeof path);
    dimple *db = NULL;
    dimple_options o = {.size = sizeof o, .tables = "*"};
    const char *m[] = {schema};
    if (dimple_open_path(&db, path, &o) != DIMPLE_OK ||
        dimple_migrate(db, m, 1) != DIMPLE_OK) {
        fprintf(stderr, "track_bench: %s\n", dimple_errmsg(db));
        exit(1);
    }
    return db;
}

/* The merge path: a fresh replica applies every change of db (what a sync
 * pull does), one per call and then 1000 per call (a sync pull applies a
 * whole batch per call), against the plain insert rate of this run. */
static int bench_apply(dimple *db, double plain_insert)
{
    for (int mode = 0; mode < 2; mode++) {
        dimple *rep = open_tracked("replica");
        apply_ctx ac;
        memset(&ac, 0, sizeof ac);
        ac.db = rep;
        ac.batch = mode ? 1000 : 1;
        if (mode) {
            ac.cap_vals = 1000 * 8;
            ac.vals = calloc(ac.cap_vals, sizeof *ac.vals);
            ac.ch = calloc(1000, sizeof *ac.ch);
            ac.bytes = calloc(ac.cap_vals, sizeof *ac.bytes);
        }
        double t0 = now_s();
        exec(dimple_sqlite(rep), "BEGIN");
        int rc = dimple_track__each_local(db, NULL, apply_one, &ac);
        if (rc == DIMPLE_OK)
            rc = flush_batch(&ac);
        if (rc != DIMPLE_OK) {
            fprintf(stderr, "track_bench: apply: %s\n", dimple_errmsg(rep));
            return 1;
        }
        exec(dimple_sqlite(rep), "COMMIT");
        double dt = now_s() - t0;
        printf("  apply on a replica, %s: %ld changes (insert, update,"
               " delete of each row) at %.0f changes/s = %.2fx the plain"
               " insert rate\n",
               mode ? "1000 per call" : "one per call", ac.n, (double)ac.n / dt,
               ((double)ac.n / dt) / plain_insert);
        free(ac.vals);
        free(ac.ch);
        free(ac.bytes);
        dimple_close(rep);
    }
    return 0;
}

/* One round: fresh databases, every operation on each; ratio[op] gets
 * tracked/plain. The first round also prints the log's size, the fold and
 * the apply measurements. */
static int bench_round(long rows, long txn, int round, double ratio_out[4],
                       double floor_out[4])
{
    sqlite3 *plain = open_plain("plain", NULL);
    /* the floor of any trigger-based capture: triggers that do nothing */
    sqlite3 *empty = open_plain(
        "empty", "CREATE TRIGGER ti AFTER INSERT ON todo BEGIN SELECT 1; END;"
                 "CREATE TRIGGER tu AFTER UPDATE ON todo BEGIN SELECT 1; END;"
                 "CREATE TRIGGER td AFTER DELETE ON todo BEGIN SELECT 1; END");
    /* the floor of any capture that appends one row per change: triggers
     * that log just the op and the key, in SQL, under an automatic rowid
     * (cheaper than anything that records values or a clock) */
    sqlite3 *logrow = open_plain(
        "logrow", "CREATE TABLE log(seq INTEGER PRIMARY KEY, op INTEGER, k);"
                  "CREATE TRIGGER ti AFTER INSERT ON todo BEGIN"
                  " INSERT INTO log(op, k) VALUES (0, NEW.id); END;"
                  "CREATE TRIGGER tu AFTER UPDATE ON todo BEGIN"
                  " INSERT INTO log(op, k) VALUES (1, NEW.id); END;"
                  "CREATE TRIGGER td AFTER DELETE ON todo BEGIN"
                  " INSERT INTO log(op, k) VALUES (2, OLD.id); END");
    /* the floor of any capture whose trigger calls C (a clock, or
     * anything packed, needs that): the same log row, its key passed
     * through a C function that returns it. Calling a function makes
     * SQLite give every write statement a statement journal, which costs
     * the most in one large transaction (docs/tracking.md, Performance) */
    sqlite3 *ccall = open_plain(
        "ccall", "CREATE TABLE log(seq INTEGER PRIMARY KEY, op INTEGER, k);"
                 "CREATE TRIGGER ti AFTER INSERT ON todo BEGIN"
                 " INSERT INTO log(op, k) VALUES (0, pass(NEW.id)); END;"
                 "CREATE TRIGGER tu AFTER UPDATE ON todo BEGIN"
                 " INSERT INTO log(op, k) VALUES (1, pass(NEW.id)); END;"
                 "CREATE TRIGGER td AFTER DELETE ON todo BEGIN"
                 " INSERT INTO log(op, k) VALUES (2, pass(OLD.id)); END");
    if (sqlite3_create_function_v2(ccall, "pass", 1, SQLITE_UTF8, NULL, pass_fn,
                                   NULL, NULL, NULL) != SQLITE_OK)
        die("create function", ccall);
    dimple *db = open_tracked("tracked");
    sqlite3 *tracked = dimple_sqlite(db);
    /* the same settings on every database, to see what they change:
     * TRACK_BENCH_SQL="PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536" */
    const char *extra = getenv("TRACK_BENCH_SQL");
    if (extra) {
        sqlite3 *all[] = {plain, empty, logrow, ccall, tracked};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            exec(all[i], extra);
    }

    printf("round %d\n", round + 1);
    op_kind order[] = {OP_INSERT, OP_READ, OP_UPDATE, OP_DELETE};
    double worst = 1e9, plain_insert = 1;
    for (size_t k = 0; k < 4; k++) {
        op_kind op = order[k];
        double p = run(plain, op, rows, txn);
        double f = run(empty, op, rows, txn);
        double l = run(logrow, op, rows, txn);
        double c = run(ccall, op, rows, txn);
        double t = run(tracked, op, rows, txn);
        double ratio = t / p;
        ratio_out[op] = ratio;
        floor_out[op] = c / p;
        if (op == OP_INSERT)
            plain_insert = p;
        if (op != OP_READ && ratio < worst)
            worst = ratio;
        printf("  %-13s plain %8.0f/s  floors: empty trigger %.2fx,"
               " log-row trigger %.2fx, C-call trigger %.2fx;  tracked"
               " %8.0f/s  tracked/plain %.2fx\n",
               names[op], p, f / p, l / p, c / p, t, ratio);
        if (op == OP_UPDATE) {
            /* the log so far: inserts + updates, before the deletes */
            long log_bytes = table_bytes(tracked, "_dimple_log");
            sqlite3_stmt *st = NULL;
            long cells = 0, vbytes = 0, keybytes = 0;
            /* every value that was written: the inserted rows' 3 columns
             * and the updated column, with their record sizes */
            if (sqlite3_prepare_v2(plain,
                                   "SELECT id, title, done, score FROM todo",
                                   -1, &st, NULL) != SQLITE_OK)
                die("select", plain);
            long i = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                keybytes += 2 * value_bytes(st, 0); /* insert + update */
                /* title, score, done as inserted (0 or 1: 0 bytes) and
                 * done as updated (2 or 3: 1 byte) */
                vbytes += value_bytes(st, 1) + value_bytes(st, 3) +
                          value_bytes(st, 2);
                cells += 4;
                i++;
            }
            sqlite3_finalize(st);
            if (round == 0) {
                printf("  change log: %ld bytes for %ld changes, %ld changed"
                       " cells\n",
                       log_bytes, 2 * i, cells);
                printf("    bytes per changed cell beyond the value: %.1f"
                       " (key bytes counted as overhead), %.1f (key as a"
                       " value)\n",
                       (double)(log_bytes - vbytes) / (double)cells,
                       (double)(log_bytes - vbytes - keybytes) / (double)cells);
            }
            double t0 = now_s();
            exec(tracked, "BEGIN");
            if (dimple_track__fold(db) != DIMPLE_OK) {
                fprintf(stderr, "track_bench: fold: %s\n", dimple_errmsg(db));
                return 1;
            }
            exec(tracked, "COMMIT");
            double dt = now_s() - t0;
            if (round == 0)
                printf(
                    "  fold of the per-cell clock: %.0f changes/s; clock"
                    " table %ld bytes (%.1f per row)\n",
                    (double)(2 * i) / dt, table_bytes(tracked, "_dimple_rows"),
                    (double)table_bytes(tracked, "_dimple_rows") / (double)i);
        }
    }
    printf("  worst write ratio %.2fx\n", worst);
    /* the apply measurements: first round only */
    int rc = round == 0 ? bench_apply(db, plain_insert) : 0;
    sqlite3_close(plain);
    sqlite3_close(empty);
    sqlite3_close(logrow);
    sqlite3_close(ccall);
    dimple_close(db);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 200000;
    long txn = argc > 2 ? atol(argv[2]) : rows;
    if (rows <= 0 || txn <= 0) {
        fprintf(stderr, "usage: track_bench [ROWS] [TXN]\n");
        return 2;
    }
    enum { ROUNDS = 3 };
    printf("track_bench: %ld rows of 4 columns (TEXT uuid key), %ld rows"
           " per transaction, SQLite %s, %d rounds on fresh databases\n",
           rows, txn, sqlite3_libversion(), ROUNDS);
    double r[4][ROUNDS], fl[4][ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        double one[4], floor[4];
        if (bench_round(rows, txn, k, one, floor))
            return 1;
        for (int op = 0; op < 4; op++) {
            r[op][k] = one[op];
            fl[op][k] = floor[op];
        }
    }
    double worst = 1e9;
    printf("median of %d rounds, tracked/plain:", ROUNDS);
    for (int op = 0; op < 4; op++) {
        qsort(r[op], ROUNDS, sizeof r[op][0], cmp_double);
        double med = r[op][ROUNDS / 2];
        printf("  %s %.2fx (%.2f-%.2f)", names[op], med, r[op][0],
               r[op][ROUNDS - 1]);
        if (op != OP_READ && med < worst)
            worst = med;
    }
    printf("\n  worst write ratio (median) %.2fx (target >= 0.50x)\n", worst);
    printf("  C-call trigger floor (median):");
    for (int op = 0; op < 3; op++) {
        qsort(fl[op], ROUNDS, sizeof fl[op][0], cmp_double);
        printf("  %s %.2fx", names[op], fl[op][ROUNDS / 2]);
    }
    printf("\n");
    return 0;
}
