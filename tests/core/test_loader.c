/*
 * test_loader.c — the plugin loader: every refusal has a fixture
 * (tests/core/fixtures), not-found lists the folders, a good plugin loads
 * and gets its keys, registered plugins come first, the listing.
 */
#include "../test.h"
#include "loader.h"
#include "util.h"

/* Open a handle whose conf has plugin_dir = FIXTURE_DIR and section. */
static int open_with(dimple **db, const char *section)
{
    const char *p =
        write_tmp("l.conf", "[dimple]\ndatabase = l.db\nplugin_dir = %s\n%s",
                  FIXTURE_DIR, section);
    return dimple_open(db, p);
}

/* Open must fail with rc and a message naming the fixture file. */
static void refused(const char *section, int rc, const char *file,
                    const char *needle)
{
    dimple *db = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, file);
    CHECK_RC(open_with(&db, section), rc);
    CHECK_CONTAINS(dimple_errmsg(db), path);
    CHECK_CONTAINS(dimple_errmsg(db), needle);
    CHECK(strchr(dimple_errmsg(db), '\n') == NULL);
    dimple_close(db);
}

TEST(refusals)
{
    refused("[storage]\nplugin = fx-noentry\n", DIMPLE_EPLUGIN,
            "dimple-fx-noentry.so", "no dimple_plugin_entry symbol");
    refused("[storage]\nplugin = fx-badabi\n", DIMPLE_EPLUGIN,
            "dimple-fx-badabi.so",
            "built for plugin ABI 1, this core "
            "needs ABI 2: rebuild the plugin");
    refused("[storage]\nplugin = fx-cipher\n", DIMPLE_EPLUGIN,
            "dimple-fx-cipher.so",
            "'fx-cipher' is a cipher plugin, not a storage plugin");
    refused("[cipher]\nplugin = fx-good\n", DIMPLE_EPLUGIN, "dimple-fx-good.so",
            "'fx-good' is a storage plugin, not a cipher plugin");
    refused("[storage]\nplugin = fx-mismatch\n", DIMPLE_EPLUGIN,
            "dimple-fx-mismatch.so",
            "the plugin calls itself 'fx-other' but the file is named for "
            "'fx-mismatch'");
    refused("[storage]\nplugin = fx-noslot\n", DIMPLE_EPLUGIN,
            "dimple-fx-noslot.so", "required storage slot 'put' is NULL");
    refused("[storage]\nplugin = fx-small\n", DIMPLE_EPLUGIN,
            "dimple-fx-small.so",
            "storage vtable size 16 is smaller than "
            "ABI 2's minimum");
}

TEST(not_found_lists_folders)
{
    dimple *db = NULL;
    CHECK_RC(open_with(&db, "[storage]\nplugin = nosuch\n"), DIMPLE_ENOTFOUND);
    CHECK_CONTAINS(dimple_errmsg(db), "[storage] plugin 'nosuch' not found: "
                                      "no dimple-nosuch.so (searched: ");
    /* the line that names it: [dimple] database, plugin_dir, then
     * [storage] on line 4 and its plugin on line 5 of l.conf */
    CHECK_CONTAINS(dimple_errmsg(db), "l.conf:5: [storage] plugin 'nosuch'");
    CHECK_CONTAINS(dimple_errmsg(db), FIXTURE_DIR);
    CHECK_CONTAINS(dimple_errmsg(db), DIMPLE_PLUGIN_INSTALL_DIR);
    if (getenv("DIMPLE_PLUGIN_PATH") && *getenv("DIMPLE_PLUGIN_PATH")) {
        char first[512];
        snprintf(first, sizeof first, "%s", getenv("DIMPLE_PLUGIN_PATH"));
        first[strcspn(first, ":")] = '\0';
        CHECK_CONTAINS(dimple_errmsg(db), first);
    }
    dimple_close(db);
}

TEST(bad_names_refused)
{
    dimple *db = NULL;
    CHECK_RC(open_with(&db, "[storage]\nplugin = ../fx-good\n"),
             DIMPLE_EPLUGIN);
    CHECK_CONTAINS(dimple_errmsg(db), "plugin name '../fx-good' refused");
    dimple_close(db);
    CHECK_RC(open_with(&db, "[storage]\nplugin = a/b\n"), DIMPLE_EPLUGIN);
    CHECK_CONTAINS(dimple_errmsg(db), "refused");
    dimple_close(db);
}

static char logged[512];
static void logger(void *payload, int level, const char *source,
                   const char *msg)
{
    (void)payload;
    snprintf(logged, sizeof logged, "%d %s: %s", level, source, msg);
}

TEST(good_plugin_loads)
{
    dimple *db = NULL;
    CHECK_RC(open_with(&db, "[storage]\nplugin = fx-good\ngreeting = hi\n"),
             DIMPLE_OK);
    CHECK_STR(dimple_plugin_in_use(db, "storage"), "fx-good");
    CHECK_STR(dimple_plugin_role(db, 0), "storage");
    CHECK(dimple_plugin_role(db, 1) == NULL);
    CHECK(dimple_plugin_in_use(db, "cipher") == NULL);
    dimple_close(db);

    /* the plugin rejects a key it does not know, with file:line */
    CHECK_RC(open_with(&db, "[storage]\nplugin = fx-good\nbogus = 1\n"),
             DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(db), "storage fx-good: ");
    CHECK_CONTAINS(dimple_errmsg(db), "l.conf:6: unknown key 'bogus' in "
                                      "[storage]");
    dimple_close(db);

    /* a failing create keeps the plugin's message, prefixed */
    CHECK_RC(open_with(&db, "[storage]\nplugin = fx-good\ngreeting = fail\n"),
             DIMPLE_EIO);
    CHECK_STR(dimple_errmsg(db), "storage fx-good: create refused as asked");
    dimple_close(db);

    /* notifier sections may repeat with labels; wrong kind still refused */
    CHECK_RC(open_with(&db, "[notifier.a]\nplugin = fx-good\n"),
             DIMPLE_EPLUGIN);
    CHECK_CONTAINS(dimple_errmsg(db), "not a notifier plugin");
    dimple_close(db);
}

TEST(instance_api_and_logger)
{
    dimple *db = NULL;
    dimple_instance *inst = NULL;
    const dimple_kv conf[] = {{"greeting", "hello", 3}, {NULL, NULL, 0}};
    CHECK_RC(open_with(&db, ""), DIMPLE_OK);
    dimple_logger_set(db, logger, NULL);
    CHECK_RC(dimple_loader__instance(db, "storage", DIMPLE_KIND_STORAGE,
                                     "fx-good", conf, &inst),
             DIMPLE_OK);
    CHECK(inst != NULL);
    CHECK_STR(logged, "3 storage fx-good: created (hello)");
    CHECK(inst && inst->vt.storage.put != NULL);
    CHECK(inst && inst->vt.storage.put_if_absent == NULL);
    dimple_loader__destroy(inst);
    inst = (dimple_instance *)1;
    CHECK_RC(dimple_loader__instance(db, "resolver", DIMPLE_KIND_RESOLVER,
                                     "nosuch-resolver", NULL, &inst),
             DIMPLE_ENOTFOUND);
    CHECK(inst == NULL);
    dimple_close(db);
}

/* A registered plugin (no file) is found first, by name. */
static int reg_create(void **self, const dimple_kv *conf,
                      const dimple_host *host)
{
    (void)conf;
    *self = NULL;
    return host->size >= sizeof(dimple_host) ? DIMPLE_OK : DIMPLE_EINVAL;
}
static void reg_destroy(void *self)
{
    (void)self;
}
static int reg_notify(void *self, const dimple_event *ev, size_t n)
{
    (void)self, (void)ev, (void)n;
    return DIMPLE_OK;
}
static const dimple_notifier_vtable reg_vt = {
    .size = sizeof(dimple_notifier_vtable),
    .create = reg_create,
    .destroy = reg_destroy,
    .notify = reg_notify};
static const dimple_plugin reg_plugin = {.abi = DIMPLE_ABI,
                                         .size = sizeof(dimple_plugin),
                                         .kind = DIMPLE_KIND_NOTIFIER,
                                         .name = "fx-builtin",
                                         .version = "9.9",
                                         .vt.notifier = &reg_vt};

typedef struct listing {
    int good, refused, builtin;
} listing;

static int on_plugin(void *payload, const dimple_plugin_info *info,
                     const char *err)
{
    listing *l = payload;
    if (err) {
        l->refused++;
        if (strstr(info->file, "fx-noentry"))
            CHECK_CONTAINS(err, "no dimple_plugin_entry symbol");
        return 0;
    }
    if (strcmp(info->name, "fx-good") == 0) {
        l->good++;
        CHECK_STR(info->kind, "storage");
        CHECK_STR(info->version, "0.0.1");
        CHECK_CONTAINS(info->file, "dimple-fx-good.so");
    }
    if (strcmp(info->name, "fx-builtin") == 0) {
        l->builtin++;
        CHECK_STR(info->file, "(built in)");
        CHECK_STR(info->kind, "notifier");
    }
    return 0;
}

TEST(registered_and_listing)
{
    dimple *db = NULL;
    listing l = {0, 0, 0};
    CHECK_RC(dimple_plugin_register(&reg_plugin), DIMPLE_OK);
    CHECK_RC(open_with(&db, "[notifier.x]\nplugin = fx-builtin\n"), DIMPLE_OK);
    CHECK_STR(dimple_plugin_in_use(db, "notifier.x"), "fx-builtin");
    CHECK_STR(dimple_plugin_role(db, 0), "notifier.x");
    CHECK_RC(dimple_plugin_list(db, on_plugin, &l), DIMPLE_OK);
    CHECK(l.good == 1);
    CHECK(l.builtin == 1);
    CHECK(l.refused == 5); /* noentry badabi mismatch noslot small */
    dimple_close(db);
}

/* The descriptor grows without an ABI bump: one from a newer SDK (larger
 * size) loads; one without a size is refused, saying what to set. */
static const struct {
    dimple_plugin p;
    void *later[4]; /* members a later SDK may append */
} grown_plugin = {{.abi = DIMPLE_ABI,
                   .size = sizeof grown_plugin,
                   .kind = DIMPLE_KIND_NOTIFIER,
                   .name = "fx-grown",
                   .version = "1",
                   .vt.notifier = &reg_vt},
                  {NULL, NULL, NULL, NULL}};
static const dimple_plugin nosize_plugin = {.abi = DIMPLE_ABI,
                                            .kind = DIMPLE_KIND_NOTIFIER,
                                            .name = "fx-nosize",
                                            .version = "1",
                                            .vt.notifier = &reg_vt};

TEST(descriptor_size)
{
    dimple *db = NULL;
    CHECK_RC(dimple_plugin_register(&grown_plugin.p), DIMPLE_OK);
    CHECK_RC(open_with(&db, "[notifier.x]\nplugin = fx-grown\n"), DIMPLE_OK);
    CHECK_STR(dimple_plugin_in_use(db, "notifier.x"), "fx-grown");
    dimple_close(db);
    CHECK_RC(dimple_plugin_register(&nosize_plugin), DIMPLE_OK);
    CHECK_RC(open_with(&db, "[notifier.x]\nplugin = fx-nosize\n"),
             DIMPLE_EPLUGIN);
    CHECK_CONTAINS(dimple_errmsg(db), "descriptor size 0 is smaller than");
    CHECK_CONTAINS(dimple_errmsg(db), "set .size = sizeof(dimple_plugin)");
    dimple_close(db);
}

/* The registry holds 64 plugins: one more is DIMPLE_ELIMIT (a limit, not
 * out of memory); replacing one by name still works. Fills the registry:
 * runs last. */
TEST(registry_full_is_a_limit)
{
    static dimple_plugin many[64];
    static char names[64][16];
    int rc = DIMPLE_OK;
    size_t i;
    CHECK_RC(dimple_plugin_register(&reg_plugin), DIMPLE_OK);
    for (i = 0; i < 64 && rc == DIMPLE_OK; i++) {
        snprintf(names[i], sizeof names[i], "fx-many-%zu", i);
        many[i] = reg_plugin;
        many[i].name = names[i];
        rc = dimple_plugin_register(&many[i]);
    }
    CHECK_RC(rc, DIMPLE_ELIMIT);
    CHECK(i == 62); /* fx-builtin, fx-grown, fx-nosize and 61 more
                     * fit, the 62nd more did not */
    CHECK_RC(dimple_plugin_register(&reg_plugin), DIMPLE_OK);
    CHECK_STR(dimple_errstr(DIMPLE_ELIMIT), "DIMPLE_ELIMIT");
}

int main(void)
{
    RUN(refusals);
    RUN(not_found_lists_folders);
    RUN(bad_names_refused);
    RUN(good_plugin_loads);
    RUN(instance_api_and_logger);
    RUN(registered_and_listing);
    RUN(descriptor_size);
    RUN(registry_full_is_a_limit);
    tmp_cleanup();
    return test_done();
}
