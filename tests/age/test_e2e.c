/*
 * test_e2e.c — dimple-age loaded by the core (dlopen through
 * DIMPLE_PLUGIN_PATH) from a dimple.conf: objects round-trip through
 * dimple_remote_put/get, nothing is stored in plaintext, the key store
 * lives under keys/, a wrong passphrase names the key file, a plaintext
 * object is refused naming it, and `dimple identity` prints an identity
 * with which the reference `age -d -i` opens a stored object.
 */
#include <dimple.h>

#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARKER "E2E-PLAINTEXT-MARKER-91c2"

static char dir[256];

static void write_conf(const char *path, const char *storage,
                       const char *cipher)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "[dimple]\ndatabase = %s.db\n\n[storage]\n%s\n", path, storage);
    if (cipher)
        fprintf(f, "\n[cipher]\n%s\n", cipher);
    fclose(f);
}

static int key_count;
static int count_keys(void *payload, const char *key)
{
    (void)payload;
    key_count += strncmp(key, "keys/", 5) == 0;
    return 0;
}

TEST(memory_store_roundtrip)
{
    char conf[512], conf_bad[512], conf_plain[512], storage[256];
    dimple *db = NULL, *bad = NULL, *plain = NULL;
    void *out = NULL;
    size_t len = 0;
    snprintf(storage, sizeof storage, "plugin = memory\nname = e2e-%d",
             (int)getpid());
    snprintf(conf, sizeof conf, "%s/good.conf", dir);
    snprintf(conf_bad, sizeof conf_bad, "%s/bad.conf", dir);
    snprintf(conf_plain, sizeof conf_plain, "%s/plain.conf", dir);
    setenv("E2E_AGE_PASS", "e2e passphrase", 1);
    setenv("E2E_AGE_WRONG", "not the passphrase", 1);
    write_conf(conf, storage,
               "plugin = age\npassphrase = ${E2E_AGE_PASS}\nwork_factor = 10");
    write_conf(conf_bad, storage,
               "plugin = age\npassphrase = ${E2E_AGE_WRONG}\nwork_factor = 10");
    write_conf(conf_plain, storage, NULL);

    CHECK_RC(dimple_open(&db, conf), DIMPLE_OK);
    if (!db || dimple_errcode(db) != DIMPLE_OK)
        printf("# %s\n", db ? dimple_errmsg(db) : "(no handle)");
    CHECK_RC(dimple_remote_put(db, "log/a/0001", MARKER, strlen(MARKER)),
             DIMPLE_OK);
    CHECK_RC(dimple_remote_get(&out, &len, db, "log/a/0001", 0), DIMPLE_OK);
    CHECK(out && len == strlen(MARKER) && !memcmp(out, MARKER, len));
    dimple_free(out);
    out = NULL;
    CHECK_RC(dimple_remote_get(&out, &len, db, "log/a/0001", 1), DIMPLE_OK);
    CHECK(out && len > 40 &&
          !memcmp(out, "age-encryption.org/v1\n-> X25519 ", 32));
    CHECK(out && !memmem(out, len, MARKER, strlen(MARKER)));
    dimple_free(out);
    out = NULL;
    key_count = 0;
    CHECK_RC(dimple_remote_list(db, "keys/", count_keys, NULL), DIMPLE_OK);
    CHECK(key_count == 1);
    char *id = NULL;
    CHECK_RC(dimple_cipher_identity(&id, db), DIMPLE_OK);
    CHECK(id && strstr(id, "AGE-SECRET-KEY-1"));
    dimple_free(id);

    /* The same store, a wrong passphrase: refused, naming the key file. */
    CHECK_RC(dimple_open(&bad, conf_bad), DIMPLE_OK);
    CHECK(dimple_remote_get(&out, &len, bad, "log/a/0001", 0) == DIMPLE_EAUTH);
    CHECK(out == NULL);
    CHECK_CONTAINS(dimple_errmsg(bad), "wrong passphrase for keys/");
    CHECK(!strstr(dimple_errmsg(bad), "not the passphrase"));

    /* A plaintext object (written without a cipher) is refused. */
    CHECK_RC(dimple_open(&plain, conf_plain), DIMPLE_OK);
    CHECK_RC(dimple_remote_put(plain, "log/x/0001", "{\"plain\":1}", 11),
             DIMPLE_OK);
    CHECK(dimple_remote_get(&out, &len, db, "log/x/0001", 0) ==
          DIMPLE_ECORRUPT);
    CHECK(out == NULL);
    CHECK_CONTAINS(dimple_errmsg(db), "log/x/0001");
    dimple_close(plain);
    dimple_close(bad);
    dimple_close(db);
}

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(cli_identity_with_age)
{
    const char *cli = getenv("DIMPLE_CLI");
    char conf[512], storage[512], cmd[4096];
    dimple *db = NULL;
    CHECK(cli != NULL);
    if (!cli)
        return;
    snprintf(conf, sizeof conf, "%s/file.conf", dir);
    snprintf(storage, sizeof storage,
             "plugin = file\npath = %s/store\nfsync = off", dir);
    write_conf(conf, storage,
               "plugin = age\npassphrase = ${E2E_AGE_PASS}\nwork_factor = 10");
    CHECK_RC(dimple_open(&db, conf), DIMPLE_OK);
    CHECK_RC(dimple_remote_put(db, "log/a/0001", MARKER, strlen(MARKER)),
             DIMPLE_OK);
    dimple_close(db);
    /* What docs/encryption.md shows. */
    snprintf(cmd, sizeof cmd, "'%s' -c '%s' identity > '%s/id.txt'", cli, conf,
             dir);
    CHECK(sh(cmd) == 0);
    snprintf(cmd, sizeof cmd, "grep -q '^AGE-SECRET-KEY-1' '%s/id.txt'", dir);
    CHECK(sh(cmd) == 0);
    snprintf(cmd, sizeof cmd,
             "age -d -i '%s/id.txt' '%s/store/log/a/0001' | grep -q '%s'", dir,
             dir, MARKER);
    CHECK(sh(cmd) == 0);
}

static uint64_t scrypt_count(dimple *db)
{
    char *id = NULL;
    uint64_t n = UINT64_MAX;
    if (dimple_cipher_identity(&id, db) == 0) {
        const char *p = strstr(id, "# scrypt derivations in this process: ");
        if (p)
            n = strtoull(p + 38, NULL, 10);
        dimple_free(id);
    }
    return n;
}

/* The measure: a sync that pulls 1,000 encrypted batches costs
 * one scrypt derivation (unlocking the key file), not 1,000. */
TEST(sync_pull_1000_batches_one_scrypt)
{
    static const char *const schema[] = {
        "CREATE TABLE t(k TEXT PRIMARY KEY, v)"};
    char conf_a[512], conf_b[512], storage[256];
    const char *cipher =
        "plugin = age\npassphrase = ${E2E_AGE_PASS}\nwork_factor = 10";
    dimple *a = NULL, *b = NULL;
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    snprintf(storage, sizeof storage, "plugin = memory\nname = e2e-sync-%d",
             (int)getpid());
    snprintf(conf_a, sizeof conf_a, "%s/a.conf", dir);
    snprintf(conf_b, sizeof conf_b, "%s/b.conf", dir);
    char cipher_sync[512];
    snprintf(cipher_sync, sizeof cipher_sync,
             "%s\n\n[sync]\nbatch_max_changes = 1", cipher);
    write_conf(conf_a, storage, cipher_sync);
    write_conf(conf_b, storage, cipher);
    CHECK_RC(dimple_open(&a, conf_a), DIMPLE_OK);
    CHECK_RC(dimple_migrate(a, schema, 1), DIMPLE_OK);
    CHECK_RC(
        dimple_exec(a,
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                    "FROM c WHERE x < 1000) INSERT INTO t SELECT 'k' || x, "
                    "'" MARKER "' FROM c",
                    NULL, 0, NULL, NULL),
        DIMPLE_OK);
    st = (dimple_sync_stats)DIMPLE_SYNC_STATS_INIT;
    CHECK_RC(dimple_sync(&st, a, NULL), DIMPLE_OK);
    if (dimple_errcode(a) != DIMPLE_OK)
        printf("# %s\n", dimple_errmsg(a));
    printf("# pushed %llu batches\n", (unsigned long long)st.batches_pushed);
    CHECK(st.batches_pushed == 1000);
    uint64_t before = scrypt_count(a);
    CHECK_RC(dimple_open(&b, conf_b), DIMPLE_OK);
    CHECK_RC(dimple_migrate(b, schema, 1), DIMPLE_OK);
    st = (dimple_sync_stats)DIMPLE_SYNC_STATS_INIT;
    CHECK_RC(dimple_sync(&st, b, NULL), DIMPLE_OK);
    if (dimple_errcode(b) != DIMPLE_OK)
        printf("# %s\n", dimple_errmsg(b));
    uint64_t used = scrypt_count(b) - before;
    printf("# pulled %llu batches with %llu scrypt derivation(s) in %.2f s\n",
           (unsigned long long)st.batches_pulled, (unsigned long long)used,
           st.seconds);
    CHECK(st.batches_pulled == 1000);
    CHECK(used == 1);
    char *json = NULL;
    CHECK_RC(
        dimple_json_query(&json, b, "SELECT count(*) AS n FROM t", NULL, 0),
        DIMPLE_OK);
    CHECK(json && strstr(json, "1000"));
    dimple_free(json);
    dimple_close(b);
    dimple_close(a);
}

int main(void)
{
    struct stat sb;
    /* /dev/shm when there is one: a thousand commits, no disk fsyncs. */
    snprintf(dir, sizeof dir, "%s/dimple-age-e2e.XXXXXX",
             stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0
                 ? "/dev/shm"
                 : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    RUN(memory_store_roundtrip);
    RUN(cli_identity_with_age);
    RUN(sync_pull_1000_batches_one_scrypt);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    sh(cmd);
    return test_done();
}
