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

static void write_conf(const char *path, const char *storage, const char *cipher)
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
    snprintf(storage, sizeof storage, "plugin = memory\nname = e2e-%d", (int)getpid());
    snprintf(conf, sizeof conf, "%s/good.conf", dir);
    snprintf(conf_bad, sizeof conf_bad, "%s/bad.conf", dir);
    snprintf(conf_plain, sizeof conf_plain, "%s/plain.conf", dir);
    setenv("E2E_AGE_PASS", "e2e passphrase", 1);
    setenv("E2E_AGE_WRONG", "not the passphrase", 1);
    write_conf(conf, storage, "plugin = age\npassphrase = ${E2E_AGE_PASS}\nwork_factor = 10");
    write_conf(conf_bad, storage, "plugin = age\npassphrase = ${E2E_AGE_WRONG}\nwork_factor = 10");
    write_conf(conf_plain, storage, NULL);

    CHECK_RC(dimple_open(&db, conf), DIMPLE_OK);
    if (!db || dimple_errmsg(db)[0])
        printf("# %s\n", db ? dimple_errmsg(db) : "(no handle)");
    CHECK_RC(dimple_remote_put(db, "log/a/0001", MARKER, strlen(MARKER)), DIMPLE_OK);
    CHECK_RC(dimple_remote_get(db, "log/a/0001", 0, &out, &len), DIMPLE_OK);
    CHECK(out && len == strlen(MARKER) && !memcmp(out, MARKER, len));
    dimple_free(out);
    out = NULL;
    CHECK_RC(dimple_remote_get(db, "log/a/0001", 1, &out, &len), DIMPLE_OK);
    CHECK(out && len > 40 && !memcmp(out, "age-encryption.org/v1\n-> X25519 ", 32));
    CHECK(out && !memmem(out, len, MARKER, strlen(MARKER)));
    dimple_free(out);
    out = NULL;
    key_count = 0;
    CHECK_RC(dimple_remote_list(db, "keys/", count_keys, NULL), DIMPLE_OK);
    CHECK(key_count == 1);
    char *id = NULL;
    CHECK_RC(dimple_cipher_identity(db, &id), DIMPLE_OK);
    CHECK(id && strstr(id, "AGE-SECRET-KEY-1"));
    dimple_free(id);

    /* The same store, a wrong passphrase: refused, naming the key file. */
    CHECK_RC(dimple_open(&bad, conf_bad), DIMPLE_OK);
    CHECK(dimple_remote_get(bad, "log/a/0001", 0, &out, &len) == DIMPLE_EAUTH);
    CHECK(out == NULL);
    CHECK_CONTAINS(dimple_errmsg(bad), "wrong passphrase for keys/");
    CHECK(!strstr(dimple_errmsg(bad), "not the passphrase"));

    /* A plaintext object (written without a cipher) is refused. */
    CHECK_RC(dimple_open(&plain, conf_plain), DIMPLE_OK);
    CHECK_RC(dimple_remote_put(plain, "log/x/0001", "{\"plain\":1}", 11), DIMPLE_OK);
    CHECK(dimple_remote_get(db, "log/x/0001", 0, &out, &len) == DIMPLE_ECORRUPT);
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
    snprintf(storage, sizeof storage, "plugin = file\npath = %s/store\nfsync = off", dir);
    write_conf(conf, storage, "plugin = age\npassphrase = ${E2E_AGE_PASS}\nwork_factor = 10");
    CHECK_RC(dimple_open(&db, conf), DIMPLE_OK);
    CHECK_RC(dimple_remote_put(db, "log/a/0001", MARKER, strlen(MARKER)), DIMPLE_OK);
    dimple_close(db);
    /* What docs/encryption.md shows. */
    snprintf(cmd, sizeof cmd, "'%s' -c '%s' identity > '%s/id.txt'", cli, conf, dir);
    CHECK(sh(cmd) == 0);
    snprintf(cmd, sizeof cmd, "grep -q '^AGE-SECRET-KEY-1' '%s/id.txt'", dir);
    CHECK(sh(cmd) == 0);
    snprintf(cmd, sizeof cmd,
             "age -d -i '%s/id.txt' '%s/store/log/a/0001' | grep -q '%s'", dir,
             dir, MARKER);
    CHECK(sh(cmd) == 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/dimple-age-e2e.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(memory_store_roundtrip);
    RUN(cli_identity_with_age);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    sh(cmd);
    return test_done();
}
