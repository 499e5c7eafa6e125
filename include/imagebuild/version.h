/*
 * version.h: the library's version, at compile time and at run time.
 */
#ifndef IMAGEBUILD_VERSION_H
#define IMAGEBUILD_VERSION_H

#include "common.h"

IB_BEGIN_DECL

/** The version of the headers, as a string. */
#define IB_VERSION "0.2.0"
/** The major version of the headers. */
#define IB_VERSION_MAJOR 0
/** The minor version of the headers. */
#define IB_VERSION_MINOR 2
/** The patch version of the headers. */
#define IB_VERSION_PATCH 0

/** The version of the library actually linked. */
IB_EXTERN(void) ib_version(int *major, int *minor, int *patch);

/** The version as a string, "0.2.0". */
IB_EXTERN(const char *) ib_version_string(void);

IB_END_DECL

#endif
