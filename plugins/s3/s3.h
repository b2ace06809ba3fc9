/*
 * s3.h — internals shared by the S3 storage plugin's files:
 *   s3.c       vtable, configuration, object operations, error mapping
 *   s3_http.c  libcurl transport: one reused handle, signing, retries
 *   s3_list.c  ListObjectsV2 and <Error> XML (expat)
 *   s3_uri.c   growable buffers, strict RFC 3986 encoding
 *   sigv4.c    AWS Signature Version 4 (OpenSSL)
 * Nothing here is exported from the shared object.
 */
#ifndef DIMPLE_S3_H
#define DIMPLE_S3_H

#include <dimple/plugin.h>

#include <stddef.h>
#include <stdint.h>

#define DIMPLE_S3_VERSION "0.1.0"

/* ------------------------------------------------------------ buffers */

/* A growable byte string, always NUL-terminated when p != NULL. An
 * allocation failure sets oom and turns later appends into no-ops, so a
 * chain of appends is checked once. */
typedef struct s3_buf {
    char *p;
    size_t len, cap;
    int oom;
} s3_buf;

void s3_buf_free(s3_buf *b);
void s3_buf_reset(s3_buf *b); /* len = 0, keeps the memory */
int s3_buf_add(s3_buf *b, const void *p, size_t n);
int s3_buf_adds(s3_buf *b, const char *s);
int s3_buf_addc(s3_buf *b, char c);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int s3_buf_addf(s3_buf *b, const char *fmt, ...);

/* Append s percent-encoded per RFC 3986: every byte except A-Z a-z 0-9
 * - . _ ~ becomes %XX (uppercase hex); '/' is kept when keep_slash. This
 * is both what goes on the wire and what SigV4 signs. */
int s3_uri_encode(s3_buf *b, const char *s, size_t n, int keep_slash);
/* Decode %XX (and '+' as a space, as S3's encoding-type=url does) into
 * out; -1 on a malformed escape or a NUL byte. */
int s3_uri_decode(s3_buf *out, const char *s, size_t n);

/* ----------------------------------------------------------- instance */

enum { S3_PATH_STYLE = 0, S3_VIRTUAL_HOSTED = 1 };

typedef struct s3 {
    const dimple_host *host;
    /* configuration */
    char *scheme;   /* "http" or "https" */
    char *hostport; /* "127.0.0.1:7480": what the Host header carries */
    char *endpoint; /* "scheme://hostport", for messages */
    char *bucket;
    char *region;
    char *prefix; /* "" or "a/b/" */
    char *access_key;
    char *secret_key;    /* never in a message */
    char *session_token; /* NULL or a token; never in a message */
    char *ca_file;
    int addressing;
    long timeout_s;
    int retries;
    int page_size;
    /* transport */
    void *curl; /* CURL *, reused so the connection is kept */
    uint64_t rng;
    int used; /* the handle has made a request: its connection is reused */
    unsigned char sigkey[32]; /* signing key for sigkey_date */
    char sigkey_date[9];
    /* put_if_absent probe: 0 unknown, 1 honoured, -1 ignored */
    int cond_put;
    /* counters, for tests and the benchmark */
    unsigned long requests, attempts;
} s3;

/* ------------------------------------------------------------ requests */

typedef struct s3_req {
    const char *method; /* GET, PUT, DELETE, HEAD */
    const char *key;    /* full object key (prefix included) or NULL */
    const char *query;  /* canonical query string (s3_query_build), or "" */
    const void *body;   /* PUT body */
    size_t body_len;
    int if_none_match; /* send If-None-Match: * */
} s3_req;

typedef struct s3_resp {
    long status;   /* final HTTP status */
    s3_buf body;   /* response body (any status) */
    char code[64]; /* <Error><Code>, "" when none */
    char message[256];
    int attempts; /* tries made */
    /* The request may have reached the server more than once: our retry,
     * or libcurl re-sending on a fresh connection after a reused one died
     * without an answer (it does so even after sending the body). */
    int maybe_repeated;
} s3_resp;

/* Make the request, retrying transport failures, 5xx, 429, SlowDown and
 * friends with exponential backoff and jitter. DIMPLE_OK when a final
 * HTTP answer arrived (any status: the caller maps it); otherwise a
 * negative code with the message already set (DIMPLE_EIO naming the
 * endpoint and attempts, DIMPLE_ECONFIG for TLS trust problems). `what`
 * names the operation for messages, e.g. "put 'a/b'". */
int s3_http_do(s3 *s, const s3_req *rq, s3_resp *rs, const char *what);
void s3_resp_free(s3_resp *rs);
int s3_http_global_init(void);
void s3_http_global_cleanup(void);
void s3_http_close(s3 *s);

/* A canonical query: name/value pairs (NULL-terminated list of names;
 * values may be "" but not NULL) encoded and sorted by name, joined by
 * '&', every name with '='. The same text goes on the wire and into
 * the signature. */
typedef struct s3_param {
    const char *name;
    const char *value;
} s3_param;
int s3_query_build(s3_buf *out, const s3_param *params, size_t n);

/* --------------------------------------------------------------- XML */

/* Fill code/message from an S3 <Error> document; empty when absent. */
void s3_xml_error(const char *xml, size_t len, char *code, size_t code_cap,
                  char *msg, size_t msg_cap);

/* One ListObjectsV2 page. Entries are raw keys as stored (decoded when
 * the server says EncodingType=url); prefixes are CommonPrefixes. */
typedef struct s3_list_page {
    char **keys;
    size_t nkeys, capkeys;
    char **prefixes;
    size_t nprefixes, capprefixes;
    int truncated;
    char *next_token; /* NextContinuationToken, or NULL */
    int url_encoded;
} s3_list_page;

/* Parse one page; DIMPLE_ECORRUPT (message set) on malformed XML. */
int s3_list_parse(const s3 *s, const char *xml, size_t len, s3_list_page *page);
void s3_list_page_free(s3_list_page *page);

/* The list operation of the vtable. */
int s3_list_run(s3 *s, const char *prefix, const char *start_after,
                unsigned flags, dimple_list_cb cb, void *payload);

/* Map a final HTTP answer that is not a success to a code and message.
 * `what` names the operation, `key` the object (or NULL). */
int s3_fail(s3 *s, const s3_resp *rs, const char *what);

#endif /* DIMPLE_S3_H */
