/*
 * Where credentials come from (docker's credential helpers, containers'
 * auth.json in podman's order, Docker Hub's aliases) and what
 * registries.conf says (mirrors, prefixes, blocked, insecure). The helper
 * is tests/push/fake-helper/docker-credential-fake, which logs its calls.
 */
#include "tests.h"
#include "util/fs.h"

#include <sys/stat.h>
#include <unistd.h>

static char *write_file(const char *dir, const char *name, const char *text)
{
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/%s", dir, name);
	char *slash = strrchr(p, '/');
	*slash = 0;
	assert_int_equal(ib_mkdir_p(p, 0700), 0);
	*slash = '/';
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static char *read_text(const char *path)
{
	ib_buf b = IB_BUF_INIT;
	if (ib_read_file(&b, path) < 0) {
		ib_error_clear();
		return strdup("");
	}
	ib_buf_puts(&b, "");
	return ib_buf_detach(&b);
}

/* A clean environment: only what the test sets is searched. */
static char *env_reset(const char *tag)
{
	char *dir = ib_test_tmpdir(tag);
	char p[4096];
	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("XDG_CONFIG_HOME");
	snprintf(p, sizeof p, "%s/run", dir);
	ib_mkdir_p(p, 0700);
	setenv("XDG_RUNTIME_DIR", p, 1);
	snprintf(p, sizeof p, "%s/home", dir);
	setenv("HOME", p, 1);
	snprintf(p, sizeof p, "%s/home/.docker", dir);
	setenv("DOCKER_CONFIG", p, 1);
	snprintf(p, sizeof p, "%s/helper.log", dir);
	setenv("FAKE_HELPER_LOG", p, 1);
	snprintf(p, sizeof p, "%s/helper.db", dir);
	setenv("FAKE_HELPER_DB", p, 1);
	static int path_set;
	if (!path_set) {
		const char *src = getenv("IB_SOURCE_ROOT");
		snprintf(p, sizeof p, "%s/tests/push/fake-helper:%s", src ? src : ".", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
		setenv("PATH", p, 1);
		path_set = 1;
	}
	return dir;
}

static void expect_repo_user(const char *domain, const char *repo, const ib_registry_options *o, const char *user,
			     const char *pass)
{
	ib_push__creds c;
	int rc = ib_push__credentials(&c, domain, repo, o);
	if (!user) {
		assert_int_equal(rc, IB_ENOTFOUND);
		return;
	}
	assert_int_equal(rc, 0);
	assert_non_null(c.user);
	assert_string_equal(c.user, user);
	assert_string_equal(c.pass, pass);
	ib_push__creds_dispose(&c);
}

static void expect_user(const char *domain, const ib_registry_options *o, const char *user, const char *pass)
{
	expect_repo_user(domain, "x/y", o, user, pass);
}

#define AUTH(host, b64) "{\"auths\":{\"" host "\":{\"auth\":\"" b64 "\"}}}"
/* base64: a:1 YTox, b:2 Yjoy, c:3 Yzoz, d:4 ZDo0 */

/* REGISTRY_AUTH_FILE > $XDG_RUNTIME_DIR/containers/auth.json > ~/.config/containers/auth.json > Docker's config. */
static void test_auth_file_order(void **state)
{
	(void)state;
	char *dir = env_reset("creds-order");
	char p[4096];
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	expect_user("r.example", &o, NULL, NULL);
	free(write_file(dir, "home/.docker/config.json", AUTH("r.example", "ZDo0")));
	expect_user("r.example", &o, "d", "4");
	free(write_file(dir, "home/.config/containers/auth.json", AUTH("r.example", "Yzoz")));
	expect_user("r.example", &o, "c", "3");
	/* XDG_CONFIG_HOME replaces ~/.config */
	snprintf(p, sizeof p, "%s/xdgconfig", dir);
	setenv("XDG_CONFIG_HOME", p, 1);
	expect_user("r.example", &o, "d", "4");
	free(write_file(dir, "xdgconfig/containers/auth.json", AUTH("r.example", "Yzoz")));
	expect_user("r.example", &o, "c", "3");
	free(write_file(dir, "run/containers/auth.json", AUTH("r.example", "Yjoy")));
	expect_user("r.example", &o, "b", "2");
	/* a file without the registry: the next one */
	expect_user("other.example", &o, NULL, NULL);
	free(write_file(dir, "home/.docker/config.json", AUTH("other.example", "ZDo0")));
	expect_user("other.example", &o, "d", "4");
	/* REGISTRY_AUTH_FILE: that file alone (podman) */
	char *raf = write_file(dir, "raf.json", AUTH("r.example", "YTox"));
	setenv("REGISTRY_AUTH_FILE", raf, 1);
	expect_user("r.example", &o, "a", "1");
	expect_user("other.example", &o, NULL, NULL);
	/* auth_file (--authfile) wins over REGISTRY_AUTH_FILE */
	o.auth_file = "/nonexistent/auth.json";
	expect_user("r.example", &o, NULL, NULL);
	/* ... but only in version 3 of the options */
	o.version = 2;
	expect_user("r.example", &o, "a", "1");
	/* login writes to auth_file, else REGISTRY_AUTH_FILE, else Docker's config */
	ib_buf b = IB_BUF_INIT;
	o.version = 3;
	assert_int_equal(ib_push__login_file(&b, &o), 0);
	assert_string_equal(b.ptr, "/nonexistent/auth.json");
	o.auth_file = NULL;
	assert_int_equal(ib_push__login_file(&b, &o), 0);
	assert_string_equal(b.ptr, raf);
	unsetenv("REGISTRY_AUTH_FILE");
	assert_int_equal(ib_push__login_file(&b, &o), 0);
	snprintf(p, sizeof p, "%s/home/.docker/config.json", dir);
	assert_string_equal(b.ptr, p);
	ib_buf_dispose(&b);
	/* auth.json: "host/namespace" keys for the repositories under them, the longest first (podman) */
	char *ns = write_file(dir, "ns.json",
			      "{\"auths\":{\"q.example\":{\"auth\":\"YTox\"},\"q.example/org\":{\"auth\":\"Yjoy\"},"
			      "\"q.example/org/team\":{\"auth\":\"Yzoz\"},\"q.example/empty\":{}}}");
	o.auth_file = ns;
	expect_repo_user("q.example", "org/app", &o, "b", "2");
	expect_repo_user("q.example", "org/team/app", &o, "c", "3");
	expect_repo_user("q.example", "organic/app", &o, "a", "1");
	expect_repo_user("q.example", "empty/app", &o, "a", "1");
	expect_repo_user("q.example", NULL, &o, "a", "1");
	/* Docker's config knows hosts only: a path in a key is dropped, as docker */
	o.auth_file = NULL;
	free(write_file(dir, "home/.docker/config.json", "{\"auths\":{\"d.example/org\":{\"auth\":\"ZDo0\"}}}"));
	expect_repo_user("d.example", "other/app", &o, "d", "4");
	free(ns);
	unsetenv("XDG_CONFIG_HOME");
	free(raf);
	free(dir);
}

/* Docker Hub under every name docker writes; other hosts with and without a port are distinct. */
static void test_docker_io_aliases(void **state)
{
	(void)state;
	static const char *const keys[] = { "https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io",
					    "docker.io", "https://index.docker.io/v1", NULL };
	char *dir = env_reset("creds-alias");
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	for (size_t i = 0; keys[i]; i++) {
		char text[256];
		snprintf(text, sizeof text, "{\"auths\":{\"%s\":{\"auth\":\"YTox\"}}}", keys[i]);
		free(write_file(dir, "home/.docker/config.json", text));
		expect_user("docker.io", &o, "a", "1");
		expect_user("index.docker.io", &o, "a", "1");
		expect_user("quay.io", &o, NULL, NULL);
	}
	free(write_file(dir, "home/.docker/config.json",
			"{\"auths\":{\"localhost:5000\":{\"auth\":\"YTox\"},\"localhost\":{\"auth\":\"Yjoy\"},"
			"\"http://h.example:8443/v2/\":{\"auth\":\"Yzoz\"}}}"));
	expect_user("localhost:5000", &o, "a", "1");
	expect_user("localhost", &o, "b", "2");
	expect_user("localhost:5001", &o, NULL, NULL);
	expect_user("h.example:8443", &o, "c", "3");
	expect_user("h.example", &o, NULL, NULL);
	/* DOCKER_CONFIG names the directory */
	char p[4096];
	snprintf(p, sizeof p, "%s/elsewhere", dir);
	setenv("DOCKER_CONFIG", p, 1);
	expect_user("localhost:5000", &o, NULL, NULL);
	free(write_file(dir, "elsewhere/config.json", AUTH("localhost:5000", "ZDo0")));
	expect_user("localhost:5000", &o, "d", "4");
	free(dir);
}

static int count_lines(const char *text, const char *line)
{
	int n = 0;
	size_t len = strlen(line);
	for (const char *p = text; (p = strstr(p, line)); p += len)
		if ((p == text || p[-1] == '\n') && (p[len] == '\n' || !p[len]))
			n++;
	return n;
}

/* credHelpers and credsStore run docker-credential-<name>: get, store, erase, list. */
static void test_helpers(void **state)
{
	(void)state;
	char *dir = env_reset("creds-helper");
	const char *log = getenv("FAKE_HELPER_LOG");
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	/* store, list, get, erase through the protocol */
	assert_int_equal(ib_push__helper_store("fake", "h.example", "alice", "s3cret"), 0);
	json_t *l;
	assert_int_equal(ib_push__helper_list(&l, "fake"), 0);
	assert_string_equal(json_string_value(json_object_get(l, "h.example")), "alice");
	json_decref(l);
	/* credsStore: every registry; auths (with a password) is not looked at */
	free(write_file(dir, "home/.docker/config.json",
			"{\"credsStore\":\"fake\",\"auths\":{\"h.example\":{\"auth\":\"YTox\"},\"n.example\":{\"auth\":\"YTox\"}}}"));
	expect_user("h.example", &o, "alice", "s3cret");
	expect_user("n.example", &o, NULL, NULL); /* the helper has none: anonymous, as docker */
	/* credHelpers: that registry only; others use auths */
	free(write_file(dir, "home/.docker/config.json",
			"{\"credHelpers\":{\"h.example\":\"fake\"},\"auths\":{\"n.example\":{\"auth\":\"YToy\"}}}"));
	expect_user("h.example", &o, "alice", "s3cret");
	expect_user("n.example", &o, "a", "2");
	/* Docker Hub: the helper is asked for https://index.docker.io/v1/ */
	assert_int_equal(ib_push__helper_store("fake", "https://index.docker.io/v1/", "hub", "hubpw"), 0);
	free(write_file(dir, "home/.docker/config.json", "{\"credHelpers\":{\"docker.io\":\"fake\"}}"));
	expect_user("docker.io", &o, "hub", "hubpw");
	/* an identity token: Username <token> */
	assert_int_equal(ib_push__helper_store("fake", "t.example", "<token>", "R3FR3SH"), 0);
	free(write_file(dir, "home/.docker/config.json", "{\"credsStore\":\"fake\"}"));
	ib_push__creds c;
	assert_int_equal(ib_push__credentials(&c, "t.example", NULL, &o), 0);
	assert_null(c.pass);
	assert_string_equal(c.identity_token, "R3FR3SH");
	ib_push__creds_dispose(&c);
	/* erase, then not found */
	assert_int_equal(ib_push__helper_erase("fake", "h.example"), 0);
	assert_int_equal(ib_push__helper_erase("fake", "h.example"), IB_ENOTFOUND);
	expect_user("h.example", &o, NULL, NULL);
	char *text = read_text(log);
	assert_int_equal(count_lines(text, "store h.example"), 1);
	assert_int_equal(count_lines(text, "get h.example"), 3);
	assert_int_equal(count_lines(text, "get https://index.docker.io/v1/"), 1);
	assert_int_equal(count_lines(text, "erase h.example"), 2);
	assert_int_equal(count_lines(text, "list"), 1);
	assert_null(strstr(text, "s3cret"));
	free(text);
	/* a missing helper and a bad name are errors naming it; a helper's stderr is never shown */
	free(write_file(dir, "home/.docker/config.json", "{\"credsStore\":\"nosuch\"}"));
	ib_assert_error_contains(ib_push__credentials(&c, "h.example", NULL, &o), "docker-credential-nosuch");
	free(write_file(dir, "home/.docker/config.json", "{\"credsStore\":\"../../bin/sh\"}"));
	ib_assert_error_contains(ib_push__credentials(&c, "h.example", NULL, &o), "not a valid helper name");
	assert_int_equal(ib_push__helper_store("fake", "x.example", "u", "pw-on-stderr"), 0);
	free(write_file(dir, "home/.docker/config.json", "{\"credsStore\":\"fake\"}"));
	setenv("FAKE_HELPER_DB", "/nonexistent/dir/db.json", 1); /* the helper now fails */
	int rc = ib_push__credentials(&c, "x.example", NULL, &o);
	assert_true(rc < 0);
	assert_null(strstr(ib_error_last()->message, "pw-on-stderr"));
	free(dir);
}

/* login with a helper stores through it and leaves no secret in auths; logout erases through it. */
static void test_login_file_helper(void **state)
{
	(void)state;
	char *dir = env_reset("creds-login");
	char *cfg = write_file(dir, "home/.docker/config.json", "{\"credsStore\":\"fake\"}");
	/* what login does after the registry said yes (ib_registry_login's file part) */
	assert_int_equal(ib_push__helper_store("fake", "h.example", "alice", "s3cret"), 0);
	assert_int_equal(ib_push__config_put(cfg, "h.example", NULL, NULL, IB_PUSH_CONFIG_EMPTY), 0);
	char *text = read_text(cfg);
	assert_non_null(strstr(text, "\"h.example\": {}"));
	assert_null(strstr(text, "auth\""));
	free(text);
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	assert_int_equal(ib_registry_logout("h.example", &o), 0);
	text = read_text(getenv("FAKE_HELPER_LOG"));
	assert_int_equal(count_lines(text, "erase h.example"), 1);
	free(text);
	text = read_text(cfg);
	assert_null(strstr(text, "h.example"));
	free(text);
	ib_assert_error_contains(ib_registry_logout("h.example", &o), "not logged in to h.example");
	free(cfg);
	free(dir);
}

static void parse_conf(ib_push__regconf *c, const char *text)
{
	char err[512];
	int rc = ib_push__regconf_parse_toml(c, text, strlen(text), err, sizeof err);
	if (rc != 0)
		fail_msg("registries.conf: %s", err);
}

static void expect_sources(const ib_push__regconf *c, const char *domain, const char *path, int by_digest,
			   const char *want)
{
	ib_push__source_list l;
	assert_int_equal(ib_push__pull_sources(&l, c, domain, path, by_digest), 0);
	ib_buf b = IB_BUF_INIT;
	for (size_t i = 0; i < l.n; i++)
		ib_buf_printf(&b, "%s%s/%s%s", i ? " " : "", l.v[i].domain, l.v[i].path, l.v[i].insecure ? "(insecure)" : "");
	ib_buf_puts(&b, "");
	assert_string_equal(b.ptr, want);
	ib_buf_dispose(&b);
	ib_push__sources_dispose(&l);
}

static void test_registries_conf(void **state)
{
	(void)state;
	ib_push__regconf c;
	parse_conf(&c, "unqualified-search-registries = [\"docker.io\"]\n"
		       "[[registry]]\nlocation = \"docker.io\"\n"
		       "[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n"
		       "[[registry.mirror]]\nlocation = \"mirror.example/hub\"\n"
		       "[[registry]]\nprefix = \"quay.io/team\"\nlocation = \"internal.example/quay-team\"\n"
		       "mirror-by-digest-only = true\n"
		       "[[registry.mirror]]\nlocation = \"m.example\"\n"
		       "[[registry]]\nlocation = \"quay.io\"\nblocked = true\n"
		       "[[registry]]\nlocation = \"insecure.example:5000\"\ninsecure = true\n");
	assert_int_equal(c.n_regs, 4);
	assert_int_equal(c.n_search, 1);
	expect_sources(&c, "docker.io", "library/debian", 0,
		       "127.0.0.1:5000/library/debian(insecure) mirror.example/hub/library/debian docker.io/library/debian");
	/* the longest prefix; the registry itself rewritten to its location; digest-only mirrors */
	expect_sources(&c, "quay.io", "team/app", 0, "internal.example/quay-team/app");
	expect_sources(&c, "quay.io", "team/app", 1, "m.example/app internal.example/quay-team/app");
	/* a prefix matches whole components only */
	ib_push__source_list l;
	ib_assert_error_contains(ib_push__pull_sources(&l, &c, "quay.io", "teamx/app", 0), "blocked");
	expect_sources(&c, "ghcr.io", "a/b", 0, "ghcr.io/a/b");
	/* hosts: blocked and insecure */
	int insecure = 0;
	ib_assert_error_contains(ib_push__regconf_host(&insecure, &c, "quay.io"), "registry quay.io is blocked");
	assert_int_equal(ib_push__regconf_host(&insecure, &c, "insecure.example:5000"), 0);
	assert_int_equal(insecure, 1);
	insecure = 0;
	assert_int_equal(ib_push__regconf_host(&insecure, &c, "insecure.example"), 0);
	assert_int_equal(insecure, 0);
	/* unqualified names: docker.io first is docker's rule; another first registry is refused */
	assert_int_equal(ib_push__check_search(&c, "debian"), 0);
	ib_push__regconf_dispose(&c);
	parse_conf(&c, "unqualified-search-registries = [\"quay.io\", \"docker.io\"]\n");
	ib_assert_error_contains(ib_push__check_search(&c, "debian"), "unqualified-search-registries starts with quay.io");
	assert_int_equal(ib_push__check_search(&c, "ghcr.io/x/debian"), 0);
	assert_int_equal(ib_push__check_search(&c, "localhost/debian"), 0);
	ib_push__regconf_dispose(&c);

	/* what is not registries.conf v2 is an error naming the place */
	char err[512];
	assert_int_equal(ib_push__regconf_parse_toml(&c, "[[registry]]\nlocation = \n", 25, err, sizeof err), -1);
	assert_non_null(strstr(err, "line 2"));
	const char *v1 = "[registries.search]\nregistries = ['docker.io']\n";
	assert_int_equal(ib_push__regconf_parse_toml(&c, v1, strlen(v1), err, sizeof err), -1);
	assert_non_null(strstr(err, "version 1"));
	const char *bad = "[[registry]]\nlocation = \"x.io\"\ninsecure = \"yes\"\n";
	assert_int_equal(ib_push__regconf_parse_toml(&c, bad, strlen(bad), err, sizeof err), -1);
	assert_non_null(strstr(err, "registry[0].insecure"));
	const char *nomirror = "[[registry]]\nlocation = \"x.io\"\n[[registry.mirror]]\ninsecure = true\n";
	assert_int_equal(ib_push__regconf_parse_toml(&c, nomirror, strlen(nomirror), err, sizeof err), -1);
	assert_non_null(strstr(err, "a mirror without a location"));
	const char *wild = "[[registry]]\nprefix = \"*.example.com\"\nlocation = \"\"\n";
	parse_conf(&c, wild);
	ib_assert_error_contains(ib_push__pull_sources(&l, &c, "a.example.com", "x", 0), "wildcard");
	ib_push__regconf_dispose(&c);

	/* the file: the option ("none": no file), else $CONTAINERS_REGISTRIES_CONF, else /etc/containers */
	ib_registry_options o = IB_REGISTRY_OPTIONS_INIT;
	ib_buf b = IB_BUF_INIT;
	unsetenv("CONTAINERS_REGISTRIES_CONF");
	assert_int_equal(ib_push__regconf_path(&b, &o), 0);
	assert_string_equal(b.ptr, "/etc/containers/registries.conf");
	setenv("CONTAINERS_REGISTRIES_CONF", "/x/r.conf", 1);
	assert_int_equal(ib_push__regconf_path(&b, &o), 0);
	assert_string_equal(b.ptr, "/x/r.conf");
	o.registries_conf = "/y/r.conf";
	assert_int_equal(ib_push__regconf_path(&b, &o), 0);
	assert_string_equal(b.ptr, "/y/r.conf");
	o.registries_conf = "none";
	assert_int_equal(ib_push__regconf_path(&b, &o), 0);
	assert_int_equal(b.size, 0);
	unsetenv("CONTAINERS_REGISTRIES_CONF");
	ib_buf_dispose(&b);
	/* a missing file is no configuration; a broken one an error naming it */
	o.registries_conf = "/nonexistent/registries.conf";
	assert_int_equal(ib_push__regconf_load(&c, &o), 0);
	assert_int_equal(c.n_regs, 0);
	char *dir = ib_test_tmpdir("regconf");
	char *p = write_file(dir, "r.conf", "[[registry]\n");
	o.registries_conf = p;
	ib_assert_error_contains(ib_push__regconf_load(&c, &o), "r.conf`: line 1");
	free(p);
	free(dir);
}

const struct CMUnitTest creds_tests[] = {
	cmocka_unit_test(test_auth_file_order),
	cmocka_unit_test(test_docker_io_aliases),
	cmocka_unit_test(test_helpers),
	cmocka_unit_test(test_login_file_helper),
	cmocka_unit_test(test_registries_conf),
};
const size_t creds_tests_count = sizeof creds_tests / sizeof creds_tests[0];
