/* base64.h — strict standard base64 (internal; see base64.c). */
#ifndef DIMPLE_BASE64_H
#define DIMPLE_BASE64_H

#include <dimple/common.h>

#include <stddef.h>

/* Writes (n + 2) / 3 * 4 chars to out (no NUL); returns that count. */
size_t dimple_base64__encode_into(char *out, const void *p, size_t n);
/* Decodes s[0..len) into out, which may alias s (the output never gets
 * ahead of the input); returns the length, or -1 if s is not canonical
 * base64 (bad length or character, data after '=', non-zero pad bits). */
ptrdiff_t dimple_base64__decode_into(const char *s, size_t len,
                                     unsigned char *out);
/* Same into a malloc'd buffer (*out, *n bytes): DIMPLE_OK, DIMPLE_ENOMEM
 * or DIMPLE_ECORRUPT. */
int dimple_base64__decode(const char *s, size_t len, unsigned char **out,
                          size_t *n);

#endif /* DIMPLE_BASE64_H */
