/* tmax.h — a test resolver: the greater INTEGER wins, ties by id. */
#ifndef TRACK_TEST_TMAX_H
#define TRACK_TEST_TMAX_H

#include <dimple/plugin.h>
#include <string.h>

/* "the greater INTEGER wins, ties by id" (a total order: a join) */
static int tmax_create(void **self, const dimple_kv *conf,
                       const dimple_host *host)
{
    (void)conf;
    (void)host;
    static int one;
    *self = &one;
    return DIMPLE_OK;
}

static void tmax_destroy(void *self)
{
    (void)self;
}

static int calls __attribute__((unused));

static int tmax_resolve(dimple_value *merged, void *self,
                        const dimple_cell *current, const dimple_cell *incoming)
{
    (void)self;
    (void)merged;
    calls++;
    int64_t a =
        current->value.type == DIMPLE_INTEGER ? current->value.i : INT64_MIN;
    int64_t b =
        incoming->value.type == DIMPLE_INTEGER ? incoming->value.i : INT64_MIN;
    if (a != b)
        return b > a ? DIMPLE_TAKE_INCOMING : DIMPLE_KEEP_CURRENT;
    return memcmp(incoming->id, current->id, 16) > 0 ? DIMPLE_TAKE_INCOMING
                                                     : DIMPLE_KEEP_CURRENT;
}

static const dimple_resolver_vtable tmax_vt = {
    .size = sizeof(dimple_resolver_vtable),
    .create = tmax_create,
    .destroy = tmax_destroy,
    .resolve = tmax_resolve,
};
static const dimple_plugin tmax_plugin = {.abi = DIMPLE_ABI,
                                          .size = sizeof(dimple_plugin),
                                          .kind = DIMPLE_KIND_RESOLVER,
                                          .name = "tmax",
                                          .version = "1",
                                          .description = "test: max integer",
                                          .vt.resolver = &tmax_vt};

#endif /* TRACK_TEST_TMAX_H */
