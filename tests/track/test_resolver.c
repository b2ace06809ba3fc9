/*
 * test_resolver.c — a configured resolver other than lww decides cells in
 * the one merge path (remote changes and local writes alike), and replicas
 * still converge when its rule is a join.
 */
#include "util.h"

#include <dimple/plugin.h>

#include "tmax.h"

static int bad_resolve(dimple_value *merged, void *self,
                       const dimple_cell *current, const dimple_cell *incoming)
{
    (void)self;
    (void)current;
    (void)incoming;
    *merged = dimple_value_int(42);
    return DIMPLE_MERGED;
}

static const dimple_resolver_vtable bad_vt = {
    .size = sizeof(dimple_resolver_vtable),
    .create = tmax_create,
    .destroy = tmax_destroy,
    .resolve = bad_resolve,
};
static const dimple_plugin bad_plugin = {.abi = DIMPLE_ABI,
                                         .size = sizeof(dimple_plugin),
                                         .kind = DIMPLE_KIND_RESOLVER,
                                         .name = "tmerged",
                                         .version = "1",
                                         .description = "test: merges",
                                         .vt.resolver = &bad_vt};

static void hear(void *payload, int level, const char *source, const char *msg)
{
    char *out = payload;
    size_t n = strlen(out);
    snprintf(out + n, 1024 - n, "%d %s: %s\n", level, source, msg);
}

static dimple *open_with(const char *name, const char *resolver)
{
    char conf[512];
    snprintf(conf, sizeof conf, "%s.conf", tu_path(name));
    FILE *f = fopen(conf, "w");
    if (!f)
        return NULL;
    fprintf(f, "[dimple]\ndatabase = %s\ntables = *\n[resolver]\nplugin = %s\n",
            tu_path(name), resolver);
    fclose(f);
    dimple *db = NULL;
    if (dimple_open(&db, conf) != DIMPLE_OK) {
        printf("# open %s: %s\n", conf, dimple_errmsg(db));
        dimple_close(db);
        return NULL;
    }
    const char *m[] = {"CREATE TABLE c(k TEXT PRIMARY KEY, n INTEGER, s TEXT)"};
    if (dimple_migrate(db, m, 1) != DIMPLE_OK) {
        printf("# migrate: %s\n", dimple_errmsg(db));
        dimple_close(db);
        return NULL;
    }
    return db;
}

TEST(custom_resolver_decides)
{
    dimple *a = open_with("ra.db", "tmax"), *b = open_with("rb.db", "tmax");
    if (!CHECK(a && b)) {
        dimple_close(a);
        dimple_close(b);
        return;
    }
    CHECK_STR(dimple_plugin_in_use(a, "resolver"), "tmax");
    CHECK_RC(tu_exec(a, "INSERT INTO c VALUES ('x', 5, 'a')"), DIMPLE_OK);
    uint8_t ca[16], cb[16];
    int ha = 0, hb = 0;
    CHECK_RC(tu_pull(b, a, cb, &hb, -1), 0);
    /* b writes a smaller n later: under max it loses, even locally,
     * and the logger hears it (without the values) */
    calls = 0;
    char heard[1024] = "";
    dimple_logger_set(b, hear, heard);
    CHECK_RC(tu_exec(b, "UPDATE c SET n = 3, s = 'b' WHERE k = 'x'"),
             DIMPLE_OK);
    dimple_logger_set(b, NULL, NULL);
    CHECK(calls > 0);
    CHECK_CONTAINS(heard, "2 change tracking: table \"c\", key [\"x\"],"
                          " column \"n\": a local write lost to the"
                          " version already held by author ");
    CHECK_CONTAINS(heard, dimple_author_id(a));
    CHECK_CONTAINS(heard, "(resolver tmax)");
    CHECK(!strstr(heard, "column \"s\"")); /* s won: nothing to say */
    char *d = tu_dump(b, "c");
    CHECK_STR(d, "k=t1:78 n=i5 s=t1:62\n");
    free(d);
    /* a writes a greater n: wins on both sides, whatever the order */
    CHECK_RC(tu_exec(a, "UPDATE c SET n = 9 WHERE k = 'x'"), DIMPLE_OK);
    CHECK_RC(tu_pull(a, b, ca, &ha, -1), 0);
    CHECK_RC(tu_pull(b, a, cb, &hb, -1), 0);
    char *da = tu_dump(a, "c"), *db_ = tu_dump(b, "c");
    CHECK_STR(da, db_);
    CHECK_STR(da, "k=t1:78 n=i9 s=t1:62\n");
    free(da);
    free(db_);
    char *h1 = tu_history(a), *h2 = tu_history(b);
    CHECK_STR(h1, h2);
    free(h1);
    free(h2);
    dimple_close(a);
    dimple_close(b);
}

TEST(merged_values_refused)
{
    dimple *a = open_with("ma.db", "tmax"), *b = open_with("mb.db", "tmerged");
    if (!CHECK(a && b)) {
        dimple_close(a);
        dimple_close(b);
        return;
    }
    CHECK_RC(tu_exec(a, "INSERT INTO c VALUES ('x', 5, 'a')"), DIMPLE_OK);
    CHECK_RC(tu_exec(b, "INSERT INTO c VALUES ('x', 6, 'b')"), DIMPLE_OK);
    uint8_t cur[16];
    int have = 0;
    CHECK(tu_pull(b, a, cur, &have, -1) != 0);
    CHECK_CONTAINS(dimple_errmsg(b), "tmerged");
    CHECK_CONTAINS(dimple_errmsg(b), "merged value");
    dimple_close(a);
    dimple_close(b);
}

int main(void)
{
    tu_init();
    if (dimple_plugin_register(&tmax_plugin) != DIMPLE_OK ||
        dimple_plugin_register(&bad_plugin) != DIMPLE_OK) {
        printf("Bail out! cannot register the test resolvers\n");
        return 1;
    }
    RUN(custom_resolver_decides);
    RUN(merged_values_refused);
    tu_cleanup();
    return test_done();
}
