/*
 * cli.h — what every `dimple` command file (cli/cmd_<name>.c) shares.
 *
 * Conventions (docs/cli.md): exit status 0 on success, 1 on error with ONE
 * line "dimple: <message>" on stderr, 2 on wrong usage. `dimple CMD --help`
 * prints the command's usage and summary (main.c handles it before run()).
 *
 * To add a command: write cli/cmd_<name>.c with
 *     int cmd_<name>(int argc, char **argv);
 * declare it below, add one line to the table in cli/main.c and the file to
 * cli/meson.build. argv[0] is the command name; argv[1..] its arguments.
 */
#ifndef DIMPLE_CLI_H
#define DIMPLE_CLI_H

#include <dimple.h>

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;   /* e.g. "sql SQL [PARAM...]" (without "dimple") */
    const char *summary; /* one line */
} cli_command;

/* The configuration file in use: -c FILE, else $DIMPLE_CONF, else
 * ./dimple.conf. Static string. */
const char *cli_conf_path(void);

/* Open the handle from cli_conf_path(). On failure prints the one-line
 * error, closes the handle, sets *db NULL and returns 1; 0 on success. */
int cli_open(dimple **db);

/* Open only the configuration and its plugins (dimple_config_check: the
 * database is not touched), for commands that need storage but no
 * database. Same failure rule as cli_open. */
int cli_open_config(dimple **db);

/* Send db's plugin log lines to stderr when -v (info) or -vv (debug) was
 * given; cli_open and cli_open_config call it. */
void cli_set_logger(dimple *db);
extern int cli_verbose; /* number of -v options */

/* Print "dimple: <message>" (one line) on stderr and return 1. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
int cli_fail(const char *fmt, ...);

/* cli_fail with dimple_errmsg(db); returns 1. */
int cli_fail_db(dimple *db);

/* Print "dimple: <message>" and the usage line of c on stderr; return 2. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int cli_usage_error(const cli_command *c, const char *fmt, ...);

/* The table entry of a command by name, or NULL (for cli_usage_error). */
const cli_command *cli_find(const char *name);

/* Print one row as one JSON object on one line of stdout (the encoding of
 * dimple_json_row). Returns 0, or 1 after printing an error. Usable as the
 * body of a dimple_row_cb. */
/* A command-line parameter, typed by the rule of `dimple sql` (docs/cli.md):
 * "null" is NULL, a 64-bit decimal integer is INTEGER, a decimal real is
 * REAL, anything else is TEXT (borrowing s). */
dimple_value cli_parse_param(const char *s);

int cli_print_row(size_t n, const char *const *names,
                  const dimple_value *values);

/* Command entry points (one per cli/cmd_<name>.c). */
int cmd_init(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_sql(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_remote(int argc, char **argv);
/* Added by later issues: */
int cmd_history(int argc, char **argv);  /* cli/cmd_history.c (track) */
int cmd_author(int argc, char **argv);   /* cli/cmd_history.c (track) */
int cmd_sync(int argc, char **argv);     /* cli/cmd_sync.c (sync) */
int cmd_watch(int argc, char **argv);    /* cli/cmd_watch.c (live) */
int cmd_identity(int argc, char **argv); /* cli/cmd_identity.c (age) */

#endif /* DIMPLE_CLI_H */
