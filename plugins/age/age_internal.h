/*
 * age_internal.h — the age v1 engine behind dimple-age.so (C2SP age spec).
 *
 * Layers: a buffered reader over a dimple_source; the armor decoder (itself
 * a dimple_source); the header parser/serializer with its MAC; recipient
 * stanzas (X25519, scrypt); the STREAM payload. age.c puts them together
 * and adds configuration and the key store. Tests and the benchmark link
 * these functions directly (static library age_core).
 */
#ifndef AGE_INTERNAL_H
#define AGE_INTERNAL_H

#include <dimple/plugin.h>

#include <stddef.h>
#include <stdint.h>

#define AGE_INTRO "age-encryption.org/v1"
#define AGE_CHUNK 65536u
#define AGE_TAG 16u
#define AGE_FILE_KEY 16u
#define AGE_NONCE 16u
#define AGE_MAX_LINE 65536u       /* one header line */
#define AGE_MAX_HEADER (1u << 20) /* a whole header */
#define AGE_MAX_LOGN 22           /* decrypt: what age accepts */
#define AGE_DEFAULT_LOGN 18

/* Failure classes, in the order the spec checks them (and the testkit's
 * "expect" values). */
enum {
    AGE_E_NONE = 0,
    AGE_E_ARMOR,
    AGE_E_HEADER,
    AGE_E_NOMATCH,
    AGE_E_HMAC,
    AGE_E_PAYLOAD,
    AGE_E_OTHER /* I/O from the source or sink, memory, OpenSSL */
};

typedef struct age_err {
    int cls;       /* AGE_E_* */
    int code;      /* the DIMPLE_E* code returned */
    char msg[256]; /* never holds a secret */
} age_err;

/* Record a failure (first one wins) and return code. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int age_fail(age_err *e, int cls, int code, const char *fmt, ...);
const char *age_class_name(int cls);

/* ------------------------------------------------------------- reader */
typedef struct age_reader {
    const dimple_source *src;
    unsigned char *buf;
    size_t cap, pos, len;
    int eof;
    int rc; /* negative code the source returned, sticky */
} age_reader;

int age_reader_init(age_reader *r, const dimple_source *src, size_t cap);
void age_reader_free(age_reader *r);
/* Buffer up to n bytes (n <= cap) and point *p at them; returns how many
 * are available (< n only at the end), or the source's negative code. */
ptrdiff_t age_reader_peek(age_reader *r, size_t n, const unsigned char **p);
/* Read exactly n bytes unless the end comes first; returns the count or a
 * negative code. */
ptrdiff_t age_reader_read(age_reader *r, void *p, size_t n);
/* Read one line including its '\n' into line (at most cap bytes). Returns
 * its length; the line lacks '\n' only at the end of input; -1 if longer
 * than cap; or the source's negative code. */
ptrdiff_t age_reader_line(age_reader *r, char *line, size_t cap);

/* A dimple_source over a memory buffer. */
typedef struct age_mem_source {
    const unsigned char *p;
    size_t n, pos;
} age_mem_source;
dimple_source age_mem_source_make(age_mem_source *m, const void *p, size_t n);

/* A growable buffer and a sink that appends to it (limit: 0 = none). */
typedef struct age_buf {
    unsigned char *p;
    size_t n, cap, limit;
} age_buf;
int age_buf_add(age_buf *b, const void *p, size_t n);
void age_buf_free(age_buf *b);
dimple_sink age_buf_sink(age_buf *b);

/* ------------------------------------------------------------ crypto */
int age_hkdf(const unsigned char *ikm, size_t ikm_len,
             const unsigned char *salt, size_t salt_len, const char *info,
             unsigned char out[32]);
/* ChaCha20-Poly1305 with a zero nonce, for 16-byte file keys. */
int age_aead_seal_key(const unsigned char key[32],
                      const unsigned char fk[AGE_FILE_KEY],
                      unsigned char body[AGE_FILE_KEY + AGE_TAG]);
int age_aead_open_key(const unsigned char key[32],
                      const unsigned char body[AGE_FILE_KEY + AGE_TAG],
                      unsigned char fk[AGE_FILE_KEY]); /* 0 ok, -1 bad tag */
int age_random(void *p, size_t n);
void age_wipe(void *p, size_t n);

/* ------------------------------------------------------------ header */
typedef struct age_stanza {
    char *type;
    char **args; /* after the type */
    size_t nargs;
    unsigned char *body;
    size_t body_len;
} age_stanza;

typedef struct age_header {
    age_stanza *st;
    size_t n;
    unsigned char mac[32];
    unsigned char *raw; /* header bytes covered by the MAC ("...---") */
    size_t raw_len;
} age_header;

/* Parse a header from r (leaves r at the payload nonce). Failures are
 * AGE_E_HEADER (or AGE_E_OTHER for I/O). */
int age_header_parse(age_reader *r, age_header *h, age_err *e);
void age_header_free(age_header *h);
/* HMAC-SHA256 under HKDF(file key, "header") over raw. */
int age_header_mac(const unsigned char *raw, size_t raw_len,
                   const unsigned char fk[AGE_FILE_KEY], unsigned char mac[32]);
/* Append a stanza's text form to b. */
int age_stanza_write(age_buf *b, const age_stanza *s);
void age_stanza_free(age_stanza *s);

/* -------------------------------------------------------- recipients */
enum { AGE_ID_X25519 = 1, AGE_ID_SCRYPT = 2 };

typedef struct age_identity {
    int type;
    unsigned char sk[32], pk[32]; /* X25519 */
    const char *pass;             /* scrypt (borrowed) */
    size_t pass_len;
} age_identity;

typedef struct age_recipient {
    int type;
    unsigned char pk[32]; /* X25519 */
    const char *pass;     /* scrypt (borrowed) */
    size_t pass_len;
    int logn;
} age_recipient;

int age_x25519_keygen(unsigned char sk[32], unsigned char pk[32]);
int age_x25519_public(const unsigned char sk[32], unsigned char pk[32]);
int age_x25519_wrap(const unsigned char pk[32],
                    const unsigned char fk[AGE_FILE_KEY], age_stanza *out);
/* 0: unwrapped; 1: not for this identity; negative: malformed (e set). */
int age_x25519_unwrap(const age_stanza *s, const age_identity *id,
                      unsigned char fk[AGE_FILE_KEY], age_err *e);

int age_scrypt_wrap(const char *pass, size_t pass_len, int logn,
                    const unsigned char fk[AGE_FILE_KEY], age_stanza *out);
int age_scrypt_unwrap(const age_stanza *s, const age_identity *id,
                      unsigned char fk[AGE_FILE_KEY], age_err *e);
/* scrypt derivations made by this process (for tests and benchmarks). */
uint64_t age_scrypt_count(void);

/* Bech32 key text. out must hold 128 bytes. */
int age_recipient_format(const unsigned char pk[32], char *out);
int age_identity_format(const unsigned char sk[32], char *out);
int age_recipient_parse(const char *s, unsigned char pk[32]);
int age_identity_parse(const char *s, unsigned char sk[32]);

/* ------------------------------------------------------------ stream */
int age_stream_encrypt(age_reader *in, const unsigned char key[32],
                       const dimple_sink *out, age_err *e);
int age_stream_decrypt(age_reader *in, const unsigned char key[32],
                       const dimple_sink *out, age_err *e);

/* ------------------------------------------------------------- armor */
#define AGE_ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define AGE_ARMOR_END "-----END AGE ENCRYPTED FILE-----"
#define AGE_ARMOR_MAX_WS 1024

typedef struct age_armor_dec {
    age_reader *in;
    int started, done;
    unsigned char out[48];
    size_t opos, olen;
    age_err *e; /* where an armor failure is recorded */
} age_armor_dec;
/* A source that yields the decoded bytes of the armored stream in. */
dimple_source age_armor_source(age_armor_dec *d, age_reader *in, age_err *e);

typedef struct age_armor_enc {
    const dimple_sink *out;
    unsigned char buf[48];
    size_t n;
    int started;
} age_armor_enc;
/* A sink that armors what it is given into out; call age_armor_finish. */
dimple_sink age_armor_sink(age_armor_enc *a, const dimple_sink *out);
int age_armor_finish(age_armor_enc *a);

/* ---------------------------------------------------------- top level */
/* Identities to try; when none matches, more() (optional) may extend the
 * list (return 1 to retry, 0 to give up, negative on error). */
typedef struct age_keyring {
    const age_identity *ids;
    size_t n;
    int (*more)(struct age_keyring *kr, age_err *e);
    void *ctx;
} age_keyring;

enum { AGE_ARMOR_AUTO = -1, AGE_ARMOR_OFF = 0, AGE_ARMOR_ON = 1 };

int age_encrypt(const dimple_source *in, const dimple_sink *out, int armor,
                const age_recipient *rs, size_t n, age_err *e);
int age_decrypt(const dimple_source *in, const dimple_sink *out, int armor,
                age_keyring *kr, age_err *e);
/* The header step alone (fuzzing, tests): parse and unwrap the file key. */
int age_decrypt_header(age_reader *r, age_keyring *kr,
                       unsigned char fk[AGE_FILE_KEY], age_err *e);

#endif
