/*
 * config_keys.c — the table of the core's configuration keys and the one
 * parser of their values. Loading a file (config.c) checks every key
 * against it; open, sync and tracking read the parsed values; a test
 * checks that docs/config.md and conf/dimple.conf list every row with its
 * default and range. A new core key is a row here, then those two files.
 */
#include "config.h"

#include "batch.h"
#include "clock.h"

#include <dimple/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR(x) #x
#define XSTR(x) STR(x)

const dimple_config_key dimple_config__keys[DIMPLE_CONF_N_KEYS] = {
    [DIMPLE_CONF_DATABASE] = {"dimple", "database", DIMPLE_CONF_PATH, NULL, 1,
                              0, 0, NULL,
                              "the SQLite database file, created if missing"},
    [DIMPLE_CONF_TABLES] = {"dimple", "tables", DIMPLE_CONF_STRING, "*", 0, 0,
                            0, NULL,
                            "tables tracked and synced: *, a list, or none"},
    [DIMPLE_CONF_PLUGIN_DIR] = {"dimple", "plugin_dir", DIMPLE_CONF_PATH, NULL,
                                0, 0, 0, NULL,
                                "folder searched first for dimple-NAME.so"},
    [DIMPLE_CONF_MIGRATIONS] = {"dimple", "migrations", DIMPLE_CONF_PATH, NULL,
                                0, 0, 0, NULL,
                                "folder of NNN_name.sql migrations"},
    [DIMPLE_CONF_BUSY_TIMEOUT_MS] = {"dimple", "busy_timeout_ms",
                                     DIMPLE_CONF_INT, "5000", 0, 0, 3600000,
                                     "ms", "how long a write waits for a lock"},
    /* A year: beyond it a skew bound protects nothing. */
    [DIMPLE_CONF_MAX_CLOCK_SKEW] = {"dimple", "max_clock_skew", DIMPLE_CONF_INT,
                                    XSTR(DIMPLE_CLOCK_SKEW_DEFAULT_MS), 0, 0,
                                    INT64_C(365) * 24 * 3600 * 1000, "ms",
                                    "how far a remote id may move our clock"},
    /* 16 GiB: far beyond any device, small enough for an int. */
    [DIMPLE_CONF_CACHE_SIZE_KIB] = {"dimple", "cache_size_kib", DIMPLE_CONF_INT,
                                    "0", 0, 0, INT64_C(16) * 1024 * 1024, "KiB",
                                    "the connection's page cache limit"},
    [DIMPLE_CONF_BATCH_MAX_CHANGES] = {"sync", "batch_max_changes",
                                       DIMPLE_CONF_INT,
                                       XSTR(DIMPLE_BATCH_DEFAULT_CHANGES), 0, 1,
                                       DIMPLE_BATCH_MAX_CHANGES, "changes",
                                       "most changes in one batch written"},
    [DIMPLE_CONF_BATCH_MAX_BYTES] = {"sync", "batch_max_bytes", DIMPLE_CONF_INT,
                                     "1048576", 0, 1024,
                                     (int64_t)DIMPLE_BATCH_MAX_OBJECT, "bytes",
                                     "most JSON bytes in one batch written"},
    [DIMPLE_CONF_STORAGE_PLUGIN] = {"storage", "plugin", DIMPLE_CONF_PLUGIN,
                                    NULL, 1, 0, 0, NULL,
                                    "the storage plugin sync keeps objects in"},
    [DIMPLE_CONF_CIPHER_PLUGIN] = {"cipher", "plugin", DIMPLE_CONF_PLUGIN, NULL,
                                   1, 0, 0, NULL,
                                   "the cipher plugin that encrypts them"},
    [DIMPLE_CONF_RESOLVER_PLUGIN] = {"resolver", "plugin", DIMPLE_CONF_PLUGIN,
                                     "lww", 1, 0, 0, NULL,
                                     "the resolver plugin of conflicts"},
    [DIMPLE_CONF_NOTIFIER_PLUGIN] = {"notifier.*", "plugin", DIMPLE_CONF_PLUGIN,
                                     NULL, 1, 0, 0, NULL,
                                     "the notifier plugin of this label"},
};

static int section_matches(const char *pattern, const char *section)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return strncmp(pattern, section, n - 1) == 0 && section[n - 1];
    return strcmp(pattern, section) == 0;
}

const dimple_config_key *dimple_config__find_key(const char *section,
                                                 const char *key)
{
    for (size_t i = 0; i < DIMPLE_CONF_N_KEYS; i++) {
        const dimple_config_key *k = &dimple_config__keys[i];
        if (section_matches(k->section, section) && strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

int dimple_config__parse(const dimple_config_key *k, const char *text,
                         int64_t *out, char *msg, size_t cap)
{
    switch (k->type) {
    case DIMPLE_CONF_INT: {
        /* digits only, as docs/config.md says: no "+", spaces or hex */
        const char *digits = text + (text[0] == '-');
        char *end;
        long long n;
        errno = 0;
        n = strtoll(text, &end, 10);
        if (!isdigit((unsigned char)*digits) || errno || *end || n < k->min ||
            n > k->max) {
            snprintf(msg, cap, "must be an integer in %lld..%lld",
                     (long long)k->min, (long long)k->max);
            return DIMPLE_ECONFIG;
        }
        *out = n;
        return DIMPLE_OK;
    }
    case DIMPLE_CONF_BOOL: {
        int b;
        if (dimple_conf_parse_bool(text, &b) < 0) {
            snprintf(msg, cap, "must be true/false, yes/no, on/off or 1/0");
            return DIMPLE_ECONFIG;
        }
        *out = b;
        return DIMPLE_OK;
    }
    case DIMPLE_CONF_STRING:
    case DIMPLE_CONF_PATH:
    case DIMPLE_CONF_PLUGIN:
        break;
    }
    return DIMPLE_OK;
}
