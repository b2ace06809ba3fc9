/*
 * sftp_ops.c — put / get / list / remove over SFTP.
 *
 * put writes <folder>/.dimple-tmp-<random>, fsyncs it (fsync@openssh.com
 * when offered) and renames it onto the key:
 *  - put: posix-rename@openssh.com, an atomic replace (rename(2)). Without
 *    it (a non-OpenSSH server), the plain SFTP rename, which refuses an
 *    existing target: then the old object is removed first, so a reader
 *    may briefly see no object, never a partial one (docs/sftp.md).
 *  - put_if_absent: the plain SFTP rename. OpenSSH implements it as
 *    link(2) + unlink(2), and link fails if the key exists: an atomic
 *    exclusive create of a complete object.
 * Every operation runs at most twice: once more on a new connection when
 * the first one dropped (get only if nothing was handed to the sink yet).
 */
#include "sftp_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SFTP_IO_CHUNK (256u * 1024)
#define SFTP_WRITE_MAX (2u * 1024 * 1024)

/* -------------------------------------------------------------- keys */

int sftp__key_ok(const char *key)
{
    const char *seg;
    if (!dimple_key_valid(key) || strlen(key) > SFTP_KEY_MAX)
        return 0;
    for (seg = key;;) {
        size_t n = strcspn(seg, "/");
        if (n > SFTP_SEGMENT_MAX)
            return 0;
        if (n >= SFTP_TMP_PREFIX_LEN &&
            memcmp(seg, SFTP_TMP_PREFIX, SFTP_TMP_PREFIX_LEN) == 0)
            return 0;
        if (!seg[n])
            return 1;
        seg += n + 1;
    }
}

static int key_refused(sftp_store *s, const char *what, const char *key)
{
    return sftp__err(
        s, DIMPLE_EINVAL,
        "%s: invalid key '%s' (a relative path without empty, '.' or "
        "'..' segments, at most %d bytes, segments at most %d, none "
        "starting with '%s')",
        what, key ? key : "(null)", SFTP_KEY_MAX, SFTP_SEGMENT_MAX,
        SFTP_TMP_PREFIX);
}

/* root + "/" + rel (rel may be empty). */
static char *path_join(const sftp_store *s, const char *rel, size_t rlen)
{
    size_t rl = strlen(s->root);
    int slash = rl > 0 && s->root[rl - 1] != '/';
    char *p = malloc(rl + 1 + rlen + 1);
    if (!p)
        return NULL;
    memcpy(p, s->root, rl);
    if (rlen) {
        if (slash)
            p[rl++] = '/';
        memcpy(p + rl, rel, rlen);
        rl += rlen;
    }
    p[rl] = '\0';
    return p;
}

/* The folder part of a full path ("" → itself). */
static size_t dir_len(const char *full)
{
    const char *sl = strrchr(full, '/');
    if (!sl)
        return 0;
    return sl == full ? 1 : (size_t)(sl - full);
}

/* ------------------------------------------------------- retry driver */

typedef int (*op_fn)(sftp_store *s, void *arg);
typedef int (*retry_fn)(void *arg);

static int run_op(sftp_store *s, op_fn fn, retry_fn may_retry, void *arg)
{
    int attempt;
    for (attempt = 0;; attempt++) {
        int rc = sftp__ensure(s);
        if (rc < 0)
            return rc;
        rc = fn(s, arg);
        if (rc >= 0 || !s->broken)
            return rc;
        sftp__disconnect(s);
        if (attempt > 0 || (may_retry && !may_retry(arg)))
            return rc;
        dimple_logf(s->host, DIMPLE_LOG_INFO,
                    "%s: connection dropped; reconnecting once", s->where);
    }
}

/* ----------------------------------------------------- small SFTP ops */

/* lstat: 1 exists (mode in *perm, mtime in *mtime), 0 absent, <0 error. */
static int sftp_exists(sftp_store *s, const char *full, unsigned long *perm,
                       unsigned long *mtime)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc = libssh2_sftp_stat_ex(s->sftp, full, (unsigned)strlen(full),
                                  LIBSSH2_SFTP_LSTAT, &a);
    if (rc == 0) {
        if (perm)
            *perm =
                (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) ? a.permissions : 0;
        if (mtime)
            *mtime = (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? a.mtime : 0;
        return 1;
    }
    {
        long fx = sftp__status(s, rc);
        if (fx == (long)LIBSSH2_FX_NO_SUCH_FILE ||
            fx == (long)LIBSSH2_FX_NO_SUCH_PATH)
            return 0;
    }
    return sftp__fail(s, rc, "stat", full);
}

/* mkdir -p of the folder full[0..len): the deepest first, going up only
 * where the parent is missing (usually one round trip). */
static int mkdirs(sftp_store *s, const char *full, size_t len, int depth)
{
    int rc;
    if (len == 0 || (len == 1 && full[0] == '/'))
        return DIMPLE_OK;
    if (depth > 256)
        return sftp__err(s, DIMPLE_EINVAL, "mkdir: folder nesting too deep");
    rc = libssh2_sftp_mkdir_ex(s->sftp, full, (unsigned)len, 0755);
    if (rc == 0)
        return DIMPLE_OK;
    {
        long fx = sftp__status(s, rc);
        char *dir;
        size_t pl;
        if (fx < 0)
            return sftp__fail(s, rc, "mkdir", full);
        if (fx != (long)LIBSSH2_FX_NO_SUCH_FILE &&
            fx != (long)LIBSSH2_FX_NO_SUCH_PATH)
            return DIMPLE_OK; /* exists (OpenSSH says FAILURE): open() tells */
        dir = strndup(full, len);
        if (!dir)
            return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
        pl = dir_len(dir);
        rc = mkdirs(s, dir, pl, depth + 1);
        if (rc >= 0) {
            rc = libssh2_sftp_mkdir_ex(s->sftp, dir, (unsigned)len, 0755);
            if (rc != 0) {
                fx = sftp__status(s, rc);
                rc = fx < 0 ? sftp__fail(s, rc, "mkdir", dir) : DIMPLE_OK;
            }
        }
        free(dir);
        return rc;
    }
}

/* Remove a file, ignoring failures: cleanup of our own temporary. */
static void unlink_quiet(sftp_store *s, const char *full)
{
    if (!s->broken && s->sftp)
        (void)libssh2_sftp_unlink_ex(s->sftp, full, (unsigned)strlen(full));
}

/* Read a whole file through write_fn. *written counts bytes handed on. */
typedef struct read_target {
    const dimple_sink *sink;
    size_t written;
} read_target;

/* Is full a folder? (for a get whose open or read failed) */
static int is_folder(sftp_store *s, const char *full)
{
    unsigned long perm = 0;
    return !s->broken && sftp_exists(s, full, &perm, NULL) == 1 &&
           LIBSSH2_SFTP_S_ISDIR(perm);
}

static int read_file(sftp_store *s, const char *full, const char *key,
                     read_target *t)
{
    LIBSSH2_SFTP_HANDLE *h;
    char *buf = NULL;
    int rc = DIMPLE_OK;

    /* No fstat first (a round trip per get): a folder shows as a failed
     * open or read (EISDIR), and is checked for then. */
    h = libssh2_sftp_open_ex(s->sftp, full, (unsigned)strlen(full),
                             LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
    if (!h) {
        int e = libssh2_session_last_errno(s->session);
        long fx = sftp__status(s, e);
        if (fx == (long)LIBSSH2_FX_NO_SUCH_FILE ||
            fx == (long)LIBSSH2_FX_NO_SUCH_PATH)
            return sftp__err(s, DIMPLE_ENOTFOUND, "get '%s': no such object",
                             key);
        rc = sftp__fail(s, e, "get", key);
        if (fx >= 0 && is_folder(s, full))
            rc = sftp__err(s, DIMPLE_ENOTFOUND,
                           "get '%s': no such object (a folder)", key);
        return rc;
    }
    buf = malloc(SFTP_IO_CHUNK);
    if (!buf) {
        rc = sftp__err(s, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = libssh2_sftp_read(h, buf, SFTP_IO_CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            long fx = sftp__status(s, (int)n);
            rc = sftp__fail(s, (int)n, "get", key);
            if (fx >= 0 && t->written == 0 && is_folder(s, full))
                rc = sftp__err(s, DIMPLE_ENOTFOUND,
                               "get '%s': no such object (a folder)", key);
            goto out;
        }
        rc = dimple_sink_write(t->sink, buf, (size_t)n);
        if (rc < 0)
            goto out; /* the sink's own code and message */
        t->written += (size_t)n;
    }
out:
    free(buf);
    if (s->broken) {
        /* The handle dies with the session. */
        libssh2_sftp_close_handle(h);
    } else if (libssh2_sftp_close_handle(h) != 0 && rc == DIMPLE_OK) {
        rc = sftp__fail(s, libssh2_session_last_errno(s->session), "get", key);
    }
    return rc;
}

/* ---------------------------------------------------------------- put */

typedef struct put_arg {
    const char *key;
    const void *data;
    size_t len;
    int exclusive;
    char *final; /* full path of the key */
    char *tmp;   /* full path of the current temporary */
    /* put_if_absent: the rename went out but its answer was lost with the
     * connection; the retry must find out whether it happened. */
    int rename_sent;
} put_arg;

static int put_retry(void *arg)
{
    (void)arg;
    return 1; /* a put is repeatable: a new temporary each time */
}

static void tmp_name(put_arg *p)
{
    unsigned char r[8];
    static const char hex[] = "0123456789abcdef";
    size_t dl = dir_len(p->final), at;
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* A unique name is all that is needed here, not secrecy. */
        uint64_t x =
            (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)p;
        memcpy(r, &x, sizeof r);
    }
    memcpy(p->tmp, p->final, dl);
    at = dl;
    if (!(dl == 1 && p->final[0] == '/'))
        p->tmp[at++] = '/';
    memcpy(p->tmp + at, SFTP_TMP_PREFIX, SFTP_TMP_PREFIX_LEN);
    at += SFTP_TMP_PREFIX_LEN;
    for (size_t i = 0; i < sizeof r; i++) {
        p->tmp[at++] = hex[r[i] >> 4];
        p->tmp[at++] = hex[r[i] & 15];
    }
    p->tmp[at] = '\0';
}

/* Compare the object at p->final with p->data. */
typedef struct cmp_ctx {
    const unsigned char *want;
    size_t len, off;
    int differs;
} cmp_ctx;

static int cmp_write(void *ctx, const void *buf, size_t n)
{
    cmp_ctx *c = ctx;
    if (c->differs || n > c->len - c->off ||
        memcmp(c->want + c->off, buf, n) != 0)
        c->differs = 1;
    else
        c->off += n;
    return DIMPLE_OK;
}

/* After a lost answer to put_if_absent's rename: did it happen? Returns
 * OK (our object is in place), EEXISTS, a negative error, or 1 (it did not
 * happen: go on with a new attempt). */
static int resolve_lost_rename(sftp_store *s, put_arg *p)
{
    cmp_ctx c = {.want = p->data, .len = p->len};
    dimple_sink sink = {.write = cmp_write, .ctx = &c};
    read_target t = {.sink = &sink};
    int rc = sftp_exists(s, p->tmp, NULL, NULL);
    if (rc < 0)
        return rc;
    p->rename_sent = 0;
    if (rc == 1) {
        unlink_quiet(s, p->tmp);
        return 1;
    }
    rc = read_file(s, p->final, p->key, &t);
    if (rc == DIMPLE_ENOTFOUND)
        return 1;
    if (rc < 0)
        return rc;
    if (!c.differs && c.off == c.len)
        return DIMPLE_OK;
    return sftp__err(s, DIMPLE_EEXISTS, "put_if_absent '%s': the object exists",
                     p->key);
}

/* The key's folder cannot be made: is one of its ancestors an object?
 * ("a/b" under object "a": a file system cannot hold both.) Returns
 * DIMPLE_ECONFLICT with a message, 0 if not, or a negative error. */
static int ancestor_conflict(sftp_store *s, put_arg *p, const char *op)
{
    const char *key = p->key;
    size_t off = strlen(p->final) - strlen(key);
    for (const char *sl = strchr(key, '/'); sl; sl = strchr(sl + 1, '/')) {
        unsigned long perm = 0;
        char *anc = strndup(p->final, off + (size_t)(sl - key));
        int ex;
        if (!anc)
            return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
        ex = sftp_exists(s, anc, &perm, NULL);
        free(anc);
        if (ex < 0)
            return ex;
        if (ex == 1 && !LIBSSH2_SFTP_S_ISDIR(perm))
            return sftp__err(
                s, DIMPLE_ECONFLICT,
                "%s '%s': '%.*s' is an object, so it cannot also be a folder",
                op, key, (int)(sl - key), key);
        if (ex == 0)
            return 0;
    }
    return 0;
}

/* The rename onto the key failed: is the key a folder of other keys? */
static int target_is_folder(sftp_store *s, put_arg *p)
{
    unsigned long perm = 0;
    return sftp_exists(s, p->final, &perm, NULL) == 1 &&
           LIBSSH2_SFTP_S_ISDIR(perm);
}

static int put_once(sftp_store *s, void *arg)
{
    put_arg *p = arg;
    LIBSSH2_SFTP_HANDLE *h = NULL;
    const char *op = p->exclusive ? "put_if_absent" : "put";
    size_t off = 0, dl = dir_len(p->final);
    long fx;
    int rc, attempt;

    if (p->rename_sent) {
        rc = resolve_lost_rename(s, p);
        if (rc != 1)
            return rc;
    }
    tmp_name(p);
    /* The folder may be missing, or be removed by a concurrent remove()
     * between our mkdir and open: retry a few times. */
    for (attempt = 0;; attempt++) {
        h = libssh2_sftp_open_ex(s->sftp, p->tmp, (unsigned)strlen(p->tmp),
                                 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT |
                                     LIBSSH2_FXF_EXCL | LIBSSH2_FXF_TRUNC,
                                 0644, LIBSSH2_SFTP_OPENFILE);
        if (h)
            break;
        rc = libssh2_session_last_errno(s->session);
        fx = sftp__status(s, rc);
        {
            if (attempt < 4 && (fx == (long)LIBSSH2_FX_NO_SUCH_FILE ||
                                fx == (long)LIBSSH2_FX_NO_SUCH_PATH)) {
                if (attempt == 1) {
                    rc = ancestor_conflict(s, p, op);
                    if (rc < 0)
                        return rc;
                }
                rc = mkdirs(s, p->final, dl, 0);
                if (rc < 0)
                    return rc;
                continue;
            }
        }
        return sftp__fail(s, rc, op, p->key);
    }
    while (off < p->len) {
        /* At most SFTP_WRITE_MAX a call: libssh2 1.10 turns the whole count
         * into packets at once (memory) and one call must finish within
         * the timeout. libssh2 keeps track of what it already sent ahead
         * of the acknowledged offset, so the next call continues there. */
        size_t chunk =
            p->len - off > SFTP_WRITE_MAX ? SFTP_WRITE_MAX : p->len - off;
        ssize_t w = libssh2_sftp_write(h, (const char *)p->data + off, chunk);
        if (w < 0) {
            rc = sftp__fail(s, (int)w, op, p->key);
            goto fail;
        }
        off += (size_t)w;
    }
    if (s->fsync_state >= 0) {
        rc = libssh2_sftp_fsync(h);
        if (rc == 0) {
            s->fsync_state = 1;
        } else if (sftp__status(s, rc) == (long)LIBSSH2_FX_OP_UNSUPPORTED) {
            s->fsync_state = -1;
            dimple_logf(s->host, DIMPLE_LOG_INFO,
                        "%s: the server has no fsync@openssh.com; objects are "
                        "renamed into place without a flush to disk",
                        s->where);
        } else {
            rc = sftp__fail(s, rc, op, p->key);
            goto fail;
        }
    }
    rc = libssh2_sftp_close_handle(h);
    h = NULL;
    if (rc != 0) {
        rc = sftp__fail(s, rc, op, p->key);
        goto fail;
    }

    if (p->exclusive) {
        /* No overwrite flag: SFTP v3 rename fails on an existing target. */
        p->rename_sent = 1;
        rc = libssh2_sftp_rename_ex(s->sftp, p->tmp, (unsigned)strlen(p->tmp),
                                    p->final, (unsigned)strlen(p->final), 0);
        if (rc == 0) {
            p->rename_sent = 0;
            return DIMPLE_OK;
        }
        fx = sftp__status(s, rc);
        if (fx < 0)
            return sftp__fail(s, rc, op, p->key); /* resolved on the retry */
        p->rename_sent = 0;
        {
            unsigned long perm = 0;
            int ex = sftp_exists(s, p->final, &perm, NULL);
            if (ex == 1) {
                unlink_quiet(s, p->tmp);
                if (LIBSSH2_SFTP_S_ISDIR(perm))
                    return sftp__err(
                        s, DIMPLE_ECONFLICT,
                        "%s '%s': a folder of other keys has that name", op,
                        p->key);
                return sftp__err(s, DIMPLE_EEXISTS,
                                 "put_if_absent '%s': the object exists",
                                 p->key);
            }
            if (ex < 0)
                return ex;
        }
        rc = sftp__fail_status(s, fx, op, p->key);
        goto fail;
    }

    rc = sftp__posix_rename(s, p->tmp, p->final);
    if (rc == DIMPLE_OK)
        return DIMPLE_OK;
    if (rc < 0) {
        if (!s->broken && target_is_folder(s, p))
            rc = sftp__err(s, DIMPLE_ECONFLICT,
                           "%s '%s': a folder of other keys has that name", op,
                           p->key);
        goto fail;
    }
    /* No posix-rename: the plain rename works when the key is absent;
     * otherwise remove the old object first (not atomic: a reader may see
     * no object for a moment, but never a partial one). */
    if (!s->told_no_rename) {
        s->told_no_rename = 1;
        dimple_logf(
            s->host, DIMPLE_LOG_WARN,
            "%s: the server does not allow posix-rename@openssh.com; put "
            "replaces an object by remove + rename (readers may briefly "
            "find it absent, never partial)",
            s->where);
    }
    for (attempt = 0;; attempt++) {
        unsigned long perm = 0;
        int ex;
        rc = libssh2_sftp_rename_ex(s->sftp, p->tmp, (unsigned)strlen(p->tmp),
                                    p->final, (unsigned)strlen(p->final), 0);
        if (rc == 0)
            return DIMPLE_OK;
        fx = sftp__status(s, rc);
        if (fx < 0) {
            rc = sftp__fail(s, rc, op, p->key);
            goto fail;
        }
        /* Remove the old object only when that is why the rename failed
         * (it exists, as a file), and only a few times against writers
         * racing us: never for another reason such as permissions. */
        ex = sftp_exists(s, p->final, &perm, NULL);
        if (ex < 0) {
            rc = ex;
            goto fail;
        }
        if (ex == 1 && LIBSSH2_SFTP_S_ISDIR(perm)) {
            rc = sftp__err(s, DIMPLE_ECONFLICT,
                           "%s '%s': a folder of other keys has that name", op,
                           p->key);
            goto fail;
        }
        if (ex == 0 || attempt == 3 ||
            (fx != (long)LIBSSH2_FX_FAILURE &&
             fx != (long)LIBSSH2_FX_FILE_ALREADY_EXISTS)) {
            rc = sftp__fail_status(s, fx, op, p->key);
            goto fail;
        }
        rc = libssh2_sftp_unlink_ex(s->sftp, p->final,
                                    (unsigned)strlen(p->final));
        fx = sftp__status(s, rc);
        if (rc != 0 && fx != (long)LIBSSH2_FX_NO_SUCH_FILE) {
            rc = sftp__fail(s, rc, op, p->key);
            goto fail;
        }
    }
fail:
    if (h)
        libssh2_sftp_close_handle(h);
    unlink_quiet(s, p->tmp);
    return rc;
}

int sftp__put(sftp_store *s, const char *key, const void *data, size_t len,
              int exclusive)
{
    put_arg p = {.key = key, .data = data, .len = len, .exclusive = exclusive};
    int rc;
    if (!sftp__key_ok(key))
        return key_refused(s, exclusive ? "put_if_absent" : "put", key);
    if (!data && len)
        return sftp__err(s, DIMPLE_EINVAL, "put '%s': no data", key);
    if (!data)
        p.data = "";
    p.final = path_join(s, key, strlen(key));
    p.tmp = p.final ? malloc(strlen(p.final) + SFTP_TMP_PREFIX_LEN + 20) : NULL;
    if (!p.final || !p.tmp)
        rc = sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    else
        rc = run_op(s, put_once, put_retry, &p);
    free(p.final);
    free(p.tmp);
    return rc;
}

/* ---------------------------------------------------------------- get */

typedef struct get_arg {
    const char *key;
    char *full;
    read_target t;
} get_arg;

static int get_retry(void *arg)
{
    /* Bytes already handed to the sink cannot be taken back. */
    return ((get_arg *)arg)->t.written == 0;
}

static int get_once(sftp_store *s, void *arg)
{
    get_arg *g = arg;
    return read_file(s, g->full, g->key, &g->t);
}

int sftp__get(sftp_store *s, const char *key, const dimple_sink *out)
{
    get_arg g = {.key = key, .t = {.sink = out}};
    int rc;
    if (!sftp__key_ok(key))
        return key_refused(s, "get", key);
    g.full = path_join(s, key, strlen(key));
    if (!g.full)
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    rc = run_op(s, get_once, get_retry, &g);
    free(g.full);
    return rc;
}

/* ------------------------------------------------------------- remove */

typedef struct remove_arg {
    const char *key;
    char *full;
} remove_arg;

static int remove_once(sftp_store *s, void *arg)
{
    remove_arg *r = arg;
    size_t rootlen = strlen(s->root), dl;
    int rc =
        libssh2_sftp_unlink_ex(s->sftp, r->full, (unsigned)strlen(r->full));
    if (rc != 0) {
        long fx = sftp__status(s, rc);
        if (fx < 0)
            return sftp__fail(s, rc, "remove", r->key);
        if (fx != (long)LIBSSH2_FX_NO_SUCH_FILE &&
            fx != (long)LIBSSH2_FX_NO_SUCH_PATH) {
            unsigned long perm = 0;
            int ex = sftp_exists(s, r->full, &perm, NULL);
            if (ex < 0)
                return ex;
            /* A folder is not an object: the object is absent. */
            if (ex == 1 && !LIBSSH2_SFTP_S_ISDIR(perm))
                return sftp__fail(s, rc, "remove", r->key);
        }
    }
    /* Drop folders the removal left empty (never the root), so they do not
     * pile up; rmdir fails on a non-empty folder, which ends the walk. */
    for (dl = dir_len(r->full); dl > rootlen; dl = dir_len(r->full)) {
        r->full[dl] = '\0';
        if (libssh2_sftp_rmdir_ex(s->sftp, r->full, (unsigned)dl) != 0)
            break;
    }
    return DIMPLE_OK;
}

int sftp__remove(sftp_store *s, const char *key)
{
    remove_arg r = {.key = key};
    int rc;
    if (!sftp__key_ok(key))
        return key_refused(s, "remove", key);
    r.full = path_join(s, key, strlen(key));
    if (!r.full)
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    rc = run_op(s, remove_once, NULL, &r);
    free(r.full);
    return rc;
}

/* --------------------------------------------------------------- list */

typedef struct list_arg {
    const char *prefix;
    const char *start_after; /* NULL if none */
    unsigned flags;
    char **items;
    size_t n, cap;
    int64_t now; /* server-independent: our clock, for stale temporaries */
} list_arg;

typedef struct dir_entry {
    char *name;
    int is_dir;
} dir_entry;

static int list_add(sftp_store *s, list_arg *l, const char *key, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->items, cap * sizeof *v);
        if (!v)
            return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
        l->items = v;
        l->cap = cap;
    }
    l->items[l->n] = strndup(key, len);
    if (!l->items[l->n])
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    l->n++;
    return DIMPLE_OK;
}

static void list_clear(list_arg *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static void entries_free(dir_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

/* A name from the server is used only if it is one valid key segment:
 * a hostile server cannot send "..", "a/b" or a NUL to leave `path`. */
static int name_ok(const char *name, size_t n)
{
    if (n == 0 || n > SFTP_SEGMENT_MAX || strlen(name) != n)
        return 0;
    if ((n == 1 && name[0] == '.') ||
        (n == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    return strpbrk(name, "/\\") == NULL;
}

/*
 * Read one folder (rel: relative to root, "" for root) into entries:
 * regular files and folders whose names are valid segments starting with
 * filter. Temporaries are skipped (and removed when stale); symlinks and
 * other types are skipped, so a listing never follows a link out of path.
 */
static int read_dir(sftp_store *s, list_arg *l, const char *rel,
                    const char *filter, dir_entry **out, size_t *nout)
{
    LIBSSH2_SFTP_HANDLE *h;
    char *full = path_join(s, rel, strlen(rel));
    char name[1024];
    dir_entry *e = NULL;
    size_t n = 0, cap = 0, flen = filter ? strlen(filter) : 0;
    int rc = DIMPLE_OK;

    *out = NULL;
    *nout = 0;
    if (!full)
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    h = libssh2_sftp_open_ex(s->sftp, full, (unsigned)strlen(full), 0, 0,
                             LIBSSH2_SFTP_OPENDIR);
    if (!h) {
        int err = libssh2_session_last_errno(s->session);
        long fx = sftp__status(s, err);
        free(full);
        if (fx == (long)LIBSSH2_FX_NO_SUCH_FILE ||
            fx == (long)LIBSSH2_FX_NO_SUCH_PATH)
            return DIMPLE_OK; /* no folder: no objects */
        return sftp__fail(s, err, "list", *rel ? rel : "/");
    }
    for (;;) {
        LIBSSH2_SFTP_ATTRIBUTES a;
        int is_dir;
        int r = libssh2_sftp_readdir_ex(h, name, sizeof name - 1, NULL, 0, &a);
        if (r == 0)
            break;
        if (r < 0) {
            rc = sftp__fail(s, r, "list", *rel ? rel : "/");
            goto out;
        }
        name[r] = '\0';
        if (!name_ok(name, (size_t)r))
            continue;
        if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
            continue; /* type unknown: cannot tell a file from a link */
        if (strncmp(name, SFTP_TMP_PREFIX, SFTP_TMP_PREFIX_LEN) == 0) {
            if (LIBSSH2_SFTP_S_ISREG(a.permissions) &&
                (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) &&
                (int64_t)a.mtime + SFTP_TMP_STALE_SECONDS < l->now) {
                char *t = path_join(s, rel, strlen(rel));
                size_t tl = t ? strlen(t) : 0;
                char *tp = t ? malloc(tl + 2 + (size_t)r) : NULL;
                if (tp) {
                    snprintf(tp, tl + 2 + (size_t)r, "%s/%s", t, name);
                    unlink_quiet(s, tp);
                }
                free(t);
                free(tp);
            }
            continue;
        }
        if (LIBSSH2_SFTP_S_ISREG(a.permissions))
            is_dir = 0;
        else if (LIBSSH2_SFTP_S_ISDIR(a.permissions))
            is_dir = 1;
        else
            continue;
        if (flen && strncmp(name, filter, flen) != 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            dir_entry *ne = realloc(e, nc * sizeof *ne);
            if (!ne) {
                rc = sftp__err(s, DIMPLE_ENOMEM, "out of memory");
                goto out;
            }
            e = ne;
            cap = nc;
        }
        e[n].name = strdup(name);
        if (!e[n].name) {
            rc = sftp__err(s, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        e[n++].is_dir = is_dir;
    }
out:
    if (s->broken)
        libssh2_sftp_close_handle(h);
    else if (libssh2_sftp_close_handle(h) != 0 && rc == DIMPLE_OK)
        rc = sftp__fail(s, libssh2_session_last_errno(s->session), "list", rel);
    free(full);
    if (rc < 0) {
        entries_free(e, n);
        return rc;
    }
    *out = e;
    *nout = n;
    return DIMPLE_OK;
}

/* rel + "/" + name (or name when rel is ""), into a new string. */
static char *child_key(const char *rel, const char *name)
{
    size_t rl = strlen(rel), nl = strlen(name);
    char *k = malloc(rl + 1 + nl + 1);
    if (!k)
        return NULL;
    if (rl) {
        memcpy(k, rel, rl);
        k[rl++] = '/';
    }
    memcpy(k + rl, name, nl + 1);
    return k;
}

/* Is every key below folder key "dir/" sorted at or before start_after?
 * True when start_after is past "dir/" without starting with it. */
static int subtree_before(const list_arg *l, const char *dirslash)
{
    size_t dl = strlen(dirslash);
    return l->start_after && strcmp(dirslash, l->start_after) < 0 &&
           strncmp(l->start_after, dirslash, dl) != 0;
}

/* Walk folder rel. mode 0: add every object key; mode 1: return 1 at
 * the first object found (is this folder non-empty?). */
static int walk(sftp_store *s, list_arg *l, const char *rel, const char *filter,
                int mode)
{
    dir_entry *e;
    size_t n;
    int rc = read_dir(s, l, rel, filter, &e, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == DIMPLE_OK; i++) {
        char *key = child_key(rel, e[i].name);
        size_t kl;
        if (!key) {
            rc = sftp__err(s, DIMPLE_ENOMEM, "out of memory");
            break;
        }
        kl = strlen(key);
        if (kl + 1 > SFTP_KEY_MAX || !dimple_key_valid(key)) {
            free(key);
            continue;
        }
        if (!e[i].is_dir) {
            if (mode == 1)
                rc = 1;
            else if (!l->start_after || strcmp(key, l->start_after) > 0)
                rc = list_add(s, l, key, kl);
        } else if (mode == 1) {
            rc = walk(s, l, key, NULL, 1);
        } else {
            char *ds = malloc(kl + 2);
            if (!ds) {
                rc = sftp__err(s, DIMPLE_ENOMEM, "out of memory");
            } else {
                memcpy(ds, key, kl);
                ds[kl] = '/';
                ds[kl + 1] = '\0';
                if ((l->flags & DIMPLE_LIST_SHALLOW) && l->prefix &&
                    strlen(ds) > strlen(l->prefix)) {
                    /* A folder directly below the prefix: reported once,
                     * as "folder/", if it holds an object. */
                    if (!l->start_after || strcmp(ds, l->start_after) > 0) {
                        rc = walk(s, l, key, NULL, 1);
                        if (rc == 1)
                            rc = list_add(s, l, ds, kl + 1);
                    }
                } else if (!subtree_before(l, ds)) {
                    rc = walk(s, l, key, NULL, 0);
                }
                free(ds);
            }
        }
        free(key);
    }
    entries_free(e, n);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_once(sftp_store *s, void *arg)
{
    list_arg *l = arg;
    const char *slash = strrchr(l->prefix, '/');
    char *rel;
    int rc;

    list_clear(l);
    l->now = (int64_t)time(NULL);
    /* Start in the folder the prefix names up to its last '/'; the rest
     * filters that folder's entries. */
    rel = slash ? strndup(l->prefix, (size_t)(slash - l->prefix)) : strdup("");
    if (!rel)
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    rc = walk(s, l, rel, slash ? slash + 1 : l->prefix, 0);
    free(rel);
    return rc < 0 ? rc : DIMPLE_OK;
}

static int list_retry(void *arg)
{
    (void)arg;
    return 1; /* nothing reaches the callback before the walk is done */
}

int sftp__list(sftp_store *s, const char *prefix, const char *start_after,
               unsigned flags, dimple_list_cb cb, void *payload)
{
    list_arg l = {.prefix = prefix ? prefix : "",
                  .start_after =
                      start_after && *start_after ? start_after : NULL,
                  .flags = flags};
    const char *slash;
    int rc;

    if (!cb)
        return sftp__err(s, DIMPLE_EINVAL, "list: no callback");
    /* The folder part of the prefix must be a valid key path: no way up
     * and out of `path`. The rest is only compared with names. */
    slash = strrchr(l.prefix, '/');
    if (*l.prefix == '/' || strchr(l.prefix, '\\') ||
        strlen(l.prefix) > SFTP_KEY_MAX) {
        return sftp__err(s, DIMPLE_EINVAL, "list: invalid prefix '%s'",
                         l.prefix);
    }
    if (slash) {
        char *dir = strndup(l.prefix, (size_t)(slash - l.prefix));
        int ok = dir && dimple_key_valid(dir);
        free(dir);
        if (!ok)
            return sftp__err(s, DIMPLE_EINVAL, "list: invalid prefix '%s'",
                             l.prefix);
    }
    rc = run_op(s, list_once, list_retry, &l);
    if (rc >= 0) {
        if (l.n > 1)
            qsort(l.items, l.n, sizeof *l.items, cmp_str);
        for (size_t i = 0; i < l.n; i++) {
            rc = cb(payload, l.items[i]);
            if (rc != 0)
                break;
        }
    }
    list_clear(&l);
    return rc;
}
