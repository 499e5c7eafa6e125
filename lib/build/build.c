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
#include "build/internal.h"
#include "build/cache.h"
#include "build/copy.h"
#include "build/step_inputs.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/path.h"
#include "util/strlist.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- reporting ---- */

int ib_build__report(builder *b, ib_progress_kind kind, const char *id, const char *text, uint64_t cur,
		  uint64_t total, int cached)
{
	return ib_callback_progress(b->o->callbacks, kind, id, text, cur, total, cached, "the build");
}

void ib_build__log_line(builder *b, ib_log_level lvl, const char *fmt, ...) IB_PRINTF(3, 4);
void ib_build__log_line(builder *b, ib_log_level lvl, const char *fmt, ...)
{
	const ib_callbacks *cb = b->o->callbacks;
	if (!cb || !cb->log)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	cb->log(lvl, line, cb->payload);
}

/* RUN output: forwarded as progress, the last lines kept for an error. */
void ib_build__run_output(ib_log_level lvl, const char *line, void *payload)
{
	builder *b = payload;
	(void)lvl;
	free(b->tail[b->tail_next]);
	b->tail[b->tail_next] = strdup(line);
	b->tail_next = (b->tail_next + 1) % IB_BUILD_TAIL_LINES;
	const ib_callbacks *cb = b->o->callbacks;
	if (cb && cb->progress && !b->cancel) {
		ib_progress p = {IB_PROGRESS_VERSION, IB_PROGRESS_OUTPUT, b->step_label, line, 0, 0, 0};
		int rc = cb->progress(&p, cb->payload);
		if (rc) {
			b->cancel_value = rc;
			b->cancel = 1; /* the running process is killed */
		}
	}
}

void ib_build__tail_clear(builder *b)
{
	for (size_t i = 0; i < IB_BUILD_TAIL_LINES; i++) {
		free(b->tail[i]);
		b->tail[i] = NULL;
	}
	b->tail_next = 0;
}

int ib_build__refuse(builder *b, const ib_instruction *in, int code, const char *fmt, ...)
{
	char reason[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	return ib_error_setc(code, IB_LAYER_BUILD, "%s:%d: %s", b->filename ? b->filename : "Dockerfile",
			     in->line, reason);
}

/*
 * What BuildKit refuses of a step before running (or finding) it: the
 * entitlements a RUN needs and the build did not grant (solver/llbsolver/
 * vertex.go ValidateEntitlements, util/entitlements Set.Check: "%s is not
 * allowed"), checked for cached steps too.
 */
static int check_step(builder *b, const ib_instruction *in)
{
	if (in->kind != IB_INSTR_RUN)
		return 0;
	const char *sec = in->u.run.security, *net = in->u.run.network;
	if (net && !strcmp(net, "host") && !b->allow_network_host)
		return ib_build__refuse(b, in, IB_EINVALID,
					"RUN --network=host: network.host is not allowed (grant BuildKit's "
					"entitlement: imagebuild build --allow network.host, "
					"ib_build_options.allow)");
	if (sec && !strcmp(sec, "insecure") && !b->allow_insecure)
		return ib_build__refuse(b, in, IB_EINVALID,
					"RUN --security=insecure: security.insecure is not allowed (grant "
					"BuildKit's entitlement: imagebuild build --allow security.insecure, "
					"ib_build_options.allow)");
	return 0;
}

/* The entitlements granted (util/entitlements Parse: an unknown name is an error). */
static int parse_allow(builder *b)
{
	for (size_t i = 0; b->o->allow && b->o->allow[i]; i++) {
		const char *e = b->o->allow[i];
		if (!strcmp(e, "security.insecure"))
			b->allow_insecure = 1;
		else if (!strcmp(e, "network.host"))
			b->allow_network_host = 1;
		else if (!strcmp(e, "device") || !strncmp(e, "device=", 7))
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
					     "entitlement `%s` is not supported: RUN --device is not "
					     "implemented", e);
		else
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					     "unknown entitlement `%s` (security.insecure or network.host)", e);
	}
	return 0;
}

/*
 * Every step of the stages the build runs, before anything runs: BuildKit
 * validates the whole definition when it loads it. (ONBUILD triggers are
 * only known once their base is; run_step checks every step again.)
 */
static int check_plan(builder *b)
{
	size_t n = ib_plan_stage_count(b->plan);
	for (size_t i = 0; i < n; i++) {
		const ib_plan_stage *ps = ib_plan_stage_at(b->plan, i);
		for (size_t k = 0; k < ps->stage->instruction_count; k++) {
			int rc = check_step(b, ps->stage->instructions[k]);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* ---- the environment a step sees ---- */

/*
 * The image's Env, then the ARGs, which win: BuildKit keeps one step
 * environment where an ARG adds its value (so `ENV X=e` then `ARG X=a`
 * runs with X=a, while the config keeps X=e) and an ENV sets it again (an
 * ENV after an ARG of the same name also updates s->args, see
 * ib_build__env_over_args).
 */
int ib_build__step_env(ib_strlist *out, const stage_state *s)
{
	size_t n = ib_image_config_list_count(s->config, IB_CONFIG_ENV);
	for (size_t i = 0; i < n; i++)
		if (ib_strlist_add(out, ib_image_config_list_get(s->config, IB_CONFIG_ENV, i)) < 0)
			return IB_ERROR;
	for (size_t i = 0; i < s->args.n; i++)
		if (ib_strlist_add(out, s->args.items[i]) < 0)
			return IB_ERROR;
	return 0;
}

/* ENV name=value after an ARG of that name: the step environment now has the ENV's value. */
int ib_build__env_over_args(stage_state *s, const char *name, const char *value)
{
	return ib_build__arg_get(s, name) ? ib_build__set_arg(s, name, value) : 0;
}

/* Expand `word` with the step's environment: into one string, or split into words. */
static int expand(ib_buf *one, ib_strarray *list, builder *b, const stage_state *s, const char *word)
{
	ib_strlist env = IB_STRLIST_INIT;
	int rc = ib_build__step_env(&env, s);
	if (rc == 0) {
		ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
		eo.env = (const char *const *)env.items;
		eo.escape = b->escape;
		rc = one ? ib_expand_word(one, word, &eo) : ib_expand_words(list, word, &eo);
	}
	ib_strlist_clear(&env);
	return rc;
}

int ib_build__expand_one(ib_buf *out, builder *b, const stage_state *s, const char *word)
{
	return expand(out, NULL, b, s, word);
}

int ib_build__expand_list(ib_strarray *out, builder *b, const stage_state *s, const char *word)
{
	return expand(NULL, out, b, s, word);
}

const char *ib_build__arg_get(const stage_state *s, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < s->args.n; i++)
		if (strncmp(s->args.items[i], name, n) == 0 && s->args.items[i][n] == '=')
			return s->args.items[i] + n + 1;
	return NULL;
}

int ib_build__set_arg(stage_state *s, const char *name, const char *value)
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


int ib_build__key_begin(keyer *k, const stage_state *s, const ib_instruction *in)
{
	k->h = ib_sha256_new();
	if (!k->h)
		return IB_ERROR;
	ib_sha256_update(k->h, s->key, strlen(s->key) + 1);
	ib_sha256_update(k->h, in->original, strlen(in->original) + 1);
	/* the logical line does not hold the heredocs' bodies: each one's
	 * delimiter, fd, quoting, chomping and body count (RUN, COPY, ADD) */
	size_t nh = in->node ? ib_node_heredoc_count(in->node) : 0;
	for (size_t i = 0; i < nh; i++) {
		const ib_heredoc *h = ib_node_heredoc(in->node, i);
		char meta[64];
		snprintf(meta, sizeof meta, "heredoc fd=%u expand=%d chomp=%d len=%zu", h->fd, h->expand,
			 h->chomp, h->content_len);
		ib_sha256_update(k->h, meta, strlen(meta) + 1);
		ib_sha256_update(k->h, h->name, strlen(h->name) + 1);
		ib_sha256_update(k->h, h->content, h->content_len);
	}
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

void ib_build__key_add(keyer *k, const char *text)
{
	ib_sha256_update(k->h, text, strlen(text) + 1);
}

int ib_build__key_end(keyer *k, char out[IB_DIGEST_HEXLEN + 1])
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

void ib_build__state_dispose(stage_state *s)
{
	ib_image_config_free(s->config);
	free(s->layers);
	ib_strlist_clear(&s->args);
	ib_strlist_clear(&s->arg_names);
	free(s->arg_history);
	memset(s, 0, sizeof *s);
}

/* Layers of a config: every diff_id is a blob of the local store. */
/* The stage's layers from its config; a layer it had already (the steps before: most of them) keeps its size. */
int ib_build__layers_from_config(stage_state *s, ib_store *store)
{
	ib_layer *old = s->layers;
	size_t nold = s->nlayers;
	s->layers = NULL;
	s->nlayers = ib_image_config_diff_id_count(s->config);
	int rc = 0;
	if (s->nlayers && !(s->layers = ib_calloc(s->nlayers, sizeof *s->layers)))
		rc = IB_ERROR;
	for (size_t i = 0; rc == 0 && i < s->nlayers; i++) {
		ib_layer *l = &s->layers[i];
		if ((rc = ib_image_config_diff_id(&l->diff_id, s->config, i)) < 0)
			break;
		l->digest = l->diff_id;
		if (i < nold && ib_digest_equal(&old[i].diff_id, &l->diff_id) &&
		    ib_digest_equal(&old[i].digest, &l->diff_id))
			l->size = old[i].size;
		else
			rc = ib_store_blob_size(&l->size, store, &l->digest);
	}
	free(old);
	if (rc < 0)
		s->nlayers = 0; /* (s->layers is what was made so far, freed with the stage) */
	return rc;
}

int ib_build__restore_config(stage_state *s, ib_store *store, const ib_digest *config)
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
	return ib_build__layers_from_config(s, store);
}

int ib_build__save_config(ib_digest *out, builder *b, const stage_state *s)
{
	ib_buf json = IB_BUF_INIT;
	int rc = ib_image_config_to_json(&json, s->config);
	if (rc == 0)
		rc = ib_store_blob_put(out, b->store, json.ptr, json.size);
	ib_buf_dispose(&json);
	return rc;
}

int ib_build__add_history(builder *b, stage_state *s, const char *created_by, int empty_layer)
{
	ib_history_entry e = IB_HISTORY_ENTRY_INIT;
	int rc = b->o->use_source_date_epoch ? ib_image_config_set_created_at(s->config, b->o->source_date_epoch)
					     : ib_image_config_set_created_now(s->config);
	if (rc < 0)
		return rc;
	e.created = ib_image_config_get(s->config, IB_CONFIG_CREATED);
	e.created_by = created_by;
	e.comment = "buildkit.dockerfile.v0";
	e.empty_layer = empty_layer;
	return ib_image_config_history_add(s->config, &e);
}

/* A stage starts from `img` (freed here): its id is the stage's key, its config and layers the stage's. */
static int stage_from_image(stage_state *s, builder *b, ib_image *img)
{
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, ib_image_id(img));
	memcpy(s->key, hex, sizeof s->key);
	int rc = ib_image_config_dup(&s->config, ib_image_config_of(img));
	ib_image_free(img);
	/* a base image's inline cache records are not the new image's (BuildKit drops them too) */
	if (rc == 0)
		rc = ib_build__cache_inline_strip(&s->config);
	if (rc == 0)
		rc = ib_build__layers_from_config(s, b->store);
	return rc;
}

/* A stage that a named context replaces: its image, none of its instructions. */
int ib_build__init_named_stage(builder *b, const ib_plan_stage *ps, stage_state *s, const char *value)
{
	ib_image *img = NULL;
	int rc = ib_build__stage_platform(s->platform, b, ps);
	if (rc == 0)
		rc = ib_build__context_image(&img, b, ps->name, value);
	if (rc < 0) {
		ib_error_prefix("line %d: FROM ... AS %s", ps->stage->line, ps->name);
		return rc;
	}
	rc = stage_from_image(s, b, img);
	if (rc == 0 && !ib_image_config_env_get(s->config, "PATH"))
		rc = ib_image_config_env_set(s->config, "PATH", IB_BUILD_DEFAULT_PATH);
	s->built = rc == 0;
	return rc;
}

int ib_build__init_stage(builder *b, const ib_plan_stage *ps, stage_state *s)
{
	int rc = ps->base_kind == IB_BASE_STAGE ? 0 : ib_build__stage_platform(s->platform, b, ps);
	if (rc < 0) {
		ib_error_prefix("line %d: FROM --platform=%s", ps->stage->line, ps->stage->platform);
		return rc;
	}
	if (ps->base_kind == IB_BASE_SCRATCH) {
		rc = ib_image_config_new(&s->config);
		/* BuildKit's empty image has WorkingDir "/", and the stage's platform */
		if (rc == 0)
			rc = ib_image_config_set(s->config, IB_CONFIG_WORKDIR, "/");
		if (rc == 0)
			rc = ib_build__config_platform(s->config, s->platform);
		/* the host's stays "scratch", as before: its cache entries stay valid */
		if (strcmp(s->platform, ib_build__host_platform()))
			ib_build__platform_key(s->key, "scratch", s->platform);
		else
			snprintf(s->key, sizeof s->key, "%s", "scratch");
	} else if (ps->base_kind == IB_BASE_STAGE) {
		stage_state *from = &b->stages[ps->base_stage];
		rc = ib_image_config_dup(&s->config, from->config);
		if (rc == 0)
			rc = ib_build__layers_from_config(s, b->store);
		/* BuildKit: the child starts from the base stage's state, whose
		 * environment holds that stage's ARGs, and copies its build args */
		for (size_t i = 0; rc == 0 && i < from->args.n; i++)
			rc = ib_strlist_add(&s->args, from->args.items[i]);
		for (size_t i = 0; rc == 0 && i < from->arg_names.n; i++)
			rc = ib_strlist_add(&s->arg_names, from->arg_names.items[i]);
		memcpy(s->key, from->key, sizeof s->key);
		memcpy(s->platform, from->platform, sizeof s->platform);
	} else {
		ib_image *img = NULL;
		rc = ib_build__image_platform(&img, b, ps->base, s->platform);
		if (rc < 0) {
			ib_error_prefix("line %d: FROM %s", ps->stage->line, ps->base);
			return rc;
		}
		rc = stage_from_image(s, b, img);
	}
	if (rc < 0)
		return rc;
	/* Docker sets the default PATH when the base has none */
	if (!ib_image_config_env_get(s->config, "PATH"))
		rc = ib_image_config_env_set(s->config, "PATH", IB_BUILD_DEFAULT_PATH);
	return rc;
}

/* ---- snapshots ---- */

/* Process-wide, not per build: two builds in two threads of one process,
 * started in the same second, would otherwise name the same snapshot. */
static unsigned long snapshot_seq;

int ib_build__new_snapshot(ib_buf *rootfs, char **key_out, builder *b, const stage_state *s)
{
	ib_digest *chain = NULL;
	char *key = ib_sprintf("build-%ld-%lu-%lx", (long)getpid(),
				 __atomic_add_fetch(&snapshot_seq, 1, __ATOMIC_RELAXED), (unsigned long)time(NULL));
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

void ib_build__drop_snapshot(builder *b, const char *key)
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
int ib_build__commit_snapshot(builder *b, stage_state *s, const char *key, const char *created_by,
			   int keep_empty)
{
	return ib_build__commit_snapshot_with(b, s, key, created_by, keep_empty, &b->diff_opts);
}

int ib_build__commit_snapshot_with(builder *b, stage_state *s, const char *key, const char *created_by,
				   int keep_empty, const ib_diff_options *opts)
{
	ib_digest diff_id, empty;
	uint64_t size = 0;
	int rc = ib_snapshot_unmount(b->snap, key);
	/* the step's files become the unpacked layer the next steps stand on */
	if (rc == 0)
		rc = ib_callback_internal(ib_snapshot_commit_remove(&diff_id, &size, b->snap, key, opts));
	if (rc < 0)
		return rc;
	ib_digest_parse(&empty, IB_BUILD_EMPTY_TAR_DIGEST);
	if (!keep_empty && ib_digest_equal(&diff_id, &empty))
		return ib_build__add_history(b, s, created_by, 1);
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
		rc = ib_build__add_history(b, s, created_by, 0);
	return rc;
}

/* ---- the step loop ---- */

/* The step of key `key` from the cache, when it is there (*hit = 1). */
static int cached_step(int *hit, builder *b, stage_state *s, const ib_instruction *in, size_t stage_index,
		       const char *label, const char key[IB_DIGEST_HEXLEN + 1])
{
	ib_digest config;
	int rc = 0, found;
	*hit = 0;
	found = ib_store_cache_get(NULL, NULL, &config, b->store, key) == 0;
	if (!found && b->cache) { /* --cache-from: the remote records */
		ib_error_clear();
		rc = ib_build__cache_import(b, &config, key);
		if (rc < 0 && rc != IB_ENOTFOUND)
			return rc;
		found = rc == 0;
		rc = 0;
	}
	if (found && ib_build__restore_config(s, b->store, &config) == 0) {
		*hit = 1;
		if ((rc = ib_build__cache_step(b, stage_index, s->key, key)) < 0)
			return rc;
		memcpy(s->key, key, IB_DIGEST_HEXLEN + 1);
		if ((rc = ib_build__report(b, IB_PROGRESS_STEP, label, in->original, b->step_no, b->step_total, 1)) == 0)
			rc = ib_build__report(b, IB_PROGRESS_STEP_DONE, label, in->original, b->step_no, b->step_total,
					      1);
		return rc;
	}
	ib_error_clear();
	return 0;
}

static int run_claimed(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index, const char *label,
		       const char key[IB_DIGEST_HEXLEN + 1], ib_build__inputs *sip);

static int run_step(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index,
		    const char *label)
{
	int rc;
	if ((rc = check_step(b, in)) < 0)
		return rc;
	/* ARGs change the scope whether the step is cached or not */
	if (in->kind == IB_INSTR_ARG && (rc = ib_build__do_arg(b, s, in)) < 0)
		return rc;
	if (in->kind == IB_INSTR_CMD)
		s->cmd_set = 1;
	/* the step's cache key; a COPY/ADD's inputs are resolved once, for the key and the copy */
	keyer k = {NULL};
	char key[IB_DIGEST_HEXLEN + 1];
	ib_build__inputs si;
	memset(&si, 0, sizeof si);
	si.srcfd = -1;
	if ((rc = ib_build__key_begin(&k, s, in)) < 0)
		return rc;
	if (b->o->use_source_date_epoch) {
		/* the layer's file times and the history change with it */
		char sde[48];
		snprintf(sde, sizeof sde, "SOURCE_DATE_EPOCH=%lld", (long long)b->o->source_date_epoch);
		ib_build__key_add(&k, sde);
	}
	/* the hostname the step runs with (in BuildKit's ExecOp meta, so its cache key) */
	if (in->kind == IB_INSTR_RUN) {
		ib_build__key_add(&k, "hostname");
		ib_build__key_add(&k, b->hostname ? b->hostname : IB_BUILD__SANDBOX_HOSTNAME);
		/* --add-host, --ulimit, --shm-size: in the ExecOp too (only when given: older keys stay) */
		if (b->extra_hosts) {
			ib_build__key_add(&k, "extra-hosts");
			ib_build__key_add(&k, b->extra_hosts);
		}
		for (size_t i = 0; i < b->nrlimits; i++) {
			char ul[96];
			snprintf(ul, sizeof ul, "ulimit %s=%llu:%llu", b->rlimits[i].name,
				 (unsigned long long)b->rlimits[i].soft, (unsigned long long)b->rlimits[i].hard);
			ib_build__key_add(&k, ul);
		}
		if (b->o->shm_size > 0) {
			char shm[48];
			snprintf(shm, sizeof shm, "shm-size=%lld", (long long)b->o->shm_size);
			ib_build__key_add(&k, shm);
		}
	}
	const ib_plan_stage *ps_here = ib_plan_stage_by_index(b->plan, stage_index);
	int use_cache = !ib_build__no_cache(b, ps_here ? ps_here->name : NULL);
	/* COPY --from another stage: the memo may know the key without a mount (memo.c) */
	char memo[IB_DIGEST_HEXLEN + 1] = "";
	if (use_cache && in->kind == IB_INSTR_COPY && in->u.copy.from &&
	    (rc = ib_build__copy_memo_key(memo, b, s, in, stage_index)) < 0) {
		ib_sha256_free(k.h);
		goto out;
	}
	/* the memo, else a cache source's alias (a stage taken from a registry cache need not be fetched) */
	if (memo[0] && (ib_build__memo_get(b, memo, key) || ib_build__cache_alias_get(b, memo, key))) {
		int hit = 0;
		if (b->cache && (rc = ib_build__cache_alias(b, memo, key)) < 0) {
			ib_sha256_free(k.h);
			goto out;
		}
		if ((rc = cached_step(&hit, b, s, in, stage_index, label, key)) < 0 || hit) {
			ib_sha256_free(k.h);
			goto out;
		}
	}
	if (in->kind == IB_INSTR_COPY || in->kind == IB_INSTR_ADD) {
		rc = ib_build__inputs_resolve(&si, b, s, in, stage_index, &k);
	} else if (in->kind == IB_INSTR_RUN && ib_instruction_mount_count(in)) {
		run_mounts none;
		memset(&none, 0, sizeof none);
		rc = ib_build__prepare_mounts(&none, NULL, b, s, in, stage_index, &k);
		ib_build__release_mounts(b, &none);
	}
	if (rc < 0) {
		ib_sha256_free(k.h);
		goto out;
	}
	if ((rc = ib_build__key_end(&k, key)) < 0)
		goto out;
	/* a cold write of a memo that failed costs the next build a hash, nothing else */
	if (memo[0] && ib_build__memo_put(b, memo, key) < 0)
		ib_error_clear();
	if (memo[0] && b->cache && (rc = ib_build__cache_alias(b, memo, key)) < 0)
		goto out;

	int claimed = 0;
	if (use_cache) {
		int hit = 0;
		if ((rc = cached_step(&hit, b, s, in, stage_index, label, key)) < 0 || hit)
			goto out;
		/* the platforms of one build (and stages) at once: a step another of them runs is waited for (multi.c) */
		for (int waited = 1; rc == 0 && !claimed && waited && !hit;) {
			if ((rc = ib_build__step_claim(b, key, &waited)) > 0)
				claimed = 1, rc = 0;
			else if (rc == 0 && waited)
				rc = cached_step(&hit, b, s, in, stage_index, label, key);
		}
		if (rc < 0 || hit)
			goto out;
	}
	rc = run_claimed(b, s, in, stage_index, label, key, &si);
	if (claimed)
		ib_build__step_release(b, key);
out:
	ib_build__inputs_dispose(b, &si);
	return rc;
}

/* Run step `in` whose cache key is `key` (not in the cache), and record it. */
static int run_claimed(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index, const char *label,
		       const char key[IB_DIGEST_HEXLEN + 1], ib_build__inputs *sip)
{
	ib_build__inputs *psi = sip;
	int rc;
	if ((rc = ib_build__report(b, IB_PROGRESS_STEP, label, in->original, b->step_no, b->step_total, 0)) < 0)
		goto out;
	b->step_label = label;
	switch (in->kind) {
	case IB_INSTR_RUN:
		rc = ib_build__do_run(b, s, in, stage_index);
		break;
	case IB_INSTR_COPY:
	case IB_INSTR_ADD:
		rc = ib_build__do_copy(b, s, in, psi);
		break;
	case IB_INSTR_WORKDIR:
		rc = ib_build__do_workdir(b, s, in);
		break;
	case IB_INSTR_ARG:
		rc = ib_build__arg_history(b, s);
		break;
	default:
		rc = ib_build__do_meta(b, s, in);
	}
	ib_build__inputs_dispose(b, psi);
	if (rc < 0)
		goto out;
	/* record the step: the config after it, and its layer */
	ib_digest config;
	size_t n = s->nlayers;
	if ((rc = ib_build__save_config(&config, b, s)) < 0)
		goto out;
	rc = ib_store_cache_put(b->store, key, n ? &s->layers[n - 1].diff_id : NULL, &config);
	if (rc == 0)
		rc = ib_build__cache_step(b, stage_index, s->key, key);
	if (rc < 0)
		goto out;
	memcpy(s->key, key, IB_DIGEST_HEXLEN + 1);
	rc = ib_build__report(b, IB_PROGRESS_STEP_DONE, label, in->original, b->step_no, b->step_total, 0);
out:
	return rc;
}

/*
 * A step label's platform, when the build has several (BuildKit's
 * prefixCommand): "linux/amd64 ", and a stage of another platform than the
 * target's that declared TARGET* args says which ("linux/amd64->arm64 ").
 * Here a stage of another platform says it always: BuildKit runs such a
 * stage once when no TARGET* arg makes it differ, this build once per
 * target platform, so the label must tell the two apart.
 */
static void step_platform(char *out, size_t len, builder *b, const stage_state *s)
{
	out[0] = '\0';
	if (!b->multi)
		return;
	const char *sp = s->platform[0] ? s->platform : b->platform;
	if (!strcmp(sp, b->platform)) {
		snprintf(out, len, "%s ", sp);
		return;
	}
	const char *s1 = strchr(sp, '/'), *t1 = strchr(b->platform, '/');
	int same_os = s1 && t1 && s1 - sp == t1 - b->platform && !strncmp(sp, b->platform, (size_t)(s1 - sp));
	snprintf(out, len, "%s->%s ", sp, same_os ? t1 + 1 : b->platform);
}

static int build_stage(builder *b, const ib_plan_stage *ps, size_t nth, size_t nstages)
{
	stage_state *s = &b->stages[ps->index];
	const char *named = ps->name ? ib_build__named_context(b, ps->name) : NULL;
	if (named) /* BuildKit: a named context replaces the stage of that name */
		return ib_build__init_named_stage(b, ps, s, named);
	int rc = ib_build__init_stage(b, ps, s);
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
	ib_build__steps_add(b, triggers.n); /* the base's ONBUILD triggers add steps */
	/* BuildKit's labels: "[NAME i/n]", an unnamed stage of a multi-stage Dockerfile "stage-<index>" */
	char sname[128];
	if (ps->name)
		snprintf(sname, sizeof sname, "%s ", ps->name);
	else if (ib_instructions_stage_count(b->ins) > 1)
		snprintf(sname, sizeof sname, "stage-%zu ", ps->index);
	else
		sname[0] = '\0';
	char label[160 + 2 * IB_BUILD__PLATFORM_MAX];
	char pname[2 * IB_BUILD__PLATFORM_MAX + 8] = "";
	for (size_t i = 0; rc == 0 && i < triggers.n; i++) {
		ib_instruction *in = NULL;
		rc = ib_instruction_parse_single(&in, triggers.items[i], NULL);
		if (rc == 0) {
			step_platform(pname, sizeof pname, b, s);
			snprintf(label, sizeof label, "[%s%s%zu/%zu]", pname, sname, i + 1, total);
			ib_build__step_next(b);
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
		step_platform(pname, sizeof pname, b, s);
		snprintf(label, sizeof label, "[%s%s%zu/%zu]", pname, sname, ntrig + i + 1, total);
		ib_build__step_next(b);
		rc = run_step(b, s, in, ps->index, label);
		if (rc < 0)
			ib_error_prefix("%s %s", label, in->original);
	}
	s->built = rc == 0;
	return rc;
}

/* ---- set up ---- */

/*
 * A context file at `path`, resolved as BuildKit's frontend resolves it: the
 * last component, symlinks included, inside its own directory (the
 * Dockerfile's directory is the root of BuildKit's "dockerfile" source, the
 * context's of ".dockerignore"), so a link cannot reach a file outside.
 */
static int read_context_file(ib_buf *out, const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return ib_read_regular_file_in(out, ".", path, IB_BUILD__CONTEXT_FILE_MAX);
	char *dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	if (!dir)
		return ib_error_oom();
	int rc = ib_read_regular_file_in(out, dir, slash + 1, IB_BUILD__CONTEXT_FILE_MAX);
	free(dir);
	return rc;
}

static int read_dockerfile(ib_buf *out, const ib_build_options *o, ib_buf *path)
{
	if (o->dockerfile_content)
		return ib_buf_set(out, o->dockerfile_content, o->dockerfile_len);
	if (o->dockerfile)
		ib_buf_puts(path, o->dockerfile);
	else
		ib_path_join(path, o->context, "Dockerfile");
	int rc = read_context_file(out, path->ptr);
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
		/* missing is fine; there but unreadable fails the build (ignoring it would send what it excludes) */
		rc = read_context_file(&content, ib_buf_cstr(&path));
		ib_buf_dispose(&path);
		if (rc == IB_ENOTFOUND) {
			ib_buf_dispose(&content);
			ib_error_clear();
			rc = 0;
			continue;
		}
		if (rc < 0) {
			ib_buf_dispose(&content);
			ib_error_prefix("read the ignore file");
			break;
		}
		rc = ib_ignore_parse(&b->ignore, ib_buf_cstr(&content), content.size, cands.strings[i]);
		ib_buf_dispose(&content);
		break;
	}
	ib_strarray_dispose(&cands);
	return rc;
}

/* The context's checksum cache: <store>/build-sums/<sha256 of the context's real path>. */
static int open_sums(builder *b)
{
	char *real = realpath(b->o->context, NULL);
	if (!real)
		return ib_error_set_os(IB_LAYER_BUILD, "resolve the build context `%s`", b->o->context);
	ib_digest d;
	char hex[IB_DIGEST_HEXLEN + 1];
	int rc = ib_digest_of(&d, real, strlen(real));
	free(real);
	if (rc < 0)
		return rc;
	ib_digest_hex(hex, &d);
	char *file = ib_sprintf("%s/build-sums/%s", ib_store_root(b->store), hex);
	rc = file ? ib_build__sums_open(&b->sums, file) : IB_ERROR;
	if (rc == 0)
		ib_build__sums_set_callbacks(b->sums, b->o->callbacks);
	free(file);
	return rc;
}

/* The line of the `# syntax=` directive (the first line that has one). */
static int syntax_line(const char *buf, size_t len)
{
	int line = 1;
	for (size_t i = 0; i < len; line++) {
		size_t e = i;
		while (e < len && buf[e] != '\n')
			e++;
		size_t k = i;
		while (k < e && (buf[k] == ' ' || buf[k] == '\t'))
			k++;
		if (k < e && buf[k] == '#') {
			k++;
			while (k < e && (buf[k] == ' ' || buf[k] == '\t'))
				k++;
			if (e - k >= 6 && !strncasecmp(buf + k, "syntax", 6))
				return line;
		}
		i = e + 1;
	}
	return 1;
}

/*
 * `# syntax=` asks BuildKit to run another frontend image. We are the
 * standard Dockerfile frontend: docker/dockerfile (any tag or digest, also
 * as docker.io/docker/dockerfile) is fine, anything else is refused.
 */
static int frontend_ok(const char *r)
{
	if (!strncmp(r, "docker.io/", 10))
		r += 10;
	else if (!strncmp(r, "index.docker.io/", 16))
		r += 16;
	return !strncmp(r, "docker/dockerfile", 17) && (!r[17] || r[17] == ':' || r[17] == '@');
}

static int check_syntax(builder *b, const char *content, size_t len)
{
	const char *v = ib_dockerfile_directive(b->df, "syntax");
	const char *over = NULL;
	for (size_t i = 0; b->o->build_args && b->o->build_args[i]; i++)
		if (!strncmp(b->o->build_args[i], "BUILDKIT_SYNTAX=", 16))
			over = b->o->build_args[i] + 16;
	/* BUILDKIT_SYNTAX replaces the directive; dockerfile.v0 is the built-in frontend */
	if (over && (!strcmp(over, "dockerfile.v0") || frontend_ok(over)))
		return 0;
	if (over)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "--build-arg BUILDKIT_SYNTAX=%s: only the standard Dockerfile frontend "
				     "(docker/dockerfile, dockerfile.v0) is built in; other frontends are not supported",
				     over);
	if (!v || frontend_ok(v))
		return 0;
	return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
			     "%s:%d: # syntax=%s: only the standard Dockerfile frontend (docker/dockerfile) "
			     "is built in; other frontends are not supported",
			     b->filename, syntax_line(content, len), v);
}

/* Go's strconv.ParseBool false, as BuildKit reads its boolean build arguments. */
static int go_false(const char *v)
{
	static const char *const f[] = {"0", "f", "F", "false", "FALSE", "False", NULL};
	for (size_t i = 0; f[i]; i++)
		if (!strcmp(v, f[i]))
			return 1;
	return 0;
}

/* A hostname a RUN step can have: it becomes a word of /etc/hosts and the UTS name. */
/* The build argument SOURCE_DATE_EPOCH=`v` says what the option says (the CLI passes both, as buildx does). */
static int same_epoch(const char *v, int64_t epoch)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)epoch);
	return !strcmp(v, buf);
}

static int valid_hostname(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 64)
		return 0;
	for (const char *c = v; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '_' || *c == '.'))
			return 0;
	return 1;
}

/*
 * BuildKit's built-in build arguments (the reference's "BuildKit built-in
 * build args") change what BuildKit does, not just a variable: those we do
 * not do are refused, never taken as an ordinary (unused) build argument.
 * BUILDKIT_BUILD_NAME (a name in buildx history) and
 * BUILDKIT_CONTEXT_KEEP_GIT_DIR (for git contexts; ours is a directory)
 * change nothing here; BUILDKIT_SYNTAX is check_syntax's.
 */
static int check_builtin_args(builder *b)
{
	for (size_t i = 0; b->o->build_args && b->o->build_args[i]; i++) {
		const char *a = b->o->build_args[i], *eq = strchr(a, '=');
		const char *v = eq ? eq + 1 : "";
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		const char *why = NULL;
		if (n == 25 && !strncmp(a, "BUILDKIT_SANDBOX_HOSTNAME", n)) {
			/* BuildKit's dockerui: a non-empty value replaces buildkitsandbox */
			if (*v && !valid_hostname(v))
				return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
						     "--build-arg BUILDKIT_SANDBOX_HOSTNAME: `%s` is not a hostname "
						     "(1 to 64 letters, digits, `-`, `_` and `.`, as it goes into "
						     "/etc/hosts and sethostname)", v);
			b->hostname = *v ? v : NULL;
		} else if (n == 23 && !strncmp(a, "BUILDKIT_CACHE_MOUNT_NS", n) && *v)
			why = "cache mount ids have no namespace";
		else if (n == 21 && !strncmp(a, "BUILDKIT_INLINE_CACHE", n) && !go_false(v)) {
			/* BuildKit's older way to say --cache-to type=inline */
			int r = ib_build__cache_want_inline(b);
			if (r < 0)
				return r;
		} else if (n == 23 && !strncmp(a, "BUILDKIT_MULTI_PLATFORM", n) && !go_false(v))
			why = "multi-platform output is not built";
		else if (n == 17 && !strncmp(a, "SOURCE_DATE_EPOCH", n) &&
			 !(b->o->use_source_date_epoch && eq && same_epoch(v, b->o->source_date_epoch)))
			why = "set SOURCE_DATE_EPOCH in the environment instead (imagebuild then also clamps "
			      "the layers' file times to it, as BuildKit's rewrite-timestamp)";
		if (why)
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
					     "--build-arg %.*s: BuildKit's built-in build argument is not supported: %s",
					     (int)n, a, why);
	}
	return 0;
}

/*
 * BuildKit's build checks, on every build: each warning is logged with its
 * file and line; `error=true` (in `# check=` or the BUILDKIT_DOCKERFILE_CHECK
 * build argument, which replaces it) fails the build when one fired.
 */
static int run_checks(builder *b, const ib_check_base *bases, size_t nbases)
{
	ib_check_options co = IB_CHECK_OPTIONS_INIT;
	co.ignore = b->ignore;
	co.bases = bases;
	co.nbases = nbases;
	co.all_stages = b->checks_only && !b->o->target; /* as `docker build --check` */
	for (size_t i = 0; b->o->build_args && b->o->build_args[i]; i++)
		if (!strncmp(b->o->build_args[i], "BUILDKIT_DOCKERFILE_CHECK=", 26))
			co.config = b->o->build_args[i] + 26;
	int rc = ib_checks_run(&b->checks, b->df, b->ins, b->plan, &co);
	if (rc < 0) {
		ib_error_prefix("%s", b->filename);
		return rc;
	}
	if (b->checks_only)
		return 0;
	for (size_t i = 0; i < ib_checks_count(b->checks); i++) {
		const ib_check_warning *w = ib_checks_warning(b->checks, i);
		ib_build__log_line(b, IB_LOG_WARNING, "%s:%d: %s: %s", b->filename, w->line, w->rule, w->message);
	}
	return ib_checks_error(b->checks);
}

/*
 * ib_build_options as versions 1 to 5 had it: callbacks by value; 2 added
 * pull to secrets, 3 cancel, 4 allow, 5 use_source_date_epoch and
 * source_date_epoch
 */
typedef struct {
	unsigned int version;
	const char *context;
	const char *dockerfile;
	const char *dockerfile_content;
	size_t dockerfile_len;
	const char *const *tags;
	const char *const *build_args;
	const char *target;
	int no_cache;
	const char *isolation;
	const char *snapshotter;
	const char *platform;
	ib_network_mode network;
	struct {
		unsigned int version;
		ib_progress_cb progress;
		ib_log_cb log;
		void *payload;
	} callbacks;
	ib_pull_policy pull;
	const ib_registry_options *registry;
	const char *const *secrets;
	const volatile int *cancel;
	const char *const *allow;
	int use_source_date_epoch;
	int64_t source_date_epoch;
} build_options_v5;

/* How much of the older layout a caller of `version` (1 to 5) has. */
static size_t v5_size(unsigned int version)
{
	return version == 1 ? offsetof(build_options_v5, pull)
	       : version == 2 ? offsetof(build_options_v5, cancel)
	       : version == 3 ? offsetof(build_options_v5, allow)
	       : version == 4 ? offsetof(build_options_v5, use_source_date_epoch) : sizeof(build_options_v5);
}

/* Options of versions 1 to 5 as version 6; their callbacks (and cancel flag) go in `cb`. */
static void options_from_v5(ib_build_options *out, ib_callbacks *cb, const ib_build_options *o)
{
	build_options_v5 old;
	memset(&old, 0, sizeof old);
	memcpy(&old, o, v5_size(o->version));
	ib_build_options n = IB_BUILD_OPTIONS_INIT;
	n.context = old.context;
	n.dockerfile = old.dockerfile;
	n.dockerfile_content = old.dockerfile_content;
	n.dockerfile_len = old.dockerfile_len;
	n.tags = old.tags;
	n.build_args = old.build_args;
	n.target = old.target;
	n.no_cache = old.no_cache;
	n.isolation = old.isolation;
	n.snapshotter = old.snapshotter;
	n.platform = old.platform;
	n.network = old.network;
	n.pull = old.pull;
	n.registry = old.registry;
	n.secrets = old.secrets;
	n.allow = old.allow;
	n.use_source_date_epoch = old.use_source_date_epoch;
	n.source_date_epoch = old.source_date_epoch;
	ib_callbacks c = IB_CALLBACKS_INIT;
	c.progress = old.callbacks.progress;
	c.log = old.callbacks.log;
	c.payload = old.callbacks.payload;
	c.cancel = old.cancel;
	*cb = c;
	n.callbacks = cb;
	*out = n;
}

static int prepare(builder *b, ib_store *store, const ib_build_options *o)
{
	ib_buf content = IB_BUF_INIT, path = IB_BUF_INIT;
	b->store = store;
	b->o = o;
	b->ctxfd = -1;
	if (!o || o->version < 1 || o->version > IB_BUILD_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "ib_build_options missing or of an unknown version");
	if (o->version < 6) { /* the layout before callbacks became a pointer */
		options_from_v5(&b->opts, &b->compat_cb, o);
	} else { /* version 6 ends before labels, 7 before jobs */
		static const ib_build_options d = IB_BUILD_OPTIONS_INIT;
		b->opts = d;
		memcpy(&b->opts, o, o->version == 6   ? offsetof(ib_build_options, labels)
				    : o->version == 7 ? offsetof(ib_build_options, jobs)
						      : sizeof *o);
	}
	b->o = o = &b->opts;
	if (ib_callback_validate(o->callbacks, IB_LAYER_BUILD) < 0)
		return IB_EINVALID;
	if (!o->context)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "no build context given");
	struct stat cst;
	if (ib_build__is_git(o->context) && stat(o->context, &cst) < 0) {
		/* a git URL (as BuildKit's DetectGitContext): the checkout is the context, -f a path in it */
		const char *dir = NULL, *sub = NULL;
		char commit[41];
		int grc = ib_build__git_fetch(b, o->context, NULL, &dir, &sub, commit);
		if (grc < 0) {
			ib_error_prefix("build context %s", o->context);
			return grc;
		}
		if (!(b->git_context = ib_sprintf("%s/%s", dir, sub)))
			return IB_ERROR;
		if (o->dockerfile && !(b->git_dockerfile = ib_sprintf("%s/%s", b->git_context, o->dockerfile)))
			return IB_ERROR;
		b->opts.context = b->git_context;
		if (b->git_dockerfile)
			b->opts.dockerfile = b->git_dockerfile;
	} else if (strstr(o->context, "://") && stat(o->context, &cst) < 0) {
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "build context `%s`: only local directories and git repositories are supported "
				     "(not a tarball URL)", o->context);
	}
	if (o->use_source_date_epoch && o->source_date_epoch < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "SOURCE_DATE_EPOCH %lld is negative",
				     (long long)o->source_date_epoch);
	ib_diff_options_init(&b->diff_opts, IB_DIFF_OPTIONS_VERSION);
	b->diff_opts.use_source_date_epoch = o->use_source_date_epoch;
	b->diff_opts.source_date_epoch = o->source_date_epoch;
	int rc = ib_build__setup_platform(b);
	if (rc == 0)
		rc = parse_allow(b);
	if (rc == 0)
		rc = ib_build__parse_extras(b);
	if (rc == 0)
		rc = ib_build__cache_parse(b);
	if (rc < 0)
		return rc;
	rc = read_dockerfile(&content, o, &path);
	ib_parse_options po = IB_PARSE_OPTIONS_INIT;
	po.filename = path.size ? path.ptr : "Dockerfile";
	if (rc == 0 && !(b->filename = ib_strdup(po.filename)))
		rc = IB_ERROR;
	if (rc == 0)
		rc = ib_dockerfile_parse(&b->df, ib_buf_cstr(&content), content.size, &po);
	if (rc == 0)
		rc = check_syntax(b, ib_buf_cstr(&content), content.size);
	if (rc == 0)
		rc = check_builtin_args(b);
	if (rc == 0)
		rc = ib_instructions_parse(&b->ins, b->df);
	if (rc == 0) {
		ib_plan_options pl = IB_PLAN_OPTIONS_INIT;
		pl.target = o->target;
		pl.build_args = o->build_args;
		pl.platform = b->platform_explicit ? b->platform : NULL;
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
	/* a build runs them once it knows its base images (checks_with_bases) */
	if (rc == 0 && !store)
		rc = run_checks(b, NULL, 0);
	if (rc == 0 && store)
		rc = open_sums(b);
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
		ib_build__drop_snapshot(b, k);
		free(k);
	}
	ib_strlist_clear(&b->snapshots);
	ib_strlist_clear(&b->pulled);
	ib_build__fetch_cleanup(b);
	if (ib_build__sums_save(b->sums) < 0)
		ib_build__log_line(b, IB_LOG_WARNING, "could not save the context's checksums: %s",
				   ib_error_last()->message);
	ib_build__sums_free(b->sums);
	for (size_t i = 0; b->stages && i < b->nstages; i++)
		ib_build__state_dispose(&b->stages[i]);
	free(b->stages);
	ib_build__tail_clear(b);
	ib_snapshotter_free(b->snap);
	ib_checks_free(b->checks);
	free(b->tmp_dir);
	ib_plan_free(b->plan);
	ib_instructions_free(b->ins);
	ib_dockerfile_free(b->df);
	free(b->filename);
	ib_ignore_free(b->ignore);
	ib_strlist_clear(&b->annotations);
	free(b->extra_hosts);
	free(b->rlimits);
	free(b->git_context);
	free(b->git_dockerfile);
	ib_build__cache_free(b);
	if (b->ctxfd >= 0)
		close(b->ctxfd);
	ib_error_restore(&saved);
}

char *ib_build__tmpdir(builder *b, const char *tag)
{
	if (!b->tmp_dir)
		return ib_tmpdir_new(tag);
	char *dir = ib_sprintf("%s/%s-XXXXXX", b->tmp_dir, tag);
	if (dir && !mkdtemp(dir)) {
		ib_error_set_os(IB_LAYER_BUILD, "mkdtemp `%s`", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

int ib_build_options_init(ib_build_options *opts, unsigned int version)
{
	if (version < 1 || version > IB_BUILD_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_build_options version %u", version);
	if (version == 6 || version == 7) { /* the layout of 8, without what 7 and 8 added */
		static const ib_build_options d6 = IB_BUILD_OPTIONS_INIT;
		memcpy(opts, &d6, version == 6 ? offsetof(ib_build_options, labels) : offsetof(ib_build_options, jobs));
		opts->version = version;
		return 0;
	}
	if (version < 6) { /* the older layout (callbacks by value, a cancel field), as big as that version */
		build_options_v5 old;
		memset(&old, 0, sizeof old);
		old.version = version;
		old.network = IB_NETWORK_HOST;
		old.callbacks.version = 1;
		old.pull = IB_PULL_MISSING;
		memcpy(opts, &old, v5_size(version));
		return 0;
	}
	static const ib_build_options d = IB_BUILD_OPTIONS_INIT; /* zero padding (C11 6.7.9) */
	memcpy(opts, &d, sizeof *opts);
	return 0;
}

static int lookup_image(ib_image **out, builder *b, const char *name, const char *platform);

/* The image of the named context `value` (docker-image://, oci-layout://, a directory) for `name`. */
int ib_build__context_image(ib_image **out, builder *b, const char *name, const char *value)
{
	if (!strncmp(value, "docker-image://", 15)) {
		const char *ref = value + 15;
		if (!strcmp(ref, "scratch"))
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
					     "build context %s=%s: docker-image://scratch is not supported", name, value);
		int rc = lookup_image(out, b, ref, b->platform);
		if (rc < 0)
			ib_error_prefix("build context %s=%s", name, value);
		return rc;
	}
	if (!strncmp(value, "oci-layout://", 13))
		return ib_build__oci_layout_image(out, b, name, value + 13);
	const char *colon = strstr(value, "://");
	if (colon || !strncmp(value, "git@", 4))
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "build context %s=%s: only docker-image://, oci-layout:// and local directories "
				     "are supported", name, value);
	return ib_build__dir_image(out, b, name, value);
}

int ib_build__image(ib_image **out, builder *b, const char *name)
{
	return ib_build__image_platform(out, b, name, b->platform);
}

/* The image `name` for `platform` (normalised; "" the host's): FROM gives its stage's platform. */
int ib_build__image_platform(ib_image **out, builder *b, const char *name, const char *platform)
{
	const char *ctx = ib_build__named_context(b, name);
	if (ctx)
		return ib_build__context_image(out, b, name, ctx);
	return lookup_image(out, b, name, platform);
}

static int lookup_image_locked(ib_image **out, builder *b, ib_strlist *pulled_list, const char *name,
			       const char *platform);

/* The stages running at once share the list of images pulled (and pull one at a time). */
static int lookup_image(ib_image **out, builder *b, const char *name, const char *platform)
{
	ib_build__lock(b, IB_BUILD__LOCK_PULL);
	int rc = lookup_image_locked(out, b, &ib_build__shared(b)->pulled, name, platform);
	ib_build__unlock(b, IB_BUILD__LOCK_PULL);
	return rc;
}

static int lookup_image_locked(ib_image **out, builder *b, ib_strlist *pulled_list, const char *name,
			       const char *platform)
{
	int rc = 0;
	/* never an image of another platform (BuildKit), the host's included */
	const char *want = platform && *platform ? platform : NULL;
	char *pulled = ib_sprintf("%s %s", name, want ? want : "");
	if (!pulled)
		return IB_ERROR;
	if (b->o->pull == IB_PULL_ALWAYS && !ib_strlist_contains(pulled_list, pulled))
		rc = IB_ENOTFOUND;
	else if ((rc = ib_store_image_lookup_platform(out, b->store, name, want)) != IB_ENOTFOUND ||
		 b->o->pull == IB_PULL_NEVER) {
		free(pulled);
		return rc;
	}
	/* the store has it, for another platform: say so if the pull fails too */
	const char *m = rc == IB_ENOTFOUND ? ib_error_last()->message : "";
	char *local = strstr(m, ", not ") || strstr(m, "manifest for") ? ib_strdup(m) : NULL;
	ib_error_clear();
	ib_pull_options po = IB_PULL_OPTIONS_INIT;
	po.registry = b->o->registry;
	po.callbacks = b->o->callbacks;
	po.platform = want;
	ib_build__log_line(b, IB_LOG_INFO, "pulling %s%s%s", name, want ? " for " : "", want ? want : "");
	if ((rc = ib_callback_internal(ib_pull(NULL, NULL, b->store, name, &po))) < 0) {
		ib_error_prefix("pull `%s`%s%s", name, want ? " for " : "", want ? want : "");
		if (local)
			ib_error_prefix("%s (a local image of another platform is never used)", local);
		free(local);
		free(pulled);
		return rc;
	}
	free(local);
	rc = ib_strlist_add(pulled_list, pulled);
	free(pulled);
	if (rc < 0)
		return rc;
	return ib_store_image_lookup_platform(out, b->store, name, want);
}

/*
 * The build checks with the base images: each image a built stage starts
 * from is found or pulled first (as BuildKit resolves them before it
 * converts the Dockerfile), so UndefinedVar knows its ENV and
 * InvalidBaseImagePlatform its platform.
 */
static int checks_with_bases(builder *b)
{
	static const char *const none[] = {NULL};
	size_t ns = ib_instructions_stage_count(b->ins), n = ib_plan_stage_count(b->plan);
	ib_check_base *bases = ib_calloc(ns ? ns : 1, sizeof *bases);
	ib_strlist *envs = ib_calloc(ns ? ns : 1, sizeof *envs);
	char **platforms = ib_calloc(ns ? ns : 1, sizeof *platforms);
	int rc = bases && envs && platforms ? 0 : IB_ERROR;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const ib_plan_stage *ps = ib_plan_stage_at(b->plan, i);
		ib_image *img = NULL;
		if (ps->base_kind != IB_BASE_IMAGE || ps->index >= ns)
			continue;
		if (ps->name && ib_build__named_context(b, ps->name))
			continue; /* replaced by a named context: its base is never used */
		char plat[IB_BUILD__PLATFORM_MAX];
		if ((rc = ib_build__stage_platform(plat, b, ps)) < 0 ||
		    (rc = ib_build__image_platform(&img, b, ps->base, plat)) < 0) {
			ib_error_prefix("%s:%d: FROM %s", b->filename, ps->stage->line, ps->base);
			break;
		}
		const ib_image_config *cfg = ib_image_config_of(img);
		size_t ne = ib_image_config_list_count(cfg, IB_CONFIG_ENV);
		for (size_t k = 0; rc == 0 && k < ne; k++)
			rc = ib_strlist_add(&envs[ps->index], ib_image_config_list_get(cfg, IB_CONFIG_ENV, k));
		const char *os = ib_image_config_get(cfg, IB_CONFIG_OS);
		const char *arch = ib_image_config_get(cfg, IB_CONFIG_ARCHITECTURE);
		const char *variant = ib_image_config_get(cfg, IB_CONFIG_VARIANT);
		if (rc == 0 && os && *os && arch && *arch &&
		    !(platforms[ps->index] = variant && *variant ? ib_sprintf("%s/%s/%s", os, arch, variant)
								 : ib_sprintf("%s/%s", os, arch)))
			rc = IB_ERROR;
		/* an image without Env is known too */
		bases[ps->index].env = envs[ps->index].items ? (const char *const *)envs[ps->index].items : none;
		bases[ps->index].platform = platforms[ps->index];
		ib_image_free(img);
	}
	if (rc == 0)
		rc = run_checks(b, bases, ns);
	for (size_t i = 0; i < ns && envs; i++)
		ib_strlist_clear(&envs[i]);
	for (size_t i = 0; i < ns && platforms; i++)
		free(platforms[i]);
	free(bases);
	free(envs);
	free(platforms);
	return rc;
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

int ib_build_check(ib_checks **out, const ib_build_options *opts)
{
	builder b;
	memset(&b, 0, sizeof b);
	b.checks_only = 1;
	*out = NULL;
	int rc = prepare(&b, NULL, opts);
	if (rc == 0) {
		*out = b.checks;
		b.checks = NULL;
	}
	cleanup(&b);
	return rc;
}

int ib_build(ib_digest *image_id, ib_store *store, const ib_build_options *opts)
{
	ib_strlist platforms = IB_STRLIST_INIT;
	int rc = opts ? ib_build__platform_list(&platforms, opts) : 0;
	if (rc == 0 && platforms.n > 1) {
		rc = ib_build__multi(image_id, store, opts, &platforms);
	} else if (rc == 0 && platforms.n == 1) {
		/* one platform of the list: as `platform` */
		ib_build_options one = *opts;
		one.platform = platforms.items[0];
		one.platforms = NULL;
		rc = ib_build__one(image_id, NULL, store, &one);
	} else if (rc == 0) {
		rc = ib_build__one(image_id, NULL, store, opts);
	}
	ib_strlist_clear(&platforms);
	return ib_callback_result(rc);
}

int ib_build__one(ib_digest *image_id, ib_digest *manifest_out, ib_store *store, const ib_build_options *opts)
{
	return ib_build__one_ex(image_id, manifest_out, store, opts, 0);
}

int ib_build__one_ex(ib_digest *image_id, ib_digest *manifest_out, ib_store *store, const ib_build_options *opts,
		     unsigned int flags)
{
	builder b;
	memset(&b, 0, sizeof b);
	b.multi = (flags & IB_BUILD__ONE_MULTI) != 0;
	int rc = prepare(&b, store, opts);
	int leased = 0;
	if (rc == 0)
		rc = check_plan(&b);
	if (rc == 0) {
		ib_strarray unused = IB_STRARRAY_INIT;
		if (ib_plan_unused_build_args(&unused, b.plan) == 0 && unused.count) {
			ib_buf l = IB_BUF_INIT;
			for (size_t i = 0; i < unused.count; i++)
				ib_buf_printf(&l, "%s%s", i ? " " : "", unused.strings[i]);
			ib_build__log_line(&b, IB_LOG_WARNING, "one or more build arguments [%s] were not consumed", ib_buf_cstr(&l));
			ib_buf_dispose(&l);
		}
		ib_strarray_dispose(&unused);
		ib_snapshotter_options so = IB_SNAPSHOTTER_OPTIONS_INIT;
		so.callbacks = b.o->callbacks; /* layers written (BYTES), cancel while diffing */
		rc = ib_snapshotter_open(&b.snap, store, opts->snapshotter, &so);
	}
	if (rc == 0 && (rc = ib_store_lease_acquire(store)) == 0)
		leased = 1;
	if (rc == 0 && !(b.tmp_dir = ib_sprintf("%s/tmp", ib_store_root(store))))
		rc = IB_ERROR;
	if (rc == 0 && (rc = ib_mkdir_p(b.tmp_dir, 0700)) < 0)
		ib_error_prefix("build");
	if (rc == 0)
		rc = checks_with_bases(&b);
	if (rc == 0) {
		b.nstages = ib_instructions_stage_count(b.ins);
		size_t np = ib_plan_stage_count(b.plan);
		for (size_t i = 0; i < np; i++)
			b.step_total += ib_plan_stage_at(b.plan, i)->stage->instruction_count;
		b.stages = ib_calloc(b.nstages, sizeof *b.stages);
		if (!b.stages)
			rc = IB_ERROR;
	}
	if (rc == 0 && b.cache)
		rc = ib_build__cache_load(&b);
	/* remote layers of the cache fetched, when a step needs them, with the build's registry options */
	int fetcher = rc == 0 && b.cache && opts->registry;
	if (fetcher)
		ib_store_set_remote_fetcher(store, ib_push_fetch_remote_layer, (void *)opts->registry);
	/* the stages: independent ones at once (parallel.c), or one after the other in the plan's order;
	 * with --cache-from/--cache-to one after the other (the cache's records are not shared between threads) */
	unsigned int jobs = rc == 0 && !b.cache ? ib_build__jobs(&b) : 1;
	size_t n = rc == 0 ? ib_plan_stage_count(b.plan) : 0;
	if (rc == 0 && jobs > 1)
		rc = ib_build__run_stages(&b, jobs, build_stage);
	for (size_t i = 0; rc == 0 && jobs == 1 && i < n; i++)
		rc = build_stage(&b, ib_plan_stage_at(b.plan, i), i, n);
	if (rc == 0) {
		const ib_plan_stage *t = ib_plan_target(b.plan);
		stage_state *s = &b.stages[t->index];
		ib_digest id, manifest;
		/* the image is as old as its last step, so a cached rebuild is the same image */
		size_t nh = ib_image_config_history_count(s->config);
		ib_history_entry last = IB_HISTORY_ENTRY_INIT;
		if (nh && ib_image_config_history_get(&last, s->config, nh - 1) == 0 && last.created)
			rc = ib_image_config_set(s->config, IB_CONFIG_CREATED, last.created);
		if (rc == 0)
			rc = ib_build__apply_labels(&b, s->config);
		if (rc == 0)
			rc = ib_build__final_platform(&b, s->config);
		/* --cache-to type=inline: the records are part of the config, so of the image id (as BuildKit's) */
		if (rc == 0 && b.cache)
			rc = ib_build__cache_inline(&b, &s->config);
		ib_image_commit_options co = IB_IMAGE_COMMIT_OPTIONS_INIT;
		co.annotations = b.annotations.n ? (const char *const *)b.annotations.items : NULL;
		if (rc == 0)
			rc = ib_store_image_commit(&id, &manifest, store, s->config, s->layers, s->nlayers, &co);
		/* --cache-to: the records of the steps the build went through, before the names (a failed
		 * export fails the build, which then tags nothing) */
		if (rc == 0 && b.cache)
			rc = ib_build__cache_export(&b, &id);
		for (const char *const *t2 = opts->tags; rc == 0 && t2 && *t2; t2++)
			rc = ib_store_tag_manifest(store, *t2, &manifest);
		if (rc == 0 && image_id)
			*image_id = id;
		if (rc == 0 && manifest_out)
			*manifest_out = manifest;
	}
	if (fetcher)
		ib_store_set_remote_fetcher(store, NULL, NULL);
	if (leased)
		ib_store_lease_release(store);
	cleanup(&b);
	return ib_callback_result(rc);
}
