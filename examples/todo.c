/*
 * todo.c — a to-do list app that embeds DimpleDb.
 *
 * It shows the whole app API in one short program: open a handle from a
 * dimple.conf, apply the migrations (examples/migrations/), save and read C
 * structs through an entity descriptor (<dimple/map.h>), watch a live query
 * (<dimple/live.h>: the number of open todos, printed whenever it changes,
 * whoever changed it — this process or a sync), and sync with the other
 * replicas through the configured storage (<dimple/sync.h>).
 *
 *   todo CONF add TITLE...       add one todo per TITLE, print their ids
 *   todo CONF done ID            mark a todo done
 *   todo CONF rename ID TITLE    change a todo's title
 *   todo CONF list               print every todo
 *   todo CONF sync               push our changes, pull everyone else's
 *
 * Exit status: 0 ok, 1 error (one line on stderr), 2 wrong usage.
 * examples/demo.sh (make demo) runs two replicas of it, "laptop" and
 * "phone", syncing through an age-encrypted file store.
 */
#include <dimple.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row of the todo table (examples/migrations/001_todo.sql). */
typedef struct todo {
    char id[37]; /* a UUIDv7, made by dimple_entity_save when empty */
    char *title; /* owned: freed by dimple_entity_clear */
    bool done;
} todo;

static const dimple_field todo_fields[] = {
    DIMPLE_FIELD_CHARBUF(todo, id, "id"),
    DIMPLE_FIELD_STRING(todo, title, "title"),
    DIMPLE_FIELD_BOOL(todo, done, "done"),
};
static const dimple_entity todo_entity = {"todo", sizeof(todo), todo_fields, 3};

/* The live query's state: the count it last saw (-1 before the first). */
typedef struct open_count {
    long long last;
} open_count;

/* Called with the full result at open, then after every commit that
 * changed it: our own writes, and the rows a sync pulled in. */
static void on_open_count(void *payload, dimple_live_query *q,
                          const dimple_result *r)
{
    open_count *c = payload;
    (void)q;
    if (r->rc != DIMPLE_OK || r->n_rows != 1 ||
        r->values[0].type != DIMPLE_INTEGER) {
        fprintf(stderr, "todo: live query: %s\n", r->errmsg);
        return;
    }
    if (c->last >= 0)
        printf("  (live query: open todos %lld -> %lld)\n", c->last,
               (long long)r->values[0].i);
    c->last = r->values[0].i;
}

static int print_todo(void *payload, void *obj)
{
    const todo *t = obj;
    ++*(size_t *)payload;
    printf("[%c] %-24s %s\n", t->done ? 'x' : ' ', t->title ? t->title : "",
           t->id);
    return 0;
}

/* Load the todo with this id into *t (the caller clears it). An id that
 * cannot be one (too long for the buffer) is simply not found. */
static int load(dimple *db, const char *id, todo *t)
{
    snprintf(t->id, sizeof t->id, "%s", id);
    if (strlen(id) >= sizeof t->id)
        t->id[0] = '\0'; /* matches no row: dimple_entity_get says ENOTFOUND */
    return dimple_entity_get(db, &todo_entity, t);
}

static int usage(void)
{
    fprintf(stderr, "usage: todo CONF add TITLE...\n"
                    "       todo CONF done ID\n"
                    "       todo CONF rename ID TITLE\n"
                    "       todo CONF list\n"
                    "       todo CONF sync\n");
    return 2;
}

int main(int argc, char **argv)
{
    dimple *db = NULL;
    dimple_live_query *live = NULL;
    open_count count = {-1};
    todo t = {{0}, NULL, false};
    const char *cmd, *dir;
    int rc = DIMPLE_OK;

    if (argc < 3)
        return usage();
    cmd = argv[2];
    if (!((strcmp(cmd, "add") == 0 && argc >= 4) ||
          (strcmp(cmd, "done") == 0 && argc == 4) ||
          (strcmp(cmd, "rename") == 0 && argc == 5) ||
          (strcmp(cmd, "list") == 0 && argc == 3) ||
          (strcmp(cmd, "sync") == 0 && argc == 3)))
        return usage();

    /* db is set even when the open fails, so errmsg can say why. */
    if ((rc = dimple_open(&db, argv[1])) < 0)
        goto out;
    /* Bring the schema up to date: a no-op when it already is. */
    dir = dimple_migrations_dir(db);
    if (!dir) {
        fprintf(stderr, "todo: %s: no [dimple] migrations folder\n", argv[1]);
        rc = DIMPLE_ECONFIG;
        goto quiet;
    }
    if ((rc = dimple_migrate_dir(db, dir)) < 0)
        goto out;
    if ((rc = dimple_live_open(&live, db,
                               "SELECT count(*) FROM todo WHERE NOT done", NULL,
                               0, on_open_count, &count, NULL)) < 0)
        goto out;

    if (strcmp(cmd, "add") == 0) {
        for (int i = 3; i < argc; i++) {
            todo n = {{0}, argv[i], false}; /* empty id: a new UUIDv7 */
            if ((rc = dimple_entity_save(db, &todo_entity, &n)) < 0)
                goto out;
            printf("added %s %s\n", n.id, n.title);
        }
    } else if (strcmp(cmd, "done") == 0 || strcmp(cmd, "rename") == 0) {
        if ((rc = load(db, argv[3], &t)) == DIMPLE_ENOTFOUND) {
            fprintf(stderr, "todo: no todo with id '%s'\n", argv[3]);
            goto quiet;
        }
        if (rc < 0)
            goto out;
        if (strcmp(cmd, "done") == 0) {
            t.done = true;
        } else {
            /* The struct owns its STRING members: swap in a copy. */
            size_t len = strlen(argv[4]) + 1;
            char *title = malloc(len);
            if (!title) {
                rc = DIMPLE_ENOMEM;
                fprintf(stderr, "todo: out of memory\n");
                goto quiet;
            }
            memcpy(title, argv[4], len);
            free(t.title);
            t.title = title;
        }
        /* Only the cells that differ are recorded as changed. */
        if ((rc = dimple_entity_save(db, &todo_entity, &t)) < 0)
            goto out;
    } else if (strcmp(cmd, "list") == 0) {
        size_t n = 0;
        if ((rc = dimple_entity_query_each(db, &todo_entity,
                                           "ORDER BY done, title", NULL, 0,
                                           print_todo, &n)) < 0)
            goto out;
        if (n == 0)
            printf("(nothing to do)\n");
    } else { /* sync */
        dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
        if ((rc = dimple_sync(&st, db, NULL)) < 0)
            goto out;
        printf("synced: pushed %llu change(s), pulled %llu from %llu other "
               "author(s)\n",
               (unsigned long long)st.changes_pushed,
               (unsigned long long)st.changes_pulled,
               (unsigned long long)st.authors);
    }
out:
    if (rc < 0)
        fprintf(stderr, "todo: %s\n", dimple_errmsg(db));
quiet:
    dimple_entity_clear(&todo_entity, &t);
    dimple_live_close(live);
    dimple_close(db);
    return rc < 0 ? 1 : 0;
}
