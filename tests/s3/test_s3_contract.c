/*
 * test_s3_contract.c — the storage contract suite (tests/storage/contract.h)
 * on dimple-s3 against the radosgw the suite started, under a fresh prefix
 * so the store starts empty. Its long listing (2,500 keys) spans three
 * ListObjectsV2 pages.
 */
#include "contract.h"
#include "s3_test.h"

int main(void)
{
    char prefix[128];
    s3conf c;
    s3env env = s3env_get();
    if (!CHECK(env.ok))
        return test_done();
    s3_unique(prefix, sizeof prefix, "contract");
    s3conf_init(&c, &env, prefix);
    printf("# endpoint %s bucket %s prefix %s\n", env.endpoint, env.bucket,
           prefix);
    storage_contract_run("s3", c.kv);
    return test_done();
}
