/*
 * dimple.c — the handle: open (configuration, database, plugins, modules
 * in the order internal.h states), close, errors, small accessors.
 */
#include "internal.h"

#include "config.h"
#include "db.h"
#include "live_hooks.h"
#include "loader.h"
#include "opts.h"
#include "remote.h"
#include "sync_hooks.h"
#include "track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BUSY_MS                                                        \
    ((int)dimple_config__int(NULL, DIMPLE_CONF_BUSY_TIMEOUT_MS))
#define MAX_CACHE_KIB ((int)dimple_config__keys[DIMPLE_CONF_CACHE_SIZE_KIB].max)

enum { OPENED_TRACK = 1u, OPENED_LIVE = 2u, OPENED_SYNC = 4u };

const char *dimple_version(void)
{
    return DIMPLE_VERSION;
}

static dimple *alloc_handle(void)
{
    dimple *db = calloc(1, sizeof *db);
    if (db) {
        dimple__ok(db);
        db->busy_timeout_ms = DEFAULT_BUSY_MS;
    }
    return db;
}

/* The [dimple] keys the handle keeps (loading validated them all). */
static int read_core_keys(dimple *db, int need_database)
{
    const dimple_config *cfg = db->conf;
    const char *v;
    v = dimple_config__get(cfg, "dimple", "database");
    if (!v || !*v) {
        if (need_database)
            return dimple__seterr(db, DIMPLE_ECONFIG,
                                  "%s: [dimple] database = FILE is not set",
                                  dimple_config__path(cfg));
    } else if (strcmp(v, ":memory:") == 0 || strncmp(v, "file:", 5) == 0) {
        db->path = strdup(v); /* SQLite names, not files to resolve */
    } else {
        db->path = dimple_config__resolve(cfg, v);
    }
    if (v && *v && !db->path)
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    v = dimple_config__get(cfg, "dimple", "tables");
    if (!(db->tables = strdup(v ? v : "*")))
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    v = dimple_config__get(cfg, "dimple", "plugin_dir");
    if (v && *v && !(db->plugin_dir = dimple_config__resolve(cfg, v)))
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    v = dimple_config__get(cfg, "dimple", "migrations");
    if (v && *v && !(db->migrations_dir = dimple_config__resolve(cfg, v)))
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    db->busy_timeout_ms =
        (int)dimple_config__int(cfg, DIMPLE_CONF_BUSY_TIMEOUT_MS);
    db->cache_size_kib =
        (int)dimple_config__int(cfg, DIMPLE_CONF_CACHE_SIZE_KIB);
    return DIMPLE_OK;
}

static int open_modules(dimple *db)
{
    int rc;
    /* A module's __close runs if its __open ran, even when it failed, so
     * a failing __open need not undo its own partial work. */
    db->opened |= OPENED_TRACK;
    db->on_ddl = dimple_track__refresh;
    if ((rc = dimple_track__open(db)) < 0)
        return rc;
    db->opened |= OPENED_LIVE;
    db->on_finish = dimple_live__flush;
    if ((rc = dimple_live__open(db)) < 0)
        return rc;
    db->opened |= OPENED_SYNC;
    if ((rc = dimple_sync__open(db)) < 0)
        return rc;
    return DIMPLE_OK;
}

/* db_only: open by path (no configuration). check: configuration and
 * plugins only, no database. */
static int open_conf(dimple **out, const char *conf_path, int check)
{
    dimple *db = alloc_handle();
    int rc;
    *out = db;
    if (!db)
        return DIMPLE_ENOMEM;
    if (!conf_path || !*conf_path)
        return dimple__seterr(db, DIMPLE_EINVAL, "no configuration file given");
    if (!(db->conf_path = strdup(conf_path)))
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    if ((rc = dimple_config__load(db, conf_path, &db->conf)) < 0 ||
        (rc = read_core_keys(db, 1)) < 0)
        return rc;
    /* Plugins first: a bad plugin section must not leave a new, empty
     * database file behind. */
    if ((rc = dimple_loader__open_storage(db)) < 0 ||
        (rc = dimple_remote__attach(db)) < 0 ||
        (rc = dimple_loader__open_others(db)) < 0)
        return rc;
    if (!check && (rc = dimple_db__open(db)) < 0)
        return rc;
    if (!check && (rc = open_modules(db)) < 0)
        return rc;
    return dimple__ok(db);
}

int dimple_open(dimple **out, const char *conf_path)
{
    if (!out)
        return DIMPLE_EINVAL;
    return open_conf(out, conf_path, 0);
}

int dimple_config_check(dimple **out, const char *conf_path)
{
    if (!out)
        return DIMPLE_EINVAL;
    return open_conf(out, conf_path, 1);
}

int dimple_open_path(dimple **out, const char *db_path,
                     const dimple_options *opts)
{
    dimple_options o = DIMPLE_OPTIONS_INIT;
    dimple *db;
    int rc;
    if (!out)
        return DIMPLE_EINVAL;
    *out = db = alloc_handle();
    if (!db)
        return DIMPLE_ENOMEM;
    /* The first published layout ended with read_only. */
    if ((rc = dimple__opts(db, &o, sizeof o,
                           offsetof(dimple_options, cache_size_kib), opts,
                           "dimple_options")) < 0)
        return rc;
    if (!db_path || !*db_path)
        return dimple__seterr(db, DIMPLE_EINVAL, "no database path given");
    if (o.busy_timeout_ms < 0)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "busy_timeout_ms must not be negative");
    if (o.cache_size_kib < 0 || o.cache_size_kib > MAX_CACHE_KIB)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "cache_size_kib must be in 0..%d", MAX_CACHE_KIB);
    db->path = strdup(db_path);
    db->tables = strdup(o.tables ? o.tables : "*");
    if (!db->path || !db->tables)
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    if (o.busy_timeout_ms)
        db->busy_timeout_ms = o.busy_timeout_ms;
    db->read_only = o.read_only != 0;
    db->cache_size_kib = o.cache_size_kib;
    if ((rc = dimple_db__open(db)) < 0 || (rc = open_modules(db)) < 0)
        return rc;
    return dimple__ok(db);
}

void dimple_close(dimple *db)
{
    if (!db)
        return;
    if (db->opened & OPENED_SYNC)
        dimple_sync__close(db);
    db->on_finish = NULL;
    if (db->opened & OPENED_LIVE)
        dimple_live__close(db);
    db->on_ddl = NULL;
    if (db->opened & OPENED_TRACK)
        dimple_track__close(db);
    db->opened = 0;
    dimple_loader__close_all(db);
    dimple_db__close(db);
    dimple_config__free(db->conf);
    free(db->path);
    free(db->conf_path);
    free(db->tables);
    free(db->plugin_dir);
    free(db->migrations_dir);
    free(db);
}

void dimple_logger_set(dimple *db, dimple_log_cb cb, void *payload)
{
    if (!db)
        return;
    db->logger = cb;
    db->logger_payload = cb ? payload : NULL;
}

const char *dimple_db_path(const dimple *db)
{
    return db ? db->path : NULL;
}

const char *dimple_tables(const dimple *db)
{
    return db && db->tables ? db->tables : "";
}

const char *dimple_migrations_dir(const dimple *db)
{
    return db ? db->migrations_dir : NULL;
}

const char *dimple_plugin_role(const dimple *db, size_t i)
{
    const dimple_instance *fixed[3];
    size_t n = 0;
    if (!db)
        return NULL;
    if (db->storage)
        fixed[n++] = db->storage;
    if (db->cipher)
        fixed[n++] = db->cipher;
    if (db->resolver)
        fixed[n++] = db->resolver;
    if (i < n)
        return fixed[i]->role;
    i -= n;
    return i < db->n_notifiers ? db->notifiers[i]->role : NULL;
}

const char *dimple_plugin_in_use(const dimple *db, const char *role)
{
    const dimple_instance *inst = NULL;
    if (!db || !role)
        return NULL;
    if (strcmp(role, "storage") == 0)
        inst = db->storage;
    else if (strcmp(role, "cipher") == 0)
        inst = db->cipher;
    else if (strcmp(role, "resolver") == 0)
        inst = db->resolver;
    else
        for (size_t k = 0; k < db->n_notifiers && !inst; k++)
            if (strcmp(db->notifiers[k]->role, role) == 0)
                inst = db->notifiers[k];
    return inst ? inst->plugin->name : NULL;
}
