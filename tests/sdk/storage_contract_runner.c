/*
 * storage_contract_runner — run the storage contract suite on any storage
 * plugin, e.g. one built out of tree from sdk/template:
 *
 *   DIMPLE_PLUGIN_PATH=build storage_contract_runner notes path=/tmp/empty
 *
 * Arguments after the plugin name are its configuration, key=value.
 * Prints TAP; exits 0 when every check passed.
 */
#include "contract.h"

int main(int argc, char **argv)
{
    dimple_kv conf[32] = {{0}};
    char *copies[32] = {0};
    int n = 0;

    if (argc < 2 || argc - 2 >= 31) {
        fprintf(stderr, "usage: %s PLUGIN [KEY=VALUE...]\n", argv[0]);
        return 2;
    }
    for (int i = 2; i < argc; i++, n++) {
        char *eq;
        copies[n] = strdup(argv[i]);
        if (!copies[n] || !(eq = strchr(copies[n], '='))) {
            fprintf(stderr, "%s: expected KEY=VALUE, got '%s'\n", argv[0],
                    argv[i]);
            return 2;
        }
        *eq = '\0';
        conf[n] = (dimple_kv){copies[n], eq + 1, 0};
    }
    storage_contract_run(argv[1], conf);
    for (int i = 0; i < n; i++)
        free(copies[i]);
    return test_done();
}
