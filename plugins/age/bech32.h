/*
 * bech32.h — BIP 173 Bech32, as age uses it: no 90-character limit, the
 * checksum is computed over the lowercase form, and a string must be all
 * lowercase or all uppercase.
 */
#ifndef AGE_BECH32_H
#define AGE_BECH32_H

#include <stddef.h>

/* Encode data under hrp into out (cap bytes, NUL-terminated). The case of
 * the output follows hrp: an uppercase hrp gives an uppercase string.
 * Returns 0, or -1 if out is too small or hrp is invalid. */
int age_bech32_encode(const char *hrp, const unsigned char *data, size_t len,
                      char *out, size_t cap);
/* Decode s. hrp receives the human-readable part in the string's own case
 * (hrp_cap bytes); data receives up to data_cap bytes. Returns 0, or -1 on
 * any error (mixed case, bad checksum, bad padding, too long). */
int age_bech32_decode(const char *s, char *hrp, size_t hrp_cap,
                      unsigned char *data, size_t data_cap, size_t *len);

#endif
