/*
 * fuzz_time.c — libFuzzer target for dimple_time_parse (core/src/history.c):
 * ISO-8601 / RFC 3339 times, dates and UUIDv7 ids from any text. No crash,
 * no undefined behaviour (signed overflow included). A time it accepts
 * that dimple_time_format can write (years 1970-9999) reads back to the
 * same millisecond from the formatted text, and a formatted time is
 * accepted.
 */
#include <dimple.h>
#include <dimple/history.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    int64_t ms = 0, again = 0;
    char out[32];
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* the API takes a C string: a NUL ends it */
    if (dimple_time_parse(&ms, text) == DIMPLE_OK && ms >= 0 &&
        ms < INT64_C(253402300800000)) { /* 10000-01-01 */
        dimple_time_format(out, ms);
        if (dimple_time_parse(&again, out) != DIMPLE_OK || again != ms)
            abort();
    }
    free(text);
    return 0;
}
