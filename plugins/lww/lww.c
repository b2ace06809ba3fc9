/*
 * dimple-lww — the default resolver: last writer wins, per cell.
 *
 * Change ids are UUIDv7 used as a hybrid logical clock (docs/tracking.md,
 * "Clock"): their
 * byte order is time order and no two distinct changes share one. So "the
 * greater id wins" is a total order on versions of a cell, and taking the
 * maximum is a join: deterministic, commutative, associative, idempotent.
 * Replicas that hold the same set of changes therefore hold the same
 * tables, whatever order the changes arrived in. Tombstones order against
 * cell changes by id in the core's merge path (docs/tracking.md, "The merge
 * rule"), not here.
 *
 * Keys: none (the section takes only `plugin = lww`).
 */
#include <dimple/plugin.h>

#include <stdlib.h>
#include <string.h>

typedef struct lww_self {
    int unused;
} lww_self;

static const char *const known_keys[] = {NULL};

static int lww_create(void **self, const dimple_kv *conf,
                      const dimple_host *host)
{
    int rc = dimple_kv_check(host, conf, known_keys);
    if (rc)
        return rc;
    lww_self *s = calloc(1, sizeof *s);
    if (!s)
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    *self = s;
    return DIMPLE_OK;
}

static void lww_destroy(void *self)
{
    free(self);
}

static int lww_resolve(dimple_value *merged, void *self,
                       const dimple_cell *current, const dimple_cell *incoming)
{
    (void)self;
    (void)merged;
    /* Equal ids are the same change seen twice: keep (idempotent). */
    return memcmp(incoming->id, current->id, 16) > 0 ? DIMPLE_TAKE_INCOMING
                                                     : DIMPLE_KEEP_CURRENT;
}

static const dimple_resolver_vtable lww_vtable = {
    .size = sizeof(dimple_resolver_vtable),
    .create = lww_create,
    .destroy = lww_destroy,
    .resolve = lww_resolve,
    /* the rule reads the ids alone, and the newest id always wins */
    .flags = DIMPLE_RESOLVE_IDS_ONLY | DIMPLE_RESOLVE_NEWEST_WINS,
};

static const dimple_plugin lww_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_RESOLVER,
    .name = "lww",
    .version = "1.0.0",
    .description = "last writer wins per cell: the greater change id wins",
    .vt.resolver = &lww_vtable,
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &lww_plugin;
}
