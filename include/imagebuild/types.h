/*
 * types.h: the opaque handles of every layer. Each belongs to one layer's
 * header, which declares the functions that make and free it.
 */
#ifndef IMAGEBUILD_TYPES_H
#define IMAGEBUILD_TYPES_H

#include "common.h"

IB_BEGIN_DECL

/* parse.h */
/** A parsed Dockerfile: its syntax tree (parse.h). */
typedef struct ib_dockerfile ib_dockerfile;
/** Compiled .dockerignore patterns (parse.h). */
typedef struct ib_ignore ib_ignore;
/* plan.h */
/** What to build and in which order (plan.h). */
typedef struct ib_plan ib_plan;
/** The warnings of the build checks (plan.h). */
typedef struct ib_checks ib_checks;
/* execute.h, sys/isolation.h */
/** An isolation backend (execute.h; implemented through sys/isolation.h). */
typedef struct ib_isolation ib_isolation;
/* snapshot.h, sys/snapshotter.h */
/** A snapshotter (snapshot.h; implemented through sys/snapshotter.h). */
typedef struct ib_snapshotter ib_snapshotter;
/* store.h */
/** An open image store (store.h). */
typedef struct ib_store ib_store;
/** A parsed image reference (store.h). */
typedef struct ib_reference ib_reference;
/** An image of the store (store.h). */
typedef struct ib_image ib_image;
/* push.h */
/** Internal to the push layer: no public function takes or returns it. */
typedef struct ib_remote ib_remote;
/* build.h, container.h */
/** Internal to the build layer: no public function takes or returns it. */
typedef struct ib_builder ib_builder;
/** A container: a writable snapshot of an image and its record (container.h). */
typedef struct ib_container ib_container;

IB_END_DECL

#endif
