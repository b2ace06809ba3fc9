/*
 * test_file.c — the storage contract on dimple-file, then what is particular
 * to it: temp files, the root boundary, links, two processes racing, crashes.
 */
#include "contract.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const dimple_storage_vtable *vt;
static test_host th;
static char base[256]; /* a fresh folder for this run */

static void *open_store(const char *path, const char *fsync_value)
{
    dimple_kv conf[] = {{"path", path, 1},
                        {fsync_value ? "fsync" : NULL, fsync_value, 2},
                        {NULL, NULL, 0}};
    void *self = NULL;
    int rc = vt->create(&self, conf, &th.host);
    if (rc != DIMPLE_OK) {
        printf("#   create(path=%s): %d %s\n", path, rc, th.last_msg);
        return NULL;
    }
    return self;
}

static const char *at(const char *rel)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    return b;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void write_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(content, fp);
        fclose(fp);
    }
}

/* Temp files (".tmp-*") anywhere below dir. */
static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        char sub[2048];
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (!strncmp(de->d_name, ".tmp-", 5))
            n++;
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR)
            n += count_tmp(sub);
    }
    closedir(d);
    return n;
}

typedef struct buf {
    char *p;
    size_t n;
} buf;

static int buf_write(void *ctx, const void *p, size_t n)
{
    buf *b = ctx;
    char *grown = realloc(b->p, b->n + n + 1);
    if (!grown)
        return DIMPLE_ENOMEM;
    b->p = grown;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int get(void *self, const char *key, buf *b)
{
    memset(b, 0, sizeof *b);
    return vt->get(self, key, &(dimple_sink){buf_write, b});
}

typedef struct keys {
    char list[64][128];
    int n;
} keys;

static int keys_cb(void *payload, const char *key)
{
    keys *k = payload;
    if (k->n < 64)
        snprintf(k->list[k->n], sizeof k->list[0], "%s", key);
    k->n++;
    return 0;
}

static bool listed(void *self, const char *key)
{
    keys k = {0};
    vt->list(self, "", NULL, 0, keys_cb, &k);
    for (int i = 0; i < k.n && i < 64; i++)
        if (!strcmp(k.list[i], key))
            return true;
    return false;
}

static int list_count(void *self, const char *prefix)
{
    keys k = {0};
    if (vt->list(self, prefix, NULL, 0, keys_cb, &k) != DIMPLE_OK)
        return -1;
    return k.n;
}

/* ------------------------------------------------------------- tests */

TEST(keys_are_plain_files_without_temp_files)
{
    void *s = open_store(at("plain"), NULL);
    char got[64] = "";
    FILE *fp;
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_RC(vt->put(s, "a/b/c", "hello", 5), DIMPLE_OK);
    fp = fopen(at("plain/a/b/c"), "r");
    CHECK(fp != NULL);
    if (fp) {
        CHECK(fgets(got, sizeof got, fp) != NULL);
        fclose(fp);
    }
    CHECK_STR(got, "hello");
    CHECK(count_tmp(at("plain")) == 0);
    CHECK_RC(vt->put_if_absent(s, "a/b/c", "again", 5), DIMPLE_EEXISTS);
    CHECK_RC(vt->put(s, "a/b/c/d", "x", 1), DIMPLE_ECONFLICT);
    CHECK_CONTAINS(th.last_msg, "a/b/c/d");
    CHECK_RC(vt->put(s, "a/b", "x", 1), DIMPLE_ECONFLICT);
    CHECK(count_tmp(at("plain")) == 0); /* failures leave none either */
    /* Removing the last object prunes its empty folders, not the root. */
    CHECK_RC(vt->remove(s, "a/b/c"), DIMPLE_OK);
    CHECK(!exists(at("plain/a")));
    CHECK(exists(at("plain")));
    vt->destroy(s);
}

TEST(temp_and_foreign_files_are_not_keys)
{
    void *s = open_store(at("foreign"), "off");
    buf b;
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_RC(vt->put(s, "k", "old", 3), DIMPLE_OK);
    /* What a crash leaves: a partial temp file next to the object. */
    write_file(at("foreign/.tmp-0123456789abcdef"), "partial ne");
    write_file(at("foreign/back\\slash"), "x");
    CHECK(list_count(s, "") == 1);
    CHECK(listed(s, "k"));
    CHECK_RC(get(s, "k", &b), DIMPLE_OK);
    CHECK_STR(b.p, "old");
    free(b.p);
    /* The reserved names cannot be used as keys either. */
    CHECK_RC(vt->put(s, ".tmp-0123456789abcdef", "x", 1), DIMPLE_EINVAL);
    CHECK_RC(vt->get(s, "d/.tmp-x", &(dimple_sink){buf_write, &b}),
             DIMPLE_EINVAL);
    CHECK_CONTAINS(th.last_msg, "reserved");
    vt->destroy(s);
}

TEST(keys_cannot_leave_the_root)
{
    static const char *const bad[] = {"../escaped",   "a/../../escaped",
                                      "/tmp/escaped", "a//../escaped",
                                      "..",           NULL};
    void *s = open_store(at("jail/root"), "off");
    CHECK(s != NULL);
    if (!s)
        return;
    for (int i = 0; bad[i]; i++) {
        test_host_clear(&th);
        CHECK_RC(vt->put(s, bad[i], "x", 1), DIMPLE_EINVAL);
        CHECK_RC(vt->put_if_absent(s, bad[i], "x", 1), DIMPLE_EINVAL);
        CHECK_RC(vt->remove(s, bad[i]), DIMPLE_EINVAL);
    }
    CHECK(!exists(at("jail/escaped")));
    CHECK(!exists(at("escaped")));
    CHECK(!exists("/tmp/escaped"));
    CHECK(list_count(s, "") == 0);
    vt->destroy(s);
}

TEST(symlinks_are_not_followed)
{
    void *s = open_store(at("links/root"), "off");
    buf b = {0};
    int rc;
    CHECK(s != NULL);
    if (!s)
        return;
    mkdir(at("links/outside"), 0777);
    write_file(at("links/outside/secret"), "secret");
    CHECK(symlink(at("links/outside"), at("links/root/dir")) == 0);
    CHECK(symlink(at("links/outside/secret"), at("links/root/file")) == 0);

    test_host_clear(&th);
    rc = get(s, "dir/secret", &b);
    CHECK(rc != DIMPLE_OK && b.n == 0);
    CHECK_CONTAINS(th.last_msg, "symbolic link");
    free(b.p);
    rc = get(s, "file", &b);
    CHECK(rc != DIMPLE_OK && b.n == 0);
    free(b.p);
    CHECK(vt->put(s, "dir/new", "x", 1) != DIMPLE_OK);
    CHECK(!exists(at("links/outside/new")));
    CHECK(vt->remove(s, "dir/secret") != DIMPLE_OK);
    CHECK(exists(at("links/outside/secret")));
    CHECK(list_count(s, "") == 0); /* links are not listed */
    CHECK(vt->list(s, "dir/", NULL, 0, keys_cb, &(keys){0}) != DIMPLE_OK);
    /* put over a link replaces the link, never writes through it. */
    CHECK_RC(vt->put(s, "file", "mine", 4), DIMPLE_OK);
    CHECK_RC(get(s, "file", &b), DIMPLE_OK);
    CHECK_STR(b.p, "mine");
    free(b.p);
    {
        FILE *fp = fopen(at("links/outside/secret"), "r");
        char got[64] = "";
        if (fp) {
            if (!fgets(got, sizeof got, fp))
                got[0] = '\0';
            fclose(fp);
        }
        CHECK_STR(got, "secret");
    }
    vt->destroy(s);
}

TEST(a_fifo_does_not_hang_get)
{
    void *s = open_store(at("fifo"), "off");
    buf b = {0};
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(mkfifo(at("fifo/pipe"), 0666) == 0);
    CHECK_RC(get(s, "pipe", &b), DIMPLE_EIO);
    CHECK_CONTAINS(th.last_msg, "not a regular file");
    free(b.p);
    CHECK(list_count(s, "") == 0);
    vt->destroy(s);
}

TEST(errors_name_the_key_and_the_os_error)
{
    void *s = open_store(at("errors"), "off");
    char key[400];
    CHECK(s != NULL);
    if (!s)
        return;
    memset(key, 'n', 300);
    memcpy(key + 300, "/x", 3);
    test_host_clear(&th);
    CHECK(vt->put(s, key, "x", 1) != DIMPLE_OK);
    CHECK_CONTAINS(th.last_msg, "File name too long");
    CHECK_CONTAINS(th.last_msg, "nnnnnnnnnn/x");
    CHECK_CONTAINS(th.last_msg, at("errors"));
    test_host_clear(&th);
    CHECK_RC(get(s, "no/such", &(buf){0}), DIMPLE_ENOTFOUND);
    CHECK_CONTAINS(th.last_msg, "'no/such'");
    vt->destroy(s);
}

TEST(configuration_errors)
{
    dimple_kv no_path[] = {{"fsync", "on", 3}, {NULL, NULL, 0}};
    dimple_kv bad_fsync[] = {
        {"path", at("conf"), 3}, {"fsync", "maybe", 4}, {NULL, NULL, 0}};
    dimple_kv under_file[] = {{"path", at("conf-file/sub"), 5},
                              {NULL, NULL, 0}};
    void *s = NULL;

    test_host_clear(&th);
    CHECK_RC(vt->create(&s, no_path, &th.host), DIMPLE_ECONFIG);
    CHECK_CONTAINS(th.last_msg, "path is required");
    test_host_clear(&th);
    CHECK_RC(vt->create(&s, bad_fsync, &th.host), DIMPLE_ECONFIG);
    CHECK_CONTAINS(th.last_msg, "test.conf:4");
    CHECK_CONTAINS(th.last_msg, "fsync");
    CHECK_CONTAINS(th.last_msg, "on/off, true/false, yes/no, 1/0");
    write_file(at("conf-file"), "a file, not a folder");
    test_host_clear(&th);
    CHECK_RC(vt->create(&s, under_file, &th.host), DIMPLE_EIO);
    CHECK_CONTAINS(th.last_msg, at("conf-file/sub"));
    CHECK_CONTAINS(th.last_msg, "Not a directory");
    CHECK(s == NULL);
    /* every spelling docs/storage.md promises, in any case */
    static const char *const spellings[] = {"on",  "off", "true", "false",
                                            "yes", "no",  "1",    "0",
                                            "On",  "NO",  "True", NULL};
    for (int i = 0; spellings[i]; i++) {
        dimple_kv ok_fsync[] = {{"path", at("conf-ok"), 3},
                                {"fsync", spellings[i], 4},
                                {NULL, NULL, 0}};
        test_host_clear(&th);
        CHECK_RC(vt->create(&s, ok_fsync, &th.host), DIMPLE_OK);
        if (s)
            vt->destroy(s);
        s = NULL;
    }
}

/* Two processes race put_if_absent on one key: exactly one wins. */
TEST(put_if_absent_race_between_processes)
{
    enum { ROUNDS = 30 };
    int one_winner = 0, content_ok = 0;
    void *s = open_store(at("race"), "on");
    CHECK(s != NULL);
    if (!s)
        return;
    for (int r = 0; r < ROUNDS; r++) {
        int go[2], wins = 0, errs = 0, winner = -1;
        pid_t pid[2];
        char key[32];
        buf b;
        snprintf(key, sizeof key, "race/%d", r);
        if (pipe(go) != 0)
            break;
        for (int c = 0; c < 2; c++) {
            pid[c] = fork();
            if (pid[c] == 0) {
                char ch, val[32];
                void *mine;
                close(go[1]);
                mine = open_store(at("race"), "on");
                if (read(go[0], &ch, 1) != 0 || !mine)
                    _exit(3); /* the parent closes: everyone starts */
                snprintf(val, sizeof val, "child %d", c);
                int rc = vt->put_if_absent(mine, key, val, strlen(val));
                vt->destroy(mine);
                _exit(rc == DIMPLE_OK ? 0 : rc == DIMPLE_EEXISTS ? 1 : 2);
            }
        }
        close(go[0]);
        usleep(2000);
        close(go[1]);
        for (int c = 0; c < 2; c++) {
            int st = 0;
            waitpid(pid[c], &st, 0);
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                wins++;
                winner = c;
            } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 1) {
                errs++;
            }
        }
        if (wins == 1 && errs == 0)
            one_winner++;
        if (get(s, key, &b) == DIMPLE_OK && winner >= 0) {
            char want[32];
            snprintf(want, sizeof want, "child %d", winner);
            content_ok += b.p && !strcmp(b.p, want);
        }
        free(b.p);
    }
    CHECK(one_winner == ROUNDS);
    CHECK(content_ok == ROUNDS);
    CHECK(count_tmp(at("race")) == 0);
    vt->destroy(s);
}

/* remove prunes empty folders while another process puts into them: the
 * put walks again and never fails. */
TEST(put_races_with_folder_pruning)
{
    enum { LOOPS = 400 };
    void *s = open_store(at("prune"), "off");
    int failures = 0, st = 0;
    pid_t pid;
    CHECK(s != NULL);
    if (!s)
        return;
    pid = fork();
    if (pid == 0) {
        void *mine = open_store(at("prune"), "off");
        int bad = !mine;
        for (int i = 0; mine && i < LOOPS; i++)
            bad += vt->put(mine, "p/q/child", "c", 1) != DIMPLE_OK ||
                   vt->remove(mine, "p/q/child") != DIMPLE_OK;
        if (mine)
            vt->destroy(mine);
        _exit(bad ? 1 : 0);
    }
    for (int i = 0; i < LOOPS; i++) {
        if (vt->put(s, "p/q/parent", "p", 1) != DIMPLE_OK && failures++ == 0)
            printf("#   put: %s\n", th.last_msg);
        failures += vt->remove(s, "p/q/parent") != DIMPLE_OK;
    }
    waitpid(pid, &st, 0);
    CHECK(failures == 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(!exists(at("prune/p"))); /* all pruned at the end */
    vt->destroy(s);
}

/* A writer killed mid-put never leaves a partial object behind. */
TEST(a_killed_put_leaves_old_or_new_object)
{
    enum { ROUNDS = 6, SIZE = 4 * 1024 * 1024 };
    int whole = 0, mid_write = 0, listed_ok = 0;
    void *s = open_store(at("crash"), "on");
    unsigned char *data = malloc(SIZE);
    CHECK(s != NULL && data != NULL);
    if (!s || !data)
        goto out;
    srand((unsigned)time(NULL));
    for (int r = 0; r < ROUNDS; r++) {
        pid_t pid = fork();
        buf b = {0};
        if (pid == 0) {
            /* Rewrite the object forever, each version one byte value:
             * a torn object would mix values or be short. */
            void *mine = open_store(at("crash"), "on");
            if (!mine)
                _exit(3);
            for (unsigned v = 1;; v++) {
                memset(data, (int)(v & 0xff), SIZE);
                if (vt->put(mine, "crash/obj", data, SIZE) != DIMPLE_OK)
                    _exit(2);
            }
        }
        usleep((useconds_t)(20000 + rand() % 80000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        mid_write += count_tmp(at("crash")) > 0;

        int rc = get(s, "crash/obj", &b);
        if (rc == DIMPLE_ENOTFOUND) {
            whole++; /* killed before the first put finished */
        } else if (rc == DIMPLE_OK && b.n == SIZE) {
            bool same = true;
            for (size_t i = 1; i < b.n && same; i++)
                same = b.p[i] == b.p[0];
            whole += same;
        }
        free(b.p);
        keys k = {0};
        vt->list(s, "", NULL, 0, keys_cb, &k);
        listed_ok += k.n == 0 || (k.n == 1 && !strcmp(k.list[0], "crash/obj"));
    }
    CHECK(whole == ROUNDS);
    CHECK(listed_ok == ROUNDS);
    /* The kills did land mid-put (else this test proved nothing). */
    CHECK(mid_write > 0);
    printf("# %d of %d kills left a temp file behind\n", mid_write, ROUNDS);
out:
    if (s)
        vt->destroy(s);
    free(data);
}

int main(void)
{
    char store[300];
    void *dl = NULL;
    const char *tmp = getenv("TMPDIR");
    const char *many = getenv("DIMPLE_CONTRACT_MANY");
    dimple_kv conf[] = {
        {"path", store, 1}, {"fsync", "on", 2}, {NULL, NULL, 0}};

    snprintf(base, sizeof base, "%s/dimple-test-file.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        printf("Bail out! mkdtemp %s: %s\n", base, strerror(errno));
        return 1;
    }
    printf("# test folder %s\n", base);

    /* With fsync off (the setting tests and benchmarks use) the full
     * suite; with fsync on too, its long listing shorter unless asked:
     * thousands of fsyncs take a minute on a busy disk. */
    snprintf(store, sizeof store, "%s/contract-nofsync", base);
    conf[1].value = "off";
    storage_contract_run("file", conf);
    snprintf(store, sizeof store, "%s/contract-fsync", base);
    conf[1].value = "on";
    if (!many || !*many)
        setenv("DIMPLE_CONTRACT_MANY", "300", 1);
    storage_contract_run("file", conf);
    if (!many || !*many)
        unsetenv("DIMPLE_CONTRACT_MANY");

    vt = test_plugin_load("file", &dl)->vt.storage;
    test_host_init(&th, "storage");
    RUN(keys_are_plain_files_without_temp_files);
    RUN(temp_and_foreign_files_are_not_keys);
    RUN(keys_cannot_leave_the_root);
    RUN(symlinks_are_not_followed);
    RUN(a_fifo_does_not_hang_get);
    RUN(errors_name_the_key_and_the_os_error);
    RUN(configuration_errors);
    RUN(put_if_absent_race_between_processes);
    RUN(put_races_with_folder_pruning);
    RUN(a_killed_put_leaves_old_or_new_object);
    dlclose(dl);
    {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
        if (!test_failed_ && system(cmd) != 0)
            printf("# could not remove %s\n", base);
    }
    return test_done();
}
