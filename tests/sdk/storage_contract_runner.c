/*
 * dimple-storage-contract — run the storage contract suite on any storage
 * plugin, e.g. one built out of tree from sdk/template (installed with
 * DimpleDb, in <prefix>/bin):
 *
 *   dimple-storage-contract ./build/dimple-notes.so path=/tmp/empty
 *   DIMPLE_PLUGIN_PATH=build dimple-storage-contract notes path=/tmp/empty
 *
 * Arguments after the plugin are its configuration, key=value, and must
 * describe an EMPTY store. Prints TAP; exits 0 when every check passed,
 * 1 when one failed or could not run, 2 on a usage error.
 */
#include "contract.h"

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s PLUGIN [KEY=VALUE...]\n"
            "  PLUGIN     the plugin's file (./build/dimple-NAME.so), or NAME\n"
            "             looked up as dimple-NAME.so in $DIMPLE_PLUGIN_PATH\n"
            "  KEY=VALUE  the plugin's configuration (its section's keys);\n"
            "             it must describe an EMPTY store\n"
            "Runs the storage contract (docs/storage.md) and prints TAP; "
            "exits non-zero when a check fails.\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    dimple_kv conf[32] = {{0}};
    char *copies[32] = {0};
    int n = 0, rc = 2;

    if (argc < 2 || argc - 2 >= 31 || argv[1][0] == '-')
        return usage(argv[0]);
    for (int i = 2; i < argc; i++, n++) {
        char *eq;
        copies[n] = strdup(argv[i]);
        if (!copies[n] || !(eq = strchr(copies[n], '=')) || eq == copies[n]) {
            fprintf(stderr, "%s: expected KEY=VALUE, got '%s'\n", argv[0],
                    argv[i]);
            n++;
            goto out;
        }
        *eq = '\0';
        conf[n] = (dimple_kv){copies[n], eq + 1, 0};
    }
    storage_contract_run(argv[1], conf);
    rc = test_done();
out:
    for (int i = 0; i < n; i++)
        free(copies[i]);
    return rc;
}
