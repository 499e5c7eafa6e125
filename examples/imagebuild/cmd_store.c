/* Store maintenance: prune, fsck. */
#include "common.h"

int cmd_prune(ib_cli *cli, int argc, char **argv)
{
	static const cli_option opts[] = { { "blobs-only", 0, 0 }, { NULL, 0, 0 } };
	ib_store_gc_options go = IB_STORE_GC_OPTIONS_INIT;
	go.prune_dangling = 1;
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		go.prune_dangling = 0;
	if (k == -2 || i != argc)
		return k == -2 ? 2 : cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_store_gc_stats st;
	if (ib_store_gc(&st, s, &go) < 0)
		return cli_fail(NULL);
	char size[32];
	cli_human_size(size, sizeof size, st.bytes_freed);
	printf("Deleted images: %llu\nDeleted blobs: %llu\nTotal reclaimed space: %s\n",
	       (unsigned long long)st.images_removed, (unsigned long long)st.blobs_removed, size);
	return 0;
}

int cmd_fsck(ib_cli *cli, int argc, char **argv)
{
	static const cli_option opts[] = { { "full", 0, 0 }, { NULL, 0, 0 } };
	ib_store_fsck_options fo = IB_STORE_FSCK_OPTIONS_INIT;
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		fo.full = 1;
	if (k == -2 || i != argc)
		return k == -2 ? 2 : cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_buf report = IB_BUF_INIT;
	int rc = ib_store_fsck_ext(&report, s, &fo);
	if (report.ptr)
		fputs(report.ptr, stdout);
	ib_buf_dispose(&report);
	if (rc < 0)
		return cli_fail(NULL);
	printf("ok\n");
	return 0;
}
