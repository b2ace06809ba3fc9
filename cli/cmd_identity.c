/*
 * cmd_identity.c — `dimple identity`: print the cipher's unlocked identity
 * (for age: "AGE-SECRET-KEY-1..." lines in age-keygen format), so a person
 * can decrypt any stored object with standard tools:
 *     dimple identity > key.txt && age -d -i key.txt OBJECT
 * The output is a secret; it goes to stdout only, never to a log.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_identity(int argc, char **argv)
{
    dimple *db;
    char *id = NULL;
    int rc;
    (void)argv;
    if (argc != 1)
        return cli_usage_error(cli_find("identity"),
                               "identity takes no arguments");
    if (cli_open(&db))
        return 1;
    rc = dimple_cipher_identity(&id, db);
    if (rc < 0) {
        rc = cli_fail_db(db);
        dimple_close(db);
        return rc;
    }
    fputs(id, stdout);
    if (*id && id[strlen(id) - 1] != '\n')
        fputc('\n', stdout);
    /* The identity is a secret: do not leave it in freed memory. */
    memset(id, 0, strlen(id));
    dimple_free(id);
    dimple_close(db);
    return fflush(stdout) == 0 ? 0 : cli_fail("writing the identity failed");
}
