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

IB_BEGIN_DECL

/** A resource limit resolved to its RLIMIT_* number. */
typedef struct {
	int resource;
	uint64_t soft;
	uint64_t hard;
} ib_isolation_rlimit;

#define IB_ISOLATION_SPEC_VERSION 1

/** What to run, fully resolved. Everything is borrowed for the run. */
typedef struct {
	unsigned int version;          /* IB_ISOLATION_SPEC_VERSION */
	const char *rootfs;            /* absolute path of the root directory */
	const char *const *argv;       /* argv[0] as given: search PATH of `env` inside the root */
	const char *const *env;        /* the whole environment */
	const char *cwd;               /* absolute, exists inside the root */
	uint32_t uid;
	uint32_t gid;
	const uint32_t *groups;        /* supplementary groups */
	size_t ngroups;
	const char *hostname;          /* NULL: unchanged */
	ib_network_mode network;
	const ib_mount *mounts;        /* the caller's extra mounts; targets exist */
	size_t nmounts;
	const char *hosts_file;        /* a host file to bind on /etc/hosts, or NULL */
	const char *resolv_file;       /* a host file to bind on /etc/resolv.conf, or NULL */
	int stdio[3];                  /* the process's descriptors 0, 1 and 2 */
	int tty;                       /* stdio is a terminal: make it the controlling one */
	const ib_isolation_rlimit *rlimits;
	size_t nrlimits;
	const char *work_dir;          /* a private directory for the backend; removed after */
} ib_isolation_spec;

/** A backend's state for one run (its own type). */
typedef struct ib_isolation_run ib_isolation_run;

#define IB_ISOLATION_VERSION 1

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
};

/**
 * Makes a backend instance. `opts` are the caller's options (never NULL;
 * a backend may read `runtime` and `tmp_dir`); `param` is the one given at
 * registration.
 */
typedef int (*ib_isolation_ctor)(ib_isolation **out, const ib_execute_options *opts,
				 void *param);

/**
 * Register a backend under `name` (replacing one of the same name, built-in
 * ones included). Thread-safe.
 */
IB_EXTERN(int) ib_isolation_register(const char *name, ib_isolation_ctor ctor, void *param);

/** Remove a registration. IB_ENOTFOUND when there is none. */
IB_EXTERN(int) ib_isolation_unregister(const char *name);

/**
 * Make an instance of backend `name` (NULL: "namespaces"); free it with
 * its `free`. `opts` (may be NULL) configures the built-in ones (runtime).
 */
IB_EXTERN(int) ib_isolation_new(ib_isolation **out, const char *name,
				const ib_execute_options *opts);

IB_END_DECL

#endif
