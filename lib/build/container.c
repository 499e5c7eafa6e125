/*
 * Containers: a record in the store (id, name, image, state, and in its
 * extra JSON the snapshotter that holds its files) plus a writable snapshot
 * keyed by the container id, prepared on the image's layers. The snapshot is
 * mounted only while a process runs, so changes persist between runs and a
 * commit reads them from the snapshot.
 */
#include "imagebuild/container.h"
#include "build/internal.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strlist.h"

#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
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

/* How much of ib_container_run_options a caller of `version` has (0: unknown version). */
static size_t run_options_size(unsigned int version)
{
	/* version 1 had `const volatile int *cancel` where 2 has `callbacks`: same size */
	if (version == 1 || version == 2)
		return offsetof(ib_container_run_options, mounts);
	return version == IB_CONTAINER_RUN_OPTIONS_VERSION ? sizeof(ib_container_run_options) : 0;
}

int ib_container_run_options_init(ib_container_run_options *opts, unsigned int version)
{
	size_t size = run_options_size(version);
	if (!opts || !size)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_container_run_options version %u", version);
	static const ib_container_run_options d = IB_CONTAINER_RUN_OPTIONS_INIT; /* zero padding */
	memcpy(opts, &d, size);
	opts->version = version;
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
	int rc = random_id(id);
	if (rc == 0)
		rc = ib_snapshotter_open(&snap, store, opts->snapshotter, NULL);
	/*
	 * The lease from before the image is looked up to the record: a prune
	 * (`rmi IMAGE; prune` at the same time) between the two would take the
	 * config and layers the record is about to name.
	 */
	int leased = rc == 0 && (rc = ib_store_lease_acquire(store)) == 0;
	if (rc == 0)
		rc = ib_store_image_lookup(&img, store, image);
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
	if (rc == 0) {
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
	}
	if (leased)
		ib_store_lease_release(store);
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
	if (rc == IB_ENOTFOUND) {
		/*
		 * The image was removed with `rmi -f` (docker's removes it too while a
		 * stopped container uses it, and the container still starts): its
		 * config stays, as GC keeps what a container record names, checked
		 * against its digest as it is read.
		 */
		ib_buf b = IB_BUF_INIT;
		ib_error_saved saved;
		ib_error_save(&saved);
		if (ib_store_blob_read(&b, c->store, &c->rec->image_id) == 0 &&
		    ib_image_config_from_json(out, b.ptr, b.size) == 0)
			rc = 0;
		else
			ib_error_restore(&saved);
		ib_buf_dispose(&b);
	}
	return rc;
}

/* A file of the container's directory in the store (log, lock, pid). */
static int container_file(ib_buf *out, ib_container *c, const char *name)
{
	int rc = ib_store_container_dir(out, c->store, c->rec->id);
	if (rc == 0)
		rc = ib_buf_printf(out, "/%s", name) < 0 ? IB_ERROR : 0;
	return rc;
}

/*
 * The run lock: held (flock, exclusive) by whatever runs the container's
 * process, a foreground ib_container_run() or a supervisor, for as long as
 * it runs. Free: nothing runs. `how` is LOCK_EX or LOCK_SH, with LOCK_NB or
 * not. 1 when taken (*fd open), 0 when held by another (LOCK_NB), < 0 on
 * error.
 */
static int run_lock(int *fd, ib_container *c, int how)
{
	ib_buf path = IB_BUF_INIT;
	int rc = container_file(&path, c, "run.lock");
	*fd = -1;
	if (rc == 0 && (*fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", path.ptr);
	while (rc == 0 && flock(*fd, how) < 0) {
		if (errno == EINTR)
			continue;
		rc = errno == EWOULDBLOCK ? 0 : ib_error_set_os(IB_LAYER_BUILD, "lock `%s`", path.ptr);
		close(*fd);
		*fd = -1;
		ib_buf_dispose(&path);
		return rc;
	}
	ib_buf_dispose(&path);
	if (rc < 0) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return rc;
	}
	return 1;
}

static int refresh(ib_container *c)
{
	ib_container_record *rec = NULL;
	int rc = ib_store_container_get(&rec, c->store, c->rec->id);
	if (rc == 0) {
		ib_container_record_free(c->rec);
		c->rec = rec;
	}
	return rc;
}

int ib_container_running(ib_container *c)
{
	int fd, rc = run_lock(&fd, c, LOCK_SH | LOCK_NB);
	if (rc == 1)
		close(fd);
	return rc < 0 ? rc : !rc;
}

static int valid_volume_name(const char *name);

static int volume_dir(ib_buf *out, ib_store *store, const char *name, int data)
{
	if (!name || !valid_volume_name(name))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				     "invalid volume name `%s`: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
				     name ? name : "");
	ib_buf_clear(out);
	return ib_buf_printf(out, "%s/volumes/%s%s", ib_store_root(store), name, data ? "/_data" : "") < 0
		       ? IB_ERROR : 0;
}

/* The host program bound as the container's init (--init). */
static int find_init(ib_buf *out, const char *given)
{
	static const char *const candidates[] = {
		"/usr/libexec/podman/catatonit", "/usr/bin/catatonit", "/usr/bin/tini-static",
		"/usr/libexec/docker/docker-init",
	};
	char real[PATH_MAX];
	if (given) {
		if (!realpath(given, real))
			return ib_error_set_os(IB_LAYER_BUILD, "init program `%s`", given);
		return ib_buf_set(out, real, strlen(real)) < 0 ? IB_ERROR : 0;
	}
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
		if (realpath(candidates[i], real) && access(real, X_OK) == 0)
			return ib_buf_set(out, real, strlen(real)) < 0 ? IB_ERROR : 0;
	return ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD,
			     "no init program for --init: none of /usr/libexec/podman/catatonit, "
			     "/usr/bin/catatonit, /usr/bin/tini-static, /usr/libexec/docker/docker-init "
			     "exists (install catatonit or tini, or give its path)");
}

/* 1 when the directory at `path` has no entries. */
static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *de;
	int empty = 1;
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/*
 * Docker's copy-up: an empty named volume mounted where the image has a
 * directory gets that directory's files (owner, mode, times, links kept)
 * and its owner and mode, before the run. `target` is resolved inside the
 * root; a target that is missing or not a directory copies nothing.
 */
static int volume_copy_up(const char *rootfs, const char *target, const char *data)
{
	int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open `%s`", rootfs);
	int src = ib_open_in_root(rootfd, target, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (src < 0) { /* nothing there (or not a directory): nothing to copy */
		ib_error_clear();
		close(rootfd);
		return 0;
	}
	struct stat st;
	int dst = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = dst < 0 ? ib_error_set_os(IB_LAYER_BUILD, "open volume `%s`", data) : 0;
	if (rc == 0 && fstat(src, &st) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "stat `%s` in the container", target);
	if (rc == 0) {
		ib_build__copy_opts co;
		memset(&co, 0, sizeof co);
		rc = ib_build__copy(src, ".", dst, "/", 1, &co);
	}
	if (rc == 0 && (fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0))
		rc = ib_error_set_os(IB_LAYER_BUILD, "give volume `%s` the owner and mode of `%s`", data, target);
	if (rc < 0)
		ib_error_prefix("copy `%s` of the image into its volume", target);
	if (dst >= 0)
		close(dst);
	close(src);
	close(rootfd);
	return rc;
}

/* Where --init binds the init program, as docker. */
#define INIT_TARGET "/sbin/docker-init"

/*
 * Run the container's process. `forward` (may be NULL): signals to pass on
 * (a supervisor's); `locked`: the caller holds the run lock already.
 */
static int container_run(ib_exit_status *out, ib_container *c, const ib_container_run_options *o,
			 volatile int *forward, int locked, void (*started)(void *), void *started_payload)
{
	ib_container_run_options grown = IB_CONTAINER_RUN_OPTIONS_INIT;
	ib_callbacks v1_cancel = IB_CALLBACKS_INIT;
	if (o) {
		size_t size = run_options_size(o->version);
		if (!size)
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_container_run_options version %u",
					     o->version);
		memcpy(&grown, o, size);
		grown.version = IB_CONTAINER_RUN_OPTIONS_VERSION;
		if (o->version == 1) { /* its callbacks field was the cancel flag */
			memcpy(&v1_cancel.cancel, &o->callbacks, sizeof v1_cancel.cancel);
			grown.callbacks = v1_cancel.cancel ? &v1_cancel : NULL;
		}
	}
	o = &grown;
	if (ib_callback_validate(o->callbacks, IB_LAYER_BUILD) < 0)
		return IB_EINVALID;
	if (o->nmounts && !o->mounts)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "nmounts is %zu but mounts is NULL", o->nmounts);
	int lock_fd = -1;
	if (!locked) {
		int lrc = run_lock(&lock_fd, c, LOCK_EX | LOCK_NB);
		if (lrc == 0)
			return ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD,
					     "container %.12s is running; only one process runs in a container "
					     "at a time here", c->rec->id);
		if (lrc < 0)
			return lrc;
	}
	ib_mount *mounts = NULL;
	ib_strlist vols = IB_STRLIST_INIT;
	ib_buf init_path = IB_BUF_INIT;
	size_t nmounts = o->nmounts + (o->init ? 1 : 0);
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
	/* --init: the init first, the command after `--` */
	if (rc == 0 && o->init && (rc = find_init(&init_path, o->init_path)) == 0) {
		ib_strlist with = IB_STRLIST_INIT;
		ib_strlist_add(&with, INIT_TARGET);
		ib_strlist_add(&with, "--");
		for (size_t i = 0; i < argv.n; i++)
			ib_strlist_add(&with, argv.items[i]);
		ib_strlist_clear(&argv);
		argv = with;
	}
	if (rc == 0 && nmounts) {
		mounts = ib_calloc(nmounts, sizeof *mounts);
		rc = mounts ? 0 : IB_ERROR;
	}
	/* named volumes: their directory in the store, made when missing (as docker) */
	for (size_t i = 0; rc == 0 && i < o->nmounts; i++) {
		mounts[i] = o->mounts[i];
		if (o->mounts[i].type != IB_MOUNT_VOLUME)
			continue;
		ib_buf dir = IB_BUF_INIT;
		rc = volume_dir(&dir, c->store, o->mounts[i].source, 1);
		if (rc == 0 && !ib_path_exists(dir.ptr)) {
			rc = ib_volume_create(c->store, o->mounts[i].source);
			if (rc == IB_EEXISTS) { /* made at the same time by another run */
				ib_error_clear();
				rc = 0;
			}
		}
		if (rc == 0)
			rc = ib_strlist_add(&vols, dir.ptr);
		ib_buf_dispose(&dir);
		if (rc == 0) {
			mounts[i].type = IB_MOUNT_BIND;
			mounts[i].source = vols.items[vols.n - 1];
		}
	}
	if (rc == 0 && o->init) {
		ib_mount im = { IB_MOUNT_BIND, init_path.ptr, INIT_TARGET, 1, NULL };
		mounts[nmounts - 1] = im;
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
		p.mounts = mounts;
		p.nmounts = nmounts;
		p.rlimits = o->rlimits;
		p.nrlimits = o->nrlimits;
		p.readonly_rootfs = o->readonly_rootfs;
		p.cap_add = o->cap_add;
		p.cap_drop = o->cap_drop;
		eo.isolation = o->isolation;
		eo.callbacks = o->callbacks;
		eo.forward_signal = forward;
		eo.started = started;
		eo.started_payload = started_payload;
		if (o->callbacks && o->callbacks->log) {
			p.log = o->callbacks->log;
			p.log_payload = o->callbacks->payload;
		}
		/* the run directory (hosts, resolv.conf) in the container's: a killed run's goes with the container */
		ib_buf cdir = IB_BUF_INIT;
		if (ib_store_container_dir(&cdir, c->store, c->rec->id) == 0)
			eo.tmp_dir = cdir.ptr;
		ib_error_clear();
		/* empty named volumes get the image's files first, unless "nocopy" */
		for (size_t i = 0; rc == 0 && i < o->nmounts; i++)
			if (o->mounts[i].type == IB_MOUNT_VOLUME &&
			    !(o->mounts[i].options && !strcmp(o->mounts[i].options, "nocopy")) &&
			    dir_is_empty(mounts[i].source))
				rc = volume_copy_up(rootfs.ptr, o->mounts[i].target, mounts[i].source);
		if (rc == 0)
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
	ib_strlist_clear(&vols);
	ib_buf_dispose(&init_path);
	free(mounts);
	ib_buf_dispose(&rootfs);
	if (lock_fd >= 0)
		close(lock_fd);
	if (rc < 0)
		ib_error_prefix("run in container %.12s", c->rec->id);
	return ib_callback_result(rc);
}

int ib_container_run(ib_exit_status *out, ib_container *c, const ib_container_run_options *o)
{
	return container_run(out, c, o, NULL, 0, NULL, NULL);
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
	int running = ib_container_running(c);
	if (running > 0)
		rc = ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD,
				   "container %.12s is running: stop it first", c->rec->id);
	else if (running < 0)
		rc = running;
	if (rc == 0)
		rc = open_snapshotter(&snap, c);
	/*
	 * The record first, then the snapshot: a removal killed or failing in
	 * between leaves a snapshot nothing keeps (prune removes it), never a
	 * record of a container whose files are gone. The snapshot is this
	 * process's first (adopted): a prune in between would otherwise take
	 * it as nobody's and remove it at the same time as we do (one of the
	 * two then failed, a directory gone under its walk).
	 */
	if (rc == 0 && (rc = ib_snapshot_adopt(snap, c->rec->id)) == IB_ENOTFOUND) {
		ib_error_clear(); /* no snapshot (removed before): the record goes */
		rc = 0;
	}
	if (rc == 0)
		rc = ib_store_container_remove(store, c->rec->id);
	if (rc == 0 && ib_snapshot_exists(snap, c->rec->id) == 1) {
		ib_snapshot_unmount(snap, c->rec->id);
		ib_error_clear();
		if ((rc = ib_snapshot_remove(snap, c->rec->id)) < 0)
			ib_error_prefix("its record is removed, its snapshot is left for prune");
	}
	if (rc < 0)
		ib_error_prefix("remove container %s", id_or_name);
	ib_snapshotter_free(snap);
	ib_container_free(c);
	return rc;
}

/* ---- detached containers: a supervisor per container, as podman's conmon ---- */

/* The signal ib_container_kill() queues to a supervisor, with the signal to pass on as its value. */
static int control_signal(void)
{
	return SIGRTMIN;
}

static volatile int supervisor_forward;
static int supervisor_control;

static void supervisor_handler(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	int pass = sig;
	if (sig == supervisor_control && si && si->si_code == SI_QUEUE)
		pass = si->si_value.sival_int;
	__atomic_store_n(&supervisor_forward, pass, __ATOMIC_SEQ_CST);
}

/* What the supervisor tells ib_container_start() once it holds the container, or why it cannot. */
typedef struct {
	int rc;
	char message[1024];
} start_report;

static void report_start(int fd, int rc, const char *message)
{
	start_report r;
	memset(&r, 0, sizeof r);
	r.rc = rc;
	snprintf(r.message, sizeof r.message, "%s", message ? message : "");
	ssize_t n;
	while ((n = write(fd, &r, sizeof r)) < 0 && errno == EINTR)
		;
	(void)n;
}

/* The supervisor's report pipe until the process runs (ib_execute_options.started), then -1. */
static int supervisor_report_fd = -1;

static void supervisor_started(void *payload)
{
	(void)payload;
	if (supervisor_report_fd >= 0) {
		report_start(supervisor_report_fd, 0, NULL);
		close(supervisor_report_fd);
		supervisor_report_fd = -1;
	}
}

/* The supervisor: never returns. */
static void supervise(const char *root, const char *id, const ib_container_run_options *o, int report_fd)
	__attribute__((noreturn));
static void supervise(const char *root, const char *id, const ib_container_run_options *o, int report_fd)
{
	/* nothing of the caller's: its pipes must see EOF when it ends, not when we do */
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	int rep = fcntl(report_fd, F_DUPFD_CLOEXEC, 3);
	if (nul < 0 || rep < 0)
		_exit(1);
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	int keep = rep > nul ? rep : nul, low = rep < nul ? rep : nul;
	for (int fd = 3; fd < low; fd++)
		close(fd);
	for (int fd = low + 1; fd < keep; fd++)
		close(fd);
	syscall(SYS_close_range, (unsigned int)keep + 1, ~0U, 0U);
	close(nul);

	supervisor_control = control_signal();
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = supervisor_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGALRM, SIGWINCH };
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaction(forwarded[i], &sa, NULL);
	sigaction(supervisor_control, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	ib_store *store = NULL;
	ib_container *c = NULL;
	int lock_fd = -1, log_fd = -1;
	ib_buf path = IB_BUF_INIT;
	int rc = ib_store_open(&store, root, NULL);
	if (rc == 0)
		rc = ib_container_open(&c, store, id);
	if (rc == 0) {
		rc = run_lock(&lock_fd, c, LOCK_EX | LOCK_NB);
		if (rc == 0)
			rc = ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD, "container %.12s is running", id);
		else if (rc == 1)
			rc = 0;
	}
	if (rc == 0 && (rc = container_file(&path, c, "container.log")) == 0 &&
	    (log_fd = open(path.ptr, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "open the log `%s`", path.ptr);
	if (rc == 0 && (rc = container_file(&path, c, "supervisor.pid")) == 0) {
		char pid[32];
		int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		rc = ib_atomic_write(path.ptr, pid, (size_t)n, 0600);
	}
	if (rc == 0)
		rc = set_state(c, "running");
	if (rc < 0) {
		report_start(rep, rc, ib_error_last()->message);
		_exit(1);
	}
	/* ib_container_start() returns once the process runs, or fails with why it cannot (docker run -d) */
	supervisor_report_fd = rep;
	ib_container_run_options run = *o;
	run.stdin_fd = -1;
	run.stdout_fd = log_fd;
	run.stderr_fd = log_fd;
	ib_exit_status st = { 0, 0 };
	rc = container_run(&st, c, &run, &supervisor_forward, 1, supervisor_started, NULL);
	if (rc < 0) {
		/* why it did not start, where `logs` shows it */
		ib_error_saved saved;
		ib_error_save(&saved);
		char line[1200];
		int n = snprintf(line, sizeof line, "imagebuild: %s\n", ib_error_last()->message);
		if (n > 0)
			ib_write_all(log_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
		if (st.code == 126 || st.code == 127) {
			char state[64];
			snprintf(state, sizeof state, "exited (%d)", st.code);
			set_state(c, state);
		}
		ib_error_restore(&saved);
		/* the state first: the caller reads the exit status from it */
		if (supervisor_report_fd >= 0) {
			report_start(supervisor_report_fd, rc, ib_error_last()->message);
			close(supervisor_report_fd);
			supervisor_report_fd = -1;
		}
	}
	if (supervisor_report_fd >= 0) { /* ended without running (cannot happen: the run failed or started) */
		report_start(supervisor_report_fd, IB_ERROR, "the process ended before it started");
		close(supervisor_report_fd);
		supervisor_report_fd = -1;
	}
	if (container_file(&path, c, "supervisor.pid") == 0)
		unlink(path.ptr);
	_exit(rc < 0 ? 1 : 0);
}

int ib_container_start(ib_container *c, const ib_container_run_options *opts)
{
	ib_container_run_options o = IB_CONTAINER_RUN_OPTIONS_INIT;
	if (opts) {
		size_t size = run_options_size(opts->version);
		if (!size || opts->version == 1)
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "unknown ib_container_run_options version %u",
					     opts->version);
		memcpy(&o, opts, size);
		o.version = IB_CONTAINER_RUN_OPTIONS_VERSION;
	}
	if (o.tty || o.stdin_fd != -1 || o.stdout_fd != -1 || o.stderr_fd != -1 || o.callbacks)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				     "a detached container has no terminal, standard streams or callbacks: its "
				     "output goes to its log");
	int running = ib_container_running(c);
	if (running < 0)
		return running;
	if (running)
		return ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD, "container %.12s is running", c->rec->id);
	char *root = ib_strdup(ib_store_root(c->store));
	char id[65];
	snprintf(id, sizeof id, "%s", c->rec->id);
	int fds[2];
	if (!root)
		return IB_ERROR;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(root);
		return ib_error_set_os(IB_LAYER_BUILD, "pipe");
	}
	pid_t first = fork();
	if (first == 0) {
		/* a session of its own, and not our child: it outlives us, init reaps it */
		close(fds[0]);
		setsid();
		pid_t second = fork();
		if (second == 0)
			supervise(root, id, &o, fds[1]);
		_exit(second < 0 ? 1 : 0);
	}
	int err = errno;
	close(fds[1]);
	free(root);
	if (first < 0) {
		close(fds[0]);
		errno = err;
		return ib_error_set_os(IB_LAYER_BUILD, "fork the supervisor");
	}
	int ws;
	while (waitpid(first, &ws, 0) < 0 && errno == EINTR)
		;
	start_report r;
	ssize_t n;
	while ((n = read(fds[0], &r, sizeof r)) < 0 && errno == EINTR)
		;
	close(fds[0]);
	if (n != (ssize_t)sizeof r)
		return ib_error_set(IB_LAYER_BUILD, "start container %.12s: the supervisor ended before it started",
				    id);
	if (r.rc < 0)
		return ib_error_setc(r.rc, IB_LAYER_BUILD, "start container %.12s: %s", id, r.message);
	return refresh(c);
}

/* The exit status a finished run recorded in the state ("exited (N)", "exited (signal N)"). */
static int recorded_status(ib_exit_status *out, ib_container *c)
{
	const char *state = c->rec->state ? c->rec->state : "";
	int v;
	if (sscanf(state, "exited (signal %d)", &v) == 1) {
		out->signal = v;
		out->code = 128 + v;
		return 0;
	}
	if (sscanf(state, "exited (%d)", &v) == 1) {
		out->signal = 0;
		out->code = v;
		return 0;
	}
	if (!strcmp(state, "created"))
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "container %.12s has never run", c->rec->id);
	if (!strcmp(state, "failed"))
		return ib_error_set(IB_LAYER_BUILD, "container %.12s: its process failed to start (see its logs)",
				    c->rec->id);
	return ib_error_set(IB_LAYER_BUILD, "container %.12s: its run ended without an exit status (state `%s`)",
			    c->rec->id, state);
}

int ib_container_wait(ib_exit_status *out, ib_container *c)
{
	ib_exit_status dummy;
	if (!out)
		out = &dummy;
	int fd, rc = run_lock(&fd, c, LOCK_SH); /* blocks while the process runs */
	if (rc < 0)
		return rc;
	close(fd);
	rc = refresh(c);
	if (rc == 0)
		rc = recorded_status(out, c);
	return rc;
}

/* The supervisor's pid while it holds the container; 0 when nothing runs detached. */
static int supervisor_pid(pid_t *out, ib_container *c)
{
	*out = 0;
	int running = ib_container_running(c);
	if (running <= 0)
		return running;
	ib_buf path = IB_BUF_INIT, content = IB_BUF_INIT;
	int rc = container_file(&path, c, "supervisor.pid");
	if (rc == 0 && ib_read_file(&content, path.ptr) == 0)
		*out = (pid_t)atol(ib_buf_cstr(&content));
	ib_error_clear();
	ib_buf_dispose(&path);
	ib_buf_dispose(&content);
	return rc;
}

int ib_container_kill(ib_container *c, int sig)
{
	if (sig <= 0 || sig >= NSIG)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid signal %d", sig);
	if (sig == SIGSTOP)
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
				     "SIGSTOP is not supported (it would stop the runtime's helper, not the container)");
	pid_t pid;
	int rc = supervisor_pid(&pid, c);
	if (rc < 0)
		return rc;
	if (pid <= 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "container %.12s is not running detached",
				     c->rec->id);
	union sigval v;
	v.sival_int = sig;
	if (sigqueue(pid, control_signal(), v) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "signal the supervisor %ld of container %.12s", (long)pid,
				       c->rec->id);
	return 0;
}

/* A signal by name ("SIGTERM", "TERM") or number; 0 when unknown. */
static int signal_number(const char *s)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
		{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT },
		{ "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
		{ "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU },
		{ "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH },
		{ "IO", SIGIO }, { "PWR", SIGPWR }, { "SYS", SIGSYS },
	};
	if (!s || !*s)
		return 0;
	if (*s >= '0' && *s <= '9') {
		int n = atoi(s);
		return n > 0 && n < NSIG ? n : 0;
	}
	const char *bare = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(names[i].name, bare) == 0)
			return names[i].sig;
	return 0;
}

int ib_container_stop(ib_exit_status *out, ib_container *c, int timeout)
{
	ib_exit_status dummy;
	if (!out)
		out = &dummy;
	if (timeout < 0)
		timeout = 10;
	pid_t pid;
	int rc = supervisor_pid(&pid, c);
	if (rc < 0)
		return rc;
	if (pid <= 0) { /* not running: nothing to do, as docker */
		if (ib_container_running(c) == 1)
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
					     "container %.12s runs in the foreground, not detached", c->rec->id);
		if (refresh(c) == 0 && recorded_status(out, c) < 0)
			ib_error_clear();
		return 0;
	}
	ib_image_config *cfg = NULL;
	int sig = SIGTERM;
	if (image_config(&cfg, c) == 0) {
		const char *stop = ib_image_config_get(cfg, IB_CONFIG_STOPSIGNAL);
		if (stop && *stop && !(sig = signal_number(stop)))
			sig = SIGTERM;
	}
	ib_error_clear();
	ib_image_config_free(cfg);
	rc = ib_container_kill(c, sig);
	/* wait up to `timeout` seconds, then kill */
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int r = ib_container_running(c);
		if (r <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout || rc < 0) {
			ib_error_clear();
			rc = ib_container_kill(c, SIGKILL);
			if (rc < 0 && ib_container_running(c) == 0) {
				ib_error_clear();
				rc = 0;
			}
			break;
		}
		struct timespec tick = { 0, 50 * 1000 * 1000 };
		nanosleep(&tick, NULL);
	}
	if (rc < 0)
		return rc;
	return ib_container_wait(out, c);
}

int ib_container_logs(ib_container *c, int fd, int follow)
{
	ib_buf path = IB_BUF_INIT;
	int rc = container_file(&path, c, "container.log");
	int in = rc == 0 ? open(path.ptr, O_RDONLY | O_CLOEXEC) : -1;
	if (rc == 0 && in < 0) {
		rc = errno == ENOENT ? 0 : ib_error_set_os(IB_LAYER_BUILD, "open the log `%s`", path.ptr);
		ib_buf_dispose(&path);
		return rc;
	}
	ib_buf_dispose(&path);
	char chunk[16384];
	int done = !follow;
	for (;;) {
		/* whether it still runs, asked before reading: what it wrote before it ended is read after */
		int running = done ? 0 : ib_container_running(c);
		if (running < 0) {
			rc = running;
			break;
		}
		ssize_t n;
		while ((n = read(in, chunk, sizeof chunk)) > 0)
			if ((rc = ib_write_all(fd, chunk, (size_t)n)) < 0)
				break;
		if (rc < 0)
			break;
		if (n < 0 && errno != EINTR) {
			rc = ib_error_set_os(IB_LAYER_BUILD, "read the log of container %.12s", c->rec->id);
			break;
		}
		if (!running)
			break;
		struct timespec tick = { 0, 100 * 1000 * 1000 };
		nanosleep(&tick, NULL);
	}
	close(in);
	return rc;
}

/* ---- named volumes: volumes/NAME/_data in the store ---- */

static int valid_volume_name(const char *name)
{
	return valid_name(name);
}

int ib_volume_create(ib_store *store, const char *name)
{
	ib_buf dir = IB_BUF_INIT, data = IB_BUF_INIT;
	int rc = volume_dir(&dir, store, name, 0);
	if (rc == 0)
		rc = volume_dir(&data, store, name, 1);
	if (rc == 0 && ib_path_exists(dir.ptr))
		rc = ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD, "volume `%s` exists", name);
	if (rc == 0) {
		/* made aside and renamed into place: a half-made volume is never seen */
		ib_buf tmp = IB_BUF_INIT, tmpdata = IB_BUF_INIT;
		rc = ib_buf_printf(&tmp, "%s/volumes/.tmp-%s-%ld", ib_store_root(store), name, (long)getpid()) < 0 ||
		     ib_buf_printf(&tmpdata, "%s/_data", tmp.ptr) < 0 ? IB_ERROR : 0;
		if (rc == 0)
			rc = ib_mkdir_p(tmpdata.ptr, 0755);
		if (rc == 0 && rename(tmp.ptr, dir.ptr) < 0)
			rc = errno == EEXIST || errno == ENOTEMPTY
				     ? ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD, "volume `%s` exists", name)
				     : ib_error_set_os(IB_LAYER_BUILD, "create volume `%s`", name);
		if (rc < 0) {
			ib_error_saved saved;
			ib_error_save(&saved);
			ib_rm_rf(tmp.ptr);
			ib_error_restore(&saved);
		}
		ib_buf_dispose(&tmp);
		ib_buf_dispose(&tmpdata);
	}
	ib_buf_dispose(&dir);
	ib_buf_dispose(&data);
	return rc;
}

int ib_volume_path(ib_buf *out, ib_store *store, const char *name)
{
	int rc = volume_dir(out, store, name, 1);
	if (rc == 0 && !ib_path_exists(out->ptr))
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "no volume `%s`", name);
	return rc;
}

int ib_volume_remove(ib_store *store, const char *name)
{
	ib_buf dir = IB_BUF_INIT;
	int rc = volume_dir(&dir, store, name, 0);
	if (rc == 0 && !ib_path_exists(dir.ptr))
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "no volume `%s`", name);
	if (rc == 0)
		rc = ib_rm_rf(dir.ptr);
	ib_buf_dispose(&dir);
	return rc;
}

int ib_volume_list(ib_buf *out, ib_store *store)
{
	ib_buf dir = IB_BUF_INIT;
	ib_strlist names = IB_STRLIST_INIT;
	ib_buf_clear(out);
	int rc = ib_buf_printf(&dir, "%s/volumes", ib_store_root(store)) < 0 ? IB_ERROR : 0;
	DIR *d = rc == 0 ? opendir(dir.ptr) : NULL;
	if (rc == 0 && !d && errno != ENOENT)
		rc = ib_error_set_os(IB_LAYER_BUILD, "list `%s`", dir.ptr);
	struct dirent *de;
	while (d && rc == 0 && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && valid_volume_name(de->d_name))
			rc = ib_strlist_add(&names, de->d_name);
	if (d)
		closedir(d);
	ib_strlist_sort(&names);
	for (size_t i = 0; rc == 0 && i < names.n; i++)
		rc = ib_buf_printf(out, "%s\n", names.items[i]) < 0 ? IB_ERROR : 0;
	ib_strlist_clear(&names);
	ib_buf_dispose(&dir);
	return rc;
}
