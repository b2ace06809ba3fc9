/*
 * live_hooks.h — live queries as dimple.c sees them (internal; live.c).
 * The app API is in <dimple/live.h>.
 */
#ifndef DIMPLE_LIVE_HOOKS_H
#define DIMPLE_LIVE_HOOKS_H

#include "internal.h"

/* Called by dimple.c after tracking opened / before it closes (the
 * order and the failure rule: dimple.c's open_modules). */
int dimple_live__open(dimple *db);
void dimple_live__close(dimple *db);
/* Run at the end of every public API call that may have committed writes
 * (dimple_exec, dimple_migrate*, dimple_entity_save/delete, dimple_sync,
 * ...; dimple.c installs it as db->on_finish): re-runs affected live
 * queries and feeds the notifiers. Live owns
 * sqlite3_{update,commit,rollback,wal}_hook on db->sql; no other module
 * may set them. The preupdate hook is shared (rowhook.h). */
void dimple_live__flush(dimple *db);

#endif /* DIMPLE_LIVE_HOOKS_H */
