/*
 * sftp_bench — small-object put and get rates of dimple-sftp against
 * OpenSSH's `sftp` command doing the same transfers in batch mode (-b),
 * in the same run, against the same private sshd on loopback.
 *
 *   sftp_bench [N [SIZE]]    N objects (default 300) of SIZE bytes (1024)
 *
 * Uses the test server of tests/servers/sftp.sh: its DIMPLE_TEST_SFTP_*
 * variables when set, else it starts one itself (and stops it).
 *
 * The plugin's put is a temporary + fsync@openssh.com + posix-rename (5
 * round trips); sftp's `put` is open + write + close with no flush, and
 * `put -f` adds fsync@openssh.com: both baselines are printed. One sftp
 * process serves the whole batch, so its connection set-up is measured
 * separately (an empty batch) and shown subtracted too. Ratio = plugin
 * rate / baseline rate (> 1: the plugin is faster). Three rounds alternate
 * the two sides; each side's best round counts.
 */
#include "plugin_load.h"
#include "../tests/sftp/sftp_env.h"

#include <dlfcn.h>

#define ROUNDS 3

static char statedir[256];

static void stop_server(void)
{
    char cmd[600];
    if (!statedir[0])
        return;
    snprintf(cmd, sizeof cmd,
             "bash tests/servers/sftp.sh stop %s >/dev/null 2>&1; rm -rf %s",
             statedir, statedir);
    if (system(cmd) != 0)
        fprintf(stderr, "sftp_bench: could not stop the server in %s\n",
                statedir);
}

/* Start tests/servers/sftp.sh and take its variables into our env. */
static int start_server(void)
{
    char cmd[600], envfile[300], *text, *line, *save = NULL;
    snprintf(statedir, sizeof statedir, "/tmp/dimple-sftp-bench.XXXXXX");
    if (!mkdtemp(statedir))
        return -1;
    atexit(stop_server);
    snprintf(cmd, sizeof cmd, "bash tests/servers/sftp.sh start %s >/dev/null",
             statedir);
    if (system(cmd) != 0)
        return -1;
    snprintf(envfile, sizeof envfile, "%s/sftp.env", statedir);
    text = slurp(envfile, NULL);
    if (!text)
        return -1;
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq, *v;
        size_t vl;
        if (strncmp(line, "export ", 7) != 0 || !(eq = strchr(line, '=')))
            continue;
        *eq = '\0';
        v = eq + 1;
        vl = strlen(v);
        if (vl >= 2 && v[0] == '\'' && v[vl - 1] == '\'') {
            v[vl - 1] = '\0';
            v++;
        }
        setenv(line + 7, v, 1);
    }
    free(text);
    return 0;
}

/* Run one `sftp -b batch` with the test key; seconds taken, <0 on failure. */
static double sftp_batch(const char *batchfile)
{
    char cmd[4096];
    double t0 = now_s();
    snprintf(
        cmd, sizeof cmd,
        "sftp -q -b %s -P %s -i %s -o BatchMode=yes -o UserKnownHostsFile=%s "
        "-o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null %s@%s "
        ">/dev/null 2>&1",
        batchfile, E.port, E.key, E.known_hosts, E.user, E.host);
    if (system(cmd) != 0)
        return -1;
    return now_s() - t0;
}

static int count_write(void *ctx, const void *p, size_t len)
{
    (void)p;
    *(size_t *)ctx += len;
    return 0;
}

static void line(const char *op, size_t n, double plugin, double base,
                 double setup)
{
    double rp = (double)n / plugin, rb = (double)n / base;
    double adj = base - setup > 1e-6 ? (double)n / (base - setup) : rb;
    printf("%-16s plugin %8.0f/s   sftp -b %8.0f/s (%8.0f/s without connect)   "
           "ratio %.2f (%.2f)\n",
           op, rp, rb, adj, rp / rb, rp / adj);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 300;
    size_t size = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1024;
    const dimple_storage_vtable *vt;
    test_host th;
    sftp_conf c;
    void *dl = NULL, *self = NULL;
    char *data, local[512] = "", batch[4][600], name[64], cmd[2048];
    double t0, t_put, t_get, b_setup, b_put, b_putf, b_get;
    int rc = 1;

    if (n < 1 || size < 1)
        return fprintf(stderr, "usage: sftp_bench [N [SIZE]]\n"), 2;
    if (!getenv("DIMPLE_TEST_SFTP_PORT") && start_server() < 0) {
        fprintf(stderr, "sftp_bench: could not start tests/servers/sftp.sh\n");
        return 1;
    }
    if (sftp_env_load() < 0)
        return 1;
    vt = test_plugin_load("sftp", &dl)->vt.storage;
    test_host_init(&th, "storage");
    conf_base(&c, "bench", NULL, NULL);
    data = malloc(size);
    if (!data)
        return 1;
    for (size_t i = 0; i < size; i++)
        data[i] = (char)('a' + i % 26);
    if (vt->create(&self, c.kv, &th.host) != DIMPLE_OK) {
        fprintf(stderr, "sftp_bench: create: %s\n", th.last_msg);
        goto out;
    }
    printf("sftp_bench: %zu objects of %zu bytes, sshd on 127.0.0.1:%s, best "
           "of %d rounds\n",
           n, size, E.port, ROUNDS);

    /* Local files and batch files for the sftp command, made once. */
    snprintf(local, sizeof local, "%s/local-%d", E.root, (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s/up %s/down", local, local);
    if (system(cmd) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char p[700];
        FILE *f;
        snprintf(p, sizeof p, "%s/up/obj-%06zu", local, i);
        f = fopen(p, "wb");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
            goto out;
    }
    for (int k = 0; k < 4; k++) {
        FILE *bf;
        snprintf(batch[k], sizeof batch[k], "%s/batch-%d-%d", local,
                 (int)getpid(), k);
        bf = fopen(batch[k], "w");
        if (!bf)
            goto out;
        if (k == 0) /* connect only ('-': an existing folder is fine) */
            fprintf(bf, "-mkdir %s/s\n-mkdir %s/sf\n", c.folder, c.folder);
        for (size_t i = 0; k > 0 && i < n; i++) {
            if (k == 1)
                fprintf(bf, "put %s/up/obj-%06zu %s/s/obj-%06zu\n", local, i,
                        c.folder, i);
            else if (k == 2)
                fprintf(bf, "put -f %s/up/obj-%06zu %s/sf/obj-%06zu\n", local,
                        i, c.folder, i);
            else
                fprintf(bf, "get %s/s/obj-%06zu %s/down/obj-%06zu\n", c.folder,
                        i, local, i);
        }
        if (fclose(bf) != 0)
            goto out;
    }

    /* The plugin: one warm-up put opens the connection (and the folder). */
    if (vt->put(self, "p/warm", data, size) != DIMPLE_OK)
        goto fail;
    /* Rounds alternate plugin and sftp; the best time of each counts, so
     * a burst of load on the machine hits neither side alone. */
    t_put = t_get = b_setup = b_put = b_putf = b_get = 1e9;
    for (int round = 0; round < ROUNDS; round++) {
        double t, b[4];
        t0 = now_s();
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof name, "p/obj-%06zu", i);
            if (vt->put(self, name, data, size) != DIMPLE_OK)
                goto fail;
        }
        t = now_s() - t0;
        t_put = t < t_put ? t : t_put;
        t0 = now_s();
        for (size_t i = 0; i < n; i++) {
            size_t got = 0;
            snprintf(name, sizeof name, "p/obj-%06zu", i);
            if (vt->get(self, name, &(dimple_sink){count_write, &got}) !=
                DIMPLE_OK)
                goto fail;
            if (got != size) {
                fprintf(stderr, "sftp_bench: get %s: %zu bytes\n", name, got);
                goto out;
            }
        }
        t = now_s() - t0;
        t_get = t < t_get ? t : t_get;
        for (int k = 0; k < 4; k++) {
            b[k] = sftp_batch(batch[k]);
            if (b[k] < 0) {
                fprintf(stderr, "sftp_bench: the sftp command failed (%s)\n",
                        batch[k]);
                goto out;
            }
        }
        b_setup = b[0] < b_setup ? b[0] : b_setup;
        b_put = b[1] < b_put ? b[1] : b_put;
        b_putf = b[2] < b_putf ? b[2] : b_putf;
        b_get = b[3] < b_get ? b[3] : b_get;
    }
    printf("sftp -b connection set-up: %.0f ms\n", b_setup * 1000);
    line("put vs put", n, t_put, b_put, b_setup);
    line("put vs put -f", n, t_put, b_putf, b_setup);
    line("get vs get", n, t_get, b_get, b_setup);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "sftp_bench: %s\n", th.last_msg);
out:
    if (self)
        vt->destroy(self);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", local, c.folder);
    if (local[0] && system(cmd) != 0)
        fprintf(stderr, "sftp_bench: could not clean up %s\n", c.folder);
    free(data);
    if (dl)
        dlclose(dl);
    return rc;
}
