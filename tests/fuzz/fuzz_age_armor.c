/*
 * fuzz_age_armor.c — libFuzzer target for the age armor decoder. Any input:
 * no crash, leak or out-of-bounds access; a failure is an armor failure
 * (or I/O); what the decoder accepts re-encodes to input it accepts again
 * with the same bytes. Then the full decrypt with armor auto-detection.
 */
#include "age_internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int decode(const void *p, size_t n, age_buf *out, age_err *e)
{
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, p, n);
    age_reader r;
    age_armor_dec d;
    unsigned char buf[700];
    ptrdiff_t k;
    if (age_reader_init(&r, &src, 4096))
        return -1;
    dimple_source dec = age_armor_source(&d, &r, e);
    while ((k = dec.read(dec.ctx, buf, sizeof buf)) > 0)
        age_buf_add(out, buf, (size_t)k);
    age_reader_free(&r);
    return (int)k;
}

static int discard(void *ctx, const void *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    age_buf plain = {0}, again = {0}, armored = {0};
    age_err e = {0}, e2 = {0};
    int rc = decode(data, size, &plain, &e);
    if (rc < 0 && e.cls != AGE_E_ARMOR && e.cls != AGE_E_OTHER)
        abort();
    if (rc == 0 && plain.n > 0) {
        age_armor_enc ae;
        dimple_sink raw = age_buf_sink(&armored);
        dimple_sink s = age_armor_sink(&ae, &raw);
        if (dimple_sink_write(&s, plain.p, plain.n) || age_armor_finish(&ae))
            abort();
        if (decode(armored.p, armored.n, &again, &e2) != 0 ||
            again.n != plain.n || memcmp(again.p, plain.p, plain.n) != 0)
            abort();
    }
    age_buf_free(&plain);
    age_buf_free(&again);
    age_buf_free(&armored);

    static age_identity id;
    if (id.type == 0) {
        id.type = AGE_ID_X25519;
        age_x25519_keygen(id.sk, id.pk);
    }
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, data, size);
    dimple_sink sink = {discard, NULL};
    age_keyring kr = {&id, 1, NULL, NULL};
    memset(&e, 0, sizeof e);
    if (age_decrypt(&src, &sink, AGE_ARMOR_AUTO, &kr, &e) != 0 &&
        e.cls == AGE_E_NONE)
        abort();
    return 0;
}
