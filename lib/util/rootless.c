/*
 * Rootless: an ordinary user's process enters a user namespace in which it
 * is root, so the snapshotters can mount overlayfs and chown files to the
 * image's owners, and the isolation backends can make their namespaces.
 *
 * The process itself enters (unshare(CLONE_NEWUSER | CLONE_NEWNS)), as
 * util-linux's `unshare --map-auto` does, rather than re-executing itself
 * as podman and buildah do: a library cannot know how to re-run its host
 * program (a Python interpreter, an embedder's daemon), but it can ask for
 * what unshare(2) needs, a process that is still single-threaded. The ids
 * are mapped as podman maps them: the caller's uid to 0, then its
 * subordinate ranges of /etc/subuid and /etc/subgid from 1 up, written by
 * the setuid helpers newuidmap and newgidmap (Debian's `uidmap`), run from a
 * child forked before unshare so that it stays in the caller's namespace.
 * Without a range (or without the helpers) only the caller's own ids are
 * mapped, to 0; files of other owners are then refused where they appear
 * (ib_userns_describe says why).
 *
 * See docs/rootless.md for the contract with the host process.
 */
#include "imagebuild/common.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rootless.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_RANGES 8

typedef struct {
	unsigned long start, count;
} id_range;

static int userns_cached = -1; /* ib_userns_active, once known */
static int entered;          /* this process entered through ib_rootless_enter */
static uid_t host_uid_value; /* the caller's ids before it entered */
static gid_t host_gid_value;
static int lock_word;

static void spin_lock(void)
{
	while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE))
		;
}

static void spin_unlock(void)
{
	__atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE);
}

/* The ranges of `name` (or of the numeric id) in /etc/subuid or /etc/subgid. */
static size_t read_ranges(const char *file, const char *name, unsigned long id, id_range *out)
{
	FILE *f = fopen(file, "re");
	if (!f)
		return 0;
	char line[512];
	size_t n = 0;
	char idstr[32];
	snprintf(idstr, sizeof idstr, "%lu", id);
	while (n < MAX_RANGES && fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ':');
		if (!c1 || line[0] == '#')
			continue;
		*c1 = '\0';
		if (strcmp(line, idstr) != 0 && (!name || strcmp(line, name) != 0))
			continue;
		char *end;
		unsigned long start = strtoul(c1 + 1, &end, 10);
		if (*end != ':')
			continue;
		unsigned long count = strtoul(end + 1, &end, 10);
		if (count == 0)
			continue;
		out[n].start = start;
		out[n].count = count;
		n++;
	}
	fclose(f);
	return n;
}

static const char *find_helper(const char *name)
{
	static const char *const dirs[] = { "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin" };
	static char path[64];
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dirs[i], name);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

/* Start `helper pid 0 <own> 1 1 <start> <count> ...`; returns its pid (or -errno). */
static pid_t spawn_map_helper(const char *helper, pid_t pid, unsigned long own, const id_range *r, size_t n)
{
	char args[3 + 3 * (MAX_RANGES + 1) + 1][24];
	char *argv[3 + 3 * (MAX_RANGES + 1) + 1];
	size_t a = 0;
	snprintf(args[a], sizeof args[a], "%s", strrchr(helper, '/') + 1);
	a++;
	snprintf(args[a++], sizeof args[0], "%d", (int)pid);
	snprintf(args[a++], sizeof args[0], "0");
	snprintf(args[a++], sizeof args[0], "%lu", own);
	snprintf(args[a++], sizeof args[0], "1");
	unsigned long inside = 1;
	for (size_t i = 0; i < n; i++) {
		snprintf(args[a++], sizeof args[0], "%lu", inside);
		snprintf(args[a++], sizeof args[0], "%lu", r[i].start);
		snprintf(args[a++], sizeof args[0], "%lu", r[i].count);
		inside += r[i].count;
	}
	for (size_t i = 0; i < a; i++)
		argv[i] = args[i];
	argv[a] = NULL;
	pid_t c = fork();
	if (c < 0)
		return -errno;
	if (c == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, 0);
		execv(helper, argv);
		_exit(127);
	}
	return c;
}

/* Wait for a helper: its exit status (or -errno). */
static int wait_map_helper(pid_t c)
{
	if (c < 0)
		return (int)c;
	int ws;
	while (waitpid(c, &ws, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static int write_proc(pid_t pid, const char *file, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int err = errno;
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -(n < 0 ? err : EIO);
}

static int threads(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	int n = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Threads:", 8)) {
			n = atoi(line + 8);
			break;
		}
	fclose(f);
	return n;
}

/*
 * The mapping child: waits until the parent has unshared (a byte on `go`),
 * maps it, and reports on `done` one int: 0, or the failure (>0: the
 * helper's exit status, <0: -errno) and which file (uid 1, gid 2) in a
 * second int.
 */
static void mapper(pid_t parent, int go, int done, uid_t uid, gid_t gid, const char *user)
{
	char b;
	int res[2] = { 0, 0 };
	if (read(go, &b, 1) != 1)
		_exit(1);
	id_range ur[MAX_RANGES], gr[MAX_RANGES];
	size_t nu = read_ranges("/etc/subuid", user, uid, ur);
	size_t ng = read_ranges("/etc/subgid", user, uid, gr); /* keyed by user, as subuid */
	char nuid[64] = "", ngid[64] = "";
	const char *h = nu && ng ? find_helper("newuidmap") : NULL;
	if (h)
		snprintf(nuid, sizeof nuid, "%s", h);
	h = nu && ng ? find_helper("newgidmap") : NULL;
	if (h)
		snprintf(ngid, sizeof ngid, "%s", h);
	if (nuid[0] && ngid[0]) {
		/* both at once: each is a setuid program that takes its time to start */
		pid_t pu = spawn_map_helper(nuid, parent, uid, ur, nu);
		pid_t pg = spawn_map_helper(ngid, parent, gid, gr, ng);
		int ru = wait_map_helper(pu), rg = wait_map_helper(pg);
		res[0] = ru ? ru : rg;
		res[1] = ru ? 1 : 2;
	} else {
		char m[64];
		snprintf(m, sizeof m, "0 %lu 1\n", (unsigned long)uid);
		res[0] = write_proc(parent, "uid_map", m);
		res[1] = 1;
		if (res[0] == 0)
			res[0] = write_proc(parent, "setgroups", "deny");
		if (res[0] == 0) {
			snprintf(m, sizeof m, "0 %lu 1\n", (unsigned long)gid);
			res[0] = write_proc(parent, "gid_map", m);
			res[1] = 2;
		}
	}
	ssize_t w = write(done, res, sizeof res);
	(void)w;
	_exit(0);
}

int ib_rootless_enter(void)
{
	if (geteuid() == 0)
		return 0; /* root, or already root in a user namespace */
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char user[256] = "";
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	if (getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp)
		snprintf(user, sizeof user, "%s", pw.pw_name);
	/* after the user lookup: an NSS module may have started a thread */
	int t = threads();
	if (t != 1)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_UTIL,
				     "enter a user namespace (rootless): the process has %d threads; "
				     "unshare(CLONE_NEWUSER) needs a single-threaded one: call "
				     "ib_rootless_enter() before starting threads (or run as root)",
				     t);
	int go[2], done[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "pipe");
	if (pipe2(done, O_CLOEXEC) < 0) {
		close(go[0]);
		close(go[1]);
		return ib_error_set_os(IB_LAYER_UTIL, "pipe");
	}
	pid_t self = getpid();
	pid_t c = fork();
	if (c < 0) {
		int err = errno;
		close(go[0]);
		close(go[1]);
		close(done[0]);
		close(done[1]);
		errno = err;
		return ib_error_set_os(IB_LAYER_UTIL, "fork");
	}
	if (c == 0) {
		close(go[1]);
		close(done[0]);
		mapper(self, go[0], done[1], uid, gid, user[0] ? user : NULL);
	}
	close(go[0]);
	close(done[1]);
	int rc = 0, err = 0;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		err = errno;
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_UTIL,
				   "enter a user namespace (rootless): unshare(CLONE_NEWUSER): %s; the host "
				   "refuses unprivileged user namespaces (user.max_user_namespaces, a seccomp "
				   "or AppArmor profile): allow them, or run as root",
				   strerror(err));
	} else if (write(go[1], "x", 1) != 1) {
		rc = ib_error_set_os(IB_LAYER_UTIL, "signal the id mapper");
	}
	close(go[1]);
	int res[2] = { -EIO, 0 };
	ssize_t got = rc == 0 ? read(done[0], res, sizeof res) : 0;
	close(done[0]);
	int ws;
	while (waitpid(c, &ws, 0) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return rc;
	if (got != (ssize_t)sizeof res || res[0] != 0) {
		const char *which = res[1] == 2 ? "gid" : "uid";
		if (res[0] < 0)
			return ib_error_setc(IB_ERROR, IB_LAYER_UTIL,
					     "enter a user namespace (rootless): write the %s map: %s", which,
					     strerror(-res[0]));
		return ib_error_setc(IB_ERROR, IB_LAYER_UTIL,
				     "enter a user namespace (rootless): new%smap failed (exit %d): check "
				     "/etc/sub%s for `%s` and that new%smap is setuid root (this process is "
				     "left in a namespace without ids: end it)",
				     which, res[0], which, user[0] ? user : "?", which);
	}
	/* now root in the namespace: drop the supplementary groups (unmapped there) where we may */
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "enter a user namespace (rootless): become root there");
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		return ib_error_set_os(IB_LAYER_UTIL, "enter a user namespace (rootless): setgroups");
	__atomic_store_n(&userns_cached, 1, __ATOMIC_RELEASE);
	spin_lock();
	entered = 1;
	host_uid_value = uid;
	host_gid_value = gid;
	spin_unlock();
	return 0;
}

int ib_rootless_active(void)
{
	spin_lock();
	int e = entered;
	spin_unlock();
	return e;
}

int ib_rootless__host_ids(uid_t *uid, gid_t *gid)
{
	spin_lock();
	int e = entered;
	if (e) {
		if (uid)
			*uid = host_uid_value;
		if (gid)
			*gid = host_gid_value;
	}
	spin_unlock();
	return e;
}

/* The map of /proc/self/{uid,gid}_map as ranges of inside ids (start, count). */
static size_t read_map(const char *file, id_range *out, size_t max, int *identity)
{
	*identity = 0;
	FILE *f = fopen(file, "re");
	if (!f) {
		*identity = 1; /* no user namespaces in this kernel */
		return 0;
	}
	size_t n = 0;
	unsigned long in, outside, count;
	while (n < max && fscanf(f, "%lu %lu %lu", &in, &outside, &count) == 3) {
		if (in == 0 && outside == 0 && count == 4294967295ul)
			*identity = 1;
		out[n].start = in;
		out[n].count = count;
		n++;
	}
	fclose(f);
	return n;
}

int ib_userns_active(void)
{
	int c = __atomic_load_n(&userns_cached, __ATOMIC_ACQUIRE);
	if (c >= 0)
		return c;
	id_range r[MAX_RANGES + 2];
	int identity;
	read_map("/proc/self/uid_map", r, MAX_RANGES + 2, &identity);
	__atomic_store_n(&userns_cached, !identity, __ATOMIC_RELEASE);
	return !identity;
}

int ib_userns_id_mapped(int group, unsigned long id)
{
	id_range r[MAX_RANGES + 2];
	int identity;
	size_t n = read_map(group ? "/proc/self/gid_map" : "/proc/self/uid_map", r, MAX_RANGES + 2, &identity);
	if (identity)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (id >= r[i].start && id - r[i].start < r[i].count)
			return 1;
	return 0;
}

int ib_userns_describe(ib_buf *out, int group)
{
	id_range r[MAX_RANGES + 2];
	int identity;
	size_t n = read_map(group ? "/proc/self/gid_map" : "/proc/self/uid_map", r, MAX_RANGES + 2, &identity);
	unsigned long top = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i].start + r[i].count > top)
			top = r[i].start + r[i].count;
	const char *kind = group ? "gid" : "uid";
	if (n == 1 && r[0].start == 0 && r[0].count == 1)
		return ib_buf_printf(out,
				     "rootless with a single %s mapped (only %s 0, the caller's own): add a "
				     "subordinate range for the user to /etc/sub%s (usermod --add-sub%ss) and "
				     "install newuidmap/newgidmap (Debian's uidmap)",
				     kind, kind, kind, kind);
	return ib_buf_printf(out, "rootless: only %ss 0-%lu are mapped (the user's range in /etc/sub%s)",
			     kind, top ? top - 1 : 0, kind);
}
