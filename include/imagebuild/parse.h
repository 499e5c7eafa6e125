/*
 * parse.h: Dockerfile syntax (directives, continuations, comments, heredocs,
 * JSON and shell forms, flags), typed instructions, word expansion and
 * .dockerignore patterns. Nothing here touches the file system or a store.
 */
#ifndef IMAGEBUILD_PARSE_H
#define IMAGEBUILD_PARSE_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"

IB_BEGIN_DECL

/* ==== Dockerfiles: the syntax tree and typed instructions ==== */

/* ==== word expansion ==== */

/* ==== .dockerignore ==== */

IB_END_DECL

#endif
