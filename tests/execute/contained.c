/*
 * A command is contained as Docker contains RUN, for each backend (the
 * first argument: namespaces, oci or chroot): Docker's default seccomp
 * profile is in force (Seccomp: 2; add_key, keyctl, unshare -U refused),
 * the process has a session keyring of its own (a key the test put in its
 * session keyring is out of reach, nothing planted reaches the test; shown
 * also for a privileged process, which has no seccomp filter), and
 * /proc/self/exe — directly, through a link or as a `#!` interpreter —
 * never starts the caller's binary (this test) inside the container.
 * Needs root, busybox and keyutils' keyctl; skipped (failed under
 * IB_TEST_STRICT=1) when missing.
 */
#include "helpers.h"

#include <linux/keyctl.h>
#include <sys/syscall.h>

static const char *backend;
static char *rootfs;

static int run_argv(ib_exit_status *st, capture *cap, const char *const *argv)
{
	ib_process p = IB_PROCESS_INIT;
	p.argv = argv;
	p.log = capture_log;
	p.log_payload = cap;
	memset(cap, 0, sizeof *cap);
	memset(st, 0, sizeof *st);
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = backend;
	int rc = ib_execute_run(st, rootfs, &p, &o);
	fprintf(stderr, "--- `%s %s`: rc %d (%s), exit %d:\n%s", argv[0], argv[1] ? argv[1] : "", rc,
		rc < 0 ? ib_error_last()->message : "ok", st->code, cap->out);
	return rc;
}

/* Copy a host program's shared libraries (and the program when `with_self`) into the root. */
static void copy_with_libs(const char *prog, int with_self)
{
	char cmd[16384];
	snprintf(cmd, sizeof cmd,
		 "set -e; for f in %s $(ldd '%s' | grep -o '/[^ ]*'); do "
		 "mkdir -p \"%s$(dirname $f)\"; cp -L \"$f\" \"%s$f\"; done",
		 with_self ? prog : "", prog, rootfs, rootfs);
	if (system(cmd) != 0)
		fail_msg("could not copy %s and its libraries into %s", prog, rootfs);
}

/* Seccomp: 2 (a filter), and the calls Docker's profile refuses are refused. */
static void test_seccomp(void **state)
{
	(void)state;
	capture cap;
	ib_exit_status st;
	const char *argv[] = { "/bin/sh", "-c",
		"grep '^Seccomp:' /proc/self/status; "
		"unshare -U true && echo USERNS-CREATED; "
		"unshare -m true && echo MOUNTNS-CREATED; "
		"echo done", NULL };
	assert_int_equal(run_argv(&st, &cap, argv), 0);
	assert_int_equal(st.code, 0);
	assert_non_null(strstr(cap.out, "Seccomp:\t2\n"));
	assert_null(strstr(cap.out, "USERNS-CREATED"));
	assert_null(strstr(cap.out, "MOUNTNS-CREATED"));
	assert_non_null(strstr(cap.out, "Operation not permitted")); /* EPERM, as Docker */
	assert_non_null(strstr(cap.out, "done\n"));
	/* what the profile allows still works: files, processes, sockets, chroot (CAP_SYS_CHROOT) */
	const char *ok[] = { "/bin/sh", "-c",
		"set -e; mkdir -p /tmp/x; echo hi > /tmp/x/f; chmod 600 /tmp/x/f; chown 1:1 /tmp/x/f; "
		"ln -s f /tmp/x/l; cat /tmp/x/l; (sleep 0; echo sub) & wait; chroot / true; "
		"rm -r /tmp/x; echo all-fine", NULL };
	assert_int_equal(run_argv(&st, &cap, ok), 0);
	assert_int_equal(st.code, 0);
	assert_non_null(strstr(cap.out, "hi\nsub\nall-fine\n"));
}

/* The kernel keyring: the caller's session keyring is out of reach, nothing can be planted. */
static void test_keyring(void **state)
{
	(void)state;
	/* a session keyring of the test's own, holding a secret */
	long ring = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "ib-contained-test");
	assert_true(ring > 0);
	static const char secret[] = "host-keyring-secret";
	long key = syscall(SYS_add_key, "user", "ib-secret", secret, sizeof secret - 1,
			   KEY_SPEC_SESSION_KEYRING);
	assert_true(key > 0);
	char script[1024];
	snprintf(script, sizeof script,
		 "keyctl print %ld && echo READ-SECRET; "
		 "keyctl rdescribe @s && echo SAW-SESSION; "
		 "keyctl add user planted evil @s && echo PLANTED; "
		 "keyctl padd user planted2 @u </dev/null && echo PLANTED-USER; "
		 "echo done", key);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	capture cap;
	ib_exit_status st;
	assert_int_equal(run_argv(&st, &cap, argv), 0);
	assert_int_equal(st.code, 0);
	assert_non_null(strstr(cap.out, "done\n"));
	assert_null(strstr(cap.out, secret));
	assert_null(strstr(cap.out, "READ-SECRET"));
	assert_null(strstr(cap.out, "ib-contained-test"));
	assert_null(strstr(cap.out, "PLANTED"));
	/* nothing arrived in the test's keyrings */
	assert_true(syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", "planted", 0) < 0);
	assert_true(syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", "planted2", 0) < 0);
	syscall(SYS_keyctl, KEYCTL_INVALIDATE, key);
}

/*
 * The fresh session keyring on its own: a privileged process (RUN
 * --security=insecure) has no seccomp filter, so the keyring calls work
 * there, and what stops it from reading the caller's key is only that its
 * session keyring is a new one (a key possessed through the caller's session
 * keyring is readable by it; owned but not possessed it is not).
 */
static void test_keyring_privileged(void **state)
{
	(void)state;
	long ring = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "ib-contained-priv");
	assert_true(ring > 0);
	static const char secret[] = "host-keyring-secret-2";
	long key = syscall(SYS_add_key, "user", "ib-secret-2", secret, sizeof secret - 1,
			   KEY_SPEC_SESSION_KEYRING);
	assert_true(key > 0);
	char script[1024];
	snprintf(script, sizeof script,
		 "grep '^Seccomp:' /proc/self/status; "
		 "keyctl print %ld && echo READ-SECRET; "
		 "keyctl rdescribe @s; "
		 "keyctl add user planted-priv mine @s >/dev/null && echo ADDED-OWN; "
		 "echo done", key);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	ib_process p = IB_PROCESS_INIT;
	p.argv = argv;
	p.privileged = 1;
	capture cap;
	memset(&cap, 0, sizeof cap);
	p.log = capture_log;
	p.log_payload = &cap;
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = backend;
	ib_exit_status st;
	int rc = ib_execute_run(&st, rootfs, &p, &o);
	fprintf(stderr, "--- privileged keyring check: rc %d (%s), exit %d:\n%s", rc,
		rc < 0 ? ib_error_last()->message : "ok", st.code, cap.out);
	assert_int_equal(rc, 0);
	assert_int_equal(st.code, 0);
	/* no filter: the keyring calls themselves are allowed here */
	assert_non_null(strstr(cap.out, "Seccomp:\t0\n"));
	assert_non_null(strstr(cap.out, "ADDED-OWN\n"));
	assert_non_null(strstr(cap.out, "done\n"));
	/* but its session keyring is not the caller's */
	assert_null(strstr(cap.out, secret));
	assert_null(strstr(cap.out, "READ-SECRET"));
	assert_null(strstr(cap.out, "ib-contained-priv"));
	assert_true(syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", "planted-priv", 0) < 0);
	syscall(SYS_keyctl, KEYCTL_INVALIDATE, key);
}

/* Nothing was printed by this binary run inside the container. */
static void assert_not_started(const capture *cap)
{
	assert_null(strstr(cap->out, "EMBEDDER-STARTED"));
}

/*
 * /proc/self/exe as the command, through a link (by path and in PATH), and
 * as a script's interpreter: never this test's binary (CVE-2019-5736).
 */
static void test_proc_self_exe(void **state)
{
	(void)state;
	capture cap;
	ib_exit_status st;
	int oci = strcmp(backend, "oci") == 0;
	const char *direct[] = { "/proc/self/exe", "--embedder-probe", NULL };
	int rc = run_argv(&st, &cap, direct);
	assert_not_started(&cap);
	assert_true(rc < 0);
	assert_non_null(strstr(ib_error_last()->message, "magic link"));
	assert_int_equal(st.code, 126);
	/* a link to it, by path and found in PATH */
	char path[8400];
	snprintf(path, sizeof path, "%s/bin/selfexe", rootfs);
	unlink(path);
	assert_int_equal(symlink("/proc/self/exe", path), 0);
	const char *link[] = { "/bin/selfexe", "--embedder-probe", NULL };
	rc = run_argv(&st, &cap, link);
	assert_not_started(&cap);
	assert_true(rc < 0);
	assert_non_null(strstr(ib_error_last()->message, "magic link"));
	const char *in_path[] = { "selfexe", "--embedder-probe", NULL };
	rc = run_argv(&st, &cap, in_path);
	assert_not_started(&cap);
	assert_true(rc < 0);
	assert_non_null(strstr(ib_error_last()->message, "`/bin/selfexe`: it resolves through a magic link"));
	/* through a linked directory, and a relative link */
	snprintf(path, sizeof path, "%s/bin/selfdir", rootfs);
	unlink(path);
	assert_int_equal(symlink("../proc/self", path), 0);
	const char *dir[] = { "/bin/selfdir/exe", "--embedder-probe", NULL };
	rc = run_argv(&st, &cap, dir);
	assert_not_started(&cap);
	assert_true(rc < 0);
	assert_non_null(strstr(ib_error_last()->message, "magic link"));
	/* a script whose interpreter is /proc/self/exe */
	write_text(rootfs, "bin/selfscript", "#!/proc/self/exe --embedder-probe\n");
	snprintf(path, sizeof path, "%s/bin/selfscript", rootfs);
	assert_int_equal(chmod(path, 0755), 0);
	const char *script[] = { "/bin/selfscript", NULL };
	rc = run_argv(&st, &cap, script);
	assert_not_started(&cap);
	assert_true(rc < 0 || st.code != 0);
	/* and from a shell inside: /proc/self/exe is the shell's own binary there */
	const char *sh[] = { "/bin/sh", "-c", "/bin/selfscript; readlink /proc/self/exe; echo shell-ok", NULL };
	assert_int_equal(run_argv(&st, &cap, sh), 0);
	assert_not_started(&cap);
	assert_non_null(strstr(cap.out, "/bin/busybox\n"));
	assert_non_null(strstr(cap.out, "shell-ok\n"));
	/* an ELF whose interpreter (PT_INTERP) is /proc/self/exe: keyctl's copy, patched */
	char cmd[16384];
	snprintf(cmd, sizeof cmd,
		 "python3 -c 'import sys; d = open(sys.argv[1], \"rb\").read(); "
		 "i = d.index(b\"/lib64/ld-linux\"); j = d.index(b\"\\0\", i); "
		 "p = b\"/proc/self/exe\"; assert len(p) <= j - i; "
		 "open(sys.argv[2], \"wb\").write(d[:i] + p + bytes(j - i - len(p)) + d[j:])' "
		 "'%s/usr/bin/keyctl' '%s/bin/selfinterp' && chmod 755 '%s/bin/selfinterp'",
		 rootfs, rootfs, rootfs);
	if (system(cmd) == 0) {
		const char *interp[] = { "/bin/selfinterp", "--embedder-probe", NULL };
		rc = run_argv(&st, &cap, interp);
		assert_not_started(&cap);
		assert_true(rc < 0 || st.code != 0);
		if (!oci) /* the helper is what the kernel finds there */
			assert_non_null(strstr(cap.out, "exec helper"));
	}
	/* an ordinary script and a command in PATH still run, with argv as given */
	write_text(rootfs, "bin/plain", "#!/bin/sh\necho \"zero=$0 one=$1\"\n");
	snprintf(path, sizeof path, "%s/bin/plain", rootfs);
	assert_int_equal(chmod(path, 0755), 0);
	const char *plain[] = { "plain", "arg", NULL };
	assert_int_equal(run_argv(&st, &cap, plain), 0);
	assert_non_null(strstr(cap.out, "zero=/bin/plain one=arg\n"));
	const char *named[] = { "sh", "-c", "echo \"$0\" > /dev/null; cat /proc/self/cmdline | tr '\\0' ' '", NULL };
	assert_int_equal(run_argv(&st, &cap, named), 0);
	assert_non_null(strstr(cap.out, "cat /proc/self/cmdline"));
	/* a command that is missing or not executable fails as before */
	const char *missing[] = { "/bin/no-such", NULL };
	rc = run_argv(&st, &cap, missing);
	assert_true(rc < 0 || st.code == 127);
	if (!oci) {
		assert_int_equal(rc, IB_ENOTFOUND);
		assert_int_equal(st.code, 127);
	}
	write_text(rootfs, "bin/notexec", "#!/bin/sh\necho ran\n");
	const char *noexec[] = { "/bin/notexec", NULL };
	rc = run_argv(&st, &cap, noexec);
	assert_null(strstr(cap.out, "ran\n"));
	if (!oci) {
		assert_true(rc < 0);
		assert_int_equal(st.code, 126);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--embedder-probe") == 0) {
		/* started inside a container through /proc/self/exe: what must never happen */
		printf("EMBEDDER-STARTED\n");
		return 0;
	}
	backend = argc > 1 ? argv[1] : "namespaces";
	if (geteuid() != 0)
		ib_test_skip_or_fail("the execute isolation tests need root");
	if (ib_isolation_probe(backend, NULL) < 0) {
		char why[1200];
		snprintf(why, sizeof why, "isolation `%s`: %s", backend, ib_error_last()->message);
		ib_test_skip_or_fail(why);
	}
	if (access("/usr/bin/keyctl", X_OK) != 0)
		ib_test_skip_or_fail("keyctl (keyutils) is not installed");
	rootfs = make_busybox_rootfs();
	if (!rootfs)
		ib_test_skip_or_fail("busybox (busybox-static) is not installed");
	copy_with_libs("/usr/bin/keyctl", 1);
	/* what this binary needs to start inside, so that starting it would show */
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		ib_test_skip_or_fail("readlink /proc/self/exe");
	self[n] = '\0';
	copy_with_libs(self, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seccomp),
		cmocka_unit_test(test_keyring),
		cmocka_unit_test(test_keyring_privileged),
		cmocka_unit_test(test_proc_self_exe),
	};
	int failed = cmocka_run_group_tests_name(backend, tests, NULL, NULL);
	return finish_rootfs(rootfs, failed);
}
