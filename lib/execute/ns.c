/*
 * The `namespaces` backend (new mount, PID, IPC and UTS namespaces, and a
 * network namespace for IB_NETWORK_NONE; pivot_root into the root) and the
 * weaker `chroot` backend (a plain chroot; a private mount namespace for
 * /proc, /dev and the like when the host allows one, else nothing is
 * mounted; a UTS namespace only to set a hostname; no PID, IPC or network
 * isolation). Both share the child
 * code of child.c; see there for how the known escapes are closed.
 *
 * `chroot` is weaker: no PID namespace, so the caller is visible in /proc
 * (its /proc/<pid>/exe stays closed to the process only because it runs
 * with Docker's default capabilities, without CAP_SYS_PTRACE, and the
 * kernel refuses ptrace access to a process with more capabilities);
 * cancellation kills the process group only; and root inside can leave a
 * chroot with CAP_SYS_CHROOT. Use it where namespaces are refused.
 * Device nodes stay closed only through nodev mounts (child.c), which need
 * a mount namespace: where the host refuses one too, chroot runs only when
 * the root is already on a nodev mount, and refuses otherwise (a plain
 * chroot cannot stop a node in the root from opening the host's device).
 */
#include "execute/internal.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	ib_isolation parent;
	int pivot;   /* 1: namespaces, 0: chroot */
} ns_backend;

struct ib_isolation_run {
	pid_t pid;
	int pidfd;
};

static pid_t clone_into(const ns_backend *b, const ib_isolation_spec *spec, int *pidfd)
{
	if (!b->pivot) {
		*pidfd = -1;
		return fork();
	}
	struct clone_args args;
	memset(&args, 0, sizeof args);
	args.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
	if (spec->network == IB_NETWORK_NONE)
		args.flags |= CLONE_NEWNET;
	args.pidfd = (uint64_t)(uintptr_t)pidfd;
	args.exit_signal = SIGCHLD;
	return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

/* Read the child's setup report: 0 on EOF (it reached execve). */
static int read_child_error(int fd, ib_execute__child_error *e)
{
	size_t got = 0;
	while (got < sizeof *e) {
		ssize_t n = read(fd, (char *)e + got, sizeof *e - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got == 0 ? 0 : 1;
}

static int ns_start(ib_isolation *self, ib_isolation_run **out, int *pid,
		    ib_exit_status *status, const ib_isolation_spec *spec)
{
	ns_backend *b = (ns_backend *)self;
	if (!b->pivot && spec->network == IB_NETWORK_NONE)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				     "isolation `chroot` cannot give a process its own network "
				     "(network `none`); use `namespaces` or `oci`");
	ib_isolation_run *run = ib_calloc(1, sizeof *run);
	if (!run)
		return IB_ERROR;
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		free(run);
		return ib_error_set_os(IB_LAYER_EXECUTE, "pipe");
	}
	const ib_execute__seccomp_prog *seccomp = NULL; /* none when privileged, as BuildKit's insecure mode */
	if (!spec->privileged && ib_execute__seccomp_bpf_cached(&seccomp) < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		free(run);
		return IB_ERROR;
	}
	/* the exec helper and its argv: marker, the path (the child fills it in), the command's argv */
	size_t argc = 0;
	while (spec->argv[argc])
		argc++;
	char **helper_argv = ib_calloc(argc + 3, sizeof *helper_argv);
	int helper_fd = helper_argv ? ib_execute__exec_helper_fd() : IB_ERROR;
	if (helper_fd < 0) {
		free(helper_argv);
		close(pipefd[0]);
		close(pipefd[1]);
		free(run);
		return IB_ERROR;
	}
	helper_argv[0] = (char *)ib_execute__exec_helper_marker;
	for (size_t i = 0; i < argc; i++)
		helper_argv[i + 2] = (char *)spec->argv[i];
	ib_execute__child_config cfg = { spec, b->pivot, b->pivot, !b->pivot, b->pivot, pipefd[1], seccomp,
				helper_fd, helper_argv };
	int pidfd = -1;
	pid_t child = clone_into(b, spec, &pidfd);
	if (child == 0) {
		close(pipefd[0]);
		ib_execute__child(&cfg);
	}
	int err = errno;
	close(helper_fd);
	free(helper_argv);
	close(pipefd[1]);
	if (child < 0) {
		close(pipefd[0]);
		free(run);
		errno = err;
		if (b->pivot && (err == EPERM || err == EINVAL || err == ENOSPC || err == EUSERS))
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
					     "create namespaces (clone3): %s; the `chroot` isolation "
					     "works without them, weaker", strerror(err));
		return ib_error_set_os(IB_LAYER_EXECUTE, "clone a process for `%s`", spec->rootfs);
	}
	ib_execute__child_error e;
	int failed = read_child_error(pipefd[0], &e);
	close(pipefd[0]);
	if (failed) {
		int ws;
		while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
			;
		if (pidfd >= 0)
			close(pidfd);
		free(run);
		e.message[sizeof e.message - 1] = '\0';
		if (e.code) {
			status->code = e.code;
			status->signal = 0;
		}
		return ib_error_setc(e.err == ENOENT || e.code == 127 ? IB_ENOTFOUND : IB_ERROR,
				     IB_LAYER_EXECUTE, "%s", e.message);
	}
	run->pid = child;
	run->pidfd = pidfd;
	*pid = child;
	*out = run;
	return 0;
}

static int ns_kill(ib_isolation *self, ib_isolation_run *run)
{
	ns_backend *b = (ns_backend *)self;
	if (b->pivot) {
		/* PID 1 of its namespace: when it dies, the kernel kills the rest */
		if (run->pidfd >= 0 && syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0) == 0)
			return 0;
		return kill(run->pid, SIGKILL) < 0 ? ib_error_set_os(IB_LAYER_EXECUTE, "kill") : 0;
	}
	/* chroot: the session's process group (processes that left it survive) */
	kill(-run->pid, SIGKILL);
	kill(run->pid, SIGKILL);
	return 0;
}

static int ns_finish(ib_isolation *self, ib_isolation_run *run, int wstatus, ib_exit_status *out)
{
	(void)self;
	if (WIFSIGNALED(wstatus)) {
		out->signal = WTERMSIG(wstatus);
		out->code = 128 + out->signal;
	} else {
		out->signal = 0;
		out->code = WEXITSTATUS(wstatus);
	}
	if (run->pidfd >= 0)
		close(run->pidfd);
	free(run);
	return 0;
}

static int ns_probe(ib_isolation *self)
{
	ns_backend *b = (ns_backend *)self;
	pid_t pid = fork();
	if (pid < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "fork");
	if (pid == 0) {
		int flags = b->pivot ? CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS : 0;
		if (!b->pivot)
			_exit(chroot("/") == 0 ? 0 : errno);
		_exit(unshare(flags) == 0 ? 0 : errno);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	int err = WIFEXITED(ws) ? WEXITSTATUS(ws) : EPERM;
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE, "isolation `%s` refused here: %s: %s",
			     b->pivot ? "namespaces" : "chroot",
			     b->pivot ? "unshare mount, PID, IPC and UTS namespaces" : "chroot",
			     strerror(err));
}

static void ns_free(ib_isolation *self)
{
	free(self);
}

static int make(ib_isolation **out, int pivot)
{
	ns_backend *b = ib_calloc(1, sizeof *b);
	if (!b)
		return IB_ERROR;
	b->parent.version = IB_ISOLATION_VERSION;
	b->parent.probe = ns_probe;
	b->parent.start = ns_start;
	b->parent.kill = ns_kill;
	b->parent.finish = ns_finish;
	b->parent.free = ns_free;
	b->parent.features = IB_ISOLATION_PRIVILEGED | IB_ISOLATION_RO_NETWORK_FILES | IB_ISOLATION_RO_ROOTFS |
			     IB_ISOLATION_CAPS;
	b->pivot = pivot;
	*out = &b->parent;
	return 0;
}

int ib_execute__namespaces_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	(void)opts;
	(void)param;
	return make(out, 1);
}

int ib_execute__chroot_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	(void)opts;
	(void)param;
	return make(out, 0);
}
