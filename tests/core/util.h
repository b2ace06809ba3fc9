/*
 * util.h — small helpers for the core tests: a temp folder per test
 * program, writing files, a handle for config errors.
 */
#ifndef DIMPLE_TEST_CORE_UTIL_H
#define DIMPLE_TEST_CORE_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256];

/* A fresh temp folder, removed by tmp_cleanup(). */
static inline const char *tmp_dir(void)
{
    if (!tmp_root[0]) {
        strcpy(tmp_root, "/tmp/dimple-test-XXXXXX");
        if (!mkdtemp(tmp_root)) {
            perror("mkdtemp");
            exit(99);
        }
    }
    return tmp_root;
}

static inline void tmp_cleanup(void)
{
    char cmd[300];
    if (!tmp_root[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", tmp_root);
}

/* tmp_dir()/name into out (static buffer rotation: 8 at a time). */
static inline const char *tmp_path(const char *name)
{
    static char bufs[8][512];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 512, "%s/%s", tmp_dir(), name);
    return b;
}

/* Write text (printf format) to tmp_dir()/name; returns the path. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline const char *
write_tmp(const char *name, const char *fmt, ...)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    va_list ap;
    if (!f) {
        perror(path);
        exit(99);
    }
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    return path;
}

#endif
