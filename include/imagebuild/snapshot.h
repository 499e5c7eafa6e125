/*
 * snapshot.h: the public API of the snapshot layer (see docs/ARCHITECTURE.md).
 * Being written; nothing is declared here yet.
 */
#ifndef IMAGEBUILD_SNAPSHOT_H
#define IMAGEBUILD_SNAPSHOT_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "store.h"

IB_BEGIN_DECL

IB_END_DECL

#endif
