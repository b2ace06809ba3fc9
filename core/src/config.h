/*
 * config.h — dimple.conf parsed into sections of key/value pairs (internal;
 * config.c, config_keys.c). docs/config.md is the reference.
 *
 * Sections: [dimple] [sync] (keys in config_keys.c's table, checked
 * here) and the plugin roles [storage] [cipher] [resolver]
 * [notifier.<label>] (key `plugin` required;
 * the other keys go to the plugin's create(), in file order, with their
 * line numbers). ${VAR} is expanded from the environment while parsing.
 * Values are never quoted in error messages (they may be secrets).
 */
#ifndef DIMPLE_CONFIG_H
#define DIMPLE_CONFIG_H

#include "err.h"
#include "internal.h"

/* Parse path. On failure *out is NULL and db's error says file:line what.
 * db may not be NULL (it receives the message). */
int dimple_config__load(dimple *db, const char *path, dimple_config **out);
void dimple_config__free(dimple_config *cfg);

/* The file as given, and its folder (for resolving relative paths). */
const char *dimple_config__path(const dimple_config *cfg);
const char *dimple_config__dir(const dimple_config *cfg);

/* The value of key in section, or NULL (cfg may be NULL). For a plugin
 * section, key "plugin" gives the plugin name. Borrowed until free. */
const char *dimple_config__get(const dimple_config *cfg, const char *section,
                               const char *key);
/* The line of key in section, or 0. */
int dimple_config__line(const dimple_config *cfg, const char *section,
                        const char *key);

/* A plugin section's keys except `plugin`, ending with {NULL, NULL, 0}
 * (never NULL if the section exists); NULL if the section is absent. */
const dimple_kv *dimple_config__section(const dimple_config *cfg,
                                        const char *section);

/* The i-th section name in file order ("dimple", "notifier.log"), or NULL
 * past the end. */
const char *dimple_config__section_name(const dimple_config *cfg, size_t i);

/* The core's configuration keys: the [dimple] and [sync] keys and the
 * `plugin` key of each plugin section. config_keys.c holds the table;
 * loading validates each key against it (file:line), and open, sync and
 * the docs' test read it. A plugin's other keys are the plugin's. */
typedef enum dimple_config_type {
    DIMPLE_CONF_STRING, /* free text */
    DIMPLE_CONF_PATH,   /* resolved against the conf file's folder */
    DIMPLE_CONF_INT,    /* decimal integer in min..max */
    DIMPLE_CONF_BOOL,   /* dimple_conf_parse_bool's words (plugin.h) */
    DIMPLE_CONF_PLUGIN  /* a plugin name (the file dimple-NAME.so) */
} dimple_config_type;

/* Row numbers of the table, for the keys the core reads by number. */
typedef enum dimple_config_id {
    DIMPLE_CONF_DATABASE,
    DIMPLE_CONF_TABLES,
    DIMPLE_CONF_PLUGIN_DIR,
    DIMPLE_CONF_MIGRATIONS,
    DIMPLE_CONF_BUSY_TIMEOUT_MS,
    DIMPLE_CONF_MAX_CLOCK_SKEW,
    DIMPLE_CONF_CACHE_SIZE_KIB,
    DIMPLE_CONF_BATCH_MAX_CHANGES,
    DIMPLE_CONF_BATCH_MAX_BYTES,
    DIMPLE_CONF_STORAGE_PLUGIN,
    DIMPLE_CONF_CIPHER_PLUGIN,
    DIMPLE_CONF_RESOLVER_PLUGIN,
    DIMPLE_CONF_NOTIFIER_PLUGIN,
    DIMPLE_CONF_N_KEYS
} dimple_config_id;

typedef struct dimple_config_key {
    const char *section; /* "dimple", "sync", "storage"; "notifier.*" is
                            every [notifier.LABEL] */
    const char *key;
    dimple_config_type type;
    const char *def;  /* the default as written in a file; NULL: none */
    int required;     /* open fails without it */
    int64_t min, max; /* DIMPLE_CONF_INT */
    const char *unit; /* DIMPLE_CONF_INT: "ms", "KiB", "bytes", ... */
    const char *doc;  /* one line */
} dimple_config_key;

/* The table, DIMPLE_CONF_N_KEYS rows in dimple_config_id order. */
extern const dimple_config_key dimple_config__keys[DIMPLE_CONF_N_KEYS];

/* The row of key in section (a [notifier.LABEL] matches "notifier.*"), or
 * NULL. */
const dimple_config_key *dimple_config__find_key(const char *section,
                                                 const char *key);

/* text as key's type: DIMPLE_OK and *out set (1/0 for a boolean), or
 * DIMPLE_ECONFIG with what is wrong in msg ("must be an integer in
 * 0..3600000"; never the value, which may be a secret). Texts other than
 * INT and BOOL are accepted as they are (*out untouched). */
int dimple_config__parse(const dimple_config_key *k, const char *text,
                         int64_t *out, char *msg, size_t cap);

/* The value of an INT or BOOL key: what the file says (validated when
 * loaded), else the table's default; cfg may be NULL (a handle opened
 * by path gets the defaults). */
int64_t dimple_config__int(const dimple_config *cfg, dimple_config_id id);

/* Resolve a path from the configuration against the conf file's folder
 * (absolute paths unchanged). Returns a malloc'd string or NULL (ENOMEM). */
char *dimple_config__resolve(const dimple_config *cfg, const char *path);

#endif /* DIMPLE_CONFIG_H */
