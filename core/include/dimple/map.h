/* dimple/map.h — part of the DimpleDb app API; include <dimple.h>.
 *
 * Struct <-> row mapping. An entity describes a C struct with a table of
 * fields (offsetof), each bound to a column by name:
 *
 *   typedef struct todo { char id[37]; char *title; int64_t prio;
 *                         bool done; double score; bool score_null;
 *                         void *pic; size_t pic_len; } todo;
 *   static const dimple_field todo_fields[] = {
 *       DIMPLE_FIELD_CHARBUF(todo, id, "id"),
 *       DIMPLE_FIELD_STRING(todo, title, "title"),
 *       DIMPLE_FIELD_INT64(todo, prio, "prio"),
 *       DIMPLE_FIELD_BOOL(todo, done, "done"),
 *       DIMPLE_FIELD_DOUBLE_NULL(todo, score, score_null, "score"),
 *       DIMPLE_FIELD_BLOB(todo, pic, pic_len, "pic"),
 *   };
 *   static const dimple_entity todo_entity = {
 *       "todo", sizeof(todo), todo_fields, 6};
 *
 * Only columns present in both the struct and the table are mapped; the
 * primary-key columns come from the table. A field whose type disagrees
 * with its column's declared type (its SQLite affinity) is an error
 * (DIMPLE_ESCHEMA) that names the table, column and both types. Writes go
 * through SQL, so they are tracked and synced like any other.
 *
 * Ownership: STRING and BLOB fields filled by
 * dimple_entity_get/dimple_entity_query are malloc'd and belong to the struct:
 * dimple_entity_clear() frees them; dimple_entity_free() frees an array from
 * dimple_entity_query (members and array).
 */
#ifndef DIMPLE_MAP_H
#define DIMPLE_MAP_H

#include <dimple/common.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;

typedef enum dimple_field_type {
    DIMPLE_F_INT64 = 1, /* int64_t: INTEGER (or NUMERIC) column */
    DIMPLE_F_INT32,     /* int32_t: INTEGER; out of range is an error */
    DIMPLE_F_BOOL,      /* bool: INTEGER 0/1 */
    DIMPLE_F_DOUBLE,    /* double: REAL (or NUMERIC) */
    DIMPLE_F_STRING,    /* char *, owned (malloc'd); NULL is SQL NULL */
    DIMPLE_F_CHARBUF,   /* char[size], NUL-terminated; "" is NULL on read */
    DIMPLE_F_BLOB       /* void * owned + size_t length; NULL is SQL NULL */
} dimple_field_type;

typedef struct dimple_field {
    const char *column;
    dimple_field_type type;
    size_t offset;      /* offsetof(struct, member) */
    size_t size;        /* CHARBUF: the buffer's size */
    size_t len_offset;  /* BLOB: offsetof the size_t length */
    int nullable;       /* INT64/INT32/BOOL/DOUBLE: a bool "is NULL" */
    size_t null_offset; /* ... at this offset */
} dimple_field;

typedef struct dimple_entity {
    const char *table;
    size_t size; /* sizeof(struct) */
    const dimple_field *fields;
    size_t n_fields;
} dimple_entity;

#define DIMPLE_FIELD_(T, m, col, ty, sz, lo)                                   \
    {                                                                          \
        (col), (ty), offsetof(T, m), (sz), (lo), 0, 0                          \
    }
#define DIMPLE_FIELD_INT64(T, m, col)                                          \
    DIMPLE_FIELD_(T, m, col, DIMPLE_F_INT64, 0, 0)
#define DIMPLE_FIELD_INT32(T, m, col)                                          \
    DIMPLE_FIELD_(T, m, col, DIMPLE_F_INT32, 0, 0)
#define DIMPLE_FIELD_BOOL(T, m, col)                                           \
    DIMPLE_FIELD_(T, m, col, DIMPLE_F_BOOL, 0, 0)
#define DIMPLE_FIELD_DOUBLE(T, m, col)                                         \
    DIMPLE_FIELD_(T, m, col, DIMPLE_F_DOUBLE, 0, 0)
#define DIMPLE_FIELD_STRING(T, m, col)                                         \
    DIMPLE_FIELD_(T, m, col, DIMPLE_F_STRING, 0, 0)
#define DIMPLE_FIELD_CHARBUF(T, m, col)                                        \
    DIMPLE_FIELD_(T, m, col, DIMPLE_F_CHARBUF, sizeof(((T *)0)->m), 0)
#define DIMPLE_FIELD_BLOB(T, m, len, col)                                      \
    DIMPLE_FIELD_(T, m, col, DIMPLE_F_BLOB, 0, offsetof(T, len))
/* Scalar fields that can be NULL: flag is a bool member, true = NULL. */
#define DIMPLE_FIELD_NULL_(T, m, flag, col, ty)                                \
    {                                                                          \
        (col), (ty), offsetof(T, m), 0, 0, 1, offsetof(T, flag)                \
    }
#define DIMPLE_FIELD_INT64_NULL(T, m, flag, col)                               \
    DIMPLE_FIELD_NULL_(T, m, flag, col, DIMPLE_F_INT64)
#define DIMPLE_FIELD_INT32_NULL(T, m, flag, col)                               \
    DIMPLE_FIELD_NULL_(T, m, flag, col, DIMPLE_F_INT32)
#define DIMPLE_FIELD_BOOL_NULL(T, m, flag, col)                                \
    DIMPLE_FIELD_NULL_(T, m, flag, col, DIMPLE_F_BOOL)
#define DIMPLE_FIELD_DOUBLE_NULL(T, m, flag, col)                              \
    DIMPLE_FIELD_NULL_(T, m, flag, col, DIMPLE_F_DOUBLE)

/* Insert or update obj (by its key). An empty key (a single TEXT key that
 * is NULL or "", or an empty BLOB key) gets a new UUIDv7 (text, or 16
 * bytes), written back into obj (a STRING key is then malloc'd). */
DIMPLE_API int dimple_entity_save(dimple *db, const dimple_entity *e,
                                  void *obj);

/* Fill obj from the row whose key fields are set in obj.
 * DIMPLE_ENOTFOUND when there is none. Clears obj's owned members first
 * only if you did: call dimple_entity_clear before reusing a struct. */
DIMPLE_API int dimple_entity_get(dimple *db, const dimple_entity *e, void *obj);

/* Delete the row with obj's key (DIMPLE_ENOTFOUND if none). */
DIMPLE_API int dimple_entity_delete(dimple *db, const dimple_entity *e,
                                    const void *obj);

/* The rows of `SELECT <mapped columns> FROM <table> <tail>`, tail being
 * e.g. "WHERE done = ?1 ORDER BY title" (or NULL), into a new array of
 * *out_n structs (*out NULL when none). Free with dimple_entity_free(). */
DIMPLE_API int dimple_entity_query(void **out, size_t *out_n, dimple *db,
                                   const dimple_entity *e, const char *tail,
                                   const dimple_value *params, size_t n_params);

/* The same, one struct per callback (valid for the call: its owned
 * members are freed after it returns). Non-zero from cb stops. */
typedef int (*dimple_entity_cb)(void *payload, void *obj);
DIMPLE_API int dimple_entity_query_each(dimple *db, const dimple_entity *e,
                                        const char *tail,
                                        const dimple_value *params,
                                        size_t n_params, dimple_entity_cb cb,
                                        void *payload);

/* Free the owned members of one struct (NULL fine). */
DIMPLE_API void dimple_entity_clear(const dimple_entity *e, void *obj);
/* Free an array from dimple_entity_query: members and the array (NULL fine). */
DIMPLE_API void dimple_entity_free(const dimple_entity *e, void *objs,
                                   size_t n);

/* ------------------------------------------------------------- JSON */

/* Insert or update one row of table from a JSON object (keys are column
 * names; numbers, strings, null, {"$blob":"<base64>"}; integers are exact
 * to 64 bits; the column's affinity converts, so the strings that
 * dimple_json_query writes for big integers read back as integers). An
 * absent or empty single key gets a new UUIDv7 (as dimple_entity_save:
 * text for a TEXT key, 16 bytes for a BLOB key). *out (out may be NULL)
 * receives the saved row as JSON (dimple_free). */
DIMPLE_API int dimple_json_save(char **out, dimple *db, const char *table,
                                const char *json);
/* One row by key as a JSON object into *out (dimple_free);
 * DIMPLE_ENOTFOUND. */
DIMPLE_API int dimple_json_get(char **out, dimple *db, const char *table,
                               const dimple_value *key, size_t n_key);

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_MAP_H */
