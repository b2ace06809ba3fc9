/*
 * max.c — an example custom resolver: the greater value wins, ties by id.
 *
 * Each cell becomes a "max register": whatever order replicas receive the
 * versions of a cell in, every replica keeps the version that is greatest
 * in this total order:
 *
 *   1. by value, in SQLite's sort order: NULL < numbers < TEXT < BLOB;
 *      numbers compare by value (INTEGER 2 < REAL 2.5 < INTEGER 3),
 *      TEXT and BLOB bytewise (a prefix sorts first);
 *   2. equal values: the greater change id (UUIDv7) wins.
 *
 * Taking the maximum of a total order is a join: deterministic (depends on
 * the two versions only), commutative, associative and idempotent (the
 * same change seen twice compares equal and the current one is kept). That
 * is the rule every resolver must keep for replicas to converge
 * (<dimple/plugin.h>, resolve()). See README.md for when to use it.
 *
 * Keys: none.
 */
#include <dimple/plugin.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int type_rank(dimple_type t)
{
    switch (t) {
    case DIMPLE_NULL:
        return 0;
    case DIMPLE_INTEGER:
    case DIMPLE_REAL:
        return 1;
    case DIMPLE_TEXT:
        return 2;
    default:
        return 3; /* BLOB */
    }
}

/* INTEGER vs REAL without losing precision on large integers. */
static int cmp_int_real(int64_t i, double r)
{
    if (isnan(r))
        return 1;
    if (r >= 9223372036854775808.0)
        return -1;
    if (r < -9223372036854775808.0)
        return 1;
    double fl = floor(r);
    int64_t ri = (int64_t)fl;
    if (i != ri)
        return i < ri ? -1 : 1;
    return fl < r ? -1 : 0; /* i == floor(r): r is bigger if fractional */
}

static int cmp_values(const dimple_value *a, const dimple_value *b)
{
    int ra = type_rank(a->type), rb = type_rank(b->type);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case 0:
        return 0;
    case 1:
        if (a->type == DIMPLE_INTEGER && b->type == DIMPLE_INTEGER)
            return (a->i > b->i) - (a->i < b->i);
        if (a->type == DIMPLE_REAL && b->type == DIMPLE_REAL)
            return (a->r > b->r) - (a->r < b->r);
        if (a->type == DIMPLE_INTEGER)
            return cmp_int_real(a->i, b->r);
        return -cmp_int_real(b->i, a->r);
    default: {
        size_t n = a->n < b->n ? a->n : b->n;
        int c = n ? memcmp(a->p, b->p, n) : 0;
        if (c)
            return c < 0 ? -1 : 1;
        return (a->n > b->n) - (a->n < b->n);
    }
    }
}

static int max_create(void **self, const dimple_kv *conf,
                      const dimple_host *host)
{
    static const char *const known[] = {NULL};
    int rc = dimple_kv_check(host, conf, known);
    if (rc)
        return rc;
    *self = calloc(1, 1);
    return *self ? DIMPLE_OK
                 : dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
}

static void max_destroy(void *self)
{
    free(self);
}

static int max_resolve(dimple_value *merged, void *self,
                       const dimple_cell *current, const dimple_cell *incoming)
{
    (void)self;
    (void)merged;
    int c = cmp_values(&incoming->value, &current->value);
    if (c == 0)
        c = memcmp(incoming->id, current->id, 16);
    return c > 0 ? DIMPLE_TAKE_INCOMING : DIMPLE_KEEP_CURRENT;
}

static const dimple_resolver_vtable max_vtable = {
    .size = sizeof(dimple_resolver_vtable),
    .create = max_create,
    .destroy = max_destroy,
    .resolve = max_resolve,
    /* no DIMPLE_RESOLVE_* promises: the rule reads the values, and a new
     * local write loses to a greater value already held */
    .flags = 0,
};

static const dimple_plugin max_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_RESOLVER,
    .name = "max",
    .version = "1.0.0",
    .description = "example resolver: the greater value wins, ties by id",
    .vt.resolver = &max_vtable,
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &max_plugin;
}
