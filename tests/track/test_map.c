/* test_map.c — struct <-> row mapping and JSON rows. */
#include "util.h"

#include <stdbool.h>

typedef struct todo {
    char id[37];
    char *title;
    int64_t prio;
    int32_t small;
    bool done;
    double score;
    bool score_null;
    void *pic;
    size_t pic_len;
    char *not_a_column;
} todo;

static const dimple_field todo_fields[] = {
    DIMPLE_FIELD_CHARBUF(todo, id, "id"),
    DIMPLE_FIELD_STRING(todo, title, "title"),
    DIMPLE_FIELD_INT64(todo, prio, "prio"),
    DIMPLE_FIELD_INT32(todo, small, "small"),
    DIMPLE_FIELD_BOOL(todo, done, "done"),
    DIMPLE_FIELD_DOUBLE_NULL(todo, score, score_null, "score"),
    DIMPLE_FIELD_BLOB(todo, pic, pic_len, "pic"),
    DIMPLE_FIELD_STRING(todo, not_a_column, "nope"),
};
static const dimple_entity todo_entity = {"todo", sizeof(todo), todo_fields, 8};

static const char *schema =
    "CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT, prio INTEGER,"
    " small INT, done BOOLEAN, score REAL, pic BLOB, extra TEXT DEFAULT 'x')";

static int count_lines_(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int count_changes(void *payload, const dimple_change *c)
{
    (void)c;
    (*(int *)payload)++;
    return 0;
}

TEST(save_get_delete)
{
    dimple *db = tu_open("map.db", "*");
    if (!CHECK(db != NULL))
        return;
    const char *m[] = {schema};
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_OK);
    todo t;
    memset(&t, 0, sizeof t);
    t.title = strdup("milk");
    t.prio = INT64_MIN;
    t.small = -5;
    t.done = true;
    t.score_null = true;
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', 0};
    t.pic = malloc(sizeof png);
    memcpy(t.pic, png, sizeof png);
    t.pic_len = sizeof png;
    CHECK_RC(dimple_entity_save(db, &todo_entity, &t), DIMPLE_OK);
    CHECK(strlen(t.id) == 36 && t.id[14] == '7'); /* a new UUIDv7 key */
    char *d = tu_dump(db, "todo");
    CHECK_CONTAINS(d, "title=t4:6d696c6b prio=i-9223372036854775808 "
                      "small=i-5 done=i1 score=n pic=b5:89504e4700 "
                      "extra=t1:78");
    free(d);
    /* read it back into a fresh struct */
    todo u;
    memset(&u, 0, sizeof u);
    memcpy(u.id, t.id, sizeof u.id);
    CHECK_RC(dimple_entity_get(db, &todo_entity, &u), DIMPLE_OK);
    CHECK_STR(u.title, "milk");
    CHECK(u.prio == INT64_MIN && u.small == -5 && u.done && u.score_null);
    CHECK(u.pic_len == sizeof png && memcmp(u.pic, png, sizeof png) == 0);
    /* update: only the changed column is logged */
    int before = 0, after = 0;
    dimple_track__each_local(db, NULL, count_changes, &before);
    u.score_null = false;
    u.score = 1.0;
    CHECK_RC(dimple_entity_save(db, &todo_entity, &u), DIMPLE_OK);
    dimple_track__each_local(db, NULL, count_changes, &after);
    CHECK(after == before + 1);
    d = tu_dump(db, "todo");
    CHECK_CONTAINS(d, "score=r3ff0000000000000");
    free(d);
    /* query into an array and through a callback */
    todo w;
    memset(&w, 0, sizeof w);
    w.title = "bread";
    CHECK_RC(dimple_entity_save(db, &todo_entity, &w), DIMPLE_OK);
    void *arr = NULL;
    size_t n = 0;
    dimple_value p = dimple_value_int(1);
    CHECK_RC(dimple_entity_query(&arr, &n, db, &todo_entity,
                                 "WHERE done = ?1 ORDER BY title", &p, 1),
             DIMPLE_OK);
    CHECK(n == 1);
    if (n == 1)
        CHECK_STR(((todo *)arr)[0].title, "milk");
    dimple_entity_free(&todo_entity, arr, n);
    CHECK_RC(dimple_entity_query(&arr, &n, db, &todo_entity, "ORDER BY title",
                                 NULL, 0),
             DIMPLE_OK);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(((todo *)arr)[0].title, "bread");
        CHECK(((todo *)arr)[0].pic == NULL);
    }
    dimple_entity_free(&todo_entity, arr, n);
    /* delete */
    CHECK_RC(dimple_entity_delete(db, &todo_entity, &u), DIMPLE_OK);
    CHECK_RC(dimple_entity_get(db, &todo_entity, &u), DIMPLE_ENOTFOUND);
    CHECK_RC(dimple_entity_delete(db, &todo_entity, &u), DIMPLE_ENOTFOUND);
    dimple_entity_clear(&todo_entity, &u);
    free(t.title);
    free(t.pic);
    dimple_close(db);
}

typedef struct bad {
    char *id;
    char *prio; /* text into an INTEGER column */
} bad;

static const dimple_field bad_fields[] = {
    DIMPLE_FIELD_STRING(bad, id, "id"),
    DIMPLE_FIELD_STRING(bad, prio, "prio"),
};
static const dimple_entity bad_entity = {"todo", sizeof(bad), bad_fields, 2};

typedef struct nokey {
    char *title;
} nokey;
static const dimple_field nokey_fields[] = {
    DIMPLE_FIELD_STRING(nokey, title, "title")};
static const dimple_entity nokey_entity = {"todo", sizeof(nokey), nokey_fields,
                                           1};

TEST(type_mismatch_and_bad_input)
{
    dimple *db = tu_open("mapbad.db", "*");
    if (!CHECK(db != NULL))
        return;
    const char *m[] = {schema};
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_OK);
    bad b = {"k", "high"};
    CHECK_RC(dimple_entity_save(db, &bad_entity, &b), DIMPLE_ESCHEMA);
    CHECK_CONTAINS(dimple_errmsg(db), "\"prio\"");
    CHECK_CONTAINS(dimple_errmsg(db), "string");
    CHECK_CONTAINS(dimple_errmsg(db), "INTEGER");
    nokey k = {"x"};
    CHECK_RC(dimple_entity_save(db, &nokey_entity, &k), DIMPLE_ESCHEMA);
    CHECK_CONTAINS(dimple_errmsg(db), "primary-key");
    dimple_entity nosuch = todo_entity;
    nosuch.table = "nosuch";
    todo t;
    memset(&t, 0, sizeof t);
    CHECK_RC(dimple_entity_save(db, &nosuch, &t), DIMPLE_ENOTFOUND);
    CHECK_CONTAINS(dimple_errmsg(db), "nosuch");
    /* a stored value of the wrong type is a clear error on read */
    CHECK_RC(tu_exec(db, "INSERT INTO todo(id, prio) VALUES ('w', 'abc')"),
             DIMPLE_OK);
    memset(&t, 0, sizeof t);
    strcpy(t.id, "w");
    CHECK_RC(dimple_entity_get(db, &todo_entity, &t), DIMPLE_ESCHEMA);
    CHECK_CONTAINS(dimple_errmsg(db), "\"prio\"");
    dimple_entity_clear(&todo_entity, &t);
    /* NULL into a non-nullable scalar */
    CHECK_RC(tu_exec(db, "INSERT INTO todo(id) VALUES ('n')"), DIMPLE_OK);
    memset(&t, 0, sizeof t);
    strcpy(t.id, "n");
    CHECK_RC(dimple_entity_get(db, &todo_entity, &t), DIMPLE_ESCHEMA);
    CHECK_CONTAINS(dimple_errmsg(db), "not nullable");
    dimple_entity_clear(&todo_entity, &t);
    dimple_close(db);
}

TEST(json_in_out)
{
    dimple *db = tu_open("mapjson.db", "*");
    if (!CHECK(db != NULL))
        return;
    const char *m[] = {schema};
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_OK);
    char *row = NULL;
    CHECK_RC(dimple_json_save(&row, db, "todo",
                              "{\"title\":\"jam\",\"prio\":9223372036854775807,"
                              "\"score\":1.0,\"pic\":{\"$blob\":\"AP8=\"},"
                              "\"done\":true}"),
             DIMPLE_OK);
    CHECK_CONTAINS(row, "\"title\":\"jam\"");
    CHECK_CONTAINS(row, "\"prio\":\"9223372036854775807\"");
    CHECK_CONTAINS(row, "\"score\":1.0");
    CHECK_CONTAINS(row, "\"pic\":{\"$blob\":\"AP8=\"}");
    CHECK_CONTAINS(row, "\"done\":1");
    CHECK_CONTAINS(row, "\"id\":\"");
    /* what came out goes back in unchanged (big integers as strings are
     * converted back by the column's affinity) */
    char *again = NULL;
    CHECK_RC(dimple_json_save(&again, db, "todo", row), DIMPLE_OK);
    CHECK_STR(again, row);
    char *d = tu_dump(db, "todo");
    CHECK_CONTAINS(d, "prio=i9223372036854775807 small=n done=i1 "
                      "score=r3ff0000000000000 pic=b2:00ff");
    free(d);
    /* get by key */
    char id[37] = "";
    const char *p = strstr(row, "\"id\":\"");
    if (p)
        memcpy(id, p + 6, 36);
    char *got = NULL;
    dimple_value k = dimple_value_text(id);
    CHECK_RC(dimple_json_get(&got, db, "todo", &k, 1), DIMPLE_OK);
    CHECK_STR(got, row);
    dimple_free(got);
    k = dimple_value_text("nope");
    CHECK_RC(dimple_json_get(&got, db, "todo", &k, 1), DIMPLE_ENOTFOUND);
    dimple_free(row);
    dimple_free(again);
    /* bad input: nothing written */
    CHECK_RC(dimple_json_save(NULL, db, "todo", "[1,2]"), DIMPLE_EINVAL);
    CHECK_RC(dimple_json_save(NULL, db, "todo", "{\"title\":"), DIMPLE_EINVAL);
    CHECK_RC(dimple_json_save(NULL, db, "todo", "{\"bogus\":1}"),
             DIMPLE_EINVAL);
    CHECK_CONTAINS(dimple_errmsg(db), "bogus");
    CHECK_RC(dimple_json_save(NULL, db, "todo", "{\"title\":[1]}"),
             DIMPLE_EINVAL);
    CHECK_RC(dimple_json_save(NULL, db, "todo", "{\"pic\":{\"$blob\":\"@@\"}}"),
             DIMPLE_EINVAL);
    d = tu_dump(db, "todo");
    CHECK(count_lines_(d) == 1);
    free(d);
    dimple_close(db);
}

typedef struct kblob {
    void *id;
    size_t id_len;
    char *v;
} kblob;
static const dimple_field kblob_fields[] = {
    DIMPLE_FIELD_BLOB(kblob, id, id_len, "id"),
    DIMPLE_FIELD_STRING(kblob, v, "v"),
};
static const dimple_entity kblob_entity = {"kb", sizeof(kblob), kblob_fields,
                                           2};
typedef struct kstr {
    char *id;
    char *v;
} kstr;
static const dimple_field kstr_fields[] = {
    DIMPLE_FIELD_STRING(kstr, id, "id"),
    DIMPLE_FIELD_STRING(kstr, v, "v"),
};
static const dimple_entity kstr_kb = {"kb", sizeof(kstr), kstr_fields, 2};
static const dimple_entity kstr_kt = {"kt", sizeof(kstr), kstr_fields, 2};

/* typeof and length of every key of table, in insertion order. */
static char *key_types(dimple *db, const char *table)
{
    char sql[128], *out = NULL;
    snprintf(sql, sizeof sql,
             "SELECT group_concat(typeof(id) || length(id), ' ') AS k FROM"
             " (SELECT id FROM %s ORDER BY rowid)",
             table);
    CHECK_RC(dimple_json_query(&out, db, sql, NULL, 0), DIMPLE_OK);
    return out;
}

/* A generated key follows the key column's declared type, in
 * dimple_entity_save and dimple_json_save alike: TEXT (or untyped) gets
 * UUIDv7 text, BLOB gets the UUIDv7's 16 bytes. */
TEST(generated_key_type_follows_column)
{
    dimple *db = tu_open("keys.db", "*");
    if (!CHECK(db != NULL))
        return;
    const char *m[] = {"CREATE TABLE kb(id BLOB PRIMARY KEY, v TEXT);"
                       "CREATE TABLE kt(id TEXT PRIMARY KEY, v TEXT);"
                       "CREATE TABLE ku(id PRIMARY KEY, v TEXT)"};
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_OK);

    kblob b = {NULL, 0, "one"};
    CHECK_RC(dimple_entity_save(db, &kblob_entity, &b), DIMPLE_OK);
    CHECK(b.id != NULL && b.id_len == 16);
    free(b.id);
    CHECK_RC(dimple_json_save(NULL, db, "kb", "{\"v\":\"two\"}"), DIMPLE_OK);
    CHECK_RC(dimple_json_save(NULL, db, "kb",
                              "{\"id\":{\"$blob\":\"\"},\"v\":\"three\"}"),
             DIMPLE_OK);
    char *k = key_types(db, "kb");
    CHECK_STR(k, "[{\"k\":\"blob16 blob16 blob16\"}]");
    dimple_free(k);

    kstr s = {NULL, "one"};
    CHECK_RC(dimple_entity_save(db, &kstr_kt, &s), DIMPLE_OK);
    CHECK(s.id != NULL && strlen(s.id) == 36);
    free(s.id);
    CHECK_RC(dimple_json_save(NULL, db, "kt", "{\"v\":\"two\"}"), DIMPLE_OK);
    k = key_types(db, "kt");
    CHECK_STR(k, "[{\"k\":\"text36 text36\"}]");
    dimple_free(k);
    CHECK_RC(dimple_json_save(NULL, db, "ku", "{\"v\":\"x\"}"), DIMPLE_OK);
    k = key_types(db, "ku");
    CHECK_STR(k, "[{\"k\":\"text36\"}]");
    dimple_free(k);

    /* a text field cannot receive a BLOB column's new key: refused, not
     * written as text */
    kstr refused = {NULL, "x"};
    CHECK_RC(dimple_entity_save(db, &kstr_kb, &refused), DIMPLE_ESCHEMA);
    CHECK_CONTAINS(dimple_errmsg(db), "16 bytes");
    CHECK(refused.id == NULL);
    dimple_close(db);
}

/* Text longer than a CHARBUF field is a size limit reached (DIMPLE_ELIMIT),
 * not a schema error. */
TEST(charbuf_too_small_is_a_limit)
{
    typedef struct small {
        char id[37];
        char v[4];
    } small;
    static const dimple_field fields[] = {
        DIMPLE_FIELD_CHARBUF(small, id, "id"),
        DIMPLE_FIELD_CHARBUF(small, v, "v"),
    };
    static const dimple_entity ent = {"kt", sizeof(small), fields, 2};
    dimple *db = tu_open("charbuf.db", "*");
    if (!CHECK(db != NULL))
        return;
    const char *m[] = {"CREATE TABLE kt(id TEXT PRIMARY KEY, v TEXT)"};
    CHECK_RC(dimple_migrate(db, m, 1), DIMPLE_OK);
    CHECK_RC(tu_exec(db, "INSERT INTO kt VALUES ('a', 'abc'), ('b', 'abcd')"),
             DIMPLE_OK);
    small s = {"a", ""};
    CHECK_RC(dimple_entity_get(db, &ent, &s), DIMPLE_OK);
    CHECK_STR(s.v, "abc");
    small t = {"b", ""};
    CHECK_RC(dimple_entity_get(db, &ent, &t), DIMPLE_ELIMIT);
    CHECK_CONTAINS(dimple_errmsg(db), "4 bytes of text do not fit its 4-byte");
    dimple_close(db);
}

int main(void)
{
    tu_init();
    RUN(save_get_delete);
    RUN(type_mismatch_and_bad_input);
    RUN(json_in_out);
    RUN(generated_key_type_follows_column);
    RUN(charbuf_too_small_is_a_limit);
    tu_cleanup();
    return test_done();
}
