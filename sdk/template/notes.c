/*
 * notes.c — a copy-me DimpleDb storage plugin.
 *
 * It keeps every object as one file in a single folder, the file named by
 * the hex encoding of the key. Hex names can never contain '/' or "..", so
 * no key, however hostile, can leave the folder, and keys need no escaping
 * rules of their own. Small and obviously correct beats fast here: copy it,
 * rename "notes" to your plugin's name, and replace the bodies.
 *
 * What every plugin must do (docs/plugins.md has the full guide):
 *  - export only dimple_plugin_entry (built with hidden visibility);
 *    DIMPLE_STORAGE_PLUGIN at the end defines it, with the descriptor and
 *    the vtable;
 *  - reject configuration keys it does not know (dimple_kv_check) and read
 *    the others with dimple_conf_*, which name the file:line of a bad value;
 *  - report errors with dimple_errorf and return a negative DIMPLE_E* code;
 *    never print, exit or abort; never put a secret in a message;
 *  - hand bytes to the core only through the sink it is given.
 * And every storage plugin: check keys again where they become paths or
 * queries (dimple_key_check), and list in byte order (dimple_lister).
 */
#define _POSIX_C_SOURCE 200809L /* strdup, fsync, dirent */
#include <dimple/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct notes {
    char *dir;
    const dimple_host *host;
} notes;

static int notes_create(void **self, const dimple_kv *conf,
                        const dimple_host *host)
{
    static const char *const known[] = {"path", NULL};
    char path[4096];
    notes *n;
    int rc;

    /* path is required; a relative one is relative to dimple.conf. */
    if ((rc = dimple_kv_check(host, conf, known)) ||
        (rc = dimple_conf_file(host, conf, "path", NULL, path, sizeof path)))
        return rc;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return dimple_errorf(host, DIMPLE_EIO, "cannot create %s: %s", path,
                             strerror(errno));
    n = calloc(1, sizeof *n);
    if (!n || !(n->dir = strdup(path))) {
        free(n);
        return DIMPLE_ENOMEM;
    }
    n->host = host;
    *self = n;
    return DIMPLE_OK;
}

static void notes_destroy(void *self)
{
    notes *n = self;
    if (n)
        free(n->dir);
    free(n);
}

/* "<dir>/<hex of key><suffix>", malloc'd. */
static char *notes_path(const notes *n, const char *key, const char *suffix)
{
    size_t klen = strlen(key), dlen = strlen(n->dir), slen = strlen(suffix);
    char *p = malloc(dlen + 1 + 2 * klen + slen + 1), *q;
    if (!p)
        return NULL;
    memcpy(p, n->dir, dlen);
    q = p + dlen;
    *q++ = '/';
    for (size_t i = 0; i < klen; i++)
        q += sprintf(q, "%02x", (unsigned char)key[i]);
    memcpy(q, suffix, slen + 1);
    return p;
}

static int notes_write_file(notes *n, const char *path, const void *data,
                            size_t len, const char *key)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *p = data;
    if (fd < 0)
        return dimple_errorf(n->host, DIMPLE_EIO, "put %s: %s", key,
                             strerror(errno));
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(path);
            return dimple_errorf(n->host, DIMPLE_EIO, "put %s: %s", key,
                                 strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    /* fsync before the rename: otherwise a crash can leave the new name
     * pointing at an empty file, which the contract forbids. */
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(path);
        return dimple_errorf(n->host, DIMPLE_EIO, "put %s: fsync: %s", key,
                             strerror(errno));
    }
    return DIMPLE_OK;
}

static int notes_put(void *self, const char *key, const void *data, size_t len)
{
    notes *n = self;
    char *final = NULL, *tmp = NULL;
    /* Keys come from remote data: check them even though the core does. */
    int rc = dimple_key_check(n->host, "put", key);

    if (rc)
        goto out;
    rc = DIMPLE_ENOMEM;
    if (!(final = notes_path(n, key, "")) ||
        !(tmp = notes_path(n, key, ".tmp")))
        goto out;
    rc = notes_write_file(n, tmp, data, len, key);
    if (rc)
        goto out;
    /* rename() replaces atomically: readers see the old or the new file. */
    if (rename(tmp, final) != 0) {
        rc = dimple_errorf(n->host, DIMPLE_EIO, "put %s: rename: %s", key,
                           strerror(errno));
        unlink(tmp);
    }
out:
    free(final);
    free(tmp);
    return rc;
}

static int notes_get(void *self, const char *key, const dimple_sink *out)
{
    notes *n = self;
    char *path, buf[65536];
    int fd, rc = dimple_key_check(n->host, "get", key);
    ssize_t r;

    if (rc)
        return rc;
    if (!(path = notes_path(n, key, "")))
        return DIMPLE_ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return errno == ENOENT
                   ? dimple_errorf(n->host, DIMPLE_ENOTFOUND, "no object %s",
                                   key)
                   : dimple_errorf(n->host, DIMPLE_EIO, "get %s: %s", key,
                                   strerror(errno));
    while (rc == DIMPLE_OK && (r = read(fd, buf, sizeof buf)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = dimple_errorf(n->host, DIMPLE_EIO, "get %s: %s", key,
                               strerror(errno));
        else
            rc = dimple_sink_write(out, buf, (size_t)r);
    }
    close(fd);
    return rc;
}

static int notes_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Decode a hex file name into a key; NULL for names that are not ours. */
static char *notes_decode(const char *name)
{
    size_t len = strlen(name);
    char *key;
    if (len == 0 || len % 2 || strspn(name, "0123456789abcdef") != len)
        return NULL;
    if (!(key = malloc(len / 2 + 1)))
        return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        sscanf(name + 2 * i, "%2x", &v);
        key[i] = (char)v;
    }
    key[len / 2] = '\0';
    return key;
}

static int notes_list(void *self, const char *prefix, const char *start_after,
                      unsigned flags, dimple_list_cb cb, void *payload)
{
    notes *n = self;
    dimple_lister l =
        dimple_lister_begin(n->host, prefix, start_after, flags, cb, payload);
    size_t count = 0, cap = 0;
    char **keys = NULL;
    struct dirent *e;
    int rc = DIMPLE_OK;
    DIR *d;

    if (!dimple_prefix_valid(prefix))
        return dimple_errorf(n->host, DIMPLE_EINVAL,
                             "list: invalid prefix '%s'", prefix);
    if (!(d = opendir(n->dir)))
        return dimple_errorf(n->host, DIMPLE_EIO, "list %s: %s", n->dir,
                             strerror(errno));
    /* Collect every key, then sort: readdir's order is the file system's,
     * the contract's is bytes. The lister keeps those under prefix and
     * after start_after, and reports each folder once for SHALLOW. */
    while ((e = readdir(d))) {
        char *key = notes_decode(e->d_name);
        if (!key)
            continue;
        if (count == cap) {
            char **k = realloc(keys, (cap = cap ? 2 * cap : 64) * sizeof *k);
            if (!k) {
                free(key);
                rc = DIMPLE_ENOMEM;
                break;
            }
            keys = k;
        }
        keys[count++] = key;
    }
    closedir(d);
    if (keys)
        qsort(keys, count, sizeof *keys, notes_cmp);
    for (size_t i = 0; rc == DIMPLE_OK && i < count; i++)
        rc = dimple_lister_add(&l, keys[i]);
    for (size_t i = 0; i < count; i++)
        free(keys[i]);
    free(keys);
    return rc;
}

static int notes_remove(void *self, const char *key)
{
    notes *n = self;
    char *path;
    int rc = dimple_key_check(n->host, "remove", key);

    if (rc)
        return rc;
    if (!(path = notes_path(n, key, "")))
        return DIMPLE_ENOMEM;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = dimple_errorf(n->host, DIMPLE_EIO, "remove %s: %s", key,
                           strerror(errno));
    free(path);
    return rc;
}

/* The vtable, the descriptor and dimple_plugin_entry. put_if_absent is
 * optional: left out, the core emulates it. The name must match the file:
 * dimple-notes.so. */
DIMPLE_STORAGE_PLUGIN("notes", "0.1.0",
                      "template: one file per object in a flat folder",
                      .create = notes_create, .destroy = notes_destroy,
                      .put = notes_put, .get = notes_get, .list = notes_list,
                      .remove = notes_remove)
