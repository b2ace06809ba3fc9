/*
 * fuzz_age_header.c — libFuzzer target for the age header parser and the
 * decrypt path behind it (dimple-age). Any input: no crash, leak or
 * out-of-bounds access. A header the parser accepts must serialize back to
 * exactly the bytes it was parsed from (the format is canonical), and a
 * full decrypt with a fixed X25519 identity must end in a defined class.
 */
#include "age_internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int discard(void *ctx, const void *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The testkit's identity, so seeds from it reach the payload. */
    static const char id_txt[] =
        "AGE-SECRET-KEY-"
        "1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";
    static age_identity id;
    age_mem_source ms;
    dimple_source src = age_mem_source_make(&ms, data, size);
    age_reader r;
    age_header h;
    age_err e = {0};

    if (id.type == 0) {
        id.type = AGE_ID_X25519;
        if (age_identity_parse(id_txt, id.sk) ||
            age_x25519_public(id.sk, id.pk))
            abort();
    }
    if (age_reader_init(&r, &src, 4096))
        return 0;
    if (age_header_parse(&r, &h, &e) == 0) {
        age_buf b = {0};
        age_buf_add(&b, AGE_INTRO "\n", sizeof AGE_INTRO);
        for (size_t i = 0; i < h.n; i++)
            age_stanza_write(&b, &h.st[i]);
        age_buf_add(&b, "---", 3);
        if (b.n != h.raw_len || memcmp(b.p, h.raw, b.n) != 0)
            abort(); /* accepted a non-canonical header */
        age_buf_free(&b);
        age_header_free(&h);
    } else if (e.cls != AGE_E_HEADER && e.cls != AGE_E_OTHER) {
        abort();
    }
    age_reader_free(&r);

    /* The whole decrypt path (header, unwrap, MAC, STREAM). */
    dimple_sink sink = {discard, NULL};
    age_keyring kr = {&id, 1, NULL, NULL};
    src = age_mem_source_make(&ms, data, size);
    memset(&e, 0, sizeof e);
    int rc = age_decrypt(&src, &sink, AGE_ARMOR_OFF, &kr, &e);
    if (rc != 0 && e.cls == AGE_E_NONE)
        abort();
    return 0;
}
