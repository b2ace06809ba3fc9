/*
 * contract.h — the ONE storage contract suite, run against every storage
 * plugin (memory, file, s3, sftp, ...). Link `storage_contract_dep`
 * (tests/storage/meson.build) and:
 *
 *   #include "contract.h"
 *   int main(void) {
 *       const dimple_kv conf[] = {{"path", dir, 0}, {NULL, NULL, 0}};
 *       storage_contract_run("file", conf);
 *       ... plugin-specific TEST()s ...
 *       return test_done();
 *   }
 *
 * storage_contract_run() loads dimple-<plugin>.so from $DIMPLE_PLUGIN_PATH
 * (or the file itself when plugin contains a '/'),
 * creates ONE instance from conf and runs every check as TAP lines numbered
 * in sequence with the caller's own CHECKs (tests/test.h), then returns the
 * number of checks that failed. conf must describe an EMPTY store (a fresh
 * folder, a fresh bucket prefix, a new memory name): the suite compares every
 * listing with a model of what it wrote. It removes what it wrote at the end.
 *
 * The contract it checks (docs/storage.md says the same):
 *  - create() rejects an unknown key with DIMPLE_ECONFIG naming the key.
 *  - put/get round trip 0 bytes, 1 byte, 1 MiB, binary with NULs; put
 *    overwrites; put copies the data (the caller may reuse its buffer).
 *  - get of a missing key (or of a folder that only holds other keys) is
 *    DIMPLE_ENOTFOUND, with a message naming the key and nothing written to
 *    the sink; a sink error stops get and is returned as it is.
 *  - list(prefix, start_after, flags): every key starting with prefix (a
 *    plain string prefix, not only whole folders), strictly after
 *    start_after (NULL or "" = from the start; start_after need not exist),
 *    in ascending byte order (strcmp, not the locale). With
 *    DIMPLE_LIST_SHALLOW the entries are the direct children of prefix plus
 *    each deeper folder once as "prefix<child>/"; an entry (key or folder)
 *    is reported when IT sorts strictly after start_after, so passing the
 *    last entry seen as start_after continues a listing page by page.
 *    A folder shows only while it holds a key. A prefix that no valid key
 *    can start with ("../", "/x", "a//") is DIMPLE_EINVAL.
 *  - The callback's non-zero return stops the listing and list() returns it
 *    unchanged (positive or negative).
 *  - remove: then get is DIMPLE_ENOTFOUND; removing an absent key, or a
 *    folder name, is DIMPLE_OK and removes nothing else.
 *  - put_if_absent (when not NULL): DIMPLE_EEXISTS if present, content kept;
 *    two instances from conf racing from two threads for one key: exactly
 *    one wins (skipped when they do not share a store, or on
 *    DIMPLE_EPLUGIN, "this server cannot").
 *  - A create() that fails shows the plugin's message, and every later
 *    check is reported as not run (failed).
 *  - Invalid keys ("../x", "/abs", "a//b", "a\\b", "", "a/./b", "a/", ".",
 *    "..") are DIMPLE_EINVAL for put, get, remove and put_if_absent, with a
 *    message, and create nothing.
 *  - A key that is also the folder of other keys ("a" and "a/b"): a plugin
 *    may store both (memory, S3) or refuse the second with DIMPLE_ECONFLICT
 *    and keep the first (file); either way nothing else changes.
 *  - Every error return comes with a message through host->error carrying
 *    the same code.
 *
 * Environment: DIMPLE_CONTRACT_MANY = how many keys the big listing check
 * writes (default 2500, enough for three S3 pages of 1000).
 */
#ifndef DIMPLE_TEST_STORAGE_CONTRACT_H
#define DIMPLE_TEST_STORAGE_CONTRACT_H

#include "plugin_load.h"
#include "test.h"

/* The implementation; it continues the caller's TAP numbering. */
int storage_contract_run_(const char *plugin_name, const dimple_kv *conf,
                          int *count, int *failed);

/* Run the suite (see above); returns the number of failed checks. */
static inline int storage_contract_run(const char *plugin_name,
                                       const dimple_kv *conf)
{
    /* test.h keeps its counters per file: hand ours over so the TAP
     * numbers and the final plan cover the suite's checks too. */
    return storage_contract_run_(plugin_name, conf, &test_count_,
                                 &test_failed_);
}

#endif /* DIMPLE_TEST_STORAGE_CONTRACT_H */
