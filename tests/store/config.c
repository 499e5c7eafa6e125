#include "tests.h"

/* Every versioned struct of store.h has an _init() (for bindings) that matches its INIT macro. */
#define CHECK_INIT(type, fn, VERSION, INIT) do { \
		type got_, want_; \
		/* a static object's padding is zero (C11 6.7.9): INIT with zeroed padding */ \
		static const type init_ = INIT; \
		memcpy(&want_, &init_, sizeof want_); \
		memset(&got_, 0x5a, sizeof got_); \
		assert_int_equal(fn(&got_, VERSION), 0); \
		assert_memory_equal(&got_, &want_, sizeof got_); \
		ib_assert_error_contains(fn(&got_, VERSION + 1), "not supported"); \
		assert_int_equal(fn(&got_, 0), IB_EINVALID); \
		assert_int_equal(fn(NULL, VERSION), IB_EINVALID); \
	} while (0)

/* The same for an output struct whose INIT is its version and zeros: _init() gives exactly that. */
#define CHECK_ZERO_INIT(type, fn, VERSION) do { \
		type got_, zero_; \
		memset(&got_, 0x5a, sizeof got_); \
		memset(&zero_, 0, sizeof zero_); \
		assert_int_equal(fn(&got_, VERSION), 0); \
		assert_int_equal(got_.version, VERSION); \
		got_.version = 0; \
		assert_memory_equal(&got_, &zero_, sizeof got_); \
		ib_assert_error_contains(fn(&got_, VERSION + 1), "not supported"); \
		assert_int_equal(fn(NULL, VERSION), IB_EINVALID); \
	} while (0)

static void test_fields(void **state)
{
	(void)state;
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_string_equal(ib_image_config_get(c, IB_CONFIG_OS), "linux");
	assert_non_null(ib_image_config_get(c, IB_CONFIG_ARCHITECTURE));
	assert_null(ib_image_config_get(c, IB_CONFIG_WORKDIR));
	assert_int_equal(ib_image_config_set(c, IB_CONFIG_WORKDIR, "/app"), 0);
	assert_int_equal(ib_image_config_set(c, IB_CONFIG_USER, "nobody"), 0);
	assert_int_equal(ib_image_config_set(c, IB_CONFIG_STOPSIGNAL, "SIGTERM"), 0);
	assert_int_equal(ib_image_config_set(c, IB_CONFIG_AUTHOR, "me"), 0);
	assert_string_equal(ib_image_config_get(c, IB_CONFIG_WORKDIR), "/app");
	assert_int_equal(ib_image_config_set(c, IB_CONFIG_USER, NULL), 0);
	assert_null(ib_image_config_get(c, IB_CONFIG_USER));

	/* Cmd unset vs empty */
	assert_int_equal(ib_image_config_list_is_set(c, IB_CONFIG_CMD), 0);
	const char *empty[1] = { NULL };
	assert_int_equal(ib_image_config_list_set(c, IB_CONFIG_CMD, empty, 0), 0);
	assert_int_equal(ib_image_config_list_is_set(c, IB_CONFIG_CMD), 1);
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_CMD), 0);
	const char *cmd[] = { "/bin/sh", "-c", "echo hi" };
	assert_int_equal(ib_image_config_list_set(c, IB_CONFIG_CMD, cmd, 3), 0);
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_CMD), 3);
	assert_string_equal(ib_image_config_list_get(c, IB_CONFIG_CMD, 2), "echo hi");
	assert_null(ib_image_config_list_get(c, IB_CONFIG_CMD, 3));
	assert_int_equal(ib_image_config_list_set(c, IB_CONFIG_ENTRYPOINT, cmd, 1), 0);
	assert_int_equal(ib_image_config_list_set(c, IB_CONFIG_SHELL, cmd, 2), 0);
	assert_int_equal(ib_image_config_list_add(c, IB_CONFIG_ONBUILD, "RUN echo x"), 0);

	/* sets */
	assert_int_equal(ib_image_config_list_add(c, IB_CONFIG_EXPOSED_PORTS, "8080/tcp"), 0);
	assert_int_equal(ib_image_config_list_add(c, IB_CONFIG_EXPOSED_PORTS, "80/tcp"), 0);
	assert_int_equal(ib_image_config_list_add(c, IB_CONFIG_EXPOSED_PORTS, "80/tcp"), 0);
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_EXPOSED_PORTS), 2);
	assert_string_equal(ib_image_config_list_get(c, IB_CONFIG_EXPOSED_PORTS, 0), "80/tcp");
	assert_int_equal(ib_image_config_list_add(c, IB_CONFIG_VOLUMES, "/data"), 0);

	/* env */
	assert_int_equal(ib_image_config_env_set(c, "PATH", "/bin"), 0);
	assert_int_equal(ib_image_config_env_set(c, "A", "1"), 0);
	assert_int_equal(ib_image_config_env_set(c, "PATH", "/usr/bin:/bin"), 0);
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_ENV), 2);
	assert_string_equal(ib_image_config_list_get(c, IB_CONFIG_ENV, 0), "PATH=/usr/bin:/bin");
	assert_string_equal(ib_image_config_env_get(c, "A"), "1");
	assert_null(ib_image_config_env_get(c, "PAT"));
	ib_assert_error_contains(ib_image_config_env_set(c, "A=B", "x"), "invalid environment variable name");

	/* labels */
	assert_int_equal(ib_image_config_label_set(c, "z", "last"), 0);
	assert_int_equal(ib_image_config_label_set(c, "a", "first"), 0);
	const char *k, *v;
	assert_int_equal(ib_image_config_label_at(&k, &v, c, 0), 0);
	assert_string_equal(k, "a");
	assert_string_equal(v, "first");
	assert_int_equal(ib_image_config_label_count(c), 2);
	assert_int_equal(ib_image_config_label_set(c, "z", NULL), 0);
	assert_int_equal(ib_image_config_label_count(c), 1);
	assert_int_equal(ib_image_config_label_at(&k, &v, c, 1), IB_ENOTFOUND);

	/* healthcheck */
	ib_healthcheck hc = IB_HEALTHCHECK_INIT;
	assert_int_equal(ib_image_config_healthcheck(&hc, c), 0);
	const char *test[] = { "CMD-SHELL", "true" };
	hc.interval = 30000000000LL;
	hc.retries = 3;
	assert_int_equal(ib_image_config_set_healthcheck(c, test, 2, &hc), 0);
	ib_healthcheck got = IB_HEALTHCHECK_INIT;
	assert_int_equal(ib_image_config_healthcheck(&got, c), 1);
	assert_true(got.interval == 30000000000LL);
	assert_int_equal(got.retries, 3);
	assert_string_equal(ib_image_config_list_get(c, IB_CONFIG_HEALTHCHECK_TEST, 1), "true");

	/* diff_ids, history */
	ib_digest d;
	ib_digest_of(&d, "x", 1);
	assert_int_equal(ib_image_config_diff_id_add(c, &d), 0);
	ib_digest back;
	assert_int_equal(ib_image_config_diff_id(&back, c, 0), 0);
	assert_true(ib_digest_equal(&d, &back));
	ib_history_entry h = { IB_HISTORY_ENTRY_VERSION, "2024-01-01T00:00:00Z", "RUN x", NULL, NULL, 0 };
	ib_history_entry h2 = { IB_HISTORY_ENTRY_VERSION, "2024-01-01T00:00:01Z", "ENV A=1", NULL, "c", 1 };
	assert_int_equal(ib_image_config_history_add(c, &h), 0);
	assert_int_equal(ib_image_config_history_add(c, &h2), 0);
	ib_history_entry out = IB_HISTORY_ENTRY_INIT;
	assert_int_equal(ib_image_config_history_get(&out, c, 1), 0);
	assert_int_equal(out.empty_layer, 1);
	assert_string_equal(out.created_by, "ENV A=1");
	/* caller-allocated outputs carry a version the library checks (none: refused, not overrun) */
	ib_history_entry unversioned;
	memset(&unversioned, 0, sizeof unversioned);
	ib_assert_error_contains(ib_image_config_history_get(&unversioned, c, 1), "ib_history_entry version 0");
	ib_assert_error_contains(ib_image_config_history_add(c, &unversioned), "ib_history_entry version 0");
	ib_healthcheck hc0;
	memset(&hc0, 0, sizeof hc0);
	ib_assert_error_contains(ib_image_config_healthcheck(&hc0, c), "ib_healthcheck version 0");
	hc0.version = 7;
	ib_assert_error_contains(ib_image_config_set_healthcheck(c, test, 2, &hc0), "ib_healthcheck version 7");
	CHECK_ZERO_INIT(ib_history_entry, ib_history_entry_init, IB_HISTORY_ENTRY_VERSION);
	CHECK_ZERO_INIT(ib_image_history_item, ib_image_history_item_init, IB_IMAGE_HISTORY_ITEM_VERSION);
	CHECK_ZERO_INIT(ib_store_gc_stats, ib_store_gc_stats_init, IB_STORE_GC_STATS_VERSION);
	ib_image_history_item hi = IB_IMAGE_HISTORY_ITEM_INIT;
	ib_store_gc_stats gs = IB_STORE_GC_STATS_INIT;
	assert_int_equal(hi.version, IB_IMAGE_HISTORY_ITEM_VERSION);
	assert_int_equal(gs.version, IB_STORE_GC_STATS_VERSION);

	/* JSON round trip keeps everything */
	ib_buf j = IB_BUF_INIT, j2 = IB_BUF_INIT;
	assert_int_equal(ib_image_config_to_json(&j, c), 0);
	assert_non_null(strstr(j.ptr, "\"WorkingDir\":\"/app\""));
	assert_non_null(strstr(j.ptr, "\"ExposedPorts\":{\"80/tcp\":{},\"8080/tcp\":{}}"));
	assert_non_null(strstr(j.ptr, "\"OnBuild\":[\"RUN echo x\"]"));
	assert_non_null(strstr(j.ptr, "\"Healthcheck\":{"));
	ib_image_config *c2;
	assert_int_equal(ib_image_config_from_json(&c2, j.ptr, j.size), 0);
	assert_int_equal(ib_image_config_to_json(&j2, c2), 0);
	assert_string_equal(j.ptr, j2.ptr);
	ib_image_config_free(c2);
	ib_buf_dispose(&j);
	ib_buf_dispose(&j2);
	ib_image_config_free(c);
}

static void test_unknown_fields(void **state)
{
	(void)state;
	const char *in = "{\"architecture\":\"arm64\",\"config\":{\"ArgsEscaped\":true,\"Cmd\":null},"
			 "\"os\":\"linux\",\"x-custom\":[1,2]}";
	ib_image_config *c;
	assert_int_equal(ib_image_config_from_json(&c, in, strlen(in)), 0);
	assert_int_equal(ib_image_config_list_is_set(c, IB_CONFIG_CMD), 0);
	assert_int_equal(ib_image_config_set(c, IB_CONFIG_USER, "1000"), 0);
	ib_buf j = IB_BUF_INIT;
	assert_int_equal(ib_image_config_to_json(&j, c), 0);
	assert_non_null(strstr(j.ptr, "\"x-custom\":[1,2]"));
	assert_non_null(strstr(j.ptr, "\"ArgsEscaped\":true"));
	ib_buf_dispose(&j);
	ib_image_config_free(c);
	ib_assert_error_contains(ib_image_config_from_json(&c, "[1]", 3), "not a JSON object");
	ib_assert_error_contains(ib_image_config_from_json(&c, "{", 1), "invalid JSON");
}

/* Fields we read with the wrong type are refused, as Docker's decoder refuses them. */
static void test_field_types(void **state)
{
	(void)state;
	static const struct { const char *json, *error; } bad[] = {
		{ "{\"config\":{\"Labels\":{\"a\":1}}}", "config.Labels.a is not a string" },
		{ "{\"config\":{\"Env\":[\"A=1\",2]}}", "config.Env is not a list of strings" },
		{ "{\"config\":{\"User\":0}}", "config.User is not a string" },
		{ "{\"config\":{\"ExposedPorts\":{\"80/tcp\":1}}}", "config.ExposedPorts.80/tcp is not an object" },
		{ "{\"config\":{\"Healthcheck\":{\"Retries\":\"3\"}}}", "config.Healthcheck.Retries is not an integer" },
		{ "{\"created\":5}", "created is not a string" },
		{ "{\"rootfs\":{\"diff_ids\":{}}}", "rootfs.diff_ids is not a list of strings" },
		{ "{\"history\":[{\"empty_layer\":\"yes\"}]}", "history[].empty_layer is not true or false" },
		{ "{\"history\":[1]}", "history[0] is not an object" },
	};
	ib_image_config *c;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ib_assert_error_contains(ib_image_config_from_json(&c, bad[i].json, strlen(bad[i].json)), bad[i].error);
	/* null is unset; one string is a one-item Cmd (Docker's strslice) */
	const char *ok = "{\"config\":{\"Labels\":null,\"Cmd\":\"sh\",\"Env\":null},\"history\":null}";
	assert_int_equal(ib_image_config_from_json(&c, ok, strlen(ok)), 0);
	assert_int_equal(ib_image_config_label_count(c), 0);
	assert_int_equal(ib_image_config_list_count(c, IB_CONFIG_CMD), 1);
	assert_string_equal(ib_image_config_list_get(c, IB_CONFIG_CMD, 0), "sh");
	ib_image_config_free(c);
}

static void test_created(void **state)
{
	(void)state;
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_int_equal(ib_image_config_set_created_at(c, 86400), 0);
	assert_string_equal(ib_image_config_get(c, IB_CONFIG_CREATED), "1970-01-02T00:00:00Z");
	/* the environment is not read */
	setenv("SOURCE_DATE_EPOCH", "86400", 1);
	assert_int_equal(ib_image_config_set_created_now(c), 0);
	unsetenv("SOURCE_DATE_EPOCH");
	assert_string_not_equal(ib_image_config_get(c, IB_CONFIG_CREATED), "1970-01-02T00:00:00Z");
	ib_assert_error_contains(ib_image_config_set_created_at(c, -5), "before 1970");
	ib_image_config_free(c);
}

/* fn(o, VERSION) of an older version: version set, the rest of that version zero, nothing past SIZE written. */
#define CHECK_INIT_OLD(type, fn, VERSION, SIZE) do { \
		type o_; \
		memset(&o_, 0x5a, sizeof o_); \
		assert_int_equal(fn(&o_, VERSION), 0); \
		assert_int_equal(o_.version, VERSION); \
		const unsigned char *b_ = (const unsigned char *)&o_; \
		for (size_t i_ = sizeof o_.version; i_ < (SIZE); i_++) \
			assert_int_equal(b_[i_], 0); \
		for (size_t i_ = (SIZE); i_ < sizeof o_; i_++) \
			assert_int_equal(b_[i_], 0x5a); \
	} while (0)

static void test_options_init(void **state)
{
	(void)state;
	CHECK_INIT(ib_store_options, ib_store_options_init, IB_STORE_OPTIONS_VERSION, IB_STORE_OPTIONS_INIT);
	CHECK_INIT(ib_healthcheck, ib_healthcheck_init, IB_HEALTHCHECK_VERSION, IB_HEALTHCHECK_INIT);
	CHECK_INIT(ib_image_commit_options, ib_image_commit_options_init, IB_IMAGE_COMMIT_OPTIONS_VERSION,
		   IB_IMAGE_COMMIT_OPTIONS_INIT);
	CHECK_INIT(ib_save_options, ib_save_options_init, IB_SAVE_OPTIONS_VERSION, IB_SAVE_OPTIONS_INIT);
	CHECK_INIT(ib_load_options, ib_load_options_init, IB_LOAD_OPTIONS_VERSION, IB_LOAD_OPTIONS_INIT);
	CHECK_INIT(ib_container_record, ib_container_record_init, IB_CONTAINER_RECORD_VERSION,
		   IB_CONTAINER_RECORD_INIT);
	CHECK_INIT(ib_store_gc_options, ib_store_gc_options_init, IB_STORE_GC_OPTIONS_VERSION,
		   IB_STORE_GC_OPTIONS_INIT);
	CHECK_INIT(ib_store_fsck_options, ib_store_fsck_options_init, IB_STORE_FSCK_OPTIONS_VERSION,
		   IB_STORE_FSCK_OPTIONS_INIT);
	CHECK_INIT(ib_import_options, ib_import_options_init, IB_IMPORT_OPTIONS_VERSION, IB_IMPORT_OPTIONS_INIT);
	/* an older version's struct is smaller: only its size is written */
	CHECK_INIT_OLD(ib_save_options, ib_save_options_init, 1, offsetof(ib_save_options, callbacks));
	CHECK_INIT_OLD(ib_load_options, ib_load_options_init, 1, offsetof(ib_load_options, callbacks));
	CHECK_INIT_OLD(ib_import_options, ib_import_options_init, 1, offsetof(ib_import_options, source_date_epoch));
	CHECK_INIT_OLD(ib_import_options, ib_import_options_init, 2, offsetof(ib_import_options, callbacks));
}

DEFINE_GROUP(config_tests,
	cmocka_unit_test(test_options_init),
	cmocka_unit_test(test_fields),
	cmocka_unit_test(test_unknown_fields),
	cmocka_unit_test(test_field_types),
	cmocka_unit_test(test_created))
