#include "tests.h"
#include "util/hash.h"
#include "util/fs.h"
#include <unistd.h>

/* FIPS 180-2 vectors */
static const char *empty_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *abc_hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *long_hex = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

static void check(const ib_digest *d, const char *hex)
{
	char s[IB_DIGEST_STRLEN], h[IB_DIGEST_HEXLEN + 1];
	ib_digest_fmt(s, d);
	ib_digest_hex(h, d);
	assert_string_equal(h, hex);
	assert_string_equal(s + 7, hex);
	assert_memory_equal(s, "sha256:", 7);
}

static void known_vectors(void **state)
{
	(void)state;
	ib_digest d;
	assert_int_equal(ib_digest_of(&d, "", 0), 0);
	check(&d, empty_hex);
	assert_int_equal(ib_digest_of(&d, "abc", 3), 0);
	check(&d, abc_hex);
	const char *l = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_int_equal(ib_digest_of(&d, l, strlen(l)), 0);
	check(&d, long_hex);
}

static void streaming_equals_oneshot(void **state)
{
	(void)state;
	/* one million 'a': cdc76e5c... */
	ib_sha256 *h = ib_sha256_new();
	char chunk[1000];
	memset(chunk, 'a', sizeof chunk);
	for (int i = 0; i < 1000; i++)
		ib_sha256_update(h, chunk, sizeof chunk);
	ib_digest d;
	assert_int_equal(ib_sha256_final(h, &d), 0);
	check(&d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	ib_sha256_reset(h);
	ib_sha256_update(h, "a", 1);
	ib_sha256_update(h, "bc", 2);
	ib_sha256_final(h, &d);
	check(&d, abc_hex);
	ib_sha256_free(h);
}

static void parse_and_verify(void **state)
{
	(void)state;
	char s[100];
	ib_digest d, e;
	snprintf(s, sizeof s, "sha256:%s", abc_hex);
	assert_int_equal(ib_digest_parse(&d, s), 0);
	check(&d, abc_hex);
	assert_int_equal(ib_digest_verify(&d, "abc", 3), 0);
	ib_assert_error_contains(ib_digest_verify(&d, "abd", 3), "digest mismatch");
	ib_digest_of(&e, "abc", 3);
	assert_true(ib_digest_equal(&d, &e));
	ib_digest_of(&e, "", 0);
	assert_false(ib_digest_equal(&d, &e));
}

static void parse_rejects(void **state)
{
	(void)state;
	ib_digest d;
	char s[100];
	assert_int_equal(ib_digest_parse(&d, "sha512:abcd"), IB_EUNSUPPORTED);
	assert_int_equal(ib_digest_parse(&d, "sha256:abcd"), IB_EINVALID);
	assert_int_equal(ib_digest_parse(&d, abc_hex), IB_EINVALID);
	snprintf(s, sizeof s, "sha256:%s", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
	ib_assert_error_contains(ib_digest_parse(&d, s), "not lower-case hex");
	snprintf(s, sizeof s, "sha256:%s0", abc_hex);
	assert_int_equal(ib_digest_parse(&d, s), IB_EINVALID);
	snprintf(s, sizeof s, "sha256:%.63sg", abc_hex);
	assert_int_equal(ib_digest_parse(&d, s), IB_EINVALID);
}

static void hash_file(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("digest");
	char path[4200];
	snprintf(path, sizeof path, "%s/f", dir);
	assert_int_equal(ib_atomic_write(path, "abc", 3, 0644), 0);
	ib_digest d;
	uint64_t size = 0;
	assert_int_equal(ib_sha256_file(&d, path, &size), 0);
	assert_int_equal(size, 3);
	check(&d, abc_hex);
	unlink(path);
	ib_assert_error_contains(ib_sha256_file(&d, path, NULL), path);
	rmdir(dir);
	free(dir);
}

DEFINE_GROUP(digest_tests,
	cmocka_unit_test(known_vectors),
	cmocka_unit_test(streaming_equals_oneshot),
	cmocka_unit_test(parse_and_verify),
	cmocka_unit_test(parse_rejects),
	cmocka_unit_test(hash_file))
