/*
 * cmd_sync.c — `dimple sync [--watch SECONDS]`: push this author's
 * changes and pull everyone else's through the configured storage.
 *
 * On a terminal (stderr is a tty) a progress bar shows the batches moving;
 * otherwise nothing but the one summary line per sync on stdout, so the
 * output stays clean in scripts and logs. With --watch it syncs again every
 * SECONDS until interrupted; a failing round is reported and retried.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void human_bytes(uint64_t n, char out[32])
{
    if (n < 1024)
        snprintf(out, 32, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, 32, "%.1f KiB", (double)n / 1024);
    else
        snprintf(out, 32, "%.1f MiB", (double)n / (1024.0 * 1024));
}

static int bar(void *payload, const dimple_sync_progress *p)
{
    int *drawn = payload;
    char b[32];
    char fill[21];
    uint64_t known = p->batches_known ? p->batches_known : 1;
    size_t w = p->phase == DIMPLE_SYNC_PUSH
                   ? 20
                   : (size_t)(20 * p->batches_done / known);
    if (w > 20)
        w = 20;
    memset(fill, '#', w);
    memset(fill + w, p->phase == DIMPLE_SYNC_PUSH ? '#' : '.', 20 - w);
    fill[20] = '\0';
    human_bytes(p->bytes_done, b);
    if (p->phase == DIMPLE_SYNC_PUSH)
        fprintf(stderr, "\r\033[K[%s] push: %llu batches, %llu changes, %s",
                fill, (unsigned long long)p->batches_done,
                (unsigned long long)p->changes_done, b);
    else
        fprintf(stderr,
                "\r\033[K[%s] pull: %llu/%llu batches, %llu changes, %s", fill,
                (unsigned long long)p->batches_done,
                (unsigned long long)p->batches_known,
                (unsigned long long)p->changes_done, b);
    fflush(stderr);
    *drawn = 1;
    return stop_flag ? 1 : 0;
}

static void summary(const dimple_sync_stats *s)
{
    char up[32], down[32];
    human_bytes(s->bytes_pushed, up);
    human_bytes(s->bytes_pulled, down);
    printf("sync: pushed %llu change%s in %llu batch%s (%s), pulled %llu "
           "change%s in %llu batch%s (%s) from %llu author%s; %llu storage "
           "request%s, %.2f s%s\n",
           (unsigned long long)s->changes_pushed,
           s->changes_pushed == 1 ? "" : "s",
           (unsigned long long)s->batches_pushed,
           s->batches_pushed == 1 ? "" : "es", up,
           (unsigned long long)s->changes_pulled,
           s->changes_pulled == 1 ? "" : "s",
           (unsigned long long)s->batches_pulled,
           s->batches_pulled == 1 ? "" : "es", down,
           (unsigned long long)s->authors, s->authors == 1 ? "" : "s",
           (unsigned long long)s->requests, s->requests == 1 ? "" : "s",
           s->seconds, s->errors ? ", with errors" : "");
    fflush(stdout);
}

static int once(dimple *db, int tty)
{
    dimple_sync_options o = DIMPLE_SYNC_OPTIONS_INIT;
    dimple_sync_stats s = DIMPLE_SYNC_STATS_INIT;
    int drawn = 0;
    if (tty) {
        o.progress = bar;
        o.payload = &drawn;
    }
    int rc = dimple_sync(&s, db, &o);
    if (drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    summary(&s);
    return rc;
}

int cmd_sync(int argc, char **argv)
{
    const cli_command *self = cli_find("sync");
    double watch = 0;
    dimple *db = NULL;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            watch = strtod(argv[++i], &end);
            if (errno || *end || !(watch > 0) || watch > 86400)
                return cli_usage_error(self, "--watch takes SECONDS, a number "
                                             "from 0.1 to 86400");
        } else {
            return cli_usage_error(self, "unexpected argument '%s'", argv[i]);
        }
    }
    if (cli_open(&db))
        return 1;
    int tty = isatty(2);
    if (!watch) {
        rc = once(db, tty);
        if (rc) {
            cli_fail_db(db);
            dimple_close(db);
            return 1;
        }
        dimple_close(db);
        return 0;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!stop_flag) {
        if (once(db, tty))
            cli_fail_db(db); /* reported; the next round retries */
        /* sleep in short steps so an interrupt ends the wait promptly */
        double left = watch;
        while (left > 0 && !stop_flag) {
            double step = left < 0.2 ? left : 0.2;
            struct timespec ts = {(time_t)step,
                                  (long)((step - (double)(time_t)step) * 1e9)};
            nanosleep(&ts, NULL);
            left -= step;
        }
    }
    dimple_close(db);
    return 0;
}
