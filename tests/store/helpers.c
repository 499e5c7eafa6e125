#include "tests.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

void ts_rm_rf(const char *path)
{
	char *cmd = malloc(strlen(path) + 32);
	sprintf(cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", path);
	free(cmd);
}

void ts_open(test_store *t, const char *tag)
{
	t->dir = ib_test_tmpdir(tag);
	char *root = ts_path(t, "store");
	if (ib_store_open(&t->store, root, NULL) < 0)
		fail_msg("open store: %s", ib_error_last()->message);
	free(root);
}

void ts_close(test_store *t)
{
	ib_store_free(t->store);
	t->store = NULL;
	ts_rm_rf(t->dir);
	free(t->dir);
}

char *ts_path(test_store *t, const char *rel)
{
	char *p = malloc(strlen(t->dir) + strlen(rel) + 2);
	sprintf(p, "%s/%s", t->dir, rel);
	return p;
}

void ts_make_tar(const char *path, const char *const *files, int gzip)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; files[i]; i += 2) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, files[i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)strlen(files[i + 1]));
		archive_entry_set_mtime(e, 946684800, 0);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		archive_write_data(a, files[i + 1], strlen(files[i + 1]));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

ib_digest ts_import(test_store *t, const char *name, const char *content)
{
	char *tar = ts_path(t, "import.tar");
	const char *files[] = { "etc/hello", content, NULL };
	ts_make_tar(tar, files, 0);
	ib_import_options o = IB_IMPORT_OPTIONS_INIT;
	o.name = name;
	ib_digest id;
	if (ib_store_import(&id, t->store, tar, &o) < 0)
		fail_msg("import: %s", ib_error_last()->message);
	unlink(tar);
	free(tar);
	return id;
}

ib_digest ts_layer(test_store *t, const char *content)
{
	char *tar = ts_path(t, "layer.tar");
	const char *files[] = { "layer-file", content, NULL };
	ts_make_tar(tar, files, 0);
	char *data = ts_read_file(tar);
	struct stat st;
	stat(tar, &st);
	ib_digest d;
	assert_int_equal(ib_store_blob_put(&d, t->store, data, (size_t)st.st_size), 0);
	free(data);
	unlink(tar);
	free(tar);
	return d;
}

int ts_count_blobs(test_store *t)
{
	char *p = ts_path(t, "store/blobs/sha256");
	DIR *d = opendir(p);
	free(p);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

void ts_write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

char *ts_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	if (fread(b, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	b[n] = 0;
	fclose(f);
	return b;
}

/* Store the bytes of `path`, gzip-compressed (libarchive's raw format) or as they are. */
ib_digest ts_put_file(test_store *t, const char *path, int gzip)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	char *data = ts_read_file(path);
	assert_non_null(data);
	size_t cap = (size_t)st.st_size + 4096, used = 0;
	char *out = data;
	if (gzip) {
		out = malloc(cap);
		struct archive *a = archive_write_new();
		assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
		assert_int_equal(archive_write_open_memory(a, out, cap, &used), ARCHIVE_OK);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, "data");
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, st.st_size);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, data, (size_t)st.st_size), st.st_size);
		archive_entry_free(e);
		assert_int_equal(archive_write_close(a), ARCHIVE_OK);
		archive_write_free(a);
	} else {
		used = (size_t)st.st_size;
	}
	ib_digest d;
	assert_int_equal(ib_store_blob_put(&d, t->store, out, used), 0);
	if (out != data)
		free(out);
	free(data);
	return d;
}

void ts_reopen(test_store *t)
{
	char *root = strdup(ib_store_root(t->store));
	assert_non_null(root);
	ib_store_free(t->store);
	t->store = NULL;
	if (ib_store_open(&t->store, root, NULL) < 0)
		fail_msg("reopen: %s", ib_error_last()->message);
	free(root);
}

void ts_replace_all(char *text, const char *from, const char *to)
{
	size_t n = strlen(from);
	assert_int_equal(n, strlen(to));
	for (char *p = strstr(text, from); p; p = strstr(p + n, from))
		memcpy(p, to, n);
}

void ts_write_summed(const char *path, const char *header, const char *lines)
{
	char *body = NULL;
	assert_true(asprintf(&body, "%s\n%s", header, lines) > 0);
	ib_digest d;
	assert_int_equal(ib_digest_of(&d, body, strlen(body)), 0);
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, &d);
	char *text = NULL;
	assert_true(asprintf(&text, "%ssum %s\n", body, hex) > 0);
	ts_write_file(path, text);
	free(text);
	free(body);
}

ib_digest ts_listed_id(test_store *t, const char *name, size_t want_rows, uint64_t *size)
{
	ib_image_list *l = NULL;
	assert_int_equal(ib_store_images(&l, t->store), 0);
	assert_int_equal(ib_image_list_count(l), want_rows);
	ib_digest id;
	int found = 0;
	for (size_t k = 0; k < ib_image_list_count(l); k++) {
		const ib_image_summary *r = ib_image_list_get(l, k);
		if (r->name && !strcmp(r->name, name)) {
			id = r->id;
			if (size)
				*size = r->size;
			found = 1;
		}
	}
	ib_image_list_free(l);
	if (!found)
		fail_msg("%s is not in the listing", name);
	return id;
}
