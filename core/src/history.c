/*
 * history.c — the change log read back as history (dimple/history.h):
 * listing with filters, one JSON line per change, rows as of a time, time
 * parsing, and the author API.
 */
#include "track.h"

#include "buf.h"
#include "clock.h"
#include "db.h"
#include "opts.h"
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *op_name(int op)
{
    switch (op) {
    case DIMPLE_OP_INSERT:
        return "insert";
    case DIMPLE_OP_UPDATE:
        return "update";
    case DIMPLE_OP_DELETE:
        return "delete";
    default:
        return "unknown";
    }
}

static int not_ready(dimple *db)
{
    return dimple__seterr(db, DIMPLE_EINVAL,
                          "history: change tracking is not set up on this"
                          " database (never opened writable by dimple)");
}

/* ---------------------------------------------------------------- time */

void dimple_time_format(char out[32], int64_t ms)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    /* The modulos bound every field for the compiler's truncation check;
     * a UUIDv7's 48-bit millisecond time stays below year 10000. */
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, frac % 1000);
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return 0;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int dimple_time_parse(int64_t *out, const char *text)
{
    if (!text || !out)
        return DIMPLE_EINVAL;
    uint8_t id[16];
    if (strlen(text) == 36 && dimple_uuid__parse(text, id) == DIMPLE_OK) {
        *out = dimple_clock__ms(dimple_id__hi(id));
        return DIMPLE_OK;
    }
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
        *p++ != '-' || !digits(&p, 2, &d))
        return DIMPLE_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return DIMPLE_EINVAL;
    int64_t off_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return DIMPLE_EINVAL;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &s))
                return DIMPLE_EINVAL;
            if (*p == '.' || *p == ',') {
                p++;
                int scale = 100, any = 0;
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                    any = 1;
                }
                if (!any)
                    return DIMPLE_EINVAL;
            }
        }
        if (h > 23 || mi > 59 || s > 60)
            return DIMPLE_EINVAL;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (!digits(&p, 2, &oh))
                return DIMPLE_EINVAL;
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p) && !digits(&p, 2, &om))
                return DIMPLE_EINVAL;
            off_min = sign * (oh * 60 + om);
        }
    }
    if (*p)
        return DIMPLE_EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    *out = ((days * 86400 + h * 3600 + mi * 60 + s) - off_min * 60) * 1000 + ms;
    return DIMPLE_OK;
}

/* --------------------------------------------------------------- listing */

int dimple_history_list(dimple *db, dimple_history_cb cb, void *payload,
                        const dimple_history_query *q)
{
    if (!db)
        return DIMPLE_EINVAL;
    if (!cb)
        return dimple__seterr(db, DIMPLE_EINVAL, "history: no callback");
    if (!dimple_track__ready(db))
        return not_ready(db);
    dimple_history_query o = DIMPLE_HISTORY_QUERY_INIT;
    int orc =
        dimple__opts(db, &o, sizeof o, sizeof o, q, "dimple_history_query");
    if (orc < 0)
        return orc;
    q = &o;
    int64_t tid = 0, aidx = 0;
    dimple_pbuf key = {0};
    uint8_t since[16], until[16];
    if (q->table) {
        /* an unknown table has no history: an empty list, not an error */
        tid = dimple_track__name_id(db, q->table);
        if (!tid)
            tid = -1;
    }
    if (q->author) {
        uint8_t a[16];
        if (dimple_uuid__parse(q->author, a) != DIMPLE_OK)
            return dimple__seterr(db, DIMPLE_EINVAL,
                                  "history: author \"%s\" is not a UUID",
                                  q->author);
        aidx = dimple_track__author_idx(db, a);
        if (!aidx)
            aidx = -1;
    }
    if (q->n_key) {
        if (!q->table || !q->key)
            return dimple__seterr(db, DIMPLE_EINVAL,
                                  "history: a key needs a table");
        for (size_t i = 0; i < q->n_key; i++)
            dimple_pack__value(&key, &q->key[i]);
        if (key.oom) {
            /* the values packed before the failed growth hold a block */
            dimple_pbuf__free(&key);
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        }
    }
    dimple_id__make(since, dimple_clock__from_ms(q->since_ms), 0);
    if (q->until_ms > 0)
        dimple_id__make(until, dimple_clock__after_ms(q->until_ms), 0);
    else
        memset(until, 0xff, 16);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db->sql,
        "SELECT seq, author, t, op, k, v, id FROM _dimple_log"
        " WHERE (?1 = 0 OR t = ?1) AND (?2 IS NULL OR k = ?2)"
        " AND (?3 = 0 OR author = ?3)"
        " AND dimple_id(seq, author, id) >= ?4"
        " AND dimple_id(seq, author, id) < ?5"
        " ORDER BY dimple_id(seq, author, id)",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        dimple_pbuf__free(&key);
        return dimple__sqlerr(db, rc, "history");
    }
    sqlite3_bind_int64(st, 1, tid);
    if (q->n_key)
        sqlite3_bind_blob(st, 2, key.p, (int)key.n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, aidx);
    sqlite3_bind_blob(st, 4, since, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, until, 16, SQLITE_STATIC);
    dimple_value *kv = NULL, *cv = NULL;
    const char **names = NULL;
    size_t cap_k = 0, cap_c = 0;
    int r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        int64_t author = sqlite3_column_int64(st, 1);
        uint8_t id[16];
        dimple_track__row_id(db, seq, author, sqlite3_column_blob(st, 6),
                             sqlite3_column_bytes(st, 6), id);
        const uint8_t *au = dimple_track__author_uuid(db, author);
        const char *table = dimple_track__name(db, sqlite3_column_int64(st, 2));
        if (!au || !table) {
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "history: log row %lld names an unknown"
                               " author or table",
                               (long long)seq);
            break;
        }
        char idt[37], aut[37];
        dimple_uuid__format(id, idt);
        dimple_uuid__format(au, aut);
        dimple_history_entry e;
        memset(&e, 0, sizeof e);
        e.id = idt;
        e.author = aut;
        e.time_ms = dimple_clock__ms(dimple_id__hi(id));
        e.table = table;
        e.op = op_name(sqlite3_column_int(st, 3));
        const uint8_t *p = sqlite3_column_blob(st, 4);
        size_t n = (size_t)sqlite3_column_bytes(st, 4), pos = 0, i = 0;
        bool bad = false;
        while (pos < n && !bad) {
            if (dimple__grow((void **)&kv, &cap_k, i + 1, sizeof *kv)) {
                r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
                break;
            }
            bad = !dimple_unpack__value(p, n, &pos, &kv[i++]);
        }
        if (r)
            break;
        e.n_key = i;
        e.key = kv;
        p = sqlite3_column_blob(st, 5);
        n = (size_t)sqlite3_column_bytes(st, 5);
        pos = 0;
        i = 0;
        while (pos < n && !bad) {
            /* cv and names share cap_c: the first grow works on a copy,
             * the second (same arithmetic) commits it */
            size_t cap_cv = cap_c;
            if (dimple__grow((void **)&cv, &cap_cv, i + 1, sizeof *cv) ||
                dimple__grow((void **)&names, &cap_c, i + 1, sizeof *names)) {
                r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
                break;
            }
            uint64_t cid;
            bad = !dimple_unpack__varint(p, n, &pos, &cid) ||
                  !dimple_unpack__value(p, n, &pos, &cv[i]);
            if (!bad) {
                names[i] = dimple_track__name(db, (int64_t)cid);
                bad = !names[i];
            }
            i++;
        }
        if (r)
            break;
        if (bad) {
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "history: malformed log row %lld",
                               (long long)seq);
            break;
        }
        e.n_cols = i;
        e.cols = cv;
        e.col_names = names;
        if ((r = cb(payload, &e)))
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "history");
    sqlite3_finalize(st);
    free(kv);
    free(cv);
    free(names);
    dimple_pbuf__free(&key);
    return r < 0 ? r : (r == DIMPLE_OK ? dimple__ok(db) : r);
}

static int put(dimple_buf *b, const char *s)
{
    return dimple_buf__append(b, s, strlen(s));
}

int dimple_history_json(char **out, const dimple_history_entry *e)
{
    dimple_buf b = {0};
    char t[32];
    int rc = 0;
    if (!out)
        return DIMPLE_EINVAL;
    *out = NULL;
    if (!e)
        return DIMPLE_EINVAL;
    dimple_time_format(t, e->time_ms);
    rc |= put(&b, "{\"id\":\"");
    rc |= put(&b, e->id);
    rc |= put(&b, "\",\"time\":\"");
    rc |= put(&b, t);
    rc |= put(&b, "\",\"author\":\"");
    rc |= put(&b, e->author);
    rc |= put(&b, "\",\"table\":");
    rc |= dimple_json__str(&b, e->table, strlen(e->table));
    rc |= put(&b, ",\"key\":");
    if (e->n_key == 1) {
        rc |= dimple_json__value(&b, &e->key[0]);
    } else {
        rc |= put(&b, "[");
        for (size_t i = 0; i < e->n_key; i++) {
            if (i)
                rc |= put(&b, ",");
            rc |= dimple_json__value(&b, &e->key[i]);
        }
        rc |= put(&b, "]");
    }
    rc |= put(&b, ",\"op\":\"");
    rc |= put(&b, e->op);
    rc |= put(&b, "\",\"columns\":");
    rc |= dimple_json__row(&b, e->n_cols, e->col_names, e->cols);
    rc |= put(&b, "}");
    rc |= dimple_buf__append(&b, "", 1);
    if (rc) {
        dimple_buf__free(&b);
        return DIMPLE_ENOMEM;
    }
    *out = (char *)b.p;
    return DIMPLE_OK;
}

/* ---------------------------------------------------------------- as of */

/* A cell as of the time asked, with the version that owns it (the
 * resolver compares versions). */
typedef struct asof_cell {
    dimple_value v;
    bool set;
    uint8_t id[16];
    char author[37];
} asof_cell;

typedef struct asof {
    const dimple_ttable *tt;
    size_t n_out; /* key columns + the others */
    asof_cell *cells;
    const char **names;
    dimple_value *vals;
    bool alive;
    dimple_row_cb cb;
    void *payload;
} asof;

static void cell_clear(asof_cell *c)
{
    if (c->set && (c->v.type == DIMPLE_TEXT || c->v.type == DIMPLE_BLOB))
        free((void *)c->v.p);
    memset(c, 0, sizeof *c);
}

static int cell_set(asof_cell *c, const dimple_value *v)
{
    cell_clear(c);
    c->v = *v;
    if (v->type == DIMPLE_TEXT || v->type == DIMPLE_BLOB) {
        void *p = malloc(v->n ? v->n : 1);
        if (!p)
            return DIMPLE_ENOMEM;
        if (v->n)
            memcpy(p, v->p, v->n);
        c->v.p = p;
    }
    c->set = true;
    return DIMPLE_OK;
}

/* Emit the row collected so far (if it existed), then reset. */
static int asof_flush(asof *a)
{
    int r = DIMPLE_OK;
    if (a->alive) {
        for (size_t i = 0; i < a->tt->n_cols; i++) {
            if (a->cells[i].set)
                a->vals[i] = a->cells[i].v;
            else
                memset(&a->vals[i], 0, sizeof a->vals[i]),
                    a->vals[i].type = DIMPLE_NULL;
        }
        r = a->cb(a->payload, a->tt->n_cols, (const char *const *)a->names,
                  a->vals);
    }
    for (size_t i = 0; i < a->tt->n_cols; i++)
        cell_clear(&a->cells[i]);
    a->alive = false;
    return r;
}

int dimple_history_as_of(dimple *db, const char *table, const dimple_value *key,
                         size_t n_key, int64_t time_ms, dimple_row_cb cb,
                         void *payload)
{
    if (!db)
        return DIMPLE_EINVAL;
    if (!dimple_track__ready(db))
        return not_ready(db);
    if (!table || !cb)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "history as of: a table and a callback are"
                              " needed");
    const dimple_ttable *tt = dimple_track__table(db, table);
    if (!tt)
        return dimple__seterr(db, DIMPLE_ENOTFOUND,
                              "history as of: \"%s\" is not a synced table"
                              " here",
                              table);
    if (n_key && (n_key != tt->n_key || !key))
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "history as of: table \"%s\" has a key of %zu"
                              " column(s), %zu given",
                              table, tt->n_key, n_key);
    dimple_pbuf kb = {0};
    for (size_t i = 0; i < n_key; i++)
        dimple_pack__value(&kb, &key[i]);
    asof a;
    memset(&a, 0, sizeof a);
    a.tt = tt;
    a.cb = cb;
    a.payload = payload;
    a.cells = calloc(tt->n_cols ? tt->n_cols : 1, sizeof *a.cells);
    a.names = calloc(tt->n_cols ? tt->n_cols : 1, sizeof *a.names);
    a.vals = calloc(tt->n_cols ? tt->n_cols : 1, sizeof *a.vals);
    int r = DIMPLE_OK;
    sqlite3_stmt *st = NULL;
    if (!a.cells || !a.names || !a.vals || kb.oom) {
        r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < tt->n_cols; i++)
        a.names[i] = tt->cname[i];
    uint8_t until[16];
    dimple_id__make(until, dimple_clock__after_ms(time_ms), 0);
    int rc = sqlite3_prepare_v2(
        db->sql,
        "SELECT k, op, v, dimple_id(seq, author, id), author"
        " FROM _dimple_log WHERE t = ?1"
        " AND (?2 IS NULL OR k = ?2) AND dimple_id(seq, author, id) < ?3"
        " ORDER BY k, dimple_id(seq, author, id)",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        r = dimple__sqlerr(db, rc, "history as of");
        goto out;
    }
    sqlite3_bind_int64(st, 1, tt->tid);
    if (n_key)
        sqlite3_bind_blob(st, 2, kb.p, (int)kb.n, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, until, 16, SQLITE_STATIC);
    dimple_pbuf cur = {0};
    bool have_cur = false;
    /* A row's changes replayed in id order through the merge rule: the
     * row exists when its last change is not a delete; a cell written
     * again keeps the version the resolver picks (the newest without
     * one), as the merge did for the table. */
    const char *tname = dimple_track__name(db, tt->tid);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *k = sqlite3_column_blob(st, 0);
        size_t kn = (size_t)sqlite3_column_bytes(st, 0);
        if (!have_cur || cur.n != kn || memcmp(cur.p, k, kn) != 0) {
            if (have_cur && (r = asof_flush(&a)))
                break;
            dimple_pbuf__reset(&cur);
            dimple_pbuf__add(&cur, k, kn);
            have_cur = true;
            /* the key columns */
            size_t pos = 0;
            for (size_t i = 0; i < tt->n_key; i++) {
                dimple_value v;
                if (!dimple_unpack__value(k, kn, &pos, &v)) {
                    r = dimple__seterr(db, DIMPLE_ECORRUPT,
                                       "history as of: malformed key");
                    break;
                }
                if (cell_set(&a.cells[tt->key_col[i]], &v)) {
                    r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
                    break;
                }
            }
            if (r)
                break;
        }
        int op = sqlite3_column_int(st, 1);
        if (op == DIMPLE_OP_DELETE) {
            a.alive = false;
            continue;
        }
        a.alive = true;
        uint8_t id[16];
        char author[37] = "";
        if (sqlite3_column_bytes(st, 3) != 16) {
            r = dimple__seterr(db, DIMPLE_ECORRUPT,
                               "history as of: a change without an id");
            break;
        }
        memcpy(id, sqlite3_column_blob(st, 3), 16);
        const uint8_t *au =
            dimple_track__author_uuid(db, sqlite3_column_int64(st, 4));
        if (au)
            dimple_uuid__format(au, author);
        const uint8_t *p = sqlite3_column_blob(st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 2), pos = 0;
        while (pos < n) {
            uint64_t cid;
            dimple_value v;
            if (!dimple_unpack__varint(p, n, &pos, &cid) ||
                !dimple_unpack__value(p, n, &pos, &v)) {
                r = dimple__seterr(db, DIMPLE_ECORRUPT,
                                   "history as of: malformed columns");
                break;
            }
            for (size_t i = 0; i < tt->n_cols && r == DIMPLE_OK; i++) {
                if (tt->cid[i] != (int64_t)cid || tt->is_key[i])
                    continue;
                asof_cell *c = &a.cells[i];
                bool take = true;
                if (c->set) {
                    const char *col = dimple_track__name(db, tt->cid[i]);
                    dimple_cell owner = {tname, col, c->id, c->author, c->v};
                    dimple_cell in = {tname, col, id, author, v};
                    r = dimple_track__resolve(db, &owner, &in, &take);
                }
                if (r == DIMPLE_OK && take) {
                    if (cell_set(c, &v))
                        r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
                    memcpy(c->id, id, 16);
                    memcpy(c->author, author, sizeof author);
                }
            }
            if (r)
                break;
        }
        if (r)
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "history as of");
    if (r == DIMPLE_OK && have_cur)
        r = asof_flush(&a);
    dimple_pbuf__free(&cur);
out:
    if (a.cells)
        for (size_t i = 0; i < tt->n_cols; i++)
            cell_clear(&a.cells[i]);
    free(a.cells);
    free(a.names);
    free(a.vals);
    sqlite3_finalize(st);
    dimple_pbuf__free(&kb);
    return r < 0 ? r : (r == DIMPLE_OK ? dimple__ok(db) : r);
}

/* -------------------------------------------------------------- authors */

const char *dimple_author_id(dimple *db)
{
    return dimple_track__author_text(db);
}

int dimple_author_reset(dimple *db)
{
    if (!db)
        return DIMPLE_EINVAL;
    return dimple_track__author_reset(db);
}

int dimple_author_keep(dimple *db)
{
    if (!db)
        return DIMPLE_EINVAL;
    return dimple_track__author_keep(db);
}
