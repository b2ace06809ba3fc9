/*
 * test_json.c — the JSON encoding of values (json.c) through
 * dimple_json_query and dimple_json_row: 64-bit integers, reals that stay
 * reals, text escapes and UTF-8, blobs, NULL; base64.
 */
#include "../test.h"
#include "json.h"
#include <dimple.h>
#include "util.h"

#include <math.h>

static dimple *db;

static char *q(const char *sql, const dimple_value *p, size_t n)
{
    static char *last;
    dimple_free(last);
    last = NULL;
    if (dimple_json_query(&last, db, sql, p, n) < 0) {
        printf("# %s\n", dimple_errmsg(db));
        return NULL;
    }
    return last;
}

TEST(integers)
{
    CHECK_STR(q("SELECT 9223372036854775807 AS max, "
                "-9223372036854775807 - 1 AS min",
                NULL, 0),
              "[{\"max\":\"9223372036854775807\","
              "\"min\":\"-9223372036854775808\"}]");
    CHECK_STR(q("SELECT 9007199254740992 AS a, 9007199254740993 AS b, "
                "-9007199254740992 AS c, -9007199254740993 AS d, 0 AS e",
                NULL, 0),
              "[{\"a\":9007199254740992,\"b\":\"9007199254740993\","
              "\"c\":-9007199254740992,\"d\":\"-9007199254740993\","
              "\"e\":0}]");
}

TEST(reals_stay_reals)
{
    /* Bound, not SQL literals: SQLite's own text-to-real conversion uses
     * long double, which valgrind emulates with less precision. */
    dimple_value p[8] = {
        dimple_value_real(1.0),      dimple_value_real(0.1),
        dimple_value_real(-0.0),     dimple_value_real(1e300),
        dimple_value_real(2.5e-300), dimple_value_real(123456789012345680.0),
        dimple_value_real(HUGE_VAL), dimple_value_real(-HUGE_VAL)};
    CHECK_STR(q("SELECT ?1 AS a, ?2 AS b, ?3 AS c, ?4 AS d, ?5 AS e, "
                "?6 AS f, ?7 AS g, ?8 AS h",
                p, 8),
              "[{\"a\":1.0,\"b\":0.1,\"c\":-0.0,"
              "\"d\":1e+300,\"e\":2.5e-300,"
              "\"f\":1.2345678901234568e+17,\"g\":1e999,\"h\":-1e999}]");
    {
        /* every printed real reads back bit-exact */
        double vals[] = {0.1, 1.0 / 3, 1e-310, 6.02214076e23, -1.5, 2.0};
        for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
            char buf[32];
            dimple_json__real(vals[i], buf);
            CHECK(strtod(buf, NULL) == vals[i]);
            CHECK(strpbrk(buf, ".e") != NULL);
        }
    }
}

TEST(text_and_null)
{
    dimple_value p[2] = {dimple_value_text("tab\there \"q\" back\\slash\n\x01"),
                         dimple_value_null()};
    CHECK_STR(q("SELECT ?1 AS t, ?2 AS n", p, 2),
              "[{\"t\":\"tab\\there \\\"q\\\" back\\\\slash\\n\\u0001\","
              "\"n\":null}]");
    /* UTF-8 passes through; invalid bytes become U+FFFD */
    p[0] = dimple_value_text("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK_STR(q("SELECT ?1 AS u", p, 1),
              "[{\"u\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}]");
    p[0] = dimple_value_text("a\xff"
                             "b\xc3");
    CHECK_STR(q("SELECT ?1 AS bad", p, 1), "[{\"bad\":\"a\xef\xbf\xbd"
                                           "b\xef\xbf\xbd\"}]");
    /* column names are escaped too, order kept */
    CHECK_STR(q("SELECT 1 AS \"z\"\"q\", 2 AS a", NULL, 0),
              "[{\"z\\\"q\":1,\"a\":2}]");
}

TEST(blobs)
{
    dimple_value p[1] = {dimple_value_blob("\x00\x01\xfe\xff", 4)};
    CHECK_STR(q("SELECT ?1 AS b, x'' AS e, x'666f6f' AS f", p, 1),
              "[{\"b\":{\"$blob\":\"AAH+/w==\"},\"e\":{\"$blob\":\"\"},"
              "\"f\":{\"$blob\":\"Zm9v\"}}]");
}

TEST(many_rows_and_empty)
{
    CHECK_STR(q("SELECT 1 AS x WHERE 0", NULL, 0), "[]");
    CHECK_STR(q("SELECT 1 AS x UNION ALL SELECT 2", NULL, 0),
              "[{\"x\":1},{\"x\":2}]");
    {
        char *out = (char *)1;
        CHECK_RC(dimple_json_query(&out, db, "SELECT 1; SELECT 2", NULL, 0),
                 DIMPLE_EINVAL);
        CHECK(out == NULL);
        CHECK_RC(dimple_json_query(&out, db, "SELEKT", NULL, 0), DIMPLE_ESQL);
        CHECK(out == NULL);
    }
}

TEST(row_json)
{
    const char *names[] = {"i", "r", "t", "b", "n"};
    dimple_value v[5] = {dimple_value_int(-3), dimple_value_real(2.0),
                         dimple_value_text("x"), dimple_value_blob("hi", 2),
                         dimple_value_null()};
    char *s = NULL;
    CHECK_RC(dimple_json_row(&s, 5, names, v), DIMPLE_OK);
    CHECK_STR(s, "{\"i\":-3,\"r\":2.0,\"t\":\"x\",\"b\":{\"$blob\":\"aGk=\"},"
                 "\"n\":null}");
    dimple_free(s);
    CHECK_RC(dimple_json_row(&s, 0, names, v), DIMPLE_OK);
    CHECK_STR(s, "{}");
    dimple_free(s);
}

TEST(base64_round_trip)
{
    unsigned char data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (unsigned char)i;
    for (size_t n = 0; n < 8; n++) {
        dimple_buf b = {0};
        unsigned char *back = NULL;
        size_t m = 99;
        CHECK_RC(dimple_base64__encode(&b, data + 250 - n, n), DIMPLE_OK);
        CHECK_RC(dimple_base64__decode((char *)b.p, b.n, &back, &m), DIMPLE_OK);
        CHECK(m == n && (n == 0 || memcmp(back, data + 250 - n, n) == 0));
        free(back);
        dimple_buf__free(&b);
    }
    {
        unsigned char *back = NULL;
        size_t m;
        CHECK_RC(dimple_base64__decode("abc", 3, &back, &m), DIMPLE_ECORRUPT);
        CHECK_RC(dimple_base64__decode("ab!d", 4, &back, &m), DIMPLE_ECORRUPT);
        CHECK_RC(dimple_base64__decode("a=bc", 4, &back, &m), DIMPLE_ECORRUPT);
        CHECK(back == NULL);
    }
}

int main(void)
{
    CHECK_RC(dimple_open_path(&db, ":memory:", NULL), DIMPLE_OK);
    RUN(integers);
    RUN(reals_stay_reals);
    RUN(text_and_null);
    RUN(blobs);
    RUN(many_rows_and_empty);
    RUN(row_json);
    RUN(base64_round_trip);
    q(NULL, NULL, 0); /* frees the last result */
    dimple_close(db);
    return test_done();
}
