#include "tests.h"
#include "util/error.h"
#include <errno.h>
#include <pthread.h>

static void no_error_is_never_null(void **state)
{
	(void)state;
	ib_error_clear();
	const ib_error *e = ib_error_last();
	assert_non_null(e);
	assert_non_null(e->message);
	assert_string_equal(e->message, "no error");
	assert_int_equal(e->code, IB_OK);
}

static void set_returns_code_and_formats(void **state)
{
	(void)state;
	int rc = ib_error_setc(IB_ESYNTAX, IB_LAYER_PARSE, "Dockerfile:%d: unknown instruction `%s`", 3, "FORM");
	assert_int_equal(rc, IB_ESYNTAX);
	assert_int_equal(ib_error_last()->code, IB_ESYNTAX);
	assert_int_equal(ib_error_last()->layer, IB_LAYER_PARSE);
	assert_string_equal(ib_error_last()->message, "Dockerfile:3: unknown instruction `FORM`");
}

static void context_chain(void **state)
{
	(void)state;
	ib_error_set(IB_LAYER_SNAPSHOT, "mount overlay on `%s`", "/x");
	ib_error_prefix("prepare rootfs");
	ib_error_prefix("step %d/%d RUN", 4, 9);
	assert_string_equal(ib_error_last()->message,
			    "step 4/9 RUN: prepare rootfs: mount overlay on `/x`");
	assert_int_equal(ib_error_last()->code, IB_ERROR);
	assert_int_equal(ib_error_last()->layer, IB_LAYER_SNAPSHOT);
}

static void os_error_names_errno(void **state)
{
	(void)state;
	errno = ENOENT;
	int rc = ib_error_set_os(IB_LAYER_STORE, "open `%s`", "/nope");
	assert_int_equal(rc, IB_ENOTFOUND);
	assert_string_equal(ib_error_last()->message, "open `/nope`: No such file or directory");
	errno = EACCES;
	assert_int_equal(ib_error_set_os(IB_LAYER_STORE, "open"), IB_ERROR);
}

/* the errno travels with the error, by value: text that reads like strerror() is not it */
static void errno_travels_with_the_error(void **state)
{
	(void)state;
	errno = EROFS;
	ib_error_set_os(IB_LAYER_SNAPSHOT, "write `%s`", "x");
	ib_error_prefix("layer a");
	assert_int_equal(ib_error_errno(), EROFS);
	ib_error_saved s;
	ib_error_save(&s);
	assert_int_equal(ib_error_errno(), 0);
	ib_error_restore(&s);
	assert_int_equal(ib_error_errno(), EROFS);
	ib_error_set(IB_LAYER_SNAPSHOT, "entry `Read-only file system`: %s", strerror(EROFS));
	assert_int_equal(ib_error_errno(), 0);
	ib_error_note_errno(EIO);
	assert_int_equal(ib_error_errno(), EIO);
	ib_error_clear();
	assert_int_equal(ib_error_errno(), 0);
}

static void clear_forgets(void **state)
{
	(void)state;
	ib_error_set(IB_LAYER_UTIL, "boom");
	ib_error_clear();
	assert_string_equal(ib_error_last()->message, "no error");
	ib_error_prefix("context"); /* nothing to prefix */
	assert_string_equal(ib_error_last()->message, "no error");
}

static void save_restore(void **state)
{
	(void)state;
	ib_error_setc(IB_ENOTFOUND, IB_LAYER_STORE, "image `x` not found");
	ib_error_saved s;
	ib_error_save(&s);
	ib_error_set(IB_LAYER_UTIL, "cleanup failed");
	ib_error_restore(&s);
	assert_string_equal(ib_error_last()->message, "image `x` not found");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
}

static void *other_thread(void *arg)
{
	(void)arg;
	/* a new thread starts with no error */
	const char *m = ib_error_last()->message;
	ib_error_set(IB_LAYER_UTIL, "thread error");
	return (void *)(strcmp(m, "no error") == 0 ? "ok" : "bad");
}

static void per_thread(void **state)
{
	(void)state;
	ib_error_set(IB_LAYER_UTIL, "main error");
	pthread_t t;
	void *res;
	pthread_create(&t, NULL, other_thread, NULL);
	pthread_join(t, &res);
	assert_string_equal(res, "ok");
	assert_string_equal(ib_error_last()->message, "main error");
}

DEFINE_GROUP(error_tests,
	cmocka_unit_test(no_error_is_never_null),
	cmocka_unit_test(set_returns_code_and_formats),
	cmocka_unit_test(context_chain),
	cmocka_unit_test(os_error_names_errno),
	cmocka_unit_test(errno_travels_with_the_error),
	cmocka_unit_test(clear_forgets),
	cmocka_unit_test(save_restore),
	cmocka_unit_test(per_thread))
