/* Moving images in and out: save, load. */
#include "common.h"

#include <string.h>

int cmd_save(ib_cli *cli, int argc, char **argv)
{
	static const cli_option opts[] = { { "output", 'o', 1 }, { "format", 0, 1 }, { "ref-name", 0, 1 }, { NULL, 0, 0 } };
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.format = IB_ARCHIVE_DOCKER; /* docker save's default */
	const char *out = NULL, *v;
	int i = 1, k;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		if (k == 0)
			out = v;
		else if (k == 2)
			so.ref_name = v;
		else if (!strcmp(v, "oci") || !strcmp(v, "oci-dir"))
			so.format = IB_ARCHIVE_OCI;
		else if (!strcmp(v, "oci-archive"))
			so.format = IB_ARCHIVE_OCI_ARCHIVE;
		else if (!strcmp(v, "docker-archive"))
			so.format = IB_ARCHIVE_DOCKER;
		else {
			fprintf(stderr, "imagebuild save: unknown format `%s` (oci, oci-archive, docker-archive)\n", v);
			return 2;
		}
	}
	if (k == -2 || !out || i >= argc)
		return k == -2 ? 2 : cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	if (ib_store_save(s, (const char *const *)argv + i, (size_t)(argc - i), out, &so) < 0)
		return cli_fail(NULL);
	return 0;
}

int cmd_load(ib_cli *cli, int argc, char **argv)
{
	static const cli_option opts[] = { { "input", 'i', 1 }, { "repository", 0, 1 }, { "quiet", 'q', 0 }, { NULL, 0, 0 } };
	ib_load_options lo = IB_LOAD_OPTIONS_INIT;
	const char *in = NULL, *v;
	int i = 1, k, quiet = 0;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		if (k == 0)
			in = v;
		else if (k == 1)
			lo.repository = v;
		else
			quiet = 1;
	}
	if (k == -2 || !in || i != argc)
		return k == -2 ? 2 : cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	ib_strarray loaded = { NULL, 0 };
	if (ib_store_load(&loaded, s, in, &lo) < 0)
		return cli_fail(NULL);
	for (size_t n = 0; n < loaded.count && !quiet; n++) {
		ib_reference *ref;
		if (strncmp(loaded.strings[n], "sha256:", 7) && ib_reference_parse(&ref, loaded.strings[n]) == 0) {
			printf("Loaded image: %s\n", ib_reference_familiar(ref));
			ib_reference_free(ref);
		} else {
			printf("Loaded image ID: %s\n", loaded.strings[n]);
		}
	}
	ib_strarray_dispose(&loaded);
	return 0;
}
