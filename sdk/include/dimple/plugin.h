/*
 * dimple/plugin.h — the plugin SDK: everything a DimpleDb plugin needs.
 *
 * A plugin is a shared object named dimple-<name>.so that exports exactly one
 * symbol, dimple_plugin_entry, returning a pointer to a static const
 * dimple_plugin descriptor. Plugins include this header only; they never
 * link libdimple. All helpers below are static inline for that reason.
 *
 * ABI rules
 *  - DIMPLE_ABI is bumped on any incompatible change to this file; the loader
 *    refuses a plugin whose descriptor says another ABI.
 *  - The descriptor and every vtable carry a `size_t size` (set it to sizeof
 *    the struct) and only ever grow at the end. The core copies
 *    min(size, its sizeof) bytes into a zeroed struct: an older plugin has
 *    NULL (or 0) in newer optional members, without an ABI bump.
 *  - The same conventions as the app API (<dimple.h>): a pure out parameter
 *    comes first (create's `self`, resolve's `merged`); a callback's
 *    `void *payload` is its first parameter; counts are size_t; a callback
 *    (or a sink's write) returns 0 to go on, and any other value stops the
 *    call that invoked it, which returns that value as it is.
 *  - Nothing is freed across the boundary: a plugin allocates in create()
 *    and frees in destroy(); bytes leave a plugin only through a dimple_sink.
 *  - Plugins never print, exit or abort. They report errors through the host
 *    table (dimple_errorf) and return a negative DIMPLE_E* code.
 *  - An instance is used by one thread at a time; a plugin needs locks only
 *    for state it shares between instances (globals).
 *
 * See docs/plugins.md for the guide and sdk/template/ for a copy-me plugin.
 */
#ifndef DIMPLE_PLUGIN_H
#define DIMPLE_PLUGIN_H

#include <dimple/common.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DIMPLE_ABI 2u

typedef enum dimple_kind {
    DIMPLE_KIND_STORAGE = 1,
    DIMPLE_KIND_CIPHER = 2,
    DIMPLE_KIND_RESOLVER = 3,
    DIMPLE_KIND_NOTIFIER = 4
} dimple_kind;

enum {
    DIMPLE_LOG_ERROR = 1,
    DIMPLE_LOG_WARN = 2,
    DIMPLE_LOG_INFO = 3,
    DIMPLE_LOG_DEBUG = 4
};

/*
 * Services the core gives a plugin instance. Passed to create(); valid until
 * destroy(). Check `size` before using a slot added after ABI 2's first set.
 */
typedef struct dimple_host {
    size_t size;
    void *ctx; /* core-private: pass back unchanged */
    /* Record the error message of the current call (the core prefixes
     * "<section> <plugin>: "). Never put secrets in msg. */
    void (*error)(void *ctx, int code, const char *msg);
    void (*log)(void *ctx, int level, const char *msg);
    const char *config_file; /* dimple.conf path, or NULL (for file:line) */
    const char *section;     /* the config section, e.g. "storage" */
} dimple_host;

/* Where a plugin writes bytes it hands to the core. write returns 0 to go
 * on; any other value (a negative code) stops the plugin's call, which
 * returns it as it is. */
typedef struct dimple_sink {
    int (*write)(void *ctx, const void *p, size_t n);
    void *ctx;
} dimple_sink;

/* Where a plugin reads a stream from. read returns the number of bytes
 * read (0 at the end) or a negative code. */
typedef struct dimple_source {
    ptrdiff_t (*read)(void *ctx, void *buf, size_t n);
    void *ctx;
} dimple_source;

/* Listing callback: return 0 to go on; any other value stops the listing
 * and is returned by list() as it is. key is borrowed for the call. */
typedef int (*dimple_list_cb)(void *payload, const char *key);

/* list() flag: report only the direct children of prefix; a deeper key is
 * reported once as its folder, "prefix<child>/" (S3's delimiter "/"). */
#define DIMPLE_LIST_SHALLOW 1u

/* ------------------------------------------------------------ storage */
/*
 * Keys are relative UTF-8 paths: segments separated by '/', no leading '/',
 * no empty, "." or ".." segment, no NUL or backslash (dimple_key_valid).
 * The core validates keys before calling a plugin, and a plugin that maps
 * keys to paths checks them again.
 */
typedef struct dimple_storage_vtable {
    size_t size; /* = sizeof(dimple_storage_vtable) */
    /* conf: the section's keys except `plugin`; reject unknown keys. */
    int (*create)(void **self, const dimple_kv *conf, const dimple_host *host);
    void (*destroy)(void *self);
    /* Atomic: a reader sees the old object, the new one, or none; never a
     * partial one. Overwrites an existing object. */
    int (*put)(void *self, const char *key, const void *data, size_t len);
    /* Writes the whole object to out; DIMPLE_ENOTFOUND if absent. */
    int (*get)(void *self, const char *key, const dimple_sink *out);
    /* Every key starting with prefix ("" = all) and sorting strictly after
     * start_after (NULL or "" = from the start), in ascending byte order. */
    int (*list)(void *self, const char *prefix, const char *start_after,
                unsigned flags, dimple_list_cb cb, void *payload);
    /* Removing an absent key succeeds. */
    int (*remove)(void *self, const char *key);
    /* Optional (NULL: unsupported). Like put, but DIMPLE_EEXISTS if the key
     * exists; atomic against a concurrent put_if_absent of the same key.
     * DIMPLE_EPLUGIN means "this server cannot": the core then emulates. */
    int (*put_if_absent)(void *self, const char *key, const void *data,
                         size_t len);
} dimple_storage_vtable;

/* ------------------------------------------------------------- cipher */
/*
 * Access to the configured storage for a cipher's own objects (keys/...).
 * Keys are relative to the store's prefix. Valid until destroy().
 */
typedef struct dimple_store {
    size_t size;
    void *ctx;
    int (*put)(void *ctx, const char *key, const void *data, size_t len);
    int (*put_if_absent)(void *ctx, const char *key, const void *data,
                         size_t len); /* EEXISTS; emulated if unsupported */
    int (*get)(void *ctx, const char *key, const dimple_sink *out);
    int (*list)(void *ctx, const char *prefix, const char *start_after,
                unsigned flags, dimple_list_cb cb, void *payload);
} dimple_store;

typedef struct dimple_cipher_vtable {
    size_t size;
    int (*create)(void **self, const dimple_kv *conf, const dimple_host *host);
    void (*destroy)(void *self);
    /* Optional: called once after create() when a storage is configured,
     * before any encrypt/decrypt. The cipher may keep `store`. */
    int (*attach)(void *self, const dimple_store *store);
    /* Stream in -> out. `name` names the object, for error messages.
     * decrypt must not write a byte it has not authenticated, and fails
     * (DIMPLE_EAUTH or DIMPLE_ECORRUPT) on anything it cannot decrypt,
     * plaintext included. */
    int (*encrypt)(void *self, const char *name, const dimple_source *in,
                   const dimple_sink *out);
    int (*decrypt)(void *self, const char *name, const dimple_source *in,
                   const dimple_sink *out);
    /* Optional: write the unlocked identity (e.g. AGE-SECRET-KEY-1...) so a
     * person can decrypt stored objects with standard tools. */
    int (*identity)(void *self, const dimple_sink *out);
} dimple_cipher_vtable;

/* ----------------------------------------------------------- resolver */
/* One version of a cell: the value a change wrote and who wrote it when. */
typedef struct dimple_cell {
    const char *table;
    const char *column;
    const uint8_t *id;  /* 16 bytes: the UUIDv7 of the change */
    const char *author; /* UUID text of the change's author */
    dimple_value value;
} dimple_cell;

enum {
    DIMPLE_KEEP_CURRENT = 0, /* current stays */
    DIMPLE_TAKE_INCOMING = 1,
    DIMPLE_MERGED = 2 /* reserved: *merged would hold a new value; the
                         core refuses it (DIMPLE_EPLUGIN) so that tables
                         stay a function of the changes held */
};

typedef struct dimple_resolver_vtable {
    size_t size;
    int (*create)(void **self, const dimple_kv *conf, const dimple_host *host);
    void (*destroy)(void *self);
    /* Returns DIMPLE_KEEP_CURRENT, DIMPLE_TAKE_INCOMING, DIMPLE_MERGED or a
     * negative code. For replicas to converge, the rule must be a join:
     * deterministic, commutative, associative and idempotent. */
    int (*resolve)(dimple_value *merged, void *self, const dimple_cell *current,
                   const dimple_cell *incoming);
    /* Optional (a plugin that leaves it out reads as 0):
     * DIMPLE_RESOLVE_* promises about resolve(), which let the core skip
     * work. They never replace a call: whenever two versions of a cell
     * compete, resolve() decides. */
    unsigned flags;
} dimple_resolver_vtable;

/* resolve() reads only the ids (and table, column) of the two versions:
 * the core does not fetch the current value, and passes both values as
 * DIMPLE_NULL and both authors as "". */
#define DIMPLE_RESOLVE_IDS_ONLY 1u
/* A version whose id is greater than every id the replica holds wins
 * (true of a rule where the greater id wins). Local writes are such
 * versions, so the core may record them in the per-cell clock lazily
 * (before the next apply) instead of at each write; without this flag
 * a local write that loses is undone at once, which costs a merge per
 * write. */
#define DIMPLE_RESOLVE_NEWEST_WINS 2u

/* ----------------------------------------------------------- notifier */
typedef struct dimple_event {
    const char *id; /* UUIDv7 text of the change */
    const char *table;
    const char *key_json; /* the key: a JSON value, an array if composite */
    const char *op;       /* "insert", "update" or "delete" */
    const char *author;   /* UUID text */
    const char *origin;   /* "local" or "remote" */
} dimple_event;

typedef struct dimple_notifier_vtable {
    size_t size;
    int (*create)(void **self, const dimple_kv *conf, const dimple_host *host);
    void (*destroy)(void *self);
    /* The changes of one committed transaction, in id order. Called on the
     * committing thread: must not block beyond a bound (queue and return). */
    int (*notify)(void *self, const dimple_event *events, size_t n);
} dimple_notifier_vtable;

/* --------------------------------------------------------- descriptor */
typedef struct dimple_plugin {
    uint32_t abi; /* DIMPLE_ABI; first, so any core can read it */
    size_t size;  /* = sizeof(dimple_plugin) */
    dimple_kind kind;
    const char *name;    /* must match the file: dimple-<name>.so */
    const char *version; /* the plugin's own version string */
    const char *description;
    union {
        const dimple_storage_vtable *storage;
        const dimple_cipher_vtable *cipher;
        const dimple_resolver_vtable *resolver;
        const dimple_notifier_vtable *notifier;
    } vt;
} dimple_plugin;

typedef const dimple_plugin *dimple_plugin_entry_fn(void);

/* The one symbol a plugin exports. Declared here so the compiler checks
 * each plugin's definition against it. */
DIMPLE_EXPORT dimple_plugin_entry_fn dimple_plugin_entry;

/* ------------------------------------------------------------ helpers */

/* The vtable (its size set), the descriptor and the entry point of a C
 * plugin in one go; the slots follow as designated initializers:
 *   DIMPLE_STORAGE_PLUGIN("notes", "0.1.0", "one file per object",
 *                         .create = notes_create, .destroy = ..., ...)
 * (DIMPLE_CIPHER_PLUGIN, DIMPLE_RESOLVER_PLUGIN, DIMPLE_NOTIFIER_PLUGIN
 * alike). */
#define DIMPLE_PLUGIN_DEFINE_(kind_, slot_, name_, version_, description_,     \
                              ...)                                             \
    static const dimple_##slot_##_vtable dimple_plugin_vtable_ = {             \
        .size = sizeof(dimple_##slot_##_vtable), __VA_ARGS__};                 \
    static const dimple_plugin dimple_plugin_descriptor_ = {                   \
        .abi = DIMPLE_ABI,                                                     \
        .size = sizeof(dimple_plugin),                                         \
        .kind = kind_,                                                         \
        .name = name_,                                                         \
        .version = version_,                                                   \
        .description = description_,                                           \
        .vt.slot_ = &dimple_plugin_vtable_};                                   \
    const dimple_plugin *dimple_plugin_entry(void)                             \
    {                                                                          \
        return &dimple_plugin_descriptor_;                                     \
    }
#define DIMPLE_STORAGE_PLUGIN(name, version, description, ...)                 \
    DIMPLE_PLUGIN_DEFINE_(DIMPLE_KIND_STORAGE, storage, name, version,         \
                          description, __VA_ARGS__)
#define DIMPLE_CIPHER_PLUGIN(name, version, description, ...)                  \
    DIMPLE_PLUGIN_DEFINE_(DIMPLE_KIND_CIPHER, cipher, name, version,           \
                          description, __VA_ARGS__)
#define DIMPLE_RESOLVER_PLUGIN(name, version, description, ...)                \
    DIMPLE_PLUGIN_DEFINE_(DIMPLE_KIND_RESOLVER, resolver, name, version,       \
                          description, __VA_ARGS__)
#define DIMPLE_NOTIFIER_PLUGIN(name, version, description, ...)                \
    DIMPLE_PLUGIN_DEFINE_(DIMPLE_KIND_NOTIFIER, notifier, name, version,       \
                          description, __VA_ARGS__)

/* Format a message, hand it to the host, return code. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int
dimple_errorf(const dimple_host *host, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (host && host->error)
        host->error(host->ctx, code, msg);
    return code;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline void
dimple_logf(const dimple_host *host, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!host || !host->log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    host->log(host->ctx, level, msg);
}

/* The value of key in conf, or NULL. */
static inline const char *dimple_kv_get(const dimple_kv *conf, const char *key)
{
    for (; conf && conf->key; conf++)
        if (strcmp(conf->key, key) == 0)
            return conf->value;
    return NULL;
}

/* The entry of key in conf (for its line), or NULL. */
static inline const dimple_kv *dimple_kv_find(const dimple_kv *conf,
                                              const char *key)
{
    for (; conf && conf->key; conf++)
        if (strcmp(conf->key, key) == 0)
            return conf;
    return NULL;
}

/* DIMPLE_ECONFIG with "file:line: unknown key" for the first key of conf
 * that is not in known (a NULL-terminated list); DIMPLE_OK otherwise. */
static inline int dimple_kv_check(const dimple_host *host,
                                  const dimple_kv *conf,
                                  const char *const *known)
{
    for (; conf && conf->key; conf++) {
        const char *const *k = known;
        while (*k && strcmp(*k, conf->key) != 0)
            k++;
        if (!*k)
            return dimple_errorf(
                host, DIMPLE_ECONFIG, "%s:%d: unknown key '%s' in [%s]",
                host && host->config_file ? host->config_file : "(config)",
                conf->line, conf->key,
                host && host->section ? host->section : "?");
    }
    return DIMPLE_OK;
}

static inline int dimple_sink_write(const dimple_sink *sink, const void *p,
                                    size_t n)
{
    return n ? sink->write(sink->ctx, p, n) : DIMPLE_OK;
}

/* 1 if key is a valid storage key (see the storage section), else 0. */
static inline int dimple_key_valid(const char *key)
{
    const char *seg = key;
    if (!key || !*key || *key == '/')
        return 0;
    for (const char *p = key;; p++) {
        if (*p == '\\')
            return 0;
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            if (len == 0)
                return 0; /* empty segment, or a trailing '/' */
            if ((len == 1 && seg[0] == '.') ||
                (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (*p == '\0')
                return 1;
            seg = p + 1;
        }
    }
}

/* A path from the configuration, resolved the way the core resolves
 * `database`: an absolute path as it is, a relative one against the folder
 * of the configuration file (against the current folder when there is no
 * file). Writes at most size bytes to out; returns DIMPLE_OK, or
 * DIMPLE_EINVAL when it does not fit. */
static inline int dimple_conf_path(const dimple_host *host, const char *value,
                                   char *out, size_t size)
{
    const char *file = host ? host->config_file : NULL;
    const char *slash = file ? strrchr(file, '/') : NULL;
    int n;
    if (value[0] == '/' || !slash)
        n = snprintf(out, size, "%s", value);
    else
        n = snprintf(out, size, "%.*s/%s", (int)(slash - file), file, value);
    return n >= 0 && (size_t)n < size ? DIMPLE_OK : DIMPLE_EINVAL;
}

/* 1 if some valid key could start with prefix ("" included): no leading
 * '/', no backslash, and every complete segment (one followed by '/') is
 * a valid segment; the last, partial one may be anything. For list(). */
static inline int dimple_prefix_valid(const char *prefix)
{
    const char *seg = prefix;
    if (!prefix)
        return 1;
    if (*prefix == '/' || strchr(prefix, '\\'))
        return 0;
    for (const char *p = prefix; *p; p++) {
        size_t len;
        if (*p != '/')
            continue;
        len = (size_t)(p - seg);
        if (len == 0 || (len == 1 && seg[0] == '.') ||
            (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        seg = p + 1;
    }
    return 1;
}

/* ------------------------------------------- configuration helpers */
/*
 * Typed reads of a section's keys. Each returns DIMPLE_OK, or
 * DIMPLE_ECONFIG with a message through the host that names the file, the
 * line, the section and the key ("dimple.conf:7: [storage] fsync: 'maybe'
 * is not a boolean (on/off, true/false, yes/no, 1/0)"). Chain them after
 * dimple_kv_check:
 *
 *   if ((rc = dimple_kv_check(host, conf, known)) < 0 ||
 *       (rc = dimple_conf_string(host, conf, "path", NULL, &path)) < 0 ||
 *       (rc = dimple_conf_bool(host, conf, "fsync", 1, &fsync)) < 0)
 *       return rc;
 */

/* DIMPLE_ECONFIG with "file:line: [section] key: msg" (kv: the entry the
 * message is about; NULL for a key that is missing, named in msg). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int
dimple_conf_errorf(const dimple_host *host, const dimple_kv *kv,
                   const char *fmt, ...)
{
    char msg[768];
    const char *file = host && host->config_file ? host->config_file : NULL;
    const char *section = host && host->section ? host->section : "?";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (kv && kv->line > 0 && file)
        return dimple_errorf(host, DIMPLE_ECONFIG, "%s:%d: [%s] %s: %s", file,
                             kv->line, section, kv->key, msg);
    if (kv)
        return dimple_errorf(host, DIMPLE_ECONFIG, "%s%s[%s] %s: %s",
                             file ? file : "", file ? ": " : "", section,
                             kv->key, msg);
    return dimple_errorf(host, DIMPLE_ECONFIG, "%s%s[%s] %s", file ? file : "",
                         file ? ": " : "", section, msg);
}

/* The value of key; def when it is absent (def NULL: the key is required).
 * An empty value is refused: read such a key with dimple_kv_get. */
static inline int dimple_conf_string(const dimple_host *host,
                                     const dimple_kv *conf, const char *key,
                                     const char *def, const char **out)
{
    const dimple_kv *kv = dimple_kv_find(conf, key);
    *out = def;
    if (!kv && !def)
        return dimple_conf_errorf(host, NULL, "%s is required", key);
    if (kv && (!kv->value || !*kv->value))
        return dimple_conf_errorf(host, kv, "empty value");
    if (kv)
        *out = kv->value;
    return DIMPLE_OK;
}

static inline int dimple_conf_ieq_(const char *a, const char *b)
{
    /* ASCII case folding of letters only: "\x10" is not "0" */
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* The one list of boolean words, for the core's keys and every plugin's:
 * on/off, true/false, yes/no, 1/0, in any case. 0 and *out set (1 or 0),
 * or -1 when text is none of them. */
static inline int dimple_conf_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (dimple_conf_ieq_(text, yes[i]))
            return *out = 1, 0;
        if (dimple_conf_ieq_(text, no[i]))
            return *out = 0, 0;
    }
    return -1;
}

/* A boolean: on/off, true/false, yes/no, 1/0 (any case); def when absent. */
static inline int dimple_conf_bool(const dimple_host *host,
                                   const dimple_kv *conf, const char *key,
                                   int def, int *out)
{
    const dimple_kv *kv = dimple_kv_find(conf, key);
    const char *v = kv && kv->value ? kv->value : "";
    *out = def;
    if (!kv || dimple_conf_parse_bool(v, out) == 0)
        return DIMPLE_OK;
    return dimple_conf_errorf(host, kv,
                              "'%s' is not a boolean (on/off, true/false, "
                              "yes/no, 1/0)",
                              v);
}

/* A decimal integer in [min, max]; def when absent. */
static inline int dimple_conf_int(const dimple_host *host,
                                  const dimple_kv *conf, const char *key,
                                  long long def, long long min, long long max,
                                  long long *out)
{
    const dimple_kv *kv = dimple_kv_find(conf, key);
    const char *p = kv && kv->value ? kv->value : "";
    long long v = 0;
    int neg = *p == '-', digits = 0;
    *out = def;
    if (!kv)
        return DIMPLE_OK;
    for (p += neg || *p == '+'; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits == 18)
            break; /* refused below, long before it could overflow */
        v = v * 10 + (*p - '0');
    }
    v = neg ? -v : v;
    if (!digits || *p || v < min || v > max)
        return dimple_conf_errorf(host, kv,
                                  "'%s' is not an integer from %lld to %lld",
                                  kv->value ? kv->value : "", min, max);
    *out = v;
    return DIMPLE_OK;
}

/* A path (dimple_conf_string, then dimple_conf_path: relative to the
 * configuration file's folder), written to out (size bytes). */
static inline int dimple_conf_file(const dimple_host *host,
                                   const dimple_kv *conf, const char *key,
                                   const char *def, char *out, size_t size)
{
    const char *v;
    int rc = dimple_conf_string(host, conf, key, def, &v);
    if (rc < 0)
        return rc;
    if (dimple_conf_path(host, v, out, size) < 0)
        return dimple_conf_errorf(host, dimple_kv_find(conf, key),
                                  "path longer than %zu bytes", size - 1);
    return DIMPLE_OK;
}

/* --------------------------------------------------- storage helpers */

/* DIMPLE_EINVAL with "op: invalid key '...'" unless key is valid. */
static inline int dimple_key_check(const dimple_host *host, const char *op,
                                   const char *key)
{
    if (dimple_key_valid(key))
        return DIMPLE_OK;
    return dimple_errorf(host, DIMPLE_EINVAL, "%s: invalid key '%s'", op,
                         key ? key : "(null)");
}

/*
 * list() made simple: feed every stored key that starts with prefix and
 * sorts after start_after, in ascending byte order, to dimple_lister_add
 * (keys outside the prefix or not after start_after are skipped, so a
 * superset is fine). It applies DIMPLE_LIST_SHALLOW (each deeper folder
 * once, as "prefix<child>/", when the folder sorts after start_after),
 * calls the callback and returns its non-zero answer: stop then, and
 * return it from list(). Nothing to free.
 *
 *   dimple_lister l = dimple_lister_begin(host, prefix, start_after, flags,
 *                                         cb, payload);
 *   while (rc == 0 && <next key k>)
 *       rc = dimple_lister_add(&l, k);
 */
typedef struct dimple_lister {
    const dimple_host *host;
    const char *prefix, *start_after;
    unsigned flags;
    dimple_list_cb cb;
    void *payload;
    char last[4096]; /* the last folder seen ("" = none) */
} dimple_lister;

static inline dimple_lister
dimple_lister_begin(const dimple_host *host, const char *prefix,
                    const char *start_after, unsigned flags, dimple_list_cb cb,
                    void *payload)
{
    dimple_lister l;
    l.host = host;
    l.prefix = prefix ? prefix : "";
    l.start_after = start_after;
    l.flags = flags;
    l.cb = cb;
    l.payload = payload;
    l.last[0] = '\0';
    return l;
}

static inline int dimple_lister_add(dimple_lister *l, const char *key)
{
    size_t plen = strlen(l->prefix), n;
    const char *slash;
    if (!key) /* what a failed lookup of the key means */
        return dimple_errorf(l->host, DIMPLE_ENOMEM, "list: out of memory");
    if (strncmp(key, l->prefix, plen) != 0)
        return 0;
    slash = l->flags & DIMPLE_LIST_SHALLOW ? strchr(key + plen, '/') : NULL;
    if (!slash)
        return l->start_after && strcmp(key, l->start_after) <= 0
                   ? 0
                   : l->cb(l->payload, key);
    n = (size_t)(slash - key) + 1; /* the folder, with its '/' */
    if (strncmp(l->last, key, n) == 0 && l->last[n] == '\0')
        return 0; /* reported (or skipped) already */
    if (n >= sizeof l->last)
        return dimple_errorf(l->host, DIMPLE_EINVAL,
                             "list: folder of '%s' longer than %zu bytes", key,
                             sizeof l->last - 1);
    memcpy(l->last, key, n);
    l->last[n] = '\0';
    if (l->start_after && strcmp(l->last, l->start_after) <= 0)
        return 0;
    return l->cb(l->payload, l->last);
}

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_PLUGIN_H */
