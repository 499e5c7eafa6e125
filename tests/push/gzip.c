/* Layers leave as multi-member gzip made in parallel: it must read back as the layer. */
#include "tests.h"
#include <zlib.h>

/* Inflate every member of a gzip stream; returns the number of members, -1 on error. */
static int gunzip_all(ib_buf *out, const unsigned char *data, size_t len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return -1;
	unsigned char chunk[65536];
	int members = 0;
	z.next_in = (unsigned char *)data;
	z.avail_in = (uInt)len;
	while (z.avail_in > 0) {
		z.next_out = chunk;
		z.avail_out = sizeof chunk;
		int r = inflate(&z, Z_NO_FLUSH);
		ib_buf_put(out, chunk, sizeof chunk - z.avail_out);
		if (r == Z_STREAM_END) {
			members++;
			inflateReset(&z);
		} else if (r != Z_OK) {
			inflateEnd(&z);
			return -1;
		}
	}
	inflateEnd(&z);
	return members;
}

static void gzip_of(ib_store *s, size_t len, unsigned seed, int expect_members, int random)
{
	ib_buf layer = IB_BUF_INIT, gz = IB_BUF_INIT, back = IB_BUF_INIT;
	if (random) {
		/* bytes that do not compress: the members are stored */
		uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
		ib_buf_grow(&layer, len);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			layer.ptr[i] = (char)(x >> 32);
		}
		layer.size = len;
	}
	/* text with some structure: compressible, but not trivially */
	for (size_t i = 0; layer.size < len; i++)
		ib_buf_printf(&layer, "line %zu of layer %u: %08x\n", i, seed, (unsigned)(i * 2654435761u ^ seed));
	ib_buf_truncate(&layer, len);
	ib_digest d, g1, g2;
	uint64_t size1 = 0, size2 = 0;
	assert_int_equal(ib_store_blob_put(&d, s, layer.ptr ? layer.ptr : "", layer.size), 0);
	assert_int_equal(ib_push__gzip_layer(&g1, &size1, s, &d), 0);
	assert_int_equal(ib_store_blob_read(&gz, s, &g1), 0);
	assert_int_equal(gz.size, size1);
	if (random)
		assert_true(size1 >= len && size1 < len + len / 100 + 4096);
	else
		assert_true(size1 < len / 2 || len < 4096);
	int members = gunzip_all(&back, (const unsigned char *)gz.ptr, gz.size);
	assert_int_equal(members, expect_members);
	assert_int_equal(back.size, layer.size);
	if (len)
		assert_memory_equal(back.ptr, layer.ptr, len);
	/* the same bytes every time, whatever the threads did */
	assert_int_equal(ib_push__gzip_layer(&g2, &size2, s, &d), 0);
	assert_true(ib_digest_equal(&g1, &g2));
	ib_buf_dispose(&layer);
	ib_buf_dispose(&gz);
	ib_buf_dispose(&back);
}

static void test_parallel_gzip_round_trip(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("gzip");
	ib_store *s = NULL;
	assert_int_equal(ib_store_open(&s, dir, NULL), 0);
	gzip_of(s, 0, 1, 1, 0);                       /* an empty layer: one empty member */
	gzip_of(s, 1000, 2, 1, 0);
	gzip_of(s, (1u << 20), 3, 1, 0);              /* exactly one chunk */
	gzip_of(s, (7u << 20) + 12345, 4, 8, 0);      /* more chunks than a batch */
	gzip_of(s, (3u << 20) + 5, 5, 4, 1);          /* incompressible: stored members */
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

const struct CMUnitTest gzip_tests[] = {
	cmocka_unit_test(test_parallel_gzip_round_trip),
};
const size_t gzip_tests_count = sizeof gzip_tests / sizeof gzip_tests[0];
