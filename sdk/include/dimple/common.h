/*
 * dimple/common.h — definitions shared by the app API (<dimple.h>) and the
 * plugin SDK (<dimple/plugin.h>): return codes, values, key/value pairs.
 *
 * Self-contained: C11 (or C++), no other dimple header needed.
 */
#ifndef DIMPLE_COMMON_H
#define DIMPLE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols a shared object exports (a plugin's entry, libdimple's API). */
#if defined(_WIN32)
#define DIMPLE_EXPORT __declspec(dllexport)
#else
#define DIMPLE_EXPORT __attribute__((visibility("default")))
#endif

/* Marks the app API's functions (libdimple is built with hidden
 * visibility; only these are exported). */
#ifndef DIMPLE_API
#define DIMPLE_API DIMPLE_EXPORT
#endif

/*
 * Return codes. Every fallible call returns DIMPLE_OK (0) or one of the
 * negative codes below; the handle (or the host, for plugins) keeps the
 * message that says what failed and where.
 */
enum {
    DIMPLE_OK = 0,
    DIMPLE_ERROR = -1,     /* generic failure: see the message */
    DIMPLE_ENOMEM = -2,    /* out of memory */
    DIMPLE_EINVAL = -3,    /* misuse: a bad argument */
    DIMPLE_ENOTFOUND = -4, /* no such object, row, key or plugin */
    DIMPLE_EEXISTS = -5,   /* already exists (put_if_absent, unique key) */
    DIMPLE_EIO = -6,       /* I/O or network failure (may succeed later) */
    DIMPLE_EAUTH = -7,     /* authentication or decryption refused */
    DIMPLE_ECONFLICT = -8, /* a concurrent change got there first */
    DIMPLE_EBUSY = -9,     /* database locked / resource busy */
    DIMPLE_ECONFIG = -10,  /* bad configuration */
    DIMPLE_EPLUGIN = -11,  /* plugin could not be loaded or used */
    DIMPLE_ECORRUPT = -12, /* malformed data (a batch, a file, a header) */
    DIMPLE_ESQL = -13,     /* SQLite reported an error */
    DIMPLE_EFORMAT = -14,  /* newer or unknown format version */
    DIMPLE_ESCHEMA = -15,  /* schema not usable (e.g. table has no key) */
    DIMPLE_ELIMIT = -16    /* a count or size limit was reached */
};

/* Value types: the numbers equal SQLite's fundamental datatypes. */
typedef enum dimple_type {
    DIMPLE_INTEGER = 1,
    DIMPLE_REAL = 2,
    DIMPLE_TEXT = 3,
    DIMPLE_BLOB = 4,
    DIMPLE_NULL = 5
} dimple_type;

/*
 * One SQLite value. For TEXT and BLOB, `p`/`n` point at bytes that are
 * borrowed (valid for the duration of the call that hands them over);
 * TEXT is UTF-8 and not necessarily NUL-terminated (use n).
 */
typedef struct dimple_value {
    dimple_type type;
    int64_t i;     /* DIMPLE_INTEGER */
    double r;      /* DIMPLE_REAL */
    const void *p; /* DIMPLE_TEXT, DIMPLE_BLOB */
    size_t n;      /* length of p in bytes */
} dimple_value;

/* The initializer of a versioned options struct T of the app API: size set,
 * every other field zero (its default). Each struct has its own
 * DIMPLE_<NAME>_INIT built on this one. */
#ifdef __cplusplus
#define DIMPLE_INIT_(T)                                                        \
    ([] {                                                                      \
        T o_ = T();                                                            \
        o_.size = sizeof o_;                                                   \
        return o_;                                                             \
    }())
#else
#define DIMPLE_INIT_(T)                                                        \
    {                                                                          \
        .size = sizeof(T)                                                      \
    }
#endif

/* Row callback: n columns with their names and values (borrowed for the
 * call). Return 0 to go on; anything else stops and is returned. */
typedef int (*dimple_row_cb)(void *payload, size_t n, const char *const *names,
                             const dimple_value *values);

/* A key/value pair; arrays of them end with {NULL, NULL}. Borrowed. */
typedef struct dimple_kv {
    const char *key;
    const char *value;
    int line; /* line in the configuration file (0 if not from a file) */
} dimple_kv;

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_COMMON_H */
