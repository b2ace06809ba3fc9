/*
 * jsonl.c — notifier plugin: one JSON line per committed change.
 *
 *   [notifier.log]
 *   plugin = jsonl
 *   path   = -            ; "-" = standard output, else a file (appended)
 *
 * Each notify() (one commit) becomes ONE write() of all its lines to a file
 * opened with O_APPEND, so lines from several processes appending to the
 * same file never interleave mid-line (for a commit up to PIPE_BUF bytes on
 * a pipe; regular files are appended whole by Linux). Writes to a file are
 * local and quick, which keeps notify() within the "must not block beyond a
 * bound" rule of the notifier vtable.
 */
#define _POSIX_C_SOURCE 200809L
#include <dimple/plugin.h>

#include "event_json.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct jsonl {
    int fd;
    int own_fd; /* 0 for standard output */
    char *path;
    const dimple_host *host;
} jsonl;

static int jsonl_create(void **self, const dimple_kv *conf,
                        const dimple_host *host)
{
    static const char *const known[] = {"path", NULL};
    const char *path = dimple_kv_get(conf, "path");
    jsonl *j;
    int rc = dimple_kv_check(host, conf, known);
    if (rc)
        return rc;
    if (!path || !*path)
        return dimple_errorf(host, DIMPLE_ECONFIG,
                             "missing key 'path' (a file, or - for stdout)");
    j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path))) {
        free(j);
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    }
    j->host = host;
    if (strcmp(path, "-") == 0) {
        j->fd = STDOUT_FILENO;
    } else {
        j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (j->fd < 0) {
            rc = dimple_errorf(host, DIMPLE_EIO, "cannot open %s: %s", path,
                               strerror(errno));
            free(j->path);
            free(j);
            return rc;
        }
        j->own_fd = 1;
    }
    *self = j;
    return DIMPLE_OK;
}

static void jsonl_destroy(void *self)
{
    jsonl *j = self;
    if (!j)
        return;
    if (j->own_fd)
        close(j->fd);
    free(j->path);
    free(j);
}

static int jsonl_notify(void *self, const dimple_event *events, size_t n)
{
    jsonl *j = self;
    ev_buf b = {0};
    size_t off = 0;
    int rc = DIMPLE_OK;
    for (size_t i = 0; i < n; i++) {
        ev_event(&b, &events[i]);
        ev_put(&b, "\n", 1);
    }
    if (b.oom) {
        free(b.p);
        return dimple_errorf(j->host, DIMPLE_ENOMEM, "out of memory");
    }
    while (off < b.n) {
        ssize_t w = write(j->fd, b.p + off, b.n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = dimple_errorf(j->host, DIMPLE_EIO, "write %s: %s", j->path,
                               strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    free(b.p);
    return rc;
}

static const dimple_notifier_vtable jsonl_vt = {
    .size = sizeof(dimple_notifier_vtable),
    .create = jsonl_create,
    .destroy = jsonl_destroy,
    .notify = jsonl_notify,
};

static const dimple_plugin jsonl_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_NOTIFIER,
    .name = "jsonl",
    .version = "0.1.0",
    .description = "one JSON line per committed change, to a file or stdout",
    .vt.notifier = &jsonl_vt,
};

const dimple_plugin *dimple_plugin_entry(void)
{
    return &jsonl_plugin;
}
