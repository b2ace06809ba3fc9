/* track.c — placeholder until its issue lands: the hooks do nothing. */
#include "internal.h"

int dimple_track__open(dimple *db)
{
    (void)db;
    return DIMPLE_OK;
}

void dimple_track__close(dimple *db)
{
    (void)db;
}

int dimple_track__refresh(dimple *db)
{
    (void)db;
    return DIMPLE_OK;
}
