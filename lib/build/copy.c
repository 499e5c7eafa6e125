#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/walk.h"
#include "util/fs.h"
#include "util/bigio.h"
#include "util/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- small helpers ---- */

static int has_meta(const char *s)
{
	return strpbrk(s, "*?[\\") != NULL;
}

static char *join_rel(const char *a, const char *b)
{
	if (!*a || strcmp(a, ".") == 0)
		return ib_strdup(b);
	return ib_sprintf("%s/%s", a, b);
}

/* The names in a directory (fd is borrowed), sorted by bytes. */
static int list_dir(ib_strlist *out, int dirfd, const char *shown)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open directory `%s`", shown);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ib_error_set_os(IB_LAYER_BUILD, "read directory `%s`", shown);
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((rc = ib_strlist_add(out, de->d_name)) < 0)
			break;
	}
	closedir(d);
	ib_strlist_sort(out);
	return rc;
}

static int filtered(ib_build__walk_filter f, void *p, const char *rel, int is_dir)
{
	return f ? f(p, rel, is_dir) : IB_WALK_INCLUDE;
}

/* ---- symbolic modes ---- */

#define MODE_ALL 07777u
#define MODE_STANDARD 06777u /* set-id bits and rwx of the three classes, not sticky */

static int mode_add(ib_build__modeset *m, char op, unsigned who, unsigned arg)
{
	if (m->n + 2 > sizeof m->cmds / sizeof m->cmds[0])
		return -1;
	struct ib_build__modecmd c = {0, 0, 0, 0, 0};
	if (op == '=') {
		/* clear the classes named (all when none), then add */
		c.cmd = '-';
		c.bits = who ? who : MODE_STANDARD;
		m->cmds[m->n++] = c;
		op = '+';
	}
	if (op == '+' || op == '-' || op == 'X') {
		c.cmd = op;
		c.bits = (who ? who : MODE_ALL) & arg;
	} else {
		/* copy a class's bits (arg is the operator) into the classes named */
		c.cmd = op;
		if (who) {
			c.classes = (unsigned char)((who & 0400 ? 4 : 0) | (who & 0040 ? 2 : 0) | (who & 0004 ? 1 : 0));
			c.bits = MODE_ALL;
		} else {
			c.classes = 7;
			c.bits = MODE_ALL;
		}
		c.set = arg == '+' || arg == '=';
		c.clear = arg == '-' || arg == '=';
	}
	m->cmds[m->n++] = c;
	return 0;
}

int ib_build__modeset_parse(ib_build__modeset *out, const char *s)
{
	ib_build__modeset m;
	memset(&m, 0, sizeof m);
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return -1;
	for (;;) {
		unsigned who = 0;
		for (;; s++) {
			if (*s == 'a')
				who |= MODE_STANDARD;
			else if (*s == 'u')
				who |= 04700;
			else if (*s == 'g')
				who |= 02070;
			else if (*s == 'o')
				who |= 00007;
			else
				break;
		}
		int equal_done = 0;
		for (;;) { /* the actions of the clause */
			char op = *s;
			if (op != '+' && op != '-' && op != '=')
				return -1;
			s++;
			if (op == '=')
				equal_done = 0;
			who &= ~01000u;
			unsigned perm = 0, permx = 0;
			for (;; s++) {
				char ch = *s;
				if (ch == 'r') {
					perm |= 0444;
				} else if (ch == 'w') {
					perm |= 0222;
				} else if (ch == 'x') {
					perm |= 0111;
				} else if (ch == 'X') {
					if (op == '+')
						permx = 0111;
				} else if (ch == 's') {
					/* set-id bits mean nothing for "other" alone */
					if (!who || (who & ~07u))
						perm |= 06000;
				} else if (ch == 't') {
					if (!who || (who & ~07u)) {
						who |= 01000;
						perm |= 01000;
					}
				} else if (ch == 'u' || ch == 'g' || ch == 'o') {
					if (perm && mode_add(&m, op, who, perm) < 0)
						return -1;
					perm = 0;
					if (op == '=')
						equal_done = 1;
					if (permx && mode_add(&m, 'X', who, permx) < 0)
						return -1;
					permx = 0;
					if (mode_add(&m, ch, who, (unsigned)op) < 0)
						return -1;
				} else {
					if (perm || (op == '=' && !equal_done)) {
						if (op == '=')
							equal_done = 1;
						if (mode_add(&m, op, who, perm) < 0)
							return -1;
						perm = 0;
					}
					if (permx && mode_add(&m, 'X', who, permx) < 0)
						return -1;
					break;
				}
			}
			if (!*s) {
				*out = m;
				return 0;
			}
			if (*s == ',')
				break;
		}
		s++; /* the comma: another clause */
	}
}

mode_t ib_build__modeset_apply(const ib_build__modeset *ms, mode_t st_mode)
{
	unsigned old = (unsigned)st_mode & MODE_ALL, now = old;
	for (size_t i = 0; i < ms->n; i++) {
		const struct ib_build__modecmd *c = &ms->cmds[i];
		unsigned value;
		switch (c->cmd) {
		case '+':
			now |= c->bits;
			break;
		case '-':
			now &= ~c->bits;
			break;
		case 'X':
			if ((old & 0111) || S_ISDIR(st_mode))
				now |= c->bits;
			break;
		default:
			value = c->cmd == 'u' ? (now & 0700) >> 6 : c->cmd == 'g' ? (now & 0070) >> 3 : now & 07;
			if (c->clear) {
				unsigned clr = c->set ? 07 : value;
				if (c->classes & 4)
					now &= ~((clr << 6) & c->bits);
				if (c->classes & 2)
					now &= ~((clr << 3) & c->bits);
				if (c->classes & 1)
					now &= ~(clr & c->bits);
			}
			if (c->set) {
				if (c->classes & 4)
					now |= (value << 6) & c->bits;
				if (c->classes & 2)
					now |= (value << 3) & c->bits;
				if (c->classes & 1)
					now |= value & c->bits;
			}
		}
	}
	return (mode_t)(now & MODE_ALL);
}

/* ---- glob ---- */

static int glob_rec(ib_strlist *out, int rootfd, const char *prefix, char **comps, size_t i,
		    size_t n, ib_build__walk_filter filter, void *payload)
{
	int rc = 0;
	if (i == n) {
		if (filtered(filter, payload, prefix, 0) == IB_WALK_INCLUDE)
			rc = ib_strlist_add(out, prefix);
		return rc;
	}
	if (!has_meta(comps[i])) {
		char *next = join_rel(prefix, comps[i]);
		if (!next)
			return IB_ERROR;
		int fd = ib_open_in_root(rootfd, next, O_PATH, 0);
		if (fd >= 0) {
			close(fd);
			rc = glob_rec(out, rootfd, next, comps, i + 1, n, filter, payload);
		} else {
			ib_error_clear();
		}
		free(next);
		return rc;
	}
	int dfd = ib_open_in_root(rootfd, *prefix ? prefix : ".", O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0) {
		ib_error_clear();
		return 0;
	}
	ib_strlist names = IB_STRLIST_INIT;
	rc = list_dir(&names, dfd, prefix);
	close(dfd);
	for (size_t k = 0; rc == 0 && k < names.n; k++) {
		if (fnmatch(comps[i], names.items[k], 0) != 0)
			continue;
		char *next = join_rel(prefix, names.items[k]);
		if (!next) {
			rc = IB_ERROR;
			break;
		}
		rc = glob_rec(out, rootfd, next, comps, i + 1, n, filter, payload);
		free(next);
	}
	ib_strlist_clear(&names);
	return rc;
}

int ib_build__glob(ib_strlist *out, int rootfd, const char *source, ib_build__walk_filter filter,
		   void *payload)
{
	ib_buf scoped = IB_BUF_INIT;
	int rc = ib_path_scope(&scoped, source);
	if (rc < 0)
		return rc;
	ib_strlist comps = IB_STRLIST_INIT;
	if (strcmp(scoped.ptr, ".") != 0) {
		char *save = NULL;
		for (char *c = strtok_r(scoped.ptr, "/", &save); c; c = strtok_r(NULL, "/", &save))
			if ((rc = ib_strlist_add(&comps, c)) < 0)
				break;
	}
	size_t before = out->n;
	if (rc == 0) {
		if (comps.n == 0)
			rc = ib_strlist_add(out, ".");
		else
			rc = glob_rec(out, rootfd, "", comps.items, 0, comps.n, filter, payload);
	}
	ib_strlist_clear(&comps);
	ib_buf_dispose(&scoped);
	if (rc == 0 && out->n == before)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_BUILD,
				     "`%s`: no such file or directory in the source (or excluded by .dockerignore)",
				     source);
	return rc;
}

/* ---- hashing for the cache key ----
 *
 * One walk of the source feeds the key. The bytes of each entry (path,
 * metadata, then a file's digest, a link's target or a device's numbers)
 * are gathered in a buffer that goes to the hash in order. A regular file
 * the checksum cache knows costs its stat; a small unknown one is read at
 * once; a big unknown one (PREHASH_MIN and more) leaves a 32-byte hole in
 * the buffer and is hashed, with the others of the batch, on two cores, the
 * largest first, when the buffer is handed to the hash (every 4 MiB of key
 * bytes or 4,096 big files, so memory stays bounded whatever the context).
 * A big file that changed under us or that the batch could not read is
 * read again on the calling thread, which reports the error.
 */

/* `skey`: the file's key in the checksum cache for a stage's file; NULL for the context's (`frel`, and its bytes are reported). */
static int file_digest(ib_digest *d, int fd, int dirfd, const char *name, const struct stat *st, const char *frel,
		       ib_build__sums *sums, const char *skey)
{
	int context = skey == NULL;
	if (context)
		skey = frel;
	if (ib_build__sums_get(sums, skey, st, d))
		return 0;
	int cfd = fd >= 0 ? dup(fd) : name ? openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
					   : ib_open_in_root(dirfd, frel, O_RDONLY | O_NONBLOCK, 0);
	if (cfd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open `%s`", frel);
	struct stat now;
	lseek(cfd, 0, SEEK_SET);
	int rc = ib_sha256_fd(d, cfd, NULL);
	/* remembered with the stat of what was read (the file may have changed since `st`) */
	if (rc == 0 && fstat(cfd, &now) == 0 && now.st_ino == st->st_ino)
		rc = ib_build__sums_put(sums, skey, &now, d);
	close(cfd);
	if (rc == 0 && context) /* (a stage's files are not "context" in the progress) */
		rc = ib_build__sums_hashed(sums, (uint64_t)st->st_size);
	if (rc < 0)
		ib_error_prefix("`%s`", frel);
	return rc;
}

#define PREHASH_MIN (1u << 20)
#define KEY_FLUSH (4u << 20)
#define BIG_FLUSH 4096

typedef struct {
	char *frel;  /* relative to rootfd */
	char *skey;  /* a stage's file: its key in the checksum cache (NULL: frel, the context's) */
	size_t hole; /* offset of the digest's 32 bytes in the key buffer */
	struct stat st;
	ib_digest d;
	int ok;
} big_file;

typedef struct {
	ib_sha256 *h;
	int rootfd;
	const char *rel; /* the source, relative to rootfd: "" or "." for all of it */
	ib_build__walk_filter filter;
	void *payload;
	ib_build__sums *sums;
	int owners;
	const char *scope; /* before a path in the checksum cache (a stage's files), or NULL */
	ib_buf cfrel; /* the entry relative to rootfd */
	ib_buf skey;  /* its key in the checksum cache */
	ib_buf key;   /* key bytes not hashed yet */
	big_file *big;
	size_t nbig, capbig;
	size_t next;       /* the next big file to take (atomic) */
	uint64_t done;     /* bytes hashed by either thread (atomic) */
	uint64_t reported; /* of `done`, reported (calling thread) */
} key_walk;

static int key_str(ib_buf *b, const char *s)
{
	return ib_buf_put(b, s, strlen(s) + 1);
}

/* An entry's bytes; a regular file's digest from the cache, read now, or left as a hole for the batch. */
static int key_entry(key_walk *w, int fd, int dirfd, const char *name, const char *rel, const struct stat *st,
		     const char *frel)
{
	/* the context's owners are this machine's (the copy makes them 0:0): not in the key */
	char meta[128];
	snprintf(meta, sizeof meta, "%o %u %u %llu", (unsigned)st->st_mode, w->owners ? (unsigned)st->st_uid : 0u,
		 w->owners ? (unsigned)st->st_gid : 0u, S_ISREG(st->st_mode) ? (unsigned long long)st->st_size : 0ULL);
	if (key_str(&w->key, *rel ? rel : ".") < 0 || key_str(&w->key, meta) < 0)
		return IB_ERROR;
	if (S_ISREG(st->st_mode)) {
		ib_digest d;
		const char *skey = NULL; /* the context's: frel */
		if (w->scope) {
			ib_buf_clear(&w->skey);
			if (ib_buf_puts(&w->skey, w->scope) < 0 || ib_buf_puts(&w->skey, frel) < 0)
				return IB_ERROR;
			skey = w->skey.ptr;
		}
		if (fd < 0 && st->st_size >= PREHASH_MIN && !ib_build__sums_get(w->sums, skey ? skey : frel, st, &d)) {
			if (w->nbig == w->capbig) {
				size_t nc = w->capbig ? 2 * w->capbig : 16;
				big_file *nb = ib_realloc(w->big, nc * sizeof *nb);
				if (!nb)
					return IB_ERROR;
				w->big = nb;
				w->capbig = nc;
			}
			big_file *b = &w->big[w->nbig];
			memset(b, 0, sizeof *b);
			b->st = *st;
			b->hole = w->key.size;
			if (!(b->frel = ib_strdup(frel)) || (skey && !(b->skey = ib_strdup(skey)))) {
				free(b->frel);
				return IB_ERROR;
			}
			w->nbig++;
			memset(d.bytes, 0, sizeof d.bytes);
		} else if (file_digest(&d, fd, dirfd, name, st, frel, w->sums, skey) < 0) {
			return IB_ERROR;
		}
		return ib_buf_put(&w->key, (const char *)d.bytes, sizeof d.bytes);
	}
	if (S_ISLNK(st->st_mode)) {
		char target[4097];
		ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);
		if (n < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "readlink `%s`", frel);
		target[n] = '\0';
		return key_str(&w->key, target);
	}
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		snprintf(meta, sizeof meta, "%u:%u", major(st->st_rdev), minor(st->st_rdev));
		return key_str(&w->key, meta);
	}
	return 0;
}

static int by_size_desc(const void *a, const void *b)
{
	const big_file *x = *(big_file *const *)a, *y = *(big_file *const *)b;
	return (x->st.st_size < y->st.st_size) - (x->st.st_size > y->st.st_size);
}

typedef struct {
	key_walk *w;
	big_file **order; /* largest first */
} big_batch;

/* BYTES "context" for what both threads hashed since the last report (calling thread only). */
static int big_report(key_walk *w)
{
	uint64_t done = __atomic_load_n(&w->done, __ATOMIC_RELAXED);
	int rc = w->scope ? 0 : ib_build__sums_hashed(w->sums, done - w->reported);
	w->reported = done;
	return rc;
}

/* Take big files until none is left; the calling thread (`report`) also reports progress and polls cancel. */
static int big_work(big_batch *bb, int report)
{
	key_walk *w = bb->w;
	int rc = report && !w->scope ? ib_build__sums_hashed(w->sums, 0) : 0; /* hashing starts (progress) */
	if (rc < 0)
		return rc;
	for (;;) {
		size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
		if (i >= w->nbig)
			break;
		big_file *b = bb->order[i];
		int fd = ib_open_in_root(w->rootfd, b->frel, O_RDONLY | O_NONBLOCK, 0);
		struct stat now;
		if (fd >= 0 && ib_sha256_fd(&b->d, fd, NULL) == 0 && fstat(fd, &now) == 0 &&
		    now.st_ino == b->st.st_ino && now.st_dev == b->st.st_dev && now.st_size == b->st.st_size) {
			b->ok = 1;
			if (ib_build__sums_put(w->sums, b->skey ? b->skey : b->frel, &now, &b->d) < 0) /* its own lock */
				ib_error_clear();
		} else {
			ib_error_clear(); /* read again below, where the error is said */
		}
		if (fd >= 0)
			close(fd);
		__atomic_add_fetch(&w->done, (uint64_t)b->st.st_size, __ATOMIC_RELAXED);
		if (report && (rc = big_report(w)) < 0) {
			__atomic_store_n(&w->next, w->nbig, __ATOMIC_RELAXED); /* the other thread stops too */
			return rc;
		}
	}
	return 0;
}

static void *big_thread(void *arg)
{
	big_work(arg, 0);
	return NULL;
}

/* The batch's big files hashed (two threads), their holes filled, the key bytes handed to the hash. */
static int key_flush(key_walk *w)
{
	int rc = 0;
	if (w->nbig) {
		big_batch bb = { w, ib_calloc(w->nbig, sizeof(big_file *)) };
		if (!bb.order)
			return IB_ERROR;
		for (size_t i = 0; i < w->nbig; i++)
			bb.order[i] = &w->big[i];
		qsort(bb.order, w->nbig, sizeof *bb.order, by_size_desc);
		w->next = 0;
		pthread_t t;
		int threaded = w->nbig > 1 && pthread_create(&t, NULL, big_thread, &bb) == 0;
		rc = big_work(&bb, 1);
		if (threaded)
			pthread_join(t, NULL);
		if (rc == 0)
			rc = big_report(w); /* what the thread finished after our last one */
		free(bb.order);
		for (size_t i = 0; i < w->nbig; i++) {
			big_file *b = &w->big[i];
			if (rc == 0 && !b->ok)
				rc = file_digest(&b->d, -1, w->rootfd, NULL, &b->st, b->frel, w->sums, b->skey);
			if (rc == 0 && !b->ok)
				ib_error_clear();
			if (rc == 0)
				memcpy(w->key.ptr + b->hole, b->d.bytes, sizeof b->d.bytes);
			free(b->frel);
			free(b->skey);
		}
		w->nbig = 0;
	}
	if (rc == 0 && w->key.size)
		rc = ib_sha256_update(w->h, w->key.ptr, w->key.size);
	ib_buf_clear(&w->key);
	return rc;
}

static int key_walk_entry(const ib_walk_entry *e, void *payload)
{
	key_walk *w = payload;
	ib_buf_clear(&w->cfrel);
	if ((*w->rel && strcmp(w->rel, ".") && ib_buf_printf(&w->cfrel, "%s/", w->rel) < 0) ||
	    ib_buf_put(&w->cfrel, e->path, e->path_len) < 0)
		return IB_ERROR;
	int f = filtered(w->filter, w->payload, w->cfrel.ptr, S_ISDIR(e->st->st_mode));
	if (f == IB_WALK_EXCLUDE || (f == IB_WALK_EXCLUDE_DESCEND && !S_ISDIR(e->st->st_mode)))
		return 1; /* left out, and what is below it */
	int rc = key_entry(w, -1, e->dirfd, e->name, e->path, e->st, w->cfrel.ptr);
	if (rc == 0 && (w->key.size >= KEY_FLUSH || w->nbig >= BIG_FLUSH))
		rc = key_flush(w);
	return rc < 0 ? rc : 0;
}

int ib_build__hash_source(ib_sha256 *h, int rootfd, const char *rel, ib_build__walk_filter filter,
			  void *payload, ib_build__sums *sums, int owners, const char *scope)
{
	int fd = ib_open_in_root(rootfd, rel, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return IB_ERROR;
	key_walk w;
	memset(&w, 0, sizeof w);
	w.h = h;
	w.rootfd = rootfd;
	w.rel = rel;
	w.filter = filter;
	w.payload = payload;
	w.sums = sums;
	w.owners = owners;
	w.scope = scope;
	w.cfrel = (ib_buf)IB_BUF_INIT;
	w.skey = (ib_buf)IB_BUF_INIT;
	w.key = (ib_buf)IB_BUF_INIT;
	struct stat st;
	int rc = ib_buf_grow(&w.key, 64u << 10); /* most sources' key bytes at once */
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = ib_error_set_os(IB_LAYER_BUILD, "stat `%s`", rel);
	else if (rc == 0)
		rc = key_entry(&w, fd, -1, NULL, "", &st, rel);
	if (rc == 0 && S_ISDIR(st.st_mode)) {
		/* iterative: a context or stage may hold a tree thousands of levels deep */
		ib_walk_options o = { .pre = key_walk_entry, .payload = &w, .layer = IB_LAYER_BUILD };
		rc = ib_walk(fd, &o);
	}
	if (rc == 0)
		rc = key_flush(&w);
	for (size_t i = 0; i < w.nbig; i++) { /* left by an error */
		free(w.big[i].frel);
		free(w.big[i].skey);
	}
	free(w.big);
	ib_buf_dispose(&w.key);
	ib_buf_dispose(&w.cfrel);
	ib_buf_dispose(&w.skey);
	close(fd);
	return rc;
}

/* ---- copying ---- */

typedef struct {
	dev_t dev;
	ino_t ino;
	int pathfd; /* O_PATH fd of the first copy, for linkat(AT_EMPTY_PATH) */
} link_seen;

/*
 * A directory copy uses a pool of threads: the walk (one thread) queues the
 * small regular files and the subdirectories (each copied whole by one
 * thread) of the directory it lists and goes on; workers (and the walk
 * itself, when it waits) copy them. Creating a few thousand files is
 * kernel work (inodes, dentries, overlayfs' creds), and another core does
 * it as fast as the first. The walk drains the queue before a directory's
 * own metadata is set (its times come after its entries) and before any
 * directory fd a queued job borrows is closed. Symlinks, devices, big
 * files and the first copy of a hard-linked file are the walk's; a hard
 * link met in a subtree job is made under `links_mu`. A subtree job queues
 * nothing itself (`copy_in_job`); the walk keeps the last subdirectory of
 * each directory it lists for itself (held back, the one before it queued
 * when another comes) and goes down into it when the listing ends, so a
 * tree whose files all lie below one directory (COPY . /app of a context
 * with one src/) still spreads: the walk goes down the chain, queueing the
 * siblings it meets.
 */
typedef struct cjob {
	int sdir, ddir; /* borrowed: open until the queue is drained */
	int dir, lazy;  /* a directory's whole subtree (copy_node's `lazy`) */
	struct stat st;
	char *name;     /* the same in the source and the destination */
	char *frel;     /* for errors */
	struct cjob *next;
} cjob;

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t more, idle;
	cjob *head, **tail;
	size_t busy;       /* jobs taken, not finished */
	int quit, failed;
	ib_error_saved err; /* the first failure's */
	int code;           /* its code, once reported */
	pthread_t th[3];
	size_t nth;
} cpool;

typedef struct {
	const ib_build__copy_opts *o;
	link_seen *links;
	size_t nlinks, caplinks;
	cpool *pool; /* NULL until a directory copy queues its first job (or when no thread could start) */
	int nopool;  /* a pool could not start, or there is one core: copy in the walk */
	pthread_mutex_t links_mu; /* `links`, and a hard-linked entry's copy */
	pthread_mutex_t copied_mu; /* o->copied */
} copier;

/* Set in a thread while it copies a subtree job: what it meets below is its own work (no nested queueing). */
static __thread int copy_in_job;

/*
 * A big file's bytes from `done` on, around the page cache and written by
 * two threads (util/bigio.h): read from the cache what it holds, from the
 * disk what it does not, written straight to the disk. (`out` is new: its
 * position and size are `done`, where a failed copy_file_range left them.)
 */
static int copy_big(int in, int out, off_t done, off_t expect, const char *shown)
{
	off_t end;
	if (ib_bigio_copy(in, out, done, expect, &end) < 0) {
		ib_error_prefix("copy `%s`", shown);
		return IB_ERROR;
	}
	/* the position where a plain copy leaves it (metadata is set through the fd next) */
	if (lseek(out, end, SEEK_SET) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "copy `%s`", shown);
	return 0;
}

/*
 * `expect`: the size stat said `in` has. The copy ends there (or at the end
 * of the file, when it is shorter by then): a file that grows while it is
 * copied gives the bytes it had when it was looked at, as tar does.
 */
static int copy_content(int in, int out, off_t expect, const char *shown)
{
	off_t done = 0;
	while (done < expect) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(expect - done), 0);
		if (n == 0)
			return 0;
		if (n > 0) {
			done += n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return ib_error_set_os(IB_LAYER_BUILD, "copy `%s`", shown);
		break;
	}
	if (done >= expect)
		return 0;
	/* (into overlayfs from another file system copy_file_range says EXDEV: the common case) */
	if (expect - done >= (off_t)IB_BIGIO_MIN)
		return copy_big(in, out, done, expect, shown);
	static __thread char small[1 << 16];
	char *chunk = small, *big = NULL;
	size_t size = sizeof small;
	/* a bigger file in 1 MiB pieces: 16 times fewer system calls */
	if (expect - done > (off_t)sizeof small && (big = malloc(1u << 20))) {
		chunk = big;
		size = 1u << 20;
	}
	int rc = 0;
	while (done < expect) {
		size_t want = expect - done < (off_t)size ? (size_t)(expect - done) : size;
		ssize_t n = read(in, chunk, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ib_error_set_os(IB_LAYER_BUILD, "read `%s`", shown);
			break;
		}
		if (n == 0)
			break;
		if (ib_write_all(out, chunk, (size_t)n) < 0) {
			ib_error_prefix("copy `%s`", shown);
			rc = IB_ERROR;
			break;
		}
		done += n;
	}
	free(big);
	return rc;
}

static int copy_xattrs(int in, int out, const char *shown)
{
	char names[4096];
	ssize_t len = flistxattr(in, names, sizeof names);
	if (len <= 0)
		return 0;
	for (char *n = names; n < names + len; n += strlen(n) + 1) {
		char val[4096];
		ssize_t v = fgetxattr(in, n, val, sizeof val);
		if (v < 0)
			continue;
		if (fsetxattr(out, n, val, (size_t)v, 0) < 0 && errno != ENOTSUP && errno != EPERM)
			return ib_error_set_os(IB_LAYER_BUILD, "set xattr `%s` on `%s`", n, shown);
	}
	return 0;
}

/* Owner, mode and times of the entry `name` in `dirfd` (or of `fd`, open on it, when >= 0), from `st` and the options. */
static int apply_meta_fd(copier *c, int fd, int dirfd, const char *name, const struct stat *st,
			 const char *shown, int top)
{
	/* the directory a copy creates to hold a directory's contents is 0:0
	 * (or --chown's), whoever owned the source directory */
	uid_t uid = c->o->set_owner ? c->o->uid : top ? 0 : st->st_uid;
	gid_t gid = c->o->set_owner ? c->o->gid : top ? 0 : st->st_gid;
	if ((fd >= 0 ? fchown(fd, uid, gid) : fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW)) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "chown `%s`", shown);
	if (!S_ISLNK(st->st_mode)) {
		/* --chmod applies to what is copied, not to the directory it goes into */
		mode_t mode = st->st_mode & 07777;
		if (c->o->set_mode && !top)
			mode = c->o->modeset ? ib_build__modeset_apply(c->o->modeset, st->st_mode) : (c->o->mode & 07777);
		if ((fd >= 0 ? fchmod(fd, mode) : fchmodat(dirfd, name, mode, 0)) < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "chmod `%s`", shown);
	}
	struct timespec ts[2] = {st->st_mtim, st->st_mtim};
	if ((fd >= 0 ? futimens(fd, ts) : utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "set times of `%s`", shown);
	return 0;
}

static int apply_meta(copier *c, int dirfd, const char *name, const struct stat *st,
		      const char *shown, int top)
{
	return apply_meta_fd(c, -1, dirfd, name, st, shown, top);
}

static int remember_link(copier *c, const struct stat *st, int ddirfd, const char *dname)
{
	if (c->nlinks == c->caplinks) {
		size_t cap = c->caplinks ? c->caplinks * 2 : 16;
		link_seen *p = ib_realloc(c->links, cap * sizeof *p);
		if (!p)
			return IB_ERROR;
		c->links = p;
		c->caplinks = cap;
	}
	int fd = openat(ddirfd, dname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open `%s`", dname);
	c->links[c->nlinks++] = (link_seen){st->st_dev, st->st_ino, fd};
	return 0;
}

/*
 * Copying a directory is iterative (a stage may hold a tree thousands of
 * levels deep): one frame per directory being copied, with at most
 * IB_WALK_FDS / 2 of them holding their two fds; an ancestor's are reopened through
 * ".." of its child and checked by device and inode.
 */
typedef struct {
	int sd, dd;           /* source and destination directories; -1 while closed */
	struct stat sst, dst; /* of those two (for reopening) */
	struct stat st;       /* the source entry (its metadata goes on the copy at the end) */
	char *dname;          /* the copy's name in its parent */
	int created;
	int lazy;             /* excluded, looked into for exceptions: kept only when not empty */
	ib_strlist names;
	size_t i, keep;
	const char *held;     /* a subdirectory held back for the walk (one of `names`), or NULL */
	struct stat hst;      /* its stat */
	int hlazy;            /* its `lazy` */
} cframe;

/* Make (or reuse) the directory `dname` in `ddirfd` for the source directory and open both. */
static int dir_begin(cframe *f, int sfd, int sdirfd, const char *sname, const struct stat *st,
		     int ddirfd, const char *dname, const char *frel)
{
	struct stat dst;
	int exists = fstatat(ddirfd, dname, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	memset(f, 0, sizeof *f);
	f->sd = f->dd = -1;
	f->st = *st;
	if (exists && !S_ISDIR(dst.st_mode)) {
		if (unlinkat(ddirfd, dname, 0) < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "replace `%s`", frel);
		exists = 0;
	}
	if (!exists) {
		if (mkdirat(ddirfd, dname, 0700) < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "mkdir `%s`", frel);
		f->created = 1;
	}
	if (!(f->dname = ib_strdup(dname)))
		return IB_ERROR;
	f->sd = sfd >= 0 ? dup(sfd) : openat(sdirfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f->sd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open directory `%s`", frel);
	f->dd = openat(ddirfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f->dd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open target directory for `%s`", frel);
	if (fstat(f->sd, &f->sst) < 0 || fstat(f->dd, &f->dst) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "stat `%s`", frel);
	return list_dir(&f->names, f->sd, frel);
}

/* A directory's end: the xattrs and metadata of one this copy made (after its entries: its times stay). */
static int dir_end(copier *c, cframe *f, int ddirfd, const char *frel, int top, int ok)
{
	int rc = 0;
	if (ok && f->created && f->lazy) {
		/* an excluded directory looked into for exceptions exists in the
		 * copy only when something below it is kept (fsutil sends such
		 * parents lazily) */
		ib_strlist kept = IB_STRLIST_INIT;
		rc = list_dir(&kept, f->dd, frel);
		size_t n = kept.n;
		ib_strlist_clear(&kept);
		if (rc == 0 && n == 0) {
			ok = 0;
			if (unlinkat(ddirfd, f->dname, AT_REMOVEDIR) < 0)
				rc = ib_error_set_os(IB_LAYER_BUILD, "remove the empty `%s`", frel);
		}
	}
	if (ok && rc == 0 && f->created)
		rc = copy_xattrs(f->sd, f->dd, frel);
	if (f->sd >= 0)
		close(f->sd);
	if (f->dd >= 0)
		close(f->dd);
	f->sd = f->dd = -1;
	if (ok && rc == 0 && f->created)
		rc = apply_meta(c, ddirfd, f->dname, &f->st, frel, top);
	ib_strlist_clear(&f->names);
	free(f->dname);
	f->dname = NULL;
	return rc;
}

static int reopen_dotdot(int *fd, const struct stat *want, int child_fd, const char *frel)
{
	int nfd = openat(child_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (nfd < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "reopen the parent of `%.200s`", frel);
	if (fstat(nfd, &st) < 0 || st.st_dev != want->st_dev || st.st_ino != want->st_ino) {
		close(nfd);
		return ib_error_setc(IB_ERROR, IB_LAYER_BUILD, "`%.200s…`: moved while being copied", frel);
	}
	*fd = nfd;
	return 0;
}

static int copy_leaf(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st,
		     int ddirfd, const char *dname, const char *frel);
static int copy_regular(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st, int ddirfd,
			const char *dname, const char *frel);
static int copy_node(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st,
		     int ddirfd, const char *dname, const char *frel, int lazy);

/* ---- the pool of a directory copy (see cjob) ---- */

static void cjob_free(cjob *j)
{
	free(j->name);
	free(j->frel);
	free(j);
}

/* The next job, under the lock (NULL: none queued). */
static cjob *pool_take(cpool *p)
{
	cjob *j = p->head;
	if (j) {
		if (!(p->head = j->next))
			p->tail = &p->head;
		p->busy++;
	}
	return j;
}

/* A job taken, done outside the lock (`skip`: only accounted for: the copy has failed). */
static void pool_do(copier *c, cjob *j, int skip)
{
	cpool *p = c->pool;
	ib_error_saved e;
	int rc = 0;
	if (!skip && j->dir) {
		copy_in_job = 1;
		rc = copy_node(c, -1, j->sdir, j->name, &j->st, j->ddir, j->name, j->frel, j->lazy);
		copy_in_job = 0;
	} else if (!skip) {
		rc = copy_regular(c, -1, j->sdir, j->name, &j->st, j->ddir, j->name, j->frel);
	}
	if (rc < 0)
		ib_error_save(&e);
	pthread_mutex_lock(&p->mu);
	if (rc < 0 && !p->failed) {
		p->failed = 1;
		p->err = e;
	} else if (rc < 0) {
		ib_error_saved_dispose(&e);
	}
	if (--p->busy == 0 && !p->head)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->mu);
	cjob_free(j);
}

static void *pool_main(void *arg)
{
	copier *c = arg;
	cpool *p = c->pool;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		cjob *j;
		while (!(j = pool_take(p)) && !p->quit)
			pthread_cond_wait(&p->more, &p->mu);
		if (!j)
			break;
		int skip = p->failed;
		pthread_mutex_unlock(&p->mu);
		pool_do(c, j, skip);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Workers: one fewer than the online CPUs (the walk is the last one), at most 3; none on one core. */
static void pool_start(copier *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = cpus > 4 ? 3 : cpus > 1 ? (size_t)(cpus - 1) : 0;
	cpool *p = want ? calloc(1, sizeof *p) : NULL;
	c->nopool = 1;
	if (!p)
		return;
	p->tail = &p->head;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->more, NULL);
	pthread_cond_init(&p->idle, NULL);
	c->pool = p;
	while (p->nth < want && pthread_create(&p->th[p->nth], NULL, pool_main, c) == 0)
		p->nth++;
	if (p->nth == 0) { /* no thread: the walk copies */
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->more);
		pthread_cond_destroy(&p->idle);
		free(p);
		c->pool = NULL;
	}
}

/* Whether this thread may queue jobs (the pool started when it can be). */
static int pool_ready(copier *c)
{
	if (copy_in_job)
		return 0;
	if (!c->pool && !c->nopool)
		pool_start(c);
	return c->pool != NULL;
}

/*
 * Queue the entry `name` of `sdir` for `ddir` (fds borrowed until the next
 * drain): a small file, or a directory with all below it (`dir`; `lazy`
 * as copy_node's); 0: not queued, the caller copies it.
 */
static int pool_queue(copier *c, int sdir, int ddir, const char *name, const struct stat *st, const char *frel,
		      int dir, int lazy)
{
	if (!pool_ready(c))
		return 0;
	cpool *p = c->pool;
	cjob *j = calloc(1, sizeof *j);
	if (!j || !(j->name = strdup(name)) || !(j->frel = strdup(frel))) {
		if (j)
			cjob_free(j);
		return 0;
	}
	j->sdir = sdir;
	j->ddir = ddir;
	j->dir = dir;
	j->lazy = lazy;
	j->st = *st;
	pthread_mutex_lock(&p->mu);
	*p->tail = j;
	p->tail = &j->next;
	pthread_cond_signal(&p->more);
	pthread_mutex_unlock(&p->mu);
	return 1;
}

/*
 * Every queued job done, the walk helping; then the first failure's error
 * is the current one and IB_ERROR returned. `abandon` (the walk has failed
 * itself): queued jobs are dropped and its error stays the current one.
 */
static int pool_drain(copier *c, int abandon)
{
	cpool *p = c->pool;
	if (!p || copy_in_job)
		return 0; /* (a job's thread queues nothing) */
	pthread_mutex_lock(&p->mu);
	cjob *j;
	while ((j = pool_take(p)) != NULL) {
		int skip = abandon || p->failed;
		pthread_mutex_unlock(&p->mu);
		pool_do(c, j, skip);
		pthread_mutex_lock(&p->mu);
	}
	while (p->busy)
		pthread_cond_wait(&p->idle, &p->mu);
	int rc = 0;
	if (p->failed == 1 && !abandon) {
		ib_error_restore(&p->err);
		p->failed = 2; /* reported */
		p->code = ib_error_current() < 0 ? ib_error_current() : IB_ERROR;
		rc = p->code;
	} else if (p->failed) {
		rc = abandon ? 0 : p->failed == 2 ? p->code : IB_ERROR;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static void pool_stop(copier *c)
{
	cpool *p = c->pool;
	if (!p)
		return;
	pool_drain(c, 1);
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	if (p->failed == 1)
		ib_error_saved_dispose(&p->err);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->more);
	pthread_cond_destroy(&p->idle);
	free(p);
	c->pool = NULL;
}

/*
 * The subdirectory `f` held back goes to the pool (copied here when it
 * cannot be queued). `prefix` is the frame's path, `plen` bytes of it.
 */
static int queue_held(copier *c, cframe *f, const char *prefix, size_t plen)
{
	ib_buf rel = IB_BUF_INIT;
	int rc = 0;
	if (ib_buf_put(&rel, prefix, plen) < 0 || (plen && ib_buf_putc(&rel, '/') < 0) || ib_buf_puts(&rel, f->held) < 0)
		rc = IB_ERROR;
	else if (!pool_queue(c, f->sd, f->dd, f->held, &f->hst, rel.ptr, 1, f->hlazy))
		rc = copy_node(c, -1, f->sd, f->held, &f->hst, f->dd, f->held, rel.ptr, f->hlazy);
	f->held = NULL;
	ib_buf_dispose(&rel);
	return rc;
}

/* The entries of the directory `sdir` into `ddir` (both borrowed), and all below them. */
static int copy_children(copier *c, int sdir, int ddir, const char *frel)
{
	size_t depth = 0, cap = 64;
	cframe *fs = ib_calloc(cap, sizeof *fs);
	ib_buf path = IB_BUF_INIT;
	if (!fs || ib_buf_puts(&path, strcmp(frel, ".") ? frel : "") < 0) {
		free(fs);
		return IB_ERROR;
	}
	fs[0].sd = sdir;
	fs[0].dd = ddir;
	int rc = list_dir(&fs[0].names, sdir, frel);
	while (rc == 0) {
		cframe *f = &fs[depth];
		const char *name;
		size_t keep;
		struct stat cst;
		int lazy;
		if (f->i == f->names.n && f->held) {
			/* the listing done: down into the subdirectory held back */
			name = f->held;
			cst = f->hst;
			lazy = f->hlazy;
			f->held = NULL;
			keep = path.size;
			if ((keep && ib_buf_putc(&path, '/') < 0) || ib_buf_puts(&path, name) < 0) {
				rc = IB_ERROR;
				break;
			}
			goto descend;
		}
		if (f->i == f->names.n) {
			/* the files queued done before a directory's times are set or its fds closed */
			if ((rc = pool_drain(c, 0)) < 0 || depth == 0)
				break;
			cframe *up = &fs[depth - 1];
			if ((up->sd < 0 && (rc = reopen_dotdot(&up->sd, &up->sst, f->sd, path.ptr)) < 0) ||
			    (up->dd < 0 && (rc = reopen_dotdot(&up->dd, &up->dst, f->dd, path.ptr)) < 0))
				break;
			rc = dir_end(c, f, up->dd, path.ptr, 0, 1);
			ib_buf_truncate(&path, f->keep);
			depth--;
			continue;
		}
		name = f->names.items[f->i++];
		keep = path.size;
		if ((keep && ib_buf_putc(&path, '/') < 0) || ib_buf_puts(&path, name) < 0) {
			rc = IB_ERROR;
			break;
		}
		if (fstatat(f->sd, name, &cst, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = ib_error_set_os(IB_LAYER_BUILD, "stat `%.200s`", path.ptr);
			break;
		}
		int dir = S_ISDIR(cst.st_mode);
		int filt = filtered(c->o->filter, c->o->filter_payload, path.ptr, dir);
		if (filt == IB_WALK_INCLUDE && !dir) {
			/* a small file of its own (no other links: those are made where the walk is) goes to the pool */
			if (!S_ISREG(cst.st_mode) || cst.st_nlink != 1 || cst.st_size >= (off_t)IB_BIGIO_MIN ||
			    !pool_queue(c, f->sd, f->dd, name, &cst, path.ptr, 0, 0))
				rc = copy_leaf(c, -1, f->sd, name, &cst, f->dd, name, path.ptr);
			ib_buf_truncate(&path, keep);
			continue;
		}
		if (!dir || (filt != IB_WALK_INCLUDE && filt != IB_WALK_EXCLUDE_DESCEND)) {
			ib_buf_truncate(&path, keep);
			continue;
		}
		lazy = filt == IB_WALK_EXCLUDE_DESCEND;
		/* held back for the walk; the one held before (a subtree, whole) to the pool */
		if (pool_ready(c)) {
			if (f->held)
				rc = queue_held(c, f, path.ptr, keep);
			f->held = name;
			f->hst = cst;
			f->hlazy = lazy;
			ib_buf_truncate(&path, keep);
			continue;
		}
	descend:
		if (depth + 1 == cap) {
			cframe *nf = ib_realloc(fs, 2 * cap * sizeof *nf);
			if (!nf) {
				rc = IB_ERROR;
				break;
			}
			fs = nf;
			memset(fs + cap, 0, cap * sizeof *fs);
			cap *= 2;
			f = &fs[depth];
		}
		cframe *nf = &fs[++depth];
		rc = dir_begin(nf, -1, f->sd, name, &cst, f->dd, name, path.ptr);
		nf->keep = keep;
		nf->lazy = lazy;
		/* bounded fds: an ancestor IB_WALK_FDS / 2 levels up gives its two back (the caller's stay),
		 * once no queued file borrows them */
		if (rc == 0 && depth > IB_WALK_FDS / 2 && (rc = pool_drain(c, 0)) == 0) {
			cframe *old = &fs[depth - IB_WALK_FDS / 2];
			close(old->sd);
			close(old->dd);
			old->sd = old->dd = -1;
		}
	}
	if (rc < 0)
		pool_drain(c, 1);
	for (size_t i = 1; i <= depth; i++)
		dir_end(c, &fs[i], -1, NULL, 0, 0);
	ib_strlist_clear(&fs[0].names);
	free(fs);
	ib_buf_dispose(&path);
	return rc;
}

static int copy_node(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st,
		     int ddirfd, const char *dname, const char *frel, int lazy)
{
	if (!S_ISDIR(st->st_mode))
		return copy_leaf(c, sfd, sdirfd, sname, st, ddirfd, dname, frel);
	cframe f;
	int rc = dir_begin(&f, sfd, sdirfd, sname, st, ddirfd, dname, frel);
	f.lazy = lazy;
	if (rc == 0)
		rc = copy_children(c, f.sd, f.dd, frel);
	int rc2 = dir_end(c, &f, ddirfd, frel, sfd >= 0, rc == 0);
	return rc < 0 ? rc : rc2;
}

/* What is in the way of a copy at `dname`: a directory is an error, anything else is replaced. */
static int clear_way(int ddirfd, const char *dname, const char *frel)
{
	struct stat dst;
	if (fstatat(ddirfd, dname, &dst, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISDIR(dst.st_mode))
		return ib_error_setc(IB_EEXISTS, IB_LAYER_BUILD, "cannot copy `%s` over the directory of the same name",
				     frel);
	if (unlinkat(ddirfd, dname, 0) < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "replace `%s`", frel);
	return 0;
}

/* A regular file: created (what is in the way replaced), filled, its xattrs and metadata set through its fd. */
static int copy_regular(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st, int ddirfd,
			const char *dname, const char *frel)
{
	int in = sfd >= 0 ? dup(sfd) : openat(sdirfd, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "open `%s`", frel);
	if (sfd >= 0)
		lseek(in, 0, SEEK_SET);
	/* most copies go to a place where nothing is: asked first, looked at only when something is */
	int out = openat(ddirfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = 0;
	if (out < 0 && errno == EEXIST && (rc = clear_way(ddirfd, dname, frel)) == 0)
		out = openat(ddirfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return rc < 0 ? rc : ib_error_set_os(IB_LAYER_BUILD, "create `%s`", frel);
	}
	rc = copy_content(in, out, st->st_size, frel);
	if (rc == 0)
		rc = copy_xattrs(in, out, frel);
	if (rc == 0)
		rc = apply_meta_fd(c, out, ddirfd, dname, st, frel, 0);
	if (rc == 0 && c->o->copied && st->st_size >= (off_t)IB_BIGIO_MIN) {
		pthread_mutex_lock(&c->copied_mu);
		c->o->copied(in, st, out, c->o->copied_payload);
		pthread_mutex_unlock(&c->copied_mu);
	}
	close(in);
	close(out);
	return rc;
}

static int copy_leaf_linked(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st,
			    int ddirfd, const char *dname, const char *frel);

/* An entry with other hard links is linked to (or copied as) the first one met, under the links' lock (subtrees are copied in parallel). */
static int copy_leaf(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st,
		     int ddirfd, const char *dname, const char *frel)
{
	if (S_ISDIR(st->st_mode) || st->st_nlink <= 1)
		return copy_leaf_linked(c, sfd, sdirfd, sname, st, ddirfd, dname, frel);
	pthread_mutex_lock(&c->links_mu);
	int rc = copy_leaf_linked(c, sfd, sdirfd, sname, st, ddirfd, dname, frel);
	pthread_mutex_unlock(&c->links_mu);
	return rc;
}

static int copy_leaf_linked(copier *c, int sfd, int sdirfd, const char *sname, const struct stat *st,
			    int ddirfd, const char *dname, const char *frel)
{
	int rc = 0;
	if (!S_ISREG(st->st_mode) && (rc = clear_way(ddirfd, dname, frel)) < 0)
		return rc;

	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		for (size_t i = 0; i < c->nlinks; i++) {
			if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino) {
				if (S_ISREG(st->st_mode) && (rc = clear_way(ddirfd, dname, frel)) < 0)
					return rc;
				if (linkat(c->links[i].pathfd, "", ddirfd, dname, AT_EMPTY_PATH) < 0)
					return ib_error_set_os(IB_LAYER_BUILD, "hard link `%s`", frel);
				return 0;
			}
		}
	}

	if (S_ISREG(st->st_mode)) {
		rc = copy_regular(c, sfd, sdirfd, sname, st, ddirfd, dname, frel);
		if (rc == 0 && st->st_nlink > 1)
			rc = remember_link(c, st, ddirfd, dname);
		return rc;
	} else if (S_ISLNK(st->st_mode)) {
		char target[4097];
		ssize_t n = readlinkat(sdirfd, sname, target, sizeof target - 1);
		if (n < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "readlink `%s`", frel);
		target[n] = '\0';
		if (symlinkat(target, ddirfd, dname) < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "symlink `%s`", frel);
	} else if (S_ISFIFO(st->st_mode) || S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		if (mknodat(ddirfd, dname, st->st_mode & S_IFMT, st->st_rdev) < 0)
			return ib_error_set_os(IB_LAYER_BUILD, "mknod `%s`", frel);
	} else {
		return 0; /* sockets are not copied */
	}
	if (rc == 0)
		rc = apply_meta(c, ddirfd, dname, st, frel, 0);
	if (rc == 0 && st->st_nlink > 1)
		rc = remember_link(c, st, ddirfd, dname);
	return rc;
}

static int mkdir_in_root(int rootfd, const char *path, uid_t uid, gid_t gid, int *created, int depth);

/*
 * `name` in `cur` is a symlink whose target does not exist yet: create the
 * target's directories, resolved inside the root like the link itself.
 */
static int mkdir_link_target(int rootfd, int cur, const char *name, const char *dir, uid_t uid,
			     gid_t gid, int *created, int depth)
{
	char target[4097];
	ssize_t n = readlinkat(cur, name, target, sizeof target - 1);
	if (n < 0)
		return ib_error_set_os(IB_LAYER_BUILD, "readlink `/%s`", name);
	target[n] = '\0';
	char *next = target[0] == '/' ? ib_strdup(target) : ib_sprintf("%s/%s", dir, target);
	if (!next)
		return IB_ERROR;
	int rc = mkdir_in_root(rootfd, next, uid, gid, created, depth + 1);
	free(next);
	return rc;
}

int ib_build__mkdir_in_root(int rootfd, const char *path, uid_t uid, gid_t gid, int *created)
{
	if (created)
		*created = 0;
	return mkdir_in_root(rootfd, path, uid, gid, created, 0);
}

static int mkdir_in_root(int rootfd, const char *path, uid_t uid, gid_t gid, int *created, int depth)
{
	ib_buf scoped = IB_BUF_INIT, prefix = IB_BUF_INIT;
	int rc = ib_path_scope(&scoped, path);
	int cur = -1;
	if (depth > 40)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "too many levels of symbolic links in `%s`", path);
	if (rc < 0)
		return rc;
	cur = ib_open_in_root(rootfd, ".", O_RDONLY | O_DIRECTORY, 0);
	if (cur < 0) {
		ib_buf_dispose(&scoped);
		return IB_ERROR;
	}
	char *save = NULL;
	for (char *c = strcmp(scoped.ptr, ".") ? strtok_r(scoped.ptr, "/", &save) : NULL; c;
	     c = strtok_r(NULL, "/", &save)) {
		if (prefix.size)
			ib_buf_putc(&prefix, '/');
		ib_buf_puts(&prefix, c);
		int next = ib_open_in_root(rootfd, prefix.ptr, O_RDONLY | O_DIRECTORY, 0);
		struct stat lst;
		if (next < 0 && errno == ENOENT && fstatat(cur, c, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(lst.st_mode)) {
			ib_error_clear();
			char *dir = ib_strndup(prefix.ptr, prefix.size - strlen(c));
			rc = dir ? mkdir_link_target(rootfd, cur, c, dir, uid, gid, created, depth) : IB_ERROR;
			free(dir);
			if (rc < 0)
				break;
			next = ib_open_in_root(rootfd, prefix.ptr, O_RDONLY | O_DIRECTORY, 0);
		} else if (next < 0 && errno == ENOENT) {
			ib_error_clear();
			if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST) {
				rc = ib_error_set_os(IB_LAYER_BUILD, "mkdir `/%s`", prefix.ptr);
				break;
			}
			if (fchownat(cur, c, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
				rc = ib_error_set_os(IB_LAYER_BUILD, "chown `/%s`", prefix.ptr);
				break;
			}
			if (created)
				*created = 1;
			next = ib_open_in_root(rootfd, prefix.ptr, O_RDONLY | O_DIRECTORY, 0);
		}
		if (next < 0) {
			rc = IB_ERROR;
			ib_error_prefix("make directory `%s`", path);
			break;
		}
		close(cur);
		cur = next;
	}
	if (cur >= 0)
		close(cur);
	ib_buf_dispose(&scoped);
	ib_buf_dispose(&prefix);
	return rc;
}

static char *base_name(const char *rel)
{
	const char *s = strrchr(rel, '/');
	return ib_strdup(s ? s + 1 : rel);
}

/*
 * Split the scoped destination `path` into its parent and last name, make
 * the parent (inside the root, owned uid:gid) and open it into *ddir
 * (closing the one it held).
 */
static int open_parent(ib_buf *parent, char **name, int *ddir, int rootfd, const char *path,
		       uid_t uid, gid_t gid)
{
	const char *slash = strrchr(path, '/');
	int rc = ib_buf_set(parent, path, slash ? (size_t)(slash - path) : 0);
	free(*name);
	*name = base_name(path);
	if (*ddir >= 0)
		close(*ddir);
	*ddir = -1;
	if (rc < 0 || !*name)
		return IB_ERROR;
	const char *dir = parent->size ? parent->ptr : ".";
	if ((rc = ib_build__mkdir_in_root(rootfd, dir, uid, gid, NULL)) < 0)
		return rc;
	*ddir = ib_open_in_root(rootfd, dir, O_RDONLY | O_DIRECTORY, 0);
	return *ddir < 0 ? IB_ERROR : 0;
}

int ib_build__copy(int src_rootfd, const char *src_rel, int dst_rootfd, const char *dst,
		   int dst_is_dir, const ib_build__copy_opts *o)
{
	copier c = {.o = o, .links_mu = PTHREAD_MUTEX_INITIALIZER, .copied_mu = PTHREAD_MUTEX_INITIALIZER};
	ib_buf scoped = IB_BUF_INIT, dscoped = IB_BUF_INIT, parent = IB_BUF_INIT;
	uid_t uid = o->set_owner ? o->uid : 0;
	gid_t gid = o->set_owner ? o->gid : 0;
	char *name = NULL;
	int sfd = -1, ddir = -1, rc;
	struct stat st;

	if ((rc = ib_path_scope(&scoped, src_rel)) < 0 || (rc = ib_path_scope(&dscoped, dst)) < 0)
		goto out;
	sfd = ib_open_in_root(src_rootfd, scoped.ptr, O_RDONLY | O_NONBLOCK, 0);
	if (sfd < 0) {
		rc = IB_ERROR;
		goto out;
	}
	if (fstat(sfd, &st) < 0) {
		rc = ib_error_set_os(IB_LAYER_BUILD, "stat `%s`", src_rel);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		/* the directory's contents go into dst; dst itself takes the
		 * directory's metadata when this copy creates it */
		if (strcmp(dscoped.ptr, ".") == 0) {
			ddir = ib_open_in_root(dst_rootfd, ".", O_RDONLY | O_DIRECTORY, 0);
			rc = ddir < 0 ? IB_ERROR : copy_children(&c, sfd, ddir, scoped.ptr);
			goto out;
		}
		if ((rc = open_parent(&parent, &name, &ddir, dst_rootfd, dscoped.ptr, uid, gid)) < 0)
			goto out;
		struct stat dst_st;
		if (fstatat(ddir, name, &dst_st, 0) == 0 && S_ISDIR(dst_st.st_mode)) {
			/* an existing directory (or a symlink to one, inside the root): merge */
			int inner = ib_open_in_root(dst_rootfd, dscoped.ptr, O_RDONLY | O_DIRECTORY, 0);
			rc = inner < 0 ? IB_ERROR : copy_children(&c, sfd, inner, scoped.ptr);
			if (inner >= 0)
				close(inner);
		} else {
			rc = copy_node(&c, sfd, -1, NULL, &st, ddir, name, scoped.ptr, 0);
		}
		goto out;
	}
	if (dst_is_dir) {
		/* into the directory, under the source's name */
		char *bn = base_name(scoped.ptr);
		char *joined = !bn ? NULL : strcmp(dscoped.ptr, ".") ? ib_sprintf("%s/%s", dscoped.ptr, bn) : ib_strdup(bn);
		rc = joined ? ib_buf_set(&dscoped, joined, strlen(joined)) : IB_ERROR;
		free(bn);
		free(joined);
		if (rc < 0)
			goto out;
	} else if (strcmp(dscoped.ptr, ".") == 0) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "cannot copy the file `%s` to `/`", src_rel);
		goto out;
	}
	if ((rc = open_parent(&parent, &name, &ddir, dst_rootfd, dscoped.ptr, uid, gid)) < 0)
		goto out;
	/* a destination that is a symlink is followed (inside the root), as Docker does */
	for (int hops = 0;; hops++) {
		struct stat lst;
		char target[4097];
		if (fstatat(ddir, name, &lst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(lst.st_mode))
			break;
		ssize_t n = readlinkat(ddir, name, target, sizeof target - 1);
		if (n < 0 || hops > 40) {
			rc = n < 0 ? ib_error_set_os(IB_LAYER_BUILD, "readlink `%s`", dst)
				   : ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "too many symlinks at `%s`", dst);
			goto out;
		}
		target[n] = '\0';
		ib_buf next = IB_BUF_INIT;
		if (target[0] == '/')
			ib_buf_puts(&next, target);
		else
			ib_buf_printf(&next, "%s/%s", parent.size ? parent.ptr : "", target);
		rc = ib_path_scope(&dscoped, next.ptr);
		ib_buf_dispose(&next);
		if (rc < 0)
			goto out;
		if (strcmp(dscoped.ptr, ".") == 0)
			break; /* a link to the root itself: replace the link */
		if ((rc = open_parent(&parent, &name, &ddir, dst_rootfd, dscoped.ptr, uid, gid)) < 0)
			goto out;
	}
	rc = copy_node(&c, sfd, -1, NULL, &st, ddir, name, scoped.ptr, 0);
out:
	pool_stop(&c);
	if (rc < 0)
		ib_error_prefix("copy `%s` to `%s`", src_rel, dst);
	for (size_t i = 0; i < c.nlinks; i++)
		close(c.links[i].pathfd);
	free(c.links);
	free(name);
	if (sfd >= 0)
		close(sfd);
	if (ddir >= 0)
		close(ddir);
	ib_buf_dispose(&scoped);
	ib_buf_dispose(&dscoped);
	ib_buf_dispose(&parent);
	return rc;
}

/* ---- where a COPY's big files came from ---- */

void ib_build__copied_add(int in, const struct stat *before, int out, void *payload)
{
	ib_build__copied_list *l = payload;
	struct stat now, copy;
	/* a source that changed while it was copied (or just before), or a copy of another size: not remembered */
	if (fstat(in, &now) < 0 || !ib_stat_same(&now, before) || !ib_stat_settled(&now, l->settle_ns) ||
	    fstat(out, &copy) < 0 || !S_ISREG(copy.st_mode) || copy.st_size != now.st_size)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct ib_build__copied *items = realloc(l->items, cap * sizeof *items);
		if (!items)
			return; /* (only a shortcut is lost) */
		l->items = items;
		l->cap = cap;
	}
	int fd = fcntl(in, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct ib_build__copied *c = &l->items[l->n++];
	c->ino = (uint64_t)copy.st_ino;
	c->size = (uint64_t)copy.st_size;
	c->mtime = copy.st_mtim;
	c->fd = fd;
	c->src = now;
}

int ib_build__copied_source(const ib_diff_file *file, void *payload)
{
	ib_build__copied_list *l = payload;
	for (size_t i = 0; i < l->n; i++) {
		struct ib_build__copied *c = &l->items[i];
		struct stat now;
		if (c->ino != file->ino || c->size != file->size || c->mtime.tv_sec != file->mtime_sec ||
		    c->mtime.tv_nsec != file->mtime_nsec)
			continue;
		if (fstat(c->fd, &now) < 0 || !ib_stat_same(&now, &c->src))
			return -1; /* the source changed since: the copy's own bytes */
		return fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	}
	return -1;
}

void ib_build__copied_free(ib_build__copied_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		close(l->items[i].fd);
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}
