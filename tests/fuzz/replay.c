/*
 * replay.c — main() for a libFuzzer target built without libFuzzer: each
 * file named on the command line (or each file of each folder, in name
 * order) goes once through LLVMFuzzerTestOneInput, with TAP output. The
 * targets abort() when a check fails; under ASan/UBSan (make test) a
 * memory error fails the run as well. meson registers one such test per
 * target over its corpus (suite fuzz). A target may define
 * fuzz_replay_note() to print what it makes of each file before the run
 * (the batch target compares its two decoders' verdicts).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional (weak): called with each file before LLVMFuzzerTestOneInput. */
void fuzz_replay_note(const char *path, const uint8_t *data, size_t size)
    __attribute__((weak));

static int count;

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0, got;
    if (!f) {
        printf("not ok %d - %s: cannot open\n", ++count, path);
        exit(1);
    }
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got);
    fclose(f);
    if (fuzz_replay_note)
        fuzz_replay_note(path, buf, n);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    printf("ok %d - %s (%zu bytes)\n", ++count, path, n);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    if (!d) {
        printf("not ok %d - %s: cannot open the folder\n", ++count, dir);
        exit(1);
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        if (!names || !(names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2)))
            abort();
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        run_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            run_dir(argv[i]);
        else
            run_file(argv[i]);
    }
    if (count == 0) {
        printf("not ok 1 - no input\n");
        return 1;
    }
    printf("1..%d\n", count);
    return 0;
}
