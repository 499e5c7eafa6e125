/*
 * Layer apply with an escape oracle: the input is a layer (tar, maybe
 * gzip/zstd), applied into an empty root that holds links out of it —
 * relative and absolute symlinks to a sentinel tree beside the root, a
 * symlink to `..`, a hard link to a sentinel file. After each apply the
 * sentinel must be exactly as it was (entries, types, modes, owners, sizes,
 * mtimes, contents, link targets, xattrs): any change is an escape and
 * aborts, which libFuzzer reports as a crash.
 *
 * As root, the process first moves to a private mount namespace where
 * everything is read-only but the scratch directory (a small tmpfs) and the
 * working directory (libFuzzer's corpus and artifacts): a write that
 * escapes further than the sentinel fails with EROFS, which the target also
 * treats as an escape, and cannot touch the machine.
 */
#include "fuzz.h"
#include "imagebuild/snapshot.h"
#include "imagebuild/errors.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static char scratch[64];
static char root[sizeof scratch + 8];
static int sandboxed;
static ib_buf sentinel = IB_BUF_INIT;

static int setattr(const char *path, unsigned int flags, uint64_t set, uint64_t clr)
{
	struct mount_attr a;
	memset(&a, 0, sizeof a);
	a.attr_set = set;
	a.attr_clr = clr;
	return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &a, sizeof a);
}

/*
 * Everything read-only but the working directory and a new tmpfs on
 * /dev/shm (private to this process, gone with it) that holds `scratch`.
 */
static int sandbox(void)
{
	char cwd[4096];
	if (geteuid() != 0 || !getcwd(cwd, sizeof cwd))
		return -1;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	if (mount("fuzz", "/dev/shm", "tmpfs", MS_NOSUID, "size=64m,mode=0755") < 0)
		return -1;
	snprintf(scratch, sizeof scratch, "/dev/shm/ib-fuzz-apply");
	if (mkdir(scratch, 0755) < 0)
		return -1;
	if (mount(cwd, cwd, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -1;
	/* read-only everywhere, then writable again where we write */
	if (setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) < 0)
		return -1;
	if (setattr("/dev/shm", 0, 0, MOUNT_ATTR_RDONLY) < 0 || setattr(cwd, 0, 0, MOUNT_ATTR_RDONLY) < 0)
		return -1;
	return 0;
}

static void put(const char *rel, const char *content)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", scratch, rel);
	IB_FUZZ_CHECK(ib_atomic_write(p, content, strlen(content), 0644) == 0);
}

static void mkdir_in(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", scratch, rel);
	IB_FUZZ_CHECK(mkdir(p, 0755) == 0);
}

static void symlink_in(const char *target, const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", scratch, rel);
	IB_FUZZ_CHECK(symlink(target, p) == 0);
}

/*
 * One line per entry of the scratch directory except the root: what an
 * escape could change. Not ctime or link counts: the root's hard link to
 * `outside/victim` changes those, legitimately, when it is replaced.
 */
static void describe(ib_buf *out, int dfd, const char *rel, int top)
{
	DIR *d = fdopendir(dfd);
	IB_FUZZ_CHECK(d != NULL);
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || (top && !strcmp(de->d_name, "root")))
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		IB_FUZZ_CHECK(names && (names[n] = strdup(de->d_name)));
		n++;
	}
	/* sorted, so the description does not depend on readdir's order */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		IB_FUZZ_CHECK(fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) == 0);
		ib_buf_printf(out, "%s/%s %o %u:%u %lld %lld.%09ld", rel, names[i], (unsigned)st.st_mode,
			      (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size,
			      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		char proc[128], xl[1024];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d/%s", dirfd(d), names[i]);
		ssize_t xn = llistxattr(proc, xl, sizeof xl);
		ib_buf_printf(out, " x%zd:", xn);
		for (ssize_t k = 0; k > -1 && k < xn; k += (ssize_t)strlen(xl + k) + 1)
			ib_buf_printf(out, "%s,", xl + k);
		if (S_ISLNK(st.st_mode)) {
			char t[4096];
			ssize_t tn = readlinkat(dirfd(d), names[i], t, sizeof t - 1);
			IB_FUZZ_CHECK(tn >= 0);
			t[tn] = '\0';
			ib_buf_printf(out, " -> %s", t);
		} else if (S_ISREG(st.st_mode)) {
			int fd = openat(dirfd(d), names[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			IB_FUZZ_CHECK(fd >= 0);
			ib_buf b = IB_BUF_INIT;
			IB_FUZZ_CHECK(ib_read_fd(&b, fd, 1 << 20, names[i]) == 0);
			close(fd);
			ib_buf_printf(out, " [");
			ib_buf_put(out, b.ptr ? b.ptr : "", b.size);
			ib_buf_printf(out, "]");
			ib_buf_dispose(&b);
		}
		ib_buf_putc(out, '\n');
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			IB_FUZZ_CHECK(sub >= 0);
			char r[512];
			snprintf(r, sizeof r, "%s/%s", rel, names[i]);
			describe(out, sub, r, 0);
		}
		free(names[i]);
	}
	free(names);
	closedir(d);
}

static void describe_all(ib_buf *out)
{
	ib_buf_clear(out);
	int fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	IB_FUZZ_CHECK(fd >= 0);
	describe(out, fd, "", 1);
}

/* An empty root with its links out. */
static void make_root(void)
{
	char p[512];
	IB_FUZZ_CHECK(mkdir(root, 0755) == 0);
	symlink_in("../outside", "root/up");
	symlink_in("../outside/file", "root/upfile");
	symlink_in("..", "root/dotdot");
	snprintf(p, sizeof p, "%s/outside", scratch);
	symlink_in(p, "root/abs");
	snprintf(p, sizeof p, "%s/outside/file", scratch);
	symlink_in(p, "root/absfile");
	symlink_in("/", "root/slash");
	mkdir_in("root/etc");
	char from[512], to[512];
	snprintf(from, sizeof from, "%s/outside/victim", scratch);
	snprintf(to, sizeof to, "%s/root/hard", scratch);
	IB_FUZZ_CHECK(link(from, to) == 0);
}

static void cleanup(void)
{
	ib_buf_dispose(&sentinel);
	if (!sandboxed)
		(void)ib_rm_rf(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sandboxed = sandbox() == 0;
	if (!sandboxed) {
		fprintf(stderr, "layer-apply: no read-only sandbox (%s); the sentinel alone checks escapes\n",
			geteuid() ? "not root" : strerror(errno));
		snprintf(scratch, sizeof scratch, "/tmp/ib-fuzz-apply.XXXXXX");
		if (!mkdtemp(scratch))
			abort();
	}
	snprintf(root, sizeof root, "%s/root", scratch);
	mkdir_in("outside");
	mkdir_in("outside/dir");
	put("outside/file", "sentinel file\n");
	put("outside/dir/f2", "another\n");
	put("outside/victim", "hard-linked into the root\n");
	put("beside", "next to the root\n");
	symlink_in("outside/file", "link-beside");
	describe_all(&sentinel);
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	make_root();
	int tfd = memfd_create("layer", MFD_CLOEXEC);
	IB_FUZZ_CHECK(tfd >= 0 && ib_write_all(tfd, data, size) == 0 && lseek(tfd, 0, SEEK_SET) == 0);
	int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	IB_FUZZ_CHECK(rfd >= 0);
	/* both whiteout modes: an odd-sized input is one overlayfs layer */
	int rc = ib_snapshot_apply_tar(rfd, tfd, (size & 1) ? IB_WHITEOUT_OVERLAY : IB_WHITEOUT_DELETE, "fuzz");
	close(rfd);
	close(tfd);
	/* by errno, not by the message: an entry's name may read "Read-only file system" */
	if (rc < 0 && sandboxed && ib_error_errno() == EROFS) {
		fprintf(stderr, "layer-apply: a write outside the root: %s\n", ib_error_last()->message);
		abort();
	}
	ib_buf now = IB_BUF_INIT;
	describe_all(&now);
	if (now.size != sentinel.size || memcmp(now.ptr, sentinel.ptr, now.size)) {
		fprintf(stderr, "layer-apply: something outside the root changed.\nbefore:\n%s\nafter:\n%s\n",
			sentinel.ptr, now.ptr);
		abort();
	}
	ib_buf_dispose(&now);
	IB_FUZZ_CHECK(ib_rm_rf(root) == 0);
	return 0;
}
