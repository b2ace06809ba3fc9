/*
 * broken_resolver.c — dimple-broken-resolver.so, a resolver that is wrong on
 * purpose, for tests/sdk/broken_runners.sh. `mode` picks the fault:
 *   keep      the current version always stays: not commutative
 *   merged    answers DIMPLE_MERGED, which the core refuses
 *   by-table  greater id wins in table "t" only, the current version stays
 *             elsewhere: passes a contract that only ever uses table "t"
 *   fail      create() fails, with its own message
 */
#include <dimple/plugin.h>

#include <stdlib.h>

typedef enum { KEEP, MERGED, BY_TABLE } mode;

static int br_create(void **self, const dimple_kv *conf,
                     const dimple_host *host)
{
    static const char *const known[] = {"mode", NULL};
    const char *m = dimple_kv_get(conf, "mode");
    mode *p;
    int rc = dimple_kv_check(host, conf, known);

    if (rc < 0)
        return rc;
    if (!m || strcmp(m, "fail") == 0)
        return dimple_errorf(host, DIMPLE_ECONFIG,
                             "broken-resolver: mode 'fail' asks create() to "
                             "fail, and so it does");
    if (!(p = malloc(sizeof *p)))
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    *p = strcmp(m, "merged") == 0     ? MERGED
         : strcmp(m, "by-table") == 0 ? BY_TABLE
                                      : KEEP;
    *self = p;
    return DIMPLE_OK;
}

static void br_destroy(void *self)
{
    free(self);
}

static int br_resolve(dimple_value *merged, void *self,
                      const dimple_cell *current, const dimple_cell *incoming)
{
    mode m = *(const mode *)self;
    if (m == MERGED) {
        *merged = incoming->value;
        return DIMPLE_MERGED;
    }
    if (m == BY_TABLE && strcmp(current->table, "t") == 0)
        return memcmp(incoming->id, current->id, 16) > 0 ? DIMPLE_TAKE_INCOMING
                                                         : DIMPLE_KEEP_CURRENT;
    return DIMPLE_KEEP_CURRENT;
}

static const dimple_resolver_vtable br_vt = {
    .size = sizeof(dimple_resolver_vtable),
    .create = br_create,
    .destroy = br_destroy,
    .resolve = br_resolve,
};

static const dimple_plugin br_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_RESOLVER,
    .name = "broken-resolver",
    .version = "0",
    .description = "test: a resolver that breaks the contract",
    .vt.resolver = &br_vt,
};

const dimple_plugin *dimple_plugin_entry(void)
{
    return &br_plugin;
}
