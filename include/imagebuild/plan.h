/*
 * plan.h: the public API of the plan layer (see docs/ARCHITECTURE.md).
 * Being written; nothing is declared here yet.
 */
#ifndef IMAGEBUILD_PLAN_H
#define IMAGEBUILD_PLAN_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "parse.h"

IB_BEGIN_DECL

IB_END_DECL

#endif
