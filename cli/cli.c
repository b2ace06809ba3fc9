/*
 * cli.c — helpers every command shares (see cli.h).
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* One line: newlines in a message become spaces. */
static void vfail(const char *fmt, va_list ap)
{
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fflush(stdout);
    fprintf(stderr, "dimple: %s\n", msg);
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    return 1;
}

int cli_fail_db(dimple *db)
{
    return cli_fail("%s", dimple_errmsg(db));
}

int cli_usage_error(const cli_command *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    if (c)
        fprintf(stderr, "usage: dimple %s\n", c->usage);
    return 2;
}

int cli_verbose;

static void log_stderr(void *payload, int level, const char *source,
                       const char *msg)
{
    static const char *const names[] = {"?", "error", "warn", "info", "debug"};
    (void)payload;
    if (level > 2 + cli_verbose)
        return;
    fprintf(stderr, "dimple: [%s] %s: %s\n",
            names[level >= 1 && level <= 4 ? level : 0], source, msg);
}

void cli_set_logger(dimple *db)
{
    if (cli_verbose)
        dimple_logger_set(db, log_stderr, NULL);
}

/* Plugins log while they are created, inside dimple_open: the logger can
 * only be set on the handle afterwards, so -v shows what happens after. */
static int open_with(int (*open)(dimple **, const char *), dimple **db)
{
    if (open(db, cli_conf_path()) < 0) {
        cli_fail_db(*db);
        dimple_close(*db);
        *db = NULL;
        return 1;
    }
    cli_set_logger(*db);
    return 0;
}

int cli_open(dimple **db)
{
    return open_with(dimple_open, db);
}

int cli_open_config(dimple **db)
{
    return open_with(dimple_config_check, db);
}

int cli_print_row(size_t n, const char *const *names,
                  const dimple_value *values)
{
    char *json;
    if (dimple_json_row(&json, n, names, values) != DIMPLE_OK)
        return cli_fail("out of memory");
    fputs(json, stdout);
    fputc('\n', stdout);
    dimple_free(json);
    return 0;
}

dimple_value cli_parse_param(const char *s)
{
    char *end;
    if (strcmp(s, "null") == 0)
        return dimple_value_null();
    if (*s && (isdigit((unsigned char)*s) ||
               ((*s == '-' || *s == '+') && isdigit((unsigned char)s[1])))) {
        long long i;
        double d;
        errno = 0;
        i = strtoll(s, &end, 10);
        if (!*end && !errno)
            return dimple_value_int(i);
        if (strspn(s, "+-0123456789.eE") == strlen(s)) {
            errno = 0;
            d = strtod(s, &end);
            if (!*end && isfinite(d) && errno != ERANGE)
                return dimple_value_real(d);
        }
    }
    return dimple_value_text(s);
}
