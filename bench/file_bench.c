/*
 * file_bench — put/get/list rates of dimple-file (loaded with dlopen, as the
 * core does) against the plain loop it wraps, in the same run, on the same
 * disk: write a temp file + fsync + rename + fsync the folder; open + read;
 * readdir + sort.
 *
 *   file_bench [N [SIZE]]     N objects (default 1000) of SIZE bytes (4096)
 *   DIMPLE_BENCH_DIR=dir      where to write (default: a temp folder in .)
 *   DIMPLE_BENCH_FSYNC=off    both sides without fsync
 *
 * Prints one line per operation: both rates and plugin/baseline (1.00 means
 * the plugin costs nothing over the bare system calls).
 */
#include "plugin_load.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "file_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ------------------------------------------------------- the baseline */

static void base_put(int dfd, const char *name, const void *p, size_t n,
                     bool sync)
{
    char tmp[300];
    int fd;
    snprintf(tmp, sizeof tmp, ".tmp-%s", name);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        die("baseline open");
    if (write(fd, p, n) != (ssize_t)n)
        die("baseline write");
    if (sync && fsync(fd) != 0)
        die("baseline fsync");
    close(fd);
    if (renameat(dfd, tmp, dfd, name) != 0)
        die("baseline rename");
    if (sync && fsync(dfd) != 0)
        die("baseline fsync folder");
}

static size_t base_get(int dfd, const char *name, unsigned char *buf,
                       size_t cap)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    size_t total = 0;
    ssize_t n;
    if (fd < 0)
        die("baseline open for reading");
    while ((n = read(fd, buf, cap)) > 0)
        total += (size_t)n;
    close(fd);
    return total;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t base_list(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (!d)
        die("baseline opendir");
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                die("realloc");
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return n;
}

/* --------------------------------------------------------- the plugin */

static int count_sink(void *ctx, const void *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
    return 0;
}

static int count_cb(void *payload, const char *key)
{
    (void)key;
    (*(size_t *)payload)++;
    return 0;
}

static void report(const char *op, size_t n, double t_plugin, double t_base)
{
    double rp = (double)n / t_plugin, rb = (double)n / t_base;
    printf("%-5s plugin %10.0f/s  baseline %10.0f/s  ratio %.2f\n", op, rp, rb,
           rp / rb);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of the per-round ratios: robust to a round disturbed by
 * other work on the machine. */
static void report_median(double *ratios, int n)
{
    qsort(ratios, (size_t)n, sizeof *ratios, cmp_double);
    printf("      ratio median of %d rounds %.2f (min %.2f, max %.2f)\n", n,
           ratios[n / 2], ratios[0], ratios[n - 1]);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 1000;
    size_t size = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 4096;
    const char *fs = getenv("DIMPLE_BENCH_FSYNC");
    bool sync = !(fs && !strcmp(fs, "off"));
    const char *where = getenv("DIMPLE_BENCH_DIR");
    char dir[512], plugdir[600], basedir[600], name[64], cmd[700];
    unsigned char *data, *rbuf;
    void *dl = NULL, *self = NULL;
    test_host th;
    const dimple_storage_vtable *vt;
    double t0, tp, tb;
    size_t got;
    int bfd;
    enum { ROUNDS = 8 };
    double rt[2], ratios[ROUNDS * 4];

    if (n == 0)
        n = 1;
    snprintf(dir, sizeof dir, "%s/file-bench.XXXXXX",
             where && *where ? where : ".");
    if (!mkdtemp(dir))
        die("mkdtemp");
    snprintf(plugdir, sizeof plugdir, "%s/plugin", dir);
    snprintf(basedir, sizeof basedir, "%s/baseline", dir);
    if (mkdir(basedir, 0777) != 0)
        die("mkdir");
    bfd = open(basedir, O_RDONLY | O_DIRECTORY);
    if (bfd < 0)
        die("open baseline folder");
    data = malloc(size ? size : 1);
    rbuf = malloc(64 * 1024);
    if (!data || !rbuf)
        die("malloc");
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 131 + 7);

    vt = test_plugin_load("file", &dl)->vt.storage;
    test_host_init(&th, "storage");
    {
        dimple_kv conf[] = {{"path", plugdir, 0},
                            {"fsync", sync ? "on" : "off", 0},
                            {NULL, NULL, 0}};
        if (vt->create(&self, conf, &th.host) != DIMPLE_OK) {
            fprintf(stderr, "file_bench: create: %s\n", th.last_msg);
            return 1;
        }
    }
    printf("file_bench: %zu objects of %zu bytes, fsync %s, in %s\n", n, size,
           sync ? "on" : "off", dir);

    /* put alternates object by object between the baseline and the
     * plugin, so drift (disk cache, journal) hits both alike. */
    tb = tp = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "obj-%06zu", i);
        t0 = now();
        base_put(bfd, name, data, size, sync);
        tb += now() - t0;
        t0 = now();
        if (vt->put(self, name, data, size) != DIMPLE_OK) {
            fprintf(stderr, "file_bench: put: %s\n", th.last_msg);
            return 1;
        }
        tp += now() - t0;
    }
    report("put", n, tp, tb);

    /* get and list are fast: whole passes, ROUNDS of each, the side that
     * goes first alternating so warm caches favour neither. */
    tb = tp = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int side = 0; side < 2; side++) {
            bool plugin = (side + r) % 2 == 1;
            t0 = now();
            for (size_t i = 0; i < n; i++) {
                snprintf(name, sizeof name, "obj-%06zu", i);
                if (!plugin) {
                    if (base_get(bfd, name, rbuf, 64 * 1024) != size)
                        die("baseline short read");
                    continue;
                }
                got = 0;
                if (vt->get(self, name, &(dimple_sink){count_sink, &got}) !=
                        DIMPLE_OK ||
                    got != size) {
                    fprintf(stderr, "file_bench: get: %s\n", th.last_msg);
                    return 1;
                }
            }
            rt[side ^ (r % 2)] = now() - t0;
        }
        tb += rt[0];
        tp += rt[1];
        ratios[r] = rt[0] / rt[1];
    }
    report("get", n * ROUNDS, tp, tb);
    report_median(ratios, ROUNDS);

    /* list: keys per second over whole listings of the folder. */
    tb = tp = 0;
    for (int r = 0; r < ROUNDS * 4; r++) {
        for (int side = 0; side < 2; side++) {
            bool plugin = (side + r) % 2 == 1;
            t0 = now();
            if (!plugin) {
                if (base_list(basedir) != n)
                    die("baseline list count");
            } else {
                got = 0;
                if (vt->list(self, "", NULL, 0, count_cb, &got) != DIMPLE_OK ||
                    got != n) {
                    fprintf(stderr, "file_bench: list: %s (%zu keys)\n",
                            th.last_msg, got);
                    return 1;
                }
            }
            rt[side ^ (r % 2)] = now() - t0;
        }
        tb += rt[0];
        tp += rt[1];
        ratios[r] = rt[0] / rt[1];
    }
    report("list", n * ROUNDS * 4, tp, tb);
    report_median(ratios, ROUNDS * 4);

    vt->destroy(self);
    dlclose(dl);
    close(bfd);
    free(data);
    free(rbuf);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "file_bench: could not remove %s\n", dir);
    return 0;
}
