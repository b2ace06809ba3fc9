/* sync.c — placeholder until its issue lands: the hooks do nothing. */
#include "internal.h"

int dimple_sync__open(dimple *db)
{
    (void)db;
    return DIMPLE_OK;
}

void dimple_sync__close(dimple *db)
{
    (void)db;
}
