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

/* Room for the handle's error message (err.h). */
#define DIMPLE_ERRMSG_MAX 2048

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

    unsigned rowhook; /* DIMPLE_ROWHOOK_* users of the preupdate hook */
    struct dimple_track *track;
    struct dimple_live *live;
    struct dimple_sync *sync;
};

/* The one check of a versioned options struct of the app API (its first
 * member is size_t size): opts NULL leaves *copy (the defaults, in the
 * library's layout of `ours` bytes) as it is; a size of 0, below `first`
 * (the first published layout) or above `ours` is DIMPLE_EINVAL naming the
 * struct; otherwise the caller's size bytes are copied over the defaults,
 * so fields past a smaller size keep theirs. name: "dimple_sync_options". */
int dimple__opts(dimple *db, void *copy, size_t ours, size_t first,
                 const void *opts, const char *name);
/* db.c: open db->path (WAL, foreign_keys=ON, busy timeout; read_only
 * honoured) into db->sql / close it. */
int dimple_db__open(dimple *db);
void dimple_db__close(dimple *db);
/* The end of every public call that may have written: runs
 * dimple_live__flush(db) and returns rc with db's error as it was before
 * the flush (a live callback cannot clobber the call's own result). */
int dimple__finish(dimple *db, int rc);

/*
 * Module hooks, called by dimple.c in this order:
 *   open:  db opened, pragmas set -> track__open -> live__open -> sync__open
 *   each migration: BEGIN -> track__migration_begin -> its SQL ->
 *   track__refresh -> COMMIT; and track__refresh after every migration run
 *   close: sync__close -> live__close -> track__close -> plugins -> sqlite
 * Each __open returns DIMPLE_OK or an error already set on db. A module's
 * __close is called whenever its __open was called, even if __open failed
 * (so __close must accept a partly opened module; db->track etc. may be
 * NULL). Modules after a failed one are neither opened nor closed.
 */
int dimple_track__open(dimple *db);
int dimple_track__refresh(dimple *db);
/* Migrations (db.c): call after BEGIN of each migration, before its SQL.
 * Drops the tracking triggers inside that transaction so the migration
 * may ALTER TABLE ... DROP COLUMN a synced column (SQLite refuses to drop
 * a column a trigger names); dimple_track__refresh recreates them. Best
 * called before that migration's COMMIT too (then no write from another
 * connection can slip in untracked between the two). Writes made by the
 * migration itself are not tracked: every replica runs the same
 * migrations (rows of newly tracked tables are adopted, see
 * docs/tracking.md). */
int dimple_track__migration_begin(dimple *db);
/* After a migration, committed or not: tracking of every write resumes. */
void dimple_track__migration_end(dimple *db);
void dimple_track__close(dimple *db);
int dimple_live__open(dimple *db);
void dimple_live__close(dimple *db);
/* Called by every public API call that may have committed writes
 * (dimple_exec, dimple_migrate*, dimple_entity_save/delete, dimple_sync, ...)
 * just before it returns: re-runs affected live queries and feeds the
 * notifiers. Live owns sqlite3_{update,commit,rollback,wal}_hook on db->sql;
 * no other module may set them. The preupdate hook is shared (rowhook.h). */
void dimple_live__flush(dimple *db);
/* A row of schema.table is about to change (rowhook.c calls it). */
void dimple_live__row(dimple *db, const char *schema, const char *table);
int dimple_sync__open(dimple *db);
void dimple_sync__close(dimple *db);

/* The error setters every module uses; err.h needs only the struct
 * above. */
#include "err.h"

#endif /* DIMPLE_INTERNAL_H */
