/*
 * test_history_oom.c — the history calls free what they allocated when an
 * allocation fails. Linked with --wrap=realloc,--wrap=free (meson.build):
 * a realloc of at least `fail_from` bytes fails, and the test watches
 * whether the block it was asked to grow is freed.
 */
#include "util.h"

#include <stdbool.h>

void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static size_t fail_from; /* 0: every realloc succeeds */
static void *watched;    /* the block a failed realloc left to its caller */
static bool watched_freed;

void *__wrap_realloc(void *p, size_t n)
{
    if (fail_from && n >= fail_from) {
        watched = p;
        watched_freed = false;
        return NULL;
    }
    return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
    if (p && p == watched)
        watched_freed = true;
    __real_free(p);
}

static int count_entry(void *payload, const dimple_history_entry *e)
{
    (void)e;
    (*(int *)payload)++;
    return 0;
}

/* A composite key whose second value does not fit the buffer the first
 * one started: the growth fails, and the first block must not leak. */
TEST(history_key_out_of_memory_frees_the_key)
{
    dimple *db = tu_open("oom.db", "*");
    if (!CHECK(db != NULL))
        return;
    CHECK_RC(tu_exec(db, "CREATE TABLE p(x TEXT, y TEXT, PRIMARY KEY(x, y))"),
             DIMPLE_OK);
    CHECK_RC(tu_exec(db, "INSERT INTO p VALUES ('a', 'b')"), DIMPLE_OK);
    enum { BIG = 1 << 20 };
    char *big = malloc(BIG);
    if (!CHECK(big != NULL)) {
        dimple_close(db);
        return;
    }
    memset(big, 'y', BIG - 1);
    big[BIG - 1] = 0;
    dimple_value key[2] = {dimple_value_text("a"), dimple_value_text(big)};
    dimple_history_query q = DIMPLE_HISTORY_QUERY_INIT;
    q.table = "p";
    q.key = key;
    q.n_key = 2;
    int n = 0;
    watched = NULL;
    fail_from = BIG / 2;
    int rc = dimple_history_list(db, count_entry, &n, &q);
    fail_from = 0;
    CHECK_RC(rc, DIMPLE_ENOMEM);
    CHECK(watched != NULL); /* the first value had its block */
    CHECK(watched_freed);
    watched = NULL;
    /* and the call works once memory is back */
    CHECK_RC(dimple_history_list(db, count_entry, &n, &q), DIMPLE_OK);
    CHECK(n == 0);
    free(big);
    dimple_close(db);
}

int main(void)
{
    tu_init();
    RUN(history_key_out_of_memory_frees_the_key);
    tu_cleanup();
    return test_done();
}
