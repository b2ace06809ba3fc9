/*
 * age_header.c — parse and serialize the age v1 text header, and its MAC.
 *
 * The parser follows the spec (and age's Go reference) line by line:
 * version line, stanzas "-> TYPE ARG..." with canonical unpadded base64
 * bodies wrapped at 64 columns (the last line shorter, possibly empty), then
 * "--- " and the 43-char MAC. No sscanf: arguments split on single spaces.
 */
#include "age_header.h"

#include "b64.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdlib.h>

#define BODY_COLS 64
#define BODY_BYTES 48

static int hdr_fail(age_err *e, const char *what)
{
    return age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                    "malformed age header: %s", what);
}

void age_stanza_free(age_stanza *s)
{
    free(s->type);
    for (size_t i = 0; i < s->nargs; i++)
        free(s->args[i]);
    free(s->args);
    free(s->body);
    memset(s, 0, sizeof *s);
}

void age_header_free(age_header *h)
{
    for (size_t i = 0; i < h->n; i++)
        age_stanza_free(&h->st[i]);
    free(h->st);
    free(h->raw);
    memset(h, 0, sizeof *h);
}

/* Read one line (with its '\n') into line, appending it to raw. */
static ptrdiff_t next_line(age_reader *r, age_buf *raw, char *line, age_err *e)
{
    ptrdiff_t n = age_reader_line(r, line, AGE_MAX_LINE);
    if (n == -1)
        return hdr_fail(e, "line too long");
    if (n < 0)
        return age_fail(e, AGE_E_OTHER, (int)n,
                        "reading the age header failed");
    if (n == 0 || line[n - 1] != '\n')
        return hdr_fail(e, "unexpected end of header");
    if (raw->n + (size_t)n > AGE_MAX_HEADER)
        return hdr_fail(e, "header too large");
    int rc = age_buf_add(raw, line, (size_t)n);
    if (rc)
        return age_fail(e, AGE_E_OTHER, rc, "out of memory");
    return n - 1; /* without '\n' */
}

static int valid_arg(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
            return 0;
    return 1;
}

/* Split "-> a b c" (without '\n') into the stanza's type and args. */
static int parse_stanza_line(const char *line, size_t n, age_stanza *s,
                             age_err *e)
{
    size_t start = 3, count = 0;
    if (n < 3 || memcmp(line, "-> ", 3) != 0)
        return hdr_fail(e, "malformed stanza opening line");
    for (size_t i = 3; i <= n; i++)
        if (i == n || line[i] == ' ')
            count++;
    s->args = calloc(count, sizeof *s->args);
    if (!s->args)
        return age_fail(e, AGE_E_OTHER, DIMPLE_ENOMEM, "out of memory");
    for (size_t i = 3; i <= n; i++) {
        if (i < n && line[i] != ' ')
            continue;
        if (!valid_arg(line + start, i - start))
            return hdr_fail(e, "invalid stanza argument");
        char *a = strndup(line + start, i - start);
        if (!a)
            return age_fail(e, AGE_E_OTHER, DIMPLE_ENOMEM, "out of memory");
        if (!s->type)
            s->type = a;
        else
            s->args[s->nargs++] = a;
        start = i + 1;
    }
    return DIMPLE_OK;
}

int age_header_parse(age_reader *r, age_header *h, age_err *e)
{
    int rc;
    ptrdiff_t n;
    age_buf raw = {0};
    char *line = malloc(AGE_MAX_LINE);

    memset(h, 0, sizeof *h);
    if (!line) {
        rc = age_fail(e, AGE_E_OTHER, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    n = age_reader_line(r, line, AGE_MAX_LINE);
    if (n < -1) {
        rc = age_fail(e, AGE_E_OTHER, (int)n, "reading the age header failed");
        goto out;
    }
    if (n == 0) {
        rc = hdr_fail(e, "empty file");
        goto out;
    }
    if (n != (ptrdiff_t)sizeof AGE_INTRO ||
        memcmp(line, AGE_INTRO "\n", sizeof AGE_INTRO) != 0) {
        rc = age_fail(e, AGE_E_HEADER, DIMPLE_ECORRUPT,
                      "not an age v1 file (no \"" AGE_INTRO "\" line)");
        goto out;
    }
    if ((rc = age_buf_add(&raw, line, (size_t)n))) {
        rc = age_fail(e, AGE_E_OTHER, rc, "out of memory");
        goto out;
    }
    for (;;) {
        n = next_line(r, &raw, line, e);
        if (n < 0) {
            rc = (int)n;
            goto out;
        }
        if (n >= 3 && memcmp(line, "---", 3) == 0) {
            size_t mac_len = 0;
            /* "--- " + 43 chars; the MAC covers the header up to "---". */
            if (n < 4 || line[3] != ' ' ||
                memchr(line + 4, ' ', (size_t)n - 4) ||
                age_b64_decode(line + 4, (size_t)n - 4, h->mac, sizeof h->mac,
                               &mac_len, 0) ||
                mac_len != 32) {
                rc = hdr_fail(e, "malformed closing line");
                goto out;
            }
            h->raw_len = raw.n - ((size_t)n + 1) + 3;
            break;
        }
        if (n < 2 || memcmp(line, "->", 2) != 0) {
            rc = hdr_fail(e, "unexpected line");
            goto out;
        }
        age_stanza *st = realloc(h->st, (h->n + 1) * sizeof *st);
        if (!st) {
            rc = age_fail(e, AGE_E_OTHER, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        h->st = st;
        age_stanza *s = &h->st[h->n++];
        memset(s, 0, sizeof *s);
        if ((rc = parse_stanza_line(line, (size_t)n, s, e)))
            goto out;
        for (;;) {
            unsigned char chunk[BODY_BYTES];
            size_t got = 0;
            n = next_line(r, &raw, line, e);
            if (n < 0) {
                rc = (int)n;
                goto out;
            }
            if (n > BODY_COLS ||
                age_b64_decode(line, (size_t)n, chunk, sizeof chunk, &got, 0)) {
                rc = hdr_fail(e, "malformed stanza body");
                goto out;
            }
            unsigned char *b = realloc(s->body, s->body_len + got + 1);
            if (!b) {
                rc = age_fail(e, AGE_E_OTHER, DIMPLE_ENOMEM, "out of memory");
                goto out;
            }
            s->body = b;
            memcpy(s->body + s->body_len, chunk, got);
            s->body_len += got;
            if (got < BODY_BYTES)
                break;
        }
    }
    h->raw = raw.p; /* ownership moves to h */
    raw.p = NULL;
    rc = DIMPLE_OK;
out:
    free(line);
    free(raw.p);
    if (rc)
        age_header_free(h);
    return rc;
}

int age_header_mac(const unsigned char *raw, size_t raw_len,
                   const unsigned char fk[AGE_FILE_KEY], unsigned char mac[32])
{
    int rc = DIMPLE_ERROR;
    unsigned char key[32];
    size_t out_len = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[2];

    if (!c || age_hkdf(fk, AGE_FILE_KEY, NULL, 0, "header", key))
        goto out;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(c, key, sizeof key, params) != 1 ||
        EVP_MAC_update(c, raw, raw_len) != 1 ||
        EVP_MAC_final(c, mac, &out_len, 32) != 1 || out_len != 32)
        goto out;
    rc = DIMPLE_OK;
out:
    age_wipe(key, sizeof key);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    return rc;
}

int age_stanza_write(age_buf *b, const age_stanza *s)
{
    int rc;
    char line[BODY_COLS + 2];
    if ((rc = age_buf_add(b, "-> ", 3)) ||
        (rc = age_buf_add(b, s->type, strlen(s->type))))
        return rc;
    for (size_t i = 0; i < s->nargs; i++)
        if ((rc = age_buf_add(b, " ", 1)) ||
            (rc = age_buf_add(b, s->args[i], strlen(s->args[i]))))
            return rc;
    if ((rc = age_buf_add(b, "\n", 1)))
        return rc;
    /* Full 64-column lines, then a shorter (possibly empty) last line. */
    for (size_t off = 0;; off += BODY_BYTES) {
        size_t k =
            s->body_len - off < BODY_BYTES ? s->body_len - off : BODY_BYTES;
        age_b64_encode(s->body + off, k, line, 0);
        size_t len = strlen(line);
        line[len++] = '\n';
        if ((rc = age_buf_add(b, line, len)))
            return rc;
        if (k < BODY_BYTES)
            return DIMPLE_OK;
    }
}
