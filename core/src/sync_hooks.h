/*
 * sync_hooks.h — the sync engine as dimple.c sees it (internal; sync.c).
 * The app API is in <dimple/sync.h>.
 */
#ifndef DIMPLE_SYNC_HOOKS_H
#define DIMPLE_SYNC_HOOKS_H

#include "internal.h"

/* Called by dimple.c after live queries opened / first at close. */
int dimple_sync__open(dimple *db);
void dimple_sync__close(dimple *db);

#endif /* DIMPLE_SYNC_HOOKS_H */
