/* dimple-sqlite: objects as rows kv(k, v) of one SQLite file (path = ...).
 * Keys are TEXT, which SQLite compares by memcmp: the byte order list needs. */
#include <dimple/plugin.h>
#include <sqlite3.h>

typedef struct sq {
    sqlite3 *db;
    const dimple_host *host;
} sq;

static void sq_destroy(void *self)
{
    sqlite3_close(((sq *)self)->db);
    free(self);
}

static int sq_create(void **self, const dimple_kv *conf, const dimple_host *h)
{
    static const char *const known[] = {"path", NULL};
    char f[4096];
    int rc;
    sq *s;
    if ((rc = dimple_kv_check(h, conf, known)) ||
        (rc = dimple_conf_file(h, conf, "path", NULL, f, sizeof f)))
        return rc;
    if (!(*self = s = calloc(1, sizeof *s)))
        return dimple_errorf(h, DIMPLE_ENOMEM, "out of memory");
    s->host = h;
    if (sqlite3_open(f, &s->db) || sqlite3_busy_timeout(s->db, 10000) ||
        sqlite3_exec(s->db, "CREATE TABLE IF NOT EXISTS kv(k PRIMARY KEY, v)",
                     0, 0, 0)) {
        rc = dimple_errorf(h, DIMPLE_EIO, "%s: %s", f, sqlite3_errmsg(s->db));
        sq_destroy(s);
    }
    return rc;
}

/* Run sql on ?1 = name (a key, or list's prefix), ?2 = b (n bytes, if b). */
static int run(sq *s, const char *op, const char *name, const char *sql,
               const void *b, size_t n, const dimple_sink *out, void *l)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, r, rows = 0;
    if (!(l ? dimple_prefix_valid(name) : dimple_key_valid(name)))
        return dimple_errorf(s->host, DIMPLE_EINVAL, "%s: bad key", op);
    if (!(r = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) &&
        !(r = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) &&
        !(r = b ? sqlite3_bind_blob64(st, 2, b, n, SQLITE_STATIC) : 0))
        while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW && ++rows)
            rc = l ? dimple_lister_add(l, (void *)sqlite3_column_text(st, 0))
                   : dimple_sink_write(out, sqlite3_column_text(st, 0),
                                       sqlite3_column_bytes(st, 0));
    if (!rc && r == SQLITE_DONE && out && !rows)
        rc = dimple_errorf(s->host, DIMPLE_ENOTFOUND, "get '%s': none", name);
    else if (!rc && r != SQLITE_DONE)
        rc = dimple_errorf(s->host,
                           r == SQLITE_CONSTRAINT ? DIMPLE_EEXISTS : DIMPLE_EIO,
                           "%s '%s': %s", op, name, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return rc;
}

static int put(void *self, const char *key, const void *data, size_t n)
{
    return run(self, "put", key, "REPLACE INTO kv VALUES(?,?)", data, n, 0, 0);
}

static int put_if_absent(void *self, const char *k, const void *data, size_t n)
{
    return run(self, "put_if_absent", k, "INSERT INTO kv VALUES(?,?)", data, n,
               0, 0);
}

static int remove_key(void *self, const char *key)
{
    return run(self, "remove", key, "DELETE FROM kv WHERE k = ?1", 0, 0, 0, 0);
}

static int get(void *self, const char *key, const dimple_sink *out)
{
    return run(self, "get", key, "SELECT v FROM kv WHERE k = ?1", 0, 0, out, 0);
}

static int list(void *self, const char *prefix, const char *after,
                unsigned flags, dimple_list_cb cb, void *payload)
{
    dimple_lister l = dimple_lister_begin(((sq *)self)->host, prefix, after,
                                          flags, cb, payload);
    return run(self, "list", prefix,
               "SELECT k FROM kv WHERE k > CAST(?2 AS TEXT) AND "
               "substr(k, 1, length(?1)) = ?1 ORDER BY k",
               after ? after : "", after ? strlen(after) : 0, NULL, &l);
}

DIMPLE_STORAGE_PLUGIN("sqlite", "1.0.0", "objects in one SQLite file",
                      .create = sq_create, .destroy = sq_destroy, .put = put,
                      .get = get, .list = list, .remove = remove_key,
                      .put_if_absent = put_if_absent)
