/*
 * main.c — the `dimple` command-line tool: global options and the command
 * table. Each command lives in cli/cmd_<name>.c (see cli.h).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *conf_path; /* -c FILE */

/* One line per command. Keep "name" first: it is what users type. */
static const cli_command commands[] = {
    {"init", cmd_init, "init",
     "create the database and apply the configured migrations"},
    {"migrate", cmd_migrate, "migrate [DIR]",
     "apply the migrations of DIR (default: [dimple] migrations)"},
    {"sql", cmd_sql, "sql SQL [PARAM...]",
     "run SQL; print each result row as one JSON object per line"},
    {"info", cmd_info, "info",
     "show the database, author, tracked tables and plugins in use"},
    {"plugins", cmd_plugins, "plugins",
     "list every plugin found: name, kind, version, file"},
    {"config", cmd_config, "config check",
     "check the configuration and create each configured plugin"},
    {"remote", cmd_remote,
     "remote ls [PREFIX] | remote cat [--raw] KEY | remote put KEY [FILE]",
     "list, print (decrypted) or store (encrypted) objects of the storage"},
    {"sync", cmd_sync, "sync [--watch SECONDS]",
     "push this author's changes, pull and apply everyone else's"},
    {"watch", cmd_watch, "watch SQL [PARAM...]",
     "print the result as a JSON array, again on each change, until ^C"},
    {"identity", cmd_identity, "identity",
     "print the cipher's unlocked identity (a secret) for age -d -i"},
    {"history", cmd_history,
     "history [TABLE [KEY]] [--author ID] [--since TIME] [--until TIME]"
     " [--as-of TIME]",
     "print the changes (one JSON object each), or the rows as of a time"},
    {"author", cmd_author, "author [--reset | --keep]",
     "print this database's author id; --reset: a new one (a copied file)"},
    {NULL, NULL, NULL, NULL}};

const char *cli_conf_path(void)
{
    const char *env;
    if (conf_path)
        return conf_path;
    env = getenv("DIMPLE_CONF");
    return env && *env ? env : "./dimple.conf";
}

const cli_command *cli_find(const char *name)
{
    for (const cli_command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dimple [-c FILE] [-v|-vv] COMMAND [ARGS]\n"
               "       dimple COMMAND --help\n\n"
               "-v and -vv print the plugins' log lines (info, debug) on "
               "stderr.\n"
               "The configuration is FILE, else $DIMPLE_CONF, else "
               "./dimple.conf.\nExit status: 0 ok, 1 error (one line on "
               "stderr), 2 wrong usage.\n\nCommands:\n");
    for (const cli_command *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
}

int main(int argc, char **argv)
{
    int i = 1;
    const cli_command *c;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dimple: -c needs a FILE\n");
                return 2;
            }
            conf_path = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "-c", 2) == 0) {
            conf_path = argv[i] + 2;
            i++;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "-vv") == 0) {
            cli_verbose += (int)strlen(argv[i]) - 1;
            i++;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("dimple %s\n", dimple_version());
            return 0;
        } else {
            fprintf(stderr,
                    "dimple: unknown option '%s' (try dimple "
                    "--help)\n",
                    argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc && (c = cli_find(argv[i + 1]))) {
            printf("usage: dimple %s\n%s\n", c->usage, c->summary);
            return 0;
        }
        usage(stdout);
        return 0;
    }
    c = cli_find(argv[i]);
    if (!c) {
        fprintf(stderr, "dimple: unknown command '%s' (try dimple --help)\n",
                argv[i]);
        return 2;
    }
    for (int k = i + 1; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            printf("usage: dimple %s\n%s\n", c->usage, c->summary);
            return 0;
        }
    return c->run(argc - i, argv + i);
}
