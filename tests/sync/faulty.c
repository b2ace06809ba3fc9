/*
 * dimple-faulty — a fault-injecting storage plugin for the sync tests.
 *
 * It wraps another storage plugin (dlopen'd like the core does) and, with a
 * seeded random generator, makes a share of calls misbehave the way real
 * storage does:
 *   fail     = PERCENT  the call fails with DIMPLE_EIO before reaching the
 *                       store (a list may fail after delivering some keys)
 *   torn     = PERCENT  a put stores a truncated object and reports EIO
 *                       (a non-atomic upload cut short)
 *   truncate = PERCENT  a get returns a truncated object and reports OK
 *                       (a connection cut without an error)
 *   seed     = N        the generator's seed (default 1)
 *   kill_at  = N        SIGKILL this process on the N-th storage call
 *   kill_after = 0|1    with kill_at: die after (1) or before (0) the call
 *   inner    = NAME     the wrapped plugin (default memory)
 *   inner_dir = DIR     where to find dimple-NAME.so (default: the folders
 *                       of $DIMPLE_PLUGIN_PATH)
 * Every other key goes to the inner plugin (name, path, fsync, ...).
 * A test fixture: it may kill its process, which a real plugin never does.
 */
#include <dimple/plugin.h>

#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct faulty {
    const dimple_host *host;
    void *dl;
    const dimple_storage_vtable *in;
    void *inner;
    unsigned fail, torn, truncate;
    uint64_t rng;
    long calls, kill_at;
    int kill_after;
} faulty;

static uint64_t rnd(faulty *f)
{
    /* xorshift64*: tiny, seeded, good enough to pick faults */
    f->rng ^= f->rng >> 12;
    f->rng ^= f->rng << 25;
    f->rng ^= f->rng >> 27;
    return f->rng * 0x2545F4914F6CDD1DULL;
}

static int chance(faulty *f, unsigned percent)
{
    return percent && rnd(f) % 100 < percent;
}

static void maybe_die(faulty *f, int after)
{
    if (f->kill_at && f->calls == f->kill_at && f->kill_after == after)
        kill(getpid(), SIGKILL);
}

static int count_call(faulty *f)
{
    f->calls++;
    maybe_die(f, 0);
    if (chance(f, f->fail))
        return dimple_errorf(f->host, DIMPLE_EIO, "injected fault on call %ld",
                             f->calls);
    return DIMPLE_OK;
}

static int load_inner(faulty *f, const char *name, const char *dir)
{
    char path[4096];
    const char *env = getenv("DIMPLE_PLUGIN_PATH");
    char *dirs = strdup(dir ? dir : env ? env : "");
    if (!dirs)
        return DIMPLE_ENOMEM;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !f->dl;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/dimple-%s.so", d, name);
        if (access(path, R_OK) == 0)
            f->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    free(dirs);
    if (!f->dl)
        return dimple_errorf(f->host, DIMPLE_EPLUGIN,
                             "inner plugin dimple-%s.so not found", name);
    dimple_plugin_entry_fn *entry =
        (dimple_plugin_entry_fn *)dlsym(f->dl, "dimple_plugin_entry");
    const dimple_plugin *p = entry ? entry() : NULL;
    if (!p || p->abi != DIMPLE_ABI || p->kind != DIMPLE_KIND_STORAGE)
        return dimple_errorf(f->host, DIMPLE_EPLUGIN,
                             "dimple-%s.so is not a storage plugin", name);
    f->in = p->vt.storage;
    return DIMPLE_OK;
}

static int parse_uint(const dimple_kv *kv, long max, long *out)
{
    char *end;
    long v = strtol(kv->value, &end, 10);
    if (!*kv->value || *end || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

static void faulty_destroy(void *self)
{
    faulty *f = self;
    if (!f)
        return;
    if (f->inner)
        f->in->destroy(f->inner);
    if (f->dl)
        dlclose(f->dl);
    free(f);
}

static int faulty_create(void **self, const dimple_kv *conf,
                         const dimple_host *host)
{
    faulty *f = calloc(1, sizeof *f);
    dimple_kv *rest = NULL;
    const char *inner = "memory", *inner_dir = NULL;
    size_t n = 0, k = 0;
    int rc;

    if (!f)
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    f->host = host;
    f->rng = 1;
    for (const dimple_kv *c = conf; c && c->key; c++)
        n++;
    rest = calloc(n + 1, sizeof *rest);
    if (!rest) {
        rc = dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    for (const dimple_kv *c = conf; c && c->key; c++) {
        long v = 0;
        if (strcmp(c->key, "inner") == 0) {
            inner = c->value;
        } else if (strcmp(c->key, "inner_dir") == 0) {
            inner_dir = c->value;
        } else if (strcmp(c->key, "fail") == 0 || strcmp(c->key, "torn") == 0 ||
                   strcmp(c->key, "truncate") == 0) {
            if (parse_uint(c, 100, &v)) {
                rc = dimple_errorf(host, DIMPLE_ECONFIG,
                                   "line %d: %s must be a percentage", c->line,
                                   c->key);
                goto out;
            }
            if (c->key[0] == 'f')
                f->fail = (unsigned)v;
            else if (c->key[1] == 'o')
                f->torn = (unsigned)v;
            else
                f->truncate = (unsigned)v;
        } else if (strcmp(c->key, "seed") == 0 ||
                   strcmp(c->key, "kill_at") == 0 ||
                   strcmp(c->key, "kill_after") == 0) {
            if (parse_uint(c, 1L << 30, &v)) {
                rc = dimple_errorf(host, DIMPLE_ECONFIG,
                                   "line %d: %s must be a number", c->line,
                                   c->key);
                goto out;
            }
            if (c->key[0] == 's')
                f->rng = (uint64_t)v * 0x9E3779B97F4A7C15ULL + 1;
            else if (strcmp(c->key, "kill_at") == 0)
                f->kill_at = v;
            else
                f->kill_after = v != 0;
        } else {
            rest[k++] = *c;
        }
    }
    if ((rc = load_inner(f, inner, inner_dir)))
        goto out;
    if ((rc = f->in->create(&f->inner, rest, host)))
        goto out;
    *self = f;
    f = NULL;
out:
    free(rest);
    faulty_destroy(f);
    return rc;
}

static int faulty_put(void *self, const char *key, const void *data, size_t len)
{
    faulty *f = self;
    int rc = count_call(f);
    if (rc)
        return rc;
    if (len > 1 && chance(f, f->torn)) {
        size_t cut = (size_t)(rnd(f) % len);
        rc = f->in->put(f->inner, key, data, cut);
        maybe_die(f, 1);
        return rc ? rc
                  : dimple_errorf(f->host, DIMPLE_EIO,
                                  "injected torn put of %s (%zu of %zu bytes)",
                                  key, cut, len);
    }
    rc = f->in->put(f->inner, key, data, len);
    maybe_die(f, 1);
    return rc;
}

typedef struct grab {
    unsigned char *p;
    size_t n, cap;
} grab;

static int grab_write(void *ctx, const void *p, size_t n)
{
    grab *g = ctx;
    if (g->cap - g->n < n) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        while (cap - g->n < n)
            cap *= 2;
        unsigned char *q = realloc(g->p, cap);
        if (!q)
            return DIMPLE_ENOMEM;
        g->p = q;
        g->cap = cap;
    }
    memcpy(g->p + g->n, p, n);
    g->n += n;
    return 0;
}

static int faulty_put_if_absent(void *self, const char *key, const void *data,
                                size_t len)
{
    faulty *f = self;
    int rc = count_call(f);
    if (rc)
        return rc;
    if (f->in->put_if_absent) {
        rc = f->in->put_if_absent(f->inner, key, data, len);
    } else {
        /* emulated as the core would: not atomic, good enough for tests */
        grab g = {0};
        dimple_sink s = {grab_write, &g};
        rc = f->in->get(f->inner, key, &s);
        free(g.p);
        if (rc == DIMPLE_OK)
            rc = DIMPLE_EEXISTS;
        else if (rc == DIMPLE_ENOTFOUND)
            rc = f->in->put(f->inner, key, data, len);
    }
    maybe_die(f, 1);
    return rc;
}

static int faulty_get(void *self, const char *key, const dimple_sink *out)
{
    faulty *f = self;
    int rc = count_call(f);
    if (rc)
        return rc;
    if (!chance(f, f->truncate)) {
        rc = f->in->get(f->inner, key, out);
        maybe_die(f, 1);
        return rc;
    }
    grab g = {0};
    dimple_sink s = {grab_write, &g};
    rc = f->in->get(f->inner, key, &s);
    maybe_die(f, 1);
    if (rc == DIMPLE_OK && g.n > 1)
        rc = dimple_sink_write(out, g.p, (size_t)(rnd(f) % (g.n - 1)) + 1);
    else if (rc == DIMPLE_OK)
        rc = dimple_sink_write(out, g.p, g.n);
    free(g.p);
    return rc;
}

typedef struct list_ctx {
    faulty *f;
    dimple_list_cb cb;
    void *payload;
    long fail_after; /* -1: never */
} list_ctx;

static int list_cb(void *payload, const char *key)
{
    list_ctx *l = payload;
    if (l->fail_after == 0)
        return dimple_errorf(l->f->host, DIMPLE_EIO,
                             "injected fault while listing, after %s", key);
    if (l->fail_after > 0)
        l->fail_after--;
    return l->cb(l->payload, key);
}

static int faulty_list(void *self, const char *prefix, const char *start_after,
                       unsigned flags, dimple_list_cb cb, void *payload)
{
    faulty *f = self;
    list_ctx l = {f, cb, payload, -1};
    f->calls++;
    maybe_die(f, 0);
    if (chance(f, f->fail)) {
        if (rnd(f) % 2)
            return dimple_errorf(f->host, DIMPLE_EIO,
                                 "injected fault on list %s", prefix);
        l.fail_after = (long)(rnd(f) % 4);
    }
    int rc = f->in->list(f->inner, prefix, start_after, flags, list_cb, &l);
    maybe_die(f, 1);
    return rc;
}

static int faulty_remove(void *self, const char *key)
{
    faulty *f = self;
    int rc = count_call(f);
    if (rc)
        return rc;
    rc = f->in->remove(f->inner, key);
    maybe_die(f, 1);
    return rc;
}

static const dimple_storage_vtable faulty_vtable = {
    .size = sizeof(dimple_storage_vtable),
    .create = faulty_create,
    .destroy = faulty_destroy,
    .put = faulty_put,
    .get = faulty_get,
    .list = faulty_list,
    .remove = faulty_remove,
    .put_if_absent = faulty_put_if_absent,
};

static const dimple_plugin faulty_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_STORAGE,
    .name = "faulty",
    .version = "1.0.0",
    .description = "test fixture: wraps a storage plugin and injects faults",
    .vt.storage = &faulty_vtable,
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &faulty_plugin;
}
