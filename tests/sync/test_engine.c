/*
 * test_engine.c — dimple_sync through the memory store: two and three
 * replicas converge, stats and request counts, the format marker,
 * idempotence (pull again, push again), batch limits, progress, a wiped
 * store, and hostile batches (clear error naming the object, cursor
 * unchanged, other authors still sync).
 */
#include "sync_util.h"

static char *dir;

static dimple *mem_replica(const char *name, const char *store,
                           const char *extra)
{
    char st[128];
    snprintf(st, sizeof st, "plugin = memory\nname = %s", store);
    return su_open(dir, name, st, "%s", extra ? extra : "");
}

static int same_state(dimple *a, dimple *b)
{
    char *da = su_dump(a), *db_ = su_dump(b);
    char *ha = su_history(a, NULL), *hb = su_history(b, NULL);
    int ok =
        da && db_ && ha && hb && strcmp(da, db_) == 0 && strcmp(ha, hb) == 0;
    if (!ok)
        printf("# dumps:\n# %s\n# %s\n", da ? da : "?", db_ ? db_ : "?");
    free(da);
    free(db_);
    free(ha);
    free(hb);
    return ok;
}

TEST(two_replicas_converge)
{
    dimple *a = mem_replica("a1", "s1", NULL),
           *b = mem_replica("b1", "s1", NULL);
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('k1', 1, 2.5, 'x'),"
                        "('k2', 9223372036854775807, 1.0, x'00ff'),"
                        "('k3', NULL, -0.0, '')"),
             0);
    CHECK_RC(su_exec(a, "INSERT INTO p VALUES(1, 'a', 'one'), (2, 'b', 2)"), 0);
    CHECK_RC(su_exec(b, "INSERT INTO t VALUES('k9', 'from b', NULL, NULL)"), 0);
    CHECK_RC(su_sync(a, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pushed == 1 && st.changes_pushed == 5);
    CHECK(st.batches_pulled == 0 && st.authors == 0);
    CHECK_RC(su_sync(b, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pushed == 1 && st.changes_pushed == 1);
    CHECK(st.batches_pulled == 1 && st.changes_pulled == 5);
    CHECK(st.authors == 1 && st.bytes_pulled > 0 && st.requests > 0);
    CHECK_RC(su_sync(a, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pulled == 1 && st.changes_pulled == 1);
    CHECK(same_state(a, b));
    /* an update and a delete travel too */
    CHECK_RC(su_exec(b, "UPDATE t SET a = 42 WHERE k = 'k1'"), 0);
    CHECK_RC(su_exec(b, "DELETE FROM p WHERE x = 2"), 0);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK(same_state(a, b));
    char *j = NULL;
    CHECK_RC(dimple_json_query(&j, a, "SELECT a FROM t WHERE k='k1'", NULL, 0),
             0);
    CHECK_CONTAINS(j, "42");
    dimple_free(j);
out:
    dimple_close(a);
    dimple_close(b);
}

TEST(nothing_new_costs_one_listing_per_author)
{
    dimple *r[3] = {mem_replica("a2", "s2", NULL),
                    mem_replica("b2", "s2", NULL),
                    mem_replica("c2", "s2", NULL)};
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    CHECK(r[0] && r[1] && r[2]);
    if (!r[0] || !r[1] || !r[2])
        goto out;
    for (int i = 0; i < 3; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES('r%d', %d, 0, 0)", i,
                 i);
        CHECK_RC(su_exec(r[i], sql), 0);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 3; i++)
            CHECK_RC(su_sync(r[i], 0, 0, NULL), DIMPLE_OK);
    /* converged: a sync now lists log/ once and each other author once */
    CHECK_RC(su_sync(r[0], 0, 0, &st), DIMPLE_OK);
    CHECK(st.authors == 2);
    CHECK(st.requests == 3);
    CHECK(st.batches_pulled == 0 && st.batches_pushed == 0);
    CHECK(same_state(r[0], r[1]) && same_state(r[1], r[2]));
    /* a fresh handle on the same database: still no reads */
    dimple_close(r[0]);
    r[0] = mem_replica("a2", "s2", NULL);
    CHECK_RC(su_sync(r[0], 0, 0, &st), DIMPLE_OK);
    CHECK(st.requests == 3);
out:
    for (int i = 0; i < 3; i++)
        dimple_close(r[i]);
}

TEST(marker_written_once_and_newer_major_refused)
{
    dimple *a = mem_replica("a3", "s3", NULL),
           *b = mem_replica("b3", "s3", NULL);
    void *m = NULL;
    size_t n = 0;
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('x', 1, 1, 1)"), 0);
    CHECK_RC(su_sync(a, 0, 0, NULL), DIMPLE_OK);
    CHECK_RC(dimple_remote_get(&m, &n, a, "dimple.json", 1), DIMPLE_OK);
    CHECK(m && strstr(m, "\"major\":1") && strstr(m, "\"format\":\"dimple\""));
    dimple_free(m);
    /* someone upgraded the store to format 2: b (which never read the
     * marker) must refuse it, with a clear message */
    const char *v2 = "{\"format\":\"dimple\",\"major\":2,\"minor\":0,"
                     "\"store\":\"0190f5c2-0000-7000-8000-00000000a11c\"}";
    CHECK_RC(dimple_remote__put(a, "dimple.json", v2, strlen(v2)), DIMPLE_OK);
    CHECK_RC(su_sync(b, 0, 0, NULL), DIMPLE_EFORMAT);
    CHECK_CONTAINS(dimple_errmsg(b), "store format 2.0 is newer");
    char *d = su_dump(b);
    CHECK(d && !strstr(d, "\"x\""));
    free(d);
out:
    dimple_close(a);
    dimple_close(b);
}

typedef struct obj {
    char key[160];
    void *data;
    size_t n;
} obj;

static int collect_keys(void *payload, const char *key)
{
    su_lines *l = payload;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = strdup(key);
    return 0;
}

static void free_lines(su_lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int first_id_cb(void *payload, const dimple_change *c)
{
    memcpy(payload, c->id, 16);
    return 1;
}

TEST(idempotent_pull_and_push)
{
    dimple *a = mem_replica("a4", "s4", "[sync]\nbatch_max_changes = 2\n");
    dimple *b = mem_replica("b4", "s4", NULL);
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    su_lines before = {0}, after = {0};
    CHECK(a && b);
    if (!a || !b)
        goto out;
    for (int i = 0; i < 5; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES('i%d', %d, 0.5, 'v')",
                 i, i);
        CHECK_RC(su_exec(a, sql), 0);
    }
    CHECK_RC(su_sync(a, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pushed == 3 && st.changes_pushed == 5);
    CHECK_RC(su_sync(b, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pulled == 3 && st.changes_pulled == 5);
    char *d1 = su_dump(b), *h1 = su_history(b, NULL);

    /* pull everything again: the cursor forgotten, nothing changes */
    CHECK_RC(su_exec(b, "DELETE FROM _dimple_sync_cursor"), 0);
    CHECK_RC(su_sync(b, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pulled == 3);
    char *d2 = su_dump(b), *h2 = su_history(b, NULL);
    CHECK(d1 && d2 && strcmp(d1, d2) == 0);
    CHECK(h1 && h2 && strcmp(h1, h2) == 0);

    /* push everything again (as after a crash before the position was
     * recorded): the same keys with the same bytes */
    dimple_remote_list(a, "log/", collect_keys, &before);
    su_str bytes0 = {0}, bytes1 = {0};
    for (size_t i = 0; i < before.n; i++) {
        void *p = NULL;
        size_t n = 0;
        if (dimple_remote_get(&p, &n, a, before.v[i], 1) == DIMPLE_OK)
            su_add(&bytes0, "%s:%zu:%.*s\n", before.v[i], n, (int)n, (char *)p);
        dimple_free(p);
    }
    CHECK_RC(su_exec(a, "UPDATE _dimple_sync_state SET pushed = NULL"), 0);
    CHECK_RC(su_sync(a, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pushed == 3);
    dimple_remote_list(a, "log/", collect_keys, &after);
    for (size_t i = 0; i < after.n; i++) {
        void *p = NULL;
        size_t n = 0;
        if (dimple_remote_get(&p, &n, a, after.v[i], 1) == DIMPLE_OK)
            su_add(&bytes1, "%s:%zu:%.*s\n", after.v[i], n, (int)n, (char *)p);
        dimple_free(p);
    }
    CHECK(before.n == 3 && after.n == 3);
    CHECK(bytes0.p && bytes1.p && strcmp(bytes0.p, bytes1.p) == 0);
    free(bytes0.p);
    free(bytes1.p);
    CHECK_RC(su_sync(b, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pulled == 0);
    char *d3 = su_dump(b);
    CHECK(d3 && d1 && strcmp(d1, d3) == 0);
    free(d1);
    free(d2);
    free(d3);
    free(h1);
    free(h2);

    /* an interrupted push (the batch recorded, not written) followed by
     * more local writes: the re-push cuts the recorded batch, not a
     * bigger one under the same key */
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('j2', 2, 2, 2)"), 0);
    {
        sqlite3 *s = dimple_sqlite(a);
        sqlite3_stmt *q = NULL;
        uint8_t pushed[16], first[16];
        int have = 0;
        sqlite3_prepare_v2(s, "SELECT pushed FROM _dimple_sync_state", -1, &q,
                           NULL);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 16) {
            memcpy(pushed, sqlite3_column_blob(q, 0), 16);
            have = 1;
        }
        sqlite3_finalize(q);
        CHECK(have);
        CHECK_RC(dimple_track__each_local(a, pushed, first_id_cb, first), 1);
        sqlite3_prepare_v2(s,
                           "UPDATE _dimple_sync_state SET intent_first = ?1,"
                           " intent_last = ?1",
                           -1, &q, NULL);
        sqlite3_bind_blob(q, 1, first, 16, SQLITE_STATIC);
        CHECK(sqlite3_step(q) == SQLITE_DONE);
        sqlite3_finalize(q);
    }
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('j3', 3, 3, 3)"), 0);
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('j4', 4, 4, 4)"), 0);
    CHECK_RC(su_sync(a, 0, 0, &st), DIMPLE_OK);
    /* batch_max_changes = 2: [j2] alone as recorded, then [j3, j4] */
    CHECK(st.batches_pushed == 2 && st.changes_pushed == 3);
    CHECK_RC(su_sync(b, 0, 0, &st), DIMPLE_OK);
    CHECK(same_state(a, b));
out:
    free_lines(&before);
    free_lines(&after);
    dimple_close(a);
    dimple_close(b);
}

static int count_cb(void *payload, const dimple_sync_progress *p)
{
    int *n = payload;
    (*n)++;
    return p->phase == DIMPLE_SYNC_PULL && p->batches_done == 2 ? DIMPLE_ERROR
                                                                : 0;
}

/* Stops at the first batch with a value of its own. */
static int stop_7(void *payload, const dimple_sync_progress *p)
{
    (void)payload, (void)p;
    return 7;
}

TEST(limits_progress_and_partial_sync)
{
    dimple *a = mem_replica("a5", "s5", "[sync]\nbatch_max_changes = 3\n");
    dimple *b = mem_replica("b5", "s5", NULL);
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(su_exec(a, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT"
                        " i + 1 FROM n WHERE i < 10) INSERT INTO t SELECT"
                        " 'n' || i, i, i * 0.5, NULL FROM n"),
             0);
    /* partial push: 2 batches, then the rest */
    CHECK_RC(su_sync(a, DIMPLE_SYNC_NO_PULL, 2, &st), DIMPLE_OK);
    CHECK(st.batches_pushed == 2 && st.changes_pushed == 6);
    CHECK_RC(su_sync(a, DIMPLE_SYNC_NO_PULL, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pushed == 2 && st.changes_pushed == 4);
    /* progress: called per batch; a non-zero return stops cleanly */
    int calls = 0;
    dimple_sync_options o = DIMPLE_SYNC_OPTIONS_INIT;
    o.progress = count_cb;
    o.payload = &calls;
    CHECK_RC(dimple_sync(&st, b, &o), DIMPLE_ERROR);
    CHECK_CONTAINS(dimple_errmsg(b), "stopped by the progress callback");
    CHECK(calls == 2 && st.batches_pulled == 2);
    /* pull-only in steps of one batch */
    CHECK_RC(su_sync(b, DIMPLE_SYNC_NO_PUSH, 1, &st), DIMPLE_OK);
    CHECK(st.batches_pulled == 1 && st.changes_pulled == 3);
    CHECK_RC(su_sync(b, DIMPLE_SYNC_NO_PUSH, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pulled == 1 && st.changes_pulled == 1);
    CHECK(same_state(a, b));
    /* the one stop rule: the call returns what the callback returned */
    dimple *c = mem_replica("c5", "s5", NULL);
    if (CHECK(c != NULL)) {
        o.progress = stop_7;
        CHECK_RC(dimple_sync(&st, c, &o), 7);
        CHECK(st.batches_pulled == 1 && st.errors == 0);
        CHECK_CONTAINS(dimple_errmsg(c), "stopped by the progress callback");
        dimple_close(c);
    }
out:
    dimple_close(a);
    dimple_close(b);
}

static int remove_all(void *payload, const char *key)
{
    su_lines *l = payload;
    return collect_keys(l, key);
}

TEST(wiped_store_gets_everything_again)
{
    dimple *a = mem_replica("a6", "s6", NULL),
           *b = mem_replica("b6", "s6", NULL);
    dimple *c = NULL;
    su_lines keys = {0};
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('w1', 1, 1, 1)"), 0);
    CHECK_RC(su_exec(b, "INSERT INTO t VALUES('w2', 2, 2, 2)"), 0);
    CHECK_RC(su_sync(a, 0, 0, NULL), 0);
    CHECK_RC(su_sync(b, 0, 0, NULL), 0);
    CHECK_RC(su_sync(a, 0, 0, NULL), 0);
    /* the store is emptied (a new bucket, a wiped folder) */
    dimple_remote_list(a, "", remove_all, &keys);
    for (size_t i = 0; i < keys.n; i++)
        CHECK_RC(dimple_remote__remove(a, keys.v[i]), DIMPLE_OK);
    CHECK_RC(su_sync(a, 0, 0, NULL), 0);
    CHECK_RC(su_sync(b, 0, 0, NULL), 0);
    c = mem_replica("c6", "s6", NULL);
    CHECK_RC(su_sync(c, 0, 0, NULL), 0);
    CHECK(same_state(a, c));
    char *d = su_dump(c);
    CHECK(d && strstr(d, "w1") && strstr(d, "w2"));
    free(d);
out:
    free_lines(&keys);
    dimple_close(a);
    dimple_close(b);
    dimple_close(c);
}

/* A hand-written batch of `author` with one insert into t (key k). */
static char *good_batch(const uint8_t author[16], const uint8_t id[16],
                        const char *k, size_t *len)
{
    dimple_batch_enc e;
    dimple_value key = {.type = DIMPLE_TEXT, .p = k, .n = strlen(k)};
    dimple_value v = {.type = DIMPLE_INTEGER, .i = 7};
    const char *cn[] = {"a"};
    dimple_change c = {.table = "t",
                       .op = DIMPLE_OP_INSERT,
                       .n_key = 1,
                       .key = &key,
                       .n_cols = 1,
                       .col_names = cn,
                       .cols = &v};
    memcpy(c.id, id, 16);
    memcpy(c.author, author, 16);
    dimple_batch__enc_init(&e, author, 0, 0);
    dimple_batch__enc_add(&e, &c);
    dimple_batch__enc_finish(&e);
    char *s = malloc(e.n + 1);
    memcpy(s, e.p, e.n);
    s[e.n] = 0;
    *len = e.n;
    dimple_batch__enc_free(&e);
    return s;
}

static void fake_id(uint8_t id[16], unsigned author, unsigned seq)
{
    /* an id in the past (2024), so it never drags clocks */
    memset(id, 0, 16);
    id[0] = 0x01;
    id[1] = 0x90;
    id[2] = (uint8_t)author;
    id[6] = 0x70;
    id[8] = 0x80;
    id[14] = (uint8_t)(seq >> 8);
    id[15] = (uint8_t)seq;
}

static void put_obj(dimple *db, const uint8_t author[16], const uint8_t id[16],
                    const char *ext, const void *data, size_t n)
{
    char key[160], a[37], f[37];
    dimple_uuid__format(author, a);
    dimple_uuid__format(id, f);
    snprintf(key, sizeof key, "log/%s/%s%s", a, f, ext);
    if (dimple_remote__put(db, key, data, n) != DIMPLE_OK)
        printf("# put %s: %s\n", key, dimple_errmsg(db));
}

static int has_cursor(dimple *db, const uint8_t author[16])
{
    sqlite3_stmt *q = NULL;
    int found = 0;
    sqlite3_prepare_v2(dimple_sqlite(db),
                       "SELECT 1 FROM _dimple_sync_cursor WHERE author = ?1",
                       -1, &q, NULL);
    sqlite3_bind_blob(q, 1, author, 16, SQLITE_STATIC);
    found = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return found;
}

TEST(hostile_batches_are_refused_and_others_sync)
{
    dimple *a = mem_replica("a7", "s7", NULL),
           *w = mem_replica("w7", "s7", NULL);
    uint8_t auth[8][16], id[16], id2[16];
    size_t n;
    char *s;
    CHECK(a && w);
    if (!a || !w)
        goto out;
    for (unsigned i = 0; i < 8; i++) {
        fake_id(auth[i], 0xa0 + i, 0);
        auth[i][15] = (uint8_t)(0xa0 + i);
    }
    /* 0: a good author with two good batches */
    fake_id(id, 1, 1);
    s = good_batch(auth[0], id, "good1", &n);
    put_obj(w, auth[0], id, ".json", s, n);
    free(s);
    fake_id(id2, 1, 2);
    s = good_batch(auth[0], id2, "good2", &n);
    put_obj(w, auth[0], id2, ".json", s, n);
    free(s);
    /* 1: bad JSON (truncated), then a good batch that must wait */
    fake_id(id, 2, 1);
    s = good_batch(auth[1], id, "bad1", &n);
    put_obj(w, auth[1], id, ".json", s, n / 2);
    free(s);
    fake_id(id2, 2, 2);
    s = good_batch(auth[1], id2, "after-bad1", &n);
    put_obj(w, auth[1], id2, ".json", s, n);
    free(s);
    /* 2: an author that does not match its folder */
    fake_id(id, 3, 1);
    s = good_batch(auth[0], id, "bad2", &n);
    put_obj(w, auth[2], id, ".json", s, n);
    free(s);
    /* 3: ids out of order inside the batch */
    fake_id(id, 4, 9);
    s = good_batch(auth[3], id, "bad3", &n);
    {
        /* append a second change with a smaller id */
        char *tail = strstr(s, "\n]}");
        char extra[600], first_id[37], small[37];
        uint8_t sid[16];
        fake_id(sid, 4, 1);
        dimple_uuid__format(id, first_id);
        dimple_uuid__format(sid, small);
        *tail = 0;
        snprintf(extra, sizeof extra,
                 "%s,\n{\"id\":\"%s\",\"table\":\"t\",\"op\":\"delete\","
                 "\"key\":[\"bad3\"]}\n]}\n",
                 s, small);
        put_obj(w, auth[3], id, ".json", extra, strlen(extra));
        (void)first_id;
    }
    free(s);
    /* 4: an unknown op */
    fake_id(id, 5, 1);
    s = good_batch(auth[4], id, "bad4", &n);
    {
        char *op = strstr(s, "\"insert\"");
        memcpy(op, "\"upsert\"", 8);
    }
    put_obj(w, auth[4], id, ".json", s, n);
    free(s);
    /* 5: an oversized object (over the reader's 64 MiB limit) is refused
     * before parsing; here: a value over the 32 MiB value limit */
    fake_id(id, 6, 1);
    {
        size_t big = DIMPLE_BATCH_MAX_VALUE / 3 * 4 + 8;
        char a6[37], i6[37];
        dimple_uuid__format(auth[5], a6);
        dimple_uuid__format(id, i6);
        char head[512];
        int hn = snprintf(head, sizeof head,
                          "{\"format\":1,\"author\":\"%s\",\"changes\":[{"
                          "\"id\":\"%s\",\"table\":\"t\",\"op\":\"insert\","
                          "\"key\":[\"bad5\"],\"cols\":{\"a\":{\"$blob\":\"",
                          a6, i6);
        char *o = malloc((size_t)hn + big + 16);
        memcpy(o, head, (size_t)hn);
        memset(o + hn, 'A', big);
        memcpy(o + hn + big, "\"}}}]}", 6);
        put_obj(w, auth[5], id, ".json", o, (size_t)hn + big + 6);
        free(o);
    }
    /* 6: encrypted, but no cipher here */
    fake_id(id, 7, 1);
    put_obj(w, auth[6], id, ".json.age", "age-encryption.org/v1\n", 22);
    /* 7: a stray object name */
    {
        char key[160], a8[37];
        dimple_uuid__format(auth[7], a8);
        snprintf(key, sizeof key, "log/%s/notes.txt", a8);
        dimple_remote__put(w, key, "hi", 2);
    }
    dimple_remote__put(w, "log/not-an-author/x.json", "{}", 2);

    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    int rc = su_sync(a, 0, 0, &st);
    CHECK(rc == DIMPLE_ECORRUPT || rc == DIMPLE_EAUTH);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", dimple_errmsg(a));
    printf("# message: %s\n", msg);
    CHECK_CONTAINS(msg, "more error");
    CHECK(st.errors == 8);
    /* the good author synced; nothing of the bad ones */
    char *d = su_dump(a);
    CHECK(d && strstr(d, "good1") && strstr(d, "good2"));
    CHECK(d && !strstr(d, "bad") && !strstr(d, "after-bad1"));
    free(d);
    CHECK(has_cursor(a, auth[0]));
    for (int i = 1; i < 8; i++)
        CHECK(!has_cursor(a, auth[i]));
    CHECK_CONTAINS(msg, "log/not-an-author/");
    dimple_remote__remove(w, "log/not-an-author/x.json");
    /* each error names its object: run each author alone to see each */
    struct {
        int author;
        const char *want;
    } expect[] = {{1, "not valid JSON"}, {2, "does not match its folder"},
                  {3, "out of order"},   {4, "unknown op 'upsert'"},
                  {5, "value over"},     {6, "no [cipher] is configured"},
                  {7, "notes.txt"}};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        char a_txt[37];
        dimple_uuid__format(auth[expect[i].author], a_txt);
        dimple *x = mem_replica("x7", "s7", NULL);
        /* hide the other bad authors by giving them cursors far ahead */
        for (int j = 1; j < 8; j++) {
            if (j == expect[i].author)
                continue;
            sqlite3_stmt *q = NULL;
            sqlite3_prepare_v2(dimple_sqlite(x),
                               "INSERT OR REPLACE INTO _dimple_sync_cursor"
                               " VALUES(?1, 'log/~', zeroblob(16), 0, 0)",
                               -1, &q, NULL);
            if (!q) {
                /* tables not created yet: a first sync makes them */
                su_sync(x, DIMPLE_SYNC_NO_PULL, 0, NULL);
                sqlite3_prepare_v2(dimple_sqlite(x),
                                   "INSERT OR REPLACE INTO _dimple_sync_cursor"
                                   " VALUES(?1, 'log/~', zeroblob(16), 0, 0)",
                                   -1, &q, NULL);
            }
            sqlite3_bind_blob(q, 1, auth[j], 16, SQLITE_STATIC);
            sqlite3_step(q);
            sqlite3_finalize(q);
        }
        su_sync(x, 0, 0, &st);
        CHECK_CONTAINS(dimple_errmsg(x), expect[i].want);
        CHECK_CONTAINS(dimple_errmsg(x), a_txt);
        dimple_close(x);
        char path[512];
        snprintf(path, sizeof path, "%s/x7.db", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/x7.db-wal", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/x7.db-shm", dir);
        unlink(path);
    }
    /* fixing the bad batch lets that author go on, in order */
    fake_id(id, 2, 1);
    s = good_batch(auth[1], id, "fixed1", &n);
    put_obj(w, auth[1], id, ".json", s, n);
    free(s);
    su_sync(a, 0, 0, &st);
    d = su_dump(a);
    CHECK(d && strstr(d, "fixed1") && strstr(d, "after-bad1"));
    free(d);
    CHECK(has_cursor(a, auth[1]));
out:
    dimple_close(a);
    dimple_close(w);
}

TEST(encrypted_store_fails_closed)
{
    const char *cipher = "[cipher]\nplugin = age\npassphrase = correct horse"
                         "\nwork_factor = 10\n";
    dimple *a = mem_replica("a8", "s8", cipher),
           *b = mem_replica("b8", "s8", cipher);
    dimple *c = mem_replica("c8", "s8", NULL);
    su_lines keys = {0};
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    CHECK(a && b && c);
    if (!a || !b || !c)
        goto out;
    CHECK_RC(su_exec(a, "INSERT INTO t VALUES('secret-key', 'secret-title',"
                        " 1, 2)"),
             0);
    CHECK_RC(su_sync(a, 0, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pushed == 1);
    dimple_remote_list(a, "log/", collect_keys, &keys);
    CHECK(keys.n == 1 && strstr(keys.v[0], ".json.age"));
    if (keys.n == 1) {
        void *raw = NULL;
        size_t n = 0;
        CHECK_RC(dimple_remote_get(&raw, &n, a, keys.v[0], 1), DIMPLE_OK);
        CHECK(raw && n > 22 && memcmp(raw, "age-encryption.org/v1", 21) == 0);
        CHECK(raw && !memmem(raw, n, "secret", 6));
        dimple_free(raw);
    }
    CHECK_RC(su_sync(b, 0, 0, &st), DIMPLE_OK);
    CHECK(st.changes_pulled == 1);
    CHECK(same_state(a, b));
    /* no cipher: refused, naming the object */
    CHECK_RC(su_sync(c, 0, 0, &st), DIMPLE_EAUTH);
    CHECK_CONTAINS(dimple_errmsg(c), ".json.age");
    CHECK_CONTAINS(dimple_errmsg(c), "no [cipher]");
    char *d = su_dump(c);
    CHECK(d && !strstr(d, "secret"));
    free(d);
    /* a plaintext batch in an encrypted store: refused (fail closed) */
    {
        uint8_t auth[16], id[16];
        size_t n;
        fake_id(auth, 0xee, 0);
        auth[15] = 0xee;
        fake_id(id, 0xee, 1);
        char *s = good_batch(auth, id, "plain-injected", &n);
        put_obj(c, auth, id, ".json", s, n);
        free(s);
    }
    CHECK_RC(su_sync(b, 0, 0, &st), DIMPLE_EAUTH);
    CHECK_CONTAINS(dimple_errmsg(b), "plaintext");
    d = su_dump(b);
    CHECK(d && !strstr(d, "plain-injected"));
    free(d);
out:
    free_lines(&keys);
    dimple_close(a);
    dimple_close(b);
    dimple_close(c);
}

static int64_t cursor_changes(dimple *db)
{
    sqlite3_stmt *q = NULL;
    int64_t n = -1;
    sqlite3_prepare_v2(dimple_sqlite(db),
                       "SELECT sum(changes) FROM _dimple_sync_cursor", -1, &q,
                       NULL);
    if (q && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

static uint64_t other_pulled;

static int other_pulls(void *payload, const dimple_sync_progress *p)
{
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    if (p->batches_done != 1)
        return 0;
    if (su_sync(payload, DIMPLE_SYNC_NO_PUSH, 0, &st) == DIMPLE_OK)
        other_pulled = st.batches_pulled;
    else
        printf("# other handle: %s\n", dimple_errmsg(payload));
    return 0;
}

TEST(two_handles_on_one_database)
{
    /* e.g. `dimple sync --watch` next to the app's own dimple_sync */
    dimple *w = mem_replica("w9", "s9", "[sync]\nbatch_max_changes = 2\n");
    dimple *h1 = mem_replica("r9", "s9", NULL),
           *h2 = mem_replica("r9", "s9", NULL);
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    CHECK(w && h1 && h2);
    if (!w || !h1 || !h2)
        goto out;
    CHECK_RC(su_exec(w, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT"
                        " i + 1 FROM n WHERE i < 9) INSERT INTO t SELECT"
                        " 'h' || i, i, NULL, NULL FROM n"),
             0);
    CHECK_RC(su_sync(w, 0, 0, NULL), DIMPLE_OK);
    /* while h1 is pulling (after its first batch), h2 pulls everything:
     * h1 then finds the batches it listed already applied */
    dimple_sync_options o = DIMPLE_SYNC_OPTIONS_INIT;
    o.flags = DIMPLE_SYNC_NO_PUSH;
    o.progress = other_pulls;
    o.payload = h2;
    CHECK_RC(dimple_sync(&st, h1, &o), DIMPLE_OK);
    CHECK(st.batches_pulled == 1);
    CHECK(other_pulled == 4);
    CHECK_RC(su_sync(h1, DIMPLE_SYNC_NO_PUSH, 0, &st), DIMPLE_OK);
    CHECK(st.batches_pulled == 0);
    CHECK(cursor_changes(h1) == 9);
    size_t n = 0;
    char *h = su_history(h1, &n);
    CHECK(n == 9);
    free(h);
    CHECK(same_state(w, h1));
out:
    dimple_close(w);
    dimple_close(h1);
    dimple_close(h2);
}

TEST(no_storage_is_a_clear_error)
{
    char path[512];
    dimple *db = NULL;
    snprintf(path, sizeof path, "%s/plain.db", dir);
    CHECK_RC(dimple_open_path(&db, path, NULL), DIMPLE_OK);
    CHECK_RC(dimple_sync(NULL, db, NULL), DIMPLE_ECONFIG);
    CHECK_CONTAINS(dimple_errmsg(db), "no [storage]");
    dimple_close(db);
}

int main(void)
{
    dir = su_tmpdir("engine");
    if (!dir)
        return 1;
    RUN(two_replicas_converge);
    RUN(nothing_new_costs_one_listing_per_author);
    RUN(marker_written_once_and_newer_major_refused);
    RUN(idempotent_pull_and_push);
    RUN(limits_progress_and_partial_sync);
    RUN(wiped_store_gets_everything_again);
    RUN(hostile_batches_are_refused_and_others_sync);
    RUN(encrypted_store_fails_closed);
    RUN(two_handles_on_one_database);
    RUN(no_storage_is_a_clear_error);
    su_rmrf(dir);
    free(dir);
    return test_done();
}
