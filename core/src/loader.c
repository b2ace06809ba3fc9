/* loader.c — written by the foundation issue. */
#include "internal.h"
