/* Moving images in and out: save, load. */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

/* Copy everything from one descriptor to another. */
static int copy_fd(int from, int to)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(from, buf, sizeof buf);
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, (size_t)(n - off));
			if (w < 0)
				return -1;
			off += w;
		}
	}
}

/* A temporary file path under $TMPDIR (created empty); free() it. */
static char *temp_file(int *fd)
{
	const char *dir = getenv("TMPDIR");
	char *p = malloc(4096);
	if (!p)
		return NULL;
	snprintf(p, 4096, "%s/imagebuild-XXXXXX", dir && *dir ? dir : "/tmp");
	*fd = mkstemp(p);
	if (*fd < 0) {
		perror("imagebuild: temporary file");
		free(p);
		return NULL;
	}
	return p;
}

const cli_option cli_opts_save[] = {
	{ "output", 'o', 1, "PATH", "Write to a file (a directory for --format oci), instead of stdout" },
	{ "format", 0, 1, "FORMAT", "oci (a layout directory), oci-archive or docker-archive (default)" },
	{ "ref-name", 0, 1, "TAG", "The org.opencontainers.image.ref.name of the saved image" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_save(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_save;
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
			return CLI_EXIT_ERROR;
		}
	}
	if (k == -2 || i >= argc || (!out && so.format == IB_ARCHIVE_OCI))
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	if (out)
		return ib_store_save(s, (const char *const *)argv + i, (size_t)(argc - i), out, &so) < 0 ? cli_fail(NULL) : 0;
	/* no -o: the archive goes to stdout, as docker save does */
	if (isatty(1)) {
		fprintf(stderr, "imagebuild save: refusing to write an archive to a terminal; use -o\n");
		return 1;
	}
	int fd;
	char *tmp = temp_file(&fd);
	if (!tmp)
		return 1;
	close(fd);
	unlink(tmp);
	int status = 0;
	if (ib_store_save(s, (const char *const *)argv + i, (size_t)(argc - i), tmp, &so) < 0) {
		status = cli_fail(NULL);
	} else if ((fd = open(tmp, O_RDONLY)) < 0 || copy_fd(fd, 1) < 0) {
		perror("imagebuild save: write to stdout");
		status = 1;
	}
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return status;
}

const cli_option cli_opts_load[] = {
	{ "input", 'i', 1, "PATH", "Read from an archive or OCI layout, instead of stdin (- for stdin)" },
	{ "repository", 0, 1, "REPO", "The repository of OCI images whose ref.name is a bare tag" },
	{ "quiet", 'q', 0, NULL, "Suppress the load output" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_load(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_load;
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
	if (k == -2 || i != argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	/* no -i (or -i -): the archive comes on stdin, as docker load takes it */
	char *tmp = NULL;
	if (!in || !strcmp(in, "-")) {
		int fd;
		if (!(tmp = temp_file(&fd)))
			return 1;
		int rc = copy_fd(0, fd);
		close(fd);
		if (rc < 0) {
			perror("imagebuild load: read stdin");
			unlink(tmp);
			free(tmp);
			return 1;
		}
		in = tmp;
	}
	ib_strarray loaded = { NULL, 0 };
	int rc = ib_store_load(&loaded, s, in, &lo);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	if (rc < 0)
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
