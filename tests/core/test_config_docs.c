/*
 * test_config_docs.c — docs/config.md and conf/dimple.conf list every key
 * of the core's table (config_keys.c) with its default and range, and no
 * [dimple] or [sync] key the table does not have. Reads both files from
 * the source tree ($DIMPLE_TEST_SRCDIR).
 */
#include "../test.h"
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 4096

typedef struct doc {
    char *text;
    char *line[MAX_LINES];
    size_t n;
    const char *name;
} doc;

static int load_doc(doc *d, const char *rel)
{
    const char *root = getenv("DIMPLE_TEST_SRCDIR");
    char path[1024];
    FILE *f;
    long len;
    snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
    d->name = rel;
    f = fopen(path, "rb");
    if (!f) {
        printf("# cannot read %s\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    d->text = calloc(1, (size_t)len + 1);
    if (!d->text || fread(d->text, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    for (char *p = d->text; *p && d->n < MAX_LINES;) {
        char *nl = strchr(p, '\n');
        d->line[d->n++] = p;
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return 0;
}

/* The table's section as written in a heading: "notifier.*" is every
 * [notifier.LABEL], so only "[notifier." is compared. */
static void section_prefix(const dimple_config_key *k, char *out, size_t cap)
{
    size_t n = strlen(k->section);
    if (n && k->section[n - 1] == '*')
        snprintf(out, cap, "[%.*s", (int)(n - 1), k->section);
    else
        snprintf(out, cap, "[%s]", k->section);
}

static void range_text(const dimple_config_key *k, char *out, size_t cap)
{
    snprintf(out, cap, "%lld..%lld", (long long)k->min, (long long)k->max);
}

/* docs/config.md: under the "### [section]" heading, a table row
 * "| `key` | default | values | meaning |". */
static void check_md(const doc *d, const dimple_config_key *k)
{
    char head[64], row[128], want[128];
    size_t i = 0;
    const char *found = NULL;
    section_prefix(k, head, sizeof head);
    snprintf(row, sizeof row, "| `%s` |", k->key);
    for (; i < d->n; i++)
        if (strncmp(d->line[i], "### ", 4) == 0 &&
            strncmp(d->line[i] + 4, head, strlen(head)) == 0)
            break;
    for (i++; i < d->n && !found; i++) {
        if (strncmp(d->line[i], "## ", 3) == 0 ||
            strncmp(d->line[i], "### ", 4) == 0)
            break;
        if (strncmp(d->line[i], row, strlen(row)) == 0)
            found = d->line[i];
    }
    if (!CHECK(found != NULL)) {
        printf("#   %s: no row %s under a heading ### %s\n", d->name, row,
               head);
        return;
    }
    {
        /* cells: key, default, values, meaning */
        char cells[5][512] = {{0}};
        const char *p = found;
        for (int c = 0; c < 5 && p; c++) {
            const char *bar = strstr(p + 1, " | ");
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            snprintf(cells[c], sizeof cells[c], "%.*s", (int)len, p);
            p = bar ? bar + 2 : NULL;
        }
        if (k->def)
            snprintf(want, sizeof want, "`%s`", k->def);
        else
            snprintf(want, sizeof want, "%s",
                     k->required ? "(required)" : "none");
        if (!CHECK(strstr(cells[1], want) != NULL))
            printf("#   %s: [%s] %s: default cell '%s' lacks %s\n", d->name,
                   k->section, k->key, cells[1], want);
        if (k->type == DIMPLE_CONF_INT) {
            range_text(k, want, sizeof want);
            if (!CHECK(strstr(cells[2], want) != NULL))
                printf("#   %s: [%s] %s: values cell '%s' lacks %s\n", d->name,
                       k->section, k->key, cells[2], want);
        }
    }
}

/* A "key = value" line, commented out (";key") or not; *key_len set. */
static int conf_key(const char *line, size_t *key_len)
{
    const char *p = line + (line[0] == ';');
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_')
        n++;
    if (!n || !strchr(p + n, '='))
        return 0;
    for (const char *q = p + n; *q != '='; q++)
        if (*q != ' ')
            return 0;
    *key_len = n;
    return 1;
}

/* A "[section]" line, commented out or not, into out (no brackets). */
static int conf_section(const char *line, char *out, size_t cap)
{
    const char *p = line + (line[0] == ';');
    const char *end;
    if (*p != '[' || !(end = strchr(p, ']')))
        return 0;
    snprintf(out, cap, "%.*s", (int)(end - p - 1), p + 1);
    return 1;
}

/* conf/dimple.conf: in a (possibly commented) [section], a line
 * "key = default" (or the comment above says "default D"), and for an
 * integer key the range "min..max" in that comment. */
static void check_conf(const doc *d, const dimple_config_key *k)
{
    char sec[128] = "", head[64], want[160];
    int found = 0;
    section_prefix(k, head, sizeof head);
    for (size_t i = 0; i < d->n && !found; i++) {
        size_t kl;
        char comment[4096] = "";
        const char *value;
        if (conf_section(d->line[i], sec, sizeof sec))
            continue;
        if (!conf_key(d->line[i], &kl))
            continue;
        snprintf(want, sizeof want, "[%s]", sec);
        if (strncmp(want, head, strlen(head)) != 0 ||
            strncmp(d->line[i] + (d->line[i][0] == ';'), k->key, kl) != 0 ||
            strlen(k->key) != kl)
            continue;
        found = 1;
        /* the comment block right above the key */
        for (size_t j = i; j-- > 0;) {
            const char *l = d->line[j];
            size_t dummy;
            char s2[128];
            if (l[0] != ';' || conf_key(l, &dummy) ||
                conf_section(l, s2, sizeof s2))
                break;
            if (strlen(comment) + strlen(l) + 2 < sizeof comment) {
                strcat(comment, l);
                strcat(comment, "\n");
            }
        }
        value = strchr(d->line[i], '=') + 1;
        while (*value == ' ')
            value++;
        if (k->def) {
            char low[4096];
            snprintf(want, sizeof want, "default %s", k->def);
            for (size_t c = 0; c <= strlen(comment); c++)
                low[c] = (char)tolower((unsigned char)comment[c]);
            if (!CHECK(strcmp(value, k->def) == 0 || strstr(low, want)))
                printf("#   %s:%zu: [%s] %s: neither the value nor the "
                       "comment says the default %s\n",
                       d->name, i + 1, k->section, k->key, k->def);
        }
        if (k->type == DIMPLE_CONF_INT) {
            range_text(k, want, sizeof want);
            if (!CHECK(strstr(comment, want) != NULL))
                printf("#   %s:%zu: [%s] %s: the comment above lacks the "
                       "range %s\n",
                       d->name, i + 1, k->section, k->key, want);
        }
    }
    if (!CHECK(found))
        printf("#   %s: no line %s = ... in a %s section\n", d->name, k->key,
               head);
}

TEST(every_key_documented)
{
    doc md = {0}, conf = {0};
    if (!CHECK(load_doc(&md, "docs/config.md") == 0) ||
        !CHECK(load_doc(&conf, "conf/dimple.conf") == 0))
        goto out;
    for (size_t i = 0; i < DIMPLE_CONF_N_KEYS; i++) {
        check_md(&md, &dimple_config__keys[i]);
        check_conf(&conf, &dimple_config__keys[i]);
    }
out:
    free(md.text);
    free(conf.text);
}

/* No stale key: every row of docs/config.md's [dimple] and [sync] tables
 * and every key line of conf/dimple.conf's [dimple] and [sync] is in the
 * table. */
TEST(no_key_outside_the_table)
{
    static const char *const core[] = {"dimple", "sync"};
    doc md = {0}, conf = {0};
    char sec[128] = "";
    if (!CHECK(load_doc(&md, "docs/config.md") == 0) ||
        !CHECK(load_doc(&conf, "conf/dimple.conf") == 0))
        goto out;
    for (size_t s = 0; s < 2; s++) {
        char head[64];
        size_t i = 0;
        snprintf(head, sizeof head, "### [%s]", core[s]);
        while (i < md.n && strncmp(md.line[i], head, strlen(head)) != 0)
            i++;
        CHECK(i < md.n);
        for (i++; i < md.n && strncmp(md.line[i], "#", 1) != 0; i++) {
            char key[128];
            if (sscanf(md.line[i], "| `%127[^`]` |", key) != 1)
                continue;
            if (!CHECK(dimple_config__find_key(core[s], key) != NULL))
                printf("#   docs/config.md:%zu: [%s] %s is not a core key\n",
                       i + 1, core[s], key);
        }
    }
    for (size_t i = 0; i < conf.n; i++) {
        size_t kl;
        char key[128];
        if (conf_section(conf.line[i], sec, sizeof sec) ||
            !conf_key(conf.line[i], &kl))
            continue;
        if (strcmp(sec, "dimple") != 0 && strcmp(sec, "sync") != 0)
            continue;
        snprintf(key, sizeof key, "%.*s", (int)kl,
                 conf.line[i] + (conf.line[i][0] == ';'));
        if (!CHECK(dimple_config__find_key(sec, key) != NULL))
            printf("#   conf/dimple.conf:%zu: [%s] %s is not a core key\n",
                   i + 1, sec, key);
    }
out:
    free(md.text);
    free(conf.text);
}

int main(void)
{
    RUN(every_key_documented);
    RUN(no_key_outside_the_table);
    return test_done();
}
