/*
 * track.c — change tracking (docs/tracking.md): the module's life (open,
 * close), its metadata tables, the caches of interned names and authors,
 * the clock that stamps local changes, and this database's author (with
 * the remedies for a copied file). track_impl.h lists the other files.
 *
 * In short: a generated AFTER trigger calls one C function per write that
 * appends ONE row to _dimple_log, keyed by the clock value itself
 * (track_log.c). The per-cell clock (_dimple_rows) is folded from the log
 * in bulk before a merge; pulled changes go through the same merge rule
 * (track_merge.c), which writes the winning cells (track_write.c).
 */
#include "track_replace.h"
#include "track_impl.h"

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "rowhook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS _dimple_meta(k TEXT PRIMARY KEY, v)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _dimple_names(id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS _dimple_authors(idx INTEGER PRIMARY KEY,"
    " uuid BLOB NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS _dimple_log(seq INTEGER PRIMARY KEY,"
    " author INTEGER NOT NULL, t INTEGER NOT NULL, op INTEGER NOT NULL,"
    " k BLOB NOT NULL, v BLOB, id BLOB);"
    "CREATE UNIQUE INDEX IF NOT EXISTS _dimple_log_id ON _dimple_log(id)"
    " WHERE id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS _dimple_rows(t INTEGER NOT NULL,"
    " k BLOB NOT NULL, s BLOB NOT NULL, PRIMARY KEY(t, k)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _dimple_tables(t INTEGER PRIMARY KEY,"
    " cols TEXT NOT NULL);";

/* ------------------------------------------------------------- meta */

int dimple_track__meta_get(dimple *db, const char *k, int64_t *out, bool *found)
{
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT v FROM _dimple_meta WHERE k = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_meta");
    return DIMPLE_OK;
}

static int meta_get_text(dimple *db, const char *k, char *out, size_t cap)
{
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT v FROM _dimple_meta WHERE k = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    out[0] = 0;
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_meta");
    return DIMPLE_OK;
}

int dimple_track__meta_set(dimple *db, const char *k, int64_t v)
{
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "INSERT OR REPLACE INTO _dimple_meta(k, v) VALUES (?1, ?2)");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return dimple_track__step(db, st, "change tracking: write _dimple_meta");
}

static int meta_set_text(dimple *db, const char *k, const char *v)
{
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "INSERT OR REPLACE INTO _dimple_meta(k, v) VALUES (?1, ?2)");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    return dimple_track__step(db, st, "change tracking: write _dimple_meta");
}

/* ------------------------------------------------- names and authors */

static void names_free(struct dimple_track *tr)
{
    for (size_t i = 0; i < tr->n_names; i++)
        free(tr->names[i]);
    free(tr->names);
    tr->names = NULL;
    tr->n_names = tr->cap_names = 0;
}

static int names_set(dimple *db, int64_t id, const char *name)
{
    struct dimple_track *tr = T(db);
    if (id <= 0 || id > (int64_t)1 << 40)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: _dimple_names id %lld",
                              (long long)id);
    size_t old = tr->cap_names;
    if (dimple__grow((void **)&tr->names, &tr->cap_names, (size_t)id + 1,
                     sizeof *tr->names))
        return oom(db);
    /* ids can skip: a slot never set reads as NULL */
    memset(tr->names + old, 0, (tr->cap_names - old) * sizeof *tr->names);
    if (!tr->names[id]) {
        tr->names[id] = strdup(name);
        if (!tr->names[id])
            return oom(db);
    }
    if ((size_t)id >= tr->n_names)
        tr->n_names = (size_t)id + 1;
    return DIMPLE_OK;
}

int dimple_track__names_load(dimple *db)
{
    struct dimple_track *tr = T(db);
    /* names handed out (a change being walked) stay valid until close:
     * the old strings are kept, not freed */
    for (size_t i = 0; i < tr->n_names; i++) {
        if (!tr->names[i])
            continue;
        if (dimple__grow((void **)&tr->grave, &tr->cap_grave, tr->n_grave + 1,
                         sizeof *tr->grave))
            return oom(db);
        tr->grave[tr->n_grave++] = tr->names[i];
        tr->names[i] = NULL;
    }
    tr->n_names = 0;
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT id, name FROM _dimple_names");
    if (!st)
        return db->errcode;
    int rc, r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && r == DIMPLE_OK)
        r = names_set(db, sqlite3_column_int64(st, 0),
                      (const char *)sqlite3_column_text(st, 1));
    sqlite3_reset(st);
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_names");
    return r;
}

const char *dimple_track__name(dimple *db, int64_t id)
{
    struct dimple_track *tr = T(db);
    if (id <= 0 || (size_t)id >= tr->n_names || !tr->names[id]) {
        if (dimple_track__names_load(db) != DIMPLE_OK)
            return NULL;
        if (id <= 0 || (size_t)id >= tr->n_names)
            return NULL;
    }
    return tr->names[id];
}

int64_t dimple_track__name_id(dimple *db, const char *name)
{
    struct dimple_track *tr = T(db);
    for (size_t i = 1; tr && i < tr->n_names; i++)
        if (tr->names[i] && sqlite3_stricmp(tr->names[i], name) == 0)
            return (int64_t)i;
    return 0;
}

/* The id of name, interned when new. */
int dimple_track__name_intern(dimple *db, const char *name, int64_t *out)
{
    struct dimple_track *tr = T(db);
    for (size_t i = 1; i < tr->n_names; i++)
        if (tr->names[i] && sqlite3_stricmp(tr->names[i], name) == 0) {
            *out = (int64_t)i;
            return DIMPLE_OK;
        }
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "INSERT INTO _dimple_names(name) VALUES (?1)"
                                " ON CONFLICT(name) DO NOTHING");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = dimple_track__step(db, st, "change tracking: write _dimple_names");
    if (r)
        return r;
    st = dimple_track__cstmt(db, "SELECT id, name FROM _dimple_names"
                                 " WHERE name = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_names");
    }
    *out = sqlite3_column_int64(st, 0);
    r = names_set(db, *out, (const char *)sqlite3_column_text(st, 1));
    sqlite3_reset(st);
    return r;
}

static int authors_set(dimple *db, int64_t idx, const uint8_t *uuid)
{
    struct dimple_track *tr = T(db);
    if (idx <= 0 || idx > (int64_t)1 << 40)
        return dimple__seterr(db, DIMPLE_ECORRUPT,
                              "change tracking: _dimple_authors idx %lld",
                              (long long)idx);
    /* authors and author_known share cap_authors: the first grow works on
     * a copy, the second (same arithmetic) commits it */
    size_t old = tr->cap_authors, cap = old;
    if (dimple__grow((void **)&tr->authors, &cap, (size_t)idx + 1,
                     sizeof *tr->authors) ||
        dimple__grow((void **)&tr->author_known, &tr->cap_authors,
                     (size_t)idx + 1, sizeof *tr->author_known))
        return oom(db);
    memset(tr->author_known + old, 0,
           (tr->cap_authors - old) * sizeof *tr->author_known);
    memcpy(tr->authors[idx], uuid, 16);
    tr->author_known[idx] = true;
    if ((size_t)idx >= tr->n_authors)
        tr->n_authors = (size_t)idx + 1;
    return DIMPLE_OK;
}

int dimple_track__authors_load(dimple *db)
{
    struct dimple_track *tr = T(db);
    tr->n_authors = 0;
    if (tr->author_known)
        memset(tr->author_known, 0, tr->cap_authors * sizeof(bool));
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT idx, uuid FROM _dimple_authors");
    if (!st)
        return db->errcode;
    int rc, r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && r == DIMPLE_OK) {
        if (sqlite3_column_bytes(st, 1) != 16) {
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "change tracking: _dimple_authors holds a"
                               " uuid that is not 16 bytes");
            break;
        }
        r = authors_set(db, sqlite3_column_int64(st, 0),
                        sqlite3_column_blob(st, 1));
    }
    sqlite3_reset(st);
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "change tracking: read _dimple_authors");
    return r;
}

const uint8_t *dimple_track__author_uuid(dimple *db, int64_t idx)
{
    struct dimple_track *tr = T(db);
    if (idx <= 0 || (size_t)idx >= tr->n_authors || !tr->author_known[idx]) {
        if (dimple_track__authors_load(db) != DIMPLE_OK)
            return NULL;
        if (idx <= 0 || (size_t)idx >= tr->n_authors || !tr->author_known[idx])
            return NULL;
    }
    return tr->authors[idx];
}

int64_t dimple_track__author_idx(dimple *db, const uint8_t uuid[16])
{
    struct dimple_track *tr = T(db);
    for (size_t i = 1; i < tr->n_authors; i++)
        if (tr->author_known[i] && memcmp(tr->authors[i], uuid, 16) == 0)
            return (int64_t)i;
    return 0;
}

int dimple_track__author_intern(dimple *db, const uint8_t uuid[16],
                                int64_t *out)
{
    *out = dimple_track__author_idx(db, uuid);
    if (*out)
        return DIMPLE_OK;
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "INSERT INTO _dimple_authors(uuid) VALUES (?1)"
                                " ON CONFLICT(uuid) DO NOTHING");
    if (!st)
        return db->errcode;
    sqlite3_bind_blob(st, 1, uuid, 16, SQLITE_STATIC);
    int r =
        dimple_track__step(db, st, "change tracking: write _dimple_authors");
    if (r)
        return r;
    st = dimple_track__cstmt(db,
                             "SELECT idx FROM _dimple_authors WHERE uuid = ?1");
    if (!st)
        return db->errcode;
    sqlite3_bind_blob(st, 1, uuid, 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_authors");
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return authors_set(db, *out, uuid);
}

void dimple_track__row_id(dimple *db, int64_t seq, int64_t author,
                          const void *id_blob, int id_len, uint8_t out[16])
{
    if (id_blob && id_len == 16) {
        memcpy(out, id_blob, 16);
        return;
    }
    /* a local change: the clock value and the author's low half */
    const uint8_t *a = dimple_track__author_uuid(db, author);
    dimple_id__make(out, (uint64_t)seq, a ? dimple_id__lo(a) : 0);
}

/* The caches may hold names or authors of a transaction the caller rolled
 * back: reload when the tables disagree with them. */
int dimple_track__caches_check(dimple *db)
{
    struct dimple_track *tr = T(db);
    sqlite3_stmt *st = dimple_track__cstmt(
        db, "SELECT (SELECT count(*) FROM _dimple_names),"
            " (SELECT coalesce(max(id), 0) FROM _dimple_names),"
            " (SELECT count(*) FROM _dimple_authors),"
            " (SELECT coalesce(max(idx), 0) FROM _dimple_authors)");
    if (!st)
        return db->errcode;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return dimple__sqlerr(db, rc, "change tracking: read metadata");
    }
    int64_t nn = sqlite3_column_int64(st, 0), mn = sqlite3_column_int64(st, 1);
    int64_t na = sqlite3_column_int64(st, 2), ma = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    size_t have_n = 0, have_a = 0;
    for (size_t i = 1; i < tr->n_names; i++)
        have_n += tr->names[i] != NULL;
    for (size_t i = 1; i < tr->n_authors; i++)
        have_a += tr->author_known[i];
    int r = DIMPLE_OK;
    if ((int64_t)have_n != nn || (int64_t)tr->n_names != mn + 1)
        r = dimple_track__names_load(db);
    if (r == DIMPLE_OK &&
        ((int64_t)have_a != na || (int64_t)tr->n_authors != ma + 1))
        r = dimple_track__authors_load(db);
    return r;
}

/* --------------------------------------------------------------- clock */

static int64_t now_ms(struct dimple_track *tr)
{
    return dimple_clock__now_ms() + tr->offset_ms;
}

/* Another connection may have committed (a second process on the file):
 * then the clock and the newest remote id are re-read. */
int dimple_track__clock_sync(dimple *db)
{
    struct dimple_track *tr = T(db);
    unsigned int dv = 0;
    if (sqlite3_file_control(db->sql, "main", SQLITE_FCNTL_DATA_VERSION, &dv) ==
            SQLITE_OK &&
        tr->dv_valid && dv == tr->data_version)
        return DIMPLE_OK;
    sqlite3_stmt *st =
        dimple_track__cstmt(db, "SELECT max(seq) FROM _dimple_log");
    if (!st)
        return db->errcode;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        uint64_t m = (uint64_t)sqlite3_column_int64(st, 0);
        if (m > tr->last)
            tr->last = m;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return dimple__sqlerr(db, rc, "change tracking: read _dimple_log");
    int64_t v = 0;
    bool found = false;
    int r = dimple_track__meta_get(db, "max_seen", &v, &found);
    if (r)
        return r;
    if (found && (uint64_t)v > tr->max_seen)
        tr->max_seen = (uint64_t)v;
    if (tr->max_seen > tr->last) {
        /* a remote id beyond the skew bound: follow it only up to the
         * bound (the same rule as when it arrived) */
        uint64_t bound = dimple_clock__at(now_ms(tr) + tr->skew_ms);
        uint64_t to = tr->max_seen < bound ? tr->max_seen : bound;
        if (to > tr->last)
            tr->last = to;
    }
    tr->data_version = dv;
    tr->dv_valid = true;
    return DIMPLE_OK;
}

uint64_t dimple_track__tick(struct dimple_track *tr)
{
    tr->last = dimple_clock__next(tr->last, now_ms(tr));
    return tr->last;
}

/* A remote id raises our clock, at most to the skew bound. */
void dimple_track__observe(struct dimple_track *tr, const uint8_t id[16])
{
    uint64_t hi = dimple_id__hi(id);
    if (hi > tr->max_seen)
        tr->max_seen = hi;
    uint64_t bound = dimple_clock__at(now_ms(tr) + tr->skew_ms);
    uint64_t to = hi < bound ? hi : bound;
    if (to > tr->last)
        tr->last = to;
}

#ifdef DIMPLE_TESTING
/* Tests only (the test build's copy of the library; the installed one has
 * no such entry point): pretend the wall clock is off by ms, a skewed
 * device. */
void dimple_track__set_clock_offset(dimple *db, int64_t ms);
void dimple_track__set_clock_offset(dimple *db, int64_t ms)
{
    if (db && db->track)
        db->track->offset_ms = ms;
}
#endif
bool dimple_track__ready(dimple *db)
{
    return db && db->track && db->track->ready;
}

const char *dimple_track__author_text(dimple *db)
{
    struct dimple_track *tr = db ? T(db) : NULL;
    if (!tr || !tr->ready || !tr->me)
        return NULL;
    return tr->author_text;
}

bool dimple_track__logging(dimple *db)
{
    struct dimple_track *tr = T(db);
    return tr && tr->ready && !tr->muted && !tr->migrating;
}

struct dimple_replace *dimple_track__replace(dimple *db)
{
    return db->track ? db->track->replace : NULL;
}

int dimple_track__author(dimple *db, uint8_t out[16])
{
    struct dimple_track *tr = T(db);
    /* no message: live asks this at open, where a read-only database
     * without an author is not an error */
    if (!tr || !tr->ready || !tr->me)
        return DIMPLE_ENOTFOUND;
    memcpy(out, tr->author, 16);
    return DIMPLE_OK;
}

int dimple_track__savepoint(dimple *db, int (*fn)(dimple *), const char *what)
{
    /* Outside a transaction, take the write lock up front (BEGIN
     * IMMEDIATE waits out the busy timeout); a deferred savepoint that
     * reads, then writes, fails at once with "database is locked" when
     * another connection committed in between (WAL). */
    bool outer = sqlite3_get_autocommit(db->sql);
    int r = dimple_track__exec(
        db, outer ? "BEGIN IMMEDIATE" : "SAVEPOINT dimple_track", what);
    if (r)
        return r;
    r = fn(db);
    if (r == DIMPLE_OK) {
        r = dimple_track__exec(db, outer ? "COMMIT" : "RELEASE dimple_track",
                               what);
        if (r == DIMPLE_OK)
            return r;
    }
    /* keep the first error's message */
    char msg[sizeof db->errmsg];
    int code = db->errcode ? db->errcode : r;
    snprintf(msg, sizeof msg, "%s", db->errmsg);
    sqlite3_exec(db->sql,
                 outer ? "ROLLBACK"
                       : "ROLLBACK TO dimple_track; RELEASE dimple_track",
                 NULL, NULL, NULL);
    dimple__seterr(db, code, "%s", msg);
    /* rolled back: the caches may name what no longer exists */
    db->track->dv_valid = false;
    return code;
}
/* ---------------------------------------------------- author and file */

static int file_identity(dimple *db, char *out, size_t cap)
{
    const char *path = sqlite3_db_filename(db->sql, "main");
    out[0] = 0;
    if (!path || !path[0])
        return DIMPLE_OK; /* in memory or temporary: nothing to copy */
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dimple__seterr(db, DIMPLE_EIO, "change tracking: stat %s: %s",
                              path, strerror(errno));
    snprintf(out, cap, "%llu:%llu", (unsigned long long)sb.st_dev,
             (unsigned long long)sb.st_ino);
    return DIMPLE_OK;
}

static int author_create(dimple *db)
{
    struct dimple_track *tr = T(db);
    uint8_t uuid[16];
    dimple_uuid__v7(uuid);
    int64_t idx;
    int r = dimple_track__author_intern(db, uuid, &idx);
    if (r == DIMPLE_OK)
        r = dimple_track__meta_set(db, "author", idx);
    char ident[64];
    if (r == DIMPLE_OK)
        r = file_identity(db, ident, sizeof ident);
    if (r == DIMPLE_OK)
        r = meta_set_text(db, "file", ident);
    if (r == DIMPLE_OK) {
        tr->me = idx;
        memcpy(tr->author, uuid, 16);
        dimple_uuid__format(uuid, tr->author_text);
        tr->copied = false;
    }
    return r;
}

static int setup_locked(dimple *db)
{
    struct dimple_track *tr = T(db);
    int r =
        dimple_track__exec(db, schema_sql, "change tracking: create metadata");
    if (r)
        return r;
    int64_t v = 0;
    bool found = false;
    if ((r = dimple_track__meta_get(db, "format", &v, &found)))
        return r;
    if (found && v > 1)
        return dimple__seterr(db, DIMPLE_EFORMAT,
                              "change tracking: this database's change log"
                              " has format %lld; this dimple reads 1",
                              (long long)v);
    if (!found && (r = dimple_track__meta_set(db, "format", 1)))
        return r;
    if ((r = dimple_track__names_load(db)) ||
        (r = dimple_track__authors_load(db)))
        return r;
    if ((r = dimple_track__meta_get(db, "author", &v, &found)))
        return r;
    if (!found) {
        if ((r = author_create(db)))
            return r;
    } else {
        const uint8_t *u = dimple_track__author_uuid(db, v);
        if (!u)
            return dimple__seterr(db, DIMPLE_ECORRUPT,
                                  "change tracking: the author of this"
                                  " database is missing from"
                                  " _dimple_authors");
        tr->me = v;
        memcpy(tr->author, u, 16);
        dimple_uuid__format(u, tr->author_text);
    }
    return DIMPLE_OK;
}

static int check_copied(dimple *db)
{
    struct dimple_track *tr = T(db);
    char want[64], have[64];
    int r = meta_get_text(db, "file", want, sizeof want);
    if (r == DIMPLE_OK)
        r = file_identity(db, have, sizeof have);
    if (r)
        return r;
    tr->copied = want[0] && have[0] && strcmp(want, have) != 0;
    if (tr->copied)
        snprintf(tr->copied_msg, sizeof tr->copied_msg,
                 "%s is a copy of another database file (author %s): it"
                 " must not write as that author. Run `dimple author"
                 " --reset` to give this copy its own author, or `dimple"
                 " author --keep` if the file was moved, not copied",
                 sqlite3_db_filename(db->sql, "main"), tr->author_text);
    return DIMPLE_OK;
}

static int64_t config_skew(dimple *db)
{
    return dimple_config__int(db->conf, DIMPLE_CONF_MAX_CLOCK_SKEW);
}

int dimple_track__open(dimple *db)
{
    struct dimple_track *tr = calloc(1, sizeof *tr);
    if (!tr)
        return oom(db);
    tr->db = db;
    db->track = tr;
    int64_t skew = config_skew(db);
    if (skew < 0)
        return db->errcode;
    tr->skew_ms = skew;
    int r = dimple_track__register_functions(db);
    if (r)
        return r;
    if (sqlite3_db_readonly(db->sql, "main") == 1) {
        /* read-only: use the metadata if dimple ever wrote it */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db->sql,
                                    "SELECT 1 FROM sqlite_schema WHERE name ="
                                    " '_dimple_log'",
                                    -1, &st, NULL);
        bool has = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (!has)
            return DIMPLE_OK;
        tr->ready = true;
        int64_t v = 0;
        bool found = false;
        if ((r = dimple_track__names_load(db)) ||
            (r = dimple_track__authors_load(db)) ||
            (r = dimple_track__meta_get(db, "author", &v, &found)))
            return r;
        if (found && dimple_track__author_uuid(db, v)) {
            tr->me = v;
            memcpy(tr->author, dimple_track__author_uuid(db, v), 16);
            dimple_uuid__format(tr->author, tr->author_text);
        }
        return dimple__ok(db);
    }
    r = dimple_track__savepoint(db, setup_locked, "change tracking: open");
    if (r)
        return r;
    if ((r = dimple_replace__install(db, &tr->replace)))
        return r;
    tr->ready = true;
    if ((r = check_copied(db)))
        return r;
    r = dimple_track__savepoint(db, dimple_track__refresh_locked,
                                "change tracking: open");
    return r == DIMPLE_OK ? dimple__ok(db) : r;
}

void dimple_track__close(dimple *db)
{
    struct dimple_track *tr = db ? db->track : NULL;
    if (!tr)
        return;
    dimple_rowhook__want(db, DIMPLE_ROWHOOK_TRACK, NULL);
    sqlite3_finalize(tr->log_ins);
    sqlite3_finalize(tr->log_ins_remote);
    sqlite3_finalize(tr->res_fetch);
    for (size_t i = 0; i < tr->n_cst; i++)
        sqlite3_finalize(tr->cst[i].st);
    dimple_track__stmts_clear(tr);
    dimple_pbuf__free(&tr->wkey);
    names_free(tr);
    for (size_t i = 0; i < tr->n_grave; i++)
        free(tr->grave[i]);
    free(tr->grave);
    free(tr->authors);
    free(tr->author_known);
    dimple_track__tables_free(tr);
    dimple_replace__free(tr->replace);
    tr->replace = NULL;
    dimple_pbuf__free(&tr->kbuf);
    dimple_pbuf__free(&tr->kbuf2);
    dimple_pbuf__free(&tr->vbuf);
    dimple_pbuf__free(&tr->vbuf2);
    dimple_pbuf__free(&tr->sbuf);
    free(tr->cells);
    free(tr->kv);
    free(tr->cv);
    free(tr->cids);
    free(tr->lseq);
    free(tr->lauth);
    free(tr);
    db->track = NULL;
}

static int reset_locked(dimple *db)
{
    return author_create(db);
}

int dimple_track__author_reset(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "change tracking is not set up on this"
                              " database (read-only?)");
    int r = dimple_track__savepoint(db, reset_locked, "author reset");
    return r == DIMPLE_OK ? dimple__ok(db) : r;
}

static int keep_locked(dimple *db)
{
    char ident[64];
    int r = file_identity(db, ident, sizeof ident);
    if (r == DIMPLE_OK)
        r = meta_set_text(db, "file", ident);
    if (r == DIMPLE_OK)
        db->track->copied = false;
    return r;
}

int dimple_track__author_keep(dimple *db)
{
    struct dimple_track *tr = T(db);
    if (!tr || !tr->ready)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "change tracking is not set up on this"
                              " database (read-only?)");
    int r = dimple_track__savepoint(db, keep_locked, "author keep");
    return r == DIMPLE_OK ? dimple__ok(db) : r;
}
