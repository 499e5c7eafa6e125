#include "tests.h"
#include "util/buf.h"

static void grow_and_put(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	assert_string_equal(ib_buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ib_buf_puts(&b, "abc"), 0);
	assert_int_equal(b.size, 3000);
	assert_true(b.asize > b.size);
	assert_int_equal(b.ptr[b.size], '\0');
	assert_memory_equal(b.ptr + 2997, "abc", 3);
	ib_buf_dispose(&b);
	assert_null(b.ptr);
	assert_int_equal(b.size, 0);
	ib_buf_dispose(NULL);
}

static void set_clear_printf(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	ib_buf_set(&b, "hello", 5);
	ib_buf_printf(&b, " %d %s", 42, "x");
	assert_string_equal(b.ptr, "hello 42 x");
	ib_buf_set(&b, b.ptr + 6, 2); /* overlapping */
	assert_string_equal(b.ptr, "42");
	ib_buf_clear(&b);
	assert_int_equal(b.size, 0);
	assert_string_equal(b.ptr, "");
	ib_buf_put(&b, "a\0b", 3);
	assert_int_equal(b.size, 3);
	char *s = ib_buf_detach(&b);
	assert_memory_equal(s, "a\0b", 4);
	assert_null(b.ptr);
	free(s);
	ib_buf_dispose(&b);
}

static void huge_request_is_oom_error(void **state)
{
	(void)state;
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_buf_grow(&b, SIZE_MAX), IB_ERROR);
	assert_string_equal(ib_error_last()->message, "out of memory");
	ib_buf_dispose(&b);
}

#include "util/strlist.h"
static void strlist_basics(void **state)
{
	(void)state;
	ib_strlist l = IB_STRLIST_INIT;
	assert_int_equal(ib_strlist_add(&l, "b"), 0);
	assert_int_equal(ib_strlist_addn(&l, "abc", 1), 0);
	for (int i = 0; i < 20; i++)
		ib_strlist_add(&l, "z");
	assert_int_equal(l.n, 22);
	assert_null(l.items[l.n]);
	ib_strlist_sort(&l);
	assert_string_equal(l.items[0], "a");
	assert_string_equal(l.items[1], "b");
	assert_true(ib_strlist_contains(&l, "z"));
	assert_false(ib_strlist_contains(&l, "y"));
	ib_strlist_clear(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
}

DEFINE_GROUP(buffer_tests,
	cmocka_unit_test(strlist_basics),
	cmocka_unit_test(grow_and_put),
	cmocka_unit_test(set_clear_printf),
	cmocka_unit_test(huge_request_is_oom_error))
