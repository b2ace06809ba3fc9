/*
 * b64.h — strict, canonical standard base64 (RFC 4648 §4) for age.
 *
 * OpenSSL's decoders are lenient (padding, whitespace, non-canonical trailing
 * bits), which age forbids, so this is a small exact implementation.
 */
#ifndef AGE_B64_H
#define AGE_B64_H

#include <stddef.h>

/* Length of the encoding of n bytes, without the NUL. */
size_t age_b64_enc_len(size_t n, int pad);
/* Encode n bytes to out (age_b64_enc_len + 1 bytes), NUL-terminated. */
void age_b64_encode(const unsigned char *in, size_t n, char *out, int pad);
/* Decode exactly len chars. pad = 0: no '=' allowed (age header);
 * pad = 1: length a multiple of 4 with '=' padding (armor). Rejects any
 * character outside the alphabet and non-zero trailing bits. Returns 0 and
 * sets *outlen, or -1 (invalid, or more than cap bytes). */
int age_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                   size_t *outlen, int pad);

#endif
