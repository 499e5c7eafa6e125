/*
 * sys/isolation.h: the isolation backend interface, for implementers (see
 * docs/STYLE.md). Users choose a backend by name in ib_execute_options.
 *
 * ib_execute_run() does the work every backend shares, then hands the
 * backend a fully resolved ib_isolation_spec: the user is resolved to
 * numbers, the environment is complete, the working directory and every
 * mount point exist inside the root (those created for the run are removed
 * after it), /etc/hosts and /etc/resolv.conf are files to bind, the standard
 * streams are descriptors (pipes, a terminal, /dev/null) and limits are
 * checked. It then waits for the pid `start` returned (relaying output and
 * polling for cancellation), calls `kill` on cancellation and `finish` once
 * that pid has been reaped.
 *
 * A backend must: give the process exactly the spec's environment and
 * descriptors 0-2 (no other descriptor of the caller), set the working
 * directory inside the root, never write, mount or delete outside the root
 * because of a symlink inside it, and never leave a process running the
 * caller's binary where the contained process can see it.
 */
#ifndef IMAGEBUILD_SYS_ISOLATION_H
#define IMAGEBUILD_SYS_ISOLATION_H

#include "../execute.h"
#include "errors.h"

IB_BEGIN_DECL

/** A resource limit resolved to its RLIMIT_* number. */
typedef struct {
	/** The RLIMIT_* number. */
	int resource;
	/** The soft limit. */
	uint64_t soft;
	/** The hard limit. */
	uint64_t hard;
} ib_isolation_rlimit;

/* 2 added privileged, 3 network_files_readonly, 4 readonly_rootfs and capabilities */
#define IB_ISOLATION_SPEC_VERSION 4

/** What to run, fully resolved. Everything is borrowed for the run. */
typedef struct {
	unsigned int version;          /* IB_ISOLATION_SPEC_VERSION */
	const char *rootfs;            /* absolute path of the root directory */
	const char *const *argv;       /* argv[0] as given: search PATH of `env` inside the root */
	const char *const *env;        /* the whole environment */
	const char *cwd;               /* absolute, exists inside the root */
	/** The user id to run as. */
	uint32_t uid;
	/** The primary group id. */
	uint32_t gid;
	const uint32_t *groups;        /* supplementary groups */
	/** The number of `groups`. */
	size_t ngroups;
	const char *hostname;          /* NULL: unchanged; else set in a UTS namespace of the
	                                  run's own, never the host's (refuse if none) */
	/** IB_NETWORK_NONE: a new network namespace with only loopback. */
	ib_network_mode network;
	const ib_mount *mounts;        /* the caller's extra mounts; targets exist */
	/** The number of `mounts`. */
	size_t nmounts;
	const char *hosts_file;        /* a host file to bind on /etc/hosts, or NULL */
	const char *resolv_file;       /* a host file to bind on /etc/resolv.conf, or NULL */
	int stdio[3];                  /* the process's descriptors 0, 1 and 2 */
	int tty;                       /* stdio is a terminal: make it the controlling one */
	/** Resource limits to set, `nrlimits` of them. */
	const ib_isolation_rlimit *rlimits;
	/** The number of `rlimits`. */
	size_t nrlimits;
	const char *work_dir;          /* a private directory for the backend; removed after */
	/* version 2 */
	int privileged;                /* see ib_process.privileged; only given to a backend
	                                  with IB_ISOLATION_PRIVILEGED in `features` */
	/* version 3 */
	int network_files_readonly;    /* hosts_file and resolv_file bound read-only (see
	                                  ib_process.network_files_readonly); only given to a
	                                  backend with IB_ISOLATION_RO_NETWORK_FILES */
	/* version 4 */
	/** Non-zero: the root read-only (ib_process.readonly_rootfs); only given to a backend with IB_ISOLATION_RO_ROOTFS. */
	int readonly_rootfs;
	/**
	 * The capability set (bit N: capability N), Docker's default unless
	 * ib_process.cap_add/cap_drop changed it: the bounding set, and root's
	 * effective and permitted sets. Unused when `privileged`. A set other
	 * than the default is only given to a backend with IB_ISOLATION_CAPS.
	 */
	uint64_t capabilities;
} ib_isolation_spec;

/** A backend's state for one run (its own type). */
typedef struct ib_isolation_run ib_isolation_run;

/* 2 added features; backends of version 1 are still accepted (no features) */
#define IB_ISOLATION_VERSION 2

/** ib_isolation.features: what a backend can do beyond the basics. */
#define IB_ISOLATION_PRIVILEGED 0x1u  /* runs ib_isolation_spec.privileged as documented */
/** ib_isolation.features: honours ib_isolation_spec.network_files_readonly. */
#define IB_ISOLATION_RO_NETWORK_FILES 0x2u
/** ib_isolation.features: honours ib_isolation_spec.readonly_rootfs. */
#define IB_ISOLATION_RO_ROOTFS 0x4u
/** ib_isolation.features: honours ib_isolation_spec.capabilities. */
#define IB_ISOLATION_CAPS 0x8u

struct ib_isolation {
	unsigned int version;          /* IB_ISOLATION_VERSION */
	/* 0 when usable on this host; else < 0 with the reason set. May be NULL. */
	int (*probe)(ib_isolation *self);
	/*
	 * Start the process; return in `*pid` a child of the calling process
	 * whose end is the end of the run, and the backend's state in `*run`.
	 * Returns < 0 (having cleaned up and reaped everything) when the
	 * process could not be started; `status` may then carry 126/127.
	 */
	int (*start)(ib_isolation *self, ib_isolation_run **run, int *pid,
		     ib_exit_status *status, const ib_isolation_spec *spec);
	/* Kill every process of the run (cancellation). */
	int (*kill)(ib_isolation *self, ib_isolation_run *run);
	/*
	 * `pid` was reaped with wait status `wstatus`: fill `out`, clean up
	 * and free `run`. Called exactly once for every successful start.
	 */
	int (*finish)(ib_isolation *self, ib_isolation_run *run, int wstatus, ib_exit_status *out);
	/* Required. */
	void (*free)(ib_isolation *self);
	/* version 2 */
	unsigned int features;         /* IB_ISOLATION_* bits; a privileged process is
	                                  refused by a backend without IB_ISOLATION_PRIVILEGED,
	                                  read-only network files without
	                                  IB_ISOLATION_RO_NETWORK_FILES */
};

/**
 * Makes a backend instance. `opts` are the caller's options (never NULL;
 * a backend may read `runtime` and `tmp_dir`); `param` is the one given at
 * registration.
 */
typedef int (*ib_isolation_ctor)(ib_isolation **out, const ib_execute_options *opts,
				 void *param);

/*
 * The registry, one for both backend kinds (sys/isolation.h and
 * sys/snapshotter.h say the same):
 *
 * - names are 1..32 characters of [a-z0-9_-] (others are IB_EINVALID);
 * - ib_isolation_register() adds a backend, or replaces the one of that name
 *   (built-in ones included); thread-safe, like the rest of the registry;
 * - `param` is borrowed: the library never frees it. It must stay valid
 *   until the backend is unregistered (or the final ib_shutdown()) and
 *   every instance made from it is freed;
 * - ib_isolation_unregister() removes a registration (IB_ENOTFOUND when
 *   there is none): nothing new is made from it, instances already made
 *   work until they are freed. A built-in one can be removed too;
 * - ib_isolation_list() (in execute.h) gives the registered names,
 *   comma-separated, in registration order, built-in ones first;
 * - the final ib_shutdown() forgets every registration and gives the
 *   built-in ones back;
 * - an instance is the backend's own memory: its constructor makes it and
 *   its `free` (required) frees it: ib_execute_run() frees the instance it
 *   makes for a run, the caller of ib_isolation_new() frees its own;
 * - errors: a backend function that fails returns < 0 and says why with
 *   ib_error_set_str() (sys/errors.h); one that says nothing gets an error
 *   naming the backend and the operation.
 *
 * Implementers start from IB_ISOLATION_INIT (or ib_isolation_init()) so that
 * fields of later versions are NULL.
 */

/** Register (or replace) the backend `name` (1..32 characters of [a-z0-9_-]). */
IB_EXTERN(int) ib_isolation_register(const char *name, ib_isolation_ctor ctor, void *param);

/** Forget a registered backend. IB_ENOTFOUND when none has that name. */
IB_EXTERN(int) ib_isolation_unregister(const char *name);

#define IB_ISOLATION_INIT { IB_ISOLATION_VERSION, NULL, NULL, NULL, NULL, NULL, 0 }

/**
 * Fill `iso` with what IB_ISOLATION_INIT gives for `version` (1 or 2):
 * every operation NULL, no features. For implementers and bindings.
 */
IB_EXTERN(int) ib_isolation_init(ib_isolation *iso, unsigned int version);

/**
 * Make an instance of backend `name` (NULL: "namespaces"); free it with
 * its `free`. `opts` (may be NULL) configures the built-in ones (runtime).
 */
IB_EXTERN(int) ib_isolation_new(ib_isolation **out, const char *name,
				const ib_execute_options *opts);

IB_END_DECL

#endif
