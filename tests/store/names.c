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

/* the names file's first line (names.c) */
#define NAMES_V "imagebuild-index-names 2"

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
	const char *header = NAMES_V "\n";
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
	char *lines = strdup(text + strlen(NAMES_V "\n"));
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
	ts_write_summed(p, NAMES_V, lines);
	ts_reopen(&t);
	got = ts_listed_id(&t, "docker.io/library/a:1", 2, NULL);
	assert_true(ib_digest_equal(&got, &b));

	/* a stale key: not believed */
	char *stale = strdup(lines);
	assert_non_null(stale);
	char *k = strstr(stale, "key ") + 4;
	k[0] = k[0] == '0' ? '1' : '0';
	ts_write_summed(p, NAMES_V, stale);
	ts_reopen(&t);
	got = ts_listed_id(&t, "docker.io/library/a:1", 2, NULL);
	assert_true(ib_digest_equal(&got, &a));
	assert_names_current(&t);
	free(stale);

	/* damaged: the sum broken, torn, empty, garbage, a malformed line under a correct sum */
	char *right = NULL;
	assert_true(asprintf(&right, NAMES_V "\n%ssum %064d\n", lines, 0) > 0);
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
			ts_write_summed(p, NAMES_V, i == 4 ? upper : bad_line);
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
	ts_write_summed(p, NAMES_V, lines);
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

/* ---- tags spliced into index.json's bytes (image.c, tag_splice) ---- */

static int splices;

static void count_splices(const char *point, void *payload)
{
	(void)payload;
	splices += !strcmp(point, "index-spliced");
}

static char *store_file(test_store *t, const char *rel)
{
	char *p = ts_path(t, rel);
	char *text = ts_read_file(p);
	assert_non_null(text);
	free(p);
	return text;
}

/*
 * index.json is an OCI index in this library's layout: jansson's compact
 * dump of its own parse gives the same bytes, and every descriptor is whole.
 * Its entries' count.
 */
static size_t assert_index_ours(test_store *t)
{
	char *text = store_file(t, "store/index.json");
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		fail_msg("index.json does not parse: %s: %s", jerr.text, text);
	char *dump = json_dumps(j, JSON_COMPACT);
	assert_non_null(dump);
	assert_string_equal(dump, text);
	json_t *list = json_object_get(j, "manifests");
	assert_true(json_is_array(list));
	size_t i, n = json_array_size(list);
	json_t *e;
	json_array_foreach(list, i, e) {
		assert_non_null(json_string_value(json_object_get(e, "mediaType")));
		assert_int_equal(strncmp(json_string_value(json_object_get(e, "digest")), "sha256:", 7), 0);
		assert_true(json_is_integer(json_object_get(e, "size")));
	}
	json_decref(j);
	free(dump);
	free(text);
	return n;
}

/* The names file's span line: known ("span <open> <close>") or not ("span - -"). */
static void assert_names_ranged(test_store *t, int want)
{
	char *text = store_file(t, "store/index.names");
	char *span = strstr(text, "\nspan ");
	assert_non_null(span);
	assert_int_equal(strncmp(span, "\nspan - -\n", 10) != 0, want);
	free(text);
}

/* `a` and `b` the same text, else a failure showing where they part (cmocka cuts long strings) */
static void assert_same_text(const char *a, const char *b, const char *what)
{
	size_t i = 0;
	while (a[i] && a[i] == b[i])
		i++;
	if (a[i] || b[i]) {
		size_t from = i > 160 ? i - 160 : 0;
		fail_msg("%s: differ at byte %zu:\n  %.240s\n  %.240s", what, i, a + from, b + from);
	}
}

/* `u`'s store replaced with a copy of `t`'s (the same blobs, index.json and caches) */
static void copy_store(test_store *t, test_store *u)
{
	char *from = ts_path(t, "store"), *to = ts_path(u, "store"), *cmd = NULL;
	ib_store_free(u->store);
	ts_rm_rf(to);
	assert_true(asprintf(&cmd, "cp -a '%s' '%s'", from, to) > 0);
	assert_int_equal(system(cmd), 0);
	if (ib_store_open(&u->store, to, NULL) < 0)
		fail_msg("open copy: %s", ib_error_last()->message);
	free(cmd);
	free(from);
	free(to);
}

/*
 * The same tag in two copies of a store: in `t` as a command does it (a
 * fresh handle: spliced `want` times), in `u` the parse way (its names file
 * removed first: nothing to splice with). The same index.json, byte for
 * byte, in this library's layout; `t`'s names file current and ranged.
 */
static void tag_both(test_store *t, test_store *u, const char *source, const char *target, int want)
{
	char *np = ts_path(u, "store/index.names");
	unlink(np);
	free(np);
	ts_reopen(t);
	ts_reopen(u);
	splices = 0;
	ib_store__set_hook(count_splices, NULL);
	int ru = ib_store_tag(u->store, source, target);
	assert_int_equal(splices, 0);
	int rt = ib_store_tag(t->store, source, target);
	ib_store__set_hook(NULL, NULL);
	if (rt < 0)
		fail_msg("tag %s %s: %s", source, target, ib_error_last()->message);
	assert_int_equal(ru, 0);
	char *a = store_file(t, "store/index.json"), *b = store_file(u, "store/index.json");
	assert_same_text(a, b, "index.json spliced / parsed");
	if (splices != want)
		fail_msg("tag %s %s: spliced %d times, not %d", source, target, splices, want);
	free(a);
	free(b);
	assert_index_ours(t);
	assert_names_current(t);
	assert_names_ranged(t, 1);
}

/*
 * The same untag (`untag`) or removal in two copies, as tag_both: the same
 * result code, report and index.json bytes; spliced `want` times in `t`.
 */
static void rm_both(test_store *t, test_store *u, const char *query, int untag, unsigned int flags, int want)
{
	char *np = ts_path(u, "store/index.names");
	unlink(np);
	free(np);
	ts_reopen(t);
	ts_reopen(u);
	ib_buf rt = IB_BUF_INIT, ru = IB_BUF_INIT;
	splices = 0;
	ib_store__set_hook(count_splices, NULL);
	int cu = untag ? ib_store_untag(u->store, query) : ib_store_image_remove(u->store, query, flags, &ru);
	char *eu = strdup(ib_error_last()->message);
	assert_int_equal(splices, 0);
	int ct = untag ? ib_store_untag(t->store, query) : ib_store_image_remove(t->store, query, flags, &rt);
	ib_store__set_hook(NULL, NULL);
	assert_int_equal(ct, cu);
	if (ct < 0)
		assert_string_equal(ib_error_last()->message, eu);
	assert_string_equal(rt.size ? rt.ptr : "", ru.size ? ru.ptr : "");
	char *a = store_file(t, "store/index.json"), *b = store_file(u, "store/index.json");
	assert_same_text(a, b, "index.json spliced / parsed");
	if (splices != want)
		fail_msg("%s %s: spliced %d times, not %d", untag ? "untag" : "rmi", query, splices, want);
	assert_index_ours(t);
	if (ct == 0) {
		assert_names_current(t);
		assert_names_ranged(t, 1);
	}
	free(a);
	free(b);
	free(eu);
	ib_buf_dispose(&rt);
	ib_buf_dispose(&ru);
}

/*
 * The same commit in two copies, as tag_both: a:1's config and layers under
 * `name` (NULL: untagged), with the manifest annotation `note` (a manifest
 * the index does not have yet; NULL: a:1's own manifest).
 */
static void commit_both(test_store *t, test_store *u, const char *name, const char *note, int want)
{
	char *np = ts_path(u, "store/index.names");
	ts_reopen(t);
	ts_reopen(u);
	ib_digest mt, mu;
	splices = 0;
	for (int k = 0; k < 2; k++) {
		test_store *x = k ? t : u;
		ib_image *img = NULL;
		assert_int_equal(ib_store_image_lookup(&img, x->store, "a:1"), 0);
		size_t n = ib_image_layer_count(img);
		ib_layer *layers = calloc(n ? n : 1, sizeof *layers);
		for (size_t i = 0; i < n; i++)
			layers[i] = *ib_image_layer(img, i);
		const char *ann[] = { note, NULL };
		ib_image_commit_options o = IB_IMAGE_COMMIT_OPTIONS_INIT;
		o.name = name;
		o.annotations = note ? ann : NULL;
		if (!k) {
			unlink(np); /* the lookup wrote it */
			ts_reopen(u);
		}
		ib_store__set_hook(count_splices, NULL);
		int rc = ib_store_image_commit(NULL, k ? &mt : &mu, x->store, ib_image_config_of(img), layers, n, &o);
		ib_store__set_hook(NULL, NULL);
		if (rc < 0)
			fail_msg("commit %s: %s", name ? name : "(untagged)", ib_error_last()->message);
		assert_int_equal(splices, k ? want : 0);
		free(layers);
		ib_image_free(img);
	}
	free(np);
	assert_true(ib_digest_equal(&mt, &mu));
	char *a = store_file(t, "store/index.json"), *b = store_file(u, "store/index.json");
	assert_same_text(a, b, "index.json spliced / parsed");
	free(a);
	free(b);
	assert_index_ours(t);
	assert_names_current(t);
	assert_names_ranged(t, 1);
}

/* The same repository digest recorded in both copies, as tag_both (spliced `want` times in `t`). */
static void digest_both(test_store *t, test_store *u, const char *name, const char *rd, int want)
{
	char *np = ts_path(u, "store/index.names");
	unlink(np);
	free(np);
	ts_reopen(t);
	ts_reopen(u);
	splices = 0;
	ib_store__set_hook(count_splices, NULL);
	assert_int_equal(ib_store_repo_digest_add(u->store, name, rd), 0);
	assert_int_equal(splices, 0);
	assert_int_equal(ib_store_repo_digest_add(t->store, name, rd), 0);
	ib_store__set_hook(NULL, NULL);
	char *a = store_file(t, "store/index.json"), *b = store_file(u, "store/index.json");
	assert_same_text(a, b, "index.json spliced / parsed");
	free(a);
	free(b);
	if (splices != want)
		fail_msg("repo digest %s %s: spliced %d times, not %d", name, rd, splices, want);
	assert_index_ours(t);
	assert_names_current(t);
	assert_names_ranged(t, 1);
}

static char *repo_digest_of(test_store *t, const char *name, const char *repo)
{
	ib_image *img = NULL;
	assert_int_equal(ib_store_image_lookup(&img, t->store, name), 0);
	char mh[IB_DIGEST_STRLEN], *rd = NULL;
	ib_digest_fmt(mh, ib_image_manifest_digest(img));
	ib_image_free(img);
	assert_true(asprintf(&rd, "%s@%s", repo, mh) > 0);
	return rd;
}

/* `from` replaced by `to` in index.json of `t` (a hand edit) */
static void edit_index(test_store *t, const char *from, const char *to)
{
	char *p = ts_path(t, "store/index.json"), *text = ts_read_file(p), *at = strstr(text, from), *edited = NULL;
	assert_non_null(at);
	*at = '\0';
	assert_true(asprintf(&edited, "%s%s%s", text, to, at + strlen(from)) > 0);
	ts_write_file(p, edited);
	free(edited);
	free(text);
	free(p);
}

/*
 * A tag that changes the index splices index.json's bytes (no parse) and
 * gives byte for byte what the parse way gives (as do an untag, an rmi, a
 * commit's naming and a repository digest: below), through every case of
 * ib_store__index_set: a new name; a name moved off an image left untagged
 * (with its repository digests); off an image that keeps another name (its
 * digests go to that entry); onto an image with an untagged entry (whose
 * digests it takes); a tag that changes nothing (nothing written); many
 * entries. Not spliced, and still the same result: a foreign
 * (pretty-printed) index.json, a names file whose ranges lie (under the
 * right key and sum), an entry this library does not write so (an extra
 * annotation) that the tag must change. Every result parses with jansson,
 * as jansson's compact dump of itself.
 */
static void test_tag_spliced_as_parsed(void **state)
{
	(void)state;
	test_store t, u;
	ts_open(&t, "splice-a");
	ts_open(&u, "splice-b");
	ib_digest c = ts_import(&t, "old:1", "content c");
	ts_import(&t, "a:1", "content a");
	ts_import(&t, "b:1", "content b");
	ts_import(&t, "d:1", "content d");
	copy_store(&t, &u);
	assert_names_ranged(&t, 1);
	size_t n0 = assert_index_ours(&t);
	assert_int_equal(n0, 4);

	tag_both(&t, &u, "a:1", "a:2", 1);                    /* a new name */
	char *rda = repo_digest_of(&t, "a:2", "registry.example:5000/team/a");
	char *rdc = repo_digest_of(&t, "old:1", "registry.example:5000/team/c");
	digest_both(&t, &u, "a:2", rda, 1);
	digest_both(&t, &u, "old:1", rdc, 1);
	digest_both(&t, &u, "old:1", rdc, 0);                 /* there already */
	tag_both(&t, &u, "b:1", "old:1", 1);                  /* c's image left untagged, with rdc */
	char *u_index = store_file(&t, "store/index.json");
	assert_non_null(strstr(u_index, "{\"org.imagebuild.repo.digests\":\"registry.example:5000/team/c@"));
	free(u_index);
	tag_both(&t, &u, "b:1", "a:2", 1);                    /* rda goes to a:1's entry */
	char cid[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(cid, &c);
	tag_both(&t, &u, cid, "c:1", 1);                      /* the untagged entry becomes c:1, rdc with it */
	char *cl = lookup_str(&t, "c:1");
	assert_non_null(strstr(cl, rdc));
	free(cl);
	tag_both(&t, &u, "a:1", "a:1", 0);                    /* nothing changes */
	tag_both(&t, &u, "b:1", "old:1", 0);
	tag_both(&t, &u, "a:1", "b:1", 1);                    /* b:1 moves; b keeps old:1 and a:2 */
	for (int i = 0; i < 24; i++) {
		char name[64];
		snprintf(name, sizeof name, "many/tag-%02d:v%d", i, i);
		tag_both(&t, &u, i % 3 ? "a:1" : "c:1", name, 1);
	}
	tag_both(&t, &u, "c:1", "many/tag-05:v5", 1);         /* moved within a long index */
	size_t n = assert_index_ours(&t);
	assert_int_equal(n, n0 + 24 + 2);
	/* the answers from the spliced store's names file are those of index.json itself */
	ts_reopen(&t);
	char *fast = listing_str(&t), *fast_b = lookup_str(&t, "b:1");
	char *np = ts_path(&t, "store/index.names");
	unlink(np);
	ts_reopen(&t);
	char *slow = listing_str(&t), *slow_b = lookup_str(&t, "b:1");
	assert_string_equal(fast, slow);
	assert_string_equal(fast_b, slow_b);
	assert_non_null(strstr(fast_b, rda));
	free(fast);
	free(slow);
	free(fast_b);
	free(slow_b);

	/* untag and rmi spliced the same way, with the same reports and refusals */
	tag_both(&t, &u, "d:1", "d:2", 1);
	tag_both(&t, &u, "d:1", "d:3", 1);
	char *rdd = repo_digest_of(&t, "d:2", "registry.example:5000/team/d");
	digest_both(&t, &u, "d:2", rdd, 1);
	rm_both(&t, &u, "d:2", 1, 0, 1);                    /* the image stays: d:1 takes rdd */
	char *dl = lookup_str(&t, "d:1");
	assert_non_null(strstr(dl, rdd));
	free(dl);
	rm_both(&t, &u, "nope:1", 1, 0, 0);                 /* not there */
	rm_both(&t, &u, "d:1", 0, 0, 1);                    /* one of two names: untagged only */
	char did[IB_DIGEST_HEXLEN + 1];
	ib_image *dimg = NULL;
	assert_int_equal(ib_store_image_lookup(&dimg, t.store, "d:3"), 0);
	ib_digest_hex(did, ib_image_id(dimg));
	ib_image_free(dimg);
	tag_both(&t, &u, "d:3", "d:4", 1);
	rm_both(&t, &u, did, 0, 0, 0);                      /* by id, two names: refused */
	rm_both(&t, &u, did, 0, IB_STORE_REMOVE_FORCE, 1);  /* forced: every entry goes, rdd reported */
	assert_int_equal(ib_store_image_lookup(NULL, t.store, "d:3"), IB_ENOTFOUND);
	rm_both(&t, &u, "many/tag-01:v1", 0, 0, 1);
	free(rdd);

	/* a commit's naming is spliced too: a new manifest, named, untagged; a manifest the index has */
	commit_both(&t, &u, "built:1", "org.example.build=1", 1);
	commit_both(&t, &u, NULL, "org.example.build=2", 1);
	commit_both(&t, &u, NULL, "org.example.build=2", 0);   /* it has an entry: nothing changes */
	commit_both(&t, &u, "built:2", "org.example.build=2", 1); /* the untagged entry becomes built:2 */
	commit_both(&t, &u, "built:1", NULL, 1);                /* a:1's manifest: built:1 moves to it */
	ts_reopen(&t);
	fast = listing_str(&t);
	unlink(np);
	ts_reopen(&t);
	slow = listing_str(&t);
	assert_string_equal(fast, slow);
	assert_non_null(strstr(fast, "built"));
	free(fast);
	free(slow);

	/* a foreign layout: the names file a lookup writes for it has no ranges; parsed, then ours again */
	for (test_store *x = &t; x; x = x == &t ? &u : NULL) {
		char *p = ts_path(x, "store/index.json");
		json_error_t jerr;
		json_t *j = json_load_file(p, 0, &jerr);
		assert_non_null(j);
		assert_int_equal(json_dump_file(j, p, JSON_INDENT(4)), 0);
		json_decref(j);
		free(p);
	}
	ts_reopen(&t);
	free(listing_str(&t));
	assert_names_current(&t);
	assert_names_ranged(&t, 0);
	tag_both(&t, &u, "b:1", "foreign:1", 0);
	tag_both(&t, &u, "b:1", "foreign:2", 1);

	/* ranges that lie, under the right key and sum: not spliced */
	for (int lie = 0; lie < 2; lie++) {
		char *lines = names_lines(np);
		char *span = strstr(lines, "span ") + 5, *first = strchr(span, '\n') + 1, *forged = NULL;
		if (lie == 0) /* the array one byte longer */
			assert_true(asprintf(&forged, "%.*s%llu\n%s", (int)(strchr(span, ' ') + 1 - lines), lines,
					     strtoull(strchr(span, ' ') + 1, NULL, 10) + 1, first) > 0);
		else /* the first entry one byte later */
			assert_true(asprintf(&forged, "%.*s%llu%s", (int)(first - lines), lines,
					     strtoull(first, NULL, 10) + 1, strchr(first, ' ')) > 0);
		ts_write_summed(np, NAMES_V, forged);
		free(forged);
		free(lines);
		char name[32];
		snprintf(name, sizeof name, "lie:%d", lie);
		ts_reopen(&t);
		assert_int_equal(ib_store_image_lookup(NULL, t.store, "b:1"), 0); /* the file is believed */
		tag_both(&t, &u, "b:1", name, 0);
	}

	/* an entry as this library does not write it (another annotation): a tag that changes it is parsed */
	const char *plain = "\"org.opencontainers.image.ref.name\":\"docker.io/library/c:1\"";
	const char *noted = "\"org.example.note\":\"x\",\"org.opencontainers.image.ref.name\":\"docker.io/library/c:1\"";
	edit_index(&t, plain, noted);
	edit_index(&u, plain, noted);
	ts_reopen(&t);
	free(listing_str(&t));
	assert_names_ranged(&t, 1); /* still our layout: the ranges are known */
	tag_both(&t, &u, "a:1", "extra:1", 1); /* that entry untouched: spliced */
	tag_both(&t, &u, "a:1", "c:1", 0);     /* c:1 moves: that entry goes (c keeps other names) */
	char *last = store_file(&t, "store/index.json");
	assert_null(strstr(last, "org.example.note"));
	free(last);
	tag_both(&t, &u, "b:1", "c:1", 0);     /* b:1 is a:1's image now: nothing changes */
	tag_both(&t, &u, "a:2", "c:1", 1);

	free(np);
	free(rda);
	free(rdc);
	ts_close(&u);
	ts_close(&t);
}

DEFINE_GROUP(names_tests,
	cmocka_unit_test(test_names_stale_or_damaged_ignored),
	cmocka_unit_test(test_names_foreign_index_edit_seen),
	cmocka_unit_test(test_names_same_answers),
	cmocka_unit_test(test_names_large_mapped),
	cmocka_unit_test(test_unchanged_foreign_layout_not_written),
	cmocka_unit_test(test_tag_spliced_as_parsed),
)
