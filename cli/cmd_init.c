/*
 * cmd_init.c — `dimple init` and `dimple migrate [DIR]`.
 */
#include "cli.h"

#include <stdio.h>

static int migrate(dimple *db, const char *dir)
{
    int before = 0, after = 0;
    if (dimple_schema_version(&before, db) < 0 ||
        dimple_migrate_dir(db, dir) < 0 ||
        dimple_schema_version(&after, db) < 0)
        return cli_fail_db(db);
    if (after == before)
        printf("schema version %d: up to date (%s)\n", after, dir);
    else
        printf("schema version %d -> %d (%s)\n", before, after, dir);
    return 0;
}

int cmd_init(int argc, char **argv)
{
    dimple *db;
    const char *dir;
    int rc = 0;
    (void)argv;
    if (argc != 1)
        return cli_usage_error(cli_find("init"), "init takes no arguments");
    if (cli_open(&db))
        return 1;
    printf("database %s\n", dimple_db_path(db));
    dir = dimple_migrations_dir(db);
    if (dir)
        rc = migrate(db, dir);
    else
        printf("no [dimple] migrations folder configured\n");
    dimple_close(db);
    return rc;
}

int cmd_migrate(int argc, char **argv)
{
    dimple *db;
    const char *dir;
    int rc;
    if (argc > 2)
        return cli_usage_error(cli_find("migrate"), "too many arguments");
    if (cli_open(&db))
        return 1;
    dir = argc == 2 ? argv[1] : dimple_migrations_dir(db);
    if (!dir)
        rc = cli_fail("no migrations folder: give DIR or set [dimple] "
                      "migrations in %s",
                      cli_conf_path());
    else
        rc = migrate(db, dir);
    dimple_close(db);
    return rc;
}
