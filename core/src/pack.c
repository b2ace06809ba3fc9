/* pack.c — value encoding of the change log (see pack.h). */
#include "pack.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

void dimple_pbuf__reset(dimple_pbuf *b)
{
    b->n = 0;
    b->oom = false;
}

void dimple_pbuf__free(dimple_pbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = false;
}

static bool buf_reserve(dimple_pbuf *b, size_t more)
{
    if (b->oom)
        return false;
    if (more > SIZE_MAX - b->n ||
        dimple__grow((void **)&b->p, &b->cap, b->n + more, 1)) {
        b->oom = true; /* sticky: the caller checks once at the end */
        return false;
    }
    return true;
}

void dimple_pbuf__add(dimple_pbuf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void dimple_pack__varint(dimple_pbuf *b, uint64_t v)
{
    if (!buf_reserve(b, 10))
        return;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        b->p[b->n++] = c | (v ? 0x80 : 0);
    } while (v);
}

static void pack_int(dimple_pbuf *b, int64_t i)
{
    uint8_t tag = DIMPLE_INTEGER;
    dimple_pbuf__add(b, &tag, 1);
    /* zigzag keeps small negative numbers short */
    uint64_t z = ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
    dimple_pack__varint(b, z);
}

static void pack_real(dimple_pbuf *b, double r)
{
    uint8_t out[9];
    uint64_t bits;
    memcpy(&bits, &r, 8);
    out[0] = DIMPLE_REAL;
    for (int k = 0; k < 8; k++)
        out[1 + k] = (uint8_t)(bits >> (56 - 8 * k));
    dimple_pbuf__add(b, out, 9);
}

static void pack_bytes(dimple_pbuf *b, uint8_t tag, const void *p, size_t n)
{
    dimple_pbuf__add(b, &tag, 1);
    dimple_pack__varint(b, n);
    dimple_pbuf__add(b, p, n);
}

void dimple_pack__sqlite(dimple_pbuf *b, sqlite3_value *v)
{
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
        pack_int(b, sqlite3_value_int64(v));
        break;
    case SQLITE_FLOAT:
        pack_real(b, sqlite3_value_double(v));
        break;
    case SQLITE_TEXT: {
        const unsigned char *t = sqlite3_value_text(v);
        pack_bytes(b, DIMPLE_TEXT, t, (size_t)sqlite3_value_bytes(v));
        break;
    }
    case SQLITE_BLOB: {
        const void *p = sqlite3_value_blob(v);
        pack_bytes(b, DIMPLE_BLOB, p, (size_t)sqlite3_value_bytes(v));
        break;
    }
    default: {
        uint8_t tag = 0;
        dimple_pbuf__add(b, &tag, 1);
    }
    }
}

void dimple_pack__value(dimple_pbuf *b, const dimple_value *v)
{
    switch (v->type) {
    case DIMPLE_INTEGER:
        pack_int(b, v->i);
        break;
    case DIMPLE_REAL:
        pack_real(b, v->r);
        break;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        pack_bytes(b, (uint8_t)v->type, v->p, v->n);
        break;
    default: {
        uint8_t tag = 0;
        dimple_pbuf__add(b, &tag, 1);
    }
    }
}

bool dimple_unpack__varint(const uint8_t *p, size_t n, size_t *pos,
                           uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= n)
            return false;
        uint8_t c = p[(*pos)++];
        if (shift == 63 && (c & 0x7e))
            return false; /* would overflow 64 bits */
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

bool dimple_unpack__value(const uint8_t *p, size_t n, size_t *pos,
                          dimple_value *out)
{
    memset(out, 0, sizeof *out);
    if (*pos >= n)
        return false;
    uint8_t tag = p[(*pos)++];
    uint64_t u;
    switch (tag) {
    case 0:
        out->type = DIMPLE_NULL;
        return true;
    case DIMPLE_INTEGER:
        if (!dimple_unpack__varint(p, n, pos, &u))
            return false;
        out->type = DIMPLE_INTEGER;
        out->i = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
        return true;
    case DIMPLE_REAL: {
        if (n - *pos < 8)
            return false;
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++)
            bits = (bits << 8) | p[*pos + (size_t)k];
        *pos += 8;
        out->type = DIMPLE_REAL;
        memcpy(&out->r, &bits, 8);
        return true;
    }
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        if (!dimple_unpack__varint(p, n, pos, &u) || u > n - *pos)
            return false;
        out->type = (dimple_type)tag;
        out->p = p + *pos;
        out->n = (size_t)u;
        *pos += (size_t)u;
        return true;
    default:
        return false;
    }
}

bool dimple_pack__same(sqlite3_value *a, sqlite3_value *b)
{
    int t = sqlite3_value_type(a);
    if (t != sqlite3_value_type(b))
        return false;
    switch (t) {
    case SQLITE_INTEGER:
        return sqlite3_value_int64(a) == sqlite3_value_int64(b);
    case SQLITE_FLOAT: {
        double x = sqlite3_value_double(a), y = sqlite3_value_double(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case SQLITE_TEXT: {
        const void *x = sqlite3_value_text(a);
        int nx = sqlite3_value_bytes(a);
        const void *y = sqlite3_value_text(b);
        int ny = sqlite3_value_bytes(b);
        return nx == ny && (nx == 0 || memcmp(x, y, (size_t)nx) == 0);
    }
    case SQLITE_BLOB: {
        const void *x = sqlite3_value_blob(a);
        int nx = sqlite3_value_bytes(a);
        const void *y = sqlite3_value_blob(b);
        int ny = sqlite3_value_bytes(b);
        return nx == ny && (nx == 0 || memcmp(x, y, (size_t)nx) == 0);
    }
    default:
        return true;
    }
}

bool dimple_value__same(const dimple_value *a, const dimple_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case DIMPLE_INTEGER:
        return a->i == b->i;
    case DIMPLE_REAL:
        return memcmp(&a->r, &b->r, sizeof a->r) == 0;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
    default:
        return true;
    }
}

static int value_bind(sqlite3_stmt *st, int i, const dimple_value *v,
                      void (*keep)(void *))
{
    switch (v->type) {
    case DIMPLE_INTEGER:
        return sqlite3_bind_int64(st, i, v->i);
    case DIMPLE_REAL:
        return sqlite3_bind_double(st, i, v->r);
    case DIMPLE_TEXT:
        return sqlite3_bind_text64(st, i, v->p ? v->p : "", v->n, keep,
                                   SQLITE_UTF8);
    case DIMPLE_BLOB:
        return sqlite3_bind_blob64(st, i, v->p ? v->p : "", v->n, keep);
    default:
        return sqlite3_bind_null(st, i);
    }
}

int dimple_value__bind(sqlite3_stmt *st, int i, const dimple_value *v)
{
    return value_bind(st, i, v, SQLITE_TRANSIENT);
}

int dimple_value__bind_static(sqlite3_stmt *st, int i, const dimple_value *v)
{
    return value_bind(st, i, v, SQLITE_STATIC);
}

void dimple_value__column(sqlite3_stmt *st, int i, dimple_value *out)
{
    memset(out, 0, sizeof *out);
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        out->type = DIMPLE_INTEGER;
        out->i = sqlite3_column_int64(st, i);
        break;
    case SQLITE_FLOAT:
        out->type = DIMPLE_REAL;
        out->r = sqlite3_column_double(st, i);
        break;
    case SQLITE_TEXT:
        out->type = DIMPLE_TEXT;
        out->p = sqlite3_column_text(st, i);
        out->n = (size_t)sqlite3_column_bytes(st, i);
        break;
    case SQLITE_BLOB:
        out->type = DIMPLE_BLOB;
        out->p = sqlite3_column_blob(st, i);
        out->n = (size_t)sqlite3_column_bytes(st, i);
        break;
    default:
        out->type = DIMPLE_NULL;
    }
}
