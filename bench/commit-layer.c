/*
 * commit-layer STORE DIR: the layer pipeline of a commit on its own: the
 * tree DIR (as the changes of a snapshot on nothing) -> tar -> a new blob in
 * the store at STORE, streamed in one pass that hashes as it writes, then
 * fsynced. Prints the diff_id and the size. Public API only.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <imagebuild/snapshot.h>

static int to_blob(const void *data, size_t len, void *payload)
{
	return ib_blob_writer_write(payload, data, len);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s STORE DIR\n", argv[0]);
		return 2;
	}
	ib_store *store = NULL;
	ib_blob_writer *w = NULL;
	int dfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		perror(argv[2]);
		return 1;
	}
	if (ib_store_open(&store, argv[1], NULL) < 0 || ib_store_blob_writer(&w, store) < 0)
		goto fail;
	if (ib_snapshot_diff_trees(dfd, -1, IB_DIFF_TREE, to_blob, w) < 0) {
		ib_blob_writer_abort(w);
		goto fail;
	}
	ib_digest d;
	uint64_t size;
	if (ib_blob_writer_commit(w, &d, &size, NULL) < 0)
		goto fail;
	char s[IB_DIGEST_STRLEN];
	ib_digest_fmt(s, &d);
	printf("%s %llu\n", s, (unsigned long long)size);
	ib_store_free(store);
	close(dfd);
	return 0;
fail:
	fprintf(stderr, "commit-layer: %s\n", ib_error_last()->message);
	ib_store_free(store);
	close(dfd);
	return 1;
}
