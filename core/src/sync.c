/*
 * sync.c — the sync engine: this author's change log out to the store,
 * every other author's log in, through the remote format of
 * docs/FORMAT.md (batch.c) and the storage/cipher access of remote.c.
 *
 * Crash safety rests on three rules:
 *  - push records the batch it is about to write (first and last id)
 *    before the put, and the pushed position only after the put worked,
 *    so a re-push after a crash rewrites the same key with the same
 *    changes (readers that took the first copy miss nothing);
 *  - pull applies a batch and advances that author's cursor in one SQLite
 *    transaction, so a crash applies a batch entirely or not at all;
 *  - applying is idempotent (track.c ignores ids it holds).
 * Memory is bounded by one batch: push walks the log from the pushed
 * position one batch at a time, pull lists keys in pages and reads one
 * object at a time.
 *
 * Bookkeeping lives in _dimple_sync_state (one row) and _dimple_sync_cursor
 * (one row per author pulled), created on the first sync.
 */
#include "batch.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "loader.h"
#include "opts.h"
#include "remote.h"
#include "sync_hooks.h"
#include "track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WALK_STOP 1   /* callback return: stop a walk or a listing */
#define SKIPPED 2     /* pull_batch: the batch was already applied */
#define LIST_PAGE 128 /* keys taken per listing round (bounded memory) */
#define MARKER_KEY "dimple.json"

struct dimple_sync {
    int ready;     /* bookkeeping tables exist */
    int marker_ok; /* the store's marker was checked this session */
    dimple_batch_enc enc;
    dimple_buf get, plain;
};

typedef struct run {
    dimple *db;
    struct dimple_sync *s;
    dimple_sync_options o;
    dimple_sync_stats st;
    uint8_t me[16];
    char me_txt[37];
    size_t max_changes, max_bytes;
    uint64_t req0;
    int first_rc;
    char first_msg[sizeof(((dimple *)0)->errmsg)];
    int stop; /* non-zero: what the progress callback returned to stop */
} run;

/* ------------------------------------------------------------- helpers */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Keep the first error of the call (its message names the object) and
 * count every one; the sync goes on with what does not depend on it. */
static void note(run *r, int rc)
{
    if (rc >= 0)
        return;
    r->st.errors++;
    if (!r->first_rc) {
        r->first_rc = rc;
        snprintf(r->first_msg, sizeof r->first_msg, "%s", dimple_errmsg(r->db));
    }
}

static int exec(dimple *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? DIMPLE_OK : dimple__sqlerr(db, rc, what);
}

static int ensure_tables(dimple *db)
{
    if (db->sync->ready)
        return DIMPLE_OK;
    int rc = exec(db,
                  "BEGIN IMMEDIATE;"
                  "CREATE TABLE IF NOT EXISTS _dimple_sync_state("
                  " one TEXT PRIMARY KEY CHECK (one = 'state'),"
                  " store BLOB, pushed BLOB,"
                  " intent_first BLOB, intent_last BLOB) WITHOUT ROWID;"
                  "INSERT OR IGNORE INTO _dimple_sync_state(one)"
                  " VALUES ('state');"
                  "CREATE TABLE IF NOT EXISTS _dimple_sync_cursor("
                  " author BLOB PRIMARY KEY, key TEXT NOT NULL,"
                  " last_id BLOB NOT NULL, batches INTEGER NOT NULL,"
                  " changes INTEGER NOT NULL) WITHOUT ROWID;"
                  "COMMIT;",
                  "sync: creating the _dimple_sync_ tables");
    if (rc < 0) {
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    db->sync->ready = 1;
    return DIMPLE_OK;
}

typedef struct state {
    uint8_t store[16], pushed[16], ifirst[16], ilast[16];
    int has_store, has_pushed, has_intent;
} state;

static int blob16(sqlite3_stmt *st, int col, uint8_t out[16])
{
    if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
        sqlite3_column_bytes(st, col) != 16)
        return 0;
    memcpy(out, sqlite3_column_blob(st, col), 16);
    return 1;
}

static int state_load(dimple *db, state *s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT store, pushed, intent_first,"
                                " intent_last FROM _dimple_sync_state",
                                -1, &st, NULL);
    memset(s, 0, sizeof *s);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "sync: reading _dimple_sync_state");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->has_store = blob16(st, 0, s->store);
        s->has_pushed = blob16(st, 1, s->pushed);
        s->has_intent = blob16(st, 2, s->ifirst) && blob16(st, 3, s->ilast);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE
               ? DIMPLE_OK
               : dimple__sqlerr(db, rc, "sync: reading _dimple_sync_state");
}

/* UPDATE _dimple_sync_state SET <set> with up to two 16-byte blobs. */
static int state_set(dimple *db, const char *set, const uint8_t *a,
                     const uint8_t *b)
{
    char sql[256];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql, "UPDATE _dimple_sync_state SET %s", set);
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (a)
            sqlite3_bind_blob(st, 1, a, 16, SQLITE_STATIC);
        if (b)
            sqlite3_bind_blob(st, 2, b, 16, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_OK
               ? DIMPLE_OK
               : dimple__sqlerr(db, rc, "sync: writing _dimple_sync_state");
}

static void new_uuid4(uint8_t out[16])
{
    sqlite3_randomness(16, out);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

/* Read (or write, for a new store) the format marker once per session;
 * refuse a newer major format. If the store is not the one our positions
 * are about (another store id), forget them: *reset = 1. */
static int ensure_marker(run *r, int *reset)
{
    dimple *db = r->db;
    dimple_buf *b = &r->s->get;
    uint8_t store[16];
    char err[512], text[160];
    state s;
    int rc;

    *reset = 0;
    if (r->s->marker_ok)
        return DIMPLE_OK;
    rc = dimple_remote__get(db, MARKER_KEY, b);
    if (rc == DIMPLE_ENOTFOUND) {
        int n;
        new_uuid4(store);
        n = dimple_batch__marker(text, sizeof text, store);
        if (n < 0)
            return dimple__seterr(db, DIMPLE_ERROR, "sync: marker too long");
        rc = dimple_remote__put_if_absent(db, MARKER_KEY, text, (size_t)n);
        if (rc == DIMPLE_EEXISTS) /* another replica got there first */
            rc = dimple_remote__get(db, MARKER_KEY, b);
        else if (rc == DIMPLE_OK)
            goto have_store;
    }
    if (rc < 0)
        return rc;
    rc = dimple_batch__marker_check(b->p, b->n, store, err, sizeof err);
    if (rc < 0)
        return dimple__seterr(db, rc, "sync: %s", err);
have_store:
    if ((rc = state_load(db, &s)) < 0)
        return rc;
    if (!s.has_store) {
        rc = state_set(db, "store = ?1", store, NULL);
    } else if (memcmp(s.store, store, 16) != 0) {
        /* Another store (a new, wiped or restored one): our positions are
         * about the old one. Push everything again; pull from the start
         * (applying again is harmless). */
        rc = exec(db,
                  "BEGIN IMMEDIATE; DELETE FROM _dimple_sync_cursor;"
                  "UPDATE _dimple_sync_state SET pushed = NULL,"
                  " intent_first = NULL, intent_last = NULL; COMMIT;",
                  "sync: resetting positions for a new store");
        if (rc < 0)
            sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        else
            rc = state_set(db, "store = ?1", store, NULL);
        *reset = 1;
    }
    if (rc < 0)
        return rc;
    r->s->marker_ok = 1;
    return DIMPLE_OK;
}

static int progress(run *r, dimple_sync_phase phase, const char *author,
                    const char *key, uint64_t known)
{
    dimple_sync_progress p;
    if (!r->o.progress)
        return 0;
    memset(&p, 0, sizeof p);
    p.phase = phase;
    p.author = author;
    p.key = key;
    if (phase == DIMPLE_SYNC_PUSH) {
        p.batches_done = p.batches_known = r->st.batches_pushed;
        p.changes_done = r->st.changes_pushed;
        p.bytes_done = r->st.bytes_pushed;
    } else {
        p.batches_done = r->st.batches_pulled;
        p.batches_known = known > p.batches_done ? known : p.batches_done;
        p.changes_done = r->st.changes_pulled;
        p.bytes_done = r->st.bytes_pulled;
    }
    r->stop = r->o.progress(r->o.payload, &p);
    return r->stop;
}

/* ---------------------------------------------------------------- push */

typedef struct push_walk {
    dimple_batch_enc *enc;
    const uint8_t *until; /* re-push: the recorded last id, or NULL */
    int found_until;
    int err;
} push_walk;

static int push_cb(void *payload, const dimple_change *c)
{
    push_walk *w = payload;
    if (w->until && memcmp(c->id, w->until, 16) > 0)
        return WALK_STOP; /* past the recorded batch: not in it */
    int rc = dimple_batch__enc_add(w->enc, c);
    if (rc == DIMPLE_BATCH_FULL)
        return WALK_STOP;
    if (rc < 0) {
        w->err = rc;
        return rc;
    }
    if (w->until && memcmp(c->id, w->until, 16) == 0) {
        w->found_until = 1;
        return WALK_STOP;
    }
    return 0;
}

static int push(run *r)
{
    dimple *db = r->db;
    dimple_batch_enc *enc = &r->s->enc;
    char key[160];
    int rc;

    for (;;) {
        state s;
        push_walk w = {enc, NULL, 0, 0};
        int reset = 0;

        if (r->stop ||
            (r->o.max_batches && r->st.batches_pushed >= r->o.max_batches))
            return DIMPLE_OK;
        if ((rc = state_load(db, &s)) < 0)
            return rc;
        dimple_batch__enc_free(enc);
        if (s.has_intent) {
            /* a batch recorded but maybe not written: cut it again, exactly
             * (the limits may have changed since) */
            dimple_batch__enc_init(enc, r->me, DIMPLE_BATCH_MAX_CHANGES,
                                   DIMPLE_BATCH_MAX_OBJECT);
            w.until = s.ilast;
        } else {
            dimple_batch__enc_init(enc, r->me, r->max_changes, r->max_bytes);
        }
        rc = dimple_track__each_local(db, s.has_pushed ? s.pushed : NULL,
                                      push_cb, &w);
        if (w.err) {
            return dimple__seterr(db, w.err,
                                  "sync: push: cannot write a change to the "
                                  "store: %s",
                                  enc->err);
        }
        if (rc < 0)
            return rc;
        if (s.has_intent && (!w.found_until || enc->count == 0 ||
                             memcmp(enc->first, s.ifirst, 16) != 0)) {
            /* The log no longer holds the recorded batch as recorded (a
             * restored database): forget the record and cut afresh. */
            dimple_batch__enc_free(enc);
            if ((rc = state_set(db, "intent_first = NULL, intent_last = NULL",
                                NULL, NULL)) < 0)
                return rc;
            continue;
        }
        if (enc->count == 0)
            return DIMPLE_OK;
        if ((rc = ensure_marker(r, &reset)) < 0)
            return rc;
        if (reset)
            continue; /* positions forgotten: cut from the start */
        if (!s.has_intent &&
            (rc = state_set(db, "intent_first = ?1, intent_last = ?2",
                            enc->first, enc->last)) < 0)
            return rc;
        if ((rc = dimple_batch__enc_finish(enc)) < 0)
            return dimple__seterr(db, rc, "sync: push: %s", enc->err);
        dimple_batch__key(key, sizeof key, r->me, enc->first,
                          db->cipher != NULL);
        const void *data = enc->p;
        size_t len = enc->n;
        if (db->cipher) {
            if ((rc = dimple_remote__seal(db, key, enc->p, enc->n,
                                          &r->s->plain)) < 0)
                return rc;
            data = r->s->plain.p;
            len = r->s->plain.n;
        }
        if ((rc = dimple_remote__put(db, key, data, len)) < 0)
            return rc;
        /* written: only now does the pushed position move */
        if ((rc = state_set(db,
                            "pushed = ?1, intent_first = NULL,"
                            " intent_last = NULL",
                            enc->last, NULL)) < 0)
            return rc;
        r->st.batches_pushed++;
        r->st.changes_pushed += enc->count;
        r->st.bytes_pushed += len;
        progress(r, DIMPLE_SYNC_PUSH, r->me_txt, key, 0);
    }
}

/* ---------------------------------------------------------------- pull */

typedef struct id_list {
    uint8_t (*ids)[16];
    size_t n, cap;
    char bad[3][128]; /* the first unexpected names under log/ */
    size_t n_bad;
    int own; /* our own folder is there */
    const uint8_t *me;
    int oom;
} id_list;

static int authors_cb(void *payload, const char *key)
{
    id_list *l = payload;
    const char *name = key + 4; /* after "log/" */
    size_t n = strlen(name);
    uint8_t id[16];

    if (strncmp(key, "log/", 4) != 0 || n != 37 || name[36] != '/' ||
        dimple_uuid__parse_n(name, 36, id, DIMPLE_UUID_CANONICAL) != 0) {
        if (l->n_bad < 3)
            snprintf(l->bad[l->n_bad], sizeof l->bad[0], "%s", key);
        l->n_bad++;
        return 0;
    }
    if (memcmp(id, l->me, 16) == 0) {
        l->own = 1;
        return 0;
    }
    if (dimple__grow((void **)&l->ids, &l->cap, l->n + 1, sizeof *l->ids)) {
        l->oom = 1;
        return DIMPLE_ENOMEM;
    }
    memcpy(l->ids[l->n++], id, 16);
    return 0;
}

typedef struct key_page {
    char *keys[LIST_PAGE];
    size_t n;
    int oom;
} key_page;

static int page_cb(void *payload, const char *key)
{
    key_page *p = payload;
    if (p->n == LIST_PAGE)
        return WALK_STOP; /* more after this page */
    if (!(p->keys[p->n] = strdup(key))) {
        p->oom = 1;
        return DIMPLE_ENOMEM;
    }
    p->n++;
    return 0;
}

static void page_free(key_page *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->keys[i]);
    p->n = 0;
}

typedef struct cursor {
    char *key; /* NULL: from the start */
    uint8_t last[16];
} cursor;

static int cursor_load(dimple *db, const uint8_t author[16], cursor *c)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT key, last_id FROM _dimple_sync_cursor"
                                " WHERE author = ?1",
                                -1, &st, NULL);
    free(c->key);
    memset(c, 0, sizeof *c);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "sync: reading _dimple_sync_cursor");
    sqlite3_bind_blob(st, 1, author, 16, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (k && blob16(st, 1, c->last) && !(c->key = strdup(k))) {
            sqlite3_finalize(st);
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        }
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE
               ? DIMPLE_OK
               : dimple__sqlerr(db, rc, "sync: reading _dimple_sync_cursor");
}

static int cursor_store(dimple *db, const uint8_t author[16], const char *key,
                        const uint8_t last[16], size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db->sql,
        "INSERT INTO _dimple_sync_cursor(author, key, last_id, batches,"
        " changes) VALUES (?1, ?2, ?3, 1, ?4)"
        " ON CONFLICT(author) DO UPDATE SET key = excluded.key,"
        " last_id = excluded.last_id, batches = batches + 1,"
        " changes = changes + excluded.changes",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, author, 16, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, last, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)n);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE
               ? DIMPLE_OK
               : dimple__sqlerr(db, rc, "sync: writing _dimple_sync_cursor");
}

/* Read, open, validate and apply one batch, with its cursor, atomically.
 * Returns DIMPLE_OK, SKIPPED (already applied), or an error. */
static int pull_batch(run *r, const uint8_t author[16], const char *prefix,
                      const char *key, cursor *cur)
{
    dimple *db = r->db;
    dimple_batch b;
    uint8_t first[16];
    int encrypted = 0, rc;
    char err[1024];
    const void *data;
    size_t len, stored;

    if (cur->key && strcmp(key, cur->key) <= 0)
        return SKIPPED; /* applied meanwhile (another handle moved the
                           cursor past it): nothing to do */
    if (dimple_batch__parse_name(key + strlen(prefix), first, &encrypted))
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "sync: unexpected object '%s' in an author's "
                              "log (want <uuid7>.json or <uuid7>.json.age)",
                              key);
    if (encrypted && !db->cipher)
        return dimple__seterr(db, DIMPLE_EAUTH,
                              "sync: batch %s is encrypted and no [cipher] "
                              "is configured: configure the cipher the store "
                              "was written with",
                              key);
    if (!encrypted && db->cipher)
        return dimple__seterr(db, DIMPLE_EAUTH,
                              "sync: batch %s is plaintext and a [cipher] is "
                              "configured: refused (fail closed)",
                              key);
    if (cur->key && memcmp(first, cur->last, 16) <= 0)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "sync: batch %s: first id is not after the "
                              "author's previous batch (ids out of order)",
                              key);
    if ((rc = dimple_remote__get(db, key, &r->s->get)) < 0)
        return rc;
    stored = r->s->get.n;
    data = r->s->get.p;
    len = r->s->get.n;
    if (db->cipher) {
        if ((rc = dimple_remote__open(db, key, r->s->get.p, r->s->get.n,
                                      &r->s->plain)) < 0)
            return rc;
        data = r->s->plain.p;
        len = r->s->plain.n;
    }
    rc = dimple_batch__decode(&b, key, data, len, author, first, err,
                              sizeof err);
    if (rc < 0)
        return dimple__seterr(db, rc, "sync: %s", err);

    if ((rc = exec(db, "BEGIN IMMEDIATE", "sync: pull: BEGIN")) < 0)
        goto out;
    {
        /* Another process syncing this database may have applied the
         * batch since we read the cursor: then only catch up with it. */
        cursor now = {0};
        if ((rc = cursor_load(db, author, &now)) < 0) {
            sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
        if (now.key && strcmp(now.key, key) >= 0) {
            sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
            free(cur->key);
            *cur = now;
            rc = SKIPPED;
            goto out;
        }
        free(now.key);
    }
    rc = dimple_track__apply(db, b.changes, b.n);
    if (rc < 0) {
        char msg[sizeof db->errmsg];
        snprintf(msg, sizeof msg, "%s", dimple_errmsg(db));
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        rc = dimple__seterr(db, rc, "sync: batch %s: %s", key, msg);
        goto out;
    }
    if ((rc = cursor_store(db, author, key, b.changes[b.n - 1].id, b.n)) < 0 ||
        (rc = exec(db, "COMMIT", "sync: pull: COMMIT")) < 0) {
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    free(cur->key);
    if (!(cur->key = strdup(key))) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(cur->last, b.changes[b.n - 1].id, 16);
    r->st.batches_pulled++;
    r->st.changes_pulled += b.n;
    r->st.bytes_pulled += stored;
    rc = DIMPLE_OK;
out:
    dimple_batch__free(&b);
    return rc;
}

/* Every new batch of one author, in key order, page by page. A failure
 * stops this author (its cursor stays before the bad batch). */
static int pull_author(run *r, const uint8_t author[16], uint64_t *known)
{
    dimple *db = r->db;
    char prefix[64], atxt[37];
    cursor cur = {0};
    key_page page = {0};
    int rc;

    dimple_uuid__format(author, atxt);
    snprintf(prefix, sizeof prefix, "log/%s/", atxt);
restart:
    if ((rc = cursor_load(db, author, &cur)) < 0)
        goto out;
    for (;;) {
        rc = dimple_remote__list(db, prefix, cur.key, 0, page_cb, &page);
        if (rc < 0) {
            if (page.oom)
                rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        int more = rc == WALK_STOP;
        *known += page.n;
        for (size_t i = 0; i < page.n; i++) {
            int reset = 0;
            if (r->stop || (r->o.max_batches &&
                            r->st.batches_pulled >= r->o.max_batches)) {
                rc = DIMPLE_OK;
                goto out;
            }
            if ((rc = ensure_marker(r, &reset)) < 0)
                goto out;
            if (reset) { /* positions forgotten: this author from scratch */
                page_free(&page);
                goto restart;
            }
            if ((rc = pull_batch(r, author, prefix, page.keys[i], &cur)) < 0)
                goto out;
            if (rc != SKIPPED)
                progress(r, DIMPLE_SYNC_PULL, atxt, page.keys[i], *known);
        }
        page_free(&page);
        if (!more)
            break;
    }
    rc = DIMPLE_OK;
out:
    page_free(&page);
    free(cur.key);
    return rc;
}

static int pull_and_push(run *r)
{
    dimple *db = r->db;
    id_list authors = {0};
    int rc, listed;
    uint64_t known = 0;

    authors.me = r->me;
    rc = dimple_remote__list(db, "log/", NULL, DIMPLE_LIST_SHALLOW, authors_cb,
                             &authors);
    if (rc < 0 && authors.oom)
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    listed = rc >= 0;
    if (rc < 0)
        note(r, rc); /* push can still go on */
    for (size_t i = 0; i < authors.n_bad && i < 3; i++) {
        dimple__seterr(db, DIMPLE_ECORRUPT,
                       "sync: unexpected '%s' in the store's log/ (only "
                       "author folders named by a UUID belong there)",
                       authors.bad[i]);
        note(r, DIMPLE_ECORRUPT);
    }
    r->st.authors = authors.n;

    if (!(r->o.flags & DIMPLE_SYNC_NO_PUSH)) {
        state s;
        if ((rc = state_load(db, &s)) < 0) {
            note(r, rc);
            goto out;
        }
        dimple_track__sync_begin(db, s.has_pushed ? s.pushed : NULL);
        if (listed && s.has_pushed && !authors.own) {
            /* We pushed before, yet our folder is gone: the store was
             * wiped or replaced. Push the whole log again (and check the
             * marker: it may be a new store). */
            r->s->marker_ok = 0;
            if ((rc = state_set(db,
                                "pushed = NULL, intent_first = NULL,"
                                " intent_last = NULL",
                                NULL, NULL)) < 0) {
                note(r, rc);
                goto out;
            }
        }
        if ((rc = push(r)) < 0) {
            note(r, rc);
            /* a store-wide refusal (newer format) stops everything */
            if (rc == DIMPLE_EFORMAT)
                goto out;
        }
    }
    if (!(r->o.flags & DIMPLE_SYNC_NO_PULL)) {
        for (size_t i = 0; i < authors.n && !r->stop; i++) {
            if ((rc = pull_author(r, authors.ids[i], &known)) < 0) {
                note(r, rc);
                if (rc == DIMPLE_EFORMAT || rc == DIMPLE_ENOMEM)
                    break;
            }
        }
    }
out:
    free(authors.ids);
    return r->first_rc;
}

/* --------------------------------------------------------------- public */

int dimple_sync(dimple_sync_stats *out, dimple *db,
                const dimple_sync_options *opts)
{
    run r;
    double t0 = now_s();
    int rc;

    if (!db)
        return DIMPLE_EINVAL;
    memset(&r, 0, sizeof r);
    r.db = db;
    r.s = db->sync;
    r.req0 = dimple_remote__requests(db);
    /* stats too: the caller says how much of them it has room for */
    dimple_sync_stats scratch;
    if ((rc = dimple__opts(db, &r.o, sizeof r.o, sizeof r.o, opts,
                           "dimple_sync_options")) < 0 ||
        (rc = dimple__opts(db, &scratch, sizeof scratch, sizeof scratch, out,
                           "dimple_sync_stats")) < 0) {
        out = NULL; /* not ours to write */
        goto done;
    }
    if (out)
        memset((char *)out + sizeof out->size, 0, out->size - sizeof out->size);
    if (!r.s) {
        rc = dimple__seterr(db, DIMPLE_EINVAL, "sync: handle not open");
        goto done;
    }
    if (!db->storage) {
        rc =
            dimple__seterr(db, DIMPLE_ECONFIG, "sync: no [storage] configured");
        goto done;
    }
    if (db->read_only) {
        rc = dimple__seterr(db, DIMPLE_EINVAL,
                            "sync: the database is open read-only");
        goto done;
    }
    if (!sqlite3_get_autocommit(db->sql)) {
        rc = dimple__seterr(db, DIMPLE_EBUSY,
                            "sync: a transaction is open on this handle; "
                            "sync applies batches in transactions of its own");
        goto done;
    }
    /* validated against config_keys.c's table when the file was loaded */
    r.max_changes =
        (size_t)dimple_config__int(db->conf, DIMPLE_CONF_BATCH_MAX_CHANGES);
    r.max_bytes =
        (size_t)dimple_config__int(db->conf, DIMPLE_CONF_BATCH_MAX_BYTES);
    if (!db->resolver) {
        /* the default resolver, created when first needed */
        dimple_instance *inst = NULL;
        if ((rc = dimple_loader__instance(db, "resolver", DIMPLE_KIND_RESOLVER,
                                          "lww", NULL, &inst)) < 0)
            goto done;
        db->resolver = inst;
    }
    if ((rc = ensure_tables(db)) < 0 ||
        (rc = dimple_track__author(db, r.me)) < 0)
        goto done;
    dimple_uuid__format(r.me, r.me_txt);

    rc = pull_and_push(&r);
    if (!rc && r.stop)
        rc = dimple__seterr(db, r.stop,
                            "sync stopped by the progress callback (it"
                            " returned %d)",
                            r.stop);
    else if (rc && r.st.errors > 1)
        rc = dimple__seterr(db, rc, "%s (and %llu more error%s)", r.first_msg,
                            (unsigned long long)(r.st.errors - 1),
                            r.st.errors > 2 ? "s" : "");
    else if (rc)
        rc = dimple__seterr(db, rc, "%s", r.first_msg);
    else
        dimple__ok(db);

done:
    if (r.s) {
        /* bounded memory between calls too */
        dimple_batch__enc_free(&r.s->enc);
        dimple_buf__free(&r.s->get);
        dimple_buf__free(&r.s->plain);
    }
    if (rc < 0 && !r.st.errors && !r.stop)
        r.st.errors = 1;
    r.st.requests = dimple_remote__requests(db) - r.req0;
    r.st.seconds = now_s() - t0;
    if (out)
        memcpy((char *)out + sizeof out->size, (char *)&r.st + sizeof r.st.size,
               out->size - sizeof out->size);
    return dimple__finish(db, rc);
}

int dimple_sync__open(dimple *db)
{
    db->sync = calloc(1, sizeof *db->sync);
    if (!db->sync)
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    return DIMPLE_OK;
}

void dimple_sync__close(dimple *db)
{
    if (!db->sync)
        return;
    dimple_batch__enc_free(&db->sync->enc);
    dimple_buf__free(&db->sync->get);
    dimple_buf__free(&db->sync->plain);
    free(db->sync);
    db->sync = NULL;
}
