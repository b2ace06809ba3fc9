/*
 * test_s3.c — dimple-s3 against the real radosgw the suite started
 * (tests/servers/s3.sh) and against tests/s3/fake_s3.py: what is particular
 * to S3 (the storage contract suite is test_s3_contract.c): hostile keys,
 * paging, errors (wrong secret, missing bucket, server gone, SlowDown,
 * hangs, endless listings), put_if_absent probing, TLS, virtual-hosted
 * addressing, configuration, and secrets never in messages.
 */
#include "s3_test.h"

#include <dlfcn.h>
#include <sys/stat.h>

static const dimple_storage_vtable *vt;
static s3env env;
static cap_host H; /* every message of every instance: searched for secrets */

static void *open_s3(const s3conf *c)
{
    void *self = NULL;
    int rc = vt->create(&self, c->kv, &H.host);
    if (rc != DIMPLE_OK) {
        printf("#   create: %d %s\n", rc, H.last_msg);
        return NULL;
    }
    return self;
}

static int get_str(void *self, const char *key, membuf *b)
{
    memset(b, 0, sizeof *b);
    return vt->get(self, key, &(dimple_sink){membuf_write, b});
}

typedef struct keys {
    char *v[4096];
    int n;
} keys;

static int keys_cb(void *payload, const char *key)
{
    keys *k = payload;
    if (k->n < 4096)
        k->v[k->n] = strdup(key);
    k->n++;
    return 0;
}

static void keys_free(keys *k)
{
    for (int i = 0; i < k->n && i < 4096; i++)
        free(k->v[i]);
    k->n = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ tests */

/* Keys S3 clients get wrong: spaces, '+', '&', '=', '%', unicode, and
 * everything else RFC 3986 reserves. */
static const char *const hostile[] = {"sp ace/a b  c",
                                      "plus/a+b+",
                                      "amp/a&b&&",
                                      "eq/a=b==",
                                      "pct/100%/%20%2B",
                                      "uni/héllo wörld/日本語 ✓",
                                      "mix/my dir/héllo wörld+1 (x) &=?.txt",
                                      "q/what?#frag",
                                      "punct/!$'()*,;:@[]",
                                      "tilde/~a_b-c.d",
                                      "emoji/😀",
                                      "ctl/tab\there",
                                      "plusspace/ + ",
                                      "caps/ÄÖÜ%41",
                                      NULL};

TEST(hostile_keys)
{
    char prefix[128];
    s3conf c;
    void *s;
    keys k = {0};
    int n = 0, rc;
    s3_unique(prefix, sizeof prefix, "hostile");
    s3conf_init(&c, &env, prefix);
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    for (n = 0; hostile[n]; n++) {
        rc = vt->put(s, hostile[n], hostile[n], strlen(hostile[n]));
        if (!test_check_(rc == DIMPLE_OK, hostile[n], __FILE__, __LINE__))
            printf("#   put: %d %s\n", rc, H.last_msg);
    }
    for (int i = 0; hostile[i]; i++) {
        membuf b;
        rc = get_str(s, hostile[i], &b);
        if (!test_check_(rc == DIMPLE_OK && b.p && strcmp(b.p, hostile[i]) == 0,
                         "get returns what was put", __FILE__, __LINE__))
            printf("#   key '%s': rc %d %s\n", hostile[i], rc, H.last_msg);
        free(b.p);
    }
    rc = vt->list(s, "", NULL, 0, keys_cb, &k);
    CHECK_RC(rc, DIMPLE_OK);
    CHECK(k.n == n);
    {
        /* exactly the keys, in byte order */
        int ok = k.n == n;
        for (int i = 1; ok && i < k.n; i++)
            ok = strcmp(k.v[i - 1], k.v[i]) < 0;
        for (int i = 0; ok && hostile[i]; i++) {
            int found = 0;
            for (int j = 0; j < k.n; j++)
                found |= strcmp(k.v[j], hostile[i]) == 0;
            ok = found;
        }
        CHECK(ok);
    }
    keys_free(&k);
    /* a prefix and a start_after with reserved characters */
    rc = vt->list(s, "mix/my dir/h", NULL, 0, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == 1 &&
          strcmp(k.v[0], "mix/my dir/héllo wörld+1 (x) &=?.txt") == 0);
    keys_free(&k);
    rc = vt->list(s, "p", "plus/a+b+", 0, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == 2 && strcmp(k.v[0], "plusspace/ + ") == 0 &&
          strcmp(k.v[1], "punct/!$'()*,;:@[]") == 0);
    keys_free(&k);
    rc = vt->list(s, "", NULL, DIMPLE_LIST_SHALLOW, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == n && strcmp(k.v[0], "amp/") == 0);
    keys_free(&k);
    for (int i = 0; hostile[i]; i++)
        CHECK_RC(vt->remove(s, hostile[i]), DIMPLE_OK);
    rc = vt->list(s, "", NULL, 0, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == 0);
    keys_free(&k);
    vt->destroy(s);
}

/* Small pages: continuation tokens, folders merged with keys in byte
 * order across pages, start_after inside a folder. */
TEST(small_pages)
{
    static const char *const ks[] = {
        "a",    "a-b", "a.c", "a/1", "a/2", "a/3/x", "a0",    "b/1",
        "b/2",  "b/3", "b/4", "b/5", "b0",  "c",     "c/d/e", "c/d/f",
        "c/dd", "d",   "e/1", "e/2", "f",   NULL};
    static const char *const flat[] = {
        "a",    "a-b", "a.c", "a/1", "a/2", "a/3/x", "a0",    "b/1",
        "b/2",  "b/3", "b/4", "b/5", "b0",  "c",     "c/d/e", "c/d/f",
        "c/dd", "d",   "e/1", "e/2", "f",   NULL};
    static const char *const shallow[] = {"a",  "a-b", "a.c", "a/", "a0",
                                          "b/", "b0",  "c",   "c/", "d",
                                          "e/", "f",   NULL};
    char prefix[128];
    s3conf c;
    void *s;
    keys k = {0};
    int ok, rc;

    s3_unique(prefix, sizeof prefix, "pages");
    s3conf_init(&c, &env, prefix);
    s3conf_set(&c, "page_size", "2");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    for (int i = 0; ks[i]; i++)
        CHECK_RC(vt->put(s, ks[i], "x", 1), DIMPLE_OK);

    cap_clear(&H);
    rc = vt->list(s, "", NULL, 0, keys_cb, &k);
    ok = rc == DIMPLE_OK;
    for (int i = 0; ok && (flat[i] || i < k.n); i++)
        ok = flat[i] && i < k.n && strcmp(flat[i], k.v[i]) == 0;
    CHECK(ok);
    CHECK(H.list_requests == 11); /* 21 keys, 2 a page */
    printf("# %d list requests for 21 keys\n", H.list_requests);
    keys_free(&k);

    cap_clear(&H);
    rc = vt->list(s, "", NULL, DIMPLE_LIST_SHALLOW, keys_cb, &k);
    ok = rc == DIMPLE_OK;
    for (int i = 0; ok && (shallow[i] || i < k.n); i++)
        ok = shallow[i] && i < k.n && strcmp(shallow[i], k.v[i]) == 0;
    if (!CHECK(ok))
        for (int i = 0; i < k.n; i++)
            printf("#   got %s\n", k.v[i]);
    CHECK(H.list_requests >= 6);
    keys_free(&k);

    /* start_after inside folder a/: the folder itself sorts before it */
    rc = vt->list(s, "", "a/2", DIMPLE_LIST_SHALLOW, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == 8 && strcmp(k.v[0], "a0") == 0);
    keys_free(&k);
    rc = vt->list(s, "c/", "c/d/", DIMPLE_LIST_SHALLOW, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == 1 && strcmp(k.v[0], "c/dd") == 0);
    keys_free(&k);
    rc = vt->list(s, "b/", "b/2", 0, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == 3 && strcmp(k.v[0], "b/3") == 0 &&
          strcmp(k.v[2], "b/5") == 0);
    keys_free(&k);
    for (int i = 0; ks[i]; i++)
        vt->remove(s, ks[i]);
    vt->destroy(s);
}

/* 2,600 objects listed in 3 pages of 1,000, plus start_after paging. */
TEST(many_objects)
{
    char prefix[128], key[64];
    s3conf c;
    void *s;
    keys k = {0};
    int failed = 0, rc, ordered = 1;
    const int n = 2600;

    s3_unique(prefix, sizeof prefix, "many");
    s3conf_init(&c, &env, prefix);
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "m/%05d", (i * 7919) % n);
        if (vt->put(s, key, key, strlen(key)) != DIMPLE_OK && failed++ == 0)
            printf("#   put %s: %s\n", key, H.last_msg);
    }
    CHECK(failed == 0);
    cap_clear(&H);
    rc = vt->list(s, "m/", NULL, 0, keys_cb, &k);
    CHECK_RC(rc, DIMPLE_OK);
    CHECK(k.n == n);
    for (int i = 0; i < k.n && i < n; i++) {
        snprintf(key, sizeof key, "m/%05d", i);
        ordered &= strcmp(k.v[i], key) == 0;
    }
    CHECK(ordered);
    CHECK(H.list_requests == 3);
    printf("# %d objects in %d list requests\n", k.n, H.list_requests);
    keys_free(&k);
    rc = vt->list(s, "m/", "m/02499", 0, keys_cb, &k);
    CHECK(rc == DIMPLE_OK && k.n == 100 && strcmp(k.v[0], "m/02500") == 0);
    keys_free(&k);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "m/%05d", i);
        if (vt->remove(s, key) != DIMPLE_OK && failed++ == 0)
            printf("#   remove %s: %s\n", key, H.last_msg);
    }
    CHECK(failed == 0);
    vt->destroy(s);
}

TEST(wrong_secret)
{
    s3conf c;
    void *s;
    membuf b = {0};
    keys k = {0};
    int rc;
    s3conf_init(&c, &env, "auth");
    s3conf_set(&c, "secret_key", "not-the-secret-Zq9XwV");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    cap_clear(&H);
    rc = vt->put(s, "k", "x", 1);
    CHECK_RC(rc, DIMPLE_EAUTH);
    CHECK_CONTAINS(H.last_msg, "SignatureDoesNotMatch");
    CHECK_CONTAINS(H.last_msg, "secret_key");
    CHECK_CONTAINS(H.last_msg, env.endpoint);
    printf("#   %s\n", H.last_msg);
    CHECK_RC(get_str(s, "k", &b), DIMPLE_EAUTH);
    CHECK(b.n == 0);
    CHECK_RC(vt->list(s, "", NULL, 0, keys_cb, &k), DIMPLE_EAUTH);
    CHECK(k.n == 0);
    CHECK_RC(vt->remove(s, "k"), DIMPLE_EAUTH);
    CHECK_RC(vt->put_if_absent(s, "k", "x", 1), DIMPLE_EAUTH);
    free(b.p);
    vt->destroy(s);

    s3conf_set(&c, "secret_key", env.secret_key);
    s3conf_set(&c, "access_key", "NOSUCHKEYZZZZZZ");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    rc = vt->put(s, "k", "x", 1);
    CHECK_RC(rc, DIMPLE_EAUTH);
    CHECK_CONTAINS(H.last_msg, "InvalidAccessKeyId");
    vt->destroy(s);
}

TEST(missing_bucket)
{
    s3conf c;
    void *s;
    membuf b = {0};
    keys k = {0};
    char want[256];
    s3conf_init(&c, &env, NULL);
    s3conf_set(&c, "bucket", "dimple-no-such-bucket");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    snprintf(want, sizeof want,
             "bucket 'dimple-no-such-bucket' does not exist at %s",
             env.endpoint);
    CHECK_RC(vt->put(s, "k", "x", 1), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, want);
    printf("#   %s\n", H.last_msg);
    /* never "not found": the core would take it for an absent object */
    CHECK_RC(get_str(s, "k", &b), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, want);
    CHECK_RC(vt->list(s, "", NULL, 0, keys_cb, &k), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, want);
    CHECK_RC(vt->remove(s, "k"), DIMPLE_ECONFIG);
    CHECK_RC(vt->put_if_absent(s, "k", "x", 1), DIMPLE_ECONFIG);
    free(b.p);
    vt->destroy(s);
}

/* The server goes away while an instance is connected: a proxy in front of
 * radosgw is killed. Retries with backoff, then a clear DIMPLE_EIO. */
TEST(server_stopped)
{
    fake proxy;
    s3conf c;
    void *s = NULL;
    membuf b = {0};
    char prefix[128], hp[128];
    const char *h = env.endpoint + strlen("http://");
    double t0, dt;
    int rc;

    snprintf(hp, sizeof hp, "%s", h);
    if (!CHECK(fake_start(&proxy, "proxy", hp, NULL) == 0))
        return;
    s3_unique(prefix, sizeof prefix, "stopped");
    s3conf_init(&c, &env, prefix);
    s3conf_set(&c, "endpoint", proxy.endpoint);
    s3conf_set(&c, "retries", "3");
    s3conf_set(&c, "timeout", "2");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        goto out;
    CHECK_RC(vt->put(s, "k", "before", 6), DIMPLE_OK);
    CHECK_RC(get_str(s, "k", &b), DIMPLE_OK);
    CHECK(b.n == 6);
    free(b.p);
    fake_stop(&proxy);
    cap_clear(&H);
    t0 = now_s();
    rc = vt->put(s, "k", "after", 5);
    dt = now_s() - t0;
    CHECK_RC(rc, DIMPLE_EIO);
    CHECK_CONTAINS(H.last_msg, proxy.endpoint);
    CHECK_CONTAINS(H.last_msg, "after 4 attempts");
    CHECK_CONTAINS(H.last_msg, "put 'k'");
    printf("#   %s (%.2f s)\n", H.last_msg, dt);
    CHECK(dt >= 0.35); /* backoff: 100-200 + 200-400 + 400-800 ms */
    CHECK(dt < 10);
    rc = get_str(s, "k", &b);
    CHECK_RC(rc, DIMPLE_EIO);
    CHECK(b.n == 0);
    free(b.p);
out:
    if (s)
        vt->destroy(s);
    fake_stop(&proxy);
}

TEST(retries_slowdown)
{
    fake f;
    s3conf c;
    void *s = NULL;
    double t0;
    int rc;

    /* 2 SlowDowns then OK: the put succeeds on the 3rd attempt */
    if (!CHECK(fake_start(&f, "slowdown", "2", NULL) == 0))
        return;
    s3conf_init(&c, &env, NULL);
    s3conf_set(&c, "endpoint", f.endpoint);
    s3conf_set(&c, "retries", "2");
    s3conf_set(&c, "session_token", "tok-secret-Rj7/failing");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        goto out;
    CHECK_RC(vt->put(s, "k", "x", 1), DIMPLE_OK);
    /* now always SlowDown: a clear EIO after retries+1 attempts */
    fake_stop(&f);
    vt->destroy(s);
    s = NULL;
    if (!CHECK(fake_start(&f, "slowdown", "1000000", NULL) == 0))
        goto out;
    s3conf_set(&c, "endpoint", f.endpoint);
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        goto out;
    t0 = now_s();
    rc = vt->put(s, "k", "x", 1);
    CHECK_RC(rc, DIMPLE_EIO);
    CHECK_CONTAINS(H.last_msg, "SlowDown");
    CHECK_CONTAINS(H.last_msg, "after 3 attempts");
    CHECK(now_s() - t0 >= 0.15);
    printf("#   %s\n", H.last_msg);
out:
    if (s)
        vt->destroy(s);
    fake_stop(&f);
}

TEST(timeout_hang)
{
    fake f;
    s3conf c;
    void *s = NULL;
    double t0, dt;
    int rc;
    if (!CHECK(fake_start(&f, "hang", NULL, NULL) == 0))
        return;
    s3conf_init(&c, &env, NULL);
    s3conf_set(&c, "endpoint", f.endpoint);
    s3conf_set(&c, "retries", "1");
    s3conf_set(&c, "timeout", "1");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        goto out;
    t0 = now_s();
    rc = vt->put(s, "k", "x", 1);
    dt = now_s() - t0;
    CHECK_RC(rc, DIMPLE_EIO);
    CHECK_CONTAINS(H.last_msg, "after 2 attempts");
    CHECK(dt >= 1.5 && dt < 8);
    printf("#   %s (%.2f s)\n", H.last_msg, dt);
out:
    if (s)
        vt->destroy(s);
    fake_stop(&f);
}

TEST(endless_listing)
{
    static const char *const modes[] = {"loop-token", "loop-notoken", NULL};
    for (int i = 0; modes[i]; i++) {
        fake f;
        s3conf c;
        void *s;
        keys k = {0};
        int rc;
        if (!CHECK(fake_start(&f, modes[i], NULL, NULL) == 0))
            continue;
        s3conf_init(&c, &env, NULL);
        s3conf_set(&c, "endpoint", f.endpoint);
        s = open_s3(&c);
        if (CHECK(s != NULL)) {
            rc = vt->list(s, "p/", NULL, 0, keys_cb, &k);
            CHECK_RC(rc, DIMPLE_ECORRUPT);
            CHECK(k.n == 1); /* "p/a" once, then a clear stop */
            CHECK_CONTAINS(H.last_msg, "giving up");
            printf("#   %s: %s\n", modes[i], H.last_msg);
            keys_free(&k);
            vt->destroy(s);
        }
        fake_stop(&f);
    }
}

TEST(put_if_absent_probe)
{
    fake f;
    s3conf c;
    void *s = NULL;
    membuf b = {0};
    char prefix[128];
    int rc;

    /* radosgw honours If-None-Match: * */
    s3_unique(prefix, sizeof prefix, "pia");
    s3conf_init(&c, &env, prefix);
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    CHECK_RC(vt->put_if_absent(s, "x", "1", 1), DIMPLE_OK);
    CHECK_RC(vt->put_if_absent(s, "x", "2", 1), DIMPLE_EEXISTS);
    CHECK_RC(get_str(s, "x", &b), DIMPLE_OK);
    CHECK(b.n == 1 && b.p[0] == '1');
    free(b.p);
    {
        keys k = {0}; /* the probe object is gone */
        CHECK(vt->list(s, "", NULL, 0, keys_cb, &k) == DIMPLE_OK && k.n == 1);
        keys_free(&k);
    }
    vt->remove(s, "x");
    vt->destroy(s);

    /* a server that ignores it: probed, then refused clearly */
    if (!CHECK(fake_start(&f, "ignore-inm", NULL, NULL) == 0))
        return;
    s3conf_set(&c, "endpoint", f.endpoint);
    s = open_s3(&c);
    if (CHECK(s != NULL)) {
        rc = vt->put_if_absent(s, "x", "1", 1);
        CHECK_RC(rc, DIMPLE_EPLUGIN);
        CHECK_CONTAINS(H.last_msg, "not supported");
        printf("#   %s\n", H.last_msg);
        CHECK_RC(vt->put_if_absent(s, "y", "1", 1), DIMPLE_EPLUGIN);
        CHECK_RC(vt->put(s, "y", "1", 1), DIMPLE_OK);
        vt->destroy(s);
    }
    fake_stop(&f);

    /* the answer to a conditional PUT that landed is lost: the retry gets
     * 412, sees its own bytes, and reports success; others still EEXISTS */
    if (!CHECK(fake_start(&f, "lossy-inm", NULL, NULL) == 0))
        return;
    s3conf_set(&c, "endpoint", f.endpoint);
    s = open_s3(&c);
    if (CHECK(s != NULL)) {
        CHECK_RC(vt->put_if_absent(s, "x", "mine", 4), DIMPLE_OK);
        CHECK_RC(vt->put_if_absent(s, "x", "other", 5), DIMPLE_EEXISTS);
        CHECK_RC(get_str(s, "x", &b), DIMPLE_OK);
        CHECK(b.n == 4 && memcmp(b.p, "mine", 4) == 0);
        free(b.p);
        vt->destroy(s);
    }
    fake_stop(&f);

    /* a server that answers 501 to the header: not retried, not supported */
    if (!CHECK(fake_start(&f, "inm-501", NULL, NULL) == 0))
        return;
    s3conf_set(&c, "endpoint", f.endpoint);
    s = open_s3(&c);
    if (CHECK(s != NULL)) {
        double t0 = now_s();
        rc = vt->put_if_absent(s, "x", "1", 1);
        CHECK_RC(rc, DIMPLE_EPLUGIN);
        CHECK(now_s() - t0 < 1.0); /* 501 is final: no backoff */
        CHECK_RC(vt->put(s, "x", "1", 1), DIMPLE_OK);
        vt->destroy(s);
    }
    fake_stop(&f);
}

TEST(virtual_hosted)
{
    /* radosgw runs with rgw dns name = s3.localhost; libcurl resolves
     * *.localhost to loopback itself. */
    s3conf c;
    void *s;
    char ep[256], prefix[128];
    const char *port = strrchr(env.endpoint, ':');
    membuf b = {0};
    keys k = {0};
    snprintf(ep, sizeof ep, "http://s3.localhost%s", port ? port : "");
    s3_unique(prefix, sizeof prefix, "vhost");
    s3conf_init(&c, &env, prefix);
    s3conf_set(&c, "endpoint", ep);
    s3conf_set(&c, "addressing", "virtual");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    CHECK_RC(vt->put(s, "v/a b+c", "vh", 2), DIMPLE_OK);
    CHECK_RC(get_str(s, "v/a b+c", &b), DIMPLE_OK);
    CHECK(b.n == 2 && memcmp(b.p, "vh", 2) == 0);
    free(b.p);
    CHECK(vt->list(s, "v/", NULL, 0, keys_cb, &k) == DIMPLE_OK && k.n == 1 &&
          strcmp(k.v[0], "v/a b+c") == 0);
    keys_free(&k);
    CHECK_RC(vt->remove(s, "v/a b+c"), DIMPLE_OK);
    vt->destroy(s);
}

/* TLS: verification is on; a self-signed server is refused until ca_file
 * names its certificate. */
TEST(tls_verification)
{
    const char *bdir = getenv("DIMPLE_TEST_BUILDDIR");
    char dir[4096], cert[4200], key[4200], cmd[12000], arg[9000], ep[128];
    fake f;
    s3conf c;
    void *s = NULL;
    membuf b = {0};
    int rc;
    snprintf(dir, sizeof dir, "%s/tests/s3/tls-%d", bdir ? bdir : "/tmp",
             (int)getpid());
    mkdir(dir, 0700);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -days 2 -subj /CN=localhost -addext "
             "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '%s' -out '%s' "
             ">/dev/null 2>&1",
             key, cert);
    if (!CHECK(system(cmd) == 0))
        return;
    snprintf(arg, sizeof arg, "%s:%s", cert, key);
    if (!CHECK(fake_start(&f, "tls", arg, NULL) == 0))
        return;
    snprintf(ep, sizeof ep, "https://localhost:%d", f.port);
    s3conf_init(&c, &env, NULL);
    s3conf_set(&c, "endpoint", ep);
    s3conf_set(&c, "retries", "0");
    s = open_s3(&c);
    if (CHECK(s != NULL)) {
        rc = vt->put(s, "k", "x", 1);
        CHECK_RC(rc, DIMPLE_ECONFIG);
        CHECK_CONTAINS(H.last_msg, "TLS verification");
        CHECK_CONTAINS(H.last_msg, "ca_file");
        printf("#   %s\n", H.last_msg);
        vt->destroy(s);
    }
    s3conf_set(&c, "ca_file", cert);
    s = open_s3(&c);
    if (CHECK(s != NULL)) {
        CHECK_RC(vt->put(s, "k", "tls", 3), DIMPLE_OK);
        CHECK_RC(get_str(s, "k", &b), DIMPLE_OK);
        CHECK(b.n == 3);
        free(b.p);
        vt->destroy(s);
    }
    fake_stop(&f);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static int create_rc(const s3conf *c)
{
    void *s = NULL;
    int rc = vt->create(&s, c->kv, &H.host);
    if (rc == DIMPLE_OK)
        vt->destroy(s);
    return rc;
}

TEST(configuration)
{
    s3conf c;
    s3conf_init(&c, &env, NULL);
    CHECK_RC(create_rc(&c), DIMPLE_OK);

    s3conf_set(&c, "bogus", "1");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, "unknown key 'bogus'");
    CHECK_CONTAINS(H.last_msg, "s3-test.conf:");
    s3conf_set(&c, "bogus", NULL);

    s3conf_set(&c, "endpoint", "http://AKIA:hunter2-endpoint@127.0.0.1:1");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, "user:password@");
    CHECK(strstr(H.last_msg, "hunter2") == NULL);
    s3conf_set(&c, "endpoint", "ftp://x");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "endpoint", "http://127.0.0.1:1/path");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "endpoint", NULL);
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, "missing 'endpoint'");
    s3conf_set(&c, "endpoint", env.endpoint);

    s3conf_set(&c, "addressing", "sideways");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "addressing", "virtual");
    s3conf_set(&c, "bucket", "Has_Underscore");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "addressing", NULL);
    s3conf_set(&c, "bucket", env.bucket);

    s3conf_set(&c, "secret_key", "");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, "secret_key");
    s3conf_set(&c, "secret_key", env.secret_key);
    s3conf_set(&c, "access_key", NULL);
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "access_key", env.access_key);

    s3conf_set(&c, "region", "eu west");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "region", "garage"); /* free text */
    CHECK_RC(create_rc(&c), DIMPLE_OK);
    s3conf_set(&c, "timeout", "0");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "timeout", "10s");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "timeout", "10");
    s3conf_set(&c, "retries", "-1");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "retries", "0");
    s3conf_set(&c, "prefix", "a/../b");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "prefix", "/team/db/");
    CHECK_RC(create_rc(&c), DIMPLE_OK);
    s3conf_set(&c, "ca_file", "/nonexistent/ca.pem");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    CHECK_CONTAINS(H.last_msg, "/nonexistent/ca.pem");
    s3conf_set(&c, "ca_file", NULL);
    s3conf_set(&c, "page_size", "1001");
    CHECK_RC(create_rc(&c), DIMPLE_ECONFIG);
    s3conf_set(&c, "page_size", NULL);
    s3conf_set(&c, "session_token", "tok-secret-Rj7");
    CHECK_RC(create_rc(&c), DIMPLE_OK);
}

/* x-amz-security-token goes into the signed headers: radosgw checks the
 * signature over it (it ignores the token itself for a plain user). */
TEST(session_token)
{
    s3conf c;
    void *s;
    char prefix[128];
    s3_unique(prefix, sizeof prefix, "token");
    s3conf_init(&c, &env, prefix);
    s3conf_set(&c, "session_token", "tok-secret-Rj7/FQoGZXIvYXdz+EXAMPLE==");
    s = open_s3(&c);
    if (!CHECK(s != NULL))
        return;
    CHECK_RC(vt->put(s, "k", "x", 1), DIMPLE_OK);
    CHECK_RC(vt->remove(s, "k"), DIMPLE_OK);
    vt->destroy(s);
}

/* A prefix keeps instances apart; two instances see each other's writes. */
TEST(prefix_isolation)
{
    char p1[128], p2[160];
    s3conf c1, c2;
    void *a, *b;
    keys k = {0};
    membuf m = {0};
    s3_unique(p1, sizeof p1, "iso");
    snprintf(p2, sizeof p2, "%s/inner", p1);
    s3conf_init(&c1, &env, p1);
    s3conf_init(&c2, &env, p2);
    a = open_s3(&c1);
    b = open_s3(&c2);
    if (!CHECK(a && b))
        goto out;
    CHECK_RC(vt->put(b, "k", "inner", 5), DIMPLE_OK);
    CHECK_RC(get_str(a, "inner/k", &m), DIMPLE_OK);
    CHECK(m.n == 5);
    free(m.p);
    CHECK(vt->list(b, "", NULL, 0, keys_cb, &k) == DIMPLE_OK && k.n == 1 &&
          strcmp(k.v[0], "k") == 0);
    keys_free(&k);
    CHECK(vt->list(a, "", NULL, 0, keys_cb, &k) == DIMPLE_OK && k.n == 1 &&
          strcmp(k.v[0], "inner/k") == 0);
    keys_free(&k);
    CHECK_RC(vt->remove(a, "inner/k"), DIMPLE_OK);
out:
    if (a)
        vt->destroy(a);
    if (b)
        vt->destroy(b);
}

/* Everything any instance reported (errors and logs, failing runs above
 * included) is searched for the secrets. */
TEST(no_secrets_in_messages)
{
    CHECK(H.len > 1000); /* the failing tests above did report */
    CHECK(strstr(H.all, env.secret_key) == NULL);
    CHECK(strstr(H.all, "not-the-secret-Zq9XwV") == NULL);
    CHECK(strstr(H.all, "tok-secret-Rj7") == NULL);
    CHECK(strstr(H.all, "hunter2") == NULL);
    printf("# %zu bytes of messages searched\n", H.len);
}

int main(void)
{
    void *dl = NULL;
    const dimple_plugin *pl;
    env = s3env_get();
    if (!CHECK(env.ok))
        return test_done();
    cap_init(&H);
    pl = test_plugin_load("s3", &dl);
    vt = pl->vt.storage;
    RUN(hostile_keys);
    RUN(small_pages);
    RUN(many_objects);
    RUN(wrong_secret);
    RUN(missing_bucket);
    RUN(server_stopped);
    RUN(retries_slowdown);
    RUN(timeout_hang);
    RUN(endless_listing);
    RUN(put_if_absent_probe);
    RUN(virtual_hosted);
    RUN(tls_verification);
    RUN(configuration);
    RUN(session_token);
    RUN(prefix_isolation);
    RUN(no_secrets_in_messages);
    cap_free(&H);
    dlclose(dl);
    return test_done();
}
