/*
 * plugin_load.h — load a plugin the way a test or a benchmark needs it:
 * straight from $DIMPLE_PLUGIN_PATH with dlopen, without the core's loader
 * (so the storage contract suite tests the plugin alone).
 *
 * Also a host table that records the last error a plugin reported, so a test
 * can check that every failure comes with a message.
 */
#ifndef DIMPLE_TEST_PLUGIN_LOAD_H
#define DIMPLE_TEST_PLUGIN_LOAD_H

#include <dimple/plugin.h>

/*
 * dlopen dimple-<name>.so from the first folder of the colon-separated
 * $DIMPLE_PLUGIN_PATH that has it, or the file itself when name contains a
 * '/' (build/dimple-x.so), and return its descriptor (*dl_out gets the
 * dlopen handle: dlclose it at the end). A missing plugin, a missing entry
 * symbol or another ABI ends the program with "Bail out! <why>" (TAP) on
 * stdout and the same on stderr: a test cannot go on without its plugin.
 */
const dimple_plugin *test_plugin_load(const char *name, void **dl_out);

/* "DIMPLE_ECONFIG" for DIMPLE_ECONFIG, ... */
const char *test_code_name(int code);

/* A host whose error() records the code and message of the last error. */
typedef struct test_host {
    dimple_host host; /* pass &th.host to create() */
    int last_code;    /* 0 until an error is reported */
    int errors;       /* how many error() calls so far */
    char last_msg[1024];
} test_host;

void test_host_init(test_host *th, const char *section);
/* Forget the last error (before a call whose message is checked). */
void test_host_clear(test_host *th);

#endif /* DIMPLE_TEST_PLUGIN_LOAD_H */
