/*
 * eventloop.c — DimpleDb inside an epoll event loop (Linux).
 *
 * The loop owns one thread and everything happens on it:
 *  - a live query opened with DIMPLE_LIVE_DISPATCH never calls back from
 *    inside a write; a commit only marks it and makes dimple_live_fd()
 *    readable;
 *  - that fd sits in the epoll set next to the app's own fds; when it is
 *    readable the loop calls dimple_live_dispatch(), which reruns the query and
 *    calls back (only when the result changed);
 *  - a timerfd drives the app's work: each tick writes a row, alternately
 *    through the loop's handle and through a second connection to the same
 *    file (standing in for another process: dimple's watcher notices its
 *    commits through PRAGMA data_version), and every few ticks syncs to a
 *    file store.
 *
 *   eventloop [TICKS [DIR]]
 *
 * TICKS (default 10) ticks of 20 ms, then it waits until the live query has
 * seen every row and exits 0, or exits 1 if it has not within 5 s or a
 * callback came from anywhere but dimple_live_dispatch(). DIR (default: a new
 * folder in $TMPDIR, removed at the end) holds the conf, database and store.
 * Plugins are found as usual (DIMPLE_PLUGIN_PATH for a build tree).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw */
#endif
#include <dimple.h>

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static const char *const migrations[] = {
    "CREATE TABLE event (id TEXT PRIMARY KEY, tick INTEGER NOT NULL, "
    "via TEXT NOT NULL);",
};

typedef struct app {
    bool in_dispatch; /* true while dimple_live_dispatch() runs */
    bool bad;         /* a callback came from elsewhere, or failed */
    long long seen;   /* rows the live query last reported */
    unsigned calls;
} app;

static void on_events(void *payload, dimple_live_query *q,
                      const dimple_result *r)
{
    app *a = payload;
    (void)q;
    a->calls++;
    if (!a->in_dispatch) {
        fprintf(stderr, "eventloop: a DISPATCH callback outside dispatch\n");
        a->bad = true;
    }
    if (r->rc != DIMPLE_OK || r->n_rows != 1 ||
        r->values[0].type != DIMPLE_INTEGER) {
        fprintf(stderr, "eventloop: live query: %s\n", r->errmsg);
        a->bad = true;
        return;
    }
    a->seen = r->values[0].i;
    printf("live: %s\n", r->json);
}

/* Write one row through h (tracked, and synced later like any other). */
static int write_tick(dimple *h, int tick, const char *via)
{
    char id[32];
    dimple_value p[3];
    snprintf(id, sizeof id, "tick-%03d", tick);
    p[0] = dimple_value_text(id);
    p[1] = dimple_value_int(tick);
    p[2] = dimple_value_text(via);
    return dimple_exec(h,
                       "INSERT INTO event(id, tick, via) VALUES (?1, ?2, ?3)",
                       p, 3, NULL, NULL);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int ticks = argc > 1 ? atoi(argv[1]) : 10;
    char tmp[] = "/tmp/dimple-eventloop-XXXXXX";
    const char *dir = argc > 2 ? argv[2] : NULL;
    char conf[4096], dbpath[4096];
    dimple *db = NULL, *other = NULL;
    dimple *failed = NULL; /* the handle whose message explains a failure */
    dimple_live_query *live = NULL;
    dimple_live_options lo = DIMPLE_LIVE_OPTIONS_INIT;
    lo.delivery = DIMPLE_LIVE_DISPATCH;
    app a = {false, false, -1, 0};
    int ep = -1, tfd = -1, nfd, tick = 0, rc = 1;
    double deadline;
    FILE *f;

    if (ticks < 1 || ticks > 1000 || argc > 3) {
        fprintf(stderr, "usage: eventloop [TICKS (1..1000) [DIR]]\n");
        return 2;
    }
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("eventloop: mkdtemp");
        return 1;
    }
    /* A configuration like an app would ship (relative paths are relative
     * to the file's folder). */
    snprintf(conf, sizeof conf, "%s/dimple.conf", dir);
    snprintf(dbpath, sizeof dbpath, "%s/app.db", dir);
    if (!(f = fopen(conf, "w"))) {
        perror(conf);
        goto out_quiet;
    }
    fputs("[dimple]\ndatabase = app.db\n"
          "[storage]\nplugin = file\npath = store\nfsync = off\n",
          f);
    if (fclose(f) != 0) {
        perror(conf);
        goto out_quiet;
    }

    if (dimple_open(&db, conf) < 0 || dimple_migrate(db, migrations, 1) < 0) {
        failed = db;
        goto out;
    }
    /* The second connection: same file, no configuration. */
    if (dimple_open_path(&other, dbpath, NULL) < 0) {
        failed = other;
        goto out;
    }
    if (dimple_live_open(&live, db,
                         "SELECT count(*) AS events, "
                         "max(tick) AS last FROM event",
                         NULL, 0, on_events, &a, &lo) < 0 ||
        (nfd = dimple_live_fd(db)) < 0) {
        failed = db;
        goto out;
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (ep < 0 || tfd < 0) {
        perror("eventloop: epoll/timerfd");
        goto out_quiet;
    }
    struct itimerspec its = {{0, 20 * 1000000}, {0, 20 * 1000000}};
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = nfd};
    if (timerfd_settime(tfd, 0, &its, NULL) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, nfd, &ev) < 0) {
        perror("eventloop: timerfd_settime/epoll_ctl");
        goto out_quiet;
    }
    ev.data.fd = tfd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0) {
        perror("eventloop: epoll_ctl");
        goto out_quiet;
    }

    deadline = now_s() + 5.0 + ticks * 0.05;
    while (a.seen < ticks && now_s() < deadline) {
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, 200);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("eventloop: epoll_wait");
            goto out_quiet;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == nfd) {
                /* Live queries run here, on the loop's thread. */
                a.in_dispatch = true;
                int r = dimple_live_dispatch(db);
                a.in_dispatch = false;
                if (r < 0) {
                    failed = db;
                    goto out;
                }
            } else if (evs[i].data.fd == tfd) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0 ||
                    tick >= ticks)
                    continue;
                tick++;
                /* Odd ticks: our handle (the fd is signalled at once);
                 * even ticks: the other connection (the watcher sees it
                 * within about 50 ms). */
                dimple *h = tick % 2 ? db : other;
                if (write_tick(h, tick, tick % 2 ? "loop" : "other") < 0) {
                    failed = h;
                    goto out;
                }
                if (tick % 5 == 0) {
                    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
                    if (dimple_sync(&st, db, NULL) < 0) {
                        failed = db;
                        goto out;
                    }
                    printf("sync: pushed %llu change(s)\n",
                           (unsigned long long)st.changes_pushed);
                }
                if (tick == ticks) {
                    struct itimerspec off = {{0, 0}, {0, 0}};
                    timerfd_settime(tfd, 0, &off, NULL);
                }
            }
        }
    }
    if (a.bad || a.seen != ticks) {
        fprintf(stderr,
                "eventloop: the live query saw %lld of %d rows (%u calls)\n",
                a.seen, ticks, a.calls);
        goto out_quiet;
    }
    printf("eventloop: %d ticks, %u live callbacks, all from "
           "dimple_live_dispatch()\n",
           ticks, a.calls);
    rc = 0;
    goto out_quiet;
out:
    fprintf(stderr, "eventloop: %s\n", dimple_errmsg(failed));
out_quiet:
    if (tfd >= 0)
        close(tfd);
    if (ep >= 0)
        close(ep);
    dimple_live_close(live);
    dimple_close(other);
    dimple_close(db);
    if (dir == tmp)
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
