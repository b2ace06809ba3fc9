/*
 * resolver_contract — the convergence rule every resolver must keep, checked
 * on random cells: replicas converge only if resolve() acts as a join.
 *
 *   DIMPLE_PLUGIN_PATH=dir resolver_contract NAME [KEY=VALUE...]
 *
 * With merge(a, b) = the value resolve(current = a, incoming = b) leaves in
 * the cell, the checks are, over random INTEGER, REAL, TEXT, BLOB and NULL
 * cells with random ids and authors:
 *   deterministic  merge(a, b) twice gives the same result;
 *   idempotent     merge(a, a) == a;
 *   commutative    merge(a, b) == merge(b, a);
 *   associative    merge(merge(a, b), c) == merge(a, merge(b, c)).
 * A merged value keeps the greater id of the two, as the core does.
 * The promises a plugin makes in the vtable's flags are checked too:
 *   DIMPLE_RESOLVE_IDS_ONLY     the same answers with the values NULL and
 *                               the authors "";
 *   DIMPLE_RESOLVE_NEWEST_WINS  the incoming version wins whenever its id
 *                               is the greater.
 */
#include "plugin_load.h"
#include "test.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cell {
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
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_cell(cell *c)
{
    memset(c, 0, sizeof *c);
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
    dimple_cell d = {
        "t", "c", c->id, c->author, {c->type, c->i, c->r, c->bytes, c->n}};
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

/* The cell after resolve(current = a, incoming = b); -1 on error. */
static int merge(const cell *a, const cell *b, cell *out)
{
    dimple_cell ca = view(a), cb = view(b);
    dimple_value m = {0};
    int rc = vt->resolve(&m, self, &ca, &cb);

    if (rc == DIMPLE_KEEP_CURRENT) {
        *out = *a;
    } else if (rc == DIMPLE_TAKE_INCOMING) {
        *out = *b;
    } else if (rc == DIMPLE_MERGED) {
        *out = memcmp(a->id, b->id, 16) >= 0 ? *a : *b;
        out->type = m.type;
        out->i = m.i;
        out->r = m.r;
        out->n = m.n > sizeof out->bytes ? sizeof out->bytes : m.n;
        if (m.n)
            memcpy(out->bytes, m.p, out->n);
    } else {
        printf("# resolve returned %d\n", rc);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    dimple_kv conf[16] = {{0}};
    test_host th;
    void *dl;
    int bad[4] = {0}, errors = 0, rounds = 2000;

    if (argc < 2 || argc > 17) {
        fprintf(stderr, "usage: %s RESOLVER [KEY=VALUE...]\n", argv[0]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return 2;
        *eq = '\0';
        conf[i - 2] = (dimple_kv){argv[i], eq + 1, 0};
    }
    const dimple_plugin *p = test_plugin_load(argv[1], &dl);
    test_current_ = argv[1];
    CHECK(p->kind == DIMPLE_KIND_RESOLVER);
    vt = p->vt.resolver;
    test_host_init(&th, "resolver");
    CHECK(vt->create(&self, conf, &th.host) == DIMPLE_OK);
    for (int r = 0; r < rounds && self; r++) {
        cell a, b, c, ab, ab2, ba, aa, ab_c, bc, a_bc;
        random_cell(&a);
        random_cell(&b);
        random_cell(&c);
        if (merge(&a, &b, &ab) || merge(&a, &b, &ab2) || merge(&b, &a, &ba) ||
            merge(&a, &a, &aa) || merge(&ab, &c, &ab_c) || merge(&b, &c, &bc) ||
            merge(&a, &bc, &a_bc)) {
            errors++;
            continue;
        }
        bad[0] += !same(&ab, &ab2);
        bad[1] += !same(&aa, &a);
        bad[2] += !same(&ab, &ba);
        bad[3] += !same(&ab_c, &a_bc);
    }
    /* the optional promises (flags), when the plugin makes them */
    unsigned flags =
        vt->size >= offsetof(dimple_resolver_vtable, flags) + sizeof vt->flags
            ? vt->flags
            : 0;
    int ids_only_bad = 0, newest_bad = 0;
    for (int r = 0; r < rounds && self && flags; r++) {
        cell a, b, out;
        random_cell(&a);
        random_cell(&b);
        if (merge(&a, &b, &out)) {
            errors++;
            continue;
        }
        int took = same(&out, &b) && !same(&out, &a);
        if (flags & DIMPLE_RESOLVE_IDS_ONLY) {
            /* the same answer without the values and authors */
            dimple_cell ca = view(&a), cb = view(&b);
            memset(&ca.value, 0, sizeof ca.value);
            ca.value.type = DIMPLE_NULL;
            cb.value = ca.value;
            ca.author = cb.author = "";
            dimple_value m = {0};
            int rc = vt->resolve(&m, self, &ca, &cb);
            ids_only_bad += (rc == DIMPLE_TAKE_INCOMING) != took;
        }
        if ((flags & DIMPLE_RESOLVE_NEWEST_WINS) && memcmp(b.id, a.id, 16) > 0)
            newest_bad += !took;
    }
    printf("# %d random triples; flags %#x\n", rounds, flags);
    CHECK(ids_only_bad == 0); /* DIMPLE_RESOLVE_IDS_ONLY holds */
    CHECK(newest_bad == 0);   /* DIMPLE_RESOLVE_NEWEST_WINS holds */
    CHECK(errors == 0);
    CHECK(bad[0] == 0); /* deterministic */
    CHECK(bad[1] == 0); /* idempotent */
    CHECK(bad[2] == 0); /* commutative */
    CHECK(bad[3] == 0); /* associative */
    if (self)
        vt->destroy(self);
    dlclose(dl);
    return test_done();
}
