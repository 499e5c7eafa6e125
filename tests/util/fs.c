#include "tests.h"
#include "util/fs.h"
#include "util/buf.h"
#include "util/lock.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
	char *p = malloc(strlen(a) + strlen(b) + 2);
	sprintf(p, "%s/%s", a, b);
	return p;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void atomic_write_replaces(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("fs");
	char *p = join(dir, "file");
	assert_int_equal(ib_atomic_write(p, "one", 3, 0600), 0);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_read_file(&b, p), 0);
	assert_string_equal(b.ptr, "one");
	struct stat st;
	stat(p, &st);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ib_atomic_write(p, "two!", 4, 0644), 0);
	ib_read_file(&b, p);
	assert_string_equal(b.ptr, "two!");
	assert_int_equal(count_entries(dir), 1); /* no temp file left */
	ib_buf_dispose(&b);
	ib_rm_rf(dir);
	free(p);
	free(dir);
}

static const char *crash_at;
static void crash_hook(const char *step, const char *path)
{
	(void)path;
	if (crash_at && strcmp(step, crash_at) == 0)
		raise(SIGKILL);
}

/* A writer killed at any step leaves either the old or the new content, never a mix. */
static void atomic_write_survives_kill(void **state)
{
	(void)state;
	static const char *steps[] = {"open", "write", "fsync", "rename", "done"};
	char *dir = ib_test_tmpdir("fskill");
	char *p = join(dir, "file");
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(ib_atomic_write(p, "old", 3, 0644), 0);
		pid_t pid = fork();
		if (pid == 0) {
			crash_at = steps[i];
			ib_fs_set_hook(crash_hook);
			ib_atomic_write(p, "new content", 11, 0644);
			_exit(0);
		}
		int status;
		waitpid(pid, &status, 0);
		assert_true(WIFSIGNALED(status));
		ib_buf b = IB_BUF_INIT;
		assert_int_equal(ib_read_file(&b, p), 0);
		if (i < 4)
			assert_string_equal(b.ptr, "old");
		else
			assert_string_equal(b.ptr, "new content");
		ib_buf_dispose(&b);
	}
	ib_rm_rf(dir);
	free(p);
	free(dir);
}

static void atomic_abort_leaves_nothing(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("fsabort");
	char *p = join(dir, "f");
	ib_atomic_file af;
	assert_int_equal(ib_atomic_open(&af, p, 0644), 0);
	ib_write_all(af.fd, "x", 1);
	ib_atomic_abort(&af);
	ib_atomic_abort(&af);
	assert_int_equal(count_entries(dir), 0);
	ib_assert_error_contains(ib_atomic_write("/nonexistent-dir/f", "x", 1, 0644), "/nonexistent-dir/f");
	ib_rm_rf(dir);
	free(p);
	free(dir);
}

static void mkdir_p_and_rm_rf(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("mk");
	char *deep = join(dir, "a/b/c");
	assert_int_equal(ib_mkdir_p(deep, 0755), 0);
	assert_int_equal(ib_mkdir_p(deep, 0755), 0);
	char *f = join(deep, "f");
	ib_atomic_write(f, "x", 1, 0644);
	ib_assert_error_contains(ib_mkdir_p(f, 0755), "not a directory");
	/* rm -rf does not follow a symlink out */
	char *outside = ib_test_tmpdir("outside");
	char *keep = join(outside, "keep");
	ib_atomic_write(keep, "k", 1, 0644);
	char *link = join(dir, "a/link");
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(ib_rm_rf(dir), 0);
	assert_false(ib_path_exists(dir));
	assert_true(ib_path_exists(keep));
	assert_int_equal(ib_rm_rf(dir), 0); /* already gone is fine */
	ib_rm_rf(outside);
	free(deep); free(f); free(outside); free(keep); free(link); free(dir);
}

static void open_in_root_cannot_escape(void **state)
{
	(void)state;
	char *root = ib_test_tmpdir("root");
	char *outside = ib_test_tmpdir("secret");
	char *secret = join(outside, "secret");
	ib_atomic_write(secret, "host", 4, 0644);
	char *inside = join(root, "etc");
	mkdir(inside, 0755);
	char *inner = join(root, "etc/secret");
	ib_atomic_write(inner, "container", 9, 0644);
	char *l1 = join(root, "abs");
	symlink(outside, l1);          /* absolute symlink to the host dir */
	char *l2 = join(root, "rel");
	symlink("../../../../../../..", l2); /* climbs */
	int rootfd = open(root, O_RDONLY | O_DIRECTORY);
	char buf[32];
	/* abs -> <outside> is resolved inside root: <root><outside>/secret does not exist */
	char q[4200];
	snprintf(q, sizeof q, "abs/secret");
	int fd = ib_open_in_root(rootfd, q, O_RDONLY, 0);
	assert_true(fd < 0);
	/* rel/../etc/secret is clamped at the root: reads the container's file */
	fd = ib_open_in_root(rootfd, "rel/etc/secret", O_RDONLY, 0);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof buf);
	assert_int_equal(n, 9);
	close(fd);
	fd = ib_open_in_root(rootfd, "/../../etc/secret", O_RDONLY, 0);
	assert_true(fd >= 0);
	close(fd);
	/* create through a symlink lands inside */
	fd = ib_open_in_root(rootfd, "rel/newfile", O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	char *nf = join(root, "newfile");
	assert_true(ib_path_exists(nf));
	close(rootfd);
	ib_rm_rf(root);
	ib_rm_rf(outside);
	free(root); free(outside); free(secret); free(inside); free(inner); free(l1); free(l2); free(nf);
}

static void lock_excludes(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("lock");
	char *p = join(dir, "lock");
	ib_lock a = IB_LOCK_INIT;
	assert_int_equal(ib_lock_acquire(&a, p, IB_LOCK_EXCLUSIVE), 0);
	pid_t pid = fork();
	if (pid == 0) {
		ib_lock b = IB_LOCK_INIT;
		int rc = ib_lock_acquire(&b, p, IB_LOCK_EXCLUSIVE | IB_LOCK_NOWAIT);
		_exit(rc == IB_EEXISTS ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	ib_lock_release(&a);
	ib_lock_release(&a);
	pid = fork();
	if (pid == 0) {
		ib_lock b = IB_LOCK_INIT;
		int rc = ib_lock_acquire(&b, p, IB_LOCK_EXCLUSIVE | IB_LOCK_NOWAIT);
		_exit(rc == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	ib_rm_rf(dir);
	free(p);
	free(dir);
}

static void read_fd_with_limit(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "0123456789", 10), 10);
	close(p[1]);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_read_fd(&b, p[0], 0, "pipe"), 0);
	assert_string_equal(b.ptr, "0123456789");
	close(p[0]);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "0123456789", 10), 10);
	close(p[1]);
	ib_assert_error_contains(ib_read_fd(&b, p[0], 4, "small.json"), "`small.json` is larger than 4 bytes");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	close(p[0]);
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(ib_read_fd(&b, p[0], 0, "empty"), 0);
	assert_non_null(b.ptr);
	assert_int_equal(b.size, 0);
	close(p[0]);
	/* a regular file is read in place at its stat size: exactly max is accepted, one byte more refused,
	   a file larger than one read (200 KiB) comes whole */
	char path[] = "/tmp/ibtest-readfd-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(ib_read_fd(&b, fd, 10, "ten"), 0);
	assert_string_equal(b.ptr, "0123456789");
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	ib_assert_error_contains(ib_read_fd(&b, fd, 9, "ten"), "`ten` is larger than 9 bytes");
	size_t big = 200 * 1024;
	char *data = malloc(big);
	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, data, big, 0), (ssize_t)big);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(ib_read_fd(&b, fd, 0, "big"), 0);
	assert_int_equal(b.size, big);
	assert_memory_equal(b.ptr, data, big);
	assert_int_equal(b.ptr[b.size], '\0');
	free(data);
	close(fd);
	unlink(path);
	ib_buf_dispose(&b);
}

static void tmpdir_new_is_private(void **state)
{
	(void)state;
	char *base = ib_test_tmpdir("tmpbase");
	char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	setenv("TMPDIR", base, 1);
	char *d = ib_tmpdir_new("tag");
	assert_non_null(d);
	assert_int_equal(strncmp(d, base, strlen(base)), 0);
	assert_non_null(strstr(d, "/tag-"));
	struct stat st;
	assert_int_equal(stat(d, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	setenv("TMPDIR", "/nonexistent-base", 1);
	assert_null(ib_tmpdir_new("tag"));
	assert_non_null(strstr(ib_error_last()->message, "/nonexistent-base/tag-"));
	if (old)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	free(old);
	free(d);
	ib_rm_rf(base);
	free(base);
}

/* Only regular files are read: a FIFO, a device (also through a symlink), a directory are refused at once. */
static void read_regular_file_refuses_others(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("regular");
	char *f = join(dir, "file"), *fifo = join(dir, "fifo"), *zero = join(dir, "zero");
	char *big = join(dir, "big"), *missing = join(dir, "missing");
	ib_atomic_write(f, "FROM x\n", 7, 0644);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(symlink("/dev/zero", zero), 0);
	int fd = open(big, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	alarm(5); /* a FIFO with no writer must not block */
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_read_regular_file(&b, f, 1024), 0);
	assert_string_equal(b.ptr, "FROM x\n");
	ib_assert_error_contains(ib_read_regular_file(&b, fifo, 1024), "is a FIFO, not a regular file");
	ib_assert_error_contains(ib_read_regular_file(&b, zero, 1024), "is a character device");
	ib_assert_error_contains(ib_read_regular_file(&b, dir, 1024), "is a directory");
	ib_assert_error_contains(ib_read_regular_file(&b, big, 1024), "larger than 1024 bytes");
	assert_int_equal(ib_read_regular_file(&b, missing, 1024), IB_ENOTFOUND);
	alarm(0);
	ib_buf_dispose(&b);
	ib_rm_rf(dir);
	free(f); free(fifo); free(zero); free(big); free(missing); free(dir);
}

/* Inside a directory, every link is resolved in it: out of it is a missing file, not the outside one. */
static void read_regular_file_in_stays_inside(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("regular-in");
	char *ctx = join(dir, "ctx"), *outside = join(dir, "outside"), *sub = join(ctx, "sub");
	char *real = join(sub, "real"), *up = join(ctx, "up"), *abs = join(ctx, "abs"), *rel = join(ctx, "rel");
	char *fifo = join(ctx, "fifo");
	assert_int_equal(ib_mkdir_p(sub, 0755), 0);
	ib_atomic_write(outside, "SECRET\n", 7, 0600);
	ib_atomic_write(real, "FROM y\n", 7, 0644);
	assert_int_equal(symlink("../outside", up), 0);
	assert_int_equal(symlink("/sub/real", abs), 0);
	assert_int_equal(symlink("sub/real", rel), 0);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	alarm(5);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_read_regular_file_in(&b, ctx, "rel", 1024), 0);
	assert_string_equal(b.ptr, "FROM y\n");
	assert_int_equal(ib_read_regular_file_in(&b, ctx, "abs", 1024), 0); /* "/" is ctx */
	assert_string_equal(b.ptr, "FROM y\n");
	assert_int_equal(ib_read_regular_file_in(&b, ctx, "up", 1024), IB_ENOTFOUND);
	ib_assert_error_contains(ib_read_regular_file_in(&b, ctx, "fifo", 1024), "is a FIFO, not a regular file");
	ib_assert_error_contains(ib_read_regular_file_in(&b, ctx, "sub", 1024), "is a directory");
	ib_assert_error_contains(ib_read_regular_file_in(&b, ctx, "sub/real", 3), "larger than 3 bytes");
	alarm(0);
	ib_buf_dispose(&b);
	ib_rm_rf(dir);
	free(ctx); free(outside); free(sub); free(real); free(up); free(abs); free(rel); free(fifo); free(dir);
}

DEFINE_GROUP(fs_tests,
	cmocka_unit_test(read_regular_file_refuses_others),
	cmocka_unit_test(read_regular_file_in_stays_inside),
	cmocka_unit_test(tmpdir_new_is_private),
	cmocka_unit_test(read_fd_with_limit),
	cmocka_unit_test(atomic_write_replaces),
	cmocka_unit_test(atomic_write_survives_kill),
	cmocka_unit_test(atomic_abort_leaves_nothing),
	cmocka_unit_test(mkdir_p_and_rm_rf),
	cmocka_unit_test(open_in_root_cannot_escape),
	cmocka_unit_test(lock_excludes))
