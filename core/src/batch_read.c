/*
 * batch_read.c — the strict reader of a batch object (remote format v1,
 * docs/FORMAT.md; the writer is batch.c): one pass over the JSON into
 * dimple_change values, and anything a hostile or broken store hands us
 * is an error that names the object and the member, never a crash or a
 * partial batch.
 */
#include "base64.h"
#include "batch.h"
#include "batch_impl.h"
#include "buf.h"
#include "clock.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ the JSON reader
 *
 * Why a hand-written reader (the product rule is to use a library unless
 * measured): cJSON has no streaming API, so decoding a batch meant a tree
 * with one malloc per value and member, walked twice and freed. Measured
 * (release, callgrind, bench/sync_bench 20000 0): decode and free were 34%
 * of the instructions of the whole pull+apply, cJSON_Parse and cJSON_Delete
 * with their malloc/free alone 27%. This reader cut decode and free from
 * 414 to 109 million instructions there (to 12% of pull+apply).
 *
 * It is specialised to the batch object: it reads the input once,
 * unescapes every string into one arena (NUL-terminated, so names and
 * text point into it), and writes the dimple_change array directly.
 *
 * It is strict RFC 8259 (whitespace is space, tab, CR, LF; no BOM; strict
 * number grammar; no raw control characters in strings; \u escapes with
 * surrogate pairs and no lone surrogates; valid UTF-8) and refuses more
 * than cJSON does, never less: nesting deeper than JSON_MAX_DEPTH (hostile
 * input must not use the stack up), numbers of more than 63 characters
 * (cJSON 1.7 cuts them there and then fails), \u0000 in a member name of
 * the batch or a change (cJSON would cut the name at it). The fuzz target
 * (tests/fuzz/fuzz_batch.c) checks that against the cJSON-based decoder
 * this replaced: whatever this accepts, that accepted with equal values.
 *
 * Error precedence is the old decoder's: a syntax error anywhere wins
 * (reported at once); then the batch's own members (format, author,
 * changes, the change count); then the first bad change. A change is read
 * into a small token list (reused, no malloc per change) and then checked
 * in the old order, so its members may come in any order.
 */

#define JSON_MAX_DEPTH 32 /* a batch needs 5 levels */
#define NUM_MAX 63        /* characters in a number (cJSON's buffer) */

enum { J_NULL = 1, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };
#define S_BADUTF8 1u /* a string with bytes that are not UTF-8 */
#define S_NUL 2u     /* a string with \u0000 */

/* One value of the change being read. A container's stored children
 * follow it; next is the index after its stored subtree. */
typedef struct jnode {
    const char *key; /* member name (arena), NULL in an array */
    union {
        char *s;    /* J_STR: in the arena, NUL-terminated */
        double num; /* J_NUM */
    } u;
    uint32_t n;      /* J_STR: bytes; J_ARR/J_OBJ: all members */
    uint32_t keylen; /* bytes of key */
    uint32_t next;
    uint8_t kind, flags, keyflags;
} jnode;

typedef struct jr {
    const unsigned char *base, *p, *end;
    char *arena; /* len + 1 bytes: every string unescaped is shorter than
                  * its quoted source, so the strings of one object fit */
    size_t an;
    jnode *tape;
    size_t nt, tcap;
    dec *d;
} jr;

#define TRUNC "truncated or corrupt"

static int jfail(jr *r, const unsigned char *at, const char *why)
{
    return dimple_batch__dec_err(r->d, DIMPLE_ECORRUPT,
                                 "not valid JSON (%s) near byte %zu", why,
                                 (size_t)(at - r->base));
}

static const unsigned char *jws(const unsigned char *p, const unsigned char *e)
{
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], h;
        if (c >= '0' && c <= '9')
            h = c - '0';
        else if (c >= 'a' && c <= 'f')
            h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            h = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | h;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Bytewise tests on a 64-bit word (exact for "is there any": see "Bit
 * Twiddling Hacks", haszero and hasless). */
#define SWAR_ONES UINT64_C(0x0101010101010101)
#define SWAR_ANY_ZERO(x) (((x)-SWAR_ONES) & ~(x)&SWAR_ONES * 0x80)
#define SWAR_ANY_LT(x, n) (((x)-SWAR_ONES * (n)) & ~(x)&SWAR_ONES * 0x80)

/* The string at r->p (its opening quote), unescaped into the arena. */
static int jstring(jr *r, char **s, size_t *n, unsigned *flags)
{
    const unsigned char *p = r->p + 1, *e = r->end;
    char *o = r->arena + r->an, *start = o;
    unsigned fl = 0;

    for (;;) {
        /* 8 bytes at a time while none is '"', '\\', a control character
         * or non-ASCII (the bulk of a batch: ids, names, plain text) */
        while (e - p >= 8) {
            uint64_t x, m;
            memcpy(&x, p, 8);
            m = SWAR_ANY_LT(x, 0x20) | SWAR_ANY_ZERO(x ^ SWAR_ONES * '"') |
                SWAR_ANY_ZERO(x ^ SWAR_ONES * '\\') | (x & SWAR_ONES * 0x80);
            /* all 8 are copied: the arena is never ahead of the input */
            memcpy(o, p, 8);
            if (m) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) &&                            \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* the lowest flagged byte is exact (flags above it may
                 * be false): the plain run ends there */
                size_t k = (size_t)__builtin_ctzll(m) / 8;
                o += k;
                p += k;
#endif
                break;
            }
            o += 8;
            p += 8;
        }
        while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            *o++ = (char)*p++;
        if (p >= e)
            return jfail(r, e, TRUNC);
        if (*p == '"')
            break;
        if (*p < 0x20)
            return jfail(r, p, "control character in a string");
        if (*p >= 0x80) {
            size_t k = dimple_batch__utf8_one(p, (size_t)(e - p));
            if (!k) {
                fl |= S_BADUTF8;
                k = 1;
            }
            memcpy(o, p, k);
            o += k;
            p += k;
            continue;
        }
        /* a backslash */
        if (e - p < 2)
            return jfail(r, e, TRUNC);
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            *o++ = (char)p[1];
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (e - p < 6)
                return jfail(r, e, TRUNC);
            if (hex4(p + 2, &cp))
                return jfail(r, p, "bad \\u escape");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return jfail(r, p, "lone UTF-16 surrogate");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (e - p < 12 || p[6] != '\\' || p[7] != 'u' ||
                    hex4(p + 8, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return jfail(r, p, "lone UTF-16 surrogate");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            if (cp == 0)
                fl |= S_NUL;
            o = put_utf8(o, cp);
            p += 4;
            break;
        }
        default:
            return jfail(r, p, "bad escape");
        }
        p += 2;
    }
    *o++ = '\0';
    *s = start;
    *n = (size_t)(o - start - 1);
    *flags = fl;
    r->an += (size_t)(o - start);
    r->p = p + 1;
    return 0;
}

/* A number (strict grammar) at r->p; *out its value when want. */
static int jnumber(jr *r, int want, double *out)
{
    const unsigned char *s = r->p, *p = s, *e = r->end;
    uint64_t u = 0;
    int digits = 0, plain = 1;

    if (*p == '-')
        p++;
    if (p >= e || !(*p >= '0' && *p <= '9'))
        return jfail(r, p, TRUNC);
    if (*p == '0') {
        p++;
        digits = 1;
    } else {
        for (; p < e && *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 19)
                u = u * 10 + (unsigned)(*p - '0');
    }
    if (p < e && *p == '.') {
        plain = 0;
        if (++p >= e || !(*p >= '0' && *p <= '9'))
            return jfail(r, p, TRUNC);
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        plain = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !(*p >= '0' && *p <= '9'))
            return jfail(r, p, TRUNC);
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    size_t tl = (size_t)(p - s);
    if (tl > NUM_MAX)
        return jfail(r, s, "a number of more than 63 characters");
    if (want) {
        if (plain && digits <= 15) { /* exact: below 2^53 */
            *out = *s == '-' ? -(double)u : (double)u;
        } else {
            char buf[NUM_MAX + 1], *end;
            memcpy(buf, s, tl);
            buf[tl] = '\0';
            *out = strtod(buf, &end);
            if (end != buf + tl) /* a locale's decimal point: not ours */
                *out = NAN;
        }
    }
    r->p = p;
    return 0;
}

static int tape_push(jr *r, uint32_t *at)
{
    if (dimple__grow((void **)&r->tape, &r->tcap, r->nt + 1, sizeof *r->tape))
        return dimple_batch__dec_err(r->d, DIMPLE_ENOMEM, "out of memory");
    *at = (uint32_t)r->nt++;
    memset(&r->tape[*at], 0, sizeof r->tape[*at]);
    return 0;
}

/* One value at r->p, depth containers deep. store 0: check it only; else
 * append its node (index in *at) and store its first cap members with
 * store - 1 (their members with at most 2 each: enough to tell a typed
 * value). Returns 0 or a negative code with the message set. */
static int jvalue(jr *r, int depth, int store, uint32_t cap, uint32_t *at)
{
    const unsigned char *p = r->p, *e = r->end;
    size_t mark = r->an;
    uint32_t me = 0;
    int rc;

    if (p >= e)
        return jfail(r, e, TRUNC);
    if (store && (rc = tape_push(r, &me)) < 0)
        return rc;
    switch (*p) {
    case '"': {
        char *s;
        size_t n;
        unsigned fl;
        if ((rc = jstring(r, &s, &n, &fl)) < 0)
            return rc;
        if (!store) {
            if (fl & S_BADUTF8)
                return jfail(r, p, "invalid UTF-8 in a string");
            break;
        }
        r->tape[me].kind = J_STR;
        r->tape[me].u.s = s;
        r->tape[me].n = (uint32_t)n;
        r->tape[me].flags = (uint8_t)fl;
        break;
    }
    case '{':
    case '[': {
        const unsigned char close = *p == '{' ? '}' : ']';
        uint32_t count = 0;
        if (depth >= JSON_MAX_DEPTH)
            return dimple_batch__dec_err(
                r->d, DIMPLE_ECORRUPT,
                "not valid JSON (nested deeper than %d levels) "
                "near byte %zu",
                JSON_MAX_DEPTH, (size_t)(p - r->base));
        p = jws(p + 1, e);
        if (p < e && *p == close) {
            p++;
        } else {
            for (;;) {
                int keep = store > 1 && count < cap;
                char *key = NULL;
                size_t keylen = 0, kmark = r->an;
                unsigned kfl = 0;
                uint32_t child = 0;
                if (close == '}') {
                    if (p >= e || *p != '"')
                        return jfail(r, p, TRUNC);
                    r->p = p;
                    if ((rc = jstring(r, &key, &keylen, &kfl)) < 0)
                        return rc;
                    if (!keep && (kfl & S_BADUTF8))
                        return jfail(r, p, "invalid UTF-8 in a string");
                    if (!keep)
                        r->an = kmark;
                    p = jws(r->p, e);
                    if (p >= e || *p != ':')
                        return jfail(r, p, TRUNC);
                    p = jws(p + 1, e);
                }
                r->p = p;
                if ((rc = jvalue(r, depth + 1, keep ? store - 1 : 0, 2,
                                 &child)) < 0)
                    return rc;
                if (keep && key) {
                    r->tape[child].key = key;
                    r->tape[child].keylen = (uint32_t)keylen;
                    r->tape[child].keyflags = (uint8_t)kfl;
                }
                count++;
                p = jws(r->p, e);
                if (p < e && *p == ',') {
                    p = jws(p + 1, e);
                    continue;
                }
                if (p < e && *p == close) {
                    p++;
                    break;
                }
                return jfail(r, p, TRUNC);
            }
        }
        r->p = p;
        if (store) {
            r->tape[me].kind = close == '}' ? J_OBJ : J_ARR;
            r->tape[me].n = count;
        }
        break;
    }
    case 't':
    case 'f':
    case 'n': {
        static const char *const lit[] = {"true", "false", "null"};
        static const uint8_t kind[] = {J_TRUE, J_FALSE, J_NULL};
        int i = *p == 't' ? 0 : *p == 'f' ? 1 : 2;
        size_t l = strlen(lit[i]);
        if ((size_t)(e - p) < l || memcmp(p, lit[i], l) != 0)
            return jfail(r, p, TRUNC);
        r->p = p + l;
        if (store)
            r->tape[me].kind = kind[i];
        break;
    }
    default: {
        double v = 0;
        if (*p != '-' && !(*p >= '0' && *p <= '9'))
            return jfail(r, p, TRUNC);
        if ((rc = jnumber(r, store, &v)) < 0)
            return rc;
        if (store) {
            r->tape[me].kind = J_NUM;
            r->tape[me].u.num = v;
        }
        break;
    }
    }
    if (store) {
        r->tape[me].next = (uint32_t)r->nt;
        *at = me;
    } else {
        r->an = mark; /* checked only: its strings are not kept */
    }
    return 0;
}

/* A member name at r->p of the batch or a change object (known names are
 * compared by length: \u0000 in one is refused, cJSON would cut it), then
 * the colon; r->p ends at the value. The name stays at r->arena + mark. */
static int jmember(jr *r, const char **key, size_t *keylen)
{
    const unsigned char *p = r->p;
    char *s;
    unsigned fl;
    int rc;
    if (p >= r->end || *p != '"')
        return jfail(r, p, TRUNC);
    if ((rc = jstring(r, &s, keylen, &fl)) < 0)
        return rc;
    if (fl & S_BADUTF8)
        return jfail(r, p, "invalid UTF-8 in a string");
    if (fl & S_NUL)
        return jfail(r, p, "\\u0000 in a member name");
    p = jws(r->p, r->end);
    if (p >= r->end || *p != ':')
        return jfail(r, p, TRUNC);
    r->p = jws(p + 1, r->end);
    *key = s;
    return 0;
}

#define KEY_IS(k, n, lit) ((n) == sizeof lit - 1 && memcmp(k, lit, n) == 0)

/* --------------------------------------------------------------- decode */

/* Where a value sits, formatted only when there is an error to report
 * (formatting it for every value cost a tenth of a pull). */
typedef struct where {
    const char *id;  /* the change's id text */
    const char *col; /* column name, or NULL for a key value */
    size_t key;      /* key index when col is NULL */
} where;

static void where_fmt(const where *w, char *out, size_t n)
{
    if (w->col)
        snprintf(out, n, "change %s: column '%.*s'", w->id,
                 DIMPLE_BATCH_MAX_NAME, w->col);
    else
        snprintf(out, n, "change %s: key[%zu]", w->id, w->key);
}

#define VFAIL(...)                                                             \
    do {                                                                       \
        char what[DIMPLE_BATCH_MAX_NAME + 128];                                \
        where_fmt(w, what, sizeof what);                                       \
        return dimple_batch__dec_err(d, DIMPLE_ECORRUPT, __VA_ARGS__);         \
    } while (0)

/* The value at node j (typed values: its one member follows it). */
static int dec_value(dec *d, jnode *j, dimple_value *v, const where *w)
{
    memset(v, 0, sizeof *v);
    switch (j->kind) {
    case J_NULL:
        v->type = DIMPLE_NULL;
        return 0;
    case J_NUM: {
        double x = j->u.num;
        if (!(x > -(double)DIMPLE_BATCH_SAFE_INT &&
              x < (double)DIMPLE_BATCH_SAFE_INT) ||
            x != floor(x))
            VFAIL("%s: a bare number must be an integer below 2^53 "
                  "in magnitude (use $int or $real)",
                  what);
        v->type = DIMPLE_INTEGER;
        v->i = (int64_t)x;
        return 0;
    }
    case J_STR:
        if (j->n > DIMPLE_BATCH_MAX_VALUE)
            VFAIL("%s: value over %zu bytes", what, DIMPLE_BATCH_MAX_VALUE);
        if (j->flags & S_BADUTF8)
            VFAIL("%s: text is not valid UTF-8", what);
        if (j->flags & S_NUL)
            VFAIL("%s: text holds \\u0000 (such text travels as $text)", what);
        v->type = DIMPLE_TEXT;
        v->p = j->u.s;
        v->n = j->n;
        return 0;
    case J_OBJ: {
        jnode *t = j + 1;
        if (j->n != 1 || t->kind != J_STR)
            VFAIL("%s: a typed value is an object with one string "
                  "member ($int, $real, $text or $blob)",
                  what);
        const char *tag = t->key;
        char *s = t->u.s;
        size_t tl = t->keylen;
        if (KEY_IS(tag, tl, "$int")) {
            if ((t->flags & S_NUL) || dimple_batch__parse_int(s, &v->i))
                VFAIL("%s: $int is not a 64-bit decimal integer", what);
            v->type = DIMPLE_INTEGER;
            return 0;
        }
        if (KEY_IS(tag, tl, "$real")) {
            if ((t->flags & S_NUL) || dimple_batch__parse_real(s, &v->r))
                VFAIL("%s: $real is not a finite decimal, inf or "
                      "-inf",
                      what);
            v->type = DIMPLE_REAL;
            return 0;
        }
        if (KEY_IS(tag, tl, "$blob") || KEY_IS(tag, tl, "$text")) {
            size_t n = t->n;
            if (n / 4 * 3 > DIMPLE_BATCH_MAX_VALUE)
                VFAIL("%s: value over %zu bytes", what, DIMPLE_BATCH_MAX_VALUE);
            /* decoded in place: the arena is ours and base64 only shrinks */
            ptrdiff_t len =
                dimple_base64__decode_into(s, n, (unsigned char *)s);
            if (len < 0)
                VFAIL("%s: %s is not base64", what, tag);
            v->type = tag[1] == 'b' ? DIMPLE_BLOB : DIMPLE_TEXT;
            v->p = s;
            v->n = (size_t)len;
            return 0;
        }
        VFAIL("%s: unknown value tag '%.40s'", what, tag);
    }
    default:
        break;
    }
    VFAIL("%s: wrong type (want null, number, string or a typed "
          "object)",
          what);
}

static int check_name(dec *d, const jnode *j, int as_key, const char *id,
                      const char *member)
{
    size_t n = as_key ? j->keylen : j->n;
    unsigned fl = as_key ? j->keyflags : j->flags;
    if (n == 0 || n > DIMPLE_BATCH_MAX_NAME || fl)
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT,
            "change %s: %s: must be 1 to %d bytes of UTF-8 "
            "without NUL",
            id, member, DIMPLE_BATCH_MAX_NAME);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate column names: a few are compared pairwise; more are sorted (a
 * copy of the pointers: cols can be many, and a hostile batch must not
 * cost quadratic time). */
static int has_dup(const char **names, size_t n, const char **scratch)
{
    if (n < 2)
        return 0;
    if (n <= 8) {
        for (size_t i = 1; i < n; i++)
            for (size_t k = 0; k < i; k++)
                if (strcmp(names[i], names[k]) == 0)
                    return 1;
        return 0;
    }
    memcpy(scratch, names, n * sizeof *names);
    qsort(scratch, n, sizeof *scratch, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(scratch[i - 1], scratch[i]) == 0)
            return 1;
    return 0;
}

/* Grow the array whose pointer is at pp (cap elements of sz bytes) to
 * hold need elements. */
static int grow(dec *d, void *pp, size_t *cap, size_t need, size_t sz)
{
    if (dimple__grow(pp, cap, need, sz))
        return dimple_batch__dec_err(d, DIMPLE_ENOMEM, "out of memory");
    return 0;
}

/* The batch being built: arrays grow; pointers are set when it is done. */
typedef struct bstate {
    dimple_batch b;
    size_t ccap, vcap, ncap, scap;
    size_t vi, ni; /* values and names so far */
    const char **scratch;
    const uint8_t *want_first;
} bstate;

void dimple_batch__free(dimple_batch *b)
{
    if (!b)
        return;
    free(b->arena_);
    free(b->changes);
    free(b->vals_);
    free(b->names_);
    memset(b, 0, sizeof *b);
}

/* Check the change read into r->tape (slots: node index + 1 of id, table,
 * op, key, cols; 0 if absent) and append it as changes[ci]: the old
 * decoder's checks in its order. */
static int change_add(jr *r, bstate *bs, size_t ci, const uint32_t slot[5])
{
    dec *d = r->d;
    jnode *T = r->tape, *jid, *jt, *jop, *jk, *jc;
    dimple_change *ch = &bs->b.changes[ci];
    char idtxt[37] = "?";
    int rc;

    jid = slot[0] ? &T[slot[0] - 1] : NULL;
    jt = slot[1] ? &T[slot[1] - 1] : NULL;
    jop = slot[2] ? &T[slot[2] - 1] : NULL;
    jk = slot[3] ? &T[slot[3] - 1] : NULL;
    jc = slot[4] ? &T[slot[4] - 1] : NULL;
    memset(ch, 0, sizeof *ch);
    if (!jid || jid->kind != J_STR ||
        dimple_uuid__parse_n(jid->u.s, jid->n, ch->id,
                             DIMPLE_UUID_CANONICAL | DIMPLE_UUID_V7))
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT, "changes[%zu]: 'id' missing or not a UUIDv7",
            ci);
    memcpy(idtxt, jid->u.s, 36);
    idtxt[36] = '\0';
    if (ci == 0 && bs->want_first && memcmp(bs->want_first, ch->id, 16) != 0)
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT,
            "first change id %s does not match the object's "
            "name",
            idtxt);
    if (ci > 0 && memcmp(bs->b.changes[ci - 1].id, ch->id, 16) >= 0)
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT,
            "changes[%zu] (id %s): ids out of order (must "
            "strictly increase)",
            ci, idtxt);
    if (!jt || jt->kind != J_STR)
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT, "change %s: 'table' missing or not a string",
            idtxt);
    if ((rc = check_name(d, jt, 0, idtxt, "'table'")) < 0)
        return rc;
    ch->table = jt->u.s;
    if (!jop || jop->kind != J_STR)
        return dimple_batch__dec_err(d, DIMPLE_ECORRUPT,
                                     "change %s: 'op' missing or not a string",
                                     idtxt);
    if (KEY_IS(jop->u.s, jop->n, "insert"))
        ch->op = DIMPLE_OP_INSERT;
    else if (KEY_IS(jop->u.s, jop->n, "update"))
        ch->op = DIMPLE_OP_UPDATE;
    else if (KEY_IS(jop->u.s, jop->n, "delete"))
        ch->op = DIMPLE_OP_DELETE;
    else
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT,
            "change %s: unknown op '%.32s' (insert, update or "
            "delete)",
            idtxt, jop->u.s);
    if (!jk || jk->kind != J_ARR || jk->n == 0)
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT,
            "change %s: 'key' missing or not a non-empty array", idtxt);
    if ((rc = grow(d, &bs->b.vals_, &bs->vcap,
                   bs->vi + (jk->n < DIMPLE_BATCH_MAX_KEY
                                 ? jk->n
                                 : DIMPLE_BATCH_MAX_KEY),
                   sizeof *bs->b.vals_)) < 0)
        return rc;
    for (uint32_t x = (uint32_t)(jk - T) + 1, i = 0; i < jk->n;
         i++, x = T[x].next) {
        if (ch->n_key >= DIMPLE_BATCH_MAX_KEY)
            return dimple_batch__dec_err(d, DIMPLE_ECORRUPT,
                                         "change %s: more than %d key values",
                                         idtxt, DIMPLE_BATCH_MAX_KEY);
        where w = {idtxt, NULL, ch->n_key};
        if ((rc = dec_value(d, &T[x], &bs->b.vals_[bs->vi], &w)) < 0)
            return rc;
        bs->vi++;
        ch->n_key++;
    }
    if (ch->op == DIMPLE_OP_DELETE) {
        if (jc && !(jc->kind == J_OBJ && jc->n == 0))
            return dimple_batch__dec_err(
                d, DIMPLE_ECORRUPT, "change %s: a delete carries no 'cols'",
                idtxt);
        return 0;
    }
    if (!jc || jc->kind != J_OBJ)
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT, "change %s: 'cols' missing or not an object",
            idtxt);
    size_t nc =
        jc->n < DIMPLE_BATCH_MAX_COLS ? jc->n : (size_t)DIMPLE_BATCH_MAX_COLS;
    if ((rc = grow(d, &bs->b.vals_, &bs->vcap, bs->vi + nc,
                   sizeof *bs->b.vals_)) < 0 ||
        (rc = grow(d, &bs->b.names_, &bs->ncap, bs->ni + nc,
                   sizeof *bs->b.names_)) < 0)
        return rc;
    for (uint32_t x = (uint32_t)(jc - T) + 1, i = 0; i < jc->n;
         i++, x = T[x].next) {
        if (ch->n_cols >= DIMPLE_BATCH_MAX_COLS)
            return dimple_batch__dec_err(d, DIMPLE_ECORRUPT,
                                         "change %s: more than %d columns",
                                         idtxt, DIMPLE_BATCH_MAX_COLS);
        if ((rc = check_name(d, &T[x], 1, idtxt, "column name")) < 0)
            return rc;
        where w = {idtxt, T[x].key, 0};
        if ((rc = dec_value(d, &T[x], &bs->b.vals_[bs->vi], &w)) < 0)
            return rc;
        bs->b.names_[bs->ni++] = T[x].key;
        bs->vi++;
        ch->n_cols++;
    }
    if (ch->n_cols > 8) {
        if ((rc = grow(d, &bs->scratch, &bs->scap, ch->n_cols,
                       sizeof *bs->scratch)) < 0)
            return rc;
    }
    if (ch->n_cols > 1 &&
        has_dup(&bs->b.names_[bs->ni - ch->n_cols], ch->n_cols, bs->scratch))
        return dimple_batch__dec_err(
            d, DIMPLE_ECORRUPT, "change %s: a column appears twice", idtxt);
    return 0;
}

/* One element of 'changes' at r->p. check: read and check it as
 * changes[ci]; else check its syntax only. Returns 0, DIMPLE_ECORRUPT with
 * the message set for a bad change (the element was read to its end), or
 * a negative code with *fatal set (syntax, memory: stop). */
static int change_read(jr *r, bstate *bs, size_t ci, int check, int *fatal)
{
    const unsigned char *p = r->p;
    uint32_t slot[5] = {0, 0, 0, 0, 0};
    const char *dup = NULL;
    int rc;

    *fatal = 1;
    if (!check || *p != '{') {
        if ((rc = jvalue(r, 2, 0, 0, NULL)) < 0)
            return rc;
        *fatal = 0;
        if (!check)
            return 0;
        return dimple_batch__dec_err(r->d, DIMPLE_ECORRUPT,
                                     "changes[%zu] is not an object", ci);
    }
    r->nt = 0;
    r->p = p = jws(p + 1, r->end);
    if (p < r->end && *p == '}') {
        r->p = p + 1;
    } else {
        for (;;) {
            const char *key;
            size_t kl, mark = r->an;
            uint32_t *s = NULL, at = 0, cap = 0;
            if ((rc = jmember(r, &key, &kl)) < 0)
                return rc;
            if (KEY_IS(key, kl, "id"))
                s = &slot[0];
            else if (KEY_IS(key, kl, "table"))
                s = &slot[1];
            else if (KEY_IS(key, kl, "op"))
                s = &slot[2];
            else if (KEY_IS(key, kl, "key"))
                s = &slot[3], cap = DIMPLE_BATCH_MAX_KEY + 1;
            else if (KEY_IS(key, kl, "cols"))
                s = &slot[4], cap = DIMPLE_BATCH_MAX_COLS + 1;
            if (s && *s && !dup)
                dup = s == &slot[0]   ? "id"
                      : s == &slot[1] ? "table"
                      : s == &slot[2] ? "op"
                      : s == &slot[3] ? "key"
                                      : "cols";
            r->an = mark; /* the name is not kept */
            /* unknown members (a later minor version's) are checked only */
            if ((rc = jvalue(r, 3, s && !dup ? 3 : 0, cap, &at)) < 0)
                return rc;
            if (s && !dup)
                *s = at + 1;
            p = jws(r->p, r->end);
            if (p < r->end && *p == ',') {
                r->p = jws(p + 1, r->end);
                continue;
            }
            if (p < r->end && *p == '}') {
                r->p = p + 1;
                break;
            }
            return jfail(r, p, TRUNC);
        }
    }
    *fatal = 0;
    if (dup)
        return dimple_batch__dec_err(r->d, DIMPLE_ECORRUPT,
                                     "changes[%zu]: duplicate member '%s'", ci,
                                     dup);
    if ((rc = change_add(r, bs, ci, slot)) == DIMPLE_ENOMEM)
        *fatal = 1;
    return rc;
}

/* 'changes' at r->p (its '['): reads every element; checks them until the
 * first bad one or the limit. *count: elements (up to the limit + 1). */
static int changes_read(jr *r, bstate *bs, size_t *count, int *bad)
{
    const unsigned char *p = jws(r->p + 1, r->end);
    size_t n = 0;
    int rc, fatal;

    if (p < r->end && *p == ']') {
        r->p = p + 1;
        *count = 0;
        return 0;
    }
    for (;;) {
        int check = !*bad && n < DIMPLE_BATCH_MAX_CHANGES;
        r->p = p;
        if (p >= r->end)
            return jfail(r, p, TRUNC);
        if (check && (rc = grow(r->d, &bs->b.changes, &bs->ccap, n + 1,
                                sizeof *bs->b.changes)) < 0)
            return rc;
        rc = change_read(r, bs, n, check, &fatal);
        if (fatal)
            return rc;
        if (rc < 0)
            *bad = 1; /* the message stays unless a worse error comes */
        if (n <= DIMPLE_BATCH_MAX_CHANGES)
            n++;
        p = jws(r->p, r->end);
        if (p < r->end && *p == ',') {
            p = jws(p + 1, r->end);
            continue;
        }
        if (p < r->end && *p == ']') {
            r->p = p + 1;
            break;
        }
        return jfail(r, p, TRUNC);
    }
    *count = n;
    return 0;
}

int dimple_batch__decode(dimple_batch *out, const char *name, const void *json,
                         size_t len, const uint8_t *want_author,
                         const uint8_t *want_first, char *err, size_t errlen)
{
    dec d = {"batch", name, err, errlen};
    jr r;
    bstate bs;
    const unsigned char *p;
    const char *dup = NULL;
    uint32_t at;
    int have_fmt = 0, fmt_num = 0, have_auth = 0, auth_str = 0;
    int have_ch = 0, ch_arr = 0, bad = 0;
    double fmt = 0;
    const char *auth = NULL;
    size_t auth_n = 0, n = 0, vi = 0, ni = 0;
    int rc = DIMPLE_ECORRUPT;

    memset(&r, 0, sizeof r);
    memset(&bs, 0, sizeof bs);
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (len > DIMPLE_BATCH_MAX_OBJECT)
        return dimple_batch__dec_err(&d, DIMPLE_ECORRUPT,
                                     "%zu bytes, over the %zu limit", len,
                                     DIMPLE_BATCH_MAX_OBJECT);
    if (len == 0 || !json)
        return dimple_batch__dec_err(&d, DIMPLE_ECORRUPT, "empty object");
    r.base = json;
    r.end = r.base + len;
    r.d = &d;
    bs.want_first = want_first;
    r.arena = malloc(len + 1);
    if (!r.arena)
        return dimple_batch__dec_err(&d, DIMPLE_ENOMEM, "out of memory");
    bs.b.arena_ = r.arena;
    /* first sizes from the object's length (a change is 100 to 200 bytes
     * of which a value is 10 to 40); the arrays grow from there */
    if ((rc = grow(&d, &bs.b.changes, &bs.ccap,
                   len / 128 < DIMPLE_BATCH_MAX_CHANGES
                       ? len / 128 + 1
                       : DIMPLE_BATCH_MAX_CHANGES,
                   sizeof *bs.b.changes)) < 0 ||
        (rc = grow(&d, &bs.b.vals_, &bs.vcap, len / 24 + 1,
                   sizeof *bs.b.vals_)) < 0 ||
        (rc = grow(&d, &bs.b.names_, &bs.ncap, len / 32 + 1,
                   sizeof *bs.b.names_)) < 0)
        goto out;

    p = jws(r.base, r.end);
    if (p >= r.end || *p != '{') {
        /* not an object: still say whether it is JSON at all */
        r.p = p;
        if ((rc = jvalue(&r, 0, 0, 0, NULL)) < 0)
            goto out;
        rc = DIMPLE_ECORRUPT;
        p = jws(r.p, r.end);
        if (p != r.end)
            goto trailing;
        rc = dimple_batch__dec_err(&d, rc, "not a JSON object");
        goto out;
    }
    r.p = p = jws(p + 1, r.end);
    if (p < r.end && *p == '}') {
        r.p = p + 1;
    } else {
        for (;;) {
            const char *key;
            size_t kl, mark = r.an;
            if ((rc = jmember(&r, &key, &kl)) < 0)
                goto out;
            int is_fmt = KEY_IS(key, kl, "format");
            int is_auth = KEY_IS(key, kl, "author");
            int is_ch = KEY_IS(key, kl, "changes");
            if (!dup && ((is_fmt && have_fmt) || (is_auth && have_auth) ||
                         (is_ch && have_ch)))
                dup = is_fmt ? "format" : is_auth ? "author" : "changes";
            r.an = mark; /* the name is not kept */
            if (is_ch && !have_ch && r.p < r.end && *r.p == '[') {
                have_ch = ch_arr = 1;
                /* a bad change leaves its message in err and sets bad;
                 * reading goes on: a syntax error or a batch-level one
                 * comes first */
                if ((rc = changes_read(&r, &bs, &n, &bad)) < 0)
                    goto out;
            } else if ((is_fmt || is_auth) && !dup) {
                r.nt = 0;
                if ((rc = jvalue(&r, 1, 1, 0, &at)) < 0)
                    goto out;
                if (is_fmt) {
                    have_fmt = 1;
                    fmt_num = r.tape[at].kind == J_NUM;
                    fmt = r.tape[at].u.num;
                } else {
                    have_auth = 1;
                    auth_str = r.tape[at].kind == J_STR;
                    auth = r.tape[at].u.s;
                    auth_n = r.tape[at].n;
                }
            } else {
                if (is_ch)
                    have_ch = 1;
                if ((rc = jvalue(&r, 1, 0, 0, NULL)) < 0)
                    goto out;
            }
            p = jws(r.p, r.end);
            if (p < r.end && *p == ',') {
                r.p = jws(p + 1, r.end);
                continue;
            }
            if (p < r.end && *p == '}') {
                r.p = p + 1;
                break;
            }
            rc = jfail(&r, p, TRUNC);
            goto out;
        }
    }
    rc = DIMPLE_ECORRUPT;
    p = jws(r.p, r.end);
    if (p != r.end)
        goto trailing;

    /* the batch's own members first, in the old decoder's order */
    if (dup) {
        rc = dimple_batch__dec_err(&d, rc, "duplicate member '%s'", dup);
        goto out;
    }
    if (!fmt_num || fmt != floor(fmt) || fmt < 1) {
        rc = dimple_batch__dec_err(&d, rc,
                                   "'format' missing or not a version number");
        goto out;
    }
    if (fmt > DIMPLE_BATCH_FORMAT) {
        rc = dimple_batch__dec_err(
            &d, DIMPLE_EFORMAT,
            "format %.0f is newer than this DimpleDb reads (%d): "
            "upgrade DimpleDb",
            fmt, DIMPLE_BATCH_FORMAT);
        goto out;
    }
    if (!auth_str || dimple_uuid__parse_n(auth, auth_n, bs.b.author,
                                          DIMPLE_UUID_CANONICAL)) {
        rc = dimple_batch__dec_err(&d, rc, "'author' missing or not a UUID");
        goto out;
    }
    if (want_author && memcmp(want_author, bs.b.author, 16) != 0) {
        char a[37];
        dimple_uuid__format(want_author, a);
        rc =
            dimple_batch__dec_err(&d, rc,
                                  "'author' %.36s does not match its folder %s "
                                  "(authors write only their own folder)",
                                  auth, a);
        goto out;
    }
    if (!ch_arr) {
        rc = dimple_batch__dec_err(&d, rc, "'changes' missing or not an array");
        goto out;
    }
    if (n > DIMPLE_BATCH_MAX_CHANGES) {
        rc = dimple_batch__dec_err(&d, rc, "more than %d changes",
                                   DIMPLE_BATCH_MAX_CHANGES);
        goto out;
    }
    if (n == 0) {
        rc = dimple_batch__dec_err(&d, rc, "'changes' is empty");
        goto out;
    }
    if (bad)
        goto out; /* the first bad change's message is in err */

    /* the arrays are complete: point the changes into them */
    for (size_t i = 0; i < n; i++) {
        dimple_change *ch = &bs.b.changes[i];
        memcpy(ch->author, bs.b.author, 16);
        ch->key = bs.b.vals_ + vi;
        vi += ch->n_key;
        if (ch->op != DIMPLE_OP_DELETE) {
            ch->cols = bs.b.vals_ + vi;
            ch->col_names = bs.b.names_ + ni;
            vi += ch->n_cols;
            ni += ch->n_cols;
        }
    }
    bs.b.n = n;
    *out = bs.b;
    memset(&bs.b, 0, sizeof bs.b);
    rc = DIMPLE_OK;
    goto out;
trailing:
    rc = dimple_batch__dec_err(
        &d, rc, "trailing bytes after the JSON object at byte %zu",
        (size_t)(p - r.base));
out:
    free(r.tape);
    free(bs.scratch);
    dimple_batch__free(&bs.b);
    return rc;
}
