/*
 * ib_execute_run: what every isolation backend shares. Resolve the user in
 * the root's own files, complete the environment, check the limits, make
 * the working directory and the mount points (resolved inside the root;
 * those made for the run only are removed after it), write /etc/hosts and
 * /etc/resolv.conf into a private directory outside the root, set up the
 * standard streams (descriptors, pipes to the log callback, a terminal),
 * then start the backend, relay output, poll for cancellation and reap.
 */
#include "execute/internal.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* How much of an ib_process a caller of `version` has. */
static size_t process_size(unsigned int version)
{
	return version == 1 ? offsetof(ib_process, privileged)
	       : version == 2 ? offsetof(ib_process, network_files_readonly)
	       : version == 3 ? offsetof(ib_process, readonly_rootfs) : sizeof(ib_process);
}

int ib_process_init(ib_process *p, unsigned int version)
{
	if (version < 1 || version > IB_PROCESS_VERSION)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				     "ib_process version %u is not supported (1 to %d)",
				     version, IB_PROCESS_VERSION);
	static const ib_process init = IB_PROCESS_INIT; /* zero padding (C11 6.7.9) */
	memcpy(p, &init, process_size(version));
	p->version = version;
	return 0;
}

int ib_execute_options_init(ib_execute_options *o, unsigned int version)
{
	/* version 1 had `const volatile int *cancel` where 2 has `callbacks`: same size, NULL either way */
	if (version < 1 || version > IB_EXECUTE_OPTIONS_VERSION)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				     "ib_execute_options version %u is not supported (1 to %d)",
				     version, IB_EXECUTE_OPTIONS_VERSION);
	static const ib_execute_options init = IB_EXECUTE_OPTIONS_INIT; /* zero padding (C11 6.7.9) */
	memcpy(o, &init, version < 3   ? offsetof(ib_execute_options, forward_signal)
			 : version < 4 ? offsetof(ib_execute_options, started)
				       : sizeof *o);
	o->version = version;
	return 0;
}

/*
 * Version 1 options (a cancel flag where 2 has callbacks), version 2 (no
 * forward_signal) and 3 (no started) as the current version; `cb` holds the flag.
 */
static const ib_execute_options *options_v2(ib_execute_options *copy, ib_callbacks *cb, const ib_execute_options *o)
{
	if (o && (o->version == 2 || o->version == 3)) {
		memset(copy, 0, sizeof *copy);
		memcpy(copy, o, o->version == 2 ? offsetof(ib_execute_options, forward_signal)
						: offsetof(ib_execute_options, started));
		copy->version = IB_EXECUTE_OPTIONS_VERSION;
		return copy;
	}
	if (!o || o->version != 1)
		return o;
	typedef struct {
		unsigned int version;
		const char *isolation, *runtime, *tmp_dir;
		const volatile int *cancel;
	} v1;
	const v1 *old = (const v1 *)(const void *)o;
	ib_callbacks d = IB_CALLBACKS_INIT;
	*cb = d;
	cb->cancel = old->cancel;
	memset(copy, 0, sizeof *copy);
	memcpy(copy, o, sizeof *old);
	copy->version = IB_EXECUTE_OPTIONS_VERSION;
	copy->callbacks = old->cancel ? cb : NULL;
	return copy;
}

/* Everything one run owns, released by run_dispose. */
typedef struct {
	char *rootfs;
	int rootfd;
	char *work_dir;
	ib_user user;
	char **env;
	ib_isolation_rlimit *rlimits;
	char *cwd;
	char *hosts_file;
	char *resolv_file;
	ib_execute__created created;
	int null_fd;
	int out_pipe[2];
	int err_pipe[2];
	int pty_master;
	int pty_slave;
	int termios_saved;
	int termios_fd;
	struct termios termios;
	ib_isolation_spec spec;
} run_state;

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void run_dispose(run_state *r)
{
	if (r->rootfd >= 0)
		ib_execute__created_undo(&r->created, r->rootfd);
	close_fd(&r->rootfd);
	if (r->work_dir) {
		ib_error_saved saved;
		ib_error_save(&saved);
		ib_rm_rf(r->work_dir);
		ib_error_restore(&saved);
	}
	if (r->termios_saved)
		tcsetattr(r->termios_fd, TCSAFLUSH, &r->termios);
	for (size_t i = 0; r->env && r->env[i]; i++)
		free(r->env[i]);
	free(r->env);
	free(r->rlimits);
	free(r->cwd);
	free(r->hosts_file);
	free(r->resolv_file);
	free(r->work_dir);
	free(r->rootfs);
	ib_user_dispose(&r->user);
	close_fd(&r->null_fd);
	for (int i = 0; i < 2; i++) {
		close_fd(&r->out_pipe[i]);
		close_fd(&r->err_pipe[i]);
	}
	close_fd(&r->pty_master);
	close_fd(&r->pty_slave);
}

static int env_has(char **env, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
			return 1;
	return 0;
}

/* The process's environment: exactly the caller's list, plus PATH, HOME (and TERM). */
static int build_env(run_state *r, const ib_process *p)
{
	size_t n = 0;
	while (p->env && p->env[n])
		n++;
	if (!(r->env = ib_calloc(n + 4, sizeof *r->env)))
		return IB_ERROR;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strchr(p->env[i], '=') || p->env[i][0] == '=')
			return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
					     "environment entry `%s` is not NAME=value", p->env[i]);
		if (!(r->env[k++] = ib_strdup(p->env[i])))
			return IB_ERROR;
	}
	if (!env_has(r->env, k, "PATH") && !(r->env[k++] = ib_strdup("PATH=" IB_EXECUTE_DEFAULT_PATH)))
		return IB_ERROR;
	if (!env_has(r->env, k, "HOME") && !(r->env[k++] = ib_sprintf("HOME=%s", r->user.home)))
		return IB_ERROR;
	if (p->tty && !env_has(r->env, k, "TERM") && !(r->env[k++] = ib_strdup("TERM=xterm")))
		return IB_ERROR;
	return 0;
}

static int has_cap(int cap)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	return (data[cap / 32].effective >> (cap % 32)) & 1;
}

/* Resolve the limit names and refuse clearly what the kernel would refuse. */
static int check_rlimits(run_state *r, const ib_process *p)
{
	if (!p->nrlimits)
		return 0;
	if (!p->rlimits)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "nrlimits is %zu but rlimits is NULL",
				     p->nrlimits);
	if (!(r->rlimits = ib_calloc(p->nrlimits, sizeof *r->rlimits)))
		return IB_ERROR;
	for (size_t i = 0; i < p->nrlimits; i++) {
		const ib_rlimit *l = &p->rlimits[i];
		int res = ib_execute__rlimit_resource(l->name);
		if (res < 0)
			return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "unknown resource limit `%s`",
					     l->name ? l->name : "(null)");
		if (l->soft > l->hard)
			return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
					     "resource limit %s: soft limit %llu is above the hard limit %llu",
					     l->name, (unsigned long long)l->soft, (unsigned long long)l->hard);
		struct rlimit cur;
		if (getrlimit(res, &cur) == 0 && cur.rlim_max != RLIM_INFINITY &&
		    (l->hard == IB_RLIM_INFINITY || l->hard > cur.rlim_max) &&
		    !has_cap(CAP_SYS_RESOURCE))
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
					     "resource limit %s: the hard limit %s%llu is above this process's "
					     "hard limit %llu, and raising it needs CAP_SYS_RESOURCE, which "
					     "this process does not have", l->name,
					     l->hard == IB_RLIM_INFINITY ? "unlimited/" : "",
					     (unsigned long long)l->hard, (unsigned long long)cur.rlim_max);
		r->rlimits[i].resource = res;
		r->rlimits[i].soft = l->soft;
		r->rlimits[i].hard = l->hard;
	}
	return 0;
}

/* A file in the private directory for /etc/hosts or /etc/resolv.conf. */
static int write_run_file(char **out, const char *dir, const char *name, const char *content)
{
	if (!(*out = ib_sprintf("%s/%s", dir, name)))
		return IB_ERROR;
	int fd = open(*out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "create `%s`", *out);
	int rc = ib_write_all(fd, content, strlen(content));
	fchmod(fd, 0644);
	close(fd);
	return rc;
}

static int provide_net_files(run_state *r, const ib_process *p)
{
	int rc = ib_execute__ensure_file_followed(&r->created, r->rootfd, "/etc/hosts");
	if (rc < 0)
		return rc;
	if (rc == 0) {
		ib_buf hosts = IB_BUF_INIT;
		if (p->hosts) {
			rc = ib_buf_puts(&hosts, p->hosts);
		} else {
			char host[256] = "";
			if (p->hostname)
				snprintf(host, sizeof host, "%s", p->hostname);
			else
				gethostname(host, sizeof host - 1);
			rc = ib_buf_printf(&hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
					   "ip6-loopback\n%s%s%s", *host ? "127.0.1.1\t" : "", host,
					   *host ? "\n" : "");
		}
		if (rc == 0)
			rc = write_run_file(&r->hosts_file, r->work_dir, "hosts", ib_buf_cstr(&hosts));
		ib_buf_dispose(&hosts);
		if (rc < 0)
			return rc;
	}
	rc = ib_execute__ensure_file_followed(&r->created, r->rootfd, "/etc/resolv.conf");
	if (rc != 0)
		return rc < 0 ? rc : 0;
	ib_buf resolv = IB_BUF_INIT;
	if (p->resolv_conf) {
		rc = ib_buf_puts(&resolv, p->resolv_conf);
	} else if (p->network == IB_NETWORK_HOST) {
		rc = ib_read_file(&resolv, "/etc/resolv.conf");
		if (rc == IB_ENOTFOUND) {
			ib_error_clear();
			rc = 0;
		}
	}
	if (rc == 0)
		rc = write_run_file(&r->resolv_file, r->work_dir, "resolv.conf", ib_buf_cstr(&resolv));
	ib_buf_dispose(&resolv);
	return rc;
}

static int prepare_mount_points(run_state *r, const ib_process *p)
{
	static const char *const dirs[] = { "/proc", "/dev", "/sys" };
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof dirs / sizeof dirs[0]; i++)
		rc = ib_execute__ensure_path(&r->created, r->rootfd, dirs[i],
					     IB_ENSURE_DIR | IB_ENSURE_NO_SYMLINK);
	if (rc == 0 && p->nmounts && !p->mounts)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "nmounts is %zu but mounts is NULL",
				   p->nmounts);
	for (size_t i = 0; rc == 0 && i < p->nmounts; i++) {
		const ib_mount *m = &p->mounts[i];
		int dir = 1;
		if (m->type == IB_MOUNT_VOLUME)
			return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
					     "mount %zu: a named volume (`%s`) is for containers (ib_container_run), "
					     "not ib_execute_run", i, m->source ? m->source : "");
		if (!m->target || (m->type == IB_MOUNT_BIND && !m->source) ||
		    (m->type != IB_MOUNT_BIND && m->type != IB_MOUNT_TMPFS))
			return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
					     "mount %zu: a type, a target and (for bind) a source are required", i);
		if (m->type == IB_MOUNT_BIND) {
			struct stat st;
			if (stat(m->source, &st) < 0)
				return ib_error_set_os(IB_LAYER_EXECUTE, "bind mount source `%s`", m->source);
			dir = S_ISDIR(st.st_mode);
		}
		rc = ib_execute__ensure_path(&r->created, r->rootfd, m->target, dir ? IB_ENSURE_DIR : 0);
		if (rc < 0)
			ib_error_prefix("mount on `%s`", m->target);
	}
	return rc;
}

static int prepare_cwd(run_state *r, const ib_process *p)
{
	ib_buf rel = IB_BUF_INIT;
	int rc = ib_path_scope(&rel, p->cwd ? p->cwd : "/");
	if (rc == 0 && !(r->cwd = ib_sprintf("/%s", strcmp(rel.ptr, ".") ? rel.ptr : "")))
		rc = IB_ERROR;
	ib_buf_dispose(&rel);
	if (rc < 0)
		return rc;
	/* created like Docker does: it stays (not recorded for removal) */
	ib_execute__created keep = { NULL, NULL, 0 };
	rc = ib_execute__ensure_path(&keep, r->rootfd, r->cwd, IB_ENSURE_DIR);
	for (size_t i = 0; i < keep.count; i++)
		free(keep.paths[i]);
	free(keep.paths);
	free(keep.is_dir);
	if (rc < 0)
		ib_error_prefix("working directory `%s`", r->cwd);
	return rc;
}

static int open_pty(run_state *r, const ib_process *p)
{
	r->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	char name[128];
	if (r->pty_master < 0 || grantpt(r->pty_master) < 0 || unlockpt(r->pty_master) < 0 ||
	    ptsname_r(r->pty_master, name, sizeof name) != 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "allocate a pseudo-terminal");
	r->pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (r->pty_slave < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "open `%s`", name);
	struct winsize ws;
	if ((p->stdin_fd >= 0 && ioctl(p->stdin_fd, TIOCGWINSZ, &ws) == 0) ||
	    (p->stdout_fd >= 0 && ioctl(p->stdout_fd, TIOCGWINSZ, &ws) == 0))
		ioctl(r->pty_master, TIOCSWINSZ, &ws);
	if (p->stdin_fd >= 0 && isatty(p->stdin_fd) && tcgetattr(p->stdin_fd, &r->termios) == 0) {
		struct termios raw = r->termios;
		cfmakeraw(&raw);
		if (tcsetattr(p->stdin_fd, TCSAFLUSH, &raw) == 0) {
			r->termios_saved = 1;
			r->termios_fd = p->stdin_fd;
		}
	}
	for (int i = 0; i < 3; i++)
		r->spec.stdio[i] = r->pty_slave;
	return 0;
}

static int setup_stdio(run_state *r, const ib_process *p)
{
	r->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (r->null_fd < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "open /dev/null");
	if (p->tty)
		return open_pty(r, p);
	r->spec.stdio[0] = p->stdin_fd >= 0 ? p->stdin_fd : r->null_fd;
	const int fds[2] = { p->stdout_fd, p->stderr_fd };
	int *pipes[2] = { r->out_pipe, r->err_pipe };
	for (int i = 0; i < 2; i++) {
		if (fds[i] >= 0) {
			r->spec.stdio[i + 1] = fds[i];
		} else if (p->log) {
			if (pipe2(pipes[i], O_CLOEXEC) < 0)
				return ib_error_set_os(IB_LAYER_EXECUTE, "pipe");
			r->spec.stdio[i + 1] = pipes[i][1];
		} else {
			r->spec.stdio[i + 1] = r->null_fd;
		}
	}
	return 0;
}

static int check_args(const char *rootfs, const ib_process *p, const ib_execute_options *o)
{
	if (!rootfs || !p)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "ib_execute_run: NULL argument");
	if (p->version < 1 || p->version > IB_PROCESS_VERSION)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				     "ib_process version %u is not supported (1 to %d)",
				     p->version, IB_PROCESS_VERSION);
	if (o && o->version != IB_EXECUTE_OPTIONS_VERSION)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				     "ib_execute_options version %u is not supported (1 to %d)",
				     o->version, IB_EXECUTE_OPTIONS_VERSION);
	if (o && ib_callback_validate(o->callbacks, IB_LAYER_EXECUTE) < 0)
		return IB_EINVALID;
	if (!p->argv || !p->argv[0] || !*p->argv[0])
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "no command to run (argv is empty)");
	if (p->network != IB_NETWORK_HOST && p->network != IB_NETWORK_NONE)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "unknown network mode %d", (int)p->network);
	if (p->hostname && (strlen(p->hostname) > 64 || !*p->hostname))
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "invalid hostname `%s`", p->hostname);
	return 0;
}

static int make_work_dir(run_state *r, const ib_execute_options *o)
{
	const char *tmp = o->tmp_dir;
	if (!tmp || !*tmp)
		tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (!(r->work_dir = ib_sprintf("%s/ib-run-XXXXXX", tmp)))
		return IB_ERROR;
	if (!mkdtemp(r->work_dir)) {
		int rc = ib_error_set_os(IB_LAYER_EXECUTE, "create a run directory `%s`", r->work_dir);
		free(r->work_dir);
		r->work_dir = NULL;
		return rc;
	}
	chmod(r->work_dir, 0755); /* the process's user must read hosts and resolv.conf */
	char real[PATH_MAX];
	size_t n = strlen(r->rootfs);
	if (realpath(r->work_dir, real) && strncmp(real, r->rootfs, n) == 0 &&
	    (real[n] == '/' || real[n] == '\0'))
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
				     "the run directory `%s` is inside the root filesystem `%s`; "
				     "choose another tmp_dir", real, r->rootfs);
	return 0;
}

/* Capabilities Docker's seccomp profile opens more system calls for: refused in cap_add. */
static const int seccomp_gated_caps[] = {
	CAP_DAC_READ_SEARCH, CAP_SYSLOG, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_MODULE, CAP_SYS_NICE,
	CAP_SYS_PACCT, CAP_SYS_PTRACE, CAP_SYS_RAWIO, CAP_SYS_TIME, CAP_SYS_TTY_CONFIG,
};

/* A capability name's number into *cap; 1 for "ALL"; 0 for one; < 0 unknown. */
static int cap_lookup(int *cap, const char *name)
{
	if (strcasecmp(name, "ALL") == 0)
		return 1;
	const char *bare = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
	for (size_t i = 0; i < ib_execute__cap_names_count; i++)
		if (strcasecmp(ib_execute__cap_names[i] + 4, bare) == 0) {
			*cap = (int)i;
			return 0;
		}
	return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "unknown capability `%s`", name);
}

static int cap_in(const char *const *list, int want_all, int cap)
{
	for (; list && *list; list++) {
		int c = -1;
		int all = strcasecmp(*list, "ALL") == 0;
		if (want_all ? all : (!all && cap_lookup(&c, *list) == 0 && c == cap))
			return 1;
	}
	return 0;
}

/* The capability set of the run, as moby's TweakCapabilities makes it. */
static int resolve_caps(uint64_t *out, const ib_process *p)
{
	uint64_t def = 0, all = 0;
	for (size_t i = 0; i < ib_execute__default_caps_count; i++)
		def |= 1ULL << ib_execute__default_caps[i];
	for (size_t i = 0; i < ib_execute__cap_names_count; i++)
		all |= 1ULL << i;
	*out = def;
	if (p->version < 4 || (!p->cap_add && !p->cap_drop))
		return 0;
	const char *const *lists[2] = { p->cap_add, p->cap_drop };
	for (int l = 0; l < 2; l++)
		for (const char *const *n = lists[l]; n && *n; n++) {
			int cap = -1, rc = cap_lookup(&cap, *n);
			if (rc < 0)
				return rc;
			if (l != 0)
				continue;
			for (size_t g = 0; g < sizeof seccomp_gated_caps / sizeof seccomp_gated_caps[0]; g++)
				if (rc == 1 || cap == seccomp_gated_caps[g])
					return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
							     "adding capability `%s` is not supported: Docker's "
							     "seccomp profile here is the one for the default "
							     "capabilities, and would still refuse the system calls "
							     "it allows", *n);
		}
	uint64_t adds = 0, drops = 0;
	for (size_t i = 0; i < ib_execute__cap_names_count; i++) {
		if (cap_in(p->cap_add, 0, (int)i))
			adds |= 1ULL << i;
		if (cap_in(p->cap_drop, 0, (int)i))
			drops |= 1ULL << i;
	}
	uint64_t caps;
	if (cap_in(p->cap_add, 1, 0))
		caps = all & ~drops;
	else if (cap_in(p->cap_drop, 1, 0))
		caps = adds;
	else
		caps = (def & ~drops) | adds;
	*out = caps;
	return 0;
}

/* Prepare everything the backend gets. */
static int prepare(run_state *r, const char *rootfs, const ib_process *p, const ib_execute_options *o)
{
	char real[PATH_MAX];
	if (!realpath(rootfs, real))
		return ib_error_set_os(IB_LAYER_EXECUTE, "root filesystem `%s`", rootfs);
	if (!(r->rootfs = ib_strdup(real)))
		return IB_ERROR;
	r->rootfd = open(r->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->rootfd < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "open root filesystem `%s`", r->rootfs);
	int rc;
	r->user.version = IB_USER_VERSION;
	if ((rc = ib_user_resolve(&r->user, r->rootfs, p->user)) < 0 ||
	    (rc = build_env(r, p)) < 0 || (rc = check_rlimits(r, p)) < 0 ||
	    (rc = make_work_dir(r, o)) < 0 || (rc = prepare_cwd(r, p)) < 0 ||
	    (rc = prepare_mount_points(r, p)) < 0 || (rc = provide_net_files(r, p)) < 0 ||
	    (rc = setup_stdio(r, p)) < 0)
		return rc;
	ib_isolation_spec *s = &r->spec;
	s->version = IB_ISOLATION_SPEC_VERSION;
	s->rootfs = r->rootfs;
	s->argv = p->argv;
	s->env = (const char *const *)r->env;
	s->cwd = r->cwd;
	s->uid = r->user.uid;
	s->gid = r->user.gid;
	s->groups = r->user.groups;
	s->ngroups = r->user.ngroups;
	s->hostname = p->hostname;
	s->network = p->network;
	s->mounts = p->mounts;
	s->nmounts = p->nmounts;
	s->hosts_file = r->hosts_file;
	s->resolv_file = r->resolv_file;
	s->tty = p->tty;
	s->rlimits = r->rlimits;
	s->nrlimits = p->nrlimits;
	s->work_dir = r->work_dir;
	s->privileged = p->version >= 2 && p->privileged;
	s->network_files_readonly = p->version >= 3 && p->network_files_readonly;
	s->readonly_rootfs = p->version >= 4 && p->readonly_rootfs;
	return resolve_caps(&s->capabilities, p);
}

/* Output relay: a stream split into log lines. */
typedef struct {
	int fd;
	ib_log_level level;
	ib_buf pending;
} stream;

static void emit_lines(stream *st, const ib_process *p, int flush)
{
	size_t start = 0;
	for (size_t i = 0; i < st->pending.size; i++) {
		if (st->pending.ptr[i] != '\n')
			continue;
		size_t end = i;
		if (end > start && st->pending.ptr[end - 1] == '\r')
			end--;
		st->pending.ptr[end] = '\0';
		p->log(st->level, st->pending.ptr + start, p->log_payload);
		start = i + 1;
	}
	size_t rest = st->pending.size - start;
	if (rest && (flush || rest > 65536)) {
		char *tail = ib_strndup(st->pending.ptr + start, rest);
		if (tail)
			p->log(st->level, tail, p->log_payload);
		free(tail);
		start = st->pending.size;
	}
	memmove(st->pending.ptr, st->pending.ptr + start, st->pending.size - start);
	ib_buf_truncate(&st->pending, st->pending.size - start);
}

/* Read what is there; 0 at EOF or error (stop polling it), 1 otherwise. */
static int pump(stream *st, const ib_process *p, int out_fd)
{
	char chunk[16384];
	ssize_t n = read(st->fd, chunk, sizeof chunk);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n <= 0)
		return 0;
	if (out_fd >= 0) {
		ib_error_saved saved;
		ib_error_save(&saved);
		ib_write_all(out_fd, chunk, (size_t)n);
		ib_error_restore(&saved);
	} else if (p->log) {
		ib_buf_put(&st->pending, chunk, (size_t)n);
		emit_lines(st, p, 0);
	}
	return 1;
}

typedef struct {
	ib_isolation *iso;
	ib_isolation_run *run;
	pid_t pid;
	int pidfd;
	int status;       /* wait status once reaped */
	int reaped;
	int killed;
} waiter;

/* Cancellation and cleanup: what the backend's kill says changes no error of ours. */
static void backend_kill(ib_isolation *iso, ib_isolation_run *run)
{
	if (!iso->kill)
		return;
	ib_error_saved saved;
	ib_error_save(&saved);
	iso->kill(iso, run);
	ib_error_restore(&saved);
}

static int try_reap(waiter *w, int block)
{
	for (;;) {
		pid_t got = waitpid(w->pid, &w->status, block ? 0 : WNOHANG);
		if (got == w->pid) {
			w->reaped = 1;
			return 1;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return ib_error_set_os(IB_LAYER_EXECUTE, "wait for process %d", (int)w->pid);
		return 0;
	}
}

/* Copy the caller's terminal size to the pty when it changed (the kernel signals SIGWINCH). */
static void follow_window_size(run_state *r)
{
	struct winsize mine, theirs;
	if (ioctl(r->termios_fd, TIOCGWINSZ, &mine) == 0 &&
	    ioctl(r->pty_master, TIOCGWINSZ, &theirs) == 0 &&
	    (mine.ws_row != theirs.ws_row || mine.ws_col != theirs.ws_col))
		ioctl(r->pty_master, TIOCSWINSZ, &mine);
}

/* Relay and wait until the process ends; cancel when asked. */
static int wait_loop(waiter *w, run_state *r, const ib_process *p, const ib_execute_options *o)
{
	stream streams[3] = {
		{ r->out_pipe[0], IB_LOG_INFO, IB_BUF_INIT },
		{ r->err_pipe[0], IB_LOG_WARNING, IB_BUF_INIT },
		{ r->pty_master, IB_LOG_INFO, IB_BUF_INIT },
	};
	int out_fds[3] = { -1, -1, p->tty ? p->stdout_fd : -1 };
	int stdin_open = p->tty && p->stdin_fd >= 0;
	const volatile int *cancel = o->callbacks && o->callbacks->version >= 2 ? o->callbacks->cancel : NULL;
	int rc = 0;
	while (!w->reaped) {
		struct pollfd pfd[5];
		int n = 0, idx[3] = { -1, -1, -1 }, pid_i = -1, in_i = -1;
		for (int i = 0; i < 3; i++) {
			if (streams[i].fd >= 0) {
				idx[i] = n;
				pfd[n++] = (struct pollfd){ streams[i].fd, POLLIN, 0 };
			}
		}
		if (w->pidfd >= 0) {
			pid_i = n;
			pfd[n++] = (struct pollfd){ w->pidfd, POLLIN, 0 };
		}
		if (stdin_open) {
			in_i = n;
			pfd[n++] = (struct pollfd){ p->stdin_fd, POLLIN, 0 };
		}
		/* a cancel flag is polled every 20 ms, output or not (a kill within 100 ms) */
		int timeout = (cancel || o->forward_signal) && !w->killed ? 20 : w->pidfd < 0 ? 50 : -1;
		if (r->termios_saved && (timeout < 0 || timeout > 200))
			timeout = 200; /* follow the caller's window size */
		int k = poll(pfd, (nfds_t)n, timeout);
		if (k < 0 && errno != EINTR) {
			rc = ib_error_set_os(IB_LAYER_EXECUTE, "poll");
			break;
		}
		for (int i = 0; k > 0 && i < 3; i++)
			if (idx[i] >= 0 && (pfd[idx[i]].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !pump(&streams[i], p, out_fds[i]))
				streams[i].fd = -1; /* closed by run_dispose */
		if (k > 0 && in_i >= 0 && (pfd[in_i].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[4096];
			ssize_t got = read(p->stdin_fd, buf, sizeof buf);
			if (got > 0 && r->pty_master >= 0) {
				ib_error_saved saved;
				ib_error_save(&saved);
				ib_write_all(r->pty_master, buf, (size_t)got);
				ib_error_restore(&saved);
			} else if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
				stdin_open = 0;
			}
		}
		if (r->termios_saved && r->pty_master >= 0)
			follow_window_size(r);
		if (o->forward_signal && !w->killed) {
			int sig = __atomic_exchange_n(o->forward_signal, 0, __ATOMIC_SEQ_CST);
			/* SIGKILL: every process of the run, through the backend (oci's helper cannot pass it on) */
			if (sig == SIGKILL)
				backend_kill(w->iso, w->run);
			else if (sig > 0 && sig < NSIG)
				kill(w->pid, sig); /* oci: its helper passes it on to the init */
		}
		if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) && !w->killed) {
			w->killed = 1;
			backend_kill(w->iso, w->run);
		}
		if (w->pidfd < 0 || (pid_i >= 0 && k > 0 && (pfd[pid_i].revents & POLLIN)))
			if ((rc = try_reap(w, w->pidfd >= 0)) < 0)
				break;
		rc = 0;
	}
	/* drain what the process left, without waiting for descendants that keep a pipe open */
	for (int i = 0; i < 3; i++) {
		if (streams[i].fd >= 0) {
			fcntl(streams[i].fd, F_SETFL, O_NONBLOCK);
			for (int guard = 0; guard < 4096; guard++) {
				struct pollfd one = { streams[i].fd, POLLIN, 0 };
				if (poll(&one, 1, 0) <= 0 || !pump(&streams[i], p, out_fds[i]))
					break;
			}
		}
		if (p->log && streams[i].pending.size)
			emit_lines(&streams[i], p, 1);
		ib_buf_dispose(&streams[i].pending);
	}
	return rc;
}

static int run_backend(ib_exit_status *out, run_state *r, const ib_process *p,
		       const ib_execute_options *o)
{
	ib_isolation *iso;
	const char *name = o->isolation ? o->isolation : "namespaces";
	int rc = ib_isolation_new(&iso, o->isolation, o);
	if (rc < 0)
		return rc;
	if (r->spec.privileged && !(iso->version >= 2 && (iso->features & IB_ISOLATION_PRIVILEGED))) {
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				   "isolation `%s` cannot run a privileged process",
				   o->isolation ? o->isolation : "namespaces");
		iso->free(iso);
		return rc;
	}
	if (r->spec.network_files_readonly && !(iso->version >= 2 && (iso->features & IB_ISOLATION_RO_NETWORK_FILES))) {
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				   "isolation `%s` cannot bind /etc/hosts and /etc/resolv.conf read-only",
				   o->isolation ? o->isolation : "namespaces");
		iso->free(iso);
		return rc;
	}
	if (r->spec.readonly_rootfs && !(iso->version >= 2 && (iso->features & IB_ISOLATION_RO_ROOTFS))) {
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				   "isolation `%s` cannot make the root filesystem read-only", name);
		iso->free(iso);
		return rc;
	}
	uint64_t def = 0;
	for (size_t i = 0; i < ib_execute__default_caps_count; i++)
		def |= 1ULL << ib_execute__default_caps[i];
	if (!r->spec.privileged && r->spec.capabilities != def &&
	    !(iso->version >= 2 && (iso->features & IB_ISOLATION_CAPS))) {
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				   "isolation `%s` cannot change the capability set", name);
		iso->free(iso);
		return rc;
	}
	waiter w = { iso, NULL, -1, -1, 0, 0, 0 };
	/* the backend's own error, or one naming it (sys/errors.h) */
	ib_backend_call call;
	ib_backend_call_begin(&call);
	rc = iso->start(iso, &w.run, &w.pid, out, &r->spec);
	rc = ib_backend_call_end(&call, &ib_execute__isolation_class, name, "start", rc);
	/* the child has its copies: close our ends of its streams */
	close_fd(&r->out_pipe[1]);
	close_fd(&r->err_pipe[1]);
	close_fd(&r->pty_slave);
	if (rc < 0) {
		iso->free(iso);
		return rc;
	}
	w.pidfd = (int)syscall(SYS_pidfd_open, w.pid, 0);
	if (o->started)
		o->started(o->started_payload);
	/* cancelled while it started: kill it at once */
	if (ib_callback_cancelled(o->callbacks)) {
		w.killed = 1;
		if (iso->kill)
			iso->kill(iso, w.run);
	}
	rc = wait_loop(&w, r, p, o);
	if (!w.reaped) {
		/* something failed while it ran: do not leave it behind */
		backend_kill(iso, w.run);
		ib_error_saved saved;
		ib_error_save(&saved);
		try_reap(&w, 1);
		ib_error_restore(&saved);
	}
	if (rc == 0) {
		ib_backend_call_begin(&call);
		rc = iso->finish(iso, w.run, w.status, out);
		rc = ib_backend_call_end(&call, &ib_execute__isolation_class, name, "finish", rc);
	} else {
		ib_error_saved saved;
		ib_error_save(&saved);
		iso->finish(iso, w.run, w.status, out);
		ib_error_restore(&saved);
	}
	if (w.pidfd >= 0)
		close(w.pidfd);
	iso->free(iso);
	if (rc == 0 && w.killed)
		rc = ib_error_setc(IB_EUSER, IB_LAYER_CALLBACK, "`%s` was cancelled by the caller", p->argv[0]);
	return rc;
}

int ib_execute_run(ib_exit_status *out, const char *rootfs, const ib_process *p,
		   const ib_execute_options *opts)
{
	ib_exit_status dummy;
	if (!out)
		out = &dummy;
	out->code = -1;
	out->signal = 0;
	ib_execute_options v2;
	ib_callbacks v1_cancel;
	opts = options_v2(&v2, &v1_cancel, opts);
	int rc = check_args(rootfs, p, opts);
	if (rc < 0)
		return rc;
	ib_execute_options defaults = IB_EXECUTE_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	run_state r;
	memset(&r, 0, sizeof r);
	r.rootfd = r.null_fd = r.pty_master = r.pty_slave = -1;
	r.out_pipe[0] = r.out_pipe[1] = r.err_pipe[0] = r.err_pipe[1] = -1;

	/* a closed reader of our output must not kill the caller with SIGPIPE */
	sigset_t pipe_set, old_set, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	int pipe_was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

	rc = prepare(&r, rootfs, p, opts);
	if (rc == 0)
		rc = run_backend(out, &r, p, opts);
	if (rc < 0)
		ib_error_prefix("run `%s` in `%s`", p->argv[0], rootfs);
	run_dispose(&r);

	sigpending(&pending);
	if (!pipe_was_pending && sigismember(&pending, SIGPIPE)) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	return rc;
}
