/*
 * test_converge.c — replicas that hold the same set of changes hold the
 * same tables and the same history, whatever the order they got them in.
 *
 * Three replicas (one with a clock 10 minutes fast: beyond the 5-minute
 * skew bound, one 2 minutes slow) make random inserts, updates, deletes and
 * re-inserts on a small key space (so they collide), and pull each other's
 * changes in random partial runs (what sync does per author folder, through
 * dimple_track__each_local / dimple_track__apply). At the end everyone
 * pulls everything: the dumps of the tables and of the history must be
 * identical, and equal to a fresh model replica that applied the union.
 */
#include "plugin_load.h"
#include "util.h"

#include "tmax.h"

/* The test build's hook (core/src/track.c, DIMPLE_TESTING): this replica's
 * wall clock reads ms off, as a skewed device's would. */
void dimple_track__set_clock_offset(dimple *db, int64_t ms);

#define N_REPLICAS 3
#define N_KEYS 6

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

static void random_value(char *out, size_t cap)
{
    switch (rnd() % 6) {
    case 0:
        snprintf(out, cap, "NULL");
        break;
    case 1:
        snprintf(out, cap, "%d", (int)(rnd() % 5));
        break;
    case 2:
        snprintf(out, cap, "%d.5", (int)(rnd() % 5));
        break;
    case 3:
        snprintf(out, cap, "'s%u'", rnd() % 5);
        break;
    case 4:
        snprintf(out, cap, "x'%02x'", rnd() % 4);
        break;
    default:
        snprintf(out, cap, "1.0");
    }
}

static int row_exists(dimple *db, const char *key)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db->sql, "SELECT 1 FROM t WHERE k = ?1", -1, &st, NULL);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return r;
}

static int random_op(dimple *db)
{
    char key[8], v1[32], v2[32];
    snprintf(key, sizeof key, "k%u", rnd() % N_KEYS);
    random_value(v1, sizeof v1);
    random_value(v2, sizeof v2);
    if (!row_exists(db, key))
        return tu_exec(db, "INSERT INTO t VALUES ('%s', %s, %s, %s)", key, v1,
                       v2, rnd() % 2 ? "'z'" : "NULL");
    switch (rnd() % 5) {
    case 0:
        return tu_exec(db, "DELETE FROM t WHERE k = '%s'", key);
    case 1:
        return tu_exec(db, "UPDATE t SET a = %s, b = %s WHERE k = '%s'", v1, v2,
                       key);
    case 2:
        return tu_exec(db, "UPDATE t SET c = %s WHERE k = '%s'", v1, key);
    default:
        return tu_exec(db, "UPDATE t SET a = %s WHERE k = '%s'", v1, key);
    }
}

/* dimple-lww.so's own vtable under another name ("lwwvt") with its
 * resolve() calls counted: replicas configured with it decide every
 * conflict through the resolver vtable. */
static const dimple_resolver_vtable *lww_vt;
static dimple_resolver_vtable lwwvt_vt;
static dimple_plugin lwwvt_plugin;
static long lwwvt_calls;

static int lwwvt_resolve(dimple_value *merged, void *self,
                         const dimple_cell *current,
                         const dimple_cell *incoming)
{
    lwwvt_calls++;
    return lww_vt->resolve(merged, self, current, incoming);
}

static int register_lwwvt(void)
{
    void *dl = NULL; /* kept open: the registered plugin lives in it */
    const dimple_plugin *p = test_plugin_load("lww", &dl);
    if (p->kind != DIMPLE_KIND_RESOLVER)
        return -1;
    lww_vt = p->vt.resolver;
    lwwvt_vt = *lww_vt;
    lwwvt_vt.resolve = lwwvt_resolve;
    lwwvt_plugin = *p;
    lwwvt_plugin.name = "lwwvt";
    lwwvt_plugin.vt.resolver = &lwwvt_vt;
    return dimple_plugin_register(&lwwvt_plugin);
}

/* Open a replica: no resolver loaded (open by path: the core's built-in
 * greater-id rule), the tmax resolver (custom 1) or dimple-lww.so
 * through the vtable (custom 2), both from a config. */
static dimple *open_replica(const char *name, int custom)
{
    if (!custom)
        return tu_open(name, "*");
    char conf[512];
    snprintf(conf, sizeof conf, "%s.conf", tu_path(name));
    FILE *f = fopen(conf, "w");
    if (!f)
        return NULL;
    fprintf(f,
            "[dimple]\ndatabase = %s\ntables = *\n[resolver]\n"
            "plugin = %s\n",
            tu_path(name), custom == 2 ? "lwwvt" : "tmax");
    fclose(f);
    dimple *db = NULL;
    if (dimple_open(&db, conf) != DIMPLE_OK) {
        printf("# open %s: %s\n", conf, dimple_errmsg(db));
        dimple_close(db);
        return NULL;
    }
    sqlite3_exec(db->sql, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    return db;
}

typedef struct replica {
    dimple *db;
    uint8_t cursor[N_REPLICAS][16];
    int have[N_REPLICAS];
} replica;

static int run_seed(unsigned seed, int custom, int *failed_dump)
{
    rng_state = seed * 2654435761u + 1;
    replica r[N_REPLICAS];
    memset(r, 0, sizeof r);
    const char *m[] = {"CREATE TABLE t(k TEXT PRIMARY KEY, a, b, c)"};
    int bad = 0;
    for (int i = 0; i < N_REPLICAS; i++) {
        char name[64];
        snprintf(name, sizeof name, "s%u-r%d.db", seed, i);
        r[i].db = open_replica(name, custom);
        if (!r[i].db || dimple_migrate(r[i].db, m, 1) != DIMPLE_OK)
            return 1;
    }
    /* replica 1 runs 10 minutes fast, replica 2 two minutes slow */
    dimple_track__set_clock_offset(r[1].db, 10 * 60 * 1000);
    dimple_track__set_clock_offset(r[2].db, -2 * 60 * 1000);
    int steps = 20 + (int)(rnd() % 30);
    for (int s = 0; s < steps && !bad; s++) {
        int who = (int)(rnd() % N_REPLICAS);
        if (rnd() % 3) {
            if (random_op(r[who].db) != DIMPLE_OK)
                bad = 1;
        } else {
            int from = (int)(rnd() % N_REPLICAS);
            if (from == who)
                continue;
            long limit = rnd() % 2 ? -1 : (long)(rnd() % 4);
            if (tu_pull(r[who].db, r[from].db, r[who].cursor[from],
                        &r[who].have[from], limit) != 0)
                bad = 1;
        }
    }
    /* everyone pulls everything, in a random order of sources */
    for (int i = 0; i < N_REPLICAS && !bad; i++) {
        int order[N_REPLICAS];
        for (int k = 0; k < N_REPLICAS; k++)
            order[k] = k;
        for (int k = N_REPLICAS - 1; k > 0; k--) {
            int j = (int)(rnd() % (unsigned)(k + 1)), t = order[k];
            order[k] = order[j];
            order[j] = t;
        }
        for (int k = 0; k < N_REPLICAS && !bad; k++) {
            int from = order[k];
            if (from != i && tu_pull(r[i].db, r[from].db, r[i].cursor[from],
                                     &r[i].have[from], -1) != 0)
                bad = 1;
        }
    }
    /* a model: a fresh replica that applies the union, author by author */
    dimple *model = NULL;
    if (!bad) {
        char name[64];
        snprintf(name, sizeof name, "s%u-model.db", seed);
        /* with lwwvt the model has no resolver (the built-in rule): the
         * plugin and the built-in rule must agree */
        model = open_replica(name, custom == 2 ? 0 : custom);
        if (!model || dimple_migrate(model, m, 1) != DIMPLE_OK)
            bad = 1;
        for (int k = N_REPLICAS - 1; k >= 0 && !bad; k--) {
            uint8_t cur[16];
            int have = 0;
            if (tu_pull(model, r[k].db, cur, &have, -1) != 0)
                bad = 1;
        }
    }
    if (!bad) {
        char *d0 = tu_dump(r[0].db, "t"), *h0 = tu_history(r[0].db);
        char *dm = tu_dump(model, "t"), *hm = tu_history(model);
        for (int i = 1; i < N_REPLICAS; i++) {
            char *d = tu_dump(r[i].db, "t"), *h = tu_history(r[i].db);
            if (strcmp(d, d0) != 0 || strcmp(h, h0) != 0) {
                if (!*failed_dump) {
                    printf("# seed %u: replica 0 vs %d\n# r0:\n%s# r%d:\n%s",
                           seed, i, d0, i, d);
                    *failed_dump = 1;
                }
                bad = 1;
            }
            free(d);
            free(h);
        }
        /* the model holds the same changes: same tables. Its history has
         * the same changes too; the model's own author has none. */
        if (strcmp(dm, d0) != 0 || strcmp(hm, h0) != 0) {
            if (!*failed_dump) {
                printf("# seed %u: model differs\n# r0:\n%s# model:\n%s", seed,
                       d0, dm);
                *failed_dump = 1;
            }
            bad = 1;
        }
        free(d0);
        free(h0);
        free(dm);
        free(hm);
    }
    for (int i = 0; i < N_REPLICAS; i++)
        dimple_close(r[i].db);
    dimple_close(model);
    for (int i = 0; i < N_REPLICAS; i++) {
        char name[64];
        snprintf(name, sizeof name, "s%u-r%d.db", seed, i);
        unlink(tu_path(name));
        snprintf(name, sizeof name, "s%u-r%d.db-wal", seed, i);
        unlink(tu_path(name));
        snprintf(name, sizeof name, "s%u-r%d.db-shm", seed, i);
        unlink(tu_path(name));
    }
    return bad;
}

TEST(random_convergence)
{
    const char *env = getenv("DIMPLE_TRACK_SEEDS");
    unsigned n = env ? (unsigned)atoi(env) : 150;
    unsigned failed = 0;
    int shown = 0;
    for (unsigned seed = 1; seed <= n; seed++) {
        if (run_seed(seed, 0, &shown)) {
            failed++;
            printf("# seed %u diverged\n", seed);
        }
    }
    printf("# %u seeds, %u diverged\n", n, failed);
    CHECK(failed == 0);
}

/* The same with a resolver plugin ("greater integer wins"): a join, so
 * replicas converge too; local writes that lose are repaired at once. */
TEST(random_convergence_custom_resolver)
{
    unsigned n = 40, failed = 0;
    int shown = 0;
    for (unsigned seed = 1001; seed < 1001 + n; seed++) {
        if (run_seed(seed, 1, &shown)) {
            failed++;
            printf("# seed %u diverged\n", seed);
        }
    }
    printf("# %u seeds with tmax, %u diverged\n", n, failed);
    CHECK(failed == 0);
}

/* dimple-lww.so called through the resolver vtable gives exactly what
 * the core's built-in rule gives to a database that has no resolver
 * loaded (the model replica): one rule, whichever decides. */
TEST(lww_plugin_through_vtable_equals_builtin_rule)
{
    unsigned n = 40, failed = 0;
    int shown = 0;
    for (unsigned seed = 2001; seed < 2001 + n; seed++) {
        if (run_seed(seed, 2, &shown)) {
            failed++;
            printf("# seed %u diverged\n", seed);
        }
    }
    printf("# %u seeds, dimple-lww.so called %ld times, %u diverged\n", n,
           lwwvt_calls, failed);
    CHECK(lwwvt_calls > 0);
    CHECK(failed == 0);
}

int main(void)
{
    tu_init();
    if (register_lwwvt() != DIMPLE_OK) {
        printf("Bail out! cannot load dimple-lww.so from DIMPLE_PLUGIN_PATH\n");
        return 1;
    }
    if (dimple_plugin_register(&tmax_plugin) != DIMPLE_OK) {
        printf("Bail out! cannot register the test resolver\n");
        return 1;
    }
    RUN(random_convergence);
    RUN(random_convergence_custom_resolver);
    RUN(lww_plugin_through_vtable_equals_builtin_rule);
    tu_cleanup();
    return test_done();
}
