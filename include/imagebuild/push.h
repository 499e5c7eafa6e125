/*
 * push.h: the public API of the push layer (see docs/ARCHITECTURE.md).
 * Being written; nothing is declared here yet.
 */
#ifndef IMAGEBUILD_PUSH_H
#define IMAGEBUILD_PUSH_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "store.h"

IB_BEGIN_DECL

IB_END_DECL

#endif
