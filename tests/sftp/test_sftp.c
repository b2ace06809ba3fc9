/*
 * test_sftp.c — dimple-sftp against a real OpenSSH sshd on loopback
 * (tests/servers/sftp.sh): the storage contract suite, then what is
 * particular to SFTP: configuration, every way to log in, host-key
 * checking, interop with the `sftp` command, atomicity when sshd is killed
 * in the middle of a put, reconnection, timeouts, and names a server must
 * not be able to smuggle in.
 *
 * Tests that break connections start their own sshd (same configuration,
 * another port), so tests running in parallel on the shared one are not
 * disturbed. A missing server variable is a failure, never a skip.
 */
#include "contract.h"
#include "sftp_env.h"

#include <dlfcn.h>
#include <pthread.h>

static const dimple_storage_vtable *vt;

/* A host that also keeps every log line, to check that secrets never
 * show up there either. */
typedef struct th_log {
    test_host th; /* first: test_host_init points ctx at it */
    char logs[8192];
    size_t loglen;
} th_log;

static void log_keep(void *ctx, int level, const char *msg)
{
    th_log *t = ctx;
    size_t n = strlen(msg);
    (void)level;
    if (t->loglen + n + 2 < sizeof t->logs) {
        memcpy(t->logs + t->loglen, msg, n);
        t->loglen += n;
        t->logs[t->loglen++] = '\n';
        t->logs[t->loglen] = '\0';
    }
}

static void th_init(th_log *t)
{
    memset(t, 0, sizeof *t);
    test_host_init(&t->th, "storage");
    t->th.host.log = log_keep;
}

static void *open_store(const sftp_conf *c, th_log *t)
{
    void *self = NULL;
    int rc = vt->create(&self, c->kv, &t->th.host);
    if (rc != DIMPLE_OK) {
        printf("#   create: %d %s\n", rc, t->th.last_msg);
        return NULL;
    }
    return self;
}

typedef struct membuf {
    char *p;
    size_t n, cap;
} membuf;

static int mem_write(void *ctx, const void *p, size_t n)
{
    membuf *b = ctx;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return DIMPLE_ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return DIMPLE_OK;
}

static int get_mem(void *self, const char *key, membuf *b)
{
    b->n = 0;
    if (b->p)
        b->p[0] = '\0';
    return vt->get(self, key, &(dimple_sink){mem_write, b});
}

static int put_str(void *self, const char *key, const char *s)
{
    return vt->put(self, key, s, strlen(s));
}

/* The keys list("") reports, joined with ',' (at most 4 KiB). */
static int join_cb(void *payload, const char *key)
{
    char *out = payload;
    size_t have = strlen(out);
    snprintf(out + have, 4096 - have, "%s%s", have ? "," : "", key);
    return 0;
}

static int list_all(void *self, char out[4096])
{
    out[0] = '\0';
    return vt->list(self, "", NULL, 0, join_cb, out);
}

/* Try a full login + put/get; returns the put's code. */
static int try_login(sftp_conf *c, th_log *t)
{
    void *self;
    membuf b = {0};
    int rc;
    test_host_clear(&t->th);
    self = open_store(c, t);
    if (!self)
        return -100;
    rc = put_str(self, "login", "hello");
    if (rc == DIMPLE_OK) {
        int g = get_mem(self, "login", &b);
        if (g != DIMPLE_OK || !b.p || strcmp(b.p, "hello") != 0)
            rc = -101;
    }
    if (rc != DIMPLE_OK)
        printf("#   login: %d %s\n", rc, t->th.last_msg);
    free(b.p);
    vt->destroy(self);
    return rc;
}

/* ------------------------------------------------------------- config */

TEST(config_is_checked)
{
    th_log t;
    sftp_conf c;
    void *self = NULL;
    th_init(&t);

    conf_base(&c, "cfg", NULL, NULL);
    conf_set(&c, "colour", "blue");
    CHECK_RC(vt->create(&self, c.kv, &t.th.host), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.th.last_msg, "colour");
    CHECK_CONTAINS(t.th.last_msg, "test.conf:");
    CHECK(self == NULL);

    static const struct {
        const char *key, *value, *needle;
    } bad[] = {
        {"host", NULL, "host"},
        {"user", NULL, "user"},
        {"path", NULL, "path"},
        {"port", "0", "port"},
        {"port", "22x", "port"},
        {"port", "70000", "port"},
        {"host_key_check", "yes", "host_key_check"},
        {"timeout", "0", "timeout"},
        {"timeout", "ten", "timeout"},
        {"key_file", "", "key_file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        conf_base(&c, "cfg", NULL, NULL);
        conf_set(&c, bad[i].key, bad[i].value);
        test_host_clear(&t.th);
        self = NULL;
        int rc = vt->create(&self, c.kv, &t.th.host);
        if (!CHECK(rc == DIMPLE_ECONFIG && self == NULL))
            printf("#   %s=%s: rc %d\n", bad[i].key,
                   bad[i].value ? bad[i].value : "(unset)", rc);
        CHECK_CONTAINS(t.th.last_msg, bad[i].needle);
        if (self)
            vt->destroy(self);
    }

    /* A passphrase without a key file; the message must not carry it. */
    conf_base(&c, "cfg", NULL, NULL);
    conf_set(&c, "key_file", NULL);
    conf_set(&c, "key_passphrase", "s3cret-Passphrase");
    test_host_clear(&t.th);
    CHECK_RC(vt->create(&self, c.kv, &t.th.host), DIMPLE_ECONFIG);
    CHECK(strstr(t.th.last_msg, "s3cret-Passphrase") == NULL);

    /* create() does not connect: a bad port only fails at first use. */
    conf_base(&c, "cfg", "1", NULL);
    self = NULL;
    CHECK_RC(vt->create(&self, c.kv, &t.th.host), DIMPLE_OK);
    if (self) {
        test_host_clear(&t.th);
        CHECK_RC(put_str(self, "k", "v"), DIMPLE_EIO);
        CHECK_CONTAINS(t.th.last_msg, "cannot connect");
        CHECK_CONTAINS(t.th.last_msg, "127.0.0.1:1");
        vt->destroy(self);
    }
}

/* ------------------------------------------------------ authentication */

TEST(key_login_ed25519_and_ecdsa)
{
    th_log t;
    sftp_conf c;
    th_init(&t);
    conf_base(&c, "auth", NULL, NULL);
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);
    /* libssh2 1.10 leaks two BIGNUMs (~100 bytes) in every login with an
     * ECDSA key file (its OpenSSH-format ECDSA parser; fixed in 1.11). Not
     * ours to fix (docs/sftp.md recommends ed25519): this login runs in a
     * child, which reports its result through a pipe and exits without
     * LeakSanitizer's check (under valgrind the child still prints the
     * leak, but only this process's status counts). */
    conf_base(&c, "auth", NULL, NULL);
    conf_set(&c, "key_file", E.key_ecdsa);
    fflush(stdout);
    {
        int fds[2], got = -1;
        pid_t pid = pipe(fds) == 0 ? fork() : -1;
        if (pid == 0) {
            int rc = try_login(&c, &t);
            close(fds[0]);
            if (write(fds[1], &rc, sizeof rc) != (ssize_t)sizeof rc)
                _exit(2);
            _exit(0);
        }
        if (pid > 0) {
            close(fds[1]);
            if (read(fds[0], &got, sizeof got) != (ssize_t)sizeof got)
                got = -1;
            close(fds[0]);
            waitpid(pid, NULL, 0);
        }
        CHECK_RC(got, DIMPLE_OK);
    }

    /* A key the server does not know. */
    conf_base(&c, "auth", NULL, NULL);
    conf_set(&c, "key_file", E.pub_ed25519); /* not a private key at all */
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK_CONTAINS(t.th.last_msg, "key_file");

    conf_base(&c, "auth", NULL, NULL);
    conf_set(&c, "key_file", "/nonexistent/id_ed25519");
    CHECK_RC(try_login(&c, &t), DIMPLE_ECONFIG);
    CHECK_CONTAINS(t.th.last_msg, "/nonexistent/id_ed25519");
}

TEST(passphrase_protected_key)
{
    th_log t;
    sftp_conf c;
    th_init(&t);
    conf_base(&c, "pp", NULL, NULL);
    /* bcrypt key derivation is slow under valgrind; sshd waits 120 s. */
    conf_set(&c, "timeout", "100");
    conf_set(&c, "key_file", E.pp_key);
    conf_set(&c, "key_passphrase", E.pp);
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);
    CHECK(strstr(t.logs, E.pp) == NULL);

    conf_set(&c, "key_passphrase", "wrong-Passphrase-77");
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK_CONTAINS(t.th.last_msg, "key_passphrase");
    CHECK(strstr(t.th.last_msg, "wrong-Passphrase-77") == NULL);
    CHECK(strstr(t.th.last_msg, E.pp) == NULL);
    printf("#   message: %s\n", t.th.last_msg);

    conf_set(&c, "key_passphrase", NULL); /* encrypted key, no passphrase */
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK(strstr(t.logs, "wrong-Passphrase-77") == NULL &&
          strstr(t.logs, E.pp) == NULL);
}

TEST(password_login)
{
    th_log t;
    sftp_conf c;
    th_init(&t);
    conf_base(&c, "pw", NULL, NULL);
    conf_set(&c, "key_file", NULL);
    conf_set(&c, "password", E.password);
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);

    conf_set(&c, "password", "Wrong-Password-1234");
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK_CONTAINS(t.th.last_msg, "wrong password");
    CHECK_CONTAINS(t.th.last_msg, E.user);
    CHECK(strstr(t.th.last_msg, "Wrong-Password-1234") == NULL);
    CHECK(strstr(t.th.last_msg, E.password) == NULL);
    CHECK(strstr(t.logs, "Wrong-Password-1234") == NULL &&
          strstr(t.logs, E.password) == NULL);
    printf("#   message: %s\n", t.th.last_msg);
}

TEST(ssh_agent_login)
{
    th_log t;
    sftp_conf c;
    char dir[] = "/tmp/dimple-agent-XXXXXX", sock[128], cmd[1024];
    pid_t agent;
    th_init(&t);
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    snprintf(sock, sizeof sock, "%s/agent.sock", dir);
    agent = fork();
    if (agent == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1); /* -D prints the environment: keep TAP clean */
        dup2(null, 2);
        execlp("ssh-agent", "ssh-agent", "-D", "-a", sock, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && access(sock, F_OK) != 0; i++)
        usleep(50 * 1000);
    /* The socket exists from bind(), before listen(): retry briefly. */
    snprintf(cmd, sizeof cmd,
             "SSH_AUTH_SOCK=%s ssh-add -q %s </dev/null >/dev/null 2>&1", sock,
             E.key_ecdsa);
    {
        int added = 0;
        for (int i = 0; i < 20 && !added; i++) {
            added = system(cmd) == 0;
            if (!added)
                usleep(100 * 1000);
        }
        if (!CHECK(added)) {
            snprintf(
                cmd, sizeof cmd,
                "SSH_AUTH_SOCK=%s ssh-add %s </dev/null 2>&1 | sed 's/^/#   /'",
                sock, E.key_ecdsa);
            fflush(stdout);
            if (system(cmd) != 0)
                printf("#   (ssh-add output above)\n");
        }
    }

    conf_base(&c, "agent", NULL, NULL);
    conf_set(&c, "key_file", NULL);
    setenv("SSH_AUTH_SOCK", sock, 1);
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);
    unsetenv("SSH_AUTH_SOCK");
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK_CONTAINS(t.th.last_msg, "ssh-agent");

    kill(agent, SIGTERM);
    waitpid(agent, NULL, 0);
    unlink(sock);
    rmdir(dir);
}

/* ---------------------------------------------------------- host keys */

TEST(host_keys)
{
    th_log t;
    sftp_conf c;
    char dir[] = "/tmp/dimple-kh-XXXXXX", kh[256], other[256], line[1024],
         cmd[1024];
    int port = atoi(E.port);
    char *text;
    th_init(&t);
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    snprintf(kh, sizeof kh, "%s/known_hosts", dir);

    /* Unknown host, strict: refused, and the message shows the key. */
    spit(kh, "# nothing for this host\n");
    conf_base(&c, "hk", NULL, kh);
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK_CONTAINS(t.th.last_msg, "unknown host");
    CHECK_CONTAINS(t.th.last_msg, E.fp_ed25519);
    printf("#   message: %s\n", t.th.last_msg);

    /* A changed key: another ed25519 key recorded for this host. */
    snprintf(other, sizeof other, "%s/other", dir);
    snprintf(cmd, sizeof cmd, "ssh-keygen -q -t ed25519 -N '' -f %s", other);
    CHECK(system(cmd) == 0);
    strcat(other, ".pub");
    known_hosts_line(other, port, line, sizeof line);
    spit(kh, line);
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK_CONTAINS(t.th.last_msg, "mismatch");
    CHECK_CONTAINS(t.th.last_msg, E.fp_ed25519);
    printf("#   message: %s\n", t.th.last_msg);
    /* accept-new does not accept a changed key either. */
    conf_set(&c, "host_key_check", "accept-new");
    CHECK_RC(try_login(&c, &t), DIMPLE_EAUTH);
    CHECK_CONTAINS(t.th.last_msg, "mismatch");

    /* Pinning: a file with only the ECDSA key, or only the ed25519 key,
     * is enough (the server would otherwise pick the other type). */
    conf_set(&c, "host_key_check", NULL);
    known_hosts_line(E.pub_ecdsa, port, line, sizeof line);
    spit(kh, line);
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);
    known_hosts_line(E.pub_ed25519, port, line, sizeof line);
    spit(kh, line);
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);

    /* Hashed names (ssh-keygen -H) are understood. */
    snprintf(cmd, sizeof cmd, "ssh-keygen -q -H -f %s >/dev/null 2>&1", kh);
    CHECK(system(cmd) == 0);
    text = slurp(kh, NULL);
    CHECK(text && strncmp(text, "|1|", 3) == 0);
    free(text);
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);

    /* accept-new on a missing file (in a missing folder): connects and
     * records the key. */
    unlink(kh);
    snprintf(kh, sizeof kh, "%s/ssh/known_hosts", dir);
    conf_set(&c, "known_hosts", kh);
    conf_set(&c, "host_key_check", "accept-new");
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);
    text = slurp(kh, NULL);
    snprintf(line, sizeof line, "[127.0.0.1]:%d ssh-ed25519 ", port);
    CHECK_CONTAINS(text, line);
    free(text);
    conf_set(&c, "host_key_check", "strict"); /* now it is known */
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);
    /* The line recorded is one OpenSSH's ssh-keygen can read. */
    snprintf(cmd, sizeof cmd, "ssh-keygen -l -f %s 2>/dev/null | grep -q '%s'",
             kh, E.fp_ed25519);
    CHECK(system(cmd) == 0);

    /* off: no known_hosts at all. */
    unlink(kh);
    conf_set(&c, "host_key_check", "off");
    CHECK_RC(try_login(&c, &t), DIMPLE_OK);
    CHECK(access(kh, F_OK) != 0);
    CHECK_CONTAINS(t.logs, "NOT verified");

    unlink(kh);
    *strrchr(kh, '/') = '\0';
    rmdir(kh);
    snprintf(kh, sizeof kh, "%s/known_hosts.old",
             dir); /* ssh-keygen -H's backup */
    unlink(kh);
    unlink(other);
    other[strlen(other) - 4] = '\0';
    unlink(other);
    rmdir(dir);
}

/* ------------------------------------------------------------- interop */

static int run_sftp_batch(const char *batch_text)
{
    char batch[600], cmd[2048];
    int rc;
    snprintf(batch, sizeof batch, "%s/batch-%d", E.root, (int)getpid());
    spit(batch, batch_text);
    snprintf(
        cmd, sizeof cmd,
        "sftp -q -b %s -P %s -i %s -o BatchMode=yes -o UserKnownHostsFile=%s "
        "-o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null %s@%s "
        ">/dev/null 2>&1",
        batch, E.port, E.key, E.known_hosts, E.user, E.host);
    rc = system(cmd);
    unlink(batch);
    return rc;
}

TEST(interop_with_the_sftp_command)
{
    th_log t;
    sftp_conf c;
    void *self;
    membuf b = {0};
    char local[600], batch[2048], keys[4096];
    unsigned char bin[3000];
    char *got;
    size_t n = 0;
    th_init(&t);
    conf_base(&c, "interop", NULL, NULL);
    self = open_store(&c, &t);
    if (!CHECK(self != NULL))
        return;
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7 + 3);

    /* plugin → sftp */
    CHECK_RC(vt->put(self, "x/from-plugin", bin, sizeof bin), DIMPLE_OK);
    snprintf(local, sizeof local, "%s/local-%d", E.root, (int)getpid());
    snprintf(batch, sizeof batch, "get %s/x/from-plugin %s\n", c.folder, local);
    CHECK(run_sftp_batch(batch) == 0);
    got = slurp(local, &n);
    CHECK(got && n == sizeof bin && memcmp(got, bin, n) == 0);
    free(got);

    /* sftp → plugin */
    spit(local, "written by OpenSSH's sftp\n");
    snprintf(batch, sizeof batch, "put %s %s/x/from-sftp\n", local, c.folder);
    CHECK(run_sftp_batch(batch) == 0);
    CHECK_RC(get_mem(self, "x/from-sftp", &b), DIMPLE_OK);
    CHECK_STR(b.p, "written by OpenSSH's sftp\n");
    CHECK_RC(list_all(self, keys), DIMPLE_OK);
    CHECK_STR(keys, "x/from-plugin,x/from-sftp");

    /* Removed by sftp: gone for the plugin too. */
    snprintf(batch, sizeof batch, "rm %s/x/from-plugin\n", c.folder);
    CHECK(run_sftp_batch(batch) == 0);
    CHECK_RC(get_mem(self, "x/from-plugin", &b), DIMPLE_ENOTFOUND);
    unlink(local);
    free(b.p);
    vt->destroy(self);
}

/* ------------------------------------------------- atomicity, remotes */

typedef struct put_job {
    void *self;
    const char *key;
    const void *data;
    size_t len;
    int rc;
} put_job;

static void *put_main(void *arg)
{
    put_job *j = arg;
    j->rc = vt->put(j->self, j->key, j->data, j->len);
    return NULL;
}

/* Size of the biggest temporary in folder, or -1 if there is none. */
static long long biggest_tmp(const char *folder)
{
    DIR *d = opendir(folder);
    struct dirent *e;
    long long best = -1;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char p[1200];
        struct stat st;
        if (strncmp(e->d_name, ".dimple-tmp-", 12) != 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", folder, e->d_name);
        if (stat(p, &st) == 0 && st.st_size > best)
            best = st.st_size;
    }
    closedir(d);
    return best;
}

TEST(sshd_killed_during_a_put_leaves_no_partial_object)
{
    th_log t, t2;
    sftp_conf c;
    sshd_proc d = {0};
    void *a = NULL, *b = NULL;
    membuf m = {0};
    char keys[4096], path[1200];
    size_t big = 256u << 20;
    unsigned char *data = malloc(big);
    put_job job;
    pthread_t th;
    long long seen = -1;
    char *disk;
    size_t disk_len = 0;

    th_init(&t);
    th_init(&t2);
    if (!CHECK(data != NULL) || !CHECK(sshd_start(&d, NULL, 0) == 0))
        goto out;
    memset(data, 'N', big);
    snprintf(keys, sizeof keys, "%d", d.port);
    conf_base(&c, "crash", keys, d.known_hosts);
    a = open_store(&c, &t);
    b = open_store(&c, &t2);
    if (!CHECK(a && b))
        goto out;
    CHECK_RC(put_str(a, "obj", "old content"), DIMPLE_OK);

    job = (put_job){a, "obj", data, big, 1};
    pthread_create(&th, NULL, put_main, &job);
    /* Wait until the new content is partly on the server's disk. */
    for (int i = 0; i < 3000 && seen < (1 << 20); i++) {
        usleep(2000);
        seen = biggest_tmp(c.folder);
    }
    CHECK(seen >= (1 << 20));
    printf("#   temporary at %lld bytes when sshd is killed\n", seen);
    /* Meanwhile, a reader sees the old object only. */
    CHECK_RC(get_mem(b, "obj", &m), DIMPLE_OK);
    CHECK_STR(m.p, "old content");
    CHECK_RC(list_all(b, keys), DIMPLE_OK);
    CHECK_STR(keys, "obj");

    sshd_kill(&d);
    pthread_join(th, NULL);
    CHECK_RC(job.rc, DIMPLE_EIO); /* and the one reconnect finds no server */
    printf("#   put: %s\n", t.th.last_msg);
    snprintf(path, sizeof path, "%s/obj", c.folder);
    disk = slurp(path, &disk_len);
    CHECK(disk && strcmp(disk, "old content") == 0);
    free(disk);

    /* sshd comes back: both instances reconnect and see the old object,
     * and no temporary. */
    CHECK(sshd_start(&d, NULL, d.port) == 0);
    CHECK_RC(get_mem(a, "obj", &m), DIMPLE_OK);
    CHECK_STR(m.p, "old content");
    CHECK_RC(get_mem(b, "obj", &m), DIMPLE_OK);
    CHECK_STR(m.p, "old content");
    CHECK_RC(list_all(a, keys), DIMPLE_OK);
    CHECK_STR(keys, "obj");
    /* And a put completes now. */
    CHECK_RC(vt->put(a, "obj", data, 1 << 20), DIMPLE_OK);
    CHECK_RC(get_mem(b, "obj", &m), DIMPLE_OK);
    CHECK(m.n == (1u << 20) && memcmp(m.p, data, m.n) == 0);
out:
    if (a)
        vt->destroy(a);
    if (b)
        vt->destroy(b);
    sshd_kill(&d);
    free(data);
    free(m.p);
}

TEST(reconnect_after_sshd_restart)
{
    th_log t;
    sftp_conf c;
    sshd_proc d = {0};
    void *a = NULL;
    membuf m = {0};
    char port[16];
    double t0;
    th_init(&t);
    if (!CHECK(sshd_start(&d, NULL, 0) == 0))
        goto out;
    snprintf(port, sizeof port, "%d", d.port);
    conf_base(&c, "reconnect", port, d.known_hosts);
    conf_set(&c, "timeout", "3");
    a = open_store(&c, &t);
    if (!CHECK(a != NULL))
        goto out;
    CHECK_RC(put_str(a, "k", "v1"), DIMPLE_OK);

    sshd_kill(&d);
    CHECK(sshd_start(&d, NULL, d.port) == 0);
    t.logs[0] = '\0';
    t.loglen = 0;
    CHECK_RC(get_mem(a, "k", &m), DIMPLE_OK); /* on a new connection */
    CHECK_STR(m.p, "v1");
    CHECK_CONTAINS(t.logs, "reconnecting");
    CHECK_RC(put_str(a, "k", "v2"), DIMPLE_OK);
    CHECK_RC(get_mem(a, "k", &m), DIMPLE_OK);
    CHECK_STR(m.p, "v2");

    /* A hung session (its processes stopped, the listener still there):
     * the call times out, and succeeds on a new connection. */
    signal_tree(d.pid, SIGSTOP, 0);
    t0 = now_s();
    test_host_clear(&t.th);
    CHECK_RC(get_mem(a, "k", &m), DIMPLE_OK);
    CHECK_STR(m.p, "v2");
    printf("#   hung session: %.1f s until the answer on a new connection\n",
           now_s() - t0);
    CHECK(now_s() - t0 < 10);
    /* The first attempt's error was the timeout (libssh2 counts whole
     * seconds, so it fires 2..3 s after the call began). */
    CHECK_CONTAINS(t.th.last_msg, "timeout");

    /* Gone for good: a clear error, quickly, after one reconnect. */
    sshd_kill(&d);
    t0 = now_s();
    test_host_clear(&t.th);
    CHECK_RC(get_mem(a, "k", &m), DIMPLE_EIO);
    CHECK(now_s() - t0 < 7);
    CHECK_CONTAINS(t.th.last_msg, "cannot connect");
    printf("#   message: %s\n", t.th.last_msg);
out:
    if (a)
        vt->destroy(a);
    sshd_kill(&d);
    free(m.p);
}

TEST(a_silent_server_times_out)
{
    th_log t;
    sftp_conf c;
    void *a;
    struct sockaddr_in sa;
    socklen_t l = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char port[16];
    double t0;
    th_init(&t);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Listens (the kernel accepts) but never says a word. */
    if (!CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
               listen(fd, 4) == 0 &&
               getsockname(fd, (struct sockaddr *)&sa, &l) == 0))
        return;
    snprintf(port, sizeof port, "%d", ntohs(sa.sin_port));
    conf_base(&c, "silent", port, NULL);
    conf_set(&c, "timeout", "1");
    a = open_store(&c, &t);
    if (CHECK(a != NULL)) {
        t0 = now_s();
        CHECK_RC(put_str(a, "k", "v"), DIMPLE_EIO);
        CHECK(now_s() - t0 < 4);
        CHECK_CONTAINS(t.th.last_msg, "timeout");
        printf("#   message: %s\n", t.th.last_msg);
        vt->destroy(a);
    }
    close(fd);
}

/* A reader never sees a partial or missing object while a writer
 * replaces it (posix-rename@openssh.com). */
typedef struct flip_job {
    void *self;
    int rounds;
    int bad;
    volatile int stop;
} flip_job;

static void *flip_writer(void *arg)
{
    flip_job *j = arg;
    size_t n = 200000;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        j->bad++;
        goto out;
    }
    memset(a, 'A', n);
    memset(b, 'B', n / 2);
    for (int i = 0; i < j->rounds; i++)
        if (vt->put(j->self, "flip", i % 2 ? a : b, i % 2 ? n : n / 2) !=
            DIMPLE_OK)
            j->bad++;
out:
    j->stop = 1;
    free(a);
    free(b);
    return NULL;
}

static int uniform(const membuf *m)
{
    size_t want = m->n == 200000 ? 200000 : m->n == 100000 ? 100000 : 0;
    char c = m->n == 200000 ? 'A' : 'B';
    if (!want)
        return 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->p[i] != c)
            return 0;
    return 1;
}

TEST(readers_never_see_a_partial_object)
{
    th_log t1, t2;
    sftp_conf c;
    void *w, *r;
    membuf m = {0};
    flip_job job = {0};
    pthread_t th;
    int reads = 0, bad = 0;
    th_init(&t1);
    th_init(&t2);
    conf_base(&c, "flip", NULL, NULL);
    w = open_store(&c, &t1);
    r = open_store(&c, &t2);
    if (!CHECK(w && r))
        goto out;
    CHECK_RC(put_str(w, "flip", "seed"), DIMPLE_OK);
    CHECK_RC(get_mem(r, "flip", &m), DIMPLE_OK);
    job.self = w;
    job.rounds = 60;
    pthread_create(&th, NULL, flip_writer, &job);
    while (!job.stop) {
        int rc = get_mem(r, "flip", &m);
        reads++;
        if (rc != DIMPLE_OK ||
            (!uniform(&m) && strcmp(m.p ? m.p : "", "seed") != 0)) {
            if (bad++ == 0)
                printf("#   read %d: rc %d, %zu bytes\n", reads, rc, m.n);
        }
    }
    pthread_join(th, NULL);
    printf("#   %d reads during %d replacements\n", reads, job.rounds);
    CHECK(job.bad == 0);
    CHECK(bad == 0);
    CHECK(reads > 5);
out:
    if (w)
        vt->destroy(w);
    if (r)
        vt->destroy(r);
    free(m.p);
}

/* Without posix-rename (sftp-server -P denies it) put still replaces,
 * through remove + rename: never partial, possibly briefly absent. */
TEST(put_without_posix_rename)
{
    th_log t;
    sftp_conf c;
    sshd_proc d = {0};
    char cfg[700], port[16], keys[4096], cmd[2000];
    void *a = NULL;
    membuf m = {0};
    th_init(&t);
    snprintf(cfg, sizeof cfg, "%s.norename-%d", E.sshd_config, (int)getpid());
    snprintf(
        cmd, sizeof cmd,
        "sed 's/^Subsystem sftp internal-sftp$/Subsystem sftp internal-sftp -P "
        "posix-rename/' %s > %s && grep -q posix-rename %s",
        E.sshd_config, cfg, cfg);
    if (!CHECK(system(cmd) == 0) || !CHECK(sshd_start(&d, cfg, 0) == 0))
        goto out;
    snprintf(port, sizeof port, "%d", d.port);
    conf_base(&c, "norename", port, d.known_hosts);
    a = open_store(&c, &t);
    if (!CHECK(a != NULL))
        goto out;
    CHECK_RC(put_str(a, "d/k", "one"), DIMPLE_OK);
    CHECK_RC(put_str(a, "d/k", "two, longer"), DIMPLE_OK);
    CHECK_RC(get_mem(a, "d/k", &m), DIMPLE_OK);
    CHECK_STR(m.p, "two, longer");
    CHECK_CONTAINS(t.logs, "does not allow posix-rename");
    CHECK_RC(vt->put_if_absent(a, "d/k", "three", 5), DIMPLE_EEXISTS);
    CHECK_RC(list_all(a, keys), DIMPLE_OK);
    CHECK_STR(keys, "d/k");
    snprintf(cmd, sizeof cmd, "%s/d", c.folder);
    CHECK(biggest_tmp(cmd) == -1); /* no temporary left behind */
    /* The whole contract holds in this mode too. */
    {
        sftp_conf c2;
        conf_base(&c2, "norename-contract", port, d.known_hosts);
        CHECK(storage_contract_run("sftp", c2.kv) == 0);
    }
out:
    if (a)
        vt->destroy(a);
    sshd_kill(&d);
    unlink(cfg);
    free(m.p);
}

typedef struct pia_job {
    void *self;
    int id;
    int won, lost, other;
} pia_job;

static void *pia_main(void *arg)
{
    pia_job *j = arg;
    char key[32], val[8];
    snprintf(val, sizeof val, "%d", j->id);
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof key, "lock/%d", i);
        int rc = vt->put_if_absent(j->self, key, val, strlen(val));
        if (rc == DIMPLE_OK)
            j->won++;
        else if (rc == DIMPLE_EEXISTS)
            j->lost++;
        else
            j->other++;
    }
    return NULL;
}

TEST(put_if_absent_races)
{
    th_log t[2];
    sftp_conf c;
    pia_job j[2] = {{0}};
    pthread_t th[2];
    th_init(&t[0]);
    th_init(&t[1]);
    conf_base(&c, "pia", NULL, NULL);
    for (int i = 0; i < 2; i++) {
        j[i].self = open_store(&c, &t[i]);
        j[i].id = i;
    }
    if (!CHECK(j[0].self && j[1].self))
        goto out;
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, pia_main, &j[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    printf("#   won %d/%d, lost %d/%d\n", j[0].won, j[1].won, j[0].lost,
           j[1].lost);
    CHECK(j[0].other == 0 && j[1].other == 0);
    CHECK(j[0].won + j[1].won == 25);
    CHECK(j[0].lost + j[1].lost == 25);
out:
    for (int i = 0; i < 2; i++)
        if (j[i].self)
            vt->destroy(j[i].self);
}

/* --------------------------------------------------- hostile names */

TEST(names_from_the_server_cannot_leave_path)
{
    th_log t;
    sftp_conf c;
    void *a;
    char keys[4096], p[1200], q[1200];
    th_init(&t);
    conf_base(&c, "hostile", NULL, NULL);
    a = open_store(&c, &t);
    if (!CHECK(a != NULL))
        return;
    CHECK_RC(put_str(a, "ok", "fine"), DIMPLE_OK);
    /* Made behind the plugin's back, as the server's owner could. */
    snprintf(p, sizeof p, "%s/evil-dir", c.folder);
    CHECK(symlink("/etc", p) == 0);
    snprintf(p, sizeof p, "%s/evil-file", c.folder);
    CHECK(symlink("/etc/hostname", p) == 0);
    snprintf(p, sizeof p, "%s/back\\slash", c.folder);
    CHECK(spit(p, "x") == 0);
    snprintf(p, sizeof p, "%s/.dimple-tmp-0123456789abcdef", c.folder);
    CHECK(spit(p, "partial") == 0);
    CHECK_RC(list_all(a, keys), DIMPLE_OK);
    CHECK_STR(keys, "ok");
    keys[0] = '\0';
    CHECK_RC(vt->list(a, "", NULL, DIMPLE_LIST_SHALLOW, join_cb, keys),
             DIMPLE_OK);
    CHECK_STR(keys, "ok");
    /* The temporary name space is reserved. */
    CHECK_RC(put_str(a, ".dimple-tmp-0123456789abcdef", "x"), DIMPLE_EINVAL);
    CHECK_RC(put_str(a, "a/.dimple-tmp-x/b", "x"), DIMPLE_EINVAL);

    /* A stale temporary (a crashed writer's, a day old) is swept. */
    {
        struct timespec ts[2] = {{time(NULL) - 2 * 86400, 0},
                                 {time(NULL) - 2 * 86400, 0}};
        snprintf(q, sizeof q, "%s/.dimple-tmp-0123456789abcdef", c.folder);
        CHECK(utimensat(AT_FDCWD, q, ts, 0) == 0);
        CHECK_RC(list_all(a, keys), DIMPLE_OK);
        CHECK(access(q, F_OK) != 0);
    }
    vt->destroy(a);
}

TEST(empty_folders_are_removed_with_their_last_object)
{
    th_log t;
    sftp_conf c;
    void *a;
    char p[1200], keys[4096];
    th_init(&t);
    conf_base(&c, "prune", NULL, NULL);
    a = open_store(&c, &t);
    if (!CHECK(a != NULL))
        return;
    CHECK_RC(put_str(a, "a/b/c/d", "x"), DIMPLE_OK);
    CHECK_RC(put_str(a, "a/keep", "y"), DIMPLE_OK);
    CHECK_RC(vt->remove(a, "a/b/c/d"), DIMPLE_OK);
    snprintf(p, sizeof p, "%s/a/b", c.folder);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/a", c.folder);
    CHECK(access(p, F_OK) == 0);
    CHECK_RC(vt->remove(a, "a/keep"), DIMPLE_OK);
    CHECK(access(p, F_OK) != 0);
    CHECK(access(c.folder, F_OK) == 0); /* never the root */
    CHECK_RC(list_all(a, keys), DIMPLE_OK);
    CHECK_STR(keys, "");
    vt->destroy(a);
}

int main(void)
{
    void *dl = NULL;
    sftp_conf c;

    if (sftp_env_load() < 0) {
        CHECK(!"the SFTP test server's variables are set");
        return test_done();
    }
    /* The SFTP has no paging; 600 keys still span several READDIR
     * answers (OpenSSH sends 100 names per answer). */
    setenv("DIMPLE_CONTRACT_MANY", "600", 0);
    conf_base(&c, "contract", NULL, NULL);
    storage_contract_run("sftp", c.kv);

    vt = test_plugin_load("sftp", &dl)->vt.storage;
    RUN(config_is_checked);
    RUN(key_login_ed25519_and_ecdsa);
    RUN(passphrase_protected_key);
    RUN(password_login);
    RUN(ssh_agent_login);
    RUN(host_keys);
    RUN(interop_with_the_sftp_command);
    RUN(names_from_the_server_cannot_leave_path);
    RUN(empty_folders_are_removed_with_their_last_object);
    RUN(put_if_absent_races);
    RUN(readers_never_see_a_partial_object);
    RUN(put_without_posix_rename);
    RUN(a_silent_server_times_out);
    RUN(reconnect_after_sshd_restart);
    RUN(sshd_killed_during_a_put_leaves_no_partial_object);
    dlclose(dl);
    return test_done();
}
