/*
 * libimagebuild: the umbrella header. Programs include this; the library's
 * own layers include only the headers they may use (see ARCHITECTURE.md).
 */
#ifndef IMAGEBUILD_H
#define IMAGEBUILD_H

#include "imagebuild/common.h"
#include "imagebuild/errors.h"
#include "imagebuild/types.h"
#include "imagebuild/buffer.h"
#include "imagebuild/digest.h"
#include "imagebuild/version.h"

#endif
