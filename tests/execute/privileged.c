/*
 * The isolation holds, for each backend (the first argument: namespaces,
 * oci or chroot): host files outside the root are invisible, PID 1 is the
 * command, /proc shows only the container, nothing of the caller's
 * environment or descriptors leaks, a missing USER fails clearly, network
 * `none` has only loopback, exit codes and signals come back. Needs root;
 * skipped (failed under IB_TEST_STRICT=1) when the host refuses.
 */
#include "helpers.h"

#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <dirent.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <time.h>

static const char *backend;
static char *rootfs;
static int is_chroot;

static int run_sh(ib_exit_status *st, capture *cap, ib_process *p, const char *script)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	if (!p->argv)
		p->argv = argv;
	p->log = capture_log;
	p->log_payload = cap;
	memset(cap, 0, sizeof *cap);
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = backend;
	int rc = ib_execute_run(st, rootfs, p, &o);
	if (rc < 0)
		fprintf(stderr, "run: %s\n", ib_error_last()->message);
	else if (cap->len)
		fprintf(stderr, "--- output of `%s` (exit %d, signal %d):\n%s", script, st->code,
			st->signal, cap->out);
	p->argv = NULL;
	return rc;
}

static void test_exit_code(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	assert_int_equal(run_sh(&st, &cap, &p, "echo out; echo err >&2; exit 42"), 0);
	assert_int_equal(st.code, 42);
	assert_int_equal(st.signal, 0);
	assert_string_equal(cap.out, "out\nerr\n");
	assert_int_equal(run_sh(&st, &cap, &p, "true"), 0);
	assert_int_equal(st.code, 0);
}

static void test_command_not_found(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	const char *argv[] = { "no-such-command", NULL };
	p.argv = argv;
	int rc = run_sh(&st, &cap, &p, "");
	if (strcmp(backend, "oci") == 0) {
		/* runc reports it when it creates the container */
		assert_true(rc < 0);
		assert_non_null(strstr(ib_error_last()->message, "no-such-command"));
	} else {
		assert_int_equal(rc, IB_ENOTFOUND);
		assert_non_null(strstr(ib_error_last()->message, "no-such-command"));
		assert_int_equal(st.code, 127);
	}
}

static volatile int cancel_flag;

static void *cancel_later(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	cancel_flag = 1;
	return NULL;
}

/* Signal deaths come back exactly; a cancelled run is killed (all of it). */
static void test_signal_and_cancel(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	if (is_chroot) {
		/* no PID namespace: the shell is not an init, it can kill itself */
		assert_int_equal(run_sh(&st, &cap, &p, "kill -TERM $$; sleep 5"), 0);
		assert_int_equal(st.signal, SIGTERM);
		assert_int_equal(st.code, 128 + SIGTERM);
	} else {
		/* a child of PID 1 killed by a signal: the shell reports 128+n */
		assert_int_equal(run_sh(&st, &cap, &p, "sh -c 'kill -TERM $$'; exit $?"), 0);
		assert_int_equal(st.code, 128 + SIGTERM);
		assert_int_equal(st.signal, 0);
	}
	const char *argv[] = { "/bin/sh", "-c", "sleep 60 & sleep 60; echo not cancelled", NULL };
	p.argv = argv;
	p.log = capture_log;
	p.log_payload = &cap;
	memset(&cap, 0, sizeof cap);
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = backend;
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.cancel = &cancel_flag;
	o.callbacks = &cb;
	cancel_flag = 0;
	pthread_t t;
	pthread_create(&t, NULL, cancel_later, NULL);
	time_t t0 = time(NULL);
	int rc = ib_execute_run(&st, rootfs, &p, &o);
	pthread_join(t, NULL);
	assert_int_equal(rc, IB_EUSER);
	assert_true(time(NULL) - t0 < 30);
	assert_int_equal(st.signal, SIGKILL);
	assert_int_equal(st.code, 128 + SIGKILL);
	assert_null(strstr(cap.out, "not cancelled"));
}

/* Files of the host outside the root are not visible. */
static void test_host_invisible(void **state)
{
	(void)state;
	char marker[4200];
	snprintf(marker, sizeof marker, "%s/../host-marker", rootfs);
	write_text(rootfs, "../host-marker", "secret\n");
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	assert_int_equal(run_sh(&st, &cap, &p,
		"ls -a /; test -e /host-marker && echo VISIBLE; test -e /work/main && echo HOSTDIR; "
		"test -e /bin/busybox && echo busybox"), 0);
	assert_int_equal(st.code, 0);
	assert_null(strstr(cap.out, "VISIBLE"));
	assert_null(strstr(cap.out, "HOSTDIR"));
	assert_non_null(strstr(cap.out, "busybox\n"));
	unlink(marker);
}

/* PID 1 is the command, its /proc/1/exe is the root's binary, /proc shows only the container. */
static void test_pid1_and_proc(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	/* the caller's binary cannot be opened through /proc (CVE-2019-5736) */
	assert_int_equal(run_sh(&st, &cap, &p,
		"echo ppid=$PPID; cat /proc/$PPID/exe > /dev/null 2>&1 || echo no-caller-exe"), 0);
	assert_non_null(strstr(cap.out, "no-caller-exe\n"));
	if (is_chroot)
		return; /* no PID namespace: the caller is visible, only capabilities protect it */
	assert_non_null(strstr(cap.out, "ppid=0\n")); /* the parent is outside the namespace */
	assert_int_equal(run_sh(&st, &cap, &p,
		"echo pid=$$; echo exe=$(readlink /proc/1/exe); echo self=$(readlink /proc/self/exe); "
		"echo procs=$(ls /proc | grep -c '^[0-9]*$'); cat /proc/1/cmdline | tr '\\0' ' '; echo"), 0);
	assert_int_equal(st.code, 0);
	assert_non_null(strstr(cap.out, "pid=1\n"));
	assert_non_null(strstr(cap.out, "exe=/bin/busybox\n"));
	assert_non_null(strstr(cap.out, "self=/bin/busybox\n"));
	/* sh, the subshells and ls/grep: a handful, not the host's hundreds */
	const char *procs = strstr(cap.out, "procs=");
	assert_non_null(procs);
	assert_true(atoi(procs + 6) <= 6);
	assert_non_null(strstr(cap.out, "/bin/sh -c"));
}

/* Nothing of the caller's environment or descriptors leaks. */
static void test_no_leaks(void **state)
{
	(void)state;
	setenv("IB_SECRET_ENV", "leaked-value", 1);
	int fd = open("/", O_RDONLY | O_DIRECTORY); /* not close-on-exec, on purpose */
	assert_true(fd >= 0);
	assert_true(dup2(fd, 77) == 77);
	ib_process p = IB_PROCESS_INIT;
	const char *env[] = { "ONLY=this", NULL };
	p.env = env;
	capture cap;
	ib_exit_status st;
	assert_int_equal(run_sh(&st, &cap, &p, "env | sort; echo fds=$(ls /proc/self/fd | tr '\\n' ' ')"), 0);
	close(77);
	close(fd);
	assert_null(strstr(cap.out, "leaked-value"));
	assert_non_null(strstr(cap.out, "ONLY=this\n"));
	assert_non_null(strstr(cap.out, "PATH=/usr/local/sbin"));
	/* 0-2, and 3 for the directory ls reads */
	assert_non_null(strstr(cap.out, "fds=0 1 2 3\n"));
	/* CVE-2024-21626: a working directory through /proc/self/fd cannot reach the host */
	char outside[4200];
	snprintf(outside, sizeof outside, "%s/..", rootfs);
	int dirfd = open(outside, O_RDONLY | O_DIRECTORY);
	assert_true(dup2(dirfd, 7) == 7);
	p.cwd = "/proc/self/fd/7";
	write_text(rootfs, "../host-marker2", "x\n");
	int rc = run_sh(&st, &cap, &p, "ls; ls ..; cat host-marker2");
	if (rc == 0)
		assert_null(strstr(cap.out, "host-marker2"));
	close(7);
	close(dirfd);
	snprintf(outside, sizeof outside, "%s/../host-marker2", rootfs);
	unlink(outside);
	/* the directories made for that WORKDIR stay in the root, harmless */
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s/proc'", rootfs);
	assert_int_equal(system(cmd), 0);
}

static void test_users(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	p.user = "nosuchuser";
	int rc = run_sh(&st, &cap, &p, "id");
	assert_int_equal(rc, IB_ENOTFOUND);
	assert_non_null(strstr(ib_error_last()->message, "user `nosuchuser`: no such user"));
	p.user = "builder";
	assert_int_equal(run_sh(&st, &cap, &p, "id; echo home=$HOME; pwd; touch /root/x 2>/dev/null || echo denied"), 0);
	assert_non_null(strstr(cap.out, "uid=1000(builder) gid=1000(builder)"));
	assert_non_null(strstr(cap.out, "29(audio)"));
	assert_non_null(strstr(cap.out, "50(staff)"));
	assert_non_null(strstr(cap.out, "home=/home/builder\n"));
	assert_non_null(strstr(cap.out, "denied\n"));
	p.user = "1000:50";
	p.cwd = "/home/builder/new/dir";
	assert_int_equal(run_sh(&st, &cap, &p, "id -u; id -g; pwd"), 0);
	assert_string_equal(cap.out, "1000\n50\n/home/builder/new/dir\n");
	/* root keeps Docker's default capabilities only, and no_new_privs is set */
	p.user = NULL;
	p.cwd = NULL;
	assert_int_equal(run_sh(&st, &cap, &p, "grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status"), 0);
	assert_non_null(strstr(cap.out, "CapBnd:\t00000000a80425fb\n"));
	assert_non_null(strstr(cap.out, "CapEff:\t00000000a80425fb\n"));
	assert_non_null(strstr(cap.out, "NoNewPrivs:\t1\n"));
}

static void test_network(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	p.network = IB_NETWORK_NONE;
	int rc = run_sh(&st, &cap, &p, "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; "
			"ifconfig lo | grep -c UP");
	if (is_chroot) {
		assert_int_equal(rc, IB_EUNSUPPORTED);
		return;
	}
	assert_int_equal(rc, 0);
	assert_string_equal(cap.out, "lo\n1\n");
	/* host network: the host's interfaces (at least one besides lo on these machines) */
	p.network = IB_NETWORK_HOST;
	assert_int_equal(run_sh(&st, &cap, &p, "cat /proc/net/dev | tail -n +3 | wc -l"), 0);
	FILE *f = fopen("/proc/net/dev", "r");
	int host_lines = 0;
	char line[512];
	while (f && fgets(line, sizeof line, f))
		host_lines++;
	if (f)
		fclose(f);
	assert_int_equal(atoi(cap.out), host_lines - 2);
}

/* /etc/hosts, /etc/resolv.conf, /dev, hostname, mounts: provided for the run, not left behind. */
static void test_files_and_mounts(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	char src[4200];
	snprintf(src, sizeof src, "%s/../bind-src", rootfs);
	mkdir(src, 0755);
	write_text(src, "file", "from the host\n");
	ib_mount mounts[] = {
		{ IB_MOUNT_BIND, src, "/mnt/ro", 1, NULL },
		{ IB_MOUNT_TMPFS, NULL, "/scratch", 0, "size=1m" },
	};
	p.mounts = mounts;
	p.nmounts = 2;
	p.hostname = "ibtest"; /* chroot too: in a UTS namespace of its own */
	char host_before[256] = "", host_after[256] = "";
	gethostname(host_before, sizeof host_before - 1);
	p.resolv_conf = "nameserver 192.0.2.53\n";
	static const char *const kept[] = { "proc", "dev", "sys" };
	int before[3];
	for (int i = 0; i < 3; i++)
		before[i] = exists_in(rootfs, kept[i]);
	assert_int_equal(run_sh(&st, &cap, &p,
		"cat /etc/hosts; cat /etc/resolv.conf; hostname; cat /mnt/ro/file; "
		"touch /mnt/ro/new 2>/dev/null && echo WRITABLE; echo ok > /scratch/f && cat /scratch/f; "
		"echo x > /dev/null && echo devnull; ls /dev | tr '\\n' ' '; echo; "
		"touch /sys/x 2>/dev/null || echo sys-ro"), 0);
	assert_int_equal(st.code, 0);
	assert_non_null(strstr(cap.out, "127.0.0.1\tlocalhost\n"));
	assert_non_null(strstr(cap.out, "nameserver 192.0.2.53\n"));
	assert_non_null(strstr(cap.out, "127.0.1.1\tibtest\nnameserver 192.0.2.53\nibtest\n"));
	gethostname(host_after, sizeof host_after - 1);
	assert_string_equal(host_after, host_before); /* never the host's */
	assert_non_null(strstr(cap.out, "from the host\n"));
	assert_null(strstr(cap.out, "WRITABLE"));
	assert_non_null(strstr(cap.out, "ok\n"));
	assert_non_null(strstr(cap.out, "devnull\n"));
	assert_non_null(strstr(cap.out, "null"));
	assert_non_null(strstr(cap.out, "urandom"));
	assert_non_null(strstr(cap.out, "pts"));
	assert_non_null(strstr(cap.out, "sys-ro\n"));
	/* nothing of it stays in the root */
	assert_false(exists_in(rootfs, "etc/hosts"));
	assert_false(exists_in(rootfs, "etc/resolv.conf"));
	for (int i = 0; i < 3; i++)
		assert_int_equal(exists_in(rootfs, kept[i]), before[i]);
	assert_false(exists_in(rootfs, "mnt"));
	assert_false(exists_in(rootfs, "scratch"));
	assert_false(exists_in(src, "new"));
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", src);
	assert_int_equal(system(cmd), 0);
}

/* An image whose /etc/hosts or /dev are symlinks to the host does not make us touch the host. */
static void test_symlinked_image(void **state)
{
	(void)state;
	char *outside = ib_test_tmpdir("outside");
	write_text(outside, "hosts", "host's own\n");
	char link[4200], target[4200];
	snprintf(link, sizeof link, "%s/etc/hosts", rootfs);
	snprintf(target, sizeof target, "%s/hosts", outside);
	assert_int_equal(symlink(target, link), 0);
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	assert_int_equal(run_sh(&st, &cap, &p, "cat /etc/hosts; echo done"), 0);
	assert_null(strstr(cap.out, "host's own"));
	/* the run's own file, at the link's target inside the root (as runc does) */
	assert_non_null(strstr(cap.out, "127.0.0.1\tlocalhost\n"));
	assert_false(exists_in(rootfs, target + 1)); /* nothing made for the run stays */
	unlink(link);
	snprintf(link, sizeof link, "%s/dev", rootfs);
	int had_dev = rmdir(link) == 0;
	assert_int_equal(symlink(outside, link), 0);
	assert_true(run_sh(&st, &cap, &p, "true") < 0);
	assert_non_null(strstr(ib_error_last()->message, "symlink"));
	unlink(link);
	if (had_dev)
		mkdir(link, 0755);
	snprintf(target, sizeof target, "%s/hosts", outside);
	FILE *f = fopen(target, "r");
	char line[64] = "";
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	fclose(f);
	assert_string_equal(line, "host's own\n");
	rm_tree(outside);
	free(outside);
}

/*
 * A loop device over a scratch file of ours (never a real disk), for the
 * device and /etc/passwd tests. Its content is passwd lines of a uid-0 user
 * carrying a marker, so reading it from the host shows either way.
 */
#define SCRATCH_LINE "ibscratch:x:0:0:IMAGEBUILD-SCRATCH:/:/bin/sh\n"
static char scratch[4200];
static char loopdev[64];
static unsigned int loop_major, loop_minor;

static int loop_setup(void)
{
	snprintf(scratch, sizeof scratch, "%s/../scratch.img", rootfs);
	FILE *f = fopen(scratch, "w");
	if (!f)
		return -1;
	/* 512 * 45 lines: about 1 MiB, whole sectors */
	for (size_t n = 0; n < 512 * 45; n++)
		fputs(SCRATCH_LINE, f);
	fclose(f);
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "losetup -f --show '%s'", scratch);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char *got = fgets(loopdev, sizeof loopdev, p);
	int rc = pclose(p);
	if (!got || rc != 0)
		return -1;
	loopdev[strcspn(loopdev, "\n")] = '\0';
	struct stat st;
	if (stat(loopdev, &st) < 0 || !S_ISBLK(st.st_mode))
		return -1;
	loop_major = major(st.st_rdev);
	loop_minor = minor(st.st_rdev);
	return 0;
}

static void loop_teardown(void)
{
	char cmd[8400];
	if (*loopdev) {
		snprintf(cmd, sizeof cmd, "losetup -d '%s'", loopdev);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not detach %s\n", loopdev);
		*loopdev = '\0';
	}
	if (*scratch)
		unlink(scratch);
}

/* cmocka teardown: the loop device goes even when the test failed. */
static int loop_teardown_state(void **state)
{
	(void)state;
	loop_teardown();
	return 0;
}

/* The scratch file holds exactly what we wrote (checked after detaching flushes the loop). */
static int scratch_unchanged(void)
{
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "losetup -d '%s'", loopdev);
	if (system(cmd) != 0)
		return 0;
	*loopdev = '\0';
	FILE *f = fopen(scratch, "r");
	if (!f)
		return 0;
	char line[256];
	size_t n = 0;
	int ok = 1;
	while (fgets(line, sizeof line, f)) {
		ok &= strcmp(line, SCRATCH_LINE) == 0;
		n += strlen(line);
	}
	fclose(f);
	return ok && n == 512 * 45 * (sizeof SCRATCH_LINE - 1);
}

#define NEED_LOOP() do { \
		if (loop_setup() < 0) { \
			loop_teardown(); \
			if (getenv("IB_TEST_STRICT") && strcmp(getenv("IB_TEST_STRICT"), "1") == 0) \
				fail_msg("no loop device (losetup -f --show)"); \
			skip(); \
		} \
	} while (0)

/*
 * Devices outside Docker's default list stay closed: a node made by `mknod`
 * (in the root or in /dev) and a 0666 node shipped in the image, read as
 * nobody, reach neither the loop device nor its file.
 */
static void test_devices(void **state)
{
	(void)state;
	NEED_LOOP();
	char node[4200];
	snprintf(node, sizeof node, "%s/shipped-disk", rootfs);
	unlink(node);
	assert_int_equal(mknod(node, S_IFBLK | 0666, makedev(loop_major, loop_minor)), 0);
	chmod(node, 0666);
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	char script[2048];
	snprintf(script, sizeof script,
		 "mknod /made b %u %u && echo MADE; mknod /dev/made b %u %u && echo MADE-IN-DEV; "
		 "for n in /made /dev/made /shipped-disk; do "
		 "head -c 64 $n 2>/dev/null; echo; echo pwned 2>/dev/null > $n && echo WROTE $n; done; "
		 "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c; "
		 "echo done", loop_major, loop_minor, loop_major, loop_minor);
	assert_int_equal(run_sh(&st, &cap, &p, script), 0);
	assert_non_null(strstr(cap.out, "done\n"));
	assert_null(strstr(cap.out, "IMAGEBUILD-SCRATCH"));
	assert_null(strstr(cap.out, "WROTE"));
	/* mknod itself works, as under Docker (CAP_MKNOD, the device cgroup's `b *:* m`) */
	assert_non_null(strstr(cap.out, "MADE\n"));
	/* Docker's default nodes still work */
	assert_non_null(strstr(cap.out, "4\n4\ndone\n"));
	/* a shipped 0666 node, as nobody */
	p.user = "65534";
	assert_int_equal(run_sh(&st, &cap, &p,
		"head -c 64 /shipped-disk; echo; echo pwned > /shipped-disk && echo WROTE; echo done"), 0);
	assert_non_null(strstr(cap.out, "done\n"));
	assert_null(strstr(cap.out, "IMAGEBUILD-SCRATCH"));
	assert_null(strstr(cap.out, "WROTE"));
	/* chmod of /dev/null inside changes the container's node, not the host's */
	struct stat before, after;
	assert_int_equal(stat("/dev/null", &before), 0);
	p.user = NULL;
	assert_int_equal(run_sh(&st, &cap, &p, "chmod 600 /dev/null; echo done"), 0);
	assert_int_equal(stat("/dev/null", &after), 0);
	assert_int_equal(before.st_mode, after.st_mode);
	unlink(node);
	snprintf(node, sizeof node, "%s/made", rootfs);
	unlink(node);
	assert_true(scratch_unchanged());
	loop_teardown();
}

static void *run_in_thread(void *arg)
{
	ib_process *p = arg;
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = backend;
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.cancel = &cancel_flag;
	o.callbacks = &cb;
	ib_exit_status st;
	if (ib_execute_run(&st, rootfs, p, &o) < 0 && !cancel_flag)
		fprintf(stderr, "run: %s\n", ib_error_last()->message);
	return NULL;
}

/* The pid of a process whose command line holds `arg` (the container's shell or its sleep). */
static pid_t find_sleeper(const char *arg)
{
	for (int tries = 0; tries < 200; tries++) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char path[300], buf[256];
			snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
			int fd = atoi(e->d_name) > 0 && atoi(e->d_name) != getpid() ? open(path, O_RDONLY) : -1;
			if (fd < 0)
				continue;
			ssize_t n = read(fd, buf, sizeof buf - 1);
			close(fd);
			for (ssize_t i = 0; i < n; i++)
				if (!buf[i])
					buf[i] = ' ';
			buf[n > 0 ? n : 0] = '\0';
			if (strstr(buf, arg)) {
				pid_t pid = (pid_t)atoi(e->d_name);
				closedir(d);
				return pid;
			}
		}
		if (d)
			closedir(d);
		usleep(50 * 1000);
	}
	return -1;
}

/*
 * Every mount the process can reach is nodev but /dev's own nodes, the ptys
 * and the masks over /proc and /sys, read from the process's mount namespace
 * as a whole (chroot: root can leave its chroot and reach all of it).
 * oci relies on runc's device cgroup instead.
 */
static void test_nodev_everywhere(void **state)
{
	(void)state;
	if (strcmp(backend, "oci") == 0)
		skip();
	char arg[32], script[64];
	snprintf(arg, sizeof arg, "31.%d", (int)getpid());
	snprintf(script, sizeof script, "sleep %s", arg);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	ib_process p = IB_PROCESS_INIT;
	p.argv = argv;
	ib_mount m = { IB_MOUNT_BIND, "/tmp", "/mnt/host-tmp", 1, NULL };
	p.mounts = &m;
	p.nmounts = 1;
	cancel_flag = 0;
	pthread_t t;
	pthread_create(&t, NULL, run_in_thread, &p);
	pid_t pid = find_sleeper(arg);
	char cmd[600], real[4200];
	assert_non_null(realpath(rootfs, real));
	if (is_chroot)
		snprintf(cmd, sizeof cmd, "nsenter -m -t %d cat /proc/self/mountinfo", (int)pid);
	else
		snprintf(cmd, sizeof cmd, "cat /proc/%d/mountinfo", (int)pid);
	FILE *f = pid > 0 ? popen(cmd, "r") : NULL;
	char line[8192];
	int mounts = 0, bad = 0, devs = 0;
	while (f && fgets(line, sizeof line, f)) {
		char mp[4200], opts[1024];
		if (sscanf(line, "%*s %*s %*s %*s %4199s %1023s", mp, opts) != 2)
			continue;
		mounts++;
		if (strstr(opts, "nodev"))
			continue;
		const char *in = is_chroot ? (strncmp(mp, real, strlen(real)) == 0 ? mp + strlen(real) : "")
					   : mp;
		static const char *const open_ok[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
						       "/dev/urandom", "/dev/tty", "/dev/pts", "/dev/console" };
		int ok = 0;
		for (size_t i = 0; i < sizeof open_ok / sizeof open_ok[0]; i++)
			ok |= strcmp(in, open_ok[i]) == 0;
		devs += ok;
		ok |= strncmp(in, "/proc/", 6) == 0 || strncmp(in, "/sys/", 5) == 0;
		if (!ok) {
			fprintf(stderr, "a mount without nodev: %s", line);
			bad++;
		}
	}
	if (f)
		pclose(f);
	cancel_flag = 1;
	pthread_join(t, NULL);
	assert_true(pid > 0);
	assert_true(mounts > 5);
	assert_int_equal(devs, 7);
	assert_int_equal(bad, 0);
}

/* Drop CAP_SYS_ADMIN (effective, permitted, bounding): no more mount namespaces. */
static int drop_sys_admin(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	data[CAP_SYS_ADMIN / 32].effective &= ~(1U << (CAP_SYS_ADMIN % 32));
	data[CAP_SYS_ADMIN / 32].permitted &= ~(1U << (CAP_SYS_ADMIN % 32));
	data[CAP_SYS_ADMIN / 32].inheritable &= ~(1U << (CAP_SYS_ADMIN % 32));
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(SYS_capset, &hdr, data);
}

/*
 * chroot where the host refuses a mount namespace (no CAP_SYS_ADMIN) cannot
 * make anything nodev: refused clearly, unless the root already is on a
 * nodev mount; then a shipped device node stays closed.
 */
static void test_chroot_without_mount_namespace(void **state)
{
	(void)state;
	if (!is_chroot)
		skip();
	NEED_LOOP();
	char node[4200];
	snprintf(node, sizeof node, "%s/shipped-disk", rootfs);
	unlink(node);
	assert_int_equal(mknod(node, S_IFBLK | 0666, makedev(loop_major, loop_minor)), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* 1: the root on a plain mount is refused */
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(10);
		if (drop_sys_admin() < 0)
			_exit(11);
		ib_process p = IB_PROCESS_INIT;
		capture cap;
		ib_exit_status st;
		if (run_sh(&st, &cap, &p, "echo RAN") >= 0 || strstr(cap.out, "RAN"))
			_exit(12);
		if (!strstr(ib_error_last()->message, "refuses a mount namespace"))
			_exit(13);
		_exit(0);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* 2: on a nodev mount it runs, and the node does not open */
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount(rootfs, rootfs, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, rootfs, NULL, MS_BIND | MS_REMOUNT | MS_NODEV, NULL) < 0)
			_exit(20);
		if (drop_sys_admin() < 0)
			_exit(21);
		ib_process p = IB_PROCESS_INIT;
		capture cap;
		ib_exit_status st;
		if (run_sh(&st, &cap, &p, "head -c 64 /shipped-disk; echo pwned > /shipped-disk && echo WROTE; echo done") < 0)
			_exit(22);
		if (!strstr(cap.out, "done") || strstr(cap.out, "IMAGEBUILD-SCRATCH") || strstr(cap.out, "WROTE"))
			_exit(23);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	unlink(node);
	assert_true(scratch_unchanged());
	loop_teardown();
}

/* USER ids above 2^31-1 are refused (setresuid(-1) would keep root), on every backend. */
static void test_user_id_range(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	static const char *const bad[] = { "4294967295", "1000:4294967295", "2147483648", "0:2147483648" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p.user = bad[i];
		int rc = run_sh(&st, &cap, &p, "id; echo RAN");
		assert_int_equal(rc, IB_EINVALID);
		assert_non_null(strstr(ib_error_last()->message, "out of range"));
		assert_null(strstr(cap.out, "RAN"));
	}
	p.user = "2147483647:2147483647";
	assert_int_equal(run_sh(&st, &cap, &p, "id -u; id -g"), 0);
	assert_string_equal(cap.out, "2147483647\n2147483647\n");
}

static void alarm_fail(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL: resolving USER against the image's /etc/passwd hangs\n";
	ssize_t n = write(2, msg, sizeof msg - 1);
	(void)n;
	/* detach the loop device before leaving (only async-signal-safe calls here) */
	pid_t pid = fork();
	if (pid == 0) {
		char *const argv[] = { "losetup", "-d", loopdev, NULL };
		execv("/usr/sbin/losetup", argv);
		execv("/sbin/losetup", argv);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	_exit(1);
}

/* A FIFO or a block device as /etc/passwd: a clear error at once, nothing read from the host. */
static void test_passwd_not_regular(void **state)
{
	(void)state;
	NEED_LOOP();
	char passwd[4200], saved[4200];
	snprintf(passwd, sizeof passwd, "%s/etc/passwd", rootfs);
	snprintf(saved, sizeof saved, "%s/etc/passwd.saved", rootfs);
	assert_int_equal(rename(passwd, saved), 0);
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	signal(SIGALRM, alarm_fail);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	for (int kind = 0; kind < 2; kind++) {
		if (kind == 0)
			assert_int_equal(mkfifo(passwd, 0644), 0);
		else
			assert_int_equal(mknod(passwd, S_IFBLK | 0644, makedev(loop_major, loop_minor)), 0);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		alarm(30);
		p.user = "ibscratch";
		int rc = run_sh(&st, &cap, &p, "id; echo RAN");
		alarm(0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_int_equal(rc, IB_EINVALID);
		assert_non_null(strstr(ib_error_last()->message, "/etc/passwd of the root filesystem is not a regular file"));
		assert_non_null(strstr(ib_error_last()->message, kind ? "block device" : "FIFO"));
		assert_null(strstr(cap.out, "RAN"));
		assert_true(t1.tv_sec - t0.tv_sec < 5);
		unlink(passwd);
	}
	getrusage(RUSAGE_SELF, &ru1);
	assert_true(ru1.ru_maxrss - ru0.ru_maxrss < 64 * 1024); /* KiB */
	signal(SIGALRM, SIG_DFL);
	assert_int_equal(rename(saved, passwd), 0);
	assert_true(scratch_unchanged());
	loop_teardown();
}

/* tests/resources/dns-stub.py answering NAME with IP on ADDR:53, once it is ready. */
static pid_t start_dns_stub(const char *addr, const char *name, const char *ip)
{
	const char *src = getenv("IB_SOURCE_ROOT");
	char script[4200];
	snprintf(script, sizeof script, "%s/tests/resources/dns-stub.py", src ? src : ".");
	if (access("/usr/bin/python3", X_OK) != 0 || access(script, R_OK) != 0)
		fail_msg("need /usr/bin/python3 and %s", script);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", "-u", script, addr, name, ip, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	struct pollfd pfd = { fds[0], POLLIN, 0 };
	char line[16] = "";
	if (poll(&pfd, 1, 20000) == 1) {
		ssize_t n = read(fds[0], line, sizeof line - 1);
		line[n > 0 ? n : 0] = '\0';
	}
	close(fds[0]);
	if (strncmp(line, "ready", 5) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("the DNS stub on %s did not start", addr);
	}
	return pid;
}

/*
 * A systemd-style base: /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf
 * (missing) gets the run's resolv.conf at the link's target, so names
 * resolve; the link itself and nothing made for the run stay.
 */
static void test_symlinked_resolv_conf(void **state)
{
	(void)state;
	char link[4200];
	snprintf(link, sizeof link, "%s/etc/resolv.conf", rootfs);
	unlink(link);
	assert_int_equal(symlink("../run/systemd/resolve/stub-resolv.conf", link), 0);
	int had_run = exists_in(rootfs, "run");
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	p.resolv_conf = "nameserver 192.0.2.53\nsearch ib.example\n";
	assert_int_equal(run_sh(&st, &cap, &p,
		"cat /etc/resolv.conf; cat /run/systemd/resolve/stub-resolv.conf; readlink /etc/resolv.conf"), 0);
	assert_int_equal(st.code, 0);
	assert_string_equal(cap.out, "nameserver 192.0.2.53\nsearch ib.example\n"
				     "nameserver 192.0.2.53\nsearch ib.example\n"
				     "../run/systemd/resolve/stub-resolv.conf\n");
	/* names resolve through it: a DNS server of ours on the host's loopback (host network) */
	char addr[32], conf[64];
	snprintf(addr, sizeof addr, "127.77.%d.%d", (int)(getpid() % 250) + 1,
		 is_chroot ? 3 : strcmp(backend, "oci") == 0 ? 2 : 1);
	pid_t dns = start_dns_stub(addr, "ibtest-name.ib.example", "192.0.2.77");
	snprintf(conf, sizeof conf, "nameserver %s\n", addr);
	p.resolv_conf = conf;
	int rc = run_sh(&st, &cap, &p, "nslookup ibtest-name.ib.example");
	kill(dns, SIGKILL);
	waitpid(dns, NULL, 0);
	assert_int_equal(rc, 0);
	assert_int_equal(st.code, 0);
	assert_non_null(strstr(cap.out, "192.0.2.77"));
	assert_true(unlink(link) == 0);
	assert_int_equal(exists_in(rootfs, "run"), had_run);
}

static int has_sys_resource(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	return (data[CAP_SYS_RESOURCE / 32].effective >> (CAP_SYS_RESOURCE % 32)) & 1;
}

static void test_rlimits(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	ib_rlimit rl = { "nofile", 100, 200 };
	p.rlimits = &rl;
	p.nrlimits = 1;
	assert_int_equal(run_sh(&st, &cap, &p, "ulimit -n; ulimit -Hn"), 0);
	assert_string_equal(cap.out, "100\n200\n");
	/* unchanged limits are the caller's */
	p.nrlimits = 0;
	struct rlimit mine;
	getrlimit(RLIMIT_NOFILE, &mine);
	assert_int_equal(run_sh(&st, &cap, &p, "ulimit -Hn"), 0);
	assert_int_equal(strtoull(cap.out, NULL, 10), mine.rlim_max);
	/* above the hard limit: refused clearly without CAP_SYS_RESOURCE */
	rl.soft = 100;
	rl.hard = (uint64_t)mine.rlim_max + 1;
	p.nrlimits = 1;
	int rc = run_sh(&st, &cap, &p, "ulimit -Hn");
	if (has_sys_resource()) {
		assert_int_equal(rc, 0);
	} else {
		assert_true(rc < 0);
		assert_non_null(strstr(ib_error_last()->message, "CAP_SYS_RESOURCE"));
		assert_non_null(strstr(ib_error_last()->message, "nofile"));
	}
}

static void test_tty(void **state)
{
	(void)state;
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	p.tty = 1;
	assert_int_equal(run_sh(&st, &cap, &p, "test -t 0 && test -t 1 && echo tty; echo term=$TERM; exit 3"), 0);
	assert_int_equal(st.code, 3);
	assert_non_null(strstr(cap.out, "tty\n"));
	assert_non_null(strstr(cap.out, "term=xterm\n"));
	/* it is the controlling terminal, named /dev/console like Docker's (oci: stdio only) */
	if (strcmp(backend, "oci") != 0) {
		assert_int_equal(run_sh(&st, &cap, &p, "tty; echo hi > /dev/tty && echo ctty"), 0);
		assert_non_null(strstr(cap.out, "/dev/console\n"));
		assert_non_null(strstr(cap.out, "ctty\n"));
	}
}

/* Output to a descriptor, input from one. */
static void test_fds(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("fds");
	write_text(dir, "in", "hello from stdin\n");
	char in[4200], out[4200];
	snprintf(in, sizeof in, "%s/in", dir);
	snprintf(out, sizeof out, "%s/out", dir);
	ib_process p = IB_PROCESS_INIT;
	p.stdin_fd = open(in, O_RDONLY | O_CLOEXEC);
	p.stdout_fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	p.stderr_fd = p.stdout_fd;
	const char *argv[] = { "/bin/sh", "-c", "cat; echo to-stderr >&2", NULL };
	p.argv = argv;
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = backend;
	ib_exit_status st;
	assert_int_equal(ib_execute_run(&st, rootfs, &p, &o), 0);
	close(p.stdin_fd);
	close(p.stdout_fd);
	FILE *f = fopen(out, "r");
	char buf[256] = "";
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_string_equal(buf, "hello from stdin\nto-stderr\n");
	rm_tree(dir);
	free(dir);
}

/*
 * ib_process.privileged (RUN --security=insecure, BuildKit's insecure
 * mode): every capability we have, no seccomp, /sys read-write, no masks,
 * BuildKit's /dev nodes, mounts allowed, also for a non-root user
 * (ambient). What it mounts stays in the run's own mount namespace. The
 * same process unprivileged right after is as strict as before.
 */
static void test_privileged(void **state)
{
	(void)state;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	assert_int_equal(syscall(SYS_capget, &hdr, data), 0);
	char want[64];
	snprintf(want, sizeof want, "CapEff:\t%08x%08x\n", data[1].effective, data[0].effective);
	const char *script =
		"grep -E '^(CapEff|CapAmb|Seccomp):' /proc/self/status; "
		"awk '$2 == \"/sys\" { print \"sys=\" substr($4, 1, 2) }' /proc/mounts; "
		"echo masks=$(awk '$5 ~ \"^/proc/\"' /proc/self/mountinfo | wc -l); "
		"[ -c /dev/fuse ] && [ -c /dev/kmsg ] && [ -c /dev/net/tun ] && [ -b /dev/loop0 ] && echo DEVICES; "
		"mkdir -p /mnt && mount -t tmpfs none /mnt && echo MOUNTED; echo done";
	ib_process p = IB_PROCESS_INIT;
	capture cap;
	ib_exit_status st;
	p.privileged = 1;
	assert_int_equal(run_sh(&st, &cap, &p, script), 0);
	assert_non_null(strstr(cap.out, want));
	assert_non_null(strstr(cap.out, "Seccomp:\t0\n"));
	assert_non_null(strstr(cap.out, "sys=rw\n"));
	assert_non_null(strstr(cap.out, "masks=0\n"));
	assert_non_null(strstr(cap.out, "DEVICES\n"));
	assert_non_null(strstr(cap.out, "MOUNTED\ndone\n"));
	/* the tmpfs it left mounted died with its mount namespace */
	char mnt[4200], line[8400];
	snprintf(mnt, sizeof mnt, " %s/mnt ", rootfs);
	FILE *f = fopen("/proc/self/mounts", "r");
	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		assert_null(strstr(line, mnt));
	fclose(f);
	/* a non-root user has them too (ambient), as under BuildKit */
	p.user = "1000";
	assert_int_equal(run_sh(&st, &cap, &p, "grep -E '^CapEff:' /proc/self/status; id -u"), 0);
	assert_non_null(strstr(cap.out, want));
	assert_non_null(strstr(cap.out, "1000\n"));
	/* unprivileged again: Docker's defaults */
	p.user = NULL;
	p.privileged = 0;
	assert_int_equal(run_sh(&st, &cap, &p, script), 0);
	assert_non_null(strstr(cap.out, "CapEff:\t00000000a80425fb\n"));
	assert_non_null(strstr(cap.out, "Seccomp:\t2\n"));
	assert_non_null(strstr(cap.out, "sys=ro\n"));
	assert_null(strstr(cap.out, "masks=0\n"));
	assert_null(strstr(cap.out, "DEVICES"));
	assert_null(strstr(cap.out, "MOUNTED"));
	assert_non_null(strstr(cap.out, "done\n"));
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/mnt", rootfs);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	backend = argc > 1 ? argv[1] : "namespaces";
	is_chroot = strcmp(backend, "chroot") == 0;
	if (geteuid() != 0)
		ib_test_skip_or_fail("the execute isolation tests need root");
	if (ib_isolation_probe(backend, NULL) < 0) {
		char why[1200];
		snprintf(why, sizeof why, "isolation `%s`: %s", backend, ib_error_last()->message);
		ib_test_skip_or_fail(why);
	}
	rootfs = make_busybox_rootfs();
	if (!rootfs)
		ib_test_skip_or_fail("busybox (busybox-static) is not installed");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_code),
		cmocka_unit_test(test_command_not_found),
		cmocka_unit_test(test_signal_and_cancel),
		cmocka_unit_test(test_host_invisible),
		cmocka_unit_test(test_pid1_and_proc),
		cmocka_unit_test(test_no_leaks),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_files_and_mounts),
		cmocka_unit_test(test_symlinked_image),
		cmocka_unit_test_teardown(test_devices, loop_teardown_state),
		cmocka_unit_test(test_nodev_everywhere),
		cmocka_unit_test_teardown(test_chroot_without_mount_namespace, loop_teardown_state),
		cmocka_unit_test(test_user_id_range),
		cmocka_unit_test_teardown(test_passwd_not_regular, loop_teardown_state),
		cmocka_unit_test(test_symlinked_resolv_conf),
		cmocka_unit_test(test_rlimits),
		cmocka_unit_test(test_tty),
		cmocka_unit_test(test_fds),
		cmocka_unit_test(test_privileged),
	};
	int failed = cmocka_run_group_tests_name(backend, tests, NULL, NULL);
	return finish_rootfs(rootfs, failed);
}
