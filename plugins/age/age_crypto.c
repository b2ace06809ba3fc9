/* age_crypto.c — the OpenSSL 3 primitives age needs (EVP only). */
#include "age_internal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

int age_hkdf(const unsigned char *ikm, size_t ikm_len,
             const unsigned char *salt, size_t salt_len, const char *info,
             unsigned char out[32])
{
    int rc = DIMPLE_ERROR;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5], *p = params;

    if (!ctx)
        goto out;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                            (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm,
                                             ikm_len);
    /* An empty salt is expressed by leaving the parameter out. */
    if (salt_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                 (void *)salt, salt_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                             strlen(info));
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx, out, 32, params) != 1)
        goto out;
    rc = DIMPLE_OK;
out:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

static int aead(int enc, const unsigned char key[32], const unsigned char *in,
                size_t n, unsigned char *out, unsigned char tag[16])
{
    static const unsigned char zero[12];
    int rc = -1, len = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -1;
    if (EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, key, zero, enc) !=
        1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1)
        goto out;
    if (EVP_CipherUpdate(c, out, &len, in, (int)n) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + len, &len) != 1)
        goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int age_aead_seal_key(const unsigned char key[32],
                      const unsigned char fk[AGE_FILE_KEY],
                      unsigned char body[AGE_FILE_KEY + AGE_TAG])
{
    return aead(1, key, fk, AGE_FILE_KEY, body, body + AGE_FILE_KEY)
               ? DIMPLE_ERROR
               : DIMPLE_OK;
}

int age_aead_open_key(const unsigned char key[32],
                      const unsigned char body[AGE_FILE_KEY + AGE_TAG],
                      unsigned char fk[AGE_FILE_KEY])
{
    unsigned char tag[16], tmp[AGE_FILE_KEY];
    int rc;
    memcpy(tag, body + AGE_FILE_KEY, 16);
    /* Decrypt to a scratch buffer: fk is only written once the tag holds. */
    rc = aead(0, key, body, AGE_FILE_KEY, tmp, tag);
    if (rc == 0)
        memcpy(fk, tmp, AGE_FILE_KEY);
    age_wipe(tmp, sizeof tmp);
    return rc;
}

int age_random(void *p, size_t n)
{
    return RAND_bytes(p, (int)n) == 1 ? DIMPLE_OK : DIMPLE_ERROR;
}

void age_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
