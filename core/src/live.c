/* live.c — placeholder until its issue lands: the hooks do nothing. */
#include "internal.h"

int dimple_live__open(dimple *db)
{
    (void)db;
    return DIMPLE_OK;
}

void dimple_live__close(dimple *db)
{
    (void)db;
}

void dimple_live__flush(dimple *db)
{
    (void)db;
}
