/*
 * The build orchestrator: Dockerfile + context -> image in the store.
 *
 * Each stage keeps a state: its image config (which holds Env, WorkingDir,
 * User, history, diff_ids...), its layers, the ARGs in scope and a cache
 * key. Every step derives its key from its parent's key and its inputs; a
 * step found in the cache restores the config (and layer) recorded after
 * it, so a fully cached build gives the very same image. A miss runs the
 * step and every later one of the stage.
 */
#include "imagebuild/build.h"
#include "build/internal.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/path.h"
#include "util/strlist.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* sha256 of an empty tar (1024 zero bytes): a step that changed nothing */
#define EMPTY_TAR_DIGEST "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
#define TAIL_LINES 10

typedef struct {
	ib_image_config *config;
	ib_layer *layers;
	size_t nlayers;
	char key[IB_DIGEST_HEXLEN + 1];
	ib_strlist args;    /* NAME=VALUE of the ARGs in scope (not kept in the image) */
	ib_strlist arg_names; /* every ARG declared in the stage, in order (history shows them) */
	char *arg_history;  /* created_by of the last ARG step */
	int cmd_set;        /* CMD was set in this stage: ENTRYPOINT no longer clears it */
	int built;
} stage_state;

typedef struct {
	ib_store *store;
	ib_snapshotter *snap;
	const ib_build_options *o;
	ib_dockerfile *df;
	ib_instructions *ins;
	ib_plan *plan;
	ib_ignore *ignore;
	int ctxfd;
	char escape;
	stage_state *stages;
	size_t nstages;
	ib_strlist snapshots;  /* keys to remove at the end */
	unsigned long counter;
	/* the step being run */
	const char *step_label;
	int no_history;        /* commit -c: config changes without history entries */
	volatile int cancel;   /* set when the progress callback asks to stop; RUN polls it */
	char *tail[TAIL_LINES];
	size_t tail_next;
} builder;

/* ---- reporting ---- */

static int report(builder *b, ib_progress_kind kind, const char *id, const char *text, uint64_t cur,
		  uint64_t total, int cached)
{
	if (!b->o->callbacks.progress)
		return 0;
	ib_progress p = {IB_PROGRESS_VERSION, kind, id, text, cur, total, cached};
	int rc = b->o->callbacks.progress(&p, b->o->callbacks.payload);
	if (rc)
		return ib_error_setc(IB_EUSER, IB_LAYER_CALLBACK, "the build was cancelled by its caller");
	return 0;
}

static void log_line(builder *b, ib_log_level lvl, const char *fmt, ...) IB_PRINTF(3, 4);
static void log_line(builder *b, ib_log_level lvl, const char *fmt, ...)
{
	if (!b->o->callbacks.log)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	b->o->callbacks.log(lvl, line, b->o->callbacks.payload);
}

/* RUN output: forwarded as progress, the last lines kept for an error. */
static void run_output(ib_log_level lvl, const char *line, void *payload)
{
	builder *b = payload;
	(void)lvl;
	free(b->tail[b->tail_next]);
	b->tail[b->tail_next] = strdup(line);
	b->tail_next = (b->tail_next + 1) % TAIL_LINES;
	if (b->o->callbacks.progress) {
		ib_progress p = {IB_PROGRESS_VERSION, IB_PROGRESS_OUTPUT, b->step_label, line, 0, 0, 0};
		if (b->o->callbacks.progress(&p, b->o->callbacks.payload))
			b->cancel = 1; /* the running process is killed */
	}
}

static void tail_clear(builder *b)
{
	for (size_t i = 0; i < TAIL_LINES; i++) {
		free(b->tail[i]);
		b->tail[i] = NULL;
	}
	b->tail_next = 0;
}

/* ---- the environment a step sees ---- */

/* ARGs first, then the image's Env: ENV wins over an ARG of the same name. */
static int step_env(ib_strlist *out, const stage_state *s)
{
	for (size_t i = 0; i < s->args.n; i++)
		if (ib_strlist_add(out, s->args.items[i]) < 0)
			return IB_ERROR;
	size_t n = ib_image_config_list_count(s->config, IB_CONFIG_ENV);
	for (size_t i = 0; i < n; i++)
		if (ib_strlist_add(out, ib_image_config_list_get(s->config, IB_CONFIG_ENV, i)) < 0)
			return IB_ERROR;
	return 0;
}

static int expand_one(ib_buf *out, builder *b, const stage_state *s, const char *word)
{
	ib_strlist env = IB_STRLIST_INIT;
	int rc = step_env(&env, s);
	if (rc == 0) {
		ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
		eo.env = (const char *const *)env.items;
		eo.escape = b->escape;
		rc = ib_expand_word(out, word, &eo);
	}
	ib_strlist_clear(&env);
	return rc;
}

static int expand_list(ib_strarray *out, builder *b, const stage_state *s, const char *word)
{
	ib_strlist env = IB_STRLIST_INIT;
	int rc = step_env(&env, s);
	if (rc == 0) {
		ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
		eo.env = (const char *const *)env.items;
		eo.escape = b->escape;
		rc = ib_expand_words(out, word, &eo);
	}
	ib_strlist_clear(&env);
	return rc;
}

static const char *arg_get(const stage_state *s, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < s->args.n; i++)
		if (strncmp(s->args.items[i], name, n) == 0 && s->args.items[i][n] == '=')
			return s->args.items[i] + n + 1;
	return NULL;
}

static int set_arg(stage_state *s, const char *name, const char *value)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < s->args.n; i++) {
		if (strncmp(s->args.items[i], name, n) == 0 && s->args.items[i][n] == '=') {
			char *v = ib_sprintf("%s=%s", name, value);
			if (!v)
				return IB_ERROR;
			free(s->args.items[i]);
			s->args.items[i] = v;
			return 0;
		}
	}
	return ib_strlist_take(&s->args, ib_sprintf("%s=%s", name, value));
}

/* ---- cache keys ---- */

typedef struct {
	ib_sha256 *h;
} keyer;

static int key_begin(keyer *k, const stage_state *s, const ib_instruction *in)
{
	k->h = ib_sha256_new();
	if (!k->h)
		return IB_ERROR;
	ib_sha256_update(k->h, s->key, strlen(s->key) + 1);
	ib_sha256_update(k->h, in->original, strlen(in->original) + 1);
	/* the ARGs and ENV it sees, the user, workdir and shell it runs with */
	for (size_t i = 0; i < s->args.n; i++)
		ib_sha256_update(k->h, s->args.items[i], strlen(s->args.items[i]) + 1);
	ib_buf cfg = IB_BUF_INIT;
	static const ib_config_list lists[] = {IB_CONFIG_ENV, IB_CONFIG_SHELL};
	for (size_t l = 0; l < 2; l++) {
		size_t n = ib_image_config_list_count(s->config, lists[l]);
		for (size_t i = 0; i < n; i++) {
			const char *v = ib_image_config_list_get(s->config, lists[l], i);
			ib_sha256_update(k->h, v, strlen(v) + 1);
		}
		ib_sha256_update(k->h, "|", 1);
	}
	const char *u = ib_image_config_get(s->config, IB_CONFIG_USER);
	const char *w = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
	ib_buf_printf(&cfg, "user=%s workdir=%s", u ? u : "", w ? w : "");
	ib_sha256_update(k->h, ib_buf_cstr(&cfg), cfg.size + 1);
	ib_buf_dispose(&cfg);
	return 0;
}

static void key_add(keyer *k, const char *text)
{
	ib_sha256_update(k->h, text, strlen(text) + 1);
}

static int key_end(keyer *k, char out[IB_DIGEST_HEXLEN + 1])
{
	ib_digest d;
	int rc = ib_sha256_final(k->h, &d);
	ib_sha256_free(k->h);
	k->h = NULL;
	if (rc == 0)
		ib_digest_hex(out, &d);
	return rc;
}

/* ---- stage state ---- */

static void state_dispose(stage_state *s)
{
	ib_image_config_free(s->config);
	free(s->layers);
	ib_strlist_clear(&s->args);
	ib_strlist_clear(&s->arg_names);
	free(s->arg_history);
	memset(s, 0, sizeof *s);
}

/* Layers of a config: every diff_id is a blob of the local store. */
static int layers_from_config(stage_state *s, ib_store *store)
{
	free(s->layers);
	s->layers = NULL;
	s->nlayers = ib_image_config_diff_id_count(s->config);
	if (!s->nlayers)
		return 0;
	s->layers = ib_calloc(s->nlayers, sizeof *s->layers);
	if (!s->layers)
		return IB_ERROR;
	for (size_t i = 0; i < s->nlayers; i++) {
		ib_layer *l = &s->layers[i];
		if (ib_image_config_diff_id(&l->diff_id, s->config, i) < 0)
			return IB_ERROR;
		l->digest = l->diff_id;
		if (ib_store_blob_size(&l->size, store, &l->digest) < 0)
			return IB_ERROR;
	}
	return 0;
}

static int restore_config(stage_state *s, ib_store *store, const ib_digest *config)
{
	ib_buf json = IB_BUF_INIT;
	int rc = ib_store_blob_read(&json, store, config);
	ib_image_config *c = NULL;
	if (rc == 0)
		rc = ib_image_config_from_json(&c, json.ptr, json.size);
	ib_buf_dispose(&json);
	if (rc < 0)
		return rc;
	ib_image_config_free(s->config);
	s->config = c;
	return layers_from_config(s, store);
}

static int save_config(ib_digest *out, builder *b, const stage_state *s)
{
	ib_buf json = IB_BUF_INIT;
	int rc = ib_image_config_to_json(&json, s->config);
	if (rc == 0)
		rc = ib_store_blob_put(out, b->store, json.ptr, json.size);
	ib_buf_dispose(&json);
	return rc;
}

static int add_history(stage_state *s, const char *created_by, int empty_layer)
{
	ib_history_entry e;
	memset(&e, 0, sizeof e);
	if (ib_image_config_set_created_now(s->config, 1) < 0)
		return IB_ERROR;
	e.created = ib_image_config_get(s->config, IB_CONFIG_CREATED);
	e.created_by = created_by;
	e.comment = "buildkit.dockerfile.v0";
	e.empty_layer = empty_layer;
	return ib_image_config_history_add(s->config, &e);
}

static int init_stage(builder *b, const ib_plan_stage *ps, stage_state *s)
{
	int rc = 0;
	if (ps->base_kind == IB_BASE_SCRATCH) {
		rc = ib_image_config_new(&s->config);
		/* BuildKit's empty image has WorkingDir "/" */
		if (rc == 0)
			rc = ib_image_config_set(s->config, IB_CONFIG_WORKDIR, "/");
		snprintf(s->key, sizeof s->key, "%s", "scratch");
	} else if (ps->base_kind == IB_BASE_STAGE) {
		stage_state *from = &b->stages[ps->base_stage];
		rc = ib_image_config_dup(&s->config, from->config);
		if (rc == 0)
			rc = layers_from_config(s, b->store);
		memcpy(s->key, from->key, sizeof s->key);
	} else {
		ib_image *img = NULL;
		rc = ib_store_image_lookup(&img, b->store, ps->base);
		if (rc < 0) {
			ib_error_prefix("line %d: FROM %s (pull it first, or import it)", ps->stage->line, ps->base);
			return rc;
		}
		char hex[IB_DIGEST_HEXLEN + 1];
		ib_digest_hex(hex, ib_image_id(img));
		memcpy(s->key, hex, sizeof s->key);
		rc = ib_image_config_dup(&s->config, ib_image_config_of(img));
		ib_image_free(img);
		if (rc == 0)
			rc = layers_from_config(s, b->store);
	}
	if (rc < 0)
		return rc;
	/* Docker sets the default PATH when the base has none */
	if (!ib_image_config_env_get(s->config, "PATH"))
		rc = ib_image_config_env_set(s->config, "PATH", DEFAULT_PATH);
	return rc;
}

/* ---- snapshots ---- */

static int new_snapshot(ib_buf *rootfs, char **key_out, builder *b, const stage_state *s)
{
	ib_digest *chain = NULL;
	char *key = ib_sprintf("build-%ld-%lu-%lx", (long)getpid(), ++b->counter, (unsigned long)time(NULL));
	int rc = key ? 0 : IB_ERROR;
	if (rc == 0 && s->nlayers) {
		chain = ib_calloc(s->nlayers, sizeof *chain);
		rc = chain ? 0 : IB_ERROR;
		for (size_t i = 0; rc == 0 && i < s->nlayers; i++)
			chain[i] = s->layers[i].diff_id;
	}
	if (rc == 0)
		rc = ib_snapshot_prepare(b->snap, key, chain, s->nlayers);
	if (rc == 0)
		rc = ib_strlist_add(&b->snapshots, key);
	if (rc == 0)
		rc = ib_snapshot_mount(rootfs, b->snap, key);
	free(chain);
	if (rc < 0) {
		free(key);
		return rc;
	}
	*key_out = key;
	return 0;
}

static void drop_snapshot(builder *b, const char *key)
{
	ib_error_saved saved;
	ib_error_save(&saved);
	ib_snapshot_unmount(b->snap, key);
	ib_snapshot_remove(b->snap, key);
	ib_error_restore(&saved);
	for (size_t i = 0; i < b->snapshots.n; i++) {
		if (strcmp(b->snapshots.items[i], key) == 0) {
			free(b->snapshots.items[i]);
			b->snapshots.items[i] = b->snapshots.items[--b->snapshots.n];
			b->snapshots.items[b->snapshots.n] = NULL;
			break;
		}
	}
}

/* Unmount, turn the changes into a layer, and add it (or an empty history entry). */
static int commit_snapshot(builder *b, stage_state *s, const char *key, const char *created_by,
			   int keep_empty)
{
	ib_digest diff_id, empty;
	uint64_t size = 0;
	int rc = ib_snapshot_unmount(b->snap, key);
	/* the step's files become the unpacked layer the next steps stand on */
	if (rc == 0)
		rc = ib_snapshot_commit_remove(&diff_id, &size, b->snap, key);
	if (rc < 0)
		return rc;
	ib_digest_parse(&empty, EMPTY_TAR_DIGEST);
	if (!keep_empty && ib_digest_equal(&diff_id, &empty))
		return add_history(s, created_by, 1);
	ib_layer *l = ib_realloc(s->layers, (s->nlayers + 1) * sizeof *l);
	if (!l)
		return IB_ERROR;
	s->layers = l;
	l[s->nlayers].digest = diff_id;
	l[s->nlayers].diff_id = diff_id;
	l[s->nlayers].size = size;
	l[s->nlayers].media_type = NULL;
	s->nlayers++;
	rc = ib_image_config_diff_id_add(s->config, &diff_id);
	if (rc == 0)
		rc = add_history(s, created_by, 0);
	return rc;
}

/* ---- RUN --mount ---- */

typedef struct {
	ib_mount *mounts;
	size_t n;
	ib_strlist strings;  /* what the mounts point to */
	ib_strlist tmpdirs;  /* removed afterwards */
	ib_strlist snapkeys; /* snapshots of other stages, dropped afterwards */
} run_mounts;

static const char *keep(run_mounts *rm, char *s)
{
	if (!s || ib_strlist_take(&rm->strings, s) < 0)
		return NULL;
	return rm->strings.items[rm->strings.n - 1];
}

static int add_mount(run_mounts *rm, ib_mount_type type, const char *source, const char *target, int ro,
		     const char *options)
{
	ib_mount *m = ib_realloc(rm->mounts, (rm->n + 2) * sizeof *m);
	if (!m)
		return IB_ERROR;
	rm->mounts = m;
	m[rm->n++] = (ib_mount){type, source, target, ro, options};
	return 0;
}

/* The host path of `rel` resolved inside the tree at `rootfd` (symlinks stay inside). */
static char *resolved_host_path(int rootfd, const char *rel)
{
	int fd = ib_open_in_root(rootfd, rel, O_PATH, 0);
	if (fd < 0)
		return NULL;
	char link[64], buf[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) {
		ib_error_set_os(IB_LAYER_BUILD, "readlink `%s`", link);
		return NULL;
	}
	buf[n] = '\0';
	return ib_strdup(buf);
}

/* The cache key part of another stage or an image named by from= (no mounting). */
static int from_key(builder *b, const char *from, size_t stage_index, char out[IB_DIGEST_HEXLEN + 1])
{
	size_t idx;
	if (ib_plan_resolve_stage(&idx, b->plan, from, stage_index) == 0) {
		memcpy(out, b->stages[idx].key, IB_DIGEST_HEXLEN + 1);
		return 0;
	}
	ib_image *img = NULL;
	int rc = ib_store_image_lookup(&img, b->store, from);
	if (rc == 0)
		ib_digest_hex(out, ib_image_id(img));
	ib_image_free(img);
	return rc;
}

static int source_root(int *fd, char **snapkey, builder *b, const stage_state *s, const char *from,
		       size_t stage_index, char key_part[IB_DIGEST_HEXLEN + 1]);
static int ignore_filter(void *payload, const char *rel, int is_dir);

/* A bind mount of the context (filtered by .dockerignore: a copy) or of another stage or image. */
static int bind_mount(run_mounts *rm, builder *b, stage_state *s, const ib_run_mount *m, size_t stage_index,
		      const char *target, const char *src, const char *from, keyer *k)
{
	int rc = 0;
	if (from) {
		char part[IB_DIGEST_HEXLEN + 1];
		if (k) {
			if ((rc = from_key(b, from, stage_index, part)) < 0)
				return rc;
			key_add(k, part);
			key_add(k, src);
			return 0;
		}
		int fd = -1;
		char *snapkey = NULL;
		rc = source_root(&fd, &snapkey, b, s, from, stage_index, part);
		if (snapkey)
			ib_strlist_take(&rm->snapkeys, snapkey);
		const char *host = rc == 0 ? keep(rm, resolved_host_path(fd, src)) : NULL;
		if (fd >= 0)
			close(fd);
		if (rc == 0 && !host)
			rc = IB_ERROR;
		return rc == 0 ? add_mount(rm, IB_MOUNT_BIND, host, target, m->readonly, NULL) : rc;
	}
	if (k)
		return ib_build__hash_source(k->h, b->ctxfd, src, ignore_filter, b->ignore);
	/* a private copy of what the context shows (so ignored files stay out, and rw writes are dropped) */
	const char *tmpdir = getenv("TMPDIR");
	char *dir = ib_sprintf("%s/imagebuild-mount-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!dir || !mkdtemp(dir)) {
		rc = dir ? ib_error_set_os(IB_LAYER_BUILD, "mkdtemp `%s`", dir) : IB_ERROR;
		free(dir);
		return rc;
	}
	ib_strlist_take(&rm->tmpdirs, dir);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ib_copy_opts co;
	memset(&co, 0, sizeof co);
	co.set_owner = 1;
	co.filter = ignore_filter;
	co.filter_payload = b->ignore;
	struct stat st;
	int sfd = ib_open_in_root(b->ctxfd, src, O_PATH, 0);
	if (dfd < 0 || sfd < 0 || fstat(sfd, &st) < 0)
		rc = dfd < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open `%s`", dir) : IB_ERROR;
	if (rc == 0)
		rc = ib_build__copy(b->ctxfd, src, dfd, "/", 1, &co);
	const char *host = NULL;
	if (rc == 0) {
		const char *base = strrchr(src, '/');
		host = S_ISDIR(st.st_mode) ? dir : keep(rm, ib_sprintf("%s/%s", dir, base ? base + 1 : src));
		if (!host)
			rc = IB_ERROR;
	}
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return rc == 0 ? add_mount(rm, IB_MOUNT_BIND, host, target, m->readonly, NULL) : rc;
}

/* A persistent cache directory, <store>/cache-mounts/<sha256 of its id>. */
static int cache_mount(run_mounts *rm, builder *b, const ib_run_mount *m, const char *id, const char *target)
{
	ib_digest d;
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_of(&d, id, strlen(id));
	ib_digest_hex(hex, &d);
	const char *dir = keep(rm, ib_sprintf("%s/cache-mounts/%s", ib_store_root(b->store), hex));
	if (!dir)
		return IB_ERROR;
	if (!ib_path_exists(dir)) {
		unsigned long uid = m->uid ? strtoul(m->uid, NULL, 10) : 0, gid = m->gid ? strtoul(m->gid, NULL, 10) : 0;
		unsigned long mode = m->mode ? strtoul(m->mode, NULL, 8) : 0755;
		int rc = ib_mkdir_p(dir, 0755);
		if (rc == 0 && (chown(dir, (uid_t)uid, (gid_t)gid) < 0 || chmod(dir, (mode_t)(mode & 07777)) < 0))
			rc = ib_error_set_os(IB_LAYER_BUILD, "prepare the cache mount `%s`", dir);
		if (rc < 0)
			return rc;
	}
	return add_mount(rm, IB_MOUNT_BIND, dir, target, m->readonly, NULL);
}

/*
 * The mounts of a RUN. With `k`, only feed the cache key (what a bind
 * mount shows counts; caches and tmpfs do not); else make them.
 */
static int prepare_mounts(run_mounts *rm, builder *b, stage_state *s, const ib_instruction *in,
			  size_t stage_index, keyer *k)
{
	const ib_instr_run *r = &in->u.run;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < r->mount_count; i++) {
		const ib_run_mount *m = &r->mounts[i];
		ib_buf t = IB_BUF_INIT, src = IB_BUF_INIT, from = IB_BUF_INIT, id = IB_BUF_INIT, abs = IB_BUF_INIT;
		if (!m->target) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "--mount=%s: no target", m->raw);
		} else if ((rc = expand_one(&t, b, s, m->target)) == 0) {
			const char *wd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
			rc = t.ptr[0] == '/' ? ib_path_clean(&abs, t.ptr) : ib_path_join(&abs, wd && *wd ? wd : "/", t.ptr);
		}
		const char *target = rc == 0 && !k ? keep(rm, ib_buf_detach(&abs)) : NULL;
		if (rc == 0 && !k && !target)
			rc = IB_ERROR;
		if (rc == 0 && m->source)
			rc = expand_one(&src, b, s, m->source);
		if (rc == 0 && m->from)
			rc = expand_one(&from, b, s, m->from);
		if (rc == 0 && m->id)
			rc = expand_one(&id, b, s, m->id);
		if (rc == 0) {
			switch (m->type) {
			case IB_RUN_MOUNT_BIND:
				rc = bind_mount(rm, b, s, m, stage_index, target, src.size ? src.ptr : ".",
						m->from ? from.ptr : NULL, k);
				break;
			case IB_RUN_MOUNT_CACHE:
				if (!k)
					rc = cache_mount(rm, b, m, id.size ? id.ptr : ib_buf_cstr(&t), target);
				break;
			case IB_RUN_MOUNT_TMPFS:
				if (!k)
					rc = add_mount(rm, IB_MOUNT_TMPFS, NULL, target, 0,
						       m->size ? keep(rm, ib_sprintf("size=%s", m->size)) : NULL);
				break;
			default:
				rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
						   "--mount=%s: secret and ssh mounts are not supported yet", m->raw);
			}
		}
		if (rc < 0)
			ib_error_prefix("line %d: --mount=%s", in->line, m->raw);
		ib_buf_dispose(&t);
		ib_buf_dispose(&src);
		ib_buf_dispose(&from);
		ib_buf_dispose(&id);
		ib_buf_dispose(&abs);
	}
	return rc;
}

static void release_mounts(builder *b, run_mounts *rm)
{
	for (size_t i = 0; i < rm->snapkeys.n; i++)
		drop_snapshot(b, rm->snapkeys.items[i]);
	for (size_t i = 0; i < rm->tmpdirs.n; i++)
		ib_rm_rf(rm->tmpdirs.items[i]);
	ib_strlist_clear(&rm->snapkeys);
	ib_strlist_clear(&rm->tmpdirs);
	ib_strlist_clear(&rm->strings);
	free(rm->mounts);
	memset(rm, 0, sizeof *rm);
}

/* ---- RUN ---- */

/* `RUN <<EOF` alone: the heredoc is the whole script. */
static int heredoc_is_command(const ib_instr_run *r)
{
	if (r->heredoc_count != 1 || r->args.count != 1)
		return 0;
	const char *c = r->args.items[0];
	while (*c == ' ' || *c == '\t')
		c++;
	if (strncmp(c, "<<", 2) != 0)
		return 0;
	for (; *c; c++)
		if (*c == ' ' || *c == '\t' || *c == '\n')
			break;
	while (*c == ' ' || *c == '\t' || *c == '\n')
		c++;
	return *c == '\0';
}

/*
 * The shell script of a shell-form RUN with heredocs, as BuildKit runs it:
 * `RUN <<EOF` alone runs the heredoc; otherwise the command line and the
 * heredoc bodies with their delimiters go to the shell, which reads them.
 */
static int run_heredoc_script(ib_buf *out, const ib_instr_run *r)
{
	if (heredoc_is_command(r))
		return r->heredocs[0].chomp ? ib_heredoc_chomp(out, &r->heredocs[0])
					    : ib_buf_put(out, r->heredocs[0].content, r->heredocs[0].content_len);
	int rc = ib_buf_puts(out, r->args.items[0]);
	for (size_t i = 0; rc == 0 && i < r->heredoc_count; i++) {
		const ib_heredoc *h = &r->heredocs[i];
		rc = ib_buf_putc(out, '\n');
		if (rc == 0)
			rc = ib_buf_put(out, h->content, h->content_len);
		if (rc == 0)
			rc = ib_buf_printf(out, "%s\n", h->name);
	}
	return rc;
}

static int run_argv(ib_strlist *argv, const stage_state *s, const ib_instruction *in,
		    ib_buf *created_by)
{
	const ib_instr_run *r = &in->u.run;
	int rc = 0;
	if (r->json) {
		for (size_t i = 0; rc == 0 && i < r->args.count; i++)
			rc = ib_strlist_add(argv, r->args.items[i]);
	} else {
		size_t n = ib_image_config_list_count(s->config, IB_CONFIG_SHELL);
		if (n == 0) {
			rc = ib_strlist_add(argv, "/bin/sh");
			if (rc == 0)
				rc = ib_strlist_add(argv, "-c");
		}
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = ib_strlist_add(argv, ib_image_config_list_get(s->config, IB_CONFIG_SHELL, i));
		if (rc == 0 && r->heredoc_count && r->args.count) {
			ib_buf script = IB_BUF_INIT;
			rc = run_heredoc_script(&script, r);
			if (rc == 0)
				rc = ib_strlist_add(argv, ib_buf_cstr(&script));
			ib_buf_dispose(&script);
		} else if (rc == 0) {
			rc = ib_strlist_add(argv, r->args.count ? r->args.items[0] : "");
		}
	}
	if (rc < 0)
		return rc;
	if (argv->n == 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "line %d: RUN has no command", in->line);
	/* BuildKit: "RUN |2 A=1 B= /bin/sh -c ..." with every ARG of the stage */
	ib_buf_puts(created_by, "RUN ");
	if (s->arg_names.n) {
		ib_buf_printf(created_by, "|%zu ", s->arg_names.n);
		for (size_t i = 0; i < s->arg_names.n; i++) {
			const char *v = arg_get(s, s->arg_names.items[i]);
			ib_buf_printf(created_by, "%s=%s ", s->arg_names.items[i], v ? v : "");
		}
	}
	for (size_t i = 0; i < argv->n; i++)
		ib_buf_printf(created_by, "%s%s", i ? " " : "", argv->items[i]);
	return ib_buf_puts(created_by, " # buildkit");
}

static int do_run(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index)
{
	ib_strlist argv = IB_STRLIST_INIT, env = IB_STRLIST_INIT;
	ib_buf created_by = IB_BUF_INIT, rootfs = IB_BUF_INIT;
	char *key = NULL;
	int rc;

	run_mounts rm;
	memset(&rm, 0, sizeof rm);
	rc = run_argv(&argv, s, in, &created_by);
	if (rc == 0)
		rc = prepare_mounts(&rm, b, s, in, stage_index, NULL);
	if (rc == 0)
		rc = step_env(&env, s);
	/* proxy build arguments reach RUN without a declaration */
	for (const char *const *a = b->o->build_args; rc == 0 && a && *a; a++) {
		char name[64];
		const char *eq = strchr(*a, '=');
		if (eq && (size_t)(eq - *a) < sizeof name) {
			snprintf(name, sizeof name, "%.*s", (int)(eq - *a), *a);
			if (ib_plan_is_proxy_arg(name))
				rc = ib_strlist_add(&env, *a);
		}
	}
	/* RUN <<EOF with a #! line: the heredoc is a program, run as a file (BuildKit) */
	static const char script_target[] = "/.imagebuild-heredoc";
	char *script_dir = NULL, *script_path = NULL;
	const ib_instr_run *r = &in->u.run;
	if (rc == 0 && !r->json && heredoc_is_command(r) && r->heredocs[0].content_len > 2 &&
	    !strncmp(r->heredocs[0].content, "#!", 2)) {
		const char *tmpdir = getenv("TMPDIR");
		ib_buf text = IB_BUF_INIT;
		script_dir = ib_sprintf("%s/imagebuild-run-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
		if (!script_dir || !mkdtemp(script_dir))
			rc = script_dir ? ib_error_set_os(IB_LAYER_BUILD, "mkdtemp `%s`", script_dir) : IB_ERROR;
		if (rc == 0 && !(script_path = ib_sprintf("%s/script", script_dir)))
			rc = IB_ERROR;
		if (rc == 0)
			rc = r->heredocs[0].chomp ? ib_heredoc_chomp(&text, &r->heredocs[0])
						  : ib_buf_put(&text, r->heredocs[0].content, r->heredocs[0].content_len);
		if (rc == 0)
			rc = ib_atomic_write(script_path, text.ptr, text.size, 0755);
		ib_buf_dispose(&text);
		if (rc == 0)
			rc = add_mount(&rm, IB_MOUNT_BIND, script_path, script_target, 1, NULL);
		if (rc == 0) {
			ib_strlist_clear(&argv);
			rc = ib_strlist_add(&argv, script_target);
		}
	}
	if (rc == 0)
		rc = new_snapshot(&rootfs, &key, b, s);
	if (rc == 0) {
		ib_process p = IB_PROCESS_INIT;
		p.mounts = rm.mounts;
		p.nmounts = rm.n;
		ib_execute_options eo = IB_EXECUTE_OPTIONS_INIT;
		ib_exit_status st = {0, 0};
		p.argv = (const char *const *)argv.items;
		p.env = (const char *const *)env.items;
		p.cwd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
		p.user = ib_image_config_get(s->config, IB_CONFIG_USER);
		p.network = b->o->network;
		p.log = run_output;
		p.log_payload = b;
		eo.isolation = b->o->isolation;
		eo.cancel = &b->cancel;
		tail_clear(b);
		rc = ib_execute_run(&st, rootfs.ptr, &p, &eo);
		if (rc == 0 && (st.code != 0 || st.signal != 0)) {
			ib_buf msg = IB_BUF_INIT;
			if (st.signal)
				ib_buf_printf(&msg, "killed by signal %d", st.signal);
			else
				ib_buf_printf(&msg, "exit code %d", st.code);
			ib_buf_puts(&msg, "; last lines of its output:");
			for (size_t i = 0; i < TAIL_LINES; i++) {
				const char *l = b->tail[(b->tail_next + i) % TAIL_LINES];
				if (l)
					ib_buf_printf(&msg, "\n  %s", l);
			}
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "`%s` failed: %s",
					   argv.items[argv.n - 1], ib_buf_cstr(&msg));
			ib_buf_dispose(&msg);
		}
		if (rc == 0)
			rc = commit_snapshot(b, s, key, created_by.ptr, 0);
	}
	if (key)
		drop_snapshot(b, key);
	free(key);
	release_mounts(b, &rm);
	if (script_dir)
		ib_rm_rf(script_dir);
	free(script_dir);
	free(script_path);
	ib_strlist_clear(&argv);
	ib_strlist_clear(&env);
	ib_buf_dispose(&created_by);
	ib_buf_dispose(&rootfs);
	return rc;
}

/* ---- COPY / ADD ---- */

static int ignore_filter(void *payload, const char *rel, int is_dir)
{
	const ib_ignore *ig = payload;
	if (!ig || !ib_ignore_matches(ig, rel))
		return IB_WALK_INCLUDE;
	if (is_dir && ib_ignore_descend(ig, rel))
		return IB_WALK_EXCLUDE_DESCEND;
	return IB_WALK_EXCLUDE;
}

/* A mounted rootfs of another stage or image, for COPY --from. */
static int source_root(int *fd, char **snapkey, builder *b, const stage_state *s, const char *from,
		       size_t stage_index, char key_part[IB_DIGEST_HEXLEN + 1])
{
	size_t idx;
	stage_state tmp;
	const stage_state *src = NULL;
	memset(&tmp, 0, sizeof tmp);
	(void)s;
	int rc = 0;
	if (ib_plan_resolve_stage(&idx, b->plan, from, stage_index) == 0) {
		src = &b->stages[idx];
		memcpy(key_part, src->key, IB_DIGEST_HEXLEN + 1);
	} else {
		ib_image *img = NULL;
		if ((rc = ib_store_image_lookup(&img, b->store, from)) < 0) {
			ib_error_prefix("COPY --from=%s", from);
			return rc;
		}
		ib_digest_hex(key_part, ib_image_id(img));
		rc = ib_image_config_dup(&tmp.config, ib_image_config_of(img));
		ib_image_free(img);
		if (rc == 0)
			rc = layers_from_config(&tmp, b->store);
		src = &tmp;
	}
	ib_buf rootfs = IB_BUF_INIT;
	if (rc == 0)
		rc = new_snapshot(&rootfs, snapkey, b, src);
	if (rc == 0) {
		*fd = open(rootfs.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*fd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs.ptr);
	}
	ib_buf_dispose(&rootfs);
	state_dispose(&tmp);
	return rc;
}

static int parse_chown(uid_t *uid, gid_t *gid, const char *rootfs, const char *spec)
{
	char *end = NULL;
	if (!strchr(spec, ':')) {
		unsigned long v = strtoul(spec, &end, 10);
		if (*spec && end && !*end) {
			*uid = (uid_t)v;
			*gid = (gid_t)v;
			return 0;
		}
	}
	ib_user u = IB_USER_INIT;
	int rc = ib_user_resolve(&u, rootfs, spec);
	if (rc == 0) {
		*uid = u.uid;
		*gid = u.gid;
	}
	ib_user_dispose(&u);
	return rc;
}

static int is_archive(int fd)
{
	unsigned char m[512];
	ssize_t n = pread(fd, m, sizeof m, 0);
	if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
		return 1; /* gzip */
	if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		return 1; /* zstd */
	if (n >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h')
		return 1; /* bzip2 */
	if (n >= 6 && m[0] == 0xfd && !memcmp(m + 1, "7zXZ", 4))
		return 1; /* xz */
	if (n >= 263 && !memcmp(m + 257, "ustar", 5))
		return 1; /* tar */
	return 0;
}

/* The text of a heredoc as COPY/ADD write it: `<<-` chomps tabs; unquoted delimiters expand variables. */
static int heredoc_text(ib_buf *out, builder *b, const stage_state *s, const ib_heredoc *h)
{
	ib_buf raw = IB_BUF_INIT;
	int rc = h->chomp ? ib_heredoc_chomp(&raw, h) : ib_buf_put(&raw, h->content, h->content_len);
	if (rc == 0 && h->expand) {
		ib_strlist env = IB_STRLIST_INIT;
		rc = step_env(&env, s);
		if (rc == 0) {
			ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
			eo.env = (const char *const *)env.items;
			eo.escape = b->escape;
			eo.flags = IB_EXPAND_RAW_QUOTES | IB_EXPAND_RAW_ESCAPES;
			rc = ib_expand_word(out, ib_buf_cstr(&raw), &eo);
		}
		ib_strlist_clear(&env);
	} else if (rc == 0) {
		rc = ib_buf_set(out, raw.ptr ? raw.ptr : "", raw.size);
	}
	ib_buf_dispose(&raw);
	return rc;
}

/* Write the heredocs of COPY/ADD as files named after their delimiters in a new temporary directory. */
static int heredoc_dir(int *fd, char **path, builder *b, const stage_state *s, const ib_instr_copy *c,
		       keyer *k, int hash_only)
{
	int rc = 0;
	*fd = -1;
	*path = NULL;
	if (!hash_only) {
		const char *tmpdir = getenv("TMPDIR");
		*path = ib_sprintf("%s/imagebuild-heredoc-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
		if (!*path || !mkdtemp(*path))
			return *path ? ib_error_set_os(IB_LAYER_BUILD, "mkdtemp `%s`", *path) : IB_ERROR;
		*fd = open(*path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*fd < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "open `%s`", *path);
	}
	for (size_t i = 0; rc == 0 && i < c->heredoc_count; i++) {
		const ib_heredoc *h = &c->heredocs[i];
		ib_buf text = IB_BUF_INIT;
		if (!*h->name || strchr(h->name, '/') || !strcmp(h->name, ".") || !strcmp(h->name, ".."))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "heredoc `%s` cannot name a file", h->name);
		if (rc == 0)
			rc = heredoc_text(&text, b, s, h);
		if (rc == 0) {
			key_add(k, h->name);
			ib_sha256_update(k->h, text.ptr ? text.ptr : "", text.size);
		}
		if (rc == 0 && !hash_only) {
			int f = openat(*fd, h->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f < 0)
				rc = ib_error_set_os(IB_LAYER_BUILD, "heredoc `%s`", h->name);
			else {
				rc = ib_write_all(f, text.ptr ? text.ptr : "", text.size);
				fchmod(f, 0644);
				close(f);
			}
		}
		ib_buf_dispose(&text);
	}
	return rc;
}

static int copy_sources(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index,
			const char *rootfs, int rootfd, keyer *k, int hash_only, ib_buf *shown)
{
	const ib_instr_copy *c = &in->u.copy;
	int add = in->kind == IB_INSTR_ADD;
	int srcfd = b->ctxfd, rc = 0, hdfd = -1;
	char *hdpath = NULL;
	char *snapkey = NULL;
	char src_key[IB_DIGEST_HEXLEN + 1] = "";
	ib_buf dest = IB_BUF_INIT, tmp = IB_BUF_INIT;
	ib_strlist matches = IB_STRLIST_INIT;
	ib_walk_filter filter = ignore_filter;
	void *fpayload = b->ignore;
	ib_copy_opts co;
	memset(&co, 0, sizeof co);

	if (c->from) {
		ib_buf from = IB_BUF_INIT;
		rc = expand_one(&from, b, s, c->from);
		if (rc == 0)
			rc = source_root(&srcfd, &snapkey, b, s, from.ptr, stage_index, src_key);
		ib_buf_dispose(&from);
		filter = NULL;
		fpayload = NULL;
		if (rc < 0)
			goto out;
		/* the key follows the content copied (hashed below), not the source
		 * stage's key: a change in that stage that leaves these files as they
		 * were still finds this step in the cache, as BuildKit does */
		key_add(k, "--from");
	}
	/* the destination, relative to WORKDIR */
	if ((rc = expand_one(&tmp, b, s, c->dest)) < 0)
		goto out;
	int dest_slash = tmp.size && tmp.ptr[tmp.size - 1] == '/';
	if (tmp.ptr[0] != '/') {
		const char *wd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
		ib_path_join(&dest, wd && *wd ? wd : "/", tmp.ptr);
	} else {
		ib_buf_set(&dest, tmp.ptr, tmp.size);
	}
	for (size_t i = 0; rc == 0 && i < c->sources.count; i++) {
		ib_buf src = IB_BUF_INIT;
		rc = expand_one(&src, b, s, c->sources.items[i]);
		if (rc == 0 && shown)
			ib_buf_printf(shown, "%s%s", i ? " " : (add ? "ADD " : "COPY "), src.ptr);
		if (rc == 0 && add && (strstr(src.ptr, "://") || !strncmp(src.ptr, "git@", 4)))
			rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
					   "line %d: ADD from a URL (%s) is not supported yet", in->line, src.ptr);
		if (rc == 0)
			rc = ib_build__glob(&matches, srcfd, src.ptr, filter, fpayload);
		ib_buf_dispose(&src);
	}
	if (rc < 0) {
		ib_error_prefix("line %d", in->line);
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < matches.n; i++) {
		key_add(k, matches.items[i]);
		rc = ib_build__hash_source(k->h, srcfd, matches.items[i], filter, fpayload);
	}
	if (rc == 0 && c->heredoc_count) {
		rc = heredoc_dir(&hdfd, &hdpath, b, s, c, k, hash_only);
		if (rc < 0)
			ib_error_prefix("line %d", in->line);
	}
	key_add(k, ib_buf_cstr(&dest));
	if (rc == 0 && shown)
		ib_buf_printf(shown, " %s # buildkit", tmp.ptr);
	if (rc < 0 || hash_only)
		goto out;

	/* where it goes */
	int dst_is_dir = dest_slash;
	if (matches.n + c->heredoc_count > 1 && !dst_is_dir) {
		int dfd = ib_open_in_root(rootfd, dest.ptr, O_RDONLY | O_DIRECTORY, 0);
		if (dfd >= 0) {
			close(dfd);
			dst_is_dir = 1;
		} else {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "line %d: with more than one source file, the destination must be a directory and end with a /",
					   in->line);
			goto out;
		}
	}
	if (!dst_is_dir) {
		int dfd = ib_open_in_root(rootfd, dest.ptr, O_RDONLY | O_DIRECTORY, 0);
		if (dfd >= 0) {
			close(dfd);
			dst_is_dir = 1;
		} else {
			ib_error_clear();
		}
	}
	/* BuildKit: files from the context become 0:0, files from another stage or
	 * image keep their owners; --chown overrides both */
	co.set_owner = c->from ? 0 : 1;
	if (c->chown) {
		ib_buf ch = IB_BUF_INIT;
		rc = expand_one(&ch, b, s, c->chown);
		if (rc == 0)
			rc = parse_chown(&co.uid, &co.gid, rootfs, ch.ptr);
		ib_buf_dispose(&ch);
		if (rc < 0) {
			ib_error_prefix("line %d: --chown", in->line);
			goto out;
		}
		co.set_owner = 1;
	}
	if (c->chmod) {
		char *end = NULL;
		unsigned long m = strtoul(c->chmod, &end, 8);
		if (!*c->chmod || *end || m > 07777) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "line %d: --chmod=%s: expected an octal mode", in->line, c->chmod);
			goto out;
		}
		co.set_mode = 1;
		co.mode = (mode_t)m;
	}
	co.filter = filter;
	co.filter_payload = fpayload;
	for (size_t i = 0; rc == 0 && i < matches.n; i++) {
		int afd = -1;
		if (add && (afd = ib_open_in_root(srcfd, matches.items[i], O_RDONLY, 0)) >= 0) {
			struct stat st;
			if (fstat(afd, &st) == 0 && S_ISREG(st.st_mode) && is_archive(afd)) {
				/* ADD extracts local archives into the destination directory */
				rc = ib_build__mkdir_in_root(rootfd, dest.ptr, co.uid, co.gid, NULL);
				int dfd = rc == 0 ? ib_open_in_root(rootfd, dest.ptr, O_RDONLY | O_DIRECTORY, 0) : -1;
				if (rc == 0 && dfd < 0)
					rc = IB_ERROR;
				if (rc == 0)
					rc = ib_snapshot_apply_tar(dfd, afd, IB_WHITEOUT_DELETE, matches.items[i]);
				if (dfd >= 0)
					close(dfd);
				close(afd);
				continue;
			}
			close(afd);
		}
		ib_error_clear();
		rc = ib_build__copy(srcfd, matches.items[i], rootfd, dest.ptr, dst_is_dir, &co);
	}
	/* heredocs are files too (never extracted, even by ADD) */
	ib_copy_opts hco = co;
	hco.filter = NULL;
	hco.filter_payload = NULL;
	hco.set_owner = 1;
	if (!c->chown)
		hco.uid = 0, hco.gid = 0;
	for (size_t i = 0; rc == 0 && i < c->heredoc_count; i++)
		rc = ib_build__copy(hdfd, c->heredocs[i].name, rootfd, dest.ptr, dst_is_dir, &hco);
	if (rc < 0)
		ib_error_prefix("line %d", in->line);
out:
	if (hdfd >= 0)
		close(hdfd);
	if (hdpath) {
		ib_rm_rf(hdpath);
		free(hdpath);
	}
	if (srcfd >= 0 && srcfd != b->ctxfd)
		close(srcfd);
	if (snapkey) {
		drop_snapshot(b, snapkey);
		free(snapkey);
	}
	ib_strlist_clear(&matches);
	ib_buf_dispose(&dest);
	ib_buf_dispose(&tmp);
	return rc;
}

static int do_copy(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index)
{
	ib_buf rootfs = IB_BUF_INIT, created_by = IB_BUF_INIT;
	char *key = NULL;
	keyer k = {NULL};
	int rootfd = -1;
	int rc = new_snapshot(&rootfs, &key, b, s);
	if (rc == 0) {
		rootfd = open(rootfs.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs.ptr);
	}
	if (rc == 0)
		rc = key_begin(&k, s, in);
	if (rc == 0)
		rc = copy_sources(b, s, in, stage_index, rootfs.ptr, rootfd, &k, 0, &created_by);
	if (k.h)
		ib_sha256_free(k.h);
	if (rootfd >= 0)
		close(rootfd);
	if (rc == 0) {
		rc = commit_snapshot(b, s, key, created_by.ptr, 0);
	}
	if (key)
		drop_snapshot(b, key);
	free(key);
	ib_buf_dispose(&rootfs);
	ib_buf_dispose(&created_by);
	return rc;
}

/* ---- WORKDIR ---- */

static int do_workdir(builder *b, stage_state *s, const ib_instruction *in)
{
	ib_buf v = IB_BUF_INIT, path = IB_BUF_INIT, rootfs = IB_BUF_INIT, created_by = IB_BUF_INIT;
	char *key = NULL;
	int rc = expand_one(&v, b, s, in->u.value);
	if (rc == 0) {
		if (v.ptr[0] == '/') {
			rc = ib_path_clean(&path, v.ptr);
		} else {
			const char *wd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
			ib_buf j = IB_BUF_INIT;
			rc = ib_path_join(&j, wd && *wd ? wd : "/", v.ptr);
			if (rc == 0)
				rc = ib_path_clean(&path, j.ptr);
			ib_buf_dispose(&j);
		}
	}
	if (rc == 0)
		rc = ib_image_config_set(s->config, IB_CONFIG_WORKDIR, path.ptr);
	if (rc == 0)
		rc = new_snapshot(&rootfs, &key, b, s);
	if (rc == 0) {
		int rootfd = open(rootfs.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		uid_t uid = 0;
		gid_t gid = 0;
		const char *user = ib_image_config_get(s->config, IB_CONFIG_USER);
		if (rootfd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs.ptr);
		if (rc == 0 && user && *user)
			rc = parse_chown(&uid, &gid, rootfs.ptr, user);
		if (rc == 0)
			rc = ib_build__mkdir_in_root(rootfd, path.ptr, uid, gid, NULL);
		if (rootfd >= 0)
			close(rootfd);
	}
	if (rc == 0) {
		/* BuildKit makes a layer for every WORKDIR but "/", even when the
		 * directory was there already */
		ib_buf_printf(&created_by, "WORKDIR %s", path.ptr);
		rc = commit_snapshot(b, s, key, created_by.ptr, strcmp(path.ptr, "/") != 0);
	}
	if (key)
		drop_snapshot(b, key);
	free(key);
	ib_buf_dispose(&v);
	ib_buf_dispose(&path);
	ib_buf_dispose(&rootfs);
	ib_buf_dispose(&created_by);
	return rc;
}

/* ---- history text as BuildKit writes it (Go's %q and %v) ---- */

static void go_quote(ib_buf *out, const char *str)
{
	ib_buf_putc(out, '"');
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		switch (*p) {
		case '"': ib_buf_puts(out, "\\\""); break;
		case '\\': ib_buf_puts(out, "\\\\"); break;
		case '\n': ib_buf_puts(out, "\\n"); break;
		case '\t': ib_buf_puts(out, "\\t"); break;
		case '\r': ib_buf_puts(out, "\\r"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				ib_buf_printf(out, "\\x%02x", *p);
			else
				ib_buf_putc(out, (char)*p);
		}
	}
	ib_buf_putc(out, '"');
}

/* ["a" "b"]: a Go string slice printed with %q */
static void go_quote_list(ib_buf *out, const char *const *items, size_t n)
{
	ib_buf_putc(out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			ib_buf_putc(out, ' ');
		go_quote(out, items[i]);
	}
	ib_buf_putc(out, ']');
}

/* Go's time.Duration.String(): "0s", "300ms", "1.5s", "1m0s", "1h0m0s" */
static void go_duration(ib_buf *out, int64_t ns)
{
	if (ns == 0) {
		ib_buf_puts(out, "0s");
		return;
	}
	if (ns < 0) {
		ib_buf_putc(out, '-');
		ns = -ns;
	}
	char frac[16];
	if (ns < 1000000000LL) {
		const char *unit = ns < 1000 ? "ns" : ns < 1000000 ? "\xc2\xb5s" : "ms";
		int64_t div = ns < 1000 ? 1 : ns < 1000000 ? 1000 : 1000000;
		int digits = ns < 1000 ? 0 : ns < 1000000 ? 3 : 6;
		ib_buf_printf(out, "%lld", (long long)(ns / div));
		if (digits && ns % div) {
			snprintf(frac, sizeof frac, "%0*lld", digits, (long long)(ns % div));
			for (int k = digits - 1; k > 0 && frac[k] == '0'; k--)
				frac[k] = '\0';
			ib_buf_printf(out, ".%s", frac);
		}
		ib_buf_puts(out, unit);
		return;
	}
	int64_t h = ns / 3600000000000LL, m = ns / 60000000000LL % 60, sec = ns / 1000000000LL % 60;
	int64_t rest = ns % 1000000000LL;
	if (h)
		ib_buf_printf(out, "%lldh", (long long)h);
	if (h || m)
		ib_buf_printf(out, "%lldm", (long long)m);
	ib_buf_printf(out, "%lld", (long long)sec);
	if (rest) {
		snprintf(frac, sizeof frac, "%09lld", (long long)rest);
		for (int k = 8; k > 0 && frac[k] == '0'; k--)
			frac[k] = '\0';
		ib_buf_printf(out, ".%s", frac);
	}
	ib_buf_putc(out, 's');
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- instructions that change only the config ---- */

/* CMD/ENTRYPOINT/SHELL argv: exec form as is; shell form through SHELL. */
static int command_list(ib_strlist *out, const stage_state *s, const ib_instr_cmd *c)
{
	if (c->json) {
		for (size_t i = 0; i < c->args.count; i++)
			if (ib_strlist_add(out, c->args.items[i]) < 0)
				return IB_ERROR;
		return 0;
	}
	size_t n = ib_image_config_list_count(s->config, IB_CONFIG_SHELL);
	if (n == 0) {
		ib_strlist_add(out, "/bin/sh");
		ib_strlist_add(out, "-c");
	}
	for (size_t i = 0; i < n; i++)
		ib_strlist_add(out, ib_image_config_list_get(s->config, IB_CONFIG_SHELL, i));
	return ib_strlist_add(out, c->args.count ? c->args.items[0] : "");
}

static int do_meta(builder *b, stage_state *s, const ib_instruction *in)
{
	ib_buf v = IB_BUF_INIT, hist = IB_BUF_INIT;
	ib_strlist l = IB_STRLIST_INIT;
	ib_strarray words = IB_STRARRAY_INIT;
	int rc = 0, no_history = 0;
	switch (in->kind) {
	case IB_INSTR_ENV:
	case IB_INSTR_LABEL:
		ib_buf_puts(&hist, in->kind == IB_INSTR_ENV ? "ENV" : "LABEL");
		for (size_t i = 0; rc == 0 && i < in->u.kv.count; i++) {
			const ib_instr_kv *kv = &in->u.kv.items[i];
			ib_buf key = IB_BUF_INIT;
			rc = expand_one(&key, b, s, kv->key);
			if (rc == 0)
				rc = expand_one(&v, b, s, kv->value);
			if (rc == 0 && in->kind == IB_INSTR_ENV)
				rc = ib_image_config_env_set(s->config, key.ptr, v.ptr);
			else if (rc == 0)
				rc = ib_image_config_label_set(s->config, key.ptr, v.ptr);
			ib_buf_printf(&hist, " %s=%s", ib_buf_cstr(&key), ib_buf_cstr(&v));
			ib_buf_dispose(&key);
		}
		break;
	case IB_INSTR_MAINTAINER:
		rc = expand_one(&v, b, s, in->u.value);
		if (rc == 0)
			rc = ib_image_config_set(s->config, IB_CONFIG_AUTHOR, v.ptr);
		ib_buf_printf(&hist, "MAINTAINER %s", ib_buf_cstr(&v));
		break;
	case IB_INSTR_USER:
		rc = expand_one(&v, b, s, in->u.value);
		if (rc == 0)
			rc = ib_image_config_set(s->config, IB_CONFIG_USER, v.ptr);
		ib_buf_printf(&hist, "USER %s", ib_buf_cstr(&v));
		break;
	case IB_INSTR_STOPSIGNAL:
		rc = expand_one(&v, b, s, in->u.value);
		if (rc == 0)
			rc = ib_image_config_set(s->config, IB_CONFIG_STOPSIGNAL, v.ptr);
		ib_buf_printf(&hist, "STOPSIGNAL %s", ib_buf_cstr(&v));
		break;
	case IB_INSTR_EXPOSE: {
		/* history as BuildKit prints the Go map: sorted keys */
		ib_strlist ports = IB_STRLIST_INIT;
		for (size_t i = 0; rc == 0 && i < in->u.list.count; i++) {
			rc = expand_list(&words, b, s, in->u.list.items[i]);
			for (size_t w = 0; rc == 0 && w < words.count; w++) {
				char *port = strchr(words.strings[w], '/') ? ib_strdup(words.strings[w])
									   : ib_sprintf("%s/tcp", words.strings[w]);
				rc = port ? ib_image_config_list_add(s->config, IB_CONFIG_EXPOSED_PORTS, port) : IB_ERROR;
				if (rc == 0 && !ib_strlist_contains(&ports, port))
					rc = ib_strlist_add(&ports, port);
				free(port);
			}
		}
		if (ports.n > 1)
			qsort(ports.items, ports.n, sizeof *ports.items, cmp_str);
		ib_buf_puts(&hist, "EXPOSE map[");
		for (size_t i = 0; i < ports.n; i++)
			ib_buf_printf(&hist, "%s%s:{}", i ? " " : "", ports.items[i]);
		ib_buf_putc(&hist, ']');
		ib_strlist_clear(&ports);
		break;
	}
	case IB_INSTR_VOLUME:
		ib_buf_puts(&hist, "VOLUME [");
		for (size_t i = 0; rc == 0 && i < in->u.list.count; i++) {
			rc = expand_one(&v, b, s, in->u.list.items[i]);
			if (rc == 0 && v.size == 0)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "line %d: VOLUME specified can not be an empty string", in->line);
			if (rc == 0)
				rc = ib_image_config_list_add(s->config, IB_CONFIG_VOLUMES, v.ptr);
			ib_buf_printf(&hist, "%s%s", i ? " " : "", ib_buf_cstr(&v));
		}
		ib_buf_putc(&hist, ']');
		break;
	case IB_INSTR_CMD:
	case IB_INSTR_ENTRYPOINT:
	case IB_INSTR_SHELL: {
		ib_config_list which = in->kind == IB_INSTR_CMD ? IB_CONFIG_CMD
				       : in->kind == IB_INSTR_ENTRYPOINT ? IB_CONFIG_ENTRYPOINT
									  : IB_CONFIG_SHELL;
		if (in->kind == IB_INSTR_SHELL && !in->u.cmd.json) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "line %d: SHELL requires the JSON form", in->line);
			break;
		}
		rc = command_list(&l, s, &in->u.cmd);
		if (rc == 0)
			rc = ib_image_config_list_set(s->config, which, (const char *const *)l.items, l.n);
		/* BuildKit (Docker 20.10) marks every CMD as ArgsEscaped */
		if (rc == 0 && in->kind == IB_INSTR_CMD)
			rc = ib_image_config_set_args_escaped(s->config, 1);
		/* a new ENTRYPOINT drops a CMD inherited from the base (not one set in this stage) */
		if (rc == 0 && in->kind == IB_INSTR_ENTRYPOINT && !s->cmd_set)
			rc = ib_image_config_list_set(s->config, IB_CONFIG_CMD, NULL, 0);
		ib_buf_printf(&hist, "%s ", ib_instruction_kind_name(in->kind));
		if (in->kind == IB_INSTR_SHELL) {
			/* Go's %v of a slice: [/bin/sh -c] */
			ib_buf_putc(&hist, '[');
			for (size_t j = 0; j < l.n; j++)
				ib_buf_printf(&hist, "%s%s", j ? " " : "", l.items[j]);
			ib_buf_putc(&hist, ']');
		} else {
			go_quote_list(&hist, (const char *const *)l.items, l.n);
		}
		break;
	}
	case IB_INSTR_HEALTHCHECK: {
		const ib_instr_healthcheck *h = &in->u.healthcheck;
		ib_healthcheck t = IB_HEALTHCHECK_INIT;
		if (h->none) {
			const char *none[] = {"NONE"};
			rc = ib_image_config_set_healthcheck(s->config, none, 1, &t);
		} else {
			t.interval = h->interval;
			t.timeout = h->timeout;
			t.start_period = h->start_period;
			t.start_interval = h->start_interval;
			t.retries = h->retries;
			rc = ib_image_config_set_healthcheck(s->config, h->test.items, h->test.count, &t);
		}
		/* BuildKit prints the Go struct: &{["CMD" "x"] "5s" "3s" "0s" '\x03'} */
		ib_healthcheck shown = IB_HEALTHCHECK_INIT;
		ib_image_config_healthcheck(&shown, s->config);
		ib_buf_puts(&hist, "HEALTHCHECK &{");
		ib_strlist test = IB_STRLIST_INIT;
		size_t nt = ib_image_config_list_count(s->config, IB_CONFIG_HEALTHCHECK_TEST);
		for (size_t j = 0; j < nt; j++)
			ib_strlist_add(&test, ib_image_config_list_get(s->config, IB_CONFIG_HEALTHCHECK_TEST, j));
		go_quote_list(&hist, (const char *const *)test.items, test.n);
		ib_strlist_clear(&test);
		int64_t times[3] = {shown.interval, shown.timeout, shown.start_period};
		for (size_t j = 0; j < 3; j++) {
			ib_buf_puts(&hist, " \"");
			go_duration(&hist, times[j]);
			ib_buf_putc(&hist, '"');
		}
		if (shown.retries >= 32 && shown.retries < 127)
			ib_buf_printf(&hist, " '%c'}", shown.retries);
		else
			ib_buf_printf(&hist, " '\\x%02x'}", shown.retries & 0xff);
		break;
	}
	case IB_INSTR_ONBUILD:
		/* kept in the config; BuildKit adds no history entry for it */
		rc = ib_image_config_list_add(s->config, IB_CONFIG_ONBUILD, in->u.onbuild.trigger);
		no_history = 1;
		break;
	default:
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD, "line %d: %s is not supported",
				   in->line, ib_instruction_kind_name(in->kind));
	}
	if (rc == 0 && !b->no_history && !no_history)
		rc = add_history(s, ib_buf_cstr(&hist), 1);
	if (rc < 0 && ib_error_current() != IB_EUNSUPPORTED)
		ib_error_prefix("line %d", in->line);
	ib_buf_dispose(&v);
	ib_buf_dispose(&hist);
	ib_strlist_clear(&l);
	ib_strarray_dispose(&words);
	return rc;
}

int ib_build__apply_change(ib_image_config *config, const ib_instruction *in)
{
	static const ib_build_options defaults = IB_BUILD_OPTIONS_INIT;
	builder b;
	stage_state st;
	memset(&b, 0, sizeof b);
	memset(&st, 0, sizeof st);
	b.o = &defaults;
	b.escape = '\\';
	b.no_history = 1;
	st.config = config;
	switch (in->kind) {
	case IB_INSTR_CMD: case IB_INSTR_ENTRYPOINT: case IB_INSTR_ENV: case IB_INSTR_EXPOSE:
	case IB_INSTR_LABEL: case IB_INSTR_USER: case IB_INSTR_VOLUME: case IB_INSTR_STOPSIGNAL:
	case IB_INSTR_ONBUILD: case IB_INSTR_SHELL: case IB_INSTR_HEALTHCHECK: case IB_INSTR_MAINTAINER:
		return do_meta(&b, &st, in);
	case IB_INSTR_WORKDIR: {
		ib_buf v = IB_BUF_INIT, path = IB_BUF_INIT;
		int rc = expand_one(&v, &b, &st, in->u.value);
		if (rc == 0 && v.ptr[0] != '/') {
			const char *wd = ib_image_config_get(config, IB_CONFIG_WORKDIR);
			rc = ib_path_join(&path, wd && *wd ? wd : "/", v.ptr);
		} else if (rc == 0) {
			rc = ib_buf_set(&path, v.ptr, v.size);
		}
		if (rc == 0)
			rc = ib_path_clean(&v, path.ptr);
		if (rc == 0)
			rc = ib_image_config_set(config, IB_CONFIG_WORKDIR, v.ptr);
		ib_buf_dispose(&v);
		ib_buf_dispose(&path);
		return rc;
	}
	default:
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				     "%s cannot be applied as a change (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
				     "ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL can)",
				     ib_instruction_kind_name(in->kind));
	}
}

/* ARG: scope only (not in the image); Docker adds no history entry. */
static int do_arg(builder *b, stage_state *s, const ib_instruction *in)
{
	ib_buf hist = IB_BUF_INIT;
	for (size_t i = 0; i < in->u.arg.count; i++) {
		const ib_instr_arg *a = &in->u.arg.items[i];
		ib_buf def = IB_BUF_INIT;
		const char *value = NULL;
		int rc = 0;
		if (a->has_default)
			rc = expand_one(&def, b, s, a->default_value);
		if (rc == 0 && ib_plan_arg_value(&value, b->plan, a->name, a->has_default ? def.ptr : NULL) == 0)
			rc = set_arg(s, a->name, value);
		if (rc == 0 && !ib_strlist_contains(&s->arg_names, a->name))
			rc = ib_strlist_add(&s->arg_names, a->name);
		/* history: the declaration, with its default (not the build argument) */
		if (rc == 0) {
			if (i == 0)
				ib_buf_puts(&hist, "ARG");
			if (a->has_default)
				ib_buf_printf(&hist, " %s=%s", a->name, def.ptr);
			else
				ib_buf_printf(&hist, " %s", a->name);
		}
		ib_buf_dispose(&def);
		if (rc < 0) {
			ib_buf_dispose(&hist);
			ib_error_prefix("line %d: ARG %s", in->line, a->name);
			return rc;
		}
	}
	free(s->arg_history);
	s->arg_history = ib_buf_detach(&hist);
	return s->arg_history ? 0 : IB_ERROR;
}

/* BuildKit records each ARG of a stage as an empty-layer history entry. */
static int arg_history(stage_state *s)
{
	return add_history(s, s->arg_history ? s->arg_history : "ARG", 1);
}

/* ---- the step loop ---- */

static int run_step(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index,
		    const char *label)
{
	int rc;
	/* ARGs change the scope whether the step is cached or not */
	if (in->kind == IB_INSTR_ARG && (rc = do_arg(b, s, in)) < 0)
		return rc;
	if (in->kind == IB_INSTR_CMD)
		s->cmd_set = 1;
	/* the step's cache key */
	keyer k = {NULL};
	char key[IB_DIGEST_HEXLEN + 1];
	if ((rc = key_begin(&k, s, in)) < 0)
		return rc;
	if (in->kind == IB_INSTR_COPY || in->kind == IB_INSTR_ADD) {
		rc = copy_sources(b, s, in, stage_index, NULL, -1, &k, 1, NULL);
	} else if (in->kind == IB_INSTR_RUN && in->u.run.mount_count) {
		run_mounts none;
		memset(&none, 0, sizeof none);
		rc = prepare_mounts(&none, b, s, in, stage_index, &k);
		release_mounts(b, &none);
	}
	if (rc < 0) {
		ib_sha256_free(k.h);
		return rc;
	}
	if ((rc = key_end(&k, key)) < 0)
		return rc;

	if (!b->o->no_cache) {
		ib_digest config;
		if (ib_store_cache_get(NULL, NULL, &config, b->store, key) == 0 &&
		    restore_config(s, b->store, &config) == 0) {
			memcpy(s->key, key, sizeof key);
			return report(b, IB_PROGRESS_STEP_DONE, label, in->original, 0, 0, 1);
		}
		ib_error_clear();
	}
	if ((rc = report(b, IB_PROGRESS_STEP, label, in->original, 0, 0, 0)) < 0)
		return rc;
	b->step_label = label;
	switch (in->kind) {
	case IB_INSTR_RUN:
		rc = do_run(b, s, in, stage_index);
		break;
	case IB_INSTR_COPY:
	case IB_INSTR_ADD:
		rc = do_copy(b, s, in, stage_index);
		break;
	case IB_INSTR_WORKDIR:
		rc = do_workdir(b, s, in);
		break;
	case IB_INSTR_ARG:
		rc = arg_history(s);
		break;
	default:
		rc = do_meta(b, s, in);
	}
	if (rc < 0)
		return rc;
	/* record the step: the config after it, and its layer */
	ib_digest config;
	size_t n = s->nlayers;
	if ((rc = save_config(&config, b, s)) < 0)
		return rc;
	rc = ib_store_cache_put(b->store, key, n ? &s->layers[n - 1].diff_id : NULL, &config);
	if (rc < 0)
		return rc;
	memcpy(s->key, key, sizeof key);
	return report(b, IB_PROGRESS_STEP_DONE, label, in->original, 0, 0, 0);
}

static int build_stage(builder *b, const ib_plan_stage *ps, size_t nth, size_t nstages)
{
	stage_state *s = &b->stages[ps->index];
	int rc = init_stage(b, ps, s);
	if (rc < 0)
		return rc;
	/* ONBUILD triggers of the base run first, then leave the config */
	size_t ntrig = ib_image_config_list_count(s->config, IB_CONFIG_ONBUILD);
	ib_strlist triggers = IB_STRLIST_INIT;
	for (size_t i = 0; rc == 0 && i < ntrig; i++)
		rc = ib_strlist_add(&triggers, ib_image_config_list_get(s->config, IB_CONFIG_ONBUILD, i));
	if (rc == 0 && ntrig)
		rc = ib_image_config_list_set(s->config, IB_CONFIG_ONBUILD, NULL, 0);
	size_t total = triggers.n + ps->stage->instruction_count;
	char label[128];
	for (size_t i = 0; rc == 0 && i < triggers.n; i++) {
		ib_instruction *in = NULL;
		rc = ib_instruction_parse_single(&in, triggers.items[i], NULL);
		if (rc == 0) {
			snprintf(label, sizeof label, "[%s%s%zu/%zu]", ps->name ? ps->name : "", ps->name ? " " : "",
				 i + 1, total);
			rc = run_step(b, s, in, ps->index, label);
			if (rc < 0)
				ib_error_prefix("%s ONBUILD %s", label, triggers.items[i]);
		}
		ib_instruction_free(in);
	}
	ib_strlist_clear(&triggers);
	(void)nth;
	(void)nstages;
	for (size_t i = 0; rc == 0 && i < ps->stage->instruction_count; i++) {
		const ib_instruction *in = ps->stage->instructions[i];
		snprintf(label, sizeof label, "[%s%s%zu/%zu]", ps->name ? ps->name : "", ps->name ? " " : "",
			 ntrig + i + 1, total);
		rc = run_step(b, s, in, ps->index, label);
		if (rc < 0)
			ib_error_prefix("%s %s", label, in->original);
	}
	s->built = rc == 0;
	return rc;
}

/* ---- set up ---- */

static int read_dockerfile(ib_buf *out, const ib_build_options *o, ib_buf *path)
{
	if (o->dockerfile_content)
		return ib_buf_set(out, o->dockerfile_content, o->dockerfile_len);
	if (o->dockerfile)
		ib_buf_puts(path, o->dockerfile);
	else
		ib_path_join(path, o->context, "Dockerfile");
	int rc = ib_read_file(out, path->ptr);
	if (rc < 0)
		ib_error_prefix("read the Dockerfile");
	return rc;
}

static int load_ignore(builder *b, const char *dockerfile_path)
{
	ib_strarray cands = IB_STRARRAY_INIT;
	int rc = ib_ignore_candidates(&cands, b->o->dockerfile_content ? NULL : dockerfile_path);
	for (size_t i = 0; rc == 0 && i < cands.count; i++) {
		ib_buf content = IB_BUF_INIT, path = IB_BUF_INIT;
		/* ".dockerignore" is at the root of the context */
		if (strcmp(cands.strings[i], ".dockerignore") == 0)
			ib_path_join(&path, b->o->context, ".dockerignore");
		else
			ib_buf_puts(&path, cands.strings[i]);
		int found = ib_read_file(&content, ib_buf_cstr(&path)) == 0;
		ib_buf_dispose(&path);
		if (!found) {
			ib_buf_dispose(&content);
			ib_error_clear();
			continue;
		}
		rc = ib_ignore_parse(&b->ignore, ib_buf_cstr(&content), content.size, cands.strings[i]);
		ib_buf_dispose(&content);
		break;
	}
	ib_strarray_dispose(&cands);
	return rc;
}

static int prepare(builder *b, ib_store *store, const ib_build_options *o)
{
	ib_buf content = IB_BUF_INIT, path = IB_BUF_INIT;
	b->store = store;
	b->o = o;
	b->ctxfd = -1;
	if (!o || o->version != IB_BUILD_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "ib_build_options missing or of an unknown version");
	if (!o->context)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "no build context given");
	int rc = read_dockerfile(&content, o, &path);
	ib_parse_options po = IB_PARSE_OPTIONS_INIT;
	po.filename = path.size ? path.ptr : "Dockerfile";
	if (rc == 0)
		rc = ib_dockerfile_parse(&b->df, ib_buf_cstr(&content), content.size, &po);
	if (rc == 0)
		rc = ib_instructions_parse(&b->ins, b->df);
	if (rc == 0) {
		ib_plan_options pl = IB_PLAN_OPTIONS_INIT;
		pl.target = o->target;
		pl.build_args = o->build_args;
		pl.platform = o->platform;
		rc = ib_plan_new(&b->plan, b->df, b->ins, &pl);
		if (rc < 0)
			ib_error_prefix("%s", po.filename);
	}
	if (rc == 0) {
		b->escape = ib_dockerfile_escape(b->df);
		b->ctxfd = open(o->context, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (b->ctxfd < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "open the build context `%s`", o->context);
	}
	if (rc == 0)
		rc = load_ignore(b, path.size ? path.ptr : NULL);
	ib_buf_dispose(&content);
	ib_buf_dispose(&path);
	return rc;
}

static void cleanup(builder *b)
{
	ib_error_saved saved;
	ib_error_save(&saved);
	while (b->snapshots.n) {
		char *k = ib_strdup(b->snapshots.items[0]);
		drop_snapshot(b, k);
		free(k);
	}
	ib_strlist_clear(&b->snapshots);
	for (size_t i = 0; b->stages && i < b->nstages; i++)
		state_dispose(&b->stages[i]);
	free(b->stages);
	tail_clear(b);
	ib_snapshotter_free(b->snap);
	ib_plan_free(b->plan);
	ib_instructions_free(b->ins);
	ib_dockerfile_free(b->df);
	ib_ignore_free(b->ignore);
	if (b->ctxfd >= 0)
		close(b->ctxfd);
	ib_error_restore(&saved);
}

int ib_build_options_init(ib_build_options *opts, unsigned int version)
{
	if (version != IB_BUILD_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_build_options version %u", version);
	ib_build_options d = IB_BUILD_OPTIONS_INIT;
	*opts = d;
	return 0;
}

int ib_build_plan_print(ib_buf *out, const ib_build_options *opts)
{
	builder b;
	memset(&b, 0, sizeof b);
	int rc = prepare(&b, NULL, opts);
	if (rc == 0)
		rc = ib_plan_print(out, b.plan);
	cleanup(&b);
	return rc;
}

int ib_build(ib_digest *image_id, ib_store *store, const ib_build_options *opts)
{
	builder b;
	memset(&b, 0, sizeof b);
	int rc = prepare(&b, store, opts);
	int leased = 0;
	if (rc == 0) {
		ib_strarray unused = IB_STRARRAY_INIT;
		if (ib_plan_unused_build_args(&unused, b.plan) == 0 && unused.count) {
			ib_buf l = IB_BUF_INIT;
			for (size_t i = 0; i < unused.count; i++)
				ib_buf_printf(&l, "%s%s", i ? " " : "", unused.strings[i]);
			log_line(&b, IB_LOG_WARNING, "one or more build arguments [%s] were not consumed", ib_buf_cstr(&l));
			ib_buf_dispose(&l);
		}
		ib_strarray_dispose(&unused);
		rc = ib_snapshotter_open(&b.snap, store, opts->snapshotter, NULL);
	}
	if (rc == 0 && (rc = ib_store_lease_acquire(store)) == 0)
		leased = 1;
	if (rc == 0) {
		b.nstages = ib_instructions_stage_count(b.ins);
		b.stages = ib_calloc(b.nstages, sizeof *b.stages);
		if (!b.stages)
			rc = IB_ERROR;
	}
	size_t n = rc == 0 ? ib_plan_stage_count(b.plan) : 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = build_stage(&b, ib_plan_stage_at(b.plan, i), i, n);
	if (rc == 0) {
		const ib_plan_stage *t = ib_plan_target(b.plan);
		stage_state *s = &b.stages[t->index];
		ib_digest id, manifest;
		/* the image is as old as its last step, so a cached rebuild is the same image */
		size_t nh = ib_image_config_history_count(s->config);
		ib_history_entry last;
		if (nh && ib_image_config_history_get(&last, s->config, nh - 1) == 0 && last.created)
			rc = ib_image_config_set(s->config, IB_CONFIG_CREATED, last.created);
		if (rc == 0)
			rc = ib_store_image_commit(&id, &manifest, store, s->config, s->layers, s->nlayers, NULL);
		for (const char *const *t2 = opts->tags; rc == 0 && t2 && *t2; t2++)
			rc = ib_store_tag_manifest(store, *t2, &manifest);
		if (rc == 0 && image_id)
			*image_id = id;
	}
	if (leased)
		ib_store_lease_release(store);
	cleanup(&b);
	return rc;
}

/* ---- prune: blobs and snapshots together ---- */

static int add_image_layers(ib_digest **layers, size_t *n, size_t *cap, ib_store *store, const ib_digest *id)
{
	char hex[IB_DIGEST_STRLEN];
	ib_image *img = NULL;
	ib_digest_fmt(hex, id);
	int rc = ib_store_image_lookup(&img, store, hex);
	if (rc < 0)
		return rc;
	const ib_image_config *cfg = ib_image_config_of(img);
	size_t k = ib_image_config_diff_id_count(cfg);
	for (size_t i = 0; rc == 0 && i < k; i++) {
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			ib_digest *p = ib_realloc(*layers, nc * sizeof *p);
			if (!p) {
				rc = IB_ERROR;
				break;
			}
			*layers = p;
			*cap = nc;
		}
		rc = ib_image_config_diff_id(&(*layers)[(*n)++], cfg, i);
	}
	ib_image_free(img);
	return rc;
}

int ib_prune(size_t *freed_blobs, size_t *freed_snapshots, ib_store *store)
{
	ib_store_gc_stats stats;
	memset(&stats, 0, sizeof stats);
	int rc = ib_store_gc(&stats, store, NULL);
	if (rc < 0)
		return rc;
	if (freed_blobs)
		*freed_blobs = (size_t)stats.blobs_removed;
	/* what stays unpacked: the layers of every image and of every container's image */
	ib_digest *layers = NULL;
	size_t n = 0, cap = 0, total = 0;
	ib_image_list *list = NULL;
	ib_container_record **recs = NULL;
	size_t nrecs = 0;
	ib_strlist keys = IB_STRLIST_INIT;
	rc = ib_store_images(&list, store);
	for (size_t i = 0; rc == 0 && i < ib_image_list_count(list); i++)
		rc = add_image_layers(&layers, &n, &cap, store, &ib_image_list_get(list, i)->id);
	if (rc == 0)
		rc = ib_store_container_list(&recs, &nrecs, store);
	for (size_t i = 0; rc == 0 && i < nrecs; i++) {
		rc = ib_strlist_add(&keys, recs[i]->id);
		if (rc == 0)
			rc = add_image_layers(&layers, &n, &cap, store, &recs[i]->image_id);
	}
	static const char *const backends[] = {"overlay", "copy"};
	for (size_t i = 0; rc == 0 && i < 2; i++) {
		ib_snapshotter *snap = NULL;
		size_t freed = 0;
		if (ib_snapshotter_open(&snap, store, backends[i], NULL) < 0) {
			ib_error_clear(); /* not usable on this host: nothing of it to prune */
			continue;
		}
		rc = ib_snapshotter_prune(&freed, snap, layers, n, (const char *const *)keys.items, keys.n);
		total += freed;
		ib_snapshotter_free(snap);
	}
	if (freed_snapshots)
		*freed_snapshots = total;
	free(layers);
	ib_image_list_free(list);
	ib_container_record_list_free(recs, nrecs);
	ib_strlist_clear(&keys);
	return rc;
}
