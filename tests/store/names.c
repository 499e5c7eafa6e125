/*
 * The names file (lib/store/names.c, <root>/index.names): keyed by the sha256
 * of the index.json bytes it was made from and summed. Used when both hold (a
 * lie under the right key and sum is believed: the file is read, not
 * bypassed); a stale key, a damaged file or a foreign edit of index.json
 * means it is not believed, and the slow way writes it again; lookups and
 * listings give the same answers from it as without it; writers leave it
 * current.
 */
#include "tests.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "key <hex>" of the sha256 of index.json as it is now */
static void index_key_line(test_store *t, char *out, size_t size)
{
	char *p = ts_path(t, "store/index.json");
	char *text = ts_read_file(p);
	assert_non_null(text);
	ib_digest d;
	assert_int_equal(ib_digest_of(&d, text, strlen(text)), 0);
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, &d);
	snprintf(out, size, "key %s\n", hex);
	free(text);
	free(p);
}

/* The names file is there, whole, and made from index.json as it is now. */
static void assert_names_current(test_store *t)
{
	char *p = ts_path(t, "store/index.names");
	char *text = ts_read_file(p);
	assert_non_null(text);
	const char *header = "imagebuild-index-names 1\n";
	assert_memory_equal(text, header, strlen(header));
	char key[80];
	index_key_line(t, key, sizeof key);
	assert_memory_equal(text + strlen(header), key, strlen(key));
	char *sum = strstr(text, "\nsum ");
	assert_non_null(sum);
	assert_int_equal(strlen(sum), 5 + 64 + 1);
	free(text);
	free(p);
}

/* The lines of the names file between its header and its sum line (malloc'ed). */
static char *names_lines(const char *path)
{
	char *text = ts_read_file(path);
	assert_non_null(text);
	char *sum = strstr(text, "\nsum ");
	assert_non_null(sum);
	sum[1] = '\0';
	char *lines = strdup(text + strlen("imagebuild-index-names 1\n"));
	free(text);
	return lines;
}

/*
 * A lie under the right key and a correct sum is believed (so the file is
 * used); the same lie under another key, or with its sum broken, or torn,
 * empty, garbage, or with a malformed line under a correct sum, is not: the
 * truth is given, and the file is written again, current.
 */
static void test_names_stale_or_damaged_ignored(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "names-stale");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ib_digest b = ts_import(&t, "b:1", "content b");
	ib_digest got = ts_listed_id(&t, "docker.io/library/a:1", 2, NULL); /* writes it, with summaries */
	assert_true(ib_digest_equal(&got, &a));
	assert_names_current(&t);
	char *p = ts_path(&t, "store/index.names");
	char ah[IB_DIGEST_HEXLEN + 1], bh[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(ah, &a);
	ib_digest_hex(bh, &b);
	char *lines = names_lines(p);
	assert_non_null(strstr(lines, ah));
	ts_replace_all(lines, ah, bh); /* a:1's entry now says it is b's image */

	/* believed under the right key: the listing is read from the file */
	ts_write_summed(p, "imagebuild-index-names 1", lines);
	ts_reopen(&t);
	got = ts_listed_id(&t, "docker.io/library/a:1", 2, NULL);
	assert_true(ib_digest_equal(&got, &b));

	/* a stale key: not believed */
	char *stale = strdup(lines);
	assert_non_null(stale);
	char *k = strstr(stale, "key ") + 4;
	k[0] = k[0] == '0' ? '1' : '0';
	ts_write_summed(p, "imagebuild-index-names 1", stale);
	ts_reopen(&t);
	got = ts_listed_id(&t, "docker.io/library/a:1", 2, NULL);
	assert_true(ib_digest_equal(&got, &a));
	assert_names_current(&t);
	free(stale);

	/* damaged: the sum broken, torn, empty, garbage, a malformed line under a correct sum */
	char *right = NULL;
	assert_true(asprintf(&right, "imagebuild-index-names 1\n%ssum %064d\n", lines, 0) > 0);
	char *torn = strdup(right);
	torn[strlen(torn) / 2] = '\0';
	char *upper = strdup(lines);
	for (char *q = strstr(upper, bh); q && q < strstr(upper, bh) + 64; q++)
		*q = (char)(*q >= 'a' && *q <= 'f' ? *q - 'a' + 'A' : *q);
	char *bad_line = NULL;
	assert_true(asprintf(&bad_line, "%s%s", lines, "not a line\n") > 0);
	const char *raw[] = { right, torn, "", "\x01\x02 garbage\n" };
	for (size_t i = 0; i < 6; i++) {
		if (i < 4)
			ts_write_file(p, raw[i]);
		else
			ts_write_summed(p, "imagebuild-index-names 1", i == 4 ? upper : bad_line);
		ts_reopen(&t);
		got = ts_listed_id(&t, "docker.io/library/a:1", 2, NULL);
		assert_true(ib_digest_equal(&got, &a));
		got = ts_listed_id(&t, "docker.io/library/b:1", 2, NULL);
		assert_true(ib_digest_equal(&got, &b));
		assert_names_current(&t);
	}
	free(right);
	free(torn);
	free(upper);
	free(bad_line);
	free(lines);
	free(p);
	ts_close(&t);
}

/* index.json is the truth: an edit by another tool shows at once, on the same handle too. */
static void test_names_foreign_index_edit_seen(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "names-foreign");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ib_digest b = ts_import(&t, "b:1", "content b");
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "b:1"), 0);
	ib_image_free(img);
	assert_names_current(&t);
	char *p = ts_path(&t, "store/index.json");
	for (int pass = 0; pass < 2; pass++) {
		/* b renamed by hand, same size, within the second: no stat(2) identity can tell */
		char *text = ts_read_file(p);
		ts_replace_all(text, pass ? "docker.io/library/c:1" : "docker.io/library/b:1",
			    pass ? "docker.io/library/b:1" : "docker.io/library/c:1");
		ts_write_file(p, text);
		free(text);
		const char *gone = pass ? "c:1" : "b:1", *there = pass ? "b:1" : "c:1";
		assert_int_equal(ib_store_image_lookup(&img, t.store, gone), IB_ENOTFOUND);
		assert_int_equal(ib_store_image_lookup(&img, t.store, there), 0);
		assert_true(ib_digest_equal(ib_image_id(img), &b));
		assert_int_equal(ib_image_name_count(img), 1);
		assert_string_equal(ib_image_name(img, 0), pass ? "docker.io/library/b:1" : "docker.io/library/c:1");
		ib_image_free(img);
		ib_digest got = ts_listed_id(&t, pass ? "docker.io/library/b:1" : "docker.io/library/c:1", 2, NULL);
		assert_true(ib_digest_equal(&got, &b));
		assert_names_current(&t);
	}
	/* a's entry removed by hand: gone, although the names file had it */
	char *text = ts_read_file(p);
	char *start = strstr(text, "{\"mediaType\"");
	char *next = start ? strstr(start + 1, "{\"mediaType\"") : NULL;
	assert_non_null(next);
	char *aname = strstr(text, "docker.io/library/a:1");
	assert_true(aname && aname < next);
	memmove(start, next, strlen(next) + 1);
	ts_write_file(p, text);
	free(text);
	assert_int_equal(ib_store_image_lookup(&img, t.store, "a:1"), IB_ENOTFOUND);
	char ah[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(ah, &a);
	assert_int_equal(ib_store_image_lookup(&img, t.store, ah), IB_ENOTFOUND);
	free(p);
	ts_close(&t);
}

/* What a lookup gives: its id and names ("!code" when it fails), one string. */
static char *lookup_str(test_store *t, const char *q)
{
	ib_image *img = NULL;
	int rc = ib_store_image_lookup(&img, t->store, q);
	char *out = NULL;
	if (rc < 0) {
		assert_true(asprintf(&out, "!%d", rc) > 0);
		return out;
	}
	char id[IB_DIGEST_STRLEN], m[IB_DIGEST_STRLEN];
	ib_digest_fmt(id, ib_image_id(img));
	ib_digest_fmt(m, ib_image_manifest_digest(img));
	assert_true(asprintf(&out, "%s %s", id, m) > 0);
	for (size_t i = 0; i < ib_image_name_count(img); i++) {
		char *more = NULL;
		assert_true(asprintf(&more, "%s %s", out, ib_image_name(img, i)) > 0);
		free(out);
		out = more;
	}
	for (size_t i = 0; i < ib_image_repo_digest_count(img); i++) {
		char *more = NULL;
		assert_true(asprintf(&more, "%s %s", out, ib_image_repo_digest(img, i)) > 0);
		free(out);
		out = more;
	}
	ib_image_free(img);
	return out;
}

static char *listing_str(test_store *t)
{
	ib_image_list *l = NULL;
	assert_int_equal(ib_store_images(&l, t->store), 0);
	char *out = strdup("");
	for (size_t k = 0; k < ib_image_list_count(l); k++) {
		const ib_image_summary *r = ib_image_list_get(l, k);
		char id[IB_DIGEST_STRLEN], m[IB_DIGEST_STRLEN], *more = NULL;
		ib_digest_fmt(id, &r->id);
		ib_digest_fmt(m, &r->manifest);
		assert_true(asprintf(&more, "%s%s %s %s %s %llu\n", out, r->name ? r->name : "<none>", id, m,
				     r->created ? r->created : "-", (unsigned long long)r->size) > 0);
		free(out);
		out = more;
	}
	ib_image_list_free(l);
	return out;
}

/*
 * Every kind of query gives the same answer from the names file as from
 * index.json itself (the file dropped): names, ids and prefixes, manifest
 * digests, repository digests, untagged entries, names that are not there.
 * Writers (tag, untag, a repository digest) leave the file current.
 */
static void test_names_same_answers(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "names-same");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ts_import(&t, "b:1", "content b");
	ts_import(&t, "old:1", "content old");
	assert_int_equal(ib_store_tag(t.store, "a:1", "a:2"), 0);
	assert_names_current(&t);
	assert_int_equal(ib_store_tag(t.store, "b:1", "old:1"), 0); /* old's image left untagged */
	assert_names_current(&t);
	char mh[IB_DIGEST_STRLEN];
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "a:1"), 0);
	ib_digest_fmt(mh, ib_image_manifest_digest(img));
	ib_image_free(img);
	char *repo_digest = NULL;
	assert_true(asprintf(&repo_digest, "registry.example:5000/team/a@%s", mh) > 0);
	assert_int_equal(ib_store_repo_digest_add(t.store, "a:2", repo_digest), 0);
	assert_names_current(&t);
	char ah[IB_DIGEST_HEXLEN + 1], id_prefix[13], *id_full = NULL, *by_repo = NULL, *by_name_digest = NULL;
	ib_digest_hex(ah, &a);
	memcpy(id_prefix, ah, 12);
	id_prefix[12] = '\0';
	assert_true(asprintf(&id_full, "sha256:%s", ah) > 0);
	assert_true(asprintf(&by_repo, "%s", repo_digest) > 0);
	assert_true(asprintf(&by_name_digest, "a@%s", mh) > 0);
	const char *queries[] = { "a:1", "a:2", "b:1", "old:1", "docker.io/library/b:1", id_prefix, id_full, ah, mh,
				  by_repo, by_name_digest, "nope:1", "0", "sha256:zz" };
	size_t nq = sizeof queries / sizeof *queries;
	char *fast[sizeof queries / sizeof *queries], *slow[sizeof queries / sizeof *queries];
	ts_reopen(&t);
	for (size_t i = 0; i < nq; i++)
		fast[i] = lookup_str(&t, queries[i]);
	char *list_fast = listing_str(&t);
	char *p = ts_path(&t, "store/index.names");
	char *memo = ts_path(&t, "store/index.memo");
	unlink(p);
	unlink(memo);
	ts_reopen(&t);
	for (size_t i = 0; i < nq; i++) {
		unlink(p);
		slow[i] = lookup_str(&t, queries[i]);
		assert_string_equal(fast[i], slow[i]);
	}
	unlink(p);
	char *list_slow = listing_str(&t);
	assert_string_equal(list_fast, list_slow);
	/* the answers are real ones: a's image has both names and the repository digest */
	assert_non_null(strstr(fast[0], "docker.io/library/a:2"));
	assert_non_null(strstr(fast[0], by_repo));
	assert_true(fast[11][0] == '!');
	assert_non_null(strstr(list_fast, "<none>"));
	for (size_t i = 0; i < nq; i++) {
		free(fast[i]);
		free(slow[i]);
	}
	/* an untag leaves it current too */
	assert_int_equal(ib_store_untag(t.store, "a:2"), 0);
	assert_names_current(&t);
	free(list_fast);
	free(list_slow);
	free(p);
	free(memo);
	free(repo_digest);
	free(id_full);
	free(by_repo);
	free(by_name_digest);
	ts_close(&t);
}

/*
 * Files past 64 KiB are mapped, not read (names.c, store.c): the same
 * checks there — believed under its key and sum, a flipped byte or a stale
 * key not believed, a foreign edit seen.
 */
static void test_names_large_mapped(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "names-large");
	ib_digest a = ts_import(&t, "a:1", "content a");
	ib_digest b = ts_import(&t, "b:1", "content b");
	enum { TAGS = 320 };
	for (int i = 0; i < TAGS; i++) {
		char name[64];
		snprintf(name, sizeof name, "many/tag-%03d:v%d", i, i);
		assert_int_equal(ib_store_tag(t.store, i % 2 ? "b:1" : "a:1", name), 0);
	}
	char *p = ts_path(&t, "store/index.names");
	char *ip = ts_path(&t, "store/index.json");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size > 64 * 1024);
	assert_int_equal(stat(ip, &st), 0);
	assert_true(st.st_size > 64 * 1024);
	assert_names_current(&t);
	ts_reopen(&t);
	ib_digest got = ts_listed_id(&t, "docker.io/many/tag-137:v137", TAGS + 2, NULL);
	assert_true(ib_digest_equal(&got, &b));

	/* a lie under the right key and sum: believed (the mapped file is read) */
	char ah[IB_DIGEST_HEXLEN + 1], bh[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(ah, &a);
	ib_digest_hex(bh, &b);
	char *lines = names_lines(p);
	ts_replace_all(lines, bh, ah);
	ts_write_summed(p, "imagebuild-index-names 1", lines);
	ts_reopen(&t);
	got = ts_listed_id(&t, "docker.io/many/tag-137:v137", TAGS + 2, NULL);
	assert_true(ib_digest_equal(&got, &a));

	/* one byte flipped past the first 64 KiB: not believed, rewritten */
	char *text = ts_read_file(p);
	size_t len = strlen(text);
	text[len - 200] = text[len - 200] == 'a' ? 'b' : 'a';
	ts_write_file(p, text);
	free(text);
	ts_reopen(&t);
	got = ts_listed_id(&t, "docker.io/many/tag-137:v137", TAGS + 2, NULL);
	assert_true(ib_digest_equal(&got, &b));
	assert_names_current(&t);

	/* a foreign edit of the (mapped) index.json: seen on the same handle */
	text = ts_read_file(ip);
	ts_replace_all(text, "docker.io/many/tag-137:v137", "docker.io/many/tag-731:v731");
	ts_write_file(ip, text);
	free(text);
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "many/tag-137:v137"), IB_ENOTFOUND);
	assert_int_equal(ib_store_image_lookup(&img, t.store, "many/tag-731:v731"), 0);
	assert_true(ib_digest_equal(ib_image_id(img), &b));
	ib_image_free(img);
	free(lines);
	free(ip);
	free(p);
	ts_close(&t);
}

/*
 * A change that changes nothing writes nothing, also when index.json was
 * written by another tool in another layout (pretty-printed): a command's
 * change is compared by dumps of its own parse, before and after; a real
 * change still writes (in this library's layout).
 */
static void test_unchanged_foreign_layout_not_written(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "names-layout");
	ts_import(&t, "a:1", "content a");
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, t.store, "a:1"), 0);
	char mh[IB_DIGEST_STRLEN], *rd = NULL;
	ib_digest_fmt(mh, ib_image_manifest_digest(img));
	ib_image_free(img);
	assert_true(asprintf(&rd, "registry.example:5000/team/a@%s", mh) > 0);
	assert_int_equal(ib_store_repo_digest_add(t.store, "a:1", rd), 0);
	/* another tool rewrites index.json pretty-printed, same content */
	char *p = ts_path(&t, "store/index.json");
	json_error_t jerr;
	json_t *j = json_load_file(p, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(json_dump_file(j, p, JSON_INDENT(4)), 0);
	json_decref(j);
	char *pretty = ts_read_file(p);
	assert_non_null(strstr(pretty, "\n    "));
	struct stat before, after;
	assert_int_equal(stat(p, &before), 0);
	for (int round = 0; round < 2; round++) {
		ts_reopen(&t); /* a command's handle: no parse of its own yet */
		assert_int_equal(ib_store_repo_digest_add(t.store, "a:1", rd), 0); /* already there */
		char *now = ts_read_file(p);
		assert_string_equal(now, pretty);
		free(now);
		assert_int_equal(stat(p, &after), 0);
		assert_int_equal(before.st_ino, after.st_ino);
	}
	/* a real change writes, in this library's layout */
	ts_reopen(&t);
	assert_int_equal(ib_store_tag(t.store, "a:1", "a:2"), 0);
	char *changed = ts_read_file(p);
	assert_null(strstr(changed, "\n    "));
	assert_non_null(strstr(changed, "docker.io/library/a:2"));
	assert_non_null(strstr(changed, rd));
	assert_names_current(&t);
	free(changed);
	free(pretty);
	free(rd);
	free(p);
	ts_close(&t);
}

DEFINE_GROUP(names_tests,
	cmocka_unit_test(test_names_stale_or_damaged_ignored),
	cmocka_unit_test(test_names_foreign_index_edit_seen),
	cmocka_unit_test(test_names_same_answers),
	cmocka_unit_test(test_names_large_mapped),
	cmocka_unit_test(test_unchanged_foreign_layout_not_written),
)
