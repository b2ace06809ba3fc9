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

/* ------------------------------------------------------------ vtable */

static const char *const known_keys[] = {"name", NULL};

static int mem_create(void **self, const dimple_kv *conf,
                      const dimple_host *host)
{
    const char *name; /* "" (the default): a private store */
    mem_self *m = NULL;
    mem_store *s = NULL;
    int rc;

    *self = NULL;
    if ((rc = dimple_kv_check(host, conf, known_keys)) ||
        (rc = dimple_conf_string(host, conf, "name", "", &name)))
        return rc;
    m = calloc(1, sizeof *m);
    if (!m)
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    m->host = host;

    if (!*name) {
        s = store_new(NULL);
    } else {
        pthread_mutex_lock(&registry_lock);
        for (s = registry; s; s = s->next)
            if (strcmp(s->name, name) == 0)
                break;
        if (s) {
            s->refs++;
        } else if ((s = store_new(name))) {
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
    int rc = dimple_key_check(m->host, op, key);
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
    int rc = dimple_key_check(m->host, "get", key);

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

/*
 * The store is locked only to find the next key: the callback runs
 * unlocked, so it may use the store (or another instance may change it)
 * while the listing goes on; the cursor keeps the order strict. The lister
 * applies start_after and SHALLOW; past a folder it reported, the cursor
 * jumps over the folder's keys instead of reading them.
 */
static int mem_list(void *self, const char *prefix, const char *start_after,
                    unsigned flags, dimple_list_cb cb, void *payload)
{
    mem_self *m = self;
    mem_store *s = m->store;
    dimple_lister l =
        dimple_lister_begin(m->host, prefix, start_after, flags, cb, payload);
    size_t plen = strlen(l.prefix);
    /* cursor: the last key seen, or (inclusive) a lower bound */
    bool inclusive = !start_after || strcmp(start_after, l.prefix) <= 0;
    char *cursor = strdup(inclusive ? l.prefix : start_after), *key = NULL;
    int rc = DIMPLE_OK;

    if (!dimple_prefix_valid(prefix))
        rc = dimple_errorf(m->host, DIMPLE_EINVAL, "list: invalid prefix '%s'",
                           prefix);
    else if (!cursor)
        rc = dimple_errorf(m->host, DIMPLE_ENOMEM, "list: out of memory");
    while (rc == DIMPLE_OK) {
        char *slash;
        bool more;
        size_t i;

        pthread_mutex_lock(&s->lock);
        i = inclusive ? find_ge(s, cursor) : find_gt(s, cursor);
        more = i < s->n && strncmp(s->objs[i].key, l.prefix, plen) == 0;
        if (more)
            key = strdup(s->objs[i].key);
        pthread_mutex_unlock(&s->lock);
        if (!more || (rc = dimple_lister_add(&l, key)))
            break;
        /* Jump over the rest of a folder "…/": its keys sort before "…0". */
        slash = flags & DIMPLE_LIST_SHALLOW ? strchr(key + plen, '/') : NULL;
        if ((inclusive = slash != NULL))
            memcpy(slash, "0", 2);
        free(cursor);
        cursor = key;
        key = NULL;
    }
    free(key);
    free(cursor);
    return rc;
}

static int mem_remove(void *self, const char *key)
{
    mem_self *m = self;
    mem_store *s = m->store;
    int rc = dimple_key_check(m->host, "remove", key);
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

DIMPLE_STORAGE_PLUGIN("memory", "1.0.0",
                      "in-process object store (sorted map), shareable by name",
                      .create = mem_create, .destroy = mem_destroy,
                      .put = mem_put, .get = mem_get, .list = mem_list,
                      .remove = mem_remove, .put_if_absent = mem_put_if_absent)
