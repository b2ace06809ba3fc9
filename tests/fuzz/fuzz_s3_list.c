/*
 * fuzz_s3_list.c — libFuzzer target for the S3 plugin's XML readers
 * (plugins/s3/s3_list.c): a ListObjectsV2 page and an <Error> document,
 * parsed with expat from any bytes. No crash, leak or out-of-bounds
 * access; a page that parses has a string for every key and prefix and
 * no empty continuation token; a failure is DIMPLE_ECORRUPT (or ENOMEM)
 * with a message; an <Error>'s code and message stay inside their
 * buffers.
 */
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_error(void *ctx, int code, const char *msg)
{
    (void)ctx;
    if (code >= 0 || !msg || !*msg)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const dimple_host host = {sizeof host, NULL, on_error,
                                     NULL,        NULL, "storage"};
    s3 s;
    s3_list_page page;
    char code[64], msg[128];
    int rc;

    memset(&s, 0, sizeof s);
    s.host = &host;
    s.endpoint = "http://127.0.0.1:7480";
    s.bucket = "dimple-test";
    memset(&page, 0, sizeof page);
    rc = s3_list_parse(&s, (const char *)data, size, &page);
    if (rc != DIMPLE_OK && rc != DIMPLE_ECORRUPT && rc != DIMPLE_ENOMEM)
        abort();
    if (rc == DIMPLE_OK) {
        for (size_t i = 0; i < page.nkeys; i++)
            if (!page.keys[i])
                abort();
        for (size_t i = 0; i < page.nprefixes; i++)
            if (!page.prefixes[i])
                abort();
        if (page.next_token && !*page.next_token)
            abort(); /* an empty token is no token */
    }
    s3_list_page_free(&page);

    memset(code, 'x', sizeof code);
    memset(msg, 'x', sizeof msg);
    s3_xml_error((const char *)data, size, code, sizeof code, msg, sizeof msg);
    if (!memchr(code, '\0', sizeof code) || !memchr(msg, '\0', sizeof msg))
        abort();
    return 0;
}
