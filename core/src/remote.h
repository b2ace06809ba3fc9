/*
 * remote.h — the core's access to the configured storage and cipher
 * (internal). Owned by the foundation (remote.c); used by sync.c and the
 * CLI's `remote` commands through dimple_remote_list/get.
 *
 * Every call validates keys (dimple_key_valid), counts one storage request
 * in db->... (see dimple_remote__requests), and on failure sets db's error
 * as "storage <plugin>: <plugin's message>" naming the key.
 */
#ifndef DIMPLE_REMOTE_H
#define DIMPLE_REMOTE_H

#include "buf.h"
#include "err.h"
#include "internal.h"

/* DIMPLE_ECONFIG "no [storage] configured" when db has none. */
int dimple_remote__put(dimple *db, const char *key, const void *data,
                       size_t len);
int dimple_remote__put_if_absent(dimple *db, const char *key, const void *data,
                                 size_t len); /* emulated if unsupported */
int dimple_remote__get(dimple *db, const char *key, dimple_buf *out);
int dimple_remote__list(dimple *db, const char *prefix, const char *start_after,
                        unsigned flags, dimple_list_cb cb, void *payload);
int dimple_remote__remove(dimple *db, const char *key);

/* Hand the configured cipher a dimple_store view of db's storage (its
 * attach(), when it has one and a storage is configured): every call of
 * the view goes through the dimple_remote__* functions above (ctx = db).
 * The view lives in db->cipher->store. */
int dimple_remote__attach(dimple *db);

/* Storage requests made through this handle since open. */
uint64_t dimple_remote__requests(const dimple *db);

/* With a cipher configured: encrypt/decrypt whole buffers (name is the
 * object's key, for messages). Without one: seal copies, open copies.
 * Fail closed: open() with a cipher never returns undecrypted bytes. */
int dimple_remote__seal(dimple *db, const char *name, const void *plain,
                        size_t len, dimple_buf *out);
int dimple_remote__open(dimple *db, const char *name, const void *sealed,
                        size_t len, dimple_buf *out);

#endif /* DIMPLE_REMOTE_H */
