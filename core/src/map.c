/*
 * map.c — struct <-> row mapping and JSON rows (dimple/map.h). Plain SQL
 * underneath, so every write is captured by the change-tracking triggers.
 */
#include "track.h"

#include "buf.h"
#include "clock.h"
#include "db.h"
#include "json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A table's columns as the schema declares them. */
typedef struct tcol {
    char *name;
    char aff; /* 'I'nteger 'R'eal 'T'ext 'B'lob (none) 'N'umeric */
    int pk;   /* 1..n: position in the primary key; 0: not in it */
    char *decl;
} tcol;

typedef struct tinfo {
    tcol *cols;
    size_t n, n_key;
} tinfo;

static void tinfo_free(tinfo *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->cols[i].name);
        free(t->cols[i].decl);
    }
    free(t->cols);
    memset(t, 0, sizeof *t);
}

/* SQLite's affinity rules (datatype3.html §3.1). */
static char affinity(const char *decl)
{
    char up[256];
    size_t n = 0;
    for (; decl && decl[n] && n < sizeof up - 1; n++)
        up[n] =
            (char)(decl[n] >= 'a' && decl[n] <= 'z' ? decl[n] - 32 : decl[n]);
    up[n] = 0;
    if (strstr(up, "INT"))
        return 'I';
    if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"))
        return 'T';
    if (!n || strstr(up, "BLOB"))
        return 'B';
    if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
        return 'R';
    return 'N';
}

static const char *aff_name(char a)
{
    switch (a) {
    case 'I':
        return "INTEGER";
    case 'R':
        return "REAL";
    case 'T':
        return "TEXT";
    case 'N':
        return "NUMERIC";
    default:
        return "BLOB (or untyped)";
    }
}

static int load_table(dimple *db, const char *table, tinfo *t)
{
    memset(t, 0, sizeof *t);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT name, type, pk FROM"
                                " pragma_table_xinfo(?1, 'main')"
                                " WHERE hidden = 0 ORDER BY cid",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dimple__sqlerr(db, rc, "map: read the schema");
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    size_t cap = 0;
    int r = DIMPLE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (dimple__grow((void **)&t->cols, &cap, t->n + 1, sizeof *t->cols)) {
            r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            break;
        }
        tcol *c = &t->cols[t->n++];
        const char *decl = (const char *)sqlite3_column_text(st, 1);
        c->name = strdup((const char *)sqlite3_column_text(st, 0));
        c->decl = strdup(decl ? decl : "");
        c->aff = affinity(decl);
        c->pk = sqlite3_column_int(st, 2);
        if (c->pk)
            t->n_key++;
        if (!c->name || !c->decl) {
            r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
            break;
        }
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE)
        r = dimple__sqlerr(db, rc, "map: read the schema");
    sqlite3_finalize(st);
    if (r == DIMPLE_OK && t->n == 0)
        r = dimple__seterr(db, DIMPLE_ENOTFOUND, "map: no table \"%s\"", table);
    if (r == DIMPLE_OK && t->n_key == 0)
        r = dimple__seterr(db, DIMPLE_ESCHEMA,
                           "map: table \"%s\" has no primary key", table);
    if (r)
        tinfo_free(t);
    return r;
}

/* The struct's fields matched to the table's columns. */
typedef struct mapping {
    tinfo t;
    size_t n;       /* mapped fields */
    size_t *field;  /* index into e->fields */
    size_t *col;    /* index into t.cols */
    size_t key[64]; /* mapped index of each key part, in key order */
} mapping;

static void mapping_free(mapping *m)
{
    tinfo_free(&m->t);
    free(m->field);
    free(m->col);
    memset(m, 0, sizeof *m);
}

static const char *ftype_name(dimple_field_type t)
{
    switch (t) {
    case DIMPLE_F_INT64:
        return "int64";
    case DIMPLE_F_INT32:
        return "int32";
    case DIMPLE_F_BOOL:
        return "bool";
    case DIMPLE_F_DOUBLE:
        return "double";
    case DIMPLE_F_STRING:
        return "string";
    case DIMPLE_F_CHARBUF:
        return "char buffer";
    case DIMPLE_F_BLOB:
        return "blob";
    default:
        return "unknown";
    }
}

static bool type_fits(dimple_field_type ft, char aff)
{
    if (aff == 'B' && ft != DIMPLE_F_BLOB) {
        /* an untyped column holds anything; a declared BLOB only blobs */
        return true;
    }
    switch (ft) {
    case DIMPLE_F_INT64:
    case DIMPLE_F_INT32:
    case DIMPLE_F_BOOL:
        return aff == 'I' || aff == 'N';
    case DIMPLE_F_DOUBLE:
        return aff == 'R' || aff == 'N';
    case DIMPLE_F_STRING:
    case DIMPLE_F_CHARBUF:
        return aff == 'T';
    case DIMPLE_F_BLOB:
        return aff == 'B';
    default:
        return false;
    }
}

static int resolve(dimple *db, const dimple_entity *e, mapping *m,
                   bool need_key)
{
    memset(m, 0, sizeof *m);
    if (!e || !e->table || (e->n_fields && !e->fields))
        return dimple__seterr(db, DIMPLE_EINVAL, "map: bad entity");
    int r = load_table(db, e->table, &m->t);
    if (r)
        return r;
    if (m->t.n_key > 64) {
        r = dimple__seterr(db, DIMPLE_ELIMIT,
                           "map \"%s\": a key of %zu columns (at most 64)",
                           e->table, m->t.n_key);
        goto out;
    }
    m->field = calloc(e->n_fields + 1, sizeof *m->field);
    m->col = calloc(e->n_fields + 1, sizeof *m->col);
    if (!m->field || !m->col) {
        r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    size_t have_key = 0;
    for (size_t i = 0; i < e->n_fields; i++) {
        const dimple_field *f = &e->fields[i];
        if (!f->column || f->type < DIMPLE_F_INT64 || f->type > DIMPLE_F_BLOB ||
            (f->type == DIMPLE_F_CHARBUF && f->size == 0)) {
            r = dimple__seterr(db, DIMPLE_EINVAL,
                               "map \"%s\": field %zu is malformed", e->table,
                               i);
            goto out;
        }
        for (size_t c = 0; c < m->t.n; c++) {
            if (sqlite3_stricmp(m->t.cols[c].name, f->column) != 0)
                continue;
            if (!type_fits(f->type, m->t.cols[c].aff)) {
                r = dimple__seterr(db, DIMPLE_ESCHEMA,
                                   "map \"%s\": field for column \"%s\" is"
                                   " a %s but the column is declared %s"
                                   " (%s affinity)",
                                   e->table, f->column, ftype_name(f->type),
                                   m->t.cols[c].decl[0] ? m->t.cols[c].decl
                                                        : "without a type",
                                   aff_name(m->t.cols[c].aff));
                goto out;
            }
            if (m->t.cols[c].pk) {
                m->key[m->t.cols[c].pk - 1] = m->n;
                have_key++;
            }
            m->field[m->n] = i;
            m->col[m->n++] = c;
            break;
        }
    }
    if (need_key && have_key != m->t.n_key) {
        r = dimple__seterr(db, DIMPLE_ESCHEMA,
                           "map \"%s\": the struct does not map every"
                           " primary-key column",
                           e->table);
        goto out;
    }
out:
    if (r)
        mapping_free(m);
    return r;
}

static void *at(void *obj, size_t off)
{
    return (char *)obj + off;
}

static int bind_field(dimple *db, sqlite3_stmt *st, int idx,
                      const dimple_field *f, const void *obj)
{
    const char *o = obj;
    int rc;
    if (f->nullable && *(const bool *)(o + f->null_offset))
        return sqlite3_bind_null(st, idx) == SQLITE_OK
                   ? DIMPLE_OK
                   : dimple__sqlerr(db, SQLITE_ERROR, "map: bind");
    switch (f->type) {
    case DIMPLE_F_INT64: {
        int64_t v;
        memcpy(&v, o + f->offset, sizeof v);
        rc = sqlite3_bind_int64(st, idx, v);
        break;
    }
    case DIMPLE_F_INT32: {
        int32_t v;
        memcpy(&v, o + f->offset, sizeof v);
        rc = sqlite3_bind_int64(st, idx, v);
        break;
    }
    case DIMPLE_F_BOOL:
        rc = sqlite3_bind_int(st, idx, *(const bool *)(o + f->offset) ? 1 : 0);
        break;
    case DIMPLE_F_DOUBLE: {
        double v;
        memcpy(&v, o + f->offset, sizeof v);
        rc = sqlite3_bind_double(st, idx, v);
        break;
    }
    case DIMPLE_F_STRING: {
        const char *s;
        memcpy(&s, o + f->offset, sizeof s);
        rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT)
               : sqlite3_bind_null(st, idx);
        break;
    }
    case DIMPLE_F_CHARBUF: {
        const char *s = o + f->offset;
        size_t n = strnlen(s, f->size);
        rc = n ? sqlite3_bind_text(st, idx, s, (int)n, SQLITE_TRANSIENT)
               : sqlite3_bind_null(st, idx);
        break;
    }
    case DIMPLE_F_BLOB: {
        const void *p;
        size_t n;
        memcpy(&p, o + f->offset, sizeof p);
        memcpy(&n, o + f->len_offset, sizeof n);
        rc = p ? sqlite3_bind_blob64(st, idx, p, n, SQLITE_TRANSIENT)
               : sqlite3_bind_null(st, idx);
        break;
    }
    default:
        rc = SQLITE_MISUSE;
    }
    return rc == SQLITE_OK ? DIMPLE_OK : dimple__sqlerr(db, rc, "map: bind");
}

static void clear_field(const dimple_field *f, void *obj)
{
    if (f->type == DIMPLE_F_STRING) {
        char *s;
        memcpy(&s, at(obj, f->offset), sizeof s);
        free(s);
        s = NULL;
        memcpy(at(obj, f->offset), &s, sizeof s);
    } else if (f->type == DIMPLE_F_BLOB) {
        void *p;
        size_t n = 0;
        memcpy(&p, at(obj, f->offset), sizeof p);
        free(p);
        p = NULL;
        memcpy(at(obj, f->offset), &p, sizeof p);
        memcpy(at(obj, f->len_offset), &n, sizeof n);
    }
}

void dimple_entity_clear(const dimple_entity *e, void *obj)
{
    if (!e || !obj)
        return;
    for (size_t i = 0; i < e->n_fields; i++)
        clear_field(&e->fields[i], obj);
}

void dimple_entity_free(const dimple_entity *e, void *objs, size_t n)
{
    if (!e || !objs)
        return;
    for (size_t i = 0; i < n; i++)
        dimple_entity_clear(e, (char *)objs + i * e->size);
    free(objs);
}

static int read_err(dimple *db, const dimple_entity *e, const dimple_field *f,
                    const char *why)
{
    return dimple__seterr(db, DIMPLE_ESCHEMA, "map \"%s\": column \"%s\": %s",
                          e->table, f->column, why);
}

/* Fill field f of obj from column i of st. */
static int read_field(dimple *db, const dimple_entity *e, const dimple_field *f,
                      void *obj, sqlite3_stmt *st, int i)
{
    int t = sqlite3_column_type(st, i);
    clear_field(f, obj);
    if (f->nullable)
        *(bool *)at(obj, f->null_offset) = t == SQLITE_NULL;
    if (t == SQLITE_NULL) {
        switch (f->type) {
        case DIMPLE_F_STRING:
        case DIMPLE_F_BLOB:
            return DIMPLE_OK;
        case DIMPLE_F_CHARBUF:
            memset(at(obj, f->offset), 0, f->size);
            return DIMPLE_OK;
        default:
            if (!f->nullable)
                return read_err(db, e, f,
                                "is NULL but the field is not nullable");
            memset(at(obj, f->offset), 0,
                   f->type == DIMPLE_F_BOOL
                       ? sizeof(bool)
                       : (f->type == DIMPLE_F_INT32 ? 4 : 8));
            return DIMPLE_OK;
        }
    }
    switch (f->type) {
    case DIMPLE_F_INT64:
    case DIMPLE_F_INT32:
    case DIMPLE_F_BOOL: {
        if (t != SQLITE_INTEGER)
            return read_err(db, e, f, "holds a non-integer value");
        int64_t v = sqlite3_column_int64(st, i);
        if (f->type == DIMPLE_F_INT64) {
            memcpy(at(obj, f->offset), &v, sizeof v);
        } else if (f->type == DIMPLE_F_INT32) {
            if (v < INT32_MIN || v > INT32_MAX)
                return read_err(db, e, f, "does not fit an int32");
            int32_t x = (int32_t)v;
            memcpy(at(obj, f->offset), &x, sizeof x);
        } else {
            *(bool *)at(obj, f->offset) = v != 0;
        }
        return DIMPLE_OK;
    }
    case DIMPLE_F_DOUBLE: {
        if (t != SQLITE_FLOAT && t != SQLITE_INTEGER)
            return read_err(db, e, f, "holds a non-number");
        double d = sqlite3_column_double(st, i);
        memcpy(at(obj, f->offset), &d, sizeof d);
        return DIMPLE_OK;
    }
    case DIMPLE_F_STRING: {
        if (t != SQLITE_TEXT)
            return read_err(db, e, f, "holds a non-text value");
        const unsigned char *s = sqlite3_column_text(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        char *copy = malloc(n + 1);
        if (!copy)
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        memcpy(copy, s, n);
        copy[n] = 0;
        memcpy(at(obj, f->offset), &copy, sizeof copy);
        return DIMPLE_OK;
    }
    case DIMPLE_F_CHARBUF: {
        if (t != SQLITE_TEXT)
            return read_err(db, e, f, "holds a non-text value");
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        if (n >= f->size)
            return dimple__seterr(db, DIMPLE_ELIMIT,
                                  "map \"%s\": column \"%s\": %zu bytes of"
                                  " text do not fit its %zu-byte buffer",
                                  e->table, f->column, n, f->size);
        memcpy(at(obj, f->offset), sqlite3_column_text(st, i), n);
        memset(at(obj, f->offset + n), 0, f->size - n);
        return DIMPLE_OK;
    }
    case DIMPLE_F_BLOB: {
        if (t != SQLITE_BLOB)
            return read_err(db, e, f, "holds a non-blob value");
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        void *p = malloc(n ? n : 1);
        if (!p)
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        if (n)
            memcpy(p, sqlite3_column_blob(st, i), n);
        memcpy(at(obj, f->offset), &p, sizeof p);
        memcpy(at(obj, f->len_offset), &n, sizeof n);
        return DIMPLE_OK;
    }
    default:
        return read_err(db, e, f, "unknown field type");
    }
}

static sqlite3_stmt *prepare_str(dimple *db, sqlite3_str *s, const char *what)
{
    char *sql = sqlite3_str_finish(s);
    sqlite3_stmt *st = NULL;
    if (!sql) {
        dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        dimple__sqlerr(db, rc, what);
        return NULL;
    }
    return st;
}

/* Finish s with "WHERE <key> = ?1 AND ...", prepare it and bind obj's key
 * fields. *out is the statement (NULL if it could not be prepared). */
static int prepare_by_key(dimple *db, const dimple_entity *e, const mapping *m,
                          const void *obj, sqlite3_str *s, const char *what,
                          sqlite3_stmt **out)
{
    int r = DIMPLE_OK;
    for (size_t k = 0; k < m->t.n_key; k++)
        sqlite3_str_appendf(s, "%s\"%w\" = ?%d", k ? " AND " : " WHERE ",
                            m->t.cols[m->col[m->key[k]]].name, (int)k + 1);
    if (!(*out = prepare_str(db, s, what)))
        return db->errcode;
    for (size_t k = 0; k < m->t.n_key && r == DIMPLE_OK; k++)
        r = bind_field(db, *out, (int)k + 1, &e->fields[m->field[m->key[k]]],
                       obj);
    return r;
}

/* The type a generated key gets in column c: 'B' (16 bytes) for a column
 * declared BLOB, 'T' (UUIDv7 text) for TEXT or untyped, 0 for the others
 * (an integer key is not generated). */
static char key_kind(const tcol *c)
{
    if (c->aff == 'B')
        return c->decl && *c->decl ? 'B' : 'T';
    return c->aff == 'T' ? 'T' : 0;
}

/* An empty key needs a new one: the field must be able to hold the type
 * its column gets, as dimple_json_save would write it. */
static int key_field_fits(dimple *db, const dimple_entity *e,
                          const dimple_field *f, const tcol *c)
{
    char kind = key_kind(c);
    if (kind == 'B' ? f->type == DIMPLE_F_BLOB : f->type != DIMPLE_F_BLOB)
        return DIMPLE_OK;
    return dimple__seterr(db, DIMPLE_ESCHEMA,
                          "map \"%s\": the key \"%s\" is empty and a new one"
                          " would be %s, which its %s field cannot hold",
                          e->table, c->name,
                          kind == 'B' ? "16 bytes (a BLOB column)"
                                      : "UUIDv7 text",
                          ftype_name(f->type));
}

/* Give an empty single key a new UUIDv7. */
static int fill_key(dimple *db, const dimple_entity *e, const mapping *m,
                    void *obj)
{
    if (m->t.n_key != 1)
        return DIMPLE_OK;
    const dimple_field *f = &e->fields[m->field[m->key[0]]];
    const tcol *c = &m->t.cols[m->col[m->key[0]]];
    uint8_t id[16];
    char text[37];
    int r;
    switch (f->type) {
    case DIMPLE_F_STRING: {
        char *s;
        memcpy(&s, at(obj, f->offset), sizeof s);
        if (s && *s)
            return DIMPLE_OK;
        if ((r = key_field_fits(db, e, f, c)) < 0)
            return r;
        dimple_uuid__v7(id);
        dimple_uuid__format(id, text);
        char *copy = strdup(text);
        if (!copy)
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        free(s);
        memcpy(at(obj, f->offset), &copy, sizeof copy);
        return DIMPLE_OK;
    }
    case DIMPLE_F_CHARBUF:
        if (*(char *)at(obj, f->offset))
            return DIMPLE_OK;
        if ((r = key_field_fits(db, e, f, c)) < 0)
            return r;
        if (f->size < 37)
            return dimple__seterr(db, DIMPLE_EINVAL,
                                  "map \"%s\": the key is empty and its"
                                  " buffer (%zu bytes) cannot hold a new"
                                  " UUID (37)",
                                  e->table, f->size);
        dimple_uuid__v7(id);
        dimple_uuid__format(id, at(obj, f->offset));
        return DIMPLE_OK;
    case DIMPLE_F_BLOB: {
        void *p;
        size_t n;
        memcpy(&p, at(obj, f->offset), sizeof p);
        memcpy(&n, at(obj, f->len_offset), sizeof n);
        if (p && n)
            return DIMPLE_OK;
        if ((r = key_field_fits(db, e, f, c)) < 0)
            return r;
        void *q = malloc(16);
        if (!q)
            return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        dimple_uuid__v7(q);
        free(p);
        n = 16;
        memcpy(at(obj, f->offset), &q, sizeof q);
        memcpy(at(obj, f->len_offset), &n, sizeof n);
        return DIMPLE_OK;
    }
    default:
        return DIMPLE_OK;
    }
}

int dimple_entity_save(dimple *db, const dimple_entity *e, void *obj)
{
    if (!db)
        return DIMPLE_EINVAL;
    if (!obj)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_entity_save: no object");
    mapping m;
    int r = resolve(db, e, &m, true);
    if (r)
        return r;
    sqlite3_stmt *st = NULL;
    if ((r = fill_key(db, e, &m, obj)))
        goto out;
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendf(s, "INSERT INTO \"%w\"(", e->table);
    for (size_t i = 0; i < m.n; i++)
        sqlite3_str_appendf(s, "%s\"%w\"", i ? ", " : "",
                            m.t.cols[m.col[i]].name);
    sqlite3_str_appendall(s, ") VALUES (");
    for (size_t i = 0; i < m.n; i++)
        sqlite3_str_appendf(s, "%s?%d", i ? ", " : "", (int)i + 1);
    sqlite3_str_appendall(s, ") ON CONFLICT(");
    for (size_t k = 0; k < m.t.n_key; k++)
        sqlite3_str_appendf(s, "%s\"%w\"", k ? ", " : "",
                            m.t.cols[m.col[m.key[k]]].name);
    sqlite3_str_appendall(s, ") DO ");
    size_t n_set = 0;
    for (size_t i = 0; i < m.n; i++) {
        if (m.t.cols[m.col[i]].pk)
            continue;
        sqlite3_str_appendf(s, "%s\"%w\" = excluded.\"%w\"",
                            n_set++ ? ", " : "UPDATE SET ",
                            m.t.cols[m.col[i]].name, m.t.cols[m.col[i]].name);
    }
    if (!n_set)
        sqlite3_str_appendall(s, "NOTHING");
    if (!(st = prepare_str(db, s, "dimple_entity_save"))) {
        r = db->errcode;
        goto out;
    }
    for (size_t i = 0; i < m.n && r == DIMPLE_OK; i++)
        r = bind_field(db, st, (int)i + 1, &e->fields[m.field[i]], obj);
    if (r)
        goto out;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        r = dimple__seterr(db, dimple__sqlite_code(rc),
                           "dimple_entity_save \"%s\": %s", e->table,
                           sqlite3_errmsg(db->sql));
        goto out;
    }
    r = dimple__ok(db);
out:
    sqlite3_finalize(st);
    mapping_free(&m);
    return dimple__finish(db, r);
}

int dimple_entity_get(dimple *db, const dimple_entity *e, void *obj)
{
    if (!db)
        return DIMPLE_EINVAL;
    if (!obj)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_entity_get: no object");
    mapping m;
    int r = resolve(db, e, &m, true);
    if (r)
        return r;
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendall(s, "SELECT ");
    for (size_t i = 0; i < m.n; i++)
        sqlite3_str_appendf(s, "%s\"%w\"", i ? ", " : "",
                            m.t.cols[m.col[i]].name);
    sqlite3_str_appendf(s, " FROM \"%w\"", e->table);
    sqlite3_stmt *st;
    if ((r = prepare_by_key(db, e, &m, obj, s, "dimple_entity_get", &st)))
        goto out;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = dimple__seterr(db, DIMPLE_ENOTFOUND,
                           "dimple_entity_get \"%s\": no row with that key",
                           e->table);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = dimple__sqlerr(db, rc, "dimple_entity_get");
        goto out;
    }
    for (size_t i = 0; i < m.n && r == DIMPLE_OK; i++)
        if (!m.t.cols[m.col[i]].pk)
            r = read_field(db, e, &e->fields[m.field[i]], obj, st, (int)i);
    if (r == DIMPLE_OK)
        r = dimple__ok(db);
out:
    sqlite3_finalize(st);
    mapping_free(&m);
    return r;
}

int dimple_entity_delete(dimple *db, const dimple_entity *e, const void *obj)
{
    if (!db)
        return DIMPLE_EINVAL;
    if (!obj)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_entity_delete: no object");
    mapping m;
    int r = resolve(db, e, &m, true);
    if (r)
        return r;
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendf(s, "DELETE FROM \"%w\"", e->table);
    sqlite3_stmt *st;
    if ((r = prepare_by_key(db, e, &m, obj, s, "dimple_entity_delete", &st)))
        goto out;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        r = dimple__seterr(db, dimple__sqlite_code(rc),
                           "dimple_entity_delete \"%s\": %s", e->table,
                           sqlite3_errmsg(db->sql));
    else if (sqlite3_changes(db->sql) == 0)
        r = dimple__seterr(db, DIMPLE_ENOTFOUND,
                           "dimple_entity_delete \"%s\": no row with that key",
                           e->table);
    else
        r = dimple__ok(db);
out:
    sqlite3_finalize(st);
    mapping_free(&m);
    return dimple__finish(db, r);
}

int dimple_entity_query_each(dimple *db, const dimple_entity *e,
                             const char *tail, const dimple_value *params,
                             size_t n_params, dimple_entity_cb cb,
                             void *payload)
{
    if (!db)
        return DIMPLE_EINVAL;
    if (!cb)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_entity_query: no callback");
    mapping m;
    int r = resolve(db, e, &m, false);
    if (r)
        return r;
    void *obj = calloc(1, e->size ? e->size : 1);
    sqlite3_stmt *st = NULL;
    if (!obj) {
        r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendall(s, "SELECT ");
    for (size_t i = 0; i < m.n; i++)
        sqlite3_str_appendf(s, "%s\"%w\"", i ? ", " : "",
                            m.t.cols[m.col[i]].name);
    if (!m.n)
        sqlite3_str_appendall(s, "1");
    sqlite3_str_appendf(s, " FROM \"%w\" %s", e->table, tail ? tail : "");
    if (!(st = prepare_str(db, s, "dimple_entity_query"))) {
        r = db->errcode;
        goto out;
    }
    if ((int)n_params != sqlite3_bind_parameter_count(st)) {
        r = dimple__seterr(
            db, DIMPLE_EINVAL,
            "dimple_entity_query \"%s\": %zu parameter(s) given, the"
            " SQL has %d",
            e->table, n_params, sqlite3_bind_parameter_count(st));
        goto out;
    }
    for (size_t i = 0; i < n_params; i++)
        if (dimple_value__bind(st, (int)i + 1, &params[i]) != SQLITE_OK) {
            r = dimple__sqlerr(db, SQLITE_ERROR, "dimple_entity_query: bind");
            goto out;
        }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(obj, 0, e->size);
        for (size_t i = 0; i < m.n && r == DIMPLE_OK; i++)
            r = read_field(db, e, &e->fields[m.field[i]], obj, st, (int)i);
        if (r == DIMPLE_OK)
            r = cb(payload, obj);
        dimple_entity_clear(e, obj);
        if (r)
            break;
    }
    if (r == DIMPLE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = dimple__sqlerr(db, rc, "dimple_entity_query");
    if (r == DIMPLE_OK)
        r = dimple__ok(db);
out:
    sqlite3_finalize(st);
    free(obj);
    mapping_free(&m);
    return r;
}

typedef struct collect {
    const dimple_entity *e;
    char *arr;
    size_t n, cap;
    bool oom;
} collect;

static int collect_one(void *payload, void *obj)
{
    collect *c = payload;
    if (dimple__grow((void **)&c->arr, &c->cap, c->n + 1, c->e->size)) {
        c->oom = true;
        return 1;
    }
    /* take the owned members: the struct handed in is cleared after */
    memcpy(c->arr + c->n * c->e->size, obj, c->e->size);
    memset(obj, 0, c->e->size);
    c->n++;
    return 0;
}

int dimple_entity_query(void **out, size_t *out_n, dimple *db,
                        const dimple_entity *e, const char *tail,
                        const dimple_value *params, size_t n_params)
{
    if (out)
        *out = NULL;
    if (out_n)
        *out_n = 0;
    if (!db)
        return DIMPLE_EINVAL;
    if (!out || !out_n)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_entity_query: no output");
    if (!e || !e->size)
        return dimple__seterr(db, DIMPLE_EINVAL, "map: bad entity");
    collect c = {e, NULL, 0, 0, false};
    int r = dimple_entity_query_each(db, e, tail, params, n_params, collect_one,
                                     &c);
    if (c.oom)
        r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    if (r) {
        dimple_entity_free(e, c.arr, c.n);
        return r < 0 ? r : DIMPLE_ERROR;
    }
    *out = c.arr;
    *out_n = c.n;
    return DIMPLE_OK;
}

/* ---------------------------------------------------------------- JSON */

static int row_json_cb(void *payload, size_t n, const char *const *names,
                       const dimple_value *values)
{
    return dimple_json_row(payload, n, names, values) == DIMPLE_OK ? 1 : 2;
}

static int get_json(dimple *db, const char *table, const tinfo *t,
                    const dimple_value *key, char **json_out)
{
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendf(s, "SELECT * FROM \"%w\"", table);
    size_t k = 0;
    for (int p = 1; p <= (int)t->n_key; p++)
        for (size_t i = 0; i < t->n; i++)
            if (t->cols[i].pk == p)
                sqlite3_str_appendf(s, "%s\"%w\" = ?%d",
                                    k++ ? " AND " : " WHERE ", t->cols[i].name,
                                    p);
    char *sql = sqlite3_str_finish(s);
    if (!sql)
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    *json_out = NULL;
    int r = dimple_exec(db, sql, key, t->n_key, row_json_cb, json_out);
    sqlite3_free(sql);
    if (r == 2)
        return dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
    if (r < 0)
        return r;
    if (!*json_out)
        return dimple__seterr(db, DIMPLE_ENOTFOUND,
                              "\"%s\": no row with that key", table);
    return dimple__ok(db);
}

int dimple_json_get(char **out, dimple *db, const char *table,
                    const dimple_value *key, size_t n_key)
{
    if (out)
        *out = NULL;
    if (!db)
        return DIMPLE_EINVAL;
    if (!table || !out || (n_key && !key))
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_json_get: bad arguments");
    tinfo t;
    int r = load_table(db, table, &t);
    if (r)
        return r;
    if (n_key != t.n_key)
        r = dimple__seterr(db, DIMPLE_EINVAL,
                           "dimple_json_get \"%s\": the key has %zu"
                           " column(s), %zu given",
                           table, t.n_key, n_key);
    else
        r = get_json(db, table, &t, key, out);
    tinfo_free(&t);
    return r;
}

int dimple_json_save(char **out, dimple *db, const char *table,
                     const char *json)
{
    if (out)
        *out = NULL;
    if (!db)
        return DIMPLE_EINVAL;
    if (!table || !json)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "dimple_json_save: bad arguments");
    tinfo t;
    int r = load_table(db, table, &t);
    if (r)
        return r;
    if (out && t.n_key > 64) { /* the saved row is read back by its key */
        r = dimple__seterr(db, DIMPLE_ELIMIT,
                           "dimple_json_save \"%s\": a key of %zu columns"
                           " (at most 64)",
                           table, t.n_key);
        tinfo_free(&t);
        return r;
    }
    sqlite3_stmt *js = NULL, *st = NULL;
    dimple_value *vals = calloc(t.n, sizeof *vals);
    bool *given = calloc(t.n, sizeof *given);
    unsigned char **blobs = calloc(t.n, sizeof *blobs);
    char uuid[37];
    uint8_t uuid_bytes[16];
    if (!vals || !given || !blobs) {
        r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
        goto out;
    }
    /* SQLite's JSON parser keeps integers exact (cJSON would not) */
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT key, type, value, CASE WHEN type ="
                                " 'object' THEN json_extract(value,"
                                " '$.\"$blob\"') END, json_type(?1) FROM"
                                " json_each(?1)",
                                -1, &js, NULL);
    if (rc != SQLITE_OK) {
        r = dimple__sqlerr(db, rc, "dimple_json_save");
        goto out;
    }
    sqlite3_bind_text(js, 1, json, -1, SQLITE_STATIC);
    /* values point into js's rows: keep them by copying into blobs[] */
    while ((rc = sqlite3_step(js)) == SQLITE_ROW) {
        if (strcmp((const char *)sqlite3_column_text(js, 4), "object") != 0) {
            r = dimple__seterr(db, DIMPLE_EINVAL,
                               "dimple_json_save \"%s\": not a JSON object",
                               table);
            goto out;
        }
        const char *col = (const char *)sqlite3_column_text(js, 0);
        const char *type = (const char *)sqlite3_column_text(js, 1);
        size_t c = 0;
        while (c < t.n && sqlite3_stricmp(t.cols[c].name, col) != 0)
            c++;
        if (c == t.n) {
            r = dimple__seterr(db, DIMPLE_EINVAL,
                               "dimple_json_save \"%s\": no column \"%s\"",
                               table, col);
            goto out;
        }
        given[c] = true;
        dimple_value *v = &vals[c];
        memset(v, 0, sizeof *v);
        if (strcmp(type, "null") == 0) {
            v->type = DIMPLE_NULL;
        } else if (strcmp(type, "integer") == 0) {
            *v = dimple_value_int(sqlite3_column_int64(js, 2));
        } else if (strcmp(type, "real") == 0) {
            *v = dimple_value_real(sqlite3_column_double(js, 2));
        } else if (strcmp(type, "true") == 0 || strcmp(type, "false") == 0) {
            *v = dimple_value_int(type[0] == 't');
        } else if (strcmp(type, "text") == 0) {
            size_t n = (size_t)sqlite3_column_bytes(js, 2);
            free(blobs[c]);
            blobs[c] = malloc(n + 1);
            if (!blobs[c]) {
                r = dimple__seterr(db, DIMPLE_ENOMEM, "out of memory");
                goto out;
            }
            memcpy(blobs[c], sqlite3_column_text(js, 2), n + 1);
            *v = (dimple_value){DIMPLE_TEXT, 0, 0, blobs[c], n};
        } else if (strcmp(type, "object") == 0 &&
                   sqlite3_column_type(js, 3) == SQLITE_TEXT) {
            size_t n;
            free(blobs[c]);
            blobs[c] = NULL;
            if (dimple_base64__decode((const char *)sqlite3_column_text(js, 3),
                                      (size_t)sqlite3_column_bytes(js, 3),
                                      &blobs[c], &n) < 0) {
                r = dimple__seterr(db, DIMPLE_EINVAL,
                                   "dimple_json_save \"%s\": column \"%s\":"
                                   " bad base64 in $blob",
                                   table, col);
                goto out;
            }
            *v = (dimple_value){DIMPLE_BLOB, 0, 0, blobs[c], n};
        } else {
            r = dimple__seterr(db, DIMPLE_EINVAL,
                               "dimple_json_save \"%s\": column \"%s\": a"
                               " JSON %s is not a value (use"
                               " {\"$blob\":\"base64\"} for bytes)",
                               table, col, type);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        r = dimple__seterr(db, DIMPLE_EINVAL, "dimple_json_save \"%s\": %s",
                           table, sqlite3_errmsg(db->sql));
        goto out;
    }
    /* an absent or empty single key: a new UUIDv7, typed as
     * dimple_entity_save types it (key_kind) */
    if (t.n_key == 1) {
        for (size_t c = 0; c < t.n; c++) {
            if (!t.cols[c].pk)
                continue;
            bool empty =
                !given[c] || vals[c].type == DIMPLE_NULL ||
                ((vals[c].type == DIMPLE_TEXT || vals[c].type == DIMPLE_BLOB) &&
                 vals[c].n == 0);
            char kind = key_kind(&t.cols[c]);
            if (empty && kind) {
                dimple_uuid__v7(uuid_bytes);
                if (kind == 'B') {
                    vals[c] = dimple_value_blob(uuid_bytes, 16);
                } else {
                    dimple_uuid__format(uuid_bytes, uuid);
                    vals[c] = dimple_value_text(uuid);
                }
                given[c] = true;
            }
        }
    }
    for (size_t c = 0; c < t.n; c++)
        if (t.cols[c].pk && !given[c]) {
            r = dimple__seterr(db, DIMPLE_EINVAL,
                               "dimple_json_save \"%s\": the key column"
                               " \"%s\" is missing",
                               table, t.cols[c].name);
            goto out;
        }
    sqlite3_str *s = sqlite3_str_new(db->sql);
    sqlite3_str_appendf(s, "INSERT INTO \"%w\"(", table);
    size_t k = 0;
    for (size_t c = 0; c < t.n; c++)
        if (given[c])
            sqlite3_str_appendf(s, "%s\"%w\"", k++ ? ", " : "", t.cols[c].name);
    sqlite3_str_appendall(s, ") VALUES (");
    for (size_t i = 0; i < k; i++)
        sqlite3_str_appendf(s, "%s?%d", i ? ", " : "", (int)i + 1);
    sqlite3_str_appendall(s, ") ON CONFLICT(");
    k = 0;
    for (int p = 1; p <= (int)t.n_key; p++)
        for (size_t c = 0; c < t.n; c++)
            if (t.cols[c].pk == p)
                sqlite3_str_appendf(s, "%s\"%w\"", k++ ? ", " : "",
                                    t.cols[c].name);
    sqlite3_str_appendall(s, ") DO ");
    k = 0;
    for (size_t c = 0; c < t.n; c++)
        if (given[c] && !t.cols[c].pk)
            sqlite3_str_appendf(s, "%s\"%w\" = excluded.\"%w\"",
                                k++ ? ", " : "UPDATE SET ", t.cols[c].name,
                                t.cols[c].name);
    if (!k)
        sqlite3_str_appendall(s, "NOTHING");
    if (!(st = prepare_str(db, s, "dimple_json_save"))) {
        r = db->errcode;
        goto out;
    }
    int idx = 1;
    for (size_t c = 0; c < t.n; c++)
        if (given[c] && dimple_value__bind(st, idx++, &vals[c]) != SQLITE_OK) {
            r = dimple__sqlerr(db, SQLITE_ERROR, "dimple_json_save: bind");
            goto out;
        }
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        r = dimple__seterr(db, dimple__sqlite_code(rc),
                           "dimple_json_save \"%s\": %s", table,
                           sqlite3_errmsg(db->sql));
        goto out;
    }
    if (out) {
        dimple_value key[64];
        size_t nk = 0;
        for (int p = 1; p <= (int)t.n_key && nk < 64; p++)
            for (size_t c = 0; c < t.n; c++)
                if (t.cols[c].pk == p)
                    key[nk++] = vals[c];
        r = get_json(db, table, &t, key, out);
    } else {
        r = dimple__ok(db);
    }
out:
    sqlite3_finalize(js);
    sqlite3_finalize(st);
    if (blobs)
        for (size_t c = 0; c < t.n; c++)
            free(blobs[c]);
    free(blobs);
    free(vals);
    free(given);
    tinfo_free(&t);
    return dimple__finish(db, r);
}
