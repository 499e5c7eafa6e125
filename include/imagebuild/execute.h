/*
 * execute.h: the public API of the execute layer (see docs/ARCHITECTURE.md).
 * Being written; nothing is declared here yet.
 */
#ifndef IMAGEBUILD_EXECUTE_H
#define IMAGEBUILD_EXECUTE_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"


IB_BEGIN_DECL

IB_END_DECL

#endif
