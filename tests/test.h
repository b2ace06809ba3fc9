/*
 * test.h — a tiny TAP harness (one executable per test file).
 *
 *   TEST(name) { CHECK(x == 1); CHECK_RC(dimple_open(...), DIMPLE_OK); }
 *   int main(void) { RUN(name); return test_done(); }
 *
 * Each CHECK prints "ok N - <expr>" or "not ok N - <expr> (file:line)".
 * test_done() prints the plan and returns the exit status.
 */
#ifndef DIMPLE_TEST_H
#define DIMPLE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_count_, test_failed_;
static const char *test_current_ = "";

static inline int test_check_(int ok, const char *expr, const char *file,
                              int line)
{
    test_count_++;
    if (ok) {
        printf("ok %d - %s: %s\n", test_count_, test_current_, expr);
    } else {
        test_failed_++;
        printf("not ok %d - %s: %s (%s:%d)\n", test_count_, test_current_, expr,
               file, line);
    }
    fflush(stdout);
    return ok;
}

#define TEST(name) static void name(void)
#define RUN(name)                                                              \
    do {                                                                       \
        test_current_ = #name;                                                 \
        printf("# %s\n", #name);                                               \
        name();                                                                \
    } while (0)
#define CHECK(cond) test_check_(!!(cond), #cond, __FILE__, __LINE__)
/* Compare a return code; on mismatch print both and the handle's message
 * when a `dimple *` named by the third argument is given (or NULL). */
#define CHECK_RC(expr, want)                                                   \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (!test_check_(rc_ == (want), #expr " == " #want, __FILE__,          \
                         __LINE__))                                            \
            printf("#   got %d, want %d\n", rc_, (int)(want));                 \
    } while (0)
#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *a_ = (a), *b_ = (b);                                       \
        if (!test_check_(a_ && b_ && strcmp(a_, b_) == 0, #a " == " #b,        \
                         __FILE__, __LINE__))                                  \
            printf("#   got \"%s\", want \"%s\"\n", a_ ? a_ : "(null)",        \
                   b_ ? b_ : "(null)");                                        \
    } while (0)
#define CHECK_CONTAINS(hay, needle)                                            \
    do {                                                                       \
        const char *h_ = (hay), *n_ = (needle);                                \
        if (!test_check_(h_ && strstr(h_, n_) != NULL,                         \
                         #hay " contains \"" #needle "\"", __FILE__,           \
                         __LINE__))                                            \
            printf("#   in: \"%s\"\n", h_ ? h_ : "(null)");                    \
    } while (0)

static inline int test_done(void)
{
    printf("1..%d\n", test_count_);
    if (test_failed_)
        printf("# %d of %d checks failed\n", test_failed_, test_count_);
    return test_failed_ ? 1 : 0;
}

#endif /* DIMPLE_TEST_H */
