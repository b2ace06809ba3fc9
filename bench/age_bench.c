/*
 * age_bench.c — dimple-age against the reference `age` tool, same files,
 * same run.
 *
 *   age_bench [MIB]        (default 256)
 *
 * 1. Throughput: encrypt and decrypt a MIB-MiB file to an X25519 recipient
 *    with dimple-age (file in, file out, streaming) and with `age -r` /
 *    `age -d -i`; prints MB/s and the ratio dimple-age / age (>= 1.0 means
 *    as fast or faster), the peak RSS of our side, and checks the result.
 * 2. Fast encrypted sync: one writer encrypts 1,000 batch-sized objects
 *    through the cipher vtable (identity mode, work factor 18) into an
 *    in-memory store; a fresh process-like instance decrypts all of them.
 *    Prints the scrypt derivations (target: 1) and the time, against
 *    mode = scrypt on a few objects (one scrypt per object).
 * Scratch files go to $DIMPLE_BENCH_DIR (default: the current folder).
 */
#include "age_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ptrdiff_t fd_read(void *ctx, void *buf, size_t n)
{
    ssize_t k = read(*(int *)ctx, buf, n);
    return k < 0 ? DIMPLE_EIO : (ptrdiff_t)k;
}

static int fd_write(void *ctx, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = write(*(int *)ctx, s, n);
        if (k <= 0)
            return DIMPLE_EIO;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* CPU seconds (user + system) of this process and of waited-for children:
 * on a shared, loaded machine CPU time compares fairly where wall time
 * does not. */
static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct timing {
    double wall, cpu;
} timing;

static void keep_best(timing *best, double wall, double cpu)
{
    if (wall < best->wall)
        best->wall = wall;
    if (cpu < best->cpu)
        best->cpu = cpu;
}

static int ours(int enc, const char *in_path, const char *out_path,
                const age_recipient *r, const age_identity *id)
{
    int in = open(in_path, O_RDONLY),
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dimple_source src = {fd_read, &in};
    dimple_sink sink = {fd_write, &out};
    age_err e = {0};
    age_keyring kr = {id, 1, NULL, NULL};
    int rc = in < 0 || out < 0 ? -1
             : enc ? age_encrypt(&src, &sink, AGE_ARMOR_OFF, r, 1, &e)
                   : age_decrypt(&src, &sink, AGE_ARMOR_AUTO, &kr, &e);
    if (rc)
        fprintf(stderr, "age_bench: %s\n", e.msg);
    close(in);
    close(out);
    return rc;
}

static int same_file(const char *a, const char *b)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return run_cmd(cmd) == 0;
}

/* ------------------------------------ 1 GiB through encrypt | decrypt */

typedef struct gen {
    uint64_t left;
    uint64_t x;
} gen;

static ptrdiff_t gen_read(void *ctx, void *buf, size_t n)
{
    gen *g = ctx;
    if (n > g->left)
        n = (size_t)g->left;
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)buf)[i] = (unsigned char)(g->x + i);
    g->x += n;
    g->left -= n;
    return (ptrdiff_t)n;
}

static int count_write(void *ctx, const void *p, size_t n)
{
    (void)p;
    *(uint64_t *)ctx += n;
    return 0;
}

typedef struct enc_job {
    int fd;
    uint64_t size;
    const age_recipient *r;
    int rc;
} enc_job;

static void *enc_thread(void *arg)
{
    enc_job *j = arg;
    gen g = {j->size, 0};
    dimple_source src = {gen_read, &g};
    dimple_sink sink = {fd_write, &j->fd};
    age_err e = {0};
    j->rc = age_encrypt(&src, &sink, AGE_ARMOR_OFF, j->r, 1, &e);
    close(j->fd);
    return NULL;
}

/* Stream size bytes from a generator through encrypt | pipe | decrypt to
 * a counting sink; returns the peak RSS growth in KiB, or -1. */
static long stream_rss(uint64_t size, const age_recipient *r,
                       const age_identity *id, double *secs)
{
    struct rusage ru;
    int fds[2];
    pthread_t t;
    uint64_t got = 0;
    getrusage(RUSAGE_SELF, &ru);
    long before = ru.ru_maxrss;
    if (pipe(fds))
        return -1;
    enc_job j = {fds[1], size, r, -1};
    double t0 = now();
    pthread_create(&t, NULL, enc_thread, &j);
    dimple_source src = {fd_read, &fds[0]};
    dimple_sink sink = {count_write, &got};
    age_keyring kr = {id, 1, NULL, NULL};
    age_err e = {0};
    int rc = age_decrypt(&src, &sink, AGE_ARMOR_AUTO, &kr, &e);
    pthread_join(t, NULL);
    close(fds[0]);
    *secs = now() - t0;
    getrusage(RUSAGE_SELF, &ru);
    return rc || j.rc || got != size ? -1 : ru.ru_maxrss - before;
}

/* ------------------------------------------------- the sync measurement */

typedef struct obj {
    char key[64];
    unsigned char *data;
    size_t len;
} obj;

typedef struct mem {
    obj *o;
    size_t n;
} mem;

static obj *find(mem *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->o[i].key, key))
            return &m->o[i];
    return NULL;
}

static int m_put(void *ctx, const char *key, const void *data, size_t len)
{
    mem *m = ctx;
    obj *o = find(m, key);
    if (!o) {
        m->o = realloc(m->o, (m->n + 1) * sizeof *o);
        o = &m->o[m->n++];
        snprintf(o->key, sizeof o->key, "%s", key);
        o->data = NULL;
    }
    free(o->data);
    o->data = malloc(len ? len : 1);
    memcpy(o->data, data, len);
    o->len = len;
    return 0;
}

static int m_put_if_absent(void *ctx, const char *key, const void *data,
                           size_t len)
{
    return find(ctx, key) ? DIMPLE_EEXISTS : m_put(ctx, key, data, len);
}

static int m_get(void *ctx, const char *key, const dimple_sink *out)
{
    obj *o = find(ctx, key);
    return o ? dimple_sink_write(out, o->data, o->len) : DIMPLE_ENOTFOUND;
}

static int m_list(void *ctx, const char *prefix, const char *start_after,
                  unsigned flags, dimple_list_cb cb, void *payload)
{
    mem *m = ctx;
    (void)flags;
    (void)start_after;
    for (size_t i = 0; i < m->n; i++)
        if (!strncmp(m->o[i].key, prefix, strlen(prefix)) &&
            cb(m->o[i].key, payload))
            return 1;
    return 0;
}

static void host_error(void *ctx, int code, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "age_bench: %s (%d)\n", msg, code);
}

static int sync_bench(const char *mode, int objects, double *secs,
                      uint64_t *scrypts)
{
    static const dimple_host host = {sizeof host, NULL, host_error,
                                     NULL,        NULL, "cipher"};
    const dimple_cipher_vtable *vt = dimple_plugin_entry()->vt.cipher;
    dimple_kv conf[] = {{"passphrase", "bench passphrase", 0},
                        {"mode", mode, 0},
                        {NULL, NULL, 0}};
    mem m = {0};
    dimple_store st = {sizeof st, &m, m_put, m_put_if_absent, m_get, m_list};
    void *w = NULL, *r = NULL;
    char batch[1500], name[64];
    int rc = 0;

    memset(batch, 'x', sizeof batch); /* about a small batch's size */
    if (vt->create(&w, conf, &host) || vt->attach(w, &st))
        return -1;
    for (int i = 0; i < objects && !rc; i++) {
        age_buf ct = {0};
        age_mem_source ms;
        dimple_source src = age_mem_source_make(&ms, batch, sizeof batch);
        dimple_sink sink = age_buf_sink(&ct);
        snprintf(name, sizeof name, "log/author/%06d", i);
        if (!(rc = vt->encrypt(w, name, &src, &sink)))
            m_put(&m, name, ct.p, ct.n);
        age_buf_free(&ct);
    }
    vt->destroy(w);
    /* The reader: a fresh instance, as in a new process pulling. */
    if (rc || vt->create(&r, conf, &host) || vt->attach(r, &st))
        return -1;
    uint64_t s0 = age_scrypt_count();
    double t0 = cpu_self();
    for (int i = 0; i < objects && !rc; i++) {
        age_buf pt = {0};
        age_mem_source ms;
        snprintf(name, sizeof name, "log/author/%06d", i);
        obj *o = find(&m, name);
        dimple_source src = age_mem_source_make(&ms, o->data, o->len);
        dimple_sink sink = age_buf_sink(&pt);
        rc = vt->decrypt(r, name, &src, &sink);
        if (!rc && pt.n != sizeof batch)
            rc = -1;
        age_buf_free(&pt);
    }
    *secs = cpu_self() - t0;
    *scrypts = age_scrypt_count() - s0;
    vt->destroy(r);
    for (size_t i = 0; i < m.n; i++)
        free(m.o[i].data);
    free(m.o);
    return rc;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? atol(argv[1]) : 256;
    const char *dir =
        getenv("DIMPLE_BENCH_DIR") ? getenv("DIMPLE_BENCH_DIR") : ".";
    char plain[1024], ct_ours[1024], ct_age[1024], out[1024], key[1024],
        cmd[8192];
    unsigned char sk[32], pk[32];
    char sk_txt[128], pk_txt[128];
    age_identity id = {0};
    age_recipient r = {0};
    int rc = 1;

    if (run_cmd("age --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "age_bench: the reference age tool is missing (apt-get "
                        "install age)\n");
        return 1;
    }
    snprintf(plain, sizeof plain, "%s/age_bench.plain", dir);
    snprintf(ct_ours, sizeof ct_ours, "%s/age_bench.ours.age", dir);
    snprintf(ct_age, sizeof ct_age, "%s/age_bench.age.age", dir);
    snprintf(out, sizeof out, "%s/age_bench.out", dir);
    snprintf(key, sizeof key, "%s/age_bench.key", dir);

    age_x25519_keygen(sk, pk);
    age_identity_format(sk, sk_txt);
    age_recipient_format(pk, pk_txt);
    id.type = r.type = AGE_ID_X25519;
    memcpy(id.sk, sk, 32);
    memcpy(id.pk, pk, 32);
    memcpy(r.pk, pk, 32);
    FILE *f = fopen(key, "w");
    if (!f)
        return 1;
    fprintf(f, "# public key: %s\n%s\n", pk_txt, sk_txt);
    fclose(f);

    /* The plaintext: incompressible-looking bytes. */
    int fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    unsigned char *buf = malloc(1 << 20);
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < mib; i++) {
        for (size_t j = 0; j < (1 << 20); j += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(buf + j, &x, 8);
        }
        if (write(fd, buf, 1 << 20) != 1 << 20)
            return 1;
    }
    free(buf);
    close(fd);

    double mb = (double)mib * 1048576.0 / 1e6, t, c;
    timing enc_ours = {1e9, 1e9}, dec_ours = {1e9, 1e9}, enc_age = {1e9, 1e9},
           dec_age = {1e9, 1e9};
    long rss0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    rss0 = ru.ru_maxrss;

    /* Each measured five times, alternating; best kept (page cache warm;
     * on a busy machine the best run is the one least disturbed). */
    for (int round = 0; round < 5; round++) {
        t = now(), c = cpu_self();
        if (ours(1, plain, ct_ours, &r, NULL))
            goto out;
        keep_best(&enc_ours, now() - t, cpu_self() - c);
        snprintf(cmd, sizeof cmd, "age -r %s -o '%s' '%s'", pk_txt, ct_age,
                 plain);
        t = now(), c = cpu_children();
        if (run_cmd(cmd))
            goto out;
        keep_best(&enc_age, now() - t, cpu_children() - c);
        t = now(), c = cpu_self();
        if (ours(0, ct_age, out, NULL, &id))
            goto out;
        keep_best(&dec_ours, now() - t, cpu_self() - c);
        if (!same_file(plain, out)) {
            fprintf(stderr,
                    "age_bench: dimple-age decrypted age's file wrongly\n");
            goto out;
        }
        snprintf(cmd, sizeof cmd, "age -d -i '%s' -o '%s' '%s'", key, out,
                 ct_ours);
        t = now(), c = cpu_children();
        if (run_cmd(cmd))
            goto out;
        keep_best(&dec_age, now() - t, cpu_children() - c);
        if (!same_file(plain, out)) {
            fprintf(stderr, "age_bench: age decrypted our file wrongly\n");
            goto out;
        }
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("age_bench: %ld MiB, X25519 recipient, file to file (best of 5)\n",
           mib);
    printf(
        "  encrypt: dimple-age %7.1f MB/s   age %7.1f MB/s   ratio %.2fx wall, "
        "%.2fx CPU (%.2f s vs %.2f s)\n",
        mb / enc_ours.wall, mb / enc_age.wall, enc_age.wall / enc_ours.wall,
        enc_age.cpu / enc_ours.cpu, enc_ours.cpu, enc_age.cpu);
    printf(
        "  decrypt: dimple-age %7.1f MB/s   age %7.1f MB/s   ratio %.2fx wall, "
        "%.2fx CPU (%.2f s vs %.2f s)\n",
        mb / dec_ours.wall, mb / dec_age.wall, dec_age.wall / dec_ours.wall,
        dec_age.cpu / dec_ours.cpu, dec_ours.cpu, dec_age.cpu);
    printf("  dimple-age peak RSS grew %ld KiB while streaming (constant "
           "memory)\n",
           ru.ru_maxrss - rss0);

    double ss;
    long grown = stream_rss((uint64_t)1 << 30, &r, &id, &ss);
    if (grown < 0)
        goto out;
    printf("age_bench: 1 GiB generator -> encrypt | pipe | decrypt -> counter: "
           "%.1f s, peak RSS grew %ld KiB\n",
           ss, grown);

    double s_id, s_scrypt;
    uint64_t n_id, n_scrypt;
    const int objects = 1000, scrypt_objects = 5;
    if (sync_bench("identity", objects, &s_id, &n_id) ||
        sync_bench("scrypt", scrypt_objects, &s_scrypt, &n_scrypt))
        goto out;
    double per_id = s_id / objects, per_scrypt = s_scrypt / scrypt_objects;
    printf(
        "age_bench: pulling %d encrypted batches (work factor 18, CPU time)\n",
        objects);
    printf("  mode = identity: %llu scrypt derivation(s), %.2f s in all, %.3f "
           "ms/batch "
           "including the one scrypt\n",
           (unsigned long long)n_id, s_id, per_id * 1e3);
    printf("  mode = scrypt:   %llu scrypt derivations for %d batches, %.3f "
           "s/batch "
           "(%.0f s for %d)\n",
           (unsigned long long)n_scrypt, scrypt_objects, per_scrypt,
           per_scrypt * objects, objects);
    printf("  identity mode is %.0fx faster per pull of %d batches\n",
           per_scrypt * objects / s_id, objects);
    rc = n_id == 1 ? 0 : 1;
out:
    unlink(plain);
    unlink(ct_ours);
    unlink(ct_age);
    unlink(out);
    unlink(key);
    return rc;
}
