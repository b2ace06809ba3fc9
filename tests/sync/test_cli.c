/*
 * test_cli.c — `dimple sync [--watch SECONDS]` as a user runs it: one
 * summary line on stdout, nothing on stderr when it is not a terminal,
 * exit 1 with one line "dimple: ..." on failure, 2 on wrong usage, and
 * --watch syncing again until interrupted.
 */
#include "sync_util.h"

#include <signal.h>
#include <sys/wait.h>

static char *dir;
static const char *cli;

/* Run the CLI with conf and args; capture stdout and stderr. */
static int run(const char *conf, const char *args, char *out, size_t outn,
               char *err, size_t errn)
{
    char cmd[2048], of[600], ef[600];
    snprintf(of, sizeof of, "%s/out.txt", dir);
    snprintf(ef, sizeof ef, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' -c '%s/%s.conf' %s >'%s' 2>'%s' </dev/null",
             cli, dir, conf, args, of, ef);
    int st = system(cmd);
    FILE *f = fopen(of, "r");
    size_t n = f ? fread(out, 1, outn - 1, f) : 0;
    out[n] = 0;
    if (f)
        fclose(f);
    f = fopen(ef, "r");
    n = f ? fread(err, 1, errn - 1, f) : 0;
    err[n] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void conf(const char *name, int with_storage)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.conf", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "[dimple]\ndatabase = %s/%s.db\n", dir, name);
    if (with_storage)
        fprintf(f, "[storage]\nplugin = file\npath = %s/store\nfsync = off\n",
                dir);
    fclose(f);
}

TEST(sync_command)
{
    char out[4096], err[4096];
    conf("a", 1);
    conf("b", 1);
    conf("none", 0);
    const char *mk = "sql \"CREATE TABLE t(k TEXT PRIMARY KEY, v)\"";
    CHECK(run("a", mk, out, sizeof out, err, sizeof err) == 0);
    CHECK(run("b", mk, out, sizeof out, err, sizeof err) == 0);
    CHECK(run("a", "sql \"INSERT INTO t VALUES('x', 1), ('y', 2)\"", out,
              sizeof out, err, sizeof err) == 0);
    CHECK(run("a", "sync", out, sizeof out, err, sizeof err) == 0);
    CHECK_CONTAINS(out, "sync: pushed 2 changes in 1 batch");
    CHECK(err[0] == 0); /* not a terminal: no progress bar */
    CHECK(strchr(out, '\n') == out + strlen(out) - 1); /* one line */
    CHECK(run("b", "sync", out, sizeof out, err, sizeof err) == 0);
    CHECK_CONTAINS(out, "pulled 2 changes in 1 batch");
    CHECK_CONTAINS(out, "from 1 author");
    CHECK(run("b", "sql \"SELECT k, v FROM t ORDER BY k\"", out, sizeof out,
              err, sizeof err) == 0);
    CHECK_CONTAINS(out, "{\"k\":\"x\",\"v\":1}");
    CHECK_CONTAINS(out, "{\"k\":\"y\",\"v\":2}");

    /* errors: one line, exit 1; usage: exit 2 */
    CHECK(run("none", "sync", out, sizeof out, err, sizeof err) == 1);
    CHECK_CONTAINS(err, "dimple: sync: no [storage] configured");
    CHECK(strchr(err, '\n') == err + strlen(err) - 1);
    CHECK(run("b", "sync --watch", out, sizeof out, err, sizeof err) == 2);
    CHECK(run("b", "sync --watch -1", out, sizeof out, err, sizeof err) == 2);
    CHECK(run("b", "sync extra", out, sizeof out, err, sizeof err) == 2);
    CHECK_CONTAINS(err, "extra");
}

TEST(watch_syncs_until_interrupted)
{
    char of[600], cmdconf[600];
    snprintf(of, sizeof of, "%s/watch.txt", dir);
    snprintf(cmdconf, sizeof cmdconf, "%s/b.conf", dir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(of, "w", stdout);
        (void)f;
        execl(cli, cli, "-c", cmdconf, "sync", "--watch", "0.2", (char *)NULL);
        _exit(127);
    }
    /* meanwhile a new change arrives from a */
    char out[4096], err[4096];
    usleep(300000);
    CHECK(run("a", "sql \"INSERT INTO t VALUES('z', 3)\"", out, sizeof out, err,
              sizeof err) == 0);
    CHECK(run("a", "sync", out, sizeof out, err, sizeof err) == 0);
    usleep(900000);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(of, "r");
    char buf[8192];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    int lines = 0;
    for (char *p = buf; (p = strchr(p, '\n')); p++)
        lines++;
    CHECK(lines >= 3);
    CHECK_CONTAINS(buf, "pulled 1 change in 1 batch");
}

int main(void)
{
    cli = getenv("DIMPLE_CLI");
    if (!cli) {
        printf("not ok 1 - DIMPLE_CLI is not set\n1..1\n");
        return 1;
    }
    dir = su_tmpdir("cli");
    if (!dir)
        return 1;
    RUN(sync_command);
    RUN(watch_syncs_until_interrupted);
    su_rmrf(dir);
    free(dir);
    return test_done();
}
