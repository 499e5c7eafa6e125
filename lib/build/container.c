/*
 * Containers: a record in the store (id, name, image, state, and in its
 * extra JSON the snapshotter that holds its files) plus a writable snapshot
 * keyed by the container id, prepared on the image's layers. The snapshot is
 * mounted only while a process runs, so changes persist between runs and a
 * commit reads them from the snapshot.
 */
#include "imagebuild/container.h"
#include "build/internal.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strlist.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ib_container {
	ib_store *store;
	ib_container_record *rec;
	char *snapshotter;
};

int ib_container_options_init(ib_container_options *opts, unsigned int version)
{
	if (version != IB_CONTAINER_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_container_options version %u", version);
	ib_container_options d = IB_CONTAINER_OPTIONS_INIT;
	*opts = d;
	return 0;
}

int ib_container_run_options_init(ib_container_run_options *opts, unsigned int version)
{
	/* version 1 had `const volatile int *cancel` where 2 has `callbacks`: same size, NULL either way */
	if (version < 1 || version > IB_CONTAINER_RUN_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_container_run_options version %u", version);
	ib_container_run_options d = IB_CONTAINER_RUN_OPTIONS_INIT;
	d.version = version;
	*opts = d;
	return 0;
}

/* How much of ib_commit_options a caller of `version` has (0: unknown version). */
static size_t commit_options_size(unsigned int version)
{
	if (version == 1)
		return offsetof(ib_commit_options, use_source_date_epoch);
	return version == IB_COMMIT_OPTIONS_VERSION ? sizeof(ib_commit_options) : 0;
}

int ib_commit_options_init(ib_commit_options *opts, unsigned int version)
{
	size_t size = commit_options_size(version);
	if (!opts || !size)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_commit_options version %u", version);
	ib_commit_options d = IB_COMMIT_OPTIONS_INIT;
	d.version = version;
	memcpy(opts, &d, size);
	return 0;
}

static int random_id(char out[65])
{
	unsigned char raw[32];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open /dev/urandom");
	ssize_t n = read(fd, raw, sizeof raw);
	close(fd);
	if (n != (ssize_t)sizeof raw)
		return ib_error_set(IB_LAYER_BUILD, "read /dev/urandom: short read");
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

static int open_snapshotter(ib_snapshotter **out, ib_container *c)
{
	int rc = ib_snapshotter_open(out, c->store, c->snapshotter, NULL);
	if (rc < 0)
		ib_error_prefix("container %.12s", c->rec->id);
	return rc;
}

static int valid_name(const char *name)
{
	/* docker: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
	if (!name[0] || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
			  (name[0] >= '0' && name[0] <= '9')))
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '.' || *p == '-'))
			return 0;
	return 1;
}

int ib_container_create(ib_container **out, ib_store *store, const char *image,
			const ib_container_options *opts)
{
	ib_container_options defaults = IB_CONTAINER_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	if (opts->version != IB_CONTAINER_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_container_options version %u", opts->version);
	if (opts->name) {
		ib_container_record *other = NULL;
		if (!valid_name(opts->name))
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					     "invalid container name `%s`: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
					     opts->name);
		if (ib_store_container_get(&other, store, opts->name) == 0) {
			int rc = ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD,
					       "the container name `%s` is already in use by container %.12s",
					       opts->name, other->id);
			ib_container_record_free(other);
			return rc;
		}
		ib_error_clear();
	}
	ib_image *img = NULL;
	ib_snapshotter *snap = NULL;
	ib_digest *chain = NULL;
	char id[65];
	int rc = ib_store_image_lookup(&img, store, image);
	if (rc == 0)
		rc = random_id(id);
	if (rc == 0)
		rc = ib_snapshotter_open(&snap, store, opts->snapshotter, NULL);
	const ib_image_config *cfg = img ? ib_image_config_of(img) : NULL;
	size_t n = cfg ? ib_image_config_diff_id_count(cfg) : 0;
	if (rc == 0 && n) {
		chain = ib_calloc(n, sizeof *chain);
		rc = chain ? 0 : IB_ERROR;
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = ib_image_config_diff_id(&chain[i], cfg, i);
	}
	ib_buf default_cmd = IB_BUF_INIT;
	size_t ncmd = cfg ? ib_image_config_list_count(cfg, IB_CONFIG_CMD) : 0;
	for (size_t i = 0; rc == 0 && !opts->command && i < ncmd; i++)
		if ((i && ib_buf_putc(&default_cmd, ' ') < 0) ||
		    ib_buf_puts(&default_cmd, ib_image_config_list_get(cfg, IB_CONFIG_CMD, i)) < 0)
			rc = IB_ERROR;
	if (rc == 0 && (rc = ib_store_lease_acquire(store)) == 0) {
		rc = ib_snapshot_prepare(snap, id, chain, n);
		if (rc == 0) {
			json_t *extra = json_pack("{s:s}", "snapshotter", ib_snapshotter_name(snap));
			ib_buf ej = IB_BUF_INIT;
			ib_json_dump(&ej, extra, 0);
			json_decref(extra);
			ib_container_record rec;
			memset(&rec, 0, sizeof rec);
			rec.version = IB_CONTAINER_RECORD_VERSION;
			rec.id = id;
			rec.name = opts->name;
			rec.image_id = *ib_image_id(img);
			rec.image_name = image;
			/*
			 * Without a command the image's CMD runs: docker records it at
			 * create (the Cmd of the container's config), and commit
			 * writes it as the history's created_by.
			 */
			rec.command = opts->command ? opts->command : default_cmd.ptr;
			rec.state = "created";
			rec.extra_json = ib_buf_cstr(&ej);
			rc = ib_store_container_put(store, &rec);
			/* the record keeps the snapshot from now on, not this process */
			if (rc == 0)
				rc = ib_snapshot_persist(snap, id);
			ib_buf_dispose(&ej);
			if (rc < 0) {
				ib_error_saved saved;
				ib_error_save(&saved);
				ib_store_container_remove(store, id);
				ib_snapshot_remove(snap, id);
				ib_error_restore(&saved);
			}
		}
		ib_store_lease_release(store);
	}
	ib_buf_dispose(&default_cmd);
	free(chain);
	ib_snapshotter_free(snap);
	ib_image_free(img);
	if (rc < 0)
		return rc;
	return ib_container_open(out, store, id);
}

int ib_container_open(ib_container **out, ib_store *store, const char *id_or_name)
{
	ib_container *c = ib_calloc(1, sizeof *c);
	if (!c)
		return IB_ERROR;
	c->store = store;
	int rc = ib_store_container_get(&c->rec, store, id_or_name);
	if (rc == 0) {
		json_t *extra = NULL;
		const char *name = NULL;
		if (c->rec->extra_json &&
		    ib_json_loadb(&extra, c->rec->extra_json, strlen(c->rec->extra_json), "container record") == 0)
			name = ib_json_str(extra, "snapshotter");
		c->snapshotter = name ? ib_strdup(name) : NULL;
		json_decref(extra);
		ib_error_clear();
	}
	if (rc < 0) {
		ib_container_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void ib_container_free(ib_container *c)
{
	if (!c)
		return;
	ib_container_record_free(c->rec);
	free(c->snapshotter);
	free(c);
}

const char *ib_container_id(const ib_container *c)
{
	return c->rec->id;
}

const char *ib_container_name(const ib_container *c)
{
	return c->rec->name;
}

const ib_digest *ib_container_image_id(const ib_container *c)
{
	return &c->rec->image_id;
}

static int set_state(ib_container *c, const char *state)
{
	ib_container_record rec = *c->rec;
	rec.state = state;
	return ib_store_container_put(c->store, &rec);
}

static int image_config(ib_image_config **out, ib_container *c)
{
	char id[IB_DIGEST_STRLEN];
	ib_image *img = NULL;
	ib_digest_fmt(id, &c->rec->image_id);
	int rc = ib_store_image_lookup(&img, c->store, id);
	if (rc == 0)
		rc = ib_image_config_dup(out, ib_image_config_of(img));
	ib_image_free(img);
	return rc;
}

int ib_container_run(ib_exit_status *out, ib_container *c, const ib_container_run_options *o)
{
	ib_container_run_options defaults = IB_CONTAINER_RUN_OPTIONS_INIT;
	if (!o)
		o = &defaults;
	ib_container_run_options v2;
	ib_callbacks v1_cancel = IB_CALLBACKS_INIT;
	if (o->version == 1) { /* its last field was the cancel flag */
		v2 = *o;
		memcpy(&v1_cancel.cancel, &o->callbacks, sizeof v1_cancel.cancel);
		v2.version = IB_CONTAINER_RUN_OPTIONS_VERSION;
		v2.callbacks = v1_cancel.cancel ? &v1_cancel : NULL;
		o = &v2;
	}
	if (o->version != IB_CONTAINER_RUN_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_container_run_options version %u", o->version);
	if (ib_callback_validate(o->callbacks, IB_LAYER_BUILD) < 0)
		return IB_EINVALID;
	ib_image_config *cfg = NULL;
	ib_snapshotter *snap = NULL;
	ib_strlist argv = IB_STRLIST_INIT, env = IB_STRLIST_INIT;
	ib_buf rootfs = IB_BUF_INIT;
	char hostname[13];
	int mounted = 0;
	int rc = image_config(&cfg, c);
	/* docker run: ENTRYPOINT (image's or given), then the command (given, else CMD) */
	if (rc == 0) {
		if (o->entrypoint) {
			for (const char *const *a = o->entrypoint; *a; a++)
				ib_strlist_add(&argv, *a);
		} else {
			size_t n = ib_image_config_list_count(cfg, IB_CONFIG_ENTRYPOINT);
			for (size_t i = 0; i < n; i++)
				ib_strlist_add(&argv, ib_image_config_list_get(cfg, IB_CONFIG_ENTRYPOINT, i));
		}
		if (o->argv) {
			for (const char *const *a = o->argv; *a; a++)
				ib_strlist_add(&argv, *a);
		} else {
			size_t n = ib_image_config_list_count(cfg, IB_CONFIG_CMD);
			for (size_t i = 0; i < n; i++)
				ib_strlist_add(&argv, ib_image_config_list_get(cfg, IB_CONFIG_CMD, i));
		}
		if (argv.n == 0)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					   "no command given and the image has neither CMD nor ENTRYPOINT");
	}
	if (rc == 0) {
		size_t n = ib_image_config_list_count(cfg, IB_CONFIG_ENV);
		for (size_t i = 0; i < n; i++)
			ib_strlist_add(&env, ib_image_config_list_get(cfg, IB_CONFIG_ENV, i));
		for (const char *const *e = o->env; e && *e; e++)
			ib_strlist_add(&env, *e);
		rc = open_snapshotter(&snap, c);
	}
	if (rc == 0 && (rc = ib_snapshot_mount(&rootfs, snap, c->rec->id)) == 0)
		mounted = 1;
	if (rc == 0)
		rc = set_state(c, "running");
	if (rc == 0) {
		ib_process p = IB_PROCESS_INIT;
		ib_execute_options eo = IB_EXECUTE_OPTIONS_INIT;
		snprintf(hostname, sizeof hostname, "%.12s", c->rec->id);
		p.argv = (const char *const *)argv.items;
		p.env = (const char *const *)env.items;
		p.user = o->user ? o->user : ib_image_config_get(cfg, IB_CONFIG_USER);
		p.cwd = o->workdir ? o->workdir : ib_image_config_get(cfg, IB_CONFIG_WORKDIR);
		p.hostname = o->hostname ? o->hostname : hostname;
		p.network = o->network;
		p.tty = o->tty;
		p.stdin_fd = o->stdin_fd;
		p.stdout_fd = o->stdout_fd;
		p.stderr_fd = o->stderr_fd;
		eo.isolation = o->isolation;
		eo.callbacks = o->callbacks;
		if (o->callbacks && o->callbacks->log) {
			p.log = o->callbacks->log;
			p.log_payload = o->callbacks->payload;
		}
		/* the run directory (hosts, resolv.conf) in the container's: a killed run's goes with the container */
		ib_buf cdir = IB_BUF_INIT;
		if (ib_store_container_dir(&cdir, c->store, c->rec->id) == 0)
			eo.tmp_dir = cdir.ptr;
		ib_error_clear();
		rc = ib_execute_run(out, rootfs.ptr, &p, &eo);
		ib_buf_dispose(&cdir);
		char state[64];
		if (rc == 0 && out->signal)
			snprintf(state, sizeof state, "exited (signal %d)", out->signal);
		else if (rc == 0)
			snprintf(state, sizeof state, "exited (%d)", out->code);
		else
			snprintf(state, sizeof state, "failed");
		ib_error_saved saved;
		ib_error_save(&saved);
		set_state(c, state);
		ib_error_restore(&saved);
	}
	if (mounted) {
		ib_error_saved saved;
		ib_error_save(&saved);
		int urc = ib_snapshot_unmount(snap, c->rec->id);
		ib_error_restore(&saved);
		if (rc == 0 && urc < 0)
			rc = ib_snapshot_unmount(snap, c->rec->id);
	}
	ib_snapshotter_free(snap);
	ib_image_config_free(cfg);
	ib_strlist_clear(&argv);
	ib_strlist_clear(&env);
	ib_buf_dispose(&rootfs);
	if (rc < 0)
		ib_error_prefix("run in container %.12s", c->rec->id);
	return ib_callback_result(rc);
}

int ib_commit_apply_change(ib_image_config *config, const char *change)
{
	ib_instruction *in = NULL;
	int rc = ib_instruction_parse_single(&in, change, NULL);
	if (rc == 0)
		rc = ib_build__apply_change(config, in);
	ib_instruction_free(in);
	if (rc < 0)
		ib_error_prefix("change `%s`", change);
	return rc;
}

int ib_container_commit(ib_digest *image_id, ib_container *c, const ib_commit_options *opts)
{
	ib_commit_options grown = IB_COMMIT_OPTIONS_INIT;
	const ib_commit_options *o = &grown;
	if (opts) {
		size_t size = commit_options_size(opts->version);
		if (!size)
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_commit_options version %u",
					     opts->version);
		memcpy(&grown, opts, size);
	}
	if (o->use_source_date_epoch && o->source_date_epoch < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "SOURCE_DATE_EPOCH %lld is negative",
				     (long long)o->source_date_epoch);
	ib_diff_options dopts = IB_DIFF_OPTIONS_INIT;
	dopts.use_source_date_epoch = o->use_source_date_epoch;
	dopts.source_date_epoch = o->source_date_epoch;
	ib_image_config *cfg = NULL;
	ib_snapshotter *snap = NULL;
	ib_layer *layers = NULL;
	int leased = 0;
	int rc = image_config(&cfg, c);
	/* the changes first: a bad one fails before anything is written */
	for (const char *const *ch = o->changes; rc == 0 && ch && *ch; ch++)
		rc = ib_commit_apply_change(cfg, *ch);
	if (rc == 0)
		rc = open_snapshotter(&snap, c);
	if (rc == 0 && (rc = ib_store_lease_acquire(c->store)) == 0)
		leased = 1;
	ib_digest diff_id;
	uint64_t size = 0;
	if (rc == 0)
		rc = ib_snapshot_commit(&diff_id, &size, snap, c->rec->id, &dopts);
	if (rc == 0)
		rc = ib_image_config_diff_id_add(cfg, &diff_id);
	if (rc == 0) {
		ib_history_entry e = IB_HISTORY_ENTRY_INIT;
		rc = o->use_source_date_epoch ? ib_image_config_set_created_at(cfg, o->source_date_epoch)
					      : ib_image_config_set_created_now(cfg);
		e.created = ib_image_config_get(cfg, IB_CONFIG_CREATED);
		e.created_by = c->rec->command ? c->rec->command : "";
		e.comment = o->message;
		e.author = o->author;
		if (rc == 0)
			rc = ib_image_config_history_add(cfg, &e);
		if (rc == 0 && o->author)
			rc = ib_image_config_set(cfg, IB_CONFIG_AUTHOR, o->author);
	}
	size_t n = cfg ? ib_image_config_diff_id_count(cfg) : 0;
	if (rc == 0) {
		layers = ib_calloc(n ? n : 1, sizeof *layers);
		rc = layers ? 0 : IB_ERROR;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = ib_image_config_diff_id(&layers[i].diff_id, cfg, i);
		layers[i].digest = layers[i].diff_id;
		if (rc == 0)
			rc = ib_store_blob_size(&layers[i].size, c->store, &layers[i].digest);
	}
	if (rc == 0) {
		ib_image_commit_options co = IB_IMAGE_COMMIT_OPTIONS_INIT;
		co.name = o->tag;
		rc = ib_store_image_commit(image_id, NULL, c->store, cfg, layers, n, &co);
	}
	if (leased)
		ib_store_lease_release(c->store);
	free(layers);
	ib_snapshotter_free(snap);
	ib_image_config_free(cfg);
	if (rc < 0)
		ib_error_prefix("commit container %.12s", c->rec->id);
	return rc;
}

int ib_container_remove(ib_store *store, const char *id_or_name)
{
	ib_container *c = NULL;
	ib_snapshotter *snap = NULL;
	int rc = ib_container_open(&c, store, id_or_name);
	if (rc < 0)
		return rc;
	rc = open_snapshotter(&snap, c);
	if (rc == 0 && ib_snapshot_exists(snap, c->rec->id) == 1) {
		ib_snapshot_unmount(snap, c->rec->id);
		ib_error_clear();
		rc = ib_snapshot_remove(snap, c->rec->id);
	}
	if (rc == 0)
		rc = ib_store_container_remove(store, c->rec->id);
	if (rc < 0)
		ib_error_prefix("remove container %s", id_or_name);
	ib_snapshotter_free(snap);
	ib_container_free(c);
	return rc;
}
