#ifndef TESTS_STORE_H
#define TESTS_STORE_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "ib_test.h"
#include "imagebuild/store.h"

#define DECLARE(group) extern const struct CMUnitTest group[]; extern const size_t group##_count;
DECLARE(reference_tests)
DECLARE(config_tests)
DECLARE(blob_tests)
DECLARE(image_tests)
DECLARE(gc_tests)
DECLARE(bad_tests)
DECLARE(crash_tests)
DECLARE(transfer_tests)
DECLARE(trust_tests)
DECLARE(memo_tests)
DECLARE(names_tests)
DECLARE(platform_tests)
DECLARE(remote_tests)
#define DEFINE_GROUP(group, ...) \
	const struct CMUnitTest group[] = { __VA_ARGS__ }; \
	const size_t group##_count = sizeof(group) / sizeof(group[0]);

/* helpers.c */
typedef struct {
	char *dir;
	ib_store *store;
} test_store;
void ts_open(test_store *t, const char *tag);
void ts_close(test_store *t);  /* frees and removes the directory */
/* Write a small tar (files name → content pairs, NULL-terminated) to `path`; gzip when asked. */
void ts_make_tar(const char *path, const char *const *files, int gzip);
/* Import a small tar as `name`, returning its id. */
ib_digest ts_import(test_store *t, const char *name, const char *content);
/* A layer blob from a small tar; returns its digest. */
ib_digest ts_layer(test_store *t, const char *content);
int ts_count_blobs(test_store *t);
/* Store the bytes of file `path` as a blob, gzip-compressed when asked. */
ib_digest ts_put_file(test_store *t, const char *path, int gzip);
char *ts_path(test_store *t, const char *rel);  /* malloc'ed */
void ts_write_file(const char *path, const char *content);
char *ts_read_file(const char *path);             /* malloc'ed */
void ts_rm_rf(const char *path);
/* A new handle, as another process would open the store (a handle keeps what it read). */
void ts_reopen(test_store *t);
/* Every `from` in `text` overwritten by `to` (the same length). */
void ts_replace_all(char *text, const char *from, const char *to);
/* `header` line, `lines`, and a correct "sum <sha256 of the rest>" line (the memo's and the names file's format). */
void ts_write_summed(const char *path, const char *header, const char *lines);
/* The id the listing gives `name` (and its size when asked); the listing must have `want_rows` rows. */
ib_digest ts_listed_id(test_store *t, const char *name, size_t want_rows, uint64_t *size);

/* lib/store internals the tests drive */
typedef void (*ib_store__hook_fn)(const char *point, void *payload);
void ib_store__set_hook(ib_store__hook_fn hook, void *payload);
#endif
