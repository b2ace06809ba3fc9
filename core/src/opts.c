/*
 * opts.c — the one check of a versioned options struct of the app API
 * (opts.h).
 */
#include "opts.h"

#include "err.h"

#include <ctype.h>
#include <string.h>

int dimple__opts(dimple *db, void *copy, size_t ours, size_t first,
                 const void *opts, const char *name)
{
    char macro[64];
    size_t size, i;
    if (!opts)
        return DIMPLE_OK;
    memcpy(&size, opts, sizeof size);
    for (i = 0; name[i] && i < sizeof macro - 1; i++)
        macro[i] = (char)toupper((unsigned char)name[i]);
    macro[i] = '\0';
    if (size == 0)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "%s.size is 0: initialise it with %s_INIT", name,
                              macro);
    if (size < first || size > ours)
        return dimple__seterr(db, DIMPLE_EINVAL,
                              "%s.size is %zu, this library's is %zu (%zu at"
                              " least): initialise it with %s_INIT",
                              name, size, ours, first, macro);
    memcpy(copy, opts, size);
    return DIMPLE_OK;
}
