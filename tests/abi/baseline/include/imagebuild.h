/*
 * libimagebuild: the umbrella header. Programs include this; the library's
 * own layers include only the headers they may use (see docs/ARCHITECTURE.md).
 */
#ifndef IMAGEBUILD_H
#define IMAGEBUILD_H

#include "imagebuild/common.h"
#include "imagebuild/errors.h"
#include "imagebuild/types.h"
#include "imagebuild/buffer.h"
#include "imagebuild/digest.h"
#include "imagebuild/version.h"
#include "imagebuild/parse.h"
#include "imagebuild/plan.h"
#include "imagebuild/execute.h"
#include "imagebuild/snapshot.h"
#include "imagebuild/store.h"
#include "imagebuild/push.h"
#include "imagebuild/build.h"
#include "imagebuild/container.h"

#endif
