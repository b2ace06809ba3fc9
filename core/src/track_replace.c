/*
 * track_replace.c — deletes that fire no trigger: `INSERT OR REPLACE` (or any
 * OR REPLACE) that removes a row through a UNIQUE constraint. SQLite runs
 * DELETE triggers for those only with recursive_triggers, which would
 * change what an app's own self-updating triggers do, so the log would
 * miss the delete and replicas would diverge.
 *
 * SQLite's preupdate hook sees every row change, triggers or not. For a
 * delete on a tracked table it notes the key as pending; the table's AFTER
 * DELETE trigger (dimple_del) takes its note back. A note still pending
 * when the next tracked insert or update is logged (the REPLACE's own row
 * comes right after its deletes) was a trigger-less delete: it is logged
 * as a delete first, if the row is really gone (a statement that failed
 * after the hook ran leaves a note for a row that is still there).
 */
#include "track_replace.h"

#include "buf.h"

#include "pack.h"
#include "rowhook.h"
#include "track.h"

#include <stdlib.h>
#include <string.h>

typedef struct pending {
    int64_t t;    /* table's interned id */
    size_t at, n; /* the packed key in keys */
} pending;

struct dimple_replace {
    pending *p;
    size_t n, cap;
    dimple_pbuf keys;
    bool lost; /* a delete could not be noted: refuse the next write */
};

void dimple_replace__row(dimple *db, sqlite3 *s, int op, const char *zdb,
                         const char *ztab)
{
    if (op != SQLITE_DELETE || !dimple_track__logging(db) ||
        strcmp(zdb, "main") != 0)
        return;
    const dimple_ttable *tt = dimple_track__table(db, ztab);
    struct dimple_replace *r = dimple_track__replace(db);
    if (!tt || !r)
        return;
    /* out of memory below: remember that a note is missing, so the next
     * logged write fails instead of losing a delete */
    if (dimple__grow((void **)&r->p, &r->cap, r->n + 1, sizeof *r->p) < 0) {
        r->lost = true;
        return;
    }
    size_t at = r->keys.n;
    for (size_t k = 0; k < tt->n_key; k++) {
        sqlite3_value *v = NULL;
        if (sqlite3_preupdate_old(s, tt->pre_col[tt->key_col[k]], &v) !=
                SQLITE_OK ||
            !v) {
            r->keys.n = at;
            r->lost = true;
            return;
        }
        dimple_pack__sqlite(&r->keys, v);
    }
    if (r->keys.oom) {
        r->lost = true;
        return;
    }
    r->p[r->n++] = (pending){tt->tid, at, r->keys.n - at};
}

int dimple_replace__install(dimple *db, struct dimple_replace **notes)
{
    if (!*notes) {
        *notes = calloc(1, sizeof **notes);
        if (!*notes)
            return dimple__seterr(db, DIMPLE_ENOMEM,
                                  "change tracking: out of memory");
    }
    /* docs/tracking.md says apps must not set their own preupdate hook
     * on dimple_sqlite() */
    dimple_rowhook__want(db, DIMPLE_ROWHOOK_TRACK, dimple_replace__row);
    return DIMPLE_OK;
}

void dimple_replace__taken(dimple *db, int64_t t, const dimple_pbuf *key)
{
    struct dimple_replace *r = dimple_track__replace(db);
    if (!r || !r->n)
        return;
    /* usually the newest note: the trigger runs right after its delete */
    for (size_t i = r->n; i-- > 0;) {
        pending *e = &r->p[i];
        if (e->t == t && e->n == key->n &&
            memcmp(r->keys.p + e->at, key->p, key->n) == 0) {
            memmove(e, e + 1, (r->n - i - 1) * sizeof *e);
            r->n--;
            break;
        }
    }
    if (!r->n)
        r->keys.n = 0;
}

int dimple_replace__flush(dimple *db, dimple_replace_log_fn *log)
{
    struct dimple_replace *r = dimple_track__replace(db);
    if (r && r->lost) {
        dimple_replace__forget(db);
        return dimple__seterr(db, DIMPLE_ERROR,
                              "change tracking: a row deleted by OR REPLACE"
                              " could not be noted (out of memory, or its"
                              " key could not be read); the write is"
                              " refused so that no delete goes unlogged");
    }
    if (!r || !r->n)
        return DIMPLE_OK;
    int rc = DIMPLE_OK;
    for (size_t i = 0; i < r->n && rc == DIMPLE_OK; i++) {
        pending *e = &r->p[i];
        const dimple_ttable *tt = dimple_track__table_by_tid(db, e->t);
        if (!tt)
            continue;
        /* a view into keys: nothing notes while this runs (the log's
         * merges run muted) */
        dimple_pbuf key = {r->keys.p + e->at, e->n, 0, false};
        bool exists = false;
        rc = dimple_track__row_exists(db, tt, &key, &exists);
        if (rc || exists)
            continue; /* the deleting statement was undone */
        rc = log(db, e->t, &key);
    }
    dimple_replace__forget(db);
    return rc;
}

void dimple_replace__free(struct dimple_replace *r)
{
    if (!r)
        return;
    free(r->p);
    dimple_pbuf__free(&r->keys);
    free(r);
}

void dimple_replace__forget(dimple *db)
{
    struct dimple_replace *r = dimple_track__replace(db);
    if (r) {
        r->lost = false;
        r->n = 0;
        r->keys.n = 0;
    }
}
