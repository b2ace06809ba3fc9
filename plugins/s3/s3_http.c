/*
 * s3_http.c — the transport: one libcurl easy handle per instance, reused so
 * the keep-alive connection is too; every request signed with our SigV4;
 * retries with exponential backoff and jitter on transport failures, 5xx,
 * 429, SlowDown and the other codes S3 documents as retryable.
 */
#include "s3.h"
#include "sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

/* curl_global_init is not thread-safe in 7.88: count instances under a
 * lock and init/cleanup around the first/last one. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_refs;

int s3_http_global_init(void)
{
    int rc = 0;
    pthread_mutex_lock(&g_lock);
    if (g_refs == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = -1;
    else
        g_refs++;
    pthread_mutex_unlock(&g_lock);
    return rc;
}

void s3_http_global_cleanup(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_refs > 0 && --g_refs == 0)
        curl_global_cleanup();
    pthread_mutex_unlock(&g_lock);
}

void s3_http_close(s3 *s)
{
    if (s->curl)
        curl_easy_cleanup(s->curl);
    s->curl = NULL;
}

void s3_resp_free(s3_resp *rs)
{
    s3_buf_free(&rs->body);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    s3_buf *b = ud;
    if (s3_buf_add(b, p, size * n))
        return 0; /* out of memory: curl stops with CURLE_WRITE_ERROR */
    return size * n;
}

/* xorshift64*: jitter only needs to decorrelate clients, not be secret. */
static uint64_t next_rand(s3 *s)
{
    uint64_t x = s->rng ? s->rng : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Before retry n (1-based): 200 ms doubling, capped at 10 s, with "equal
 * jitter" (half fixed, half random) so clients that failed together do
 * not come back together. */
static void backoff(s3 *s, int n)
{
    long ms = 200;
    struct timespec ts;
    for (int i = 1; i < n && ms < 10000; i++)
        ms *= 2;
    if (ms > 10000)
        ms = 10000;
    ms = ms / 2 + (long)(next_rand(s) % (uint64_t)(ms / 2 + 1));
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static int tls_trust_error(CURLcode c)
{
    return c == CURLE_PEER_FAILED_VERIFICATION ||
           c == CURLE_SSL_CACERT_BADFILE || c == CURLE_SSL_CERTPROBLEM ||
           c == CURLE_SSL_ISSUER_ERROR || c == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

/* 5xx, 429 and the codes AWS documents as "retry": a later attempt may
 * succeed. Authentication failures and RequestTimeTooSkewed are not. */
static int retryable_status(long status, const char *code)
{
    if (status == 501)
        return 0; /* NotImplemented: asking again will not help */
    if (status >= 500 || status == 429)
        return 1;
    return strcmp(code, "SlowDown") == 0 ||
           strcmp(code, "RequestTimeout") == 0 ||
           strcmp(code, "ConditionalRequestConflict") == 0 ||
           strcmp(code, "OperationAborted") == 0 ||
           strcmp(code, "InternalError") == 0;
}

/* host and canonical URI for the request, per the addressing style. */
static int build_target(s3 *s, const s3_req *rq, s3_buf *host, s3_buf *uri)
{
    s3_buf_reset(host);
    s3_buf_reset(uri);
    if (s->addressing == S3_VIRTUAL_HOSTED) {
        s3_buf_addf(host, "%s.%s", s->bucket, s->hostport);
        s3_buf_addc(uri, '/');
    } else {
        s3_buf_adds(host, s->hostport);
        s3_buf_addc(uri, '/');
        s3_uri_encode(uri, s->bucket, strlen(s->bucket), 0);
        if (rq->key)
            s3_buf_addc(uri, '/');
    }
    if (rq->key)
        s3_uri_encode(uri, rq->key, strlen(rq->key), 1);
    return host->oom || uri->oom ? DIMPLE_ENOMEM : DIMPLE_OK;
}

static struct curl_slist *add_header(struct curl_slist *l, int *oom,
                                     const char *fmt, const char *v)
{
    s3_buf line = {0};
    struct curl_slist *n;
    if (*oom)
        return l;
    s3_buf_addf(&line, fmt, v);
    n = line.oom ? NULL : curl_slist_append(l, line.p);
    /* the line may hold a token or the signature: wipe our copy */
    if (line.p)
        memset(line.p, 0, line.len);
    s3_buf_free(&line);
    if (!n) {
        *oom = 1;
        return l;
    }
    return n;
}

/* Sign and set up one attempt on the reused handle. */
static int prepare(s3 *s, const s3_req *rq, const char *host, const char *uri,
                   const char *url, const char *payload,
                   struct curl_slist **hdrs, s3_resp *rs, char *errbuf)
{
    CURL *c = s->curl;
    char amz_date[17];
    sigv4_header sh[5];
    size_t nsh = 0;
    s3_buf auth = {0};
    int oom = 0, rc;
    sigv4_request sr;

    sigv4_amz_date(time(NULL), amz_date);
    if (memcmp(s->sigkey_date, amz_date, 8) != 0) {
        char date8[9];
        memcpy(date8, amz_date, 8);
        date8[8] = '\0';
        if (sigv4_signing_key(s->secret_key, date8, s->region, "s3", s->sigkey))
            return dimple_errorf(s->host, DIMPLE_ERROR,
                                 "cannot derive the signing key (OpenSSL)");
        memcpy(s->sigkey_date, amz_date, 8);
        s->sigkey_date[8] = '\0';
    }
    sh[nsh++] = (sigv4_header){"host", host};
    sh[nsh++] = (sigv4_header){"x-amz-content-sha256", payload};
    sh[nsh++] = (sigv4_header){"x-amz-date", amz_date};
    if (s->session_token)
        sh[nsh++] = (sigv4_header){"x-amz-security-token", s->session_token};
    if (rq->if_none_match)
        sh[nsh++] = (sigv4_header){"if-none-match", "*"};
    sr = (sigv4_request){.method = rq->method,
                         .uri = uri,
                         .query = rq->query ? rq->query : "",
                         .headers = sh,
                         .nheaders = nsh,
                         .payload_hash = payload,
                         .amz_date = amz_date,
                         .region = s->region,
                         .service = "s3",
                         .access_key = s->access_key};
    rc = sigv4_authorization(&sr, s->sigkey, &auth);
    if (rc) {
        s3_buf_free(&auth);
        return dimple_errorf(s->host, rc, "cannot sign the request");
    }

    *hdrs = add_header(*hdrs, &oom, "Host: %s", host);
    *hdrs = add_header(*hdrs, &oom, "x-amz-content-sha256: %s", payload);
    *hdrs = add_header(*hdrs, &oom, "x-amz-date: %s", amz_date);
    if (s->session_token)
        *hdrs = add_header(*hdrs, &oom, "x-amz-security-token: %s",
                           s->session_token);
    if (rq->if_none_match)
        *hdrs = add_header(*hdrs, &oom, "If-None-Match: %s", "*");
    *hdrs = add_header(*hdrs, &oom, "Authorization: %s", auth.p);
    /* No 100-continue round trip (and nothing unsigned that S3 checks). */
    *hdrs = add_header(*hdrs, &oom, "Expect:%s", "");
    if (strcmp(rq->method, "PUT") == 0)
        *hdrs = add_header(*hdrs, &oom, "Content-Type: %s",
                           "application/octet-stream");
    memset(auth.p, 0, auth.len);
    s3_buf_free(&auth);
    if (oom)
        return dimple_errorf(s->host, DIMPLE_ENOMEM, "out of memory");

    /* reset keeps the live connection, the DNS and TLS session caches */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dimple-s3/" DIMPLE_S3_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, s->timeout_s);
    /* A stalled transfer (no byte for `timeout` seconds) is a timeout;
     * a slow but moving large body is not. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->timeout_s);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rs->body);
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "PUT") == 0) {
        /* POSTFIELDS sends the bytes from memory with a Content-Length:
         * no chunked encoding, no read callback. */
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)rq->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                         rq->body_len ? rq->body : (const void *)"");
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    return DIMPLE_OK;
}

int s3_http_do(s3 *s, const s3_req *rq, s3_resp *rs, const char *what)
{
    s3_buf host = {0}, uri = {0}, url = {0};
    char payload[65];
    char errbuf[CURL_ERROR_SIZE];
    int rc, max = s->retries + 1;
    CURLcode last = CURLE_OK;

    rs->status = 0;
    rs->code[0] = rs->message[0] = '\0';
    rs->attempts = 0;
    rs->maybe_repeated = 0;
    errbuf[0] = '\0';
    if (!s->curl) {
        s->curl = curl_easy_init();
        if (!s->curl)
            return dimple_errorf(s->host, DIMPLE_ENOMEM,
                                 "cannot create a libcurl handle");
    }
    rc = build_target(s, rq, &host, &uri);
    if (rc)
        goto out;
    s3_buf_addf(&url, "%s://%s%s%s%s", s->scheme, host.p, uri.p,
                rq->query && *rq->query ? "?" : "", rq->query ? rq->query : "");
    if (url.oom) {
        rc = DIMPLE_ENOMEM;
        goto out;
    }
    if (rq->body_len)
        sigv4_sha256_hex(rq->body, rq->body_len, payload);
    else
        strcpy(payload, SIGV4_EMPTY_SHA256);
    s->requests++;
    dimple_logf(s->host, DIMPLE_LOG_DEBUG, "%s: %s %s%s%s", what, rq->method,
                uri.p, rq->query && *rq->query ? "?" : "",
                rq->query ? rq->query : "");

    for (int attempt = 1; attempt <= max; attempt++) {
        struct curl_slist *hdrs = NULL;
        CURLcode cc;
        if (attempt > 1)
            backoff(s, attempt - 1);
        s3_buf_reset(&rs->body);
        rs->body.oom = 0;
        rs->code[0] = rs->message[0] = '\0';
        rs->status = 0;
        errbuf[0] = '\0';
        rs->attempts = attempt;
        s->attempts++;
        rc = prepare(s, rq, host.p, uri.p, url.p, payload, &hdrs, rs, errbuf);
        if (rc) {
            curl_slist_free_all(hdrs);
            goto out;
        }
        cc = curl_easy_perform(s->curl);
        curl_slist_free_all(hdrs);
        last = cc;
        {
            long connects = 0;
            curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &connects);
            if (attempt > 1 || (s->used && connects > 0))
                rs->maybe_repeated = 1;
            s->used = 1;
        }
        if (cc == CURLE_WRITE_ERROR && rs->body.oom) {
            rc = dimple_errorf(s->host, DIMPLE_ENOMEM,
                               "%s: out of memory reading the answer", what);
            goto out;
        }
        if (cc != CURLE_OK) {
            if (tls_trust_error(cc)) {
                rc = dimple_errorf(
                    s->host, DIMPLE_ECONFIG,
                    "%s: TLS verification of %s failed: %s (set ca_file "
                    "to the CA that signed the server's certificate)",
                    what, s->endpoint,
                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
                goto out;
            }
            if (retryable_curl(cc) && attempt < max)
                continue;
            break;
        }
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &rs->status);
        if (rs->status >= 300 && rs->body.len)
            s3_xml_error(rs->body.p, rs->body.len, rs->code, sizeof rs->code,
                         rs->message, sizeof rs->message);
        if (rs->status >= 300 && retryable_status(rs->status, rs->code) &&
            attempt < max) {
            dimple_logf(s->host, DIMPLE_LOG_DEBUG,
                        "%s: HTTP %ld %s, retrying (attempt %d of %d)", what,
                        rs->status, rs->code, attempt, max);
            continue;
        }
        rc = DIMPLE_OK;
        goto out;
    }
    rc = dimple_errorf(s->host, DIMPLE_EIO,
                       "%s: cannot reach %s after %d attempt%s: %s", what,
                       s->endpoint, rs->attempts, rs->attempts == 1 ? "" : "s",
                       errbuf[0] ? errbuf : curl_easy_strerror(last));
out:
    s3_buf_free(&host);
    s3_buf_free(&uri);
    s3_buf_free(&url);
    return rc;
}
