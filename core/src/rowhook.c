/*
 * rowhook.c — the connection's one preupdate hook.
 *
 * SQLite keeps a single preupdate hook per connection: setting one drops
 * the one before. Two parts of dimple need it: change tracking, for the
 * rows OR REPLACE deletes without firing a trigger (track_replace.c), and
 * live queries, for the tables a transaction writes (live.c). When each set
 * its own, opening a live query silently switched the first off, and
 * closing it cleared the hook: REPLACE deletes went unlogged and replicas
 * diverged (test: track-core / or_replace_logged_in_every_hook_state).
 * Here one hook calls each callback registered; the modules register
 * themselves, so this file calls none of them by name.
 */
#include "rowhook.h"

_Static_assert(sizeof(((dimple *)0)->rowhook) ==
                   DIMPLE_ROWHOOK_USERS * sizeof(dimple_rowhook_fn *),
               "a slot per user in struct dimple");

static void on_preupdate(void *ctx, sqlite3 *s, int op, const char *zdb,
                         const char *ztab, sqlite3_int64 k1, sqlite3_int64 k2)
{
    dimple *db = ctx;
    (void)k1;
    (void)k2;
    for (unsigned i = 0; i < DIMPLE_ROWHOOK_USERS; i++)
        if (db->rowhook[i])
            db->rowhook[i](db, s, op, zdb, ztab);
}

static bool any_user(const dimple *db)
{
    for (unsigned i = 0; i < DIMPLE_ROWHOOK_USERS; i++)
        if (db->rowhook[i])
            return true;
    return false;
}

void dimple_rowhook__want(dimple *db, unsigned who, dimple_rowhook_fn *fn)
{
    bool before = any_user(db), after;
    if (who >= DIMPLE_ROWHOOK_USERS)
        return;
    db->rowhook[who] = fn;
    after = any_user(db);
    if (before == after)
        return;
    sqlite3_preupdate_hook(db->sql, after ? on_preupdate : NULL,
                           after ? db : NULL);
}
