/* Platforms: containerd's normalisation, and lookups that never take another platform's image. */
#include "tests.h"

#include <stdio.h>
#include <string.h>

static void test_normalize(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "linux/amd64", "linux/amd64" },     { "linux/x86_64", "linux/amd64" }, { "LINUX/AMD64", "linux/amd64" },
		{ "linux/aarch64", "linux/arm64" },   { "linux/arm64/v8", "linux/arm64" }, { "arm64", "linux/arm64" },
		{ "linux/arm", "linux/arm/v7" },      { "linux/arm/7", "linux/arm/v7" }, { "linux/armhf", "linux/arm/v7" },
		{ "linux/i386", "linux/386" },        { "linux/s390x", "linux/s390x" }, { "linux/amd64/v1", "linux/amd64" },
		{ "linux/amd64/v3", "linux/amd64/v3" }, { "linux/armv7l", "linux/arm/v7" },
	};
	ib_buf b = IB_BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (ib_platform_normalize(&b, cases[i][0]) < 0)
			fail_msg("%s: %s", cases[i][0], ib_error_last()->message);
		if (strcmp(b.ptr, cases[i][1]))
			fail_msg("%s gave %s, not %s", cases[i][0], b.ptr, cases[i][1]);
	}
	static const char *const bad[] = { "", "linux/", "/amd64", "linux/a b", "linux/amd64/v2/x" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ib_platform_normalize(&b, bad[i]), IB_EINVALID);
	ib_buf_dispose(&b);
}

/* An image of `arch` committed untagged; its manifest digest and size in md/size. */
static void commit_arch(test_store *t, const char *arch, const char *content, ib_digest *md, uint64_t *size)
{
	ib_layer l;
	memset(&l, 0, sizeof l);
	l.digest = ts_layer(t, content);
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_int_equal(ib_image_config_set(c, IB_CONFIG_ARCHITECTURE, arch), 0);
	assert_int_equal(ib_image_config_diff_id_add(c, &l.digest), 0);
	if (ib_store_image_commit(NULL, md, t->store, c, &l, 1, NULL) < 0)
		fail_msg("commit: %s", ib_error_last()->message);
	ib_image_config_free(c);
	assert_int_equal(ib_store_blob_size(size, t->store, md), 0);
}

static void test_lookup_platform(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "platform");
	ib_digest amd, arm, s390, top;
	uint64_t sa, sr, ss;
	commit_arch(&t, "amd64", "a", &amd, &sa);
	commit_arch(&t, "arm64", "r", &arm, &sr);
	commit_arch(&t, "s390x", "s", &s390, &ss);
	char as[IB_DIGEST_STRLEN], rs[IB_DIGEST_STRLEN], zs[IB_DIGEST_STRLEN], ts[IB_DIGEST_STRLEN];
	ib_digest_fmt(as, &amd);
	ib_digest_fmt(rs, &arm);
	ib_digest_fmt(zs, &s390);
	/* an index of three platforms, of which the store lacks s390x's manifest: only its digest is named */
	char idx[1024];
	snprintf(idx, sizeof idx,
		 "{\"schemaVersion\":2,\"mediaType\":\"" IB_MEDIA_TYPE_OCI_INDEX "\",\"manifests\":["
		 "{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%llu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		 "{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%llu,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
		 "{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"sha256:%064d\",\"size\":%llu,\"platform\":{\"os\":\"linux\",\"architecture\":\"ppc64le\"}}]}",
		 as, (unsigned long long)sa, rs, (unsigned long long)sr, 0, (unsigned long long)ss);
	assert_int_equal(ib_store_blob_put(&top, t.store, idx, strlen(idx)), 0);
	assert_int_equal(ib_store_tag_manifest(t.store, "multi:1", &top), 0);
	ib_digest_fmt(ts, &top);

	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, "multi:1", "linux/aarch64"), 0);
	assert_true(ib_digest_equal(ib_image_manifest_digest(img), &arm));
	assert_non_null(ib_image_index_digest(img));
	assert_true(ib_digest_equal(ib_image_index_digest(img), &top));
	ib_image_free(img);
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, "multi:1", "linux/amd64"), 0);
	assert_true(ib_digest_equal(ib_image_manifest_digest(img), &amd));
	ib_image_free(img);
	/* named by the index, not in the store; not named at all: never another platform */
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, "multi:1", "linux/ppc64le"), IB_ENOTFOUND);
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, "multi:1", "linux/riscv64"), IB_ENOTFOUND);
	/* a single manifest: its config decides */
	assert_int_equal(ib_store_tag_manifest(t.store, "zonly:1", &s390), 0);
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, "zonly:1", "linux/s390x"), 0);
	assert_null(ib_image_index_digest(img));
	ib_image_free(img);
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, "zonly:1", "linux/arm64"), IB_ENOTFOUND);
	assert_non_null(strstr(ib_error_last()->message, "is linux/s390x, not linux/arm64"));
	/* the index's children from its JSON */
	ib_digest d;
	assert_int_equal(ib_store_index_platform_for(&d, NULL, idx, strlen(idx), "linux/arm64/v8"), 0);
	assert_true(ib_digest_equal(&d, &arm));
	assert_int_equal(ib_store_index_platform_for(&d, NULL, idx, strlen(idx), "linux/s390x"), IB_ENOTFOUND);
	assert_non_null(strstr(ib_error_last()->message, "linux/arm64/v8"));
	/* the platforms' own untagged entries go; the index's children stay */
	assert_int_equal(ib_store_untagged_drop(t.store, &arm), 0);
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, ts, "linux/arm64"), 0);
	ib_image_free(img);
	(void)zs;
	ts_close(&t);
}

/* ib_store_image_platforms: an index's platforms (present or not, attestations left out), a single manifest's one */
static void test_image_platforms(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "platforms");
	ib_digest amd, arm, top, single;
	uint64_t sa, sr, sz;
	commit_arch(&t, "amd64", "a", &amd, &sa);
	commit_arch(&t, "arm64", "r", &arm, &sr);
	commit_arch(&t, "s390x", "s", &single, &sz);
	char as[IB_DIGEST_STRLEN], rs[IB_DIGEST_STRLEN], idx[2048];
	ib_digest_fmt(as, &amd);
	ib_digest_fmt(rs, &arm);
	snprintf(idx, sizeof idx,
		 "{\"schemaVersion\":2,\"mediaType\":\"" IB_MEDIA_TYPE_OCI_INDEX "\",\"manifests\":["
		 "{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%llu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		 "{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"sha256:%064d\",\"size\":9,\"platform\":{\"os\":\"linux\",\"architecture\":\"ppc64le\"}},"
		 "{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%llu,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
		 "{\"mediaType\":\"" IB_MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%llu,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}}]}",
		 as, (unsigned long long)sa, 1, rs, (unsigned long long)sr, rs, (unsigned long long)sr);
	assert_int_equal(ib_store_blob_put(&top, t.store, idx, strlen(idx)), 0);
	assert_int_equal(ib_store_tag_manifest(t.store, "multi:1", &top), 0);

	ib_image_platform_list *l = NULL;
	if (ib_store_image_platforms(&l, t.store, &top) < 0)
		fail_msg("platforms: %s", ib_error_last()->message);
	assert_int_equal(ib_image_platform_list_count(l), 3);
	const ib_image_platform *p0 = ib_image_platform_list_get(l, 0), *p1 = ib_image_platform_list_get(l, 1),
				*p2 = ib_image_platform_list_get(l, 2);
	assert_null(ib_image_platform_list_get(l, 3));
	assert_string_equal(p0->platform, "linux/amd64");
	assert_string_equal(p1->platform, "linux/ppc64le");
	assert_string_equal(p2->platform, "linux/arm64/v8");
	assert_true(ib_digest_equal(&p0->manifest, &amd));
	assert_true(ib_digest_equal(&p2->manifest, &arm));
	assert_int_equal(p0->available, 1);
	assert_int_equal(p1->available, 0); /* named, not in the store */
	assert_int_equal(p1->size, 0);
	assert_int_equal(p2->available, 1);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup_platform(&img, t.store, "multi:1", "linux/amd64"), 0);
	assert_true(ib_digest_equal(&p0->id, ib_image_id(img)));
	assert_int_equal(p0->size, ib_image_size(img));
	/* manifest + config + the layer as stored */
	uint64_t cfg = 0;
	assert_int_equal(ib_store_blob_size(&cfg, t.store, ib_image_id(img)), 0);
	assert_int_equal(p0->content_size, sa + cfg + ib_image_layer(img, 0)->size);
	assert_int_equal(p0->containers, 0);
	ib_image_free(img);
	ib_image_platform_list_free(l);

	/* a single manifest: one row, its config's platform */
	assert_int_equal(ib_store_image_platforms(&l, t.store, &single), 0);
	assert_int_equal(ib_image_platform_list_count(l), 1);
	assert_string_equal(ib_image_platform_list_get(l, 0)->platform, "linux/s390x");
	assert_int_equal(ib_image_platform_list_get(l, 0)->available, 1);
	assert_true(ib_digest_equal(&ib_image_platform_list_get(l, 0)->manifest, &single));
	ib_image_platform_list_free(l);
	/* not in the store */
	ib_digest none;
	memset(&none, 0, sizeof none);
	none = top;
	none.bytes[0] ^= 1;
	assert_int_equal(ib_store_image_platforms(&l, t.store, &none), IB_ENOTFOUND);
	assert_null(l);
	ts_close(&t);
}

DEFINE_GROUP(platform_tests,
	cmocka_unit_test(test_normalize),
	cmocka_unit_test(test_lookup_platform),
	cmocka_unit_test(test_image_platforms))
