/* Shared by the execute tests: a busybox root filesystem and output capture. */
#ifndef TESTS_EXECUTE_HELPERS_H
#define TESTS_EXECUTE_HELPERS_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ib_test.h"
#include "imagebuild/execute.h"
#include "imagebuild/sys/isolation.h"

static inline void write_text(const char *dir, const char *rel, const char *text)
{
	char path[8400];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	FILE *f = fopen(path, "w");
	if (!f)
		fail_msg("create %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static inline void mkdir_in(const char *dir, const char *rel)
{
	char path[8400];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

static inline int exists_in(const char *dir, const char *rel)
{
	char path[8400];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static inline void rm_tree(const char *dir)
{
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
}

/*
 * After a test group: remove the directory make_busybox_rootfs() made `rootfs`
 * in (kept, and named, when a test failed), free `rootfs`; the exit status.
 */
static inline int finish_rootfs(char *rootfs, int failed)
{
	char *parent = strdup(rootfs);
	*strrchr(parent, '/') = '\0';
	if (!failed)
		rm_tree(parent);
	else
		fprintf(stderr, "left for debugging: %s\n", parent);
	free(parent);
	free(rootfs);
	return failed ? 1 : 0;
}

/* /etc/passwd and /etc/group of the test root filesystems. */
static inline void write_users(const char *root)
{
	mkdir_in(root, "etc");
	write_text(root, "etc/passwd",
		   "root:x:0:0:root:/root:/bin/sh\n"
		   "# a comment\n"
		   "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
		   "builder:x:1000:1000:Builder:/home/builder:/bin/sh\n"
		   "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
	write_text(root, "etc/group",
		   "root:x:0:\n"
		   "daemon:x:1:\n"
		   "audio:x:29:builder,other\n"
		   "staff:x:50:builder\n"
		   "builder:x:1000:\n"
		   "nogroup:x:65534:\n");
}

/*
 * A busybox root filesystem in a new temporary directory (the other
 * engineer's tests/resources/make-busybox-tar.sh will replace this).
 * NULL when busybox is not installed.
 */
static inline char *make_busybox_rootfs(void)
{
	const char *busybox = "/bin/busybox";
	if (access(busybox, X_OK) != 0)
		return NULL;
	char *tmp = ib_test_tmpdir("exec");
	char *root = malloc(4200);
	snprintf(root, 4200, "%s/rootfs", tmp);
	free(tmp);
	mkdir_in(root, "");
	char cmd[16384];
	const char *src = getenv("IB_SOURCE_ROOT");
	char script[4096] = "";
	if (src)
		snprintf(script, sizeof script, "%s/tests/resources/make-busybox-tar.sh", src);
	if (*script && access(script, R_OK) == 0)
		/* the project's busybox tarball */
		snprintf(cmd, sizeof cmd,
			 "set -e; sh '%s' '%s.tar'; tar -xf '%s.tar' -C '%s'; rm -f '%s.tar'; "
			 "mkdir -p '%s/home/builder'", script, root, root, root, root, root);
	else
		snprintf(cmd, sizeof cmd,
			 "set -e; cd '%s'; mkdir -p bin tmp root home/builder; chmod 1777 tmp; "
			 "cp %s bin/busybox; for a in $(bin/busybox --list); do "
			 "[ \"$a\" = busybox ] || ln -s busybox bin/$a; done", root, busybox);
	if (system(cmd) != 0)
		fail_msg("could not make the busybox root filesystem in %s", root);
	write_users(root);
	return root;
}

/* Output lines collected through the log callback. */
typedef struct {
	char out[65536];
	size_t len;
	int lines;
} capture;

static inline void capture_log(ib_log_level level, const char *line, void *payload)
{
	capture *c = payload;
	(void)level;
	int n = snprintf(c->out + c->len, sizeof c->out - c->len, "%s\n", line);
	if (n > 0 && c->len + (size_t)n < sizeof c->out)
		c->len += (size_t)n;
	c->lines++;
}

#endif
