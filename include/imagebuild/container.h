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
/** Options of ib_container_create(). */
typedef struct {
	unsigned int version;       /* IB_CONTAINER_OPTIONS_VERSION */
	const char *name;           /* unique; NULL: none */
	const char *snapshotter;    /* NULL: "overlay" where it works, else "copy" */
	const char *command;        /* shown by `ps` (informational) */
} ib_container_options;
#define IB_CONTAINER_OPTIONS_INIT { IB_CONTAINER_OPTIONS_VERSION, NULL, NULL, NULL }

/** Initialise `opts` like IB_CONTAINER_OPTIONS_INIT for `version` (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_container_options_init(ib_container_options *opts, unsigned int version);

/**
 * Create a container from `image` (a name or id in the store). IB_EEXISTS
 * when the name is taken, IB_ENOTFOUND when the image is missing.
 */
IB_EXTERN(int) ib_container_create(ib_container **out, ib_store *store, const char *image,
				   const ib_container_options *opts);
/** Open an existing container by id, id prefix or name. */
IB_EXTERN(int) ib_container_open(ib_container **out, ib_store *store, const char *id_or_name);
/** Free the handle (the container itself stays; see ib_container_remove()). NULL is fine. */
IB_EXTERN(void) ib_container_free(ib_container *c);

/** The container id: 64 lower-case hex digits (borrowed). */
IB_EXTERN(const char *) ib_container_id(const ib_container *c);
/** NULL when it has no name. */
IB_EXTERN(const char *) ib_container_name(const ib_container *c);
/** The id (config digest) of the image the container was created from (borrowed). */
IB_EXTERN(const ib_digest *) ib_container_image_id(const ib_container *c);

/* 2: `cancel` became `callbacks` (callbacks->cancel); 3 added mounts to init_path */
#define IB_CONTAINER_RUN_OPTIONS_VERSION 3
/** What to run in a container, and how (ib_container_run()). */
typedef struct {
	unsigned int version;       /* IB_CONTAINER_RUN_OPTIONS_VERSION */
	/* the command; NULL: the image's CMD. The image's ENTRYPOINT comes first, as with docker run */
	const char *const *argv;
	const char *const *entrypoint; /* replaces the image's ENTRYPOINT when not NULL ({NULL}: none) */
	const char *const *env;     /* NULL-terminated "NAME=VALUE", added to the image's Env */
	const char *user;           /* NULL: the image's USER */
	const char *workdir;        /* NULL: the image's WORKDIR */
	const char *hostname;       /* NULL: the first 12 hex of the id */
	/** The network the process sees; IB_NETWORK_HOST by default. */
	ib_network_mode network;
	const char *isolation;      /* NULL: "namespaces" */
	int tty;                    /* allocate a pseudo-terminal (stdin should be a terminal) */
	int stdin_fd;               /* -1: /dev/null */
	int stdout_fd;              /* -1: /dev/null */
	int stderr_fd;              /* -1: /dev/null */
	/*
	 * callbacks->cancel kills the process tree and makes the run return
	 * IB_EUSER (see common.h); callbacks->log gets the output lines when
	 * stdout_fd/stderr_fd are -1 (instead of /dev/null). No progress is
	 * reported. NULL: none.
	 */
	const ib_callbacks *callbacks;
	/* version 3 */
	/**
	 * Extra mounts (`-v`, `--mount`, `--tmpfs`), `nmounts` of them: binds
	 * and tmpfs as ib_execute_run() takes them (targets resolved inside
	 * the container's root), and named volumes (IB_MOUNT_VOLUME, `source`
	 * the name; created in the store when missing, see ib_volume_create()).
	 * An empty volume first gets the files of the image's directory at
	 * its target, with their owners, modes and times, as docker's copy-up
	 * (`options` "nocopy": not).
	 */
	const ib_mount *mounts;
	/** The number of `mounts`. */
	size_t nmounts;
	/** Resource limits (`--ulimit`), `nrlimits` of them (see ib_rlimit). */
	const ib_rlimit *rlimits;
	/** The number of `rlimits`. */
	size_t nrlimits;
	/** Non-zero: the container's root filesystem is read-only (`--read-only`; ib_process.readonly_rootfs). */
	int readonly_rootfs;
	/** Capabilities added to Docker's default set (`--cap-add`; ib_process.cap_add). NULL: none. */
	const char *const *cap_add;
	/** Capabilities dropped (`--cap-drop`; ib_process.cap_drop). NULL: none. */
	const char *const *cap_drop;
	/**
	 * Non-zero: PID 1 is a tiny init that reaps zombies and forwards
	 * signals (`--init`): the host's `init_path` is bound read-only on
	 * /sbin/docker-init in the container and runs the command as
	 * `docker-init -- COMMAND...`. It must be statically linked.
	 */
	int init;
	/**
	 * The init program on the host; NULL: the first of
	 * /usr/libexec/podman/catatonit, /usr/bin/catatonit,
	 * /usr/bin/tini-static, /usr/libexec/docker/docker-init that exists
	 * (IB_ENOTFOUND when none does).
	 */
	const char *init_path;
} ib_container_run_options;
#define IB_CONTAINER_RUN_OPTIONS_INIT { IB_CONTAINER_RUN_OPTIONS_VERSION, NULL, NULL, NULL, NULL, \
		NULL, NULL, IB_NETWORK_HOST, NULL, 0, -1, -1, -1, NULL, NULL, 0, NULL, 0, 0, NULL, NULL, 0, NULL }

/** Initialise `opts` like IB_CONTAINER_RUN_OPTIONS_INIT for `version` (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_container_run_options_init(ib_container_run_options *opts, unsigned int version);

/**
 * Run a process in the container; its exit status in `out`. IB_EEXISTS
 * when the container is running already (one process at a time).
 */
IB_EXTERN(int) ib_container_run(ib_exit_status *out, ib_container *c, const ib_container_run_options *opts);

/**
 * Start the container's process detached (`docker run -d`), under a small
 * supervisor process of its own, as podman's conmon: no daemon. The
 * supervisor runs the process as ib_container_run() would, writes its
 * stdout and stderr to the container's log in the store (see
 * ib_container_logs()), passes on the signals of ib_container_kill() and
 * records the exit status (ib_container_wait()); it outlives the caller.
 * `opts` as for ib_container_run(), except that the standard streams,
 * `callbacks` and `tty` must be left at their defaults (IB_EINVALID).
 * Returns once the process runs (its command was executed), as `docker
 * run -d`; < 0 when it could not be started, as ib_container_run() (a
 * command that cannot be executed then shows as exit status 126/127 in
 * ib_container_wait(), with the reason in the log too). Forks: call it from a single-threaded process.
 * The supervisor keeps none of the caller's descriptors (its standard
 * streams are /dev/null) and opens the store again by its root path with
 * default options.
 */
IB_EXTERN(int) ib_container_start(ib_container *c, const ib_container_run_options *opts);

/** 1 when a process runs in the container (ib_container_run() or ib_container_start()), 0 when not; < 0 on error. */
IB_EXTERN(int) ib_container_running(ib_container *c);

/**
 * Wait until the container's process ends and give its exit status
 * (`docker wait`); at once when it has ended already. IB_ENOTFOUND when
 * it never ran, IB_ERROR when its last run failed to start.
 */
IB_EXTERN(int) ib_container_wait(ib_exit_status *out, ib_container *c);

/**
 * Send signal `sig` to the process of a detached container (`docker
 * kill`): the supervisor passes it to the container's PID 1 (which, as
 * under docker, only gets the signals it handles, and SIGKILL, which
 * kills every process of the container). IB_EINVALID when the container
 * is not running detached; SIGSTOP is IB_EUNSUPPORTED.
 */
IB_EXTERN(int) ib_container_kill(ib_container *c, int sig);

/**
 * Stop a detached container (`docker stop`): the image's STOPSIGNAL (else
 * SIGTERM), then SIGKILL after `timeout` seconds (< 0: 10, as docker) if
 * it still runs; returns once it has ended, its status in `out` (may be
 * NULL). A container that is not running is left as it is (0).
 */
IB_EXTERN(int) ib_container_stop(ib_exit_status *out, ib_container *c, int timeout);

/**
 * Write the log of the container's detached runs (stdout and stderr, as
 * the process wrote them) to `fd`; with `follow`, keep writing what comes
 * until the process ends (`docker logs -f`). Nothing when it has none.
 */
IB_EXTERN(int) ib_container_logs(ib_container *c, int fd, int follow);

/**
 * Create the named volume `name` in the store (volumes/NAME/_data),
 * `[a-zA-Z0-9][a-zA-Z0-9_.-]*` as docker's. IB_EEXISTS when it exists.
 */
IB_EXTERN(int) ib_volume_create(ib_store *store, const char *name);
/** Remove a named volume and its content. IB_ENOTFOUND when there is none. */
IB_EXTERN(int) ib_volume_remove(ib_store *store, const char *name);
/** The names of the store's volumes, sorted, one per line (replaces `out`). */
IB_EXTERN(int) ib_volume_list(ib_buf *out, ib_store *store);
/** The host directory of volume `name` (replaces `out`); IB_ENOTFOUND when there is none. */
IB_EXTERN(int) ib_volume_path(ib_buf *out, ib_store *store, const char *name);

/* 2 added source_date_epoch */
#define IB_COMMIT_OPTIONS_VERSION 2
/** Options of ib_container_commit(). */
typedef struct {
	unsigned int version;       /* IB_COMMIT_OPTIONS_VERSION */
	const char *message;        /* the history comment (-m) */
	const char *author;         /* -a */
	const char *const *changes; /* NULL-terminated Dockerfile instructions (-c): CMD, ENTRYPOINT,
	                               ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, ONBUILD */
	const char *tag;            /* name the new image; NULL: untagged */
	/* version 2 */
	/*
	 * 1: the image and history `created` are source_date_epoch and the
	 * layer's file times later than it are clamped to it. The environment
	 * is never read.
	 */
	int use_source_date_epoch;
	int64_t source_date_epoch;  /* seconds since 1970 (>= 0) */
} ib_commit_options;
#define IB_COMMIT_OPTIONS_INIT { IB_COMMIT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0 }

/** Initialise `opts` like IB_COMMIT_OPTIONS_INIT for `version` (1 or 2; for bindings); IB_EINVALID for an unknown version. */
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

/**
 * Remove a container: its record, then its snapshot. IB_EEXISTS when it is
 * running. When the snapshot cannot be removed the container is gone all
 * the same (the error says so) and ib_prune() removes what is left.
 */
IB_EXTERN(int) ib_container_remove(ib_store *store, const char *id_or_name);

IB_END_DECL

#endif
