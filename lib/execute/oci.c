/*
 * The `oci` backend: writes an OCI runtime config.json for the spec into a
 * private bundle and runs an OCI runtime (runc by default; crun refuses to
 * start on hosts with hybrid cgroups, runc works).
 *
 * To get the exact wait status (runc run folds a signal death into
 * 128 + signal) a helper process (a fork of the caller, outside the
 * container's PID namespace, so invisible inside) becomes a child
 * subreaper, runs `runtime create` (the container's init is then
 * reparented to it) and `runtime start`, waits for the init and reports
 * its wait status through a pipe, then runs `runtime delete --force`. The
 * runtime's state lives in a private --root under the run directory.
 */
#include "util/rootless.h"
#include "execute/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	ib_isolation parent;
	char *runtime;       /* as given: a path or a name looked up in PATH */
} oci_backend;

/* What the helper reports. */
enum { PHASE_FAILED = 1, PHASE_STARTED = 2, PHASE_EXITED = 3 };
typedef struct {
	int phase;
	int status;          /* wait status: of the runtime (FAILED) or of the container (EXITED) */
	int step;            /* FAILED: 0 create, 1 pid file, 2 start */
} helper_report;

struct ib_isolation_run {
	char *runtime;
	char *state;
	char *id;
	char *log;
	int report_fd;
};

/* ---- config.json ---- */

static json_t *str_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && (n == (size_t)-1 ? v && v[i] : i < n); i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *mount_obj(const char *dest, const char *type, const char *src,
			 const char *const *options)
{
	json_t *o = json_object();
	json_object_set_new(o, "destination", json_string(dest));
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "source", json_string(src));
	json_object_set_new(o, "options", str_array(options, (size_t)-1));
	return o;
}

/* Capability names by number (runc knows them by name), up to CAP_CHECKPOINT_RESTORE. */

/*
 * Privileged: every capability this process has (BuildKit's
 * WithInsecureSpec takes the daemon's current ones), by name.
 */
static json_t *current_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	json_t *a = json_array();
	if (!a || syscall(SYS_capget, &hdr, data) < 0)
		return a;
	for (size_t cap = 0; cap < ib_execute__cap_names_count; cap++)
		if ((data[cap / 32].effective >> (cap % 32)) & 1)
			json_array_append_new(a, json_string(ib_execute__cap_names[cap]));
	return a;
}

static json_t *process_obj(const ib_isolation_spec *s)
{
	json_t *p = json_object();
	json_object_set_new(p, "terminal", json_false());
	json_t *user = json_object();
	json_object_set_new(user, "uid", json_integer(s->uid));
	json_object_set_new(user, "gid", json_integer(s->gid));
	json_t *groups = json_array();
	for (size_t i = 0; i < s->ngroups; i++)
		json_array_append_new(groups, json_integer(s->groups[i]));
	json_object_set_new(user, "additionalGids", groups);
	json_object_set_new(p, "user", user);
	json_object_set_new(p, "args", str_array(s->argv, (size_t)-1));
	json_object_set_new(p, "env", str_array(s->env, (size_t)-1));
	json_object_set_new(p, "cwd", json_string(s->cwd));
	json_t *caps = json_object();
	const char *const *names = ib_execute__default_cap_names;
	size_t n = ib_execute__default_caps_count;
	if (s->privileged) {
		/* all five sets, as BuildKit: a non-root user has them too */
		json_t *all = current_caps();
		static const char *const sets[] = { "bounding", "effective", "permitted", "inheritable",
						    "ambient" };
		for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
			json_object_set_new(caps, sets[i], json_deep_copy(all));
		json_decref(all);
	} else if (s->version >= 4) {
		/* the run's set (cap_add/cap_drop), by name */
		const char *set[64];
		size_t k = 0;
		for (size_t cap = 0; cap < ib_execute__cap_names_count; cap++)
			if ((s->capabilities >> cap) & 1)
				set[k++] = ib_execute__cap_names[cap];
		json_object_set_new(caps, "bounding", str_array(set, k));
		json_object_set_new(caps, "effective", str_array(set, s->uid == 0 ? k : 0));
		json_object_set_new(caps, "permitted", str_array(set, s->uid == 0 ? k : 0));
	} else {
		json_object_set_new(caps, "bounding", str_array(names, n));
		/* like setuid: a non-root user starts without capabilities */
		json_object_set_new(caps, "effective", str_array(names, s->uid == 0 ? n : 0));
		json_object_set_new(caps, "permitted", str_array(names, s->uid == 0 ? n : 0));
	}
	json_object_set_new(p, "capabilities", caps);
	json_t *rl = json_array();
	for (size_t i = 0; i < s->nrlimits; i++) {
		char type[64];
		snprintf(type, sizeof type, "RLIMIT_%s", ib_execute__rlimit_name(s->rlimits[i].resource));
		for (char *c = type; *c; c++)
			*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string(type));
		json_object_set_new(o, "hard", json_integer((json_int_t)s->rlimits[i].hard));
		json_object_set_new(o, "soft", json_integer((json_int_t)s->rlimits[i].soft));
		json_array_append_new(rl, o);
	}
	json_object_set_new(p, "rlimits", rl);
	json_object_set_new(p, "noNewPrivileges", s->privileged ? json_false() : json_true());
	return p;
}

static json_t *mounts_arr(const ib_isolation_spec *s)
{
	static const char *const proc_o[] = { "nosuid", "noexec", "nodev", NULL };
	static const char *const dev_o[] = { "nosuid", "strictatime", "mode=755", "size=65536k", NULL };
	static const char *const pts_o[] = { "nosuid", "noexec", "newinstance", "ptmxmode=0666",
					     "mode=0620", "gid=5", NULL };
	static const char *const shm_o[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL };
	static const char *const mq_o[] = { "nosuid", "noexec", "nodev", NULL };
	static const char *const sys_o[] = { "nosuid", "noexec", "nodev", "ro", NULL };
	static const char *const sys_rw[] = { "nosuid", "noexec", "nodev", NULL };
	static const char *const bind_o[] = { "rbind", "rprivate", NULL };
	/* BuildKit's withROBind for a build step's /etc/hosts and /etc/resolv.conf */
	static const char *const net_ro[] = { "rbind", "rprivate", "nosuid", "noexec", "nodev", "ro", NULL };
	const char *const *net_o = s->version >= 3 && s->network_files_readonly ? net_ro : bind_o;
	static const char *const bind_ro[] = { "rbind", "rprivate", "ro", NULL };
	json_t *m = json_array();
	json_array_append_new(m, mount_obj("/proc", "proc", "proc", proc_o));
	json_array_append_new(m, mount_obj("/dev", "tmpfs", "tmpfs", dev_o));
	json_array_append_new(m, mount_obj("/dev/pts", "devpts", "devpts", pts_o));
	json_array_append_new(m, mount_obj("/dev/shm", "tmpfs", "shm", shm_o));
	json_array_append_new(m, mount_obj("/dev/mqueue", "mqueue", "mqueue", mq_o));
	/* rootless on the caller's network: a sysfs mount needs a network namespace of our own, so
	 * the caller's /sys is bound read-only instead (runc's rootless spec, podman's) */
	static const char *const sys_bind[] = { "rbind", "rprivate", "nosuid", "noexec", "nodev", "ro", NULL };
	if (s->network != IB_NETWORK_NONE && ib_userns_active())
		json_array_append_new(m, mount_obj("/sys", "bind", "/sys", sys_bind));
	else
		json_array_append_new(m, mount_obj("/sys", "sysfs", "sysfs", s->privileged ? sys_rw : sys_o));
	if (s->privileged) /* BuildKit's withCGroup, writable in insecure mode (WithWriteableCgroupfs) */
		json_array_append_new(m, mount_obj("/sys/fs/cgroup", "cgroup", "cgroup", sys_rw));
	if (s->hosts_file)
		json_array_append_new(m, mount_obj("/etc/hosts", "bind", s->hosts_file, net_o));
	if (s->resolv_file)
		json_array_append_new(m, mount_obj("/etc/resolv.conf", "bind", s->resolv_file, net_o));
	for (size_t i = 0; i < s->nmounts; i++) {
		const ib_mount *u = &s->mounts[i];
		if (u->type == IB_MOUNT_BIND) {
			json_array_append_new(m, mount_obj(u->target, "bind", u->source,
							   u->readonly ? bind_ro : bind_o));
			continue;
		}
		const char *opts[4] = { "nosuid", "nodev", NULL, NULL };
		size_t k = 2;
		if (u->readonly)
			opts[k++] = "ro";
		json_t *o = mount_obj(u->target, "tmpfs", "tmpfs", opts);
		if (u->options && *u->options) {
			/* "size=64m,mode=755": one option each */
			char *copy = strdup(u->options), *save = NULL;
			for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
				json_array_append_new(json_object_get(o, "options"), json_string(t));
			free(copy);
		}
		json_array_append_new(m, o);
	}
	return m;
}

static json_t *device_obj(const char *path, const char *type, int major, int minor)
{
	json_t *o = json_object();
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "major", json_integer(major));
	json_object_set_new(o, "minor", json_integer(minor));
	json_object_set_new(o, "fileMode", json_integer(0666));
	json_object_set_new(o, "uid", json_integer(0));
	json_object_set_new(o, "gid", json_integer(0));
	return o;
}

/*
 * What BuildKit's insecure mode sets (util/entitlements/security/
 * security_linux.go, WithInsecureSpec): no masked or read-only paths, a
 * device cgroup allowing every character and block device, and the nodes
 * kmsg, cuse, fuse, kvm, net/tun, loop-control, loop0 up to the first free
 * loop device + 7 (left out in a user namespace, where runc cannot make them).
 */
static void privileged_linux(json_t *l)
{
	json_object_set_new(l, "maskedPaths", json_array());
	json_object_set_new(l, "readonlyPaths", json_array());
	json_t *res = json_object(), *rules = json_array();
	static const char *const types[] = { "c", "b" };
	for (size_t i = 0; i < 2; i++) {
		json_t *r = json_object();
		json_object_set_new(r, "allow", json_true());
		json_object_set_new(r, "type", json_string(types[i]));
		json_object_set_new(r, "access", json_string("rwm"));
		json_array_append_new(rules, r);
	}
	json_object_set_new(res, "devices", rules);
	json_object_set_new(l, "resources", res);
	ib_buf uid_map = IB_BUF_INIT;
	ib_error_saved saved;
	ib_error_save(&saved);
	/* as moby/sys/userns: in a user namespace unless the map is the whole identity */
	unsigned int in = 1, outside = 1, count = 0;
	int in_userns = ib_read_file(&uid_map, "/proc/self/uid_map") == 0 &&
			!(sscanf(ib_buf_cstr(&uid_map), "%u %u %u", &in, &outside, &count) == 3 &&
			  in == 0 && outside == 0 && count == 4294967295u);
	ib_buf_dispose(&uid_map);
	ib_error_restore(&saved);
	if (in_userns)
		return;
	json_t *dev = json_array();
	json_array_append_new(dev, device_obj("/dev/kmsg", "c", 1, 11));
	json_array_append_new(dev, device_obj("/dev/cuse", "c", 10, 203));
	json_array_append_new(dev, device_obj("/dev/fuse", "c", 10, 229));
	json_array_append_new(dev, device_obj("/dev/kvm", "c", 10, 232));
	json_array_append_new(dev, device_obj("/dev/net/tun", "c", 10, 200));
	json_array_append_new(dev, device_obj("/dev/loop-control", "c", 10, 237));
	int last = ib_execute__privileged_last_loop();
	for (int i = 0; i <= last; i++) {
		char path[32];
		snprintf(path, sizeof path, "/dev/loop%d", i);
		json_array_append_new(dev, device_obj(path, "b", 7, i));
	}
	json_object_set_new(l, "devices", dev);
}

static json_t *linux_obj(const ib_isolation_spec *s)
{
	static const char *const masked[] = {
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
		"/proc/scsi", NULL,
	};
	static const char *const readonly[] = {
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
	};
	json_t *l = json_object();
	json_t *ns = json_array();
	const char *types[] = { "pid", "ipc", "uts", "mount", "network" };
	size_t n = s->network == IB_NETWORK_NONE ? 5 : 4;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string(types[i]));
		json_array_append_new(ns, o);
	}
	json_object_set_new(l, "namespaces", ns);
	if (s->privileged) {
		privileged_linux(l);
		return l;
	}
	json_object_set_new(l, "maskedPaths", str_array(masked, (size_t)-1));
	json_object_set_new(l, "readonlyPaths", str_array(readonly, (size_t)-1));
	return l;
}

int ib_execute__oci_config(ib_buf *out, const ib_isolation_spec *s)
{
	json_t *c = json_object();
	if (!c)
		return ib_error_oom();
	json_object_set_new(c, "ociVersion", json_string("1.0.2"));
	json_object_set_new(c, "process", process_obj(s));
	json_t *root = json_object();
	json_object_set_new(root, "path", json_string(s->rootfs));
	json_object_set_new(root, "readonly", json_boolean(s->version >= 4 && s->readonly_rootfs));
	json_object_set_new(c, "root", root);
	if (s->hostname)
		json_object_set_new(c, "hostname", json_string(s->hostname));
	json_object_set_new(c, "mounts", mounts_arr(s));
	json_object_set_new(c, "linux", linux_obj(s));
	/* Docker's default seccomp profile, resolved as dockerd does (seccomp.c); none when privileged */
	json_t *seccomp = NULL;
	if (s->privileged) {
		int rc = ib_json_dump(out, c, IB_JSON_PRETTY);
		json_decref(c);
		return rc;
	}
	if (ib_execute__seccomp_oci(&seccomp) < 0) {
		json_decref(c);
		return IB_ERROR;
	}
	json_object_set_new(json_object_get(c, "linux"), "seccomp", seccomp);
	int rc = ib_json_dump(out, c, IB_JSON_PRETTY);
	json_decref(c);
	return rc;
}

/* ---- running the runtime ---- */

/* The runtime's path: as given when it has a '/', else looked up in the caller's PATH. */
static char *find_runtime(const char *name)
{
	if (strchr(name, '/')) {
		if (access(name, X_OK) == 0)
			return ib_strdup(name);
		ib_error_set_os(IB_LAYER_EXECUTE, "OCI runtime `%s`", name);
		return NULL;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *copy = ib_strdup(path), *save = NULL;
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
		char *cand = ib_sprintf("%s/%s", d, name);
		if (cand && access(cand, X_OK) == 0) {
			free(copy);
			return cand;
		}
		free(cand);
	}
	free(copy);
	ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
		      "OCI runtime `%s` not found in PATH (install runc, or give its path)", name);
	return NULL;
}

/* fork + execve in the helper (no allocation); returns the wait status or -1. */
static int spawn_wait(char *const argv[], int quiet)
{
	static char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (quiet) {
			int null = open("/dev/null", O_RDWR);
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execve(argv[0], argv, envp);
		_exit(127);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -1;
	return ws;
}

static void report(int fd, int phase, int status, int step)
{
	helper_report r = { phase, status, step };
	ssize_t n = write(fd, &r, sizeof r);
	(void)n;
}

static int read_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

typedef struct {
	char *create[16];
	char *start[6];
	char *del[7];
	const char *pid_file;
	int stdio[3];
	int report_fd;
} helper_args;

static volatile pid_t forward_to;

static void forward(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

static void helper(const helper_args *a) __attribute__((noreturn));
static void helper(const helper_args *a)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	int high[3], rep = fcntl(a->report_fd, F_DUPFD_CLOEXEC, 10);
	for (int i = 0; i < 3; i++)
		high[i] = fcntl(a->stdio[i], F_DUPFD_CLOEXEC, 10);
	for (int i = 0; i < 3; i++)
		dup2(high[i], i);
	dup3(rep, 3, O_CLOEXEC);
	syscall(SYS_close_range, 4U, ~0U, 0U);
	int ws = spawn_wait(a->create, 0);
	if (ws != 0) {
		report(3, PHASE_FAILED, ws, 0);
		_exit(1);
	}
	int init = read_pid_file(a->pid_file);
	if (init <= 0) {
		spawn_wait(a->del, 1);
		report(3, PHASE_FAILED, 0, 1);
		_exit(1);
	}
	ws = spawn_wait(a->start, 0);
	if (ws != 0) {
		kill(init, SIGKILL);
		spawn_wait(a->del, 1);
		report(3, PHASE_FAILED, ws, 2);
		_exit(1);
	}
	report(3, PHASE_STARTED, 0, 0);
	/* a signal sent to us (ib_execute_options.forward_signal) goes on to the init */
	forward_to = init;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
			sigaction(sig, &sa, NULL);
	/* the init was reparented to us (subreaper); reap orphans until it ends */
	for (;;) {
		int st;
		pid_t got = waitpid(-1, &st, 0);
		if (got == init) {
			ws = st;
			break;
		}
		if (got < 0 && errno != EINTR) {
			ws = -1;
			break;
		}
	}
	spawn_wait(a->del, 1);
	report(3, PHASE_EXITED, ws, 0);
	_exit(0);
}

/* The runtime's last error message from its JSON log, or "". */
static void runtime_error(ib_buf *out, const char *log)
{
	ib_buf content = IB_BUF_INIT;
	ib_error_saved saved;
	ib_error_save(&saved);
	if (ib_read_file(&content, log) == 0) {
		char *save = NULL;
		for (char *line = strtok_r(content.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			json_t *j = NULL;
			if (ib_json_loadb(&j, line, strlen(line), log) == 0) {
				const char *lvl = ib_json_str(j, "level"), *msg = ib_json_str(j, "msg");
				if (lvl && msg && (!strcmp(lvl, "error") || !strcmp(lvl, "fatal"))) {
					ib_buf_clear(out);
					ib_buf_puts(out, msg);
				}
				json_decref(j);
			}
		}
	}
	ib_buf_dispose(&content);
	ib_error_restore(&saved);
}

static void run_free(ib_isolation_run *run)
{
	if (!run)
		return;
	if (run->report_fd >= 0)
		close(run->report_fd);
	free(run->runtime);
	free(run->state);
	free(run->id);
	free(run->log);
	free(run);
}

static int write_bundle(const ib_isolation_spec *spec, const char *bundle)
{
	ib_buf cfg = IB_BUF_INIT;
	char *path = ib_sprintf("%s/config.json", bundle);
	int rc = path ? 0 : IB_ERROR;
	if (rc == 0 && mkdir(bundle, 0700) < 0)
		rc = ib_error_set_os(IB_LAYER_EXECUTE, "create the bundle `%s`", bundle);
	if (rc == 0)
		rc = ib_execute__oci_config(&cfg, spec);
	if (rc == 0)
		rc = ib_atomic_write(path, cfg.ptr, cfg.size, 0600);
	ib_buf_dispose(&cfg);
	free(path);
	return rc;
}

static int oci_start(ib_isolation *self, ib_isolation_run **out, int *pid,
		     ib_exit_status *status, const ib_isolation_spec *spec)
{
	oci_backend *b = (oci_backend *)self;
	ib_isolation_run *run = ib_calloc(1, sizeof *run);
	if (!run)
		return IB_ERROR;
	run->report_fd = -1;
	const char *base = strrchr(spec->work_dir, '/');
	char *bundle = ib_sprintf("%s/bundle", spec->work_dir);
	char *pid_file = ib_sprintf("%s/init.pid", spec->work_dir);
	run->state = ib_sprintf("%s/state", spec->work_dir);
	run->log = ib_sprintf("%s/runtime.log", spec->work_dir);
	run->id = ib_sprintf("imagebuild-%ld-%s", (long)getpid(), base ? base + 1 : "run");
	int rc = bundle && pid_file && run->state && run->log && run->id ? 0 : IB_ERROR;
	if (rc == 0 && !(run->runtime = find_runtime(b->runtime)))
		rc = IB_ERROR;
	if (rc == 0 && ib_execute__refuse_magic_command(spec) < 0) {
		status->code = 126; /* as the namespaces and chroot backends say it */
		status->signal = 0;
		rc = IB_ERROR;
	}
	if (rc == 0)
		rc = write_bundle(spec, bundle);
	int fds[2] = { -1, -1 };
	if (rc == 0 && pipe2(fds, O_CLOEXEC) < 0)
		rc = ib_error_set_os(IB_LAYER_EXECUTE, "pipe");
	pid_t child = -1;
	if (rc == 0) {
		helper_args a = {
			{ run->runtime, "--root", run->state, "--log", run->log, "--log-format", "json",
			  "create", "--bundle", bundle, "--pid-file", pid_file, run->id, NULL },
			{ run->runtime, "--root", run->state, "start", run->id, NULL },
			{ run->runtime, "--root", run->state, "delete", "--force", run->id, NULL },
			pid_file, { spec->stdio[0], spec->stdio[1], spec->stdio[2] }, fds[1],
		};
		child = fork();
		if (child == 0)
			helper(&a);
		if (child < 0)
			rc = ib_error_set_os(IB_LAYER_EXECUTE, "fork");
		close(fds[1]);
	}
	helper_report r = { 0, 0, 0 };
	if (rc == 0) {
		ssize_t n;
		while ((n = read(fds[0], &r, sizeof r)) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof r || r.phase != PHASE_STARTED) {
			int ws;
			while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
				;
			ib_buf why = IB_BUF_INIT;
			runtime_error(&why, run->log);
			/*
			 * The command itself missing or not executable: 127 and 126,
			 * as the other backends and docker/podman say it (podman reads
			 * runc's message the same way).
			 */
			const char *w = ib_buf_cstr(&why), *ex = strstr(w, "exec: \"");
			if (ex && (strstr(ex, "executable file not found") || strstr(ex, "no such file or directory"))) {
				status->code = 127;
				status->signal = 0;
			} else if (ex && (strstr(ex, "permission denied") || strstr(ex, "is a directory"))) {
				status->code = 126;
				status->signal = 0;
			}
			static const char *const steps[] = { "create", "read the init's pid of", "start" };
			rc = ib_error_set(IB_LAYER_EXECUTE, "OCI runtime `%s`: %s the container failed%s%s",
					  run->runtime, n == (ssize_t)sizeof r ? steps[r.step % 3] : "run",
					  why.size ? ": " : "", ib_buf_cstr(&why));
			ib_buf_dispose(&why);
		}
	}
	free(bundle);
	free(pid_file);
	if (rc < 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		run_free(run);
		return rc;
	}
	run->report_fd = fds[0];
	*out = run;
	*pid = child;
	return 0;
}

static int oci_kill(ib_isolation *self, ib_isolation_run *run)
{
	(void)self;
	char *argv[] = { run->runtime, "--root", run->state, "kill", "--all", run->id, "KILL", NULL };
	pid_t pid = fork();
	if (pid < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		static char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
		execve(argv[0], argv, envp);
		_exit(127);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	return 0;
}

static int oci_finish(ib_isolation *self, ib_isolation_run *run, int wstatus, ib_exit_status *out)
{
	(void)self;
	helper_report r = { 0, 0, 0 };
	ssize_t n;
	while ((n = read(run->report_fd, &r, sizeof r)) < 0 && errno == EINTR)
		;
	int rc = 0;
	if (n != (ssize_t)sizeof r || r.phase != PHASE_EXITED || r.status == -1) {
		rc = ib_error_set(IB_LAYER_EXECUTE, "OCI runtime `%s`: lost track of the container "
				  "(helper %s %d)", run->runtime,
				  WIFSIGNALED(wstatus) ? "killed by signal" : "exited with",
				  WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(r.status)) {
		out->signal = WTERMSIG(r.status);
		out->code = 128 + out->signal;
	} else {
		out->signal = 0;
		out->code = WEXITSTATUS(r.status);
	}
	run_free(run);
	return rc;
}

static int oci_probe(ib_isolation *self)
{
	oci_backend *b = (oci_backend *)self;
	char *path = find_runtime(b->runtime);
	free(path);
	return path ? 0 : IB_ERROR;
}

static void oci_free(ib_isolation *self)
{
	oci_backend *b = (oci_backend *)self;
	if (b)
		free(b->runtime);
	free(b);
}

int ib_execute__oci_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	(void)param;
	oci_backend *b = ib_calloc(1, sizeof *b);
	if (!b)
		return IB_ERROR;
	b->parent.version = IB_ISOLATION_VERSION;
	b->parent.probe = oci_probe;
	b->parent.start = oci_start;
	b->parent.kill = oci_kill;
	b->parent.finish = oci_finish;
	b->parent.free = oci_free;
	b->parent.features = IB_ISOLATION_PRIVILEGED | IB_ISOLATION_RO_NETWORK_FILES | IB_ISOLATION_RO_ROOTFS |
			     IB_ISOLATION_CAPS;
	b->runtime = ib_strdup(opts && opts->runtime && *opts->runtime ? opts->runtime : "runc");
	if (!b->runtime) {
		free(b);
		return IB_ERROR;
	}
	*out = &b->parent;
	return 0;
}
