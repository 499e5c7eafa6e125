/*
 * Docker's default seccomp profile as the execute layer resolves it
 * (lib/execute/seccomp.c): the OCI linux.seccomp of config.json, for
 * Docker's default capabilities, and the BPF program the namespaces and
 * chroot children load. No root needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include "ib_test.h"
#include "execute/internal.h"
#include "imagebuild/buffer.h"

/* The rule for `name` with `action` (and no conditions when `plain`), or NULL. */
static json_t *find_rule(json_t *calls, const char *name, const char *action, int plain)
{
	size_t i, j;
	json_t *c, *n;
	json_array_foreach(calls, i, c) {
		if (strcmp(json_string_value(json_object_get(c, "action")), action) != 0)
			continue;
		if (plain && json_array_size(json_object_get(c, "args")))
			continue;
		json_array_foreach(json_object_get(c, "names"), j, n)
			if (!strcmp(json_string_value(n), name))
				return c;
	}
	return NULL;
}

static void test_oci_seccomp(void **state)
{
	(void)state;
	const char *argv[] = { "/bin/true", NULL };
	ib_isolation_spec s;
	memset(&s, 0, sizeof s);
	s.rootfs = "/roots/r1";
	s.argv = argv;
	s.cwd = "/";
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_execute__oci_config(&b, &s), 0);
	json_error_t err;
	json_t *c = json_loads(b.ptr, 0, &err);
	assert_non_null(c);
	json_t *sc = json_object_get(json_object_get(c, "linux"), "seccomp");
	assert_non_null(sc);
	assert_string_equal(json_string_value(json_object_get(sc, "defaultAction")), "SCMP_ACT_ERRNO");
#if defined(__x86_64__)
	json_t *arches = json_object_get(sc, "architectures");
	assert_int_equal(json_array_size(arches), 3);
	assert_string_equal(json_string_value(json_array_get(arches, 0)), "SCMP_ARCH_X86_64");
	assert_non_null(find_rule(json_object_get(sc, "syscalls"), "arch_prctl", "SCMP_ACT_ALLOW", 1));
#endif
	json_t *calls = json_object_get(sc, "syscalls");
	/* allowed for everyone */
	assert_non_null(find_rule(calls, "read", "SCMP_ACT_ALLOW", 1));
	assert_non_null(find_rule(calls, "execve", "SCMP_ACT_ALLOW", 1));
	/* allowed by a capability Docker gives (CAP_SYS_CHROOT), by kernel version (ptrace, 4.8) */
	assert_non_null(find_rule(calls, "chroot", "SCMP_ACT_ALLOW", 1));
	assert_non_null(find_rule(calls, "ptrace", "SCMP_ACT_ALLOW", 1));
	/* only for capabilities Docker does not give: not there */
	const char *refused[] = { "unshare", "setns", "mount", "add_key", "keyctl", "request_key",
				  "bpf", "init_module", "reboot", "clock_settime", "open_by_handle_at" };
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		assert_null(find_rule(calls, refused[i], "SCMP_ACT_ALLOW", 0));
	/* clone only without namespace flags; clone3 says ENOSYS so that the C library falls back */
	json_t *clone = find_rule(calls, "clone", "SCMP_ACT_ALLOW", 0);
	assert_non_null(clone);
	json_t *arg = json_array_get(json_object_get(clone, "args"), 0);
	assert_string_equal(json_string_value(json_object_get(arg, "op")), "SCMP_CMP_MASKED_EQ");
	assert_int_equal(json_integer_value(json_object_get(arg, "value")), 2114060288);
	json_t *clone3 = find_rule(calls, "clone3", "SCMP_ACT_ERRNO", 1);
	assert_non_null(clone3);
	assert_int_equal(json_integer_value(json_object_get(clone3, "errnoRet")), 38);
	json_decref(c);
	ib_buf_dispose(&b);
}

static void test_bpf(void **state)
{
	(void)state;
	ib_execute__seccomp_prog p;
	assert_int_equal(ib_execute__seccomp_bpf(&p), 0);
	assert_true(p.len > 100 && p.len <= BPF_MAXINSNS);
	/* the ENOSYS prefix first: it loads the architecture */
	assert_int_equal(p.filter[0].code, BPF_LD | BPF_W | BPF_ABS);
	assert_int_equal(p.filter[0].k, offsetof(struct seccomp_data, arch));
	ib_execute__seccomp_dispose(&p);
	const ib_execute__seccomp_prog *a, *b;
	assert_int_equal(ib_execute__seccomp_bpf_cached(&a), 0);
	assert_int_equal(ib_execute__seccomp_bpf_cached(&b), 0);
	assert_ptr_equal(a, b);
	assert_true(a->len > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_seccomp),
		cmocka_unit_test(test_bpf),
	};
	return cmocka_run_group_tests_name("execute-seccomp", tests, NULL, NULL);
}
