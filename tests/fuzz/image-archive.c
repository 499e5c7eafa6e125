/*
 * `docker load`'s input: a docker-archive or an OCI archive (tar, maybe
 * compressed), loaded into a fresh scratch store. Checks: every name
 * loaded can be looked up and inspected; a failed load stores no image;
 * the staging directory is empty afterwards; nothing appears beside the
 * store and the input (extraction stays in its staging directory).
 */
#include "fuzz.h"
#include "imagebuild/store.h"
#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

/* on tmpfs: blob writes fsync */
static char dir[] = "/dev/shm/ib-fuzz-archive.XXXXXX";
static char input[sizeof dir + 16], root[sizeof dir + 16], tmp[sizeof dir + 32];

static void cleanup(void)
{
	(void)ib_rm_rf(dir);
}

/* The names in `path` other than `a` and `b`, or 0 when there are none. */
static size_t others(const char *path, const char *a, const char *b)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *s = de->d_name;
		if (strcmp(s, ".") && strcmp(s, "..") && (!a || strcmp(s, a)) && (!b || strcmp(s, b))) {
			fprintf(stderr, "image-archive: unexpected `%s/%s`\n", path, s);
			n++;
		}
	}
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!input[0]) {
		if (!mkdtemp(dir))
			abort();
		snprintf(input, sizeof input, "%s/in.tar", dir);
		snprintf(root, sizeof root, "%s/store", dir);
		snprintf(tmp, sizeof tmp, "%s/tmp", root);
		atexit(cleanup);
	}
	int fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	IB_FUZZ_CHECK(fd >= 0 && ib_write_all(fd, data, size) == 0);
	close(fd);
	ib_store *s = NULL;
	IB_FUZZ_CHECK(ib_store_open(&s, root, NULL) == 0);
	ib_strarray loaded = IB_STRARRAY_INIT;
	ib_load_options o = IB_LOAD_OPTIONS_INIT;
	o.repository = "fuzz/repo";
	int rc = ib_store_load(&loaded, s, input, &o);
	for (size_t i = 0; rc == 0 && i < loaded.count; i++) {
		ib_image *img = NULL;
		IB_FUZZ_CHECK(ib_store_image_lookup(&img, s, loaded.strings[i]) == 0);
		ib_buf js = IB_BUF_INIT;
		IB_FUZZ_CHECK(ib_image_inspect_json(&js, img) == 0);
		ib_buf_dispose(&js);
		ib_image_free(img);
	}
	ib_strarray_dispose(&loaded);
	ib_image_list *list = NULL;
	IB_FUZZ_CHECK(ib_store_images(&list, s) == 0);
	if (rc < 0)
		IB_FUZZ_CHECK(ib_image_list_count(list) == 0);
	ib_image_list_free(list);
	ib_store_free(s);
	IB_FUZZ_CHECK(others(tmp, NULL, NULL) == 0);
	IB_FUZZ_CHECK(others(dir, "in.tar", "store") == 0);
	IB_FUZZ_CHECK(ib_rm_rf(root) == 0);
	return 0;
}
