/*
 * Nothing from a registry or an archive poisons the store: a compressed
 * blob becomes a layer's variant (what a push ships) only once it is checked
 * to decompress to that layer's diff_id, also when the store already holds
 * the layer; fsck reports unchecked or bad variant records and GC drops them.
 * And save of an image with several names.
 */
#include "tests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A store with image "base" (one layer) and blobs: that layer gzipped, and another tar gzipped. */
typedef struct {
	test_store t;
	ib_digest diff;  /* the base layer (uncompressed, digest = diff_id) */
	ib_digest good;  /* gzip of the base layer */
	ib_digest evil;  /* gzip of other tar bytes */
	ib_digest plain; /* the other tar, uncompressed */
} fixture;

static void setup(fixture *f, const char *tag)
{
	ts_open(&f->t, tag);
	char *tar = ts_path(&f->t, "base.tar");
	const char *files[] = { "etc/hello", "the real base", NULL };
	ts_make_tar(tar, files, 0);
	ib_import_options o = IB_IMPORT_OPTIONS_INIT;
	o.name = "base";
	ib_digest id;
	assert_int_equal(ib_store_import(&id, f->t.store, tar, &o), 0);
	ib_image *img;
	assert_int_equal(ib_store_image_lookup(&img, f->t.store, "base"), 0);
	f->diff = ib_image_layer(img, 0)->diff_id;
	assert_true(ib_digest_equal(&f->diff, &ib_image_layer(img, 0)->digest));
	ib_image_free(img);
	f->good = ts_put_file(&f->t, tar, 1);
	const char *other[] = { "etc/hello", "attacker bytes", NULL };
	ts_make_tar(tar, other, 0);
	f->evil = ts_put_file(&f->t, tar, 1);
	f->plain = ts_put_file(&f->t, tar, 0);
	unlink(tar);
	free(tar);
}

static void assert_no_variant(fixture *f)
{
	ib_digest got;
	assert_int_equal(ib_store_variant_get(&got, NULL, f->t.store, &f->diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), IB_ENOTFOUND);
	assert_int_equal(ib_store_variant_get(&got, NULL, f->t.store, &f->diff, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP),
			 IB_ENOTFOUND);
}

/* ib_store_variant_put records only a blob that decompresses to the layer. */
static void test_variant_put_verifies(void **state)
{
	(void)state;
	fixture f;
	setup(&f, "trust-put");
	ib_assert_error_contains(ib_store_variant_put(f.t.store, &f.diff, &f.evil, IB_MEDIA_TYPE_OCI_LAYER_GZIP),
				 "decompresses to");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	/* the right bytes, but not gzip as the media type says */
	ib_assert_error_contains(ib_store_variant_put(f.t.store, &f.diff, &f.diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP),
				 "not gzip-compressed");
	ib_assert_error_contains(ib_store_variant_put(f.t.store, &f.diff, &f.good, IB_MEDIA_TYPE_OCI_LAYER_ZSTD),
				 "not zstd-compressed");
	assert_no_variant(&f);
	ib_digest got;
	assert_int_equal(ib_store_variant_put(f.t.store, &f.diff, &f.good, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &f.diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&got, &f.good));
	/* a bad one does not replace it */
	assert_true(ib_store_variant_put(f.t.store, &f.diff, &f.evil, IB_MEDIA_TYPE_OCI_LAYER_GZIP) < 0);
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &f.diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&got, &f.good));
	assert_int_equal(ib_store_fsck(NULL, f.t.store), 0);
	ts_close(&f.t);
}

/*
 * What pull and load do with each layer: a blob claiming a diff_id the store
 * already holds is checked all the same.
 */
static void test_uncompress_layer_present(void **state)
{
	(void)state;
	fixture f;
	setup(&f, "trust-uncompress");
	ib_assert_error_contains(ib_store_layer_uncompress(f.t.store, &f.evil, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP, &f.diff),
				 "decompresses to");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	assert_no_variant(&f);
	/* an uncompressed layer's digest must be its diff_id */
	ib_assert_error_contains(ib_store_layer_uncompress(f.t.store, &f.plain, IB_MEDIA_TYPE_OCI_LAYER, &f.diff),
				 "must be its diff_id");
	assert_int_equal(ib_store_layer_uncompress(f.t.store, &f.diff, IB_MEDIA_TYPE_OCI_LAYER, &f.diff), 0);
	/* the store's layer is untouched, and the right blob is accepted */
	assert_int_equal(ib_store_fsck(NULL, f.t.store), 0);
	assert_int_equal(ib_store_layer_uncompress(f.t.store, &f.good, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP, &f.diff), 0);
	ib_digest got;
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &f.diff, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&got, &f.good));
	/* pulled again: the checked record is enough; another blob is still checked */
	assert_int_equal(ib_store_layer_uncompress(f.t.store, &f.good, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP, &f.diff), 0);
	ib_assert_error_contains(ib_store_layer_uncompress(f.t.store, &f.evil, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP, &f.diff),
				 "decompresses to");
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &f.diff, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&got, &f.good));
	ts_close(&f.t);
}

/* The layer absent: the uncompressed copy is checked as it is written; nothing is left recorded. */
static void test_uncompress_layer_absent(void **state)
{
	(void)state;
	fixture f;
	setup(&f, "trust-absent");
	ib_digest other;
	ib_digest_of(&other, "not the layer", 13);
	ib_assert_error_contains(ib_store_layer_uncompress(f.t.store, &f.evil, IB_MEDIA_TYPE_OCI_LAYER_GZIP, &other),
				 "does not match");
	assert_int_equal(ib_store_blob_has(f.t.store, &other), 0);
	ib_digest got;
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &other, IB_MEDIA_TYPE_OCI_LAYER_GZIP), IB_ENOTFOUND);
	ts_close(&f.t);
}

/* ---- load of a hand-made OCI layout ---- */

static void layout_blob(ib_digest *d, uint64_t *size, const char *dir, const void *data, size_t len)
{
	ib_digest_of(d, data, len);
	char hex[IB_DIGEST_HEXLEN + 1], path[4200];
	ib_digest_hex(hex, d);
	snprintf(path, sizeof path, "%s/blobs/sha256/%s", dir, hex);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
	*size = len;
}

/* An OCI layout at `dir` naming image docker.io/library/evil:1 whose one layer is `layer` (a blob of `s`). */
static void make_layout(const char *dir, ib_store *s, const ib_digest *layer, const char *layer_type,
			const ib_digest *diff_id)
{
	char path[4200], ds[IB_DIGEST_STRLEN], cs[IB_DIGEST_STRLEN], ls[IB_DIGEST_STRLEN], ms[IB_DIGEST_STRLEN];
	snprintf(path, sizeof path, "mkdir -p '%s/blobs/sha256'", dir);
	assert_int_equal(system(path), 0);
	snprintf(path, sizeof path, "%s/oci-layout", dir);
	ts_write_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}");
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_store_blob_read(&b, s, layer), 0);
	ib_digest ld, cd, md;
	uint64_t lsize, csize, msize;
	layout_blob(&ld, &lsize, dir, b.ptr, b.size);
	ib_buf_dispose(&b);
	ib_digest_fmt(ds, diff_id);
	char doc[4096];
	snprintf(doc, sizeof doc,
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
		 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}", ds);
	layout_blob(&cd, &csize, dir, doc, strlen(doc));
	ib_digest_fmt(cs, &cd);
	ib_digest_fmt(ls, &ld);
	snprintf(doc, sizeof doc,
		 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu},"
		 "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu}]}",
		 IB_MEDIA_TYPE_OCI_MANIFEST, IB_MEDIA_TYPE_OCI_CONFIG, cs, (unsigned long long)csize, layer_type, ls,
		 (unsigned long long)lsize);
	layout_blob(&md, &msize, dir, doc, strlen(doc));
	ib_digest_fmt(ms, &md);
	snprintf(doc, sizeof doc,
		 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu,"
		 "\"annotations\":{\"org.opencontainers.image.ref.name\":\"docker.io/library/evil:1\"}}]}",
		 IB_MEDIA_TYPE_OCI_MANIFEST, ms, (unsigned long long)msize);
	snprintf(path, sizeof path, "%s/index.json", dir);
	ts_write_file(path, doc);
}

static void test_load_poisoned(void **state)
{
	(void)state;
	fixture f;
	setup(&f, "trust-load");
	char *dir = ts_path(&f.t, "evil-layout");
	ib_image *img;
	/* a gzip of other bytes claiming the base layer's diff_id */
	make_layout(dir, f.t.store, &f.evil, IB_MEDIA_TYPE_OCI_LAYER_GZIP, &f.diff);
	ib_assert_error_contains(ib_store_load(NULL, f.t.store, dir, NULL), "decompresses to");
	assert_no_variant(&f);
	assert_int_equal(ib_store_image_lookup(&img, f.t.store, "docker.io/library/evil:1"), IB_ENOTFOUND);
	ib_error_clear();
	ts_rm_rf(dir);
	/* an uncompressed layer that is not its diff_id */
	make_layout(dir, f.t.store, &f.plain, IB_MEDIA_TYPE_OCI_LAYER, &f.diff);
	ib_assert_error_contains(ib_store_load(NULL, f.t.store, dir, NULL), "must be its diff_id");
	assert_int_equal(ib_store_image_lookup(&img, f.t.store, "docker.io/library/evil:1"), IB_ENOTFOUND);
	ib_error_clear();
	ts_rm_rf(dir);
	/* the honest gzip loads, and is remembered as the variant */
	make_layout(dir, f.t.store, &f.good, IB_MEDIA_TYPE_OCI_LAYER_GZIP, &f.diff);
	assert_int_equal(ib_store_load(NULL, f.t.store, dir, NULL), 0);
	ib_digest got;
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &f.diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&got, &f.good));
	assert_int_equal(ib_store_fsck(NULL, f.t.store), 0);
	free(dir);
	ts_close(&f.t);
}

/* ---- records an older version wrote: fsck reports them, GC drops them ---- */

static void write_record(fixture *f, const ib_digest *blob, const char *annotation)
{
	char hex[IB_DIGEST_HEXLEN + 1], bs[IB_DIGEST_STRLEN], rel[128], doc[1024];
	ib_digest_hex(hex, &f->diff);
	ib_digest_fmt(bs, blob);
	uint64_t size;
	assert_int_equal(ib_store_blob_size(&size, f->t.store, blob), 0);
	int n = snprintf(doc, sizeof doc, "{\"variants\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu%s%s%s}]}",
			 IB_MEDIA_TYPE_OCI_LAYER_GZIP, bs, (unsigned long long)size,
			 annotation ? ",\"annotations\":{\"org.imagebuild.verified.diff_id\":\"" : "",
			 annotation ? annotation : "", annotation ? "\"}" : "");
	assert_true(n > 0 && (size_t)n < sizeof doc);
	char *dir = ts_path(&f->t, "store/variants");
	mkdir(dir, 0755);
	free(dir);
	snprintf(rel, sizeof rel, "store/variants/%s.json", hex);
	char *p = ts_path(&f->t, rel);
	ts_write_file(p, doc);
	free(p);
}

static int record_exists(fixture *f)
{
	char hex[IB_DIGEST_HEXLEN + 1], rel[128];
	ib_digest_hex(hex, &f->diff);
	snprintf(rel, sizeof rel, "store/variants/%s.json", hex);
	char *p = ts_path(&f->t, rel);
	int r = access(p, F_OK) == 0;
	free(p);
	return r;
}

static void test_fsck_gc_bad_records(void **state)
{
	(void)state;
	fixture f;
	setup(&f, "trust-fsck");
	char ds[IB_DIGEST_STRLEN], es[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, &f.diff);
	ib_digest_fmt(es, &f.evil);
	ib_store_fsck_options full = IB_STORE_FSCK_OPTIONS_INIT;
	full.full = 1;
	ib_buf report = IB_BUF_INIT, good = IB_BUF_INIT;
	ib_digest got;
	assert_int_equal(ib_store_blob_read(&good, f.t.store, &f.good), 0);

	/* what today's pull recorded: a poisoned variant without the check's mark */
	write_record(&f, &f.evil, NULL);
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &f.diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), IB_ENOTFOUND);
	ib_assert_error_contains(ib_store_fsck(&report, f.t.store), "recorded without being checked");
	assert_non_null(strstr(report.ptr, es));
	ib_buf_clear(&report);
	ib_assert_error_contains(ib_store_fsck_ext(&report, f.t.store, &full), "decompresses to");
	assert_non_null(strstr(report.ptr, ds));
	ib_buf_clear(&report);

	/* a forged mark passes the cheap checks; --full decompresses */
	write_record(&f, &f.evil, ds);
	assert_int_equal(ib_store_fsck(NULL, f.t.store), 0);
	ib_assert_error_contains(ib_store_fsck_ext(&report, f.t.store, &full), "decompresses to");
	assert_non_null(strstr(report.ptr, es));
	ib_buf_clear(&report);

	/* not gzip at all: the cheap checks see it */
	write_record(&f, &f.plain, ds);
	ib_assert_error_contains(ib_store_fsck(NULL, f.t.store), "is not " IB_MEDIA_TYPE_OCI_LAYER_GZIP);

	/* GC (prune) drops what fails the cheap checks, and the blob goes with it */
	write_record(&f, &f.evil, NULL);
	assert_int_equal(ib_store_gc(NULL, f.t.store, NULL), 0);
	assert_false(record_exists(&f));
	assert_int_equal(ib_store_blob_has(f.t.store, &f.evil), 0);
	assert_int_equal(ib_store_fsck_ext(NULL, f.t.store, &full), 0);
	assert_int_equal(ib_store_blob_has(f.t.store, &f.diff), 1);

	/* a damaged record file: fsck reports it, GC drops it */
	write_record(&f, &f.diff, ds);
	char hex[IB_DIGEST_HEXLEN + 1], rel[128];
	ib_digest_hex(hex, &f.diff);
	snprintf(rel, sizeof rel, "store/variants/%s.json", hex);
	char *p = ts_path(&f.t, rel);
	ts_write_file(p, "{\"variants\":7}");
	free(p);
	assert_true(ib_store_fsck(NULL, f.t.store) < 0);
	assert_int_equal(ib_store_gc(NULL, f.t.store, NULL), 0);
	assert_false(record_exists(&f));
	assert_int_equal(ib_store_fsck(NULL, f.t.store), 0);

	/* a checked record stays (GC removed the unreferenced gzip blob: put it back) */
	ib_digest again;
	assert_int_equal(ib_store_blob_put(&again, f.t.store, good.ptr, good.size), 0);
	assert_true(ib_digest_equal(&again, &f.good));
	ib_buf_dispose(&good);
	assert_int_equal(ib_store_layer_uncompress(f.t.store, &f.good, IB_MEDIA_TYPE_OCI_LAYER_GZIP, &f.diff), 0);
	assert_int_equal(ib_store_gc(NULL, f.t.store, NULL), 0);
	assert_true(record_exists(&f));
	assert_int_equal(ib_store_variant_get(&got, NULL, f.t.store, &f.diff, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	assert_true(ib_digest_equal(&got, &f.good));
	assert_int_equal(ib_store_fsck_ext(NULL, f.t.store, &full), 0);
	ib_buf_dispose(&report);
	ts_close(&f.t);
}

/* ---- save of an image with several names ---- */

static void test_save_multi_name(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "trust-save");
	ts_import(&t, "quay.io/org/app:v1", "several names");
	assert_int_equal(ib_store_tag(t.store, "quay.io/org/app:v1", "quay.io/org/app:v2"), 0);
	assert_int_equal(ib_store_tag(t.store, "quay.io/org/app:v1", "example.com/other:latest"), 0);
	const char *each[] = { "quay.io/org/app:v1", "quay.io/org/app:v2", "example.com/other:latest" };
	for (int fmt = IB_ARCHIVE_OCI; fmt <= IB_ARCHIVE_DOCKER; fmt++) {
		for (size_t i = 0; i < 3; i++) {
			char rel[64];
			snprintf(rel, sizeof rel, "out-%d-%zu", fmt, i);
			char *out = ts_path(&t, rel);
			ib_save_options so = IB_SAVE_OPTIONS_INIT;
			so.format = (ib_archive_format)fmt;
			if (ib_store_save(t.store, &each[i], 1, out, &so) < 0)
				fail_msg("save %s: %s", each[i], ib_error_last()->message);
			/* the archive names the image by the name asked for */
			test_store u;
			ts_open(&u, "trust-save-load");
			ib_strarray loaded = IB_STRARRAY_INIT;
			if (ib_store_load(&loaded, u.store, out, NULL) < 0)
				fail_msg("load %s: %s", out, ib_error_last()->message);
			assert_int_equal(loaded.count, 1);
			ib_image *img;
			assert_int_equal(ib_store_image_lookup(&img, u.store, each[i]), 0);
			ib_image_free(img);
			ib_strarray_dispose(&loaded);
			ts_close(&u);
			ts_rm_rf(out);
			free(out);
		}
	}
	/* all the names at once */
	char *out = ts_path(&t, "all.tar");
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.format = IB_ARCHIVE_DOCKER;
	if (ib_store_save(t.store, each, 3, out, &so) < 0)
		fail_msg("save: %s", ib_error_last()->message);
	free(out);
	ts_close(&t);
}

DEFINE_GROUP(trust_tests,
	cmocka_unit_test(test_variant_put_verifies),
	cmocka_unit_test(test_uncompress_layer_present),
	cmocka_unit_test(test_uncompress_layer_absent),
	cmocka_unit_test(test_load_poisoned),
	cmocka_unit_test(test_fsck_gc_bad_records),
	cmocka_unit_test(test_save_multi_name))
