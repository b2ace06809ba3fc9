/* dimple.c — placeholder; the foundation issue writes the handle. */
#include "internal.h"

const char *dimple_version(void)
{
    return DIMPLE_VERSION;
}
