/*
 * track_log.c — writing the change log and reading it back in order.
 *
 * Write path: a generated AFTER trigger calls one C function (dimple_ins,
 * dimple_upd, dimple_del) that packs the key and the changed columns and
 * appends ONE row to _dimple_log, keyed by the clock value itself. Nothing
 * else is maintained per write. A local write carries the newest id, so
 * applying it directly equals the merge; only when a remote id is ahead
 * of our clock ("behind"), or a resolver may let it lose, does the
 * trigger fold at once (track_merge.c), and the fold restores the winning
 * values.
 */
#include "track_replace.h"
#include "track_impl.h"

#include "buf.h"
#include "clock.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the log */

/* Append a change; a remote change (id given) whose id the log already
 * holds is not appended (*added false): the unique index answers "held?"
 * in the same seek that inserts. */
int dimple_track__log_append(dimple *db, int64_t seq, int64_t author, int64_t t,
                             int op, const dimple_pbuf *k, const dimple_pbuf *v,
                             const uint8_t *id, bool *added)
{
    struct dimple_track *tr = T(db);
    /* the hot path: its own statement, no cache lookup */
    sqlite3_stmt **pst = id ? &tr->log_ins_remote : &tr->log_ins;
    if (!*pst) {
        int rc = sqlite3_prepare_v3(
            db->sql,
            id ? "INSERT INTO _dimple_log(seq, author, t, op, k, v, id)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                 " ON CONFLICT(id) WHERE id IS NOT NULL DO NOTHING"
               : "INSERT INTO _dimple_log(seq, author, t, op, k, v, id)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            -1, SQLITE_PREPARE_PERSISTENT, pst, NULL);
        if (rc != SQLITE_OK)
            return dimple__sqlerr(db, rc, "change tracking: prepare");
    }
    sqlite3_stmt *st = *pst;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, author);
    sqlite3_bind_int64(st, 3, t);
    sqlite3_bind_int(st, 4, op);
    sqlite3_bind_blob(st, 5, k->p ? (const void *)k->p : "", (int)k->n,
                      SQLITE_STATIC);
    if (v)
        sqlite3_bind_blob(st, 6, v->p ? (const void *)v->p : "", (int)v->n,
                          SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    if (id)
        sqlite3_bind_blob(st, 7, id, 16, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    int r =
        dimple_track__step(db, st, "change tracking: append to _dimple_log");
    if (added)
        *added = r == DIMPLE_OK && sqlite3_changes(db->sql) > 0;
    return r;
}

/* ----------------------------------------------- the trigger functions */

static void fn_fail(sqlite3_context *ctx, dimple *db, int r)
{
    (void)r;
    sqlite3_result_error(ctx, db->errmsg, -1);
}

/* Pack the column arguments from argv[i0..]: pairs (cid, value) for an
 * insert, triplets (cid, old, new) for an update, or a BLOB built by
 * dimple_cols() for wide tables. Only changed columns unless all. */
static int pack_cols(dimple *db, bool upd, bool all, int argc,
                     sqlite3_value **argv, int i0, dimple_pbuf *out, size_t *n)
{
    *n = 0;
    for (int i = i0; i < argc;) {
        if (sqlite3_value_type(argv[i]) == SQLITE_BLOB) {
            const uint8_t *p = sqlite3_value_blob(argv[i]);
            size_t len = (size_t)sqlite3_value_bytes(argv[i]), pos = 0;
            while (pos < len) {
                uint64_t cc;
                dimple_value dv;
                if (!dimple_unpack__varint(p, len, &pos, &cc))
                    goto bad;
                size_t at = pos;
                if (!dimple_unpack__value(p, len, &pos, &dv))
                    goto bad;
                if ((cc & 1) || all) {
                    dimple_pack__varint(out, cc >> 1);
                    dimple_pbuf__add(out, p + at, pos - at);
                    (*n)++;
                }
            }
            i++;
            continue;
        }
        int per = upd ? 3 : 2;
        if (i + per > argc || sqlite3_value_type(argv[i]) != SQLITE_INTEGER)
            goto bad;
        sqlite3_int64 cid = sqlite3_value_int64(argv[i]);
        sqlite3_value *nv = argv[i + per - 1];
        if (!upd || all || !dimple_pack__same(argv[i + 1], nv)) {
            dimple_pack__varint(out, (uint64_t)cid);
            dimple_pack__sqlite(out, nv);
            (*n)++;
        }
        i += per;
    }
    if (out->oom)
        return oom(db);
    return DIMPLE_OK;
bad:
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change tracking: unexpected trigger arguments"
                          " (regenerate the triggers: reopen the database)");
}

static int local_begin(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (tr->copied)
        return dimple__seterr(db, DIMPLE_ECONFLICT, "%s", tr->copied_msg);
    return dimple_track__clock_sync(db);
}

/* After a local change: when a remote id is ahead of the clock, or the
 * resolver may let the write lose, fold now so the winning values are
 * restored (docs/tracking.md, "The merge rule"). */
static int local_end(dimple *db, uint64_t seq)
{
    struct dimple_track *tr = T(db);
    if (tr->max_seen < seq && !dimple_track__local_may_lose(db))
        return DIMPLE_OK;
    return dimple_track__fold(db);
}

/* Pack nk key values argv[first], argv[first + stride], ... into b. */
static int pack_key(dimple *db, dimple_pbuf *b, sqlite3_value **argv, int first,
                    int stride, int nk)
{
    dimple_pbuf__reset(b);
    for (int i = 0; i < nk; i++)
        dimple_pack__sqlite(b, argv[first + stride * i]);
    return b->oom ? oom(db) : DIMPLE_OK;
}

/* Append one local change, under the next value of the clock (*seq). */
static int log_local(dimple *db, int64_t t, int op, const dimple_pbuf *k,
                     const dimple_pbuf *v, uint64_t *seq)
{
    struct dimple_track *tr = T(db);
    *seq = dimple_track__tick(tr);
    return dimple_track__log_append(db, (int64_t)*seq, tr->me, t, op, k, v,
                                    NULL, NULL);
}

/* A delete that fired no trigger (OR REPLACE; replace.c), logged now. */
static int log_replaced(dimple *db, int64_t t, const dimple_pbuf *key)
{
    uint64_t seq;
    int r = log_local(db, t, DIMPLE_OP_DELETE, key, NULL, &seq);
    return r ? r : local_end(db, seq);
}

static void fn_ins(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    struct dimple_track *tr = T(db);
    if (tr->muted)
        return;
    int r = local_begin(db);
    if (r == DIMPLE_OK)
        r = dimple_replace__flush(db, log_replaced);
    if (r)
        goto fail;
    if (argc < 3)
        goto bad;
    int64_t t = sqlite3_value_int64(argv[0]);
    int nk = sqlite3_value_int(argv[1]);
    if (nk < 1 || 2 + nk > argc)
        goto bad;
    dimple_pbuf__reset(&tr->vbuf);
    size_t n;
    uint64_t seq;
    if ((r = pack_key(db, &tr->kbuf, argv, 2, 1, nk)) ||
        (r = pack_cols(db, false, true, argc, argv, 2 + nk, &tr->vbuf, &n)))
        goto fail;
    r = log_local(db, t, DIMPLE_OP_INSERT, &tr->kbuf, &tr->vbuf, &seq);
    if (r == DIMPLE_OK)
        r = local_end(db, seq);
    if (r)
        goto fail;
    return;
bad:
    r = dimple__seterr(db, DIMPLE_ECORRUPT,
                       "change tracking: unexpected trigger arguments");
fail:
    fn_fail(ctx, db, r);
}

static void fn_del(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    struct dimple_track *tr = T(db);
    if (tr->muted)
        return;
    int r = local_begin(db);
    if (r)
        goto fail;
    if (argc < 3)
        goto bad;
    int64_t t = sqlite3_value_int64(argv[0]);
    int nk = sqlite3_value_int(argv[1]);
    if (nk < 1 || 2 + nk != argc)
        goto bad;
    uint64_t seq;
    if ((r = pack_key(db, &tr->kbuf, argv, 2, 1, nk)))
        goto fail;
    r = log_local(db, t, DIMPLE_OP_DELETE, &tr->kbuf, NULL, &seq);
    if (r == DIMPLE_OK)
        dimple_replace__taken(db, t, &tr->kbuf);
    if (r == DIMPLE_OK)
        r = local_end(db, seq);
    if (r)
        goto fail;
    return;
bad:
    r = dimple__seterr(db, DIMPLE_ECORRUPT,
                       "change tracking: unexpected trigger arguments");
fail:
    fn_fail(ctx, db, r);
}

static void fn_upd(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    struct dimple_track *tr = T(db);
    if (tr->muted)
        return;
    int r = local_begin(db);
    if (r == DIMPLE_OK)
        r = dimple_replace__flush(db, log_replaced);
    if (r)
        goto fail;
    if (argc < 4)
        goto bad;
    int64_t t = sqlite3_value_int64(argv[0]);
    int nk = sqlite3_value_int(argv[1]);
    if (nk < 1 || 2 + 2 * nk > argc)
        goto bad;
    bool key_changed = false;
    for (int i = 0; i < nk; i++)
        if (!dimple_pack__same(argv[2 + 2 * i], argv[3 + 2 * i]))
            key_changed = true;
    dimple_pbuf__reset(&tr->vbuf);
    size_t n;
    uint64_t seq;
    if ((r = pack_key(db, &tr->kbuf, argv, 3, 2, nk)) ||
        (r = pack_cols(db, true, key_changed, argc, argv, 2 + 2 * nk, &tr->vbuf,
                       &n)))
        goto fail;
    if (key_changed) {
        /* a new key is another row: the old one is deleted */
        if ((r = pack_key(db, &tr->kbuf2, argv, 2, 2, nk)))
            goto fail;
        r = log_local(db, t, DIMPLE_OP_DELETE, &tr->kbuf2, NULL, &seq);
        if (r == DIMPLE_OK)
            r = log_local(db, t, DIMPLE_OP_INSERT, &tr->kbuf, &tr->vbuf, &seq);
    } else {
        if (n == 0)
            return; /* nothing changed: nothing to record */
        r = log_local(db, t, DIMPLE_OP_UPDATE, &tr->kbuf, &tr->vbuf, &seq);
    }
    if (r == DIMPLE_OK)
        r = local_end(db, seq);
    if (r)
        goto fail;
    return;
bad:
    r = dimple__seterr(db, DIMPLE_ECORRUPT,
                       "change tracking: unexpected trigger arguments");
fail:
    fn_fail(ctx, db, r);
}

/* dimple_cols(upd, cid, [old,] new, ...): a chunk of a wide table's
 * columns, entries (varint cid << 1 | changed, packed new value). */
static void fn_cols(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    if (db->track->muted)
        return;
    dimple_pbuf b = {0};
    if (argc < 1) {
        sqlite3_result_error(ctx, "dimple_cols: arguments", -1);
        return;
    }
    bool upd = sqlite3_value_int(argv[0]) != 0;
    int per = upd ? 3 : 2;
    if ((argc - 1) % per) {
        sqlite3_result_error(ctx, "dimple_cols: arguments", -1);
        return;
    }
    for (int i = 1; i < argc; i += per) {
        sqlite3_value *nv = argv[i + per - 1];
        bool changed = !upd || !dimple_pack__same(argv[i + 1], nv);
        dimple_pack__varint(&b, (uint64_t)sqlite3_value_int64(argv[i]) << 1 |
                                    changed);
        dimple_pack__sqlite(&b, nv);
    }
    if (b.oom) {
        sqlite3_result_error_nomem(ctx);
    } else {
        /* an empty chunk is still a BLOB, never NULL */
        sqlite3_result_blob(ctx, b.p ? (const void *)b.p : "", (int)b.n,
                            SQLITE_TRANSIENT);
    }
    dimple_pbuf__free(&b);
}

/* dimple_id(seq, author, id): a log row's 16-byte change id (history). */
static void fn_id(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    dimple *db = sqlite3_user_data(ctx);
    (void)argc;
    uint8_t id[16];
    dimple_track__row_id(
        db, sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]),
        sqlite3_value_blob(argv[2]), sqlite3_value_bytes(argv[2]), id);
    sqlite3_result_blob(ctx, id, 16, SQLITE_TRANSIENT);
}

int dimple_track__register_functions(dimple *db)
{
    static const struct {
        const char *name;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
        int n;
    } fns[] = {{"dimple_ins", fn_ins, -1},
               {"dimple_upd", fn_upd, -1},
               {"dimple_del", fn_del, -1},
               {"dimple_cols", fn_cols, -1},
               {"dimple_id", fn_id, 3}};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int rc = sqlite3_create_function_v2(db->sql, fns[i].name, fns[i].n,
                                            SQLITE_UTF8, db, fns[i].fn, NULL,
                                            NULL, NULL);
        if (rc != SQLITE_OK)
            return dimple__sqlerr(db, rc,
                                  "change tracking: register"
                                  " functions");
    }
    return DIMPLE_OK;
}

/* ------------------------------------------------------ walking the log */

typedef struct walk {
    dimple_value *kv, *cv;
    const char **names;
    size_t cap_k, cap_c;
} walk;

static void walk_free(walk *w)
{
    free(w->kv);
    free(w->cv);
    free(w->names);
}

/* Decode the current row of st (seq, author, t, op, k, v, id) into c. */
static int walk_row(dimple *db, sqlite3_stmt *st, walk *w, dimple_change *c)
{
    memset(c, 0, sizeof *c);
    int64_t seq = sqlite3_column_int64(st, 0);
    int64_t author = sqlite3_column_int64(st, 1);
    dimple_track__row_id(db, seq, author, sqlite3_column_blob(st, 6),
                         sqlite3_column_bytes(st, 6), c->id);
    const uint8_t *a = dimple_track__author_uuid(db, author);
    if (!a)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: log row %lld names an"
                              " unknown author",
                              (long long)seq);
    memcpy(c->author, a, 16);
    c->table = dimple_track__name(db, sqlite3_column_int64(st, 2));
    if (!c->table)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: log row %lld names an"
                              " unknown table",
                              (long long)seq);
    c->op = (dimple_op)sqlite3_column_int(st, 3);
    const uint8_t *p = sqlite3_column_blob(st, 4);
    size_t n = (size_t)sqlite3_column_bytes(st, 4), pos = 0, i = 0;
    while (pos < n) {
        if (dimple__grow((void **)&w->kv, &w->cap_k, i + 1, sizeof *w->kv))
            return oom(db);
        if (!dimple_unpack__value(p, n, &pos, &w->kv[i++]))
            goto bad;
    }
    c->n_key = i;
    c->key = w->kv;
    p = sqlite3_column_blob(st, 5);
    n = (size_t)sqlite3_column_bytes(st, 5);
    pos = 0;
    i = 0;
    while (pos < n) {
        /* cv and names share cap_c: the first grow works on a copy, the
         * second (same arithmetic) commits it */
        size_t cap_cv = w->cap_c;
        if (dimple__grow((void **)&w->cv, &cap_cv, i + 1, sizeof *w->cv) ||
            dimple__grow((void **)&w->names, &w->cap_c, i + 1,
                         sizeof *w->names))
            return oom(db);
        uint64_t cid;
        if (!dimple_unpack__varint(p, n, &pos, &cid) ||
            !dimple_unpack__value(p, n, &pos, &w->cv[i]))
            goto bad;
        w->names[i] = dimple_track__name(db, (int64_t)cid);
        if (!w->names[i])
            goto bad;
        i++;
    }
    c->n_cols = i;
    c->cols = w->cv;
    c->col_names = w->names;
    return DIMPLE_OK;
bad:
    return dimple__seterr(db, DIMPLE_ECORRUPT,
                          "change tracking: malformed log row %lld",
                          (long long)seq);
}

int dimple_track__each_local(dimple *db, const uint8_t *after,
                             dimple_change_cb cb, void *payload)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    sqlite3_stmt *st = NULL;
    walk w = {0};
    int rc = sqlite3_prepare_v2(
        db->sql,
        "SELECT seq, author, t, op, k, v, id FROM _dimple_log"
        " WHERE seq >= ?1 AND author = ?2 AND id IS NULL ORDER BY seq",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_bind_int64(st, 1, after ? (int64_t)dimple_id__hi(after) : 0);
    sqlite3_bind_int64(st, 2, tr->me);
    int r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dimple_change c;
        if ((r = walk_row(db, st, &w, &c)))
            break;
        if (after && memcmp(c.id, after, 16) <= 0)
            continue;
        if ((r = cb(payload, &c)))
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_finalize(st);
    walk_free(&w);
    return r;
}

int dimple_track__each_since(dimple *db, int64_t *seq, dimple_change_cb cb,
                             void *payload)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return DIMPLE_OK;
    sqlite3_stmt *st = NULL;
    walk w = {0};
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT seq, author, t, op, k, v, id FROM"
                                " _dimple_log WHERE seq > ?1 ORDER BY seq",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_bind_int64(st, 1, *seq);
    int r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dimple_change c;
        if ((r = walk_row(db, st, &w, &c)))
            break;
        *seq = sqlite3_column_int64(st, 0);
        if ((r = cb(payload, &c)))
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    sqlite3_finalize(st);
    walk_free(&w);
    return r;
}

int64_t dimple_track__last_seq(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return 0;
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "SELECT coalesce(max(seq), 0) FROM _dimple_log");
    if (!st)
        return 0;
    int64_t v =
        sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return v;
}
