#include "tests.h"

static void check_ok(const char *in, const char *name, const char *familiar, const char *domain, const char *path)
{
	ib_reference *r;
	if (ib_reference_parse(&r, in) < 0)
		fail_msg("`%s`: %s", in, ib_error_last()->message);
	if (strcmp(ib_reference_name(r), name))
		fail_msg("`%s`: name `%s`, want `%s`", in, ib_reference_name(r), name);
	if (familiar && strcmp(ib_reference_familiar(r), familiar))
		fail_msg("`%s`: familiar `%s`, want `%s`", in, ib_reference_familiar(r), familiar);
	if (domain && strcmp(ib_reference_domain(r), domain))
		fail_msg("`%s`: domain `%s`, want `%s`", in, ib_reference_domain(r), domain);
	if (path && strcmp(ib_reference_path(r), path))
		fail_msg("`%s`: path `%s`, want `%s`", in, ib_reference_path(r), path);
	ib_reference_free(r);
}

static void check_bad(const char *in, const char *why)
{
	ib_reference *r = NULL;
	int rc = ib_reference_parse(&r, in);
	if (rc >= 0)
		fail_msg("`%s` parsed as `%s`", in, ib_reference_name(r));
	assert_int_equal(rc, IB_ESYNTAX);
	if (!strstr(ib_error_last()->message, why))
		fail_msg("`%s`: error `%s` lacks `%s`", in, ib_error_last()->message, why);
}

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_normalise(void **state)
{
	(void)state;
	check_ok("busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox");
	check_ok("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", NULL, NULL);
	check_ok("library/busybox", "docker.io/library/busybox:latest", "busybox:latest", NULL, NULL);
	check_ok("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", NULL, NULL);
	check_ok("index.docker.io/busybox", "docker.io/library/busybox:latest", NULL, "docker.io", NULL);
	check_ok("user/app", "docker.io/user/app:latest", "user/app:latest", "docker.io", "user/app");
	check_ok("user/app/sub", "docker.io/user/app/sub:latest", "user/app/sub:latest", NULL, NULL);
	check_ok("localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost", "app");
	check_ok("localhost:5000/a/b:v1", "localhost:5000/a/b:v1", NULL, "localhost:5000", "a/b");
	check_ok("quay.io/org/img", "quay.io/org/img:latest", "quay.io/org/img:latest", "quay.io", "org/img");
	check_ok("example.com:443/x", "example.com:443/x:latest", NULL, "example.com:443", "x");
	check_ok("Registry.Example.com/x", "Registry.Example.com/x:latest", NULL, "Registry.Example.com", "x");
	check_ok("Foo/bar", "Foo/bar:latest", NULL, "Foo", "bar");
	check_ok("[::1]:5000/x", "[::1]:5000/x:latest", NULL, "[::1]:5000", "x");
	check_ok("user/a.b_c__d-e---f", "docker.io/user/a.b_c__d-e---f:latest", NULL, NULL, NULL);
	check_bad("a.b_c/x", "invalid reference format");
	check_ok("busybox@" D64, "docker.io/library/busybox@" D64, "busybox@" D64, NULL, NULL);
	check_ok("busybox:1@" D64, "docker.io/library/busybox:1@" D64, NULL, NULL, NULL);
	check_ok("x:_Tag.With-Chars", "docker.io/library/x:_Tag.With-Chars", NULL, NULL, NULL);
}

static void test_accessors(void **state)
{
	(void)state;
	ib_reference *r;
	assert_int_equal(ib_reference_parse(&r, "busybox"), 0);
	assert_string_equal(ib_reference_tag(r), "latest");
	assert_int_equal(ib_reference_tag_given(r), 0);
	assert_null(ib_reference_digest(r));
	assert_string_equal(ib_reference_repository(r), "docker.io/library/busybox");
	ib_reference_free(r);
	assert_int_equal(ib_reference_parse(&r, "a@" D64), 0);
	assert_null(ib_reference_tag(r));
	assert_non_null(ib_reference_digest(r));
	ib_reference_free(r);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_reference_normalize(&b, "alpine:3"), 0);
	assert_string_equal(b.ptr, "docker.io/library/alpine:3");
	ib_buf_dispose(&b);
}

static void test_errors(void **state)
{
	(void)state;
	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = 0;
	char longtag[200] = "x:";
	memset(longtag + 2, 't', 129);
	longtag[131] = 0;
	check_bad("", "at least one component");
	check_bad("Busybox", "must be lowercase");
	check_bad("user/App", "must be lowercase");
	check_bad("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "64-byte hexadecimal");
	check_bad("busybox:", "invalid reference format");
	check_bad("busybox:-tag", "invalid reference format");
	check_bad(longtag, "invalid reference format");
	check_bad(":tag", "invalid reference format");
	check_bad("a//b", "invalid reference format");
	check_bad("a/", "invalid reference format");
	check_bad("-a", "invalid reference format");
	check_bad("a..b", "invalid reference format");
	check_bad("a___b", "invalid reference format");
	check_bad("a b", "invalid reference format");
	check_bad("localhost:port/x", "invalid reference format");
	check_bad("-host.com/x", "invalid reference format");
	check_bad(longname, "must not be more than 255 characters");
	check_bad("busybox@sha256:abc", "invalid checksum digest length");
	check_bad("busybox@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "invalid checksum digest format");
	check_bad("busybox@md5:0123", "unsupported digest algorithm");
	check_bad("busybox@", "invalid digest format");
	check_bad("busybox@sha256", "invalid digest format");
}

DEFINE_GROUP(reference_tests,
	cmocka_unit_test(test_normalise),
	cmocka_unit_test(test_accessors),
	cmocka_unit_test(test_errors))
