/*
 * cmd_info.c — `dimple info`: database, author, tracked tables, plugins in
 * use; one "key: value" line each.
 */
#include "cli.h"

#include <stdio.h>

int cmd_info(int argc, char **argv)
{
    dimple *db;
    const char *role;
    int version = 0;
    (void)argv;
    if (argc != 1)
        return cli_usage_error(cli_find("info"), "info takes no arguments");
    if (cli_open(&db))
        return 1;
    if (dimple_schema_version(&version, db) < 0) {
        int rc = cli_fail_db(db);
        dimple_close(db);
        return rc;
    }
    printf("config: %s\n", cli_conf_path());
    printf("database: %s\n", dimple_db_path(db));
    printf("schema version: %d\n", version);
    /* The author line comes from change tracking (cmd_info grows with it). */
    printf("author: %s\n",
           dimple_author_id(db) ? dimple_author_id(db) : "(none)");
    printf("tables: %s\n", *dimple_tables(db) ? dimple_tables(db) : "(none)");
    for (size_t i = 0; (role = dimple_plugin_role(db, i)); i++)
        printf("%s: %s\n", role, dimple_plugin_in_use(db, role));
    dimple_close(db);
    return 0;
}
