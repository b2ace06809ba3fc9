/*
 * test_unit.c — the age engine's parts: strict base64, Bech32 keys, armor,
 * header parsing edge cases, STREAM chunking and its failure rules, scrypt
 * work-factor bounds, and streaming in constant memory.
 */
#include "age_internal.h"
#include "b64.h"
#include "bech32.h"
#include "test.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#define ID_TXT                                                                 \
    "AGE-SECRET-KEY-"                                                          \
    "1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"

/* ------------------------------------------------------------ helpers */

typedef struct keys {
    age_identity id;
    age_recipient r;
} keys;

static void make_keys(keys *k)
{
    memset(k, 0, sizeof *k);
    k->id.type = k->r.type = AGE_ID_X25519;
    age_x25519_keygen(k->id.sk, k->id.pk);
    memcpy(k->r.pk, k->id.pk, 32);
}

static int enc_buf(const void *p, size_t n, const age_recipient *r, size_t nr,
                   int armor, age_buf *out)
{
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, p, n);
    dimple_sink sink = age_buf_sink(out);
    age_err e = {0};
    return age_encrypt(&src, &sink, armor, r, nr, &e);
}

static int dec_buf(const void *p, size_t n, const age_identity *ids, size_t ni,
                   age_buf *out, age_err *e)
{
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, p, n);
    dimple_sink sink = age_buf_sink(out);
    age_keyring kr = {ids, ni, NULL, NULL};
    memset(e, 0, sizeof *e);
    return age_decrypt(&src, &sink, AGE_ARMOR_AUTO, &kr, e);
}

static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + (i >> 8));
    return p;
}

/* Offset of the payload (after "--- MAC\n"). */
static size_t payload_offset(const age_buf *b)
{
    const unsigned char *m = memmem(b->p, b->n, "\n--- ", 5);
    const unsigned char *nl =
        m ? memchr(m + 1, '\n', b->n - (size_t)(m + 1 - b->p)) : NULL;
    return nl ? (size_t)(nl + 1 - b->p) : 0;
}

/* ------------------------------------------------------------- base64 */

TEST(base64)
{
    unsigned char in[64], out[64];
    char enc[128];
    size_t n;
    int ok = 1;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (int pad = 0; pad <= 1; pad++)
        for (size_t len = 0; len <= 50; len++) {
            age_b64_encode(in, len, enc, pad);
            ok &= strlen(enc) == age_b64_enc_len(len, pad);
            ok &=
                age_b64_decode(enc, strlen(enc), out, sizeof out, &n, pad) == 0;
            ok &= n == len && memcmp(in, out, len) == 0;
        }
    CHECK(ok);
    CHECK(age_b64_decode("AA", 2, out, 8, &n, 0) == 0 && n == 1);
    CHECK(age_b64_decode("AB", 2, out, 8, &n, 0) == -1); /* non-canonical */
    CHECK(age_b64_decode("AAA", 3, out, 8, &n, 0) == 0 && n == 2);
    CHECK(age_b64_decode("AAB", 3, out, 8, &n, 0) == -1);  /* non-canonical */
    CHECK(age_b64_decode("AA==", 4, out, 8, &n, 0) == -1); /* no padding */
    CHECK(age_b64_decode("A", 1, out, 8, &n, 0) == -1);
    CHECK(age_b64_decode("AAAAA", 5, out, 8, &n, 0) == -1);
    CHECK(age_b64_decode("AA A", 4, out, 8, &n, 0) == -1);
    CHECK(age_b64_decode("AA\nA", 4, out, 8, &n, 0) == -1);
    CHECK(age_b64_decode("AA-_", 4, out, 8, &n, 0) == -1); /* URL alphabet */
    CHECK(age_b64_decode("", 0, out, 8, &n, 0) == 0 && n == 0);
    CHECK(age_b64_decode("QQ==", 4, out, 8, &n, 1) == 0 && n == 1 &&
          out[0] == 'A');
    CHECK(age_b64_decode("QR==", 4, out, 8, &n, 1) == -1);
    CHECK(age_b64_decode("QQ=", 3, out, 8, &n, 1) == -1);
    CHECK(age_b64_decode("QQ", 2, out, 8, &n, 1) == -1);
    CHECK(age_b64_decode("Q===", 4, out, 8, &n, 1) == -1);
    CHECK(age_b64_decode("QQ=A", 4, out, 8, &n, 1) == -1);
    CHECK(age_b64_decode("AAAA", 4, out, 2, &n, 0) == -1); /* over cap */
}

/* ------------------------------------------------------------- bech32 */

TEST(bech32)
{
    unsigned char sk[32], sk2[32], pk[32], pk2[32];
    char txt[128], rtxt[128], bad[128];
    CHECK(age_identity_parse(ID_TXT, sk) == 0);
    CHECK(age_identity_format(sk, txt) == 0);
    CHECK_STR(txt, ID_TXT);
    CHECK(age_x25519_public(sk, pk) == 0);
    CHECK(age_recipient_format(pk, rtxt) == 0);
    CHECK(strncmp(rtxt, "age1", 4) == 0 && strlen(rtxt) == 62);
    CHECK(age_recipient_parse(rtxt, pk2) == 0 && memcmp(pk, pk2, 32) == 0);
    /* Case rules: identities uppercase, recipients lowercase, never mixed. */
    snprintf(bad, sizeof bad, "%s", ID_TXT);
    for (char *c = bad; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    CHECK(age_identity_parse(bad, sk2) != 0);
    snprintf(bad, sizeof bad, "%s", ID_TXT);
    bad[30] = (char)(bad[30] >= 'A' && bad[30] <= 'Z' ? bad[30] + 32 : bad[30]);
    CHECK(age_identity_parse(bad, sk2) != 0);
    snprintf(bad, sizeof bad, "%s", rtxt);
    for (char *c = bad; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 32);
    CHECK(age_recipient_parse(bad, pk2) != 0);
    /* Checksum: any changed character is caught. */
    snprintf(bad, sizeof bad, "%s", rtxt);
    bad[20] = bad[20] == 'q' ? 'p' : 'q';
    CHECK(age_recipient_parse(bad, pk2) != 0);
    snprintf(bad, sizeof bad, "%s", rtxt);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'q' ? 'p' : 'q';
    CHECK(age_recipient_parse(bad, pk2) != 0);
    CHECK(age_recipient_parse("age1", pk2) != 0);
    CHECK(age_recipient_parse("", pk2) != 0);
    CHECK(age_recipient_parse(ID_TXT, pk2) != 0); /* wrong hrp */
    CHECK(age_identity_parse(rtxt, sk2) != 0);
    /* Wrong length: 31 bytes under the right hrp. */
    CHECK(age_bech32_encode("age", pk, 31, bad, sizeof bad) == 0);
    CHECK(age_recipient_parse(bad, pk2) != 0);
}

/* -------------------------------------------------------------- armor */

static int armor_roundtrip(size_t n, age_buf *arm)
{
    unsigned char *p = pattern(n);
    age_armor_enc ae;
    dimple_sink raw = age_buf_sink(arm);
    dimple_sink s = age_armor_sink(&ae, &raw);
    int ok = dimple_sink_write(&s, p, n) == 0 && age_armor_finish(&ae) == 0;
    /* Decode it back. */
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, arm->p, arm->n);
    age_reader r;
    age_armor_dec ad;
    age_err e = {0};
    unsigned char *back = malloc(n + 1);
    age_reader_init(&r, &src, 4096);
    dimple_source dec = age_armor_source(&ad, &r, &e);
    size_t got = 0;
    for (;;) {
        ptrdiff_t k = dec.read(dec.ctx, back + got, n + 1 - got);
        if (k <= 0) {
            ok &= k == 0;
            break;
        }
        got += (size_t)k;
    }
    ok &= got == n && memcmp(p, back, n) == 0;
    age_reader_free(&r);
    free(back);
    free(p);
    return ok;
}

static int armor_decode(const char *text, age_err *e)
{
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, text, strlen(text));
    age_reader r;
    age_armor_dec ad;
    unsigned char buf[256];
    ptrdiff_t k;
    memset(e, 0, sizeof *e);
    age_reader_init(&r, &src, 4096);
    dimple_source dec = age_armor_source(&ad, &r, e);
    while ((k = dec.read(dec.ctx, buf, sizeof buf)) > 0)
        ;
    age_reader_free(&r);
    return (int)k;
}

TEST(armor)
{
    static const size_t sizes[] = {1, 2, 47, 48, 49, 95, 96, 97, 1000};
    int ok = 1;
    age_err e;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        age_buf arm = {0};
        ok &= armor_roundtrip(sizes[i], &arm);
        /* Lines: BEGIN, 64-column lines, one shorter last, END. */
        char *t = strndup((char *)arm.p, arm.n);
        ok &= strncmp(t, AGE_ARMOR_BEGIN "\n", sizeof AGE_ARMOR_BEGIN) == 0;
        ok &= arm.n > sizeof AGE_ARMOR_END &&
              strcmp(t + arm.n - sizeof AGE_ARMOR_END, AGE_ARMOR_END "\n") == 0;
        for (char *l = strchr(t, '\n') + 1, *nl; (nl = strchr(l, '\n'));
             l = nl + 1) {
            size_t len = (size_t)(nl - l);
            if (!strncmp(l, "-----END", 8))
                break;
            ok &= len == 64 || !strncmp(nl + 1, "-----END", 8);
            ok &= len > 0 && len <= 64;
        }
        free(t);
        age_buf_free(&arm);
    }
    CHECK(ok);
#define B AGE_ARMOR_BEGIN "\n"
#define E AGE_ARMOR_END "\n"
    CHECK(armor_decode(B "QQ==\n" E, &e) == 0);
    CHECK(armor_decode(AGE_ARMOR_BEGIN "\r\nQQ==\r\n" AGE_ARMOR_END "\r\n",
                       &e) == 0);
    CHECK(armor_decode(B "QQ==\n" AGE_ARMOR_END, &e) == 0); /* no final EOL */
    CHECK(armor_decode("\n \t" B "QQ==\n" E "\n\n  ", &e) == 0);
    CHECK(armor_decode(B "QQ\n" E, &e) < 0 &&
          e.cls == AGE_E_ARMOR); /* unpadded */
    CHECK(armor_decode(B "QR==\n" E, &e) < 0 &&
          e.cls == AGE_E_ARMOR); /* non-canonical */
    CHECK(armor_decode(B "\nQQ==\n" E, &e) < 0 &&
          e.cls == AGE_E_ARMOR); /* empty line */
    CHECK(armor_decode(B "QQ==\n" E "x", &e) < 0 && e.cls == AGE_E_ARMOR);
    CHECK(armor_decode(B "QQ==\n", &e) < 0 &&
          e.cls == AGE_E_ARMOR); /* no END */
    CHECK(armor_decode(B " QQ==\n" E, &e) < 0 && e.cls == AGE_E_ARMOR);
    CHECK(armor_decode(B "QQ== \n" E, &e) < 0 && e.cls == AGE_E_ARMOR);
    CHECK(armor_decode("-----BEGIN AGE ENCRYPTED FILE----- \nQQ==\n" E, &e) <
          0);
    CHECK(armor_decode("-----BEGIN PGP MESSAGE-----\nQQ==\n" E, &e) < 0);
    CHECK(armor_decode(B "Version: 1\n\nQQ==\n" E, &e) < 0);
    CHECK(armor_decode(B "QQ==\nQQ==\n" E, &e) < 0); /* short line not last */
    CHECK(armor_decode(B "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQ"
                         "UFBQUFBQUFBQUFB\n" E,
                       &e) < 0);
    CHECK(armor_decode(B "QQ==\n=ABC\n" E, &e) < 0); /* PGP checksum */
#undef B
#undef E
}

/* ------------------------------------------------------------- header */

static int header_class(const char *text)
{
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, text, strlen(text));
    age_reader r;
    age_header h;
    age_err e = {0};
    age_reader_init(&r, &src, 4096);
    int rc = age_header_parse(&r, &h, &e);
    if (!rc)
        age_header_free(&h);
    age_reader_free(&r);
    return rc ? e.cls : AGE_E_NONE;
}

#define MAC43 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
TEST(header)
{
    CHECK(header_class("age-encryption.org/v1\n-> X 1\n\n--- " MAC43 "\n") ==
          AGE_E_NONE);
    CHECK(header_class("age-encryption.org/v1\n--- " MAC43 "\n") == AGE_E_NONE);
    CHECK(header_class("") == AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v2\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\r\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X 1\r\n\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X  1\n\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X 1 \n\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n->\n\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n->X\n\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X\xc3\xa9\n\n--- " MAC43
                       "\n") == AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X 1\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X 1\nAA==\n--- " MAC43
                       "\n") == AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n---  " MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n---" MAC43 "\n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n--- " MAC43 " \n") ==
          AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n--- " MAC43) == AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n--- AAAA\n") == AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X 1\n") == AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\nhello\n--- " MAC43 "\n") ==
          AGE_E_HEADER);
    /* Body: full 64-column lines then a short one; a 65-column line fails. */
    CHECK(
        header_class(
            "age-encryption.org/v1\n-> X\n"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
            "\n--- " MAC43 "\n") == AGE_E_NONE);
    CHECK(
        header_class(
            "age-encryption.org/v1\n-> X\n"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
            "--- " MAC43 "\n") == AGE_E_HEADER);
    CHECK(header_class("age-encryption.org/v1\n-> X\n"
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                       "AAAAAAAAAAAAA\n"
                       "\n--- " MAC43 "\n") == AGE_E_HEADER);
}

/* ------------------------------------------------------------- stream */

TEST(roundtrip_sizes)
{
    static const size_t sizes[] = {0,     1,      65535,        65536,
                                   65537, 131072, 3 * 65536 + 5};
    keys k;
    make_keys(&k);
    int ok = 1, len_ok = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i], chunks = n ? (n + AGE_CHUNK - 1) / AGE_CHUNK : 1;
        unsigned char *p = pattern(n);
        for (int armor = 0; armor <= 1; armor++) {
            age_buf ct = {0}, pt = {0};
            age_err e;
            ok &= enc_buf(p, n, &k.r, 1, armor, &ct) == 0;
            if (!armor)
                len_ok &= ct.n - payload_offset(&ct) ==
                          AGE_NONCE + n + chunks * AGE_TAG;
            ok &= dec_buf(ct.p, ct.n, &k.id, 1, &pt, &e) == 0;
            ok &= pt.n == n && (n == 0 || memcmp(pt.p, p, n) == 0);
            age_buf_free(&ct);
            age_buf_free(&pt);
        }
        free(p);
    }
    CHECK(ok);
    CHECK(len_ok); /* k*64 KiB -> k chunks; empty -> one empty chunk */
}

/* A sink that records how much it was given. */
static int count_write(void *ctx, const void *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
    return 0;
}

TEST(stream_failures)
{
    keys k, other;
    make_keys(&k);
    make_keys(&other);
    size_t n = 2 * AGE_CHUNK + 100;
    unsigned char *p = pattern(n);
    age_buf ct = {0};
    age_err e;
    CHECK(enc_buf(p, n, &k.r, 1, 0, &ct) == 0);
    size_t off = payload_offset(&ct);
    CHECK(off > 0);

    /* Every truncation fails; only whole authenticated chunks came out. */
    int trunc_ok = 1;
    for (size_t cut = off; cut < ct.n; cut += 997) {
        size_t got = 0;
        age_mem_source ms;
        dimple_source src = age_mem_source_make(&ms, ct.p, cut);
        dimple_sink sink = {count_write, &got};
        age_keyring kr = {&k.id, 1, NULL, NULL};
        memset(&e, 0, sizeof e);
        int rc = age_decrypt(&src, &sink, AGE_ARMOR_OFF, &kr, &e);
        trunc_ok &= rc != 0 && got % AGE_CHUNK == 0;
        trunc_ok &=
            e.cls == (cut < off + AGE_NONCE ? AGE_E_HEADER : AGE_E_PAYLOAD);
    }
    CHECK(trunc_ok);

    /* A flipped bit in the first chunk's tag: nothing is released. */
    {
        size_t got = 0;
        ct.p[off + AGE_NONCE + AGE_CHUNK + 3] ^= 1;
        age_mem_source ms;
        dimple_source src = age_mem_source_make(&ms, ct.p, ct.n);
        dimple_sink sink = {count_write, &got};
        age_keyring kr = {&k.id, 1, NULL, NULL};
        memset(&e, 0, sizeof e);
        CHECK(age_decrypt(&src, &sink, AGE_ARMOR_OFF, &kr, &e) ==
              DIMPLE_ECORRUPT);
        CHECK(e.cls == AGE_E_PAYLOAD);
        CHECK(got == 0);
        ct.p[off + AGE_NONCE + AGE_CHUNK + 3] ^= 1;
    }
    /* Trailing data after the final chunk. */
    {
        age_buf pt = {0};
        age_buf_add(&ct, "x", 1);
        CHECK(dec_buf(ct.p, ct.n, &k.id, 1, &pt, &e) == DIMPLE_ECORRUPT);
        CHECK(e.cls == AGE_E_PAYLOAD);
        ct.n--;
        age_buf_free(&pt);
    }
    /* A changed header byte: MAC failure; another identity: no match. */
    {
        age_buf pt = {0};
        CHECK(dec_buf(ct.p, ct.n, &other.id, 1, &pt, &e) == DIMPLE_EAUTH);
        CHECK(e.cls == AGE_E_NOMATCH && pt.n == 0);
        unsigned char *m = memmem(ct.p, ct.n, "\n--- ", 5), saved = m[6];
        m[6] = m[6] == 'A' ? 'B' : 'A';
        CHECK(dec_buf(ct.p, ct.n, &k.id, 1, &pt, &e) != 0);
        CHECK(e.cls == AGE_E_HEADER || e.cls == AGE_E_HMAC);
        m[6] = saved;
        CHECK(dec_buf(ct.p, ct.n, &k.id, 1, &pt, &e) == 0 && pt.n == n);
        age_buf_free(&pt);
    }
    /* Plaintext is not an age file. */
    {
        age_buf pt = {0};
        CHECK(dec_buf(p, 1000, &k.id, 1, &pt, &e) == DIMPLE_ECORRUPT);
        CHECK(e.cls == AGE_E_HEADER && pt.n == 0);
        age_buf_free(&pt);
    }
    age_buf_free(&ct);
    free(p);
}

TEST(multiple_recipients)
{
    keys a, b, c;
    make_keys(&a);
    make_keys(&b);
    make_keys(&c);
    age_recipient rs[2] = {a.r, b.r};
    age_buf ct = {0}, pt = {0};
    age_err e;
    CHECK(enc_buf("hello", 5, rs, 2, 0, &ct) == 0);
    CHECK(dec_buf(ct.p, ct.n, &b.id, 1, &pt, &e) == 0 && pt.n == 5);
    pt.n = 0;
    CHECK(dec_buf(ct.p, ct.n, &a.id, 1, &pt, &e) == 0 && pt.n == 5);
    pt.n = 0;
    CHECK(dec_buf(ct.p, ct.n, &c.id, 1, &pt, &e) == DIMPLE_EAUTH);
    age_buf_free(&ct);
    age_buf_free(&pt);
}

TEST(scrypt_rules)
{
    age_recipient r = {0}, both[2];
    age_identity id = {0}, wrong = {0};
    age_buf ct = {0}, pt = {0};
    age_err e = {0};
    keys k;
    make_keys(&k);
    r.type = id.type = wrong.type = AGE_ID_SCRYPT;
    r.pass = id.pass = "correct horse";
    r.pass_len = id.pass_len = 13;
    wrong.pass = "wrong";
    wrong.pass_len = 5;
    r.logn = 10;
    CHECK(enc_buf("secret", 6, &r, 1, 0, &ct) == 0);
    CHECK(memmem(ct.p, ct.n, "\n-> scrypt ", 11) != NULL);
    CHECK(memmem(ct.p, ct.n, " 10\n", 4) != NULL);
    uint64_t before = age_scrypt_count();
    CHECK(dec_buf(ct.p, ct.n, &id, 1, &pt, &e) == 0 && pt.n == 6);
    CHECK(age_scrypt_count() == before + 1);
    CHECK(dec_buf(ct.p, ct.n, &wrong, 1, &pt, &e) == DIMPLE_EAUTH);
    CHECK(e.cls == AGE_E_NOMATCH);
    /* Encrypt refuses to mix a passphrase with other recipients. */
    both[0] = r;
    both[1] = k.r;
    age_buf mixed = {0};
    CHECK(enc_buf("x", 1, both, 2, 0, &mixed) == DIMPLE_EINVAL);
    r.logn = 23;
    CHECK(enc_buf("x", 1, &r, 1, 0, &mixed) != 0);
    age_buf_free(&mixed);
    /* Work factor 23 is refused on decrypt before any scrypt. */
    char *hdr = strndup((char *)ct.p, ct.n);
    char *wf = strstr(hdr, " 10\n");
    wf[1] = '2';
    wf[2] = '3';
    memcpy(ct.p, hdr, (size_t)(wf - hdr) + 3);
    free(hdr);
    before = age_scrypt_count();
    CHECK(dec_buf(ct.p, ct.n, &id, 1, &pt, &e) == DIMPLE_ECORRUPT);
    CHECK(e.cls == AGE_E_HEADER);
    CHECK(age_scrypt_count() == before);
    age_buf_free(&ct);
    age_buf_free(&pt);
}

/* ---------------------------------------------- streaming in constant memory
 */

typedef struct gen {
    uint64_t left, pos;
} gen;

static ptrdiff_t gen_read(void *ctx, void *buf, size_t n)
{
    gen *g = ctx;
    unsigned char *o = buf;
    if (n > g->left)
        n = (size_t)g->left;
    for (size_t i = 0; i < n; i++)
        o[i] = (unsigned char)((g->pos + i) * 7 + ((g->pos + i) >> 16));
    g->pos += n;
    g->left -= n;
    return (ptrdiff_t)n;
}

static ptrdiff_t fd_read(void *ctx, void *buf, size_t n)
{
    ssize_t k = read(*(int *)ctx, buf, n);
    return k < 0 ? DIMPLE_EIO : (ptrdiff_t)k;
}

static int fd_write(void *ctx, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = write(*(int *)ctx, s, n);
        if (k <= 0)
            return DIMPLE_EIO;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

typedef struct verify {
    uint64_t pos;
    int bad;
} verify;

static int verify_write(void *ctx, const void *p, size_t n)
{
    verify *v = ctx;
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        if (s[i] != (unsigned char)((v->pos + i) * 7 + ((v->pos + i) >> 16)))
            v->bad = 1;
    v->pos += n;
    return 0;
}

typedef struct enc_job {
    int fd;
    uint64_t size;
    const age_recipient *r;
    int rc;
} enc_job;

static void *enc_thread(void *arg)
{
    enc_job *j = arg;
    gen g = {j->size, 0};
    dimple_source src = {gen_read, &g};
    dimple_sink sink = {fd_write, &j->fd};
    age_err e = {0};
    j->rc = age_encrypt(&src, &sink, AGE_ARMOR_OFF, j->r, 1, &e);
    close(j->fd);
    return NULL;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

TEST(stream_constant_memory)
{
    /* 64 MiB keeps this quick under ASan and valgrind; the growth bound
     * below is far smaller than the stream. bench/age_bench streams 1 GiB
     * in a release build. */
    uint64_t size = (uint64_t)64 << 20;
    const char *env = getenv("DIMPLE_AGE_STREAM_MIB");
    if (env)
        size = (uint64_t)atoll(env) << 20;
    keys k;
    int fds[2];
    pthread_t t;
    make_keys(&k);
    long before = max_rss_kib();
    CHECK(pipe(fds) == 0);
    enc_job j = {fds[1], size, &k.r, -1};
    pthread_create(&t, NULL, enc_thread, &j);
    verify v = {0, 0};
    dimple_source src = {fd_read, &fds[0]};
    dimple_sink sink = {verify_write, &v};
    age_keyring kr = {&k.id, 1, NULL, NULL};
    age_err e = {0};
    int rc = age_decrypt(&src, &sink, AGE_ARMOR_AUTO, &kr, &e);
    pthread_join(t, NULL);
    close(fds[0]);
    long grown = max_rss_kib() - before;
    printf(
        "# streamed %llu MiB through encrypt|decrypt; peak RSS grew %ld KiB\n",
        (unsigned long long)(size >> 20), grown);
    CHECK(j.rc == 0);
    CHECK(rc == 0);
    CHECK(v.pos == size && !v.bad);
    CHECK(grown < 16 * 1024); /* a few chunk buffers, not the stream */
}

int main(void)
{
    RUN(base64);
    RUN(bech32);
    RUN(armor);
    RUN(header);
    RUN(roundtrip_sizes);
    RUN(stream_failures);
    RUN(multiple_recipients);
    RUN(scrypt_rules);
    RUN(stream_constant_memory);
    return test_done();
}
