/*
 * sys/snapshotter.h: the snapshotter backend interface, for implementers (see docs/STYLE.md).
 * Being written; nothing is declared here yet.
 */
#ifndef IMAGEBUILD_SYS_SNAPSHOTTER_H
#define IMAGEBUILD_SYS_SNAPSHOTTER_H

#include "../snapshot.h"

IB_BEGIN_DECL

IB_END_DECL

#endif
