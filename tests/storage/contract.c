/*
 * contract.c — the storage contract suite (see contract.h for the contract).
 *
 * Every listing is compared with a model: the sorted set of keys the suite
 * has stored so far, from which the expected answer of any list() call
 * (prefix, start_after, shallow) is computed independently of the plugin.
 */
#include "contract.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
ck_(int ok, const char *file, int line, const char *fmt, ...)
{
    char desc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    return test_check_(ok, desc, file, line);
}
/* CHECK with a formatted description (the key, the query) for loops. */
#define CK(ok, ...) ck_(!!(ok), __FILE__, __LINE__, __VA_ARGS__)

typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static void strv_push(strv *s, const char *str)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            abort(); /* a test without memory cannot report anything */
    }
    s->v[s->n] = strdup(str);
    if (!s->v[s->n])
        abort();
    s->n++;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
    int writes;
    int fail_with; /* non-zero: the first write returns this */
} buf;

static int buf_write(void *ctx, const void *p, size_t n)
{
    buf *b = ctx;
    b->writes++;
    if (b->fail_with)
        return b->fail_with;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

typedef struct suite {
    const char *plugin;
    const dimple_storage_vtable *vt;
    const dimple_kv *conf;
    void *self;
    test_host th;
    const char *stop; /* why the remaining groups cannot run, or NULL */
    strv model;       /* sorted keys currently stored */
    char name[128];
} suite;

static void set_test(suite *s, const char *what)
{
    snprintf(s->name, sizeof s->name, "%s:%s", s->plugin, what);
    test_current_ = s->name;
    printf("# storage contract %s\n", s->name);
}

static size_t model_find(const strv *m, const char *key, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->v[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->n && strcmp(m->v[lo], key) == 0;
    return lo;
}

static void model_add(suite *s, const char *key)
{
    bool found;
    size_t i = model_find(&s->model, key, &found);
    if (found)
        return;
    strv_push(&s->model, key); /* grows; then move it into place */
    char *k = s->model.v[s->model.n - 1];
    memmove(&s->model.v[i + 1], &s->model.v[i],
            (s->model.n - 1 - i) * sizeof(char *));
    s->model.v[i] = k;
}

static void model_del(suite *s, const char *key)
{
    bool found;
    size_t i = model_find(&s->model, key, &found);
    if (!found)
        return;
    free(s->model.v[i]);
    memmove(&s->model.v[i], &s->model.v[i + 1],
            (s->model.n - i - 1) * sizeof(char *));
    s->model.n--;
}

/* What list() must report, computed from the model. */
static void model_list(const suite *s, const char *prefix,
                       const char *start_after, unsigned flags, strv *out)
{
    size_t plen = strlen(prefix);
    char *last = NULL;
    for (size_t i = 0; i < s->model.n; i++) {
        const char *k = s->model.v[i];
        char entry[4096];
        if (strncmp(k, prefix, plen) != 0)
            continue;
        snprintf(entry, sizeof entry, "%s", k);
        if (flags & DIMPLE_LIST_SHALLOW) {
            char *slash = strchr(entry + plen, '/');
            if (slash)
                slash[1] = '\0';
        }
        if (start_after && *start_after && strcmp(entry, start_after) <= 0)
            continue;
        if (last && strcmp(last, entry) == 0)
            continue; /* a folder already reported */
        strv_push(out, entry);
        last = out->v[out->n - 1];
    }
}

typedef struct collect {
    strv keys;
    int calls;
    int stop_at; /* stop (return stop_rc) on this call; 0 = never */
    int stop_rc;
} collect;

static int collect_cb(void *payload, const char *key)
{
    collect *c = payload;
    c->calls++;
    strv_push(&c->keys, key);
    if (c->stop_at && c->calls == c->stop_at)
        return c->stop_rc;
    return 0;
}

static int s_put(suite *s, const char *key, const void *p, size_t n)
{
    int rc = s->vt->put(s->self, key, p, n);
    if (rc == DIMPLE_OK)
        model_add(s, key);
    return rc;
}

static int s_puts(suite *s, const char *key, const char *str)
{
    return s_put(s, key, str, strlen(str));
}

static int s_get(suite *s, const char *key, buf *b)
{
    memset(b, 0, sizeof *b);
    return s->vt->get(s->self, key, &(dimple_sink){buf_write, b});
}

static int s_remove(suite *s, const char *key)
{
    int rc = s->vt->remove(s->self, key);
    if (rc == DIMPLE_OK)
        model_del(s, key);
    return rc;
}

/* Check that get(key) returns exactly p/n. */
static void check_content(suite *s, const char *key, const void *p, size_t n)
{
    buf b;
    int rc = s_get(s, key, &b);
    if (!CK(rc == DIMPLE_OK, "get '%s' succeeds", key))
        printf("#   got %d: %s\n", rc, s->th.last_msg);
    else if (!CK(b.n == n && (n == 0 || memcmp(b.p, p, n) == 0),
                 "get '%s' returns the %zu bytes put", key, n))
        printf("#   got %zu bytes\n", b.n);
    free(b.p);
}

static void check_str(suite *s, const char *key, const char *str)
{
    check_content(s, key, str, strlen(str));
}

/* Compare list(prefix, start_after, flags) with the model. */
static void check_list(suite *s, const char *prefix, const char *start_after,
                       unsigned flags)
{
    collect c = {0};
    strv want = {0};
    int rc = s->vt->list(s->self, prefix, start_after, flags, collect_cb, &c);
    const char *mode = flags & DIMPLE_LIST_SHALLOW ? "shallow " : "";
    bool same;

    model_list(s, prefix, start_after, flags, &want);
    CK(rc == DIMPLE_OK, "%slist('%s', after '%s') succeeds", mode, prefix,
       start_after ? start_after : "(null)");
    same = c.keys.n == want.n;
    for (size_t i = 0; same && i < want.n; i++)
        same = strcmp(c.keys.v[i], want.v[i]) == 0;
    if (!CK(same,
            "%slist('%s', after '%s') = %zu expected entries in byte "
            "order",
            mode, prefix, start_after ? start_after : "(null)", want.n)) {
        size_t max = c.keys.n > want.n ? c.keys.n : want.n;
        for (size_t i = 0; i < max && i < 40; i++)
            printf("#   [%zu] got %-24s want %s\n", i,
                   i < c.keys.n ? c.keys.v[i] : "-",
                   i < want.n ? want.v[i] : "-");
    }
    strv_free(&c.keys);
    strv_free(&want);
}

/* The same as check_list, against a literal list (guards the model). */
static void check_list_is(suite *s, const char *prefix, const char *start_after,
                          unsigned flags, const char *const *want)
{
    collect c = {0};
    size_t n = 0;
    bool same;
    int rc = s->vt->list(s->self, prefix, start_after, flags, collect_cb, &c);
    while (want[n])
        n++;
    same = rc == DIMPLE_OK && c.keys.n == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(c.keys.v[i], want[i]) == 0;
    if (!CK(same, "%slist('%s', after '%s') is exactly the %zu literal entries",
            flags & DIMPLE_LIST_SHALLOW ? "shallow " : "", prefix,
            start_after ? start_after : "(null)", n)) {
        printf("#   rc %d\n", rc);
        for (size_t i = 0; i < c.keys.n || i < n; i++)
            printf("#   [%zu] got %-24s want %s\n", i,
                   i < c.keys.n ? c.keys.v[i] : "-", i < n ? want[i] : "-");
    }
    strv_free(&c.keys);
}

/* An error return must come with a message carrying the same code. */
static void check_msg(suite *s, int rc, const char *op, const char *key,
                      const char *needle)
{
    CK(s->th.last_code == rc && s->th.last_msg[0] != '\0',
       "%s '%s': the host got the error %d with a message", op, key, rc);
    if (needle && *needle)
        CK(strstr(s->th.last_msg, needle) != NULL,
           "%s '%s': the message names the key", op, key);
    if (s->th.last_msg[0])
        printf("#   message: %s\n", s->th.last_msg);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* ------------------------------------------------------------- checks */

static void t_create(suite *s)
{
    const dimple_kv *conf = s->conf;
    size_t n = 0;
    dimple_kv *bad;
    void *other = NULL;
    int rc;

    while (conf && conf[n].key)
        n++;
    bad = calloc(n + 2, sizeof *bad);
    if (!bad)
        abort();
    if (n)
        memcpy(bad, conf, n * sizeof *bad);
    bad[n] = (dimple_kv){"no_such_contract_key", "1", 42};
    test_host_clear(&s->th);
    rc = s->vt->create(&other, bad, &s->th.host);
    CK(rc == DIMPLE_ECONFIG, "create with an unknown key is DIMPLE_ECONFIG");
    if (rc == DIMPLE_OK)
        s->vt->destroy(other);
    else
        check_msg(s, rc, "create", "no_such_contract_key",
                  "no_such_contract_key");
    free(bad);
}

static void t_empty(suite *s)
{
    collect c = {0};
    int rc;
    bool empty;

    rc = s->vt->list(s->self, "", NULL, 0, collect_cb, &c);
    CK(rc == DIMPLE_OK, "list of the whole store succeeds");
    empty = rc == DIMPLE_OK && c.keys.n == 0;
    if (!CK(empty, "the store given to the contract suite is empty") &&
        c.keys.n)
        printf("#   first key: '%s' (pass a conf for an EMPTY store)\n",
               c.keys.v[0]);
    strv_free(&c.keys);
    if (!empty)
        s->stop = "the store is not empty";
}

static void t_roundtrip(suite *s)
{
    static const unsigned char bin[] = {'a', 0, 'b', 0, 0, 'c', 0xff, 0x80, 0};
    size_t big_n = 1024 * 1024;
    unsigned char *big = malloc(big_n);
    unsigned char one = 'x';
    unsigned char reuse[16];
    buf b;
    int rc;

    if (!big)
        abort();
    for (size_t i = 0; i < big_n; i += 8) {
        uint64_t r = rnd();
        memcpy(big + i, &r, 8);
    }
    CHECK_RC(s_put(s, "rt/empty", "", 0), DIMPLE_OK);
    check_content(s, "rt/empty", "", 0);
    CHECK_RC(s_put(s, "rt/one", &one, 1), DIMPLE_OK);
    check_content(s, "rt/one", &one, 1);
    CHECK_RC(s_put(s, "rt/big", big, big_n), DIMPLE_OK);
    check_content(s, "rt/big", big, big_n);
    CHECK_RC(s_put(s, "rt/bin", bin, sizeof bin), DIMPLE_OK);
    check_content(s, "rt/bin", bin, sizeof bin);

    /* put takes a copy: the caller's buffer is its own again. */
    memcpy(reuse, "0123456789abcdef", 16);
    CHECK_RC(s_put(s, "rt/reuse", reuse, 16), DIMPLE_OK);
    memset(reuse, '!', 16);
    check_content(s, "rt/reuse", "0123456789abcdef", 16);

    /* A sink error stops get and comes back as it is. */
    memset(&b, 0, sizeof b);
    b.fail_with = DIMPLE_ECONFLICT;
    rc = s->vt->get(s->self, "rt/big", &(dimple_sink){buf_write, &b});
    CK(rc == DIMPLE_ECONFLICT, "get returns the sink's error code");
    CK(b.writes == 1, "get stops writing after the sink's error");
    free(big);
}

static void t_overwrite(suite *s)
{
    CHECK_RC(s_puts(s, "ow/k", "first"), DIMPLE_OK);
    CHECK_RC(s_puts(s, "ow/k", "second, longer"), DIMPLE_OK);
    check_str(s, "ow/k", "second, longer");
    CHECK_RC(s_puts(s, "ow/k", "3"), DIMPLE_OK);
    check_str(s, "ow/k", "3"); /* shorter: no tail of the old one */
    CHECK_RC(s_put(s, "ow/k", "", 0), DIMPLE_OK);
    check_str(s, "ow/k", "");
    check_list(s, "ow/", NULL, 0);
}

static void t_notfound(suite *s)
{
    buf b;
    int rc;

    test_host_clear(&s->th);
    rc = s_get(s, "nf/missing", &b);
    CK(rc == DIMPLE_ENOTFOUND, "get 'nf/missing' is DIMPLE_ENOTFOUND");
    CK(b.n == 0 && b.writes == 0, "nothing written to the sink");
    check_msg(s, rc, "get", "nf/missing", "nf/missing");
    free(b.p);

    CHECK_RC(s_puts(s, "nf/dir/x", "x"), DIMPLE_OK);
    test_host_clear(&s->th);
    rc = s_get(s, "nf/dir", &b);
    CK(rc == DIMPLE_ENOTFOUND,
       "get of 'nf/dir', a folder of other keys, is DIMPLE_ENOTFOUND");
    CK(b.n == 0, "nothing written to the sink");
    free(b.p);
    rc = s_get(s, "nf/dir/x/y", &b);
    CK(rc == DIMPLE_ENOTFOUND,
       "get of 'nf/dir/x/y', below an object, is DIMPLE_ENOTFOUND");
    free(b.p);
}

/* Keys whose locale order differs from byte order. */
static const char *const order_keys[] = {
    "ord/a",    "ord/B",    "ord/a-b",  "ord/a.b", "ord/a0",
    "ord/a b",  "ord/a+",   "ord/a&",   "ord/a=",  "ord/é",
    "ord/e",    "ord/z",    "ord/Z",    "ord/a~",  "ord/A",
    "ord/日本", "ord/_",    "ord/a%20", "ord/1",   "ord/10",
    "ord/9",    "ord/ab/c", "ord/ab-",  "ord/ab0", NULL};

static void t_order(suite *s)
{
    static const char *const literal[] = {
        "ord/1",  "ord/10",  "ord/9",    "ord/A",    "ord/B",
        "ord/Z",  "ord/_",   "ord/a",    "ord/a b",  "ord/a%20",
        "ord/a&", "ord/a+",  "ord/a-b",  "ord/a.b",  "ord/a0",
        "ord/a=", "ord/ab-", "ord/ab/c", "ord/ab0",  "ord/a~",
        "ord/e",  "ord/z",   "ord/é",    "ord/日本", NULL};
    size_t n = 0;

    while (order_keys[n])
        n++;
    /* Insert in a scrambled order: sortedness must come from the plugin. */
    for (size_t i = 0; i < n; i++) {
        const char *k = order_keys[(i * 7) % n];
        CK(s_puts(s, k, k) == DIMPLE_OK, "put '%s'", k);
    }
    check_list_is(s, "ord/", NULL, 0, literal);
    check_list(s, "", NULL, 0);
    for (size_t i = 0; i < n; i++)
        check_str(s, order_keys[i], order_keys[i]);
}

static void t_object_and_folder(suite *s)
{
    int rc;

    CHECK_RC(s_puts(s, "of/a", "object"), DIMPLE_OK);
    test_host_clear(&s->th);
    rc = s_puts(s, "of/a/b", "below");
    CK(rc == DIMPLE_OK || rc == DIMPLE_ECONFLICT,
       "put 'of/a/b' under object 'of/a': stored or DIMPLE_ECONFLICT");
    if (rc == DIMPLE_ECONFLICT) {
        printf("# %s keeps objects and folders apart\n", s->plugin);
        check_msg(s, rc, "put", "of/a/b", "of/a/b");
    } else {
        check_str(s, "of/a/b", "below");
    }
    check_str(s, "of/a", "object");
    check_list(s, "of/", NULL, 0);
    check_list(s, "of/", NULL, DIMPLE_LIST_SHALLOW);

    CHECK_RC(s_puts(s, "of2/x/y", "below"), DIMPLE_OK);
    test_host_clear(&s->th);
    rc = s_puts(s, "of2/x", "object");
    CK(rc == DIMPLE_OK || rc == DIMPLE_ECONFLICT,
       "put 'of2/x' over folder 'of2/x/': stored or DIMPLE_ECONFLICT");
    if (rc == DIMPLE_ECONFLICT)
        check_msg(s, rc, "put", "of2/x", "of2/x");
    else
        check_str(s, "of2/x", "object");
    check_str(s, "of2/x/y", "below");
    check_list(s, "of2/", NULL, 0);
}

static void t_prefix(suite *s)
{
    static const char *const prefixes[] = {
        "ord/a",  "ord/a/",   "ord/ab", "ord/ab/", "ord/B", "ord/é", "ord/日",
        "ord/zz", "nothere/", "o",      "ord",     "r",     "",      NULL};

    for (size_t i = 0; prefixes[i]; i++)
        check_list(s, prefixes[i], NULL, 0);
    check_list_is(s, "ord/a", "ord/a=", 0,
                  (const char *const[]){"ord/ab-", "ord/ab/c", "ord/ab0",
                                        "ord/a~", NULL});
}

static void t_start_after(suite *s)
{
    static const char *const after[] = {
        "ord/a-b",              /* an existing key: strictly after it */
        "ord/a,",               /* absent, between keys */
        "ord/ab/",              /* a folder name */
        "ord/ab/c",             /* the only key of that folder */
        "ord/",                 /* the prefix itself */
        "a",                    /* before the prefix */
        "ord0",                 /* after every key of the prefix */
        "ord/日本",             /* the last key */
        "ord/\xf4\x8f\xbf\xbf", /* U+10FFFF: after every key */
        "",
        NULL};

    for (size_t i = 0; after[i]; i++)
        check_list(s, "ord/", after[i], 0);
    check_list(s, "ord/", NULL, 0);
    check_list(s, "", "ord/a", 0);
    check_list_is(s, "ord/", "ord/a=", 0,
                  (const char *const[]){"ord/ab-", "ord/ab/c", "ord/ab0",
                                        "ord/a~", "ord/e", "ord/z", "ord/é",
                                        "ord/日本", NULL});
    check_list_is(s, "ord/", "ord/é", 0,
                  (const char *const[]){"ord/日本", NULL});
    check_list_is(s, "ord/", "ord/日本", 0, (const char *const[]){NULL});
}

static void t_shallow(suite *s)
{
    static const char *const keys[] = {"sh/x",     "sh/d/1", "sh/d/2",
                                       "sh/d/e/3", "sh/e/1", "sh/d0",
                                       "sh/c-",    "sh/c",   NULL};
    static const char *const after[] = {
        "sh/c", "sh/d/", "sh/d/1", "sh/d", "sh/d0", "sh/e/", "sh/x", "", NULL};

    for (size_t i = 0; keys[i]; i++)
        CK(s_puts(s, keys[i], "s") == DIMPLE_OK, "put '%s'", keys[i]);
    check_list_is(s, "sh/", NULL, DIMPLE_LIST_SHALLOW,
                  (const char *const[]){"sh/c", "sh/c-", "sh/d/", "sh/d0",
                                        "sh/e/", "sh/x", NULL});
    check_list_is(s, "sh/", "sh/d/", DIMPLE_LIST_SHALLOW,
                  (const char *const[]){"sh/d0", "sh/e/", "sh/x", NULL});
    check_list_is(s, "sh/d/", NULL, DIMPLE_LIST_SHALLOW,
                  (const char *const[]){"sh/d/1", "sh/d/2", "sh/d/e/", NULL});
    for (size_t i = 0; after[i]; i++)
        check_list(s, "sh/", after[i], DIMPLE_LIST_SHALLOW);
    check_list(s, "sh/d", NULL, DIMPLE_LIST_SHALLOW);
    check_list(s, "", NULL, DIMPLE_LIST_SHALLOW);
    check_list(s, "s", NULL, DIMPLE_LIST_SHALLOW);
    check_list(s, "ord/", NULL, DIMPLE_LIST_SHALLOW);

    /* A folder shows only while it holds a key. */
    CHECK_RC(s_remove(s, "sh/e/1"), DIMPLE_OK);
    check_list_is(
        s, "sh/", NULL, DIMPLE_LIST_SHALLOW,
        (const char *const[]){"sh/c", "sh/c-", "sh/d/", "sh/d0", "sh/x", NULL});
    CHECK_RC(s_remove(s, "sh/d/e/3"), DIMPLE_OK);
    check_list(s, "sh/d/", NULL, DIMPLE_LIST_SHALLOW);
}

static void t_stop(suite *s)
{
    collect c = {0};
    int rc;

    c.stop_at = 3;
    c.stop_rc = 7;
    rc = s->vt->list(s->self, "ord/", NULL, 0, collect_cb, &c);
    CK(rc == 7, "list returns the callback's 7");
    CK(c.calls == 3, "no callback after the one that stopped");
    strv_free(&c.keys);

    memset(&c, 0, sizeof c);
    c.stop_at = 1;
    c.stop_rc = -42;
    rc = s->vt->list(s->self, "", NULL, DIMPLE_LIST_SHALLOW, collect_cb, &c);
    CK(rc == -42, "shallow list returns the callback's -42");
    CK(c.calls == 1, "no callback after the one that stopped");
    strv_free(&c.keys);
}

static void t_many(suite *s)
{
    const char *env = getenv("DIMPLE_CONTRACT_MANY");
    long n = env && *env ? strtol(env, NULL, 10) : 2500;
    size_t *perm;
    long failed = 0;
    strv pages = {0}, want = {0};
    char key[64];

    if (n < 1)
        n = 1;
    printf("# %ld keys (DIMPLE_CONTRACT_MANY)\n", n);
    perm = malloc((size_t)n * sizeof *perm);
    if (!perm)
        abort();
    for (long i = 0; i < n; i++)
        perm[i] = (size_t)i;
    for (long i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rnd() % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (long i = 0; i < n; i++) {
        /* Unpadded numbers: "k10" < "k2", byte order is not numeric. */
        snprintf(key, sizeof key, "many/k%zu", perm[i]);
        if (s_puts(s, key, key) != DIMPLE_OK && failed++ == 0)
            printf("#   put '%s': %s\n", key, s->th.last_msg);
    }
    CK(failed == 0, "%ld puts succeed", n);
    check_list(s, "many/", NULL, 0);
    check_list(s, "", NULL, DIMPLE_LIST_SHALLOW);

    /* Page by page (1000 at a time), continuing after the last key. */
    for (int page = 0; page < 100; page++) {
        collect c = {0};
        int rc;
        c.stop_at = 1000;
        c.stop_rc = 1;
        rc =
            s->vt->list(s->self, "many/", pages.n ? pages.v[pages.n - 1] : NULL,
                        0, collect_cb, &c);
        for (size_t i = 0; i < c.keys.n; i++)
            strv_push(&pages, c.keys.v[i]);
        strv_free(&c.keys);
        if (rc != 1)
            break;
    }
    model_list(s, "many/", NULL, 0, &want);
    bool same = pages.n == want.n;
    for (size_t i = 0; same && i < want.n; i++)
        same = strcmp(pages.v[i], want.v[i]) == 0;
    CK(same,
       "pages of 1000 continued with start_after give all %zu keys "
       "once, in order (got %zu)",
       want.n, pages.n);
    strv_free(&pages);
    strv_free(&want);
    free(perm);
}

static void t_remove(suite *s)
{
    buf b;
    int rc;

    CHECK_RC(s_puts(s, "rm/a", "a"), DIMPLE_OK);
    CHECK_RC(s_puts(s, "rm/b", "b"), DIMPLE_OK);
    CHECK_RC(s_remove(s, "rm/a"), DIMPLE_OK);
    rc = s_get(s, "rm/a", &b);
    CK(rc == DIMPLE_ENOTFOUND, "get after remove is DIMPLE_ENOTFOUND");
    free(b.p);
    check_list(s, "rm/", NULL, 0);
    CHECK_RC(s_remove(s, "rm/a"), DIMPLE_OK);        /* again */
    CHECK_RC(s_remove(s, "rm/never"), DIMPLE_OK);    /* never there */
    CHECK_RC(s_remove(s, "nothere/x/y"), DIMPLE_OK); /* no folder either */
    CHECK_RC(s_remove(s, "rm/b/c"), DIMPLE_OK);      /* below an object */
    check_str(s, "rm/b", "b");
    CHECK_RC(s_puts(s, "rm/f/x", "x"), DIMPLE_OK);
    CHECK_RC(s->vt->remove(s->self, "rm/f"), DIMPLE_OK); /* a folder name */
    check_str(s, "rm/f/x", "x");
    check_list(s, "rm/", NULL, 0);
}

static void t_put_if_absent(suite *s)
{
    int rc;

    if (!s->vt->put_if_absent) {
        printf("# %s has no put_if_absent: nothing to check\n", s->plugin);
        return;
    }
    rc = s->vt->put_if_absent(s->self, "pia/k", "one", 3);
    CK(rc == DIMPLE_OK, "put_if_absent of a new key succeeds");
    if (rc == DIMPLE_OK)
        model_add(s, "pia/k");
    test_host_clear(&s->th);
    rc = s->vt->put_if_absent(s->self, "pia/k", "two!", 4);
    CK(rc == DIMPLE_EEXISTS, "second put_if_absent is DIMPLE_EEXISTS");
    check_msg(s, rc, "put_if_absent", "pia/k", "pia/k");
    check_str(s, "pia/k", "one");

    CHECK_RC(s_puts(s, "pia/p", "put"), DIMPLE_OK);
    rc = s->vt->put_if_absent(s->self, "pia/p", "x", 1);
    CK(rc == DIMPLE_EEXISTS, "put_if_absent over a put object is EEXISTS");
    check_str(s, "pia/p", "put");

    CHECK_RC(s_remove(s, "pia/k"), DIMPLE_OK);
    rc = s->vt->put_if_absent(s->self, "pia/k", "three", 5);
    CK(rc == DIMPLE_OK, "put_if_absent after remove succeeds");
    if (rc == DIMPLE_OK)
        model_add(s, "pia/k");
    check_str(s, "pia/k", "three");

    rc = s->vt->put_if_absent(s->self, "pia/empty", "", 0);
    CK(rc == DIMPLE_OK, "put_if_absent of 0 bytes succeeds");
    if (rc == DIMPLE_OK)
        model_add(s, "pia/empty");
    check_str(s, "pia/empty", "");
    check_list(s, "pia/", NULL, 0);
}

/* Two instances on one store (two processes, in effect), one thread each,
 * racing put_if_absent for the same fresh key: exactly one may win, and
 * the object holds the winner's bytes. */
typedef struct racer {
    const dimple_storage_vtable *vt;
    void *self;
    pthread_barrier_t *go;
    char key[64], val[64];
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->go);
    r->rc = r->vt->put_if_absent(r->self, r->key, r->val, strlen(r->val));
    return NULL;
}

static void t_concurrent(suite *s)
{
    enum { ROUNDS = 20 };
    test_host th2;
    void *other = NULL;
    pthread_barrier_t go;
    buf b;
    int rc, wins_ok = 0, one_winner = 0, content_ok = 0, cannot = 0;

    if (!s->vt->put_if_absent) {
        printf("# %s has no put_if_absent: the core emulates it, which is "
               "not atomic; nothing to check\n",
               s->plugin);
        return;
    }
    test_host_init(&th2, "storage");
    rc = s->vt->create(&other, s->conf, &th2.host);
    if (!CK(rc == DIMPLE_OK, "a second instance from the same conf")) {
        printf("#   %d: %s\n", rc, th2.last_msg);
        return;
    }
    /* Two private stores (memory without `name`) share nothing to race on. */
    CHECK_RC(s_puts(s, "conc/probe", "p"), DIMPLE_OK);
    memset(&b, 0, sizeof b);
    rc = s->vt->get(other, "conc/probe", &(dimple_sink){buf_write, &b});
    free(b.p);
    CHECK_RC(s_remove(s, "conc/probe"), DIMPLE_OK);
    if (rc == DIMPLE_ENOTFOUND) {
        printf("# two instances of this conf do not share a store: no race "
               "to check\n");
        s->vt->destroy(other);
        return;
    }
    pthread_barrier_init(&go, NULL, 2);
    for (int round = 0; round < ROUNDS; round++) {
        racer r[2];
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (racer){s->vt, i ? other : s->self, &go, "", "", 0};
            snprintf(r[i].key, sizeof r[i].key, "conc/k%02d", round);
            snprintf(r[i].val, sizeof r[i].val, "writer %d of round %d", i,
                     round);
        }
        for (int i = 0; i < 2; i++)
            if (pthread_create(&t[i], NULL, race, &r[i]) != 0)
                abort();
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        if (r[0].rc == DIMPLE_EPLUGIN || r[1].rc == DIMPLE_EPLUGIN) {
            cannot++; /* "this server cannot": the core emulates */
            continue;
        }
        int won = (r[0].rc == DIMPLE_OK) + (r[1].rc == DIMPLE_OK);
        int lost = (r[0].rc == DIMPLE_EEXISTS) + (r[1].rc == DIMPLE_EEXISTS);
        wins_ok += won + lost == 2;
        one_winner += won == 1;
        if (won)
            model_add(s, r[0].key);
        if (won == 1) {
            const racer *w = r[0].rc == DIMPLE_OK ? &r[0] : &r[1];
            memset(&b, 0, sizeof b);
            rc = s_get(s, w->key, &b);
            content_ok += rc == DIMPLE_OK && b.n == strlen(w->val) &&
                          memcmp(b.p, w->val, b.n) == 0;
            free(b.p);
        } else if (won + lost != 2 || round == 0) {
            printf("#   round %d: %d and %d\n", round, r[0].rc, r[1].rc);
        }
    }
    pthread_barrier_destroy(&go);
    s->vt->destroy(other);
    if (cannot) {
        printf("# put_if_absent answered DIMPLE_EPLUGIN (this server cannot) "
               "in %d of %d rounds: the core emulates it there\n",
               cannot, ROUNDS);
        return;
    }
    CK(wins_ok == ROUNDS,
       "concurrent put_if_absent: every call is DIMPLE_OK or DIMPLE_EEXISTS");
    CK(one_winner == ROUNDS,
       "concurrent put_if_absent of one key from two instances: exactly one "
       "wins (%d of %d rounds)",
       one_winner, ROUNDS);
    CK(content_ok == one_winner,
       "concurrent put_if_absent: the object holds the winner's bytes");
}

static void t_invalid(suite *s)
{
    static const char *const bad[] = {
        "../x", "/abs", "a//b", "a\\b", "",          "a/./b", "a/",
        ".",    "..",   "a/..", "./a",  "x/../../y", NULL};
    static const char *const bad_prefix[] = {"../",  "/",     "/abs", "a//",
                                             "../a", "a/../", "a\\",  NULL};

    for (size_t i = 0; bad[i]; i++) {
        const char *k = bad[i];
        buf b;
        int rc;

        test_host_clear(&s->th);
        rc = s->vt->put(s->self, k, "x", 1);
        CK(rc == DIMPLE_EINVAL, "put '%s' is DIMPLE_EINVAL", k);
        check_msg(s, rc, "put", k, NULL);

        test_host_clear(&s->th);
        rc = s_get(s, k, &b);
        CK(rc == DIMPLE_EINVAL, "get '%s' is DIMPLE_EINVAL", k);
        check_msg(s, rc, "get", k, NULL);
        free(b.p);

        test_host_clear(&s->th);
        rc = s->vt->remove(s->self, k);
        CK(rc == DIMPLE_EINVAL, "remove '%s' is DIMPLE_EINVAL", k);
        check_msg(s, rc, "remove", k, NULL);

        if (s->vt->put_if_absent) {
            test_host_clear(&s->th);
            rc = s->vt->put_if_absent(s->self, k, "x", 1);
            CK(rc == DIMPLE_EINVAL, "put_if_absent '%s' is DIMPLE_EINVAL", k);
            check_msg(s, rc, "put_if_absent", k, NULL);
        }
    }
    for (size_t i = 0; bad_prefix[i]; i++) {
        collect c = {0};
        int rc;
        test_host_clear(&s->th);
        rc = s->vt->list(s->self, bad_prefix[i], NULL, 0, collect_cb, &c);
        CK(rc == DIMPLE_EINVAL && c.calls == 0,
           "list with prefix '%s' is DIMPLE_EINVAL", bad_prefix[i]);
        check_msg(s, rc, "list", bad_prefix[i], NULL);
        strv_free(&c.keys);
    }
    /* Nothing was created by the refused calls. */
    check_list(s, "", NULL, 0);
}

static void t_cleanup(suite *s)
{
    strv keys = {0};
    size_t failed = 0;

    for (size_t i = 0; i < s->model.n; i++)
        strv_push(&keys, s->model.v[i]);
    for (size_t i = 0; i < keys.n; i++)
        if (s_remove(s, keys.v[i]) != DIMPLE_OK && failed++ == 0)
            printf("#   remove '%s': %s\n", keys.v[i], s->th.last_msg);
    CK(failed == 0, "%zu removes succeed", keys.n);
    CK(s->model.n == 0, "the model is empty");
    check_list(s, "", NULL, 0);
    check_list(s, "", NULL, DIMPLE_LIST_SHALLOW);
    strv_free(&keys);
}

/* The checks after create(), in order. */
static const struct group {
    const char *name;
    void (*run)(suite *s);
} groups[] = {
    {"create rejects unknown keys", t_create},
    {"the store starts empty", t_empty},
    {"put/get round trip", t_roundtrip},
    {"put overwrites", t_overwrite},
    {"get of a missing key", t_notfound},
    {"list is in byte order", t_order},
    {"a key that is also a folder", t_object_and_folder},
    {"list with a prefix", t_prefix},
    {"list with start_after", t_start_after},
    {"shallow list", t_shallow},
    {"the callback stops a listing", t_stop},
    {"remove", t_remove},
    {"put_if_absent", t_put_if_absent},
    {"put_if_absent from two threads", t_concurrent},
    {"invalid keys are refused", t_invalid},
    {"a long listing", t_many},
    {"remove everything", t_cleanup},
};

int storage_contract_run_(const char *plugin_name, const dimple_kv *conf,
                          int *count, int *failed)
{
    void *dl = NULL;
    const dimple_plugin *pl;
    suite s;
    int before = *failed, rc;

    /* Continue the caller's TAP numbering (test.h counters are per file). */
    test_count_ = *count;
    test_failed_ = *failed;

    memset(&s, 0, sizeof s);
    s.plugin = plugin_name;
    s.conf = conf;
    pl = test_plugin_load(plugin_name, &dl);
    s.plugin = pl->name; /* plugin_name may be a path */
    set_test(&s, "load");
    if (!CK(pl->kind == DIMPLE_KIND_STORAGE, "%s is a storage plugin",
            s.plugin)) {
        s.stop = "not a storage plugin";
        goto out;
    }
    s.vt = pl->vt.storage;
    if (!CK(s.vt &&
                s.vt->size >= offsetof(dimple_storage_vtable, put_if_absent) &&
                s.vt->create && s.vt->destroy && s.vt->put && s.vt->get &&
                s.vt->list && s.vt->remove,
            "%s has every required storage slot", s.plugin)) {
        s.stop = "a required slot is missing";
        goto out;
    }
    if (s.vt->size < sizeof(dimple_storage_vtable)) {
        /* An older, shorter table: treat missing slots as NULL. */
        static dimple_storage_vtable copy;
        memset(&copy, 0, sizeof copy);
        memcpy(&copy, s.vt, s.vt->size);
        s.vt = &copy;
    }
    test_host_init(&s.th, "storage");

    set_test(&s, "create");
    rc = s.vt->create(&s.self, conf, &s.th.host);
    if (!CK(rc == DIMPLE_OK, "create an instance of %s", s.plugin)) {
        /* The plugin's own words say what to fix in the conf. */
        printf("#   create failed with %s (%d): %s\n", test_code_name(rc), rc,
               s.th.last_msg[0] ? s.th.last_msg
                                : "(the plugin reported no message)");
        fprintf(stderr, "%s: create failed with %s: %s\n", s.plugin,
                test_code_name(rc), s.th.last_msg);
        s.self = NULL;
        s.stop = "no instance: create failed";
        goto out;
    }
out:
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        set_test(&s, groups[i].name);
        if (s.stop) {
            /* Not run is not passed: say so and count it as failed. */
            CK(0, "not run (%s)", s.stop);
            continue;
        }
        groups[i].run(&s);
    }
    if (s.self)
        s.vt->destroy(s.self);
    strv_free(&s.model);
    if (dl)
        dlclose(dl);
    test_current_ = "";
    *count = test_count_;
    *failed = test_failed_;
    return test_failed_ - before;
}
