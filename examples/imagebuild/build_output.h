/* build's outputs besides the store: --output, --metadata-file, a context from stdin. */
#ifndef IMAGEBUILD_CLI_BUILD_OUTPUT_H
#define IMAGEBUILD_CLI_BUILD_OUTPUT_H

#include "common.h"

#include <stdint.h>

enum {
	BUILD_OUTPUT_NONE = 0,
	BUILD_OUTPUT_IMAGE,   /* the store only (the default) */
	BUILD_OUTPUT_OCI,     /* an OCI archive (tar=false: an OCI layout directory) */
	BUILD_OUTPUT_DOCKER,  /* a docker-archive */
	BUILD_OUTPUT_TAR,     /* the root filesystem as one tar */
	BUILD_OUTPUT_LOCAL    /* the root filesystem into a directory */
};

typedef struct {
	int type;
	char *dest;   /* "-": stdout */
	int oci_tar;  /* type=oci: 1 an archive, 0 a directory */
} build_output;

/* Parse buildx's --output value; -1 with a message on stderr. */
int build_output_parse(build_output *out, const char *spec);
void build_output_dispose(build_output *out);
/* Write the built image `id` (named `tags`) where `o` says; -1 with a message. */
int build_output_write(ib_store *store, const build_output *o, const ib_digest *id, const char *const *tags,
		       size_t ntags);
/* buildx's --metadata-file. */
int build_metadata_write(const char *path, ib_store *store, const ib_digest *id, const char *const *tags,
			 size_t ntags, const build_output *o);
/* docker's RAMInBytes ("64m"); -1 when it does not parse. */
int build_parse_bytes(int64_t *out, const char *s);
/*
 * `build -`: `data` (stdin) is a Dockerfile (*content is a copy of it, *dir an
 * empty context) or a context tar, unpacked into *dir (*content NULL).
 */
int build_stdin_context(char **dir, char **content, size_t *len, const char *data, size_t n);
/* Remove such a directory. */
void build_stdin_context_remove(const char *dir);

#endif
