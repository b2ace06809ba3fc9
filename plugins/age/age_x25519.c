/*
 * age_x25519.c — X25519 recipients and identities (Bech32 age1... and
 * AGE-SECRET-KEY-1...), through OpenSSL's EVP_PKEY X25519.
 */
#include "age_internal.h"

#include "b64.h"
#include "bech32.h"

#include <openssl/evp.h>
#include <stdlib.h>

#define LABEL "age-encryption.org/v1/X25519"

static EVP_PKEY *private_key(const unsigned char sk[32])
{
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, 32);
}

int age_x25519_public(const unsigned char sk[32], unsigned char pk[32])
{
    size_t len = 32;
    EVP_PKEY *k = private_key(sk);
    int ok = k && EVP_PKEY_get_raw_public_key(k, pk, &len) == 1 && len == 32;
    EVP_PKEY_free(k);
    return ok ? DIMPLE_OK : DIMPLE_ERROR;
}

int age_x25519_keygen(unsigned char sk[32], unsigned char pk[32])
{
    if (age_random(sk, 32))
        return DIMPLE_ERROR;
    return age_x25519_public(sk, pk);
}

/* shared = X25519(sk, peer); fails on an all-zero result (low order). */
static int derive(const unsigned char sk[32], const unsigned char peer[32],
                  unsigned char shared[32])
{
    int rc = DIMPLE_ERROR;
    size_t len = 32;
    EVP_PKEY *k = private_key(sk);
    EVP_PKEY *p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    EVP_PKEY_CTX *c = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    if (!c || !p || EVP_PKEY_derive_init(c) != 1 ||
        EVP_PKEY_derive_set_peer(c, p) != 1 ||
        EVP_PKEY_derive(c, shared, &len) != 1 || len != 32)
        goto out;
    rc = DIMPLE_OK;
out:
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(p);
    EVP_PKEY_free(k);
    return rc;
}

static int wrap_key(const unsigned char shared[32],
                    const unsigned char share[32],
                    const unsigned char recipient[32], unsigned char key[32])
{
    unsigned char salt[64];
    memcpy(salt, share, 32);
    memcpy(salt + 32, recipient, 32);
    return age_hkdf(shared, 32, salt, 64, LABEL, key);
}

int age_x25519_wrap(const unsigned char pk[32],
                    const unsigned char fk[AGE_FILE_KEY], age_stanza *out)
{
    int rc = DIMPLE_ERROR;
    unsigned char esk[32], share[32], shared[32], key[32];
    char arg[48];

    memset(out, 0, sizeof *out);
    if (age_x25519_keygen(esk, share) || derive(esk, pk, shared) ||
        wrap_key(shared, share, pk, key))
        goto out;
    age_b64_encode(share, 32, arg, 0);
    out->type = strdup("X25519");
    out->args = calloc(1, sizeof *out->args);
    out->body = malloc(AGE_FILE_KEY + AGE_TAG);
    if (!out->type || !out->args || !out->body) {
        rc = DIMPLE_ENOMEM;
        goto out;
    }
    if (!(out->args[0] = strdup(arg))) {
        rc = DIMPLE_ENOMEM;
        goto out;
    }
    out->nargs = 1;
    out->body_len = AGE_FILE_KEY + AGE_TAG;
    if (age_aead_seal_key(key, fk, out->body))
        goto out;
    rc = DIMPLE_OK;
out:
    age_wipe(esk, sizeof esk);
    age_wipe(shared, sizeof shared);
    age_wipe(key, sizeof key);
    if (rc)
        age_stanza_free(out);
    return rc;
}

int age_x25519_unwrap(const age_stanza *s, const age_identity *id,
                      unsigned char fk[AGE_FILE_KEY], age_err *e)
{
    int rc;
    unsigned char share[32], shared[32], key[32];
    size_t len = 0;

    if (strcmp(s->type, "X25519") != 0)
        return 1;
    if (s->nargs != 1 ||
        age_b64_decode(s->args[0], strlen(s->args[0]), share, sizeof share,
                       &len, 0) ||
        len != 32)
        return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                        "invalid X25519 stanza: bad share");
    if (s->body_len != AGE_FILE_KEY + AGE_TAG)
        return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                        "invalid X25519 stanza: bad file key size");
    if (derive(id->sk, share, shared))
        return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                        "invalid X25519 stanza: low-order share");
    rc = wrap_key(shared, share, id->pk, key);
    if (rc == DIMPLE_OK)
        rc = age_aead_open_key(key, s->body, fk) ? 1 : DIMPLE_OK;
    else
        rc = age_fail(e, AGE_E_OTHER, rc, "HKDF failed");
    age_wipe(shared, sizeof shared);
    age_wipe(key, sizeof key);
    return rc;
}

int age_recipient_format(const unsigned char pk[32], char *out)
{
    return age_bech32_encode("age", pk, 32, out, 128);
}

int age_identity_format(const unsigned char sk[32], char *out)
{
    return age_bech32_encode("AGE-SECRET-KEY-", sk, 32, out, 128);
}

int age_recipient_parse(const char *s, unsigned char pk[32])
{
    char hrp[32];
    size_t len = 0;
    if (age_bech32_decode(s, hrp, sizeof hrp, pk, 32, &len) ||
        strcmp(hrp, "age") != 0 || len != 32)
        return DIMPLE_EINVAL;
    return DIMPLE_OK;
}

int age_identity_parse(const char *s, unsigned char sk[32])
{
    char hrp[32];
    size_t len = 0;
    if (age_bech32_decode(s, hrp, sizeof hrp, sk, 32, &len) ||
        strcmp(hrp, "AGE-SECRET-KEY-") != 0 || len != 32)
        return DIMPLE_EINVAL;
    return DIMPLE_OK;
}
