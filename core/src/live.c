/*
 * live.c — live queries and notifiers (guide: docs/live.md).
 *
 * How a rerun is decided:
 *  - Dependencies: the tables SQLite's authorizer reports (SQLITE_READ)
 *    while the statement is prepared. Views arrive as their base tables,
 *    CTEs and subqueries as the tables they read: no SQL parsing.
 *  - Writes on db->sql: the preupdate hook, shared with change tracking
 *    through rowhook.c, collects the tables the open transaction touched
 *    (every table, WITHOUT ROWID included);
 *    the commit hook moves them to `dirty`; the rollback hook drops them.
 *    Hooks only record: queries run later in dimple_live__flush (end of
 *    every public call that may write) or dimple_live_dispatch, never inside a
 *    hook, where SQLite forbids using the connection.
 *  - Other connections and processes: SQLite does not say which tables
 *    they wrote, so every query reruns. Noticed two ways: after a local
 *    commit, for free, from the pager's data version (SQLITE_FCNTL_DATA_
 *    VERSION counts our commits plus the outside changes our transactions
 *    saw); and in dimple_live_dispatch with PRAGMA data_version,
 *    which looks at the file (a read transaction: too dear per commit).
 *  - DDL (no row hook reports it): an authorizer stays installed while
 *    queries are open and flags statements that create, drop or alter a
 *    table or view, or attach a database; the next commit then reruns
 *    every query.
 *  - A query's callback fires only when its serialized result (types and
 *    bytes of every cell, column names) differs from the previous one.
 *
 * Not used: sqlite3_wal_hook. Setting it would replace SQLite's automatic
 * WAL checkpointing (sqlite3_wal_autocheckpoint is built on it), and the
 * commit hook already says everything live needs.
 */
#include "live_hooks.h"
#include "json.h"
#include "buf.h"
#include "db.h"
#include "opts.h"
#include "clock.h"
#include "rowhook.h"
#include "track.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define WATCH_INTERVAL_MS 50 /* watcher thread: PRAGMA data_version period */
#define MAX_ROUNDS 16        /* callbacks that write re-trigger: bound it */

/* ------------------------------------------------------------ table sets */

typedef struct tname {
    char *schema; /* NULL: any schema (the authorizer did not say) */
    char *table;
    uint32_t hash; /* of table, ASCII case folded: a cheap first test */
    int vtab;      /* a dependency on a virtual table (see vtab_deps) */
} tname;

typedef struct tset {
    tname *v;
    size_t n, cap;
} tset;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        h = (h ^ c) * 16777619u;
    }
    return h;
}

static int name_eq(const char *a, const char *b)
{
    return sqlite3_stricmp(a, b) == 0;
}

static int tset_has(const tset *s, const char *schema, const char *table,
                    uint32_t hash)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].hash == hash && name_eq(s->v[i].table, table) &&
            (!s->v[i].schema || !schema || name_eq(s->v[i].schema, schema)))
            return 1;
    return 0;
}

static int tset_grow(tset *s)
{
    if (dimple__grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v))
        return -1;
    return 0;
}

/* Adds (schema, table) unless present. -1 on out of memory. */
static int tset_add(tset *s, const char *schema, const char *table)
{
    char *sc = NULL, *tb;
    uint32_t h = name_hash(table);
    if (tset_has(s, schema, table, h))
        return 0;
    if (tset_grow(s) < 0)
        return -1;
    tb = strdup(table);
    if (schema)
        sc = strdup(schema);
    if (!tb || (schema && !sc)) {
        free(tb);
        free(sc);
        return -1;
    }
    s->v[s->n].schema = sc;
    s->v[s->n].table = tb;
    s->v[s->n].hash = h;
    s->v[s->n].vtab = 0;
    s->n++;
    return 0;
}

static void tname_free(tname *t)
{
    free(t->schema);
    free(t->table);
}

/* Moves from's entries into to (no copies); from ends empty. */
static int tset_move(tset *to, tset *from)
{
    int rc = 0;
    for (size_t i = 0; i < from->n; i++) {
        tname *t = &from->v[i];
        if (tset_has(to, t->schema, t->table, t->hash)) {
            tname_free(t);
        } else if (tset_grow(to) < 0) {
            tname_free(t);
            rc = -1;
        } else {
            to->v[to->n++] = *t;
        }
    }
    from->n = 0;
    return rc;
}

static void tset_clear(tset *s)
{
    for (size_t i = 0; i < s->n; i++)
        tname_free(&s->v[i]);
    s->n = 0;
}

static void tset_free(tset *s)
{
    tset_clear(s);
    free(s->v);
    s->v = NULL;
    s->cap = 0;
}

/* ------------------------------------------------------------- structures */

struct dimple_live_query {
    dimple *db;
    char *sql;
    sqlite3_stmt *stmt;
    dimple_live_cb cb;
    void *payload;
    int delivery;
    tset deps;
    char **dep_names; /* "schema.table" for dimple_live_dep */
    int dirty;        /* a dependency changed: rerun */
    int fire;         /* a result is waiting for dimple_live_dispatch */
    int closed;       /* closed from a callback: freed after the round */
    int has_vtab;     /* reads a virtual table */
    dimple_buf last;  /* serialized result of the last run */
    int have_last;
    char errmsg[512]; /* last run's error */
    int err_rc;
    uint64_t runs, calls;
};

struct dimple_live {
    dimple *db;
    dimple_live_query **q;
    size_t n_q, cap_q;

    tset pending; /* written by the open transaction (row hooks) */
    tset dirty;   /* committed, not yet matched against the queries */
    tset ours;    /* committed since the last notify (notifier filter) */
    int oom;      /* a hook could not record: treat as "all dirty" */
    int all_dirty;
    int committed; /* a commit since the last notify */
    int row_hooks; /* row hook installed */
    int ddl_on;    /* ddl_watch installed */

    sqlite3_stmt *ver; /* PRAGMA data_version */
    int64_t data_version;
    int have_ver;
    unsigned fc_base;   /* pager data version at the last check */
    unsigned n_commits; /* our commits since then */
    int ext_notify;     /* outside commits seen since the last notify */
    int ddl;            /* a DDL statement was prepared (authorizer) */
    sqlite3_stmt *sver; /* PRAGMA schema_version */
    int64_t schema_version;
    int depth;       /* > 0 while running callbacks */
    size_t n_closed; /* queries closed, not yet freed */
    int work;        /* some query is dirty or has a result to deliver */
    int closing;

    /* notifiers */
    int64_t seq;
    uint8_t author[16];
    int have_author;

    /* dispatch */
    int efd;
    int watching;
    pthread_t watcher;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;            /* under mu */
    int ready;           /* under mu: the watcher has its baseline */
    int watch_failed;    /* under mu: the watcher stopped for good */
    char watch_why[400]; /* under mu: why */
#ifdef DIMPLE_TESTING
    int test_break; /* under mu: dimple_live__test_break_watcher */
#endif
    char *path;
};

/* ------------------------------------------------------------------ hooks */

static void note_write(struct dimple_live *L, const char *schema,
                       const char *table)
{
    /* Per row: the common case is the same table as the previous row. */
    if (L->pending.n) {
        tname *t = &L->pending.v[L->pending.n - 1];
        if (strcmp(t->table, table) == 0 && strcmp(t->schema, schema) == 0)
            return;
    }
    if (tset_add(&L->pending, schema, table) < 0)
        L->oom = 1;
}

static void on_row(dimple *db, sqlite3 *s, int op, const char *schema,
                   const char *table)
{
    (void)s;
    (void)op;
    if (db->live)
        note_write(db->live, schema, table);
}

static int on_commit(void *arg)
{
    struct dimple_live *L = arg;
    L->committed = 1;
    L->n_commits++;
    /* ours only serves the notifiers' filter */
    if (L->db->n_notifiers)
        for (size_t i = 0; i < L->pending.n; i++)
            if (tset_add(&L->ours, L->pending.v[i].schema,
                         L->pending.v[i].table) < 0)
                L->oom = 1;
    if (tset_move(&L->dirty, &L->pending) < 0)
        L->oom = 1;
    return 0; /* never veto a commit */
}

static void on_rollback(void *arg)
{
    struct dimple_live *L = arg;
    tset_clear(&L->pending);
}

/* Installed while queries are open: notes DDL, allows everything. */
static int ddl_watch(void *arg, int op, const char *a, const char *b,
                     const char *schema, const char *via)
{
    struct dimple_live *L = arg;
    (void)a;
    (void)b;
    (void)schema;
    (void)via;
    switch (op) {
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_ALTER_TABLE:
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
        L->ddl = 1;
        break;
    default:
        break;
    }
    return SQLITE_OK;
}

static void set_authorizer(struct dimple_live *L)
{
    if (L->n_q && !L->closing)
        sqlite3_set_authorizer(L->db->sql, ddl_watch, L);
    else
        sqlite3_set_authorizer(L->db->sql, NULL, NULL);
}

/* The row hook is only paid for while something needs table names. */
static void set_row_hooks(struct dimple_live *L)
{
    dimple *db = L->db;
    int want = !L->closing && (L->n_q > 0 || db->n_notifiers > 0);
    if ((L->n_q > 0 && !L->closing) != L->ddl_on) {
        /* set_authorizer expires every prepared statement of the
         * connection (they re-prepare on their next step): only when the
         * first query opens or the last one closes. */
        L->ddl_on = L->n_q > 0 && !L->closing;
        set_authorizer(L);
    }
    if (want == L->row_hooks)
        return;
    dimple_rowhook__want(db, DIMPLE_ROWHOOK_LIVE, want ? on_row : NULL);
    L->row_hooks = want;
    /* writes of an open transaction made before now went unseen */
    if (want && !sqlite3_get_autocommit(db->sql))
        L->all_dirty = 1;
}

static unsigned pager_version(dimple *db);
static int watch_check(dimple *db, const char *who);

/* ------------------------------------------------------------ open/close */

int dimple_live__open(dimple *db)
{
    struct dimple_live *L = calloc(1, sizeof *L);
    if (!L)
        return dimple__seterr(db, DIMPLE_ENOMEM, "live: out of memory");
    L->db = db;
    L->efd = -1;
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    L->seq = dimple_track__last_seq(db);
    /* a read-only database that dimple never wrote has no author */
    L->have_author = dimple_track__author(db, L->author) == DIMPLE_OK;
    db->live = L;
    L->fc_base = pager_version(db);
    sqlite3_commit_hook(db->sql, on_commit, L);
    sqlite3_rollback_hook(db->sql, on_rollback, L);
    set_row_hooks(L);
    L->all_dirty = 0;
    return DIMPLE_OK;
}

static void query_free(dimple_live_query *q)
{
    if (!q)
        return;
    sqlite3_finalize(q->stmt);
    tset_free(&q->deps);
    if (q->dep_names)
        for (size_t i = 0; q->dep_names[i]; i++)
            free(q->dep_names[i]);
    free(q->dep_names);
    dimple_buf__free(&q->last);
    free(q->sql);
    free(q);
}

static void watcher_stop(struct dimple_live *L)
{
    if (!L->watching)
        return;
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_signal(&L->cv);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->watcher, NULL);
    L->watching = 0;
}

void dimple_live__close(dimple *db)
{
    struct dimple_live *L = db ? db->live : NULL;
    if (!L)
        return;
    L->closing = 1;
    watcher_stop(L);
    for (size_t i = 0; i < L->n_q; i++)
        query_free(L->q[i]);
    free(L->q);
    if (db->sql) {
        set_row_hooks(L);
        sqlite3_commit_hook(db->sql, NULL, NULL);
        sqlite3_rollback_hook(db->sql, NULL, NULL);
    }
    sqlite3_finalize(L->ver);
    sqlite3_finalize(L->sver);
    tset_free(&L->pending);
    tset_free(&L->dirty);
    tset_free(&L->ours);
    if (L->efd >= 0)
        close(L->efd);
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->mu);
    free(L->path);
    free(L);
    db->live = NULL;
}

/* ------------------------------------------------------- running queries */

static int put_u64(dimple_buf *b, uint64_t v)
{
    return dimple_buf__append(b, &v, sizeof v);
}

/* The result as bytes: column count and names, then per cell a type byte
 * and its value (8 bytes for numbers, length + bytes + NUL for text/blob),
 * or an error marker. Equal bytes <=> equal results (REAL bit-exact). */
static int run_query(dimple_live_query *q, dimple_buf *out)
{
    sqlite3_stmt *st = q->stmt;
    int ncol = sqlite3_column_count(st), rc, err = 0;
    unsigned char tag;
    out->n = 0;
    q->runs++;
    sqlite3_reset(st);
    tag = 'R';
    err |= dimple_buf__append(out, &tag, 1);
    err |= put_u64(out, (uint64_t)ncol);
    for (int c = 0; c < ncol; c++) {
        const char *nm = sqlite3_column_name(st, c);
        if (!nm)
            nm = "";
        err |= put_u64(out, strlen(nm));
        err |= dimple_buf__append(out, nm, strlen(nm) + 1);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !err) {
        for (int c = 0; c < ncol; c++) {
            int t = sqlite3_column_type(st, c);
            tag = (unsigned char)t;
            err |= dimple_buf__append(out, &tag, 1);
            if (t == SQLITE_INTEGER) {
                err |= put_u64(out, (uint64_t)sqlite3_column_int64(st, c));
            } else if (t == SQLITE_FLOAT) {
                double d = sqlite3_column_double(st, c);
                err |= dimple_buf__append(out, &d, sizeof d);
            } else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
                const void *p = t == SQLITE_TEXT
                                    ? (const void *)sqlite3_column_text(st, c)
                                    : sqlite3_column_blob(st, c);
                size_t n = (size_t)sqlite3_column_bytes(st, c);
                err |= put_u64(out, n);
                if (n)
                    err |= dimple_buf__append(out, p, n);
                err |= dimple_buf__append(out, "", 1);
            }
        }
    }
    if (err) {
        sqlite3_reset(st);
        snprintf(q->errmsg, sizeof q->errmsg, "live query: out of memory");
        rc = q->err_rc = DIMPLE_ENOMEM;
    } else if (rc != SQLITE_DONE) {
        snprintf(q->errmsg, sizeof q->errmsg, "live query: %s",
                 sqlite3_errmsg(q->db->sql));
        rc = dimple__sqlite_code(rc);
        sqlite3_reset(st);
        q->err_rc = rc;
    } else {
        sqlite3_reset(st);
        return DIMPLE_OK;
    }
    /* An error is a result too: it fires once, not on every rerun. */
    out->n = 0;
    tag = 'E';
    if (dimple_buf__append(out, &tag, 1) < 0 ||
        dimple_buf__append(out, q->errmsg, strlen(q->errmsg)) < 0)
        out->n = 0;
    return rc;
}

static uint64_t get_u64(const unsigned char **p)
{
    uint64_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/* Decode q->last and call back. */
static void fire(dimple_live_query *q)
{
    const unsigned char *p = q->last.p, *end = q->last.p + q->last.n;
    dimple_result r = {0};
    const char **names = NULL;
    dimple_value *vals = NULL;
    size_t nv = 0, cap = 0;
    dimple_buf js = {0};
    static const char empty_json[] = "[]";
    int oom = 0;

    q->fire = 0;
    q->calls++;
    if (q->last.n == 0 || p[0] == 'E') {
        static char nomem[] = "live query: out of memory";
        char *msg = q->errmsg;
        if (q->last.n == 0)
            msg = nomem;
        r.rc = q->last.n == 0 ? DIMPLE_ENOMEM : q->err_rc;
        r.errmsg = msg;
        r.json = empty_json;
        q->cb(q->payload, q, &r);
        return;
    }
    p++;
    r.n_cols = (size_t)get_u64(&p);
    names = calloc(r.n_cols ? r.n_cols : 1, sizeof *names);
    if (!names) {
        oom = 1;
        goto out;
    }
    for (size_t c = 0; c < r.n_cols; c++) {
        size_t n = (size_t)get_u64(&p);
        names[c] = (const char *)p;
        p += n + 1;
    }
    while (p < end) {
        dimple_value v = {0};
        v.type = (dimple_type)*p++;
        if (v.type == DIMPLE_INTEGER) {
            v.i = (int64_t)get_u64(&p);
        } else if (v.type == DIMPLE_REAL) {
            memcpy(&v.r, p, sizeof v.r);
            p += sizeof v.r;
        } else if (v.type == DIMPLE_TEXT || v.type == DIMPLE_BLOB) {
            v.n = (size_t)get_u64(&p);
            v.p = p;
            p += v.n + 1;
        }
        if (dimple__grow((void **)&vals, &cap, nv + 1, sizeof *vals)) {
            oom = 1;
            goto out;
        }
        vals[nv++] = v;
    }
    r.n_rows = r.n_cols ? nv / r.n_cols : 0;
    oom |= dimple_buf__append(&js, "[", 1) < 0;
    for (size_t i = 0; i < r.n_rows && !oom; i++) {
        if (i)
            oom |= dimple_buf__append(&js, ",", 1) < 0;
        oom |= dimple_json__row(&js, r.n_cols, names, vals + i * r.n_cols) < 0;
    }
    oom |= dimple_buf__append(&js, "]", 2) < 0;
out:
    if (oom) {
        r = (dimple_result){0};
        r.rc = DIMPLE_ENOMEM;
        r.errmsg = "live query: out of memory";
        r.json = empty_json;
    } else {
        r.rc = DIMPLE_OK;
        r.errmsg = "ok";
        r.names = names;
        r.values = vals;
        r.json = (const char *)js.p;
    }
    q->cb(q->payload, q, &r);
    free(names);
    free(vals);
    dimple_buf__free(&js);
}

/* Run q; if its result differs from the last one keep it and return 1. */
static int rerun(dimple_live_query *q)
{
    dimple_buf now = {0};
    run_query(q, &now);
    if (q->have_last && now.n == q->last.n &&
        (now.n == 0 || memcmp(now.p, q->last.p, now.n) == 0)) {
        dimple_buf__free(&now);
        return 0;
    }
    dimple_buf__free(&q->last);
    q->last = now;
    q->have_last = 1;
    return 1;
}

/* A virtual table (FTS5, R*Tree, ...) is written through its shadow
 * tables, named "<vtab>_<suffix>" by every SQLite module. */
static int shadow_of(const tname *dep, const tname *written)
{
    size_t n = strlen(dep->table);
    return sqlite3_strnicmp(written->table, dep->table, (int)n) == 0 &&
           written->table[n] == '_' &&
           (!dep->schema || name_eq(dep->schema, written->schema));
}

static int depends_on_dirty(const dimple_live_query *q, const tset *dirty)
{
    for (size_t i = 0; i < dirty->n; i++) {
        if (tset_has(&q->deps, dirty->v[i].schema, dirty->v[i].table,
                     dirty->v[i].hash))
            return 1;
        if (q->has_vtab)
            for (size_t d = 0; d < q->deps.n; d++)
                if (q->deps.v[d].vtab && shadow_of(&q->deps.v[d], &dirty->v[i]))
                    return 1;
    }
    return 0;
}

static void signal_fd(struct dimple_live *L)
{
    uint64_t one = 1;
    if (L->efd >= 0) {
        ssize_t w = write(L->efd, &one, sizeof one);
        (void)w; /* EAGAIN: the counter is already non-zero */
    }
}

static unsigned pager_version(dimple *db)
{
    unsigned v = 0;
    sqlite3_file_control(db->sql, "main", SQLITE_FCNTL_DATA_VERSION, &v);
    return v;
}

static void outside_commit(struct dimple_live *L)
{
    L->all_dirty = 1;
    L->ext_notify = 1;
}

/* After local commits, at no cost: the pager's version moves once per
 * commit of ours and once per outside change a transaction of ours saw;
 * more moves than our commits means another connection committed. */
static void check_cheap(struct dimple_live *L)
{
    unsigned v = pager_version(L->db);
    if (v - L->fc_base > L->n_commits)
        outside_commit(L);
    L->fc_base = v;
    L->n_commits = 0;
}

/* PRAGMA data_version: a read transaction that looks at the file, so it
 * sees a commit no transaction of ours has seen yet. */
static void check_exact(struct dimple_live *L)
{
    dimple *db = L->db;
    int64_t dv;
    if (!L->ver && sqlite3_prepare_v3(db->sql, "PRAGMA data_version", -1,
                                      SQLITE_PREPARE_PERSISTENT, &L->ver,
                                      NULL) != SQLITE_OK) {
        L->ver = NULL;
        return;
    }
    if (sqlite3_step(L->ver) != SQLITE_ROW) {
        sqlite3_reset(L->ver);
        return;
    }
    dv = sqlite3_column_int64(L->ver, 0);
    sqlite3_reset(L->ver);
    if (L->have_ver && dv != L->data_version)
        outside_commit(L);
    L->data_version = dv;
    L->have_ver = 1;
    check_cheap(L); /* and a new base for it */
}

/* Whether PRAGMA schema_version moved since the last call (1 when it
 * cannot tell). Only after a commit that prepared DDL. */
static int schema_changed(struct dimple_live *L)
{
    int64_t v;
    if (!L->sver && sqlite3_prepare_v3(L->db->sql, "PRAGMA schema_version", -1,
                                       SQLITE_PREPARE_PERSISTENT, &L->sver,
                                       NULL) != SQLITE_OK) {
        L->sver = NULL;
        return 1;
    }
    if (sqlite3_step(L->sver) != SQLITE_ROW) {
        sqlite3_reset(L->sver);
        return 1;
    }
    v = sqlite3_column_int64(L->sver, 0);
    sqlite3_reset(L->sver);
    if (v == L->schema_version)
        return 0;
    L->schema_version = v;
    return 1;
}

/* ------------------------------------------------------------- notifiers */

typedef struct evlist {
    struct dimple_live *L;
    dimple_event *v;
    size_t n, cap;
    int filter; /* keep only tables this connection wrote */
    int oom;
} evlist;

static int collect_event(void *payload, const dimple_change *c)
{
    evlist *E = payload;
    struct dimple_live *L = E->L;
    static const char *const ops[] = {"?", "insert", "update", "delete"};
    dimple_buf key = {0};
    char *id = NULL, *author = NULL, *table = NULL;
    int bad = 0;
    if (E->filter && !tset_has(&L->ours, NULL, c->table, name_hash(c->table)))
        return 0;
    if (dimple__grow((void **)&E->v, &E->cap, E->n + 1, sizeof *E->v))
        goto oom;
    id = malloc(37);
    author = malloc(37);
    table = strdup(c->table);
    if (!id || !author || !table)
        goto oom;
    dimple_uuid__format(c->id, id);
    dimple_uuid__format(c->author, author);
    if (c->n_key != 1)
        bad |= dimple_buf__append(&key, "[", 1) < 0;
    for (size_t i = 0; i < c->n_key; i++) {
        if (i)
            bad |= dimple_buf__append(&key, ",", 1) < 0;
        bad |= dimple_json__value(&key, &c->key[i]) < 0;
    }
    if (c->n_key != 1)
        bad |= dimple_buf__append(&key, "]", 1) < 0;
    bad |= dimple_buf__append(&key, "", 1) < 0;
    if (bad)
        goto oom;
    E->v[E->n].id = id;
    E->v[E->n].author = author;
    E->v[E->n].table = table;
    E->v[E->n].key_json = (const char *)key.p;
    E->v[E->n].op = ops[c->op >= 1 && c->op <= 3 ? c->op : 0];
    E->v[E->n].origin = L->have_author && memcmp(c->author, L->author, 16) == 0
                            ? "local"
                            : "remote";
    E->n++;
    return 0;
oom:
    free(id);
    free(author);
    free(table);
    dimple_buf__free(&key);
    E->oom = 1;
    return 0; /* skip this one, keep the walk going (seq must advance) */
}

static int event_cmp(const void *a, const void *b)
{
    return strcmp(((const dimple_event *)a)->id, ((const dimple_event *)b)->id);
}

static void notify(struct dimple_live *L)
{
    dimple *db = L->db;
    evlist E = {0};
    E.L = L;
    L->committed = 0;
    if (!db->n_notifiers) {
        tset_clear(&L->ours);
        return;
    }
    /* The log is shared by every connection to the file: when another one
     * committed since the last notify, keep only the tables this one wrote
     * so a change is (mostly) reported by the process that made it. */
    check_cheap(L);
    E.filter = L->ext_notify;
    L->ext_notify = 0;
    dimple_track__each_since(db, &L->seq, collect_event, &E);
    tset_clear(&L->ours);
    if (E.oom && db->n_notifiers && db->notifiers[0]->host.log)
        db->notifiers[0]->host.log(db->notifiers[0]->host.ctx, DIMPLE_LOG_ERROR,
                                   "live: out of memory: some changes were "
                                   "not given to the notifiers");
    if (E.n) {
        /* the writer's own message (if any) outlives the notifiers' */
        dimple_errsave saved;
        dimple__err_save(db, &saved);
        qsort(E.v, E.n, sizeof *E.v, event_cmp);
        for (size_t i = 0; i < db->n_notifiers; i++) {
            dimple_instance *in = db->notifiers[i];
            int rc;
            char msg[sizeof db->errmsg + 32];
            if (!in || !in->vt.notifier.notify)
                continue;
            /* The commit stands whatever a notifier says; its failure goes
             * to the handle's logger, not to the writer's return code. */
            db->errmsg[0] = '\0';
            rc = in->vt.notifier.notify(in->self, E.v, E.n);
            if (rc < 0 && in->host.log) {
                snprintf(msg, sizeof msg, "notify failed (%s): %s",
                         dimple_errstr(rc), db->errmsg);
                in->host.log(in->host.ctx, DIMPLE_LOG_ERROR, msg);
            }
        }
        dimple__err_restore(db, &saved);
    }
    for (size_t i = 0; i < E.n; i++) {
        free((void *)E.v[i].id);
        free((void *)E.v[i].author);
        free((void *)E.v[i].table);
        free((void *)E.v[i].key_json);
    }
    free(E.v);
}

/* ----------------------------------------------------------------- rounds */

static void compact(struct dimple_live *L)
{
    size_t j = 0;
    if (!L->n_closed)
        return;
    L->n_closed = 0;
    for (size_t i = 0; i < L->n_q; i++) {
        if (L->q[i]->closed)
            query_free(L->q[i]);
        else
            L->q[j++] = L->q[i];
    }
    L->n_q = j;
    set_row_hooks(L);
}

/* The work of a flush (dispatching = 0) or a dispatch (1). */
static void live_run(struct dimple_live *L, int dispatching)
{
    dimple *db = L->db;
    if (L->depth || L->closing)
        return; /* from a callback: the outer round picks the work up */
    if (!sqlite3_get_autocommit(db->sql))
        return; /* inside a transaction: nothing is committed yet */
    L->depth++;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        int signal = 0, had_commit = L->committed;
        if (dispatching && round == 0)
            check_exact(L);
        else if (L->n_q)
            check_cheap(L);
        if (L->committed)
            notify(L);
        if (had_commit && L->ddl) {
            /* CREATE TABLE IF NOT EXISTS of a table that exists is no
             * change: only a new schema version reruns everything */
            L->ddl = 0;
            if (schema_changed(L))
                L->all_dirty = 1;
        }
        if (L->oom) {
            L->oom = 0;
            L->all_dirty = 1;
        }
        if (L->all_dirty || L->dirty.n) {
            for (size_t i = 0; i < L->n_q; i++) {
                dimple_live_query *q = L->q[i];
                if (q->closed || q->dirty)
                    continue;
                if (L->all_dirty || depends_on_dirty(q, &L->dirty)) {
                    q->dirty = 1;
                    L->work = 1;
                    if (q->delivery == DIMPLE_LIVE_DISPATCH && !dispatching)
                        signal = 1;
                }
            }
            tset_clear(&L->dirty);
            L->all_dirty = 0;
        }
        if (signal)
            signal_fd(L);
        if (L->work) {
            int left = 0;
            L->work = 0;
            for (size_t i = 0; i < L->n_q; i++) { /* n_q may grow in a cb */
                dimple_live_query *q = L->q[i];
                int mine = q->delivery == DIMPLE_LIVE_SYNC || dispatching;
                if (q->closed)
                    continue;
                if (!mine) {
                    left |= q->dirty | q->fire;
                    continue;
                }
                if (q->dirty) {
                    q->dirty = 0;
                    if (rerun(q))
                        q->fire = 1;
                }
                if (q->fire && !q->closed)
                    fire(q);
            }
            L->work |= left;
        }
        if (!L->committed && !L->dirty.n && !L->all_dirty && !L->oom)
            break;
    }
    L->depth--;
    compact(L);
}

void dimple_live__flush(dimple *db)
{
    if (db && db->live)
        live_run(db->live, 0);
}

int dimple_live_dispatch(dimple *db)
{
    struct dimple_live *L;
    if (!db)
        return DIMPLE_EINVAL;
    L = db->live;
    if (!L)
        return dimple__seterr(db, DIMPLE_EINVAL, "dispatch: handle not open");
    /* In a transaction nothing runs; keep the fd readable for later. */
    if (L->efd >= 0 && sqlite3_get_autocommit(db->sql)) {
        uint64_t v;
        ssize_t r = read(L->efd, &v, sizeof v);
        (void)r; /* EAGAIN: nothing was signalled */
    }
    live_run(L, 1);
    return watch_check(db, "dispatch");
}

/* ------------------------------------------------------------ the watcher */

/* One poll: SQLITE_ROW with *v set, or SQLite's code with why filled. */
static int watch_version(sqlite3 *c, sqlite3_stmt *st, int64_t *v, char *why,
                         size_t n)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    else
        snprintf(why, n, "PRAGMA data_version: %s", sqlite3_errmsg(c));
    sqlite3_reset(st);
    return rc;
}

/* A writer's lock or a checkpoint passes at the next poll; anything else
 * (the file gone or unreadable, not a database, out of memory) would fail
 * every poll: the watcher stops and says why. */
static int watch_fatal(int rc)
{
    return rc != SQLITE_ROW && rc != SQLITE_BUSY && rc != SQLITE_LOCKED;
}

/* Under mu. */
static void watch_fail(struct dimple_live *L, const char *why)
{
    L->watch_failed = 1;
    snprintf(L->watch_why, sizeof L->watch_why, "%s", why);
}

static void *watch_main(void *arg)
{
    struct dimple_live *L = arg;
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    char why[300] = "";
    int64_t last = 0, v = 0;
    int have = 0;
    int rc = sqlite3_open_v2(L->path, &c,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c, "PRAGMA data_version", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, sizeof why, "cannot open %s read-only: %s", L->path,
                 c ? sqlite3_errmsg(c) : "out of memory");
    } else {
        sqlite3_busy_timeout(c, 10);
        /* The baseline before dimple_live_fd returns: any commit after
         * that shows as a change. */
        rc = watch_version(c, st, &last, why, sizeof why);
        have = rc == SQLITE_ROW;
    }
    pthread_mutex_lock(&L->mu);
    if (!st || watch_fatal(rc))
        watch_fail(L, why); /* dimple_live_fd reports it */
    L->ready = 1;
    pthread_cond_broadcast(&L->cv);
    while (!L->stop && !L->watch_failed) {
        struct timespec ts;
        int broken = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&L->cv, &L->mu, &ts);
        if (L->stop)
            break;
#ifdef DIMPLE_TESTING
        broken = L->test_break;
        L->test_break = 0;
#endif
        pthread_mutex_unlock(&L->mu);
        rc = watch_version(c, st, &v, why, sizeof why);
        if (broken) {
            rc = SQLITE_IOERR;
            snprintf(why, sizeof why,
                     "PRAGMA data_version: disk I/O error "
                     "(a test broke the watcher)");
        }
        if (rc == SQLITE_ROW) {
            if (have && v != last)
                signal_fd(L);
            last = v;
            have = 1;
        }
        pthread_mutex_lock(&L->mu);
        if (watch_fatal(rc)) {
            watch_fail(L, why);
            signal_fd(L); /* wakes the app: its dispatch reports it */
        }
    }
    pthread_mutex_unlock(&L->mu);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return NULL;
}

/* Whether the watcher stopped for good; why copied out. */
static int watch_dead(struct dimple_live *L, char *why, size_t n)
{
    int dead;
    pthread_mutex_lock(&L->mu);
    dead = L->watch_failed;
    if (dead)
        snprintf(why, n, "%s", L->watch_why);
    pthread_mutex_unlock(&L->mu);
    return dead;
}

/* Reported by dimple_live_dispatch until dimple_live_fd starts the watcher
 * again: until then the fd misses other connections' commits. */
static int watch_check(dimple *db, const char *who)
{
    struct dimple_live *L = db->live;
    char why[400];
    if (L->watching && watch_dead(L, why, sizeof why))
        return dimple__seterr(db, DIMPLE_EIO,
                              "%s: the notify fd's watcher stopped (%s); "
                              "dimple_live_fd starts it again",
                              who, why);
    return dimple__ok(db);
}

/* Start the watcher unless it runs; a stopped one is joined and started
 * again. */
static int watcher_start(dimple *db)
{
    struct dimple_live *L = db->live;
    const char *path;
    char why[400];
    if (L->watching) {
        if (!watch_dead(L, why, sizeof why))
            return DIMPLE_OK;
        watcher_stop(L);
    }
    /* Only a file can be written by another connection; memory and temp
     * databases need no watcher. */
    path = sqlite3_db_filename(db->sql, "main");
    if (!path || !*path)
        return DIMPLE_OK;
    if (!L->path && !(L->path = strdup(path)))
        return dimple__seterr(db, DIMPLE_ENOMEM, "notify fd: out of memory");
    L->stop = L->ready = L->watch_failed = 0; /* no watcher runs */
    if (pthread_create(&L->watcher, NULL, watch_main, L) != 0)
        return dimple__seterr(db, DIMPLE_ERROR,
                              "notify fd: cannot start the watcher thread");
    L->watching = 1;
    pthread_mutex_lock(&L->mu);
    while (!L->ready)
        pthread_cond_wait(&L->cv, &L->mu);
    pthread_mutex_unlock(&L->mu);
    if (watch_dead(L, why, sizeof why)) {
        watcher_stop(L);
        return dimple__seterr(db, DIMPLE_EIO,
                              "notify fd: the watcher of other connections' "
                              "commits cannot run: %s",
                              why);
    }
    return DIMPLE_OK;
}

int dimple_live_fd(dimple *db)
{
    struct dimple_live *L;
    int rc, fresh = 0;
    if (!db)
        return DIMPLE_EINVAL;
    L = db->live;
    if (!L)
        return dimple__seterr(db, DIMPLE_EINVAL, "notify fd: handle not open");
    if (L->efd < 0) {
        L->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (L->efd < 0)
            return dimple__seterr(db, DIMPLE_EIO, "notify fd: eventfd: %s",
                                  strerror(errno));
        fresh = 1;
    }
    if ((rc = watcher_start(db)) < 0)
        return rc;
    /* Results that were waiting before the fd existed. */
    if (fresh)
        for (size_t i = 0; i < L->n_q; i++)
            if (L->q[i]->fire || L->q[i]->dirty)
                signal_fd(L);
    dimple__ok(db);
    return L->efd;
}

#ifdef DIMPLE_TESTING
/* Tests only (the test build's copy of the library): the watcher's next
 * poll fails as if its file had become unreadable. */
void dimple_live__test_break_watcher(dimple *db);
void dimple_live__test_break_watcher(dimple *db)
{
    struct dimple_live *L = db->live;
    pthread_mutex_lock(&L->mu);
    L->test_break = 1;
    pthread_cond_signal(&L->cv);
    pthread_mutex_unlock(&L->mu);
}
#endif

/* --------------------------------------------------------- dimple_live_* */

typedef struct auth_ctx {
    dimple_live_query *q;
    int oom;
} auth_ctx;

static int authorize(void *arg, int op, const char *a, const char *b,
                     const char *schema, const char *via)
{
    auth_ctx *ac = arg;
    (void)b;
    (void)via;
    /* a view shows up as a table too; it is never written, so harmless */
    if (op == SQLITE_READ && a && tset_add(&ac->q->deps, schema, a) < 0)
        ac->oom = 1;
    return SQLITE_OK;
}

static int bind_params(dimple *db, sqlite3_stmt *st, const dimple_value *p,
                       size_t n)
{
    int rc = SQLITE_OK;
    if ((int)n != sqlite3_bind_parameter_count(st))
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "live query: %zu parameters given, the "
                              "statement has %d",
                              n, sqlite3_bind_parameter_count(st));
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        int at = (int)i + 1;
        switch (p[i].type) {
        case DIMPLE_INTEGER:
            rc = sqlite3_bind_int64(st, at, p[i].i);
            break;
        case DIMPLE_REAL:
            rc = sqlite3_bind_double(st, at, p[i].r);
            break;
        case DIMPLE_TEXT:
            rc = sqlite3_bind_text64(st, at, p[i].p, p[i].n, SQLITE_TRANSIENT,
                                     SQLITE_UTF8);
            break;
        case DIMPLE_BLOB:
            rc = sqlite3_bind_blob64(st, at, p[i].n ? p[i].p : "", p[i].n,
                                     SQLITE_TRANSIENT);
            break;
        case DIMPLE_NULL:
            rc = sqlite3_bind_null(st, at);
            break;
        default:
            return dimple__seterr(db, DIMPLE_EINVAL,
                                  "live query: parameter %d has an unknown "
                                  "type %d",
                                  at, (int)p[i].type);
        }
    }
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "live query: bind");
    return DIMPLE_OK;
}

/* Marks q's dependencies on virtual tables (pragma_table_list, SQLite >=
 * 3.37; older: none marked). */
static void vtab_deps(dimple *db, dimple_live_query *q)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT 1 FROM pragma_table_list WHERE type = "
                           "'virtual' AND name = ?1 AND (?2 IS NULL OR "
                           "schema = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    for (size_t i = 0; i < q->deps.n; i++) {
        sqlite3_bind_text(st, 1, q->deps.v[i].table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, q->deps.v[i].schema, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            q->deps.v[i].vtab = q->has_vtab = 1;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

int dimple_live_open(dimple_live_query **out, dimple *db, const char *sql,
                     const dimple_value *params, size_t n_params,
                     dimple_live_cb cb, void *payload,
                     const dimple_live_options *opts)
{
    struct dimple_live *L;
    dimple_live_query *q = NULL;
    dimple_live_options o = DIMPLE_LIVE_OPTIONS_INIT;
    auth_ctx ac = {0};
    const char *tail = NULL;
    int rc;
    if (out)
        *out = NULL;
    if (!db)
        return DIMPLE_EINVAL;
    L = db->live;
    if (!out || !sql || !cb || (n_params && !params))
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "live query: out, sql and cb are required");
    if (!L)
        return dimple__seterr(db, DIMPLE_EINVAL, "live query: handle not open");
    if ((rc = dimple__opts(db, &o, sizeof o, sizeof o, opts,
                           "dimple_live_options")) < 0)
        return rc;
    if (o.delivery != DIMPLE_LIVE_SYNC && o.delivery != DIMPLE_LIVE_DISPATCH)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "live query: unknown delivery mode %d",
                              o.delivery);
    q = calloc(1, sizeof *q);
    if (!q || !(q->sql = strdup(sql))) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "live query: out of memory");
        goto out;
    }
    q->db = db;
    q->cb = cb;
    q->payload = payload;
    q->delivery = o.delivery;

    /* No SQLite call reads the current authorizer, so only dimple's own
     * (ddl_watch) is put back; docs/live.md tells apps that set one
     * through dimple_sqlite() that live queries replace it. */
    ac.q = q;
    sqlite3_set_authorizer(db->sql, authorize, &ac);
    rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
                            &q->stmt, &tail);
    set_authorizer(L);
    if (rc != SQLITE_OK) {
        rc = dimple__seterr(db, dimple__sqlite_code(rc), "live query: %s",
                            sqlite3_errmsg(db->sql));
        goto out;
    }
    if (!q->stmt) {
        rc = dimple__seterr(db, DIMPLE_EINVAL,
                            "live query: no statement in "
                            "the SQL");
        goto out;
    }
    while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n' ||
                    *tail == '\r' || *tail == ';'))
        tail++;
    if (tail && *tail) {
        rc = dimple__seterr(db, DIMPLE_EINVAL,
                            "live query: one statement only; extra SQL at "
                            "\"%.40s\"",
                            tail);
        goto out;
    }
    if (!sqlite3_stmt_readonly(q->stmt) || sqlite3_column_count(q->stmt) == 0) {
        rc = dimple__seterr(db, DIMPLE_EINVAL,
                            "live query: not a read-only query: %.80s", sql);
        goto out;
    }
    if (ac.oom) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "live query: out of memory");
        goto out;
    }
    if ((rc = bind_params(db, q->stmt, params, n_params)) < 0)
        goto out;
    q->dep_names = calloc(q->deps.n + 1, sizeof *q->dep_names);
    if (!q->dep_names) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "live query: out of memory");
        goto out;
    }
    for (size_t i = 0; i < q->deps.n; i++) {
        const tname *t = &q->deps.v[i];
        size_t len = strlen(t->table) + (t->schema ? strlen(t->schema) : 1) + 2;
        if (!(q->dep_names[i] = malloc(len))) {
            rc = dimple__seterr(db, DIMPLE_ENOMEM, "live query: out of memory");
            goto out;
        }
        snprintf(q->dep_names[i], len, "%s.%s", t->schema ? t->schema : "*",
                 t->table);
    }
    vtab_deps(db, q);
    if (dimple__grow((void **)&L->q, &L->cap_q, L->n_q + 1, sizeof *L->q)) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "live query: out of memory");
        goto out;
    }
    /* The first result: computed now so a failing query fails the open. */
    if (L->n_q == 0) { /* versions were not followed without queries */
        check_exact(L);
        schema_changed(L);
        L->all_dirty = 0;
        L->ddl = 0;
    }
    rc = run_query(q, &q->last);
    if (rc < 0) {
        rc = dimple__seterr(db, rc, "%s", q->errmsg);
        goto out;
    }
    q->have_last = 1;
    q->fire = 1;
    L->work = 1;
    L->q[L->n_q++] = q;
    set_row_hooks(L);
    *out = q;
    q = NULL;
    dimple__ok(db);
    if ((*out)->delivery == DIMPLE_LIVE_SYNC) {
        L->depth++;
        fire(*out);
        L->depth--;
        if (!L->depth) {
            live_run(L, 0); /* writes the callback made */
            compact(L);
        }
    } else {
        signal_fd(L);
    }
    return DIMPLE_OK;
out:
    query_free(q);
    return rc;
}

void dimple_live_close(dimple_live_query *q)
{
    struct dimple_live *L;
    if (!q)
        return;
    L = q->db->live;
    if (q->closed)
        return;
    q->closed = 1;
    if (!L)
        return;
    L->n_closed++;
    if (L->depth == 0)
        compact(L);
}

const char *dimple_live_sql(const dimple_live_query *q)
{
    return q ? q->sql : NULL;
}

size_t dimple_live_dep_count(const dimple_live_query *q)
{
    return q ? q->deps.n : 0;
}

const char *dimple_live_dep(const dimple_live_query *q, size_t i)
{
    return q && i < q->deps.n ? q->dep_names[i] : NULL;
}

uint64_t dimple_live_runs(const dimple_live_query *q)
{
    return q ? q->runs : 0;
}

uint64_t dimple_live_calls(const dimple_live_query *q)
{
    return q ? q->calls : 0;
}
