/*
 * cmd_remote.c — `dimple remote ls [PREFIX]`, `remote cat [--raw] KEY` and
 * `remote put KEY [FILE]` through the configured storage, and the cipher
 * unless --raw (put always encrypts when a cipher is configured). The
 * database is not opened.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_key(void *payload, const char *key)
{
    (void)payload;
    return puts(key) < 0 ? 1 : 0;
}

/* All of FILE ("-" or NULL: stdin) into *out. */
static int slurp(const char *path, char **out, size_t *len)
{
    FILE *f = !path || strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 0, n = 0, got;
    char *buf = NULL;
    int rc = 0;
    if (!f)
        return cli_fail("cannot read %s: %s", path, strerror(errno));
    do {
        if (n == cap) {
            char *p;
            cap = cap ? cap * 2 : 65536;
            if (!(p = realloc(buf, cap))) {
                rc = cli_fail("out of memory");
                goto out;
            }
            buf = p;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        rc = cli_fail("cannot read %s", path ? path : "stdin");
        goto out;
    }
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    if (f != stdin)
        fclose(f);
    return rc;
}

int cmd_remote(int argc, char **argv)
{
    const cli_command *c = cli_find("remote");
    dimple *db = NULL;
    int rc = 0, raw = 0;
    const char *arg = NULL, *file = NULL;
    char *data = NULL;
    size_t len = 0;
    if (argc < 2)
        return cli_usage_error(c, "remote needs ls, cat or put");
    if (strcmp(argv[1], "ls") == 0) {
        if (argc > 3)
            return cli_usage_error(c, "remote ls takes at most a PREFIX");
        arg = argc == 3 ? argv[2] : "";
    } else if (strcmp(argv[1], "cat") == 0) {
        int i = 2;
        if (i < argc && strcmp(argv[i], "--raw") == 0) {
            raw = 1;
            i++;
        }
        if (i + 1 != argc)
            return cli_usage_error(c, "remote cat needs one KEY");
        arg = argv[i];
    } else if (strcmp(argv[1], "put") == 0) {
        if (argc < 3 || argc > 4)
            return cli_usage_error(c, "remote put needs KEY [FILE]");
        arg = argv[2];
        file = argc == 4 ? argv[3] : NULL;
        if (slurp(file, &data, &len))
            return 1;
    } else {
        return cli_usage_error(c, "unknown remote command '%s'", argv[1]);
    }
    if (cli_open_config(&db)) {
        rc = 1;
        goto out;
    }
    if (argv[1][0] == 'l') {
        rc = dimple_remote_list(db, arg, print_key, NULL);
        if (rc < 0)
            rc = cli_fail_db(db);
        else if (rc > 0)
            rc = cli_fail("cannot write to stdout");
    } else if (argv[1][0] == 'p') {
        if (dimple_remote_put(db, arg, data, len) < 0)
            rc = cli_fail_db(db);
    } else {
        void *obj = NULL;
        size_t n = 0;
        if (dimple_remote_get(&obj, &n, db, arg, raw) < 0) {
            rc = cli_fail_db(db);
        } else {
            if (fwrite(obj, 1, n, stdout) != n || fflush(stdout) != 0)
                rc = cli_fail("cannot write to stdout");
            dimple_free(obj);
        }
    }
out:
    dimple_close(db);
    free(data);
    return rc;
}
