/*
 * remote.c — the core's access to the configured storage and cipher (see
 * remote.h), and the public dimple_remote_list/get and
 * dimple_cipher_identity.
 */
#include "remote.h"

#include "loader.h"

#include <stdlib.h>
#include <string.h>

uint64_t dimple_remote__requests(const dimple *db)
{
    return db ? db->remote_requests : 0;
}

/* Common start of every storage call. */
static int start(dimple *db, const char *key, const char *what)
{
    if (!db->storage)
        return dimple__seterr(db, DIMPLE_ECONFIG, "%s: no [storage] configured",
                              what);
    if (key && !dimple_key_valid(key))
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "storage %s: %s: invalid key '%s'",
                              db->storage->plugin->name, what, key);
    dimple_loader__begin(db);
    db->remote_requests++;
    return dimple__ok(db); /* so a failure can tell who set the error */
}

/* A failing plugin call: keep its message (it names the key) or say what
 * failed on which key. */
static int failed(dimple *db, int rc, const char *what, const char *key)
{
    char w[512];
    if (rc >= 0)
        return rc;
    snprintf(w, sizeof w, "%s '%s'", what, key ? key : "");
    return dimple_loader__fail(db->storage, rc, w);
}

int dimple_remote__put(dimple *db, const char *key, const void *data,
                       size_t len)
{
    int rc = start(db, key, "put");
    if (rc < 0)
        return rc;
    rc = db->storage->vt.storage.put(db->storage->self, key, data, len);
    return rc < 0 ? failed(db, rc, "put", key) : dimple__ok(db);
}

int dimple_remote__put_if_absent(dimple *db, const char *key, const void *data,
                                 size_t len)
{
    int rc = start(db, key, "put_if_absent");
    dimple_buf tmp = {0};
    dimple_sink sink;
    if (rc < 0)
        return rc;
    if (db->storage->vt.storage.put_if_absent) {
        rc = db->storage->vt.storage.put_if_absent(db->storage->self, key, data,
                                                   len);
        if (rc == DIMPLE_EEXISTS)
            return dimple__seterr(db, rc, "storage %s: '%s' already exists",
                                  db->storage->plugin->name, key);
        /* DIMPLE_EPLUGIN: the plugin has the slot but this server cannot
         * do it (an S3 server that ignores If-None-Match): emulate. */
        if (rc != DIMPLE_EPLUGIN)
            return rc < 0 ? failed(db, rc, "put_if_absent", key)
                          : dimple__ok(db);
        dimple_logf(&db->storage->host, DIMPLE_LOG_INFO,
                    "put_if_absent %s: not supported here, emulated", key);
    }
    /* Emulated: not atomic against a concurrent writer of the same key,
     * which the remote layout avoids (one writer per folder). */
    sink = dimple_buf__sink(&tmp);
    rc = db->storage->vt.storage.get(db->storage->self, key, &sink);
    dimple_buf__free(&tmp);
    if (rc == DIMPLE_OK)
        return dimple__seterr(db, DIMPLE_EEXISTS,
                              "storage %s: '%s' already exists",
                              db->storage->plugin->name, key);
    if (rc != DIMPLE_ENOTFOUND)
        return failed(db, rc, "get", key);
    return dimple_remote__put(db, key, data, len);
}

int dimple_remote__get(dimple *db, const char *key, dimple_buf *out)
{
    int rc = start(db, key, "get");
    dimple_sink sink;
    if (rc < 0)
        return rc;
    out->n = 0;
    sink = dimple_buf__sink(out);
    rc = db->storage->vt.storage.get(db->storage->self, key, &sink);
    if (rc < 0) {
        dimple_buf__free(out); /* nothing partial */
        if (rc == DIMPLE_ENOTFOUND && !db->plugin_err)
            return dimple__seterr(db, rc, "storage %s: no object '%s'",
                                  db->storage->plugin->name, key);
        return failed(db, rc, "get", key);
    }
    return dimple__ok(db);
}

static int prefix_valid(const char *prefix)
{
    char tmp[4096];
    size_t n;
    if (!prefix || !*prefix)
        return 1;
    n = strlen(prefix);
    if (n >= sizeof tmp)
        return 0;
    memcpy(tmp, prefix, n + 1);
    if (tmp[n - 1] == '/')
        tmp[--n] = '\0';
    return n > 0 && dimple_key_valid(tmp);
}

int dimple_remote__list(dimple *db, const char *prefix, const char *start_after,
                        unsigned flags, dimple_list_cb cb, void *payload)
{
    int rc;
    if (db->storage && !prefix_valid(prefix))
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "storage %s: list: invalid prefix '%s'",
                              db->storage->plugin->name, prefix);
    if ((rc = start(db, NULL, "list")) < 0)
        return rc;
    rc = db->storage->vt.storage.list(db->storage->self, prefix ? prefix : "",
                                      start_after, flags, cb, payload);
    if (rc < 0 && db->errcode < 0 && !db->plugin_err) {
        db->errcode = rc; /* the callback set its own error on db */
        return rc;
    }
    if (rc < 0)
        return failed(db, rc, "list", prefix);
    if (rc > 0)
        return rc; /* stopped by the callback */
    return dimple__ok(db);
}

int dimple_remote__remove(dimple *db, const char *key)
{
    int rc = start(db, key, "remove");
    if (rc < 0)
        return rc;
    rc = db->storage->vt.storage.remove(db->storage->self, key);
    return rc < 0 ? failed(db, rc, "remove", key) : dimple__ok(db);
}

/* ---------------------------------------------------------------- cipher */

typedef struct mem_source {
    const unsigned char *p;
    size_t n, off;
} mem_source;

static ptrdiff_t mem_read(void *ctx, void *buf, size_t n)
{
    mem_source *s = ctx;
    size_t left = s->n - s->off;
    if (n > left)
        n = left;
    if (n > PTRDIFF_MAX)
        n = PTRDIFF_MAX;
    memcpy(buf, s->p + s->off, n);
    s->off += n;
    return (ptrdiff_t)n;
}

static int crypt(dimple *db, int enc, const char *name, const void *in,
                 size_t len, dimple_buf *out)
{
    mem_source ms = {in, len, 0};
    dimple_source src = {mem_read, &ms};
    dimple_sink sink;
    int rc;
    out->n = 0;
    if (!db->cipher) /* no cipher: the bytes pass as they are */
        return dimple_buf__append(out, in, len) < 0
                   ? dimple__seterr(db, DIMPLE_ENOMEM, "out of memory")
                   : dimple__ok(db);
    sink = dimple_buf__sink(out);
    dimple_loader__begin(db);
    rc =
        enc ? db->cipher->vt.cipher.encrypt(db->cipher->self, name, &src, &sink)
            : db->cipher->vt.cipher.decrypt(db->cipher->self, name, &src,
                                            &sink);
    if (rc < 0) {
        char w[512];
        dimple_buf__free(out); /* fail closed: nothing partial */
        snprintf(w, sizeof w, "%s '%s'", enc ? "encrypt" : "decrypt",
                 name ? name : "");
        return dimple_loader__fail(db->cipher, rc, w);
    }
    if (!out->p) {
        /* empty result: keep p non-NULL for callers that test it */
        out->p = malloc(1);
        if (!out->p)
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        out->p[0] = 0;
        out->cap = 1;
    }
    return dimple__ok(db);
}

int dimple_remote__seal(dimple *db, const char *name, const void *plain,
                        size_t len, dimple_buf *out)
{
    return crypt(db, 1, name, plain, len, out);
}

int dimple_remote__open(dimple *db, const char *name, const void *sealed,
                        size_t len, dimple_buf *out)
{
    return crypt(db, 0, name, sealed, len, out);
}

/* ------------------------------------------------ the cipher's store view */

static int st_put(void *ctx, const char *key, const void *data, size_t len)
{
    return dimple_remote__put(ctx, key, data, len);
}

static int st_put_if_absent(void *ctx, const char *key, const void *data,
                            size_t len)
{
    return dimple_remote__put_if_absent(ctx, key, data, len);
}

static int st_get(void *ctx, const char *key, const dimple_sink *out)
{
    dimple *db = ctx;
    int rc = start(db, key, "get");
    if (rc < 0)
        return rc;
    rc = db->storage->vt.storage.get(db->storage->self, key, out);
    return rc < 0 ? failed(db, rc, "get", key) : dimple__ok(db);
}

static int st_list(void *ctx, const char *prefix, const char *start_after,
                   unsigned flags, dimple_list_cb cb, void *payload)
{
    return dimple_remote__list(ctx, prefix, start_after, flags, cb, payload);
}

static void store_view(dimple *db, dimple_store *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->ctx = db;
    out->put = st_put;
    out->put_if_absent = st_put_if_absent;
    out->get = st_get;
    out->list = st_list;
}

int dimple_remote__attach(dimple *db)
{
    int rc;
    if (!db->cipher || !db->storage || !db->cipher->vt.cipher.attach)
        return DIMPLE_OK;
    store_view(db, &db->cipher->store);
    dimple_loader__begin(db);
    rc = db->cipher->vt.cipher.attach(db->cipher->self, &db->cipher->store);
    if (rc < 0)
        return dimple_loader__fail(db->cipher, rc, "attach to storage");
    return DIMPLE_OK;
}

/* ---------------------------------------------------------------- public */

int dimple_remote_list(dimple *db, const char *prefix, dimple_key_cb cb,
                       void *payload)
{
    if (!db)
        return DIMPLE_EINVAL;
    if (!cb)
        return dimple__seterr(db, DIMPLE_EINVAL, "remote list: no callback");
    /* dimple_key_cb and the plugin ABI's dimple_list_cb are the same
     * type (payload first), so the app's callback goes straight through */
    return dimple_remote__list(db, prefix, NULL, 0, cb, payload);
}

int dimple_remote_get(void **out, size_t *out_len, dimple *db, const char *key,
                      int raw)
{
    dimple_buf sealed = {0}, plain = {0};
    int rc;
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!db)
        return DIMPLE_EINVAL;
    if (!out || !out_len)
        return dimple__seterr(db, DIMPLE_EINVAL, "remote get: no output");
    if ((rc = dimple_remote__get(db, key, &sealed)) < 0)
        goto out;
    if (raw || !db->cipher) {
        plain = sealed;
        memset(&sealed, 0, sizeof sealed);
    } else if ((rc = dimple_remote__open(db, key, sealed.p, sealed.n, &plain)) <
               0) {
        goto out;
    }
    if (!plain.p && !(plain.p = malloc(1))) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    *out = plain.p;
    *out_len = plain.n;
    memset(&plain, 0, sizeof plain);
    rc = dimple__ok(db);
out:
    dimple_buf__free(&sealed);
    dimple_buf__free(&plain);
    return rc;
}

int dimple_remote_put(dimple *db, const char *key, const void *data, size_t len)
{
    dimple_buf sealed = {0};
    int rc;
    if (!db)
        return DIMPLE_EINVAL;
    if (!data && len)
        return dimple__seterr(db, DIMPLE_EINVAL, "remote put: no data");
    if (!dimple_key_valid(key))
        return dimple__seterr(db, DIMPLE_EINVAL, "remote put: invalid key '%s'",
                              key ? key : "");
    if ((rc = dimple_remote__seal(db, key, data ? data : "", len, &sealed)) < 0)
        return rc;
    rc = dimple_remote__put(db, key, sealed.p, sealed.n);
    dimple_buf__free(&sealed);
    return rc;
}

int dimple_cipher_identity(char **out, dimple *db)
{
    dimple_buf b = {0};
    dimple_sink sink = dimple_buf__sink(&b);
    int rc;
    if (out)
        *out = NULL;
    if (!db)
        return DIMPLE_EINVAL;
    if (!out)
        return dimple__seterr(db, DIMPLE_EINVAL, "identity: no output");
    if (!db->cipher)
        return dimple__seterr(db, DIMPLE_ENOTFOUND,
                              "identity: no [cipher] configured");
    if (!db->cipher->vt.cipher.identity)
        return dimple__seterr(db, DIMPLE_ENOTFOUND,
                              "cipher %s: has no identity to show",
                              db->cipher->plugin->name);
    dimple_loader__begin(db);
    rc = db->cipher->vt.cipher.identity(db->cipher->self, &sink);
    if (rc < 0) {
        dimple_buf__free(&b);
        return dimple_loader__fail(db->cipher, rc, "identity");
    }
    if (!b.p && !(b.p = calloc(1, 1)))
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    *out = (char *)b.p; /* NUL-terminated by dimple_buf__append */
    return dimple__ok(db);
}
