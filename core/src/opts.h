/*
 * opts.h — the one check of a versioned options struct of the app API
 * (internal; opts.c). Every such struct's first member is size_t size,
 * set by its *_INIT macro.
 */
#ifndef DIMPLE_OPTS_H
#define DIMPLE_OPTS_H

#include "dimple.h"

#include <stddef.h>

/* opts NULL leaves *copy (the defaults, in the library's layout of `ours`
 * bytes) as it is; a size of 0, below `first` (the first published
 * layout) or above `ours` is DIMPLE_EINVAL naming the struct; otherwise
 * the caller's size bytes are copied over the defaults, so fields past a
 * smaller size keep theirs. name: "dimple_sync_options". */
int dimple__opts(dimple *db, void *copy, size_t ours, size_t first,
                 const void *opts, const char *name);

#endif /* DIMPLE_OPTS_H */
