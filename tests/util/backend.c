/* The backend registry of lib/util and the errors of backends (sys/errors.h). */
#include "tests.h"
#include "imagebuild/sys/errors.h"
#include "util/backend.h"
#include "util/buf.h"
#include "util/error.h"

static void builtin_a(void) {}
static void builtin_b(void) {}
static void custom(void) {}

static const ib_backend_builtin builtins[] = { { "alpha", builtin_a }, { "beta", builtin_b } };
static const ib_backend_class cls = { IB_BACKEND_ISOLATION, "test backend", IB_LAYER_EXECUTE,
				      builtins, 2 };

static void set_str_sets_code_message_no_layer(void **state)
{
	(void)state;
	assert_int_equal(ib_error_set_str(IB_ENOTFOUND, "disk %s on fire", "sda"), IB_ENOTFOUND);
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	assert_int_equal(ib_error_last()->layer, IB_LAYER_NONE);
	assert_string_equal(ib_error_last()->message, "disk sda on fire");
	/* not a failure code: IB_ERROR */
	assert_int_equal(ib_error_set_str(0, "zero"), IB_ERROR);
	assert_int_equal(ib_error_set_str(5, "five"), IB_ERROR);
	ib_error_clear();
}

static int backend_says(const char *msg)
{
	return msg ? ib_error_set_str(IB_EUNSUPPORTED, "%s", msg) : -1;
}

static void call_end_names_a_silent_backend(void **state)
{
	(void)state;
	/* an error from before the call is not the backend's */
	ib_backend_call c;
	ib_error_set(IB_LAYER_STORE, "earlier");
	ib_backend_call_begin(&c);
	int rc = ib_backend_call_end(&c, &cls, "mine", "start", backend_says(NULL));
	assert_int_equal(rc, -1);
	assert_string_equal(ib_error_last()->message,
			    "test backend `mine`: start failed without a reason");
	assert_int_equal(ib_error_last()->layer, IB_LAYER_EXECUTE);
	/* its own message stays, with the kind's layer */
	ib_backend_call_begin(&c);
	rc = ib_backend_call_end(&c, &cls, "mine", "start", backend_says("disk on fire"));
	assert_int_equal(rc, IB_EUNSUPPORTED);
	assert_string_equal(ib_error_last()->message, "disk on fire");
	assert_int_equal(ib_error_last()->layer, IB_LAYER_EXECUTE);
	/* success returns what the backend returned, and a pending error of the caller stays */
	ib_error_clear();
	ib_backend_call_begin(&c);
	assert_int_equal(ib_backend_call_end(&c, &cls, "mine", "probe", 1), 1);
	assert_int_equal(ib_error_last()->code, IB_OK);
	ib_error_set(IB_LAYER_BUILD, "the build failed");
	ib_backend_call_begin(&c);
	assert_int_equal(ib_error_last()->code, IB_OK); /* the backend starts with a clear slot */
	ib_error_set_str(IB_ERROR, "noise the backend left"); /* and succeeds anyway */
	assert_int_equal(ib_backend_call_end(&c, &cls, "mine", "remove", 0), 0);
	assert_string_equal(ib_error_last()->message, "the build failed");
	ib_error_clear();
}

static void registry_names_list_lifetimes(void **state)
{
	(void)state;
	ib_buf names = IB_BUF_INIT;
	assert_int_equal(ib_backend_list(&cls, &names), 0);
	assert_string_equal(names.ptr, "alpha,beta");
	ib_assert_error_contains(ib_backend_register(&cls, "", custom, NULL), "1..32 characters");
	ib_assert_error_contains(ib_backend_register(&cls, "UPPER", custom, NULL), "test backend name `UPPER`");
	ib_assert_error_contains(ib_backend_register(&cls, "a-name-that-is-longer-than-32-chars", custom, NULL),
				 "1..32");
	ib_assert_error_contains(ib_backend_register(&cls, "ok", NULL, NULL), "no constructor");
	int param = 7;
	assert_int_equal(ib_backend_register(&cls, "gamma", custom, &param), 0);
	ib_backend_fn fn = NULL;
	void *p = NULL;
	const char *interned = NULL;
	assert_int_equal(ib_backend_find(&cls, "gamma", &fn, &p, &interned), 0);
	assert_ptr_equal(fn, custom);
	assert_ptr_equal(p, &param);
	assert_string_equal(interned, "gamma");
	/* replacing a built-in one keeps its place */
	assert_int_equal(ib_backend_register(&cls, "alpha", custom, NULL), 0);
	assert_int_equal(ib_backend_list(&cls, &names), 0);
	assert_string_equal(names.ptr, "alpha,beta,gamma");
	assert_int_equal(ib_backend_unregister(&cls, "beta"), 0);
	ib_assert_error_contains(ib_backend_find(&cls, "beta", &fn, NULL, NULL),
				 "no test backend named `beta` (known: alpha, gamma)");
	assert_int_equal(ib_error_last()->code, IB_ENOTFOUND);
	ib_assert_error_contains(ib_backend_unregister(&cls, "beta"), "no test backend named `beta`");
	/* an interned name outlives its registration */
	assert_int_equal(ib_backend_unregister(&cls, "gamma"), 0);
	assert_string_equal(interned, "gamma");
	/* reset: the built-ins only, as they were */
	ib_backend_reset();
	assert_int_equal(ib_backend_list(&cls, &names), 0);
	assert_string_equal(names.ptr, "alpha,beta");
	assert_int_equal(ib_backend_find(&cls, "alpha", &fn, NULL, NULL), 0);
	assert_ptr_equal(fn, builtin_a);
	ib_buf_dispose(&names);
}

DEFINE_GROUP(backend_tests,
	cmocka_unit_test(set_str_sets_code_message_no_layer),
	cmocka_unit_test(call_end_names_a_silent_backend),
	cmocka_unit_test(registry_names_list_lifetimes))
