/* Image commands: import, images, inspect, history, tag, rmi. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

const cli_option cli_opts_import[] = {
	{ "change", 'c', 1, "INSTRUCTION", "Apply a Dockerfile instruction to the created image; repeatable" },
	{ "message", 'm', 1, "MESSAGE", "Set a commit message for the imported image" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_import(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_import;
	ib_image_config *config = NULL;
	ib_import_options io = IB_IMPORT_OPTIONS_INIT;
	int i = 1, k, status = 0;
	const char *v;
	if (ib_image_config_new(&config) < 0)
		return cli_fail("import");
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		/* the same Dockerfile instructions as commit --change */
		if (k == 0 && ib_commit_apply_change(config, v) < 0) {
			status = cli_fail("import --change");
			goto out;
		}
		if (k == 1)
			io.comment = v;
	}
	if (k == -2 || argc - i < 1 || argc - i > 2) {
		status = cli_usage(cli);
		goto out;
	}
	ib_store *s = cli_store(cli);
	if (!s) {
		status = 1;
		goto out;
	}
	io.config = config;
	io.name = argc - i == 2 ? argv[i + 1] : NULL;
	ib_digest id;
	int rc = !strcmp(argv[i], "-") ? (io.source = "-", ib_store_import_fd(&id, s, 0, &io))
				       : ib_store_import(&id, s, argv[i], &io);
	if (rc < 0) {
		status = cli_fail(NULL);
		goto out;
	}
	char ids[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &id);
	printf("%s\n", ids);
out:
	ib_image_config_free(config);
	return status;
}

const cli_option cli_opts_images[] = {
	{ "quiet", 'q', 0, NULL, "Only show image IDs" },
	{ "all", 'a', 0, NULL, "Show all images (the store has no intermediate images: the same list)" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_images(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_images;
	int i = 1, k, quiet = 0;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		quiet |= k == 0;
	if (k == -2 || i < argc - 1)
		return cli_usage(cli);
	/* docker images [REPOSITORY[:TAG]] */
	ib_reference *filter = NULL;
	if (i == argc - 1 && ib_reference_parse(&filter, argv[i]) < 0)
		return cli_fail("images");
	ib_store *s = cli_store(cli);
	ib_image_list *list;
	if (!s) {
		ib_reference_free(filter);
		return 1;
	}
	if (ib_store_images(&list, s) < 0) {
		ib_reference_free(filter);
		return cli_fail("images");
	}
	if (!quiet)
		printf("%-40s %-16s %-14s %-20s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
	for (size_t r = 0; r < ib_image_list_count(list); r++) {
		const ib_image_summary *row = ib_image_list_get(list, r);
		char hex[IB_DIGEST_HEXLEN + 1], size[32], since[64];
		ib_digest_hex(hex, &row->id);
		if (filter) {
			ib_reference *rr = NULL;
			int keep = row->name && ib_reference_parse(&rr, row->name) == 0 &&
				   !strcmp(ib_reference_repository(rr), ib_reference_repository(filter)) &&
				   (!ib_reference_tag_given(filter) ||
				    !strcmp(ib_reference_tag(rr) ? ib_reference_tag(rr) : "", ib_reference_tag(filter)));
			ib_reference_free(rr);
			if (!keep)
				continue;
		}
		if (quiet) {
			printf("%.12s\n", hex);
			continue;
		}
		char repo[512] = "<none>", tag[160] = "<none>";
		ib_reference *ref;
		if (row->name && ib_reference_parse(&ref, row->name) == 0) {
			const char *fam = ib_reference_familiar(ref);
			const char *t = ib_reference_tag(ref);
			snprintf(repo, sizeof repo, "%.*s", (int)(strlen(fam) - (t ? strlen(t) + 1 : 0)), fam);
			snprintf(tag, sizeof tag, "%s", t ? t : "<none>");
			ib_reference_free(ref);
		}
		cli_human_size(size, sizeof size, row->size);
		cli_human_since(since, sizeof since, row->created);
		printf("%-40s %-16s %-14.12s %-20s %s\n", repo, tag, hex, since, size);
	}
	ib_image_list_free(list);
	ib_reference_free(filter);
	return 0;
}

const cli_option cli_opts_inspect[] = {
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_inspect(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_inspect, &v)) >= 0)
		;
	if (k == -2 || i >= argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	int status = 0, first = 1;
	ib_buf b = IB_BUF_INIT;
	printf("[");
	for (; i < argc; i++) {
		ib_image *img;
		if (ib_store_image_lookup(&img, s, argv[i]) < 0) {
			status = cli_fail(NULL);
			continue;
		}
		if (ib_image_inspect_json(&b, img) < 0) {
			status = cli_fail(argv[i]);
		} else {
			printf("%s%s", first ? "" : ",\n", b.ptr);
			first = 0;
		}
		ib_image_free(img);
	}
	printf("]\n");
	ib_buf_dispose(&b);
	return status;
}

const cli_option cli_opts_history[] = {
	{ "no-trunc", 0, 0, NULL, "Don't truncate output" },
	{ "quiet", 'q', 0, NULL, "Only show image IDs" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_history(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_history;
	int i = 1, k, notrunc = 0, quiet = 0;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		notrunc |= k == 0;
		quiet |= k == 1;
	}
	if (k == -2 || argc - i != 1)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	ib_image *img;
	if (!s)
		return 1;
	if (ib_store_image_lookup(&img, s, argv[i]) < 0)
		return cli_fail(NULL);
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, ib_image_id(img));
	if (!quiet)
		printf("%-14s %-20s %-45s %-10s %s\n", "IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT");
	for (size_t h = 0; h < ib_image_history_count(img); h++) {
		ib_image_history_item it = IB_IMAGE_HISTORY_ITEM_INIT;
		ib_image_history_get(&it, img, h);
		char id[80], since[64], size[32], by[1024];
		if (h == 0)
			snprintf(id, sizeof id, notrunc ? "sha256:%s" : "%.12s", hex);
		else
			snprintf(id, sizeof id, "<missing>");
		if (quiet) {
			printf("%s\n", id);
			continue;
		}
		cli_human_since(since, sizeof since, it.created);
		/* as docker history: the content of the layer's files, not its tar */
		uint64_t content = 0;
		if (it.has_layer && ib_store_layer_content_size(&content, s, &it.layer) < 0) {
			ib_image_free(img);
			return cli_fail(NULL);
		}
		cli_human_size(size, sizeof size, content);
		snprintf(by, sizeof by, "%s", it.created_by ? it.created_by : "");
		if (!notrunc && strlen(by) > 45)
			strcpy(by + 42, "...");
		printf("%-14s %-20s %-45s %-10s %s\n", id, since, by, size, it.comment ? it.comment : "");
	}
	ib_image_free(img);
	return 0;
}

const cli_option cli_opts_tag[] = {
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_tag(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_tag, &v)) >= 0)
		;
	if (k == -2 || argc - i != 2)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	if (ib_store_tag(s, argv[i], argv[i + 1]) < 0)
		return cli_fail(NULL);
	return 0;
}

const cli_option cli_opts_rmi[] = {
	{ "force", 'f', 0, NULL, "Force removal of the image" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_rmi(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_rmi;
	int i = 1, k, status = 0;
	unsigned int flags = 0;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		flags |= IB_STORE_REMOVE_FORCE;
	if (k == -2 || i >= argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	for (; i < argc; i++) {
		ib_buf report = IB_BUF_INIT;
		if (ib_store_image_remove(s, argv[i], flags, &report) < 0)
			status = cli_fail(NULL);
		else
			fputs(report.ptr ? report.ptr : "", stdout);
		ib_buf_dispose(&report);
	}
	return status;
}
