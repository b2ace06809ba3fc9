/*
 * cmd_history.c — `dimple history [TABLE [KEY]] [--author ID] [--since
 * TIME] [--until TIME] [--as-of TIME]` and `dimple author [--reset |
 * --keep]`.
 *
 * history prints one JSON object per change, in id order (docs/tracking.md
 * names the fields). With --as-of it prints the row(s) of TABLE as they
 * were then, one JSON object per row. KEY is JSON when it parses as JSON
 * (5 is an INTEGER, "5" is TEXT, [1,"a"] a composite key), else TEXT.
 * TIME is ISO 8601 (UTC unless it has an offset) or a change id.
 */
#include "cli.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_arg {
    dimple_value v[64];
    size_t n;
    cJSON *json; /* owns the strings */
} key_arg;

static int json_value(const cJSON *j, dimple_value *out)
{
    if (cJSON_IsNull(j)) {
        *out = dimple_value_null();
    } else if (cJSON_IsString(j)) {
        *out = dimple_value_text(j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == (double)(int64_t)d && d < 9.2e18 && d > -9.2e18)
            *out = dimple_value_int((int64_t)d);
        else
            *out = dimple_value_real(d);
    } else {
        return -1;
    }
    return 0;
}

static int parse_key(const char *s, key_arg *k)
{
    memset(k, 0, sizeof *k);
    /* The whole argument must be JSON: cJSON_Parse alone would take the
     * leading "01" of a UUIDv7 key "01a2..." for the number 1. */
    k->json = cJSON_ParseWithOpts(s, NULL, 1);
    if (!k->json) {
        k->v[0] = dimple_value_text(s);
        k->n = 1;
        return 0;
    }
    if (cJSON_IsArray(k->json)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, k->json)
        {
            if (k->n == 64 || json_value(e, &k->v[k->n]) < 0)
                return -1;
            k->n++;
        }
        return k->n ? 0 : -1;
    }
    if (json_value(k->json, &k->v[0]) < 0) {
        /* an object or a boolean: take the text as it is */
        k->v[0] = dimple_value_text(s);
    }
    k->n = 1;
    return 0;
}

static int print_entry(void *payload, const dimple_history_entry *e)
{
    (void)payload;
    char *line;
    if (dimple_history_json(&line, e) != DIMPLE_OK) {
        cli_fail("out of memory");
        return 1;
    }
    int bad = printf("%s\n", line) < 0;
    dimple_free(line);
    if (bad) {
        cli_fail("cannot write to standard output");
        return 1;
    }
    return 0;
}

static int print_row(void *payload, size_t n, const char *const *names,
                     const dimple_value *values)
{
    (void)payload;
    return cli_print_row(n, names, values) ? 1 : 0;
}

int cmd_history(int argc, char **argv)
{
    const cli_command *me = cli_find("history");
    const char *pos[2] = {NULL, NULL};
    const char *author = NULL, *since = NULL, *until = NULL, *as_of = NULL;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char **opt = NULL;
        if (strcmp(argv[i], "--author") == 0)
            opt = &author;
        else if (strcmp(argv[i], "--since") == 0)
            opt = &since;
        else if (strcmp(argv[i], "--until") == 0)
            opt = &until;
        else if (strcmp(argv[i], "--as-of") == 0)
            opt = &as_of;
        if (opt) {
            if (i + 1 >= argc)
                return cli_usage_error(me, "%s needs a value", argv[i]);
            *opt = argv[++i];
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] == '-')
            return cli_usage_error(me, "unknown option %s", argv[i]);
        if (npos == 2)
            return cli_usage_error(me, "too many arguments");
        pos[npos++] = argv[i];
    }
    dimple_history_query q = DIMPLE_HISTORY_QUERY_INIT;
    q.table = pos[0];
    q.author = author;
    if (since && dimple_time_parse(&q.since_ms, since) != DIMPLE_OK)
        return cli_usage_error(me,
                               "--since %s: not an ISO 8601 time or a"
                               " change id",
                               since);
    if (until && dimple_time_parse(&q.until_ms, until) != DIMPLE_OK)
        return cli_usage_error(me,
                               "--until %s: not an ISO 8601 time or a"
                               " change id",
                               until);
    int64_t at = 0;
    if (as_of && dimple_time_parse(&at, as_of) != DIMPLE_OK)
        return cli_usage_error(me,
                               "--as-of %s: not an ISO 8601 time or a"
                               " change id",
                               as_of);
    if (as_of && !pos[0])
        return cli_usage_error(me, "--as-of needs a TABLE");
    if (as_of && (author || since || until))
        return cli_usage_error(me, "--as-of takes only TABLE [KEY]");
    key_arg key;
    memset(&key, 0, sizeof key);
    if (pos[1] && parse_key(pos[1], &key) < 0) {
        cJSON_Delete(key.json);
        return cli_usage_error(me,
                               "KEY %s: a JSON array of at most 64"
                               " scalar values, a JSON scalar or text",
                               pos[1]);
    }
    q.key = pos[1] ? key.v : NULL;
    q.n_key = pos[1] ? key.n : 0;
    dimple *db;
    if (cli_open(&db)) {
        cJSON_Delete(key.json);
        return 1;
    }
    int rc;
    if (as_of)
        rc = dimple_history_as_of(db, q.table, q.key, q.n_key, at, print_row,
                                  NULL);
    else
        rc = dimple_history_list(db, print_entry, NULL, &q);
    if (rc < 0)
        rc = cli_fail_db(db);
    else
        rc = rc ? 1 : 0; /* printing failed and said why */
    dimple_close(db);
    cJSON_Delete(key.json);
    return rc;
}

int cmd_author(int argc, char **argv)
{
    const cli_command *me = cli_find("author");
    int reset = 0, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reset") == 0)
            reset = 1;
        else if (strcmp(argv[i], "--keep") == 0)
            keep = 1;
        else
            return cli_usage_error(me, "unknown argument %s", argv[i]);
    }
    if (reset && keep)
        return cli_usage_error(me, "--reset or --keep, not both");
    dimple *db;
    if (cli_open(&db))
        return 1;
    int rc = DIMPLE_OK;
    if (reset)
        rc = dimple_author_reset(db);
    else if (keep)
        rc = dimple_author_keep(db);
    if (rc < 0) {
        rc = cli_fail_db(db);
        dimple_close(db);
        return rc;
    }
    const char *a = dimple_author_id(db);
    if (!a) {
        dimple_close(db);
        return cli_fail("this database has no author yet (it was never"
                        " opened writable by dimple)");
    }
    printf("%s\n", a);
    dimple_close(db);
    return 0;
}
