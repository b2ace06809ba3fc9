/*
 * age_file.c — whole age files: encrypt (header, nonce, STREAM, optional
 * armor) and decrypt (armor detection, header, unwrap, MAC, STREAM), with
 * the spec's failure classes in its order: armor, header, no match, HMAC,
 * payload.
 */
#include "age_internal.h"

#include "b64.h"

#include <openssl/crypto.h>
#include <stdlib.h>

#define READ_BUF (AGE_CHUNK + AGE_TAG + 4096)

static int try_ids(const age_header *h, const age_identity *ids, size_t from,
                   size_t to, unsigned char fk[AGE_FILE_KEY], age_err *e)
{
    for (size_t i = from; i < to; i++) {
        for (size_t j = 0; j < h->n; j++) {
            int rc = ids[i].type == AGE_ID_X25519
                         ? age_x25519_unwrap(&h->st[j], &ids[i], fk, e)
                         : age_scrypt_unwrap(&h->st[j], &ids[i], fk, e);
            if (rc <= 0)
                return rc; /* unwrapped (0) or malformed (< 0) */
        }
    }
    return 1;
}

int age_decrypt_header(age_reader *r, age_keyring *kr,
                       unsigned char fk[AGE_FILE_KEY], age_err *e)
{
    int rc;
    size_t tried = 0;
    unsigned char mac[32];
    age_header h;

    if ((rc = age_header_parse(r, &h, e)))
        return rc;
    for (size_t j = 0; j < h.n; j++)
        if (strcmp(h.st[j].type, "scrypt") == 0 && h.n != 1) {
            rc = age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                          "malformed age header: an scrypt stanza must be "
                          "the only one");
            goto out;
        }
    for (;;) {
        rc = try_ids(&h, kr->ids, tried, kr->n, fk, e);
        tried = kr->n;
        if (rc <= 0)
            break;
        /* No identity matched: the keyring may know where to find more. */
        rc = kr->more ? kr->more(kr, e) : 0;
        if (rc < 0)
            goto out;
        if (rc == 0) {
            rc = age_fail(e, AGE_E_NOMATCH, DIMPLE_EAUTH,
                          "no identity matches any of the file's %zu "
                          "recipient stanza(s)",
                          h.n);
            goto out;
        }
    }
    if (rc)
        goto out;
    if ((rc = age_header_mac(h.raw, h.raw_len, fk, mac))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "HMAC failed");
        goto out;
    }
    if (CRYPTO_memcmp(mac, h.mac, sizeof mac) != 0) {
        rc = age_fail(e, AGE_E_HMAC, DIMPLE_ECORRUPT,
                      "header MAC mismatch (corrupt or tampered header)");
        goto out;
    }
out:
    if (rc)
        age_wipe(fk, AGE_FILE_KEY);
    age_header_free(&h);
    return rc;
}

/* Armored if, after leading whitespace, the input starts "-----BEGIN". */
static int detect_armor(age_reader *r, int *armor, age_err *e)
{
    const unsigned char *p;
    ptrdiff_t n =
        age_reader_peek(r, AGE_ARMOR_MAX_WS + sizeof AGE_ARMOR_BEGIN, &p);
    ptrdiff_t i = 0;
    if (n < 0)
        return age_fail(e, AGE_E_OTHER, (int)n, "reading the input failed");
    while (i < n &&
           (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    *armor = n - i >= 10 && memcmp(p + i, "-----BEGIN", 10) == 0;
    return DIMPLE_OK;
}

int age_decrypt(const dimple_source *in, const dimple_sink *out, int armor,
                age_keyring *kr, age_err *e)
{
    int rc;
    age_reader raw = {0}, dec = {0}, *r = &raw;
    age_armor_dec ad;
    dimple_source armored;
    unsigned char fk[AGE_FILE_KEY], nonce[AGE_NONCE], key[32];
    ptrdiff_t n;

    if ((rc = age_reader_init(&raw, in, READ_BUF))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "out of memory");
        goto out;
    }
    if (armor == AGE_ARMOR_AUTO && (rc = detect_armor(&raw, &armor, e)))
        goto out;
    if (armor == AGE_ARMOR_ON) {
        armored = age_armor_source(&ad, &raw, e);
        if ((rc = age_reader_init(&dec, &armored, READ_BUF))) {
            rc = age_fail(e, AGE_E_OTHER, rc, "out of memory");
            goto out;
        }
        r = &dec;
    }
    if ((rc = age_decrypt_header(r, kr, fk, e)))
        goto out;
    n = age_reader_read(r, nonce, sizeof nonce);
    if (n < 0) {
        rc = age_fail(e, AGE_E_OTHER, (int)n, "reading the input failed");
        goto out;
    }
    if (n != (ptrdiff_t)sizeof nonce) {
        rc = age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                      "truncated file: payload nonce missing");
        goto out;
    }
    if ((rc = age_hkdf(fk, sizeof fk, nonce, sizeof nonce, "payload", key))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "HKDF failed");
        goto out;
    }
    rc = age_stream_decrypt(r, key, out, e);
out:
    age_wipe(fk, sizeof fk);
    age_wipe(key, sizeof key);
    age_reader_free(&dec);
    age_reader_free(&raw);
    /* An armor failure met while a later layer read is what failed. */
    if (rc && e->cls == AGE_E_NONE)
        age_fail(e, AGE_E_OTHER, rc, "decryption failed");
    return rc;
}

int age_encrypt(const dimple_source *in, const dimple_sink *out, int armor,
                const age_recipient *rs, size_t n, age_err *e)
{
    int rc;
    unsigned char fk[AGE_FILE_KEY], mac[32], nonce[AGE_NONCE], key[32];
    char mac_b64[48];
    age_buf hdr = {0};
    age_reader r = {0};
    age_armor_enc ae;
    dimple_sink armored;
    const dimple_sink *sink = out;
    size_t scrypts = 0;

    for (size_t i = 0; i < n; i++)
        scrypts += rs[i].type == AGE_ID_SCRYPT;
    if (n == 0 || (scrypts && n != 1)) {
        rc = age_fail(e, AGE_E_OTHER, DIMPLE_EINVAL,
                      n ? "a passphrase recipient must be the only one"
                        : "no recipients");
        goto out;
    }
    if ((rc = age_random(fk, sizeof fk)) ||
        (rc = age_random(nonce, sizeof nonce))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "no randomness");
        goto out;
    }
    if ((rc = age_buf_add(&hdr, AGE_INTRO "\n", sizeof AGE_INTRO)))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        age_stanza s;
        rc = rs[i].type == AGE_ID_SCRYPT
                 ? age_scrypt_wrap(rs[i].pass, rs[i].pass_len, rs[i].logn, fk,
                                   &s)
                 : age_x25519_wrap(rs[i].pk, fk, &s);
        if (rc) {
            rc = age_fail(e, AGE_E_OTHER, rc, "wrapping the file key failed");
            goto out;
        }
        rc = age_stanza_write(&hdr, &s);
        age_stanza_free(&s);
        if (rc)
            goto nomem;
    }
    if ((rc = age_buf_add(&hdr, "---", 3)))
        goto nomem;
    if ((rc = age_header_mac(hdr.p, hdr.n, fk, mac))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "HMAC failed");
        goto out;
    }
    age_b64_encode(mac, sizeof mac, mac_b64, 0);
    if ((rc = age_buf_add(&hdr, " ", 1)) ||
        (rc = age_buf_add(&hdr, mac_b64, strlen(mac_b64))) ||
        (rc = age_buf_add(&hdr, "\n", 1)) ||
        (rc = age_buf_add(&hdr, nonce, sizeof nonce)))
        goto nomem;
    if ((rc = age_hkdf(fk, sizeof fk, nonce, sizeof nonce, "payload", key))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "HKDF failed");
        goto out;
    }
    if (armor == AGE_ARMOR_ON) {
        armored = age_armor_sink(&ae, out);
        sink = &armored;
    }
    if ((rc = dimple_sink_write(sink, hdr.p, hdr.n))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "writing the ciphertext failed");
        goto out;
    }
    if ((rc = age_reader_init(&r, in, READ_BUF)))
        goto nomem;
    if ((rc = age_stream_encrypt(&r, key, sink, e)))
        goto out;
    if (armor == AGE_ARMOR_ON && (rc = age_armor_finish(&ae))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "writing the ciphertext failed");
        goto out;
    }
    rc = DIMPLE_OK;
    goto out;
nomem:
    rc = age_fail(e, AGE_E_OTHER, DIMPLE_ENOMEM, "out of memory");
out:
    age_wipe(fk, sizeof fk);
    age_wipe(key, sizeof key);
    age_buf_free(&hdr);
    age_reader_free(&r);
    return rc;
}
