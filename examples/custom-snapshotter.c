/*
 * custom-snapshotter: a snapshotter backend written outside the library,
 * on the public headers only (imagebuild.h and imagebuild/sys/). It wraps
 * the built-in "copy" snapshotter, opened and used through the public API
 * (snapshot.h), counts and logs what a build asks of it and passes every
 * operation on; --fail
 * MESSAGE makes its prepare fail with that message, --fail-silently
 * without one, to show how a backend's errors reach the caller. Then it
 * builds a Dockerfile with it, as `imagebuild build` would:
 *
 *   custom-snapshotter [--fail MSG | --fail-silently] STORE CONTEXT [TAG]
 *
 * What a backend does, step by step:
 *   1. embed ib_snapshotter first in its own struct, start from
 *      IB_SNAPSHOTTER_INIT and fill in the operations (sys/snapshotter.h);
 *      the library sets `name` and `store`;
 *   2. report failures with ib_error_set_str() (sys/errors.h);
 *   3. register a constructor under a name and choose it by that name in
 *      the build options; unregister it when done (the registration's
 *      `param`, here the settings and the store, stays the caller's).
 */
#include <imagebuild.h>
#include <imagebuild/sys/errors.h>
#include <imagebuild/sys/snapshotter.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	ib_store *store;        /* where the inner "copy" snapshotter lives */
	const char *fail;       /* when set: every prepare fails with this message */
	int fail_silently;      /* every prepare fails without a message */
	int prepares, diffs;    /* over every instance */
} counting_settings;

typedef struct {
	ib_snapshotter parent;  /* first, so an ib_snapshotter * is a counting * */
	ib_snapshotter *inner;  /* the built-in copy snapshotter */
	counting_settings *settings;
} counting;

#define INNER(self) (((counting *)(self))->inner)

/*
 * Every operation goes through the public functions of snapshot.h on the
 * inner handle, so the copy snapshotter keeps its own books (which process
 * owns a snapshot, what is mounted) and a prune of it sees our snapshots
 * as the live ones they are. The inner one unpacks the layers it needs in
 * its prepare; this backend keeps no layers of its own (no layer_has).
 */
static int c_prepare(ib_snapshotter *self, const char *key, const ib_digest *chain, size_t n)
{
	counting_settings *s = ((counting *)self)->settings;
	if (s->fail)
		return ib_error_set_str(IB_ERROR, "%s", s->fail);
	if (s->fail_silently)
		return IB_ERROR; /* the library names us: "snapshotter `counting`: prepare failed ..." */
	s->prepares++;
	fprintf(stderr, "counting: prepare #%d `%s` on %zu layers\n", s->prepares, key, n);
	return ib_snapshot_prepare(INNER(self), key, chain, n);
}

static int c_mount(ib_snapshotter *self, ib_buf *rootfs, const char *key)
{
	return ib_snapshot_mount(rootfs, INNER(self), key);
}

static int c_unmount(ib_snapshotter *self, const char *key)
{
	return ib_snapshot_unmount(INNER(self), key);
}

/* 1 mounted, 0 not, IB_ENOTFOUND no such snapshot: only the backend itself can tell, so ask it */
static int c_mounted(ib_snapshotter *self, const char *key)
{
	return INNER(self)->mounted(INNER(self), key);
}

static int c_diff(ib_snapshotter *self, const char *key, const ib_diff_options *opts,
		  ib_snapshot_write_cb write, void *payload)
{
	counting_settings *s = ((counting *)self)->settings;
	s->diffs++;
	fprintf(stderr, "counting: diff #%d `%s`\n", s->diffs, key);
	return ib_snapshot_diff(INNER(self), key, opts, write, payload);
}

static int c_remove(ib_snapshotter *self, const char *key)
{
	return ib_snapshot_remove(INNER(self), key);
}

static void c_free(ib_snapshotter *self)
{
	ib_snapshotter_free(INNER(self));
	free(self);
}

/* `dir` is ours (<store>/snapshots/counting); the inner copy snapshotter keeps its files in its own. */
static int counting_new(ib_snapshotter **out, const char *dir, void *param)
{
	counting_settings *s = param;
	counting *c = calloc(1, sizeof *c);
	(void)dir;
	if (!c)
		return ib_error_set_str(IB_ERROR, "out of memory");
	int rc = ib_snapshotter_open(&c->inner, s->store, "copy", NULL);
	if (rc < 0) {
		free(c);
		return rc; /* its error says why */
	}
	ib_snapshotter init = IB_SNAPSHOTTER_INIT;
	c->parent = init;
	c->settings = s;
	c->parent.prepare = c_prepare;
	c->parent.mount = c_mount;
	c->parent.unmount = c_unmount;
	c->parent.mounted = c_mounted;
	c->parent.diff = c_diff;
	c->parent.remove = c_remove;
	c->parent.free = c_free;
	*out = &c->parent;
	return 0;
}

static int on_progress(const ib_progress *p, void *payload)
{
	(void)payload;
	if (p->kind == IB_PROGRESS_STEP && !p->cached)
		printf("=> %s %s\n", p->id, p->text);
	else if (p->kind == IB_PROGRESS_STEP_DONE && p->cached)
		printf("=> CACHED %s %s\n", p->id, p->text);
	else if (p->kind == IB_PROGRESS_OUTPUT)
		printf("   %s\n", p->text);
	return 0;
}

int main(int argc, char **argv)
{
	counting_settings settings = { NULL, NULL, 0, 0, 0 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--fail") && i + 1 < argc)
			settings.fail = argv[++i];
		else if (!strcmp(argv[i], "--fail-silently"))
			settings.fail_silently = 1;
		else
			break;
	}
	if (argc - i < 2 || argc - i > 3) {
		fprintf(stderr, "usage: custom-snapshotter [--fail MSG | --fail-silently] STORE CONTEXT [TAG]\n");
		return 2;
	}
	const char *tags[] = { argc - i == 3 ? argv[i + 2] : NULL, NULL };

	ib_init();
	ib_digest id;
	char hex[IB_DIGEST_STRLEN];
	int rc = ib_store_open(&settings.store, argv[i], NULL);
	if (rc == 0)
		rc = ib_snapshotter_register("counting", counting_new, &settings);
	if (rc == 0) {
		ib_build_options o = IB_BUILD_OPTIONS_INIT;
		ib_callbacks cb = IB_CALLBACKS_INIT;
		cb.progress = on_progress;
		o.context = argv[i + 1];
		o.tags = tags[0] ? tags : NULL;
		o.snapshotter = "counting";
		o.pull = IB_PULL_NEVER;
		o.callbacks = &cb;
		rc = ib_build(&id, settings.store, &o);
	}
	if (rc < 0) {
		fprintf(stderr, "custom-snapshotter: %s\n", ib_error_last()->message);
	} else {
		ib_digest_fmt(hex, &id);
		printf("%s\n", hex);
		fprintf(stderr, "counting: %d prepares, %d diffs\n", settings.prepares, settings.diffs);
	}
	ib_snapshotter_unregister("counting");
	ib_store_free(settings.store);
	ib_shutdown();
	return rc < 0 ? 1 : 0;
}
