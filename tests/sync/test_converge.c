/*
 * test_converge.c — the convergence proof: per seed, 3 or 4 replicas on one
 * memory store do random inserts, updates, deletes and resurrections on a
 * small key space (so the same cells are edited concurrently), with random
 * partial syncs (push only, pull only, a few batches at a time, tiny
 * batches) and skewed clocks. After a final full sync every replica must
 * hold identical tables and an identical history, equal to a model that
 * applies the union of every replica's own changes with the LWW rule of
 * docs/tracking.md (last write wins per cell), written independently of the core's merge code:
 *   a row exists iff its newest insert/update id > its newest tombstone id;
 *   each column holds the value of the newest insert/update that wrote it
 *   (NULL if none did).
 * SYNC_SEEDS=N (default 100) sets the number of seeds; SYNC_SEED=S runs one.
 */
#include "sync_util.h"
#include "track.h"

/* The test build's hook (core/src/track.c, DIMPLE_TESTING): this replica's
 * wall clock reads ms off, as a skewed device's would. */
void dimple_track__set_clock_offset(dimple *db, int64_t ms);

#define MAX_R 4

static char *dir;
static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* ---------------------------------------------------------- the model */

typedef struct mval {
    dimple_type type;
    int64_t i;
    double r;
    unsigned char *p;
    size_t n;
} mval;

typedef struct mcell {
    char name[16];
    uint8_t id[16];
    mval v;
} mcell;

typedef struct mrow {
    char table[8];
    mval key[2];
    size_t n_key;
    uint8_t dead[16], alive[16];
    int has_dead, has_alive;
    mcell cells[4];
    size_t n_cells;
} mrow;

typedef struct model {
    mrow rows[64];
    size_t n;
    size_t changes;
    int overflow;
} model;

static void mval_set(mval *m, const dimple_value *v)
{
    free(m->p);
    memset(m, 0, sizeof *m);
    m->type = v->type;
    m->i = v->i;
    m->r = v->r;
    if (v->type == DIMPLE_TEXT || v->type == DIMPLE_BLOB) {
        m->n = v->n;
        m->p = malloc(v->n ? v->n : 1);
        if (v->n)
            memcpy(m->p, v->p, v->n);
    }
}

static int mval_eq(const mval *m, const dimple_value *v)
{
    if (m->type != v->type)
        return 0;
    switch (v->type) {
    case DIMPLE_INTEGER:
        return m->i == v->i;
    case DIMPLE_REAL:
        return memcmp(&m->r, &v->r, sizeof m->r) == 0;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        return m->n == v->n && (!v->n || memcmp(m->p, v->p, v->n) == 0);
    default:
        return 1;
    }
}

static dimple_value mval_get(const mval *m)
{
    dimple_value v = {
        .type = m->type, .i = m->i, .r = m->r, .p = m->p, .n = m->n};
    if (m->type == 0)
        v.type = DIMPLE_NULL;
    return v;
}

static int model_cb(void *payload, const dimple_change *c)
{
    model *m = payload;
    mrow *row = NULL;
    m->changes++;
    for (size_t i = 0; i < m->n && !row; i++) {
        mrow *r = &m->rows[i];
        if (strcmp(r->table, c->table) || r->n_key != c->n_key)
            continue;
        int eq = 1;
        for (size_t k = 0; k < c->n_key; k++)
            eq &= mval_eq(&r->key[k], &c->key[k]);
        if (eq)
            row = r;
    }
    if (!row) {
        if (m->n == 64 || c->n_key > 2) {
            m->overflow = 1;
            return 0;
        }
        row = &m->rows[m->n++];
        memset(row, 0, sizeof *row);
        snprintf(row->table, sizeof row->table, "%s", c->table);
        row->n_key = c->n_key;
        for (size_t k = 0; k < c->n_key; k++)
            mval_set(&row->key[k], &c->key[k]);
    }
    if (c->op == DIMPLE_OP_DELETE) {
        if (!row->has_dead || memcmp(c->id, row->dead, 16) > 0) {
            memcpy(row->dead, c->id, 16);
            row->has_dead = 1;
        }
        return 0;
    }
    if (!row->has_alive || memcmp(c->id, row->alive, 16) > 0) {
        memcpy(row->alive, c->id, 16);
        row->has_alive = 1;
    }
    for (size_t j = 0; j < c->n_cols; j++) {
        mcell *cell = NULL;
        for (size_t x = 0; x < row->n_cells && !cell; x++)
            if (strcmp(row->cells[x].name, c->col_names[j]) == 0)
                cell = &row->cells[x];
        if (!cell) {
            if (row->n_cells == 4) {
                m->overflow = 1;
                continue;
            }
            cell = &row->cells[row->n_cells++];
            memset(cell, 0, sizeof *cell);
            snprintf(cell->name, sizeof cell->name, "%s", c->col_names[j]);
        } else if (memcmp(c->id, cell->id, 16) <= 0) {
            continue;
        }
        memcpy(cell->id, c->id, 16);
        mval_set(&cell->v, &c->cols[j]);
    }
    return 0;
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        for (size_t k = 0; k < m->rows[i].n_key; k++)
            free(m->rows[i].key[k].p);
        for (size_t x = 0; x < m->rows[i].n_cells; x++)
            free(m->rows[i].cells[x].v.p);
    }
    memset(m, 0, sizeof *m);
}

/* The model's tables, written into an untracked database and dumped the
 * same way as the replicas. */
static char *model_dump(model *m, int seed)
{
    char path[512];
    dimple *db = NULL;
    dimple_options o = {.size = sizeof o, .tables = ""};
    char *out = NULL;
    snprintf(path, sizeof path, "%s/model-%d.db", dir, seed);
    if (dimple_open_path(&db, path, &o) != DIMPLE_OK ||
        dimple_migrate(db, SCHEMA, 1) != DIMPLE_OK) {
        printf("# model db: %s\n", dimple_errmsg(db));
        goto out;
    }
    for (size_t i = 0; i < m->n; i++) {
        mrow *r = &m->rows[i];
        if (!r->has_alive || (r->has_dead && memcmp(r->alive, r->dead, 16) < 0))
            continue;
        int is_t = strcmp(r->table, "t") == 0;
        const char *cols_t[] = {"a", "b", "c"}, *cols_p[] = {"v"};
        const char **cols = is_t ? cols_t : cols_p;
        size_t nc = is_t ? 3 : 1;
        dimple_value params[5];
        size_t np = 0;
        for (size_t k = 0; k < r->n_key; k++)
            params[np++] = mval_get(&r->key[k]);
        for (size_t c = 0; c < nc; c++) {
            dimple_value v = dimple_value_null();
            for (size_t x = 0; x < r->n_cells; x++)
                if (strcmp(r->cells[x].name, cols[c]) == 0)
                    v = mval_get(&r->cells[x].v);
            params[np++] = v;
        }
        const char *sql = is_t ? "INSERT INTO t VALUES(?1, ?2, ?3, ?4)"
                               : "INSERT INTO p VALUES(?1, ?2, ?3)";
        if (dimple_exec(db, sql, params, np, NULL, NULL) != DIMPLE_OK)
            printf("# model insert: %s\n", dimple_errmsg(db));
    }
    out = su_dump(db);
out:
    dimple_close(db);
    unlink(path);
    snprintf(path, sizeof path, "%s/model-%d.db-wal", dir, seed);
    unlink(path);
    snprintf(path, sizeof path, "%s/model-%d.db-shm", dir, seed);
    unlink(path);
    return out;
}

/* --------------------------------------------------------- the edits */

static const char *const TEXTS[] = {"",
                                    "x",
                                    "h\xc3\xa9llo",
                                    "\xe2\x82\xac\xf0\x9f\x98\x80",
                                    "same",
                                    "a longer text value"};

static dimple_value rand_value(unsigned char *blob)
{
    switch (pick(9)) {
    case 0:
        return dimple_value_int((int64_t)pick(5));
    case 1:
        return dimple_value_int(pick(2) ? INT64_MAX : INT64_MIN);
    case 2:
        return dimple_value_int(-(int64_t)(rnd() >> 1));
    case 3: {
        static const double r[] = {1.0, 0.1, -2.5, 1e300, -0.0, 3.0};
        return dimple_value_real(r[pick(6)]);
    }
    case 4:
    case 5:
        return dimple_value_text(TEXTS[pick(6)]);
    case 6: {
        size_t n = pick(6);
        for (size_t i = 0; i < n; i++)
            blob[i] = (unsigned char)rnd();
        return dimple_value_blob(blob, n);
    }
    default:
        return dimple_value_null();
    }
}

static int row_exists(dimple *db, int is_t, const dimple_value *key)
{
    int found = 0;
    char *j = NULL;
    const char *sql = is_t ? "SELECT 1 FROM t WHERE k = ?1"
                           : "SELECT 1 FROM p WHERE x = ?1 AND y = ?2";
    if (dimple_json_query(&j, db, sql, key, is_t ? 1 : 2) == DIMPLE_OK)
        found = j && strcmp(j, "[]") != 0;
    dimple_free(j);
    return found;
}

static int random_edit(dimple *db)
{
    unsigned char b1[8], b2[8], b3[8];
    static const char *const KEYS[] = {"k0", "k1", "k2", "k3", "k4", "k5"};
    static const char *const YS[] = {"a", "b"};
    int is_t = pick(10) < 7;
    dimple_value key[2];
    if (is_t) {
        key[0] = dimple_value_text(KEYS[pick(6)]);
    } else {
        key[0] = dimple_value_int(pick(3));
        key[1] = dimple_value_text(YS[pick(2)]);
    }
    if (pick(20) == 0) /* one statement, many rows */
        return dimple_exec(db, "UPDATE t SET c = coalesce(c, 0) || 'x'", NULL,
                           0, NULL, NULL);
    int exists = row_exists(db, is_t, key);
    if (!exists) {
        dimple_value p[4] = {key[0], key[1]};
        if (is_t) {
            p[1] = rand_value(b1);
            p[2] = rand_value(b2);
            p[3] = rand_value(b3);
            return dimple_exec(db, "INSERT INTO t VALUES(?1, ?2, ?3, ?4)", p, 4,
                               NULL, NULL);
        }
        p[2] = rand_value(b1);
        return dimple_exec(db, "INSERT INTO p VALUES(?1, ?2, ?3)", p, 3, NULL,
                           NULL);
    }
    if (pick(10) < 4)
        return dimple_exec(db,
                           is_t ? "DELETE FROM t WHERE k = ?1"
                                : "DELETE FROM p WHERE x = ?1 AND y = ?2",
                           key, is_t ? 1 : 2, NULL, NULL);
    if (!is_t) {
        dimple_value p[3] = {rand_value(b1), key[0], key[1]};
        return dimple_exec(db, "UPDATE p SET v = ?1 WHERE x = ?2 AND y = ?3", p,
                           3, NULL, NULL);
    }
    static const char *const UPD[] = {
        "UPDATE t SET a = ?2 WHERE k = ?1", "UPDATE t SET b = ?2 WHERE k = ?1",
        "UPDATE t SET c = ?2 WHERE k = ?1",
        "UPDATE t SET a = ?2, c = ?3 WHERE k = ?1",
        "UPDATE t SET a = ?2, b = ?3, c = ?4 WHERE k = ?1"};
    unsigned u = pick(5);
    dimple_value p[4] = {key[0], rand_value(b1), rand_value(b2),
                         rand_value(b3)};
    size_t np = u < 3 ? 2 : u == 3 ? 3 : 4;
    return dimple_exec(db, UPD[u], p, np, NULL, NULL);
}

/* ------------------------------------------------------------- a seed */

static int run_seed(int seed, int *checks_failed)
{
    dimple *r[MAX_R] = {0};
    int nr = 3 + (seed % 3 == 0);
    int ok = 1;
    char store[32];
    rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 12345;
    snprintf(store, sizeof store, "cv%d", seed);
    for (int i = 0; i < nr; i++) {
        char name[32], extra[128];
        snprintf(name, sizeof name, "s%d-r%d", seed, i);
        snprintf(extra, sizeof extra, "[sync]\nbatch_max_changes = %u\n%s",
                 1 + pick(6), seed % 4 == 1 ? "" : "");
        char st[96];
        snprintf(st, sizeof st, "plugin = memory\nname = %s", store);
        r[i] = su_open(dir, name, st, "%s", extra);
        if (!r[i]) {
            ok = 0;
            goto out;
        }
        /* skewed clocks: some replicas run behind or ahead, one of them
         * beyond the skew bound on some seeds */
        if (seed % 2) {
            static const int64_t off[] = {0, -30000, 20000, 600000, -5000};
            dimple_track__set_clock_offset(r[i], off[pick(5)]);
        }
    }
    int rounds = 4 + (int)pick(4);
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < nr; i++) {
            int edits = (int)pick(5);
            for (int e = 0; e < edits; e++)
                if (random_edit(r[i]) != DIMPLE_OK) {
                    printf("# seed %d: edit: %s\n", seed, dimple_errmsg(r[i]));
                    ok = 0;
                }
        }
        int syncs = (int)pick(5);
        for (int s = 0; s < syncs; s++) {
            static const unsigned flags[] = {0, DIMPLE_SYNC_NO_PUSH,
                                             DIMPLE_SYNC_NO_PULL};
            int who = (int)pick((unsigned)nr);
            if (su_sync(r[who], flags[pick(3)], pick(3), NULL) != DIMPLE_OK) {
                printf("# seed %d: sync: %s\n", seed, dimple_errmsg(r[who]));
                ok = 0;
            }
        }
    }
    /* final: everyone pushes, then everyone pulls everything */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nr; i++)
            if (su_sync(r[i], 0, 0, NULL) != DIMPLE_OK) {
                printf("# seed %d: final sync: %s\n", seed,
                       dimple_errmsg(r[i]));
                ok = 0;
            }

    /* the model: the union of every replica's own changes */
    model m;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < nr; i++)
        dimple_track__each_local(r[i], NULL, model_cb, &m);
    char *want = model_dump(&m, seed);
    size_t union_n = m.changes;
    if (m.overflow)
        ok = 0;
    model_free(&m);

    char *d0 = su_dump(r[0]);
    size_t h0n = 0;
    char *h0 = su_history(r[0], &h0n);
    if (!want || !d0 || strcmp(want, d0) != 0) {
        printf("# seed %d: replica 0 differs from the model\n# model: %s\n"
               "# r0:    %s\n",
               seed, want ? want : "?", d0 ? d0 : "?");
        ok = 0;
    }
    if (h0n != union_n) {
        printf("# seed %d: history holds %zu changes, the union %zu\n", seed,
               h0n, union_n);
        ok = 0;
    }
    for (int i = 1; i < nr; i++) {
        char *d = su_dump(r[i]), *h = su_history(r[i], NULL);
        if (!d || strcmp(d, d0 ? d0 : "") != 0) {
            printf("# seed %d: replica %d table dump differs\n# r0: %s\n"
                   "# r%d: %s\n",
                   seed, i, d0 ? d0 : "?", i, d ? d : "?");
            ok = 0;
        }
        if (!h || strcmp(h, h0 ? h0 : "") != 0) {
            printf("# seed %d: replica %d history differs\n", seed, i);
            ok = 0;
        }
        free(d);
        free(h);
    }
    free(want);
    free(d0);
    free(h0);
out:
    for (int i = 0; i < nr; i++)
        dimple_close(r[i]);
    if (!ok)
        (*checks_failed)++;
    return ok;
}

int main(void)
{
    int seeds = 100, first = 0, failed = 0;
    const char *e = getenv("SYNC_SEEDS");
    if (e && atoi(e) > 0)
        seeds = atoi(e);
    e = getenv("SYNC_SEED");
    if (e) {
        first = atoi(e);
        seeds = 1;
    }
    dir = su_tmpdir("converge");
    if (!dir)
        return 1;
    test_current_ = "convergence";
    for (int s = first; s < first + seeds; s++) {
        char what[64];
        snprintf(what, sizeof what, "seed %d converges to the model", s);
        test_check_(run_seed(s, &failed), what, __FILE__, __LINE__);
    }
    printf("# %d of %d seeds failed\n", failed, seeds);
    su_rmrf(dir);
    free(dir);
    return test_done();
}
