/*
 * sftp_env.h — what the SFTP tests and the SFTP benchmark share: the test
 * server's variables (tests/servers/sftp.sh writes them), a configuration
 * builder, and control of a private sshd (start on a port, kill with its
 * sessions, restart) for the tests that break connections on purpose.
 * Header-only (static functions): each program includes it once.
 */
#ifndef DIMPLE_TEST_SFTP_ENV_H
#define DIMPLE_TEST_SFTP_ENV_H

#include <dimple/plugin.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Not every program uses every helper. */
#define SFTP_ENV_FN static __attribute__((unused))

typedef struct sftp_env {
    const char *host, *port, *user, *key, *key_ecdsa, *pp_key, *pp, *password,
        *known_hosts, *root, *fp_ed25519, *fp_ecdsa, *pub_ed25519, *pub_ecdsa,
        *sshd_config;
} sftp_env;

static sftp_env E;

/* Read DIMPLE_TEST_SFTP_*; print the missing ones and return -1 if any. */
SFTP_ENV_FN int sftp_env_load(void)
{
    static const struct {
        const char *name;
        const char **dst;
    } vars[] = {
        {"DIMPLE_TEST_SFTP_HOST", &E.host},
        {"DIMPLE_TEST_SFTP_PORT", &E.port},
        {"DIMPLE_TEST_SFTP_USER", &E.user},
        {"DIMPLE_TEST_SFTP_KEY", &E.key},
        {"DIMPLE_TEST_SFTP_KEY_ECDSA", &E.key_ecdsa},
        {"DIMPLE_TEST_SFTP_KEY_PASSPHRASE_KEY", &E.pp_key},
        {"DIMPLE_TEST_SFTP_KEY_PASSPHRASE", &E.pp},
        {"DIMPLE_TEST_SFTP_PASSWORD", &E.password},
        {"DIMPLE_TEST_SFTP_KNOWN_HOSTS", &E.known_hosts},
        {"DIMPLE_TEST_SFTP_ROOT", &E.root},
        {"DIMPLE_TEST_SFTP_FP_ED25519", &E.fp_ed25519},
        {"DIMPLE_TEST_SFTP_FP_ECDSA", &E.fp_ecdsa},
        {"DIMPLE_TEST_SFTP_HOST_PUB_ED25519", &E.pub_ed25519},
        {"DIMPLE_TEST_SFTP_HOST_PUB_ECDSA", &E.pub_ecdsa},
        {"DIMPLE_TEST_SFTP_SSHD_CONFIG", &E.sshd_config},
    };
    int missing = 0;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i].name);
        if (!v || !*v) {
            printf("# missing %s (start tests/servers/sftp.sh and source its "
                   "sftp.env)\n",
                   vars[i].name);
            missing++;
        }
        *vars[i].dst = v;
    }
    return missing ? -1 : 0;
}

/* ------------------------------------------------------ configuration */

typedef struct sftp_conf {
    dimple_kv kv[16];
    int n;
    char folder[512]; /* the `path`: on the server and, here, locally */
    char port[16];
} sftp_conf;

SFTP_ENV_FN void conf_set(sftp_conf *c, const char *key, const char *value)
{
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->kv[i].key, key) == 0) {
            if (value) {
                c->kv[i].value = value;
            } else {
                memmove(&c->kv[i], &c->kv[i + 1],
                        (size_t)(c->n - i) * sizeof c->kv[0]);
                c->n--;
            }
            return;
        }
    }
    if (value && c->n < 15) {
        c->kv[c->n].key = key;
        c->kv[c->n].value = value;
        c->kv[c->n].line = c->n + 1;
        c->n++;
        c->kv[c->n].key = NULL;
        c->kv[c->n].value = NULL;
    }
}

/* A configuration for a fresh, empty folder below the test root, key
 * login, strict host keys against the server's known_hosts. port NULL:
 * the shared test server's. */
SFTP_ENV_FN void conf_base(sftp_conf *c, const char *tag, const char *port,
                           const char *known_hosts)
{
    static int counter;
    memset(c, 0, sizeof *c);
    snprintf(c->folder, sizeof c->folder, "%s/%s-%d-%ld-%d", E.root, tag,
             (int)getpid(), (long)time(NULL), ++counter);
    snprintf(c->port, sizeof c->port, "%s", port ? port : E.port);
    conf_set(c, "host", E.host);
    conf_set(c, "port", c->port);
    conf_set(c, "user", E.user);
    conf_set(c, "path", c->folder);
    conf_set(c, "key_file", E.key);
    conf_set(c, "known_hosts", known_hosts ? known_hosts : E.known_hosts);
    conf_set(c, "timeout", "10");
}

/* ------------------------------------------------------- small files */

SFTP_ENV_FN char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        size_t r;
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

SFTP_ENV_FN int spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* "[127.0.0.1]:port <type> <base64>\n" from a host .pub file. */
SFTP_ENV_FN int known_hosts_line(const char *pub, int port, char *out, size_t n)
{
    char *text = slurp(pub, NULL), *sp;
    if (!text)
        return -1;
    sp = strchr(text, ' ');
    if (sp)
        sp = strchr(sp + 1, ' ');
    if (sp)
        *sp = '\0';
    text[strcspn(text, "\n")] = '\0';
    snprintf(out, n, "[127.0.0.1]:%d %s\n", port, text);
    free(text);
    return 0;
}

/* ------------------------------------------------------ private sshd */

typedef struct sshd_proc {
    pid_t pid;
    int port;
    char config[512];
    char log[600];
    char known_hosts[600]; /* both host keys for [127.0.0.1]:port */
} sshd_proc;

SFTP_ENV_FN int free_port(void)
{
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* An SSH banner on 127.0.0.1:port within about ms milliseconds? */
SFTP_ENV_FN int port_answers(int port, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char b[4];
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            read(fd, b, 4) == 4 && memcmp(b, "SSH-", 4) == 0) {
            close(fd);
            return 1;
        }
        if (fd >= 0)
            close(fd);
        usleep(50 * 1000);
    }
    return 0;
}

/* Start sshd -D with config (NULL: the test server's) on port (0: a free
 * one), logging to a file; wait until it answers. */
SFTP_ENV_FN int sshd_start(sshd_proc *d, const char *config, int port)
{
    char portstr[16], line[2][1024];
    if (config)
        snprintf(d->config, sizeof d->config, "%s", config);
    else if (!d->config[0])
        snprintf(d->config, sizeof d->config, "%s", E.sshd_config);
    d->port = port ? port : free_port();
    snprintf(portstr, sizeof portstr, "%d", d->port);
    snprintf(d->log, sizeof d->log, "%s.%d.log", d->config, d->port);
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-f", d->config, "-p",
              portstr, "-o", "PidFile=none", "-E", d->log, (char *)NULL);
        _exit(127);
    }
    if (!port_answers(d->port, 10000))
        return -1;
    snprintf(d->known_hosts, sizeof d->known_hosts, "%s.%d.known_hosts",
             d->config, d->port);
    if (known_hosts_line(E.pub_ed25519, d->port, line[0], sizeof line[0]) < 0 ||
        known_hosts_line(E.pub_ecdsa, d->port, line[1], sizeof line[1]) < 0)
        return -1;
    {
        char both[2048];
        snprintf(both, sizeof both, "%s%s", line[0], line[1]);
        return spit(d->known_hosts, both);
    }
}

/* The parent pid of pid, from /proc (-1 if gone). */
SFTP_ENV_FN pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    int ppid = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')) != NULL)
        sscanf(p + 2, "%*c %d", &ppid);
    fclose(f);
    return (pid_t)ppid;
}

/* Send sig to every process below root (sshd's per-connection monitors
 * and their session processes), and to root itself if self is set. The
 * whole tree is collected first, so nothing is orphaned out of reach. */
SFTP_ENV_FN void signal_tree(pid_t root, int sig, int self)
{
    pid_t tree[512];
    size_t n = 0;
    tree[n++] = root;
    for (size_t i = 0; i < n; i++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        if (!d)
            break;
        while ((e = readdir(d)) != NULL && n < 512) {
            pid_t p;
            if (!isdigit((unsigned char)e->d_name[0]))
                continue;
            p = (pid_t)atoi(e->d_name);
            if (parent_of(p) == tree[i])
                tree[n++] = p;
        }
        closedir(d);
    }
    for (size_t i = self ? 0 : 1; i < n; i++)
        kill(tree[i], sig);
}

SFTP_ENV_FN void kill_tree(pid_t root)
{
    signal_tree(root, SIGKILL, 1);
}

SFTP_ENV_FN void sshd_kill(sshd_proc *d)
{
    if (d->pid <= 0)
        return;
    kill_tree(d->pid);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

SFTP_ENV_FN double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif /* DIMPLE_TEST_SFTP_ENV_H */
