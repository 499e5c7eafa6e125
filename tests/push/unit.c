/* The push layer's pure parts: names, challenges, Docker's config file, retries, URLs, manifests. */
#include "tests.h"

#include <sys/stat.h>

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(ib_push__api_host("docker.io"), "registry-1.docker.io");
	assert_string_equal(ib_push__api_host("quay.io"), "quay.io");
	assert_string_equal(ib_push__api_host("localhost:5000"), "localhost:5000");
	assert_string_equal(ib_push__config_key("docker.io"), "https://index.docker.io/v1/");
	assert_string_equal(ib_push__config_key("ghcr.io"), "ghcr.io");
	assert_int_equal(ib_push__default_insecure("localhost:5000"), 1);
	assert_int_equal(ib_push__default_insecure("localhost"), 1);
	assert_int_equal(ib_push__default_insecure("127.0.0.1:5000"), 1);
	assert_int_equal(ib_push__default_insecure("127.3.4.5"), 1);
	assert_int_equal(ib_push__default_insecure("[::1]:5000"), 1);
	assert_int_equal(ib_push__default_insecure("128.0.0.1:5000"), 0);
	assert_int_equal(ib_push__default_insecure("docker.io"), 0);
	assert_int_equal(ib_push__default_insecure("localhost.example.com"), 0);
}

static void test_challenge(void **state)
{
	(void)state;
	ib_push__challenge c;
	assert_int_equal(ib_push__challenge_parse(&c,
		"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:samalba/my-app:pull,push\""), 0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:samalba/my-app:pull,push");
	ib_push__challenge_dispose(&c);

	assert_int_equal(ib_push__challenge_parse(&c, "Basic realm=\"a \\\"quoted\\\" realm\""), 0);
	assert_string_equal(c.scheme, "Basic");
	assert_string_equal(c.realm, "a \"quoted\" realm");
	assert_null(c.service);
	ib_push__challenge_dispose(&c);

	/* tokens, odd spacing, unknown keys, case-insensitive keys */
	assert_int_equal(ib_push__challenge_parse(&c, "  bearer  Realm = https://r/t , error=\"insufficient_scope\", SERVICE=s"), 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://r/t");
	assert_string_equal(c.service, "s");
	ib_push__challenge_dispose(&c);

	ib_assert_error_contains(ib_push__challenge_parse(&c, "Bearer service=\"x\""), "without a realm");
	ib_assert_error_contains(ib_push__challenge_parse(&c, "Bearer realm"), "expected key=value");
	ib_assert_error_contains(ib_push__challenge_parse(&c, "   "), "empty");
}

static void test_base64(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT, d = IB_BUF_INIT;
	const char *in[] = { "", "a", "ab", "abc", "alice:s3cret", "user:p\xc3\xa4ss:w" };
	const char *out[] = { "", "YQ==", "YWI=", "YWJj", "YWxpY2U6czNjcmV0", "dXNlcjpww6Rzczp3" };
	for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
		assert_int_equal(ib_push__base64(&b, in[i], strlen(in[i])), 0);
		assert_string_equal(b.ptr, out[i]);
		assert_int_equal(ib_push__base64_decode(&d, out[i]), 0);
		assert_string_equal(d.ptr, in[i]);
	}
	ib_assert_error_contains(ib_push__base64_decode(&d, "YW*j"), "invalid base64");
	ib_buf_dispose(&b);
	ib_buf_dispose(&d);
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static void test_config_file(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("push-config");
	char *user, *pass;
	char *p = write_tmp(dir, "config.json",
			    "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"},"
			    "\"http://localhost:5000/v2/\":{\"auth\":\"bG9jYWw6cHc6d2l0aDpjb2xvbnM=\"},"
			    "\"quay.io\":{\"username\":\"q\",\"password\":\"qp\"},"
			    "\"bad.io\":{\"auth\":\"bm9jb2xvbg==\"}},\"credsStore\":\"desktop\"}");
	assert_int_equal(ib_push__config_get(&user, &pass, p, "docker.io"), 0);
	assert_string_equal(user, "hub");
	assert_string_equal(pass, "hubpw");
	free(user);
	free(pass);
	assert_int_equal(ib_push__config_get(&user, &pass, p, "localhost:5000"), 0);
	assert_string_equal(user, "local");
	assert_string_equal(pass, "pw:with:colons");
	free(user);
	free(pass);
	assert_int_equal(ib_push__config_get(&user, &pass, p, "quay.io"), 0);
	assert_string_equal(user, "q");
	free(user);
	free(pass);
	assert_int_equal(ib_push__config_get(&user, &pass, p, "localhost:5001"), IB_ENOTFOUND);
	assert_null(user);
	ib_assert_error_contains(ib_push__config_get(&user, &pass, p, "bad.io"), "base64(user:password)");

	/* set: replaces every key naming the host, keeps the rest, mode 0600 */
	assert_int_equal(ib_push__config_set(p, "localhost:5000", "new", "pw2"), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ib_push__config_get(&user, &pass, p, "localhost:5000"), 0);
	assert_string_equal(user, "new");
	assert_string_equal(pass, "pw2");
	free(user);
	free(pass);
	ib_buf text = IB_BUF_INIT;
	FILE *f = fopen(p, "r");
	char line[4096];
	while (fgets(line, sizeof line, f))
		ib_buf_puts(&text, line);
	fclose(f);
	assert_null(strstr(text.ptr, "http://localhost:5000/v2/"));
	assert_non_null(strstr(text.ptr, "\"credsStore\": \"desktop\""));
	assert_non_null(strstr(text.ptr, "\"localhost:5000\""));
	ib_buf_dispose(&text);

	/* remove, then remove again */
	assert_int_equal(ib_push__config_set(p, "docker.io", NULL, NULL), 0);
	assert_int_equal(ib_push__config_get(&user, &pass, p, "docker.io"), IB_ENOTFOUND);
	ib_assert_error_contains(ib_push__config_set(p, "docker.io", NULL, NULL), "not logged in to docker.io");

	/* a new file in a new directory */
	char *q = malloc(4096);
	snprintf(q, 4096, "%s/sub/dir/config.json", dir);
	assert_int_equal(ib_push__config_set(q, "docker.io", "u", "p"), 0);
	assert_int_equal(ib_push__config_get(&user, &pass, q, "index.docker.io"), 0);
	assert_string_equal(user, "u");
	free(user);
	free(pass);
	char *junk = write_tmp(dir, "junk.json", "[1]");
	ib_assert_error_contains(ib_push__config_get(&user, &pass, junk, "x"), "not a JSON object");
	free(junk);

	/* the default path */
	ib_buf b = IB_BUF_INIT;
	setenv("DOCKER_CONFIG", "/some/dir", 1);
	assert_int_equal(ib_push__config_path(&b, NULL), 0);
	assert_string_equal(b.ptr, "/some/dir/config.json");
	unsetenv("DOCKER_CONFIG");
	setenv("HOME", "/home/x", 1);
	assert_int_equal(ib_push__config_path(&b, NULL), 0);
	assert_string_equal(b.ptr, "/home/x/.docker/config.json");
	assert_int_equal(ib_push__config_path(&b, "/given.json"), 0);
	assert_string_equal(b.ptr, "/given.json");
	ib_buf_dispose(&b);
	free(q);
	free(p);
	ib_rm_rf(dir);
	free(dir);
}

static void test_retry(void **state)
{
	(void)state;
	/* transient: connection errors, 429, 5xx (not 501) */
	assert_true(ib_push__retry_delay(CURLE_COULDNT_CONNECT, 0, 1, 4, 0) > 0);
	assert_true(ib_push__retry_delay(CURLE_RECV_ERROR, 0, 1, 4, 0) > 0);
	assert_true(ib_push__retry_delay(CURLE_OK, 503, 1, 4, 0) > 0);
	assert_true(ib_push__retry_delay(CURLE_OK, 500, 2, 4, 0) > 0);
	assert_true(ib_push__retry_delay(CURLE_OK, 429, 1, 4, 0) > 0);
	/* not transient */
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 200, 1, 4, 0), -1);
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 404, 1, 4, 0), -1);
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 401, 1, 4, 0), -1);
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 501, 1, 4, 0), -1);
	assert_int_equal(ib_push__retry_delay(CURLE_SSL_CACERT_BADFILE, 0, 1, 4, 0), -1);
	assert_int_equal(ib_push__retry_delay(CURLE_COULDNT_RESOLVE_HOST, 0, 1, 4, 0), -1);
	/* out of attempts */
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 503, 4, 4, 0), -1);
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 503, 1, 1, 0), -1);
	/* backoff grows, capped; Retry-After wins, capped at 30s */
	long d1 = ib_push__retry_delay(CURLE_OK, 503, 1, 10, 0), d2 = ib_push__retry_delay(CURLE_OK, 503, 2, 10, 0);
	assert_true(d2 > d1);
	assert_true(ib_push__retry_delay(CURLE_OK, 503, 9, 10, 0) <= 5000);
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 429, 1, 4, 2), 2000);
	assert_int_equal(ib_push__retry_delay(CURLE_OK, 429, 1, 4, 3600), 30000);
}

static void test_url(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_push__url(&b, "https", "registry-1.docker.io", "/v2/library/busybox/manifests/latest"), 0);
	assert_string_equal(b.ptr, "https://registry-1.docker.io/v2/library/busybox/manifests/latest");
	assert_int_equal(ib_push__url(&b, "http", "127.0.0.1:5000", "v2/"), 0);
	assert_string_equal(b.ptr, "http://127.0.0.1:5000/v2/");
	/* an absolute Location is used as it is */
	assert_int_equal(ib_push__url(&b, "https", "h", "https://storage.example/x?y=1"), 0);
	assert_string_equal(b.ptr, "https://storage.example/x?y=1");
	ib_buf_dispose(&b);
}

/* URLs a registry names: resolved, reduced to their origin; only http and https */
static void test_origins(void **state)
{
	(void)state;
	ib_buf u = IB_BUF_INIT, o = IB_BUF_INIT;
	assert_int_equal(ib_push__resolve(&u, &o, NULL, "HTTPS://Registry.Example/v2/"), 0);
	assert_string_equal(o.ptr, "https://registry.example:443");
	assert_int_equal(ib_push__resolve(NULL, &o, NULL, "https://registry.example:443/x"), 0);
	assert_string_equal(o.ptr, "https://registry.example:443");
	assert_int_equal(ib_push__resolve(NULL, &o, NULL, "http://127.0.0.1:5000/v2/"), 0);
	assert_string_equal(o.ptr, "http://127.0.0.1:5000");
	assert_int_equal(ib_push__resolve(NULL, &o, NULL, "http://[::1]:5000/v2/"), 0);
	assert_string_equal(o.ptr, "http://[::1]:5000");
	/* the same host on another port or scheme is another origin */
	assert_int_equal(ib_push__resolve(NULL, &o, NULL, "http://registry.example/x"), 0);
	assert_string_equal(o.ptr, "http://registry.example:80");
	/* a redirect's Location, relative to where it came from */
	const char *base = "https://r.example/v2/app/blobs/sha256:0?x=1";
	assert_int_equal(ib_push__resolve(&u, &o, base, "/cdn/blob?sig=a%2Fb"), 0);
	assert_string_equal(u.ptr, "https://r.example/cdn/blob?sig=a%2Fb");
	assert_string_equal(o.ptr, "https://r.example:443");
	assert_int_equal(ib_push__resolve(&u, &o, base, "//cdn.example/b"), 0);
	assert_string_equal(u.ptr, "https://cdn.example/b");
	assert_string_equal(o.ptr, "https://cdn.example:443");
	assert_int_equal(ib_push__resolve(&u, &o, base, "http://cdn.example:8080/b"), 0);
	assert_string_equal(o.ptr, "http://cdn.example:8080");
	/* other schemes are refused, and nothing is read from them */
	const char *refused[] = { "file:///etc/shadow", "gopher://127.0.0.1:25/_HELO", "ftp://127.0.0.1/x",
				  "dict://127.0.0.1:11211/stats", "ldap://h/x", "HTTPX://h/" };
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		ib_assert_error_contains(ib_push__resolve(&u, &o, NULL, refused[i]), "only http and https are used");
		assert_int_equal(ib_error_last()->code, IB_EINVALID);
		ib_assert_error_contains(ib_push__resolve(&u, &o, base, refused[i]), "only http and https are used");
	}
	ib_assert_error_contains(ib_push__resolve(&u, &o, NULL, "javascript:alert(1)"), "not a URL");
	ib_assert_error_contains(ib_push__resolve(&u, &o, NULL, "not a url"), "not a URL");
	ib_buf_dispose(&u);
	ib_buf_dispose(&o);
}

static void test_stall_setting(void **state)
{
	(void)state;
	unsigned int v = 0;
	unsetenv("IMAGEBUILD_REGISTRY_STALL_TIMEOUT");
	assert_int_equal(ib_push__stall_seconds(&v), 0);
	assert_int_equal(v, IB_PUSH_STALL_DEFAULT);
	setenv("IMAGEBUILD_REGISTRY_STALL_TIMEOUT", "2", 1);
	assert_int_equal(ib_push__stall_seconds(&v), 0);
	assert_int_equal(v, 2);
	const char *bad[] = { "0", "-1", "2s", "abc", "3601", " 5" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		setenv("IMAGEBUILD_REGISTRY_STALL_TIMEOUT", bad[i], 1);
		ib_assert_error_contains(ib_push__stall_seconds(&v), "IMAGEBUILD_REGISTRY_STALL_TIMEOUT=");
	}
	/* a client refuses to start with a bad setting rather than ignore it */
	ib_push__registry *r = NULL;
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	o.docker_config = "/nonexistent/config.json";
	ib_assert_error_contains(ib_push__registry_new(&r, "127.0.0.1:1", "app", "pull", &o, NULL, "pull"),
				 "not a number of seconds");
	assert_null(r);
	unsetenv("IMAGEBUILD_REGISTRY_STALL_TIMEOUT");
}

static void test_error_text(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	const char *j = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null},"
			"{\"code\":\"DENIED\",\"message\":\"no\"}]}";
	assert_int_equal(ib_push__error_text(&b, j, strlen(j)), 0);
	assert_string_equal(b.ptr, "UNAUTHORIZED: authentication required; DENIED: no");
	assert_int_equal(ib_push__error_text(&b, "<html>Bad gateway</html>\nmore", 30), 0);
	assert_string_equal(b.ptr, "<html>Bad gateway</html>");
	assert_int_equal(ib_push__error_text(&b, "", 0), 0);
	assert_string_equal(b.ptr, "");
	ib_buf_dispose(&b);
}

static void test_manifest(void **state)
{
	(void)state;
	ib_digest cfg, l1, l2;
	ib_digest_of(&cfg, "c", 1);
	ib_digest_of(&l1, "1", 1);
	ib_digest_of(&l2, "2", 1);
	ib_push__blob layers[] = { { l1, 11, IB_MEDIA_TYPE_OCI_LAYER_GZIP }, { l2, 22, IB_MEDIA_TYPE_DOCKER_LAYER_GZIP } };
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_push__manifest_json(&b, &cfg, 5, layers, 2), 0);
	json_t *m = json_loads(b.ptr, 0, NULL);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "schemaVersion")), 2);
	assert_string_equal(ib_json_str(m, "mediaType"), IB_MEDIA_TYPE_OCI_MANIFEST);
	json_t *c = json_object_get(m, "config");
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, &cfg);
	assert_string_equal(ib_json_str(c, "digest"), ds);
	assert_string_equal(ib_json_str(c, "mediaType"), IB_MEDIA_TYPE_OCI_CONFIG);
	assert_int_equal(json_integer_value(json_object_get(c, "size")), 5);
	json_t *ls = json_object_get(m, "layers");
	assert_int_equal(json_array_size(ls), 2);
	ib_digest_fmt(ds, &l2);
	assert_string_equal(ib_json_str(json_array_get(ls, 1), "digest"), ds);
	/* Docker's gzip type becomes its OCI twin in an OCI manifest */
	assert_string_equal(ib_json_str(json_array_get(ls, 1), "mediaType"), IB_MEDIA_TYPE_OCI_LAYER_GZIP);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ls, 1), "size")), 22);
	json_decref(m);
	ib_buf_dispose(&b);
	char s[13];
	ib_push__short(s, &l1);
	assert_int_equal(strlen(s), 12);
	ib_digest_fmt(ds, &l1);
	assert_memory_equal(s, ds + 7, 12);
}

static void test_index_platform(void **state)
{
	(void)state;
	ib_digest a, b, got;
	ib_digest_of(&a, "a", 1);
	ib_digest_of(&b, "b", 1);
	char as[IB_DIGEST_STRLEN], bs[IB_DIGEST_STRLEN], json[2048];
	ib_digest_fmt(as, &a);
	ib_digest_fmt(bs, &b);
	const char *other = strcmp(ib_test_host_arch(), "arm64") ? "arm64" : "amd64";
	snprintf(json, sizeof json,
		 "{\"schemaVersion\":2,\"manifests\":["
		 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}},"
		 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}}]}",
		 IB_MEDIA_TYPE_OCI_MANIFEST, as, other, IB_MEDIA_TYPE_DOCKER_MANIFEST, bs, ib_test_host_arch());
	ib_buf mt = IB_BUF_INIT;
	assert_int_equal(ib_store_index_platform(&got, &mt, json, strlen(json)), 0);
	assert_true(ib_digest_equal(&got, &b));
	assert_string_equal(mt.ptr, IB_MEDIA_TYPE_DOCKER_MANIFEST);
	snprintf(json, sizeof json,
		 "{\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1,\"platform\":{\"os\":\"windows\",\"architecture\":\"%s\"}}]}",
		 IB_MEDIA_TYPE_OCI_MANIFEST, as, ib_test_host_arch());
	ib_assert_error_contains(ib_store_index_platform(&got, NULL, json, strlen(json)), "it has: windows/");
	ib_assert_error_contains(ib_store_index_platform(&got, NULL, "{}", 2), "no \"manifests\"");
	ib_assert_error_contains(ib_store_index_platform(&got, NULL, "{", 1), "index:");
	ib_buf_dispose(&mt);
}

/* The push layer's options have an _init() (for bindings) matching their INIT macro. */
#define CHECK_INIT(type, fn, VERSION, INIT) do { \
		type got, want; \
		/* a static object's padding is zero (C11 6.7.9): INIT with zeroed padding */ \
		static const type init_ = INIT; \
		memcpy(&want, &init_, sizeof want); \
		memset(&got, 0x5a, sizeof got); \
		assert_int_equal(fn(&got, VERSION), 0); \
		assert_memory_equal(&got, &want, sizeof got); \
		ib_assert_error_contains(fn(&got, VERSION + 1), "not supported"); \
		assert_int_equal(fn(NULL, VERSION), IB_EINVALID); \
	} while (0)

/* Version 1 of an _init() writes version 1's size only (the old layout), version = 1. */
#define CHECK_INIT_V1(v1type, type, fn) do { \
		unsigned char mem[sizeof(v1type) + 64]; \
		memset(mem, 0x5a, sizeof mem); \
		assert_int_equal(fn((type *)(void *)mem, 1), 0); \
		v1type got; \
		memcpy(&got, mem, sizeof got); \
		assert_int_equal(got.version, 1); \
		for (size_t i = sizeof(v1type); i < sizeof mem; i++) \
			assert_int_equal(mem[i], 0x5a); \
	} while (0)

static void test_options_init(void **state)
{
	(void)state;
	CHECK_INIT(ib_registry_options, ib_registry_options_init, IB_REGISTRY_OPTIONS_VERSION,
		   IB_REGISTRY_OPTIONS_INIT);
	CHECK_INIT(ib_pull_options, ib_pull_options_init, IB_PULL_OPTIONS_VERSION, IB_PULL_OPTIONS_INIT);
	CHECK_INIT(ib_push_options, ib_push_options_init, IB_PUSH_OPTIONS_VERSION, IB_PUSH_OPTIONS_INIT);
	CHECK_INIT_V1(ib_push__registry_options_v1, ib_registry_options, ib_registry_options_init);
	CHECK_INIT_V1(ib_push__pull_options_v1, ib_pull_options, ib_pull_options_init);
	CHECK_INIT_V1(ib_push__push_options_v1, ib_push_options, ib_push_options_init);
	/* version 2 (before compression, compression_level): its size only */
	unsigned char mem[sizeof(ib_push__push_options_v2) + 64];
	memset(mem, 0x5a, sizeof mem);
	assert_int_equal(ib_push_options_init((ib_push_options *)(void *)mem, 2), 0);
	ib_push__push_options_v2 v2;
	memcpy(&v2, mem, sizeof v2);
	assert_int_equal(v2.version, 2);
	assert_null(v2.registry);
	assert_int_equal(v2.jobs, 0);
	for (size_t i = sizeof(ib_push__push_options_v2); i < sizeof mem; i++)
		assert_int_equal(mem[i], 0x5a);
	ib_push__pull_options_v1 pv1;
	memset(&pv1, 0x5a, sizeof pv1);
	assert_int_equal(ib_pull_options_init((ib_pull_options *)(void *)&pv1, 1), 0);
	assert_int_equal(pv1.registry.version, 1);
	assert_null(pv1.registry.callbacks);
	assert_int_equal(pv1.jobs, 0);
}

const struct CMUnitTest unit_tests[] = {
	cmocka_unit_test(test_names),
	cmocka_unit_test(test_challenge),
	cmocka_unit_test(test_base64),
	cmocka_unit_test(test_config_file),
	cmocka_unit_test(test_retry),
	cmocka_unit_test(test_url),
	cmocka_unit_test(test_origins),
	cmocka_unit_test(test_stall_setting),
	cmocka_unit_test(test_error_text),
	cmocka_unit_test(test_manifest),
	cmocka_unit_test(test_index_platform),
	cmocka_unit_test(test_options_init),
};
const size_t unit_tests_count = sizeof unit_tests / sizeof *unit_tests;
