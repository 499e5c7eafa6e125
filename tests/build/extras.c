/*
 * ib_build_options version 7 (extras.c): version 6 callers keep their
 * layout (nothing past it is read or written), and the new fields' values
 * are checked as buildx and BuildKit check them, before anything runs.
 */
#include "tests.h"
#include "imagebuild/build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void rm_dir(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/Dockerfile", dir);
	unlink(path);
	rmdir(dir);
}

static char *context_dir(void)
{
	char *dir = ib_test_tmpdir("extras");
	char path[4096];
	snprintf(path, sizeof path, "%s/Dockerfile", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("FROM scratch AS base\nENV A=1\nFROM base\nENV B=2\n", f);
	fclose(f);
	return dir;
}

/* ib_build_options_init(6) writes only version 6's size, and says 6. */
static void test_init_v6_size(void **state)
{
	(void)state;
	unsigned char buf[sizeof(ib_build_options) + 16];
	memset(buf, 0xa5, sizeof buf);
	assert_int_equal(ib_build_options_init((ib_build_options *)(void *)buf, 6), 0);
	assert_int_equal(((ib_build_options *)(void *)buf)->version, 6u);
	for (size_t i = offsetof(ib_build_options, labels); i < sizeof buf; i++)
		assert_int_equal(buf[i], 0xa5);
	ib_build_options o;
	assert_int_equal(ib_build_options_init(&o, IB_BUILD_OPTIONS_VERSION), 0);
	assert_null(o.labels);
	assert_int_equal(o.shm_size, 0);
}

/* A version 6 struct followed by garbage: the library reads none of it. */
static void test_v6_reads_no_further(void **state)
{
	(void)state;
	char *dir = context_dir();
	unsigned char *mem = malloc(sizeof(ib_build_options));
	assert_non_null(mem);
	memset(mem, 0xff, sizeof(ib_build_options)); /* labels...: wild pointers, shm_size -1 */
	assert_int_equal(ib_build_options_init((ib_build_options *)(void *)mem, 6), 0);
	ib_build_options *o = (ib_build_options *)(void *)mem;
	o->context = dir;
	ib_buf out = IB_BUF_INIT;
	int rc = ib_build_plan_print(&out, o);
	if (rc < 0)
		print_message("plan: %s\n", ib_error_last()->message);
	assert_int_equal(rc, 0);
	ib_buf_dispose(&out);
	free(mem);
	rm_dir(dir);
	free(dir);
}

/* The values of the new fields are checked before anything runs, with buildx's messages. */
static void expect_refused(const char *field, const char *value, const char *text)
{
	char *dir = context_dir();
	const char *list[] = { value, NULL };
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = dir;
	if (!strcmp(field, "ulimits"))
		o.ulimits = list;
	else if (!strcmp(field, "extra_hosts"))
		o.extra_hosts = list;
	else if (!strcmp(field, "annotations"))
		o.annotations = list;
	else if (!strcmp(field, "labels"))
		o.labels = list;
	else if (!strcmp(field, "build_contexts"))
		o.build_contexts = list;
	else if (!strcmp(field, "shm_size"))
		o.shm_size = -5;
	ib_buf out = IB_BUF_INIT;
	int rc = ib_build_plan_print(&out, &o);
	ib_buf_dispose(&out);
	if (rc == 0 || !strstr(ib_error_last()->message, text))
		print_message("%s=%s: rc %d, %s\n", field, value, rc, ib_error_last()->message);
	assert_true(rc < 0);
	assert_non_null(strstr(ib_error_last()->message, text));
	rm_dir(dir);
	free(dir);
}

static void test_values_refused(void **state)
{
	(void)state;
	expect_refused("ulimits", "nofile", "invalid ulimit argument: nofile");
	expect_refused("ulimits", "as=1", "invalid ulimit type: as"); /* go-units has no "as" */
	expect_refused("ulimits", "nofile=5:1", "soft limit must be less than or equal to hard limit: 5 > 1");
	expect_refused("ulimits", "nofile=1:2:3", "too many limit value arguments");
	expect_refused("ulimits", "nofile=x", "not a number");
	expect_refused("extra_hosts", "host", "invalid host host");
	expect_refused("extra_hosts", "host:1.2.3", "invalid IP address in add-host: 1.2.3");
	expect_refused("extra_hosts", "host:host-gateway", "host-gateway");
	expect_refused("annotations", "novalue", "expected key=value");
	expect_refused("annotations", "index:k=v", "only the manifest type");
	expect_refused("annotations", "manifest[linux/amd64]:k=v", "only the manifest type");
	expect_refused("labels", "=v", "empty key");
	expect_refused("build_contexts", "name", "expected NAME=VALUE");
	expect_refused("shm_size", "", "negative");
}

/* Accepted forms: buildx's host=ip, [v6], typed manifest annotations, -1 ulimits. */
static void test_values_accepted(void **state)
{
	(void)state;
	char *dir = context_dir();
	const char *hosts[] = { "a:1.2.3.4", "b=::1", "c:[fd00::2]", NULL };
	const char *ul[] = { "nofile=1024", "core=-1", "nproc=1:-1", NULL };
	const char *an[] = { "k=v", "manifest:k2=v", "org.opencontainers.image.url=https://x", NULL };
	ib_build_options o = IB_BUILD_OPTIONS_INIT;
	o.context = dir;
	o.extra_hosts = hosts;
	o.ulimits = ul;
	o.annotations = an;
	ib_buf out = IB_BUF_INIT;
	int rc = ib_build_plan_print(&out, &o);
	if (rc < 0)
		print_message("plan: %s\n", ib_error_last()->message);
	assert_int_equal(rc, 0);
	ib_buf_dispose(&out);
	rm_dir(dir);
	free(dir);
}

DEFINE_GROUP(extras_tests, cmocka_unit_test(test_init_v6_size), cmocka_unit_test(test_v6_reads_no_further),
	     cmocka_unit_test(test_values_refused), cmocka_unit_test(test_values_accepted))
