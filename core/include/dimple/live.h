/* dimple/live.h — part of the DimpleDb app API; include <dimple.h>. */
#ifndef DIMPLE_LIVE_H
#define DIMPLE_LIVE_H

#include <dimple/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_LIVE_H */
