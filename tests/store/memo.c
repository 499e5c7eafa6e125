/*
 * The index memo (lib/store/memo.c) and writes that change nothing: a
 * damaged or lying memo is never believed and is rebuilt, index.json stays
 * the truth for names (a foreign edit shows at once), two processes tagging
 * and untagging at once leave index.json and every lookup consistent, and a
 * commit or tag that changes nothing writes nothing.
 */
#include "tests.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static ib_digest id_of(test_store *t, const char *name)
{
	ib_image *img = NULL;
	if (ib_store_image_lookup(&img, t->store, name) < 0)
		fail_msg("lookup %s: %s", name, ib_error_last()->message);
	ib_digest id = *ib_image_id(img);
	ib_image_free(img);
	return id;
}

/*
 * Without the names file (lib/store/names.c), which stands in for the memo
 * in lookups while index.json is unchanged: what the memo does is seen.
 */
static void drop_names(test_store *t)
{
	char *p = ts_path(t, "store/index.names");
	unlink(p);
	free(p);
}

/* The memo is valid: the header line first, the sum line last. */
static void assert_memo_valid(test_store *t)
{
	char *p = ts_path(t, "store/index.memo");
	char *text = ts_read_file(p);
	assert_non_null(text);
	assert_memory_equal(text, "imagebuild-index-memo 1\n", 24);
	char *sum = strstr(text, "\nsum ");
	assert_non_null(sum);
	assert_int_equal(strlen(sum), 5 + 64 + 1);
	free(text);
	free(p);
}

static void test_memo_damaged_rebuilt(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "memo-damaged");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ib_digest b = ts_import(&t, "b:1", "content b");
	assert_false(ib_digest_equal(&a, &b));
	ib_digest got = id_of(&t, "a:1"); /* writes the memo */
	assert_true(ib_digest_equal(&got, &a));
	assert_memo_valid(&t);
	char *p = ts_path(&t, "store/index.memo");
	char ah[IB_DIGEST_HEXLEN + 1], bh[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(ah, &a);
	ib_digest_hex(bh, &b);

	/* a lie: a's line names b's id (its sum no longer matches) */
	char *text = ts_read_file(p);
	ts_replace_all(text, ah, bh);
	ts_write_file(p, text);
	free(text);
	drop_names(&t);
	ts_reopen(&t);
	got = id_of(&t, "a:1");
	assert_true(ib_digest_equal(&got, &a));
	got = id_of(&t, "b:1");
	assert_true(ib_digest_equal(&got, &b));
	assert_memo_valid(&t);

	/* truncated (no sum line), garbage, empty: each ignored and rewritten */
	const char *bad[] = { "imagebuild-index-memo 1\n", "\x01\x02garbage\n", "" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ts_write_file(p, bad[i]);
		drop_names(&t);
		ts_reopen(&t);
		got = id_of(&t, "b:1");
		assert_true(ib_digest_equal(&got, &b));
		got = id_of(&t, "a:1");
		assert_true(ib_digest_equal(&got, &a));
		assert_memo_valid(&t);
	}

	/* the listing agrees with lookups, from the memo as without it */
	for (int pass = 0; pass < 2; pass++) {
		ib_image_list *l = NULL;
		assert_int_equal(ib_store_images(&l, t.store), 0);
		assert_int_equal(ib_image_list_count(l), 2);
		for (size_t i = 0; i < 2; i++) {
			const ib_image_summary *r = ib_image_list_get(l, i);
			ib_digest want = !strcmp(r->name, "docker.io/library/a:1") ? a : b;
			assert_true(ib_digest_equal(&r->id, &want));
			assert_true(r->size > 0);
		}
		ib_image_list_free(l);
	}
	free(p);
	ts_close(&t);
}

/*
 * Lines the memo's parser (in place, no sscanf) must refuse even under a
 * correct sum: each would, read leniently, make a:1 be b's image in the
 * listing or give it a size of 12. Refused, the entry is resolved from its
 * manifest.
 */
static void test_memo_malformed_lines_refused(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "memo-malformed");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ib_digest b = ts_import(&t, "b:1", "content b");
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "a:1"), 0);
	char top[IB_DIGEST_HEXLEN + 1], bh[IB_DIGEST_HEXLEN + 1], bu[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(top, ib_image_manifest_digest(img));
	ib_image_free(img);
	uint64_t size = 0, got_size = 0;
	ib_digest got = ts_listed_id(&t, "docker.io/library/a:1", 2, &size);
	assert_true(ib_digest_equal(&got, &a));
	assert_true(size != 12);
	ib_digest_hex(bh, &b);
	for (size_t i = 0; i < sizeof bu; i++)
		bu[i] = (char)(bh[i] >= 'a' && bh[i] <= 'f' ? bh[i] - 'a' + 'A' : bh[i]);
	char *p = ts_path(&t, "store/index.memo");
	char *bad[6];
	assert_true(asprintf(&bad[0], "%s %s %s - -\n", top, top, bu) > 0);        /* upper-case hex */
	assert_true(asprintf(&bad[1], "%s %s %s0 - -\n", top, top, bh) > 0);       /* 65 digits */
	assert_true(asprintf(&bad[2], "%s %s %.63s - -\n", top, top, bh) > 0);    /* 63 digits */
	assert_true(asprintf(&bad[3], "%s %s %s - - extra\n", top, top, bh) > 0); /* a sixth field */
	assert_true(asprintf(&bad[4], "%s %s %s 12x 2024-01-01T00:00:00Z\n", top, top, bh) > 0); /* size */
	assert_true(asprintf(&bad[5], "%s  %s %s - -\n", top, top, bh) > 0);       /* two spaces */
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ts_write_summed(p, "imagebuild-index-memo 1", bad[i]);
		drop_names(&t);
		ts_reopen(&t);
		got = ts_listed_id(&t, "docker.io/library/a:1", 2, &got_size);
		assert_true(ib_digest_equal(&got, &a));
		assert_true(got_size == size);
		got = id_of(&t, "a:1");
		assert_true(ib_digest_equal(&got, &a));
		assert_memo_valid(&t);
		free(bad[i]);
	}
	/* a well-formed line is believed (the memo is used, not bypassed): here a lie the sum cannot catch */
	char *good = NULL;
	assert_true(asprintf(&good, "%s %s %s 12 2024-01-01T00:00:00Z\n", top, top, bh) > 0);
	ts_write_summed(p, "imagebuild-index-memo 1", good);
	drop_names(&t);
	ts_reopen(&t);
	got = ts_listed_id(&t, "docker.io/library/a:1", 2, &got_size);
	assert_true(ib_digest_equal(&got, &b));
	assert_true(got_size == 12);
	free(good);
	free(p);
	ts_close(&t);
}

/* index.json is the truth for names: another tool's edit shows at once, whatever the memo says. */
static void test_memo_foreign_index_edit(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "memo-foreign");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ts_import(&t, "b:1", "content b");
	ib_image_list *l = NULL;
	assert_int_equal(ib_store_images(&l, t.store), 0); /* memo of both */
	ib_image_list_free(l);
	char *p = ts_path(&t, "store/index.json");
	char *text = ts_read_file(p);
	/* b:1 renamed c:1 by hand (skopeo, umoci or an editor would do the same) */
	ts_replace_all(text, "docker.io/library/b:1", "docker.io/library/c:1");
	ts_write_file(p, text);
	free(text);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "b:1"), IB_ENOTFOUND);
	ib_digest c = id_of(&t, "c:1");
	assert_false(ib_digest_equal(&c, &a));
	/* a's entry removed by hand: gone, although the memo knows its manifest */
	text = ts_read_file(p);
	char *start = strstr(text, "{\"mediaType\"");
	char *next = start ? strstr(start + 1, "{\"mediaType\"") : NULL;
	assert_non_null(next);
	char *aname = strstr(text, "docker.io/library/a:1");
	assert_true(aname && aname < next); /* the first entry is a's */
	memmove(start, next, strlen(next) + 1);
	ts_write_file(p, text);
	free(text);
	assert_int_equal(ib_store_image_lookup(&img, t.store, "a:1"), IB_ENOTFOUND);
	assert_int_equal(ib_store_images(&l, t.store), 0);
	assert_int_equal(ib_image_list_count(l), 1);
	ib_image_list_free(l);
	free(p);
	ts_close(&t);
}

/* Two processes tag and untag at once: no update is lost, lookups agree with index.json. */
static void test_concurrent_tag_untag(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "memo-concurrent");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ib_digest b = ts_import(&t, "b:1", "content b");
	enum { ROUNDS = 25 };
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			ib_store *s = NULL;
			if (ib_store_open(&s, ib_store_root(t.store), NULL) < 0)
				_exit(2);
			for (int i = 0; i < ROUNDS; i++) {
				char name[64];
				snprintf(name, sizeof name, "p%d-%d:x", k, i);
				if (ib_store_tag(s, k ? "b:1" : "a:1", name) < 0)
					_exit(3);
				ib_image *img = NULL; /* a lookup between writes: memo written under the other's writes */
				if (ib_store_image_lookup(&img, s, name) < 0)
					_exit(4);
				ib_image_free(img);
				if (i % 2 && ib_store_untag(s, name) < 0)
					_exit(5);
			}
			ib_store_free(s);
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st = 0;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	/* every even tag of each process is there, on its image; no odd one */
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < ROUNDS; i++) {
			char name[64];
			snprintf(name, sizeof name, "p%d-%d:x", k, i);
			ib_image *img = NULL;
			int rc = ib_store_image_lookup(&img, t.store, name);
			if (i % 2) {
				assert_int_equal(rc, IB_ENOTFOUND);
				continue;
			}
			assert_int_equal(rc, 0);
			assert_true(ib_digest_equal(ib_image_id(img), k ? &b : &a));
			ib_image_free(img);
		}
	}
	ib_image_list *l = NULL;
	assert_int_equal(ib_store_images(&l, t.store), 0);
	assert_int_equal(ib_image_list_count(l), 2 + 2 * ((ROUNDS + 1) / 2));
	ib_image_list_free(l);
	char *p = ts_path(&t, "store/index.json");
	char *text = ts_read_file(p);
	size_t names = 0;
	for (char *q = strstr(text, "org.opencontainers.image.ref.name"); q; q = strstr(q + 1, "org.opencontainers.image.ref.name"))
		names++;
	assert_int_equal(names, 2 + 2 * ((ROUNDS + 1) / 2));
	free(text);
	free(p);
	ts_close(&t);
}

/* Everything under the store root: path, inode, size and mtime (ns), one line each, sorted. */
static char *listing(const char *root)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "find '%s' -printf '%%P %%i %%s %%T@\\n' | sort", root);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	size_t got;
	while ((got = fread(out + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (n + 1 >= cap) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
	}
	out[n] = '\0';
	assert_int_equal(pclose(f), 0);
	assert_true(n > 0);
	return out;
}

/* Committing the same image and tagging it again writes nothing at all. */
static void test_same_commit_writes_nothing(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "memo-noop");
	ib_digest layer = ts_layer(&t, "noop layer");
	ib_layer layers[1];
	memset(layers, 0, sizeof layers);
	layers[0].digest = layer;
	ib_image_config *c;
	assert_int_equal(ib_image_config_new(&c), 0);
	assert_int_equal(ib_image_config_diff_id_add(c, &layer), 0);
	ib_digest id, m, id2, m2;
	assert_int_equal(ib_store_image_commit(&id, &m, t.store, c, layers, 1, NULL), 0);
	assert_int_equal(ib_store_tag_manifest(t.store, "noop:1", &m), 0);
	assert_int_equal(ib_store_tag_manifest(t.store, "noop:2", &m), 0);
	ib_image_list *l = NULL;
	assert_int_equal(ib_store_images(&l, t.store), 0); /* the memo, written now */
	ib_image_list_free(l);
	char *before = listing(t.dir);
	sleep(1); /* so a rewrite shows in mtime even on coarse clocks (the inode changes anyway) */
	assert_int_equal(ib_store_image_commit(&id2, &m2, t.store, c, layers, 1, NULL), 0);
	assert_true(ib_digest_equal(&id, &id2));
	assert_true(ib_digest_equal(&m, &m2));
	assert_int_equal(ib_store_tag_manifest(t.store, "noop:1", &m), 0);
	assert_int_equal(ib_store_tag_manifest(t.store, "noop:2", &m), 0);
	assert_int_equal(ib_store_tag(t.store, "noop:1", "noop:2"), 0); /* already so */
	assert_int_equal(ib_store_images(&l, t.store), 0);
	ib_image_list_free(l);
	char *after = listing(t.dir);
	assert_string_equal(before, after);
	/* and a real change still writes */
	assert_int_equal(ib_store_tag_manifest(t.store, "noop:3", &m), 0);
	char *changed = listing(t.dir);
	assert_string_not_equal(before, changed);
	free(before);
	free(after);
	free(changed);
	ib_image_config_free(c);
	ts_close(&t);
}

DEFINE_GROUP(memo_tests,
	cmocka_unit_test(test_memo_damaged_rebuilt),
	cmocka_unit_test(test_memo_malformed_lines_refused),
	cmocka_unit_test(test_memo_foreign_index_edit),
	cmocka_unit_test(test_concurrent_tag_untag),
	cmocka_unit_test(test_same_commit_writes_nothing),
)
