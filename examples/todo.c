/*
 * todo.c — the smallest app embedding DimpleDb: open from a dimple.conf,
 * apply the migrations, write rows with bound parameters, read them back as
 * JSON. Usage: todo CONF [TITLE...]
 */
#include <dimple.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    dimple *db = NULL;
    char *json = NULL;
    char id[32];
    int rc = 1;
    if (argc < 2) {
        fprintf(stderr, "usage: todo CONF [TITLE...]\n");
        return 2;
    }
    if (dimple_open(&db, argv[1]) < 0 ||
        (dimple_migrations_dir(db) &&
         dimple_migrate_dir(db, dimple_migrations_dir(db)) < 0))
        goto out;
    for (int i = 2; i < argc; i++) {
        dimple_value p[2];
        snprintf(id, sizeof id, "c-%d", i - 1);
        p[0] = dimple_text(id);
        p[1] = dimple_text(argv[i]);
        if (dimple_exec(db, "INSERT OR REPLACE INTO todo(id, title) "
                            "VALUES (?1, ?2)",
                        p, 2, NULL, NULL) < 0)
            goto out;
    }
    if (dimple_query_json(db, "SELECT id, title, done FROM todo ORDER BY id",
                          NULL, 0, &json) < 0)
        goto out;
    printf("%s\n", json);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "todo: %s\n", dimple_errmsg(db));
    dimple_free(json);
    dimple_close(db);
    return rc;
}
