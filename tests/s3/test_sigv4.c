/*
 * test_sigv4.c — the S3 plugin's signer and URI encoding against AWS's
 * published examples:
 *  - Amazon S3 API Reference, "Signature Calculations for the Authorization
 *    Header: Transferring Payload in a Single Chunk": GET Object, PUT
 *    Object, GET Bucket Lifecycle, GET Bucket (List Objects);
 *  - the AWS SigV4 test suite: get-vanilla, get-vanilla-query-order-key-case,
 *    post-vanilla;
 *  - IAM user guide: deriving the signing key (20120215, iam).
 */
#include "sigv4.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define S3_KEY "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static void hexkey(const unsigned char k[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", k[i]);
}

/* The Signature= part of an Authorization value. */
static const char *sig_of(const s3_buf *auth)
{
    const char *p = auth->p ? strstr(auth->p, "Signature=") : NULL;
    return p ? p + 10 : "";
}

static void sign(const sigv4_request *r, const char *secret, s3_buf *auth)
{
    unsigned char key[32];
    char date8[9];
    memcpy(date8, r->amz_date, 8);
    date8[8] = '\0';
    CHECK(sigv4_signing_key(secret, date8, r->region, r->service, key) == 0);
    CHECK_RC(sigv4_authorization(r, key, auth), DIMPLE_OK);
}

TEST(signing_key)
{
    unsigned char key[32];
    char hex[65];
    CHECK(sigv4_signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam",
                            key) == 0);
    hexkey(key, hex);
    CHECK_STR(
        hex,
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(s3_get_object)
{
    s3_buf uri = {0}, canon = {0}, sts = {0}, auth = {0};
    sigv4_header h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
        {"x-amz-date", "20130524T000000Z"},
    };
    sigv4_request r;
    s3_buf_addc(&uri, '/');
    s3_uri_encode(&uri, "test.txt", 8, 1);
    r = (sigv4_request){
        "GET",       uri.p, "",    h, 4, SIGV4_EMPTY_SHA256, "20130524T000000Z",
        "us-east-1", "s3",  S3_KEY};
    CHECK_RC(sigv4_canonical_request(&r, &canon), DIMPLE_OK);
    CHECK_STR(
        canon.p,
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
        "range:bytes=0-9\nx-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\n"
        "x-amz-date:20130524T000000Z\n\n"
        "host;range;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256);
    CHECK_RC(sigv4_string_to_sign(&r, &sts), DIMPLE_OK);
    CHECK_STR(sts.p, "AWS4-HMAC-SHA256\n20130524T000000Z\n"
                     "20130524/us-east-1/s3/aws4_request\n"
                     "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc4396"
                     "4946972");
    sign(&r, S3_SECRET, &auth);
    CHECK_STR(auth.p,
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
              "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
              "x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857"
              "bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    s3_buf_free(&uri);
    s3_buf_free(&canon);
    s3_buf_free(&sts);
    s3_buf_free(&auth);
}

TEST(s3_put_object)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    s3_buf uri = {0}, auth = {0};
    sigv4_header h[] = {
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
        {"x-amz-date", "20130524T000000Z"},
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-content-sha256", NULL},
    };
    sigv4_request r;
    sigv4_sha256_hex(body, strlen(body), hash);
    CHECK_STR(
        hash,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    h[4].value = hash;
    /* '$' must become %24: the key is encoded by the plugin's encoder */
    s3_buf_addc(&uri, '/');
    s3_uri_encode(&uri, "test$file.text", 14, 1);
    CHECK_STR(uri.p, "/test%24file.text");
    r = (sigv4_request){
        "PUT",       uri.p, "",    h, 5, hash, "20130524T000000Z",
        "us-east-1", "s3",  S3_KEY};
    sign(&r, S3_SECRET, &auth);
    CHECK_STR(
        sig_of(&auth),
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    CHECK_CONTAINS(auth.p, "SignedHeaders=date;host;x-amz-content-sha256;"
                           "x-amz-date;x-amz-storage-class,");
    s3_buf_free(&uri);
    s3_buf_free(&auth);
}

TEST(s3_get_lifecycle)
{
    s3_buf q = {0}, auth = {0};
    sigv4_header h[] = {
        {"host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
        {"x-amz-date", "20130524T000000Z"},
    };
    sigv4_request r;
    /* a parameter without a value is signed (and sent) as "lifecycle=" */
    CHECK_RC(s3_query_build(&q, (s3_param[]){{"lifecycle", ""}}, 1), DIMPLE_OK);
    CHECK_STR(q.p, "lifecycle=");
    r = (sigv4_request){
        "GET",       "/",  q.p,   h, 3, SIGV4_EMPTY_SHA256, "20130524T000000Z",
        "us-east-1", "s3", S3_KEY};
    sign(&r, S3_SECRET, &auth);
    CHECK_STR(
        sig_of(&auth),
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    s3_buf_free(&q);
    s3_buf_free(&auth);
}

TEST(s3_list_objects)
{
    s3_buf q = {0}, auth = {0};
    sigv4_header h[] = {
        {"host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
        {"x-amz-date", "20130524T000000Z"},
    };
    sigv4_request r;
    /* given out of order: the builder sorts (curl 7.88 would not) */
    CHECK_RC(
        s3_query_build(&q, (s3_param[]){{"prefix", "J"}, {"max-keys", "2"}}, 2),
        DIMPLE_OK);
    CHECK_STR(q.p, "max-keys=2&prefix=J");
    r = (sigv4_request){
        "GET",       "/",  q.p,   h, 3, SIGV4_EMPTY_SHA256, "20130524T000000Z",
        "us-east-1", "s3", S3_KEY};
    sign(&r, S3_SECRET, &auth);
    CHECK_STR(
        sig_of(&auth),
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    s3_buf_free(&q);
    s3_buf_free(&auth);
}

TEST(suite_vanilla)
{
    s3_buf q = {0}, auth = {0};
    sigv4_header h[] = {
        {"Host", "example.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
    };
    sigv4_request r = {"GET",
                       "/",
                       "",
                       h,
                       2,
                       SIGV4_EMPTY_SHA256,
                       "20150830T123600Z",
                       "us-east-1",
                       "service",
                       SUITE_KEY};
    sign(&r, SUITE_SECRET, &auth);
    CHECK_STR(auth.p,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
              "service/aws4_request, SignedHeaders=host;x-amz-date, "
              "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae"
              "1d763fbf31");

    r.method = "POST";
    sign(&r, SUITE_SECRET, &auth);
    CHECK_STR(
        sig_of(&auth),
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");

    r.method = "GET";
    CHECK_RC(
        s3_query_build(
            &q, (s3_param[]){{"Param2", "value2"}, {"Param1", "value1"}}, 2),
        DIMPLE_OK);
    CHECK_STR(q.p, "Param1=value1&Param2=value2");
    r.query = q.p;
    sign(&r, SUITE_SECRET, &auth);
    CHECK_STR(
        sig_of(&auth),
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    s3_buf_free(&q);
    s3_buf_free(&auth);
}

/* curl 7.88 sorted "x-amz-meta-test" after "x-amz-meta-test-two" (notes
 * §4.5); the canonical order is plain byte order, and spaces collapse. */
TEST(header_order_and_trim)
{
    s3_buf canon = {0};
    sigv4_header h[] = {
        {"x-amz-meta-test-two", "  two   spaces  "},
        {"X-Amz-Meta-Test", "one"},
        {"host", "h"},
    };
    sigv4_request r = {
        "PUT", "/b/k", "", h, 3, SIGV4_EMPTY_SHA256, "20240101T000000Z",
        "r",   "s3",   "K"};
    CHECK_RC(sigv4_canonical_request(&r, &canon), DIMPLE_OK);
    CHECK_CONTAINS(canon.p, "host:h\nx-amz-meta-test:one\n"
                            "x-amz-meta-test-two:two spaces\n\n"
                            "host;x-amz-meta-test;x-amz-meta-test-two\n");
    s3_buf_free(&canon);
}

TEST(uri_encoding)
{
    s3_buf b = {0}, q = {0};
    const char *key = "my dir/héllo wörld+1 (x) &=?.txt~_-.*'!%";
    s3_uri_encode(&b, key, strlen(key), 1);
    CHECK_STR(b.p, "my%20dir/h%C3%A9llo%20w%C3%B6rld%2B1%20%28x%29%20%26%3D%3F"
                   ".txt~_-.%2A%27%21%25");
    s3_buf_reset(&b);
    s3_uri_encode(&b, "a/b", 3, 0); /* in a query value '/' is encoded */
    CHECK_STR(b.p, "a%2Fb");
    CHECK_RC(s3_query_build(&q,
                            (s3_param[]){{"prefix", "a b/+"},
                                         {"list-type", "2"},
                                         {"delimiter", "/"},
                                         {"encoding-type", "url"}},
                            4),
             DIMPLE_OK);
    CHECK_STR(q.p, "delimiter=%2F&encoding-type=url&list-type=2&"
                   "prefix=a%20b%2F%2B");

    CHECK(s3_uri_decode(&b, "a%20b%2Bc+d%C3%A9", 17) == 0);
    CHECK_STR(b.p, "a b+c d\xc3\xa9");
    CHECK(s3_uri_decode(&b, "%zz", 3) == -1);
    CHECK(s3_uri_decode(&b, "x%4", 3) == -1);
    CHECK(s3_uri_decode(&b, "x%00y", 5) == -1); /* no NUL inside a key */
    CHECK(s3_uri_decode(&b, "", 0) == 0 && b.len == 0);
    s3_buf_free(&b);
    s3_buf_free(&q);
}

TEST(amz_date)
{
    char d[17];
    sigv4_amz_date(1440938160, d); /* the suite's 2015-08-30T12:36:00Z */
    CHECK_STR(d, "20150830T123600Z");
    sigv4_amz_date(0, d);
    CHECK_STR(d, "19700101T000000Z");
}

int main(void)
{
    RUN(signing_key);
    RUN(s3_get_object);
    RUN(s3_put_object);
    RUN(s3_get_lifecycle);
    RUN(s3_list_objects);
    RUN(suite_vanilla);
    RUN(header_order_and_trim);
    RUN(uri_encoding);
    RUN(amz_date);
    return test_done();
}
