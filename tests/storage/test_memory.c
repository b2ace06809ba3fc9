/*
 * test_memory.c — the storage contract on dimple-memory, then what is
 * particular to it: stores shared by name inside one process.
 */
#include "contract.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dimple_storage_vtable *vt;
static test_host th;

static void *open_store(const char *name)
{
    dimple_kv conf[] = {{"name", name, 1}, {NULL, NULL, 0}};
    void *self = NULL;
    int rc = vt->create(&self, name ? conf : conf + 1, &th.host);
    if (rc != DIMPLE_OK) {
        printf("#   create(name=%s): %d %s\n", name ? name : "-", rc,
               th.last_msg);
        return NULL;
    }
    return self;
}

static int count_cb(void *payload, const char *key)
{
    (void)key;
    (*(int *)payload)++;
    return 0;
}

static int count_keys(void *self)
{
    int n = 0;
    if (vt->list(self, "", NULL, 0, count_cb, &n) != DIMPLE_OK)
        return -1;
    return n;
}

static int sink_cb(void *ctx, const void *p, size_t n)
{
    char *out = ctx;
    size_t have = strlen(out);
    if (have + n >= 64)
        return DIMPLE_ENOMEM;
    memcpy(out + have, p, n);
    out[have + n] = '\0';
    return 0;
}

static int get_str(void *self, const char *key, char out[64])
{
    out[0] = '\0';
    return vt->get(self, key, &(dimple_sink){sink_cb, out});
}

TEST(same_name_shares_objects)
{
    void *a = open_store("shared-1"), *b = open_store("shared-1");
    char got[64];
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(vt->put(a, "k", "from a", 6), DIMPLE_OK);
    CHECK_RC(get_str(b, "k", got), DIMPLE_OK);
    CHECK_STR(got, "from a");
    CHECK_RC(vt->put(b, "k", "from b", 6), DIMPLE_OK);
    CHECK_RC(get_str(a, "k", got), DIMPLE_OK);
    CHECK_STR(got, "from b");
    CHECK_RC(vt->put_if_absent(b, "k", "again", 5), DIMPLE_EEXISTS);
    CHECK_RC(vt->remove(a, "k"), DIMPLE_OK);
    CHECK_RC(get_str(b, "k", got), DIMPLE_ENOTFOUND);
out:
    if (a)
        vt->destroy(a);
    if (b)
        vt->destroy(b);
}

TEST(different_names_and_private_stores_are_apart)
{
    void *a = open_store("apart-1"), *b = open_store("apart-2");
    void *p = open_store(NULL), *q = open_store(NULL);
    char got[64];
    CHECK(a && b && p && q);
    if (!a || !b || !p || !q)
        goto out;
    CHECK_RC(vt->put(a, "k", "a", 1), DIMPLE_OK);
    CHECK_RC(vt->put(p, "k", "p", 1), DIMPLE_OK);
    CHECK_RC(get_str(b, "k", got), DIMPLE_ENOTFOUND);
    CHECK_RC(get_str(q, "k", got), DIMPLE_ENOTFOUND);
    CHECK_RC(get_str(p, "k", got), DIMPLE_OK);
    CHECK_STR(got, "p");
    CHECK(count_keys(b) == 0 && count_keys(q) == 0);
out:
    if (a)
        vt->destroy(a);
    if (b)
        vt->destroy(b);
    if (p)
        vt->destroy(p);
    if (q)
        vt->destroy(q);
}

TEST(a_store_lives_while_an_instance_holds_it)
{
    void *a = open_store("life"), *b = open_store("life"), *c = NULL;
    char got[64];
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(vt->put(a, "k", "v", 1), DIMPLE_OK);
    vt->destroy(a);
    a = NULL;
    CHECK_RC(get_str(b, "k", got), DIMPLE_OK); /* b still holds it */
    vt->destroy(b);
    b = NULL;
    c = open_store("life"); /* the last one closed: a new, empty store */
    CHECK(c && count_keys(c) == 0);
out:
    if (a)
        vt->destroy(a);
    if (b)
        vt->destroy(b);
    if (c)
        vt->destroy(c);
}

TEST(empty_name_is_a_config_error)
{
    dimple_kv conf[] = {{"name", "", 7}, {NULL, NULL, 0}};
    void *self = NULL;
    test_host_clear(&th);
    CHECK_RC(vt->create(&self, conf, &th.host), DIMPLE_ECONFIG);
    CHECK(self == NULL);
    CHECK_CONTAINS(th.last_msg, "test.conf:7");
}

typedef struct writer {
    void *self;
    int id;
    int failures;
} writer;

enum { PER_THREAD = 2000 };

static void *writer_main(void *arg)
{
    writer *w = arg;
    char key[64];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(key, sizeof key, "t%d/%d", w->id, i);
        if (vt->put(w->self, key, key, strlen(key)) != DIMPLE_OK)
            w->failures++;
        if (i % 100 == 0 && count_keys(w->self) < 0)
            w->failures++; /* list while the other thread writes */
    }
    return NULL;
}

TEST(two_threads_through_one_named_store)
{
    writer w[2] = {{open_store("threads"), 0, 0},
                   {open_store("threads"), 1, 0}};
    pthread_t t[2];
    CHECK(w[0].self && w[1].self);
    if (!w[0].self || !w[1].self)
        goto out;
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(w[0].failures == 0 && w[1].failures == 0);
    CHECK(count_keys(w[0].self) == 2 * PER_THREAD);
out:
    for (int i = 0; i < 2; i++)
        if (w[i].self)
            vt->destroy(w[i].self);
}

int main(void)
{
    dimple_kv conf_private[] = {{NULL, NULL, 0}};
    dimple_kv conf_named[] = {{"name", "contract", 1}, {NULL, NULL, 0}};
    void *dl = NULL;

    storage_contract_run("memory", conf_private);
    storage_contract_run("memory", conf_named);

    vt = test_plugin_load("memory", &dl)->vt.storage;
    test_host_init(&th, "storage");
    RUN(same_name_shares_objects);
    RUN(different_names_and_private_stores_are_apart);
    RUN(a_store_lives_while_an_instance_holds_it);
    RUN(empty_name_is_a_config_error);
    RUN(two_threads_through_one_named_store);
    dlclose(dl);
    return test_done();
}
