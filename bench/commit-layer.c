/*
 * The layer pipeline of a commit, on the public API.
 *
 *   commit-layer tree STORE DIR          DIR (as the changes of a snapshot on nothing)
 *                                        -> tar -> a new store blob, hashed while written, fsynced
 *   commit-layer prepare STORE NAME KEY  prepare + mount an empty snapshot; prints its rootfs
 *   commit-layer commit STORE NAME KEY   ib_snapshot_commit of that snapshot
 *   commit-layer remove STORE NAME KEY   unmount + remove it
 *
 * Prints the diff_id and the size of what it committed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <imagebuild/snapshot.h>

static int to_blob(const void *data, size_t len, void *payload)
{
	return ib_blob_writer_write(payload, data, len);
}

static void print_layer(const ib_digest *d, uint64_t size)
{
	char s[IB_DIGEST_STRLEN];
	ib_digest_fmt(s, d);
	printf("%s %llu\n", s, (unsigned long long)size);
}

static int tree(ib_store *store, const char *dir)
{
	ib_blob_writer *w = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		perror(dir);
		return -1;
	}
	int rc = ib_store_blob_writer(&w, store);
	if (rc == 0 && (rc = ib_snapshot_diff_trees(dfd, -1, IB_DIFF_TREE, to_blob, w)) < 0)
		ib_blob_writer_abort(w);
	ib_digest d;
	uint64_t size = 0;
	if (rc == 0 && (rc = ib_blob_writer_commit(w, &d, &size, NULL)) == 0)
		print_layer(&d, size);
	close(dfd);
	return rc;
}

static int snapshot(ib_store *store, const char *cmd, const char *name, const char *key)
{
	ib_snapshotter *s = NULL;
	int rc = ib_snapshotter_open(&s, store, name, NULL);
	if (rc < 0)
		return rc;
	if (!strcmp(cmd, "prepare")) {
		ib_buf root = IB_BUF_INIT;
		if ((rc = ib_snapshot_prepare(s, key, NULL, 0)) == 0 &&
		    (rc = ib_snapshot_mount(&root, s, key)) == 0)
			printf("%s\n", root.ptr);
		ib_buf_dispose(&root);
	} else if (!strcmp(cmd, "commit")) {
		ib_digest d;
		uint64_t size = 0;
		if ((rc = ib_snapshot_commit(&d, &size, s, key)) == 0)
			print_layer(&d, size);
	} else {
		if ((rc = ib_snapshot_unmount(s, key)) == 0)
			rc = ib_snapshot_remove(s, key);
	}
	ib_snapshotter_free(s);
	return rc;
}

int main(int argc, char **argv)
{
	int is_tree = argc == 4 && !strcmp(argv[1], "tree");
	int is_snap = argc == 5 && (!strcmp(argv[1], "prepare") || !strcmp(argv[1], "commit") ||
				    !strcmp(argv[1], "remove"));
	if (!is_tree && !is_snap) {
		fprintf(stderr, "usage: %s tree STORE DIR | {prepare|commit|remove} STORE NAME KEY\n", argv[0]);
		return 2;
	}
	ib_store *store = NULL;
	int rc = ib_store_open(&store, argv[2], NULL);
	if (rc == 0)
		rc = is_tree ? tree(store, argv[3]) : snapshot(store, argv[1], argv[3], argv[4]);
	if (rc < 0)
		fprintf(stderr, "commit-layer %s: %s\n", argv[1], ib_error_last()->message);
	ib_store_free(store);
	return rc < 0 ? 1 : 0;
}
