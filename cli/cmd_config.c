/*
 * cmd_config.c — `dimple config check`: parse the configuration and create
 * every plugin it names (each checks its keys), without opening the
 * database.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_config(int argc, char **argv)
{
    dimple *db;
    const char *role;
    if (argc != 2 || strcmp(argv[1], "check") != 0)
        return cli_usage_error(cli_find("config"), "expected: config check");
    if (cli_open_config(&db))
        return 1;
    printf("%s: ok\n", cli_conf_path());
    printf("database: %s\n", dimple_db_path(db));
    for (size_t i = 0; (role = dimple_plugin_role(db, i)); i++)
        printf("%s: %s\n", role, dimple_plugin_in_use(db, role));
    dimple_close(db);
    return 0;
}
