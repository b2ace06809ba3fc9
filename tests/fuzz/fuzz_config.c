/*
 * fuzz_config.c — libFuzzer target for the dimple.conf reader
 * (core/src/config.c over inih): any bytes as the file. No crash, leak or
 * out-of-bounds access. A file it refuses leaves no configuration and a
 * message that starts with the file's name; a file it accepts answers
 * every lookup its own listing names (each section, each key with its
 * value and a line inside the file).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dimple *db;
    dimple_config *cfg = NULL;
    char path[64];
    size_t lines = 1;
    int fd, rc;

    if (!db) {
        /* Only the error fields are used: a zeroed handle serves. */
        db = calloc(1, sizeof *db);
        /* ${DIMPLE_FUZZ} expands; other variables are most likely unset */
        setenv("DIMPLE_FUZZ", "expanded", 1);
        if (!db)
            abort();
    }
    fd = memfd_create("dimple.conf", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    rc = dimple_config__load(db, path, &cfg);
    if (rc != DIMPLE_OK) {
        if (cfg || rc >= 0 || strncmp(dimple_errmsg(db), path, strlen(path)))
            abort();
    } else {
        const char *name;
        if (!cfg || strcmp(dimple_config__path(cfg), path))
            abort();
        for (size_t i = 0; (name = dimple_config__section_name(cfg, i)); i++) {
            const dimple_kv *kv = dimple_config__section(cfg, name);
            if (!kv)
                abort(); /* a listed section is there */
            for (; kv->key; kv++) {
                const char *v = dimple_config__get(cfg, name, kv->key);
                int line = dimple_config__line(cfg, name, kv->key);
                if (!v || !kv->value || line < 1 || (size_t)line > lines)
                    abort();
            }
        }
    }
    dimple_config__free(cfg);
    close(fd);
    return 0;
}
