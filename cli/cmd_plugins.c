/*
 * cmd_plugins.c — `dimple plugins`: every plugin found on the search path
 * (registered ones first), one line each: name, kind, version, file. A file
 * that fails the loader's checks is listed with the reason.
 */
#include "cli.h"

#include <stdio.h>

static int show(void *payload, const dimple_plugin_info *info, const char *err)
{
    int *count = payload;
    (*count)++;
    if (err)
        printf("%-10s %-9s %-8s %s (refused: %s)\n", "-", "-", "-", info->file,
               err);
    else
        printf("%-10s %-9s %-8s %s\n", info->name, info->kind,
               info->version ? info->version : "-", info->file);
    return 0;
}

int cmd_plugins(int argc, char **argv)
{
    dimple *db = NULL;
    int count = 0, rc;
    (void)argv;
    if (argc != 1)
        return cli_usage_error(cli_find("plugins"),
                               "plugins takes no arguments");
    /* The configuration only contributes plugin_dir: a conf whose plugin
     * sections fail must not hide the listing that helps fix it. */
    dimple_config_check(&db, cli_conf_path());
    rc = dimple_plugin_list(db, show, &count);
    if (rc < 0) {
        rc = db ? cli_fail_db(db) : cli_fail("out of memory");
        dimple_close(db);
        return rc;
    }
    if (!count)
        printf("no plugins found\n");
    dimple_close(db);
    return 0;
}
