/*
 * broken_storage.c — dimple-broken-storage.so, a storage plugin that is
 * wrong on purpose, for tests/sdk/broken_runners.sh. `mode` picks the fault:
 *   fail  create() fails, with its own message
 *   racy  an in-process store whose put_if_absent looks, waits, then
 *         writes: two instances racing for one key both win
 */
#include <dimple/plugin.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct obj {
    char *key;
    void *data;
    size_t len;
} obj;

/* One store for every instance, as a server would be. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static obj *objs;
static size_t n_objs;

static size_t find(const char *key, int *found)
{
    size_t lo = 0, hi = n_objs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(objs[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < n_objs && strcmp(objs[lo].key, key) == 0;
    return lo;
}

static int bs_create(void **self, const dimple_kv *conf,
                     const dimple_host *host)
{
    static const char *const known[] = {"mode", NULL};
    const char *m = dimple_kv_get(conf, "mode");
    int rc = dimple_kv_check(host, conf, known);

    if (rc < 0)
        return rc;
    if (!m || strcmp(m, "racy") != 0)
        return dimple_errorf(host, DIMPLE_ECONFIG,
                             "broken-storage: the folder /no/such/place does "
                             "not exist (mode '%s')",
                             m ? m : "");
    *self = (void *)host;
    return DIMPLE_OK;
}

static void bs_destroy(void *self)
{
    (void)self;
}

static int bad_key(void *self, const char *key)
{
    return dimple_errorf(self, DIMPLE_EINVAL, "invalid key '%s'", key);
}

static int bs_put(void *self, const char *key, const void *data, size_t len)
{
    int found, rc = DIMPLE_OK;
    void *copy = malloc(len ? len : 1);
    if (!dimple_key_valid(key)) {
        free(copy);
        return bad_key(self, key);
    }
    if (!copy)
        return dimple_errorf(self, DIMPLE_ENOMEM, "out of memory");
    memcpy(copy, data, len);
    pthread_mutex_lock(&lock);
    size_t i = find(key, &found);
    if (!found) {
        obj *p = realloc(objs, (n_objs + 1) * sizeof *objs);
        char *k = strdup(key);
        if (!p || !k) {
            objs = p ? p : objs;
            free(k);
            free(copy);
            rc = dimple_errorf(self, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        objs = p;
        memmove(&objs[i + 1], &objs[i], (n_objs - i) * sizeof *objs);
        objs[i] = (obj){k, NULL, 0};
        n_objs++;
    }
    free(objs[i].data);
    objs[i].data = copy;
    objs[i].len = len;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

static int bs_get(void *self, const char *key, const dimple_sink *out)
{
    int found, rc;
    if (!dimple_key_valid(key))
        return bad_key(self, key);
    pthread_mutex_lock(&lock);
    size_t i = find(key, &found);
    rc = found ? dimple_sink_write(out, objs[i].data, objs[i].len)
               : dimple_errorf(self, DIMPLE_ENOTFOUND, "'%s' not found", key);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int bs_list(void *self, const char *prefix, const char *start_after,
                   unsigned flags, dimple_list_cb cb, void *payload)
{
    size_t plen = strlen(prefix);
    char last[1024] = "", entry[1024];
    int rc = DIMPLE_OK;
    if (!dimple_prefix_valid(prefix))
        return dimple_errorf(self, DIMPLE_EINVAL, "invalid prefix '%s'",
                             prefix);
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_objs && rc == 0; i++) {
        if (strncmp(objs[i].key, prefix, plen) != 0)
            continue;
        snprintf(entry, sizeof entry, "%s", objs[i].key);
        char *slash = strchr(entry + plen, '/');
        if ((flags & DIMPLE_LIST_SHALLOW) && slash)
            slash[1] = '\0';
        if ((start_after && strcmp(entry, start_after) <= 0) ||
            strcmp(entry, last) == 0)
            continue;
        memcpy(last, entry, sizeof last);
        rc = cb(payload, entry);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int bs_remove(void *self, const char *key)
{
    int found;
    if (!dimple_key_valid(key))
        return bad_key(self, key);
    pthread_mutex_lock(&lock);
    size_t i = find(key, &found);
    if (found) {
        free(objs[i].key);
        free(objs[i].data);
        memmove(&objs[i], &objs[i + 1], (n_objs - i - 1) * sizeof *objs);
        n_objs--;
    }
    pthread_mutex_unlock(&lock);
    return DIMPLE_OK;
}

/* The fault: the look and the write are two steps, with a gap between. */
static int bs_put_if_absent(void *self, const char *key, const void *data,
                            size_t len)
{
    int found;
    if (!dimple_key_valid(key))
        return bad_key(self, key);
    pthread_mutex_lock(&lock);
    find(key, &found);
    pthread_mutex_unlock(&lock);
    if (found)
        return dimple_errorf(self, DIMPLE_EEXISTS, "'%s' exists", key);
    nanosleep(&(struct timespec){0, 5000000}, NULL);
    return bs_put(self, key, data, len);
}

static const dimple_storage_vtable bs_vt = {
    .size = sizeof(dimple_storage_vtable),
    .create = bs_create,
    .destroy = bs_destroy,
    .put = bs_put,
    .get = bs_get,
    .list = bs_list,
    .remove = bs_remove,
    .put_if_absent = bs_put_if_absent,
};

static const dimple_plugin bs_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_STORAGE,
    .name = "broken-storage",
    .version = "0",
    .description = "test: a storage plugin that breaks the contract",
    .vt.storage = &bs_vt,
};

const dimple_plugin *dimple_plugin_entry(void)
{
    return &bs_plugin;
}
