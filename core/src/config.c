/*
 * config.c — dimple.conf (INI, parsed by inih) into sections of key/value
 * pairs, with ${VAR} expansion and file:line errors. See config.h.
 */
#include "config.h"
#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct section {
    char *name;
    int line;     /* of the [header] */
    char *plugin; /* plugin sections: the `plugin` value */
    int plugin_line;
    dimple_kv *kv; /* n entries + {NULL, NULL, 0}; strings owned */
    size_t n, cap;
} section;

struct dimple_config {
    char *path;
    char *dir;
    section *s;
    size_t n, cap;
    /* INT and BOOL keys of the table, parsed: the file's or the default */
    int64_t num[DIMPLE_CONF_N_KEYS];
};

typedef struct parse_state {
    dimple *db;
    dimple_config *cfg;
    FILE *f;
    int line;
    int code; /* first error (its message is on db) */
    int code_line;
} parse_state;

static int is_plugin_section(const char *name)
{
    if (strcmp(name, "storage") == 0 || strcmp(name, "cipher") == 0 ||
        strcmp(name, "resolver") == 0)
        return 1;
    if (strncmp(name, "notifier.", 9) == 0 && name[9]) {
        for (const char *p = name + 9; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                return 0;
        return 1;
    }
    return 0;
}

/* A section whose every key is in the table ([dimple], [sync]); a plugin
 * section's other keys are checked by the plugin's create(). */
static int is_core_section(const char *name)
{
    if (is_plugin_section(name))
        return 0;
    for (size_t i = 0; i < DIMPLE_CONF_N_KEYS; i++)
        if (strcmp(dimple_config__keys[i].section, name) == 0)
            return 1;
    return 0;
}

static section *find_section(const dimple_config *cfg, const char *name)
{
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->s[i].name, name) == 0)
            return &cfg->s[i];
    return NULL;
}

static int fail(parse_state *st, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(parse_state *st, int line, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (st->code)
        return st->code; /* keep the first error */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st->code_line = line;
    st->code =
        dimple__seterr(st->db, code, "%s:%d: %s", st->cfg->path, line, msg);
    return st->code;
}

static section *add_section(parse_state *st, const char *name, int line)
{
    dimple_config *cfg = st->cfg;
    section *s;
    if (dimple__grow((void **)&cfg->s, &cfg->cap, cfg->n + 1, sizeof *cfg->s))
        return NULL;
    s = &cfg->s[cfg->n];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->kv = calloc(1, sizeof *s->kv);
    if (!s->name || !s->kv) {
        free(s->name);
        free(s->kv);
        return NULL;
    }
    s->cap = 1;
    s->line = line;
    cfg->n++;
    return s;
}

/* A [header] line seen by the reader: validate the name here, where its
 * line is known (inih does not report headers without keys). */
static void on_header(parse_state *st, const char *text)
{
    char name[256];
    const char *end = strchr(text, ']');
    size_t len;
    if (!end)
        return; /* inih reports the syntax error */
    len = (size_t)(end - text - 1);
    if (len >= sizeof name) {
        fail(st, st->line, DIMPLE_ECONFIG, "section name too long");
        return;
    }
    memcpy(name, text + 1, len);
    name[len] = '\0';
    /* inih strips spaces inside the brackets too */
    while (len && isspace((unsigned char)name[len - 1]))
        name[--len] = '\0';
    {
        char *p = name;
        while (isspace((unsigned char)*p))
            p++;
        memmove(name, p, strlen(p) + 1);
    }
    if (!is_core_section(name) && !is_plugin_section(name)) {
        fail(st, st->line, DIMPLE_ECONFIG, "unknown section [%s]", name);
        return;
    }
    if (find_section(st->cfg, name)) {
        fail(st, st->line, DIMPLE_ECONFIG, "duplicate section [%s]", name);
        return;
    }
    if (!add_section(st, name, st->line))
        fail(st, st->line, DIMPLE_ENOMEM, "out of memory");
}

/* fgets for inih that counts lines (Debian's inih has no lineno handler)
 * and sees section headers and over-long lines. */
static char *reader(char *str, int num, void *stream)
{
    parse_state *st = stream;
    char *r = fgets(str, num, st->f);
    size_t len;
    const char *p;
    if (!r)
        return NULL;
    st->line++;
    len = strlen(r);
    if (len == (size_t)num - 1 && r[len - 1] != '\n' && !feof(st->f)) {
        int c;
        while ((c = fgetc(st->f)) != EOF && c != '\n')
            ;
        fail(st, st->line, DIMPLE_ECONFIG, "line longer than %d characters",
             num - 2);
        return r;
    }
    p = r;
    if (st->line == 1 && (unsigned char)p[0] == 0xEF &&
        (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
        p += 3;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '[')
        on_header(st, p);
    return r;
}

/* ${VAR} from the environment; '$' otherwise literal. */
static int expand(parse_state *st, const char *sec, const char *key,
                  const char *in, char **out)
{
    dimple_buf buf = {0};
    if (dimple_buf__reserve(&buf, strlen(in)) < 0)
        return fail(st, st->line, DIMPLE_ENOMEM, "out of memory");
    for (const char *p = in; *p;) {
        const char *add = p;
        size_t addn = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            char var[128];
            size_t vlen;
            if (!end) {
                dimple_buf__free(&buf);
                return fail(st, st->line, DIMPLE_ECONFIG,
                            "unterminated ${ in key '%s' in [%s]", key, sec);
            }
            vlen = (size_t)(end - p - 2);
            if (vlen == 0 || vlen >= sizeof var) {
                dimple_buf__free(&buf);
                return fail(st, st->line, DIMPLE_ECONFIG,
                            "bad variable name in key '%s' in [%s]", key, sec);
            }
            memcpy(var, p + 2, vlen);
            var[vlen] = '\0';
            for (size_t i = 0; i < vlen; i++)
                if (!(isalnum((unsigned char)var[i]) || var[i] == '_') ||
                    (i == 0 && isdigit((unsigned char)var[i]))) {
                    dimple_buf__free(&buf);
                    return fail(st, st->line, DIMPLE_ECONFIG,
                                "bad variable name in key '%s' in [%s]", key,
                                sec);
                }
            add = getenv(var);
            if (!add) {
                dimple_buf__free(&buf);
                return fail(st, st->line, DIMPLE_ECONFIG,
                            "environment variable '%s' is not set (key '%s' "
                            "in [%s])",
                            var, key, sec);
            }
            addn = strlen(add);
            p = end + 1;
        } else {
            p++;
        }
        if (dimple_buf__append(&buf, add, addn) < 0) {
            dimple_buf__free(&buf);
            return fail(st, st->line, DIMPLE_ENOMEM, "out of memory");
        }
    }
    buf.p[buf.n] =
        '\0'; /* reserved above: set even when nothing was appended */
    *out = (char *)buf.p;
    return DIMPLE_OK;
}

static int on_kv(void *user, const char *sec, const char *key,
                 const char *value)
{
    parse_state *st = user;
    section *s;
    const dimple_config_key *known;
    char *v = NULL, *k = NULL;
    char why[128];
    int64_t num = 0;
    if (st->code)
        return 1; /* already failed: report the first error only */
    if (!*sec) {
        fail(st, st->line, DIMPLE_ECONFIG, "key '%s' outside a section", key);
        return 1;
    }
    s = find_section(st->cfg, sec);
    if (!s) /* on_header refused it */
        return 1;
    known = dimple_config__find_key(sec, key);
    if (!known && is_core_section(sec)) {
        fail(st, st->line, DIMPLE_ECONFIG, "unknown key '%s' in [%s]", key,
             sec);
        return 1;
    }
    if ((s->plugin && strcmp(key, "plugin") == 0) ||
        dimple_kv_find(s->kv, key)) {
        int first = strcmp(key, "plugin") == 0 && s->plugin
                        ? s->plugin_line
                        : dimple_kv_find(s->kv, key)->line;
        fail(st, st->line, DIMPLE_ECONFIG,
             "duplicate key '%s' in [%s] (first at line %d)", key, sec, first);
        return 1;
    }
    if (expand(st, sec, key, value, &v) < 0)
        return 1;
    if (known && dimple_config__parse(known, v, &num, why, sizeof why) < 0) {
        free(v);
        fail(st, st->line, DIMPLE_ECONFIG, "[%s] %s %s", sec, key, why);
        return 1;
    }
    if (known &&
        (known->type == DIMPLE_CONF_INT || known->type == DIMPLE_CONF_BOOL))
        st->cfg->num[known - dimple_config__keys] = num;
    if (known && known->type == DIMPLE_CONF_PLUGIN) {
        if (!*v) {
            free(v);
            fail(st, st->line, DIMPLE_ECONFIG, "empty plugin name in [%s]",
                 sec);
            return 1;
        }
        s->plugin = v;
        s->plugin_line = st->line;
        return 1;
    }
    k = strdup(key);
    if (!k)
        goto nomem;
    /* n + 2: the list stays terminated by a zeroed entry */
    if (dimple__grow((void **)&s->kv, &s->cap, s->n + 2, sizeof *s->kv))
        goto nomem;
    s->kv[s->n].key = k;
    s->kv[s->n].value = v;
    s->kv[s->n].line = st->line;
    s->n++;
    memset(&s->kv[s->n], 0, sizeof s->kv[s->n]);
    return 1;
nomem:
    free(k);
    free(v);
    fail(st, st->line, DIMPLE_ENOMEM, "out of memory");
    return 1;
}

void dimple_config__free(dimple_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        section *s = &cfg->s[i];
        for (size_t j = 0; j < s->n; j++) {
            free((char *)s->kv[j].key);
            free((char *)s->kv[j].value);
        }
        free(s->kv);
        free(s->plugin);
        free(s->name);
    }
    free(cfg->s);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

int dimple_config__load(dimple *db, const char *path, dimple_config **out)
{
    parse_state st = {0};
    dimple_config *cfg = NULL;
    const char *slash;
    int rc;
    *out = NULL;
    if (!path || !*path)
        return dimple__seterr(db, DIMPLE_EINVAL, "no configuration file given");
    cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    for (size_t i = 0; i < DIMPLE_CONF_N_KEYS; i++)
        cfg->num[i] = dimple_config__int(NULL, (dimple_config_id)i);
    cfg->path = strdup(path);
    slash = strrchr(path, '/');
    cfg->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path))
                     : strdup(".");
    if (!cfg->path || !cfg->dir) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    st.db = db;
    st.cfg = cfg;
    st.f = fopen(path, "r");
    if (!st.f) {
        rc = dimple__seterr(db, DIMPLE_ECONFIG, "cannot read %s: %s", path,
                            strerror(errno));
        goto out;
    }
    rc = ini_parse_stream(reader, &st, on_kv, &st);
    if (st.code && !(rc > 0 && rc < st.code_line)) {
        rc = st.code;
        goto out;
    }
    if (rc > 0) {
        rc = dimple__seterr(db, DIMPLE_ECONFIG,
                            "%s:%d: syntax error (expected [section] or "
                            "key = value)",
                            path, rc);
        goto out;
    }
    if (rc < 0) {
        rc = dimple__seterr(db, DIMPLE_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < cfg->n; i++) {
        section *s = &cfg->s[i];
        if (is_plugin_section(s->name) && !s->plugin) {
            rc = dimple__seterr(db, DIMPLE_ECONFIG,
                                "%s:%d: [%s] needs plugin = NAME", path,
                                s->line, s->name);
            goto out;
        }
    }
    *out = cfg;
    cfg = NULL;
    rc = DIMPLE_OK;
out:
    if (st.f)
        fclose(st.f);
    dimple_config__free(cfg);
    return rc;
}

const char *dimple_config__path(const dimple_config *cfg)
{
    return cfg ? cfg->path : NULL;
}

const char *dimple_config__dir(const dimple_config *cfg)
{
    return cfg ? cfg->dir : NULL;
}

const char *dimple_config__get(const dimple_config *cfg, const char *sec,
                               const char *key)
{
    section *s = find_section(cfg, sec);
    if (!s)
        return NULL;
    if (s->plugin && strcmp(key, "plugin") == 0)
        return s->plugin;
    return dimple_kv_get(s->kv, key);
}

int dimple_config__line(const dimple_config *cfg, const char *sec,
                        const char *key)
{
    section *s = find_section(cfg, sec);
    const dimple_kv *kv;
    if (!s)
        return 0;
    if (s->plugin && strcmp(key, "plugin") == 0)
        return s->plugin_line;
    kv = dimple_kv_find(s->kv, key);
    return kv ? kv->line : 0;
}

const dimple_kv *dimple_config__section(const dimple_config *cfg,
                                        const char *sec)
{
    section *s = find_section(cfg, sec);
    return s ? s->kv : NULL;
}

const char *dimple_config__section_name(const dimple_config *cfg, size_t i)
{
    return cfg && i < cfg->n ? cfg->s[i].name : NULL;
}

int64_t dimple_config__int(const dimple_config *cfg, dimple_config_id id)
{
    const dimple_config_key *k = &dimple_config__keys[id];
    int64_t v = 0;
    char why[128];
    if (cfg)
        return cfg->num[id];
    /* test-config checks that every default parses and is in range */
    dimple_config__parse(k, k->def ? k->def : "0", &v, why, sizeof why);
    return v;
}

char *dimple_config__resolve(const dimple_config *cfg, const char *path)
{
    char *r;
    size_t a, b;
    if (!cfg || path[0] == '/')
        return strdup(path);
    a = strlen(cfg->dir);
    b = strlen(path);
    r = malloc(a + b + 2);
    if (!r)
        return NULL;
    memcpy(r, cfg->dir, a);
    r[a] = '/';
    memcpy(r + a + 1, path, b + 1);
    return r;
}
