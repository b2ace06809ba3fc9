/*
 * test_batch.c — the batch format v1 (docs/FORMAT.md): exact round trip of
 * every SQLite value, deterministic bytes, limits, and strict refusal of
 * corrupt or hostile objects with a message naming the object and member.
 */
#include "batch.h"
#include "clock.h"
#include "test.h"

#include <float.h>
#include <stdbool.h>
#include <math.h>

static const uint8_t AUTHOR[16] = {0x01, 0x90, 0xf5, 0xc2, 0, 0, 0x70, 0,
                                   0x80, 0,    0,    0,    0, 0, 0xa1, 0x1c};
static const uint8_t OTHER[16] = {0x01, 0x90, 0xf5, 0xc2, 0, 0, 0x70, 0,
                                  0x80, 0,    0,    0,    0, 0, 0xbe, 0xef};

static void make_id(uint8_t id[16], unsigned seq)
{
    memset(id, 0, 16);
    id[0] = 0x01;
    id[1] = 0x90;
    id[5] = 0x10;
    id[6] = 0x70;
    id[8] = 0x80;
    id[12] = (uint8_t)(seq >> 24);
    id[13] = (uint8_t)(seq >> 16);
    id[14] = (uint8_t)(seq >> 8);
    id[15] = (uint8_t)seq;
}

static int same_value(const dimple_value *a, const dimple_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case DIMPLE_INTEGER:
        return a->i == b->i;
    case DIMPLE_REAL:
        return memcmp(&a->r, &b->r, sizeof a->r) == 0;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
    default:
        return 1;
    }
}

static dimple_value vi(int64_t i)
{
    dimple_value v = {.type = DIMPLE_INTEGER, .i = i};
    return v;
}
static dimple_value vr(double r)
{
    dimple_value v = {.type = DIMPLE_REAL, .r = r};
    return v;
}
static dimple_value vt(const void *p, size_t n)
{
    dimple_value v = {.type = DIMPLE_TEXT, .p = p, .n = n};
    return v;
}
static dimple_value vb(const void *p, size_t n)
{
    dimple_value v = {.type = DIMPLE_BLOB, .p = p, .n = n};
    return v;
}
static dimple_value vn(void)
{
    dimple_value v = {.type = DIMPLE_NULL};
    return v;
}

/* Encode one batch of changes, decode it back. */
static int roundtrip(const dimple_change *cs, size_t n, dimple_batch *out,
                     dimple_batch_enc *e)
{
    char err[1024];
    dimple_batch__enc_init(e, AUTHOR, 0, 0);
    for (size_t i = 0; i < n; i++) {
        int rc = dimple_batch__enc_add(e, &cs[i]);
        if (rc != DIMPLE_OK) {
            printf("# add %zu: %d %s\n", i, rc, e->err);
            return rc;
        }
    }
    if (dimple_batch__enc_finish(e) != DIMPLE_OK)
        return -1;
    int rc = dimple_batch__decode(out, "log/x/y.json", e->p, e->n, AUTHOR,
                                  cs[0].id, err, sizeof err);
    if (rc)
        printf("# decode: %s\n", err);
    return rc;
}

TEST(values_round_trip_exactly)
{
    static const unsigned char bytes[256] = {0};
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    (void)bytes;
    const char nul_text[] = {'a', 0, 'b'};
    const char bad_utf8[] = {'x', (char)0xc3, (char)0x28, (char)0xff};
    const char *utf8 =
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \"q\" \\ \n\t\x01";
    dimple_value vals[] = {
        vi(0),
        vi(1),
        vi(-1),
        vi(INT64_MAX),
        vi(INT64_MIN),
        vi(((int64_t)1 << 53) - 1),
        vi((int64_t)1 << 53),
        vi(-((int64_t)1 << 53)),
        vi(-((int64_t)1 << 53) + 1),
        vr(1.0),
        vr(0.1),
        vr(-0.0),
        vr(0.0),
        vr(1.0 / 3),
        vr(DBL_MAX),
        vr(-DBL_MAX),
        vr(DBL_MIN),
        vr(5e-324),
        vr(INFINITY),
        vr(-INFINITY),
        vr(123456789012345678.0),
        vr(1e300),
        vr(-2.5e-300),
        vt("", 0),
        vt(utf8, strlen(utf8)),
        vt(nul_text, 3),
        vt(bad_utf8, 4),
        vb(all, 256),
        vb("", 0),
        vb(all, 1),
        vb(all, 2),
        vn(),
    };
    size_t nv = sizeof vals / sizeof vals[0];
    const char *names[64];
    char namebuf[64][8];
    for (size_t i = 0; i < nv; i++) {
        snprintf(namebuf[i], sizeof namebuf[i], "c%zu", i);
        names[i] = namebuf[i];
    }
    dimple_value key[2] = {vi(7), vt("k\xc3\xa9y", 4)};
    dimple_change c = {.table = "t\"able",
                       .op = DIMPLE_OP_INSERT,
                       .n_key = 2,
                       .key = key,
                       .n_cols = nv,
                       .col_names = names,
                       .cols = vals};
    make_id(c.id, 1);
    memcpy(c.author, AUTHOR, 16);
    dimple_batch b;
    dimple_batch_enc e;
    CHECK_RC(roundtrip(&c, 1, &b, &e), DIMPLE_OK);
    CHECK(b.n == 1);
    if (b.n == 1) {
        const dimple_change *d = &b.changes[0];
        CHECK(memcmp(d->id, c.id, 16) == 0);
        CHECK(memcmp(d->author, AUTHOR, 16) == 0);
        CHECK_STR(d->table, "t\"able");
        CHECK(d->op == DIMPLE_OP_INSERT);
        CHECK(d->n_key == 2 && same_value(&d->key[0], &key[0]) &&
              same_value(&d->key[1], &key[1]));
        CHECK(d->n_cols == nv);
        int all_same = d->n_cols == nv;
        for (size_t i = 0; all_same && i < nv; i++) {
            if (strcmp(d->col_names[i], names[i]) != 0 ||
                !same_value(&d->cols[i], &vals[i])) {
                printf("# value %zu differs\n", i);
                all_same = 0;
            }
        }
        CHECK(all_same);
        /* 1.0 stays REAL, 2^53 stays exact */
        CHECK(d->cols[9].type == DIMPLE_REAL && d->cols[9].r == 1.0);
        CHECK(d->cols[6].type == DIMPLE_INTEGER &&
              d->cols[6].i == ((int64_t)1 << 53));
        CHECK(signbit(d->cols[11].r));
    }
    /* human-readable where JSON is exact */
    CHECK_CONTAINS(e.p, "\"c0\":0,");
    CHECK_CONTAINS(e.p, "{\"$int\":\"9223372036854775807\"}");
    CHECK_CONTAINS(e.p, "{\"$real\":\"1\"}");
    CHECK_CONTAINS(e.p, "{\"$real\":\"0.1\"}");
    CHECK_CONTAINS(e.p, "{\"$real\":\"-inf\"}");
    CHECK_CONTAINS(e.p, "{\"$text\":\"YQBi\"}");
    dimple_batch__free(&b);
    dimple_batch__enc_free(&e);
}

TEST(delete_and_many_changes)
{
    dimple_change cs[50];
    dimple_value keys[50], cols[50];
    const char *cn[] = {"v"};
    for (int i = 0; i < 50; i++) {
        memset(&cs[i], 0, sizeof cs[i]);
        make_id(cs[i].id, (unsigned)(i + 10));
        memcpy(cs[i].author, AUTHOR, 16);
        keys[i] = vi(i);
        cols[i] = vi(i * 3);
        cs[i].table = "t";
        cs[i].n_key = 1;
        cs[i].key = &keys[i];
        cs[i].op = i % 3 == 2 ? DIMPLE_OP_DELETE
                   : i % 3    ? DIMPLE_OP_UPDATE
                              : DIMPLE_OP_INSERT;
        if (cs[i].op != DIMPLE_OP_DELETE) {
            cs[i].n_cols = 1;
            cs[i].col_names = cn;
            cs[i].cols = &cols[i];
        }
    }
    dimple_batch b;
    dimple_batch_enc e;
    CHECK_RC(roundtrip(cs, 50, &b, &e), DIMPLE_OK);
    CHECK(b.n == 50);
    int ok = b.n == 50;
    for (size_t i = 0; ok && i < 50; i++) {
        const dimple_change *d = &b.changes[i];
        ok = d->op == cs[i].op && d->n_cols == cs[i].n_cols &&
             memcmp(d->id, cs[i].id, 16) == 0 && d->key[0].i == (int64_t)i &&
             (d->n_cols == 0 || d->cols[0].i == (int64_t)i * 3);
    }
    CHECK(ok);
    /* same changes, same bytes: a re-push rewrites identical content */
    char *first = malloc(e.n);
    size_t first_n = e.n;
    memcpy(first, e.p, e.n);
    dimple_batch__enc_free(&e);
    dimple_batch__free(&b);
    CHECK_RC(roundtrip(cs, 50, &b, &e), DIMPLE_OK);
    CHECK(e.n == first_n && memcmp(e.p, first, first_n) == 0);
    free(first);
    dimple_batch__free(&b);
    dimple_batch__enc_free(&e);
}

TEST(limits_split_batches)
{
    dimple_change c;
    dimple_value k = vi(1), v = vt("0123456789", 10);
    const char *cn[] = {"v"};
    dimple_batch_enc e;
    memset(&c, 0, sizeof c);
    memcpy(c.author, AUTHOR, 16);
    c.table = "t";
    c.op = DIMPLE_OP_INSERT;
    c.n_key = 1;
    c.key = &k;
    c.n_cols = 1;
    c.col_names = cn;
    c.cols = &v;

    dimple_batch__enc_init(&e, AUTHOR, 3, 0);
    for (unsigned i = 0; i < 3; i++) {
        make_id(c.id, i + 1);
        CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_OK);
    }
    make_id(c.id, 4);
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_BATCH_FULL);
    CHECK(e.count == 3);
    CHECK_RC(dimple_batch__enc_finish(&e), DIMPLE_OK);
    dimple_batch__enc_free(&e);

    /* bytes: a change that would pass max_bytes starts the next batch */
    dimple_batch__enc_init(&e, AUTHOR, 0, 300);
    int full_at = -1;
    for (unsigned i = 0; i < 10 && full_at < 0; i++) {
        make_id(c.id, i + 1);
        int rc = dimple_batch__enc_add(&e, &c);
        if (rc == DIMPLE_BATCH_FULL)
            full_at = (int)i;
    }
    CHECK(full_at > 0);
    CHECK_RC(dimple_batch__enc_finish(&e), DIMPLE_OK);
    CHECK(e.n <= 300);
    dimple_batch__enc_free(&e);

    /* a single change over max_bytes goes alone */
    dimple_batch__enc_init(&e, AUTHOR, 0, 20);
    make_id(c.id, 1);
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_OK);
    make_id(c.id, 2);
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_BATCH_FULL);
    dimple_batch__enc_free(&e);

    /* refused: NaN, ids not increasing, another author, oversized value */
    dimple_batch__enc_init(&e, AUTHOR, 0, 0);
    dimple_value nan = vr(NAN);
    c.cols = &nan;
    make_id(c.id, 5);
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_EINVAL);
    CHECK_CONTAINS(e.err, "NaN");
    c.cols = &v;
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_OK);
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_EINVAL);
    CHECK_CONTAINS(e.err, "increase");
    make_id(c.id, 6);
    memcpy(c.author, OTHER, 16);
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_EINVAL);
    memcpy(c.author, AUTHOR, 16);
    dimple_value huge = vb(NULL, DIMPLE_BATCH_MAX_VALUE + 1);
    huge.p = "";
    huge.n = DIMPLE_BATCH_MAX_VALUE + 1; /* never read: refused by size */
    c.cols = &huge;
    CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_EINVAL);
    CHECK_CONTAINS(e.err, "column 'v'");
    CHECK(e.count == 1);
    /* still a valid batch with the one good change */
    CHECK_RC(dimple_batch__enc_finish(&e), DIMPLE_OK);
    dimple_batch b;
    char err[512];
    uint8_t first[16];
    make_id(first, 5);
    CHECK_RC(
        dimple_batch__decode(&b, "x", e.p, e.n, AUTHOR, first, err, sizeof err),
        DIMPLE_OK);
    CHECK(b.n == 1);
    dimple_batch__free(&b);
    dimple_batch__enc_free(&e);
}

/* Decoding `json` must fail with code and a message containing want. */
static void bad(const char *json, int code, const char *want)
{
    dimple_batch b;
    char err[1024];
    uint8_t first[16];
    make_id(first, 1);
    char name[81]; /* the input, printable and short, names the check */
    size_t i = 0;
    for (; json[i] && i < sizeof name - 1; i++)
        name[i] =
            (unsigned char)json[i] < 0x20 || (unsigned char)json[i] >= 0x7f
                ? '?'
                : json[i];
    name[i] = '\0';
    int rc = dimple_batch__decode(&b, "log/A/F.json", json, strlen(json),
                                  AUTHOR, first, err, sizeof err);
    if (!test_check_(rc == code, name, __FILE__, __LINE__))
        printf("#   got %d (%s)\n", rc, err);
    if (!test_check_(strstr(err, want) && strstr(err, "log/A/F.json"), want,
                     __FILE__, __LINE__))
        printf("#   message: %s\n", err);
    CHECK(b.n == 0 && b.changes == NULL);
}

#define A "\"author\":\"0190f5c2-0000-7000-8000-00000000a11c\""
#define ID1 "\"id\":\"01900000-0010-7000-8000-000000000001\""
#define ID2 "\"id\":\"01900000-0010-7000-8000-000000000002\""
#define HEAD "{\"format\":1," A ",\"changes\":["
#define CH(extra)                                                              \
    "{" ID1 ",\"table\":\"t\",\"op\":\"insert\",\"key\":[1]" extra "}"

TEST(corrupt_batches_are_refused)
{
    bad("", DIMPLE_ECORRUPT, "empty");
    bad("{\"format\":1,", DIMPLE_ECORRUPT, "not valid JSON");
    bad("[1,2]", DIMPLE_ECORRUPT, "not a JSON object");
    bad(HEAD CH(",\"cols\":{}") "]} x", DIMPLE_ECORRUPT, "trailing");
    bad("{\"format\":2," A ",\"changes\":[]}", DIMPLE_EFORMAT, "newer");
    bad("{\"format\":\"1\"," A ",\"changes\":[]}", DIMPLE_ECORRUPT, "format");
    bad("{\"format\":1,\"changes\":[]}", DIMPLE_ECORRUPT, "'author'");
    bad("{\"format\":1,\"author\":\"0190f5c2-0000-7000-8000-00000000beef\","
        "\"changes\":[" CH(",\"cols\":{}") "]}",
        DIMPLE_ECORRUPT, "does not match its folder");
    bad(HEAD "]}", DIMPLE_ECORRUPT, "empty");
    bad("{\"format\":1," A ",\"changes\":{}}", DIMPLE_ECORRUPT, "'changes'");
    bad(HEAD "3]}", DIMPLE_ECORRUPT, "not an object");
    /* ids */
    bad(HEAD "{\"id\":\"01900000-0010-4000-8000-000000000001\",\"table\":\"t\","
             "\"op\":\"insert\",\"key\":[1],\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "UUIDv7");
    bad(HEAD "{\"id\":\"01900000-0010-7000-8000-00000000000A\",\"table\":\"t\","
             "\"op\":\"insert\",\"key\":[1],\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "UUIDv7");
    bad(HEAD "{" ID2 ",\"table\":\"t\",\"op\":\"insert\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "does not match the object's name");
    bad(HEAD CH(",\"cols\":{}") "," CH(",\"cols\":{}") "]}", DIMPLE_ECORRUPT,
        "out of order");
    bad(HEAD "{" ID2 ",\"table\":\"t\",\"op\":\"insert\",\"key\":[1],"
             "\"cols\":{}}," CH(",\"cols\":{}") "]}",
        DIMPLE_ECORRUPT, "does not match");
    /* members */
    bad(HEAD "{" ID1 "," ID1 ",\"table\":\"t\",\"op\":\"insert\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "duplicate member 'id'");
    bad(HEAD "{" ID1 ",\"table\":\"\",\"op\":\"insert\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'table'");
    bad(HEAD "{" ID1 ",\"table\":5,\"op\":\"insert\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'table'");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"upsert\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "unknown op 'upsert'");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"insert\",\"key\":[],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'key'");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"insert\",\"key\":[1]}]}",
        DIMPLE_ECORRUPT, "'cols' missing");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"delete\",\"key\":[1],"
             "\"cols\":{\"a\":1}}]}",
        DIMPLE_ECORRUPT, "a delete carries no 'cols'");
    bad(HEAD CH(",\"cols\":{\"a\":1,\"a\":2}") "]}", DIMPLE_ECORRUPT,
        "appears twice");
    /* values: wrong types, lossy numbers, bad tags, bad base64 */
    bad(HEAD CH(",\"cols\":{\"a\":true}") "]}", DIMPLE_ECORRUPT,
        "column 'a': wrong type");
    bad(HEAD CH(",\"cols\":{\"a\":[1]}") "]}", DIMPLE_ECORRUPT, "wrong type");
    bad(HEAD CH(",\"cols\":{\"a\":1.5}") "]}", DIMPLE_ECORRUPT,
        "column 'a': a bare number");
    bad(HEAD CH(",\"cols\":{\"a\":9007199254740993}") "]}", DIMPLE_ECORRUPT,
        "bare number");
    bad(HEAD CH(",\"cols\":{\"a\":1e400}") "]}", DIMPLE_ECORRUPT,
        "bare number");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$int\":\"9223372036854775808\"}}") "]}",
        DIMPLE_ECORRUPT, "$int");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$int\":\"012\"}}") "]}", DIMPLE_ECORRUPT,
        "$int");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$int\":7}}") "]}", DIMPLE_ECORRUPT,
        "typed value");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$real\":\"nan\"}}") "]}", DIMPLE_ECORRUPT,
        "$real");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$real\":\"0x1p3\"}}") "]}",
        DIMPLE_ECORRUPT, "$real");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$real\":\"1e999\"}}") "]}",
        DIMPLE_ECORRUPT, "$real");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$blob\":\"YQ=\"}}") "]}", DIMPLE_ECORRUPT,
        "not base64");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$blob\":\"YR==\"}}") "]}", DIMPLE_ECORRUPT,
        "not base64");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$blob\":\"Y!==\"}}") "]}", DIMPLE_ECORRUPT,
        "not base64");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$date\":\"x\"}}") "]}", DIMPLE_ECORRUPT,
        "unknown value tag");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$int\":\"1\",\"$real\":\"1\"}}") "]}",
        DIMPLE_ECORRUPT, "one string member");
    bad(HEAD CH(",\"cols\":{\"a\":\"\xff\xfe\"}") "]}", DIMPLE_ECORRUPT,
        "not valid UTF-8");
    bad(HEAD CH(",\"cols\":{\"\":1}") "]}", DIMPLE_ECORRUPT, "column name");
}

/* Decode json (len bytes) against AUTHOR and first id 1; prints the error. */
static int good(const char *json, size_t len, dimple_batch *b)
{
    char err[1024];
    uint8_t first[16];
    make_id(first, 1);
    int rc = dimple_batch__decode(b, "log/A/F.json", json, len, AUTHOR, first,
                                  err, sizeof err);
    if (rc)
        printf("# decode: %s\n", err);
    return rc;
}

TEST(escapes_whitespace_and_unknown_members)
{
    /* every escape, a surrogate pair, whitespace between every token,
     * members in another order, and unknown members of every JSON kind
     * (a later minor version's) at both levels, nested */
    const char *json =
        " \t\r\n{ \"x-obj\" : { \"a\" : [ 1 , -2.5e-3 , true , false , null , "
        "{ \"b\" : \"\\u00e9\" , \"c\" : [ [ ] , { } ] } ] } ,\n"
        "\"x-arr\":[[[[\"deep\"]]],{\"k\":{\"k\":{}}}],\"x-num\":-0.5E+3,"
        "\"x-str\":\"\\ud83d\\ude00 \\\"\",\"x-t\":true,\"x-f\":false,"
        "\"x-n\":null,\r\n"
        "\"changes\"\t:\t[\n {\"cols\" : {\"t\\u00e9xt\" : "
        "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9\\u20AC\\ud83d\\ude00 "
        "\\u0001\xe2\x82\xac\" , \"n\" : -7 , \"z\":0, \"e\":\"\" , "
        "\"r\" : { \"$real\" : \"-0\" } } , \"x-ch\" : {\"id\":[1,{}]} , "
        "\"op\" : \"upd\\u0061te\" , \"key\" : [ \"k\" , 9007199254740991 , "
        "-9007199254740991 , { \"$int\" : \"9007199254740992\" } ] , "
        "\"table\" : \"t\\u0041b\" , \"x-more\" : [ null , true , \"s\" ] , "
        "\"id\" : \"01900000-0010-7000-8000-00000000000\\u0031\" , "
        "\"x-num\" : 1e5 } ,\n"
        "\t{\"id\":\"01900000-0010-7000-8000-000000000002\",\"table\":\"t\","
        "\"op\":\"delete\",\"key\":[null],\"cols\":{ }} ] ,"
        "\"author\" : \"0190f5c2-0000-7000-8000-00000000a11c\" , "
        "\"format\" : 1.0 } \n\t ";
    const char want_text[] = "q\" b\\ s/ \b\f\n\r\t \xc3\xa9\xe2\x82\xac"
                             "\xf0\x9f\x98\x80 \x01\xe2\x82\xac";
    dimple_batch b;
    uint8_t id1[16], id2[16];
    make_id(id1, 1);
    make_id(id2, 2);
    CHECK_RC(good(json, strlen(json), &b), DIMPLE_OK);
    CHECK(b.n == 2);
    if (b.n != 2)
        return;
    const dimple_change *c = &b.changes[0];
    CHECK(memcmp(b.author, AUTHOR, 16) == 0);
    CHECK(memcmp(c->id, id1, 16) == 0 && memcmp(c->author, AUTHOR, 16) == 0);
    CHECK_STR(c->table, "tAb");
    CHECK(c->op == DIMPLE_OP_UPDATE);
    CHECK(c->n_key == 4);
    CHECK(c->n_key == 4 && c->key[0].type == DIMPLE_TEXT && c->key[0].n == 1 &&
          memcmp(c->key[0].p, "k", 1) == 0);
    CHECK(c->n_key == 4 && c->key[1].type == DIMPLE_INTEGER &&
          c->key[1].i == 9007199254740991);
    CHECK(c->n_key == 4 && c->key[2].i == -9007199254740991);
    CHECK(c->n_key == 4 && c->key[3].type == DIMPLE_INTEGER &&
          c->key[3].i == 9007199254740992);
    CHECK(c->n_cols == 5);
    if (c->n_cols == 5) {
        CHECK_STR(c->col_names[0], "t\xc3\xa9xt");
        CHECK(c->cols[0].type == DIMPLE_TEXT &&
              c->cols[0].n == sizeof want_text - 1 &&
              memcmp(c->cols[0].p, want_text, sizeof want_text - 1) == 0);
        CHECK(c->cols[1].type == DIMPLE_INTEGER && c->cols[1].i == -7);
        CHECK(c->cols[2].type == DIMPLE_INTEGER && c->cols[2].i == 0);
        CHECK(c->cols[3].type == DIMPLE_TEXT && c->cols[3].n == 0);
        CHECK(c->cols[4].type == DIMPLE_REAL && c->cols[4].r == 0 &&
              signbit(c->cols[4].r));
    }
    c = &b.changes[1];
    CHECK(memcmp(c->id, id2, 16) == 0 && c->op == DIMPLE_OP_DELETE &&
          c->n_key == 1 && c->key[0].type == DIMPLE_NULL && c->n_cols == 0);
    dimple_batch__free(&b);
    CHECK(b.n == 0 && b.changes == NULL);

    /* unknown members nested 30 deep are fine (the limit is 32) */
    char deep[512];
    int k = snprintf(deep, sizeof deep, "{\"format\":1," A ",\"x\":");
    for (int i = 0; i < 15; i++)
        k += snprintf(deep + k, sizeof deep - (size_t)k, "{\"a\":[");
    for (int i = 0; i < 15; i++)
        k += snprintf(deep + k, sizeof deep - (size_t)k, "]}");
    k += snprintf(deep + k, sizeof deep - (size_t)k,
                  ",\"changes\":[" CH(",\"cols\":{}") "]}");
    CHECK_RC(good(deep, (size_t)k, &b), DIMPLE_OK);
    dimple_batch__free(&b);
}

/* The string reader works 8 bytes at a time: an escape, a non-ASCII
 * character, the closing quote and a refused control character at every
 * offset of that window (and past it) must come out exactly. */
TEST(strings_at_every_offset)
{
    static const char *const mid[] = {"\\n",      "\\\"",           "\\u00e9",
                                      "\xc3\xa9", "\\ud83d\\ude00", ""};
    static const char *const out[] = {
        "\n", "\"", "\xc3\xa9", "\xc3\xa9", "\xf0\x9f\x98\x80", ""};
    int all_ok = 1, all_refused = 1;
    for (size_t m = 0; m < sizeof mid / sizeof mid[0]; m++) {
        for (int k = 0; k < 20; k++) {
            char json[512], want[64];
            int n = snprintf(json, sizeof json,
                             HEAD "{" ID1 ",\"table\":\"t\",\"op\":"
                                  "\"insert\",\"key\":[1],\"cols\":{\"a\":\""
                                  "%.*s%s%.*s\"}}]}",
                             k, "abcdefghijklmnopqrstuvwxyz", mid[m], 19 - k,
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            snprintf(want, sizeof want, "%.*s%s%.*s", k,
                     "abcdefghijklmnopqrstuvwxyz", out[m], 19 - k,
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            dimple_batch b;
            if (good(json, (size_t)n, &b) != DIMPLE_OK) {
                all_ok = 0;
                continue;
            }
            const dimple_value *v = &b.changes[0].cols[0];
            if (v->type != DIMPLE_TEXT || v->n != strlen(want) ||
                memcmp(v->p, want, v->n) != 0) {
                printf("# %zu at %d: got '%.*s'\n", m, k, (int)v->n,
                       (const char *)v->p);
                all_ok = 0;
            }
            dimple_batch__free(&b);
            /* the same with a raw control character there: refused */
            n = snprintf(json, sizeof json,
                         HEAD "{" ID1 ",\"table\":\"t\",\"op\":"
                              "\"insert\",\"key\":[1],\"cols\":{\"a\":\""
                              "%.*s\x01%.*s\"}}]}",
                         k, "abcdefghijklmnopqrstuvwxyz", 19 - k,
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            char err[512];
            if (dimple_batch__decode(&b, "x", json, (size_t)n, NULL, NULL, err,
                                     sizeof err) != DIMPLE_ECORRUPT ||
                !strstr(err, "control character"))
                all_refused = 0;
        }
    }
    CHECK(all_ok);
    CHECK(all_refused);
}

TEST(json_syntax_is_strict)
{
    /* where: the byte offset of the error */
    bad("{\"format\":1,", DIMPLE_ECORRUPT,
        "not valid JSON (truncated or corrupt) near byte 12");
    bad("{\"format\":tru}", DIMPLE_ECORRUPT,
        "not valid JSON (truncated or corrupt) near byte 10");
    bad(" \n\t ", DIMPLE_ECORRUPT, "not valid JSON");
    bad("\xef\xbb\xbf{\"format\":1}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("\"str\"", DIMPLE_ECORRUPT, "not a JSON object");
    bad("{} {}", DIMPLE_ECORRUPT, "trailing bytes after the JSON object");
    bad("{\"format\":1}}", DIMPLE_ECORRUPT, "trailing bytes");
    /* whitespace is space, tab, CR, LF only */
    bad("{\"format\":1,\f\"x\":1}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"format\":1,\"x\":1,}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"format\":1 \"x\":1}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"format\" 1}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{format:1}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":[1,]}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":[1 2]}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":nul}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":True}", DIMPLE_ECORRUPT, "not valid JSON");
    /* numbers: the RFC grammar */
    bad("{\"x\":01}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":1.}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":.5}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":+1}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":-}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":1e}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":1e+}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":0x10}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":NaN}", DIMPLE_ECORRUPT, "not valid JSON");
    /* 63 characters is the most (cJSON's buffer), 64 is refused */
    char num[128];
    strcpy(num, "{\"x\":1.");
    memset(num + 7, '0', 60);
    strcpy(num + 67, "1,\"format\":1}"); /* "1." + 60 + "1": 63 */
    bad(num, DIMPLE_ECORRUPT, "'author' missing");
    strcpy(num + 7, "0");
    memset(num + 7, '0', 61);
    strcpy(num + 68, "1,\"format\":1}");
    bad(num, DIMPLE_ECORRUPT, "a number of more than 63 characters");
    /* strings: escapes, surrogates, control characters, UTF-8 */
    bad("{\"x\":\"a\\x\"}", DIMPLE_ECORRUPT, "bad escape");
    bad("{\"x\":\"a\\u12G4\"}", DIMPLE_ECORRUPT, "bad \\u escape");
    bad("{\"x\":\"a\\u12\"}", DIMPLE_ECORRUPT, "not valid JSON");
    bad("{\"x\":\"\\ud83d\"}", DIMPLE_ECORRUPT, "lone UTF-16 surrogate");
    bad("{\"x\":\"\\ud83dx\"}", DIMPLE_ECORRUPT, "lone UTF-16 surrogate");
    bad("{\"x\":\"\\ud83d\\u0041\"}", DIMPLE_ECORRUPT, "lone UTF-16 surrogate");
    bad("{\"x\":\"\\ude00\"}", DIMPLE_ECORRUPT, "lone UTF-16 surrogate");
    bad("{\"x\":\"a\tb\"}", DIMPLE_ECORRUPT, "control character");
    bad("{\"x\":\"a\nb\"}", DIMPLE_ECORRUPT, "control character");
    bad("{\"x\":\"\xc3\"}", DIMPLE_ECORRUPT, "invalid UTF-8");
    bad("{\"x\":\"\xed\xa0\x80\"}", DIMPLE_ECORRUPT, "invalid UTF-8");
    bad("{\"\xff\":1}", DIMPLE_ECORRUPT, "invalid UTF-8");
    bad("{\"x\":{\"\xc0\xaf\":1}}", DIMPLE_ECORRUPT, "invalid UTF-8");
    bad("{\"x\":\"abc", DIMPLE_ECORRUPT, "truncated or corrupt");
    bad("{\"x\":\"abc\\", DIMPLE_ECORRUPT, "truncated or corrupt");
    /* \u0000 cannot hide in a name (cJSON cut names there) */
    bad("{\"format\\u0000x\":2," A ",\"changes\":[]}", DIMPLE_ECORRUPT,
        "\\u0000 in a member name");
    bad(HEAD "{\"id\\u0000\":1," ID1 ",\"table\":\"t\",\"op\":\"insert\","
             "\"key\":[1],\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "\\u0000 in a member name");
    bad(HEAD CH(",\"cols\":{\"a\\u0000b\":1}") "]}", DIMPLE_ECORRUPT,
        "column name: must be 1 to 1024 bytes of UTF-8");
    bad(HEAD CH(",\"cols\":{\"a\":\"x\\u0000y\"}") "]}", DIMPLE_ECORRUPT,
        "column 'a': text holds \\u0000");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$int\":\"1\\u0000\"}}") "]}",
        DIMPLE_ECORRUPT, "$int");
    bad(HEAD "{" ID1 ",\"table\":\"t\\u0000\",\"op\":\"insert\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'table'");
    bad(HEAD "{" ID1 ",\"table\":\"\xff\",\"op\":\"insert\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'table': must be 1 to 1024 bytes of UTF-8");
    bad(HEAD CH(",\"cols\":{\"\xe2\x82\":1}") "]}", DIMPLE_ECORRUPT,
        "column name");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"insert\\u0000\",\"key\":[1],"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "unknown op");

    /* nesting: hostile depth is refused before it costs stack */
    static char deep[200100];
    strcpy(deep, "{\"format\":1,\"x\":");
    size_t k = strlen(deep);
    memset(deep + k, '[', 100000);
    memset(deep + k + 100000, ']', 100000);
    strcpy(deep + k + 200000, "}");
    bad(deep, DIMPLE_ECORRUPT, "nested deeper than 32 levels");
    /* exactly over the limit: 33 containers in all */
    strcpy(deep, "{\"x\":");
    k = strlen(deep);
    memset(deep + k, '[', 32);
    memset(deep + k + 32, ']', 32);
    strcpy(deep + k + 64, "}");
    bad(deep, DIMPLE_ECORRUPT, "nested deeper than 32 levels");
    /* 32 in all is fine as JSON (then the batch is not one) */
    strcpy(deep, "{\"x\":");
    k = strlen(deep);
    memset(deep + k, '[', 31);
    memset(deep + k + 31, ']', 31);
    strcpy(deep + k + 62, "}");
    bad(deep, DIMPLE_ECORRUPT, "'format' missing");
}

TEST(error_precedence_and_limits)
{
    /* syntax anywhere comes before a bad change */
    bad(HEAD CH(",\"cols\":{\"a\":true}") "]", DIMPLE_ECORRUPT,
        "not valid JSON");
    bad(HEAD CH(",\"cols\":{\"a\":true}") "],\"x\":[}", DIMPLE_ECORRUPT,
        "not valid JSON");
    /* the batch's members come before its changes, wherever they are */
    bad("{\"changes\":[" CH(",\"cols\":{\"a\":true}") "],\"format\":2," A "}",
        DIMPLE_EFORMAT, "format 2 is newer");
    bad("{\"changes\":[" CH(",\"cols\":{\"a\":true}") "],\"format\":1}",
        DIMPLE_ECORRUPT, "'author' missing");
    bad("{\"format\":1,\"format\":1," A
        ",\"changes\":[" CH(",\"cols\":{}") "]}",
        DIMPLE_ECORRUPT, "duplicate member 'format'");
    bad("{\"format\":1," A "," A ",\"changes\":[" CH(",\"cols\":{}") "]}",
        DIMPLE_ECORRUPT, "duplicate member 'author'");
    bad(HEAD CH(",\"cols\":{}") "],\"changes\":[]}", DIMPLE_ECORRUPT,
        "duplicate member 'changes'");
    bad("{\"format\":1.5," A ",\"changes\":[]}", DIMPLE_ECORRUPT, "'format'");
    bad("{\"format\":0," A ",\"changes\":[]}", DIMPLE_ECORRUPT, "'format'");
    bad("{\"format\":1,\"author\":\"0190F5C2-0000-7000-8000-00000000A11C\","
        "\"changes\":[]}",
        DIMPLE_ECORRUPT, "'author' missing or not a UUID");
    /* the first bad change is the one named */
    bad(HEAD CH(",\"cols\":{\"a\":true}") ",{" ID2 ",\"table\":\"t\","
                                          "\"op\":\"nope\",\"key\":[1]}]}",
        DIMPLE_ECORRUPT, "column 'a': wrong type");
    bad(HEAD CH(",\"cols\":{\"a\":[1],\"x\":}") "]}", DIMPLE_ECORRUPT,
        "not valid JSON");
    /* a change's members in any order; the old checks' order within it */
    bad(HEAD "{\"cols\":{\"a\":true},\"op\":\"nope\",\"table\":\"t\","
             "\"key\":[1]," ID1 "}]}",
        DIMPLE_ECORRUPT, "unknown op 'nope'");
    bad(HEAD "{\"cols\":{},\"op\":\"insert\",\"table\":\"t\"," ID1
             ",\"key\":[1,true]}]}",
        DIMPLE_ECORRUPT, "key[1]: wrong type");
    bad(HEAD "{\"key\":[1],\"table\":\"t\",\"op\":\"insert\",\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "changes[0]: 'id' missing");
    bad(HEAD "{" ID1 ",\"op\":\"insert\",\"key\":[1],\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'table' missing");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"key\":[1],\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'op' missing");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"insert\",\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'key' missing");
    bad(HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"insert\",\"key\":{\"a\":1},"
             "\"cols\":{}}]}",
        DIMPLE_ECORRUPT, "'key' missing or not a non-empty array");
    bad(HEAD CH(",\"cols\":[]") "]}", DIMPLE_ECORRUPT,
        "'cols' missing or not an object");
    bad(HEAD CH(",\"cols\":{},\"cols\":{}") "]}", DIMPLE_ECORRUPT,
        "duplicate member 'cols'");
    bad(HEAD CH(",\"cols\":{\"a\":{}}") "]}", DIMPLE_ECORRUPT,
        "one string member");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$int\":\"1\",\"$int\":\"1\"}}") "]}",
        DIMPLE_ECORRUPT, "one string member");
    bad(HEAD CH(",\"cols\":{\"a\":{\"$text\":\"YQ\"}}") "]}", DIMPLE_ECORRUPT,
        "$text is not base64");
    bad(HEAD CH(",\"cols\":{\"a\":-0.0,\"b\":1e300}") "]}", DIMPLE_ECORRUPT,
        "column 'b': a bare number");
    bad(HEAD CH(",\"cols\":{\"a\":-9007199254740992}") "]}", DIMPLE_ECORRUPT,
        "bare number");

    /* duplicate columns: few (pairwise) and many (sorted) */
    bad(HEAD CH(",\"cols\":{\"a\":1,\"b\":2,\"c\":3,\"b\":4}") "]}",
        DIMPLE_ECORRUPT, "a column appears twice");
    bad(HEAD CH(",\"cols\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,"
                "\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"e\":11}") "]}",
        DIMPLE_ECORRUPT, "a column appears twice");

    /* limits: key values, columns, changes */
    size_t cap = 12 * 1000 * 1000;
    char *s = malloc(cap);
    size_t k = (size_t)sprintf(s, HEAD "{" ID1 ",\"table\":\"t\",\"op\":"
                                       "\"insert\",\"cols\":{},\"key\":[0");
    for (int i = 1; i < 65; i++)
        k += (size_t)sprintf(s + k, ",%d", i);
    strcpy(s + k, "]}]}");
    bad(s, DIMPLE_ECORRUPT, "more than 64 key values");
    k = (size_t)sprintf(s, HEAD "{" ID1 ",\"table\":\"t\",\"op\":"
                                "\"insert\",\"key\":[1],\"cols\":{");
    for (int i = 0; i <= DIMPLE_BATCH_MAX_COLS; i++)
        k += (size_t)sprintf(s + k, "%s\"c%d\":%d", i ? "," : "", i, i);
    strcpy(s + k, "}}]}");
    bad(s, DIMPLE_ECORRUPT, "more than 32767 columns");
    /* 32767 distinct columns decode (and the sort finds no duplicate) */
    k = (size_t)sprintf(s, HEAD "{" ID1 ",\"table\":\"t\",\"op\":"
                                "\"insert\",\"key\":[1],\"cols\":{");
    for (int i = 0; i < DIMPLE_BATCH_MAX_COLS; i++)
        k += (size_t)sprintf(s + k, "%s\"c%d\":%d", i ? "," : "", i, i);
    strcpy(s + k, "}}]}");
    dimple_batch b;
    CHECK_RC(good(s, strlen(s), &b), DIMPLE_OK);
    CHECK(b.n == 1 && b.changes[0].n_cols == DIMPLE_BATCH_MAX_COLS &&
          strcmp(b.changes[0].col_names[32766], "c32766") == 0 &&
          b.changes[0].cols[32766].i == 32766);
    dimple_batch__free(&b);
    /* 100 001 changes: refused as too many, even with a bad one earlier */
    k = (size_t)sprintf(s, HEAD);
    for (unsigned i = 1; i <= DIMPLE_BATCH_MAX_CHANGES + 1; i++) {
        uint8_t id[16];
        char t[37];
        make_id(id, i);
        dimple_uuid__format(id, t);
        k += (size_t)sprintf(s + k,
                             "%s{\"id\":\"%s\",\"table\":\"t\",\"op\":"
                             "\"delete\",\"key\":[%s]}",
                             i > 1 ? "," : "", t, i == 5 ? "true" : "1");
    }
    strcpy(s + k, "]}");
    bad(s, DIMPLE_ECORRUPT, "more than 100000 changes");
    /* and exactly 100 000 (the bad one fixed) decode */
    s[k - 1 - strlen("]}")] = '\0'; /* drop the last change: find its start */
    char *last = strrchr(s, '{');
    strcpy(last - 1, "]}");
    char *t = strstr(s, "[true]");
    memcpy(t, "[1234]", 6);
    CHECK_RC(good(s, strlen(s), &b), DIMPLE_OK);
    CHECK(b.n == DIMPLE_BATCH_MAX_CHANGES);
    CHECK(b.n == DIMPLE_BATCH_MAX_CHANGES &&
          b.changes[DIMPLE_BATCH_MAX_CHANGES - 1].key[0].i == 1 &&
          b.changes[4].key[0].i == 1234);
    dimple_batch__free(&b);
    free(s);
}

TEST(oversized_and_truncated)
{
    /* an oversized value: a base64 string whose decoded size is too big */
    size_t big = DIMPLE_BATCH_MAX_VALUE / 3 * 4 + 8;
    const char *pre = HEAD "{" ID1 ",\"table\":\"t\",\"op\":\"insert\","
                           "\"key\":[1],\"cols\":{\"a\":{\"$blob\":\"";
    const char *post = "\"}}}]}";
    char *s = malloc(strlen(pre) + big + strlen(post) + 1);
    strcpy(s, pre);
    memset(s + strlen(pre), 'A', big);
    strcpy(s + strlen(pre) + big, post);
    bad(s, DIMPLE_ECORRUPT, "value over");
    free(s);

    /* every truncation of a real batch fails (the last byte is a newline) */
    dimple_change c;
    dimple_value k = vt("key", 3), v[3] = {vi(1), vr(2.5), vb("\x01\x02", 2)};
    const char *cn[] = {"a", "b", "c"};
    memset(&c, 0, sizeof c);
    memcpy(c.author, AUTHOR, 16);
    c.table = "t";
    c.op = DIMPLE_OP_INSERT;
    c.n_key = 1;
    c.key = &k;
    c.n_cols = 3;
    c.col_names = cn;
    c.cols = v;
    dimple_batch_enc e;
    dimple_batch__enc_init(&e, AUTHOR, 0, 0);
    for (unsigned i = 1; i <= 3; i++) {
        make_id(c.id, i);
        CHECK_RC(dimple_batch__enc_add(&e, &c), DIMPLE_OK);
    }
    CHECK_RC(dimple_batch__enc_finish(&e), DIMPLE_OK);
    int all_refused = 1;
    for (size_t cut = 0; cut + 1 < e.n; cut++) {
        dimple_batch b;
        char err[512];
        int rc = dimple_batch__decode(&b, "x", e.p, cut, AUTHOR, NULL, err,
                                      sizeof err);
        if (rc != DIMPLE_ECORRUPT) {
            printf("# cut at %zu decoded (rc %d)\n", cut, rc);
            all_refused = 0;
            dimple_batch__free(&b);
        }
    }
    CHECK(all_refused);
    dimple_batch__enc_free(&e);
}

TEST(names_and_marker)
{
    char key[128], m[256], err[512];
    uint8_t id[16], got[16], store[16];
    int enc = -1;
    make_id(id, 77);
    dimple_batch__key(key, sizeof key, AUTHOR, id, 1);
    CHECK_STR(key, "log/0190f5c2-0000-7000-8000-00000000a11c/"
                   "01900000-0010-7000-8000-00000000004d.json.age");
    CHECK(dimple_batch__parse_name(strrchr(key, '/') + 1, got, &enc) == 0);
    CHECK(enc == 1 && memcmp(got, id, 16) == 0);
    CHECK(dimple_batch__parse_name("01900000-0010-7000-8000-00000000004d.json",
                                   got, &enc) == 0 &&
          enc == 0);
    CHECK(dimple_batch__parse_name("01900000-0010-7000-8000-00000000004d.txt",
                                   got, &enc) == -1);
    CHECK(dimple_batch__parse_name("x.json", got, &enc) == -1);
    CHECK(dimple_batch__parse_name("01900000-0010-7000-8000-00000000004D.json",
                                   got, &enc) == -1);

    CHECK(dimple_batch__marker(m, sizeof m, AUTHOR) > 0);
    CHECK_RC(dimple_batch__marker_check(m, strlen(m), store, err, sizeof err),
             DIMPLE_OK);
    CHECK(memcmp(store, AUTHOR, 16) == 0);
    const char *newer = "{\"format\":\"dimple\",\"major\":2,\"minor\":0,"
                        "\"store\":\"0190f5c2-0000-7000-8000-00000000a11c\"}";
    CHECK_RC(dimple_batch__marker_check(newer, strlen(newer), store, err,
                                        sizeof err),
             DIMPLE_EFORMAT);
    CHECK_CONTAINS(err, "store format 2.0 is newer");
    const char *minor = "{\"format\":\"dimple\",\"major\":1,\"minor\":9,"
                        "\"store\":\"0190f5c2-0000-7000-8000-00000000a11c\","
                        "\"extra\":true}";
    CHECK_RC(dimple_batch__marker_check(minor, strlen(minor), store, err,
                                        sizeof err),
             DIMPLE_OK);
    CHECK_RC(dimple_batch__marker_check("{}", 2, store, err, sizeof err),
             DIMPLE_ECORRUPT);
    CHECK_CONTAINS(err, "dimple.json");
}

/* One rule for UUID text (RFC 9562): written lowercase; read
 * case-insensitively from people (dimple_uuid__parse), and in the remote
 * format only in that canonical form (DIMPLE_UUID_CANONICAL), which must
 * accept exactly the texts format writes. The batch reader once had its own
 * parser that disagreed with clock.c's on uppercase. */
TEST(uuid_text_has_one_rule)
{
    static const char *const texts[] = {
        "0190f5c2-7a8b-7c3d-8e9f-0123456789ab",
        "0190F5C2-7A8B-7C3D-8E9F-0123456789AB",
        "0190f5c2-7a8b-7c3d-8e9f-0123456789aB",
        "ABCDEFab-cdef-7000-8000-000000000000",
        "0190f5c2-7a8b-4c3d-8e9f-0123456789ab", /* v4 */
        "0190f5c2-7a8b-7c3d-ce9f-0123456789ab", /* variant 11 */
        "0190f5c2x7a8b-7c3d-8e9f-0123456789ab",
        "0190f5c2-7a8b-7c3d-8e9f-0123456789a",
        "0190f5c2-7a8b-7c3d-8e9f-0123456789abc",
        "0190f5g2-7a8b-7c3d-8e9f-0123456789ab",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        const char *t = texts[i];
        uint8_t loose[16], strict[16];
        char back[37];
        int lrc = dimple_uuid__parse(t, loose);
        int src =
            dimple_uuid__parse_n(t, strlen(t), strict, DIMPLE_UUID_CANONICAL);
        if (lrc == DIMPLE_OK)
            dimple_uuid__format(loose, back);
        /* strict accepts t exactly when t is what format writes */
        bool canonical = lrc == DIMPLE_OK && strcmp(back, t) == 0;
        if (!test_check_((src == DIMPLE_OK) == canonical, t, __FILE__,
                         __LINE__))
            printf("#   loose %d strict %d\n", lrc, src);
        if (src == DIMPLE_OK)
            CHECK(memcmp(loose, strict, 16) == 0);
        /* the version check only narrows */
        int v7 = dimple_uuid__parse_n(t, strlen(t), strict,
                                      DIMPLE_UUID_CANONICAL | DIMPLE_UUID_V7);
        CHECK(v7 != DIMPLE_OK || src == DIMPLE_OK);
    }
    uint8_t up[16], low[16];
    CHECK_RC(dimple_uuid__parse("0190F5C2-7A8B-7C3D-8E9F-0123456789AB", up),
             DIMPLE_OK);
    CHECK_RC(dimple_uuid__parse("0190f5c2-7a8b-7c3d-8e9f-0123456789ab", low),
             DIMPLE_OK);
    CHECK(memcmp(up, low, 16) == 0);

    /* the batch reader applies the canonical rule to ids and the author */
    bad(HEAD "{\"id\":\"01900000-0010-7000-8000-00000000000A\","
             "\"table\":\"t\",\"op\":\"insert\",\"key\":[1]}]}",
        DIMPLE_ECORRUPT, "not a UUIDv7");
    bad("{\"format\":1,\"author\":\"0190F5C2-0000-7000-8000-00000000A11C\","
        "\"changes\":[" CH("") "]}",
        DIMPLE_ECORRUPT, "not a UUID");
}

int main(void)
{
    RUN(values_round_trip_exactly);
    RUN(delete_and_many_changes);
    RUN(limits_split_batches);
    RUN(corrupt_batches_are_refused);
    RUN(escapes_whitespace_and_unknown_members);
    RUN(strings_at_every_offset);
    RUN(json_syntax_is_strict);
    RUN(error_precedence_and_limits);
    RUN(oversized_and_truncated);
    RUN(names_and_marker);
    RUN(uuid_text_has_one_rule);
    return test_done();
}
