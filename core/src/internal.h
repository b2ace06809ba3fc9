/*
 * internal.h — the one header every core file shares: struct dimple, the
 * error setter, and the hooks through which dimple.c wires the modules.
 *
 * Module map (DESIGN §1): dimple.c -> {config, loader, live, sync};
 * sync -> {batch, history, loader}; history -> track -> db; live -> db.
 * Shared core functions are dimple_<module>__<verb>; the rest is static.
 */
#ifndef DIMPLE_INTERNAL_H
#define DIMPLE_INTERNAL_H

#include "dimple.h"
#include <dimple/plugin.h>

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>

/* Room for the handle's error message (err.h's dimple_errsave has as
 * much; err.c checks). */
#define DIMPLE_ERRMSG_MAX 2048

/* A row of schema zdb, table ztab is about to change (op: SQLITE_INSERT,
 * _UPDATE, _DELETE; s: for sqlite3_preupdate_old/new). rowhook.h. */
typedef void dimple_rowhook_fn(struct dimple *db, sqlite3 *s, int op,
                               const char *zdb, const char *ztab);

typedef struct dimple_config dimple_config; /* config.h */
struct dimple_track;                        /* track.c */
struct dimple_live;                         /* live.c */
struct dimple_sync;                         /* sync.c */

/* A plugin instance bound to a role of the configuration. */
typedef struct dimple_instance {
    char *role;                  /* "storage", "cipher", "notifier.log" */
    const dimple_plugin *plugin; /* = &desc */
    dimple_plugin desc;          /* normalised copy (loader.c) */
    void *dl;                    /* dlopen handle, NULL if registered */
    union {                      /* normalised copy (loader.c) */
        dimple_storage_vtable storage;
        dimple_cipher_vtable cipher;
        dimple_resolver_vtable resolver;
        dimple_notifier_vtable notifier;
    } vt;
    void *self;       /* the plugin's instance */
    dimple_host host; /* handed to the plugin; ctx = this instance */
    struct dimple *db;
    dimple_store store; /* cipher: the storage view given to attach() */
} dimple_instance;

struct dimple {
    sqlite3 *sql;
    char *path;      /* database file */
    char *conf_path; /* NULL when opened by path */
    dimple_config *conf;
    char *tables;     /* synced tables spec: "*", "a,b", "" */
    char *plugin_dir; /* from [dimple] plugin_dir, or NULL */

    int errcode;
    char errmsg[DIMPLE_ERRMSG_MAX];

    dimple_instance *storage;  /* NULL if none configured */
    dimple_instance *cipher;   /* NULL if none configured */
    dimple_instance *resolver; /* [resolver], or NULL: sync creates the
                                  default lww lazily (loader.h) */
    dimple_instance **notifiers;
    size_t n_notifiers;

    /* Foundation bookkeeping (dimple.c, loader.c, remote.c). */
    char *migrations_dir; /* [dimple] migrations, resolved, or NULL */
    int busy_timeout_ms;
    int cache_size_kib; /* 0: SQLite's default page cache */
    int read_only;
    uint64_t remote_requests; /* storage calls made (remote.c) */
    int plugin_err;           /* set when a plugin reported an error
                                 through its host table during a call */
    unsigned opened;          /* OPENED_* bits of the hooks that ran
                                 (dimple.c): close only what opened */
    dimple_log_cb logger;     /* dimple_logger_set(); NULL: nowhere */
    void *logger_payload;

    /* Calls up from the lower files, set by the modules above them:
     * rowhook.c dispatches to the callbacks registered (one slot per user,
     * DIMPLE_ROWHOOK_*); db.c runs on_ddl after DDL through dimple_exec
     * (tracking's refresh) and on_finish at the end of every public call
     * that wrote (the live-query flush). dimple.c sets the two db hooks. */
    dimple_rowhook_fn *rowhook[2];
    int (*on_ddl)(struct dimple *db);
    void (*on_finish)(struct dimple *db);
    struct dimple_track *track;
    struct dimple_live *live;
    struct dimple_sync *sync;
};

#endif /* DIMPLE_INTERNAL_H */
