#include "tests.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/fs.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	char *ctx, *root, *outside;
	int ctxfd, rootfd;
} fixture;

static void put(const char *dir, const char *rel, const char *content, mode_t mode)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	ib_mkdir_p(p, 0755);
	*slash = '/';
	assert_int_equal(ib_atomic_write(p, content, strlen(content), mode), 0);
	chmod(p, mode);
}

static char *slurp(const char *dir, const char *rel)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	ib_buf b = IB_BUF_INIT;
	if (ib_read_file(&b, p) < 0)
		return NULL;
	return ib_buf_detach(&b);
}

static struct stat lst(const char *dir, const char *rel)
{
	char p[4200];
	struct stat st;
	memset(&st, 0, sizeof st);
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	lstat(p, &st);
	return st;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->ctx = ib_test_tmpdir("ctx");
	f->root = ib_test_tmpdir("rootfs");
	f->outside = ib_test_tmpdir("outside");
	put(f->ctx, "app/main.sh", "#!/bin/sh\necho hi\n", 0755);
	put(f->ctx, "app/lib/util.txt", "util", 0640);
	put(f->ctx, "README.txt", "readme", 0644);
	put(f->ctx, "notes.txt", "notes", 0600);
	put(f->outside, "secret", "host secret", 0644);
	char p[4200], q[4200];
	snprintf(p, sizeof p, "%s/app/link", f->ctx);
	symlink("main.sh", p);
	snprintf(p, sizeof p, "%s/app/hard", f->ctx);
	snprintf(q, sizeof q, "%s/app/main.sh", f->ctx);
	link(q, p);
	snprintf(p, sizeof p, "%s/toreadme", f->ctx);
	symlink("README.txt", p);
	snprintf(p, sizeof p, "%s/escape-abs", f->ctx);
	snprintf(q, sizeof q, "%s/secret", f->outside);
	symlink(q, p);
	snprintf(p, sizeof p, "%s/escape-rel", f->ctx);
	symlink("../../../../../../../../../../etc/passwd", p);
	f->ctxfd = open(f->ctx, O_RDONLY | O_DIRECTORY);
	f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	close(f->ctxfd);
	close(f->rootfd);
	ib_rm_rf(f->ctx);
	ib_rm_rf(f->root);
	ib_rm_rf(f->outside);
	free(f->ctx);
	free(f->root);
	free(f->outside);
	free(f);
	return 0;
}

static ib_build__copy_opts root_owned(void)
{
	ib_build__copy_opts o;
	memset(&o, 0, sizeof o);
	o.set_owner = 1;
	o.uid = getuid();
	o.gid = getgid();
	return o;
}

static void directory_contents_are_copied(void **state)
{
	fixture *f = *state;
	ib_build__copy_opts o = root_owned();
	assert_int_equal(ib_build__copy(f->ctxfd, "app", f->rootfd, "/srv/app", 1, &o), 0);
	char *s = slurp(f->root, "srv/app/main.sh");
	assert_string_equal(s, "#!/bin/sh\necho hi\n");
	free(s);
	assert_int_equal(lst(f->root, "srv/app/main.sh").st_mode & 07777, 0755);
	assert_int_equal(lst(f->root, "srv/app/lib/util.txt").st_mode & 07777, 0640);
	/* the directory itself is not nested: no srv/app/app */
	assert_int_equal(lst(f->root, "srv/app/app").st_mode, 0);
	/* symlinks inside a copied directory are kept */
	assert_true(S_ISLNK(lst(f->root, "srv/app/link").st_mode));
	/* hard links stay hard links */
	assert_int_equal(lst(f->root, "srv/app/hard").st_ino, lst(f->root, "srv/app/main.sh").st_ino);
	/* mtimes are kept */
	assert_int_equal(lst(f->root, "srv/app/main.sh").st_mtime, lst(f->ctx, "app/main.sh").st_mtime);
	/* created parents are 0755 */
	assert_int_equal(lst(f->root, "srv").st_mode & 07777, 0755);
}

/*
 * A COPY's big files are remembered with where they came from (copy.h):
 * the commit's diff reads them there. Small ones are not, nor one changed
 * just before its copy; the source is given only for the copy it was copied
 * to (inode, size, mtime), and not once it changed after the copy.
 */
static void big_copies_remembered(void **state)
{
	fixture *f = *state;
	size_t len = 9u << 20;
	char *body = malloc(len);
	assert_non_null(body);
	for (size_t i = 0; i < len; i++)
		body[i] = (char)(i * 7 + 3);
	char p[4200];
	snprintf(p, sizeof p, "%s/big.bin", f->ctx);
	int w = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(w >= 0);
	assert_int_equal(write(w, body, len), (ssize_t)len);
	close(w);
	/* just written: not settled (its timestamps could hide a change), not remembered */
	ib_build__copied_list l = { NULL, 0, 0, IB_BUILD__COPIED_SETTLE_NS };
	ib_build__copy_opts o = root_owned();
	o.copied = ib_build__copied_add;
	o.copied_payload = &l;
	assert_int_equal(ib_build__copy(f->ctxfd, "big.bin", f->rootfd, "/fresh/", 1, &o), 0);
	assert_int_equal(l.n, 0);
	/* (the rest without the wait) */
	l.settle_ns = -1000000000LL;
	assert_int_equal(ib_build__copy(f->ctxfd, "big.bin", f->rootfd, "/data/", 1, &o), 0);
	assert_int_equal(ib_build__copy(f->ctxfd, "README.txt", f->rootfd, "/data/", 1, &o), 0);
	assert_int_equal(l.n, 1);
	struct stat cst = lst(f->root, "data/big.bin");
	ib_diff_file file = { "data/big.bin", (uint64_t)cst.st_ino, (uint64_t)cst.st_size,
			      (int64_t)cst.st_mtim.tv_sec, cst.st_mtim.tv_nsec };
	int fd = ib_build__copied_source(&file, &l);
	assert_true(fd >= 0);
	char *back = malloc(len);
	assert_int_equal(pread(fd, back, len, 0), (ssize_t)len);
	assert_memory_equal(back, body, len);
	close(fd);
	/* another file (mtime, inode): none */
	file.mtime_nsec ^= 1;
	assert_int_equal(ib_build__copied_source(&file, &l), -1);
	file.mtime_nsec ^= 1;
	file.ino++;
	assert_int_equal(ib_build__copied_source(&file, &l), -1);
	file.ino--;
	/* the source changed since the copy: the copy's own bytes */
	usleep(10000);
	w = open(p, O_WRONLY | O_CLOEXEC);
	assert_int_equal(pwrite(w, "Z", 1, 0), 1);
	close(w);
	assert_int_equal(ib_build__copied_source(&file, &l), -1);
	ib_build__copied_free(&l);
	assert_int_equal(l.n, 0);
	free(body);
	free(back);
}

/*
 * Many files of one directory: each arrives whole with its mode, the
 * directory's own times are set after them, an existing file in the way is
 * replaced, and a directory where a file goes is an error that names it.
 */
static void many_files_copied(void **state)
{
	fixture *f = *state;
	char rel[64], body[64];
	for (int i = 0; i < 200; i++) {
		snprintf(rel, sizeof rel, "many/f%03d", i);
		snprintf(body, sizeof body, "file %d", i);
		put(f->ctx, rel, body, i % 2 ? 0640 : 0755);
	}
	for (int i = 0; i < 40; i++) {
		snprintf(rel, sizeof rel, "many/sub/g%02d", i);
		put(f->ctx, rel, "g", 0644);
	}
	struct timespec ts[2] = { { 1234567, 0 }, { 1234567, 0 } };
	char p[4200];
	snprintf(p, sizeof p, "%s/many/sub", f->ctx);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	put(f->root, "dst/f007", "old", 0600); /* replaced */
	ib_build__copy_opts o = root_owned();
	assert_int_equal(ib_build__copy(f->ctxfd, "many", f->rootfd, "/dst", 1, &o), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(rel, sizeof rel, "dst/f%03d", i);
		snprintf(body, sizeof body, "file %d", i);
		char *got = slurp(f->root, rel);
		assert_non_null(got);
		assert_string_equal(got, body);
		free(got);
		assert_int_equal(lst(f->root, rel).st_mode & 07777, i % 2 ? 0640 : 0755);
	}
	assert_int_equal(lst(f->root, "dst/sub/g39").st_size, 1);
	assert_int_equal(lst(f->root, "dst/sub").st_mtime, 1234567); /* set after its files were made */
	/* a directory where a file goes, late in the listing: the copy fails and says which */
	snprintf(p, sizeof p, "%s/dst2/f150", f->root);
	assert_int_equal(ib_mkdir_p(p, 0755), 0);
	assert_int_equal(ib_build__copy(f->ctxfd, "many", f->rootfd, "/dst2", 1, &o), IB_EEXISTS);
	assert_non_null(strstr(ib_error_last()->message, "many/f150"));
	assert_non_null(strstr(ib_error_last()->message, "over the directory"));
}

/*
 * A tree of many directories (copied in parallel, subtree by subtree, and
 * file by file): every file whole with its mode, every directory's times
 * set after its entries, hard links across subtrees still one inode (and
 * linked to nothing else), an excluded subtree left out, and a failure deep
 * in one subtree is the copy's error, with its code and the path.
 */
static int skip_x(void *payload, const char *rel, int is_dir)
{
	(void)payload;
	(void)is_dir;
	return strstr(rel, "/x") ? IB_WALK_EXCLUDE : IB_WALK_INCLUDE;
}

static void tree_copied_in_parallel(void **state)
{
	fixture *f = *state;
	char rel[96], body[96], p[4200], q[4200];
	struct timespec ts[2] = { { 7654321, 0 }, { 7654321, 0 } };
	for (int d = 0; d < 24; d++) {
		for (int i = 0; i < 30; i++) {
			snprintf(rel, sizeof rel, "tree/d%02d/s%d/f%02d", d, d % 3, i);
			snprintf(body, sizeof body, "d%d f%d", d, i);
			put(f->ctx, rel, body, i % 3 ? 0644 : 0750);
		}
		snprintf(rel, sizeof rel, "tree/d%02d/x", d);
		put(f->ctx, rel, "excluded", 0644);
	}
	/* one inode under three names in three subtrees */
	snprintf(p, sizeof p, "%s/tree/d03/s0/f05", f->ctx);
	snprintf(q, sizeof q, "%s/tree/d17/s2/linked", f->ctx);
	assert_int_equal(link(p, q), 0);
	snprintf(q, sizeof q, "%s/tree/d23/s2/linked", f->ctx);
	assert_int_equal(link(p, q), 0);
	for (int d = 0; d < 24; d++) {
		for (int lvl = 0; lvl < 2; lvl++) {
			snprintf(p, sizeof p, lvl ? "%s/tree/d%02d" : "%s/tree/d%02d/s%d", f->ctx, d, d % 3);
			ts[0].tv_sec = ts[1].tv_sec = 7654321 + d * 10 + lvl;
			assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
		}
	}
	ib_build__copy_opts o = root_owned();
	o.filter = skip_x;
	assert_int_equal(ib_build__copy(f->ctxfd, "tree", f->rootfd, "/t", 1, &o), 0);
	for (int d = 0; d < 24; d++) {
		for (int i = 0; i < 30; i++) {
			snprintf(rel, sizeof rel, "t/d%02d/s%d/f%02d", d, d % 3, i);
			snprintf(body, sizeof body, "d%d f%d", d, i);
			char *got = slurp(f->root, rel);
			assert_non_null(got);
			assert_string_equal(got, body);
			free(got);
			assert_int_equal(lst(f->root, rel).st_mode & 07777, i % 3 ? 0644 : 0750);
		}
		snprintf(rel, sizeof rel, "t/d%02d/x", d);
		assert_int_equal(lst(f->root, rel).st_nlink, 0); /* not there */
		snprintf(rel, sizeof rel, "t/d%02d/s%d", d, d % 3);
		assert_int_equal(lst(f->root, rel).st_mtime, 7654321 + d * 10);
		snprintf(rel, sizeof rel, "t/d%02d", d);
		assert_int_equal(lst(f->root, rel).st_mtime, 7654321 + d * 10 + 1);
	}
	struct stat a = lst(f->root, "t/d03/s0/f05"), b = lst(f->root, "t/d17/s2/linked"),
		    c = lst(f->root, "t/d23/s2/linked");
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_ino, c.st_ino);
	assert_int_equal(a.st_nlink, 3);
	assert_int_not_equal(a.st_ino, lst(f->ctx, "tree/d03/s0/f05").st_ino); /* a copy, not the source */
	/* a directory where a file goes, deep in one subtree: the copy fails and says which */
	snprintf(p, sizeof p, "%s/t2/d19/s1/f29", f->root);
	assert_int_equal(ib_mkdir_p(p, 0755), 0);
	assert_int_equal(ib_build__copy(f->ctxfd, "tree", f->rootfd, "/t2", 1, &o), IB_EEXISTS);
	assert_non_null(strstr(ib_error_last()->message, "tree/d19/s1/f29"));
	assert_non_null(strstr(ib_error_last()->message, "over the directory"));
}

/*
 * A rendezvous in the filter: the first thread asked about an entry inside
 * one of the subtrees chain/a/b/c/dNN waits (10 s at most) until another
 * thread has been asked about an entry inside another of them. A copy made
 * by one thread cannot pass it.
 */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t who;
	int subtree; /* of the first one asked; -1: none yet */
	int met, timed_out;
} rendezvous;

static int meet_in_subtrees(void *payload, const char *rel, int is_dir)
{
	(void)is_dir;
	rendezvous *r = payload;
	const char *at = strstr(rel, "/c/d");
	int sub;
	if (strstr(rel, "/x"))
		return IB_WALK_EXCLUDE;
	if (!at || !strchr(at + 3, '/') || sscanf(at + 4, "%d", &sub) != 1)
		return IB_WALK_INCLUDE; /* not inside a subtree */
	pthread_mutex_lock(&r->mu);
	if (!r->met && r->subtree < 0) {
		r->subtree = sub;
		r->who = pthread_self();
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		while (!r->met)
			if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0) {
				r->timed_out = r->met = 1;
				break;
			}
	} else if (!r->met && sub != r->subtree && !pthread_equal(r->who, pthread_self())) {
		r->met = 1;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return IB_WALK_INCLUDE;
}

/*
 * A tree whose subtrees all lie below one chain of directories (COPY of a
 * context with one src/): the walk goes down the chain itself, queueing the
 * subtrees it meets, and copies the last one; they are copied at once (the
 * rendezvous above), and the copy is the same as ever: contents, times of
 * the chain's directories after their entries, a hard link between a queued
 * subtree and the walk's own, an exclusion in the walk's, and a failure in
 * the walk's subtree named with its path and code.
 */
static void chain_copied_in_parallel(void **state)
{
	fixture *f = *state;
	char rel[96], body[96], p[4200], q[4200];
	for (int d = 0; d < 4; d++) {
		for (int i = 0; i < 20; i++) {
			snprintf(rel, sizeof rel, "chain/a/b/c/d%02d/s/f%02d", d, i);
			snprintf(body, sizeof body, "d%d f%d", d, i);
			put(f->ctx, rel, body, 0644);
		}
		snprintf(rel, sizeof rel, "chain/a/b/c/d%02d/x", d);
		put(f->ctx, rel, "excluded", 0644);
	}
	snprintf(p, sizeof p, "%s/chain/a/b/c/d00/s/f03", f->ctx);
	snprintf(q, sizeof q, "%s/chain/a/b/c/d03/s/linked", f->ctx);
	assert_int_equal(link(p, q), 0);
	const char *chain[] = { "chain/a/b/c", "chain/a/b", "chain/a" };
	for (int k = 0; k < 3; k++) {
		struct timespec ts[2] = { { 7000000 + k, 0 }, { 7000000 + k, 0 } };
		snprintf(p, sizeof p, "%s/%s", f->ctx, chain[k]);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}
	rendezvous r = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, pthread_self(), -1, 0, 0 };
	ib_build__copy_opts o = root_owned();
	o.filter = skip_x;
	int cores = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	if (cores) {
		o.filter = meet_in_subtrees;
		o.filter_payload = &r;
	} else {
		print_message("one core: no pool, the subtrees' rendezvous is not checked\n");
	}
	assert_int_equal(ib_build__copy(f->ctxfd, "chain", f->rootfd, "/t", 1, &o), 0);
	if (cores) {
		assert_true(r.met);
		assert_false(r.timed_out); /* one thread copied them all */
	}
	for (int d = 0; d < 4; d++) {
		for (int i = 0; i < 20; i++) {
			snprintf(rel, sizeof rel, "t/a/b/c/d%02d/s/f%02d", d, i);
			snprintf(body, sizeof body, "d%d f%d", d, i);
			char *got = slurp(f->root, rel);
			assert_non_null(got);
			assert_string_equal(got, body);
			free(got);
		}
		snprintf(rel, sizeof rel, "t/a/b/c/d%02d/x", d);
		assert_int_equal(lst(f->root, rel).st_nlink, 0); /* not there */
	}
	assert_int_equal(lst(f->root, "t/a/b/c").st_mtime, 7000000);
	assert_int_equal(lst(f->root, "t/a/b").st_mtime, 7000001);
	assert_int_equal(lst(f->root, "t/a").st_mtime, 7000002);
	struct stat a = lst(f->root, "t/a/b/c/d00/s/f03"), b = lst(f->root, "t/a/b/c/d03/s/linked");
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	/* a directory where a file goes, in the last subtree (the walk's own): the copy fails and says which */
	snprintf(p, sizeof p, "%s/t2/a/b/c/d03/s/f11", f->root);
	assert_int_equal(ib_mkdir_p(p, 0755), 0);
	o.filter = skip_x;
	o.filter_payload = NULL;
	assert_int_equal(ib_build__copy(f->ctxfd, "chain", f->rootfd, "/t2", 1, &o), IB_EEXISTS);
	assert_non_null(strstr(ib_error_last()->message, "chain/a/b/c/d03/s/f11"));
	assert_non_null(strstr(ib_error_last()->message, "over the directory"));
}

static void named_symlink_is_followed(void **state)
{
	fixture *f = *state;
	ib_build__copy_opts o = root_owned();
	assert_int_equal(ib_build__copy(f->ctxfd, "toreadme", f->rootfd, "/dst/", 1, &o), 0);
	struct stat st = lst(f->root, "dst/toreadme");
	assert_true(S_ISREG(st.st_mode));
	char *s = slurp(f->root, "dst/toreadme");
	assert_string_equal(s, "readme");
	free(s);
	/* file to an explicit file name */
	assert_int_equal(ib_build__copy(f->ctxfd, "notes.txt", f->rootfd, "/etc/app.conf", 0, &o), 0);
	s = slurp(f->root, "etc/app.conf");
	assert_string_equal(s, "notes");
	free(s);
	assert_int_equal(lst(f->root, "etc/app.conf").st_mode & 07777, 0600);
}

static void sources_cannot_leave_the_context(void **state)
{
	fixture *f = *state;
	ib_build__copy_opts o = root_owned();
	/* an absolute symlink resolves inside the context, where there is nothing */
	assert_true(ib_build__copy(f->ctxfd, "escape-abs", f->rootfd, "/x", 0, &o) < 0);
	assert_true(ib_build__copy(f->ctxfd, "escape-rel", f->rootfd, "/x", 0, &o) < 0);
	/* ".." is scoped: ../../README.txt is README.txt of the context */
	assert_int_equal(ib_build__copy(f->ctxfd, "../../README.txt", f->rootfd, "/r", 0, &o), 0);
	char *s = slurp(f->root, "r");
	assert_string_equal(s, "readme");
	free(s);
	assert_int_equal(lst(f->root, "x").st_mode, 0);
}

static void destinations_cannot_leave_the_rootfs(void **state)
{
	fixture *f = *state;
	ib_build__copy_opts o = root_owned();
	char p[4200];
	/* the image has /evil -> <outside> (absolute) and /up -> ../../../.. */
	snprintf(p, sizeof p, "%s/evil", f->root);
	symlink(f->outside, p);
	snprintf(p, sizeof p, "%s/up", f->root);
	symlink("../../../../../../..", p);
	assert_int_equal(ib_build__copy(f->ctxfd, "README.txt", f->rootfd, "/evil/secret", 0, &o), 0);
	assert_int_equal(ib_build__copy(f->ctxfd, "README.txt", f->rootfd, "/up/tmp/x", 0, &o), 0);
	char *s = slurp(f->outside, "secret");
	assert_string_equal(s, "host secret"); /* untouched */
	free(s);
	/* both landed inside the root */
	snprintf(p, sizeof p, "%s%s/secret", f->root, f->outside);
	assert_true(ib_path_exists(p));
	s = slurp(f->root, "tmp/x");
	assert_string_equal(s, "readme");
	free(s);
}

static void destination_symlinks_are_followed(void **state)
{
	fixture *f = *state;
	ib_build__copy_opts o = root_owned();
	char p[4200];
	put(f->root, "bin/busybox", "binary", 0755);
	snprintf(p, sizeof p, "%s/bin/sh", f->root);
	symlink("busybox", p);
	snprintf(p, sizeof p, "%s/abs", f->root);
	symlink("/bin/new", p); /* dangling, absolute: resolved inside the root */
	assert_int_equal(ib_build__copy(f->ctxfd, "README.txt", f->rootfd, "/bin/sh", 0, &o), 0);
	assert_true(S_ISLNK(lst(f->root, "bin/sh").st_mode));
	char *s = slurp(f->root, "bin/busybox");
	assert_string_equal(s, "readme");
	free(s);
	assert_int_equal(ib_build__copy(f->ctxfd, "notes.txt", f->rootfd, "/abs", 0, &o), 0);
	s = slurp(f->root, "bin/new");
	assert_string_equal(s, "notes");
	free(s);
}

static void owner_and_mode_options(void **state)
{
	fixture *f = *state;
	ib_build__copy_opts o = root_owned();
	o.set_mode = 1;
	o.mode = 0700;
	assert_int_equal(ib_build__copy(f->ctxfd, "app", f->rootfd, "/m", 1, &o), 0);
	assert_int_equal(lst(f->root, "m/lib/util.txt").st_mode & 07777, 0700);
	assert_int_equal(lst(f->root, "m/lib").st_mode & 07777, 0700);
	/* the directory made to hold the contents keeps the source directory's mode */
	assert_int_equal(lst(f->root, "m").st_mode & 07777, lst(f->ctx, "app").st_mode & 07777);
	if (getuid() == 0) {
		o.set_mode = 0;
		o.uid = 1234;
		o.gid = 5678;
		assert_int_equal(ib_build__copy(f->ctxfd, "app", f->rootfd, "/o/", 1, &o), 0);
		struct stat st = lst(f->root, "o/main.sh");
		assert_int_equal(st.st_uid, 1234);
		assert_int_equal(st.st_gid, 5678);
		st = lst(f->root, "o/link");
		assert_int_equal(st.st_uid, 1234);
	}
}

static void globbing(void **state)
{
	fixture *f = *state;
	ib_strlist l = IB_STRLIST_INIT;
	assert_int_equal(ib_build__glob(&l, f->ctxfd, "*.txt", NULL, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0], "README.txt");
	assert_string_equal(l.items[1], "notes.txt");
	ib_strlist_clear(&l);
	assert_int_equal(ib_build__glob(&l, f->ctxfd, "app/*/util.?xt", NULL, NULL), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0], "app/lib/util.txt");
	ib_strlist_clear(&l);
	assert_int_equal(ib_build__glob(&l, f->ctxfd, "/./app/../README.txt", NULL, NULL), 0);
	assert_string_equal(l.items[0], "README.txt");
	ib_strlist_clear(&l);
	assert_int_equal(ib_build__glob(&l, f->ctxfd, ".", NULL, NULL), 0);
	assert_string_equal(l.items[0], ".");
	ib_strlist_clear(&l);
	ib_assert_error_contains(ib_build__glob(&l, f->ctxfd, "*.nothing", NULL, NULL), "*.nothing");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	ib_strlist_clear(&l);
}

static int skip_notes(void *payload, const char *rel, int is_dir)
{
	(void)payload;
	(void)is_dir;
	return strcmp(rel, "notes.txt") == 0 || strncmp(rel, "app/lib", 7) == 0 ? IB_WALK_EXCLUDE
										  : IB_WALK_INCLUDE;
}

static void filter_applies_to_glob_copy_and_hash(void **state)
{
	fixture *f = *state;
	ib_strlist l = IB_STRLIST_INIT;
	assert_int_equal(ib_build__glob(&l, f->ctxfd, "*.txt", skip_notes, NULL), 0);
	assert_int_equal(l.n, 1);
	ib_strlist_clear(&l);
	ib_build__copy_opts o = root_owned();
	o.filter = skip_notes;
	assert_int_equal(ib_build__copy(f->ctxfd, ".", f->rootfd, "/all", 1, &o), 0);
	assert_int_equal(lst(f->root, "all/notes.txt").st_mode, 0);
	assert_int_equal(lst(f->root, "all/app/lib").st_mode, 0);
	assert_true(S_ISREG(lst(f->root, "all/README.txt").st_mode));
}

static void hash_of(fixture *f, const char *rel, ib_build__walk_filter flt, ib_digest *out)
{
	ib_sha256 *h = ib_sha256_new();
	assert_int_equal(ib_build__hash_source(h, f->ctxfd, rel, flt, NULL, NULL, 0, NULL), 0);
	ib_sha256_final(h, out);
	ib_sha256_free(h);
}

static void hash_owned(fixture *f, const char *rel, int owners, ib_digest *out)
{
	ib_sha256 *h = ib_sha256_new();
	assert_int_equal(ib_build__hash_source(h, f->ctxfd, rel, NULL, NULL, NULL, owners, NULL), 0);
	ib_sha256_final(h, out);
	ib_sha256_free(h);
}

/* A cache key is the same on every machine: the context's owners (this checkout's user) are not in it
 * (copies from the context are 0:0); a stage's or image's owners are (owners = 1). */
static void context_owner_is_not_in_the_key(void **state)
{
	fixture *f = *state;
	ib_digest a, b, c, d;
	char p[4200];
	snprintf(p, sizeof p, "%s/app/lib/util.txt", f->ctx);
	hash_owned(f, "app", 0, &a);
	hash_owned(f, "app", 1, &c);
	if (lchown(p, 4242, 4343) < 0)
		skip();
	hash_owned(f, "app", 0, &b);
	hash_owned(f, "app", 1, &d);
	assert_true(ib_digest_equal(&a, &b));
	assert_false(ib_digest_equal(&c, &d));
}

static void hash_follows_content_and_metadata_not_mtime(void **state)
{
	fixture *f = *state;
	ib_digest a, b;
	hash_of(f, "app", NULL, &a);
	hash_of(f, "app", NULL, &b);
	assert_true(ib_digest_equal(&a, &b));
	/* mtime alone: same key */
	char p[4200];
	snprintf(p, sizeof p, "%s/app/lib/util.txt", f->ctx);
	struct timespec ts[2] = {{1000, 0}, {1000, 0}};
	utimensat(AT_FDCWD, p, ts, 0);
	hash_of(f, "app", NULL, &b);
	assert_true(ib_digest_equal(&a, &b));
	/* mode: new key */
	chmod(p, 0644);
	hash_of(f, "app", NULL, &b);
	assert_false(ib_digest_equal(&a, &b));
	/* content of the same size: new key */
	chmod(p, 0640);
	put(f->ctx, "app/lib/util.txt", "UTIL", 0640);
	hash_of(f, "app", NULL, &b);
	assert_false(ib_digest_equal(&a, &b));
	/* excluded files do not count */
	hash_of(f, "app", skip_notes, &a);
	put(f->ctx, "app/lib/util.txt", "changed again", 0640);
	hash_of(f, "app", skip_notes, &b);
	assert_true(ib_digest_equal(&a, &b));
	/* a symlink's target counts */
	hash_of(f, ".", NULL, &a);
	snprintf(p, sizeof p, "%s/app/link", f->ctx);
	unlink(p);
	symlink("hard", p);
	hash_of(f, ".", NULL, &b);
	assert_false(ib_digest_equal(&a, &b));
}

static void sums_remember_unchanged_files(void **state)
{
	fixture *f = *state;
	char *file = ib_test_tmpdir("sums");
	char path[4200];
	snprintf(path, sizeof path, "%s/cache", file);
	ib_build__sums *s = NULL;
	assert_int_equal(ib_build__sums_open(&s, path), 0);
	ib_build__sums_set_racy(s, -100); /* the files were just made: remember them anyway */
	ib_digest a, b, d;
	ib_sha256 *h = ib_sha256_new();
	assert_int_equal(ib_build__hash_source(h, f->ctxfd, "app", NULL, NULL, s, 0, NULL), 0);
	ib_sha256_final(h, &a);
	ib_sha256_free(h);
	assert_int_equal(ib_build__sums_save(s), 0);
	ib_build__sums_free(s);
	/* a new handle reads them back; the digest is the same as without a cache */
	assert_int_equal(ib_build__sums_open(&s, path), 0);
	struct stat st;
	char p2[4200];
	snprintf(p2, sizeof p2, "%s/app/lib/util.txt", f->ctx);
	stat(p2, &st);
	assert_int_equal(ib_build__sums_get(s, "app/lib/util.txt", &st, &d), 1);
	hash_of(f, "app", NULL, &b);
	assert_true(ib_digest_equal(&a, &b));
	/* same size, new content: the stat differs (ctime), the entry does not match */
	put(f->ctx, "app/lib/util.txt", "UTIL", 0640);
	stat(p2, &st);
	assert_int_equal(ib_build__sums_get(s, "app/lib/util.txt", &st, &d), 0);
	h = ib_sha256_new();
	assert_int_equal(ib_build__hash_source(h, f->ctxfd, "app", NULL, NULL, s, 0, NULL), 0);
	ib_sha256_final(h, &b);
	ib_sha256_free(h);
	assert_false(ib_digest_equal(&a, &b));
	/* fresh changes are not remembered by default (racily clean) */
	ib_build__sums_set_racy(s, 2);
	put(f->ctx, "app/fresh.txt", "fresh", 0644);
	snprintf(p2, sizeof p2, "%s/app/fresh.txt", f->ctx);
	stat(p2, &st);
	ib_digest_of(&d, "fresh", 5);
	assert_int_equal(ib_build__sums_put(s, "app/fresh.txt", &st, &d), 0);
	assert_int_equal(ib_build__sums_get(s, "app/fresh.txt", &st, &d), 0);
	ib_build__sums_free(s);
	ib_rm_rf(file);
	free(file);
}

/* A file of `n` bytes, not all alike (a pattern of the name's first byte). */
static void put_big(const char *dir, const char *rel, size_t n)
{
	char *b = malloc(n + 1);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + (rel[0] + i / 4096) % 26);
	b[n] = '\0';
	put(dir, rel, b, 0644);
	free(b);
}

static void key_str(ib_sha256 *h, const char *s)
{
	ib_sha256_update(h, s, strlen(s) + 1);
}

static void key_meta(ib_sha256 *h, fixture *f, const char *rel, const char *shown)
{
	struct stat st = lst(f->ctx, rel);
	char meta[128];
	snprintf(meta, sizeof meta, "%o 0 0 %llu", (unsigned)st.st_mode,
		 S_ISREG(st.st_mode) ? (unsigned long long)st.st_size : 0ULL);
	key_str(h, shown);
	key_str(h, meta);
}

static void key_file(ib_sha256 *h, fixture *f, const char *rel, const char *shown)
{
	key_meta(h, f, rel, shown);
	char *c = slurp(f->ctx, rel);
	ib_digest d;
	ib_digest_of(&d, c, strlen(c));
	free(c);
	ib_sha256_update(h, d.bytes, sizeof d.bytes);
}

static void key_with(fixture *f, const char *rel, ib_build__sums *s, ib_digest *out)
{
	ib_sha256 *h = ib_sha256_new();
	assert_int_equal(ib_build__hash_source(h, f->ctxfd, rel, NULL, NULL, s, 0, NULL), 0);
	ib_sha256_final(h, out);
	ib_sha256_free(h);
}

/*
 * The key's bytes, written out: each entry's path, metadata and digest (a
 * link's target) in byte order of the names. Big files (1 MiB and more) are
 * hashed in a batch on two threads and their digests put in place after the
 * walk: the key is the same cold, warm (every digest from the cache) and
 * with no cache, and the cache survives a damaged file.
 */
static void key_bytes_with_big_files(void **state)
{
	fixture *f = *state;
	put_big(f->ctx, "big/a.bin", (3u << 19) + 7);
	put_big(f->ctx, "big/b.bin", (1u << 20));
	put(f->ctx, "big/c.txt", "small", 0644);
	put_big(f->ctx, "big/d/e.bin", (1u << 21) + 1);
	char p[4200];
	snprintf(p, sizeof p, "%s/big/l", f->ctx);
	assert_int_equal(symlink("a.bin", p), 0);
	ib_sha256 *h = ib_sha256_new();
	ib_digest want, got;
	key_meta(h, f, "big", ".");
	key_file(h, f, "big/a.bin", "a.bin");
	key_file(h, f, "big/b.bin", "b.bin");
	key_file(h, f, "big/c.txt", "c.txt");
	key_meta(h, f, "big/d", "d");
	key_file(h, f, "big/d/e.bin", "d/e.bin");
	key_meta(h, f, "big/l", "l");
	key_str(h, "a.bin");
	ib_sha256_final(h, &want);
	ib_sha256_free(h);
	key_with(f, "big", NULL, &got);
	assert_true(ib_digest_equal(&want, &got));

	char *dir = ib_test_tmpdir("sums-big");
	snprintf(p, sizeof p, "%s/cache", dir);
	ib_build__sums *s = NULL;
	assert_int_equal(ib_build__sums_open(&s, p), 0);
	ib_build__sums_set_racy(s, -100);
	key_with(f, "big", s, &got); /* cold: the big ones in a batch */
	assert_true(ib_digest_equal(&want, &got));
	assert_int_equal(ib_build__sums_save(s), 0);
	ib_build__sums_free(s);
	assert_int_equal(ib_build__sums_open(&s, p), 0);
	ib_digest d;
	struct stat st = lst(f->ctx, "big/d/e.bin");
	assert_int_equal(ib_build__sums_get(s, "big/d/e.bin", &st, &d), 1); /* remembered by the batch */
	key_with(f, "big", s, &got); /* warm: from the mapped file */
	assert_true(ib_digest_equal(&want, &got));
	/* a new entry and the file's old ones are both kept by the next save */
	ib_build__sums_set_racy(s, -100);
	put(f->ctx, "big/c.txt", "SMALL!", 0644);
	key_with(f, "big", s, &got);
	assert_false(ib_digest_equal(&want, &got));
	assert_int_equal(ib_build__sums_save(s), 0);
	ib_build__sums_free(s);
	assert_int_equal(ib_build__sums_open(&s, p), 0);
	st = lst(f->ctx, "big/c.txt");
	assert_int_equal(ib_build__sums_get(s, "big/c.txt", &st, &d), 1);
	ib_digest_of(&want, "SMALL!", 6);
	assert_true(ib_digest_equal(&want, &d));
	st = lst(f->ctx, "big/a.bin");
	assert_int_equal(ib_build__sums_get(s, "big/a.bin", &st, &d), 1);
	ib_build__sums_free(s);

	/* damaged files are not believed: no hit, no crash, the key as without a cache */
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_read_file(&b, p), 0);
	key_with(f, "big", NULL, &want);
	size_t cuts[] = { 0, 5, 24, 40, b.size / 2, b.size - 1 };
	for (size_t k = 0; k < sizeof cuts / sizeof *cuts + 3; k++) {
		char *m = malloc(b.size);
		memcpy(m, b.ptr, b.size);
		size_t n = b.size;
		if (k < sizeof cuts / sizeof *cuts) {
			n = cuts[k]; /* truncated */
		} else if (k == sizeof cuts / sizeof *cuts) {
			memset(m + 24, 0xff, 4096 < b.size - 24 ? 4096 : b.size - 24); /* slots pointing anywhere */
		} else if (k == sizeof cuts / sizeof *cuts + 1) {
			uint32_t huge = 0xfffffff0u;
			memcpy(m + 8, &huge, 4); /* count */
		} else {
			for (size_t i = b.size - 64; i < b.size - 16; i++)
				m[i] = (char)0xee; /* paths and offsets garbled near the end */
		}
		assert_int_equal(ib_atomic_write(p, m, n, 0600), 0);
		free(m);
		assert_int_equal(ib_build__sums_open(&s, p), 0);
		key_with(f, "big", s, &got);
		assert_true(ib_digest_equal(&want, &got));
		ib_build__sums_free(s);
	}
	/* the text format of before is not believed either */
	assert_int_equal(ib_atomic_write(p, "sha256:00 1 2 3 4 5 6 7 big/c.txt\n", 34, 0600), 0);
	assert_int_equal(ib_build__sums_open(&s, p), 0);
	assert_int_equal(ib_build__sums_get(s, "big/c.txt", &st, &d), 0);
	ib_build__sums_free(s);
	ib_buf_dispose(&b);
	ib_rm_rf(dir);
	free(dir);
}

/*
 * A stage's files (COPY --from) are remembered under their scope and matched
 * without the device (an overlay mount's is new each time); the context's
 * are matched with it.
 */
static void sums_scope_for_stage_files(void **state)
{
	fixture *f = *state;
	char *dir = ib_test_tmpdir("sums-scope");
	char p[4200];
	snprintf(p, sizeof p, "%s/cache", dir);
	ib_build__sums *s = NULL;
	assert_int_equal(ib_build__sums_open(&s, p), 0);
	ib_build__sums_set_racy(s, -100);
	ib_digest a, b, d, want;
	ib_sha256 *h = ib_sha256_new();
	assert_int_equal(ib_build__hash_source(h, f->ctxfd, "app", NULL, NULL, s, 1, "/from/builder/"), 0);
	ib_sha256_final(h, &a);
	ib_sha256_free(h);
	hash_owned(f, "app", 1, &b); /* the same key as with no cache */
	assert_true(ib_digest_equal(&a, &b));
	struct stat st = lst(f->ctx, "app/lib/util.txt");
	ib_digest_of(&want, "util", 4);
	assert_int_equal(ib_build__sums_get(s, "app/lib/util.txt", &st, &d), 0); /* not under the context's name */
	assert_int_equal(ib_build__sums_get(s, "/from/builder/app/lib/util.txt", &st, &d), 1);
	assert_true(ib_digest_equal(&want, &d));
	/* another mount of the same layers: another device, the same file */
	st.st_dev += 1;
	assert_int_equal(ib_build__sums_get(s, "/from/builder/app/lib/util.txt", &st, &d), 1);
	assert_int_equal(ib_build__sums_save(s), 0);
	ib_build__sums_free(s);
	assert_int_equal(ib_build__sums_open(&s, p), 0);
	assert_int_equal(ib_build__sums_get(s, "/from/builder/app/lib/util.txt", &st, &d), 1);
	/* the context's entries keep the device in the match */
	ib_build__sums_set_racy(s, -100);
	struct stat cst = lst(f->ctx, "app/lib/util.txt");
	assert_int_equal(ib_build__sums_put(s, "app/lib/util.txt", &cst, &want), 0);
	assert_int_equal(ib_build__sums_get(s, "app/lib/util.txt", &cst, &d), 1);
	cst.st_dev += 1;
	assert_int_equal(ib_build__sums_get(s, "app/lib/util.txt", &cst, &d), 0);
	/* any other field still tells a changed file */
	st.st_ino += 1;
	assert_int_equal(ib_build__sums_get(s, "/from/builder/app/lib/util.txt", &st, &d), 0);
	ib_build__sums_free(s);
	ib_rm_rf(dir);
	free(dir);
}

/* A source 3,000 levels deep (paths past PATH_MAX) is hashed and copied with 64 fds. */
static void deep_trees_hash_and_copy(void **state)
{
	fixture *f = *state;
	enum { LEVELS = 3000 };
	int fd = openat(f->ctxfd, ".", O_RDONLY | O_DIRECTORY);
	for (int i = 0; i <= LEVELS; i++) {
		assert_int_equal(mkdirat(fd, i ? "d" : "deep", 0755), 0);
		int sub = openat(fd, i ? "d" : "deep", O_RDONLY | O_DIRECTORY);
		assert_true(sub >= 0);
		close(fd);
		fd = sub;
	}
	int file = openat(fd, "f", O_WRONLY | O_CREAT, 0644);
	assert_int_equal(write(file, "bottom", 6), 6);
	close(file);
	close(fd);
	struct rlimit saved, low;
	getrlimit(RLIMIT_NOFILE, &saved);
	low = saved;
	low.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	ib_sha256 *h = ib_sha256_new();
	int rc = ib_build__hash_source(h, f->ctxfd, "deep", NULL, NULL, NULL, 0, NULL);
	ib_sha256_free(h);
	if (rc < 0)
		fail_msg("hash: %s", ib_error_last()->message);
	ib_build__copy_opts o = root_owned();
	if (ib_build__copy(f->ctxfd, "deep", f->rootfd, "/copied", 1, &o) < 0)
		fail_msg("copy: %s", ib_error_last()->message);
	setrlimit(RLIMIT_NOFILE, &saved);
	/* all the way down, and the bottom file */
	fd = openat(f->rootfd, "copied", O_RDONLY | O_DIRECTORY);
	int n = 0;
	for (;;) {
		int sub = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		if (sub < 0)
			break;
		close(fd);
		fd = sub;
		n++;
	}
	assert_int_equal(n, LEVELS);
	char got[16] = "";
	file = openat(fd, "f", O_RDONLY);
	assert_int_equal(read(file, got, sizeof got - 1), 6);
	assert_string_equal(got, "bottom");
	close(file);
	close(fd);
}

/* Symbolic --chmod against chmod(1) with umask 0 (the table was made with
 * GNU chmod, which agrees with BSD setmode on these): file and directory. */
static void symbolic_modes_as_chmod(void **state)
{
	(void)state;
	static const struct { const char *spec; unsigned base, file, dir; } t[] = {
		{"u+x,g-w", 0644, 0744, 0744},
		{"u+x,g-w", 0755, 0755, 0755},
		{"u+x,g-w", 0640, 0740, 0740},
		{"u+x,g-w", 0600, 0700, 0700},
		{"go=u-w", 0644, 0644, 0644},
		{"go=u-w", 0755, 0755, 0755},
		{"go=u-w", 0640, 0644, 0644},
		{"go=u-w", 0600, 0644, 0644},
		{"=rw,+X", 0644, 0666, 0777},
		{"=rw,+X", 0755, 0777, 0777}, /* BSD (BuildKit): X looks at the mode before the change; GNU chmod gives 666 */
		{"=rw,+X", 0640, 0666, 0777},
		{"=rw,+X", 0600, 0666, 0777},
		{"a+X", 0644, 0644, 0755},
		{"a+X", 0755, 0755, 0755},
		{"a+X", 0640, 0640, 0751},
		{"a+X", 0600, 0600, 0711},
		{"u=rwx,go=rx", 0644, 0755, 0755},
		{"u=rwx,go=rx", 0755, 0755, 0755},
		{"u=rwx,go=rx", 0640, 0755, 0755},
		{"u=rwx,go=rx", 0600, 0755, 0755},
		{"o=", 0644, 0640, 0640},
		{"o=", 0755, 0750, 0750},
		{"o=", 0640, 0640, 0640},
		{"o=", 0600, 0600, 0600},
		{"+t", 0644, 01644, 01644},
		{"+t", 0755, 01755, 01755},
		{"+t", 0640, 01640, 01640},
		{"+t", 0600, 01600, 01600},
		{"g+s", 0644, 02644, 02644},
		{"g+s", 0755, 02755, 02755},
		{"g+s", 0640, 02640, 02640},
		{"g+s", 0600, 02600, 02600},
		{"o+s", 0644, 0644, 0644},
		{"o+s", 0755, 0755, 0755},
		{"o+s", 0640, 0640, 0640},
		{"o+s", 0600, 0600, 0600},
		{"u-w+x", 0644, 0544, 0544},
		{"u-w+x", 0755, 0555, 0555},
		{"u-w+x", 0640, 0540, 0540},
		{"u-w+x", 0600, 0500, 0500},
		{"a=r,u+w", 0644, 0644, 0644},
		{"a=r,u+w", 0755, 0644, 0644},
		{"a=r,u+w", 0640, 0644, 0644},
		{"a=r,u+w", 0600, 0644, 0644},
		{"go-rwx", 0644, 0600, 0600},
		{"go-rwx", 0755, 0700, 0700},
		{"go-rwx", 0640, 0600, 0600},
		{"go-rwx", 0600, 0600, 0600},
		{"=", 0644, 00, 00},
		{"=", 0755, 00, 00},
		{"=", 0640, 00, 00},
		{"=", 0600, 00, 00},
		{"ug=rw,o=r", 0644, 0664, 0664},
		{"ug=rw,o=r", 0755, 0664, 0664},
		{"ug=rw,o=r", 0640, 0664, 0664},
		{"ug=rw,o=r", 0600, 0664, 0664},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		ib_build__modeset ms;
		assert_int_equal(ib_build__modeset_parse(&ms, t[i].spec), 0);
		unsigned f = (unsigned)ib_build__modeset_apply(&ms, S_IFREG | t[i].base);
		unsigned d = (unsigned)ib_build__modeset_apply(&ms, S_IFDIR | t[i].base);
		if (f != t[i].file || d != t[i].dir)
			fail_msg("%s on %o: got %o/%o, chmod gives %o/%o", t[i].spec, t[i].base, f, d, t[i].file, t[i].dir);
	}
	static const char *const bad[] = {"", "u", "u+x,", "u*x", "+q", "0755", "u+x;g-w", "a,b"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ib_build__modeset ms;
		if (ib_build__modeset_parse(&ms, bad[i]) == 0)
			fail_msg("`%s` was taken for a symbolic mode", bad[i]);
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
DEFINE_GROUP(copy_tests,
	T(directory_contents_are_copied),
	T(many_files_copied),
	T(tree_copied_in_parallel),
	T(chain_copied_in_parallel),
	T(big_copies_remembered),
	T(named_symlink_is_followed),
	T(sources_cannot_leave_the_context),
	T(destinations_cannot_leave_the_rootfs),
	T(owner_and_mode_options),
	T(destination_symlinks_are_followed),
	T(globbing),
	T(filter_applies_to_glob_copy_and_hash),
	T(hash_follows_content_and_metadata_not_mtime),
	T(context_owner_is_not_in_the_key),
	T(sums_remember_unchanged_files),
	T(key_bytes_with_big_files),
	T(sums_scope_for_stage_files),
	T(deep_trees_hash_and_copy),
	cmocka_unit_test(symbolic_modes_as_chmod))
