/*
 * test_resolver.c — the resolver plugins, loaded as the core loads them:
 * lww (the default: the greater id wins) and the SDK example max (the
 * greater value wins, ties by id). Both must keep the rule every resolver
 * must keep for replicas to converge: folding the versions of a cell in
 * any order, any number of times, ends with the same winner.
 */
#include "clock.h"
#include "loader.h"
#include "plugin_load.h"
#include "sync_util.h"

static char *dir;
static uint64_t rng = 99;

static unsigned pick(unsigned n)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (unsigned)((rng * 0x2545F4914F6CDD1DULL) % n);
}

typedef struct version {
    uint8_t id[16];
    dimple_value v;
    char text[8];
} version;

static void random_version(version *x, unsigned seq)
{
    memset(x, 0, sizeof *x);
    x->id[0] = 0x01;
    x->id[6] = 0x70;
    x->id[8] = 0x80;
    x->id[14] = (uint8_t)(seq >> 8);
    x->id[15] = (uint8_t)seq;
    switch (pick(6)) {
    case 0:
        x->v = dimple_value_int((int64_t)pick(4) - 2);
        break;
    case 1:
        x->v = dimple_value_real((double)pick(5) * 0.5 - 1);
        break;
    case 2:
        x->v = dimple_value_int(pick(2) ? INT64_MAX : INT64_MIN);
        break;
    case 3:
    case 4: {
        size_t n = pick(3);
        for (size_t i = 0; i < n; i++)
            x->text[i] = (char)('a' + pick(2));
        x->v = pick(2) ? dimple_value_text(x->text)
                       : dimple_value_blob(x->text, n);
        x->v.n = n;
        break;
    }
    default:
        x->v = dimple_value_null();
    }
}

/* Fold versions in the given order; returns the winner's index. */
static int fold(dimple_instance *r, version *vs, const int *order, int n)
{
    int cur = order[0];
    for (int i = 1; i < n; i++) {
        dimple_cell a = {"t", "c", vs[cur].id, "x", vs[cur].v};
        dimple_cell b = {"t", "c", vs[order[i]].id, "y", vs[order[i]].v};
        dimple_value merged;
        int rc = r->vt.resolver.resolve(&merged, r->self, &a, &b);
        if (rc == DIMPLE_TAKE_INCOMING)
            cur = order[i];
        else if (rc != DIMPLE_KEEP_CURRENT)
            return -1;
    }
    return cur;
}

static void check_join(dimple_instance *r, const char *name)
{
    int commutative = 1, idempotent = 1, order_free = 1;
    for (int trial = 0; trial < 300; trial++) {
        version vs[6];
        int n = 2 + (int)pick(5);
        for (int i = 0; i < n; i++)
            random_version(&vs[i], (unsigned)(trial * 8 + i + 1));
        int ab[2] = {0, 1}, ba[2] = {1, 0}, aa[2] = {0, 0};
        if (fold(r, vs, ab, 2) != fold(r, vs, ba, 2))
            commutative = 0;
        if (fold(r, vs, aa, 2) != 0)
            idempotent = 0;
        /* any order, with repeats: the same winner */
        int order[12], want = -2;
        for (int k = 0; k < 6; k++) {
            int m = 0;
            for (int i = 0; i < n; i++)
                order[m++] = i;
            for (int i = 0; i < 3; i++)
                order[m++] = (int)pick((unsigned)n); /* seen again */
            for (int i = m - 1; i > 0; i--) {
                int j = (int)pick((unsigned)i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            int w = fold(r, vs, order, m);
            if (want == -2)
                want = w;
            else if (w != want)
                order_free = 0;
        }
    }
    printf("# %s\n", name);
    CHECK(commutative);
    CHECK(idempotent);
    CHECK(order_free);
}

static int resolve(dimple_instance *r, dimple_value cur, unsigned cid,
                   dimple_value inc, unsigned iid)
{
    version a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.id[15] = (uint8_t)cid;
    b.id[15] = (uint8_t)iid;
    dimple_cell ca = {"t", "c", a.id, "x", cur},
                cb = {"t", "c", b.id, "y", inc};
    dimple_value merged;
    return r->vt.resolver.resolve(&merged, r->self, &ca, &cb);
}

TEST(lww_takes_the_greater_id)
{
    dimple *db = NULL;
    dimple_instance *lww = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/lww.db", dir);
    CHECK_RC(dimple_open_path(&db, path, NULL), DIMPLE_OK);
    CHECK_RC(dimple_loader__instance(db, "resolver", DIMPLE_KIND_RESOLVER,
                                     "lww", NULL, &lww),
             DIMPLE_OK);
    if (!lww) {
        printf("# %s\n", dimple_errmsg(db));
        goto out;
    }
    CHECK(resolve(lww, dimple_value_int(5), 1, dimple_value_int(1), 2) ==
          DIMPLE_TAKE_INCOMING);
    CHECK(resolve(lww, dimple_value_int(5), 2, dimple_value_int(9), 1) ==
          DIMPLE_KEEP_CURRENT);
    CHECK(resolve(lww, dimple_value_int(5), 2, dimple_value_int(5), 2) ==
          DIMPLE_KEEP_CURRENT);
    check_join(lww, "lww is a join");
    /* unknown keys are refused with the line */
    dimple_instance *bad = NULL;
    dimple_kv kv[] = {{"colour", "blue", 7}, {NULL, NULL, 0}};
    CHECK(dimple_loader__instance(db, "resolver", DIMPLE_KIND_RESOLVER, "lww",
                                  kv, &bad) == DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(db), "colour");
out:
    dimple_loader__destroy(lww);
    dimple_close(db);
}

TEST(max_example_keeps_the_greatest_value)
{
    dimple *db =
        su_open(dir, "max", "plugin = memory", "[resolver]\nplugin = max\n");
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_STR(dimple_plugin_in_use(db, "resolver"), "max");
    dimple_instance *r = db->resolver;
    /* values first, in SQLite's order; ids only break ties */
    CHECK(resolve(r, dimple_value_int(5), 2, dimple_value_int(3), 9) ==
          DIMPLE_KEEP_CURRENT);
    CHECK(resolve(r, dimple_value_int(3), 9, dimple_value_int(5), 2) ==
          DIMPLE_TAKE_INCOMING);
    CHECK(resolve(r, dimple_value_int(2), 1, dimple_value_real(2.5), 0) ==
          DIMPLE_TAKE_INCOMING);
    CHECK(resolve(r, dimple_value_real(2.5), 1, dimple_value_int(3), 0) ==
          DIMPLE_TAKE_INCOMING);
    CHECK(resolve(r, dimple_value_int(INT64_MAX), 1,
                  dimple_value_real(9223372036854775807.0),
                  0) == DIMPLE_TAKE_INCOMING); /* the REAL is 2^63: greater */
    CHECK(resolve(r, dimple_value_null(), 5, dimple_value_int(-9), 1) ==
          DIMPLE_TAKE_INCOMING);
    CHECK(resolve(r, dimple_value_int(99), 5, dimple_value_text("a"), 1) ==
          DIMPLE_TAKE_INCOMING);
    CHECK(resolve(r, dimple_value_text("b"), 5, dimple_value_blob("a", 1), 1) ==
          DIMPLE_TAKE_INCOMING);
    CHECK(resolve(r, dimple_value_text("ab"), 1, dimple_value_text("a"), 5) ==
          DIMPLE_KEEP_CURRENT);
    CHECK(resolve(r, dimple_value_int(7), 1, dimple_value_real(7.0), 5) ==
          DIMPLE_TAKE_INCOMING); /* equal values: the greater id */
    CHECK(resolve(r, dimple_value_int(7), 5, dimple_value_real(7.0), 1) ==
          DIMPLE_KEEP_CURRENT);
    check_join(r, "max is a join");
    dimple_close(db);
}

/* dimple-lww.so itself, registered under its own name "lww" in front of
 * the file (registered plugins are found first) with its resolve()
 * counted: what sync loads by default is then this wrapper, so the
 * counter shows whether conflicts go through the resolver vtable. */
static const dimple_resolver_vtable *lww_real;
static dimple_resolver_vtable lww_counted_vt;
static dimple_plugin lww_counted;
static long lww_calls;

static int lww_counted_resolve(dimple_value *merged, void *self,
                               const dimple_cell *current,
                               const dimple_cell *incoming)
{
    lww_calls++;
    return lww_real->resolve(merged, self, current, incoming);
}

static int register_counted_lww(void)
{
    void *dl = NULL; /* kept open: the registered plugin lives in it */
    const dimple_plugin *p = test_plugin_load("lww", &dl);
    if (p->kind != DIMPLE_KIND_RESOLVER)
        return -1;
    lww_real = p->vt.resolver;
    lww_counted_vt = *lww_real;
    lww_counted_vt.resolve = lww_counted_resolve;
    lww_counted = *p;
    lww_counted.vt.resolver = &lww_counted_vt;
    return dimple_plugin_register(&lww_counted);
}

/* Two devices edit the same cell; with no [resolver] section sync uses
 * lww, and the conflict is decided by dimple-lww.so's resolve(): the
 * newer edit wins on both devices. */
TEST(default_sync_decides_conflicts_through_dimple_lww)
{
    if (register_counted_lww() != DIMPLE_OK) {
        printf("# cannot load dimple-lww.so from DIMPLE_PLUGIN_PATH\n");
        CHECK(0);
        return;
    }
    CHECK(lww_counted_vt.flags & DIMPLE_RESOLVE_IDS_ONLY);
    CHECK(lww_counted_vt.flags & DIMPLE_RESOLVE_NEWEST_WINS);
    char st[256];
    snprintf(st, sizeof st, "plugin = file\npath = %s/lwwstore", dir);
    dimple *a = su_open(dir, "lwwa", st, NULL);
    dimple *b = su_open(dir, "lwwb", st, NULL);
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('k1', 'first', 1, NULL)"),
             DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    CHECK_STR(dimple_plugin_in_use(a, "resolver"), "lww");
    long before = lww_calls;
    /* a edits first, b later: b's change has the greater id */
    CHECK_RC(su_exec(a, "UPDATE t SET a = 'from a', b = 2 WHERE k = 'k1'"),
             DIMPLE_OK);
    usleep(2000);
    CHECK_RC(su_exec(b, "UPDATE t SET a = 'from b' WHERE k = 'k1'"), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK); /* a pulls b's: conflict */
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK); /* b pulls a's: conflict */
    printf("# dimple-lww.so resolve() called %ld times\n", lww_calls - before);
    CHECK(lww_calls - before >= 2);
    char *da = su_dump(a), *db_ = su_dump(b);
    CHECK(da && db_ && strcmp(da, db_) == 0);
    CHECK(da && strstr(da, "from b") && !strstr(da, "from a"));
    CHECK(da && strstr(da, "2")); /* a's other cell had no rival: kept */
    free(da);
    free(db_);
out:
    dimple_close(a);
    dimple_close(b);
}

/* The cell b of row k1 as history_as_of(now) sees it, as text. */
static int asof_b_cb(void *payload, size_t n, const char *const *names,
                     const dimple_value *vals)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], "b") == 0 && vals[i].type == DIMPLE_INTEGER)
            snprintf(payload, 32, "%lld", (long long)vals[i].i);
    return 0;
}

static void asof_b(dimple *db, char out[32])
{
    dimple_value key = dimple_value_text("k1");
    snprintf(out, 32, "(none)");
    if (dimple_history_as_of(db, "t", &key, 1, dimple_clock__now_ms() + 1000,
                             asof_b_cb, out) != DIMPLE_OK)
        printf("# as of: %s\n", dimple_errmsg(db));
}

/* History as of a time replays the log through the same resolver as the
 * merge: with max, the greater value is what the table holds even though
 * the smaller one was written later (replaying by id alone would show
 * the later one). */
TEST(history_as_of_follows_the_resolver)
{
    char st[256];
    snprintf(st, sizeof st, "plugin = file\npath = %s/asofstore", dir);
    dimple *a = su_open(dir, "asofa", st, "[resolver]\nplugin = max\n");
    dimple *b = su_open(dir, "asofb", st, "[resolver]\nplugin = max\n");
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('k1', 'x', 1, NULL)"), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    /* a writes 9 first, b writes 3 later (the greater id) */
    CHECK_RC(su_exec(a, "UPDATE t SET b = 9 WHERE k = 'k1'"), DIMPLE_OK);
    usleep(2000);
    CHECK_RC(su_exec(b, "UPDATE t SET b = 3 WHERE k = 'k1'"), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    char *da = su_dump(a), *db_ = su_dump(b);
    CHECK(da && db_ && strcmp(da, db_) == 0);
    CHECK(da && strstr(da, "\"b\":9"));
    free(da);
    free(db_);
    char va[32], vb[32];
    asof_b(a, va);
    asof_b(b, vb);
    CHECK_STR(va, "9");
    CHECK_STR(vb, "9");
out:
    dimple_close(a);
    dimple_close(b);
}

/* Log lines kept by a test logger. */
typedef struct loglines {
    char text[4096];
    int warnings;
} loglines;

static void keep_log(void *payload, int level, const char *source,
                     const char *msg)
{
    loglines *l = payload;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%d %s: %s\n", level, source,
             msg);
    l->warnings += level == DIMPLE_LOG_WARN;
}

/* A local write that a pulled change beats before it ever left the
 * device is lost: the logger hears it at warning level, with the table,
 * key, column and winning author, and without the values. */
TEST(a_lost_local_write_is_logged)
{
    char st[256];
    snprintf(st, sizeof st, "plugin = file\npath = %s/loststore", dir);
    dimple *a = su_open(dir, "losta", st, NULL);
    dimple *b = su_open(dir, "lostb", st, NULL);
    loglines la = {{0}, 0}, lb = {{0}, 0};
    CHECK(a && b);
    if (!a || !b)
        goto out;
    dimple_logger_set(a, keep_log, &la);
    dimple_logger_set(b, keep_log, &lb);
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('k1', 'x', 1, NULL)"), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    CHECK(lb.warnings == 0); /* nothing of b's was overwritten */
    /* b writes first and keeps it; a writes later and syncs first */
    CHECK_RC(su_exec(b, "UPDATE t SET a = 'secret-b' WHERE k = 'k1'"),
             DIMPLE_OK);
    usleep(2000);
    CHECK_RC(su_exec(a, "UPDATE t SET a = 'secret-a' WHERE k = 'k1'"),
             DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    printf("# b's log: %s", lb.text);
    CHECK(lb.warnings == 1);
    CHECK_CONTAINS(lb.text, "2 change tracking: ");
    CHECK_CONTAINS(lb.text, "table \"t\"");
    CHECK_CONTAINS(lb.text, "key [\"k1\"]");
    CHECK_CONTAINS(lb.text, "column \"a\"");
    CHECK_CONTAINS(lb.text, "a local write lost to a pulled change");
    CHECK_CONTAINS(lb.text, dimple_author_id(a));
    CHECK(!strstr(lb.text, "secret"));
    /* a's write won: a pulling b's older one says nothing */
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK(la.warnings == 0);
    char *da = su_dump(a), *db_ = su_dump(b);
    CHECK(da && db_ && strcmp(da, db_) == 0 && strstr(da, "secret-a"));
    free(da);
    free(db_);
    /* a change that was pushed before: overwriting it is plain sync */
    CHECK_RC(su_exec(b, "UPDATE t SET b = 2 WHERE k = 'k1'"), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_exec(a, "UPDATE t SET b = 3 WHERE k = 'k1'"), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    CHECK(lb.warnings == 1);
out:
    dimple_close(a);
    dimple_close(b);
}

int main(void)
{
    dir = su_tmpdir("resolver");
    if (!dir)
        return 1;
    RUN(lww_takes_the_greater_id);
    RUN(max_example_keeps_the_greatest_value);
    RUN(default_sync_decides_conflicts_through_dimple_lww);
    RUN(history_as_of_follows_the_resolver);
    RUN(a_lost_local_write_is_logged);
    su_rmrf(dir);
    free(dir);
    return test_done();
}
