/* dimple/sync.h — part of the DimpleDb app API; include <dimple.h>. */
#ifndef DIMPLE_SYNC_H
#define DIMPLE_SYNC_H

#include <dimple/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_SYNC_H */
