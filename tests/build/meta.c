/* The metadata instructions applied to a config, in the one place the build
 * and `commit -c` share (ib_build__meta_apply). */
#include "tests.h"
#include "build/internal.h"
#include "imagebuild/parse.h"
#include "imagebuild/store.h"

#include <string.h>

static int apply(ib_image_config *c, const char *text, ib_build__meta *m, ib_buf *hist)
{
	ib_instruction *in = NULL;
	ib_build__meta none;
	memset(&none, 0, sizeof none);
	if (!m)
		m = &none;
	m->history = hist;
	int rc = ib_instruction_parse_single(&in, text, NULL);
	if (rc == 0)
		rc = ib_build__meta_apply(c, in, m);
	ib_instruction_free(in);
	return rc;
}

static void env_workdir_and_history(void **state)
{
	(void)state;
	ib_image_config *c = NULL;
	ib_buf h = IB_BUF_INIT;
	assert_int_equal(ib_image_config_new(&c), 0);
	/* without a builder, words expand with the config's own Env; every pair sees the old one */
	assert_int_equal(apply(c, "ENV A=1", NULL, NULL), 0);
	assert_int_equal(apply(c, "ENV A=2 B=$A", NULL, &h), 0);
	assert_string_equal(h.ptr, "ENV A=2 B=1");
	assert_int_equal(apply(c, "WORKDIR /app", NULL, NULL), 0);
	assert_int_equal(apply(c, "WORKDIR sub/../$A", NULL, &h), 0);
	assert_string_equal(ib_image_config_get(c, IB_CONFIG_WORKDIR), "/app/2");
	assert_string_equal(h.ptr, "WORKDIR /app/2");
	/* the caller's environment wins when given (the build's ARGs) */
	const char *env[] = {"A=from-arg", NULL};
	ib_build__meta m;
	memset(&m, 0, sizeof m);
	m.env = env;
	assert_int_equal(apply(c, "LABEL x=$A", &m, &h), 0);
	assert_string_equal(h.ptr, "LABEL x=from-arg");
	ib_buf_dispose(&h);
	ib_image_config_free(c);
}

static void entrypoint_keeps_a_cmd_of_the_stage(void **state)
{
	(void)state;
	ib_image_config *c = NULL;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_int_equal(apply(c, "CMD [\"base\"]", NULL, NULL), 0);
	/* a CMD from the base is dropped by ENTRYPOINT */
	assert_int_equal(apply(c, "ENTRYPOINT [\"e\"]", NULL, NULL), 0);
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_CMD), 0);
	/* one set in this stage (cmd_set) is kept */
	ib_build__meta m;
	memset(&m, 0, sizeof m);
	assert_int_equal(apply(c, "CMD [\"mine\"]", &m, NULL), 0);
	assert_int_equal(m.cmd_set, 1);
	assert_int_equal(apply(c, "ENTRYPOINT [\"f\"]", &m, NULL), 0);
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_CMD), 1);
	ib_image_config_free(c);
}

/* errors say what, never where: the build adds "<Dockerfile>:<line>", commit -c the change */
static void errors_name_no_place(void **state)
{
	(void)state;
	ib_image_config *c = NULL;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_int_equal(apply(c, "EXPOSE 70000", NULL, NULL), IB_EINVALID);
	assert_string_equal(ib_error_last()->message,
			    "EXPOSE `70000`: invalid port `70000` (0-65535, or a range low-high)");
	assert_int_equal(apply(c, "STOPSIGNAL SIGNOPE", NULL, NULL), IB_EINVALID);
	assert_string_equal(ib_error_last()->message, "STOPSIGNAL: invalid signal `SIGNOPE`");
	assert_true(ib_commit_apply_change(c, "EXPOSE 80/ftp") < 0);
	assert_string_equal(ib_error_last()->message,
			    "change `EXPOSE 80/ftp`: EXPOSE `80/ftp`: invalid protocol `ftp` (tcp, udp or sctp)");
	assert_true(ib_commit_apply_change(c, "RUN true") < 0);
	assert_non_null(strstr(ib_error_last()->message, "RUN cannot be applied as a change"));
	ib_image_config_free(c);
}

/* HEALTHCHECK --start-interval is kept (the config's StartInterval) */
static void healthcheck_start_interval(void **state)
{
	(void)state;
	ib_image_config *c = NULL;
	ib_healthcheck h = IB_HEALTHCHECK_INIT;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_int_equal(apply(c, "HEALTHCHECK --interval=5s --start-interval=3s CMD true", NULL, NULL), 0);
	assert_int_equal(ib_image_config_healthcheck(&h, c), 1);
	assert_int_equal(h.interval, 5000000000LL);
	assert_int_equal(h.start_interval, 3000000000LL);
	ib_image_config_free(c);
}

DEFINE_GROUP(meta_tests, cmocka_unit_test(env_workdir_and_history),
	     cmocka_unit_test(entrypoint_keeps_a_cmd_of_the_stage), cmocka_unit_test(errors_name_no_place),
	     cmocka_unit_test(healthcheck_start_interval))
