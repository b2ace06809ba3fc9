/* dimple/history.h — part of the DimpleDb app API; include <dimple.h>. */
#ifndef DIMPLE_HISTORY_H
#define DIMPLE_HISTORY_H

#include <dimple/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dimple dimple;

#ifdef __cplusplus
}
#endif
#endif /* DIMPLE_HISTORY_H */
