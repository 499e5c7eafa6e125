/*
 * container.h: containers, as docker users know them: create one from an
 * image (a writable snapshot on the image's layers plus a record in the
 * store), run processes in it again and again (changes persist), commit
 * its changes as a new image, remove it. Part of the build layer, the only
 * layer that may combine store, snapshot, execute and parse.
 */
#ifndef IMAGEBUILD_CONTAINER_H
#define IMAGEBUILD_CONTAINER_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "digest.h"
#include "parse.h"
#include "execute.h"
#include "snapshot.h"
#include "store.h"

IB_BEGIN_DECL

#define IB_CONTAINER_OPTIONS_VERSION 1
typedef struct {
	unsigned int version;       /* IB_CONTAINER_OPTIONS_VERSION */
	const char *name;           /* unique; NULL: none */
	const char *snapshotter;    /* NULL: "overlay" where it works, else "copy" */
	const char *command;        /* shown by `ps` (informational) */
} ib_container_options;
#define IB_CONTAINER_OPTIONS_INIT { IB_CONTAINER_OPTIONS_VERSION, NULL, NULL, NULL }

IB_EXTERN(int) ib_container_options_init(ib_container_options *opts, unsigned int version);

/**
 * Create a container from `image` (a name or id in the store). IB_EEXISTS
 * when the name is taken, IB_ENOTFOUND when the image is missing.
 */
IB_EXTERN(int) ib_container_create(ib_container **out, ib_store *store, const char *image,
				   const ib_container_options *opts);
/** Open an existing container by id, id prefix or name. */
IB_EXTERN(int) ib_container_open(ib_container **out, ib_store *store, const char *id_or_name);
IB_EXTERN(void) ib_container_free(ib_container *c);

IB_EXTERN(const char *) ib_container_id(const ib_container *c);
/** NULL when it has no name. */
IB_EXTERN(const char *) ib_container_name(const ib_container *c);
IB_EXTERN(const ib_digest *) ib_container_image_id(const ib_container *c);

#define IB_CONTAINER_RUN_OPTIONS_VERSION 1
typedef struct {
	unsigned int version;       /* IB_CONTAINER_RUN_OPTIONS_VERSION */
	/* the command; NULL: the image's CMD. The image's ENTRYPOINT comes first, as with docker run */
	const char *const *argv;
	const char *const *entrypoint; /* replaces the image's ENTRYPOINT when not NULL ({NULL}: none) */
	const char *const *env;     /* NULL-terminated "NAME=VALUE", added to the image's Env */
	const char *user;           /* NULL: the image's USER */
	const char *workdir;        /* NULL: the image's WORKDIR */
	const char *hostname;       /* NULL: the first 12 hex of the id */
	ib_network_mode network;
	const char *isolation;      /* NULL: "namespaces" */
	int tty;                    /* allocate a pseudo-terminal (stdin should be a terminal) */
	int stdin_fd;               /* -1: /dev/null */
	int stdout_fd;              /* -1: /dev/null */
	int stderr_fd;              /* -1: /dev/null */
	const volatile int *cancel; /* see ib_execute_options */
} ib_container_run_options;
#define IB_CONTAINER_RUN_OPTIONS_INIT { IB_CONTAINER_RUN_OPTIONS_VERSION, NULL, NULL, NULL, NULL, \
		NULL, NULL, IB_NETWORK_HOST, NULL, 0, -1, -1, -1, NULL }

IB_EXTERN(int) ib_container_run_options_init(ib_container_run_options *opts, unsigned int version);

/** Run a process in the container; its exit status in `out`. */
IB_EXTERN(int) ib_container_run(ib_exit_status *out, ib_container *c, const ib_container_run_options *opts);

#define IB_COMMIT_OPTIONS_VERSION 1
typedef struct {
	unsigned int version;       /* IB_COMMIT_OPTIONS_VERSION */
	const char *message;        /* the history comment (-m) */
	const char *author;         /* -a */
	const char *const *changes; /* NULL-terminated Dockerfile instructions (-c): CMD, ENTRYPOINT,
	                               ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, ONBUILD */
	const char *tag;            /* name the new image; NULL: untagged */
} ib_commit_options;
#define IB_COMMIT_OPTIONS_INIT { IB_COMMIT_OPTIONS_VERSION, NULL, NULL, NULL, NULL }

IB_EXTERN(int) ib_commit_options_init(ib_commit_options *opts, unsigned int version);

/**
 * Make a new image of the container's image plus one layer of its changes,
 * a history entry with the message and author, and the config changes.
 */
IB_EXTERN(int) ib_container_commit(ib_digest *image_id, ib_container *c, const ib_commit_options *opts);

/**
 * Apply one Dockerfile instruction to an image config the way `commit -c`
 * and `import -c` do: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER,
 * VOLUME, WORKDIR, STOPSIGNAL, SHELL, HEALTHCHECK, MAINTAINER. No history
 * entry is added. IB_ESYNTAX/IB_EINVALID name the instruction.
 */
IB_EXTERN(int) ib_commit_apply_change(ib_image_config *config, const char *change);

/** Remove a container: its snapshot and its record. */
IB_EXTERN(int) ib_container_remove(ib_store *store, const char *id_or_name);

IB_END_DECL

#endif
