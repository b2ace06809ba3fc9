/*
 * event_json.h — one notifier event as a JSON object, for the jsonl and
 * webhook plugins (plugins link no core code, so they share this header).
 *
 *   {"id":"<uuid7>","table":"todo","key":<key JSON>,"op":"insert",
 *    "author":"<uuid>","origin":"local"}
 *
 * key_json comes from the core already encoded (a JSON value, an array if
 * the key is composite) and is copied as it is.
 */
#ifndef DIMPLE_EVENT_JSON_H
#define DIMPLE_EVENT_JSON_H

#include <dimple/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ev_buf {
    char *p;
    size_t n, cap;
    int oom;
} ev_buf;

static inline void ev_put(ev_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->n + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static inline void ev_puts(ev_buf *b, const char *s)
{
    ev_put(b, s, strlen(s));
}

/* A JSON string literal; control characters escaped, bytes >= 0x80 kept
 * (the core hands UTF-8). NULL becomes null. */
static inline void ev_str(ev_buf *b, const char *s)
{
    if (!s) {
        ev_puts(b, "null");
        return;
    }
    ev_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            ev_put(b, tmp, 2);
        } else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            ev_put(b, tmp, 6);
        } else {
            ev_put(b, s, 1);
        }
    }
    ev_put(b, "\"", 1);
}

static inline void ev_event(ev_buf *b, const dimple_event *e)
{
    ev_puts(b, "{\"id\":");
    ev_str(b, e->id);
    ev_puts(b, ",\"table\":");
    ev_str(b, e->table);
    ev_puts(b, ",\"key\":");
    ev_puts(b, e->key_json && *e->key_json ? e->key_json : "null");
    ev_puts(b, ",\"op\":");
    ev_str(b, e->op);
    ev_puts(b, ",\"author\":");
    ev_str(b, e->author);
    ev_puts(b, ",\"origin\":");
    ev_str(b, e->origin);
    ev_puts(b, "}");
}

#endif /* DIMPLE_EVENT_JSON_H */
