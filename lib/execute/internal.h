/* Internals of the execute layer, shared between its files. */
#ifndef IB_EXECUTE_INTERNAL_H
#define IB_EXECUTE_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include "imagebuild/execute.h"
#include "imagebuild/sys/isolation.h"
#include "imagebuild/buffer.h"

/* Docker's default PATH, given to processes whose environment has none. */
#define IB_EXECUTE_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The built-in backends' constructors (ns.c, oci.c). */
int ib_execute__namespaces_new(ib_isolation **out, const ib_execute_options *opts, void *param);
int ib_execute__chroot_new(ib_isolation **out, const ib_execute_options *opts, void *param);
int ib_execute__oci_new(ib_isolation **out, const ib_execute_options *opts, void *param);

/* The isolation kind in the backend registry (registry.c; util/backend.h). */
#include "util/backend.h"
extern const ib_backend_class ib_execute__isolation_class;

/* RLIMIT_* number of a Docker ulimit name ("nofile"), or -1. */
int ib_execute__rlimit_resource(const char *name);
/* A privileged run's last /dev/loopN (child.c): the host's first free one + 7. */
int ib_execute__privileged_last_loop(void);
const char *ib_execute__rlimit_name(int resource);

/*
 * The paths created inside a root for one run (mount points), to remove
 * afterwards, newest first. Paths are relative to the root.
 */
typedef struct {
	char **paths;
	int *is_dir;
	size_t count;
} ib_execute__created;

/*
 * Make sure `path` (inside the root `rootfd`, resolved there) exists as a
 * directory (IB_ENSURE_DIR) or a file, creating what is missing (parents
 * too) and recording it in `created`. With IB_ENSURE_OPTIONAL, a path that
 * exists with another type, or is a dangling symlink, is left alone and 1
 * is returned (the caller then does not mount on it). With
 * IB_ENSURE_NO_SYMLINK, a path that is itself a symlink is refused (runc
 * refuses /proc, /dev, /sys as symlinks too).
 */
#define IB_ENSURE_DIR 1
#define IB_ENSURE_OPTIONAL 2
#define IB_ENSURE_NO_SYMLINK 4
int ib_execute__ensure_path(ib_execute__created *created, int rootfd, const char *path, int flags);
/*
 * Like ib_execute__ensure_path(IB_ENSURE_OPTIONAL) for a file, but when
 * `path` is a symlink (systemd's /etc/resolv.conf ->
 * ../run/systemd/resolve/stub-resolv.conf) follow it inside the root and
 * make sure its target exists instead, parents included, as runc does for
 * a mount destination: a mount on `path` (resolved in the root) then lands
 * there. 1 when nothing can be mounted there (a directory, a loop).
 */
int ib_execute__ensure_file_followed(ib_execute__created *created, int rootfd, const char *path);
/* Remove what `created` lists (only empty directories and empty files), free it. */
void ib_execute__created_undo(ib_execute__created *created, int rootfd);

/*
 * The child side of the namespaces and chroot backends (child.c): prepared
 * before fork, in memory the child only reads, so the child neither
 * allocates nor takes a lock.
 */
typedef struct {
	const ib_isolation_spec *spec;
	int pivot;               /* pivot_root (namespaces) or chroot */
	int new_mount_ns;        /* set up /proc, /dev, /sys, hosts... in a mount namespace */
	int try_mount_ns;        /* chroot: unshare a mount namespace if the host lets us */
	int new_pid_ns;          /* the process is PID 1 of a PID namespace */
	int err_fd;              /* where the child reports a setup failure */
	const struct ib_execute__seccomp_prog *seccomp; /* loaded right before exec (seccomp.c) */
	int exec_helper_fd;      /* the sealed exec helper (dmz.c), or -1 */
	char **helper_argv;      /* the helper's argv: marker, (path), the command's argv */
} ib_execute__child_config;

/* What the child writes to err_fd when it fails before exec. */
typedef struct {
	int err;                 /* errno */
	int code;                /* 126, 127, or 0 for a setup failure */
	char message[1024];
} ib_execute__child_error;

/* Runs in the child; never returns. */
void ib_execute__child(const ib_execute__child_config *cfg) __attribute__((noreturn));

/* oci.c: the OCI runtime config.json for `spec` (pretty JSON). */
int ib_execute__oci_config(ib_buf *out, const ib_isolation_spec *spec);

/* Docker's default capabilities, as CAP_* numbers and names. */
extern const int ib_execute__default_caps[];
extern const char *const ib_execute__default_cap_names[];
extern const size_t ib_execute__default_caps_count;
/* Every capability's name ("CAP_CHOWN"), indexed by its number (registry.c). */
extern const char *const ib_execute__cap_names[];
extern const size_t ib_execute__cap_names_count;

/*
 * seccomp.c: Docker's default seccomp profile, resolved for this host and
 * Docker's default capabilities, as an OCI `linux.seccomp` object (for
 * config.json) and as a BPF program (for the child to load).
 */
struct json_t;
int ib_execute__seccomp_oci(struct json_t **out);
typedef struct ib_execute__seccomp_prog {
	struct sock_filter *filter;
	unsigned short len;
} ib_execute__seccomp_prog;
int ib_execute__seccomp_bpf(ib_execute__seccomp_prog *out);
void ib_execute__seccomp_dispose(ib_execute__seccomp_prog *prog);
/* The same, made once per process and kept (never freed; thread-safe). */
int ib_execute__seccomp_bpf_cached(const ib_execute__seccomp_prog **out);
/* In the child (no allocation): a fresh session keyring; load the program. -errno on failure. */
int ib_execute__join_session_keyring(void);
int ib_execute__seccomp_load(const ib_execute__seccomp_prog *prog);

/* dmz.c: the exec helper (dmz/helper.c) as a sealed memfd, and exec through it. */
extern const char ib_execute__exec_helper_marker[];
int ib_execute__exec_helper_fd(void);
void ib_execute__exec_path(const ib_execute__child_config *cfg, const char *path, char *const argv[],
			   char *const envp[], void (*fail)(const ib_execute__child_config *, const char *));
/* oci: refuse a command that leads into /proc inside the root (a magic link), as the child does. */
int ib_execute__refuse_magic_command(const ib_isolation_spec *spec);

#endif
