/*
 * container.h: containers: create from an image, run in it, commit it (the build layer) (see docs/ARCHITECTURE.md).
 * Being written; nothing is declared here yet.
 */
#ifndef IMAGEBUILD_CONTAINER_H
#define IMAGEBUILD_CONTAINER_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "parse.h"
#include "plan.h"
#include "execute.h"
#include "snapshot.h"
#include "store.h"
#include "push.h"

IB_BEGIN_DECL

IB_END_DECL

#endif
