/* dimple/sync.h — part of the DimpleDb app API; include <dimple.h>.
 *
 * Sync: push this author's changes to the configured storage and pull
 * every other author's, through the remote format of docs/FORMAT.md.
 * Replicas that have seen the same changes hold the same tables, whatever
 * the order, the crashes and the faults (docs/sync.md).
 */
#ifndef DIMPLE_SYNC_H
#define DIMPLE_SYNC_H

#include <dimple/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;

typedef enum dimple_sync_phase {
    DIMPLE_SYNC_PUSH = 1, /* writing this author's batches */
    DIMPLE_SYNC_PULL = 2  /* reading and applying other authors' batches */
} dimple_sync_phase;

/* Where a sync is: reported after each batch written or applied. All
 * pointers are borrowed for the call. */
typedef struct dimple_sync_progress {
    dimple_sync_phase phase;
    const char *author;     /* UUID text of the log being moved */
    const char *key;        /* the object just written or applied */
    uint64_t batches_done;  /* in this phase, this call */
    uint64_t batches_known; /* pull: batches listed so far (>= done);
                               push: batches_done (the end is unknown) */
    uint64_t changes_done;  /* in this phase, this call */
    uint64_t bytes_done;    /* stored bytes, this phase, this call */
} dimple_sync_progress;

/* Return 0 to go on; anything else stops the sync after the current batch
 * (everything done so far is kept) and dimple_sync returns that value,
 * with "sync stopped by the progress callback". Called on the thread that
 * called dimple_sync. */
typedef int (*dimple_sync_progress_cb)(void *payload,
                                       const dimple_sync_progress *p);

/* dimple_sync_options.flags */
#define DIMPLE_SYNC_NO_PUSH 1u /* only pull */
#define DIMPLE_SYNC_NO_PULL 2u /* only push */

/* dimple_sync_options o = DIMPLE_SYNC_OPTIONS_INIT; then set fields.
 * NULL options = defaults. */
typedef struct dimple_sync_options {
    size_t size; /* set by DIMPLE_SYNC_OPTIONS_INIT */
    dimple_sync_progress_cb progress;
    void *payload;
    unsigned flags; /* DIMPLE_SYNC_NO_PUSH | DIMPLE_SYNC_NO_PULL */
    /* Stop after this many batches pushed, and this many pulled (0: no
     * limit): bounded work per call; a later call goes on from there. */
    uint64_t max_batches;
} dimple_sync_options;
#define DIMPLE_SYNC_OPTIONS_INIT DIMPLE_INIT_(dimple_sync_options)

/* What one dimple_sync call did (filled even when it fails, up to size):
 * dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT. */
typedef struct dimple_sync_stats {
    size_t size; /* set by DIMPLE_SYNC_STATS_INIT; kept by dimple_sync */
    uint64_t batches_pushed, changes_pushed, bytes_pushed;
    uint64_t batches_pulled, changes_pulled, bytes_pulled;
    uint64_t requests; /* storage requests (list, get, put, ...) made */
    uint64_t authors;  /* other authors found in the store */
    uint64_t errors;   /* failures (a bad batch, a failed request, ...) */
    double seconds;    /* wall-clock time of the call */
} dimple_sync_stats;
#define DIMPLE_SYNC_STATS_INIT DIMPLE_INIT_(dimple_sync_stats)

/* Push this author's changes that are not in the store yet, then pull and
 * apply every other author's new batches (each batch and its cursor in one
 * SQLite transaction). A failure with one author's log (a corrupt batch, a
 * failed read) stops that author only: the others still sync, and the
 * call returns the first error (its message names the object, and says
 * how many more failed). Requires a [storage]; the [resolver] (default
 * lww) decides conflicts. opts and out may be NULL. */
DIMPLE_API int dimple_sync(dimple_sync_stats *out, dimple *db,
                           const dimple_sync_options *opts);

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_SYNC_H */
