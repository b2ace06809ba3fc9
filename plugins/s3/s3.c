/*
 * s3.c — the S3 storage plugin: configuration, the storage vtable, and how
 * S3 answers map to DimpleDb error codes. Transport in s3_http.c, listing
 * in s3_list.c, signing in sigv4.c. docs/s3.md is the user's guide.
 */
#include "s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *const known_keys[] = {
    "endpoint",   "bucket",        "region",     "prefix",  "access_key",
    "secret_key", "session_token", "addressing", "ca_file", "timeout",
    "retries",    "page_size",     NULL};

/* ------------------------------------------------------ configuration */

/* "file:line: " for a key's entry, so config errors name where. */
static const char *where(const s3 *s, const dimple_kv *conf, const char *key,
                         char *buf, size_t cap)
{
    const dimple_kv *kv = dimple_kv_find(conf, key);
    const char *file =
        s->host && s->host->config_file ? s->host->config_file : "(config)";
    if (kv && kv->line > 0)
        snprintf(buf, cap, "%s:%d: ", file, kv->line);
    else
        snprintf(buf, cap, "%s: ", file);
    return buf;
}

static const char *section(const s3 *s)
{
    return s->host && s->host->section ? s->host->section : "storage";
}

static int conf_error(const s3 *s, const dimple_kv *conf, const char *key,
                      const char *what)
{
    char w[512];
    return dimple_errorf(s->host, DIMPLE_ECONFIG, "%s[%s] %s",
                         where(s, conf, key, w, sizeof w), section(s), what);
}

static int dup_str(char **dst, const char *v)
{
    *dst = strdup(v);
    return *dst ? 0 : -1;
}

static int parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return -1;
    *out = n;
    return 0;
}

/* endpoint = scheme://host[:port][/] — nothing else: credentials belong in
 * access_key/secret_key, and a path would break the signed URI. */
static int parse_endpoint(s3 *s, const dimple_kv *conf, const char *v)
{
    const char *rest;
    size_t n;
    if (strncmp(v, "https://", 8) == 0) {
        s->scheme = strdup("https");
        rest = v + 8;
    } else if (strncmp(v, "http://", 7) == 0) {
        s->scheme = strdup("http");
        rest = v + 7;
    } else {
        return conf_error(s, conf, "endpoint",
                          "endpoint must start with http:// or https:// "
                          "(e.g. https://s3.eu-west-1.amazonaws.com)");
    }
    if (!s->scheme)
        return DIMPLE_ENOMEM;
    n = strlen(rest);
    if (n && rest[n - 1] == '/')
        n--;
    if (n == 0)
        return conf_error(s, conf, "endpoint", "endpoint has no host");
    for (size_t i = 0; i < n; i++) {
        char c = rest[i];
        if (c == '@')
            return conf_error(s, conf, "endpoint",
                              "endpoint must not contain user:password@; use "
                              "access_key and secret_key");
        if (c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t')
            return conf_error(s, conf, "endpoint",
                              "endpoint must be scheme://host[:port] without "
                              "a path or query");
    }
    s->hostport = strndup(rest, n);
    if (!s->hostport)
        return DIMPLE_ENOMEM;
    s->endpoint = malloc(strlen(s->scheme) + 3 + n + 1);
    if (!s->endpoint)
        return DIMPLE_ENOMEM;
    sprintf(s->endpoint, "%s://%s", s->scheme, s->hostport);
    return DIMPLE_OK;
}

static int bucket_ok(const char *b, int virtual_hosted)
{
    size_t n = strlen(b);
    if (n < 3 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '-';
        /* legacy path-style names may have capitals and '_'; a host name
         * may not */
        if (!virtual_hosted && ((c >= 'A' && c <= 'Z') || c == '_'))
            ok = 1;
        if (!ok)
            return 0;
    }
    return !virtual_hosted || n <= 63;
}

static void s3_free(s3 *s)
{
    if (!s)
        return;
    s3_http_close(s);
    if (s->secret_key)
        memset(s->secret_key, 0, strlen(s->secret_key));
    if (s->session_token)
        memset(s->session_token, 0, strlen(s->session_token));
    memset(s->sigkey, 0, sizeof s->sigkey);
    free(s->scheme);
    free(s->hostport);
    free(s->endpoint);
    free(s->bucket);
    free(s->region);
    free(s->prefix);
    free(s->access_key);
    free(s->secret_key);
    free(s->session_token);
    free(s->ca_file);
    free(s);
}

static int configure(s3 *s, const dimple_kv *conf)
{
    const char *v;
    long n;
    int rc = dimple_kv_check(s->host, conf, known_keys);
    if (rc)
        return rc;

    v = dimple_kv_get(conf, "endpoint");
    if (!v || !*v)
        return conf_error(s, conf, "endpoint",
                          "missing 'endpoint' (e.g. https://s3.amazonaws.com "
                          "or http://127.0.0.1:7480)");
    if ((rc = parse_endpoint(s, conf, v)))
        return rc;

    v = dimple_kv_get(conf, "addressing");
    if (!v || strcmp(v, "path") == 0)
        s->addressing = S3_PATH_STYLE;
    else if (strcmp(v, "virtual") == 0)
        s->addressing = S3_VIRTUAL_HOSTED;
    else
        return conf_error(s, conf, "addressing",
                          "addressing must be 'path' or 'virtual'");

    v = dimple_kv_get(conf, "bucket");
    if (!v || !*v)
        return conf_error(s, conf, "bucket", "missing 'bucket'");
    if (!bucket_ok(v, s->addressing == S3_VIRTUAL_HOSTED))
        return conf_error(s, conf, "bucket",
                          s->addressing == S3_VIRTUAL_HOSTED
                              ? "bucket must be 3-63 characters of a-z 0-9 . - "
                                "for virtual-hosted addressing"
                              : "bucket must be 3-255 characters of A-Z a-z "
                                "0-9 . - _");
    if (dup_str(&s->bucket, v))
        return DIMPLE_ENOMEM;

    /* Free text: "auto" for R2, "garage" for Garage (docs/s3.md). */
    v = dimple_kv_get(conf, "region");
    if (!v)
        v = "us-east-1";
    if (!*v || strpbrk(v, "/ \t\n"))
        return conf_error(s, conf, "region",
                          "region must be non-empty, without '/' or spaces");
    if (dup_str(&s->region, v))
        return DIMPLE_ENOMEM;

    v = dimple_kv_get(conf, "prefix");
    if (!v)
        v = "";
    while (*v == '/')
        v++;
    {
        size_t len = strlen(v);
        while (len && v[len - 1] == '/')
            len--;
        s->prefix = malloc(len + 2);
        if (!s->prefix)
            return DIMPLE_ENOMEM;
        memcpy(s->prefix, v, len);
        s->prefix[len] = '\0';
        if (len && !dimple_key_valid(s->prefix))
            return conf_error(s, conf, "prefix",
                              "prefix must be a relative path without empty, "
                              "'.' or '..' segments");
        if (len) {
            s->prefix[len] = '/';
            s->prefix[len + 1] = '\0';
        }
    }

    v = dimple_kv_get(conf, "access_key");
    if (!v || !*v)
        return conf_error(s, conf, "access_key",
                          "missing 'access_key' (e.g. access_key = "
                          "${AWS_ACCESS_KEY_ID})");
    if (dup_str(&s->access_key, v))
        return DIMPLE_ENOMEM;
    v = dimple_kv_get(conf, "secret_key");
    if (!v || !*v)
        return conf_error(s, conf, "secret_key",
                          "missing 'secret_key' (e.g. secret_key = "
                          "${AWS_SECRET_ACCESS_KEY})");
    if (dup_str(&s->secret_key, v))
        return DIMPLE_ENOMEM;
    v = dimple_kv_get(conf, "session_token");
    if (v && *v && dup_str(&s->session_token, v))
        return DIMPLE_ENOMEM;

    v = dimple_kv_get(conf, "ca_file");
    if (v && *v) {
        char msg[600];
        if (access(v, R_OK) != 0) {
            snprintf(msg, sizeof msg, "ca_file '%s' cannot be read: %s", v,
                     strerror(errno));
            return conf_error(s, conf, "ca_file", msg);
        }
        if (dup_str(&s->ca_file, v))
            return DIMPLE_ENOMEM;
    }

    s->timeout_s = 30;
    v = dimple_kv_get(conf, "timeout");
    if (v && parse_long(v, 1, 3600, &s->timeout_s))
        return conf_error(s, conf, "timeout",
                          "timeout must be a number of seconds, 1 to 3600");
    n = 5;
    v = dimple_kv_get(conf, "retries");
    if (v && parse_long(v, 0, 20, &n))
        return conf_error(s, conf, "retries", "retries must be 0 to 20");
    s->retries = (int)n;
    n = 1000;
    v = dimple_kv_get(conf, "page_size");
    if (v && parse_long(v, 1, 1000, &n))
        return conf_error(s, conf, "page_size", "page_size must be 1 to 1000");
    s->page_size = (int)n;
    return DIMPLE_OK;
}

static int s3_create(void **self, const dimple_kv *conf,
                     const dimple_host *host)
{
    s3 *s = calloc(1, sizeof *s);
    uint64_t seed = 0;
    int rc;
    *self = NULL;
    if (!s)
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    s->host = host;
    rc = configure(s, conf);
    if (rc == DIMPLE_ENOMEM)
        dimple_errorf(host, rc, "out of memory");
    if (rc)
        goto fail;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
               (uint64_t)(uintptr_t)s;
    s->rng = seed | 1;
    if (s3_http_global_init()) {
        rc = dimple_errorf(host, DIMPLE_ERROR, "libcurl failed to start");
        goto fail;
    }
    *self = s;
    return DIMPLE_OK;
fail:
    s3_free(s);
    return rc;
}

static void s3_destroy(void *self)
{
    if (!self)
        return;
    s3_free(self);
    s3_http_global_cleanup();
}

/* ------------------------------------------------------- error mapping */

int s3_fail(s3 *s, const s3_resp *rs, const char *what)
{
    const char *code = rs->code;
    long st = rs->status;
    char detail[400] = "";
    if (*code)
        snprintf(detail, sizeof detail, " %s%s%s", code,
                 rs->message[0] ? ": " : "", rs->message);

    if (strcmp(code, "NoSuchBucket") == 0)
        return dimple_errorf(s->host, DIMPLE_ECONFIG,
                             "%s: bucket '%s' does not exist at %s", what,
                             s->bucket, s->endpoint);
    if (strcmp(code, "SignatureDoesNotMatch") == 0)
        return dimple_errorf(s->host, DIMPLE_EAUTH,
                             "%s: %s refused the request signature "
                             "(SignatureDoesNotMatch): check secret_key and "
                             "region",
                             what, s->endpoint);
    if (strcmp(code, "InvalidAccessKeyId") == 0)
        return dimple_errorf(s->host, DIMPLE_EAUTH,
                             "%s: %s does not know the access key "
                             "(InvalidAccessKeyId): check access_key",
                             what, s->endpoint);
    if (strcmp(code, "RequestTimeTooSkewed") == 0)
        return dimple_errorf(s->host, DIMPLE_EAUTH,
                             "%s: %s refused the request time "
                             "(RequestTimeTooSkewed): this computer's clock "
                             "is off by more than 15 minutes",
                             what, s->endpoint);
    if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0)
        return dimple_errorf(s->host, DIMPLE_EAUTH,
                             "%s: %s refused the session token (%s): "
                             "renew session_token",
                             what, s->endpoint, code);
    if (st == 403)
        return dimple_errorf(s->host, DIMPLE_EAUTH,
                             "%s: access to bucket '%s' at %s denied "
                             "(HTTP 403%s%s)",
                             what, s->bucket, s->endpoint, *code ? " " : "",
                             code);
    if (st == 301 || st == 307 || strcmp(code, "PermanentRedirect") == 0 ||
        strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
        strcmp(code, "IllegalLocationConstraintException") == 0)
        return dimple_errorf(s->host, DIMPLE_ECONFIG,
                             "%s: %s says bucket '%s' is elsewhere (HTTP "
                             "%ld%s): check endpoint and region",
                             what, s->endpoint, s->bucket, st, detail);
    if (strcmp(code, "InvalidBucketName") == 0)
        return dimple_errorf(s->host, DIMPLE_ECONFIG,
                             "%s: %s refuses the bucket name '%s'", what,
                             s->endpoint, s->bucket);
    if (st == 404)
        return dimple_errorf(s->host, DIMPLE_ENOTFOUND, "%s: not found", what);
    if (st == 412)
        return dimple_errorf(s->host, DIMPLE_EEXISTS,
                             "%s: the object already exists", what);
    if (st == 409)
        return dimple_errorf(s->host, DIMPLE_ECONFLICT,
                             "%s: conflicting concurrent request (HTTP "
                             "409%s) after %d attempt%s",
                             what, detail, rs->attempts,
                             rs->attempts == 1 ? "" : "s");
    if (st == 501 || strcmp(code, "NotImplemented") == 0)
        return dimple_errorf(s->host, DIMPLE_ERROR,
                             "%s: %s does not implement this request (HTTP "
                             "%ld%s)",
                             what, s->endpoint, st, detail);
    if (st >= 500 || st == 429 || strcmp(code, "SlowDown") == 0)
        return dimple_errorf(s->host, DIMPLE_EIO,
                             "%s: %s keeps failing (HTTP %ld%s) after %d "
                             "attempt%s",
                             what, s->endpoint, st, detail, rs->attempts,
                             rs->attempts == 1 ? "" : "s");
    return dimple_errorf(s->host, DIMPLE_ERROR,
                         "%s: unexpected answer from %s (HTTP %ld%s)", what,
                         s->endpoint, st, detail);
}

/* -------------------------------------------------------- operations */

/* prefix + key, and "op 'key'" for messages. */
static int names(s3 *s, const char *op, const char *key, s3_buf *full,
                 s3_buf *what)
{
    if (!dimple_key_valid(key))
        return dimple_errorf(s->host, DIMPLE_EINVAL, "%s: invalid key '%s'", op,
                             key ? key : "");
    s3_buf_addf(full, "%s%s", s->prefix, key);
    s3_buf_addf(what, "%s '%s'", op, key);
    if (full->oom || what->oom)
        return dimple_errorf(s->host, DIMPLE_ENOMEM, "out of memory");
    return DIMPLE_OK;
}

static int do_put(s3 *s, const char *op, const char *key, const void *data,
                  size_t len, int if_none_match, int *repeated)
{
    s3_buf full = {0}, what = {0};
    s3_resp rs = {0};
    int rc = names(s, op, key, &full, &what);
    if (rc)
        goto out;
    rc = s3_http_do(s,
                    &(s3_req){.method = "PUT",
                              .key = full.p,
                              .body = data,
                              .body_len = len,
                              .if_none_match = if_none_match},
                    &rs, what.p);
    if (repeated)
        *repeated = rs.maybe_repeated;
    if (rc)
        goto out;
    rc = rs.status / 100 == 2 ? DIMPLE_OK : s3_fail(s, &rs, what.p);
out:
    s3_resp_free(&rs);
    s3_buf_free(&full);
    s3_buf_free(&what);
    return rc;
}

static int s3_put(void *self, const char *key, const void *data, size_t len)
{
    return do_put(self, "put", key, data, len, 0, NULL);
}

static int s3_get(void *self, const char *key, const dimple_sink *out)
{
    s3 *s = self;
    s3_buf full = {0}, what = {0};
    s3_resp rs = {0};
    int rc = names(s, "get", key, &full, &what);
    if (rc)
        goto out;
    rc = s3_http_do(s, &(s3_req){.method = "GET", .key = full.p}, &rs, what.p);
    if (rc)
        goto out;
    if (rs.status == 200) {
        /* The whole body arrived before the sink sees a byte: a retry
         * after a broken transfer never hands over bytes twice. */
        rc = dimple_sink_write(out, rs.body.p, rs.body.len);
    } else if (rs.status == 404 && strcmp(rs.code, "NoSuchBucket") != 0) {
        rc = dimple_errorf(s->host, DIMPLE_ENOTFOUND,
                           "get '%s': no such object in bucket '%s'", key,
                           s->bucket);
    } else {
        rc = s3_fail(s, &rs, what.p);
    }
out:
    s3_resp_free(&rs);
    s3_buf_free(&full);
    s3_buf_free(&what);
    return rc;
}

static int s3_remove(void *self, const char *key)
{
    s3 *s = self;
    s3_buf full = {0}, what = {0};
    s3_resp rs = {0};
    int rc = names(s, "remove", key, &full, &what);
    if (rc)
        goto out;
    rc = s3_http_do(s, &(s3_req){.method = "DELETE", .key = full.p}, &rs,
                    what.p);
    if (rc)
        goto out;
    /* S3 answers 204 for an absent key too; some servers say 404. */
    if (rs.status / 100 == 2 ||
        (rs.status == 404 && strcmp(rs.code, "NoSuchBucket") != 0))
        rc = DIMPLE_OK;
    else
        rc = s3_fail(s, &rs, what.p);
out:
    s3_resp_free(&rs);
    s3_buf_free(&full);
    s3_buf_free(&what);
    return rc;
}

static int s3_list(void *self, const char *prefix, const char *start_after,
                   unsigned flags, dimple_list_cb cb, void *payload)
{
    return s3_list_run(self, prefix, start_after, flags, cb, payload);
}

static uint64_t next_probe_salt(s3 *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static void not_honoured(s3 *s)
{
    s->cond_put = -1;
    dimple_logf(s->host, DIMPLE_LOG_INFO,
                "%s does not honour If-None-Match: *; put_if_absent is not "
                "available",
                s->endpoint);
}

/* Does the server refuse a second PUT with If-None-Match: *? Some (s3rver,
 * old gateways) ignore the header and overwrite, so it is tested once on a
 * private key instead of assumed. */
static int probe_conditional_put(s3 *s)
{
    char key[64];
    uint64_t r1 = 0, r2;
    int rc;
    if (getrandom(&r1, sizeof r1, GRND_NONBLOCK) != (ssize_t)sizeof r1)
        r1 = next_probe_salt(s);
    r2 = (uint64_t)time(NULL) ^ s->rng;
    snprintf(key, sizeof key, ".dimple-probe-%016llx%08llx",
             (unsigned long long)r1, (unsigned long long)(r2 & 0xffffffffu));
    rc = do_put(s, "probe put", key, "1", 1, 1, NULL);
    if (rc == DIMPLE_ERROR) {
        /* 400/501 to the header itself (Alibaba OSS answers 501) */
        not_honoured(s);
        return DIMPLE_OK;
    }
    if (rc)
        return rc; /* a real failure (auth, bucket, network): report it */
    rc = do_put(s, "probe put", key, "2", 1, 1, NULL);
    if (rc == DIMPLE_EEXISTS)
        s->cond_put = 1;
    else if (rc == DIMPLE_OK || rc == DIMPLE_ERROR)
        not_honoured(s); /* overwritten, or refused the header */
    else
        return rc;
    return s3_remove(s, key);
}

static int buf_sink(void *ctx, const void *p, size_t n)
{
    return s3_buf_add(ctx, p, n) ? DIMPLE_ENOMEM : DIMPLE_OK;
}

/* A conditional PUT sent twice (see s3_resp.maybe_repeated) whose first
 * copy reached the server gets 412 for the second. If the object holds
 * exactly our bytes, the first copy was ours (or an identical write at
 * that very moment: the same outcome for the caller). */
static int same_content(s3 *s, const char *key, const void *data, size_t len)
{
    s3_buf b = {0};
    int same = s3_get(s, key, &(dimple_sink){buf_sink, &b}) == DIMPLE_OK &&
               b.len == len && (len == 0 || memcmp(b.p, data, len) == 0);
    s3_buf_free(&b);
    return same;
}

static int s3_put_if_absent(void *self, const char *key, const void *data,
                            size_t len)
{
    s3 *s = self;
    int rc, repeated = 0;
    if (!dimple_key_valid(key))
        return dimple_errorf(s->host, DIMPLE_EINVAL,
                             "put_if_absent: invalid key '%s'", key ? key : "");
    if (s->cond_put == 0 && (rc = probe_conditional_put(s)))
        return rc;
    if (s->cond_put < 0)
        return dimple_errorf(s->host, DIMPLE_EPLUGIN,
                             "put_if_absent '%s': not supported by the "
                             "server at %s (it ignores If-None-Match: *)",
                             key, s->endpoint);
    rc = do_put(s, "put_if_absent", key, data, len, 1, &repeated);
    if (rc == DIMPLE_EEXISTS && repeated && same_content(s, key, data, len))
        return DIMPLE_OK; /* an earlier attempt landed; its answer was lost */
    if (rc == DIMPLE_EEXISTS)
        return dimple_errorf(s->host, DIMPLE_EEXISTS,
                             "put_if_absent '%s': the object already "
                             "exists",
                             key);
    return rc;
}

/* ------------------------------------------------------------ entry */

static const dimple_storage_vtable s3_vtable = {
    .size = sizeof(dimple_storage_vtable),
    .create = s3_create,
    .destroy = s3_destroy,
    .put = s3_put,
    .get = s3_get,
    .list = s3_list,
    .remove = s3_remove,
    .put_if_absent = s3_put_if_absent,
};

static const dimple_plugin s3_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_STORAGE,
    .name = "s3",
    .version = DIMPLE_S3_VERSION,
    .description = "S3-compatible object storage (SigV4 over libcurl)",
    .vt = {.storage = &s3_vtable},
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &s3_plugin;
}
