/*
 * types.h: the opaque handles of every layer. Each belongs to one layer's
 * header, which declares the functions that make and free it.
 */
#ifndef IMAGEBUILD_TYPES_H
#define IMAGEBUILD_TYPES_H

#include "common.h"

IB_BEGIN_DECL

/* parse.h */
typedef struct ib_dockerfile ib_dockerfile;
typedef struct ib_ignore ib_ignore;
/* plan.h */
typedef struct ib_plan ib_plan;
typedef struct ib_checks ib_checks;
/* execute.h, sys/isolation.h */
typedef struct ib_isolation ib_isolation;
/* snapshot.h, sys/snapshotter.h */
typedef struct ib_snapshotter ib_snapshotter;
/* store.h */
typedef struct ib_store ib_store;
typedef struct ib_reference ib_reference;
typedef struct ib_image ib_image;
/* push.h */
typedef struct ib_remote ib_remote;
/* build.h, container.h */
typedef struct ib_builder ib_builder;
typedef struct ib_container ib_container;

IB_END_DECL

#endif
