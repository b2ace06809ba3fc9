/*
 * dimple.h — the DimpleDb application API.
 *
 * DimpleDb is a reactive SQLite library for local-first apps: plain SQL,
 * change tracking with history, live queries, and multi-author sync through
 * dumb storage. Apps include this header and link libdimple (pkg-config
 * dimple). Plugin authors include <dimple/plugin.h> instead.
 *
 * Conventions: docs/API.md, "Conventions" (names, out parameters first,
 * callbacks, options structs and their _INIT macros, errors, ownership,
 * threads). In short: DIMPLE_OK (0) or a negative DIMPLE_E* code, with
 * dimple_errmsg(db) saying what and where; results come back through the
 * first parameters; a returned const char * is borrowed, for as long as
 * its line says.
 */
#ifndef DIMPLE_H
#define DIMPLE_H

#include <dimple/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;
struct dimple_plugin; /* <dimple/plugin.h> */

/* ------------------------------------------------------------- version */

/* The library version, e.g. "0.1.0". Static string. */
DIMPLE_API const char *dimple_version(void);

/* ------------------------------------------------------------ lifecycle */

/* Open the database and plugins that the dimple.conf at conf_path names
 * (docs/config.md; relative paths in [dimple] are relative to the file's
 * folder). Plugins are created first, then the database (WAL, foreign
 * keys on, busy timeout), then the modules. *out is set even on failure
 * (except DIMPLE_ENOMEM, where it is NULL) so dimple_errmsg(*out) can say
 * why; always dimple_close() it. The handle is used by one thread at a
 * time. */
DIMPLE_API int dimple_open(dimple **out, const char *conf_path);

/* Open options for dimple_open_path(): dimple_options o =
 * DIMPLE_OPTIONS_INIT; then set fields. */
typedef struct dimple_options {
    size_t size;         /* set by DIMPLE_OPTIONS_INIT */
    const char *tables;  /* synced tables: "*" (default), "a,b", "" none */
    int busy_timeout_ms; /* 0: default 5000 */
    int read_only;       /* open without creating or writing */
    int cache_size_kib;  /* page cache limit; 0: SQLite's (2000 KiB) */
} dimple_options;
#define DIMPLE_OPTIONS_INIT DIMPLE_INIT_(dimple_options)

/* Open (creating if needed) the SQLite database at db_path with no
 * configuration file: no storage, cipher, resolver section or notifier.
 * opts (borrowed) may be NULL. Same *out rule as dimple_open(). */
DIMPLE_API int dimple_open_path(dimple **out, const char *db_path,
                                const dimple_options *opts);

/* Parse conf_path and create every plugin instance it names (each
 * plugin checks its keys), without opening or creating the database: for
 * `dimple config check` and `dimple remote`. Same *out rule as
 * dimple_open(). The handle answers the errors, accessors, plugins and
 * remote calls; SQL calls fail with DIMPLE_EINVAL. */
DIMPLE_API int dimple_config_check(dimple **out, const char *conf_path);

/* Close the handle: modules closed, plugins destroyed (then unloaded),
 * database closed. NULL is fine. */
DIMPLE_API void dimple_close(dimple *db);

/* Where plugins' log lines go (level: DIMPLE_LOG_* of <dimple/plugin.h>,
 * 1 = error .. 4 = debug; source: "<role> <plugin>"; both strings borrowed
 * for the call). Called on the thread that uses the handle. */
typedef void (*dimple_log_cb)(void *payload, int level, const char *source,
                              const char *msg);
/* Set (or with cb NULL, clear) the handle's logger. Default: no logging. */
DIMPLE_API void dimple_logger_set(dimple *db, dimple_log_cb cb, void *payload);

/* ---------------------------------------------------------------- errors */

/* Message of the last call on db: never NULL, "ok" after a success,
 * owned by db, valid until the next call on db. db may be NULL. */
DIMPLE_API const char *dimple_errmsg(const dimple *db);
/* Code of the last call on db (DIMPLE_OK after a success). */
DIMPLE_API int dimple_errcode(const dimple *db);
/* Static name of a code, e.g. "DIMPLE_ENOTFOUND". */
DIMPLE_API const char *dimple_errstr(int code);

/* ------------------------------------------------------------ migrations */

/* Apply migrations[n_done..n-1] where n_done = PRAGMA user_version: each in
 * its own transaction, user_version bumped with it. A failure rolls that
 * migration back and names it (index, or file) with SQLite's message.
 * Tracked tables' triggers are regenerated afterwards. */
DIMPLE_API int dimple_migrate(dimple *db, const char *const *migrations,
                              size_t n);
/* Same from a folder of NNN_name.sql files (NNN = 1, 2, ... in order;
 * a gap or a duplicate number is an error). */
DIMPLE_API int dimple_migrate_dir(dimple *db, const char *dir);
/* The schema version (PRAGMA user_version). */
DIMPLE_API int dimple_schema_version(int *out, dimple *db);
/* The [dimple] migrations folder (resolved against the conf file's
 * folder), or NULL if none is configured. Borrowed, valid until close. */
DIMPLE_API const char *dimple_migrations_dir(const dimple *db);

/* ----------------------------------------------------------------- SQL */

/* dimple_row_cb (rows to a callback) is in <dimple/common.h>. */

/* Run sql: one or more statements separated by ';'. params (borrowed)
 * bind in order (?1..?n), their number must match the statement's, and
 * they are only allowed when sql is a single statement. Rows go to cb
 * (may be NULL); a non-zero return from cb stops and is returned. Writes
 * are tracked and live queries are refreshed before it returns. DDL
 * (CREATE/ALTER/DROP) regenerates the tracking triggers at once; a table
 * that cannot be tracked (see docs/tracking.md) is refused (ESCHEMA) and
 * its statement rolled back. */
DIMPLE_API int dimple_exec(dimple *db, const char *sql,
                           const dimple_value *params, size_t n_params,
                           dimple_row_cb cb, void *payload);

/* Run one statement; *out gets a JSON array of row objects (keys in
 * column order; integers as numbers, beyond +-2^53 as strings; reals as
 * numbers that read back bit-exact and stay reals (1.0); text as strings
 * (invalid UTF-8 bytes become U+FFFD); NULL as null; blobs as
 * {"$blob":"<base64>"}). *out is the caller's (dimple_free); NULL on
 * failure. */
DIMPLE_API int dimple_json_query(char **out, dimple *db, const char *sql,
                                 const dimple_value *params, size_t n_params);

/* One row as a JSON object, the same encoding as dimple_json_query, into
 * *out (dimple_free). DIMPLE_OK or DIMPLE_ENOMEM (*out NULL). */
DIMPLE_API int dimple_json_row(char **out, size_t n, const char *const *names,
                               const dimple_value *values);

/* Free memory that a dimple call returned (strings, JSON). NULL is fine. */
DIMPLE_API void dimple_free(void *p);

/* The escape hatch: the handle's sqlite3 connection (borrowed; valid until
 * dimple_close). Writes through it are tracked like any other. */
struct sqlite3;
DIMPLE_API struct sqlite3 *dimple_sqlite(dimple *db);

/* Value constructors for params. Strings and blobs are borrowed. */
DIMPLE_API dimple_value dimple_value_int(int64_t v);
DIMPLE_API dimple_value dimple_value_real(double v);
DIMPLE_API dimple_value dimple_value_text(const char *s); /* NUL-terminated */
DIMPLE_API dimple_value dimple_value_blob(const void *p, size_t n);
DIMPLE_API dimple_value dimple_value_null(void);

/* ------------------------------------------------------------------ time */

/* Parse a time: ISO 8601 ("2026-11-26", "2026-11-26T13:05:00Z",
 * "2026-11-26 13:05:00.250+01:00"; no zone means UTC) or a UUIDv7 (its
 * time). DIMPLE_OK or DIMPLE_EINVAL. */
DIMPLE_API int dimple_time_parse(int64_t *out, const char *text);
/* "2026-11-26T13:05:00.250Z" (24 chars + NUL). */
DIMPLE_API void dimple_time_format(char out[32], int64_t ms);

/* --------------------------------------------------------------- plugins */

/* Register a plugin linked into the program (no dlopen), process-wide,
 * before dimple_open(); thread-safe; the same name again replaces it (at
 * most 64: DIMPLE_ELIMIT after). It is found by name ahead of any file and
 * passes the same checks. The descriptor is borrowed and must outlive every
 * handle that uses it. */
DIMPLE_API int dimple_plugin_register(const struct dimple_plugin *plugin);

/* A plugin found on the search path or registered. */
typedef struct dimple_plugin_info {
    const char *name;
    const char *kind; /* "storage", "cipher", "resolver", "notifier" */
    const char *version;
    const char *file; /* path, or "(built in)" */
    const char *description;
} dimple_plugin_info;

/* Every plugin found: registered ones, then each dimple-*.so on the search
 * path (the handle's plugin_dir, DIMPLE_PLUGIN_PATH, the install folder),
 * sorted per folder. db may be NULL (no plugin_dir). A file that fails the
 * loader's checks is reported with info->file set, other fields NULL, and
 * err its message; err is NULL for a good plugin. info and err are
 * borrowed for the call. A non-zero return from cb stops and is
 * returned. */
typedef int (*dimple_plugin_cb)(void *payload, const dimple_plugin_info *info,
                                const char *err);
DIMPLE_API int dimple_plugin_list(dimple *db, dimple_plugin_cb cb,
                                  void *payload);

/* ------------------------------------------------------------ the handle */

/* Path of the database file. Borrowed, valid until close. */
DIMPLE_API const char *dimple_db_path(const dimple *db);
/* The synced-tables spec ([dimple] tables or dimple_options.tables):
 * "*", "a,b" or "" (borrowed, valid until close). */
DIMPLE_API const char *dimple_tables(const dimple *db);
/* The i-th role with a plugin instance ("storage", "cipher", "resolver",
 * "notifier.<label>", in that order), or NULL when i is past the end.
 * Borrowed, valid until close. */
DIMPLE_API const char *dimple_plugin_role(const dimple *db, size_t i);
/* Plugin name in use for a role ("storage", "cipher", "resolver",
 * "notifier.<label>"), or NULL if none. Borrowed, valid until close. */
DIMPLE_API const char *dimple_plugin_in_use(const dimple *db, const char *role);

/* --------------------------------------------------------------- remote */

/* Key callback for dimple_remote_list; key is borrowed for the call. */
typedef int (*dimple_key_cb)(void *payload, const char *key);

/* List keys of the configured storage that start with prefix ("" or NULL:
 * all), in byte order. A non-zero return from cb stops and is returned.
 * DIMPLE_ECONFIG without a [storage]. */
DIMPLE_API int dimple_remote_list(dimple *db, const char *prefix,
                                  dimple_key_cb cb, void *payload);
/* Write one object (atomic, overwrites), encrypted by the configured
 * cipher (never stored in plaintext when one is configured). data is
 * borrowed for the call. */
DIMPLE_API int dimple_remote_put(dimple *db, const char *key, const void *data,
                                 size_t len);
/* Read one object; decrypted by the configured cipher unless raw is set.
 * *out (*out_len bytes) belongs to the caller (dimple_free). */
DIMPLE_API int dimple_remote_get(void **out, size_t *out_len, dimple *db,
                                 const char *key, int raw);

/* The configured cipher's unlocked identity (e.g. "AGE-SECRET-KEY-1..."),
 * so a person can decrypt stored objects with standard tools. *out is a
 * NUL-terminated string owned by the caller (dimple_free). ENOTFOUND when
 * no cipher is configured or the cipher has no identity. A secret: never
 * log it. */
DIMPLE_API int dimple_cipher_identity(char **out, dimple *db);

#ifdef __cplusplus
}
#endif

#include <dimple/history.h>
#include <dimple/map.h>
#include <dimple/sync.h>
#include <dimple/live.h>

#endif /* DIMPLE_H */
