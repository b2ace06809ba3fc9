/*
 * internal.h — the types every core file shares: struct dimple (the
 * handle) and dimple_instance (a plugin bound to a role). Nothing else:
 * each module declares its internal functions (dimple_<module>__<verb>)
 * in its own header, and the error setters are in err.h.
 *
 * Module graph. A module is x.c with x.h, except as the module lines
 * below say. Layers, bottom first: a file may include the headers of its
 * own module and of modules in lower layers, never of its own layer or
 * above; a private header only its own module's files may include. So
 * the graph has no cycle. tests/core/module_graph.py checks every
 * #include "x.h" in core/src against these lines (a new file needs its
 * module placed here).
 *
 *   layer 0: internal buf base64
 *   layer 1: err clock pack
 *   layer 2: json opts rowhook
 *   layer 3: config db
 *   layer 4: loader track
 *   layer 5: remote batch history map live migrate
 *   layer 6: config_keys sync
 *   layer 7: dimple
 *   module track: track*.c track*.h
 *   module live: live.c live_hooks.h
 *   module sync: sync.c sync_hooks.h
 *   module batch: batch.c batch_read.c batch.h batch_impl.h
 *   private: track_impl.h track_replace.h batch_impl.h
 *
 * A lower module reaches one above only through a callback the upper one
 * (or dimple.c, the top, which wires the modules) installs: rowhook.c
 * calls the row callbacks live.c and track_replace.c register; db.c calls
 * db->on_ddl (tracking's refresh) and db->on_finish (the live-query
 * flush). internal.h is below err: err.c reads the two error fields of
 * struct dimple, and err.h needs only dimple.h. The table of
 * configuration keys (config_keys.c) names batch and clock limits, so it
 * sits above them; config.c calls its parser through config.h, the one
 * call from a lower layer up that is not a callback. What each file
 * does: docs/internals.md.
 *
 * dimple.c opens: configuration, storage and cipher (loader.c), the
 * cipher's attach (remote.c), resolver and notifiers, the database
 * (db.c), then track -> live -> sync; it closes in the reverse order. A
 * module's __close runs whenever its __open ran, even if that failed.
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
