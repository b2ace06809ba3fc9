/*
 * test_s3_interop.c — dimple-s3 and Debian's AWS CLI (/usr/bin/aws, v2) on
 * the same radosgw: what the plugin writes, the CLI lists and reads; what
 * the CLI writes (a multipart upload too), the plugin lists and reads.
 * /usr/bin/aws by full path: a pyenv shim may put awscli v1 first on PATH.
 */
#include "s3_test.h"

#include <dlfcn.h>

static const dimple_storage_vtable *vt;
static s3env env;
static cap_host H;
static char prefix[128];
static void *S;

#define AWS "/usr/bin/aws"

/* Run a shell command, capture stdout (stderr goes to the TAP log). */
static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    char *out = NULL;
    size_t n = 0, cap = 0;
    char buf[4096];
    size_t got;
    if (!p) {
        *status = -1;
        return strdup("");
    }
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (n + got + 1 > cap) {
            cap = (n + got + 1) * 2;
            out = realloc(out, cap);
            if (!out)
                abort();
        }
        memcpy(out + n, buf, got);
        n += got;
    }
    *status = pclose(p);
    if (!out)
        out = strdup("");
    else
        out[n] = '\0';
    return out;
}

static int get_buf(const char *key, membuf *b)
{
    memset(b, 0, sizeof *b);
    return vt->get(S, key, &(dimple_sink){membuf_write, b});
}

static const char *const plugin_keys[] = {"p/a b+c&d=é.txt", "p/dir/x",
                                          "p/日本/y z", "p/100%", NULL};

TEST(cli_reads_plugin)
{
    char cmd[2048];
    char *out;
    int st;
    for (int i = 0; plugin_keys[i]; i++)
        CHECK_RC(
            vt->put(S, plugin_keys[i], plugin_keys[i], strlen(plugin_keys[i])),
            DIMPLE_OK);
    snprintf(cmd, sizeof cmd,
             AWS " --endpoint-url '%s' s3api list-objects-v2 --bucket '%s' "
                 "--prefix '%s/p/' --query 'Contents[].Key' --output text",
             env.endpoint, env.bucket, prefix);
    out = run(cmd, &st);
    CHECK(st == 0);
    printf("# aws lists: %s", out);
    for (int i = 0; plugin_keys[i]; i++) {
        char full[512];
        snprintf(full, sizeof full, "%s/%s", prefix, plugin_keys[i]);
        test_check_(strstr(out, full) != NULL, "the CLI lists the key",
                    __FILE__, __LINE__);
    }
    free(out);

    snprintf(cmd, sizeof cmd,
             AWS " --endpoint-url '%s' s3 cp 's3://%s/%s/%s' -", env.endpoint,
             env.bucket, prefix, plugin_keys[0]);
    out = run(cmd, &st);
    CHECK(st == 0);
    CHECK_STR(out, plugin_keys[0]);
    free(out);
}

typedef struct names {
    char v[16][256];
    int n;
} names;

static int names_cb(void *payload, const char *key)
{
    names *nm = payload;
    if (nm->n < 16)
        snprintf(nm->v[nm->n], sizeof nm->v[0], "%s", key);
    nm->n++;
    return 0;
}

TEST(plugin_reads_cli)
{
    const char *bdir = getenv("DIMPLE_TEST_BUILDDIR");
    char file[1024], cmd[16384];
    char *out;
    FILE *f;
    int st, same;
    size_t big = 9u * 1024 * 1024; /* above the CLI's 8 MiB multipart cut */
    membuf b;
    names nm = {0};

    snprintf(file, sizeof file, "%s/s3-interop-%d.bin", bdir ? bdir : "/tmp",
             (int)getpid());
    f = fopen(file, "wb");
    if (!CHECK(f != NULL))
        return;
    for (size_t i = 0; i < big; i++)
        fputc((int)((i * 131) % 251), f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             AWS " --endpoint-url '%s' s3 cp --no-progress '%s' "
                 "'s3://%s/%s/cli/big multipart+1.bin' >/dev/null && " AWS
                 " --endpoint-url '%s' s3 cp --no-progress '%s' "
                 "'s3://%s/%s/cli/d/ü & =.txt' >/dev/null",
             env.endpoint, file, env.bucket, prefix, env.endpoint, file,
             env.bucket, prefix);
    out = run(cmd, &st);
    CHECK(st == 0);
    free(out);

    CHECK_RC(vt->list(S, "cli/", NULL, 0, names_cb, &nm), DIMPLE_OK);
    CHECK(nm.n == 2);
    CHECK_STR(nm.v[0], "cli/big multipart+1.bin");
    CHECK_STR(nm.v[1], "cli/d/ü & =.txt");
    memset(&nm, 0, sizeof nm);
    CHECK_RC(vt->list(S, "cli/", NULL, DIMPLE_LIST_SHALLOW, names_cb, &nm),
             DIMPLE_OK);
    CHECK(nm.n == 2 && strcmp(nm.v[1], "cli/d/") == 0);

    /* a multipart object (ETag "…-2") reads back whole */
    snprintf(cmd, sizeof cmd,
             AWS " --endpoint-url '%s' s3api head-object --bucket '%s' "
                 "--key '%s/cli/big multipart+1.bin' --query ETag "
                 "--output text",
             env.endpoint, env.bucket, prefix);
    out = run(cmd, &st);
    CHECK(st == 0);
    CHECK_CONTAINS(out, "-"); /* the CLI really did a multipart upload */
    free(out);
    CHECK_RC(get_buf("cli/big multipart+1.bin", &b), DIMPLE_OK);
    same = b.n == big;
    for (size_t i = 0; same && i < big; i++)
        same = (unsigned char)b.p[i] == (unsigned char)((i * 131) % 251);
    CHECK(same);
    free(b.p);
    CHECK_RC(get_buf("cli/d/ü & =.txt", &b), DIMPLE_OK);
    CHECK(b.n == big);
    free(b.p);
    remove(file);

    /* the CLI removes everything; the plugin then sees nothing */
    snprintf(cmd, sizeof cmd,
             AWS " --endpoint-url '%s' s3 rm --recursive 's3://%s/%s/' "
                 ">/dev/null",
             env.endpoint, env.bucket, prefix);
    out = run(cmd, &st);
    CHECK(st == 0);
    free(out);
    memset(&nm, 0, sizeof nm);
    CHECK_RC(vt->list(S, "", NULL, 0, names_cb, &nm), DIMPLE_OK);
    CHECK(nm.n == 0);
}

int main(void)
{
    void *dl = NULL;
    const dimple_plugin *pl;
    s3conf c;
    env = s3env_get();
    if (!CHECK(env.ok))
        return test_done();
    setenv("AWS_ACCESS_KEY_ID", env.access_key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", env.secret_key, 1);
    setenv("AWS_DEFAULT_REGION", env.region, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_PAGER", "", 1);
    setenv("PYTHONIOENCODING", "utf-8", 1);
    setenv("LC_ALL", "C.UTF-8", 1);
    cap_init(&H);
    pl = test_plugin_load("s3", &dl);
    vt = pl->vt.storage;
    s3_unique(prefix, sizeof prefix, "interop");
    s3conf_init(&c, &env, prefix);
    if (!CHECK(vt->create(&S, c.kv, &H.host) == DIMPLE_OK))
        return test_done();
    RUN(cli_reads_plugin);
    RUN(plugin_reads_cli);
    vt->destroy(S);
    cap_free(&H);
    dlclose(dl);
    return test_done();
}
