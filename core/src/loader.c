/*
 * loader.c — plugins: registry, search path, dlopen, the checks of
 * docs/plugins.md, descriptor and vtable normalisation, instances and their
 * host tables. See loader.h.
 */
#include "loader.h"

#include "buf.h"

#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DIMPLE_PLUGIN_INSTALL_DIR
#define DIMPLE_PLUGIN_INSTALL_DIR "/usr/local/lib/dimple/plugins"
#endif

#define MAX_REGISTERED 64
#define SLOT_END(type, slot) (offsetof(type, slot) + sizeof(void (*)(void)))

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const dimple_plugin *registered[MAX_REGISTERED];
static size_t n_registered;

const char *dimple_loader__kind_name(dimple_kind kind)
{
    switch (kind) {
    case DIMPLE_KIND_STORAGE:
        return "storage";
    case DIMPLE_KIND_CIPHER:
        return "cipher";
    case DIMPLE_KIND_RESOLVER:
        return "resolver";
    case DIMPLE_KIND_NOTIFIER:
        return "notifier";
    }
    return "?";
}

int dimple_plugin_register(const dimple_plugin *plugin)
{
    int rc = DIMPLE_OK;
    if (!plugin || !plugin->name)
        return DIMPLE_EINVAL;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < n_registered; i++)
        if (strcmp(registered[i]->name, plugin->name) == 0) {
            registered[i] = plugin; /* re-registering replaces */
            goto out;
        }
    if (n_registered == MAX_REGISTERED) {
        rc = DIMPLE_ELIMIT;
        goto out;
    }
    registered[n_registered++] = plugin;
out:
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

static const dimple_plugin *find_registered(const char *name)
{
    const dimple_plugin *p = NULL;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < n_registered && !p; i++)
        if (strcmp(registered[i]->name, name) == 0)
            p = registered[i];
    pthread_mutex_unlock(&reg_lock);
    return p;
}

/* Check a descriptor and fill normalised copies of it and its vtable
 * (norm->desc, norm->vt; norm->plugin points at the copy). want_kind 0
 * means any kind; want_name NULL means any name. On refusal, err gets one
 * line naming `where` (the file). */
static int check(const dimple_plugin *raw, const char *where,
                 dimple_kind want_kind, const char *want_name,
                 dimple_instance *norm, char *err, size_t errlen)
{
    const void *vt;
    size_t size, have, min;
    const char *missing = NULL;
    const dimple_plugin *d = &norm->desc;
    if (!raw) {
        snprintf(err, errlen, "%s: dimple_plugin_entry returned NULL", where);
        return DIMPLE_EPLUGIN;
    }
    /* abi is the first member in every ABI: safe to read before the rest */
    if (raw->abi != DIMPLE_ABI) {
        snprintf(err, errlen,
                 "%s: built for plugin ABI %u, this core needs ABI %u: "
                 "rebuild the plugin against this core's dimple/plugin.h",
                 where, (unsigned)raw->abi, (unsigned)DIMPLE_ABI);
        return DIMPLE_EPLUGIN;
    }
    min = offsetof(dimple_plugin, vt) + sizeof raw->vt;
    if (raw->size < min) {
        snprintf(err, errlen,
                 "%s: descriptor size %zu is smaller than ABI %u's minimum "
                 "%zu (set .size = sizeof(dimple_plugin))",
                 where, raw->size, (unsigned)DIMPLE_ABI, min);
        return DIMPLE_EPLUGIN;
    }
    /* A newer plugin's extra members are ignored, an older one's missing
     * members read as zero: the descriptor grows without an ABI bump. */
    memset(&norm->desc, 0, sizeof norm->desc);
    memcpy(&norm->desc, raw,
           raw->size < sizeof norm->desc ? raw->size : sizeof norm->desc);
    norm->plugin = &norm->desc;
    if (!d->name || (want_name && strcmp(d->name, want_name) != 0)) {
        snprintf(err, errlen,
                 "%s: the plugin calls itself '%s' but the file is named "
                 "for '%s'",
                 where, d->name ? d->name : "(null)",
                 want_name ? want_name : "?");
        return DIMPLE_EPLUGIN;
    }
    switch (d->kind) {
    case DIMPLE_KIND_STORAGE:
        vt = d->vt.storage;
        have = sizeof(dimple_storage_vtable);
        min = SLOT_END(dimple_storage_vtable, remove);
        break;
    case DIMPLE_KIND_CIPHER:
        vt = d->vt.cipher;
        have = sizeof(dimple_cipher_vtable);
        min = SLOT_END(dimple_cipher_vtable, decrypt);
        break;
    case DIMPLE_KIND_RESOLVER:
        vt = d->vt.resolver;
        have = sizeof(dimple_resolver_vtable);
        min = SLOT_END(dimple_resolver_vtable, resolve);
        break;
    case DIMPLE_KIND_NOTIFIER:
        vt = d->vt.notifier;
        have = sizeof(dimple_notifier_vtable);
        min = SLOT_END(dimple_notifier_vtable, notify);
        break;
    default:
        snprintf(err, errlen, "%s: unknown plugin kind %d", where,
                 (int)d->kind);
        return DIMPLE_EPLUGIN;
    }
    if (want_kind && d->kind != want_kind) {
        snprintf(err, errlen, "%s: '%s' is a %s plugin, not a %s plugin", where,
                 d->name, dimple_loader__kind_name(d->kind),
                 dimple_loader__kind_name(want_kind));
        return DIMPLE_EPLUGIN;
    }
    if (!vt) {
        snprintf(err, errlen, "%s: the descriptor has no vtable", where);
        return DIMPLE_EPLUGIN;
    }
    size = *(const size_t *)vt;
    if (size < min) {
        snprintf(err, errlen,
                 "%s: %s vtable size %zu is smaller than ABI %u's minimum "
                 "%zu",
                 where, dimple_loader__kind_name(d->kind), size,
                 (unsigned)DIMPLE_ABI, min);
        return DIMPLE_EPLUGIN;
    }
    /* Normalise once: an older plugin gets NULL in newer slots. */
    memset(&norm->vt, 0, sizeof norm->vt);
    memcpy(&norm->vt, vt, size < have ? size : have);
    switch (d->kind) {
    case DIMPLE_KIND_STORAGE: {
        const dimple_storage_vtable *s = &norm->vt.storage;
        missing = !s->create    ? "create"
                  : !s->destroy ? "destroy"
                  : !s->put     ? "put"
                  : !s->get     ? "get"
                  : !s->list    ? "list"
                  : !s->remove  ? "remove"
                                : NULL;
        break;
    }
    case DIMPLE_KIND_CIPHER: {
        const dimple_cipher_vtable *c = &norm->vt.cipher;
        missing = !c->create    ? "create"
                  : !c->destroy ? "destroy"
                  : !c->encrypt ? "encrypt"
                  : !c->decrypt ? "decrypt"
                                : NULL;
        break;
    }
    case DIMPLE_KIND_RESOLVER: {
        const dimple_resolver_vtable *r = &norm->vt.resolver;
        missing = !r->create    ? "create"
                  : !r->destroy ? "destroy"
                  : !r->resolve ? "resolve"
                                : NULL;
        break;
    }
    case DIMPLE_KIND_NOTIFIER: {
        const dimple_notifier_vtable *n = &norm->vt.notifier;
        missing = !n->create    ? "create"
                  : !n->destroy ? "destroy"
                  : !n->notify  ? "notify"
                                : NULL;
        break;
    }
    }
    if (missing) {
        snprintf(err, errlen, "%s: required %s slot '%s' is NULL", where,
                 dimple_loader__kind_name(d->kind), missing);
        return DIMPLE_EPLUGIN;
    }
    return DIMPLE_OK;
}

/* dlopen path and check it. On success *dl and *desc are set (dl stays
 * open); on failure nothing stays open and err says why. */
static int open_file(const char *path, dimple_kind want_kind,
                     const char *want_name, dimple_instance *norm, void **dl,
                     const dimple_plugin **desc, char *err, size_t errlen)
{
    dimple_plugin_entry_fn *entry;
    void *h;
    int rc;
    *dl = NULL;
    *desc = NULL;
    dlerror();
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(err, errlen, "%s: cannot load: %s", path,
                 e ? e : "dlopen failed");
        return DIMPLE_EPLUGIN;
    }
    /* POSIX: a function pointer fits in a void *. */
    *(void **)&entry = dlsym(h, "dimple_plugin_entry");
    if (!entry) {
        snprintf(err, errlen,
                 "%s: not a dimple plugin (no dimple_plugin_entry symbol)",
                 path);
        dlclose(h);
        return DIMPLE_EPLUGIN;
    }
    *desc = entry();
    rc = check(*desc, path, want_kind, want_name, norm, err, errlen);
    if (rc < 0) {
        *desc = NULL;
        dlclose(h);
        return rc;
    }
    *dl = h;
    return DIMPLE_OK;
}

/* The search path as a list of folders: plugin_dir, $DIMPLE_PLUGIN_PATH,
 * the install folder (empty entries skipped, duplicates dropped). The
 * strings live in *store (free it). */
static size_t search_dirs(const dimple *db, char **store, const char **dirs,
                          size_t max)
{
    const char *env = getenv("DIMPLE_PLUGIN_PATH");
    const char *pd = db && db->plugin_dir ? db->plugin_dir : "";
    size_t len = strlen(pd) + 1 + (env ? strlen(env) : 0) + 1 +
                 strlen(DIMPLE_PLUGIN_INSTALL_DIR) + 1;
    char *s = malloc(len), *p;
    size_t n = 0;
    *store = s;
    if (!s)
        return 0;
    snprintf(s, len, "%s:%s:%s", pd, env ? env : "", DIMPLE_PLUGIN_INSTALL_DIR);
    for (p = s; p && n < max;) {
        char *colon = strchr(p, ':');
        int dup = 0;
        if (colon)
            *colon = '\0';
        for (size_t i = 0; i < n; i++)
            dup |= strcmp(dirs[i], p) == 0;
        if (*p && !dup)
            dirs[n++] = p;
        p = colon ? colon + 1 : NULL;
    }
    return n;
}

static void host_error(void *ctx, int code, const char *msg)
{
    dimple_instance *inst = ctx;
    dimple__seterr(inst->db, code < 0 ? code : DIMPLE_ERROR, "%s %s: %s",
                   inst->role, inst->plugin->name, msg ? msg : "error");
    inst->db->plugin_err = 1;
}

static void host_log(void *ctx, int level, const char *msg)
{
    dimple_instance *inst = ctx;
    dimple *db = inst->db;
    char source[256];
    if (!db->logger)
        return;
    snprintf(source, sizeof source, "%s %s", inst->role, inst->plugin->name);
    db->logger(db->logger_payload, level, source, msg ? msg : "");
}

void dimple_loader__begin(dimple *db)
{
    db->plugin_err = 0;
}

int dimple_loader__fail(dimple_instance *inst, int rc, const char *what)
{
    dimple *db = inst->db;
    if (rc >= 0)
        return rc;
    if (db->plugin_err && db->errcode < 0)
        db->errcode = rc; /* keep the plugin's message, its return code */
    else
        dimple__seterr(db, rc, "%s %s: %s failed (%s)", inst->role,
                       inst->plugin->name, what, dimple_errstr(rc));
    return rc;
}

/* "file:line: " of role's `plugin = name` in db's configuration, so a
 * refusal points at the line to fix; "" for a plugin the core picked (the
 * default resolver). */
static const char *where(const dimple *db, const char *role, const char *name,
                         char *buf, size_t cap)
{
    const char *conf = dimple_config__get(db->conf, role, "plugin");
    int line = dimple_config__line(db->conf, role, "plugin");
    buf[0] = '\0';
    if (conf && name && strcmp(conf, name) == 0 && line > 0)
        snprintf(buf, cap, "%s:%d: ", dimple_config__path(db->conf), line);
    return buf;
}

static int name_ok(const char *name)
{
    return name && *name && !strchr(name, '/') && !strstr(name, "..") &&
           strlen(name) < 128;
}

int dimple_loader__instance(dimple *db, const char *role, dimple_kind kind,
                            const char *name, const dimple_kv *conf,
                            dimple_instance **out)
{
    static const dimple_kv none[] = {{NULL, NULL, 0}};
    dimple_instance *inst = NULL;
    const dimple_plugin *desc;
    char err[1024], at[512], *store = NULL, *path = NULL;
    const char *dirs[64];
    size_t n_dirs;
    int rc;
    *out = NULL;
    where(db, role, name, at, sizeof at);
    if (!name_ok(name))
        return dimple__seterr(db, DIMPLE_EPLUGIN,
                              "%s[%s]: plugin name '%s' refused (empty, too "
                              "long, or contains '/' or '..')",
                              at, role, name ? name : "");
    inst = calloc(1, sizeof *inst);
    if (!inst || !(inst->role = strdup(role))) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    inst->db = db;
    desc = find_registered(name);
    if (desc) {
        rc = check(desc, "(built in)", kind, name, inst, err, sizeof err);
        if (rc < 0) {
            rc = dimple__seterr(db, rc, "%s[%s] plugin %s %s", at, role, name,
                                err);
            goto out;
        }
    } else {
        size_t used = 0;
        char list[1024];
        n_dirs = search_dirs(db, &store, dirs, 64);
        if (!store) {
            rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n_dirs && !inst->dl; i++) {
            size_t len = strlen(dirs[i]) + strlen(name) + 16;
            free(path);
            path = malloc(len);
            if (!path) {
                rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
                goto out;
            }
            snprintf(path, len, "%s/dimple-%s.so", dirs[i], name);
            if (access(path, F_OK) != 0)
                continue;
            rc = open_file(path, kind, name, inst, &inst->dl, &desc, err,
                           sizeof err);
            if (rc < 0) {
                rc = dimple__seterr(db, rc, "%s[%s] %s", at, role, err);
                goto out;
            }
        }
        if (!inst->dl) {
            list[0] = '\0';
            for (size_t i = 0; i < n_dirs; i++) {
                int w = snprintf(list + used, sizeof list - used, "%s%s",
                                 i ? ", " : "", dirs[i]);
                if (w < 0 || (size_t)w >= sizeof list - used)
                    break;
                used += (size_t)w;
            }
            rc = dimple__seterr(db, DIMPLE_ENOTFOUND,
                                "%s[%s] plugin '%s' not found: no "
                                "dimple-%s.so (searched: %s)",
                                at, role, name, name,
                                n_dirs ? list : "no folders");
            goto out;
        }
    }
    inst->host.size = sizeof inst->host;
    inst->host.ctx = inst;
    inst->host.error = host_error;
    inst->host.log = host_log;
    inst->host.config_file = db->conf_path;
    inst->host.section = inst->role;
    dimple_loader__begin(db);
    /* create is the second slot of every vtable kind */
    switch (kind) {
    case DIMPLE_KIND_STORAGE:
        rc = inst->vt.storage.create(&inst->self, conf ? conf : none,
                                     &inst->host);
        break;
    case DIMPLE_KIND_CIPHER:
        rc = inst->vt.cipher.create(&inst->self, conf ? conf : none,
                                    &inst->host);
        break;
    case DIMPLE_KIND_RESOLVER:
        rc = inst->vt.resolver.create(&inst->self, conf ? conf : none,
                                      &inst->host);
        break;
    case DIMPLE_KIND_NOTIFIER:
        rc = inst->vt.notifier.create(&inst->self, conf ? conf : none,
                                      &inst->host);
        break;
    default:
        rc = DIMPLE_EINVAL;
    }
    if (rc < 0) {
        dimple_loader__fail(inst, rc, "create");
        goto out;
    }
    *out = inst;
    inst = NULL;
    rc = DIMPLE_OK;
out:
    if (inst) {
        if (inst->dl)
            dlclose(inst->dl);
        free(inst->role);
        free(inst);
    }
    free(path);
    free(store);
    return rc;
}

void dimple_loader__destroy(dimple_instance *inst)
{
    void (*destroy)(void *) = NULL;
    if (!inst)
        return;
    switch (inst->plugin->kind) {
    case DIMPLE_KIND_STORAGE:
        destroy = inst->vt.storage.destroy;
        break;
    case DIMPLE_KIND_CIPHER:
        destroy = inst->vt.cipher.destroy;
        break;
    case DIMPLE_KIND_RESOLVER:
        destroy = inst->vt.resolver.destroy;
        break;
    case DIMPLE_KIND_NOTIFIER:
        destroy = inst->vt.notifier.destroy;
        break;
    }
    if (destroy)
        destroy(inst->self);
    if (inst->dl)
        dlclose(inst->dl);
    free(inst->role);
    free(inst);
}

static int role_instance(dimple *db, const char *role, dimple_kind kind,
                         dimple_instance **slot)
{
    const char *name = dimple_config__get(db->conf, role, "plugin");
    if (!name)
        return DIMPLE_OK;
    return dimple_loader__instance(
        db, role, kind, name, dimple_config__section(db->conf, role), slot);
}

int dimple_loader__open_storage(dimple *db)
{
    int rc;
    if ((rc = role_instance(db, "storage", DIMPLE_KIND_STORAGE, &db->storage)) <
            0 ||
        (rc = role_instance(db, "cipher", DIMPLE_KIND_CIPHER, &db->cipher)) < 0)
        return rc;
    return DIMPLE_OK;
}

int dimple_loader__open_others(dimple *db)
{
    int rc;
    const char *sec;
    if ((rc = role_instance(db, "resolver", DIMPLE_KIND_RESOLVER,
                            &db->resolver)) < 0)
        return rc;
    for (size_t i = 0; (sec = dimple_config__section_name(db->conf, i)); i++) {
        dimple_instance *inst, **p;
        if (strncmp(sec, "notifier.", 9) != 0)
            continue;
        p = realloc(db->notifiers, (db->n_notifiers + 1) * sizeof *p);
        if (!p)
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        db->notifiers = p;
        if ((rc = role_instance(db, sec, DIMPLE_KIND_NOTIFIER, &inst)) < 0)
            return rc;
        db->notifiers[db->n_notifiers++] = inst;
    }
    return DIMPLE_OK;
}

void dimple_loader__close_all(dimple *db)
{
    while (db->n_notifiers)
        dimple_loader__destroy(db->notifiers[--db->n_notifiers]);
    free(db->notifiers);
    db->notifiers = NULL;
    dimple_loader__destroy(db->resolver);
    db->resolver = NULL;
    dimple_loader__destroy(db->cipher);
    db->cipher = NULL;
    dimple_loader__destroy(db->storage);
    db->storage = NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every dimple-*.so in dir, sorted, reported through cb. */
static int list_dir(const char *dir, dimple_plugin_cb cb, void *payload)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = DIMPLE_OK;
    if (!d)
        return DIMPLE_OK; /* a folder on the path need not exist */
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 10 || strncmp(e->d_name, "dimple-", 7) != 0 ||
            strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        if (dimple__grow((void **)&names, &cap, n + 1, sizeof *names) < 0) {
            rc = DIMPLE_ENOMEM;
            goto out;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = DIMPLE_ENOMEM;
            goto out;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096], want[256], err[1024];
        dimple_instance norm;
        const dimple_plugin *desc;
        dimple_plugin_info info = {0};
        void *dl;
        size_t len = strlen(names[i]);
        snprintf(want, sizeof want, "%.*s", (int)(len - 10), names[i] + 7);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        info.file = path;
        if (open_file(path, 0, want, &norm, &dl, &desc, err, sizeof err) < 0) {
            rc = cb(payload, &info, err);
            continue;
        }
        info.name = norm.desc.name;
        info.kind = dimple_loader__kind_name(norm.desc.kind);
        info.version = norm.desc.version;
        info.description = norm.desc.description;
        rc = cb(payload, &info, NULL);
        dlclose(dl);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int dimple_plugin_list(dimple *db, dimple_plugin_cb cb, void *payload)
{
    const dimple_plugin *regs[MAX_REGISTERED];
    const char *dirs[64];
    char *store = NULL;
    size_t n, n_dirs;
    int rc = DIMPLE_OK;
    if (!cb)
        return db ? dimple__seterr(db, DIMPLE_EINVAL, "no callback")
                  : DIMPLE_EINVAL;
    pthread_mutex_lock(&reg_lock);
    n = n_registered;
    memcpy(regs, registered, n * sizeof *regs);
    pthread_mutex_unlock(&reg_lock);
    for (size_t i = 0; i < n && rc == 0; i++) {
        dimple_plugin_info info = {
            regs[i]->name, dimple_loader__kind_name(regs[i]->kind),
            regs[i]->version, "(built in)", regs[i]->description};
        rc = cb(payload, &info, NULL);
    }
    n_dirs = search_dirs(db, &store, dirs, 64);
    if (!store)
        return db ? dimple__seterr(db, DIMPLE_ENOMEM, "out of memory")
                  : DIMPLE_ENOMEM;
    for (size_t i = 0; i < n_dirs && rc == 0; i++)
        rc = list_dir(dirs[i], cb, payload);
    free(store);
    if (db) {
        if (rc == DIMPLE_ENOMEM)
            return dimple__seterr(db, rc, "out of memory");
        if (rc == 0)
            dimple__ok(db);
    }
    return rc;
}
