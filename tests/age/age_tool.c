/*
 * age_tool.c — a small command-line front end to dimple-age for the
 * interop tests (tests/age/interop.py) against the reference `age` tool.
 *
 *   age_tool enc [-a] [-w LOGN] (-p | -r AGE1...)... < in > out
 *   age_tool dec [-p] [-i FILE]... < in > out
 *   age_tool store [-m MODE] [-w LOGN] DIR NAME < in > identity
 *       the plugin itself (vtable), attached to a folder as its storage:
 *       encrypts stdin to DIR/NAME (creating DIR/keys/<uuid7>.age when
 *       needed) and prints identity() (nothing in mode scrypt)
 *   age_tool store-dec [-m MODE] DIR NAME > out
 *
 * The passphrase comes from $AGE_TOOL_PASSPHRASE (never argv). Errors go to
 * stderr with the failure class; exit 1.
 */
#include "age_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static ptrdiff_t fd_read(void *ctx, void *buf, size_t n)
{
    ssize_t k;
    do
        k = read(*(int *)ctx, buf, n);
    while (k < 0 && errno == EINTR);
    return k < 0 ? DIMPLE_EIO : (ptrdiff_t)k;
}

static int fd_write(void *ctx, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = write(*(int *)ctx, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return DIMPLE_EIO;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: age_tool enc|dec|store|store-dec ... (see source)\n");
    return 2;
}

static const char *passphrase(void)
{
    const char *p = getenv("AGE_TOOL_PASSPHRASE");
    if (!p || !*p)
        fprintf(stderr, "age_tool: set AGE_TOOL_PASSPHRASE\n");
    return p && *p ? p : NULL;
}

static int read_identities(const char *path, age_identity *ids, size_t *n,
                           size_t cap)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f) && *n < cap) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        ids[*n].type = AGE_ID_X25519;
        if (age_identity_parse(line, ids[*n].sk) ||
            age_x25519_public(ids[*n].sk, ids[*n].pk)) {
            fclose(f);
            return -1;
        }
        (*n)++;
    }
    fclose(f);
    return 0;
}

static int cmd_enc(int argc, char **argv)
{
    age_recipient rs[16];
    size_t n = 0;
    int armor = AGE_ARMOR_OFF, logn = AGE_DEFAULT_LOGN, in = 0, out = 1;
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-a"))
            armor = AGE_ARMOR_ON;
        else if (!strcmp(argv[i], "-w") && i + 1 < argc)
            logn = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-p") && n < 16) {
            const char *p = passphrase();
            if (!p)
                return 1;
            rs[n].type = AGE_ID_SCRYPT;
            rs[n].pass = p;
            rs[n++].pass_len = strlen(p);
        } else if (!strcmp(argv[i], "-r") && i + 1 < argc && n < 16) {
            rs[n].type = AGE_ID_X25519;
            if (age_recipient_parse(argv[++i], rs[n++].pk)) {
                fprintf(stderr, "age_tool: bad recipient %s\n", argv[i]);
                return 1;
            }
        } else
            return usage();
    }
    for (size_t i = 0; i < n; i++)
        rs[i].logn = logn;
    dimple_source src = {fd_read, &in};
    dimple_sink sink = {fd_write, &out};
    age_err e = {0};
    if (age_encrypt(&src, &sink, armor, rs, n, &e)) {
        fprintf(stderr, "age_tool: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static int cmd_dec(int argc, char **argv)
{
    age_identity ids[16];
    size_t n = 0;
    int in = 0, out = 1;
    memset(ids, 0, sizeof ids);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && n < 16) {
            const char *p = passphrase();
            if (!p)
                return 1;
            ids[n].type = AGE_ID_SCRYPT;
            ids[n].pass = p;
            ids[n++].pass_len = strlen(p);
        } else if (!strcmp(argv[i], "-i") && i + 1 < argc) {
            if (read_identities(argv[++i], ids, &n, 16)) {
                fprintf(stderr, "age_tool: bad identity file %s\n", argv[i]);
                return 1;
            }
        } else
            return usage();
    }
    dimple_source src = {fd_read, &in};
    dimple_sink sink = {fd_write, &out};
    age_keyring kr = {ids, n, NULL, NULL};
    age_err e = {0};
    if (age_decrypt(&src, &sink, AGE_ARMOR_AUTO, &kr, &e)) {
        fprintf(stderr, "age_tool: %s: %s\n", age_class_name(e.cls), e.msg);
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------- a folder as storage */

static int dir_path(void *ctx, const char *key, char *out, size_t cap)
{
    if (!dimple_key_valid(key))
        return DIMPLE_EINVAL;
    snprintf(out, cap, "%s/%s", (const char *)ctx, key);
    return 0;
}

static int dir_put(void *ctx, const char *key, const void *data, size_t len)
{
    char path[4096], tmp[4200];
    if (dir_path(ctx, key, path, sizeof path))
        return DIMPLE_EINVAL;
    for (char *s = strchr(path + strlen(ctx) + 1, '/'); s;
         s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(path, 0700);
        *s = '/';
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f))
        return DIMPLE_EIO;
    return rename(tmp, path) ? DIMPLE_EIO : 0;
}

static int dir_put_if_absent(void *ctx, const char *key, const void *data,
                             size_t len)
{
    char path[4096];
    if (dir_path(ctx, key, path, sizeof path))
        return DIMPLE_EINVAL;
    if (access(path, F_OK) == 0)
        return DIMPLE_EEXISTS;
    return dir_put(ctx, key, data, len);
}

static int dir_get(void *ctx, const char *key, const dimple_sink *out)
{
    char path[4096], buf[65536];
    size_t n;
    int rc = 0;
    if (dir_path(ctx, key, path, sizeof path))
        return DIMPLE_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return DIMPLE_ENOTFOUND;
    while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = dimple_sink_write(out, buf, n);
    fclose(f);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists one folder level (enough for keys/). */
static int dir_list(void *ctx, const char *prefix, const char *start_after,
                    unsigned flags, dimple_list_cb cb, void *payload)
{
    char path[4096], *names[1024];
    size_t n = 0;
    int rc = 0;
    (void)flags;
    snprintf(path, sizeof path, "%s/%s", (const char *)ctx, prefix);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    for (struct dirent *de; (de = readdir(d)) && n < 1024;) {
        if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp"))
            continue;
        size_t len = strlen(prefix) + strlen(de->d_name) + 1;
        names[n] = malloc(len);
        snprintf(names[n++], len, "%s%s", prefix, de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (!rc && (!start_after || strcmp(names[i], start_after) > 0))
            rc = cb(payload, names[i]);
        free(names[i]);
    }
    return rc;
}

static void host_error(void *ctx, int code, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "age_tool: [cipher] age: %s (code %d)\n", msg, code);
}

static int cmd_store(int argc, char **argv, int decrypt)
{
    const char *mode = "identity", *logn = "18", *pass = passphrase();
    int i = 0, in = 0, out = 1, rc;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            mode = argv[++i];
        else if (!strcmp(argv[i], "-w") && i + 1 < argc)
            logn = argv[++i];
        else
            return usage();
    }
    if (argc - i != 2 || !pass)
        return usage();
    char *dir = argv[i];
    const char *name = argv[i + 1];
    dimple_kv conf[] = {{"passphrase", pass, 1},
                        {"mode", mode, 2},
                        {"work_factor", logn, 3},
                        {NULL, NULL, 0}};
    dimple_host host = {sizeof host, NULL,       host_error,
                        NULL,        "age_tool", "cipher"};
    dimple_store st = {sizeof st,         dir,     dir_put,
                       dir_put_if_absent, dir_get, dir_list};
    const dimple_cipher_vtable *vt = dimple_plugin_entry()->vt.cipher;
    void *self = NULL;
    if ((rc = vt->create(&self, conf, &host)) || (rc = vt->attach(self, &st)))
        goto out;
    if (decrypt) {
        age_buf ct = {0};
        dimple_sink cs = age_buf_sink(&ct);
        age_mem_source ms;
        if ((rc = dir_get(dir, name, &cs)) == 0) {
            dimple_source src = age_mem_source_make(&ms, ct.p, ct.n);
            dimple_sink sink = {fd_write, &out};
            rc = vt->decrypt(self, name, &src, &sink);
        }
        age_buf_free(&ct);
        goto out;
    }
    age_buf ct = {0};
    dimple_source src = {fd_read, &in};
    dimple_sink sink = age_buf_sink(&ct);
    if (!(rc = vt->encrypt(self, name, &src, &sink)))
        rc = dir_put(dir, name, ct.p, ct.n);
    age_buf_free(&ct);
    if (!rc && strcmp(mode, "scrypt") != 0) {
        dimple_sink o = {fd_write, &out};
        rc = vt->identity(self, &o);
    }
out:
    if (self)
        vt->destroy(self);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (!strcmp(argv[1], "enc"))
        return cmd_enc(argc - 2, argv + 2);
    if (!strcmp(argv[1], "dec"))
        return cmd_dec(argc - 2, argv + 2);
    if (!strcmp(argv[1], "store"))
        return cmd_store(argc - 2, argv + 2, 0);
    if (!strcmp(argv[1], "store-dec"))
        return cmd_store(argc - 2, argv + 2, 1);
    return usage();
}
