/*
 * fuzz_batch.c — libFuzzer target for the batch parser (core/src/batch.c).
 * Any input: decode must not crash, leak or read out of bounds. A batch it
 * accepts must re-encode, and decode again to the same changes (the codec
 * is exact on everything the validator lets through).
 */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_value(const dimple_value *a, const dimple_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case DIMPLE_INTEGER:
        return a->i == b->i;
    case DIMPLE_REAL:
        return memcmp(&a->r, &b->r, sizeof a->r) == 0;
    case DIMPLE_TEXT:
    case DIMPLE_BLOB:
        return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
    default:
        return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dimple_batch a, b;
    dimple_batch_enc e;
    char err[1024];

    if (dimple_batch__decode(&a, "fuzz", data, size, NULL, NULL, err,
                             sizeof err) != DIMPLE_OK)
        return 0;
    dimple_batch__enc_init(&e, a.author, DIMPLE_BATCH_MAX_CHANGES,
                           DIMPLE_BATCH_MAX_OBJECT);
    for (size_t i = 0; i < a.n; i++) {
        int rc = dimple_batch__enc_add(&e, &a.changes[i]);
        if (rc != DIMPLE_OK)
            abort(); /* the validator let through what the writer refuses */
    }
    if (dimple_batch__enc_finish(&e) != DIMPLE_OK)
        abort();
    if (dimple_batch__decode(&b, "fuzz2", e.p, e.n, a.author, a.changes[0].id,
                             err, sizeof err) != DIMPLE_OK)
        abort();
    if (b.n != a.n)
        abort();
    for (size_t i = 0; i < a.n; i++) {
        const dimple_change *x = &a.changes[i], *y = &b.changes[i];
        if (memcmp(x->id, y->id, 16) || strcmp(x->table, y->table) ||
            x->op != y->op || x->n_key != y->n_key || x->n_cols != y->n_cols)
            abort();
        for (size_t k = 0; k < x->n_key; k++)
            if (!same_value(&x->key[k], &y->key[k]))
                abort();
        for (size_t k = 0; k < x->n_cols; k++)
            if (strcmp(x->col_names[k], y->col_names[k]) ||
                !same_value(&x->cols[k], &y->cols[k]))
                abort();
    }
    dimple_batch__free(&b);
    dimple_batch__enc_free(&e);
    dimple_batch__free(&a);
    return 0;
}
