#include "tests.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* util/fs.h's hook for the steps of atomic writes */
typedef void (*ib_fs_hook)(const char *step, const char *path);
void ib_fs_set_hook(ib_fs_hook hook);

static int kill_at;   /* die at this hook call */
static int calls;

static void count_step(void)
{
	if (++calls == kill_at)
		raise(SIGKILL);
}

static void store_hook(const char *point, void *payload)
{
	(void)point;
	(void)payload;
	count_step();
}

static void fs_hook(const char *step, const char *path)
{
	(void)step;
	(void)path;
	count_step();
}

/* What the killed process does: import, tag, commit a child image, cache it, record a container. */
static const char *archive_path;

static int victim(const char *root, const char *tar)
{
	ib_store *s;
	if (ib_store_open(&s, root, NULL) < 0)
		return 10;
	ib_store__set_hook(store_hook, NULL);
	ib_fs_set_hook(fs_hook);
	ib_import_options o = IB_IMPORT_OPTIONS_INIT;
	o.name = "new";
	ib_digest id;
	if (ib_store_import(&id, s, tar, &o) < 0 || ib_store_tag(s, "new", "new:2") < 0)
		return 11;
	const char *key = "cd00000000000000000000000000000000000000000000000000000000000000";
	ib_image *img;
	if (ib_store_image_lookup(&img, s, "new") < 0)
		return 12;
	if (ib_store_cache_put(s, key, &ib_image_layer(img, 0)->digest, &id) < 0)
		return 13;
	ib_image_free(img);
	ib_container_record rec = { IB_CONTAINER_RECORD_VERSION,
				    "ef00000000000000000000000000000000000000000000000000000000000000", "c", id, "new",
				    NULL, "created", NULL, NULL };
	if (ib_store_container_put(s, &rec) < 0 || ib_store_untag(s, "new:2") < 0)
		return 14;
	if (ib_store_load(NULL, s, archive_path, NULL) < 0)
		return 15;
	ib_store_free(s);
	return 0;
}

static void test_sigkill_everywhere(void **state)
{
	(void)state;
	test_store t;
	ts_open(&t, "crash");
	ib_digest base = ts_import(&t, "base", "committed before");
	char *tar = ts_path(&t, "victim.tar");
	const char *files[] = { "etc/new", "new content", "bin/x", "x", NULL };
	ts_make_tar(tar, files, 1);
	/* an archive of another image, loaded last */
	test_store other;
	ts_open(&other, "crashsrc");
	ts_import(&other, "loaded", "loaded content");
	char *arch = ts_path(&t, "loaded.tar");
	const char *names[] = { "loaded" };
	ib_save_options so = IB_SAVE_OPTIONS_INIT;
	so.format = IB_ARCHIVE_DOCKER;
	assert_int_equal(ib_store_save(other.store, names, 1, arch, &so), 0);
	ts_close(&other);
	archive_path = arch;
	int completed = 0;
	for (kill_at = 1; !completed && kill_at < 500; kill_at++) {
		calls = 0;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(victim(ib_store_root(t.store), tar));
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status)) {
			assert_int_equal(WEXITSTATUS(status), 0);
			completed = 1;
		} else {
			assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		}
		/* the store is sound and still holds what was committed before */
		ib_buf rep = IB_BUF_INIT;
		if (ib_store_fsck(&rep, t.store) < 0)
			fail_msg("killed at step %d: fsck: %s", kill_at, rep.ptr);
		ib_buf_dispose(&rep);
		ib_image *img;
		if (ib_store_image_lookup(&img, t.store, "base") < 0)
			fail_msg("killed at step %d: %s", kill_at, ib_error_last()->message);
		assert_true(ib_digest_equal(ib_image_id(img), &base));
		ib_image_free(img);
		/* and a GC after the crash keeps it sound */
		assert_int_equal(ib_store_gc(NULL, t.store, NULL), 0);
		assert_int_equal(ib_store_fsck(NULL, t.store), 0);
		/* start the next round from the same state */
		ib_store_image_remove(t.store, "new", IB_STORE_REMOVE_FORCE, NULL);
		ib_store_image_remove(t.store, "new:2", IB_STORE_REMOVE_FORCE, NULL);
		ib_store_container_remove(t.store, "ef00000000000000000000000000000000000000000000000000000000000000");
		ib_store_cache_clear(t.store);
		ib_store_image_remove(t.store, "loaded", IB_STORE_REMOVE_FORCE, NULL);
		ib_error_clear();
	}
	assert_true(completed);
	assert_true(kill_at > 10); /* it did stop at many points */
	free(tar);
	free(arch);
	ts_close(&t);
}

DEFINE_GROUP(crash_tests,
	cmocka_unit_test(test_sigkill_everywhere))
