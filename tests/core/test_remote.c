/*
 * test_remote.c — remote.c: storage access (key checks, request counter,
 * error prefix, put_if_absent emulation), seal/open through a cipher (fail
 * closed), the cipher's attach() store, dimple_remote_list/get and
 * dimple_cipher_identity. Uses two plugins registered in-process.
 */
#include "../test.h"
#include "remote.h"
#include "util.h"

/* ---- tmem: a tiny sorted in-memory storage without put_if_absent ---- */
#define TMEM_MAX 64
typedef struct tmem {
    char *keys[TMEM_MAX];
    dimple_buf vals[TMEM_MAX];
    int n;
    const dimple_host *host;
} tmem;

static int tmem_create(void **self, const dimple_kv *conf,
                       const dimple_host *host)
{
    static const char *const known[] = {NULL};
    tmem *m;
    int rc = dimple_kv_check(host, conf, known);
    if (rc)
        return rc;
    m = calloc(1, sizeof *m);
    if (!m)
        return DIMPLE_ENOMEM;
    m->host = host;
    *self = m;
    return 0;
}

static void tmem_destroy(void *self)
{
    tmem *m = self;
    for (int i = 0; i < m->n; i++) {
        free(m->keys[i]);
        dimple_buf__free(&m->vals[i]);
    }
    free(m);
}

static int tmem_find(tmem *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return i;
    return -1;
}

static int tmem_put(void *self, const char *key, const void *data, size_t len)
{
    tmem *m = self;
    int i = tmem_find(m, key);
    if (strcmp(key, "fail/put") == 0)
        return dimple_errorf(m->host, DIMPLE_EIO, "PUT %s: disk on fire", key);
    if (i < 0) {
        if (m->n == TMEM_MAX)
            return DIMPLE_ENOMEM;
        i = m->n++;
        m->keys[i] = strdup(key);
        memset(&m->vals[i], 0, sizeof m->vals[i]);
    }
    m->vals[i].n = 0;
    return dimple_buf__append(&m->vals[i], data, len);
}

static int tmem_get(void *self, const char *key, const dimple_sink *out)
{
    tmem *m = self;
    int i = tmem_find(m, key);
    if (i < 0)
        return DIMPLE_ENOTFOUND;
    return dimple_sink_write(out, m->vals[i].p, m->vals[i].n);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int tmem_list(void *self, const char *prefix, const char *start_after,
                     unsigned flags, dimple_list_cb cb, void *payload)
{
    tmem *m = self;
    char *sorted[TMEM_MAX];
    (void)flags;
    memcpy(sorted, m->keys, (size_t)m->n * sizeof *sorted);
    qsort(sorted, (size_t)m->n, sizeof *sorted, cmp_keys);
    for (int i = 0; i < m->n; i++) {
        int rc;
        if (strncmp(sorted[i], prefix, strlen(prefix)) != 0)
            continue;
        if (start_after && *start_after && strcmp(sorted[i], start_after) <= 0)
            continue;
        if ((rc = cb(payload, sorted[i])) != 0)
            return rc;
    }
    return 0;
}

static int tmem_remove(void *self, const char *key)
{
    tmem *m = self;
    int i = tmem_find(m, key);
    if (i >= 0) {
        free(m->keys[i]);
        dimple_buf__free(&m->vals[i]);
        m->keys[i] = m->keys[m->n - 1];
        m->vals[i] = m->vals[m->n - 1];
        m->n--;
    }
    return 0;
}

static const dimple_storage_vtable tmem_vt = {.size =
                                                  sizeof(dimple_storage_vtable),
                                              .create = tmem_create,
                                              .destroy = tmem_destroy,
                                              .put = tmem_put,
                                              .get = tmem_get,
                                              .list = tmem_list,
                                              .remove = tmem_remove};
static const dimple_plugin tmem_plugin = {.abi = DIMPLE_ABI,
                                          .size = sizeof(dimple_plugin),
                                          .kind = DIMPLE_KIND_STORAGE,
                                          .name = "tmem",
                                          .version = "1",
                                          .vt.storage = &tmem_vt};

/* ---- txor: "X1" header + bytes xor 0x5a; attach writes keys/marker ---- */
typedef struct txor {
    const dimple_host *host;
    int attached;
} txor;

static int txor_create(void **self, const dimple_kv *conf,
                       const dimple_host *host)
{
    txor *x = calloc(1, sizeof *x);
    (void)conf;
    if (!x)
        return DIMPLE_ENOMEM;
    x->host = host;
    *self = x;
    return 0;
}

static void txor_destroy(void *self)
{
    free(self);
}

static int txor_attach(void *self, const dimple_store *store)
{
    txor *x = self;
    int rc = store->put_if_absent(store->ctx, "keys/marker", "K", 1);
    if (rc < 0 && rc != DIMPLE_EEXISTS)
        return rc;
    x->attached = 1;
    return 0;
}

static int txor_run(void *self, const char *name, const dimple_source *in,
                    const dimple_sink *out, int enc)
{
    txor *x = self;
    unsigned char buf[7];
    ptrdiff_t n;
    int first = 1, rc;
    if (enc && (rc = dimple_sink_write(out, "X1", 2)) < 0)
        return rc;
    while ((n = in->read(in->ctx, buf, sizeof buf)) > 0) {
        size_t off = 0;
        if (!enc && first) {
            if (n < 2 || buf[0] != 'X' || buf[1] != '1')
                return dimple_errorf(x->host, DIMPLE_EAUTH, "%s: not encrypted",
                                     name);
            off = 2;
        }
        first = 0;
        for (ptrdiff_t i = (ptrdiff_t)off; i < n; i++)
            buf[i] ^= 0x5a;
        if ((rc = dimple_sink_write(out, buf + off, (size_t)n - off)) < 0)
            return rc;
    }
    if (!enc && first)
        return DIMPLE_ECORRUPT; /* empty: no header (no message: generic) */
    return n < 0 ? (int)n : 0;
}

static int txor_encrypt(void *self, const char *name, const dimple_source *in,
                        const dimple_sink *out)
{
    return txor_run(self, name, in, out, 1);
}

static int txor_decrypt(void *self, const char *name, const dimple_source *in,
                        const dimple_sink *out)
{
    return txor_run(self, name, in, out, 0);
}

static int txor_identity(void *self, const dimple_sink *out)
{
    (void)self;
    return dimple_sink_write(out, "TXOR-SECRET-1", 13);
}

static const dimple_cipher_vtable txor_vt = {.size =
                                                 sizeof(dimple_cipher_vtable),
                                             .create = txor_create,
                                             .destroy = txor_destroy,
                                             .attach = txor_attach,
                                             .encrypt = txor_encrypt,
                                             .decrypt = txor_decrypt,
                                             .identity = txor_identity};
static const dimple_plugin txor_plugin = {.abi = DIMPLE_ABI,
                                          .size = sizeof(dimple_plugin),
                                          .kind = DIMPLE_KIND_CIPHER,
                                          .name = "txor",
                                          .version = "1",
                                          .vt.cipher = &txor_vt};

static dimple *open_conf(const char *sections)
{
    dimple *db = NULL;
    const char *p =
        write_tmp("r.conf", "[dimple]\ndatabase = r.db\n%s", sections);
    if (dimple_open(&db, p) < 0)
        printf("# open: %s\n", dimple_errmsg(db));
    return db;
}

typedef struct keys {
    char all[512];
    int stop_after;
    int n;
} keys;

static int collect(void *payload, const char *key)
{
    keys *k = payload;
    strncat(k->all, key, sizeof k->all - strlen(k->all) - 2);
    strcat(k->all, ",");
    return ++k->n == k->stop_after ? 7 : 0;
}

static int collect_pub(void *payload, const char *key)
{
    return collect(payload, key);
}

TEST(storage_access)
{
    dimple *db = open_conf("[storage]\nplugin = tmem\n");
    dimple_buf b = {0};
    keys k = {"", 0, 0};
    uint64_t r0;
    CHECK(db && dimple_errcode(db) == DIMPLE_OK);
    r0 = dimple_remote__requests(db);
    CHECK_RC(dimple_remote__put(db, "log/a/2", "two", 3), DIMPLE_OK);
    CHECK_RC(dimple_remote__put(db, "log/a/1", "one", 3), DIMPLE_OK);
    CHECK_RC(dimple_remote__put(db, "dimple.json", "{}", 2), DIMPLE_OK);
    CHECK(dimple_remote__requests(db) == r0 + 3);
    CHECK_RC(dimple_remote__get(db, "log/a/1", &b), DIMPLE_OK);
    CHECK(b.n == 3 && memcmp(b.p, "one", 3) == 0);
    dimple_buf__free(&b);
    CHECK_RC(dimple_remote__list(db, "log/", NULL, 0, collect, &k), DIMPLE_OK);
    CHECK_STR(k.all, "log/a/1,log/a/2,");
    memset(&k, 0, sizeof k);
    CHECK_RC(dimple_remote__list(db, "log/a/", "log/a/1", 0, collect, &k),
             DIMPLE_OK);
    CHECK_STR(k.all, "log/a/2,");
    memset(&k, 0, sizeof k);
    k.stop_after = 1;
    CHECK_RC(dimple_remote__list(db, "", NULL, 0, collect, &k), 7);
    /* absent object */
    CHECK_RC(dimple_remote__get(db, "log/a/9", &b), DIMPLE_ENOTFOUND);
    CHECK_STR(dimple_errmsg(db), "storage tmem: no object 'log/a/9'");
    CHECK(b.p == NULL && b.n == 0);
    /* hostile keys are refused before the plugin sees them, uncounted */
    r0 = dimple_remote__requests(db);
    CHECK_RC(dimple_remote__put(db, "../etc/passwd", "x", 1), DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "invalid key '../etc/passwd'");
    CHECK_RC(dimple_remote__get(db, "/abs", &b), DIMPLE_EINVAL);
    CHECK_RC(dimple_remote__remove(db, "a//b"), DIMPLE_EINVAL);
    CHECK_RC(dimple_remote__put(db, "a\\b", "x", 1), DIMPLE_EINVAL);
    CHECK_RC(dimple_remote__list(db, "../", NULL, 0, collect, &k),
             DIMPLE_EINVAL);
    CHECK(dimple_remote__requests(db) == r0);
    /* the plugin's message, prefixed with role and plugin */
    CHECK_RC(dimple_remote__put(db, "fail/put", "x", 1), DIMPLE_EIO);
    CHECK_STR(dimple_errmsg(db), "storage tmem: PUT fail/put: disk on fire");
    /* put_if_absent emulated (tmem has none) */
    CHECK_RC(dimple_remote__put_if_absent(db, "once", "1", 1), DIMPLE_OK);
    CHECK_RC(dimple_remote__put_if_absent(db, "once", "2", 1), DIMPLE_EEXISTS);
    CHECK_CONTAINS(dimple_errmsg(db), "'once' already exists");
    CHECK_RC(dimple_remote__get(db, "once", &b), DIMPLE_OK);
    CHECK(b.n == 1 && b.p[0] == '1');
    dimple_buf__free(&b);
    CHECK_RC(dimple_remote__remove(db, "once"), DIMPLE_OK);
    CHECK_RC(dimple_remote__remove(db, "once"), DIMPLE_OK);
    CHECK_RC(dimple_remote__get(db, "once", &b), DIMPLE_ENOTFOUND);
    /* the public list */
    memset(&k, 0, sizeof k);
    CHECK_RC(dimple_remote_list(db, "log", collect_pub, &k), DIMPLE_OK);
    CHECK_STR(k.all, "log/a/1,log/a/2,");
    /* no cipher: seal/open copy */
    CHECK_RC(dimple_remote__seal(db, "x", "abc", 3, &b), DIMPLE_OK);
    CHECK(b.n == 3 && memcmp(b.p, "abc", 3) == 0);
    dimple_buf__free(&b);
    {
        char *id = (char *)1;
        CHECK_RC(dimple_cipher_identity(&id, db), DIMPLE_ENOTFOUND);
        CHECK(id == NULL);
        CHECK_CONTAINS(dimple_errmsg(db), "no [cipher] configured");
    }
    dimple_close(db);
}

TEST(no_storage)
{
    dimple *db = open_conf("");
    dimple_buf b = {0};
    CHECK_RC(dimple_remote__put(db, "a", "x", 1), DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(db), "no [storage] configured");
    CHECK_RC(dimple_remote__get(db, "a", &b), DIMPLE_ECONFIG);
    dimple_close(db);
}

TEST(cipher)
{
    dimple *db = open_conf("[storage]\nplugin = tmem\n"
                           "[cipher]\nplugin = txor\n");
    dimple_buf sealed = {0}, plain = {0};
    void *out = NULL;
    size_t len = 0;
    char *id = NULL;
    const char *msg = "hello, sealed world";
    CHECK(db && dimple_errcode(db) == DIMPLE_OK);
    /* attach() ran with a working store */
    CHECK_RC(dimple_remote__get(db, "keys/marker", &plain), DIMPLE_OK);
    CHECK(plain.n == 1 && plain.p[0] == 'K');
    dimple_buf__free(&plain);
    CHECK_RC(dimple_remote__seal(db, "obj", msg, strlen(msg), &sealed),
             DIMPLE_OK);
    CHECK(sealed.n == strlen(msg) + 2 && memcmp(sealed.p, "X1", 2) == 0);
    CHECK_RC(dimple_remote__open(db, "obj", sealed.p, sealed.n, &plain),
             DIMPLE_OK);
    CHECK(plain.n == strlen(msg) && memcmp(plain.p, msg, plain.n) == 0);
    dimple_buf__free(&plain);
    /* stored sealed: remote_get decrypts, raw does not */
    CHECK_RC(dimple_remote__put(db, "obj", sealed.p, sealed.n), DIMPLE_OK);
    CHECK_RC(dimple_remote_get(&out, &len, db, "obj", 0), DIMPLE_OK);
    CHECK(len == strlen(msg) && memcmp(out, msg, len) == 0);
    dimple_free(out);
    CHECK_RC(dimple_remote_get(&out, &len, db, "obj", 1), DIMPLE_OK);
    CHECK(len == sealed.n && memcmp(out, sealed.p, len) == 0);
    dimple_free(out);
    dimple_buf__free(&sealed);
    /* fail closed: plaintext is refused, nothing returned */
    CHECK_RC(dimple_remote__put(db, "plain", "hello", 5), DIMPLE_OK);
    out = (void *)1;
    CHECK_RC(dimple_remote_get(&out, &len, db, "plain", 0), DIMPLE_EAUTH);
    CHECK(out == NULL && len == 0);
    CHECK_STR(dimple_errmsg(db), "cipher txor: plain: not encrypted");
    CHECK_RC(dimple_remote__open(db, "e", "", 0, &plain), DIMPLE_ECORRUPT);
    CHECK(plain.p == NULL);
    CHECK_STR(dimple_errmsg(db), "cipher txor: decrypt 'e' failed "
                                 "(DIMPLE_ECORRUPT)");
    /* the public put seals: stored bytes are not the plaintext */
    CHECK_RC(dimple_remote_put(db, "pub/x", "secret", 6), DIMPLE_OK);
    CHECK_RC(dimple_remote__get(db, "pub/x", &plain), DIMPLE_OK);
    CHECK(plain.n == 8 && memcmp(plain.p, "X1", 2) == 0 &&
          memcmp(plain.p + 2, "secret", 6) != 0);
    dimple_buf__free(&plain);
    CHECK_RC(dimple_remote_get(&out, &len, db, "pub/x", 0), DIMPLE_OK);
    CHECK(len == 6 && memcmp(out, "secret", 6) == 0);
    dimple_free(out);
    CHECK_RC(dimple_remote_put(db, "../x", "s", 1), DIMPLE_EINVAL);
    /* identity */
    CHECK_RC(dimple_cipher_identity(&id, db), DIMPLE_OK);
    CHECK_STR(id, "TXOR-SECRET-1");
    dimple_free(id);
    dimple_close(db);
}

int main(void)
{
    CHECK_RC(dimple_plugin_register(&tmem_plugin), DIMPLE_OK);
    CHECK_RC(dimple_plugin_register(&txor_plugin), DIMPLE_OK);
    RUN(storage_access);
    RUN(no_storage);
    RUN(cipher);
    tmp_cleanup();
    return test_done();
}
