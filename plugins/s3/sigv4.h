/*
 * sigv4.h — AWS Signature Version 4 on OpenSSL.
 *
 * Our own signer instead of CURLOPT_AWS_SIGV4: libcurl 7.88 signs the query
 * and path verbatim, drops x-amz-content-sha256, mis-sorts header names that
 * prefix each other and signs blanked headers. Here the
 * caller hands over exactly what goes on the wire, already canonical.
 */
#ifndef DIMPLE_S3_SIGV4_H
#define DIMPLE_S3_SIGV4_H

#include "s3.h"

#include <time.h>

#define SIGV4_EMPTY_SHA256                                                     \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct sigv4_header {
    const char *name;  /* any case; signed lowercased */
    const char *value; /* trimmed and inner spaces collapsed when signed */
} sigv4_header;

typedef struct sigv4_request {
    const char *method;
    const char *uri; /* canonical URI: already RFC 3986 encoded, "/" at least */
    const char *query; /* canonical query (sorted, encoded), "" when none */
    const sigv4_header *headers; /* the signed headers, any order */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body */
    const char *amz_date;     /* YYYYMMDDTHHMMSSZ */
    const char *region;
    const char *service; /* "s3" */
    const char *access_key;
} sigv4_request;

/* Hex SHA-256 of p[0..n). */
void sigv4_sha256_hex(const void *p, size_t n, char out[65]);
/* "YYYYMMDDTHHMMSSZ" for t in UTC. */
void sigv4_amz_date(time_t t, char out[17]);
/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date8), region), service),
 * "aws4_request"). 0 on success, -1 if OpenSSL fails. */
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char out[32]);
/* The canonical request and the string to sign, as AWS defines them
 * (exposed for the unit test). DIMPLE_OK or DIMPLE_ENOMEM/EINVAL. */
int sigv4_canonical_request(const sigv4_request *r, s3_buf *out);
int sigv4_string_to_sign(const sigv4_request *r, s3_buf *out);
/* The Authorization header value: "AWS4-HMAC-SHA256 Credential=…,
 * SignedHeaders=…, Signature=…". key from sigv4_signing_key for the
 * request's date, region and service. */
int sigv4_authorization(const sigv4_request *r, const unsigned char key[32],
                        s3_buf *out);

#endif /* DIMPLE_S3_SIGV4_H */
