/*
 * test_live_threads.c — the thread rules of live queries, for
 * ThreadSanitizer (tests/live/tsan.sh builds it with -fsanitize=thread;
 * the ASan suite runs it too).
 *
 *  - The main thread is an event loop: it polls dimple_live_fd(A) and
 *    calls dimple_live_dispatch(A); its DISPATCH query sees every commit.
 *  - A writer thread has its own handle B to the same file and a SYNC
 *    query whose callback runs on the writer thread after each commit.
 *  - A second app thread writes through handle A itself, taking the app's
 *    lock that also guards the loop's dimple_live_dispatch (one thread at a
 *    time per handle).
 *  - A's watcher thread (internal) notices B's commits.
 */
#include "test.h"

#include <dimple.h>

#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define N_B 100
#define N_A 20

static char path[256];
static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct counter {
    long last; /* the count the last callback saw */
    int calls;
    pthread_t thread; /* where the callbacks ran */
    int wrong_thread;
} counter;

static void on_count(void *payload, dimple_live_query *q,
                     const dimple_result *r)
{
    counter *c = payload;
    (void)q;
    c->calls++;
    if (!pthread_equal(pthread_self(), c->thread))
        c->wrong_thread = 1;
    if (r->rc == DIMPLE_OK && r->n_rows == 1)
        c->last = (long)r->values[0].i;
}

typedef struct writer_arg {
    int failures;
    counter seen;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int opened;
} writer_arg;

static void mark_opened(writer_arg *w)
{
    pthread_mutex_lock(&w->mu);
    w->opened = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *writer_b(void *arg)
{
    writer_arg *w = arg;
    dimple *b = NULL;
    dimple_live_query *q = NULL;
    dimple_options o = {.size = sizeof o, .tables = ""};
    w->seen.thread = pthread_self();
    if (dimple_open_path(&b, path, &o) != DIMPLE_OK ||
        dimple_live_open(&q, b, "SELECT count(*) FROM t WHERE src = 'b'", NULL,
                         0, on_count, &w->seen, NULL) != DIMPLE_OK) {
        printf("# writer B: %s\n", dimple_errmsg(b));
        w->failures++;
        dimple_close(b);
        mark_opened(w);
        return NULL;
    }
    mark_opened(w);
    for (int i = 0; i < N_B; i++) {
        dimple_value v = dimple_value_int(i);
        if (dimple_exec(b, "INSERT INTO t(src, n) VALUES('b', ?1)", &v, 1, NULL,
                        NULL) != DIMPLE_OK) {
            printf("# writer B: %s\n", dimple_errmsg(b));
            w->failures++;
        }
        if (i % 10 == 0)
            usleep(1000);
    }
    dimple_live_close(q);
    dimple_close(b);
    return NULL;
}

static void *writer_a(void *arg)
{
    dimple *a = arg;
    long fails = 0;
    for (int i = 0; i < N_A; i++) {
        pthread_mutex_lock(&app_lock);
        if (dimple_exec(a, "INSERT INTO t(src, n) VALUES('a', 0)", NULL, 0,
                        NULL, NULL) != DIMPLE_OK)
            fails++;
        pthread_mutex_unlock(&app_lock);
        usleep(2000);
    }
    return (void *)fails;
}

TEST(event_loop_thread_with_writers_elsewhere)
{
    dimple *a = NULL;
    dimple_live_query *q = NULL;
    dimple_live_options lo = {sizeof lo, DIMPLE_LIVE_DISPATCH};
    dimple_options o = {.size = sizeof o, .tables = ""};
    counter seen = {0};
    writer_arg wb = {
        0, {0}, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pthread_t tb, ta;
    void *fa = NULL;
    int fd;
    struct timespec t0, now;

    snprintf(path, sizeof path, "/tmp/dimple-live-threads-%d.db",
             (int)getpid());
    unlink(path);
    seen.thread = pthread_self();
    CHECK_RC(dimple_open_path(&a, path, &o), DIMPLE_OK);
    CHECK_RC(dimple_exec(a,
                         "CREATE TABLE t(id INTEGER PRIMARY KEY, src TEXT, n)",
                         NULL, 0, NULL, NULL),
             DIMPLE_OK);
    CHECK_RC(dimple_live_open(&q, a, "SELECT count(*) FROM t", NULL, 0,
                              on_count, &seen, &lo),
             DIMPLE_OK);
    fd = dimple_live_fd(a);
    CHECK(fd >= 0);

    CHECK(pthread_create(&tb, NULL, writer_b, &wb) == 0);
    /* Opening a handle writes dimple's own tables; opening it while
     * another connection writes can fail with "database is locked" (a
     * deferred transaction upgraded to a write: SQLite does not wait for
     * that), so B opens before A's writer starts. */
    pthread_mutex_lock(&wb.mu);
    while (!wb.opened)
        pthread_cond_wait(&wb.cv, &wb.mu);
    pthread_mutex_unlock(&wb.mu);
    CHECK(pthread_create(&ta, NULL, writer_a, a) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the loop: until every row was seen, or 20 s */
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r > 0) {
            pthread_mutex_lock(&app_lock);
            dimple_live_dispatch(a);
            pthread_mutex_unlock(&app_lock);
        }
        if (seen.last == N_A + N_B)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            break;
    }
    pthread_join(tb, NULL);
    pthread_join(ta, &fa);
    CHECK(wb.failures == 0);
    CHECK(fa == NULL);
    CHECK(seen.last == N_A + N_B);
    printf("# loop callbacks: %d, writer callbacks: %d\n", seen.calls,
           wb.seen.calls);
    CHECK(seen.calls >= 2 && !seen.wrong_thread);
    CHECK(wb.seen.calls == N_B + 1 && wb.seen.last == N_B &&
          !wb.seen.wrong_thread);
    dimple_live_close(q);
    dimple_close(a);
    unlink(path);
    {
        char side[300];
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
    }
}

int main(void)
{
    RUN(event_loop_thread_with_writers_elsewhere);
    return test_done();
}
