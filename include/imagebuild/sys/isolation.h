/*
 * sys/isolation.h: the isolation backend interface, for implementers (see docs/STYLE.md).
 * Being written; nothing is declared here yet.
 */
#ifndef IMAGEBUILD_SYS_ISOLATION_H
#define IMAGEBUILD_SYS_ISOLATION_H

#include "../execute.h"

IB_BEGIN_DECL

IB_END_DECL

#endif
