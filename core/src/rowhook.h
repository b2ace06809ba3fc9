/*
 * rowhook.h — the connection's one preupdate hook, shared by change
 * tracking and live queries (rowhook.c says why). A dispatcher at the
 * bottom of the module graph: modules register a callback with it; it
 * knows none of them.
 */
#ifndef DIMPLE_ROWHOOK_H
#define DIMPLE_ROWHOOK_H

#include "internal.h"

/* Who wants to see row changes: a slot each, called in this order. */
enum {
    DIMPLE_ROWHOOK_LIVE = 0,  /* live.c: which tables a transaction wrote */
    DIMPLE_ROWHOOK_TRACK = 1, /* track_replace.c: deletes that fire no
                                 trigger */
    DIMPLE_ROWHOOK_USERS = 2
};

/* Start (fn) or stop (NULL) calling fn for every row change seen by the
 * preupdate hook, for user `who`; the hook is set while any user has a
 * callback and cleared when none has. */
void dimple_rowhook__want(dimple *db, unsigned who, dimple_rowhook_fn *fn);

#endif /* DIMPLE_ROWHOOK_H */
