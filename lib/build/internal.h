/* Internal interfaces shared by the files of the build layer. */
#ifndef IB_BUILD_INTERNAL_H
#define IB_BUILD_INTERNAL_H

#include "imagebuild/build.h"

/*
 * Apply one config instruction (CMD, ENV, EXPOSE, ... as `commit -c` and
 * `import --change` take them) to `config`, with Docker's semantics and
 * without a history entry.
 */
int ib_build__apply_change(ib_image_config *config, const ib_instruction *in);

#endif
