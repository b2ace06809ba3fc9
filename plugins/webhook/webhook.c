/*
 * webhook.c — notifier plugin: an HTTP POST of a JSON array per commit.
 *
 *   [notifier.hook]
 *   plugin    = webhook
 *   url       = https://example.org/dimple   ; http:// or https://
 *   timeout   = 5      ; seconds per request (decimals allowed)
 *   retries   = 3      ; extra attempts after a failure, with backoff
 *   queue_max = 1000   ; commits waiting at most; beyond it the OLDEST drops
 *
 * notify() runs on the committing thread, so it only formats the body and
 * appends it to a bounded queue (a mutex held for a few instructions): a
 * writer never waits for the network. One background thread per instance
 * POSTs the queue in order with libcurl. A batch is retried on network
 * errors, 5xx, 408 and 429, after 0.1 s, 0.2 s, 0.4 s ... (at most 5 s);
 * other 4xx answers are final. Dropped batches (queue full: the oldest
 * goes, so the receiver keeps the newest changes) and failed ones (retries
 * used up, or a final 4xx) are counted and reported through the host's log
 * on the next notify() and at destroy — the background thread never calls
 * the host, whose callbacks belong to the handle's thread.
 *
 * destroy() is bounded too: it gives what is still queued one attempt
 * each within `timeout` in total, and counts the rest as dropped.
 *
 * The URL can carry a token (user:password@ or ?key=...): messages name
 * only its scheme and host.
 */
#define _POSIX_C_SOURCE 200809L
#include <dimple/plugin.h>

#include "event_json.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

typedef struct item {
    char *body;
    size_t len;
} item;

typedef struct webhook {
    char *url;
    char safe_url[200]; /* scheme://host for messages */
    long timeout_ms;
    int retries;
    size_t queue_max;
    const dimple_host *host;

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    item *q; /* ring of queue_max */
    size_t head, count;
    int stop;
    struct timespec deadline; /* once stop is set */
    uint64_t sent, dropped, failed;
    uint64_t rep_dropped, rep_failed; /* already reported */
    char last_error[512];
} webhook;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* "scheme://host[:port]" without user info, path or query. */
static void make_safe_url(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://"), *host, *end, *at;
    size_t slen;
    if (!p) {
        snprintf(out, n, "(url)");
        return;
    }
    slen = (size_t)(p - url);
    host = p + 3;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at)
        host = at + 1;
    snprintf(out, n, "%.*s://%.*s", (int)slen, url, (int)(end - host), host);
}

static int parse_num(const dimple_host *host, const dimple_kv *conf,
                     const char *key, double lo, double hi, double *out)
{
    const dimple_kv *kv = dimple_kv_find(conf, key);
    char *end = NULL;
    double v;
    if (!kv)
        return DIMPLE_OK;
    errno = 0;
    v = strtod(kv->value ? kv->value : "", &end);
    if (!kv->value || end == kv->value || *end || errno || v < lo || v > hi)
        return dimple_errorf(host, DIMPLE_ECONFIG,
                             "%s:%d: %s = '%s': expected a number from %g "
                             "to %g",
                             host && host->config_file ? host->config_file
                                                       : "(config)",
                             kv->line, key, kv->value ? kv->value : "", lo, hi);
    *out = v;
    return DIMPLE_OK;
}

static void add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static long ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (long)(t->tv_sec - now.tv_sec) * 1000 +
           (t->tv_nsec - now.tv_nsec) / 1000000L;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

enum { SEND_OK, SEND_RETRY, SEND_FINAL };

/* One POST. Sets err (no URL in it beyond the safe part). */
static int post(webhook *w, CURL *c, const item *it, long timeout_ms, char *err,
                size_t errn)
{
    struct curl_slist *hdr = NULL;
    CURLcode rc;
    long status = 0;
    int out;
    if (timeout_ms < 1)
        timeout_ms = 1;
    curl_easy_reset(c);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, w->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* we are a thread */
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dimple-webhook/0.1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        snprintf(err, errn, "POST %s: %s", w->safe_url, curl_easy_strerror(rc));
        return SEND_RETRY;
    }
    if (status >= 200 && status < 300)
        return SEND_OK;
    snprintf(err, errn, "POST %s: HTTP %ld", w->safe_url, status);
    out = status >= 500 || status == 408 || status == 429 ? SEND_RETRY
                                                          : SEND_FINAL;
    return out;
}

static void *sender(void *arg)
{
    webhook *w = arg;
    CURL *c = curl_easy_init();
    char err[512];
    pthread_mutex_lock(&w->mu);
    for (;;) {
        item it;
        int result = SEND_FINAL;
        while (!w->count && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->count)
            break; /* stopped and drained */
        it = w->q[w->head];
        w->head = (w->head + 1) % w->queue_max;
        w->count--;
        for (int attempt = 0; attempt <= w->retries; attempt++) {
            long timeout = w->timeout_ms;
            if (w->stop) { /* shutting down: one attempt, within the bound */
                long left = ms_until(&w->deadline);
                if (attempt > 0 || left <= 0) {
                    if (attempt == 0)
                        snprintf(err, sizeof err,
                                 "shutdown: no time left to send");
                    break;
                }
                if (left < timeout)
                    timeout = left;
            }
            pthread_mutex_unlock(&w->mu);
            if (!c) {
                snprintf(err, sizeof err, "POST %s: curl_easy_init failed",
                         w->safe_url);
                result = SEND_FINAL;
            } else {
                result = post(w, c, &it, timeout, err, sizeof err);
            }
            pthread_mutex_lock(&w->mu);
            if (result != SEND_RETRY || attempt == w->retries || w->stop)
                break;
            { /* backoff, cut short by destroy() */
                struct timespec until;
                long ms = BACKOFF_FIRST_MS << (attempt < 10 ? attempt : 10);
                if (ms > BACKOFF_MAX_MS)
                    ms = BACKOFF_MAX_MS;
                clock_gettime(CLOCK_REALTIME, &until);
                add_ms(&until, ms);
                while (!w->stop &&
                       pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
                    ;
            }
        }
        if (result == SEND_OK) {
            w->sent++;
        } else {
            w->failed++;
            snprintf(w->last_error, sizeof w->last_error, "%s", err);
        }
        free(it.body);
    }
    pthread_mutex_unlock(&w->mu);
    if (c)
        curl_easy_cleanup(c);
    return NULL;
}

static void webhook_free(webhook *w)
{
    if (!w)
        return;
    if (w->q)
        for (size_t i = 0; i < w->count; i++)
            free(w->q[(w->head + i) % w->queue_max].body);
    free(w->q);
    free(w->url);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static int webhook_create(void **self, const dimple_kv *conf,
                          const dimple_host *host)
{
    static const char *const known[] = {"url", "timeout", "retries",
                                        "queue_max", NULL};
    const char *url = dimple_kv_get(conf, "url");
    double timeout = 5, retries = 3, queue_max = 1000;
    webhook *w;
    int rc = dimple_kv_check(host, conf, known);
    if (rc)
        return rc;
    if (!url || !*url)
        return dimple_errorf(host, DIMPLE_ECONFIG, "missing key 'url'");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return dimple_errorf(host, DIMPLE_ECONFIG,
                             "url: expected http:// or https://");
    if ((rc = parse_num(host, conf, "timeout", 0.001, 3600, &timeout)) ||
        (rc = parse_num(host, conf, "retries", 0, 20, &retries)) ||
        (rc = parse_num(host, conf, "queue_max", 1, 1000000, &queue_max)))
        return rc;
    if (retries != (int)retries || queue_max != (size_t)queue_max)
        return dimple_errorf(host, DIMPLE_ECONFIG,
                             "retries and queue_max must be whole numbers");
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return dimple_errorf(host, DIMPLE_EPLUGIN, "curl_global_init: %s",
                             curl_easy_strerror(curl_init_rc));
    w = calloc(1, sizeof *w);
    if (!w)
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->host = host;
    w->timeout_ms = (long)(timeout * 1000);
    w->retries = (int)retries;
    w->queue_max = (size_t)queue_max;
    w->url = strdup(url);
    w->q = calloc(w->queue_max, sizeof *w->q);
    if (!w->url || !w->q) {
        webhook_free(w);
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    }
    make_safe_url(url, w->safe_url, sizeof w->safe_url);
    if (pthread_create(&w->thread, NULL, sender, w) != 0) {
        webhook_free(w);
        return dimple_errorf(host, DIMPLE_EPLUGIN,
                             "cannot start the sender thread");
    }
    w->started = 1;
    *self = w;
    return DIMPLE_OK;
}

/* Log what went wrong since the last report (handle's thread only). */
static void report(webhook *w)
{
    uint64_t d, f;
    char last[512];
    pthread_mutex_lock(&w->mu);
    d = w->dropped - w->rep_dropped;
    f = w->failed - w->rep_failed;
    w->rep_dropped = w->dropped;
    w->rep_failed = w->failed;
    snprintf(last, sizeof last, "%s", w->last_error);
    pthread_mutex_unlock(&w->mu);
    if (d)
        dimple_logf(w->host, DIMPLE_LOG_WARN,
                    "%llu commit(s) dropped: queue full (queue_max = %zu)",
                    (unsigned long long)d, w->queue_max);
    if (f)
        dimple_logf(w->host, DIMPLE_LOG_WARN,
                    "%llu commit(s) not delivered; last error: %s",
                    (unsigned long long)f, last);
}

static void webhook_destroy(void *self)
{
    webhook *w = self;
    uint64_t sent;
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        clock_gettime(CLOCK_REALTIME, &w->deadline);
        add_ms(&w->deadline, w->timeout_ms);
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    sent = w->sent;
    report(w);
    dimple_logf(w->host, DIMPLE_LOG_DEBUG,
                "stopped: %llu sent, %llu dropped, %llu failed",
                (unsigned long long)sent, (unsigned long long)w->dropped,
                (unsigned long long)w->failed);
    webhook_free(w);
}

static int webhook_notify(void *self, const dimple_event *events, size_t n)
{
    webhook *w = self;
    ev_buf b = {0};
    if (!n)
        return DIMPLE_OK;
    ev_put(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            ev_put(&b, ",", 1);
        ev_event(&b, &events[i]);
    }
    ev_put(&b, "]", 1);
    if (b.oom) {
        free(b.p);
        return dimple_errorf(w->host, DIMPLE_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&w->mu);
    if (w->count == w->queue_max) { /* drop the oldest: never wait */
        free(w->q[w->head].body);
        w->head = (w->head + 1) % w->queue_max;
        w->count--;
        w->dropped++;
    }
    w->q[(w->head + w->count) % w->queue_max] = (item){b.p, b.n};
    w->count++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    report(w);
    return DIMPLE_OK;
}

static const dimple_notifier_vtable webhook_vt = {
    .size = sizeof(dimple_notifier_vtable),
    .create = webhook_create,
    .destroy = webhook_destroy,
    .notify = webhook_notify,
};

static const dimple_plugin webhook_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_NOTIFIER,
    .name = "webhook",
    .version = "0.1.0",
    .description = "HTTP POST of a JSON array per commit (libcurl; queued, "
                   "retried, never blocks writers)",
    .vt.notifier = &webhook_vt,
};

const dimple_plugin *dimple_plugin_entry(void)
{
    return &webhook_plugin;
}
