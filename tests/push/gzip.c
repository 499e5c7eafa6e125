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
	/*
	 * as a push does: the compressors of one layer serve the next; gzip_of's second
	 * compression of each layer runs on reused sets and must give the same bytes
	 * (under ASan, nothing of a kept set leaks or is used after its free)
	 */
	ib_push__gzip_keep(1);
	gzip_of(s, 0, 1, 1, 0);                       /* an empty layer: one empty member */
	gzip_of(s, 1000, 2, 1, 0);
	gzip_of(s, (1u << 20), 3, 1, 0);              /* exactly one chunk */
	gzip_of(s, (7u << 20) + 12345, 4, 8, 0);      /* more chunks than a batch */
	gzip_of(s, (3u << 20) + 5, 5, 4, 1);          /* incompressible: stored members */
	/* layers of IB_BIGIO_MIN and more: the ring of slots goes round many times, the last member short */
	gzip_of(s, (9u << 20) + 777, 6, 10, 0);
	gzip_of(s, (12u << 20) + 4096, 7, 13, 1);
	ib_push__gzip_keep(0);
	/* and without keeping them (each set freed by its worker) */
	gzip_of(s, (1u << 20), 3, 1, 0);
	gzip_of(s, (3u << 20) + 5, 5, 4, 1);
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

/* Log-like text (timestamps, levels, words, hex ids), the same bytes every run. */
static void log_text(ib_buf *out, size_t len)
{
	static const char *const words[] = { "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing",
					     "elit", "sed", "do", "eiusmod", "tempor", "GET", "POST", "INFO", "WARN",
					     "ERROR", "DEBUG", "200", "404", "500", "magna", "aliqua", "labore" };
	uint64_t x = 0x2545F4914F6CDD1DULL;
	for (unsigned long line = 0; out->size < len; line++) {
		ib_buf_printf(out, "2024-01-01T%02lu:%02lu:%02lu.%06luZ", line / 3600 % 24, line / 60 % 60, line % 60,
			      (unsigned long)(x % 1000000));
		for (int w = 0; w < 6 + (int)(x % 7); w++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			ib_buf_printf(out, " %s", words[x % (sizeof words / sizeof words[0])]);
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		ib_buf_printf(out, " %08x\n", (unsigned)(x >> 20));
	}
	ib_buf_truncate(out, len);
}

/*
 * Source-like text as a layer holds it (the reference workload's src/):
 * small files of word lines, 64 B to 8 KiB, each behind a 512-byte
 * tar-like header and padded to 512 bytes, the same bytes every run.
 */
static void source_tar(ib_buf *out, size_t len)
{
	static const char *const words[] = { "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta",
					     "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi",
					     "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "layer",
					     "image", "build", "cache", "digest", "blob", "manifest", "config" };
	const size_t nwords = sizeof words / sizeof words[0];
	uint64_t x = 0x9E3779B97F4A7C15ULL;
#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
	for (unsigned file = 0; out->size < len; file++) {
		char header[512];
		memset(header, 0, sizeof header);
		snprintf(header, 100, "app/src/d%02u/sub%u/file%03u.txt", file / 50 % 40, file / 50 % 3, file % 50);
		unsigned k = (unsigned)(NEXT() % 7); /* 64 B .. 8 KiB, about log-uniform */
		size_t size = ((size_t)64 << k) + (size_t)(NEXT() % ((uint64_t)64 << k));
		snprintf(header + 100, 8, "%07o", 0644);
		snprintf(header + 124, 12, "%011zo", size);
		snprintf(header + 136, 12, "%011o", 1704067200u);
		memcpy(header + 257, "ustar", 6);
		ib_buf_put(out, header, sizeof header);
		size_t start = out->size;
		while (out->size - start < size) {
			ib_buf_printf(out, "%06u", file); /* gen.sh numbers a file's lines with the file */
			for (int w = 0, n = 3 + (int)(NEXT() % 7); w < n; w++)
				ib_buf_printf(out, " %s", words[NEXT() % nwords]);
			ib_buf_printf(out, " %08x\n", (unsigned)(NEXT() >> 32));
		}
		ib_buf_truncate(out, start + size);
		while (out->size % 512)
			ib_buf_putc(out, '\0');
	}
#undef NEXT
	ib_buf_truncate(out, len);
}

/* The size of `gzip -6` of `data`: zlib at level 6, a gzip wrapper (what gzip(1) writes, but for its header's name). */
static size_t zlib6_size(const char *data, size_t len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	unsigned char out[1 << 16];
	size_t total = 0;
	z.next_in = (unsigned char *)data;
	z.avail_in = (uInt)len;
	int r;
	do {
		z.next_out = out;
		z.avail_out = sizeof out;
		r = deflate(&z, Z_FINISH);
		assert_true(r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR);
		total += sizeof out - z.avail_out;
	} while (r != Z_STREAM_END);
	deflateEnd(&z);
	return total;
}

/* ours (at `level`, 0: the default) and zlib -6's size of `layer`, in percent */
static double gzip_vs_gzip6(ib_store *s, const ib_buf *layer, int level, ib_digest *d, ib_digest *g)
{
	uint64_t ours = 0;
	assert_int_equal(ib_store_blob_put(d, s, layer->ptr, layer->size), 0);
	if (level)
		assert_int_equal(ib_push__gzip_layer_level(g, &ours, s, d, level), 0);
	else
		assert_int_equal(ib_push__gzip_layer(g, &ours, s, d), 0);
	size_t theirs = zlib6_size(layer->ptr, layer->size);
	assert_true(theirs < layer->size / 2); /* the input does compress */
	double pct = 100.0 * (double)ours / (double)theirs;
	print_message("gzip level %d of %zu bytes: ours %llu, zlib -6 %zu (%.2f%%)\n", level, layer->size,
		      (unsigned long long)ours, theirs, pct);
	return pct;
}

/*
 * The parallel 1 MiB members at the default level lose little to one
 * gzip -6 stream: on fixed compressible inputs (6 MiB of log lines, 6 MiB
 * of small source-like files in a tar) the result is within 5% of zlib's
 * level 6 over the whole input. (libdeflate's level 5, the default before,
 * is over it on the source-like tar: shown below, so this test can fail.)
 */
static void test_gzip_size_near_gzip6(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("gzip-size");
	ib_store *s = NULL;
	assert_int_equal(ib_store_open(&s, dir, NULL), 0);
	ib_buf layer = IB_BUF_INIT, src = IB_BUF_INIT;
	log_text(&layer, 6u << 20);
	source_tar(&src, 6u << 20);
	ib_digest d, g, ds, gs;
	assert_true(gzip_vs_gzip6(s, &layer, 0, &d, &g) <= 105.0);
	assert_true(gzip_vs_gzip6(s, &src, 0, &ds, &gs) <= 105.0);
	assert_true(gzip_vs_gzip6(s, &src, 5, &ds, &gs) > 105.0);
	/* and it is that layer (g: its default gzip, made above) */
	assert_int_equal(ib_store_variant_put(s, &d, &g, IB_MEDIA_TYPE_OCI_LAYER_GZIP), 0);
	/* the default is libdeflate's level 6 (lib/push/internal.h): the same bytes as asking for 6 */
	ib_digest g5, g6;
	uint64_t s5 = 0, s6 = 0, ours = 0;
	assert_int_equal(ib_push__gzip_layer_level(&g5, &s5, s, &d, 5), 0);
	assert_int_equal(ib_push__gzip_layer_level(&g6, &s6, s, &d, 6), 0);
	assert_true(ib_digest_equal(&g, &g6));
	assert_false(ib_digest_equal(&g, &g5));
	assert_true(s6 < s5); /* 6 compresses more, 5 is faster */
	/* levels: 1-9, another refused */
	assert_int_equal(ib_push__gzip_layer_level(&g, &ours, s, &d, 10), IB_EINVALID);
	ib_error_clear();
	assert_int_equal(ib_push__gzip_layer_level(&g, &ours, s, &d, -1), IB_EINVALID);
	ib_error_clear();
	ib_buf_dispose(&layer);
	ib_buf_dispose(&src);
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

/* zstd of a layer: one frame that decompresses to the layer (the store checks it), the same bytes every time. */
static void zstd_of(ib_store *s, size_t len, int with_random, int level)
{
	ib_buf layer = IB_BUF_INIT;
	log_text(&layer, len);
	if (with_random) { /* a quarter that does not compress */
		uint64_t x = 88172645463325252ULL;
		for (size_t i = 0; i < len / 4; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			layer.ptr[i * 4 % (len ? len : 1)] = (char)x;
		}
	}
	ib_digest d, z1, z2;
	uint64_t size1 = 0, size2 = 0;
	assert_int_equal(ib_store_blob_put(&d, s, layer.ptr ? layer.ptr : "", layer.size), 0);
	assert_int_equal(ib_push__zstd_layer(&z1, &size1, s, &d, level), 0);
	ib_buf z = IB_BUF_INIT;
	assert_int_equal(ib_store_blob_read(&z, s, &z1), 0);
	assert_int_equal(z.size, size1);
	assert_true(z.size >= 4 && !memcmp(z.ptr, "\x28\xb5\x2f\xfd", 4));
	if (len >= 4096 && !with_random)
		assert_true(size1 < len / 2);
	/* decompressed (libarchive, streaming) and hashed: it is the layer */
	assert_int_equal(ib_store_variant_put(s, &d, &z1, IB_MEDIA_TYPE_OCI_LAYER_ZSTD), 0);
	ib_digest v;
	assert_int_equal(ib_store_variant_get(&v, NULL, s, &d, IB_MEDIA_TYPE_OCI_LAYER_ZSTD), 0);
	assert_true(ib_digest_equal(&v, &z1));
	assert_int_equal(ib_push__zstd_layer(&z2, &size2, s, &d, level), 0);
	assert_true(ib_digest_equal(&z1, &z2));
	ib_buf_dispose(&z);
	ib_buf_dispose(&layer);
}

static void test_zstd_round_trip(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("zstd");
	ib_store *s = NULL;
	assert_int_equal(ib_store_open(&s, dir, NULL), 0);
	zstd_of(s, 0, 0, 0);                  /* an empty layer: one empty frame */
	zstd_of(s, 1000, 0, 0);
	zstd_of(s, (5u << 20) + 7, 0, 0);     /* more than one 4 MiB input piece */
	zstd_of(s, (2u << 20) + 3, 1, 0);
	zstd_of(s, (256u << 10), 0, 19);
	ib_digest d, z;
	assert_int_equal(ib_store_blob_put(&d, s, "x", 1), 0);
	assert_int_equal(ib_push__zstd_layer(&z, NULL, s, &d, 23), IB_EINVALID);
	ib_error_clear();
	ib_store_free(s);
	ib_rm_rf(dir);
	free(dir);
}

const struct CMUnitTest gzip_tests[] = {
	cmocka_unit_test(test_parallel_gzip_round_trip),
	cmocka_unit_test(test_gzip_size_near_gzip6),
	cmocka_unit_test(test_zstd_round_trip),
};
const size_t gzip_tests_count = sizeof gzip_tests / sizeof gzip_tests[0];
