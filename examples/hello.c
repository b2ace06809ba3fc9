/*
 * hello.c — the twenty-line example of README.md, kept here so that the
 * build compiles it and the suite runs it (test example-hello, with
 * examples/hello.conf as ./dimple.conf). Keep the two in step.
 */
#include <dimple.h>
#include <stdio.h>

static void on_count(void *payload, dimple_live_query *q,
                     const dimple_result *r)
{
    printf("open todos: %s\n", r->json); /* now, and after every change */
}

int main(void)
{
    static const char *const schema[] = {
        "CREATE TABLE todo (id TEXT PRIMARY KEY, title TEXT, done INTEGER "
        "DEFAULT 0)"};
    dimple *db;
    dimple_live_query *q = NULL;
    int rc;
    if ((rc = dimple_open(&db, "dimple.conf")) == DIMPLE_OK &&
        (rc = dimple_migrate(db, schema, 1)) == DIMPLE_OK &&
        (rc = dimple_live_open(&q, db,
                               "SELECT count(*) AS n FROM todo WHERE NOT done",
                               NULL, 0, on_count, NULL, NULL)) == DIMPLE_OK &&
        (rc = dimple_json_save(NULL, db, "todo",
                               "{\"title\": \"Buy milk\"}")) == DIMPLE_OK)
        rc = dimple_sync(NULL, db, NULL); /* push ours, pull everyone's */
    if (rc != DIMPLE_OK)
        fprintf(stderr, "app: %s\n", dimple_errmsg(db));
    dimple_live_close(q);
    dimple_close(db);
    return rc != DIMPLE_OK;
}
