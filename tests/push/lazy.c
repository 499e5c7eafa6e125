/*
 * libcurl is opened when first needed (util/lazylib.h, push/curl_lazy.c):
 * its own process, so nothing before has loaded curl. Until a network call,
 * the process maps no libcurl (dl_iterate_phdr); the first forwarder call
 * opens it and the forwarders then behave as curl's functions, variadic
 * options of each type included. A library that cannot be opened makes the
 * forwarders fail as the functions do and names itself in the error.
 * libarchive (lib/store/archive_lazy.c) is not in the process either until
 * a tar function is called, whatever store lookups came before.
 */
#include "util/lazy_names.h" /* the library's names for the forwarders, as its layers see them */
#include "tests.h"
#include "util/lazylib.h"

#include <archive_entry.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *name;
	int found;
} find_lib;

static int find_one(struct dl_phdr_info *info, size_t size, void *payload)
{
	(void)size;
	find_lib *f = payload;
	if (info->dlpi_name && strstr(info->dlpi_name, f->name))
		f->found = 1;
	return 0;
}

static int mapped(const char *name)
{
	find_lib f = { name, 0 };
	dl_iterate_phdr(find_one, &f);
	return f.found;
}

static int curl_mapped(void)
{
	return mapped("libcurl");
}

/* libarchive likewise: a store opened, an image imported by blob, listed and looked up need none */
static void test_archive_opened_when_needed(void **state)
{
	(void)state;
	assert_false(mapped("libarchive"));
	char dir[] = "/tmp/ibtest-lazy-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char root[64];
	snprintf(root, sizeof root, "%s/store", dir);
	ib_store *s = NULL;
	assert_int_equal(ib_store_open(&s, root, NULL), 0);
	ib_image_list *l = NULL;
	assert_int_equal(ib_store_images(&l, s), 0);
	assert_int_equal(ib_image_list_count(l), 0);
	ib_image_list_free(l);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, s, "nothing:here"), IB_ENOTFOUND);
	ib_error_clear();
	assert_false(mapped("libarchive"));
	struct archive_entry *e = archive_entry_new();
	assert_true(mapped("libarchive"));
	assert_non_null(e);
	archive_entry_set_pathname(e, "a/b");
	assert_string_equal(archive_entry_pathname(e), "a/b");
	archive_entry_free(e);
	ib_store_free(s);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_curl_opened_when_needed(void **state)
{
	(void)state;
	/* nothing has needed curl: it is not in the process */
	assert_false(ib_push__curl_loaded());
	assert_false(curl_mapped());
	/* the first call opens it */
	char *esc = curl_easy_escape(NULL, "a b/c", 0);
	assert_true(ib_push__curl_loaded());
	assert_true(curl_mapped());
	assert_non_null(esc);
	assert_string_equal(esc, "a%20b%2Fc");
	curl_free(esc);
	/* the variadic forwarders pass each option type through */
	CURL *c = curl_easy_init();
	assert_non_null(c);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, "http://127.0.0.1:1/x"), CURLE_OK);   /* object */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 200L), CURLE_OK);       /* long */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 40), CURLE_OK); /* off_t */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http"), CURLE_OK);
	/* a wrong value is refused by curl itself, so it arrived as given */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "nosuchproto"), CURLE_UNSUPPORTED_PROTOCOL);
	char *url = NULL;
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
	assert_non_null(url);
	assert_string_equal(url, "http://127.0.0.1:1/x");
	curl_easy_cleanup(c);
	CURLSH *sh = curl_share_init();
	assert_non_null(sh);
	assert_int_equal(curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS), CURLSHE_OK);
	assert_int_equal(curl_share_setopt(sh, CURLSHOPT_SHARE, 9999), CURLSHE_BAD_OPTION);
	assert_int_equal(curl_share_cleanup(sh), CURLSHE_OK);
	assert_string_equal(curl_easy_strerror(CURLE_COULDNT_CONNECT), "Couldn't connect to server");
	assert_int_equal(ib_push__curl_load(), 0);
}

static ib_lazylib missing = IB_LAZYLIB_INIT("libimagebuild-no-such-library.so.9", IB_LAYER_PUSH);
int no_such_function(int x);
IB_LAZY_FN(missing, int, no_such_function, (int x), (x), -42)

static void test_unloadable_library(void **state)
{
	(void)state;
	assert_int_equal(no_such_function(1), -42); /* fails as told, sets no error */
	assert_false(ib_lazylib_loaded(&missing));
	assert_null(ib_lazylib_sym(&missing, "no_such_function"));
	assert_int_equal(ib_lazylib_open(&missing), IB_ERROR);
	assert_non_null(strstr(ib_error_last()->message, "libimagebuild-no-such-library.so.9"));
	ib_error_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_archive_opened_when_needed),
		cmocka_unit_test(test_curl_opened_when_needed),
		cmocka_unit_test(test_unloadable_library),
	};
	return _cmocka_run_group_tests("lazy", tests, sizeof tests / sizeof *tests, NULL, NULL);
}
