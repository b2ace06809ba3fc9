/*
 * track_merge.c — the one merge rule (docs/tracking.md): the per-cell
 * clock of each row (_dimple_rows), the resolver that decides a cell
 * between two versions, folding logged changes into the clock, and
 * applying pulled changes (checked, deduplicated, logged, merged).
 */
#include "track_impl.h"

#include "buf.h"
#include "clock.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C_DEAD 0
#define C_ALIVE 1

static int id_cmp(const uint8_t a[16], const uint8_t b[16])
{
    return memcmp(a, b, 16);
}

static const uint8_t zero_id[16];

/* Decode a packed key into tr->kv. */
int dimple_track__decode_key(dimple *db, const uint8_t *p, size_t n, size_t *nk)
{
    struct dimple_track *tr = T(db);
    size_t pos = 0, i = 0;
    while (pos < n) {
        if (dimple__grow((void **)&tr->kv, &tr->cap_kv, i + 1, sizeof *tr->kv))
            return oom(db);
        if (!dimple_unpack__value(p, n, &pos, &tr->kv[i]))
            return dimple__seterr(db, DIMPLE_ECORRUPT,
                                  "change tracking: malformed key in the log");
        i++;
    }
    *nk = i;
    return DIMPLE_OK;
}

/* Decode packed columns into tr->cids / tr->cv. */
static int decode_cols(dimple *db, const uint8_t *p, size_t n, size_t *nc)
{
    struct dimple_track *tr = T(db);
    size_t pos = 0, i = 0;
    while (pos < n) {
        /* cv and cids share cap_cv: the first grow works on a copy, the
         * second (same arithmetic) commits it */
        size_t cap = tr->cap_cv;
        if (dimple__grow((void **)&tr->cv, &cap, i + 1, sizeof *tr->cv) ||
            dimple__grow((void **)&tr->cids, &tr->cap_cv, i + 1,
                         sizeof *tr->cids))
            return oom(db);
        uint64_t cid;
        if (!dimple_unpack__varint(p, n, &pos, &cid) ||
            !dimple_unpack__value(p, n, &pos, &tr->cv[i]))
            return dimple__seterr(
                db, DIMPLE_ECORRUPT,
                "change tracking: malformed columns in the log");
        tr->cids[i] = (int64_t)cid;
        i++;
    }
    *nc = i;
    return DIMPLE_OK;
}

/* ----------------------------------------------------------- row clock */

static int cells_reserve(dimple *db, size_t n)
{
    struct dimple_track *tr = T(db);
    if (dimple__grow((void **)&tr->cells, &tr->cap_cells, n, sizeof *tr->cells))
        return oom(db);
    return DIMPLE_OK;
}

/* A row clock (_dimple_rows.s) is either a list of cells, each
 * (varint c, varint seq, 16-byte id) — the first cell is always the row's
 * alive or dead entry, so it starts with byte 0 or 1 — or, as written
 * now, CLOCK_OWNERS, varint n, n owners (varint seq, 16-byte id), then
 * the cells as (varint c, varint owner index): the cells a change owns
 * share its seq and id (an insert's row clock: ~35 bytes, not ~105). */
#define CLOCK_OWNERS 2
#define CLOCK_MAX_OWNERS 32

static int clock_bad(dimple *db)
{
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change tracking: malformed row clock in"
                          " _dimple_rows");
}

static int state_decode_owners(dimple *db, const uint8_t *p, size_t n)
{
    struct dimple_track *tr = T(db);
    size_t pos = 1;
    uint64_t no;
    if (!dimple_unpack__varint(p, n, &pos, &no) || no > CLOCK_MAX_OWNERS)
        return clock_bad(db);
    size_t first = pos;
    for (uint64_t i = 0; i < no; i++) {
        uint64_t seq;
        if (!dimple_unpack__varint(p, n, &pos, &seq) || n - pos < 16)
            return clock_bad(db);
        pos += 16;
    }
    while (pos < n) {
        uint64_t c, o;
        if (!dimple_unpack__varint(p, n, &pos, &c) ||
            !dimple_unpack__varint(p, n, &pos, &o) || o >= no)
            return clock_bad(db);
        int r = cells_reserve(db, tr->n_cells + 1);
        if (r)
            return r;
        /* owner o: walk to it (owners are few) */
        size_t at = first;
        uint64_t seq = 0;
        for (uint64_t i = 0; i <= o; i++) {
            dimple_unpack__varint(p, n, &at, &seq);
            if (i < o)
                at += 16;
        }
        dimple_rcell *e = &tr->cells[tr->n_cells++];
        e->c = c;
        e->seq = (int64_t)seq;
        memcpy(e->id, p + at, 16);
    }
    return DIMPLE_OK;
}

/* Read the clock of row (t, k) into tr->cells. */
int dimple_track__state_load(dimple *db, int64_t t, const dimple_pbuf *k,
                             bool *exists)
{
    struct dimple_track *tr = T(db);
    tr->n_cells = 0;
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "SELECT s FROM _dimple_rows WHERE t = ?1 AND k = ?2");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, t);
    sqlite3_bind_blob(st, 2, k->p ? (const void *)k->p : "", (int)k->n,
                      SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    int r = DIMPLE_OK;
    if (rc == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0), pos = 0;
        if (n && p[0] == CLOCK_OWNERS) {
            r = state_decode_owners(db, p, n);
            n = 0; /* decoded */
        }
        while (pos < n && r == DIMPLE_OK) {
            uint64_t c, seq;
            if ((r = cells_reserve(db, tr->n_cells + 1)))
                break;
            if (!dimple_unpack__varint(p, n, &pos, &c) ||
                !dimple_unpack__varint(p, n, &pos, &seq) || n - pos < 16) {
                r = dimple__seterr(db, DIMPLE_ECORRUPT,
                                   "change tracking: malformed row clock in"
                                   " _dimple_rows");
                break;
            }
            dimple_rcell *e = &tr->cells[tr->n_cells++];
            e->c = c;
            e->seq = (int64_t)seq;
            memcpy(e->id, p + pos, 16);
            pos += 16;
        }
    } else if (rc != SQLITE_DONE) {
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_rows");
    }
    sqlite3_reset(st);
    return r;
}

/* Write the clock in tr->cells for row (t, k): replacing it, or only
 * when the row has none yet (*added tells). */
static int state_write(dimple *db, int64_t t, const dimple_pbuf *k,
                       bool only_new, bool *added)
{
    struct dimple_track *tr = T(db);
    dimple_pbuf *s = &tr->sbuf;
    dimple_pbuf__reset(s);
    /* the owners: each distinct (seq, id) once, in first-use order; more
     * than CLOCK_MAX_OWNERS (a wide row edited cell by cell): the plain
     * list, so neither side ever searches long */
    size_t n_own = 0, first[CLOCK_MAX_OWNERS]; /* a cell of each owner */
    bool compact = tr->n_cells > 0;
    for (size_t i = 0; compact && i < tr->n_cells; i++) {
        size_t o = 0;
        while (o < n_own &&
               (tr->cells[first[o]].seq != tr->cells[i].seq ||
                memcmp(tr->cells[first[o]].id, tr->cells[i].id, 16) != 0))
            o++;
        if (o == n_own) {
            if (n_own == CLOCK_MAX_OWNERS)
                compact = false;
            else
                first[n_own++] = i;
        }
    }
    if (!compact) {
        for (size_t i = 0; i < tr->n_cells; i++) {
            dimple_pack__varint(s, tr->cells[i].c);
            dimple_pack__varint(s, (uint64_t)tr->cells[i].seq);
            dimple_pbuf__add(s, tr->cells[i].id, 16);
        }
    } else {
        uint8_t mark = CLOCK_OWNERS;
        dimple_pbuf__add(s, &mark, 1);
        dimple_pack__varint(s, n_own);
        for (size_t o = 0; o < n_own; o++) {
            dimple_pack__varint(s, (uint64_t)tr->cells[first[o]].seq);
            dimple_pbuf__add(s, tr->cells[first[o]].id, 16);
        }
        for (size_t i = 0; i < tr->n_cells; i++) {
            size_t o = 0;
            while (tr->cells[first[o]].seq != tr->cells[i].seq ||
                   memcmp(tr->cells[first[o]].id, tr->cells[i].id, 16) != 0)
                o++;
            dimple_pack__varint(s, tr->cells[i].c);
            dimple_pack__varint(s, o);
        }
    }
    if (s->oom)
        return oom(db);
    sqlite3_stmt *st = dimple_track__cstmt(
        db, only_new ? "INSERT INTO _dimple_rows(t, k, s) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT DO NOTHING"
                     : "INSERT OR REPLACE INTO _dimple_rows(t, k, s)"
                       " VALUES (?1, ?2, ?3)");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, t);
    sqlite3_bind_blob(st, 2, k->p ? (const void *)k->p : "", (int)k->n,
                      SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, s->p ? (const void *)s->p : "", (int)s->n,
                      SQLITE_STATIC);
    int r = dimple_track__step(db, st, "change tracking: write _dimple_rows");
    if (added)
        *added = r == DIMPLE_OK && sqlite3_changes(db->sql) > 0;
    return r;
}

static int state_save(dimple *db, int64_t t, const dimple_pbuf *k)
{
    return state_write(db, t, k, false, NULL);
}

dimple_rcell *dimple_track__cell_find(struct dimple_track *tr, uint64_t c)
{
    for (size_t i = 0; i < tr->n_cells; i++)
        if (tr->cells[i].c == c)
            return &tr->cells[i];
    return NULL;
}

/* Set cell c to (id, seq) when id is newer; true when it won. */
static int cell_offer(dimple *db, uint64_t c, const uint8_t id[16], int64_t seq,
                      bool *won)
{
    struct dimple_track *tr = T(db);
    dimple_rcell *e = dimple_track__cell_find(tr, c);
    *won = false;
    if (e && id_cmp(id, e->id) <= 0)
        return DIMPLE_OK;
    if (!e) {
        int r = cells_reserve(db, tr->n_cells + 1);
        if (r)
            return r;
        e = &tr->cells[tr->n_cells++];
        e->c = c;
    }
    memcpy(e->id, id, 16);
    e->seq = seq;
    *won = true;
    return DIMPLE_OK;
}

bool dimple_track__state_alive(struct dimple_track *tr)
{
    dimple_rcell *a = dimple_track__cell_find(tr, C_ALIVE),
                 *d = dimple_track__cell_find(tr, C_DEAD);
    return id_cmp(a ? a->id : zero_id, d ? d->id : zero_id) > 0;
}

/* The resolver plugin that decides cells (lww by default: sync loads it
 * when the configuration names none), or NULL when none is loaded: a
 * database opened without configuration merges by the core's built-in
 * rule, the greater id wins (lww's rule; test track-converge shows the
 * two give the same tables). */
static const dimple_instance *resolver(dimple *db)
{
    const dimple_instance *r = db->resolver;
    return r && r->vt.resolver.resolve ? r : NULL;
}

/* Must a local write be merged at once (it may lose to a version already
 * held)? Not when the newest version always wins (DIMPLE_RESOLVE_NEWEST_WINS,
 * or the built-in rule): then the fold before the next apply records it. */
bool dimple_track__local_may_lose(dimple *db)
{
    const dimple_instance *r = resolver(db);
    return r && !(r->vt.resolver.flags & DIMPLE_RESOLVE_NEWEST_WINS);
}

int dimple_track__resolve(dimple *db, const dimple_cell *current,
                          const dimple_cell *in, bool *take)
{
    const dimple_instance *res = resolver(db);
    *take = false;
    if (!res) {
        *take = id_cmp(in->id, current->id) > 0;
        return DIMPLE_OK;
    }
    const char *table = current->table ? current->table : "?";
    const char *column = current->column ? current->column : "?";
    dimple_value merged;
    memset(&merged, 0, sizeof merged);
    db->plugin_err = 0;
    int v = res->vt.resolver.resolve(&merged, res->self, current, in);
    if (v == DIMPLE_TAKE_INCOMING) {
        *take = true;
        return DIMPLE_OK;
    }
    if (v == DIMPLE_KEEP_CURRENT)
        return DIMPLE_OK;
    if (v == DIMPLE_MERGED)
        return dimple__seterr(db, DIMPLE_EPLUGIN,
                              "resolver %s: returned a merged value for"
                              " \"%s\".\"%s\"; this core keeps one of the"
                              " versions (KEEP_CURRENT or TAKE_INCOMING)",
                              res->plugin->name, table, column);
    if (v < 0) {
        if (!db->plugin_err)
            dimple__seterr(db, v, "resolver %s failed on \"%s\".\"%s\"",
                           res->plugin->name, table, column);
        return v;
    }
    return dimple__seterr(db, DIMPLE_EPLUGIN, "resolver %s: unknown answer %d",
                          res->plugin->name, v);
}

/* Ask the resolver which of two versions of a cell wins, and record the
 * winner in the cell's clock entry e. */
static int resolve_answer(dimple *db, dimple_rcell *e,
                          const dimple_cell *current, const dimple_cell *in,
                          int64_t seq, bool *won)
{
    int r = dimple_track__resolve(db, current, in, won);
    if (r == DIMPLE_OK && *won) {
        memcpy(e->id, in->id, 16);
        e->seq = seq;
    }
    return r;
}

/* cell_offer through the resolver: it sees both versions (value, id,
 * author) and keeps one. Its order must be total (a join), so the owner
 * is the same whatever order the versions arrive in; a merged value
 * would not be any change's value, so it is refused. */
static int cell_resolve(dimple *db, int64_t t, uint64_t c, const uint8_t id[16],
                        int64_t seq, int64_t author,
                        const dimple_value *incoming, bool *won)
{
    struct dimple_track *tr = T(db);
    dimple_rcell *e = dimple_track__cell_find(tr, c);
    if (!e || memcmp(e->id, id, 16) == 0)
        return cell_offer(db, c, id, seq, won);
    *won = false;
    const dimple_instance *res = resolver(db);
    const char *table = dimple_track__name(db, t);
    const char *column = dimple_track__name(db, (int64_t)c - 1);
    if (res->vt.resolver.flags & DIMPLE_RESOLVE_IDS_ONLY) {
        /* the plugin reads the ids alone: no value or author to fetch */
        dimple_value none;
        memset(&none, 0, sizeof none);
        none.type = DIMPLE_NULL;
        dimple_cell current = {table, column, e->id, "", none};
        dimple_cell in = {table, column, id, "", none};
        return resolve_answer(db, e, &current, &in, seq, won);
    }
    if (!tr->res_fetch &&
        sqlite3_prepare_v3(
            db->sql, "SELECT v, author FROM _dimple_log WHERE seq = ?1", -1,
            SQLITE_PREPARE_PERSISTENT, &tr->res_fetch, NULL) != SQLITE_OK)
        return dimple__sqlerr(db, sqlite3_errcode(db->sql),
                              "change tracking: prepare");
    sqlite3_stmt *st = tr->res_fetch;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, e->seq);
    int r = DIMPLE_OK;
    if (sqlite3_step(st) != SQLITE_ROW) {
        r = dimple__seterr(db, DIMPLE_ECORRUPT,
                           "change tracking: the owner of a cell (log row"
                           " %lld) is missing",
                           (long long)e->seq);
        goto out;
    }
    const uint8_t *p = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0), pos = 0;
    dimple_value cur;
    bool found = false;
    while (pos < n && !found) {
        uint64_t cid;
        if (!dimple_unpack__varint(p, n, &pos, &cid) ||
            !dimple_unpack__value(p, n, &pos, &cur)) {
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "change tracking: malformed log row %lld",
                               (long long)e->seq);
            goto out;
        }
        found = cid + 1 == c;
    }
    if (!found) {
        r = dimple__seterr(db, DIMPLE_ECORRUPT,
                           "change tracking: log row %lld lacks the value of"
                           " its cell",
                           (long long)e->seq);
        goto out;
    }
    const uint8_t *ca =
        dimple_track__author_uuid(db, sqlite3_column_int64(st, 1));
    const uint8_t *ia = dimple_track__author_uuid(db, author);
    char cat[37] = "", iat[37] = "";
    if (ca)
        dimple_uuid__format(ca, cat);
    if (ia)
        dimple_uuid__format(ia, iat);
    dimple_cell current = {table, column, e->id, cat, cur};
    dimple_cell in = {table, column, id, iat, *incoming};
    r = resolve_answer(db, e, &current, &in, seq, won);
out:
    sqlite3_reset(st);
    return r;
}

void dimple_track__sync_begin(dimple *db, const uint8_t *pushed)
{
    struct dimple_track *tr = T(db);
    if (!tr)
        return;
    memset(tr->pushed, 0, 16);
    if (pushed)
        memcpy(tr->pushed, pushed, 16);
    tr->pushed_known = true;
}

/* Is the version id a write of this database that had not left it when
 * the current sync began (every local write, outside a sync)? A pulled
 * change that beats it was made without seeing it. */
static bool local_unsynced(struct dimple_track *tr, const uint8_t id[16])
{
    if (!tr->me || dimple_id__lo(id) != dimple_id__lo(tr->author))
        return false;
    return !tr->pushed_known || id_cmp(id, tr->pushed) > 0;
}

/* The author UUID of the version that owns cell c of the row in
 * tr->cells, or NULL. */
static const uint8_t *owner_author(dimple *db, uint64_t c)
{
    dimple_rcell *e = dimple_track__cell_find(T(db), c);
    if (!e)
        return NULL;
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "SELECT author FROM _dimple_log WHERE seq = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, e->seq);
    int64_t a =
        sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return a ? dimple_track__author_uuid(db, a) : NULL;
}

/* A local write of a cell lost to another author's version: say so
 * through the handle's logger, naming the cell and the winner, never a
 * cell's value (values may be secrets; a key names the row). */
static void warn_lost(dimple *db, int64_t t, const dimple_pbuf *k, int64_t cid,
                      const uint8_t *winner, bool pulled)
{
    char who[37] = "(unknown)", msg[1024];
    if (winner)
        dimple_uuid__format(winner, who);
    dimple_buf kb = {0};
    size_t pos = 0;
    int bad = dimple_buf__append(&kb, "[", 1);
    for (int n = 0; pos < k->n && !bad; n++) {
        dimple_value v;
        if (!dimple_unpack__value(k->p, k->n, &pos, &v))
            break;
        if (n)
            bad |= dimple_buf__append(&kb, ",", 1);
        bad |= dimple_json__value(&kb, &v);
    }
    bad |= dimple_buf__append(&kb, "]", 2); /* with the NUL */
    const char *table = dimple_track__name(db, t);
    const char *column = dimple_track__name(db, cid);
    const dimple_instance *res = resolver(db);
    snprintf(msg, sizeof msg,
             "table \"%s\", key %s, column \"%s\": a local write lost to %s"
             " by author %s (%s%s); the table holds the winning version",
             table ? table : "?", bad ? "?" : (const char *)kb.p,
             column ? column : "?",
             pulled ? "a pulled change" : "the version already held", who,
             res ? "resolver " : "the newest change wins",
             res ? res->plugin->name : "");
    dimple_buf__free(&kb);
    db->logger(db->logger_payload, DIMPLE_LOG_WARN, "change tracking", msg);
}

/*
 * The one merge rule, for one logged change (docs/tracking.md): per cell the
 * greater id owns it; a tombstone orders against cell changes by id; the
 * row exists when its newest insert/update is newer than its newest
 * tombstone. local: the user table already shows the change as written
 * (a trigger logged it), so only a lost cell or a wrong existence is
 * repaired; remote: the winning cells are written.
 */
static int merge_row(dimple *db, int64_t t, int64_t seq, const uint8_t id[16],
                     int64_t author, int op, const dimple_pbuf *k,
                     const uint8_t *v, size_t vn, bool local)
{
    struct dimple_track *tr = T(db);
    bool exists;
    size_t nc = 0;
    int r = decode_cols(db, v, vn, &nc);
    if (r)
        return r;
    /* A pulled insert usually creates its row: then the row's clock is
     * this change's alone, written by one statement that fails over to
     * the general path (load, merge, save) when the row has a clock. */
    bool fresh = false, won;
    if (!local && op == DIMPLE_OP_INSERT) {
        tr->n_cells = 0;
        if ((r = cell_offer(db, C_ALIVE, id, seq, &won)))
            return r;
        for (size_t i = 0; i < nc; i++)
            if ((r = cell_offer(db, (uint64_t)tr->cids[i] + 1, id, seq, &won)))
                return r;
        if ((r = state_write(db, t, k, true, &fresh)))
            return r;
    }
    if (fresh)
        tr->n_cells = 0; /* the clock before this change: none */
    else if ((r = dimple_track__state_load(db, t, k, &exists)))
        return r;
    bool before = dimple_track__state_alive(tr);
    bool any_lost = false;
    const dimple_ttable *tt = dimple_track__table_by_tid(db, t);
    bool want_buf[512], *want = want_buf, *want_heap = NULL;
    if (tt && tt->n_cols > 512) {
        want_heap = calloc(tt->n_cols, sizeof *want_heap);
        if (!want_heap)
            return oom(db);
        want = want_heap;
    }
    if (tt)
        memset(want, 0, tt->n_cols * sizeof *want);
    if (op == DIMPLE_OP_DELETE) {
        if ((r = cell_offer(db, C_DEAD, id, seq, &won)))
            goto out;
    } else {
        if ((r = cell_offer(db, C_ALIVE, id, seq, &won)))
            goto out;
        for (size_t i = 0; i < nc; i++) {
            /* a pulled change about to replace a local write nobody else
             * has seen (only looked for when someone listens) */
            dimple_rcell *e =
                !local && db->logger
                    ? dimple_track__cell_find(tr, (uint64_t)tr->cids[i] + 1)
                    : NULL;
            bool unsynced = e && local_unsynced(tr, e->id);
            if (resolver(db))
                r = cell_resolve(db, t, (uint64_t)tr->cids[i] + 1, id, seq,
                                 author, &tr->cv[i], &won);
            else
                r = cell_offer(db, (uint64_t)tr->cids[i] + 1, id, seq, &won);
            if (r)
                goto out;
            if (unsynced && won)
                warn_lost(db, t, k, tr->cids[i],
                          dimple_track__author_uuid(db, author), true);
            else if (local && !won && db->logger)
                warn_lost(db, t, k, tr->cids[i],
                          owner_author(db, (uint64_t)tr->cids[i] + 1), false);
            if (!tt)
                continue;
            /* local: mark the lost cells (to repair); remote: the won */
            for (size_t j = 0; j < tt->n_cols; j++)
                if (tt->cid[j] == tr->cids[i] && !tt->is_key[j]) {
                    want[j] = local ? !won : won;
                    if (local && !won)
                        any_lost = true;
                }
        }
    }
    bool after = dimple_track__state_alive(tr);
    if (!fresh && (r = state_save(db, t, k)))
        goto out;
    if (!tt)
        goto out; /* kept for when a migration adds the table */
    size_t nk = 0;
    if ((r = dimple_track__decode_key(db, k->p, k->n, &nk)))
        goto out;
    if (nk != tt->n_key) {
        r = dimple__seterr(db, DIMPLE_ECORRUPT,
                           "table \"%s\": a change has %zu key values, the"
                           " table's primary key has %zu",
                           tt->name, nk, tt->n_key);
        goto out;
    }
    dimple_merge_src x = {seq, nc, tr->cids, tr->cv};
    int changes = 0;
    if (local) {
        if (op == DIMPLE_OP_DELETE) {
            if (after) /* a newer cell change keeps the row */
                r = dimple_track__row_write(db, tt, tr->kv, DIMPLE_W_UPSERT,
                                            NULL, &x, &changes);
        } else if (!after) {
            r = dimple_track__row_delete(db, tt, tr->kv);
        } else if (any_lost) {
            r = dimple_track__row_write(db, tt, tr->kv, DIMPLE_W_UPDATE, want,
                                        &x, &changes);
        }
    } else {
        if (after && !before) {
            r = dimple_track__row_write(db, tt, tr->kv, DIMPLE_W_UPSERT, NULL,
                                        &x, &changes);
        } else if (after) {
            r = dimple_track__row_write(db, tt, tr->kv, DIMPLE_W_UPDATE, want,
                                        &x, &changes);
            if (r == DIMPLE_OK && changes == 0) /* the row went missing */
                r = dimple_track__row_write(db, tt, tr->kv, DIMPLE_W_UPSERT,
                                            NULL, &x, &changes);
        } else if (before) {
            r = dimple_track__row_delete(db, tt, tr->kv);
        }
    }
out:
    free(want_heap);
    return r;
}

/* Fold every change logged after the meta 'folded' mark into the row
 * clocks (local changes: the table already shows them). */
int dimple_track__fold(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    int64_t folded = 0;
    bool found;
    int r = dimple_track__meta_get(db, "folded", &folded, &found);
    if (r)
        return r;
    /* cached: fold runs before every apply; merges never re-enter it */
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "SELECT seq, author, t, op, k, v, id FROM _dimple_log"
            " WHERE seq > ?1 ORDER BY seq");
    int rc;
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, folded);
    bool was_muted = tr->muted;
    tr->muted = true;
    int64_t last = folded;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        uint8_t id[16];
        dimple_track__row_id(db, seq, sqlite3_column_int64(st, 1),
                             sqlite3_column_blob(st, 6),
                             sqlite3_column_bytes(st, 6), id);
        dimple_pbuf k = {(uint8_t *)sqlite3_column_blob(st, 4),
                         (size_t)sqlite3_column_bytes(st, 4), 0, false};
        const uint8_t *v = sqlite3_column_blob(st, 5);
        size_t vn = (size_t)sqlite3_column_bytes(st, 5);
        r = merge_row(db, sqlite3_column_int64(st, 2), seq, id,
                      sqlite3_column_int64(st, 1), sqlite3_column_int(st, 3),
                      &k, v, vn, sqlite3_column_type(st, 6) == SQLITE_NULL);
        if (r)
            break;
        last = seq;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE)
        r = dimple__sqlerr(db, rc, "change tracking: fold");
    sqlite3_reset(st);
    tr->muted = was_muted;
    if (r == DIMPLE_OK && last != folded)
        r = dimple_track__meta_set(db, "folded", last);
    return r;
}

/* ------------------------------------------------------- remote apply */

/* Is id a change this database made itself (under any of its authors)?
 * Remote changes already held are found by the append
 * (dimple_track__log_append). */
static int held_local(dimple *db, const uint8_t id[16], bool *out)
{
    *out = false;
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT author FROM _dimple_log"
                                " WHERE seq = ?1 AND id IS NULL");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, (int64_t)dimple_id__hi(id));
    int rc = sqlite3_step(st);
    int64_t a = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    if (a) {
        const uint8_t *u = dimple_track__author_uuid(db, a);
        *out = u && dimple_id__lo(u) == dimple_id__lo(id);
    }
    return DIMPLE_OK;
}

/* Does the log hold remote change id? (The apply loop learns it from the
 * append; this lookup serves only the error path.) */
static int held_remote(dimple *db, const uint8_t id[16], bool *out)
{
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT 1 FROM _dimple_log WHERE id = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    *out = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    return DIMPLE_OK;
}

/* The local rows (id NULL) with seq in [lo, hi], in seq order, into
 * tr->lseq / tr->lauth: one range read per apply call answers held_local
 * for every change of the call (applying adds no local rows). *ok false
 * when the range holds more than cap rows of any kind (the read stays
 * bounded): then each change is looked up. */
static int local_range(dimple *db, int64_t lo, int64_t hi, size_t cap, bool *ok)
{
    struct dimple_track *tr = T(db);
    *ok = false;
    tr->n_l = 0;
    /* lseq and lauth share cap_l: the first grow works on a copy, the
     * second (same arithmetic) commits it */
    size_t cap_seq = tr->cap_l;
    if (dimple__grow((void **)&tr->lseq, &cap_seq, cap, sizeof *tr->lseq) ||
        dimple__grow((void **)&tr->lauth, &tr->cap_l, cap, sizeof *tr->lauth))
        return oom(db);
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT seq, author, id IS NULL"
                                " FROM _dimple_log WHERE seq BETWEEN ?1"
                                " AND ?2 ORDER BY seq LIMIT ?3");
    if (!st)
        return db->errcode;
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    sqlite3_bind_int64(st, 3, (int64_t)cap + 1);
    int rc;
    size_t seen = 0;
    bool over = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (seen++ == cap) {
            over = true;
            break;
        }
        if (!sqlite3_column_int(st, 2))
            continue; /* a remote change's row */
        tr->lseq[tr->n_l] = sqlite3_column_int64(st, 0);
        tr->lauth[tr->n_l++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    *ok = !over;
    return DIMPLE_OK;
}

/* held_local answered from local_range's rows. */
static void held_in_range(dimple *db, const uint8_t id[16], bool *out)
{
    struct dimple_track *tr = T(db);
    int64_t seq = (int64_t)dimple_id__hi(id);
    size_t a = 0, b = tr->n_l;
    *out = false;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (tr->lseq[m] < seq)
            a = m + 1;
        else
            b = m;
    }
    if (a < tr->n_l && tr->lseq[a] == seq) {
        const uint8_t *u = dimple_track__author_uuid(db, tr->lauth[a]);
        *out = u && dimple_id__lo(u) == dimple_id__lo(id);
    }
}

static int bad_change(dimple *db, size_t i, const dimple_change *c,
                      const char *why)
{
    char id[37];
    dimple_uuid__format(c->id, id);
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change %zu (id %s, table \"%s\"): %s", i, id,
                          c->table ? c->table : "(null)", why);
}

static int check_change(dimple *db, size_t i, const dimple_change *c)
{
    if ((c->id[6] >> 4) != 7 || (c->id[8] & 0xc0) != 0x80)
        return bad_change(db, i, c, "the id is not a UUIDv7");
    if (!c->table || !c->table[0])
        return bad_change(db, i, c, "no table name");
    if (c->op != DIMPLE_OP_INSERT && c->op != DIMPLE_OP_UPDATE &&
        c->op != DIMPLE_OP_DELETE)
        return bad_change(db, i, c, "unknown op");
    if (c->op == DIMPLE_OP_DELETE && c->n_cols)
        return bad_change(db, i, c, "a delete carries columns");
    if (c->n_key < 1 || !c->key)
        return bad_change(db, i, c, "no primary-key value");
    if (c->n_cols && (!c->cols || !c->col_names))
        return bad_change(db, i, c, "columns without names or values");
    for (size_t j = 0; j < c->n_key; j++)
        if (c->key[j].type < DIMPLE_INTEGER || c->key[j].type > DIMPLE_NULL ||
            ((c->key[j].type == DIMPLE_TEXT || c->key[j].type == DIMPLE_BLOB) &&
             c->key[j].n && !c->key[j].p))
            return bad_change(db, i, c, "a key value has a bad type");
    for (size_t j = 0; j < c->n_cols; j++) {
        if (!c->col_names[j] || !c->col_names[j][0])
            return bad_change(db, i, c, "a column without a name");
        if (c->cols[j].type < DIMPLE_INTEGER || c->cols[j].type > DIMPLE_NULL ||
            ((c->cols[j].type == DIMPLE_TEXT ||
              c->cols[j].type == DIMPLE_BLOB) &&
             c->cols[j].n && !c->cols[j].p))
            return bad_change(db, i, c, "a column value has a bad type");
    }
    return DIMPLE_OK;
}

int dimple_track__apply(dimple *db, const dimple_change *changes, size_t n)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "change tracking is not set up on this"
                              " database (read-only?)");
    if (n && !changes)
        return dimple__seterr(db, DIMPLE_EINVAL, "apply: no changes given");
    for (size_t i = 0; i < n; i++) {
        int r = check_change(db, i, &changes[i]);
        if (r)
            return r;
    }
    int r = dimple_track__caches_check(db);
    if (r == DIMPLE_OK)
        r = dimple_track__clock_sync(db);
    if (r == DIMPLE_OK)
        r = dimple_track__fold(db);
    if (r)
        return r;
    /* a child row may arrive before its parent (another author's batch):
     * foreign keys are checked when the caller commits */
    sqlite3_stmt *fk = dimple_track__cstmt(db, "PRAGMA defer_foreign_keys");
    if (fk && sqlite3_step(fk) == SQLITE_ROW &&
        sqlite3_column_int(fk, 0) == 0) {
        /* setting it expires every prepared statement: only when off (it
         * switches itself off at each COMMIT: once per transaction) */
        sqlite3_reset(fk);
        sqlite3_exec(db->sql, "PRAGMA defer_foreign_keys = ON", NULL, NULL,
                     NULL);
    }
    if (fk)
        sqlite3_reset(fk);
    bool was_muted = tr->muted;
    tr->muted = true;
    uint64_t seen_before = tr->max_seen;
    int64_t last_seq = 0;
    bool ranged = false;
    if (n > 1) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
            int64_t h = (int64_t)dimple_id__hi(changes[i].id);
            lo = h < lo ? h : lo;
            hi = h > hi ? h : hi;
        }
        /* bounded read and memory (1 MiB); beyond, per-change lookups */
        size_t cap = n < 16384 ? 4 * n + 64 : 65536;
        r = local_range(db, lo, hi, cap, &ranged);
    }
    for (size_t i = 0; i < n && r == DIMPLE_OK; i++) {
        const dimple_change *c = &changes[i];
        int64_t aidx, tid;
        bool have;
        if (ranged)
            held_in_range(db, c->id, &have);
        else if ((r = held_local(db, c->id, &have)))
            break;
        if (have)
            continue;
        if ((r = dimple_track__author_intern(db, c->author, &aidx)))
            break;
        if ((r = dimple_track__name_intern(db, c->table, &tid)))
            break;
        const dimple_ttable *tt = dimple_track__table_by_tid(db, tid);
        if (tt && c->n_key != tt->n_key) {
            /* a change held already (from before a migration changed the
             * key) is skipped like any held change, not refused */
            if ((r = held_remote(db, c->id, &have)))
                break;
            if (have)
                continue;
            char why[160];
            snprintf(why, sizeof why,
                     "%zu key values for a primary key of %zu columns",
                     c->n_key, tt->n_key);
            r = bad_change(db, i, c, why);
            break;
        }
        dimple_pbuf__reset(&tr->kbuf);
        dimple_pbuf__reset(&tr->vbuf2);
        for (size_t j = 0; j < c->n_key; j++)
            dimple_pack__value(&tr->kbuf, &c->key[j]);
        for (size_t j = 0; j < c->n_cols && r == DIMPLE_OK; j++) {
            int64_t cid;
            if ((r = dimple_track__name_intern(db, c->col_names[j], &cid)))
                break;
            dimple_pack__varint(&tr->vbuf2, (uint64_t)cid);
            dimple_pack__value(&tr->vbuf2, &c->cols[j]);
        }
        if (r)
            break;
        if (tr->kbuf.oom || tr->vbuf2.oom) {
            r = oom(db);
            break;
        }
        /* observing a change already held changes nothing: it was
         * observed when it arrived */
        dimple_track__observe(tr, c->id);
        int64_t seq = (int64_t)dimple_track__tick(tr);
        bool added = false;
        r = dimple_track__log_append(
            db, seq, aidx, tid, c->op, &tr->kbuf,
            c->op == DIMPLE_OP_DELETE ? NULL : &tr->vbuf2, c->id, &added);
        if (r)
            break;
        if (!added)
            continue; /* held already: applying it again is a no-op */
        r = merge_row(db, tid, seq, c->id, aidx, c->op, &tr->kbuf, tr->vbuf2.p,
                      tr->vbuf2.n, false);
        last_seq = seq;
    }
    tr->muted = was_muted;
    if (r == DIMPLE_OK && last_seq)
        r = dimple_track__meta_set(db, "folded", last_seq);
    if (r == DIMPLE_OK && tr->max_seen != seen_before)
        r = dimple_track__meta_set(db, "max_seen", (int64_t)tr->max_seen);
    return r;
}
