/*
 * sigv4.c — AWS Signature Version 4 (see sigv4.h for why it is our own).
 * Reference: AWS "Create a signed AWS API request" and the S3 API
 * reference's "Signature Calculations for the Authorization Header";
 * tests/s3/test_sigv4.c checks the published example signatures.
 */
#include "sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(p ? p : "", n, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != 32) {
        out[0] = '\0'; /* an empty hash never verifies: the request fails */
        return;
    }
    hex(md, 32, out);
}

void sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int hmac(const void *key, size_t keylen, const char *msg,
                unsigned char out[32])
{
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
              strlen(msg), out, &len) ||
        len != 32)
        return -1;
    return 0;
}

int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char out[32])
{
    unsigned char k[32];
    size_t slen = strlen(secret);
    char *first = malloc(slen + 5);
    int rc = -1;
    if (!first)
        return -1;
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, secret, slen + 1);
    if (hmac(first, slen + 4, date8, k) || hmac(k, 32, region, k) ||
        hmac(k, 32, service, k) || hmac(k, 32, "aws4_request", out))
        goto out;
    rc = 0;
out:
    /* the derived keys are as sensitive as the secret */
    memset(first, 0, slen + 5);
    memset(k, 0, sizeof k);
    free(first);
    return rc;
}

typedef struct canon_header {
    char *name;
    const char *value;
} canon_header;

static int cmp_header(const void *a, const void *b)
{
    return strcmp(((const canon_header *)a)->name,
                  ((const canon_header *)b)->name);
}

/* Lowercased names, sorted; the caller frees names and the array. */
static canon_header *sorted_headers(const sigv4_request *r)
{
    canon_header *h = calloc(r->nheaders ? r->nheaders : 1, sizeof *h);
    if (!h)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        size_t n = strlen(r->headers[i].name);
        h[i].name = malloc(n + 1);
        if (!h[i].name) {
            for (size_t j = 0; j < i; j++)
                free(h[j].name);
            free(h);
            return NULL;
        }
        for (size_t j = 0; j <= n; j++)
            h[i].name[j] = (char)tolower((unsigned char)r->headers[i].name[j]);
        h[i].value = r->headers[i].value;
    }
    qsort(h, r->nheaders, sizeof *h, cmp_header);
    return h;
}

static void free_headers(canon_header *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++)
        free(h[i].name);
    free(h);
}

/* Value trimmed, runs of spaces collapsed to one (AWS's "Trimall"). */
static void add_trimmed(s3_buf *b, const char *v)
{
    int space = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            s3_buf_addc(b, ' ');
        space = 0;
        s3_buf_addc(b, *v);
    }
}

static void add_signed_names(s3_buf *b, const canon_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            s3_buf_addc(b, ';');
        s3_buf_adds(b, h[i].name);
    }
}

int sigv4_canonical_request(const sigv4_request *r, s3_buf *out)
{
    canon_header *h;
    if (!r->method || !r->uri || !r->payload_hash)
        return DIMPLE_EINVAL;
    h = sorted_headers(r);
    if (!h)
        return DIMPLE_ENOMEM;
    s3_buf_reset(out);
    s3_buf_addf(out, "%s\n%s\n%s\n", r->method, r->uri,
                r->query ? r->query : "");
    for (size_t i = 0; i < r->nheaders; i++) {
        s3_buf_adds(out, h[i].name);
        s3_buf_addc(out, ':');
        add_trimmed(out, h[i].value);
        s3_buf_addc(out, '\n');
    }
    s3_buf_addc(out, '\n');
    add_signed_names(out, h, r->nheaders);
    s3_buf_addc(out, '\n');
    s3_buf_adds(out, r->payload_hash);
    free_headers(h, r->nheaders);
    return out->oom ? DIMPLE_ENOMEM : DIMPLE_OK;
}

int sigv4_string_to_sign(const sigv4_request *r, s3_buf *out)
{
    s3_buf canon = {0};
    char hash[65];
    int rc = sigv4_canonical_request(r, &canon);
    if (rc)
        goto out;
    sigv4_sha256_hex(canon.p, canon.len, hash);
    s3_buf_reset(out);
    s3_buf_addf(out, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s",
                r->amz_date, r->amz_date, r->region, r->service, hash);
    rc = out->oom ? DIMPLE_ENOMEM : DIMPLE_OK;
out:
    s3_buf_free(&canon);
    return rc;
}

int sigv4_authorization(const sigv4_request *r, const unsigned char key[32],
                        s3_buf *out)
{
    s3_buf sts = {0};
    unsigned char sig[32];
    char sighex[65];
    canon_header *h = NULL;
    int rc = sigv4_string_to_sign(r, &sts);
    if (rc)
        goto out;
    if (hmac(key, 32, sts.p, sig)) {
        rc = DIMPLE_ERROR;
        goto out;
    }
    hex(sig, 32, sighex);
    h = sorted_headers(r);
    if (!h) {
        rc = DIMPLE_ENOMEM;
        goto out;
    }
    s3_buf_reset(out);
    s3_buf_addf(out,
                "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
                "SignedHeaders=",
                r->access_key, r->amz_date, r->region, r->service);
    add_signed_names(out, h, r->nheaders);
    s3_buf_addf(out, ", Signature=%s", sighex);
    rc = out->oom ? DIMPLE_ENOMEM : DIMPLE_OK;
out:
    free_headers(h, r->nheaders);
    s3_buf_free(&sts);
    return rc;
}
