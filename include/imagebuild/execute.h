/*
 * execute.h: running one process inside a root filesystem, isolated (see
 * docs/ARCHITECTURE.md). The execute layer knows nothing of images or
 * snapshots: it gets a root directory (possibly an overlay mount made by the
 * snapshot layer) and a process spec, and returns the exit status.
 *
 *   ib_process p = IB_PROCESS_INIT;
 *   const char *argv[] = { "/bin/sh", "-c", "make", NULL };
 *   p.argv = argv;
 *   p.user = "build:staff";
 *   ib_exit_status st;
 *   if (ib_execute_run(&st, "/var/lib/x/rootfs", &p, NULL) < 0)
 *       fprintf(stderr, "%s\n", ib_error_last()->message);
 *   else if (st.signal)
 *       printf("killed by signal %d\n", st.signal);
 *   else
 *       printf("exit %d\n", st.code);
 *
 * The isolation backend is chosen by name in ib_execute_options:
 * - "namespaces" (the default): new mount, PID, IPC and UTS namespaces (and
 *   network for IB_NETWORK_NONE), pivot_root, fresh /proc, minimal /dev,
 *   read-only /sys, Docker's default capabilities, no_new_privs; the
 *   command is PID 1. Only Docker's default devices open (null, zero, full,
 *   random, urandom, tty, the ptys): the root and every bind mount are
 *   nodev, so a node made by `mknod` (allowed, as under Docker) or shipped
 *   in an image does not open.
 * - "oci": the same through an OCI runtime (runc by default, see
 *   ib_execute_options.runtime; its device cgroup keeps other devices
 *   closed). With `tty`, the terminal is the process's stdio but not its
 *   controlling terminal.
 * - "chroot": weaker, for hosts that refuse namespaces: no PID, IPC or
 *   network isolation (IB_NETWORK_NONE is refused), /proc shows the host's
 *   processes. A `hostname` is set in a UTS namespace of the run's own;
 *   where the host refuses one, a run with a `hostname` fails. Devices as "namespaces" when the host
 *   lets it make a private mount namespace; without one it runs only when
 *   the root is already on a nodev mount (and refuses mounts).
 * `privileged` (ib_process) undoes the capability, seccomp, device, /sys
 * and masked-path restrictions on all three, as BuildKit's insecure mode.
 * On every backend a USER whose uid or gid is above 2^31-1 is refused, and
 * the image's /etc/passwd and /etc/group are read only as regular files of
 * at most 4 MiB. A symlinked /etc/hosts or /etc/resolv.conf gets the run's
 * file at its target, resolved inside the root.
 * See sys/isolation.h to write another one.
 *
 * The caller must not reap children it did not start (a SIGCHLD handler
 * calling waitpid(-1)) while a run is in progress.
 */
#ifndef IMAGEBUILD_EXECUTE_H
#define IMAGEBUILD_EXECUTE_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"

IB_BEGIN_DECL

/** The network a process sees. */
typedef enum {
	IB_NETWORK_HOST = 0, /* the host's network (the default: builds need it) */
	IB_NETWORK_NONE = 1  /* a new network namespace with only loopback */
} ib_network_mode;

/** What kind of extra mount. */
typedef enum {
	IB_MOUNT_BIND = 0,   /* bind `source` (a host path) on `target` */
	IB_MOUNT_TMPFS = 1,  /* a fresh tmpfs on `target`; `source` unused */
	/**
	 * A named volume of the store, `source` its name: only for
	 * ib_container_run() (container.h), which binds the volume's directory
	 * (an empty one first gets the image's files there, as docker's, unless
	 * `options` is "nocopy"); ib_execute_run() refuses it.
	 */
	IB_MOUNT_VOLUME = 2
} ib_mount_type;

/**
 * An extra mount. `target` is a path inside the root (symlinks in it are
 * resolved inside the root, never outside); a missing target is created for
 * the run and removed afterwards. `options` is passed to tmpfs ("size=64m");
 * flag words in it (ro, rw, noexec, exec, nosuid, nodev, noatime...) are
 * mount flags, as mount(8) takes them (a tmpfs is always nosuid and nodev
 * unless "suid" is given; "dev" is ignored: devices never open in a run).
 */
typedef struct {
	/** A bind mount or a tmpfs. */
	ib_mount_type type;
	/** For IB_MOUNT_BIND: the host path to bind. */
	const char *source;
	/** The mount point inside the root. */
	const char *target;
	/** Non-zero: mount read-only. */
	int readonly;
	/** Mount options for a tmpfs ("size=64m"), or NULL. */
	const char *options;
} ib_mount;

/** "No limit" for ib_rlimit. */
#define IB_RLIM_INFINITY ((uint64_t)-1)

/**
 * A resource limit, by Docker's `--ulimit` name without "RLIMIT_":
 * core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc,
 * rss, rtprio, rttime, sigpending, stack, as. Limits not listed keep the
 * caller's values. Raising a hard limit needs CAP_SYS_RESOURCE: without it
 * the run fails with an error naming the limit.
 */
typedef struct {
	/** The limit's name: "nofile", "nproc"... */
	const char *name;
	/** The soft limit (IB_RLIM_INFINITY: none). */
	uint64_t soft;
	/** The hard limit (IB_RLIM_INFINITY: none). */
	uint64_t hard;
} ib_rlimit;

/* 2 added privileged, 3 network_files_readonly, 4 readonly_rootfs, cap_add, cap_drop */
#define IB_PROCESS_VERSION 4

/**
 * A process to run. Strings and arrays are borrowed for the call.
 *
 * Standard streams: a descriptor >= 0 is given to the process as is (it is
 * not closed); -1 means /dev/null, except that stdout and stderr go to `log`
 * line by line when `log` is set (stdout lines at IB_LOG_INFO, stderr lines
 * at IB_LOG_WARNING). IB_PROCESS_INIT sets the three to -1.
 *
 * Terminal (`tty` non-zero): the library allocates a pseudo-terminal, makes
 * it the process's controlling terminal and its stdin/stdout/stderr, and
 * relays `stdin_fd` to it and its output to `stdout_fd` (or `log`). When
 * `stdin_fd` is a terminal it is put in raw mode for the run and restored
 * afterwards, and its window size is copied; so `run -it` is: tty = 1,
 * stdin_fd = 0, stdout_fd = 1.
 */
typedef struct {
	unsigned int version;       /* IB_PROCESS_VERSION */
	const char *const *argv;    /* NULL-terminated, argv[0] required; searched in the
	                               process's PATH (inside the root) when it has no '/' */
	const char *const *env;     /* NULL-terminated "NAME=value"; nothing else of the
	                               caller leaks. PATH (Docker's default) and HOME (from
	                               /etc/passwd) are added when missing */
	const char *cwd;            /* inside the root; NULL is "/"; created when missing */
	const char *user;           /* "name", "uid", "name:group", "uid:gid"...; NULL is root.
	                               Resolved in the root's own /etc/passwd and /etc/group */
	const char *hostname;       /* NULL: unchanged (the host's, like `--network host`) */
	/** The network the process sees. */
	ib_network_mode network;
	/** Extra mounts, `nmounts` of them. */
	const ib_mount *mounts;
	/** The number of `mounts`. */
	size_t nmounts;
	int stdin_fd;               /* see above; IB_PROCESS_INIT sets -1 */
	/** The process's stdout: a descriptor, or -1 (see above). */
	int stdout_fd;
	/** The process's stderr: a descriptor, or -1 (see above). */
	int stderr_fd;
	ib_log_cb log;              /* output lines, when stdout/stderr are -1 */
	/** Passed to `log`. */
	void *log_payload;
	/** Non-zero: run on a new pseudo-terminal (see above). */
	int tty;
	/** Resource limits, `nrlimits` of them. */
	const ib_rlimit *rlimits;
	/** The number of `rlimits`. */
	size_t nrlimits;
	const char *hosts;          /* content of /etc/hosts for the run; NULL: a default
	                               with localhost and the hostname */
	const char *resolv_conf;    /* content of /etc/resolv.conf; NULL: the host's for
	                               IB_NETWORK_HOST, empty for IB_NETWORK_NONE */
	/* version 2 */
	/*
	 * Non-zero: run privileged, as BuildKit's `RUN --security=insecure`
	 * (`docker run --privileged`): every capability this process has (in
	 * all five sets, so a non-root user has them too), no seccomp filter,
	 * no no_new_privs, no masked or read-only paths of /proc, /sys
	 * read-write, device nodes open (no nodev; the `oci` backend's device
	 * cgroup allows every device) and BuildKit's extra nodes in /dev:
	 * kmsg, cuse, fuse, kvm, net/tun, loop-control and loop0 up to the
	 * first free loop device + 7; with `oci`, the runtime's cgroupfs on
	 * /sys/fs/cgroup, writable (namespaces and chroot mount no cgroupfs,
	 * privileged or not: the process may mount it). No AppArmor or
	 * SELinux label is set in either mode. Namespaces stay as they are. This gives
	 * the process the host: only for what the caller explicitly allowed.
	 * A backend that cannot (see sys/isolation.h) refuses it.
	 */
	int privileged;
	/* version 3 */
	/**
	 * Non-zero: /etc/hosts and /etc/resolv.conf are bound read-only (and
	 * nosuid, noexec, nodev), as BuildKit binds them for a RUN step
	 * (executor/oci/spec_linux.go generateMountOpts): a write fails with
	 * EROFS instead of going to the run's private copy and being lost.
	 * 0: writable, as `docker run` gives them.
	 */
	int network_files_readonly;
	/* version 4 */
	/**
	 * Non-zero: the root filesystem is read-only for the process (`docker
	 * run --read-only`): its mounts (`mounts`, /proc, /dev, /etc/hosts,
	 * /etc/resolv.conf) stay as they are, writes elsewhere fail with EROFS.
	 * Files the run needs in the root (mount points, the working directory)
	 * are still made before it becomes read-only.
	 */
	int readonly_rootfs;
	/**
	 * NULL-terminated capability names added to Docker's default set
	 * (`--cap-add`): "NET_ADMIN" or "CAP_NET_ADMIN", any case; "ALL" is
	 * every capability. As moby's TweakCapabilities: with "ALL" here the set
	 * is every capability minus `cap_drop`; else with "ALL" in `cap_drop`
	 * it is only these; else the defaults minus `cap_drop` plus these.
	 * Capabilities that Docker's seccomp profile would open more system
	 * calls for (SYS_ADMIN, SYS_PTRACE, SYS_TIME, SYS_MODULE, SYS_RAWIO,
	 * SYS_BOOT, SYS_NICE, SYS_PACCT, SYS_TTY_CONFIG, SYSLOG,
	 * DAC_READ_SEARCH, and so ALL) are refused (IB_EUNSUPPORTED): the
	 * profile here is resolved for the default set. Root gets the set in
	 * its effective and permitted sets; another user only in its bounding
	 * set, as under Docker. Ignored when `privileged`. An unknown name is
	 * IB_EINVALID. NULL: none.
	 */
	const char *const *cap_add;
	/** NULL-terminated capability names removed from the set (`--cap-drop`; see `cap_add`). NULL: none. */
	const char *const *cap_drop;
} ib_process;

#define IB_PROCESS_INIT { IB_PROCESS_VERSION, NULL, NULL, NULL, NULL, NULL, \
		IB_NETWORK_HOST, NULL, 0, -1, -1, -1, NULL, NULL, 0, NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL }

/** Fill `p` with the defaults of IB_PROCESS_INIT for `version` (1 to 4; for bindings). */
IB_EXTERN(int) ib_process_init(ib_process *p, unsigned int version);

/* 2: `cancel` became `callbacks` (callbacks->cancel); 3 added forward_signal; 4 started */
#define IB_EXECUTE_OPTIONS_VERSION 4

/** How to run. Zero/NULL fields mean the default. */
typedef struct {
	unsigned int version;       /* IB_EXECUTE_OPTIONS_VERSION */
	const char *isolation;      /* backend name; NULL is "namespaces" */
	const char *runtime;        /* oci: the runtime program; NULL is "runc" in PATH */
	const char *tmp_dir;        /* where private run files go (hosts, bundles); NULL is
	                               $TMPDIR or /tmp. Must not be inside the root */
	/*
	 * Cancellation: callbacks->cancel is polled (every 20 ms, whether the
	 * process prints or not) while the process runs; when it becomes
	 * non-zero every process of the run is killed and ib_execute_run
	 * returns IB_EUSER (see common.h). Only `cancel` is used here: the
	 * output goes to ib_process.log. NULL: not cancellable.
	 */
	const ib_callbacks *callbacks;
	/* version 3 */
	/**
	 * Signal forwarding, for a supervisor (`docker stop`, `kill`): polled
	 * like the cancel flag; when `*forward_signal` is non-zero the library
	 * sends that signal to the process (the container's PID 1 with
	 * `namespaces` and `oci`, where the kernel delivers only signals PID 1
	 * handles, and SIGKILL) and sets it back to 0 (atomically, so a signal
	 * handler may set it). SIGKILL kills every process of the run (the
	 * backend's `kill`), and the run returns its status (killed by signal
	 * 9), not IB_EUSER. SIGSTOP reaches only `oci`'s helper. NULL: none.
	 */
	volatile int *forward_signal;
	/* version 4 */
	/**
	 * Called once, with `started_payload`, when the process runs: the
	 * backend started it and its command was executed (a command that
	 * cannot be, 126/127, makes the run fail before). For a supervisor
	 * that must tell its caller whether the process started (`docker run
	 * -d`). Not called when the run fails before. NULL: none.
	 */
	void (*started)(void *payload);
	/** Passed to `started`. */
	void *started_payload;
} ib_execute_options;

#define IB_EXECUTE_OPTIONS_INIT { IB_EXECUTE_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/** Initialise `o` like IB_EXECUTE_OPTIONS_INIT for `version` (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_execute_options_init(ib_execute_options *o, unsigned int version);

/**
 * How a process ended. `code` is shell-like: the exit code (0-255), or
 * 128 + the signal when it was killed; `signal` is that signal, or 0 when
 * it exited. A plain value that will not grow (like ib_digest): an exit
 * is a code or a signal, nothing more, so it carries no version.
 */
typedef struct {
	/** The exit code (0-255), or 128 + the signal that killed it. */
	int code;
	/** The signal that killed it, or 0. */
	int signal;
} ib_exit_status;

/**
 * Run `p` inside `rootfs` and wait for it. Returns 0 when the process ran,
 * whatever its exit status (in `out`); < 0 when it could not be started (a
 * missing user is IB_ENOTFOUND, a command that cannot be executed is
 * IB_ENOTFOUND or IB_ERROR with `out->code` 127 or 126), IB_EUSER when
 * cancelled. Files the run needs in the root (/etc/hosts, /etc/resolv.conf,
 * mount points) are provided for the run only and removed afterwards,
 * except the working directory, which is created like Docker does.
 */
IB_EXTERN(int) ib_execute_run(ib_exit_status *out, const char *rootfs, const ib_process *p,
			      const ib_execute_options *opts);

/**
 * The names of the registered isolation backends, comma-separated, in
 * registration order (built-in ones first); replaces `out`. See
 * sys/isolation.h for the registry.
 */
IB_EXTERN(int) ib_isolation_list(ib_buf *out);

/**
 * Whether isolation backend `name` can run here (namespaces refused, runtime
 * missing...). 0 when it can; < 0 with the reason in ib_error_last().
 * `opts` (may be NULL) gives the runtime path of "oci".
 */
IB_EXTERN(int) ib_isolation_probe(const char *name, const ib_execute_options *opts);

#define IB_USER_VERSION 1
/**
 * A user resolved in a root filesystem's /etc/passwd and /etc/group. The
 * caller sets `version` (IB_USER_INIT or ib_user_init()) and
 * ib_user_resolve() fills what that version has.
 */
typedef struct {
	unsigned int version;   /* IB_USER_VERSION */
	/** The numeric user id. */
	uint32_t uid;
	/** The numeric primary group id. */
	uint32_t gid;
	uint32_t *groups;   /* supplementary groups */
	/** The number of `groups`. */
	size_t ngroups;
	char *name;         /* NULL when the user was numeric and is not in /etc/passwd */
	char *home;         /* "/" when unknown */
} ib_user;

#define IB_USER_INIT { IB_USER_VERSION, 0, 0, NULL, 0, NULL, NULL }
/** Initialise like IB_USER_INIT (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_user_init(ib_user *user, unsigned int version);

/**
 * Resolve a Docker `USER` spec against `rootfs`'s /etc/passwd and
 * /etc/group (read inside the root: their symlinks cannot point outside).
 * "name" and "uid" (a uid need not exist), optionally ":group" or ":gid".
 * A user named by name or a group not found is IB_ENOTFOUND, naming it.
 * Without an explicit group, the supplementary groups are those of
 * /etc/group listing the user. NULL or "" is root. A uid or gid above
 * 2^31-1 (from the spec or the files) is IB_EINVALID, as runc refuses it;
 * so is an /etc/passwd or /etc/group that is not a regular file (a FIFO, a
 * device) or is larger than 4 MiB. Free with ib_user_dispose.
 */
IB_EXTERN(int) ib_user_resolve(ib_user *out, const char *rootfs, const char *spec);
/** Free what ib_user_resolve() put in `user` and reset it. NULL is fine. */
IB_EXTERN(void) ib_user_dispose(ib_user *user);

IB_END_DECL

#endif
