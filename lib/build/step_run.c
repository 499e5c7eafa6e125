/* RUN: the command (shell or exec form, heredoc scripts) and its --mount mounts. */
#include "build/internal.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/path.h"
#include "util/lock.h"
#include "util/strlist.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- RUN --mount ---- */


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

/* Room for one more lock in rm->locks. */
static int realloc_array_locks(run_mounts *rm)
{
	int *p = ib_realloc(rm->locks, (rm->nlocks + 1) * sizeof *p);
	if (!p)
		return IB_ERROR;
	rm->locks = p;
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
		int rc = ib_build__stage_wait(b, idx); /* a stage running beside this one: done first */
		if (rc == 0)
			memcpy(out, b->stages[idx].key, IB_DIGEST_HEXLEN + 1);
		return rc;
	}
	ib_image *img = NULL;
	int rc = ib_build__image(&img, b, from);
	if (rc == 0)
		ib_digest_hex(out, ib_image_id(img));
	ib_image_free(img);
	return rc;
}

/* A bind mount of the context (filtered by .dockerignore: a copy) or of another stage or image. */
static int bind_mount(run_mounts *rm, builder *b, const ib_run_mount *m, size_t stage_index,
		      const char *target, const char *src, const char *from, keyer *k)
{
	int rc = 0;
	if (from) {
		char part[IB_DIGEST_HEXLEN + 1];
		if (k) {
			if ((rc = from_key(b, from, stage_index, part)) < 0)
				return rc;
			ib_build__key_add(k, part);
			ib_build__key_add(k, src);
			return 0;
		}
		int fd = -1;
		char *snapkey = NULL;
		rc = ib_build__source_root(&fd, &snapkey, b, from, stage_index);
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
		return ib_build__hash_source(k->h, b->ctxfd, src, ib_build__ignore_filter, b->ignore, b->sums, 0, NULL);
	/* a private copy of what the context shows (so ignored files stay out, and rw writes are dropped) */
	char *dir = ib_build__tmpdir(b, "imagebuild-mount");
	if (!dir)
		return IB_ERROR;
	/* taking would free `dir` on failure, and it is used below: copy it in, remove the directory if that fails */
	if (ib_strlist_add(&rm->tmpdirs, dir) < 0) {
		rmdir(dir);
		free(dir);
		return IB_ERROR;
	}
	free(dir);
	dir = rm->tmpdirs.items[rm->tmpdirs.n - 1];
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ib_build__copy_opts co;
	memset(&co, 0, sizeof co);
	co.set_owner = 1;
	co.filter = ib_build__ignore_filter;
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

/*
 * The number of a mount's mode= (octal), uid= or gid= (decimal), expanded
 * with the step's environment and checked as BuildKit does (an unsigned
 * 32-bit number, nothing else): `dflt` when absent.
 */
static int mount_number(unsigned long *out, builder *b, const stage_state *s, const char *raw, int base,
			const char *key, unsigned long dflt)
{
	*out = dflt;
	if (!raw)
		return 0;
	ib_buf v = IB_BUF_INIT;
	int rc = ib_build__expand_one(&v, b, s, raw);
	unsigned long long n = 0;
	int ok = rc == 0 && v.size > 0;
	for (size_t i = 0; ok && i < v.size; i++) {
		int d = v.ptr[i] >= '0' && v.ptr[i] <= '9' ? v.ptr[i] - '0' : base;
		n = n * (unsigned)base + (unsigned)d;
		ok = d < base && n <= 0xffffffffULL;
	}
	if (rc == 0 && !ok)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "invalid value `%s` for %s (%s)", ib_buf_cstr(&v), key,
				   base == 8 ? "an octal number" : "a decimal number below 2^32");
	ib_buf_dispose(&v);
	if (rc == 0)
		*out = (unsigned long)n;
	return rc;
}

/*
 * The value of secret `id` given to the build (--secret id=NAME,src=PATH or
 * id=NAME,env=VAR): 0 and the value, 1 when the build has no secret of that
 * id, < 0 when it has one that cannot be read.
 */
static int secret_value(ib_buf *out, builder *b, const char *id)
{
	for (const char *const *sp = b->o->secrets; sp && *sp; sp++) {
		char *spec = ib_strdup(*sp), *save = NULL;
		const char *sid = NULL, *src = NULL, *env = NULL, *type = NULL;
		if (!spec)
			return IB_ERROR;
		for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq)
				continue;
			*eq = '\0';
			if (!strcmp(kv, "id"))
				sid = eq + 1;
			else if (!strcmp(kv, "src") || !strcmp(kv, "source"))
				src = eq + 1;
			else if (!strcmp(kv, "env"))
				env = eq + 1;
			else if (!strcmp(kv, "type"))
				type = eq + 1;
		}
		if (!sid || strcmp(sid, id) != 0) {
			free(spec);
			continue;
		}
		int rc;
		if (type && !strcmp(type, "env") && !env)
			env = src ? src : sid;
		if (env) {
			const char *v = getenv(env);
			rc = v ? ib_buf_set(out, v, strlen(v))
			       : ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "secret `%s`: $%s is not set", id, env);
		} else if (src) {
			if ((rc = ib_read_file(out, src)) < 0)
				ib_error_prefix("secret `%s`", id);
		} else {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "secret `%s`: neither src= nor env= given", id);
		}
		free(spec);
		return rc;
	}
	return 1;
}

/*
 * A secret, as a read-only file (default /run/secrets/<id>, mode 0400)
 * that only this RUN sees, and/or an environment variable (env=). A secret
 * the build lacks is skipped, or an error when the mount says `required`.
 */
static int secret_mount(run_mounts *rm, ib_strlist *env, builder *b, const stage_state *s, const ib_run_mount *m,
			const char *id, const char *target)
{
	ib_buf v = IB_BUF_INIT;
	int rc = secret_value(&v, b, id);
	if (rc == 1) {
		ib_buf_dispose(&v);
		return m->required ? ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD,
						   "secret `%s` is required but not given (--secret id=%s,src=FILE)", id, id)
				   : 0;
	}
	if (rc == 0 && m->env && env)
		rc = ib_strlist_take(env, ib_sprintf("%s=%s", m->env, ib_buf_cstr(&v)));
	if (rc == 0 && (!m->env || m->target)) {
		char *dir = ib_tmpdir_new("imagebuild-secret");
		const char *file = dir ? keep(rm, ib_sprintf("%s/secret", dir)) : NULL;
		/* untracked, the directory (and the secret) would outlive the build */
		if (dir && ib_strlist_add(&rm->tmpdirs, dir) < 0) {
			rmdir(dir);
			file = NULL;
		}
		free(dir);
		unsigned long mode, uid, gid;
		rc = file ? mount_number(&mode, b, s, m->mode, 8, "mode", 0400) : IB_ERROR;
		if (rc == 0)
			rc = mount_number(&uid, b, s, m->uid, 10, "uid", 0);
		if (rc == 0)
			rc = mount_number(&gid, b, s, m->gid, 10, "gid", 0);
		if (rc == 0)
			rc = ib_atomic_write(file, v.ptr ? v.ptr : "", v.size, 0600);
		if (rc == 0 && (chown(file, (uid_t)uid, (gid_t)gid) < 0 || chmod(file, (mode_t)(mode & 07777)) < 0))
			rc = ib_error_set_os(IB_LAYER_BUILD, "secret `%s`", id);
		if (rc == 0)
			rc = add_mount(rm, IB_MOUNT_BIND, file, target, 1, NULL);
	}
	ib_buf_dispose(&v);
	return rc;
}

/*
 * RUN --mount=type=cache, as BuildKit's dockerfile2llb and mount manager
 * (solver/llbsolver/mounts/mount.go) make it:
 *
 * - A cache is known by its id (default: the target) and by what it starts
 *   from: nothing, or `from=` (a stage or an image), plus an internal
 *   `mkdir /cache` with uid=, gid= and mode= when one of them is given and
 *   source= is not. Each such cache lives in the store as
 *   cache-mounts/<sha256 of that identity>[.N] (one or more instances), and
 *   a new instance is seeded with what the mount shows of its start:
 *   `source=` (a directory) of `from=`, else its root; the `/cache`
 *   directory with uid:gid and mode; or an empty directory.
 * - sharing=shared (default): every shared user of a free instance uses the
 *   same one at once; sharing=locked waits until an instance is free
 *   (nobody else uses it), polling as BuildKit does every 100 ms;
 *   sharing=private takes a free instance, and when every instance is in
 *   use makes a fresh one (seeded as above), kept for later builds.
 *   Across builds and processes of one store: flock on a lock file per
 *   instance (shared users share it, locked and private users hold it
 *   alone) and one per cache while instances are looked up and made.
 */
typedef struct {
	const char *id;
	const char *from;      /* expanded from=, or NULL */
	const char *source;    /* scoped source= ("." for none) */
	int mkdir;             /* BuildKit's internal mkdir /cache (uid/gid/mode given, no source) */
	unsigned long uid, gid, mode;
	const char *ident;     /* what the store knows it by (its path is the sha256 of this) */
} cache_spec;

/* Seed a new cache instance `dir` (not there yet) with what the mount starts from. */
static int cache_seed(builder *b, const cache_spec *cs, size_t stage_index, const char *dir)
{
	int rc = 0;
	if (!cs->from) {
		/* an empty directory, or BuildKit's mkdir /cache (uid, gid, mode) */
		if (mkdir(dir, 0755) < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "mkdir `%s`", dir);
		if (cs->mkdir && (chown(dir, (uid_t)cs->uid, (gid_t)cs->gid) < 0 || chmod(dir, (mode_t)(cs->mode & 07777)) < 0))
			return ib_error_set_os(IB_LAYER_BUILD, "prepare the cache mount `%s`", dir);
		return 0;
	}
	int fd = -1, sfd = -1, dfd = -1;
	char *snapkey = NULL;
	const char *sel = cs->mkdir ? "cache" : cs->source;
	struct stat st;
	rc = ib_build__source_root(&fd, &snapkey, b, cs->from, stage_index);
	if (rc == 0) {
		sfd = ib_open_in_root(fd, sel, O_RDONLY | O_DIRECTORY, 0);
		if (sfd < 0 && !cs->mkdir)
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD, "`%s` is not a directory in `%s`", sel, cs->from);
		else if (sfd < 0)
			ib_error_clear();
	}
	if (rc == 0 && sfd >= 0 && fstat(sfd, &st) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "stat `%s`", sel);
	/* the instance's root takes the owner and mode of what it shows */
	if (rc == 0 && mkdir(dir, 0700) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "mkdir `%s`", dir);
	if (rc == 0 && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "open `%s`", dir);
	if (rc == 0 && sfd >= 0) {
		ib_build__copy_opts co;
		memset(&co, 0, sizeof co); /* owners, modes and times as they are */
		rc = ib_build__copy(fd, sel, dfd, "/", 1, &co);
	}
	if (rc == 0) {
		uid_t u = cs->mkdir ? (uid_t)cs->uid : sfd >= 0 ? st.st_uid : 0;
		gid_t g = cs->mkdir ? (gid_t)cs->gid : sfd >= 0 ? st.st_gid : 0;
		mode_t md = cs->mkdir ? (mode_t)(cs->mode & 07777) : sfd >= 0 ? (st.st_mode & 07777) : 0755;
		if (fchown(dfd, u, g) < 0 || fchmod(dfd, md) < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "prepare the cache mount `%s`", dir);
	}
	if (dfd >= 0)
		close(dfd);
	if (sfd >= 0)
		close(sfd);
	if (fd >= 0)
		close(fd);
	if (snapkey) {
		ib_build__drop_snapshot(b, snapkey);
		free(snapkey);
	}
	if (rc < 0)
		ib_error_prefix("seed the cache mount from `%s`", cs->from);
	return rc;
}

/* Take an instance of the cache `base` (<store>/cache-mounts/<hex>) as `sharing` says: its path in *out. */
static int cache_instance(char **out, ib_lock *held, builder *b, const cache_spec *cs, size_t stage_index,
			  const char *base, const char *sharing)
{
	int shared = !sharing || !strcasecmp(sharing, "shared");
	int locked = sharing && !strcasecmp(sharing, "locked");
	ib_lock keylock = IB_LOCK_INIT;
	char *path = ib_sprintf("%s.lock", base);
	int rc = path ? ib_lock_acquire(&keylock, path, IB_LOCK_EXCLUSIVE) : IB_ERROR;
	free(path);
	*out = NULL;
	if (rc < 0)
		return rc;
	/* a seed left half made by a build that was killed */
	char *fresh = ib_sprintf("%s.new", base);
	if (!fresh) {
		ib_lock_release(&keylock);
		return IB_ERROR;
	}
	if (ib_path_exists(fresh))
		ib_rm_rf(fresh);
	for (unsigned waited = 0; rc == 0 && !*out;) {
		int busy = 0;
		unsigned n;
		for (n = 0; rc == 0 && !*out; n++) {
			char *dir = n ? ib_sprintf("%s.%u", base, n) : ib_strdup(base);
			char *lk = n ? ib_sprintf("%s.%u.lock-instance", base, n) : ib_sprintf("%s.lock-instance", base);
			if (!dir || !lk) {
				rc = IB_ERROR;
			} else if (!ib_path_exists(dir)) {
				free(dir);
				free(lk);
				break;
			} else {
				int r = ib_lock_acquire(held, lk, (shared ? IB_LOCK_SHARED : IB_LOCK_EXCLUSIVE) | IB_LOCK_NOWAIT);
				if (r == 0) {
					*out = dir;
					dir = NULL;
				} else if (r == IB_EEXISTS) {
					ib_error_clear();
					busy = 1;
				} else {
					rc = r;
				}
			}
			free(dir);
			free(lk);
		}
		if (rc < 0 || *out)
			break;
		if (locked && busy) {
			/* BuildKit: wait for the one in use, every 100 ms */
			ib_lock_release(&keylock);
			if (b->cancel) {
				rc = b->cancel_value ? ib_callback_stopped(b->cancel_value, "the build, waiting for the locked cache")
						     : ib_callback_cancel_error("the build, waiting for the locked cache");
				break;
			}
			if ((rc = ib_callback_check(b->o->callbacks, "the build, waiting for the locked cache")) < 0)
				break;
			if (waited++ == 0)
				ib_build__log_line(b, IB_LOG_INFO, "waiting for the cache mount `%s` (sharing=locked)", cs->id);
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
			char *kp = ib_sprintf("%s.lock", base);
			rc = kp ? ib_lock_acquire(&keylock, kp, IB_LOCK_EXCLUSIVE) : IB_ERROR;
			free(kp);
			continue;
		}
		/* none there, or every one in use: a new instance, n */
		char *dir = n ? ib_sprintf("%s.%u", base, n) : ib_strdup(base);
		char *lk = n ? ib_sprintf("%s.%u.lock-instance", base, n) : ib_sprintf("%s.lock-instance", base);
		/* the first instance of a cache this store never had: a --cache-from's, when one has it */
		int restored = 0;
		if (dir && lk && n == 0 && b->cache && (restored = ib_build__cache_mount_restore(b, cs->ident, fresh)) < 0)
			rc = restored;
		else if (!restored)
			rc = dir && lk ? cache_seed(b, cs, stage_index, fresh) : IB_ERROR;
		if (rc == 0)
			rc = ib_lock_acquire(held, lk, shared ? IB_LOCK_SHARED : IB_LOCK_EXCLUSIVE);
		if (rc == 0 && rename(fresh, dir) < 0)
			rc = ib_error_set_os(IB_LAYER_BUILD, "rename `%s` to `%s`", fresh, dir);
		if (rc == 0) {
			*out = dir;
			dir = NULL;
		} else {
			ib_lock_release(held);
			if (ib_path_exists(fresh))
				ib_rm_rf(fresh);
		}
		free(dir);
		free(lk);
	}
	free(fresh);
	ib_lock_release(&keylock);
	return rc;
}

static int cache_mount(run_mounts *rm, builder *b, const stage_state *s, const ib_run_mount *m, const char *id,
		       const char *target, const char *from, const char *source, size_t stage_index, keyer *k)
{
	cache_spec cs;
	memset(&cs, 0, sizeof cs);
	cs.id = id;
	cs.from = from;
	ib_buf scoped = IB_BUF_INIT, ident = IB_BUF_INIT;
	int rc = ib_path_scope(&scoped, source && *source ? source : "/");
	cs.source = ib_buf_cstr(&scoped);
	if (rc == 0)
		rc = mount_number(&cs.uid, b, s, m->uid, 10, "uid", 0);
	if (rc == 0)
		rc = mount_number(&cs.gid, b, s, m->gid, 10, "gid", 0);
	if (rc == 0)
		rc = mount_number(&cs.mode, b, s, m->mode, 8, "mode", 0755);
	cs.mkdir = !strcmp(cs.source, ".") && (m->uid || m->gid || m->mode);
	/* BuildKit mounts source= of the empty cache, which has nothing */
	if (rc == 0 && !from && strcmp(cs.source, ".") != 0)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				   "source= of a cache mount needs from= (an empty cache has no `%s`)", cs.source);
	/* what it starts from, as BuildKit's key: "<id>:<ref>" */
	char part[IB_DIGEST_HEXLEN + 1] = "";
	if (rc == 0 && from)
		rc = from_key(b, from, stage_index, part);
	if (rc == 0) {
		rc = ib_buf_puts(&ident, id);
		if (rc == 0 && from)
			rc = ib_buf_printf(&ident, ":from=%s:%s", part, cs.source);
		if (rc == 0 && cs.mkdir)
			rc = ib_buf_printf(&ident, ":mkdir=%lu:%lu:%lo", cs.uid, cs.gid, cs.mode);
		cs.ident = ib_buf_cstr(&ident);
	}
	if (rc == 0 && k) {
		/* the step's key: what the cache starts from counts, as a
		 * mount input in BuildKit; the cache's content does not */
		if (from) {
			ib_build__key_add(k, part);
			ib_build__key_add(k, cs.source);
		}
		/* every RUN's key is made, cached or not: the build's cache mounts, for cache-mounts= */
		rc = b->cache ? ib_build__cache_mount_seen(b, id, cs.ident) : 0;
		ib_buf_dispose(&scoped);
		ib_buf_dispose(&ident);
		return rc;
	}
	char *base = NULL, *dir = NULL;
	ib_lock held = IB_LOCK_INIT;
	if (rc == 0) {
		ib_digest d;
		char hex[IB_DIGEST_HEXLEN + 1];
		ib_digest_of(&d, ident.ptr, ident.size);
		ib_digest_hex(hex, &d);
		char *top = ib_sprintf("%s/cache-mounts", ib_store_root(b->store));
		rc = top ? ib_mkdir_p(top, 0700) : IB_ERROR;
		free(top);
		if (rc == 0 && !(base = ib_sprintf("%s/cache-mounts/%s", ib_store_root(b->store), hex)))
			rc = IB_ERROR;
	}
	/* a cache this RUN mounts already: the same instance (BuildKit's
	 * mount manager hands one ref to every mount of one key) */
	for (size_t i = 0; rc == 0 && i + 1 < rm->cache_held.n; i += 2) {
		if (!strcmp(rm->cache_held.items[i], base)) {
			rc = add_mount(rm, IB_MOUNT_BIND, rm->cache_held.items[i + 1], target, m->readonly, NULL);
			free(base);
			ib_buf_dispose(&scoped);
			ib_buf_dispose(&ident);
			return rc;
		}
	}
	if (rc == 0)
		rc = cache_instance(&dir, &held, b, &cs, stage_index, base, m->sharing);
	if (rc == 0 && realloc_array_locks(rm) < 0)
		rc = IB_ERROR;
	if (rc == 0) {
		rm->locks[rm->nlocks++] = held.fd;
		held.fd = -1;
		const char *host = keep(rm, dir);
		dir = NULL;
		rc = host ? add_mount(rm, IB_MOUNT_BIND, host, target, m->readonly, NULL) : IB_ERROR;
		if (rc == 0)
			rc = ib_strlist_add(&rm->cache_held, base);
		if (rc == 0)
			rc = ib_strlist_add(&rm->cache_held, host);
	}
	ib_lock_release(&held);
	free(dir);
	free(base);
	ib_buf_dispose(&scoped);
	ib_buf_dispose(&ident);
	return rc;
}

/*
 * The mounts of a RUN. With `k`, only feed the cache key (what a bind
 * mount shows counts; caches and tmpfs do not); else make them.
 */
int ib_build__prepare_mounts(run_mounts *rm, ib_strlist *env, builder *b, stage_state *s,
			     const ib_instruction *in, size_t stage_index, keyer *k)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < ib_instruction_mount_count(in); i++) {
		const ib_run_mount *m = ib_instruction_mount(in, i);
		ib_buf t = IB_BUF_INIT, src = IB_BUF_INIT, from = IB_BUF_INIT, id = IB_BUF_INIT, abs = IB_BUF_INIT;
		/* before anything else: an ssh mount has no target to miss */
		if (m->type == IB_RUN_MOUNT_SSH)
			rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD,
					   "ssh mounts are not supported: imagebuild forwards no SSH agent "
					   "(BuildKit's --ssh default|id=path); fetch with a secret mount instead");
		if (rc == 0 && m->source)
			rc = ib_build__expand_one(&src, b, s, m->source);
		if (rc == 0 && m->from)
			rc = ib_build__expand_one(&from, b, s, m->from);
		if (rc == 0 && m->id)
			rc = ib_build__expand_one(&id, b, s, m->id);
		/* the target, relative to WORKDIR; a secret's defaults to /run/secrets/<id> */
		if (rc == 0 && m->target)
			rc = ib_build__expand_one(&t, b, s, m->target);
		else if (rc == 0 && m->type == IB_RUN_MOUNT_SECRET && id.size)
			rc = ib_buf_printf(&t, "/run/secrets/%s", id.ptr);
		else if (rc == 0 && !(m->type == IB_RUN_MOUNT_SECRET && m->env))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "no target");
		if (rc == 0 && t.size) {
			const char *wd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
			rc = t.ptr[0] == '/' ? ib_path_clean(&abs, t.ptr) : ib_path_join(&abs, wd && *wd ? wd : "/", t.ptr);
		}
		const char *target = NULL;
		if (rc == 0 && !k && abs.size && !(target = keep(rm, ib_buf_detach(&abs))))
			rc = IB_ERROR;
		if (rc == 0) {
			switch (m->type) {
			case IB_RUN_MOUNT_BIND:
				rc = bind_mount(rm, b, m, stage_index, target, src.size ? src.ptr : ".",
						m->from ? from.ptr : NULL, k);
				break;
			case IB_RUN_MOUNT_CACHE: {
				/* the id defaults to the target as written, cleaned (BuildKit) */
				ib_buf cid = IB_BUF_INIT;
				rc = id.size ? ib_buf_set(&cid, id.ptr, id.size) : ib_path_clean(&cid, ib_buf_cstr(&t));
				if (rc == 0)
					rc = cache_mount(rm, b, s, m, cid.ptr, target, m->from ? from.ptr : NULL,
							 m->source ? src.ptr : NULL, stage_index, k);
				ib_buf_dispose(&cid);
				break;
			}
			case IB_RUN_MOUNT_TMPFS:
				if (!k)
					rc = add_mount(rm, IB_MOUNT_TMPFS, NULL, target, 0,
						       m->size ? keep(rm, ib_sprintf("size=%s", m->size)) : NULL);
				break;
			case IB_RUN_MOUNT_SECRET:
				/* not in the cache key, as BuildKit: a secret changes no result */
				if (!id.size)
					rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "a secret mount needs id=");
				else if (!k)
					rc = secret_mount(rm, env, b, s, m, id.ptr, target);
				break;
			default:
				rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD, "unsupported mount type");
			}
		}
		if (rc < 0)
			ib_error_prefix("%s:%d: --mount=%s", b->filename ? b->filename : "Dockerfile", in->line, m->raw);
		ib_buf_dispose(&t);
		ib_buf_dispose(&src);
		ib_buf_dispose(&from);
		ib_buf_dispose(&id);
		ib_buf_dispose(&abs);
	}
	return rc;
}

void ib_build__release_mounts(builder *b, run_mounts *rm)
{
	for (size_t i = 0; i < rm->snapkeys.n; i++)
		ib_build__drop_snapshot(b, rm->snapkeys.items[i]);
	for (size_t i = 0; i < rm->tmpdirs.n; i++)
		ib_rm_rf(rm->tmpdirs.items[i]);
	/* the cache mounts' instances, free for others again */
	for (size_t i = 0; i < rm->nlocks; i++)
		close(rm->locks[i]);
	free(rm->locks);
	ib_strlist_clear(&rm->cache_held);
	ib_strlist_clear(&rm->snapkeys);
	ib_strlist_clear(&rm->tmpdirs);
	ib_strlist_clear(&rm->strings);
	free(rm->mounts);
	memset(rm, 0, sizeof *rm);
}

/* ---- RUN ---- */

/* `RUN <<EOF` alone: the heredoc is the whole script. */
static int heredoc_is_command(const ib_instruction *in)
{
	const ib_instr_run *r = &in->u.run;
	if (ib_instruction_heredoc_count(in) != 1 || r->args.count != 1)
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
static int run_heredoc_script(ib_buf *out, const ib_instruction *in)
{
	const ib_heredoc *first = ib_instruction_heredoc(in, 0);
	if (heredoc_is_command(in))
		return first->chomp ? ib_heredoc_chomp(out, first) : ib_buf_put(out, first->content, first->content_len);
	int rc = ib_buf_puts(out, in->u.run.args.items[0]);
	for (size_t i = 0; rc == 0 && i < ib_instruction_heredoc_count(in); i++) {
		const ib_heredoc *h = ib_instruction_heredoc(in, i);
		/* BuildKit: "\n" + body + delimiter for each, nothing after the
		 * delimiter (a newline there would start the next body with an
		 * empty line) */
		rc = ib_buf_putc(out, '\n');
		if (rc == 0)
			rc = ib_buf_put(out, h->content, h->content_len);
		if (rc == 0)
			rc = ib_buf_puts(out, h->name);
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
		if (rc == 0 && ib_instruction_heredoc_count(in) && r->args.count) {
			ib_buf script = IB_BUF_INIT;
			rc = run_heredoc_script(&script, in);
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
			const char *v = ib_build__arg_get(s, s->arg_names.items[i]);
			ib_buf_printf(created_by, "%s=%s ", s->arg_names.items[i], v ? v : "");
		}
	}
	for (size_t i = 0; i < argv->n; i++)
		ib_buf_printf(created_by, "%s%s", i ? " " : "", argv->items[i]);
	return ib_buf_puts(created_by, " # buildkit");
}

/* The caller's cancel flag, copied into the one the running process's execute polls. */
typedef struct {
	builder *b;
	volatile int stop;
} cancel_watch;

static void *watch_cancel(void *payload)
{
	cancel_watch *w = payload;
	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		if (ib_callback_cancelled(w->b->o->callbacks)) {
			__atomic_store_n(&w->b->cancel, 1, __ATOMIC_RELAXED);
			break;
		}
		usleep(10000);
	}
	return NULL;
}

int ib_build__do_run(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index)
{
	ib_strlist argv = IB_STRLIST_INIT, env = IB_STRLIST_INIT;
	ib_buf created_by = IB_BUF_INIT, rootfs = IB_BUF_INIT;
	char *key = NULL;
	int rc;

	run_mounts rm;
	memset(&rm, 0, sizeof rm);
	rc = run_argv(&argv, s, in, &created_by);
	if (rc == 0)
		rc = ib_build__step_env(&env, s);
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
	if (rc == 0)
		rc = ib_build__prepare_mounts(&rm, &env, b, s, in, stage_index, NULL);
	/* RUN <<EOF with a #! line: the heredoc is a program, run as a file (BuildKit) */
	static const char script_target[] = "/.imagebuild-heredoc";
	char *script_dir = NULL, *script_path = NULL;
	const ib_instr_run *r = &in->u.run;
	const ib_heredoc *doc = ib_instruction_heredoc(in, 0);
	if (rc == 0 && !r->json && heredoc_is_command(in) && doc->content_len > 2 && !strncmp(doc->content, "#!", 2)) {
		ib_buf text = IB_BUF_INIT;
		if (!(script_dir = ib_build__tmpdir(b, "imagebuild-run")))
			rc = IB_ERROR;
		if (rc == 0 && !(script_path = ib_sprintf("%s/script", script_dir)))
			rc = IB_ERROR;
		if (rc == 0)
			rc = doc->chomp ? ib_heredoc_chomp(&text, doc) : ib_buf_put(&text, doc->content, doc->content_len);
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
	/* another platform's binaries run through a binfmt_misc emulator, or the step fails saying which */
	if (rc == 0)
		rc = ib_build__check_emulator(b, s->platform);
	if (rc == 0)
		rc = ib_build__new_snapshot(&rootfs, &key, b, s);
	if (rc == 0) {
		ib_process p = IB_PROCESS_INIT;
		/* BuildKit's sandbox: its hostname, and executor/oci/hosts.go's /etc/hosts */
		char hosts[160];
		p.hostname = b->hostname ? b->hostname : IB_BUILD__SANDBOX_HOSTNAME;
		snprintf(hosts, sizeof hosts, "127.0.0.1\tlocalhost %s\n"
			 "::1\tlocalhost ip6-localhost ip6-loopback\n", p.hostname);
		p.hosts = hosts;
		/* --add-host: BuildKit's extra hosts, after its default lines */
		char *all_hosts = b->extra_hosts ? ib_sprintf("%s%s", hosts, b->extra_hosts) : NULL;
		if (all_hosts)
			p.hosts = all_hosts;
		else if (b->extra_hosts)
			rc = IB_ERROR;
		/* --ulimit */
		p.rlimits = b->rlimits;
		p.nrlimits = b->nrlimits;
		/* --shm-size: as BuildKit, a tmpfs of that size on /dev/shm */
		if (rc == 0 && b->o->shm_size > 0)
			rc = add_mount(&rm, IB_MOUNT_TMPFS, NULL, "/dev/shm", 0,
				       keep(&rm, ib_sprintf("size=%lld", (long long)b->o->shm_size)));
		p.mounts = rm.mounts;
		p.nmounts = rm.n;
		ib_execute_options eo = IB_EXECUTE_OPTIONS_INIT;
		ib_exit_status st = {0, 0};
		p.argv = (const char *const *)argv.items;
		p.env = (const char *const *)env.items;
		p.cwd = ib_image_config_get(s->config, IB_CONFIG_WORKDIR);
		p.user = ib_image_config_get(s->config, IB_CONFIG_USER);
		/* RUN --network: none and host as asked, default the build's */
		p.network = !r->network || !strcmp(r->network, "default") ? b->o->network
			    : !strcmp(r->network, "none")                 ? IB_NETWORK_NONE
									  : IB_NETWORK_HOST;
		/* RUN --security=insecure (check_step saw it allowed): BuildKit's insecure mode */
		p.privileged = r->security && !strcmp(r->security, "insecure");
		p.network_files_readonly = 1; /* BuildKit binds them read-only for a RUN */
		p.log = ib_build__run_output;
		p.log_payload = b;
		eo.isolation = b->o->isolation;
		eo.tmp_dir = b->tmp_dir; /* in the store: a killed build's files go with the next GC */
		/*
		 * execute polls one flag: ours, which the OUTPUT callback's
		 * non-zero return sets, and a watcher copies the caller's to
		 */
		ib_callbacks run_cb = IB_CALLBACKS_INIT;
		run_cb.cancel = &b->cancel;
		eo.callbacks = &run_cb;
		ib_build__tail_clear(b);
		cancel_watch w = { b, 0 };
		pthread_t watcher;
		const ib_callbacks *cb = b->o->callbacks;
		int watching = rc == 0 && cb && cb->version >= 2 && cb->cancel &&
			       pthread_create(&watcher, NULL, watch_cancel, &w) == 0;
		if (rc == 0)
			rc = ib_execute_run(&st, rootfs.ptr, &p, &eo);
		free(all_hosts);
		if (watching) {
			__atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
			pthread_join(watcher, NULL);
		}
		if (b->cancel_value && (rc == 0 || rc == IB_EUSER))
			rc = ib_callback_stopped(b->cancel_value, "the build, in RUN");
		else if (ib_callback_cancelled(cb) && (rc == 0 || rc == IB_EUSER))
			rc = ib_callback_cancel_error("the build");
		if (rc == 0 && (st.code != 0 || st.signal != 0)) {
			ib_buf msg = IB_BUF_INIT;
			if (st.signal)
				ib_buf_printf(&msg, "killed by signal %d", st.signal);
			else
				ib_buf_printf(&msg, "exit code %d", st.code);
			ib_buf_puts(&msg, "; last lines of its output:");
			for (size_t i = 0; i < IB_BUILD_TAIL_LINES; i++) {
				const char *l = b->tail[(b->tail_next + i) % IB_BUILD_TAIL_LINES];
				if (l)
					ib_buf_printf(&msg, "\n  %s", l);
			}
			rc = ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "`%s` failed: %s",
					   argv.items[argv.n - 1], ib_buf_cstr(&msg));
			ib_buf_dispose(&msg);
		}
		if (rc == 0)
			rc = ib_build__commit_snapshot(b, s, key, created_by.ptr, 0);
	}
	if (key)
		ib_build__drop_snapshot(b, key);
	free(key);
	ib_build__release_mounts(b, &rm);
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
