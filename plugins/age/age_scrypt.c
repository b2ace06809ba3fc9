/*
 * age_scrypt.c — scrypt (passphrase) recipient stanzas.
 *
 * OpenSSL's scrypt refuses anything above its maxmem (32 MiB for
 * EVP_PBE_scrypt with 0, 1025 MiB for EVP_KDF by default), below what
 * work factors 18..22 need, so maxmem is always passed explicitly.
 */
#include "age_internal.h"

#include "b64.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define LABEL "age-encryption.org/v1/scrypt"
#define LABEL_LEN 28

static atomic_uint_fast64_t scrypt_calls;

uint64_t age_scrypt_count(void)
{
    return (uint64_t)atomic_load(&scrypt_calls);
}

static int derive(const char *pass, size_t pass_len,
                  const unsigned char salt[16], int logn, unsigned char key[32])
{
    int rc = DIMPLE_ERROR;
    unsigned char s[LABEL_LEN + 16];
    uint64_t n = (uint64_t)1 << logn;
    uint64_t maxmem = 128u * 8u * (n + 2) + 128u * 8u + 4096u;
    uint32_t r = 8, p = 1;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[7];

    atomic_fetch_add(&scrypt_calls, 1);
    if (!c)
        goto out;
    memcpy(s, LABEL, LABEL_LEN);
    memcpy(s + LABEL_LEN, salt, 16);
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                                  (void *)pass, pass_len);
    params[1] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, s, sizeof s);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    params[5] =
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    params[6] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(c, key, 32, params) != 1)
        goto out;
    rc = DIMPLE_OK;
out:
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(kdf);
    return rc;
}

int age_scrypt_wrap(const char *pass, size_t pass_len, int logn,
                    const unsigned char fk[AGE_FILE_KEY], age_stanza *out)
{
    int rc = DIMPLE_ERROR;
    unsigned char salt[16], key[32];
    char arg[32];

    memset(out, 0, sizeof *out);
    if (logn < 1 || logn > AGE_MAX_LOGN)
        return DIMPLE_EINVAL;
    if (age_random(salt, sizeof salt) ||
        derive(pass, pass_len, salt, logn, key))
        goto out;
    out->type = strdup("scrypt");
    out->args = calloc(2, sizeof *out->args);
    out->body = malloc(AGE_FILE_KEY + AGE_TAG);
    if (!out->type || !out->args || !out->body) {
        rc = DIMPLE_ENOMEM;
        goto out;
    }
    age_b64_encode(salt, sizeof salt, arg, 0);
    out->args[0] = strdup(arg);
    snprintf(arg, sizeof arg, "%d", logn);
    out->args[1] = strdup(arg);
    out->nargs = 2;
    if (!out->args[0] || !out->args[1]) {
        rc = DIMPLE_ENOMEM;
        goto out;
    }
    out->body_len = AGE_FILE_KEY + AGE_TAG;
    if (age_aead_seal_key(key, fk, out->body))
        goto out;
    rc = DIMPLE_OK;
out:
    age_wipe(key, sizeof key);
    if (rc)
        age_stanza_free(out);
    return rc;
}

/* ^[1-9][0-9]*$ and <= AGE_MAX_LOGN: the value; -1 if not of that form;
 * 0 if too large (checked as digits arrive, so no overflow). */
static int parse_logn(const char *s)
{
    int v = 0;
    if (s[0] < '1' || s[0] > '9')
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > AGE_MAX_LOGN)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v > AGE_MAX_LOGN ? 0 : v;
}

int age_scrypt_unwrap(const age_stanza *s, const age_identity *id,
                      unsigned char fk[AGE_FILE_KEY], age_err *e)
{
    unsigned char salt[16], key[32];
    size_t len = 0;
    int logn, rc;

    if (strcmp(s->type, "scrypt") != 0)
        return 1;
    if (s->nargs != 2 ||
        age_b64_decode(s->args[0], strlen(s->args[0]), salt, sizeof salt, &len,
                       0) ||
        len != 16)
        return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                        "invalid scrypt stanza: bad salt");
    logn = parse_logn(s->args[1]);
    if (logn < 0)
        return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                        "invalid scrypt stanza: bad work factor");
    if (logn == 0)
        return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                        "scrypt work factor above %d refused", AGE_MAX_LOGN);
    /* Check the size before paying for scrypt. */
    if (s->body_len != AGE_FILE_KEY + AGE_TAG)
        return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                        "invalid scrypt stanza: bad file key size");
    if (derive(id->pass, id->pass_len, salt, logn, key))
        return age_fail(e, AGE_E_OTHER, DIMPLE_ENOMEM,
                        "scrypt (work factor %d) failed: out of memory?", logn);
    rc = age_aead_open_key(key, s->body, fk) ? 1 : DIMPLE_OK;
    age_wipe(key, sizeof key);
    return rc;
}
