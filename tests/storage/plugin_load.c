/* plugin_load.c — see plugin_load.h. */
#include "plugin_load.h"

#include <dlfcn.h>
#include <stddef.h>
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

/* dlopen file and return its descriptor, checked; want is the name the
 * file is named for. */
static const dimple_plugin *load_file(const char *file, const char *want,
                                      void **dl_out)
{
    void *dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        bail("plugin '%s': dlopen %s: %s", want, file, dlerror());
    dimple_plugin_entry_fn *entry =
        (dimple_plugin_entry_fn *)dlsym(dl, "dimple_plugin_entry");
    if (!entry)
        bail("plugin '%s': %s has no dimple_plugin_entry", want, file);
    const dimple_plugin *pl = entry();
    if (!pl || pl->abi != DIMPLE_ABI)
        bail("plugin '%s': %s is built for plugin ABI %u, this runner needs "
             "ABI %u: rebuild it against this dimple/plugin.h",
             want, file, pl ? pl->abi : 0u, DIMPLE_ABI);
    if (pl->size < offsetof(dimple_plugin, vt) + sizeof pl->vt)
        bail("plugin '%s': %s: descriptor size %zu is too small (set .size "
             "= sizeof(dimple_plugin))",
             want, file, pl->size);
    if (!pl->name || strcmp(pl->name, want) != 0)
        bail("plugin '%s': %s calls itself '%s'", want, file,
             pl->name ? pl->name : "(null)");
    *dl_out = dl;
    return pl;
}

const dimple_plugin *test_plugin_load(const char *name, void **dl_out)
{
    const char *path = getenv("DIMPLE_PLUGIN_PATH");
    char file[4096], want[256];
    const char *p;

    if (strchr(name, '/')) {
        /* a file: .../dimple-<want>.so */
        const char *base = strrchr(name, '/') + 1;
        size_t n = strlen(base);
        if (strncmp(base, "dimple-", 7) != 0 || n <= 10 ||
            strcmp(base + n - 3, ".so") != 0)
            bail("%s: a plugin file is named dimple-<name>.so", name);
        snprintf(want, sizeof want, "%.*s", (int)(n - 10), base + 7);
        if (access(name, F_OK) != 0)
            bail("plugin '%s': %s does not exist", want, name);
        return load_file(name, want, dl_out);
    }
    if (!path || !*path)
        bail("plugin '%s': give the plugin's file (./dimple-%s.so) or set "
             "DIMPLE_PLUGIN_PATH to the folder that holds it",
             name, name);
    for (p = path; *p;) {
        size_t n = strcspn(p, ":");
        if (n > 0) {
            snprintf(file, sizeof file, "%.*s/dimple-%s.so", (int)n, p, name);
            if (access(file, F_OK) == 0)
                return load_file(file, name, dl_out);
        }
        p += n;
        if (*p == ':')
            p++;
    }
    bail("plugin '%s': dimple-%s.so not found in DIMPLE_PLUGIN_PATH=%s", name,
         name, path);
}

const char *test_code_name(int code)
{
    static const char *const names[] = {
        "DIMPLE_OK",       "DIMPLE_ERROR",     "DIMPLE_ENOMEM",
        "DIMPLE_EINVAL",   "DIMPLE_ENOTFOUND", "DIMPLE_EEXISTS",
        "DIMPLE_EIO",      "DIMPLE_EAUTH",     "DIMPLE_ECONFLICT",
        "DIMPLE_EBUSY",    "DIMPLE_ECONFIG",   "DIMPLE_EPLUGIN",
        "DIMPLE_ECORRUPT", "DIMPLE_ESQL",      "DIMPLE_EFORMAT",
        "DIMPLE_ESCHEMA"};
    if (code <= 0 && -code < (int)(sizeof names / sizeof names[0]))
        return names[-code];
    return "an unknown code";
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
