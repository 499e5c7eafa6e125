/* Store maintenance: prune, fsck. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

const cli_option cli_opts_prune[] = {
	{ "blobs-only", 0, 0, NULL, "Remove only the blobs nothing references" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_prune(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_prune;
	ib_store_gc_options go = IB_STORE_GC_OPTIONS_INIT;
	go.prune_dangling = 1;
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		go.prune_dangling = 0;
	if (k == -2 || i != argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_store_gc_stats st = IB_STORE_GC_STATS_INIT;
	if (ib_store_gc(&st, s, &go) < 0)
		return cli_fail(NULL);
	/* then what the blobs alone do not cover: unpacked layers, and snapshots killed processes left */
	size_t blobs = 0, snapshots = 0;
	if (go.prune_dangling && ib_prune(&blobs, &snapshots, s) < 0)
		return cli_fail(NULL);
	char size[32];
	cli_human_size(size, sizeof size, st.bytes_freed);
	printf("Deleted images: %llu\nDeleted blobs: %llu\nDeleted snapshots and unpacked layers: %zu\n"
	       "Total reclaimed space: %s\n",
	       (unsigned long long)st.images_removed, (unsigned long long)(st.blobs_removed + blobs), snapshots,
	       size);
	return 0;
}

const cli_option cli_opts_fsck[] = {
	{ "full", 0, 0, NULL, "Also decompress every layer variant" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_fsck(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_fsck;
	ib_store_fsck_options fo = IB_STORE_FSCK_OPTIONS_INIT;
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		fo.full = 1;
	if (k == -2 || i != argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_buf report = IB_BUF_INIT;
	int rc = ib_store_fsck_ext(&report, s, &fo);
	char *first = rc < 0 ? strdup(ib_error_last()->message) : NULL;
	/* what killed processes left in the snapshotters (opened without cleaning it up) */
	static const char *const backends[] = { "overlay", "copy" };
	for (size_t b = 0; b < 2; b++) {
		ib_snapshotter *snap = NULL;
		ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
		so.flags = IB_SNAPSHOTTER_KEEP_STALE;
		if (ib_snapshotter_open(&snap, s, backends[b], &so) < 0) {
			ib_error_clear(); /* not usable here: nothing of it to check */
			continue;
		}
		ib_buf more = IB_BUF_INIT; /* outputs replace: one buffer per call */
		if (ib_snapshotter_fsck(&more, snap) < 0 && rc == 0) {
			rc = -1;
			first = strdup(ib_error_last()->message);
		}
		if (more.size)
			ib_buf_put(&report, more.ptr, more.size);
		ib_buf_dispose(&more);
		ib_snapshotter_free(snap);
	}
	if (report.ptr)
		fputs(report.ptr, stdout);
	ib_buf_dispose(&report);
	if (rc < 0) {
		fprintf(stderr, "imagebuild: %s\n", first ? first : "fsck failed");
		free(first);
		return 1;
	}
	printf("ok\n");
	return 0;
}
