/*
 * rowhook.h — the connection's one preupdate hook, shared by change
 * tracking and live queries (rowhook.c says why).
 */
#ifndef DIMPLE_ROWHOOK_H
#define DIMPLE_ROWHOOK_H

#include "internal.h"

#include <stdbool.h>

/* Who wants to see row changes. */
enum {
    DIMPLE_ROWHOOK_REPLACE = 1, /* replace.c: deletes that fire no trigger */
    DIMPLE_ROWHOOK_LIVE = 2     /* live.c: which tables a transaction wrote */
};

/* Start (on) or stop seeing row changes for one user; the hook is set
 * while any user wants it and cleared when none does. */
void dimple_rowhook__want(dimple *db, unsigned who, bool on);

#endif /* DIMPLE_ROWHOOK_H */
