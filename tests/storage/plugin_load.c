/* plugin_load.c — see plugin_load.h. */
#include "plugin_load.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
static void
bail(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("Bail out! %s\n", msg);
    fflush(stdout);
    fprintf(stderr, "%s\n", msg);
    exit(1);
}

const dimple_plugin *test_plugin_load(const char *name, void **dl_out)
{
    const char *path = getenv("DIMPLE_PLUGIN_PATH");
    char file[4096];
    void *dl = NULL;
    const char *p;

    if (!path || !*path)
        bail("plugin '%s': DIMPLE_PLUGIN_PATH is not set (run the test "
             "through meson test)",
             name);
    for (p = path; *p && !dl;) {
        size_t n = strcspn(p, ":");
        if (n > 0) {
            snprintf(file, sizeof file, "%.*s/dimple-%s.so", (int)n, p, name);
            if (access(file, F_OK) == 0) {
                dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
                if (!dl)
                    bail("plugin '%s': dlopen %s: %s", name, file, dlerror());
            }
        }
        p += n;
        if (*p == ':')
            p++;
    }
    if (!dl)
        bail("plugin '%s': dimple-%s.so not found in DIMPLE_PLUGIN_PATH=%s",
             name, name, path);

    dimple_plugin_entry_fn *entry =
        (dimple_plugin_entry_fn *)dlsym(dl, "dimple_plugin_entry");
    if (!entry)
        bail("plugin '%s': %s has no dimple_plugin_entry", name, file);
    const dimple_plugin *pl = entry();
    if (!pl || pl->abi != DIMPLE_ABI)
        bail("plugin '%s': %s is built for ABI %u, not %u", name, file,
             pl ? pl->abi : 0u, DIMPLE_ABI);
    if (!pl->name || strcmp(pl->name, name) != 0)
        bail("plugin '%s': %s calls itself '%s'", name, file,
             pl->name ? pl->name : "(null)");
    *dl_out = dl;
    return pl;
}

static void host_error(void *ctx, int code, const char *msg)
{
    test_host *th = ctx;
    th->last_code = code;
    th->errors++;
    snprintf(th->last_msg, sizeof th->last_msg, "%s", msg ? msg : "");
}

static void host_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg;
}

void test_host_init(test_host *th, const char *section)
{
    memset(th, 0, sizeof *th);
    th->host.size = sizeof th->host;
    th->host.ctx = th;
    th->host.error = host_error;
    th->host.log = host_log;
    th->host.config_file = "test.conf";
    th->host.section = section;
}

void test_host_clear(test_host *th)
{
    th->last_code = 0;
    th->last_msg[0] = '\0';
}
