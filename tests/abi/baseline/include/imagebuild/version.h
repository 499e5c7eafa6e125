/*
 * version.h: the library's version, at compile time and at run time.
 */
#ifndef IMAGEBUILD_VERSION_H
#define IMAGEBUILD_VERSION_H

#include "common.h"

IB_BEGIN_DECL

#define IB_VERSION "0.1.0"
#define IB_VERSION_MAJOR 0
#define IB_VERSION_MINOR 1
#define IB_VERSION_PATCH 0

/** The version of the library actually linked. */
IB_EXTERN(void) ib_version(int *major, int *minor, int *patch);

/** The version as a string, "0.1.0". */
IB_EXTERN(const char *) ib_version_string(void);

IB_END_DECL

#endif
