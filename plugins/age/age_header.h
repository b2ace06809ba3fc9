/* age_header.h — header parse/serialize and MAC (declared in
 * age_internal.h; this header exists so the parser has a home). */
#ifndef AGE_HEADER_H
#define AGE_HEADER_H
#include "age_internal.h"
#endif
