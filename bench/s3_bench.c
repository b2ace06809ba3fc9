/*
 * s3_bench.c — dimple-s3 against a plain libcurl loop making the same
 * requests on one connection, in the same run, on the same radosgw:
 * 1 KiB PUTs, 1 KiB GETs and ListObjectsV2 calls. Prints ops/s and the
 * ratio plugin/baseline (target >= 0.9).
 *
 * The baseline signs with libcurl's own CURLOPT_AWS_SIGV4 (keys and query
 * chosen so its 7.88 bugs do not matter: plain keys, sorted query, an
 * explicit x-amz-content-sha256) and does nothing else: no parsing, no
 * buffers, no retries. Blocks of requests alternate baseline/plugin so
 * drift in the shared server's speed hits both alike.
 *
 * Uses the radosgw named by DIMPLE_TEST_S3_* if set, otherwise starts one
 * with tests/servers/s3.sh for the run (run from the source root, as
 * bench/run.sh does). dimple-s3.so comes from DIMPLE_PLUGIN_PATH.
 *   s3_bench [N]   N requests per measure and round (default 400)
 */
#include "plugin_load.h"

#include <dimple/plugin.h>

#include <curl/curl.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

static const char *endpoint, *access_key, *secret_key, *region, *bucket;
static char run_id[64];
static const dimple_storage_vtable *vt;
static void *S;
static char payload[1024];
static int N = 400;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* ------------------------------------------------------------ baseline */

static CURL *curl;
static char sigv4_param[128], userpwd[512];

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* One request on the reused handle; 0 if the answer was 2xx. */
static int base_req(const char *method, const char *path, const char *query,
                    const void *body, size_t len)
{
    char url[1024], hdr[128], hash[65];
    struct curl_slist *h = NULL;
    long status = 0;
    CURLcode rc;
    sha256_hex(body ? body : "", len, hash);
    snprintf(url, sizeof url, "%s/%s/%s%s%s", endpoint, bucket, path,
             query ? "?" : "", query ? query : "");
    snprintf(hdr, sizeof hdr, "x-amz-content-sha256: %s", hash);
    h = curl_slist_append(h, hdr);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST,
                         strcmp(method, "GET") ? method : NULL);
    }
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return rc == CURLE_OK && status / 100 == 2 ? 0 : -1;
}

static void base_init(void)
{
    curl = curl_easy_init();
    snprintf(sigv4_param, sizeof sigv4_param, "aws:amz:%s:s3", region);
    snprintf(userpwd, sizeof userpwd, "%s:%s", access_key, secret_key);
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4_param);
    curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
}

/* ------------------------------------------------------------- plugin */

static int sink_discard(void *ctx, const void *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return 0;
}

static int count_cb(void *payload_, const char *key)
{
    (void)key;
    (*(int *)payload_)++;
    return 0;
}

static void host_error(void *ctx, int code, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "s3_bench: plugin error %d: %s\n", code, msg);
}

static dimple_host host = {
    sizeof(dimple_host), NULL, host_error, NULL, NULL, "storage"};

/* Without DIMPLE_TEST_S3_* (bench/run.sh starts no servers), start a
 * radosgw with tests/servers/s3.sh for the run and read its s3.env. */
static char server_dir[PATH_MAX];

static int start_server(void)
{
    const char *base = getenv("DIMPLE_BENCH_DIR");
    char cmd[PATH_MAX * 2 + 128], file[PATH_MAX + 16], line[1024];
    FILE *f;
    snprintf(server_dir, sizeof server_dir, "%s/s3bench.XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(server_dir)) {
        server_dir[0] = '\0';
        return -1;
    }
    fprintf(stderr, "s3_bench: starting radosgw (tests/servers/s3.sh)...\n");
    snprintf(cmd, sizeof cmd,
             "bash tests/servers/s3.sh start '%s' >'%s/log' 2>&1", server_dir,
             server_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "s3_bench: radosgw did not start; see %s/log\n",
                server_dir);
        return -1;
    }
    snprintf(file, sizeof file, "%s/s3.env", server_dir);
    f = fopen(file, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        char *k = line, *eq;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(k, "export ", 7) == 0)
            k += 7;
        eq = strchr(k, '=');
        if (!eq)
            continue;
        *eq = '\0';
        setenv(k, eq + 1, 1);
    }
    fclose(f);
    return 0;
}

static void stop_server(void)
{
    char cmd[PATH_MAX * 2 + 64];
    if (!server_dir[0])
        return;
    snprintf(cmd, sizeof cmd,
             "bash tests/servers/s3.sh stop '%s' >/dev/null 2>&1; rm -rf '%s'",
             server_dir, server_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "s3_bench: stopping radosgw failed\n");
}

/* ----------------------------------------------------------- measures */

typedef struct result {
    double base, plugin; /* seconds, summed over rounds */
    int ops;
} result;

static void key_of(char *out, size_t cap, const char *who, int i)
{
    snprintf(out, cap, "%s/%s/k%05d", run_id, who, i);
}

/* Each measure alternates blocks of BLOCK requests, baseline then plugin,
 * so a slow spell of the shared server hits both alike. */
#define BLOCK 20

static int bench_put(result *r, int round)
{
    char key[128], rel[64];
    payload[0] = (char)('a' + round);
    for (int b = 0; b < N; b += BLOCK) {
        double t0 = now_s();
        for (int i = b; i < b + BLOCK && i < N; i++) {
            key_of(key, sizeof key, "base", i);
            if (base_req("PUT", key, NULL, payload, sizeof payload))
                return -1;
        }
        r->base += now_s() - t0;
        t0 = now_s();
        for (int i = b; i < b + BLOCK && i < N; i++) {
            snprintf(rel, sizeof rel, "plugin/k%05d", i);
            if (vt->put(S, rel, payload, sizeof payload))
                return -1;
        }
        r->plugin += now_s() - t0;
    }
    r->ops += N;
    return 0;
}

static int bench_get(result *r)
{
    char key[128], rel[64];
    dimple_sink sink = {sink_discard, NULL};
    for (int b = 0; b < N; b += BLOCK) {
        double t0 = now_s();
        for (int i = b; i < b + BLOCK && i < N; i++) {
            key_of(key, sizeof key, "base", i);
            if (base_req("GET", key, NULL, NULL, 0))
                return -1;
        }
        r->base += now_s() - t0;
        t0 = now_s();
        for (int i = b; i < b + BLOCK && i < N; i++) {
            snprintf(rel, sizeof rel, "plugin/k%05d", i);
            if (vt->get(S, rel, &sink))
                return -1;
        }
        r->plugin += now_s() - t0;
    }
    r->ops += N;
    return 0;
}

/* Listing 100 keys per call (one page): the baseline fetches the same
 * XML and ignores it; the plugin parses it and calls back per key. */
static int bench_list(result *r, int calls)
{
    char query[512];
    /* sorted by name: curl 7.88 signs the query verbatim */
    snprintf(query, sizeof query,
             "encoding-type=url&list-type=2&max-keys=1000&prefix=%s%%2Fbase"
             "%%2Fk001",
             run_id);
    for (int b = 0; b < calls; b += BLOCK / 4) {
        double t0 = now_s();
        for (int i = b; i < b + BLOCK / 4 && i < calls; i++)
            if (base_req("GET", "", query, NULL, 0))
                return -1;
        r->base += now_s() - t0;
        t0 = now_s();
        for (int i = b; i < b + BLOCK / 4 && i < calls; i++) {
            int n = 0;
            if (vt->list(S, "plugin/k001", NULL, 0, count_cb, &n) || n != 100)
                return -1;
        }
        r->plugin += now_s() - t0;
    }
    r->ops += calls;
    return 0;
}

static void report(const char *what, const result *r)
{
    double b = r->ops / r->base, p = r->ops / r->plugin;
    printf("%-22s baseline %8.0f/s   plugin %8.0f/s   ratio %.2fx\n", what, b,
           p, p / b);
}

int main(int argc, char **argv)
{
    dimple_kv conf[8];
    char prefix[96];
    result put = {0}, get = {0}, list = {0};
    int rounds = 3, rc = 1;

    if (!getenv("DIMPLE_TEST_S3_ENDPOINT") && start_server()) {
        stop_server();
        return 1;
    }
    endpoint = getenv("DIMPLE_TEST_S3_ENDPOINT");
    access_key = getenv("DIMPLE_TEST_S3_ACCESS_KEY");
    secret_key = getenv("DIMPLE_TEST_S3_SECRET_KEY");
    region = getenv("DIMPLE_TEST_S3_REGION");
    bucket = getenv("DIMPLE_TEST_S3_BUCKET");
    if (!bucket)
        bucket = "dimple-test";
    if (!endpoint || !access_key || !secret_key || !region) {
        fprintf(stderr, "s3_bench: DIMPLE_TEST_S3_* incomplete\n");
        stop_server();
        return 1;
    }
    if (argc > 1)
        N = atoi(argv[1]) > 0 ? atoi(argv[1]) : N;
    if (N < 100)
        N = 100; /* the list measure lists k00100..k00199 */
    memset(payload, 'x', sizeof payload);
    snprintf(run_id, sizeof run_id, "bench-%ld-%d", (long)time(NULL),
             (int)getpid());
    {
        void *dl;
        vt = test_plugin_load("s3", &dl)->vt.storage;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base_init();
    snprintf(prefix, sizeof prefix, "%s", run_id);
    conf[0] = (dimple_kv){"endpoint", endpoint, 0};
    conf[1] = (dimple_kv){"bucket", bucket, 0};
    conf[2] = (dimple_kv){"region", region, 0};
    conf[3] = (dimple_kv){"access_key", access_key, 0};
    conf[4] = (dimple_kv){"secret_key", secret_key, 0};
    conf[5] = (dimple_kv){"prefix", prefix, 0};
    conf[6] = (dimple_kv){NULL, NULL, 0};
    if (vt->create(&S, conf, &host))
        goto out;

    /* Warm both connections and the server: a fresh radosgw is slow for
     * its first few hundred writes, which would favour whoever goes second. */
    if (base_req("GET", "", "list-type=2&max-keys=1", NULL, 0) ||
        vt->list(S, "none/", NULL, 0, count_cb, &(int){0}))
        goto out;
    {
        result warm = {0};
        if (bench_put(&warm, 0) || bench_get(&warm))
            goto out;
    }
    printf("s3_bench: %s, %d requests per measure, %d rounds, 1 KiB objects\n",
           endpoint, N, rounds);
    for (int r = 0; r < rounds; r++) {
        if (bench_put(&put, r) || bench_get(&get) || bench_list(&list, N / 4)) {
            fprintf(stderr, "s3_bench: a request failed\n");
            goto out;
        }
    }
    report("put 1 KiB", &put);
    report("get 1 KiB", &get);
    report("list 100 keys", &list);
    rc = 0;
out:
    if (S) {
        char rel[64], key[128];
        for (int i = 0; i < N; i++) {
            snprintf(rel, sizeof rel, "plugin/k%05d", i);
            vt->remove(S, rel);
            key_of(key, sizeof key, "base", i);
            base_req("DELETE", key, NULL, NULL, 0);
        }
        vt->destroy(S);
    }
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    stop_server();
    return rc;
}
