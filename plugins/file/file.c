/*
 * dimple-file — a storage backend on a local (or mounted) folder.
 *
 * A key is a relative path under the root: "batches/a/1" is the file
 * ROOT/batches/a/1, so the store can be read with ordinary tools.
 *
 * Atomicity: put writes ".tmp-<random>" in the object's folder, fsyncs it,
 * renames it over the final name and fsyncs the folder; a reader sees the
 * old object, the new one or none, never a partial one, even if the
 * process dies or the machine loses power (with fsync on). put_if_absent
 * links the temp file to the final name instead (link fails if the name
 * exists), which is atomic against concurrent writers in other processes.
 *
 * Safety: every path is opened segment by segment from the root's
 * descriptor with O_NOFOLLOW, so neither a hostile key (refused anyway:
 * dimple_key_valid) nor a symbolic link planted inside the root can make
 * the plugin read or write outside it. Temporary names (".tmp-" segments)
 * are reserved: such keys are refused and such files never listed.
 *
 * Keys:
 *   path  = FOLDER   the root, created if missing (required)
 *   fsync = on|off   default on; off skips fsync (tests, benchmarks: a
 *                    crash may then lose or truncate recent objects)
 */
#include <dimple/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-"
#define TMP_PREFIX_LEN 5
#define CHUNK (64 * 1024)
/* A concurrent remove may prune the folder a put is writing into: the put
 * then walks again, after a growing pause (two processes in lockstep could
 * otherwise lose the same race every time: seen under valgrind). Bounded
 * so a broken file system cannot loop forever: ~0.2 s of pauses in all. */
#define PUT_ATTEMPTS 32
#define PUT_PAUSE_NS 20000L /* times the attempt number */

typedef struct file_self {
    const dimple_host *host;
    char *root; /* as configured, for messages */
    int rootfd;
    bool fsync;
} file_self;

/* A key split into folder segments and the final name. */
typedef struct split_key {
    char *buf;    /* the key, with '/' replaced by NUL */
    char **segs;  /* nseg folder segments, then the name */
    size_t nseg;  /* folders */
    int *fds;     /* fds[0] = rootfd (not owned), fds[i] = folder i */
    size_t nopen; /* fds[1..nopen] are open */
} split_key;

static int errno_code(int err)
{
    switch (err) {
    case ENOMEM:
        return DIMPLE_ENOMEM;
    case ENAMETOOLONG:
        return DIMPLE_EINVAL;
    default:
        return DIMPLE_EIO;
    }
}

/* "<op> '<key>': <what>: <strerror> (in <root>)" with a code from errno. */
static int os_error(file_self *f, int err, const char *op, const char *key,
                    const char *what)
{
    return dimple_errorf(f->host, errno_code(err), "%s '%s': %s: %s (in %s)",
                         op, key, what, strerror(err), f->root);
}

static bool segment_reserved(const char *seg, size_t len)
{
    return len >= TMP_PREFIX_LEN &&
           memcmp(seg, TMP_PREFIX, TMP_PREFIX_LEN) == 0;
}

static int check_key(file_self *f, const char *op, const char *key)
{
    const char *seg;
    if (!dimple_key_valid(key))
        return dimple_errorf(f->host, DIMPLE_EINVAL,
                             "%s: invalid key '%s' (keys are relative paths "
                             "without empty, '.' or '..' segments)",
                             op, key ? key : "(null)");
    /* Checked again here because the key becomes a path. */
    for (seg = key;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') ||
            (len == 2 && seg[0] == '.' && seg[1] == '.') ||
            memchr(seg, '\\', len))
            return dimple_errorf(f->host, DIMPLE_EINVAL, "%s: invalid key '%s'",
                                 op, key);
        if (segment_reserved(seg, len))
            return dimple_errorf(f->host, DIMPLE_EINVAL,
                                 "%s: invalid key '%s': segments starting "
                                 "with '" TMP_PREFIX "' are reserved for "
                                 "temporary files",
                                 op, key);
        if (!end)
            break;
        seg = end + 1;
    }
    return DIMPLE_OK;
}

static void split_free(split_key *k)
{
    for (size_t i = 1; i <= k->nopen; i++)
        close(k->fds[i]);
    free(k->fds);
    free(k->segs);
    free(k->buf);
    memset(k, 0, sizeof *k);
}

static int split_init(file_self *f, split_key *k, const char *key)
{
    size_t n = 1;
    memset(k, 0, sizeof *k);
    for (const char *p = key; *p; p++)
        n += *p == '/';
    k->buf = strdup(key);
    k->segs = calloc(n, sizeof *k->segs);
    k->fds = calloc(n, sizeof *k->fds);
    if (!k->buf || !k->segs || !k->fds) {
        split_free(k);
        return dimple_errorf(f->host, DIMPLE_ENOMEM, "'%s': out of memory",
                             key);
    }
    k->nseg = n - 1;
    k->segs[0] = k->buf;
    for (size_t i = 1; i < n; i++) {
        char *slash = strchr(k->segs[i - 1], '/');
        *slash = '\0';
        k->segs[i] = slash + 1;
    }
    k->fds[0] = f->rootfd;
    return DIMPLE_OK;
}

/* The folder path of segment i (for messages): "a/b" for segs a, b. */
static const char *seg_path(const split_key *k, const char *key, size_t i,
                            char *out, size_t cap)
{
    size_t len = (size_t)(k->segs[i] - k->buf) + strlen(k->segs[i]);
    snprintf(out, cap, "%.*s", (int)len, key);
    return out;
}

enum { WALK_RETRY = 1 };

/*
 * Open the key's folders from the root without following links. create:
 * make missing folders (fsyncing the parent of each new one); a folder that
 * vanishes under us is WALK_RETRY. Without create, a missing folder (or an
 * object where a folder should be) is DIMPLE_ENOTFOUND, no message.
 */
static int walk(file_self *f, split_key *k, const char *op, const char *key,
                bool create)
{
    char where[4096];
    for (size_t i = 0; i < k->nseg; i++) {
        int parent = k->fds[i];
        int fd, tries = 0;
        bool made = false;
    again:
        fd = openat(parent, k->segs[i],
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create && ++tries > PUT_ATTEMPTS)
            return WALK_RETRY; /* made and pruned again and again */
        if (fd < 0 && errno == ENOENT && create) {
            if (mkdirat(parent, k->segs[i], 0777) == 0) {
                made = true;
                goto again;
            }
            if (errno == EEXIST)
                goto again; /* made by someone else meanwhile */
            if (errno == ENOENT)
                return WALK_RETRY; /* our parent was pruned */
            return os_error(f, errno, op, key,
                            seg_path(k, key, i, where, sizeof where));
        }
        if (fd < 0) {
            int err = errno;
            struct stat st;
            if (err == ENOENT && !create)
                return DIMPLE_ENOTFOUND;
            if ((err == ELOOP || err == ENOTDIR) &&
                fstatat(parent, k->segs[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                return dimple_errorf(
                    f->host, DIMPLE_EIO,
                    "%s '%s': '%s' is a symbolic link; links are not followed "
                    "(in %s)",
                    op, key, seg_path(k, key, i, where, sizeof where), f->root);
            if (err == ENOTDIR && !create)
                return DIMPLE_ENOTFOUND;
            if (err == ENOTDIR)
                return dimple_errorf(
                    f->host, DIMPLE_ECONFLICT,
                    "%s '%s': '%s' is an object, so it cannot also be a "
                    "folder (in %s)",
                    op, key, seg_path(k, key, i, where, sizeof where), f->root);
            if (err == ENOENT)
                return WALK_RETRY;
            return os_error(f, err, op, key,
                            seg_path(k, key, i, where, sizeof where));
        }
        k->fds[i + 1] = fd;
        k->nopen = i + 1;
        /* The new folder's name must survive a crash like the object. */
        if (made && f->fsync && fsync(parent) != 0)
            return os_error(f, errno, op, key, "fsync folder");
    }
    return DIMPLE_OK;
}

static void tmp_name(char out[32])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[8];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* No entropy yet: uniqueness comes from O_EXCL anyway. */
        uint64_t x = (uint64_t)getpid() ^ ((uint64_t)time(NULL) << 20) ^
                     (uint64_t)clock();
        memcpy(r, &x, sizeof r);
    }
    memcpy(out, TMP_PREFIX, TMP_PREFIX_LEN);
    for (size_t i = 0; i < sizeof r; i++) {
        out[TMP_PREFIX_LEN + 2 * i] = hex[r[i] >> 4];
        out[TMP_PREFIX_LEN + 2 * i + 1] = hex[r[i] & 15];
    }
    out[TMP_PREFIX_LEN + 2 * sizeof r] = '\0';
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int store(file_self *f, const char *op, const char *key,
                 const void *data, size_t len, bool if_absent)
{
    split_key k;
    char tmp[32];
    int rc, fd = -1, dfd = -1;
    bool have_tmp = false;
    const char *name;

    if ((rc = check_key(f, op, key)) || (rc = split_init(f, &k, key)))
        return rc;
    name = k.segs[k.nseg];
    for (int attempt = 0;; attempt++) {
        rc = walk(f, &k, op, key, true);
        if (rc == DIMPLE_OK) {
            dfd = k.fds[k.nseg];
            do {
                tmp_name(tmp);
                fd = openat(
                    dfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
            } while (fd < 0 && errno == EEXIST);
            if (fd >= 0)
                break;
            if (errno != ENOENT || attempt + 1 >= PUT_ATTEMPTS) {
                rc = os_error(f, errno, op, key, "create temporary file");
                goto out;
            }
            rc = WALK_RETRY; /* the folder was pruned under us */
        }
        if (rc != WALK_RETRY)
            goto out;
        if (attempt + 1 >= PUT_ATTEMPTS) {
            rc = dimple_errorf(f->host, DIMPLE_EIO,
                               "%s '%s': its folder keeps vanishing (in %s)",
                               op, key, f->root);
            goto out;
        }
        for (size_t i = 1; i <= k.nopen; i++)
            close(k.fds[i]);
        k.nopen = 0;
        struct timespec pause = {0, PUT_PAUSE_NS * (attempt + 1)};
        nanosleep(&pause, NULL);
    }
    have_tmp = true;

    if (write_all(fd, data, len) != 0) {
        rc = os_error(f, errno, op, key, "write");
        goto out;
    }
    if (f->fsync && fsync(fd) != 0) {
        rc = os_error(f, errno, op, key, "fsync");
        goto out;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0) {
        rc = os_error(f, errno, op, key, "close");
        goto out;
    }

    if (if_absent) {
        /* link(2) fails when the name exists: only one writer wins. */
        if (linkat(dfd, tmp, dfd, name, 0) != 0) {
            int err = errno;
            struct stat st;
            if (err == EPERM || err == EOPNOTSUPP || err == EMLINK) {
                /* No hard links here (some FUSE or FAT mounts). */
                if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == 0) {
                    have_tmp = false;
                    goto synced;
                }
                err = errno;
            }
            if (err == EEXIST &&
                fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISDIR(st.st_mode))
                rc = dimple_errorf(f->host, DIMPLE_ECONFLICT,
                                   "%s '%s': a folder of other keys has this "
                                   "name (in %s)",
                                   op, key, f->root);
            else if (err == EEXIST)
                rc = dimple_errorf(f->host, DIMPLE_EEXISTS,
                                   "%s '%s': the object already exists", op,
                                   key);
            else
                rc = os_error(f, err, op, key, "link");
            goto out;
        }
    } else if (renameat(dfd, tmp, dfd, name) != 0) {
        int err = errno;
        if (err == EISDIR || err == ENOTEMPTY || err == EEXIST)
            rc = dimple_errorf(f->host, DIMPLE_ECONFLICT,
                               "%s '%s': a folder of other keys has this name "
                               "(in %s)",
                               op, key, f->root);
        else
            rc = os_error(f, err, op, key, "rename");
        goto out;
    } else {
        have_tmp = false;
    }
synced:
    if (f->fsync && fsync(dfd) != 0) {
        rc = os_error(f, errno, op, key, "fsync folder");
        goto out;
    }
    rc = DIMPLE_OK;
out:
    if (fd >= 0)
        close(fd);
    if (have_tmp)
        unlinkat(dfd, tmp, 0); /* after link(2) too: the name holds it */
    split_free(&k);
    return rc;
}

/* ------------------------------------------------------------ listing */

typedef struct entry {
    char *name;
    size_t len;
    bool dir;
} entry;

/* Byte order of the keys: a folder compares as "name/". */
static int entry_cmp(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->name, b->name, n), ca, cb;
    if (r != 0)
        return r;
    /* One name is a prefix of the other: what follows it decides, '/' for
     * a folder, the end (lowest) for an object. */
    ca = a->len > n ? (unsigned char)a->name[n] : a->dir ? '/' : -1;
    cb = b->len > n ? (unsigned char)b->name[n] : b->dir ? '/' : -1;
    return ca < cb ? -1 : ca > cb;
}

/* A directory entry that can be part of a key (not ".", a temp file, a
 * name with a backslash, ...). */
static bool name_listable(const char *name)
{
    size_t len = strlen(name);
    if ((len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    return !segment_reserved(name, len) && !strchr(name, '\\');
}

/* 1 regular file, 2 folder, 0 anything else (links included). */
static int entry_type(int dfd, const struct dirent *de)
{
    struct stat st;
    if (de->d_type == DT_REG)
        return 1;
    if (de->d_type == DT_DIR)
        return 2;
    if (de->d_type != DT_UNKNOWN)
        return 0;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return S_ISREG(st.st_mode) ? 1 : S_ISDIR(st.st_mode) ? 2 : 0;
}

typedef struct lister {
    file_self *f;
    const char *start_after; /* NULL: from the start */
    unsigned flags;
    dimple_list_cb cb;
    void *payload;
    char *path; /* the key prefix of the folder being listed */
    size_t len, cap;
} lister;

static int path_push(lister *l, const entry *e)
{
    size_t need = l->len + e->len + 2;
    if (need > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        char *p;
        while (cap < need)
            cap *= 2;
        if (!(p = realloc(l->path, cap)))
            return DIMPLE_ENOMEM;
        l->path = p;
        l->cap = cap;
    }
    memcpy(l->path + l->len, e->name, e->len);
    l->len += e->len;
    if (e->dir)
        l->path[l->len++] = '/';
    l->path[l->len] = '\0';
    return DIMPLE_OK;
}

/* Read a folder: listable entries starting with namepref, in key order. */
static int read_folder(lister *l, int dfd, const char *namepref, entry **out,
                       size_t *nout)
{
    DIR *d;
    struct dirent *de;
    entry *v = NULL;
    size_t n = 0, cap = 0, plen = strlen(namepref);
    int rc = DIMPLE_OK, fd = dup(dfd);

    *out = NULL;
    *nout = 0;
    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        return os_error(l->f, errno, "list", l->path ? l->path : "",
                        "open folder");
    }
    rewinddir(d); /* the dup shares the offset of dfd */
    while ((errno = 0, de = readdir(d))) {
        int type;
        if (strncmp(de->d_name, namepref, plen) != 0 ||
            !name_listable(de->d_name) || !(type = entry_type(dirfd(d), de)))
            continue;
        if (n == cap) {
            entry *grown;
            cap = cap ? cap * 2 : 64;
            if (!(grown = realloc(v, cap * sizeof *v))) {
                rc = DIMPLE_ENOMEM;
                break;
            }
            v = grown;
        }
        v[n].len = strlen(de->d_name);
        if (!(v[n].name = malloc(v[n].len + 1))) {
            rc = DIMPLE_ENOMEM;
            break;
        }
        memcpy(v[n].name, de->d_name, v[n].len + 1);
        v[n++].dir = type == 2;
    }
    if (rc == DIMPLE_OK && errno != 0)
        rc = os_error(l->f, errno, "list", l->path ? l->path : "",
                      "read folder");
    else if (rc == DIMPLE_ENOMEM)
        rc = dimple_errorf(l->f->host, rc, "list: out of memory");
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(v[i].name);
        free(v);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, entry_cmp);
    *out = v;
    *nout = n;
    return DIMPLE_OK;
}

static void entries_free(entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Does the folder hold at least one object (at any depth)? */
static bool holds_object(int dfd, int depth)
{
    DIR *d;
    struct dirent *de;
    bool found = false;
    int fd;
    if (depth > 256 || (fd = dup(dfd)) < 0)
        return false;
    if (!(d = fdopendir(fd))) {
        close(fd);
        return false;
    }
    rewinddir(d);
    while (!found && (de = readdir(d))) {
        int type;
        if (!name_listable(de->d_name) || !(type = entry_type(dirfd(d), de)))
            continue;
        if (type == 1) {
            found = true;
        } else {
            int sub = openat(dirfd(d), de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                found = holds_object(sub, depth + 1);
                close(sub);
            }
        }
    }
    closedir(d);
    return found;
}

static int list_folder(lister *l, int dfd, const char *namepref)
{
    entry *v;
    size_t n, base = l->len;
    int rc = read_folder(l, dfd, namepref, &v, &n);
    const char *sa = l->start_after;

    for (size_t i = 0; rc == DIMPLE_OK && i < n; i++) {
        if ((rc = path_push(l, &v[i]))) {
            rc = dimple_errorf(l->f->host, rc, "list: out of memory");
            break;
        }
        if (!v[i].dir) {
            if (!sa || strcmp(l->path, sa) > 0)
                rc = l->cb(l->payload, l->path);
        } else if (sa && strcmp(l->path, sa) <= 0 &&
                   strncmp(sa, l->path, l->len) != 0) {
            /* every key below sorts before start_after */
        } else {
            int sub = openat(dfd, v[i].name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                if (errno != ENOENT) /* else: removed meanwhile */
                    rc = os_error(l->f, errno, "list", l->path, "open folder");
            } else if (l->flags & DIMPLE_LIST_SHALLOW) {
                if ((!sa || strcmp(l->path, sa) > 0) && holds_object(sub, 0))
                    rc = l->cb(l->payload, l->path);
                close(sub);
            } else {
                rc = list_folder(l, sub, "");
                close(sub);
            }
        }
        l->len = base;
        l->path[base] = '\0';
    }
    entries_free(v, n);
    return rc;
}

/* ------------------------------------------------------------- vtable */

static const char *const known_keys[] = {"path", "fsync", NULL};

static int conf_error(const dimple_host *host, const dimple_kv *kv,
                      const char *what)
{
    return dimple_errorf(
        host, DIMPLE_ECONFIG, "%s:%d: [%s] %s",
        host && host->config_file ? host->config_file : "(config)",
        kv ? kv->line : 0, host && host->section ? host->section : "storage",
        what);
}

/* mkdir -p: make every missing folder of path. */
static int make_folders(const char *path)
{
    char *p = strdup(path);
    int rc = 0;
    if (!p)
        return -1;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                rc = -1;
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return rc;
}

static int file_create(void **self, const dimple_kv *conf,
                       const dimple_host *host)
{
    const dimple_kv *path = dimple_kv_find(conf, "path");
    file_self *f = NULL;
    int do_fsync, rc;

    *self = NULL;
    if ((rc = dimple_kv_check(host, conf, known_keys)))
        return rc;
    if (!path || !path->value || !*path->value)
        return conf_error(host, path,
                          "path is required: the folder of the file store");
    if ((rc = dimple_conf_bool(host, conf, "fsync", 1, &do_fsync)))
        return rc;
    char root[4096];
    if (dimple_conf_path(host, path->value, root, sizeof root) != DIMPLE_OK)
        return conf_error(host, path, "path is too long");
    if (!(f = calloc(1, sizeof *f)) || !(f->root = strdup(root))) {
        free(f);
        return dimple_errorf(host, DIMPLE_ENOMEM, "out of memory");
    }
    f->host = host;
    f->fsync = do_fsync;
    if (make_folders(f->root) != 0) {
        rc = dimple_errorf(host, DIMPLE_EIO, "cannot create the folder %s: %s",
                           f->root, strerror(errno));
        goto fail;
    }
    f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->rootfd < 0) {
        rc = dimple_errorf(host, DIMPLE_EIO, "cannot open the folder %s: %s",
                           f->root, strerror(errno));
        goto fail;
    }
    *self = f;
    return DIMPLE_OK;
fail:
    free(f->root);
    free(f);
    return rc;
}

static void file_destroy(void *self)
{
    file_self *f = self;
    if (!f)
        return;
    close(f->rootfd);
    free(f->root);
    free(f);
}

static int file_put(void *self, const char *key, const void *data, size_t len)
{
    return store(self, "put", key, data, len, false);
}

static int file_put_if_absent(void *self, const char *key, const void *data,
                              size_t len)
{
    return store(self, "put_if_absent", key, data, len, true);
}

static int file_get(void *self, const char *key, const dimple_sink *out)
{
    file_self *f = self;
    split_key k;
    unsigned char *chunk = NULL;
    struct stat st;
    size_t cap;
    int rc, fd = -1;

    if ((rc = check_key(f, "get", key)) || (rc = split_init(f, &k, key)))
        return rc;
    rc = walk(f, &k, "get", key, false);
    if (rc == DIMPLE_ENOTFOUND)
        goto notfound;
    if (rc)
        goto out;
    /* O_NONBLOCK: a FIFO planted in the store must not hang us. */
    fd = openat(k.fds[k.nseg], k.segs[k.nseg],
                O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            goto notfound;
        if (errno == ELOOP)
            rc = dimple_errorf(f->host, DIMPLE_EIO,
                               "get '%s': a symbolic link; links are not "
                               "followed (in %s)",
                               key, f->root);
        else
            rc = os_error(f, errno, "get", key, "open");
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = os_error(f, errno, "get", key, "stat");
        goto out;
    }
    if (S_ISDIR(st.st_mode))
        goto notfound; /* a folder of other keys is not an object */
    if (!S_ISREG(st.st_mode)) {
        rc =
            dimple_errorf(f->host, DIMPLE_EIO,
                          "get '%s': not a regular file (in %s)", key, f->root);
        goto out;
    }
    /* Small objects get a small buffer (most are; malloc of 64 KiB is
     * not free), large ones stream through CHUNK bytes at a time. */
    cap = st.st_size < CHUNK ? (size_t)st.st_size + 1 : CHUNK;
    if (!(chunk = malloc(cap))) {
        rc = dimple_errorf(f->host, DIMPLE_ENOMEM, "get '%s': out of memory",
                           key);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = os_error(f, errno, "get", key, "read");
            goto out;
        }
        if (n == 0)
            break;
        if ((rc = out->write(out->ctx, chunk, (size_t)n)))
            goto out;
    }
    rc = DIMPLE_OK;
    goto out;
notfound:
    rc = dimple_errorf(f->host, DIMPLE_ENOTFOUND,
                       "get '%s': no such object (in %s)", key, f->root);
out:
    if (fd >= 0)
        close(fd);
    free(chunk);
    split_free(&k);
    return rc;
}

static int file_list(void *self, const char *prefix, const char *start_after,
                     unsigned flags, dimple_list_cb cb, void *payload)
{
    file_self *f = self;
    lister l = {f,       start_after && *start_after ? start_after : NULL,
                flags,   cb,
                payload, NULL,
                0,       0};
    split_key k = {0};
    char *probe = NULL;
    const char *slash;
    size_t plen;
    int rc;

    if (!prefix)
        prefix = "";
    plen = strlen(prefix);
    /* A prefix is fine when some valid key could start with it. */
    if (!(probe = malloc(plen + 2)))
        return dimple_errorf(f->host, DIMPLE_ENOMEM, "list: out of memory");
    memcpy(probe, prefix, plen);
    memcpy(probe + plen, "x", 2);
    if (!dimple_prefix_valid(prefix) || !dimple_key_valid(probe)) {
        free(probe);
        return dimple_errorf(f->host, DIMPLE_EINVAL,
                             "list: invalid prefix '%s'", prefix);
    }
    /* The folder part of the prefix ("a/b/" of "a/b/c"), walked like a key
     * whose last segment is the partial name. */
    if ((rc = split_init(f, &k, probe)))
        goto out;
    k.segs[k.nseg][strlen(k.segs[k.nseg]) - 1] = '\0'; /* drop the 'x' */
    rc = walk(f, &k, "list", prefix, false);
    if (rc == DIMPLE_ENOTFOUND) {
        rc = DIMPLE_OK; /* no such folder: nothing to list */
        goto out;
    }
    if (rc)
        goto out;
    /* Keys are reported as the prefix's folder part + relative path. */
    slash = strrchr(prefix, '/');
    l.len = slash ? (size_t)(slash - prefix) + 1 : 0;
    l.cap = l.len + 256;
    if (!(l.path = malloc(l.cap))) {
        rc = dimple_errorf(f->host, DIMPLE_ENOMEM, "list: out of memory");
        goto out;
    }
    memcpy(l.path, prefix, l.len);
    l.path[l.len] = '\0';
    rc = list_folder(&l, k.fds[k.nseg], k.segs[k.nseg]);
out:
    free(l.path);
    free(probe);
    split_free(&k);
    return rc;
}

static int file_remove(void *self, const char *key)
{
    file_self *f = self;
    split_key k;
    int rc;
    size_t top;

    if ((rc = check_key(f, "remove", key)) || (rc = split_init(f, &k, key)))
        return rc;
    rc = walk(f, &k, "remove", key, false);
    if (rc == DIMPLE_ENOTFOUND) {
        rc = DIMPLE_OK; /* no folder, no object */
        goto out;
    }
    if (rc)
        goto out;
    if (unlinkat(k.fds[k.nseg], k.segs[k.nseg], 0) != 0) {
        /* Absent, or a folder of other keys, or below an object: there is
         * no such object, which is what remove wants. */
        if (errno != ENOENT && errno != EISDIR && errno != ENOTDIR &&
            errno != EPERM)
            rc = os_error(f, errno, "remove", key, "unlink");
        else if (errno == EPERM) {
            struct stat st; /* Linux says EISDIR; POSIX allows EPERM */
            if (fstatat(k.fds[k.nseg], k.segs[k.nseg], &st,
                        AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISDIR(st.st_mode))
                rc = os_error(f, EPERM, "remove", key, "unlink");
        }
        goto out;
    }
    /* Prune folders left empty, so listings do not show them; a put that
     * races with this walks again (see store()). */
    top = k.nseg;
    while (top > 0 &&
           unlinkat(k.fds[top - 1], k.segs[top - 1], AT_REMOVEDIR) == 0)
        top--;
    if (f->fsync && fsync(k.fds[top]) != 0)
        rc = os_error(f, errno, "remove", key, "fsync folder");
out:
    split_free(&k);
    return rc;
}

static const dimple_storage_vtable file_vtable = {
    .size = sizeof(dimple_storage_vtable),
    .create = file_create,
    .destroy = file_destroy,
    .put = file_put,
    .get = file_get,
    .list = file_list,
    .remove = file_remove,
    .put_if_absent = file_put_if_absent,
};

static const dimple_plugin file_plugin = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_STORAGE,
    .name = "file",
    .version = "1.0.0",
    .description = "objects as files under a local folder (atomic rename)",
    .vt.storage = &file_vtable,
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &file_plugin;
}
