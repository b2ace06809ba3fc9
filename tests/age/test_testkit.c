/*
 * test_testkit.c — every non-post-quantum vector of the C2SP age testkit
 * (tests/age/testkit, vendored: its README says from where) through the
 * decrypt path: the result
 * class (success, no match, HMAC/header/payload/armor failure) and the
 * SHA-256 of the released plaintext must match the vector.
 */
#include "age_internal.h"
#include "test.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <zlib.h>

#define EXPECTED_VECTORS 124

typedef struct vector {
    char expect[32];
    char payload[65];
    char ids[4][128];
    size_t n_ids;
    char pass[128];
    int has_pass, armored, compressed, pq;
    unsigned char *data;
    size_t len;
} vector;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *p = NULL;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

static int inflate_all(const unsigned char *in, size_t n, unsigned char **out,
                       size_t *out_len)
{
    z_stream z;
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    int rc;
    memset(&z, 0, sizeof z);
    if (!buf || inflateInit(&z) != Z_OK)
        return -1;
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    do {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        z.next_out = buf + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
    } while (rc == Z_OK);
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static int parse_vector(unsigned char *raw, size_t n, vector *v)
{
    size_t i = 0;
    memset(v, 0, sizeof *v);
    while (i < n) {
        size_t j = i;
        while (j < n && raw[j] != '\n')
            j++;
        if (j == i) { /* the empty line: the age file follows */
            i++;
            break;
        }
        char line[512];
        size_t k = j - i < sizeof line - 1 ? j - i : sizeof line - 1;
        memcpy(line, raw + i, k);
        line[k] = '\0';
        char *colon = strstr(line, ": ");
        if (colon) {
            *colon = '\0';
            const char *val = colon + 2;
            if (!strcmp(line, "expect"))
                snprintf(v->expect, sizeof v->expect, "%s", val);
            else if (!strcmp(line, "payload"))
                snprintf(v->payload, sizeof v->payload, "%s", val);
            else if (!strcmp(line, "identity")) {
                if (!strncmp(val, "AGE-SECRET-KEY-PQ-", 18))
                    v->pq = 1;
                else if (v->n_ids < 4)
                    snprintf(v->ids[v->n_ids++], 128, "%s", val);
            } else if (!strcmp(line, "passphrase")) {
                snprintf(v->pass, sizeof v->pass, "%s", val);
                v->has_pass = 1;
            } else if (!strcmp(line, "armored"))
                v->armored = !strcmp(val, "yes");
            else if (!strcmp(line, "compressed"))
                v->compressed = !strcmp(val, "zlib");
        }
        i = j + 1;
    }
    if (v->compressed)
        return inflate_all(raw + i, n - i, &v->data, &v->len);
    v->data = malloc(n - i + 1);
    memcpy(v->data, raw + i, n - i);
    v->len = n - i;
    return 0;
}

static int hash_write(void *ctx, const void *p, size_t n)
{
    return EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : DIMPLE_ERROR;
}

/* Decrypt v with the given armor mode; returns the class, hash in hex. */
static int run(const vector *v, int armor, char hex[65], age_err *e)
{
    age_identity ids[5];
    size_t n = 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, v->data, v->len);
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    dimple_sink sink = {hash_write, h};
    age_keyring kr = {0};

    memset(ids, 0, sizeof ids);
    for (size_t i = 0; i < v->n_ids; i++) {
        ids[n].type = AGE_ID_X25519;
        if (age_identity_parse(v->ids[i], ids[n].sk) ||
            age_x25519_public(ids[n].sk, ids[n].pk))
            return -1;
        n++;
    }
    if (v->has_pass) {
        ids[n].type = AGE_ID_SCRYPT;
        ids[n].pass = v->pass;
        ids[n].pass_len = strlen(v->pass);
        n++;
    }
    kr.ids = ids;
    kr.n = n;
    memset(e, 0, sizeof *e);
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    int rc = age_decrypt(&src, &sink, armor, &kr, e);
    EVP_DigestFinal_ex(h, md, &mdlen);
    EVP_MD_CTX_free(h);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    if (rc && e->cls == AGE_E_NONE)
        return AGE_E_OTHER;
    return rc ? e->cls : AGE_E_NONE;
}

TEST(testkit)
{
    const char *src = getenv("DIMPLE_TEST_SRCDIR");
    char dir[1024], path[1200];
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, ran = 0, passed = 0, auto_same = 0, auto_refused = 0;

    CHECK(src != NULL);
    if (!src)
        return;
    snprintf(dir, sizeof dir, "%s/tests/age/testkit", src);
    d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "README.md") ||
            !strcmp(de->d_name, "LICENSE"))
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        vector v;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unsigned char *raw = slurp(path, &len);
        if (!raw || parse_vector(raw, len, &v)) {
            printf("# %s: cannot read the vector\n", names[i]);
            CHECK(!"vector readable");
            free(raw);
            continue;
        }
        free(raw);
        if (v.pq) { /* post-quantum hybrid: not in age v1.1 nor OpenSSL 3.0 */
            free(v.data);
            continue;
        }
        ran++;
        char hex[65], hex2[65];
        age_err e, e2;
        int cls = run(&v, v.armored ? AGE_ARMOR_ON : AGE_ARMOR_OFF, hex, &e);
        int ok = !strcmp(age_class_name(cls), v.expect) &&
                 (!v.payload[0] || !strcmp(hex, v.payload));
        if (ok)
            passed++;
        else
            printf("# %s: expected %s, got %s (%s)%s\n", names[i], v.expect,
                   age_class_name(cls), e.msg,
                   v.payload[0] && strcmp(hex, v.payload)
                       ? " payload hash differs"
                       : "");
        /* Armor auto-detection (what the plugin uses) agrees. */
        int cls2 = run(&v, AGE_ARMOR_AUTO, hex2, &e2);
        if (cls2 == cls && !strcmp(hex, hex2)) {
            auto_same++;
        } else {
            /* Garbage before BEGIN hides the armor from detection: still
             * refused, as a header failure instead of an armor failure. */
            printf("# %s: auto-detect gives %s (%s), explicit %s\n", names[i],
                   age_class_name(cls2), e2.msg, age_class_name(cls));
            if (cls == AGE_E_ARMOR && cls2 == AGE_E_HEADER)
                auto_refused++;
        }
        free(v.data);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    printf("# testkit: %zu non-PQ vectors run, %zu as expected, %zu same "
           "with armor auto-detection\n",
           ran, passed, auto_same);
    CHECK(ran == EXPECTED_VECTORS);
    CHECK(passed == ran);
    CHECK(auto_same + auto_refused == ran);
    CHECK(auto_refused <= 2);
}

int main(void)
{
    RUN(testkit);
    return test_done();
}
