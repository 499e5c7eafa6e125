#include "tests.h"
#include "util/json.h"
#include "util/buf.h"
#include "util/fs.h"
#include <unistd.h>

static void round_trip(void **state)
{
	(void)state;
	const char *text = "{\"b\":[1,\"two\",null,true],\"a\":{\"x\":\"\u00e9\\u0000z\"}}";
	json_t *j;
	assert_int_equal(ib_json_loadb(&j, text, strlen(text), "test"), 0);
	ib_buf out = IB_BUF_INIT;
	assert_int_equal(ib_json_dump(&out, j, 0), 0);
	assert_string_equal(out.ptr, text); /* insertion order is kept */
	json_t *j2;
	assert_int_equal(ib_json_loadb(&j2, out.ptr, out.size, "again"), 0);
	assert_true(json_equal(j, j2));
	ib_buf_clear(&out);
	ib_json_dump(&out, j, IB_JSON_SORTED);
	assert_string_equal(out.ptr, "{\"a\":{\"x\":\"\u00e9\\u0000z\"},\"b\":[1,\"two\",null,true]}");
	json_decref(j);
	json_decref(j2);
	ib_buf_dispose(&out);
}

static void errors_name_source_and_position(void **state)
{
	(void)state;
	json_t *j = NULL;
	const char *bad = "{\n  \"a\": 1,\n  \"b\": }";
	ib_assert_error_contains(ib_json_loadb(&j, bad, strlen(bad), "index.json"), "index.json: invalid JSON at line 3");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	const char *dup = "{\"a\":1,\"a\":2}";
	ib_assert_error_contains(ib_json_loadb(&j, dup, strlen(dup), "dup"), "duplicate");
	assert_int_equal(ib_json_load_file(&j, "/nonexistent/x.json"), IB_ENOTFOUND);
}

static void helpers(void **state)
{
	(void)state;
	json_t *o = json_object();
	assert_int_equal(ib_json_set_str(o, "k", "v"), 0);
	assert_int_equal(ib_json_set_new(o, "n", json_integer(3)), 0);
	assert_string_equal(ib_json_str(o, "k"), "v");
	assert_null(ib_json_str(o, "n"));
	assert_null(ib_json_str(o, "missing"));
	json_decref(o);
}

static void load_file(void **state)
{
	(void)state;
	char *dir = ib_test_tmpdir("json");
	char p[4200];
	snprintf(p, sizeof p, "%s/x.json", dir);
	ib_atomic_write(p, "[\"a\"]", 5, 0644);
	json_t *j;
	assert_int_equal(ib_json_load_file(&j, p), 0);
	assert_string_equal(json_string_value(json_array_get(j, 0)), "a");
	json_decref(j);
	ib_atomic_write(p, "[\"a\"", 4, 0644);
	ib_assert_error_contains(ib_json_load_file(&j, p), p);
	unlink(p);
	rmdir(dir);
	free(dir);
}

DEFINE_GROUP(json_tests,
	cmocka_unit_test(round_trip),
	cmocka_unit_test(errors_name_source_and_position),
	cmocka_unit_test(helpers),
	cmocka_unit_test(load_file))
