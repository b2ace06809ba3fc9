/*
 * test_crash.c — the crash proof: three replicas share a file store; in
 * each trial every replica makes random edits, then a forked child opens
 * one replica and syncs it and is SIGKILLed at a random point: at the N-th
 * storage call (before or after the call: the faulty plugin's kill_at), or
 * after a random delay (anywhere, SQLite commits included). Afterwards the
 * replicas sync normally and must converge: identical tables and
 * histories, every change of the union present exactly once (nothing lost,
 * nothing applied twice), and PRAGMA integrity_check ok.
 * SYNC_CRASH_TRIALS=N (default 60).
 */
#include "sync_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define NR 3

static char *dir, *store;
static uint64_t rng = 0x1234567;

static unsigned pick(unsigned n)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (unsigned)((rng * 0x2545F4914F6CDD1DULL) % n);
}

static dimple *open_replica(int i, long kill_at, int kill_after)
{
    char name[16], st[1024];
    snprintf(name, sizeof name, "r%d", i);
    snprintf(st, sizeof st,
             "plugin = faulty\ninner = file\npath = %s\nfsync = off\n"
             "kill_at = %ld\nkill_after = %d",
             store, kill_at, kill_after);
    return su_open(dir, name, st, "[sync]\nbatch_max_changes = %u\n",
                   1 + (unsigned)i * 2);
}

static int edit(dimple *db, int trial, int n)
{
    for (int e = 0; e < n; e++) {
        char sql[256];
        unsigned k = pick(8);
        switch (pick(4)) {
        case 0:
            snprintf(sql, sizeof sql,
                     "INSERT INTO t VALUES('k%u', %d, %d.5, 'c') ON CONFLICT"
                     " DO UPDATE SET a = excluded.a",
                     k, trial, e);
            break;
        case 1:
            snprintf(sql, sizeof sql, "UPDATE t SET b = %d WHERE k = 'k%u'",
                     trial * 100 + e, k);
            break;
        case 2:
            snprintf(sql, sizeof sql, "DELETE FROM t WHERE k = 'k%u'", k);
            break;
        default:
            snprintf(sql, sizeof sql,
                     "INSERT OR IGNORE INTO p VALUES(%u, 'y', x'%02x')", k % 3,
                     (unsigned)e);
        }
        if (su_exec(db, sql) != DIMPLE_OK)
            return -1;
    }
    return 0;
}

static int count_cb(void *payload, const dimple_change *c)
{
    (void)c;
    (*(size_t *)payload)++;
    return 0;
}

int main(void)
{
    int trials = 60;
    const char *e = getenv("SYNC_CRASH_TRIALS");
    if (e && atoi(e) > 0)
        trials = atoi(e);
    dir = su_tmpdir("crash");
    if (!dir)
        return 1;
    char sp[600];
    snprintf(sp, sizeof sp, "%s/store", dir);
    store = sp;

    dimple *r[NR];
    for (int i = 0; i < NR; i++)
        r[i] = open_replica(i, 0, 0);
    test_current_ = "crash";
    CHECK(r[0] && r[1] && r[2]);
    if (!r[0] || !r[1] || !r[2])
        return test_done();

    int killed = 0, finished = 0;
    for (int trial = 0; trial < trials; trial++) {
        for (int i = 0; i < NR; i++)
            edit(r[i], trial, 1 + (int)pick(6));
        int victim = (int)pick(NR);
        long kill_at = 0;
        int kill_after = 0, by_time = pick(3) == 0;
        if (!by_time) {
            kill_at = 1 + (long)pick(8);
            kill_after = (int)pick(2);
        }
        dimple_close(r[victim]);
        r[victim] = NULL;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            dimple *c = open_replica(victim, kill_at, kill_after);
            if (c) {
                dimple_sync(NULL, c, NULL);
                dimple_close(c);
            }
            _exit(0);
        }
        if (by_time) {
            struct timespec ts = {0, (long)pick(15) * 1000000L};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            killed++;
        else
            finished++;

        /* recovery: the victim reopens, everyone syncs normally */
        r[victim] = open_replica(victim, 0, 0);
        if (!CHECK(r[victim] != NULL))
            break;
        int sync_ok = 1;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < NR; i++)
                if (dimple_sync(NULL, r[i], NULL) != DIMPLE_OK) {
                    printf("# trial %d: sync %d: %s\n", trial, i,
                           dimple_errmsg(r[i]));
                    sync_ok = 0;
                }
        size_t union_n = 0, h0n = 0;
        for (int i = 0; i < NR; i++)
            dimple_track__each_local(r[i], NULL, count_cb, &union_n);
        char *d0 = su_dump(r[0]), *h0 = su_history(r[0], &h0n);
        int same = d0 && h0;
        for (int i = 1; i < NR; i++) {
            char *d = su_dump(r[i]), *h = su_history(r[i], NULL);
            if (!(d && h && strcmp(d, d0) == 0 && strcmp(h, h0) == 0)) {
                same = 0;
                printf("# r0: %s\n# r%d: %s\n", d0, i, d ? d : "?");
            }
            free(d);
            free(h);
        }
        int integrity = 1;
        for (int i = 0; i < NR; i++)
            integrity &= su_integrity_ok(r[i]);
        char what[160];
        snprintf(what, sizeof what,
                 "trial %d (kill %s %ld%s): sync ok, identical, %zu changes "
                 "once each, integrity ok",
                 trial, by_time ? "after a delay" : "at call", kill_at,
                 by_time      ? ""
                 : kill_after ? " after"
                              : " before",
                 union_n);
        if (!test_check_(sync_ok && same && h0n == union_n && integrity, what,
                         __FILE__, __LINE__))
            printf("#   sync %d, same %d, history %zu, union %zu, "
                   "integrity %d\n",
                   sync_ok, same, h0n, union_n, integrity);
        free(d0);
        free(h0);
    }
    printf("# %d children killed, %d finished before their kill point\n",
           killed, finished);
    test_current_ = "crash";
    CHECK(killed >= trials / 2);
    for (int i = 0; i < NR; i++)
        dimple_close(r[i]);
    su_rmrf(dir);
    free(dir);
    return test_done();
}
