/*
 * cmd_watch.c — `dimple watch SQL [PARAM...]`: a live query on the command
 * line. Prints the result as one JSON array (of row objects) per line at
 * start, then again each time it changes: writes by this process, by any
 * other process (`dimple sql`, an app) and by `dimple sync`. Runs until
 * SIGINT or SIGTERM, then exits 0.
 *
 * An event loop over two descriptors: dimple_live_fd (made readable by a
 * local commit or, within ~50 ms, by another process's commit) and a
 * self-pipe the signal handler writes to. A rerun whose result is the same
 * prints nothing. A rerun that fails (the table was dropped) prints the
 * error on stderr and keeps watching.
 *
 * Parameters are typed as in `dimple sql`: null, 64-bit integer, finite
 * real, else text.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(sig_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

typedef struct watch_state {
    int write_failed;
} watch_state;

static void on_result(void *payload, dimple_live_query *q,
                      const dimple_result *r)
{
    watch_state *w = payload;
    (void)q;
    if (r->rc != DIMPLE_OK) {
        cli_fail("%s", r->errmsg);
        return;
    }
    if (fputs(r->json, stdout) == EOF || fputc('\n', stdout) == EOF ||
        fflush(stdout) == EOF)
        w->write_failed = 1;
}

int cmd_watch(int argc, char **argv)
{
    dimple *db = NULL;
    dimple_live_query *q = NULL;
    dimple_value *params = NULL;
    dimple_live_options lo = DIMPLE_LIVE_OPTIONS_INIT;
    lo.delivery = DIMPLE_LIVE_DISPATCH;
    watch_state w = {0};
    size_t n = argc > 2 ? (size_t)argc - 2 : 0;
    struct sigaction sa;
    int fd, rc = 1;

    if (argc < 2)
        return cli_usage_error(cli_find("watch"), "watch needs SQL");
    if (n && !(params = calloc(n, sizeof *params)))
        return cli_fail("out of memory");
    for (size_t i = 0; i < n; i++)
        params[i] = cli_parse_param(argv[i + 2]);
    if (pipe(sig_pipe) != 0) {
        free(params);
        return cli_fail("pipe: %s", strerror(errno));
    }
    fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(sig_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(sig_pipe[1], F_SETFD, FD_CLOEXEC);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error, not a kill */

    if (cli_open(&db))
        goto out;
    fd = dimple_live_fd(db);
    if (fd < 0 ||
        dimple_live_open(&q, db, argv[1], params, n, on_result, &w, &lo) < 0 ||
        dimple_live_dispatch(db) < 0) {
        rc = cli_fail_db(db);
        goto out;
    }
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cli_fail("poll: %s", strerror(errno));
            goto out;
        }
        if (p[1].revents)
            break; /* SIGINT or SIGTERM: a normal end */
        if (p[0].revents && dimple_live_dispatch(db) < 0) {
            rc = cli_fail_db(db);
            goto out;
        }
        if (w.write_failed) {
            rc = cli_fail("stdout: %s", strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    dimple_live_close(q);
    dimple_close(db);
    free(params);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    return rc;
}
