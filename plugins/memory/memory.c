/*
 * dimple-memory — an in-process storage backend.
 *
 * Objects live in a sorted array (binary search by byte order), so listing
 * is ordered and a prefix is a contiguous range. A store is private to its
 * instance unless the section sets `name`: instances with the same name in
 * one process share one store (refcounted), which lets two handles sync
 * through it, possibly from two threads; each store therefore has a mutex.
 *
 * Keys:
 *   name = STRING   share the store with every instance of this name
 *                   (default: a private store, freed with the instance)
 */
#include <dimple/plugin.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct mem_object {
    char *key;
    unsigned char *data; /* NULL when len == 0 */
    size_t len;
} mem_object;

typedef struct mem_store {
    pthread_mutex_t lock;
    char *name; /* NULL: private */
    int refs;   /* guarded by registry_lock */
    mem_object *objs;
    size_t n, cap;
    struct mem_store *next; /* registry list, guarded by registry_lock */
} mem_store;

typedef struct mem_self {
    mem_store *store;
    const dimple_host *host;
} mem_self;

/* Named stores shared between instances of this process. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mem_store *registry;

static void store_free(mem_store *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->objs[i].key);
        free(s->objs[i].data);
    }
    free(s->objs);
    free(s->name);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static mem_store *store_new(const char *name)
{
    mem_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (name && !(s->name = strdup(name))) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->refs = 1;
    return s;
}

/* The first index whose key is >= key (lower bound). */
static size_t find_ge(const mem_store *s, const char *key)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->objs[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first index whose key is > key (upper bound). */
static size_t find_gt(const mem_store *s, const char *key)
{
    size_t i = find_ge(s, key);
    if (i < s->n && strcmp(s->objs[i].key, key) == 0)
        i++;
    return i;
}

static int check_key(mem_self *m, const char *op, const char *key)
{
    if (!dimple_key_valid(key))
        return dimple_errorf(m->host, DIMPLE_EINVAL,
                             "%s: invalid key '%s' (keys are relative paths "
                             "without empty, '.' or '..' segments)",
                             op, key ? key : "(null)");
    return DIMPLE_OK;
}

/* ------------------------------------------------------------ vtable */

static const char *const known_keys[] = {"name", NULL};

static int mem_create(void **self, const dimple_kv *conf,
                      const dimple_host *host)
{
    int rc = dimple_kv_check(host, conf, known_keys);
    const dimple_kv *name = dimple_kv_find(conf, "name");
    mem_self *m = NULL;
    mem_store *s = NULL;

    *self = NULL;
    if (rc)
        return rc;
    if (name && (!name->value || !*name->value))
        return dimple_errorf(
            host, DIMPLE_ECONFIG,
            "%s:%d: [%s] name is empty (leave it out for a "
            "private store)",
            host && host->config_file ? host->config_file : "(config)",
            name->line, host && host->section ? host->section : "?");
    m = calloc(1, sizeof *m);
    if (!m)
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    m->host = host;

    if (!name) {
        s = store_new(NULL);
    } else {
        pthread_mutex_lock(&registry_lock);
        for (s = registry; s; s = s->next)
            if (strcmp(s->name, name->value) == 0)
                break;
        if (s) {
            s->refs++;
        } else if ((s = store_new(name->value))) {
            s->next = registry;
            registry = s;
        }
        pthread_mutex_unlock(&registry_lock);
    }
    if (!s) {
        free(m);
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    }
    m->store = s;
    *self = m;
    return DIMPLE_OK;
}

static void mem_destroy(void *self)
{
    mem_self *m = self;
    mem_store *s;
    bool last;

    if (!m)
        return;
    s = m->store;
    pthread_mutex_lock(&registry_lock);
    last = --s->refs == 0;
    if (last && s->name) {
        mem_store **pp = &registry;
        while (*pp != s)
            pp = &(*pp)->next;
        *pp = s->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (last)
        store_free(s);
    free(m);
}

/* Store key -> data. if_absent: fail with EEXISTS when present. */
static int mem_store_put(mem_self *m, const char *op, const char *key,
                         const void *data, size_t len, bool if_absent)
{
    mem_store *s = m->store;
    unsigned char *copy = NULL;
    char *kcopy = NULL;
    int rc = check_key(m, op, key);
    size_t i;

    if (rc)
        return rc;
    if (len && !(copy = malloc(len)))
        return dimple_errorf(m->host, DIMPLE_ENOMEM,
                             "%s '%s': out of memory (%zu bytes)", op, key,
                             len);
    if (len)
        memcpy(copy, data, len);

    pthread_mutex_lock(&s->lock);
    i = find_ge(s, key);
    if (i < s->n && strcmp(s->objs[i].key, key) == 0) {
        if (if_absent) {
            rc = dimple_errorf(m->host, DIMPLE_EEXISTS,
                               "%s '%s': the object already exists", op, key);
            goto out;
        }
        free(s->objs[i].data);
        s->objs[i].data = copy;
        s->objs[i].len = len;
        copy = NULL;
        goto out;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        mem_object *grown = realloc(s->objs, cap * sizeof *grown);
        if (!grown) {
            rc = dimple_errorf(m->host, DIMPLE_ENOMEM, "%s '%s': out of memory",
                               op, key);
            goto out;
        }
        s->objs = grown;
        s->cap = cap;
    }
    if (!(kcopy = strdup(key))) {
        rc = dimple_errorf(m->host, DIMPLE_ENOMEM, "%s '%s': out of memory", op,
                           key);
        goto out;
    }
    memmove(&s->objs[i + 1], &s->objs[i], (s->n - i) * sizeof *s->objs);
    s->objs[i] = (mem_object){kcopy, copy, len};
    s->n++;
    copy = NULL;
out:
    pthread_mutex_unlock(&s->lock);
    free(copy);
    return rc;
}

static int mem_put(void *self, const char *key, const void *data, size_t len)
{
    return mem_store_put(self, "put", key, data, len, false);
}

static int mem_put_if_absent(void *self, const char *key, const void *data,
                             size_t len)
{
    return mem_store_put(self, "put_if_absent", key, data, len, true);
}

static int mem_get(void *self, const char *key, const dimple_sink *out)
{
    mem_self *m = self;
    mem_store *s = m->store;
    unsigned char *copy = NULL;
    size_t len = 0, i;
    bool found;
    int rc = check_key(m, "get", key);

    if (rc)
        return rc;
    /* Copy under the lock, write outside it: the sink may take its time
     * (or even use the store) without blocking other instances. */
    pthread_mutex_lock(&s->lock);
    i = find_ge(s, key);
    found = i < s->n && strcmp(s->objs[i].key, key) == 0;
    if (found && (len = s->objs[i].len) > 0) {
        copy = malloc(len);
        if (copy)
            memcpy(copy, s->objs[i].data, len);
    }
    pthread_mutex_unlock(&s->lock);

    if (!found)
        return dimple_errorf(m->host, DIMPLE_ENOTFOUND,
                             "get '%s': no such object", key);
    if (len && !copy)
        return dimple_errorf(m->host, DIMPLE_ENOMEM,
                             "get '%s': out of memory (%zu bytes)", key, len);
    rc = dimple_sink_write(out, copy, len);
    free(copy);
    return rc;
}

static bool starts_with(const char *s, const char *prefix, size_t plen)
{
    return strncmp(s, prefix, plen) == 0;
}

/*
 * The store is locked only to find the next entry: the callback runs
 * unlocked, so it may use the store (or another instance may change it)
 * while the listing goes on; the cursor keeps the order strict.
 */
static int mem_list(void *self, const char *prefix, const char *start_after,
                    unsigned flags, dimple_list_cb cb, void *payload)
{
    mem_self *m = self;
    mem_store *s = m->store;
    size_t plen;
    char *cursor = NULL; /* the last entry reported (or start_after) */
    char *entry = NULL;
    bool inclusive = false; /* cursor is a lower bound, not reported */
    int rc = DIMPLE_OK;

    if (!prefix)
        prefix = "";
    if (!dimple_prefix_valid(prefix))
        return dimple_errorf(m->host, DIMPLE_EINVAL,
                             "list: invalid prefix '%s'", prefix);
    plen = strlen(prefix);
    if (start_after && *start_after && strcmp(start_after, prefix) > 0) {
        cursor = strdup(start_after);
    } else {
        cursor = strdup(prefix);
        inclusive = true;
    }
    if (!cursor)
        return dimple_errorf(m->host, DIMPLE_ENOMEM, "list: out of memory");

    for (;;) {
        size_t i;
        const char *key;
        const char *slash = NULL;

        pthread_mutex_lock(&s->lock);
        i = inclusive ? find_ge(s, cursor) : find_gt(s, cursor);
        if (i >= s->n || !starts_with(s->objs[i].key, prefix, plen)) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        key = s->objs[i].key;
        if (flags & DIMPLE_LIST_SHALLOW)
            slash = strchr(key + plen, '/');
        if (slash) {
            /* A deeper key: report its folder "prefix<child>/" once. */
            size_t flen = (size_t)(slash - key) + 1;
            entry = malloc(flen + 1);
            if (entry) {
                memcpy(entry, key, flen);
                entry[flen] = '\0';
            }
        } else {
            entry = strdup(key);
        }
        pthread_mutex_unlock(&s->lock);
        if (!entry) {
            rc = dimple_errorf(m->host, DIMPLE_ENOMEM, "list: out of memory");
            break;
        }

        /* A folder that sorts at or before start_after was already
         * reported (paging: start_after is the last entry seen). */
        if (!slash || !start_after || strcmp(entry, start_after) > 0) {
            rc = cb(payload, entry);
            if (rc)
                break;
        }
        free(cursor);
        cursor = entry;
        entry = NULL;
        inclusive = false;
        if (slash) {
            /* Skip the folder: the first key past "…/" is >= "…0". */
            cursor[strlen(cursor) - 1] = '/' + 1;
            inclusive = true;
        }
    }
    free(entry);
    free(cursor);
    return rc;
}

static int mem_remove(void *self, const char *key)
{
    mem_self *m = self;
    mem_store *s = m->store;
    int rc = check_key(m, "remove", key);
    size_t i;

    if (rc)
        return rc;
    pthread_mutex_lock(&s->lock);
    i = find_ge(s, key);
    if (i < s->n && strcmp(s->objs[i].key, key) == 0) {
        free(s->objs[i].key);
        free(s->objs[i].data);
        memmove(&s->objs[i], &s->objs[i + 1], (s->n - i - 1) * sizeof *s->objs);
        s->n--;
    }
    pthread_mutex_unlock(&s->lock);
    return DIMPLE_OK;
}

static const dimple_storage_vtable mem_vtable = {
    .size = sizeof(dimple_storage_vtable),
    .create = mem_create,
    .destroy = mem_destroy,
    .put = mem_put,
    .get = mem_get,
    .list = mem_list,
    .remove = mem_remove,
    .put_if_absent = mem_put_if_absent,
};

static const dimple_plugin mem_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_STORAGE,
    .name = "memory",
    .version = "1.0.0",
    .description = "in-process object store (sorted map), shareable by name",
    .vt.storage = &mem_vtable,
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &mem_plugin;
}
