/*
 * Remote layers (lib/store/remote.c): recorded without content, answered
 * for by blob_has/size, kept by GC while referenced and dropped when not,
 * checked by fsck, fetched on open through the installed fetcher and
 * checked (blob digest, then diff_id): a fetch that does not verify stores
 * nothing and untrusts the repository.
 */
#include "tests.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *KEY = "cd00000000000000000000000000000000000000000000000000000000000000";

/* The "registry" of the test fetcher: a compressed blob's digest -> its bytes. */
static struct {
	ib_digest blob;
	char *data;
	size_t len;
} served[8];
static size_t nserved;
static int fetches;

static int test_fetch(ib_store *s, const ib_store_remote_layer *l, void *payload)
{
	if (payload)
		(*(int *)payload)++;
	fetches++;
	for (size_t i = 0; i < nserved; i++) {
		if (!ib_digest_equal(&served[i].blob, &l->blob))
			continue;
		ib_blob_writer *w;
		int rc = ib_store_blob_writer(&w, s);
		if (rc == 0 && (rc = ib_blob_writer_write(w, served[i].data, served[i].len)) == 0)
			rc = ib_blob_writer_commit(w, NULL, NULL, &l->blob);
		else if (rc == 0)
			ib_blob_writer_abort(w);
		return rc < 0 ? rc : ib_store_layer_uncompress(s, &l->blob, l->media_type, &l->diff_id);
	}
	return IB_ENOTFOUND;
}

static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	char *data = ts_read_file(path);
	*len = (size_t)st.st_size;
	return data;
}

/* A layer: its tar's diff_id and size, and a gzip of it served under its digest. */
static void make_layer(test_store *t, const char *content, ib_store_remote_layer *r, const char *repo)
{
	char *tar = ts_path(t, "l.tar"), *gz = ts_path(t, "l.tar.gz");
	const char *files[] = { "file", content, NULL };
	ts_make_tar(tar, files, 0);
	ts_make_tar(gz, files, 1);
	size_t tl, gl;
	char *td = slurp(tar, &tl), *gd = slurp(gz, &gl);
	memset(r, 0, sizeof *r);
	ib_digest_of(&r->diff_id, td, tl);
	r->size = tl;
	ib_digest_of(&r->blob, gd, gl);
	r->blob_size = gl;
	snprintf(r->media_type, sizeof r->media_type, "%s", IB_MEDIA_TYPE_OCI_LAYER_GZIP);
	snprintf(r->registry, sizeof r->registry, "reg.example:5000");
	snprintf(r->repository, sizeof r->repository, "%s", repo);
	served[nserved].blob = r->blob;
	served[nserved].data = gd;
	served[nserved].len = gl;
	nserved++;
	free(td);
	unlink(tar);
	unlink(gz);
	free(tar);
	free(gz);
}

static ib_digest config_naming(test_store *t, const ib_digest *diff_id)
{
	char ds[IB_DIGEST_STRLEN], json[256];
	ib_digest_fmt(ds, diff_id);
	snprintf(json, sizeof json,
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}", ds);
	ib_digest c;
	assert_int_equal(ib_store_blob_put(&c, t->store, json, strlen(json)), 0);
	return c;
}

static void test_remote_layers(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "remote");
	nserved = 0;
	fetches = 0;
	ib_store_remote_layer a, b, other, got;
	make_layer(&t, "aaa", &a, "cache");
	make_layer(&t, "bbb", &b, "cache");
	make_layer(&t, "ccc", &other, "elsewhere");

	/* recorded: answered for as a blob, no byte of it stored */
	int before = ts_count_blobs(&t);
	assert_int_equal(ib_store_remote_layer_get(NULL, t.store, &a.diff_id), IB_ENOTFOUND);
	assert_int_equal(ib_store_remote_layer_put(t.store, &a), 0);
	assert_int_equal(ib_store_blob_has(t.store, &a.diff_id), 1);
	uint64_t size = 0;
	assert_int_equal(ib_store_blob_size(&size, t.store, &a.diff_id), 0);
	assert_int_equal(size, a.size);
	assert_int_equal(ib_store_remote_layer_get(&got, t.store, &a.diff_id), 0);
	assert_true(ib_digest_equal(&got.blob, &a.blob));
	assert_string_equal(got.registry, "reg.example:5000");
	assert_string_equal(got.repository, "cache");
	assert_int_equal(ts_count_blobs(&t), before);
	ib_store_remote_layer bad = a;
	bad.registry[0] = '\0';
	ib_assert_error_contains(ib_store_remote_layer_put(t.store, &bad), "malformed");

	/* referenced by a cache entry: GC keeps it, fsck finds nothing wrong */
	ib_digest cfg = config_naming(&t, &a.diff_id);
	assert_int_equal(ib_store_cache_put(t.store, KEY, &a.diff_id, &cfg), 0);
	assert_int_equal(ib_store_remote_layer_put(t.store, &other), 0);
	assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
	assert_int_equal(ib_store_blob_has(t.store, &a.diff_id), 1);
	/* unreferenced: dropped */
	assert_int_equal(ib_store_blob_has(t.store, &other.diff_id), 0);
	assert_int_equal(ib_store_fsck(NULL, t.store), 0);
	ib_digest l, c;
	assert_int_equal(ib_store_cache_get(&l, NULL, &c, t.store, KEY), 0);

	/* opened: no fetcher, a clear error; then fetched, checked, stored, the record gone */
	ib_store_remote_fetch_provider(NULL);
	int fd = -1;
	ib_assert_error_contains(ib_store_blob_open(&fd, t.store, &a.diff_id), "reg.example:5000/cache");
	ib_store_remote_fetch_provider(test_fetch);
	assert_int_equal(ib_store_blob_open(&fd, t.store, &a.diff_id), 0);
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	assert_int_equal((size_t)n, a.size);
	ib_digest d;
	ib_digest_of(&d, buf, (size_t)n);
	assert_true(ib_digest_equal(&d, &a.diff_id));
	assert_int_equal(fetches, 1);
	assert_int_equal(ib_store_remote_layer_get(NULL, t.store, &a.diff_id), IB_ENOTFOUND);
	assert_int_equal(ib_store_blob_has(t.store, &a.diff_id), 1);
	assert_int_equal(ib_store_remote_layer_fetch(t.store, &a.diff_id), 0); /* held: nothing to do */
	assert_int_equal(fetches, 1);
	/* the handle's own fetcher, with its payload, rather than the process-wide one */
	int mine = 0;
	ib_store_set_remote_fetcher(t.store, test_fetch, &mine);
	assert_int_equal(ib_store_remote_layer_put(t.store, &b), 0);
	assert_int_equal(ib_store_remote_layer_fetch(t.store, &b.diff_id), 0);
	assert_int_equal(mine, 1);
	ib_store_set_remote_fetcher(t.store, NULL, NULL);

	/* a record whose blob is another layer: refused when fetched, nothing stored, the repository untrusted */
	ib_store_remote_layer liar, claimed;
	make_layer(&t, "ddd", &liar, "cache");
	make_layer(&t, "fff", &claimed, "cache");
	liar.diff_id = claimed.diff_id; /* the blob of "ddd" said to be "fff" */
	liar.size = claimed.size;
	ib_store_remote_layer c2;
	make_layer(&t, "eee", &c2, "cache");
	assert_int_equal(ib_store_remote_layer_put(t.store, &liar), 0);
	assert_int_equal(ib_store_remote_layer_put(t.store, &c2), 0);
	ib_assert_error_contains(ib_store_remote_layer_fetch(t.store, &claimed.diff_id), "nothing stored");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	assert_int_equal(ib_store_blob_has(t.store, &claimed.diff_id), 0);
	assert_int_equal(ib_store_blob_has(t.store, &liar.blob), 0);
	assert_int_equal(ib_store_blob_has(t.store, &c2.diff_id), 0); /* every record of that repository dropped */
	ib_assert_error_contains(ib_store_remote_layer_put(t.store, &c2), "failed its check before");
	/* another repository is still trusted */
	assert_int_equal(ib_store_remote_layer_put(t.store, &other), 0);
	assert_int_equal(ib_store_fsck(NULL, t.store), 0);

	/* a damaged record: fsck says so */
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, &other.diff_id);
	char rel[128];
	snprintf(rel, sizeof rel, "store/remote/%s.json", ds + 7);
	char *p = ts_path(&t, rel);
	ts_write_file(p, "{\"size\": 1}");
	free(p);
	ib_assert_error_contains(ib_store_fsck(NULL, t.store), "not a remote layer record");

	for (size_t i = 0; i < nserved; i++)
		free(served[i].data);
	nserved = 0;
	ts_close(&t);
}

DEFINE_GROUP(remote_tests, cmocka_unit_test(test_remote_layers))
