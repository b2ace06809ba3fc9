/*
 * test_store.c — dimple-age through its cipher vtable, with a dimple_store
 * backed by an in-memory map: configuration, the key store (first key,
 * reuse, one scrypt per process, two devices racing to create the first
 * key), wrong passphrase, fail-closed decryption, mode = scrypt, X25519-only
 * set-ups and identity().
 */
#include "age_internal.h"
#include "test.h"

#include <fcntl.h>
#include <unistd.h>

#define PASS "correct horse battery staple"
#define MARKER "PLAINTEXT-MARKER-7f3a"

static const dimple_cipher_vtable *vt;

/* ------------------------------------------------------ in-memory store */

typedef struct obj {
    char *key;
    unsigned char *data;
    size_t len;
} obj;

typedef struct mem {
    obj *o;
    size_t n;
} mem;

/* One device's view of the store: hide_keys makes the next listings of
 * keys/ come back empty, as if they ran before another device's put. */
typedef struct view {
    mem *m;
    int hide_keys;
    int gets;
} view;

static obj *mem_find(mem *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->o[i].key, key))
            return &m->o[i];
    return NULL;
}

static int st_put(void *ctx, const char *key, const void *data, size_t len)
{
    view *v = ctx;
    obj *o = mem_find(v->m, key);
    if (!o) {
        v->m->o = realloc(v->m->o, (v->m->n + 1) * sizeof *o);
        o = &v->m->o[v->m->n++];
        o->key = strdup(key);
        o->data = NULL;
    }
    free(o->data);
    o->data = malloc(len ? len : 1);
    memcpy(o->data, data, len);
    o->len = len;
    return 0;
}

static int st_put_if_absent(void *ctx, const char *key, const void *data,
                            size_t len)
{
    view *v = ctx;
    if (mem_find(v->m, key))
        return DIMPLE_EEXISTS;
    return st_put(ctx, key, data, len);
}

static int st_get(void *ctx, const char *key, const dimple_sink *out)
{
    view *v = ctx;
    obj *o = mem_find(v->m, key);
    v->gets++;
    if (!o)
        return DIMPLE_ENOTFOUND;
    return dimple_sink_write(out, o->data, o->len);
}

static int cmp_obj(const void *a, const void *b)
{
    return strcmp(((const obj *)a)->key, ((const obj *)b)->key);
}

static int st_list(void *ctx, const char *prefix, const char *start_after,
                   unsigned flags, dimple_list_cb cb, void *payload)
{
    view *v = ctx;
    (void)flags;
    if (!strncmp(prefix, "keys/", 5) && v->hide_keys > 0) {
        v->hide_keys--;
        return 0;
    }
    if (v->m->n > 1)
        qsort(v->m->o, v->m->n, sizeof *v->m->o, cmp_obj);
    for (size_t i = 0; i < v->m->n; i++) {
        const char *k = v->m->o[i].key;
        if (strncmp(k, prefix, strlen(prefix)))
            continue;
        if (start_after && *start_after && strcmp(k, start_after) <= 0)
            continue;
        int rc = cb(payload, k);
        if (rc)
            return rc;
    }
    return 0;
}

static void mem_free(mem *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->o[i].key);
        free(m->o[i].data);
    }
    free(m->o);
    m->o = NULL;
    m->n = 0;
}

static size_t count_prefix(mem *m, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += !strncmp(m->o[i].key, prefix, strlen(prefix));
    return n;
}

/* ------------------------------------------------------------- devices */

static char last_msg[2048];
static int secret_leaked;
static const char *secret_watch[4] = {PASS, "AGE-SECRET-KEY-1", "wrong pass 1",
                                      NULL};

static void host_error(void *ctx, int code, const char *msg)
{
    (void)ctx;
    (void)code;
    snprintf(last_msg, sizeof last_msg, "%s", msg);
    for (int i = 0; secret_watch[i]; i++)
        if (strstr(msg, secret_watch[i]))
            secret_leaked = 1;
}

static dimple_host host = {sizeof(dimple_host), NULL,    host_error, NULL,
                           "test.conf",         "cipher"};

typedef struct device {
    void *self;
    view v;
    dimple_store st;
} device;

static int dev_open(device *d, mem *m, const dimple_kv *conf)
{
    memset(d, 0, sizeof *d);
    d->v.m = m;
    d->st.size = sizeof d->st;
    d->st.ctx = &d->v;
    d->st.put = st_put;
    d->st.put_if_absent = st_put_if_absent;
    d->st.get = st_get;
    d->st.list = st_list;
    int rc = vt->create(&d->self, conf, &host);
    if (rc == 0 && m)
        rc = vt->attach(d->self, &d->st);
    return rc;
}

static int dev_open_pass(device *d, mem *m, const char *pass)
{
    dimple_kv conf[] = {
        {"passphrase", pass, 3}, {"work_factor", "10", 4}, {NULL, NULL, 0}};
    return dev_open(d, m, conf);
}

static void dev_close(device *d)
{
    vt->destroy(d->self);
    d->self = NULL;
}

static int enc(device *d, const char *name, const char *text)
{
    age_buf out = {0};
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, text, strlen(text));
    dimple_sink sink = age_buf_sink(&out);
    int rc = vt->encrypt(d->self, name, &src, &sink);
    if (!rc)
        rc = st_put(&d->v, name, out.p, out.n);
    age_buf_free(&out);
    return rc;
}

/* Decrypt object name; on success *text is malloc'd and NUL-terminated. */
static int dec(device *d, const char *name, char **text)
{
    obj *o = mem_find(d->v.m, name);
    age_buf out = {0};
    age_mem_source ms;
    if (!o)
        return DIMPLE_ENOTFOUND;
    dimple_source src = age_mem_source_make(&ms, o->data, o->len);
    dimple_sink sink = age_buf_sink(&out);
    int rc = vt->decrypt(d->self, name, &src, &sink);
    if (!rc && text) {
        *text = calloc(1, out.n + 1);
        memcpy(*text, out.p, out.n);
    }
    age_buf_free(&out);
    return rc;
}

static int dec_is(device *d, const char *name, const char *want)
{
    char *got = NULL;
    int ok = dec(d, name, &got) == 0 && got && !strcmp(got, want);
    free(got);
    return ok;
}

/* --------------------------------------------------------------- tests */

TEST(config)
{
    device d;
    dimple_kv unknown[] = {
        {"passphrase", PASS, 3}, {"pasphrase", "x", 7}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, unknown), DIMPLE_ECONFIG);
    CHECK_CONTAINS(last_msg, "test.conf:7: unknown key 'pasphrase'");
    dimple_kv wf[] = {
        {"passphrase", PASS, 3}, {"work_factor", "23", 5}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, wf), DIMPLE_ECONFIG);
    CHECK_CONTAINS(last_msg, "test.conf:5: work_factor");
    dimple_kv wf2[] = {
        {"passphrase", PASS, 3}, {"work_factor", "18x", 5}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, wf2), DIMPLE_ECONFIG);
    dimple_kv mode[] = {
        {"passphrase", PASS, 3}, {"mode", "fast", 9}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, mode), DIMPLE_ECONFIG);
    CHECK_CONTAINS(last_msg, "test.conf:9: mode must be identity or scrypt");
    dimple_kv none[] = {{"work_factor", "18", 2}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, none), DIMPLE_ECONFIG);
    dimple_kv both[] = {
        {"passphrase", PASS, 3}, {"passphrase_file", "/x", 4}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, both), DIMPLE_ECONFIG);
    dimple_kv empty[] = {{"passphrase", "", 3}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, empty), DIMPLE_ECONFIG);
    dimple_kv mix[] = {
        {"passphrase", PASS, 3},
        {"mode", "scrypt", 4},
        {"recipients",
         "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", 5},
        {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, mix), DIMPLE_ECONFIG);
    dimple_kv badr[] = {{"recipients", "age1notarecipient", 6},
                        {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, badr), DIMPLE_ECONFIG);
    CHECK_CONTAINS(last_msg, "test.conf:6: recipients: 'age1notarecipient'");
    dimple_kv armor[] = {
        {"passphrase", PASS, 3}, {"armor", "maybe", 8}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, armor), DIMPLE_ECONFIG);
    dimple_kv pf[] = {{"passphrase_file", "/nonexistent/pass", 2},
                      {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, pf), DIMPLE_ECONFIG);
    CHECK_CONTAINS(last_msg, "test.conf:2: cannot read passphrase_file");
    /* Identity mode without a storage: a clear error, not plaintext. */
    dimple_kv ok[] = {{"passphrase", PASS, 3}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&d, NULL, ok), DIMPLE_OK);
    {
        age_buf out = {0};
        age_mem_source ms;
        dimple_source src = age_mem_source_make(&ms, "x", 1);
        dimple_sink sink = age_buf_sink(&out);
        CHECK_RC(vt->encrypt(d.self, "log/a/1", &src, &sink), DIMPLE_ECONFIG);
        CHECK_CONTAINS(last_msg, "no storage is configured");
        CHECK(out.n == 0);
        age_buf_free(&out);
    }
    dev_close(&d);
    CHECK(!secret_leaked);
}

TEST(first_key_and_reuse)
{
    mem m = {0};
    device a, b;
    CHECK_RC(dev_open_pass(&a, &m, PASS), DIMPLE_OK);
    uint64_t s0 = age_scrypt_count();
    CHECK_RC(enc(&a, "log/a/0001", "hello " MARKER), DIMPLE_OK);
    CHECK(count_prefix(&m, "keys/") == 1);
    CHECK(age_scrypt_count() - s0 == 1); /* the key file's encryption */
    for (int i = 2; i <= 50; i++) {
        char name[32];
        snprintf(name, sizeof name, "log/a/%04d", i);
        enc(&a, name, MARKER);
    }
    CHECK(age_scrypt_count() - s0 == 1);
    CHECK(dec_is(&a, "log/a/0001", "hello " MARKER));
    /* Key file name: keys/<uuid7>.age, a standard scrypt age file. */
    obj *k = NULL;
    for (size_t i = 0; i < m.n; i++)
        if (!strncmp(m.o[i].key, "keys/", 5))
            k = &m.o[i];
    CHECK(k && strlen(k->key) == 5 + 36 + 4 && k->key[5 + 14] == '7');
    CHECK(k && k->len > 30 &&
          !memcmp(k->data, "age-encryption.org/v1\n-> scrypt ", 32));
    /* A second process: opens the existing key, creates none. */
    CHECK_RC(dev_open_pass(&b, &m, PASS), DIMPLE_OK);
    s0 = age_scrypt_count();
    CHECK(dec_is(&b, "log/a/0001", "hello " MARKER));
    CHECK_RC(enc(&b, "log/b/0001", "from b"), DIMPLE_OK);
    CHECK(dec_is(&a, "log/b/0001", "from b"));
    CHECK(count_prefix(&m, "keys/") == 1);
    CHECK(age_scrypt_count() - s0 == 1);
    /* Fail closed: no plaintext in any stored byte. */
    int clean = 1;
    for (size_t i = 0; i < m.n; i++)
        clean &= !memmem(m.o[i].data, m.o[i].len, MARKER, strlen(MARKER)) &&
                 !memmem(m.o[i].data, m.o[i].len, "AGE-SECRET-KEY", 14) &&
                 !memmem(m.o[i].data, m.o[i].len, "from b", 6);
    CHECK(clean);
    dev_close(&a);
    dev_close(&b);
    mem_free(&m);
}

TEST(one_scrypt_for_1000_objects)
{
    mem m = {0};
    device w, r;
    CHECK_RC(dev_open_pass(&w, &m, PASS), DIMPLE_OK);
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "log/w/%05d", i);
        enc(&w, name, name);
    }
    dev_close(&w);
    CHECK_RC(dev_open_pass(&r, &m, PASS), DIMPLE_OK);
    uint64_t s0 = age_scrypt_count();
    int all = 1;
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "log/w/%05d", i);
        all &= dec_is(&r, name, name);
    }
    uint64_t used = age_scrypt_count() - s0;
    printf("# scrypt derivations while decrypting 1000 objects: %llu\n",
           (unsigned long long)used);
    CHECK(all);
    CHECK(used == 1);
    /* identity() reports the count too (what `dimple identity` prints). */
    age_buf id = {0};
    dimple_sink sink = age_buf_sink(&id);
    CHECK_RC(vt->identity(r.self, &sink), DIMPLE_OK);
    age_buf_add(&id, "", 1);
    CHECK_CONTAINS((char *)id.p, "# scrypt derivations in this process: ");
    age_buf_free(&id);
    dev_close(&r);
    mem_free(&m);
}

/* Two devices find keys/ empty at the same time and both create a key. */
static void race(int hide, int *ok_all, uint64_t *fresh_scrypts)
{
    mem m = {0};
    device a, b, c;
    dev_open_pass(&a, &m, PASS);
    dev_open_pass(&b, &m, PASS);
    a.v.hide_keys = hide;
    b.v.hide_keys = hide;
#define STEP(x)                                                                \
    do {                                                                       \
        if (!(x)) {                                                            \
            printf("#   race(%d) step failed: %s (%s)\n", hide, #x, last_msg); \
            ok = 0;                                                            \
        }                                                                      \
    } while (0)
    int ok = 1;
    STEP(enc(&a, "log/a/1", "a1") == 0);
    STEP(enc(&b, "log/b/1", "b1") == 0);
    STEP(count_prefix(&m, "keys/") == 2);
    STEP(enc(&a, "log/a/2", "a2") == 0);
    STEP(enc(&b, "log/b/2", "b2") == 0);
    /* Each reads everything, the other's first objects included. */
    STEP(dec_is(&a, "log/b/1", "b1") && dec_is(&a, "log/b/2", "b2"));
    STEP(dec_is(&b, "log/a/1", "a1") && dec_is(&b, "log/a/2", "a2"));
    /* A third device, later, reads everything too. */
    dev_open_pass(&c, &m, PASS);
    uint64_t s0 = age_scrypt_count();
    STEP(dec_is(&c, "log/a/1", "a1") && dec_is(&c, "log/b/1", "b1") &&
         dec_is(&c, "log/a/2", "a2") && dec_is(&c, "log/b/2", "b2"));
    *fresh_scrypts = age_scrypt_count() - s0;
    /* New writes after the race: a fresh process needs only the lowest
     * key (convergence), so one scrypt. */
    device d, e;
    dev_open_pass(&d, &m, PASS);
    STEP(enc(&d, "log/d/1", "d1") == 0);
    STEP(count_prefix(&m, "keys/") == 2);
    dev_open_pass(&e, &m, PASS);
    s0 = age_scrypt_count();
    STEP(dec_is(&e, "log/d/1", "d1"));
    STEP(age_scrypt_count() - s0 == 1);
#undef STEP
    *ok_all = ok;
    dev_close(&a);
    dev_close(&b);
    dev_close(&c);
    dev_close(&d);
    dev_close(&e);
    mem_free(&m);
}

TEST(two_devices_race)
{
    int ok;
    uint64_t fresh;
    /* Each device's re-list after its put sees the other's key (or one of
     * them does: puts are ordered). */
    race(1, &ok, &fresh);
    CHECK(ok);
    CHECK(fresh <= 2);
    /* Worst case: neither sees the other until later; readers unlock the
     * other key file on demand. */
    race(2, &ok, &fresh);
    CHECK(ok);
    CHECK(fresh == 2);
}

TEST(wrong_passphrase)
{
    mem m = {0};
    device a, bad;
    dev_open_pass(&a, &m, PASS);
    CHECK_RC(enc(&a, "log/a/1", "secret"), DIMPLE_OK);
    dev_open_pass(&bad, &m, "wrong pass 1");
    char *text = NULL;
    uint64_t s0 = age_scrypt_count();
    CHECK_RC(dec(&bad, "log/a/1", &text), DIMPLE_EAUTH);
    CHECK(text == NULL);
    CHECK_CONTAINS(last_msg, "wrong passphrase for keys/");
    CHECK_CONTAINS(last_msg, "log/a/1");
    /* Writing with the wrong passphrase fails too: no second key. */
    CHECK_RC(enc(&bad, "log/bad/1", "x"), DIMPLE_EAUTH);
    CHECK_CONTAINS(last_msg, "wrong passphrase for keys/");
    CHECK(count_prefix(&m, "keys/") == 1);
    CHECK(mem_find(&m, "log/bad/1") == NULL);
    CHECK(age_scrypt_count() - s0 == 1); /* not retried on every call */
    CHECK(!secret_leaked);
    dev_close(&a);
    dev_close(&bad);
    mem_free(&m);
}

TEST(fail_closed)
{
    mem m = {0};
    device a;
    char *text = NULL;
    dev_open_pass(&a, &m, PASS);
    CHECK_RC(enc(&a, "log/a/1", "hello"), DIMPLE_OK);
    /* A plaintext object. */
    view *v = &a.v;
    st_put(v, "log/x/plain", "{\"changes\":[]}", 14);
    CHECK_RC(dec(&a, "log/x/plain", &text), DIMPLE_ECORRUPT);
    CHECK_CONTAINS(last_msg, "log/x/plain");
    CHECK(text == NULL);
    /* Truncated and corrupted copies of a real object. */
    obj *o = mem_find(&m, "log/a/1");
    size_t len = o->len;
    unsigned char *bad = malloc(len);
    memcpy(bad, o->data, len);
    st_put(v, "log/x/trunc", bad, len - 1);
    CHECK_RC(dec(&a, "log/x/trunc", &text), DIMPLE_ECORRUPT);
    CHECK_CONTAINS(last_msg, "log/x/trunc");
    bad[len - 5] ^= 0x40;
    st_put(v, "log/x/flip", bad, len);
    free(bad);
    CHECK(dec(&a, "log/x/flip", &text) < 0);
    CHECK_CONTAINS(last_msg, "log/x/flip");
    CHECK(text == NULL);
    st_put(v, "log/x/empty", "", 0);
    CHECK_RC(dec(&a, "log/x/empty", &text), DIMPLE_ECORRUPT);
    /* Encrypted to someone else: no identity matches. */
    {
        age_recipient r = {0};
        age_identity id;
        age_buf ct = {0};
        age_mem_source ms;
        age_err e = {0};
        r.type = AGE_ID_X25519;
        age_x25519_keygen(id.sk, r.pk);
        dimple_source src = age_mem_source_make(&ms, "x", 1);
        dimple_sink sink = age_buf_sink(&ct);
        age_encrypt(&src, &sink, AGE_ARMOR_OFF, &r, 1, &e);
        st_put(v, "log/x/other", ct.p, ct.n);
        age_buf_free(&ct);
        CHECK_RC(dec(&a, "log/x/other", &text), DIMPLE_EAUTH);
        CHECK_CONTAINS(last_msg, "cannot decrypt log/x/other");
    }
    /* A planted key file not protected by the passphrase is refused. */
    {
        device fresh;
        dev_open_pass(&fresh, &m, PASS);
        st_put(v, "keys/0000.age", "age-encryption.org/v1\n-> X25519 abc\n",
               36);
        CHECK(dec(&fresh, "log/a/1", &text) < 0);
        CHECK_CONTAINS(last_msg, "keys/0000.age");
        dev_close(&fresh);
    }
    dev_close(&a);
    mem_free(&m);
}

TEST(mode_scrypt)
{
    mem m = {0};
    device a;
    dimple_kv conf[] = {{"passphrase", PASS, 3},
                        {"work_factor", "10", 4},
                        {"mode", "scrypt", 5},
                        {NULL, NULL, 0}};
    CHECK_RC(dev_open(&a, &m, conf), DIMPLE_OK);
    uint64_t s0 = age_scrypt_count();
    CHECK_RC(enc(&a, "log/a/1", "one"), DIMPLE_OK);
    CHECK_RC(enc(&a, "log/a/2", "two"), DIMPLE_OK);
    CHECK(dec_is(&a, "log/a/1", "one") && dec_is(&a, "log/a/2", "two"));
    CHECK(age_scrypt_count() - s0 == 4); /* one per file, each way */
    CHECK(count_prefix(&m, "keys/") == 0);
    obj *o = mem_find(&m, "log/a/1");
    CHECK(o && memmem(o->data, o->len, "\n-> scrypt ", 11));
    age_buf id = {0};
    dimple_sink sink = age_buf_sink(&id);
    CHECK_RC(vt->identity(a.self, &sink), DIMPLE_ENOTFOUND);
    age_buf_free(&id);
    /* Identity mode reads per-file passphrase objects too. */
    device b;
    dev_open_pass(&b, &m, PASS);
    CHECK(dec_is(&b, "log/a/1", "one"));
    dev_close(&b);
    dev_close(&a);
    mem_free(&m);
}

TEST(x25519_only_and_armor)
{
    char path[] = "/tmp/dimple-age-idXXXXXX";
    int fd = mkstemp(path);
    unsigned char sk[32], pk[32];
    char sk_txt[128], pk_txt[128], text[512];
    age_x25519_keygen(sk, pk);
    age_identity_format(sk, sk_txt);
    age_recipient_format(pk, pk_txt);
    int n = snprintf(text, sizeof text,
                     "# created: now\n# public key: %s\n%s\n", pk_txt, sk_txt);
    CHECK(write(fd, text, (size_t)n) == n);
    close(fd);
    mem m = {0};
    device a, enc_only;
    dimple_kv conf[] = {
        {"identity_file", path, 3}, {"armor", "on", 4}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&a, &m, conf), DIMPLE_OK);
    CHECK_RC(enc(&a, "log/a/1", "armored"), DIMPLE_OK);
    obj *o = mem_find(&m, "log/a/1");
    CHECK(o && o->len > 34 && !memcmp(o->data, AGE_ARMOR_BEGIN "\n", 35));
    CHECK(dec_is(&a, "log/a/1", "armored"));
    CHECK(count_prefix(&m, "keys/") == 0);
    dimple_kv conf2[] = {{"recipients", pk_txt, 3}, {NULL, NULL, 0}};
    CHECK_RC(dev_open(&enc_only, &m, conf2), DIMPLE_OK);
    CHECK_RC(enc(&enc_only, "log/e/1", "to recipient"), DIMPLE_OK);
    CHECK(dec_is(&a, "log/e/1", "to recipient"));
    CHECK_RC(dec(&enc_only, "log/a/1", NULL), DIMPLE_EAUTH);
    /* identity() writes the key in age-keygen format. */
    age_buf id = {0};
    dimple_sink sink = age_buf_sink(&id);
    CHECK_RC(vt->identity(a.self, &sink), DIMPLE_OK);
    age_buf_add(&id, "", 1);
    CHECK_CONTAINS((char *)id.p, sk_txt);
    CHECK_CONTAINS((char *)id.p, pk_txt);
    age_buf_free(&id);
    /* A broken identity file is reported without echoing its content. */
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, "AGE-SECRET-KEY-1QQQ\n", 20) == 20);
    close(fd);
    device broken;
    CHECK_RC(dev_open(&broken, &m, conf), DIMPLE_ECONFIG);
    CHECK_CONTAINS(last_msg, "line 1 is not an age identity");
    CHECK(!strstr(last_msg, "QQQ"));
    unlink(path);
    dev_close(&a);
    dev_close(&enc_only);
    mem_free(&m);
}

TEST(identity_opens_objects)
{
    mem m = {0};
    device a;
    dev_open_pass(&a, &m, PASS);
    CHECK_RC(enc(&a, "log/a/1", "via identity"), DIMPLE_OK);
    age_buf id = {0};
    dimple_sink sink = age_buf_sink(&id);
    CHECK_RC(vt->identity(a.self, &sink), DIMPLE_OK);
    age_buf_add(&id, "", 1);
    char *line = strstr((char *)id.p, "AGE-SECRET-KEY-1");
    CHECK(line != NULL);
    if (line) {
        char key[128];
        size_t k = strcspn(line, "\n");
        memcpy(key, line, k);
        key[k] = '\0';
        age_identity ident = {0};
        ident.type = AGE_ID_X25519;
        CHECK(age_identity_parse(key, ident.sk) == 0);
        age_x25519_public(ident.sk, ident.pk);
        obj *o = mem_find(&m, "log/a/1");
        age_buf out = {0};
        age_mem_source ms;
        dimple_source src = age_mem_source_make(&ms, o->data, o->len);
        dimple_sink os = age_buf_sink(&out);
        age_keyring kr = {&ident, 1, NULL, NULL};
        age_err e = {0};
        CHECK(age_decrypt(&src, &os, AGE_ARMOR_AUTO, &kr, &e) == 0);
        CHECK(out.n == 12 && !memcmp(out.p, "via identity", 12));
        age_buf_free(&out);
    }
    age_buf_free(&id);
    dev_close(&a);
    mem_free(&m);
}

int main(void)
{
    vt = dimple_plugin_entry()->vt.cipher;
    RUN(config);
    RUN(first_key_and_reuse);
    RUN(one_scrypt_for_1000_objects);
    RUN(two_devices_race);
    RUN(wrong_passphrase);
    RUN(fail_closed);
    RUN(mode_scrypt);
    RUN(x25519_only_and_armor);
    RUN(identity_opens_objects);
    return test_done();
}
