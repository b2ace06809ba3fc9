/*
 * dimple-resolver-contract — the convergence rule every resolver must keep,
 * checked on random cells: replicas converge only if resolve() acts as a
 * join. Installed with DimpleDb (in <prefix>/bin):
 *
 *   dimple-resolver-contract ./build/dimple-max.so [KEY=VALUE...]
 *   DIMPLE_PLUGIN_PATH=build dimple-resolver-contract max [KEY=VALUE...]
 *
 * With merge(a, b) = the value resolve(current = a, incoming = b) leaves in
 * the cell, the checks are, over random INTEGER, REAL, TEXT, BLOB and NULL
 * cells with random ids and authors, in tables and columns whose names
 * change from one triple to the next:
 *   deterministic  merge(a, b) twice gives the same result;
 *   idempotent     merge(a, a) == a;
 *   commutative    merge(a, b) == merge(b, a);
 *   associative    merge(merge(a, b), c) == merge(a, merge(b, c)).
 * resolve() must answer DIMPLE_KEEP_CURRENT or DIMPLE_TAKE_INCOMING: the core
 * refuses DIMPLE_MERGED (DIMPLE_EPLUGIN), so the contract fails it too.
 * The promises a plugin makes in the vtable's flags are checked too:
 *   DIMPLE_RESOLVE_IDS_ONLY     the same answers with the values NULL and
 *                               the authors "";
 *   DIMPLE_RESOLVE_NEWEST_WINS  the incoming version wins whenever its id
 *                               is the greater.
 * A failed check names the property and prints the first counterexample.
 * Exits 0 when every check passed, 1 when one failed or could not run, 2 on
 * a usage error.
 */
#include "plugin_load.h"
#include "test.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cell {
    const char *table, *column;
    uint8_t id[16];
    char author[37];
    dimple_type type;
    int64_t i;
    double r;
    unsigned char bytes[16];
    size_t n;
} cell;

static const dimple_resolver_vtable *vt;
static void *self;
static test_host th;
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Names a resolver might special-case, or trip on (spaces, quotes, UTF-8):
 * a rule keyed on them must still be a join in every table. */
static const char *const tables[] = {"t",    "notes",   "Orders", "a b",
                                     "x\"y", "Ünïcode", "items",  "t2"};
static const char *const columns[] = {"c",   "title", "Qty",  "id",
                                      "a b", "x'y",   "größe"};

static void random_cell(cell *c, const char *table, const char *column)
{
    memset(c, 0, sizeof *c);
    c->table = table;
    c->column = column;
    for (int i = 0; i < 16; i++)
        c->id[i] = (uint8_t)next();
    c->id[0] = (uint8_t)(next() % 4); /* collide often on the first bytes */
    snprintf(c->author, sizeof c->author, "0190f5c2-7a8b-7c3d-8e9f-%012x",
             (unsigned)(next() % 3));
    c->type = (dimple_type)(1 + next() % 5);
    c->i = (int64_t)(next() % 7) - 3;
    c->r = (double)(next() % 7) / 2.0;
    c->n = next() % 4;
    for (size_t i = 0; i < c->n; i++)
        c->bytes[i] = (unsigned char)('a' + next() % 3);
}

static dimple_cell view(const cell *c)
{
    dimple_cell d = {c->table,
                     c->column,
                     c->id,
                     c->author,
                     {c->type, c->i, c->r, c->bytes, c->n}};
    return d;
}

static int same(const cell *a, const cell *b)
{
    if (memcmp(a->id, b->id, 16) != 0 || a->type != b->type)
        return 0;
    switch (a->type) {
    case DIMPLE_INTEGER:
        return a->i == b->i;
    case DIMPLE_REAL:
        return memcmp(&a->r, &b->r, sizeof a->r) == 0;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        return a->n == b->n && memcmp(a->bytes, b->bytes, a->n) == 0;
    default:
        return 1;
    }
}

static int n_merged, n_errors;

/* The cell after resolve(current = a, incoming = b); -1 when resolve()
 * answered something the core refuses (an error, DIMPLE_MERGED, ...). */
static int merge(const cell *a, const cell *b, cell *out)
{
    dimple_cell ca = view(a), cb = view(b);
    dimple_value m = {0};
    int rc;

    test_host_clear(&th);
    rc = vt->resolve(&m, self, &ca, &cb);
    if (rc == DIMPLE_KEEP_CURRENT) {
        *out = *a;
    } else if (rc == DIMPLE_TAKE_INCOMING) {
        *out = *b;
    } else if (rc == DIMPLE_MERGED) {
        if (n_merged++ == 0)
            printf("# resolve answered DIMPLE_MERGED on %s.%s: the core "
                   "refuses it (DIMPLE_EPLUGIN)\n",
                   a->table, a->column);
        return -1;
    } else {
        if (n_errors++ == 0)
            printf("# resolve returned %d (%s) on %s.%s: %s\n", rc,
                   test_code_name(rc), a->table, a->column,
                   th.last_msg[0] ? th.last_msg : "(no message)");
        return -1;
    }
    return 0;
}

static void describe(const char *name, const cell *c)
{
    printf("#     %s = %s.%s id %02x%02x%02x%02x... author ...%s ", name,
           c->table, c->column, c->id[0], c->id[1], c->id[2], c->id[3],
           c->author + 24);
    switch (c->type) {
    case DIMPLE_INTEGER:
        printf("INTEGER %lld\n", (long long)c->i);
        break;
    case DIMPLE_REAL:
        printf("REAL %g\n", c->r);
        break;
    case DIMPLE_TEXT:
        printf("TEXT '%.*s'\n", (int)c->n, (const char *)c->bytes);
        break;
    case DIMPLE_BLOB:
        printf("BLOB %zu bytes\n", c->n);
        break;
    default:
        printf("NULL\n");
    }
}

/* One property: its name, how often it broke, the first counterexample. */
typedef struct property {
    const char *name, *law;
    int broken;
    cell ex[3];
} property;

static void broke(property *p, const cell *a, const cell *b, const cell *c)
{
    if (p->broken++ == 0) {
        p->ex[0] = *a;
        p->ex[1] = *b;
        if (c)
            p->ex[2] = *c;
    }
}

static void report(const property *p, int rounds, int ran)
{
    char desc[256];
    if (!ran) {
        snprintf(desc, sizeof desc, "%s: not run (%s)", p->name,
                 self ? "resolve() never answered" : "no instance");
        test_check_(0, desc, __FILE__, __LINE__);
        return;
    }
    snprintf(desc, sizeof desc, "%s: %s", p->name, p->law);
    if (!test_check_(p->broken == 0, desc, __FILE__, __LINE__)) {
        printf("#   %s broke in %d of %d rounds; the first:\n", p->name,
               p->broken, rounds);
        describe("a", &p->ex[0]);
        describe("b", &p->ex[1]);
        if (p->ex[2].table)
            describe("c", &p->ex[2]);
    }
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s RESOLVER [KEY=VALUE...]\n"
            "  RESOLVER   the plugin's file (./build/dimple-NAME.so), or "
            "NAME\n"
            "             looked up as dimple-NAME.so in $DIMPLE_PLUGIN_PATH\n"
            "  KEY=VALUE  the plugin's configuration (its section's keys)\n"
            "Checks that resolve() is a join (deterministic, idempotent, "
            "commutative,\nassociative) and prints TAP; exits non-zero when "
            "a check fails.\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    dimple_kv conf[16] = {{0}};
    void *dl;
    int rounds = 2000, ran = 0, flag_ran = 0, rc;
    unsigned flags = 0;
    property det = {"deterministic",
                    "merge(a, b) twice gives the same",
                    0,
                    {{0}}},
             idem = {"idempotent", "merge(a, a) == a", 0, {{0}}},
             comm = {"commutative", "merge(a, b) == merge(b, a)", 0, {{0}}},
             assoc = {"associative",
                      "merge(merge(a, b), c) == merge(a, merge(b, c))",
                      0,
                      {{0}}},
             ids_only = {"DIMPLE_RESOLVE_IDS_ONLY",
                         "the same answers without values and authors",
                         0,
                         {{0}}},
             newest = {"DIMPLE_RESOLVE_NEWEST_WINS",
                       "the incoming version wins when its id is greater",
                       0,
                       {{0}}};

    if (argc < 2 || argc > 17 || argv[1][0] == '-')
        return usage(argv[0]);
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            fprintf(stderr, "%s: expected KEY=VALUE, got '%s'\n", argv[0],
                    argv[i]);
            return 2;
        }
        *eq = '\0';
        conf[i - 2] = (dimple_kv){argv[i], eq + 1, 0};
    }
    const dimple_plugin *p = test_plugin_load(argv[1], &dl);
    test_current_ = p->name;
    if (!test_check_(p->kind == DIMPLE_KIND_RESOLVER && p->vt.resolver &&
                         p->vt.resolver->create && p->vt.resolver->resolve,
                     "a resolver plugin with create and resolve", __FILE__,
                     __LINE__))
        goto report;
    vt = p->vt.resolver;
    test_host_init(&th, "resolver");
    rc = vt->create(&self, conf, &th.host);
    if (!test_check_(rc == DIMPLE_OK, "create an instance", __FILE__,
                     __LINE__)) {
        /* The plugin's own words say what to fix in the conf. */
        printf("#   create failed with %s (%d): %s\n", test_code_name(rc), rc,
               th.last_msg[0] ? th.last_msg
                              : "(the plugin reported no message)");
        fprintf(stderr, "%s: create failed with %s: %s\n", p->name,
                test_code_name(rc), th.last_msg);
        self = NULL;
        goto report;
    }
    for (int r = 0; r < rounds; r++) {
        const char *t = tables[next() % (sizeof tables / sizeof tables[0])];
        const char *col =
            columns[next() % (sizeof columns / sizeof columns[0])];
        cell a, b, c, ab, ab2, ba, aa, ab_c, bc, a_bc;
        random_cell(&a, t, col);
        random_cell(&b, t, col);
        random_cell(&c, t, col);
        if (merge(&a, &b, &ab) || merge(&a, &b, &ab2) || merge(&b, &a, &ba) ||
            merge(&a, &a, &aa) || merge(&ab, &c, &ab_c) || merge(&b, &c, &bc) ||
            merge(&a, &bc, &a_bc))
            continue;
        ran++;
        if (!same(&ab, &ab2))
            broke(&det, &a, &b, NULL);
        if (!same(&aa, &a))
            broke(&idem, &a, &a, NULL);
        if (!same(&ab, &ba))
            broke(&comm, &a, &b, NULL);
        if (!same(&ab_c, &a_bc))
            broke(&assoc, &a, &b, &c);
    }
    /* the optional promises (flags), when the plugin makes them */
    if (vt->size >= offsetof(dimple_resolver_vtable, flags) + sizeof vt->flags)
        flags = vt->flags;
    for (int r = 0; r < rounds && flags; r++) {
        const char *t = tables[next() % (sizeof tables / sizeof tables[0])];
        const char *col =
            columns[next() % (sizeof columns / sizeof columns[0])];
        cell a, b, out;
        random_cell(&a, t, col);
        random_cell(&b, t, col);
        if (merge(&a, &b, &out))
            continue;
        flag_ran++;
        int took = same(&out, &b) && !same(&out, &a);
        if (flags & DIMPLE_RESOLVE_IDS_ONLY) {
            /* the same answer without the values and authors */
            dimple_cell ca = view(&a), cb = view(&b);
            memset(&ca.value, 0, sizeof ca.value);
            ca.value.type = DIMPLE_NULL;
            cb.value = ca.value;
            ca.author = cb.author = "";
            dimple_value m = {0};
            int v = vt->resolve(&m, self, &ca, &cb);
            if ((v == DIMPLE_TAKE_INCOMING) != took)
                broke(&ids_only, &a, &b, NULL);
        }
        if ((flags & DIMPLE_RESOLVE_NEWEST_WINS) &&
            memcmp(b.id, a.id, 16) > 0 && !took)
            broke(&newest, &a, &b, NULL);
    }
    printf("# %d random triples over %zu tables and %zu columns; flags %#x\n",
           rounds, sizeof tables / sizeof tables[0],
           sizeof columns / sizeof columns[0], flags);
    test_current_ = p->name;
    if (!test_check_(n_merged == 0,
                     "answers only DIMPLE_KEEP_CURRENT or DIMPLE_TAKE_INCOMING "
                     "(the core refuses DIMPLE_MERGED)",
                     __FILE__, __LINE__))
        printf("#   DIMPLE_MERGED answered %d times\n", n_merged);
    if (!test_check_(n_errors == 0, "resolve() never fails on valid cells",
                     __FILE__, __LINE__))
        printf("#   %d errors\n", n_errors);
report:
    report(&det, rounds, ran);
    report(&idem, rounds, ran);
    report(&comm, rounds, ran);
    report(&assoc, rounds, ran);
    if (flags & DIMPLE_RESOLVE_IDS_ONLY)
        report(&ids_only, rounds, flag_ran);
    if (flags & DIMPLE_RESOLVE_NEWEST_WINS)
        report(&newest, rounds, flag_ran);
    if (self)
        vt->destroy(self);
    dlclose(dl);
    return test_done();
}
