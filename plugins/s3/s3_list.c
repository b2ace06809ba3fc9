/*
 * s3_list.c — ListObjectsV2 and S3 <Error> documents, parsed with expat.
 *
 * Listing asks for encoding-type=url so any key survives XML (control
 * characters cannot), follows continuation tokens, falls back to
 * start-after when a server says "truncated" without a token, and fails
 * instead of looping when a page does not move forward (a bug many S3
 * clients have shipped).
 */
#include "s3.h"

#include <stdlib.h>
#include <string.h>

#include <expat.h>

/* What the element being read is, for the parts we keep. */
enum {
    F_NONE,
    F_KEY,
    F_PREFIX,
    F_TRUNCATED,
    F_TOKEN,
    F_ENCODING,
    F_CODE,
    F_MESSAGE
};

typedef struct xml_state {
    int depth;
    int in_contents, in_prefixes; /* inside <Contents> / <CommonPrefixes> */
    int field;
    int error_doc; /* root is <Error> */
    s3_buf text;
    s3_list_page *page; /* NULL when reading an <Error> */
    char *code, *msg;
    size_t code_cap, msg_cap;
    int oom;
} xml_state;

static int push(char ***arr, size_t *n, size_t *cap, const char *s, size_t len)
{
    char *copy;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **p = realloc(*arr, nc * sizeof *p);
        if (!p)
            return -1;
        *arr = p;
        *cap = nc;
    }
    copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    (*arr)[(*n)++] = copy;
    return 0;
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **attrs)
{
    xml_state *x = ud;
    (void)attrs;
    x->depth++;
    x->field = F_NONE;
    if (x->depth == 1) {
        x->error_doc = strcmp(name, "Error") == 0;
        return;
    }
    if (x->depth == 2) {
        if (x->error_doc) {
            if (strcmp(name, "Code") == 0)
                x->field = F_CODE;
            else if (strcmp(name, "Message") == 0)
                x->field = F_MESSAGE;
        } else if (strcmp(name, "Contents") == 0) {
            x->in_contents = 1;
        } else if (strcmp(name, "CommonPrefixes") == 0) {
            x->in_prefixes = 1;
        } else if (strcmp(name, "IsTruncated") == 0) {
            x->field = F_TRUNCATED;
        } else if (strcmp(name, "NextContinuationToken") == 0) {
            x->field = F_TOKEN;
        } else if (strcmp(name, "EncodingType") == 0) {
            x->field = F_ENCODING;
        }
    } else if (x->depth == 3) {
        if (x->in_contents && strcmp(name, "Key") == 0)
            x->field = F_KEY;
        else if (x->in_prefixes && strcmp(name, "Prefix") == 0)
            x->field = F_PREFIX;
    }
    s3_buf_reset(&x->text);
}

static void copy_text(char *dst, size_t cap, const s3_buf *b)
{
    size_t n = b->len < cap - 1 ? b->len : cap - 1;
    if (n)
        memcpy(dst, b->p, n);
    dst[n] = '\0';
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    xml_state *x = ud;
    const char *t = x->text.p ? x->text.p : "";
    s3_list_page *pg = x->page;
    int f = x->field;
    x->field = F_NONE;
    if (x->depth == 2) {
        if (strcmp(name, "Contents") == 0)
            x->in_contents = 0;
        else if (strcmp(name, "CommonPrefixes") == 0)
            x->in_prefixes = 0;
    }
    x->depth--;
    if (x->text.oom)
        x->oom = 1;
    switch (f) {
    case F_CODE:
        if (x->code)
            copy_text(x->code, x->code_cap, &x->text);
        break;
    case F_MESSAGE:
        if (x->msg)
            copy_text(x->msg, x->msg_cap, &x->text);
        break;
    case F_KEY:
        if (pg && push(&pg->keys, &pg->nkeys, &pg->capkeys, t, x->text.len))
            x->oom = 1;
        break;
    case F_PREFIX:
        if (pg && push(&pg->prefixes, &pg->nprefixes, &pg->capprefixes, t,
                       x->text.len))
            x->oom = 1;
        break;
    case F_TRUNCATED:
        if (pg)
            pg->truncated = strcmp(t, "true") == 0;
        break;
    case F_TOKEN:
        if (pg && x->text.len) {
            free(pg->next_token);
            pg->next_token = strdup(t);
            if (!pg->next_token)
                x->oom = 1;
        }
        break;
    case F_ENCODING:
        if (pg)
            pg->url_encoded = strcmp(t, "url") == 0;
        break;
    default:
        break;
    }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    xml_state *x = ud;
    if (x->field != F_NONE && len > 0)
        s3_buf_add(&x->text, s, (size_t)len);
}

/* 0, -1 on malformed XML, -2 on out of memory. */
static int parse(xml_state *x, const char *xml, size_t len)
{
    XML_Parser p = XML_ParserCreate("UTF-8");
    int rc = 0;
    if (!p)
        return -2;
    XML_SetUserData(p, x);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    if (len > (size_t)INT32_MAX ||
        XML_Parse(p, xml, (int)len, 1) == XML_STATUS_ERROR)
        rc = XML_GetErrorCode(p) == XML_ERROR_NO_MEMORY ? -2 : -1;
    if (x->oom)
        rc = -2;
    XML_ParserFree(p);
    s3_buf_free(&x->text);
    return rc;
}

void s3_xml_error(const char *xml, size_t len, char *code, size_t code_cap,
                  char *msg, size_t msg_cap)
{
    xml_state x = {0};
    code[0] = msg[0] = '\0';
    x.code = code;
    x.code_cap = code_cap;
    x.msg = msg;
    x.msg_cap = msg_cap;
    if (parse(&x, xml, len) != 0 || !x.error_doc)
        code[0] = msg[0] = '\0';
}

void s3_list_page_free(s3_list_page *pg)
{
    for (size_t i = 0; i < pg->nkeys; i++)
        free(pg->keys[i]);
    for (size_t i = 0; i < pg->nprefixes; i++)
        free(pg->prefixes[i]);
    free(pg->keys);
    free(pg->prefixes);
    free(pg->next_token);
    memset(pg, 0, sizeof *pg);
}

static int decode_all(char **arr, size_t n)
{
    s3_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (s3_uri_decode(&b, arr[i], strlen(arr[i])) || b.oom) {
            int oom = b.oom;
            s3_buf_free(&b);
            return oom ? -2 : -1;
        }
        free(arr[i]);
        arr[i] = b.p;
        b = (s3_buf){0};
        if (!arr[i]) {
            arr[i] = strdup("");
            if (!arr[i])
                return -2;
        }
    }
    return 0;
}

int s3_list_parse(const s3 *s, const char *xml, size_t len, s3_list_page *page)
{
    xml_state x = {0};
    int rc;
    x.page = page;
    rc = parse(&x, xml, len);
    if (rc == 0 && x.error_doc)
        rc = -1;
    if (rc == 0 && page->url_encoded &&
        ((rc = decode_all(page->keys, page->nkeys)) == 0))
        rc = decode_all(page->prefixes, page->nprefixes);
    if (rc == -2)
        return dimple_errorf(s->host, DIMPLE_ENOMEM,
                             "out of memory reading a listing");
    if (rc)
        return dimple_errorf(s->host, DIMPLE_ECORRUPT,
                             "the listing from %s (bucket '%s') is not a "
                             "valid ListObjectsV2 answer",
                             s->endpoint, s->bucket);
    return DIMPLE_OK;
}

typedef struct entry {
    const char *name;
    int is_prefix; /* from <CommonPrefixes> */
} entry;

static int cmp_entry(const void *a, const void *b)
{
    /* strcmp compares as unsigned char: byte order, as the contract says */
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* A reported entry must be a key the core can use; foreign objects such as
 * "folder/" markers or "a//b" are skipped. */
static int entry_valid(const char *rel, int is_prefix)
{
    size_t n = strlen(rel);
    char *tmp;
    int ok;
    if (!is_prefix)
        return dimple_key_valid(rel);
    if (n < 2 || rel[n - 1] != '/')
        return 0;
    tmp = strdup(rel);
    if (!tmp)
        return 0;
    tmp[n - 1] = '\0';
    ok = dimple_key_valid(tmp);
    free(tmp);
    return ok;
}

int s3_list_run(s3 *s, const char *prefix, const char *start_after,
                unsigned flags, dimple_list_cb cb, void *payload)
{
    s3_buf full_prefix = {0}, cursor = {0}, last = {0}, raw_last = {0},
           query = {0}, what = {0};
    char *token = NULL;
    entry *merged = NULL;
    char page_size[16];
    size_t plen = strlen(s->prefix);
    int rc = DIMPLE_OK, have_last = 0, empty_pages = 0, first = 1;
    s3_resp rs = {0};
    s3_list_page pg = {0};

    if (!prefix)
        prefix = "";
    if (!dimple_prefix_valid(prefix))
        return dimple_errorf(s->host, DIMPLE_EINVAL,
                             "list: no valid key can start with '%s'", prefix);
    if (start_after && !*start_after)
        start_after = NULL;
    s3_buf_addf(&full_prefix, "%s%s", s->prefix, prefix);
    if (start_after)
        s3_buf_addf(&cursor, "%s%s", s->prefix, start_after);
    s3_buf_addf(&what, "list '%s'", prefix);
    snprintf(page_size, sizeof page_size, "%d", s->page_size);
    if (full_prefix.oom || cursor.oom || what.oom) {
        rc = dimple_errorf(s->host, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }

    for (;;) {
        s3_param params[6];
        size_t np = 0, nm = 0;
        params[np++] = (s3_param){"list-type", "2"};
        params[np++] = (s3_param){"prefix", full_prefix.p};
        params[np++] = (s3_param){"max-keys", page_size};
        params[np++] = (s3_param){"encoding-type", "url"};
        if (flags & DIMPLE_LIST_SHALLOW)
            params[np++] = (s3_param){"delimiter", "/"};
        if (token)
            params[np++] = (s3_param){"continuation-token", token};
        else if (cursor.len)
            params[np++] = (s3_param){"start-after", cursor.p};
        rc = s3_query_build(&query, params, np);
        if (rc) {
            dimple_errorf(s->host, rc, "out of memory");
            goto out;
        }
        rc = s3_http_do(s, &(s3_req){.method = "GET", .query = query.p}, &rs,
                        what.p);
        if (rc)
            goto out;
        if (rs.status != 200) {
            rc = s3_fail(s, &rs, what.p);
            goto out;
        }
        s3_list_page_free(&pg);
        rc = s3_list_parse(s, rs.body.p ? rs.body.p : "", rs.body.len, &pg);
        if (rc)
            goto out;

        /* Contents and CommonPrefixes come as two sorted lists: merge them
         * so the caller sees one ascending sequence. */
        free(merged);
        merged = malloc((pg.nkeys + pg.nprefixes + 1) * sizeof *merged);
        if (!merged) {
            rc = dimple_errorf(s->host, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < pg.nkeys; i++)
            merged[nm++] = (entry){pg.keys[i], 0};
        for (size_t i = 0; i < pg.nprefixes; i++)
            merged[nm++] = (entry){pg.prefixes[i], 1};
        qsort(merged, nm, sizeof *merged, cmp_entry);

        for (size_t i = 0; i < nm; i++) {
            const char *raw = merged[i].name, *rel;
            int is_prefix = merged[i].is_prefix;
            if (strncmp(raw, full_prefix.p, full_prefix.len) != 0)
                continue; /* not what we asked for: ignore */
            rel = raw + plen;
            if (start_after && strcmp(rel, start_after) <= 0)
                continue;
            if (have_last) {
                int c = strcmp(rel, last.p);
                if (c == 0)
                    continue; /* a folder repeated on the next page */
                if (c < 0) {
                    rc = dimple_errorf(
                        s->host, DIMPLE_ECORRUPT,
                        "%s at %s: the server listed '%s' after '%s', "
                        "not in byte order",
                        what.p, s->endpoint, rel, last.p);
                    goto out;
                }
            }
            if (!entry_valid(rel, is_prefix)) {
                dimple_logf(s->host, DIMPLE_LOG_DEBUG,
                            "skipping object '%s': not a valid key", rel);
                continue;
            }
            rc = cb(payload, rel);
            if (rc)
                goto out;
            s3_buf_reset(&last);
            s3_buf_adds(&last, rel);
            if (last.oom) {
                rc = dimple_errorf(s->host, DIMPLE_ENOMEM, "out of memory");
                goto out;
            }
            have_last = 1;
        }

        if (!pg.truncated)
            break;
        if (nm == 0) {
            if (++empty_pages > 100) {
                rc = dimple_errorf(s->host, DIMPLE_ECORRUPT,
                                   "%s at %s: 100 empty pages in a row "
                                   "marked truncated; giving up",
                                   what.p, s->endpoint);
                goto out;
            }
        } else {
            /* Each page must end beyond the previous one, whatever the
             * tokens say: otherwise the listing would never end. */
            if (!first && raw_last.len &&
                strcmp(merged[nm - 1].name, raw_last.p) <= 0) {
                rc = dimple_errorf(s->host, DIMPLE_ECORRUPT,
                                   "%s at %s: the listing does not advance "
                                   "(page ends at '%s' again); giving up",
                                   what.p, s->endpoint, merged[nm - 1].name);
                goto out;
            }
            empty_pages = 0;
            s3_buf_reset(&raw_last);
            s3_buf_adds(&raw_last, merged[nm - 1].name);
        }
        first = 0;
        if (pg.next_token) {
            if (token && strcmp(token, pg.next_token) == 0) {
                rc = dimple_errorf(s->host, DIMPLE_ECORRUPT,
                                   "%s at %s: the server repeated its "
                                   "continuation token; giving up",
                                   what.p, s->endpoint);
                goto out;
            }
            free(token);
            token = pg.next_token;
            pg.next_token = NULL;
        } else {
            /* Truncated without a token (old or odd servers): go on
             * after the last entry seen. */
            if (!raw_last.len) {
                rc = dimple_errorf(s->host, DIMPLE_ECORRUPT,
                                   "%s at %s: truncated listing without a "
                                   "continuation token or any key",
                                   what.p, s->endpoint);
                goto out;
            }
            free(token);
            token = NULL;
            s3_buf_reset(&cursor);
            s3_buf_adds(&cursor, raw_last.p);
        }
        if (raw_last.oom || cursor.oom) {
            rc = dimple_errorf(s->host, DIMPLE_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    free(merged);
    free(token);
    s3_list_page_free(&pg);
    s3_resp_free(&rs);
    s3_buf_free(&full_prefix);
    s3_buf_free(&cursor);
    s3_buf_free(&last);
    s3_buf_free(&raw_last);
    s3_buf_free(&query);
    s3_buf_free(&what);
    return rc;
}
