/*
 * rowhook.c — the connection's one preupdate hook.
 *
 * SQLite keeps a single preupdate hook per connection: setting one drops
 * the one before. Two parts of dimple need it: change tracking, for the
 * rows OR REPLACE deletes without firing a trigger (replace.c), and live
 * queries, for the tables a transaction writes (live.c). When each set its
 * own, opening a live query silently switched the first off, and closing
 * it cleared the hook: REPLACE deletes went unlogged and replicas diverged
 * (test: track-core / or_replace_logged_in_every_hook_state). Here one
 * hook calls each part that asked for it.
 */
#include "rowhook.h"
#include "replace.h"

static void on_preupdate(void *ctx, sqlite3 *s, int op, const char *zdb,
                         const char *ztab, sqlite3_int64 k1, sqlite3_int64 k2)
{
    dimple *db = ctx;
    (void)k1;
    (void)k2;
    if (db->rowhook & DIMPLE_ROWHOOK_LIVE)
        dimple_live__row(db, zdb, ztab);
    if (db->rowhook & DIMPLE_ROWHOOK_REPLACE)
        dimple_replace__row(db, s, op, zdb, ztab);
}

void dimple_rowhook__want(dimple *db, unsigned who, bool on)
{
    unsigned before = db->rowhook;
    db->rowhook = on ? before | who : before & ~who;
    if ((before != 0) == (db->rowhook != 0))
        return;
    sqlite3_preupdate_hook(db->sql, db->rowhook ? on_preupdate : NULL,
                           db->rowhook ? db : NULL);
}
