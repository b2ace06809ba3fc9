/*
 * cmd_sql.c — `dimple sql SQL [PARAM...]`.
 *
 * Parameter typing (docs/cli.md): `null` is NULL; a decimal integer that
 * fits 64 bits is INTEGER; a finite decimal real (digits with '.' or an
 * exponent) is REAL; anything else is TEXT. Use CAST(?1 AS TEXT) in the SQL
 * to store number-like text.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_row(void *payload, size_t n, const char *const *names,
                     const dimple_value *values)
{
    (void)payload;
    return cli_print_row(n, names, values) ? 1 : 0;
}

int cmd_sql(int argc, char **argv)
{
    dimple *db;
    dimple_value *params = NULL;
    size_t n = argc > 2 ? (size_t)argc - 2 : 0;
    int rc;
    if (argc < 2)
        return cli_usage_error(cli_find("sql"), "sql needs SQL");
    if (n && !(params = calloc(n, sizeof *params)))
        return cli_fail("out of memory");
    for (size_t i = 0; i < n; i++)
        params[i] = cli_parse_param(argv[i + 2]);
    if (cli_open(&db)) {
        free(params);
        return 1;
    }
    rc = dimple_exec(db, argv[1], params, n, print_row, NULL);
    if (rc < 0)
        rc = cli_fail_db(db);
    else
        rc = rc ? 1 : 0; /* a printing failure already said why */
    dimple_close(db);
    free(params);
    return rc;
}
