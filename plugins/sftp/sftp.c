/*
 * sftp.c — the SFTP storage plugin: descriptor, vtable and configuration.
 *
 * Objects are files below `path` on an SSH server; a key maps to
 * path/key. The connection is made on first use, kept, and re-made once
 * when it drops. See docs/sftp.md.
 */
#include "sftp_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const sftp_known_keys[] = {
    "host",           "port",           "user",     "path",
    "key_file",       "key_passphrase", "password", "known_hosts",
    "host_key_check", "timeout",        NULL};

int sftp__err(sftp_store *s, int code, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dimple_errorf(s->host, code, "%s: %s", s->where, msg);
}

/* "file:line" of a config key, for messages. */
static void conf_where(const dimple_host *host, const dimple_kv *conf,
                       const char *key, char *buf, size_t n)
{
    const dimple_kv *kv = dimple_kv_find(conf, key);
    snprintf(buf, n, "%s:%d",
             host && host->config_file ? host->config_file : "(config)",
             kv ? kv->line : 0);
}

static int conf_error(const dimple_host *host, const dimple_kv *conf,
                      const char *key, const char *what)
{
    char at[300];
    conf_where(host, conf, key, at, sizeof at);
    return dimple_errorf(host, DIMPLE_ECONFIG, "%s: [%s] %s: %s", at,
                         host && host->section ? host->section : "storage", key,
                         what);
}

/* Strict integer in [lo, hi]. */
static int parse_int(const char *v, long lo, long hi, long *out)
{
    char *end;
    long x;
    if (!v || !*v || isspace((unsigned char)*v))
        return -1;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* A copy of v with a leading "~/" replaced by $HOME/. NULL on failure. */
static char *expand_home(const char *v)
{
    const char *home;
    char *r;
    size_t n;
    if (strncmp(v, "~/", 2) != 0)
        return strdup(v);
    home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    n = strlen(home) + strlen(v);
    r = malloc(n);
    if (r)
        snprintf(r, n, "%s%s", home, v + 1);
    return r;
}

/* Erase and free a secret. */
static void free_secret(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

static void sftp_destroy(void *self)
{
    sftp_store *s = self;
    if (!s)
        return;
    sftp__disconnect(s);
    free(s->hostname);
    free(s->khname);
    free(s->user);
    free(s->root);
    free(s->key_file);
    free_secret(s->key_passphrase);
    free_secret(s->password);
    free(s->known_hosts);
    free(s);
}

static int sftp_create(void **self, const dimple_kv *conf,
                       const dimple_host *host)
{
    sftp_store *s;
    const char *v;
    long n;
    int rc;

    *self = NULL;
    rc = dimple_kv_check(host, conf, sftp_known_keys);
    if (rc < 0)
        return rc;
    s = calloc(1, sizeof *s);
    if (!s)
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    s->host = host;
    s->sock = -1;
    s->port = 22;
    s->timeout_ms = 30000;
    rc = DIMPLE_ECONFIG;

    v = dimple_kv_get(conf, "host");
    if (!v || !*v) {
        rc = conf_error(host, conf, "host",
                        "required (the SSH server's name or address)");
        goto fail;
    }
    if (strpbrk(v, " \t/@[]")) {
        rc = conf_error(host, conf, "host", "not a host name or address");
        goto fail;
    }
    s->hostname = strdup(v);
    s->khname = strdup(v);
    if (!s->hostname || !s->khname)
        goto oom;
    for (char *p = s->khname; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    if ((v = dimple_kv_get(conf, "port")) != NULL) {
        if (parse_int(v, 1, 65535, &n) < 0) {
            rc = conf_error(host, conf, "port", "not a port number (1..65535)");
            goto fail;
        }
        s->port = (int)n;
    }

    v = dimple_kv_get(conf, "user");
    if (!v || !*v) {
        rc = conf_error(host, conf, "user", "required (the SSH login name)");
        goto fail;
    }
    s->user = strdup(v);
    if (!s->user)
        goto oom;

    v = dimple_kv_get(conf, "path");
    if (!v || !*v) {
        rc = conf_error(
            host, conf, "path",
            "required (the folder on the server that holds the objects)");
        goto fail;
    }
    {
        size_t len = strlen(v);
        while (len > 1 && v[len - 1] == '/')
            len--;
        s->root = strndup(v, len);
        if (!s->root)
            goto oom;
    }

    if ((v = dimple_kv_get(conf, "key_file")) != NULL) {
        if (!*v) {
            rc = conf_error(host, conf, "key_file", "empty");
            goto fail;
        }
        s->key_file = expand_home(v);
        if (!s->key_file) {
            rc =
                conf_error(host, conf, "key_file", "'~/' needs HOME to be set");
            goto fail;
        }
    }
    if ((v = dimple_kv_get(conf, "key_passphrase")) != NULL) {
        if (!s->key_file) {
            rc = conf_error(host, conf, "key_passphrase",
                            "set without key_file");
            goto fail;
        }
        s->key_passphrase = strdup(v);
        if (!s->key_passphrase)
            goto oom;
    }
    if ((v = dimple_kv_get(conf, "password")) != NULL) {
        if (!*v) {
            rc = conf_error(host, conf, "password", "empty");
            goto fail;
        }
        s->password = strdup(v);
        if (!s->password)
            goto oom;
    }

    v = dimple_kv_get(conf, "host_key_check");
    if (!v || strcmp(v, "strict") == 0) {
        s->hostkey_check = SFTP_HKC_STRICT;
    } else if (strcmp(v, "accept-new") == 0) {
        s->hostkey_check = SFTP_HKC_ACCEPT_NEW;
    } else if (strcmp(v, "off") == 0) {
        s->hostkey_check = SFTP_HKC_OFF;
    } else {
        rc = conf_error(host, conf, "host_key_check",
                        "must be strict, accept-new or off");
        goto fail;
    }

    v = dimple_kv_get(conf, "known_hosts");
    if (v && !*v) {
        rc = conf_error(host, conf, "known_hosts", "empty");
        goto fail;
    }
    s->known_hosts = expand_home(v ? v : "~/.ssh/known_hosts");
    if (!s->known_hosts) {
        if (s->hostkey_check != SFTP_HKC_OFF) {
            rc = conf_error(
                host, conf, "known_hosts",
                v ? "'~/' needs HOME to be set"
                  : "not set, and HOME is unset (no ~/.ssh/known_hosts)");
            goto fail;
        }
    }

    if ((v = dimple_kv_get(conf, "timeout")) != NULL) {
        if (parse_int(v, 1, 3600, &n) < 0) {
            rc = conf_error(host, conf, "timeout",
                            "not a number of seconds (1..3600)");
            goto fail;
        }
        s->timeout_ms = n * 1000;
    }

    if (strchr(s->hostname, ':'))
        snprintf(s->where, sizeof s->where, "%s@[%s]:%d", s->user, s->hostname,
                 s->port);
    else
        snprintf(s->where, sizeof s->where, "%s@%s:%d", s->user, s->hostname,
                 s->port);

    sftp__global_init();
    *self = s;
    return DIMPLE_OK;

oom:
    rc = dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
fail:
    sftp_destroy(s);
    return rc;
}

static int sftp_put(void *self, const char *key, const void *data, size_t len)
{
    return sftp__put(self, key, data, len, 0);
}

static int sftp_put_if_absent(void *self, const char *key, const void *data,
                              size_t len)
{
    return sftp__put(self, key, data, len, 1);
}

static int sftp_get(void *self, const char *key, const dimple_sink *out)
{
    return sftp__get(self, key, out);
}

static int sftp_list(void *self, const char *prefix, const char *start_after,
                     unsigned flags, dimple_list_cb cb, void *payload)
{
    return sftp__list(self, prefix, start_after, flags, cb, payload);
}

static int sftp_remove(void *self, const char *key)
{
    return sftp__remove(self, key);
}

static const dimple_storage_vtable sftp_vtable = {
    .size = sizeof(dimple_storage_vtable),
    .create = sftp_create,
    .destroy = sftp_destroy,
    .put = sftp_put,
    .get = sftp_get,
    .list = sftp_list,
    .remove = sftp_remove,
    .put_if_absent = sftp_put_if_absent,
};

static const dimple_plugin sftp_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_STORAGE,
    .name = "sftp",
    .version = "0.1.0",
    .description = "objects as files on an SSH server (SFTP, libssh2)",
    .vt.storage = &sftp_vtable,
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &sftp_plugin;
}
