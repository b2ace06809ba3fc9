/*
 * loader.h — finding, checking and instantiating plugins (internal;
 * loader.c). What a plugin must be: docs/plugins.md.
 *
 * Search order for a name: plugins registered with dimple_plugin_register,
 * then <dir>/dimple-<name>.so for dir in: [dimple] plugin_dir,
 * $DIMPLE_PLUGIN_PATH (colon-separated), DIMPLE_PLUGIN_INSTALL_DIR.
 * The first file found is used; if it fails a check the load fails (no
 * silent fall-through to another copy).
 */
#ifndef DIMPLE_LOADER_H
#define DIMPLE_LOADER_H

#include "err.h"
#include "internal.h"

/* Load plugin `name` of `kind` and create an instance for `role` (the
 * config section: "storage", "notifier.log", ...) from conf (keys without
 * `plugin`, {NULL} terminated; NULL = none). On failure *out is NULL and
 * db's error says why, naming the file. The instance is NOT attached to
 * db's role slots: the caller stores it (db->resolver = inst, ...) and
 * destroys it with dimple_loader__destroy (dimple_close destroys the ones
 * in db->storage/cipher/resolver/notifiers). Used by sync.c to create the
 * default "lww" resolver lazily. */
int dimple_loader__instance(dimple *db, const char *role, dimple_kind kind,
                            const char *name, const dimple_kv *conf,
                            dimple_instance **out);

/* Destroy the plugin instance, then dlclose its file. NULL is fine. */
void dimple_loader__destroy(dimple_instance *inst);

/* Create the instances the configuration names into db's slots, in two
 * steps so that the cipher is attached to the storage (remote.c's
 * dimple_remote__attach) before anything else is created: [storage] and
 * [cipher], then [resolver] and [notifier.*]. */
int dimple_loader__open_storage(dimple *db);
int dimple_loader__open_others(dimple *db);
/* Destroy them all (notifiers, resolver, cipher, storage). */
void dimple_loader__close_all(dimple *db);

/* Call before a plugin call whose failure the caller reports: clears the
 * "plugin set an error" flag. After a failing call, dimple_loader__fail
 * keeps the plugin's message if it set one, else sets
 * "<role> <plugin>: <what> failed (<code name>)". Returns rc. */
void dimple_loader__begin(dimple *db);
int dimple_loader__fail(dimple_instance *inst, int rc, const char *what);

/* Kind name ("storage", ...) or "?". */
const char *dimple_loader__kind_name(dimple_kind kind);

#endif /* DIMPLE_LOADER_H */
