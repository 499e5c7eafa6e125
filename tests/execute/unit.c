/*
 * Unit tests of the execute layer that need no privileges: user resolution
 * in a fake root, the OCI config.json, the backend registry, and the
 * shared part of ib_execute_run through a call-counting `fake` backend.
 */
#include "helpers.h"
#include "execute/internal.h"

#include <jansson.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static char *fake_root(void)
{
	char *tmp = ib_test_tmpdir("user");
	write_users(tmp);
	return tmp;
}

static void test_user_by_name(void **state)
{
	(void)state;
	char *root = fake_root();
	ib_user u = IB_USER_INIT, old;
	memset(&old, 0, sizeof old); /* an output without its version is refused, not overrun */
	ib_assert_error_contains(ib_user_resolve(&old, root, "builder"), "ib_user version 0");
	ib_user fresh;
	assert_int_equal(ib_user_init(&fresh, IB_USER_VERSION), 0);
	assert_int_equal(ib_user_resolve(&fresh, root, "builder"), 0);
	ib_user_dispose(&fresh);
	assert_int_equal(ib_user_resolve(&u, root, "builder"), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_string_equal(u.name, "builder");
	assert_string_equal(u.home, "/home/builder");
	assert_int_equal(u.ngroups, 2); /* audio and staff list it */
	assert_int_equal(u.groups[0], 29);
	assert_int_equal(u.groups[1], 50);
	ib_user_dispose(&u);
	rm_tree(root);
	free(root);
}

static void test_user_numeric_and_groups(void **state)
{
	(void)state;
	char *root = fake_root();
	ib_user u = IB_USER_INIT;
	/* a uid need not exist */
	assert_int_equal(ib_user_resolve(&u, root, "4242"), 0);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 0);
	assert_null(u.name);
	assert_string_equal(u.home, "/");
	ib_user_dispose(&u);
	/* a known uid gets its passwd entry */
	assert_int_equal(ib_user_resolve(&u, root, "1000"), 0);
	assert_string_equal(u.name, "builder");
	assert_int_equal(u.gid, 1000);
	ib_user_dispose(&u);
	/* explicit groups: no supplementary groups */
	assert_int_equal(ib_user_resolve(&u, root, "builder:staff"), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 50);
	assert_int_equal(u.ngroups, 0);
	ib_user_dispose(&u);
	assert_int_equal(ib_user_resolve(&u, root, "1:777"), 0);
	assert_int_equal(u.uid, 1);
	assert_int_equal(u.gid, 777);
	ib_user_dispose(&u);
	/* root, by default */
	assert_int_equal(ib_user_resolve(&u, root, NULL), 0);
	assert_int_equal(u.uid, 0);
	assert_string_equal(u.home, "/root");
	ib_user_dispose(&u);
	rm_tree(root);
	free(root);
}

static void test_user_errors(void **state)
{
	(void)state;
	char *root = fake_root();
	ib_user u = IB_USER_INIT;
	ib_assert_error_contains(ib_user_resolve(&u, root, "nosuchuser"), "user `nosuchuser`");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	ib_assert_error_contains(ib_user_resolve(&u, root, "builder:nogroupnamed"),
				 "group `nogroupnamed`");
	ib_assert_error_contains(ib_user_resolve(&u, root, "builder:"), "invalid user spec");
	ib_assert_error_contains(ib_user_resolve(&u, root, ":1"), "invalid user spec");
	/* no /etc/passwd: names fail, numbers work */
	char path[4200];
	snprintf(path, sizeof path, "%s/etc/passwd", root);
	unlink(path);
	ib_assert_error_contains(ib_user_resolve(&u, root, "builder"), "no /etc/passwd");
	assert_int_equal(ib_user_resolve(&u, root, "12:13"), 0);
	assert_int_equal(u.uid, 12);
	ib_user_dispose(&u);
	rm_tree(root);
	free(root);
}

/* Ids above 2^31-1 are refused (setresuid(-1) would keep root), as runc does. */
static void test_user_id_range(void **state)
{
	(void)state;
	char *root = fake_root();
	write_text(root, "etc/passwd",
		   "root:x:0:0:root:/root:/bin/sh\n"
		   "minus:x:4294967295:1:minus:/:/bin/sh\n"
		   "biggid:x:1001:2147483648:biggid:/:/bin/sh\n"
		   "edge:x:2147483647:2147483647:edge:/:/bin/sh\n");
	write_text(root, "etc/group", "root:x:0:\nwide:x:3000000000:edge2\n");
	ib_user u = IB_USER_INIT;
	ib_assert_error_contains(ib_user_resolve(&u, root, "4294967295"), "out of range");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	ib_assert_error_contains(ib_user_resolve(&u, root, "1000:4294967295"), "gid 4294967295 is out of range");
	ib_assert_error_contains(ib_user_resolve(&u, root, "2147483648"), "uid 2147483648 is out of range");
	ib_assert_error_contains(ib_user_resolve(&u, root, "0:2147483648"), "out of range");
	/* the same ids reached through the image's own files */
	ib_assert_error_contains(ib_user_resolve(&u, root, "minus"), "uid 4294967295 is out of range");
	ib_assert_error_contains(ib_user_resolve(&u, root, "biggid"), "gid 2147483648 is out of range");
	/* 2^31-1 itself is fine */
	assert_int_equal(ib_user_resolve(&u, root, "edge"), 0);
	assert_int_equal(u.uid, 2147483647u);
	assert_int_equal(u.gid, 2147483647u);
	ib_user_dispose(&u);
	assert_int_equal(ib_user_resolve(&u, root, "2147483647:2147483647"), 0);
	ib_user_dispose(&u);
	rm_tree(root);
	free(root);
}

/* /etc/passwd and /etc/group: regular files only, bounded; a FIFO does not hang us. */
static void test_user_files_regular_only(void **state)
{
	(void)state;
	char *root = fake_root();
	char path[4200], grp[4200];
	snprintf(path, sizeof path, "%s/etc/passwd", root);
	snprintf(grp, sizeof grp, "%s/etc/group", root);
	ib_user u = IB_USER_INIT;
	/* a FIFO nobody writes to: a clear error at once, not a hang */
	unlink(path);
	assert_int_equal(mkfifo(path, 0644), 0);
	time_t t0 = time(NULL);
	ib_assert_error_contains(ib_user_resolve(&u, root, "builder"), "/etc/passwd of the root filesystem is not a regular file (a FIFO)");
	ib_assert_error_contains(ib_user_resolve(&u, root, "0"), "not a regular file");
	assert_true(time(NULL) - t0 < 5);
	unlink(path);
	write_users(root);
	unlink(grp);
	assert_int_equal(mkfifo(grp, 0644), 0);
	ib_assert_error_contains(ib_user_resolve(&u, root, "builder"), "/etc/group of the root filesystem is not a regular file");
	unlink(grp);
	/* a directory */
	assert_int_equal(mkdir(grp, 0755), 0);
	ib_assert_error_contains(ib_user_resolve(&u, root, "builder"), "(a directory)");
	rmdir(grp);
	write_users(root);
	/* a huge (sparse) /etc/passwd: refused before anything is read */
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)1 << 30), 0);
	close(fd);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	t0 = time(NULL);
	ib_assert_error_contains(ib_user_resolve(&u, root, "builder"), "is larger than");
	getrusage(RUSAGE_SELF, &ru1);
	assert_true(time(NULL) - t0 < 5);
	assert_true(ru1.ru_maxrss - ru0.ru_maxrss < 64 * 1024); /* KiB */
	rm_tree(root);
	free(root);
}

/* /etc/passwd as an absolute symlink is resolved inside the root, not on the host. */
static void test_user_symlink_stays_inside(void **state)
{
	(void)state;
	char *root = ib_test_tmpdir("usersym");
	mkdir_in(root, "etc");
	mkdir_in(root, "inner");
	write_text(root, "inner/pw", "inside:x:7:8::/in:/bin/sh\n");
	char link[4200];
	snprintf(link, sizeof link, "%s/etc/passwd", root);
	assert_int_equal(symlink("/inner/pw", link), 0);
	ib_user u = IB_USER_INIT;
	assert_int_equal(ib_user_resolve(&u, root, "inside"), 0);
	assert_int_equal(u.uid, 7);
	assert_int_equal(u.gid, 8);
	ib_user_dispose(&u);
	/* the host's users are not there */
	ib_assert_error_contains(ib_user_resolve(&u, root, "daemon"), "user `daemon`");
	/* ../.. climbs to the root's own /etc/group: itself, a loop, not the host's */
	snprintf(link, sizeof link, "%s/etc/group", root);
	assert_int_equal(symlink("../../../../../../../../etc/group", link), 0);
	assert_true(ib_user_resolve(&u, root, "inside:root") < 0);
	rm_tree(root);
	free(root);
}

/* ---- config.json ---- */

static void test_oci_config(void **state)
{
	(void)state;
	const char *argv[] = { "/bin/sh", "-c", "echo hi", NULL };
	const char *env[] = { "PATH=/bin", "A=b", NULL };
	uint32_t groups[] = { 29, 50 };
	ib_mount mounts[] = {
		{ IB_MOUNT_BIND, "/host/src", "/src", 1, NULL },
		{ IB_MOUNT_TMPFS, NULL, "/scratch", 0, "size=1m,mode=700" },
	};
	ib_isolation_rlimit rl[] = { { 7 /* RLIMIT_NOFILE */, 100, 200 } };
	/* a version 3 spec (no capability set): Docker's defaults */
	ib_isolation_spec s = { 3, "/roots/r1", argv, env, "/work", 1000, 1000,
		groups, 2, "box", IB_NETWORK_NONE, mounts, 2, "/run/x/hosts", NULL,
		{ 0, 1, 2 }, 0, rl, 1, "/run/x" };
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_execute__oci_config(&b, &s), 0);
	json_error_t err;
	json_t *c = json_loads(b.ptr, 0, &err);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "ociVersion")), "1.0.2");
	json_t *p = json_object_get(c, "process");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "user"), "uid")), 1000);
	assert_int_equal(json_array_size(json_object_get(json_object_get(p, "user"), "additionalGids")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(p, "args"), 2)), "echo hi");
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/work");
	assert_true(json_is_true(json_object_get(p, "noNewPrivileges")));
	json_t *caps = json_object_get(p, "capabilities");
	assert_int_equal(json_array_size(json_object_get(caps, "bounding")), 14);
	assert_int_equal(json_array_size(json_object_get(caps, "effective")), 0); /* not root */
	json_t *r0 = json_array_get(json_object_get(p, "rlimits"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "type")), "RLIMIT_NOFILE");
	assert_int_equal(json_integer_value(json_object_get(r0, "hard")), 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "root"), "path")), "/roots/r1");
	assert_string_equal(json_string_value(json_object_get(c, "hostname")), "box");
	json_t *ns = json_object_get(json_object_get(c, "linux"), "namespaces");
	int net = 0;
	for (size_t i = 0; i < json_array_size(ns); i++)
		net |= !strcmp(json_string_value(json_object_get(json_array_get(ns, i), "type")), "network");
	assert_true(net);
	json_t *m = json_object_get(c, "mounts");
	int hosts = 0, resolv = 0, src_ro = 0, tmpfs_opt = 0;
	for (size_t i = 0; i < json_array_size(m); i++) {
		json_t *o = json_array_get(m, i);
		const char *d = json_string_value(json_object_get(o, "destination"));
		json_t *opts = json_object_get(o, "options");
		hosts |= !strcmp(d, "/etc/hosts");
		resolv |= !strcmp(d, "/etc/resolv.conf");
		for (size_t k = 0; k < json_array_size(opts); k++) {
			const char *v = json_string_value(json_array_get(opts, k));
			src_ro |= !strcmp(d, "/src") && !strcmp(v, "ro");
			tmpfs_opt |= !strcmp(d, "/scratch") && !strcmp(v, "mode=700");
		}
	}
	assert_true(hosts);
	assert_false(resolv);
	assert_true(src_ro);
	assert_true(tmpfs_opt);
	assert_true(json_array_size(json_object_get(json_object_get(c, "linux"), "maskedPaths")) > 0);
	json_decref(c);
	/* host network: no network namespace; root keeps the default capabilities */
	s.network = IB_NETWORK_HOST;
	s.uid = 0;
	ib_buf_clear(&b);
	assert_int_equal(ib_execute__oci_config(&b, &s), 0);
	assert_null(strstr(b.ptr, "\"network\""));
	assert_non_null(strstr(b.ptr, "CAP_NET_BIND_SERVICE"));
	c = json_loads(b.ptr, 0, &err);
	caps = json_object_get(json_object_get(c, "process"), "capabilities");
	assert_int_equal(json_array_size(json_object_get(caps, "effective")), 14);
	json_decref(c);
	ib_buf_dispose(&b);
}

/* ---- the registry and the shared part, through a fake backend ---- */

typedef struct {
	int starts, kills, finishes, frees;
	int exit_code;       /* what the fake process exits with; < 0: killed by -exit_code */
	int sleep_ms;
	const char *rootfs_seen;
} fake_counts;

static fake_counts counts;

struct ib_isolation_run {
	pid_t pid;
};

/* The fake process: reports what the spec holds on its stdout, then exits. */
static void fake_child(const ib_isolation_spec *s)
{
	FILE *f = fdopen(dup(s->stdio[1]), "w");
	fprintf(f, "uid=%u gid=%u ngroups=%zu cwd=%s tty=%d\n", s->uid, s->gid, s->ngroups, s->cwd, s->tty);
	for (size_t i = 0; s->env[i]; i++)
		fprintf(f, "env %s\n", s->env[i]);
	static const char *const check[] = { "proc", "dev", "sys", "etc/hosts", "etc/resolv.conf", "mnt/data" };
	for (size_t i = 0; i < sizeof check / sizeof check[0]; i++)
		if (exists_in(s->rootfs, check[i]))
			fprintf(f, "exists %s\n", check[i]);
	if (s->hosts_file) {
		char line[256];
		FILE *h = fopen(s->hosts_file, "r");
		while (h && fgets(line, sizeof line, h))
			fprintf(f, "hosts %s", line);
		if (h)
			fclose(h);
	}
	fprintf(f, "partial line without newline");
	fclose(f);
	if (counts.sleep_ms)
		usleep((useconds_t)counts.sleep_ms * 1000);
	if (counts.exit_code < 0)
		kill(getpid(), -counts.exit_code);
	_exit(counts.exit_code);
}

static int fake_start(ib_isolation *self, ib_isolation_run **run, int *pid, ib_exit_status *st,
		      const ib_isolation_spec *s)
{
	(void)self;
	(void)st;
	counts.starts++;
	*run = calloc(1, sizeof **run);
	pid_t child = fork();
	if (child == 0)
		fake_child(s);
	(*run)->pid = child;
	*pid = child;
	return 0;
}

static int fake_kill(ib_isolation *self, ib_isolation_run *run)
{
	(void)self;
	counts.kills++;
	kill(run->pid, SIGKILL);
	return 0;
}

static int fake_finish(ib_isolation *self, ib_isolation_run *run, int ws, ib_exit_status *out)
{
	(void)self;
	counts.finishes++;
	out->signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
	out->code = out->signal ? 128 + out->signal : WEXITSTATUS(ws);
	free(run);
	return 0;
}

static void fake_free(ib_isolation *self)
{
	counts.frees++;
	free(self);
}

static int fake_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	(void)opts;
	assert_ptr_equal(param, &counts);
	ib_isolation *iso = calloc(1, sizeof *iso);
	iso->version = IB_ISOLATION_VERSION;
	iso->start = fake_start;
	iso->kill = fake_kill;
	iso->finish = fake_finish;
	iso->free = fake_free;
	*out = iso;
	return 0;
}

/* A backend of interface version 1 (no `features`): a privileged process is refused. */
static int fake_v1_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	int rc = fake_new(out, opts, param);
	(*out)->version = 1;
	return rc;
}

/* Privileged (RUN --security=insecure): BuildKit's insecure spec in config.json. */
/* A version 4 spec: its capability set (cap_add/cap_drop) and a read-only root reach config.json. */
static void test_oci_config_caps_readonly(void **state)
{
	(void)state;
	const char *argv[] = { "/bin/sh", NULL };
	const char *env[] = { "PATH=/bin", NULL };
	ib_isolation_spec s;
	memset(&s, 0, sizeof s);
	s.version = IB_ISOLATION_SPEC_VERSION;
	s.rootfs = "/roots/r1";
	s.argv = argv;
	s.env = env;
	s.cwd = "/";
	s.stdio[1] = 1;
	s.stdio[2] = 2;
	s.work_dir = "/run/x";
	s.readonly_rootfs = 1;
	s.capabilities = (1ULL << 0 /* CHOWN */) | (1ULL << 12 /* NET_ADMIN */);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_execute__oci_config(&b, &s), 0);
	json_error_t err;
	json_t *c = json_loads(b.ptr, 0, &err);
	assert_non_null(c);
	assert_true(json_is_true(json_object_get(json_object_get(c, "root"), "readonly")));
	json_t *caps = json_object_get(json_object_get(c, "process"), "capabilities");
	const char *sets[] = { "bounding", "effective", "permitted" };
	for (size_t i = 0; i < 3; i++) {
		json_t *a = json_object_get(caps, sets[i]);
		assert_int_equal(json_array_size(a), 2);
		assert_string_equal(json_string_value(json_array_get(a, 0)), "CAP_CHOWN");
		assert_string_equal(json_string_value(json_array_get(a, 1)), "CAP_NET_ADMIN");
	}
	json_decref(c);
	ib_buf_dispose(&b);
}

static void test_oci_config_privileged(void **state)
{
	(void)state;
	const char *argv[] = { "/bin/sh", NULL };
	const char *env[] = { "PATH=/bin", NULL };
	ib_isolation_spec s = { 3, "/roots/r1", argv, env, "/", 1000, 1000,
		NULL, 0, NULL, IB_NETWORK_HOST, NULL, 0, NULL, NULL, { 0, 1, 2 }, 0, NULL, 0, "/run/x", 1 };
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_execute__oci_config(&b, &s), 0);
	json_error_t err;
	json_t *c = json_loads(b.ptr, 0, &err);
	assert_non_null(c);
	json_t *p = json_object_get(c, "process");
	assert_true(json_is_false(json_object_get(p, "noNewPrivileges")));
	/* every capability we have, in all five sets, for a non-root user too */
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	assert_int_equal(syscall(SYS_capget, &hdr, data), 0);
	size_t have = (size_t)__builtin_popcount(data[0].effective) +
		      (size_t)__builtin_popcount(data[1].effective & 0x1ffu);
	json_t *caps = json_object_get(p, "capabilities");
	static const char *const sets[] = { "bounding", "effective", "permitted", "inheritable", "ambient" };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(json_array_size(json_object_get(caps, sets[i])), have);
	json_t *l = json_object_get(c, "linux");
	assert_null(json_object_get(l, "seccomp"));
	assert_int_equal(json_array_size(json_object_get(l, "maskedPaths")), 0);
	assert_int_equal(json_array_size(json_object_get(l, "readonlyPaths")), 0);
	json_t *rules = json_object_get(json_object_get(l, "resources"), "devices");
	assert_int_equal(json_array_size(rules), 2);
	assert_true(json_is_true(json_object_get(json_array_get(rules, 0), "allow")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "access")), "rwm");
	json_t *m = json_object_get(c, "mounts");
	int cgroup = 0;
	for (size_t i = 0; i < json_array_size(m); i++) {
		json_t *o = json_array_get(m, i);
		/* BuildKit's cgroupfs, writable */
		cgroup |= !strcmp(json_string_value(json_object_get(o, "destination")), "/sys/fs/cgroup");
		if (strcmp(json_string_value(json_object_get(o, "destination")), "/sys") &&
		    strcmp(json_string_value(json_object_get(o, "destination")), "/sys/fs/cgroup"))
			continue;
		json_t *opts = json_object_get(o, "options");
		for (size_t k = 0; k < json_array_size(opts); k++)
			assert_string_not_equal(json_string_value(json_array_get(opts, k)), "ro");
	}
	assert_true(cgroup);
	json_decref(c);
	/* the same spec unprivileged keeps Docker's defaults */
	s.privileged = 0;
	ib_buf_clear(&b);
	assert_int_equal(ib_execute__oci_config(&b, &s), 0);
	c = json_loads(b.ptr, 0, &err);
	assert_non_null(json_object_get(json_object_get(c, "linux"), "seccomp"));
	assert_int_equal(json_array_size(json_object_get(json_object_get(json_object_get(c, "process"),
		"capabilities"), "bounding")), 14);
	assert_null(json_object_get(json_object_get(c, "linux"), "resources"));
	json_decref(c);
	ib_buf_dispose(&b);
}

static void test_registry(void **state)
{
	(void)state;
	ib_buf names = IB_BUF_INIT;
	assert_int_equal(ib_isolation_list(&names), 0);
	assert_non_null(strstr(names.ptr, "namespaces"));
	assert_non_null(strstr(names.ptr, "oci"));
	assert_non_null(strstr(names.ptr, "chroot"));
	ib_isolation *iso = NULL;
	ib_assert_error_contains(ib_isolation_new(&iso, "nope", NULL), "no isolation backend named `nope`");
	assert_int_equal(ib_isolation_register("fake", fake_new, &counts), 0);
	assert_int_equal(ib_isolation_list(&names), 0);
	assert_non_null(strstr(names.ptr, "fake"));
	assert_int_equal(ib_isolation_unregister("fake"), 0);
	ib_assert_error_contains(ib_isolation_unregister("fake"), "no isolation backend named `fake`");
	ib_buf_dispose(&names);
	/* a runtime that does not exist is reported by probe */
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.runtime = "no-such-oci-runtime-xyz";
	ib_assert_error_contains(ib_isolation_probe("oci", &o), "`no-such-oci-runtime-xyz` not found");
}

static char *fake_rootfs(void)
{
	char *root = fake_root();
	mkdir_in(root, "home");
	mkdir_in(root, "home/builder");
	return root;
}

static int fake_run(ib_exit_status *st, capture *cap, const char *root, ib_process *p,
		    const volatile int *cancel)
{
	ib_isolation_register("fake", fake_new, &counts);
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = "fake";
	ib_callbacks cb = IB_CALLBACKS_INIT;
	cb.cancel = cancel;
	o.callbacks = &cb;
	static const char *const argv[] = { "true", NULL };
	if (!p->argv)
		p->argv = argv;
	p->log = capture_log;
	p->log_payload = cap;
	memset(&counts.starts, 0, sizeof counts.starts);
	return ib_execute_run(st, root, p, &o);
}

/* A privileged process only reaches a backend that says it can run one; ib_process version 1 still runs. */
static void test_privileged_needs_the_feature(void **state)
{
	(void)state;
	char *root = fake_rootfs();
	capture cap = { "", 0, 0 };
	ib_exit_status st;
	counts.exit_code = 0;
	counts.sleep_ms = 0;
	ib_process p = IB_PROCESS_INIT;
	p.privileged = 1;
	assert_int_equal(ib_isolation_register("fake", fake_v1_new, &counts), 0);
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = "fake";
	static const char *const argv[] = { "true", NULL };
	p.argv = argv;
	p.log = capture_log;
	p.log_payload = &cap;
	counts.starts = 0;
	ib_assert_error_contains(ib_execute_run(&st, root, &p, &o),
				 "isolation `fake` cannot run a privileged process");
	assert_int_equal(counts.starts, 0);
	/* unprivileged, the version 1 backend runs it */
	p.privileged = 0;
	assert_int_equal(ib_execute_run(&st, root, &p, &o), 0);
	assert_int_equal(counts.starts, 1);
	/* a version 1 ib_process (no `privileged` field) runs as before */
	ib_process old;
	memset(&old, 0xff, sizeof old); /* what lies past a version 1 struct is not read */
	assert_int_equal(ib_process_init(&old, 1), 0);
	assert_int_equal(old.version, 1);
	assert_int_equal(old.privileged, -1);
	old.argv = argv;
	assert_int_equal(ib_execute_run(&st, root, &old, &o), 0);
	assert_int_equal(counts.starts, 2);
	ib_assert_error_contains(ib_process_init(&old, 5), "ib_process version 5 is not supported");
	ib_isolation_register("fake", fake_new, &counts);
	counts.starts = counts.finishes = 0;
	rm_tree(root);
	free(root);
}

/*
 * ib_process version 4: capability names are checked and resolved, and a
 * read-only root or another capability set only reaches a backend that says
 * it can (a version 1 backend has no features); a named volume is refused.
 */
static void test_caps_and_readonly_need_the_feature(void **state)
{
	(void)state;
	char *root = fake_rootfs();
	ib_exit_status st;
	counts.exit_code = 0;
	counts.sleep_ms = 0;
	assert_int_equal(ib_isolation_register("fake", fake_v1_new, &counts), 0);
	ib_execute_options o = IB_EXECUTE_OPTIONS_INIT;
	o.isolation = "fake";
	static const char *const argv[] = { "true", NULL };
	ib_process p = IB_PROCESS_INIT;
	p.argv = argv;
	counts.starts = 0;
	p.readonly_rootfs = 1;
	ib_assert_error_contains(ib_execute_run(&st, root, &p, &o),
				 "isolation `fake` cannot make the root filesystem read-only");
	p.readonly_rootfs = 0;
	static const char *const drop[] = { "chown", NULL };
	p.cap_drop = drop;
	ib_assert_error_contains(ib_execute_run(&st, root, &p, &o),
				 "isolation `fake` cannot change the capability set");
	/* dropping and adding back the same one is the default set: runs */
	static const char *const add_back[] = { "CAP_CHOWN", NULL };
	p.cap_add = add_back;
	assert_int_equal(ib_execute_run(&st, root, &p, &o), 0);
	static const char *const unknown[] = { "NO_SUCH_CAP", NULL };
	p.cap_add = unknown;
	ib_assert_error_contains(ib_execute_run(&st, root, &p, &o), "unknown capability `NO_SUCH_CAP`");
	static const char *const admin[] = { "sys_admin", NULL };
	p.cap_add = admin;
	ib_assert_error_contains(ib_execute_run(&st, root, &p, &o),
				 "adding capability `sys_admin` is not supported");
	p.cap_add = NULL;
	p.cap_drop = NULL;
	ib_mount vol = { IB_MOUNT_VOLUME, "data", "/data", 0, NULL };
	p.mounts = &vol;
	p.nmounts = 1;
	ib_assert_error_contains(ib_execute_run(&st, root, &p, &o), "a named volume (`data`) is for containers");
	assert_int_equal(counts.starts, 1);
	ib_isolation_register("fake", fake_new, &counts);
	counts.starts = counts.finishes = 0;
	rm_tree(root);
	free(root);
}

static void test_run_shared_part(void **state)
{
	(void)state;
	char *root = fake_rootfs();
	char data[4200];
	snprintf(data, sizeof data, "%s-data", root);
	mkdir(data, 0755);
	ib_mount m = { IB_MOUNT_BIND, data, "/mnt/data", 1, NULL };
	const char *env[] = { "FOO=bar", NULL };
	setenv("IB_TEST_SECRET", "leaked", 1);
	ib_process p = IB_PROCESS_INIT;
	p.env = env;
	p.user = "builder";
	p.cwd = "/work/dir/../sub";
	p.hostname = "buildbox";
	p.mounts = &m;
	p.nmounts = 1;
	capture cap = { "", 0, 0 };
	ib_exit_status st;
	counts.exit_code = 7;
	counts.sleep_ms = 0;
	assert_int_equal(fake_run(&st, &cap, root, &p, NULL), 0);
	assert_int_equal(st.code, 7);
	assert_int_equal(st.signal, 0);
	assert_int_equal(counts.finishes, counts.starts);
	const char *o = cap.out;
	assert_non_null(strstr(o, "uid=1000 gid=1000 ngroups=2 cwd=/work/sub tty=0\n"));
	assert_non_null(strstr(o, "env FOO=bar\n"));
	assert_non_null(strstr(o, "env PATH=" IB_EXECUTE_DEFAULT_PATH "\n"));
	assert_non_null(strstr(o, "env HOME=/home/builder\n"));
	assert_null(strstr(o, "IB_TEST_SECRET"));
	/* mount points existed during the run... */
	assert_non_null(strstr(o, "exists proc\n"));
	assert_non_null(strstr(o, "exists etc/hosts\n"));
	assert_non_null(strstr(o, "exists etc/resolv.conf\n"));
	assert_non_null(strstr(o, "exists mnt/data\n"));
	assert_non_null(strstr(o, "hosts 127.0.1.1\tbuildbox\n"));
	assert_non_null(strstr(o, "partial line without newline\n"));
	/* ...and are gone after it; the working directory stays, like Docker's */
	assert_false(exists_in(root, "proc"));
	assert_false(exists_in(root, "dev"));
	assert_false(exists_in(root, "etc/hosts"));
	assert_false(exists_in(root, "etc/resolv.conf"));
	assert_false(exists_in(root, "mnt"));
	assert_true(exists_in(root, "work/sub"));
	assert_true(exists_in(root, "etc/passwd"));
	rm_tree(data);
	rm_tree(root);
	free(root);
}

static void test_run_signal_and_cancel(void **state)
{
	(void)state;
	char *root = fake_rootfs();
	/* an /etc/hosts of the image is kept */
	write_text(root, "etc/hosts", "10.0.0.1 mine\n");
	ib_process p = IB_PROCESS_INIT;
	capture cap = { "", 0, 0 };
	ib_exit_status st;
	counts.exit_code = -SIGTERM;
	counts.sleep_ms = 0;
	assert_int_equal(fake_run(&st, &cap, root, &p, NULL), 0);
	assert_int_equal(st.signal, SIGTERM);
	assert_int_equal(st.code, 128 + SIGTERM);
	assert_true(exists_in(root, "etc/hosts"));
	/* cancelled: killed, reported as IB_EUSER with the signal */
	volatile int cancel = 1;
	counts.exit_code = 0;
	counts.sleep_ms = 5000;
	counts.kills = 0;
	ib_assert_error_contains(fake_run(&st, &cap, root, &p, &cancel), "cancelled");
	assert_int_equal(ib_error_last()->code, IB_EUSER);
	assert_int_equal(counts.kills, 1);
	assert_int_equal(st.signal, SIGKILL);
	assert_int_equal(st.code, 137);
	rm_tree(root);
	free(root);
}

static int has_sys_resource(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	return (data[CAP_SYS_RESOURCE / 32].effective >> (CAP_SYS_RESOURCE % 32)) & 1;
}

static void test_run_errors(void **state)
{
	(void)state;
	char *root = fake_rootfs();
	ib_process p = IB_PROCESS_INIT;
	capture cap = { "", 0, 0 };
	ib_exit_status st;
	counts.exit_code = 0;
	counts.sleep_ms = 0;
	p.user = "ghost";
	ib_assert_error_contains(fake_run(&st, &cap, root, &p, NULL), "user `ghost`: no such user");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	p.user = NULL;
	const char *bad_env[] = { "NOEQUALS", NULL };
	p.env = bad_env;
	ib_assert_error_contains(fake_run(&st, &cap, root, &p, NULL), "`NOEQUALS` is not NAME=value");
	p.env = NULL;
	ib_rlimit rl = { "bogus", 1, 1 };
	p.rlimits = &rl;
	p.nrlimits = 1;
	ib_assert_error_contains(fake_run(&st, &cap, root, &p, NULL), "unknown resource limit `bogus`");
	rl.name = "nofile";
	rl.soft = 10;
	rl.hard = 5;
	ib_assert_error_contains(fake_run(&st, &cap, root, &p, NULL), "soft limit 10 is above");
	rl.soft = 64;
	rl.hard = IB_RLIM_INFINITY;
	if (has_sys_resource()) {
		assert_int_equal(fake_run(&st, &cap, root, &p, NULL), 0);
	} else {
		ib_assert_error_contains(fake_run(&st, &cap, root, &p, NULL), "needs CAP_SYS_RESOURCE");
	}
	p.nrlimits = 0;
	ib_process empty = IB_PROCESS_INIT;
	const char *no_argv[] = { NULL };
	empty.argv = no_argv;
	ib_assert_error_contains(ib_execute_run(&st, root, &empty, NULL), "argv is empty");
	empty.version = 99;
	ib_assert_error_contains(ib_execute_run(&st, root, &empty, NULL), "version 99");
	ib_assert_error_contains(ib_execute_run(&st, "/no/such/root", &p, NULL), "/no/such/root");
	rm_tree(root);
	free(root);
}

/* Symlinked mount points never make us create or mount outside the root. */
static void test_run_symlinks_stay_inside(void **state)
{
	(void)state;
	char *root = fake_rootfs();
	char *outside = ib_test_tmpdir("outside");
	char link[4200], target[4200];
	/* /etc/hosts -> <outside>/hosts (absolute, meant for the host) */
	snprintf(link, sizeof link, "%s/etc/hosts", root);
	snprintf(target, sizeof target, "%s/hosts", outside);
	assert_int_equal(symlink(target, link), 0);
	/* /etc/resolv.conf -> ../../../../../../<outside>/resolv.conf */
	snprintf(link, sizeof link, "%s/etc/resolv.conf", root);
	snprintf(target, sizeof target, "../../../../../../../..%s/resolv.conf", outside);
	assert_int_equal(symlink(target, link), 0);
	ib_process p = IB_PROCESS_INIT;
	capture cap = { "", 0, 0 };
	ib_exit_status st;
	counts.exit_code = 0;
	counts.sleep_ms = 0;
	assert_int_equal(fake_run(&st, &cap, root, &p, NULL), 0);
	assert_false(exists_in(outside, "hosts"));
	assert_false(exists_in(outside, "resolv.conf"));
	/* the links were followed inside the root (as runc does): the files are provided there */
	assert_non_null(strstr(cap.out, "hosts 127.0.0.1"));
	/* and what was made for them inside the root is gone after the run */
	char made[4200];
	snprintf(made, sizeof made, "%s%s", root, outside);
	assert_false(exists_in(made, ""));
	/* /proc as a symlink is refused */
	snprintf(link, sizeof link, "%s/proc", root);
	assert_int_equal(symlink(outside, link), 0);
	ib_assert_error_contains(fake_run(&st, &cap, root, &p, NULL), "`/proc` in the root filesystem is a symlink");
	/* a mount target through a symlink to a host path is refused, nothing made outside */
	unlink(link);
	snprintf(link, sizeof link, "%s/escape", root);
	assert_int_equal(symlink(outside, link), 0);
	ib_mount m = { IB_MOUNT_TMPFS, NULL, "/escape/mnt", 0, NULL };
	p.mounts = &m;
	p.nmounts = 1;
	ib_assert_error_contains(fake_run(&st, &cap, root, &p, NULL), "dangling symlink");
	assert_false(exists_in(outside, "mnt"));
	/* one that stays inside is followed inside */
	unlink(link);
	mkdir_in(root, "real");
	assert_int_equal(symlink("/real", link), 0);
	assert_int_equal(fake_run(&st, &cap, root, &p, NULL), 0);
	assert_false(exists_in(outside, "mnt"));
	assert_false(exists_in(root, "real/mnt")); /* removed after the run */
	rm_tree(outside);
	free(outside);
	rm_tree(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_by_name),
		cmocka_unit_test(test_user_numeric_and_groups),
		cmocka_unit_test(test_user_errors),
		cmocka_unit_test(test_user_symlink_stays_inside),
		cmocka_unit_test(test_user_id_range),
		cmocka_unit_test(test_user_files_regular_only),
		cmocka_unit_test(test_oci_config),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_oci_config_privileged),
		cmocka_unit_test(test_oci_config_caps_readonly),
		cmocka_unit_test(test_caps_and_readonly_need_the_feature),
		cmocka_unit_test(test_privileged_needs_the_feature),
		cmocka_unit_test(test_run_shared_part),
		cmocka_unit_test(test_run_signal_and_cancel),
		cmocka_unit_test(test_run_errors),
		cmocka_unit_test(test_run_symlinks_stay_inside),
	};
	return cmocka_run_group_tests_name("execute", tests, NULL, NULL);
}
