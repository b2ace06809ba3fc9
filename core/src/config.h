/*
 * config.h — dimple.conf parsed into sections of key/value pairs (internal;
 * config.c). DESIGN §8; docs/config.md is the reference.
 *
 * Sections: [dimple] [sync] (keys checked here) and the plugin roles
 * [storage] [cipher] [resolver] [notifier.<label>] (key `plugin` required;
 * the other keys go to the plugin's create(), in file order, with their
 * line numbers). ${VAR} is expanded from the environment while parsing.
 * Values are never quoted in error messages (they may be secrets).
 */
#ifndef DIMPLE_CONFIG_H
#define DIMPLE_CONFIG_H

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

/* An integer key of db's configuration: *out = def when db has no
 * configuration or the key is absent; DIMPLE_ECONFIG with
 * "file:line: [section] key must be an integer in min..max" otherwise. */
int dimple_config__int(dimple *db, const char *section, const char *key,
                       int64_t def, int64_t min, int64_t max, int64_t *out);

/* Resolve a path from the configuration against the conf file's folder
 * (absolute paths unchanged). Returns a malloc'd string or NULL (ENOMEM). */
char *dimple_config__resolve(const dimple_config *cfg, const char *path);

#endif /* DIMPLE_CONFIG_H */
