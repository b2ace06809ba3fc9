/*
 * age.c — dimple-age.so: the cipher vtable, configuration, modes and the
 * key store.
 *
 * Modes
 *  - identity (default, with a passphrase): the store holds X25519
 *    identities as keys/<uuid7>.age, each a standard age scrypt file holding
 *    an AGE-SECRET-KEY-1 line (so `age -d` with the passphrase opens it).
 *    Objects are encrypted to the recipients of every unlocked identity;
 *    unlocking costs one scrypt per key file, so a process normally pays one
 *    scrypt in total however many objects it reads or writes.
 *  - scrypt: every object is its own passphrase file (one scrypt each).
 *  - X25519 only (no passphrase): `recipients` and/or `identity_file`.
 *
 * Key-store race. Two devices syncing for the first time may both find
 * keys/ empty and each create a key. Invariants that keep all data readable:
 *  1. an identity is used only after its key file is durably in the store
 *     (put_if_absent succeeded), so every recipient of every object has a
 *     key file anyone with the passphrase can open;
 *  2. key files are never removed or rewritten.
 * A reader that finds no matching identity re-lists keys/ and unlocks the
 * key files it has not opened yet (one scrypt each) before giving up. To
 * converge, a process unlocks only the lowest-sorted key file (uuid7 names
 * sort by creation time: the oldest key wins); a creator that sees another
 * key appear next to its own also unlocks it and encrypts to both, so
 * nothing it writes needs its own key alone.
 */
#include "age_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#define KEYS_PREFIX "keys/"
#define KEY_FILE_MAX 65536
#define PASS_MAX 4096

enum { MODE_IDENTITY = 0, MODE_SCRYPT = 1 };

typedef struct age_plugin {
    const dimple_host *host;
    int mode;
    int logn;
    int armor;
    char *pass;
    size_t pass_len;
    age_recipient *extra; /* `recipients` */
    size_t n_extra;
    age_identity *ids; /* X25519 identities, then the passphrase (if any) */
    char **id_file;    /* key file each X25519 identity came from, or NULL */
    size_t n_ids;
    dimple_store store;
    int has_store;
    int keys_ready;
    char **tried; /* key files unlocked or found unusable */
    size_t n_tried;
    int keys_rc;    /* sticky failure to open the key store */
    char kmsg[512]; /* its message (names the key file, never a secret) */
} age_plugin;

/* Report a key-store failure: keep the message for callers that wrap it. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
keyfail(age_plugin *p, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->kmsg, sizeof p->kmsg, fmt, ap);
    va_end(ap);
    return dimple_errorf(p->host, rc, "%s", p->kmsg);
}

/* ------------------------------------------------------------ helpers */

static int conf_where(const age_plugin *p, const dimple_kv *kv, char *buf,
                      size_t cap)
{
    return snprintf(buf, cap, "%s:%d",
                    p->host && p->host->config_file ? p->host->config_file
                                                    : "(config)",
                    kv ? kv->line : 0);
}

static int str_list_add(char ***list, size_t *n, const char *s)
{
    char **l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return DIMPLE_ENOMEM;
    *list = l;
    if (!(l[*n] = strdup(s)))
        return DIMPLE_ENOMEM;
    (*n)++;
    return DIMPLE_OK;
}

static void str_list_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static int str_list_has(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

/* Number of X25519 identities. */
static size_t n_x25519(const age_plugin *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_ids; i++)
        n += p->ids[i].type == AGE_ID_X25519;
    return n;
}

/* Add an X25519 identity (deduplicated). Appended: a keyring retry after
 * more() tries only the entries added since. */
static int add_identity(age_plugin *p, const unsigned char sk[32],
                        const char *file)
{
    unsigned char pk[32];
    if (age_x25519_public(sk, pk))
        return DIMPLE_ERROR;
    for (size_t i = 0; i < p->n_ids; i++)
        if (p->ids[i].type == AGE_ID_X25519 &&
            memcmp(p->ids[i].pk, pk, 32) == 0)
            return DIMPLE_OK;
    age_identity *ids = realloc(p->ids, (p->n_ids + 1) * sizeof *ids);
    if (!ids)
        return DIMPLE_ENOMEM;
    p->ids = ids;
    char **files = realloc(p->id_file, (p->n_ids + 1) * sizeof *files);
    if (!files)
        return DIMPLE_ENOMEM;
    p->id_file = files;
    memset(&ids[p->n_ids], 0, sizeof ids[p->n_ids]);
    ids[p->n_ids].type = AGE_ID_X25519;
    memcpy(ids[p->n_ids].sk, sk, 32);
    memcpy(ids[p->n_ids].pk, pk, 32);
    files[p->n_ids] = file ? strdup(file) : NULL;
    p->n_ids++;
    return DIMPLE_OK;
}

/* Parse identity text (age-keygen format): AGE-SECRET-KEY-1 lines, blank
 * lines and # comments. Never echoes a line: it may hold a key. */
static int parse_identities(age_plugin *p, const char *text, size_t len,
                            const char *file, const char *what)
{
    size_t i = 0, lineno = 0, found = 0;
    int rc = DIMPLE_OK;
    char line[256];
    unsigned char sk[32];

    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        size_t n = j - i;
        lineno++;
        if (n && text[i + n - 1] == '\r')
            n--;
        if (n && text[i] != '#') {
            if (n >= sizeof line) {
                rc = DIMPLE_ECORRUPT;
            } else {
                memcpy(line, text + i, n);
                line[n] = '\0';
                rc = age_identity_parse(line, sk) ? DIMPLE_ECORRUPT
                                                  : add_identity(p, sk, file);
                age_wipe(line, sizeof line);
                age_wipe(sk, sizeof sk);
            }
            if (rc) {
                return dimple_errorf(p->host, rc,
                                     "%s: line %zu is not an age identity "
                                     "(AGE-SECRET-KEY-1...)",
                                     what, lineno);
            }
            found++;
        }
        i = j + 1;
    }
    if (!found)
        return dimple_errorf(p->host, DIMPLE_ECORRUPT,
                             "%s holds no AGE-SECRET-KEY-1 identity", what);
    return DIMPLE_OK;
}

static int read_file(const char *path, size_t max, age_buf *out)
{
    int rc = DIMPLE_OK;
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f)
        return DIMPLE_EIO;
    out->limit = max;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if ((rc = age_buf_add(out, buf, n)))
            break;
    if (!rc && ferror(f))
        rc = DIMPLE_EIO;
    age_wipe(buf, sizeof buf);
    fclose(f);
    return rc;
}

/* --------------------------------------------------------- key store */

static void uuid7(char out[37])
{
    unsigned char b[16];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    if (age_random(b, sizeof b))
        memset(b, 0, sizeof b); /* still unique by time; put_if_absent guards */
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    snprintf(
        out, 37,
        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
        b[11], b[12], b[13], b[14], b[15]);
}

typedef struct key_list {
    char **names;
    size_t n;
    int rc;
} key_list;

static int list_cb(void *payload, const char *key)
{
    key_list *l = payload;
    size_t n = strlen(key);
    /* keys/<name>.age directly under keys/ */
    if (strncmp(key, KEYS_PREFIX, 5) != 0 || n <= 5 + 4 ||
        strcmp(key + n - 4, ".age") != 0 || strchr(key + 5, '/'))
        return 0;
    if ((l->rc = str_list_add(&l->names, &l->n, key)))
        return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_keys(age_plugin *p, key_list *l)
{
    int rc;
    memset(l, 0, sizeof *l);
    rc = p->store.list(p->store.ctx, KEYS_PREFIX, NULL, 0, list_cb, l);
    if (l->rc)
        rc = l->rc;
    if (rc) {
        str_list_free(l->names, l->n);
        memset(l, 0, sizeof *l);
        return keyfail(p, rc < 0 ? rc : DIMPLE_EIO,
                       "listing %s in the storage failed", KEYS_PREFIX);
    }
    if (l->n > 1)
        qsort(l->names, l->n, sizeof *l->names, cmp_str);
    return DIMPLE_OK;
}

/* Open keys/<file> with the passphrase (one scrypt) and add its keys. */
static int unlock(age_plugin *p, const char *file)
{
    static const char intro[] = AGE_INTRO "\n-> scrypt ";
    int rc;
    age_buf raw = {0}, plain = {0};
    dimple_sink sink;
    dimple_source src;
    age_mem_source ms;
    age_identity pass_id = {0};
    age_keyring kr = {0};
    age_err e = {0};

    if ((rc = str_list_add(&p->tried, &p->n_tried, file)))
        goto out;
    raw.limit = KEY_FILE_MAX;
    sink = age_buf_sink(&raw);
    if ((rc = p->store.get(p->store.ctx, file, &sink))) {
        rc = keyfail(p, rc, "reading key file %s failed%s", file,
                     rc == DIMPLE_ECORRUPT ? " (larger than 64 KiB)" : "");
        goto out;
    }
    /* Only the passphrase may vouch for a key file: a file anyone could
     * have encrypted to a public key is refused. */
    if (raw.n < sizeof intro - 1 || memcmp(raw.p, intro, sizeof intro - 1)) {
        rc =
            keyfail(p, DIMPLE_ECORRUPT,
                    "key file %s is not a passphrase-protected age file", file);
        goto out;
    }
    pass_id.type = AGE_ID_SCRYPT;
    pass_id.pass = p->pass;
    pass_id.pass_len = p->pass_len;
    kr.ids = &pass_id;
    kr.n = 1;
    src = age_mem_source_make(&ms, raw.p, raw.n);
    plain.limit = KEY_FILE_MAX;
    sink = age_buf_sink(&plain);
    rc = age_decrypt(&src, &sink, AGE_ARMOR_OFF, &kr, &e);
    if (rc) {
        if (e.cls == AGE_E_NOMATCH)
            rc = keyfail(p, DIMPLE_EAUTH, "wrong passphrase for %s", file);
        else
            rc = keyfail(p, rc, "key file %s: %s", file, e.msg);
        goto out;
    }
    char what[512];
    snprintf(what, sizeof what, "key file %s", file);
    if ((rc = parse_identities(p, (const char *)plain.p, plain.n, file, what)))
        keyfail(p, rc, "key file %s holds no valid AGE-SECRET-KEY-1 line",
                file);
out:
    age_buf_free(&raw);
    age_buf_free(&plain);
    return rc;
}

/* Generate an identity, store it as keys/<uuid7>.age, return its name. */
static int create_key(age_plugin *p, char *name, size_t cap)
{
    int rc;
    unsigned char sk[32], pk[32];
    char sk_txt[128], pk_txt[128], text[512], stamp[32];
    age_recipient r = {0};
    age_buf ct = {0};
    dimple_sink sink = age_buf_sink(&ct);
    dimple_source src;
    age_mem_source ms;
    age_err e = {0};
    time_t now = time(NULL);
    struct tm tm;

    if (age_x25519_keygen(sk, pk) || age_identity_format(sk, sk_txt) ||
        age_recipient_format(pk, pk_txt)) {
        rc = keyfail(p, DIMPLE_ERROR, "generating an identity failed");
        goto out;
    }
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int len =
        snprintf(text, sizeof text, "# created: %s\n# public key: %s\n%s\n",
                 stamp, pk_txt, sk_txt);
    r.type = AGE_ID_SCRYPT;
    r.pass = p->pass;
    r.pass_len = p->pass_len;
    r.logn = p->logn;
    src = age_mem_source_make(&ms, text, (size_t)len);
    if ((rc = age_encrypt(&src, &sink, AGE_ARMOR_OFF, &r, 1, &e))) {
        rc = keyfail(p, rc, "encrypting a new key file: %s", e.msg);
        goto out;
    }
    for (int attempt = 0;; attempt++) {
        char id[37];
        uuid7(id);
        snprintf(name, cap, KEYS_PREFIX "%s.age", id);
        rc = p->store.put_if_absent
                 ? p->store.put_if_absent(p->store.ctx, name, ct.p, ct.n)
                 : p->store.put(p->store.ctx, name, ct.p, ct.n);
        if (rc != DIMPLE_EEXISTS || attempt == 3)
            break;
    }
    if (rc) {
        rc = keyfail(p, rc, "storing key file %s failed", name);
        goto out;
    }
    rc = add_identity(p, sk, name);
    if (!rc)
        rc = str_list_add(&p->tried, &p->n_tried, name);
out:
    age_wipe(sk, sizeof sk);
    age_wipe(sk_txt, sizeof sk_txt);
    age_wipe(text, sizeof text);
    age_buf_free(&ct);
    return rc;
}

/* Make sure the key store's identities are unlocked; create the first key
 * when keys/ is empty and create is set. */
static int ensure_keys(age_plugin *p, int create)
{
    int rc;
    key_list l = {0};
    char mine[64] = "";

    if (p->keys_ready || p->mode != MODE_IDENTITY || !p->pass)
        return DIMPLE_OK;
    if (p->keys_rc) /* e.g. a wrong passphrase: no second scrypt */
        return dimple_errorf(p->host, p->keys_rc, "%s", p->kmsg);
    if (!p->has_store)
        return keyfail(p, DIMPLE_ECONFIG,
                       "mode = identity keeps its keys under %s in the "
                       "storage, but no storage is configured "
                       "(configure [storage] or set mode = scrypt)",
                       KEYS_PREFIX);
    if ((rc = list_keys(p, &l)))
        goto out;
    if (l.n == 0) {
        if (!create) {
            rc = DIMPLE_ENOTFOUND; /* decrypt: nothing to unlock yet */
            goto out;
        }
        if ((rc = create_key(p, mine, sizeof mine)))
            goto out;
        str_list_free(l.names, l.n);
        /* Another device may have created a key at the same time: open
         * the others too and encrypt to all of them (race only). */
        if ((rc = list_keys(p, &l)))
            goto out;
        for (size_t i = 0; i < l.n; i++)
            if (!str_list_has(p->tried, p->n_tried, l.names[i]) &&
                (rc = unlock(p, l.names[i])))
                goto out;
    } else if (!str_list_has(p->tried, p->n_tried, l.names[0])) {
        if ((rc = unlock(p, l.names[0])))
            goto out;
    }
    p->keys_ready = 1;
out:
    if (rc == DIMPLE_EAUTH || rc == DIMPLE_ECORRUPT)
        p->keys_rc = rc;
    str_list_free(l.names, l.n);
    return rc;
}

/* No unlocked identity matched: open the next key file not tried yet. */
static int keyring_more(age_keyring *kr, age_err *e)
{
    age_plugin *p = kr->ctx;
    key_list l = {0};
    int rc = 0;

    if (p->mode != MODE_IDENTITY || !p->pass || !p->has_store)
        return 0;
    if ((rc = list_keys(p, &l)))
        return age_fail(e, AGE_E_OTHER, rc, "listing %s failed", KEYS_PREFIX);
    for (size_t i = 0; i < l.n; i++) {
        if (str_list_has(p->tried, p->n_tried, l.names[i]))
            continue;
        rc = unlock(p, l.names[i]);
        if (rc)
            age_fail(e, AGE_E_OTHER, rc, "%s", p->kmsg);
        else
            rc = 1;
        break;
    }
    str_list_free(l.names, l.n);
    kr->ids = p->ids;
    kr->n = p->n_ids;
    return rc;
}

/* ------------------------------------------------------------- config */

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_recipients(age_plugin *p, const dimple_kv *kv)
{
    char where[300];
    const char *s = kv->value;
    conf_where(p, kv, where, sizeof where);
    while (*s) {
        char tok[256];
        size_t n = 0;
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        while (s[n] && s[n] != ' ' && s[n] != '\t' && s[n] != ',')
            n++;
        if (!n)
            break;
        if (n >= sizeof tok)
            return dimple_errorf(p->host, DIMPLE_ECONFIG,
                                 "%s: recipients: an entry is too long", where);
        memcpy(tok, s, n);
        tok[n] = '\0';
        s += n;
        age_recipient *r = realloc(p->extra, (p->n_extra + 1) * sizeof *r);
        if (!r)
            return DIMPLE_ENOMEM;
        p->extra = r;
        memset(&r[p->n_extra], 0, sizeof *r);
        r[p->n_extra].type = AGE_ID_X25519;
        if (age_recipient_parse(tok, r[p->n_extra].pk))
            return dimple_errorf(p->host, DIMPLE_ECONFIG,
                                 "%s: recipients: '%s' is not an age1... "
                                 "X25519 recipient",
                                 where, tok);
        p->n_extra++;
    }
    if (!p->n_extra)
        return dimple_errorf(p->host, DIMPLE_ECONFIG, "%s: recipients is empty",
                             where);
    return DIMPLE_OK;
}

static void plugin_free(age_plugin *p)
{
    if (!p)
        return;
    if (p->pass) {
        age_wipe(p->pass, p->pass_len);
        free(p->pass);
    }
    if (p->ids)
        age_wipe(p->ids, p->n_ids * sizeof *p->ids);
    free(p->ids);
    if (p->id_file)
        str_list_free(p->id_file, p->n_ids);
    free(p->extra);
    str_list_free(p->tried, p->n_tried);
    free(p);
}

static int add_pass_identity(age_plugin *p)
{
    age_identity *ids = realloc(p->ids, (p->n_ids + 1) * sizeof *ids);
    if (!ids)
        return DIMPLE_ENOMEM;
    p->ids = ids;
    char **files = realloc(p->id_file, (p->n_ids + 1) * sizeof *files);
    if (!files)
        return DIMPLE_ENOMEM;
    p->id_file = files;
    memset(&ids[p->n_ids], 0, sizeof ids[p->n_ids]);
    ids[p->n_ids].type = AGE_ID_SCRYPT;
    ids[p->n_ids].pass = p->pass;
    ids[p->n_ids].pass_len = p->pass_len;
    files[p->n_ids] = NULL;
    p->n_ids++;
    return DIMPLE_OK;
}

static int v_create(void **self, const dimple_kv *conf, const dimple_host *host)
{
    static const char *const known[] = {
        "passphrase", "passphrase_file", "work_factor", "mode",
        "recipients", "identity_file",   "armor",       NULL};
    int rc;
    char where[300];
    const dimple_kv *kv;
    age_plugin *p = calloc(1, sizeof *p);

    *self = NULL;
    if (!p)
        return DIMPLE_ENOMEM;
    p->host = host;
    p->logn = AGE_DEFAULT_LOGN;
    p->armor = AGE_ARMOR_OFF;
    if ((rc = dimple_kv_check(host, conf, known)))
        goto out;
    if ((kv = dimple_kv_find(conf, "mode"))) {
        conf_where(p, kv, where, sizeof where);
        if (!strcmp(kv->value, "identity"))
            p->mode = MODE_IDENTITY;
        else if (!strcmp(kv->value, "scrypt"))
            p->mode = MODE_SCRYPT;
        else {
            rc = dimple_errorf(host, DIMPLE_ECONFIG,
                               "%s: mode must be identity or scrypt, not '%s'",
                               where, kv->value);
            goto out;
        }
    }
    if ((kv = dimple_kv_find(conf, "work_factor"))) {
        long v;
        conf_where(p, kv, where, sizeof where);
        if (parse_int(kv->value, 10, AGE_MAX_LOGN, &v)) {
            rc = dimple_errorf(host, DIMPLE_ECONFIG,
                               "%s: work_factor must be an integer from 10 to "
                               "%d (default %d)",
                               where, AGE_MAX_LOGN, AGE_DEFAULT_LOGN);
            goto out;
        }
        p->logn = (int)v;
    }
    if ((rc = dimple_conf_bool(host, conf, "armor", p->armor, &p->armor)))
        goto out;
    const dimple_kv *pass = dimple_kv_find(conf, "passphrase");
    const dimple_kv *pass_file = dimple_kv_find(conf, "passphrase_file");
    if (pass && pass_file) {
        conf_where(p, pass_file, where, sizeof where);
        rc = dimple_errorf(host, DIMPLE_ECONFIG,
                           "%s: set passphrase or passphrase_file, not both",
                           where);
        goto out;
    }
    if (pass) {
        /* The value is never echoed: it is a secret. */
        conf_where(p, pass, where, sizeof where);
        if (!*pass->value) {
            rc = dimple_errorf(host, DIMPLE_ECONFIG, "%s: passphrase is empty",
                               where);
            goto out;
        }
        if (!(p->pass = strdup(pass->value))) {
            rc = DIMPLE_ENOMEM;
            goto out;
        }
        p->pass_len = strlen(p->pass);
    } else if (pass_file) {
        age_buf b = {0};
        conf_where(p, pass_file, where, sizeof where);
        rc = read_file(pass_file->value, PASS_MAX, &b);
        if (rc) {
            age_buf_free(&b);
            rc = dimple_errorf(
                host, DIMPLE_ECONFIG, "%s: cannot read passphrase_file '%s'%s",
                where, pass_file->value,
                rc == DIMPLE_ECORRUPT ? " (larger than 4 KiB)" : "");
            goto out;
        }
        /* One trailing newline (LF or CRLF) is not part of it. */
        if (b.n && b.p[b.n - 1] == '\n')
            b.n--;
        if (b.n && b.p[b.n - 1] == '\r')
            b.n--;
        if (!b.n || memchr(b.p, '\0', b.n)) {
            age_buf_free(&b);
            rc = dimple_errorf(host, DIMPLE_ECONFIG,
                               "%s: passphrase_file '%s' is empty or binary",
                               where, pass_file->value);
            goto out;
        }
        p->pass = malloc(b.n + 1);
        if (p->pass) {
            memcpy(p->pass, b.p, b.n);
            p->pass[b.n] = '\0';
            p->pass_len = b.n;
        }
        age_buf_free(&b);
        if (!p->pass) {
            rc = DIMPLE_ENOMEM;
            goto out;
        }
    }
    const dimple_kv *recips = dimple_kv_find(conf, "recipients");
    const dimple_kv *id_file = dimple_kv_find(conf, "identity_file");
    if (p->mode == MODE_SCRYPT) {
        if (!p->pass || recips || id_file) {
            const dimple_kv *bad = recips ? recips : id_file;
            rc = dimple_errorf(host, DIMPLE_ECONFIG,
                               "%s:%d: mode = scrypt needs passphrase or "
                               "passphrase_file, and no recipients or "
                               "identity_file (a passphrase stanza must be "
                               "alone)",
                               host && host->config_file ? host->config_file
                                                         : "(config)",
                               bad ? bad->line : 0);
            goto out;
        }
    } else if (!p->pass && !recips && !id_file) {
        rc = dimple_errorf(host, DIMPLE_ECONFIG,
                           "%s: [%s] age needs passphrase, passphrase_file, "
                           "recipients or identity_file",
                           host && host->config_file ? host->config_file
                                                     : "(config)",
                           host && host->section ? host->section : "cipher");
        goto out;
    }
    if (recips && (rc = parse_recipients(p, recips)))
        goto out;
    if (id_file) {
        age_buf b = {0};
        char what[600];
        conf_where(p, id_file, where, sizeof where);
        rc = read_file(id_file->value, KEY_FILE_MAX, &b);
        if (rc) {
            age_buf_free(&b);
            rc = dimple_errorf(host, DIMPLE_ECONFIG,
                               "%s: cannot read identity_file '%s'", where,
                               id_file->value);
            goto out;
        }
        snprintf(what, sizeof what, "%s: identity_file '%s'", where,
                 id_file->value);
        rc = parse_identities(p, (const char *)b.p, b.n, NULL, what);
        age_buf_free(&b);
        if (rc) {
            rc = DIMPLE_ECONFIG;
            goto out;
        }
    }
    if (p->pass && (rc = add_pass_identity(p)))
        goto out;
    *self = p;
    p = NULL;
    rc = DIMPLE_OK;
out:
    plugin_free(p);
    return rc;
}

static void v_destroy(void *self)
{
    plugin_free(self);
}

static int v_attach(void *self, const dimple_store *store)
{
    age_plugin *p = self;
    if (!store || !store->get || !store->list || !store->put)
        return dimple_errorf(p->host, DIMPLE_EINVAL,
                             "attach: the store lacks get, put or list");
    memset(&p->store, 0, sizeof p->store);
    memcpy(&p->store, store,
           store->size < sizeof p->store ? store->size : sizeof p->store);
    p->has_store = 1;
    return DIMPLE_OK;
}

static int v_encrypt(void *self, const char *name, const dimple_source *in,
                     const dimple_sink *out)
{
    age_plugin *p = self;
    age_recipient *rs = NULL;
    size_t n = 0, nx;
    age_err e = {0};
    int rc;

    if (p->mode == MODE_SCRYPT) {
        age_recipient r = {0};
        r.type = AGE_ID_SCRYPT;
        r.pass = p->pass;
        r.pass_len = p->pass_len;
        r.logn = p->logn;
        rc = age_encrypt(in, out, p->armor, &r, 1, &e);
        goto out;
    }
    if ((rc = ensure_keys(p, 1)))
        return rc;
    nx = n_x25519(p);
    rs = calloc(nx + p->n_extra + 1, sizeof *rs);
    if (!rs)
        return dimple_errorf(p->host, DIMPLE_ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < p->n_ids; i++) {
        if (p->ids[i].type != AGE_ID_X25519)
            continue;
        rs[n].type = AGE_ID_X25519;
        memcpy(rs[n++].pk, p->ids[i].pk, 32);
    }
    for (size_t i = 0; i < p->n_extra; i++)
        rs[n++] = p->extra[i];
    rc = age_encrypt(in, out, p->armor, rs, n, &e);
out:
    free(rs);
    if (rc)
        return dimple_errorf(p->host, rc, "encrypting %s: %s", name, e.msg);
    return DIMPLE_OK;
}

static int v_decrypt(void *self, const char *name, const dimple_source *in,
                     const dimple_sink *out)
{
    age_plugin *p = self;
    age_err e = {0};
    age_keyring kr = {0};
    int rc;

    /* With keys/ still empty, only identity_file or passphrase files can
     * match; the failure below says so. */
    if ((rc = ensure_keys(p, 0)) && rc != DIMPLE_ENOTFOUND)
        return dimple_errorf(p->host, rc, "cannot decrypt %s: %s", name,
                             p->kmsg[0] ? p->kmsg : "key store unavailable");
    kr.ids = p->ids;
    kr.n = p->n_ids;
    kr.more = keyring_more;
    kr.ctx = p;
    rc = age_decrypt(in, out, AGE_ARMOR_AUTO, &kr, &e);
    if (!rc)
        return DIMPLE_OK;
    if (e.cls == AGE_E_NOMATCH)
        return dimple_errorf(p->host, DIMPLE_EAUTH,
                             "cannot decrypt %s: %s (%zu identit%s unlocked)",
                             name, e.msg, n_x25519(p),
                             n_x25519(p) == 1 ? "y" : "ies");
    if (e.cls == AGE_E_OTHER)
        return dimple_errorf(p->host, rc, "cannot decrypt %s: %s", name, e.msg);
    return dimple_errorf(p->host, rc, "cannot decrypt %s: %s: %s", name,
                         age_class_name(e.cls), e.msg);
}

/* Writes the unlocked identities in age-keygen format, plus a comment with
 * this process's scrypt count (for tests and `dimple identity`). */
static int v_identity(void *self, const dimple_sink *out)
{
    age_plugin *p = self;
    int rc;
    size_t nx;
    char line[512], sk_txt[128], pk_txt[128];

    if (p->mode == MODE_SCRYPT)
        return dimple_errorf(p->host, DIMPLE_ENOTFOUND,
                             "mode = scrypt has no identity: decrypt objects "
                             "with `age -d` and the passphrase");
    if ((rc = ensure_keys(p, 1)))
        return rc;
    nx = n_x25519(p);
    if (!nx)
        return dimple_errorf(p->host, DIMPLE_ENOTFOUND,
                             "no identity: only recipients are configured");
    for (size_t i = 0; i < p->n_ids && !rc; i++) {
        if (p->ids[i].type != AGE_ID_X25519)
            continue;
        if (age_identity_format(p->ids[i].sk, sk_txt) ||
            age_recipient_format(p->ids[i].pk, pk_txt))
            return dimple_errorf(p->host, DIMPLE_ERROR, "formatting failed");
        int n = snprintf(line, sizeof line, "# %s%s\n# public key: %s\n%s\n",
                         p->id_file[i] ? "from " : "from identity_file",
                         p->id_file[i] ? p->id_file[i] : "", pk_txt, sk_txt);
        rc = dimple_sink_write(out, line, (size_t)n);
        age_wipe(line, sizeof line);
        age_wipe(sk_txt, sizeof sk_txt);
    }
    if (!rc) {
        int n = snprintf(line, sizeof line,
                         "# scrypt derivations in this process: %llu\n",
                         (unsigned long long)age_scrypt_count());
        rc = dimple_sink_write(out, line, (size_t)n);
    }
    return rc;
}

static const dimple_cipher_vtable vtable = {
    .size = sizeof(dimple_cipher_vtable),
    .create = v_create,
    .destroy = v_destroy,
    .attach = v_attach,
    .encrypt = v_encrypt,
    .decrypt = v_decrypt,
    .identity = v_identity,
};

static const dimple_plugin descriptor = {
    .abi = DIMPLE_ABI,
    .size = sizeof(dimple_plugin),
    .kind = DIMPLE_KIND_CIPHER,
    .name = "age",
    .version = "1.0.0",
    .description = "age v1 encryption (passphrase-protected X25519 identities, "
                   "scrypt, X25519)",
    .vt.cipher = &vtable,
};

DIMPLE_EXPORT const dimple_plugin *dimple_plugin_entry(void)
{
    return &descriptor;
}
