/*
 * Committing a layer far larger than the address space the committing
 * process may use: the diff -> tar -> store pipeline streams, it never holds
 * a file (or the layer) whole in memory.
 */
#include "helpers.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "imagebuild/snapshot.h"
#include "util/hash.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define LIMIT ((rlim_t)256 << 20)
#define BIG ((off_t)768 << 20)

static int child(const char *dir)
{
	ib_store *store = NULL;
	ib_snapshotter *s = NULL;
	ib_buf root = IB_BUF_INIT;
	if (ib_store_open(&store, dir, NULL) < 0 || ib_snapshotter_open(&s, store, "copy", NULL) < 0 ||
	    ib_snapshot_prepare(s, "big", NULL, 0) < 0 || ib_snapshot_mount(&root, s, "big") < 0) {
		fprintf(stderr, "setup: %s\n", ib_error_last()->message);
		return 2;
	}
	/* a big sparse file (cheap to make, read as zeros) and one with data */
	char path[4200];
	snprintf(path, sizeof path, "%s/big", root.ptr);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, BIG) < 0 || pwrite(fd, "end", 3, BIG - 3) != 3) {
		perror("big file");
		return 2;
	}
	close(fd);
	put_file(root.ptr, "small", "hello", 0644);
	if (!UNDER_ASAN) { /* ASan reserves terabytes of shadow memory */
		struct rlimit rl = { LIMIT, LIMIT };
		if (setrlimit(RLIMIT_AS, &rl) < 0) {
			perror("setrlimit");
			return 2;
		}
		/* the limit bites: a BIG allocation fails now */
		void *p = malloc((size_t)BIG);
		if (p) {
			fprintf(stderr, "RLIMIT_AS did not apply\n");
			return 2;
		}
	}
	ib_digest d;
	uint64_t size = 0;
	if (ib_snapshot_commit(&d, &size, s, "big", NULL) < 0) {
		fprintf(stderr, "commit: %s\n", ib_error_last()->message);
		return 1;
	}
	if (size < (uint64_t)BIG) {
		fprintf(stderr, "layer of %llu bytes is too small\n", (unsigned long long)size);
		return 1;
	}
	/* the blob's content hashes to what commit said */
	ib_digest check;
	uint64_t got = 0;
	char blob[4200], hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, &d);
	snprintf(blob, sizeof blob, "%s/blobs/sha256/%s", dir, hex);
	if (ib_sha256_file(&check, blob, &got) < 0) {
		fprintf(stderr, "hash: %s\n", ib_error_last()->message);
		return 1;
	}
	if (got != size || !ib_digest_equal(&check, &d)) {
		fprintf(stderr, "blob has %llu bytes (commit said %llu) or another digest\n",
			(unsigned long long)got, (unsigned long long)size);
		return 1;
	}
	ib_buf_dispose(&root);
	ib_snapshot_remove(s, "big");
	ib_snapshotter_free(s);
	ib_store_free(store);
	return 0;
}

static void test_commit_big_layer(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("memory");
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = child(dir);
		_exit(rc);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_CHILDREN, &ru), 0);
	rm_tree(dir);
	free(dir);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2)
		fail_msg("the memory test could not set itself up");
	assert_int_equal(WEXITSTATUS(status), 0);
	long limit_kib = UNDER_ASAN ? 512 * 1024 : 64 * 1024;
	fprintf(stderr, "peak RSS of the committing process: %ld KiB\n", ru.ru_maxrss);
	assert_true(ru.ru_maxrss < limit_kib);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_big_layer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
