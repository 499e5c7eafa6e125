/*
 * Changes between two trees as an OCI layer tar.
 *
 * One walker serves both kinds of changed tree: a whole tree (the copy
 * backend) and an overlayfs upper directory (whiteouts are 0/0 character
 * devices, replaced directories carry trusted.overlay.opaque=y, everything
 * else is unchanged in the lower layers). Each entry present in the changed
 * tree is compared with the parent tree, so both kinds give the same layer
 * for the same changes. A directory whose parent-side entries are all gone
 * becomes an opaque whiteout, whichever way it was emptied.
 *
 * Output: PAX (restricted), entries depth-first with the entries of every
 * directory in byte order of their tar names, numeric owners only, mtime
 * (clamped to the caller's SOURCE_DATE_EPOCH when asked), no atime/ctime, hardlinks kept.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "snapshot/internal.h"
#include "util/buf.h"
#include "util/callback.h"
#include "util/error.h"
#include "util/walk.h"
#include "util/bigio.h"

#define READ_BUF (1 << 20)
#define OUT_BUF (256 * 1024)

typedef struct {
	dev_t dev;
	ino_t ino;
	char *path;
} link_slot;

typedef struct {
	struct archive *ar;
	ib_snapshot_write_cb write;
	void *payload;
	int cb_rc;
	int stopped; /* failed: nothing more goes to the writer */
	ib_diff_mode mode;
	int clamp;
	int64_t epoch;
	link_slot *links;
	size_t nlinks, caplinks;
	char *rbuf, *rbuf2;
	ib_bigio_ahead *ahead; /* big files' reads, made at the first one */
	int (*source)(const ib_diff_file *, void *); /* ib_diff_options.content_source */
	void *source_payload;
	char *obuf;
	size_t olen;
	ib_buf path;
} differ;

/* ---- output: coalesce small pieces, pass big ones through ---- */

/*
 * The writer returned `rc` (non-zero): the callback contract's value, kept
 * as the error; IB_EUSER with a callback error already recorded comes from
 * the library's own relay (ib_snapshot_diff), whose error stays.
 */
static int writer_stopped(int rc)
{
	if (rc == IB_EUSER && ib_error_last()->layer == IB_LAYER_CALLBACK)
		return IB_EUSER;
	return ib_callback_stopped(rc, "the layer writer stopped the diff");
}

static int out_flush(differ *d)
{
	if (!d->olen)
		return 0;
	int rc = d->write(d->obuf, d->olen, d->payload);
	d->olen = 0;
	if (rc) {
		d->cb_rc = writer_stopped(rc);
		return -1;
	}
	return 0;
}

static la_ssize_t out_write(struct archive *a, void *data, const void *buf, size_t len)
{
	(void)a;
	differ *d = data;
	if (d->stopped)
		return -1;
	if (len < OUT_BUF / 4) {
		if (d->olen + len > OUT_BUF && out_flush(d) < 0)
			return -1;
		memcpy(d->obuf + d->olen, buf, len);
		d->olen += len;
		return (la_ssize_t)len;
	}
	if (out_flush(d) < 0)
		return -1;
	int rc = d->write(buf, len, d->payload);
	if (rc) {
		d->cb_rc = writer_stopped(rc);
		return -1;
	}
	return (la_ssize_t)len;
}

static int ar_fail(differ *d, const char *what)
{
	if (d->cb_rc) {
		if (!ib_error_current())
			ib_callback_stopped(IB_EUSER, "the layer writer stopped the diff");
		return d->cb_rc;
	}
	return ib_error_set(IB_LAYER_SNAPSHOT, "diff: %s `%s`: %s", what, ib_buf_cstr(&d->path),
			    archive_error_string(d->ar));
}

/* ---- hardlinks: (dev, ino) -> first path written ---- */

static const char *link_find(differ *d, const struct stat *st)
{
	if (!d->caplinks)
		return NULL;
	size_t i = ((size_t)st->st_ino * 31 + (size_t)st->st_dev) & (d->caplinks - 1);
	for (; d->links[i].path; i = (i + 1) & (d->caplinks - 1))
		if (d->links[i].dev == st->st_dev && d->links[i].ino == st->st_ino)
			return d->links[i].path;
	return NULL;
}

static int link_add(differ *d, const struct stat *st, const char *path)
{
	if ((d->nlinks + 1) * 2 > d->caplinks) {
		size_t ncap = d->caplinks ? d->caplinks * 2 : 64;
		link_slot *ns = ib_calloc(ncap, sizeof *ns);
		if (!ns)
			return -1;
		for (size_t i = 0; i < d->caplinks; i++) {
			if (!d->links[i].path)
				continue;
			size_t j = ((size_t)d->links[i].ino * 31 + (size_t)d->links[i].dev) & (ncap - 1);
			while (ns[j].path)
				j = (j + 1) & (ncap - 1);
			ns[j] = d->links[i];
		}
		free(d->links);
		d->links = ns;
		d->caplinks = ncap;
	}
	size_t i = ((size_t)st->st_ino * 31 + (size_t)st->st_dev) & (d->caplinks - 1);
	while (d->links[i].path)
		i = (i + 1) & (d->caplinks - 1);
	if (!(d->links[i].path = ib_strdup(path)))
		return -1;
	d->links[i].dev = st->st_dev;
	d->links[i].ino = st->st_ino;
	d->nlinks++;
	return 0;
}

/* ---- comparison ---- */

static int is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

static int same_content(differ *d, int cfd, int pfd, const char *name)
{
	int a = openat(cfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int b = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int same = -1;
	if (a < 0 || b < 0) {
		ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: open `%s`", ib_buf_cstr(&d->path));
		goto out;
	}
	for (;;) {
		ssize_t na = read(a, d->rbuf, READ_BUF);
		if (na < 0) {
			ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: read `%s`", ib_buf_cstr(&d->path));
			goto out;
		}
		size_t got = 0;
		while (got < (size_t)na) {
			ssize_t nb = read(b, d->rbuf2 + got, (size_t)na - got);
			if (nb < 0) {
				ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: read `%s`", ib_buf_cstr(&d->path));
				goto out;
			}
			if (nb == 0)
				break;
			got += (size_t)nb;
		}
		if (got != (size_t)na || memcmp(d->rbuf, d->rbuf2, got)) {
			same = 0;
			break;
		}
		if (na == 0) {
			same = 1;
			break;
		}
	}
out:
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return same;
}

static int same_xattrs(int cfd, int pfd, const char *name)
{
	ib_snapshot__xattr_list a, b;
	if (ib_snapshot__xattrs(&a, cfd, name) < 0)
		return -1;
	if (ib_snapshot__xattrs(&b, pfd, name) < 0) {
		ib_snapshot__xattrs_free(&a);
		return -1;
	}
	int same = a.len == b.len && (!a.len || !memcmp(a.data, b.data, a.len));
	ib_snapshot__xattrs_free(&a);
	ib_snapshot__xattrs_free(&b);
	return same;
}

/* 1 when the entry changed, 0 when not, < 0 on error. */
static int changed(differ *d, int cfd, int pfd, const char *name, const struct stat *c,
		   const struct stat *p)
{
	if (c->st_mode != p->st_mode || c->st_uid != p->st_uid || c->st_gid != p->st_gid)
		return 1;
	/*
	 * A file of the tree below that a step linked to (or another link of its
	 * group was added or removed while it keeps others): its link group is a
	 * change, written with the file as the group's first path, as the
	 * overlayfs copy-up the link needs puts it in the upper directory. In a
	 * whole tree the counts compare alike (the copy backend unpacks the
	 * parent tree the same way as the changed one). In an upper directory
	 * (mounted index=off, so a copy-up breaks the links it had below) a file
	 * with links was linked there, by this step.
	 */
	if (!S_ISDIR(c->st_mode) && c->st_nlink > 1 &&
	    (d->mode == IB_DIFF_OVERLAY_UPPER || c->st_nlink != p->st_nlink))
		return 1;
	int same_time = c->st_mtim.tv_sec == p->st_mtim.tv_sec && c->st_mtim.tv_nsec == p->st_mtim.tv_nsec;
	if (S_ISLNK(c->st_mode)) {
		char la[PATH_MAX + 1], lb[PATH_MAX + 1];
		ssize_t na = readlinkat(cfd, name, la, PATH_MAX), nb = readlinkat(pfd, name, lb, PATH_MAX);
		if (na < 0 || nb < 0)
			return ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: readlink `%s`", ib_buf_cstr(&d->path));
		if (na != nb || memcmp(la, lb, (size_t)na))
			return 1;
	} else if (S_ISCHR(c->st_mode) || S_ISBLK(c->st_mode)) {
		if (c->st_rdev != p->st_rdev)
			return 1;
	} else if (S_ISREG(c->st_mode)) {
		if (c->st_size != p->st_size)
			return 1;
		if (!same_time) {
			int s = same_content(d, cfd, pfd, name);
			if (s <= 0)
				return s < 0 ? s : 1;
		}
	} else if (S_ISDIR(c->st_mode)) {
		if (!same_time)
			return 1;
	}
	int s = same_xattrs(cfd, pfd, name);
	return s < 0 ? s : !s;
}

/* ---- emission ---- */

/* Whole seconds (what a restricted PAX header holds), clamped to SOURCE_DATE_EPOCH. */
static void set_times(differ *d, struct archive_entry *e, const struct stat *st)
{
	int64_t sec = st->st_mtim.tv_sec;
	if (d->clamp && sec > d->epoch)
		sec = d->epoch;
	archive_entry_set_mtime(e, sec, 0);
}

static int emit_marker(differ *d, const char *name)
{
	size_t keep = d->path.size;
	if ((keep && ib_buf_putc(&d->path, '/') < 0) || ib_buf_puts(&d->path, name) < 0)
		return -1;
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return ib_error_oom();
	archive_entry_set_pathname(e, d->path.ptr);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0);
	archive_entry_set_size(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	int r = archive_write_header(d->ar, e);
	archive_entry_free(e);
	int rc = r < ARCHIVE_WARN ? ar_fail(d, "write header of") : 0;
	ib_buf_truncate(&d->path, keep);
	return rc;
}

/*
 * The content of the regular file open as `fd` (closed here). A big one is
 * read around the page cache (util/bigio.h): what a COPY wrote straight to
 * the disk is read from it, not copied into fresh cache pages first.
 */
static int write_file(differ *d, int fd, const struct stat *st)
{
	int64_t left = st->st_size;
	int rc = 0;
	ib_bigio big;
	ib_bigio_init(&big, fd);
	int use_big = st->st_size >= (off_t)IB_BIGIO_MIN;
	/* the caller may have its bytes where reading them costs less (ib_diff_options.content_source) */
	if (use_big && d->source) {
		ib_diff_file f = { d->path.ptr, (uint64_t)st->st_ino, (uint64_t)st->st_size,
				   (int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec };
		int alt = d->source(&f, d->source_payload);
		struct stat ast;
		if (alt >= 0 && fstat(alt, &ast) == 0 && S_ISREG(ast.st_mode) && ast.st_size == st->st_size) {
			close(fd);
			fd = alt;
			ib_bigio_init(&big, fd);
		} else if (alt >= 0) {
			close(alt);
		}
	}
	/* a big one is read ahead on a thread while we pass on what was read (bigio.h) */
	if (use_big && !d->ahead)
		d->ahead = ib_bigio_ahead_new(); /* (without: the plain loop below) */
	if (use_big && d->ahead && ib_bigio_ahead_begin(d->ahead, fd, st->st_size) == 0) {
		size_t n = 1;
		const void *p;
		while (left > 0 && n > 0) {
			if (!(p = ib_bigio_ahead_next(d->ahead, &n))) {
				rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: read `%s`", d->path.ptr);
				break;
			}
			if (n > (size_t)left)
				n = (size_t)left; /* grew while we read: the header said less */
			if (n && archive_write_data(d->ar, p, n) < 0) {
				rc = ar_fail(d, "write data of");
				break;
			}
			left -= (int64_t)n;
		}
		ib_bigio_ahead_end(d->ahead);
		/* shrank while we read: pad, the header is written */
		if (rc == 0 && left > 0)
			memset(d->rbuf, 0, READ_BUF);
		while (rc == 0 && left > 0) {
			size_t want = left < READ_BUF ? (size_t)left : READ_BUF;
			if (archive_write_data(d->ar, d->rbuf, want) < 0)
				rc = ar_fail(d, "write data of");
			left -= (int64_t)want;
		}
		close(fd);
		return rc;
	}
	if (use_big)
		ib_error_clear(); /* no read-ahead (memory, thread): the loop below does it */
	while (left > 0) {
		size_t want = left < READ_BUF ? (size_t)left : READ_BUF;
		ssize_t n = use_big ? ib_bigio_pread(&big, d->rbuf, want, st->st_size - left) : read(fd, d->rbuf, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: read `%s`", d->path.ptr);
			break;
		}
		if (n == 0) { /* shrank while we read: pad, the header is written */
			memset(d->rbuf, 0, want);
			n = (ssize_t)want;
		}
		if (archive_write_data(d->ar, d->rbuf, (size_t)n) < 0) {
			rc = ar_fail(d, "write data of");
			break;
		}
		left -= n;
	}
	close(fd);
	return rc;
}

/* The entry's xattrs: of the open `fd` when it is not -1 (no path lookup), else of `name` in `dfd`. */
static int add_xattrs(struct archive_entry *e, int dfd, const char *name, int fd)
{
	ib_snapshot__xattr_list x;
	if ((fd >= 0 ? ib_snapshot__xattrs_fd(&x, fd, name) : ib_snapshot__xattrs(&x, dfd, name)) < 0)
		return -1;
	size_t pos = 0;
	const char *xn;
	const void *v;
	size_t vl;
	while (ib_snapshot__xattrs_next(&x, &pos, &xn, &v, &vl))
		archive_entry_xattr_add_entry(e, xn, v, vl);
	ib_snapshot__xattrs_free(&x);
	return 0;
}

/* Write the entry d->path (named `name` in `dfd`). */
static int emit(differ *d, int dfd, const char *name, const struct stat *st)
{
	if (S_ISSOCK(st->st_mode))
		return 0; /* tar cannot hold sockets */
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return ib_error_oom();
	int rc = 0, fd = -1;
	archive_entry_set_pathname(e, d->path.ptr);
	archive_entry_set_mode(e, st->st_mode);
	archive_entry_set_uid(e, st->st_uid);
	archive_entry_set_gid(e, st->st_gid);
	set_times(d, e, st);
	const char *first = NULL;
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		first = link_find(d, st);
		if (!first && link_add(d, st, d->path.ptr) < 0) {
			rc = -1;
			goto out;
		}
	}
	if (first) {
		archive_entry_set_hardlink(e, first);
		archive_entry_set_size(e, 0);
	} else {
		/* a file with content is opened first: its xattrs are read through the fd, its content follows */
		if (S_ISREG(st->st_mode) && st->st_size > 0 &&
		    (fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: open `%s`", d->path.ptr);
			goto out;
		}
		if ((rc = add_xattrs(e, dfd, name, fd)) < 0)
			goto out;
		if (S_ISREG(st->st_mode)) {
			archive_entry_set_size(e, st->st_size);
		} else if (S_ISLNK(st->st_mode)) {
			char target[PATH_MAX + 1];
			ssize_t n = readlinkat(dfd, name, target, PATH_MAX);
			if (n < 0) {
				rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: readlink `%s`", d->path.ptr);
				goto out;
			}
			target[n] = '\0';
			archive_entry_set_symlink(e, target);
		} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
			archive_entry_set_rdev(e, st->st_rdev);
		}
	}
	if (archive_write_header(d->ar, e) < ARCHIVE_WARN) {
		rc = ar_fail(d, "write header of");
		goto out;
	}
	if (fd >= 0) {
		rc = write_file(d, fd, st);
		fd = -1;
	}
out:
	if (fd >= 0)
		close(fd);
	archive_entry_free(e);
	return rc;
}

/* ---- the walk ---- */

typedef struct {
	char *key;       /* the tar base name: name or ".wh." + name */
	const char *name;
	int whiteout;
	int have_st;     /* st is the entry's lstat, taken when its directory was listed */
	struct stat st;
} event;

static int cmp_event(const void *a, const void *b)
{
	return strcmp(((const event *)a)->key, ((const event *)b)->key);
}

static int has_name(char **names, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(names[mid], name);
		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* `name` is on the changed side and is not a whiteout there. */
static int has_real_name(int cfd, ib_diff_mode mode, char **names, size_t n, const char *name)
{
	if (!has_name(names, n, name))
		return 0;
	struct stat st;
	return mode != IB_DIFF_OVERLAY_UPPER ||
	       fstatat(cfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !is_whiteout(&st);
}

static int is_opaque(int dfd)
{
	char v[2];
	char path[64];
	ib_snapshot__proc_path(path, sizeof path, dfd, ".");
	ssize_t n = lgetxattr(path, ib_snapshot__ovl_opaque(), v, sizeof v);
	return n == 1 && v[0] == 'y';
}

/*
 * The walk is iterative (a RUN can make a tree 10,000 directories deep):
 * one frame per directory being listed, on both sides, with at most
 * IB_WALK_FDS fds open in all (two per level); an ancestor's closed fd is reopened
 * through ".." of its child and checked by device and inode.
 */
typedef struct {
	int cfd, pfd;     /* -1 while closed; pfd unused without `hp` */
	int hp;           /* the parent tree has this directory */
	struct stat cst, pst;
	char **cn, **pn;  /* the names the events point into */
	size_t nc, np;
	event *ev;
	size_t nev, i;
	size_t keep;      /* d->path's length without this directory */
} dframe;

static void dframe_free(dframe *f)
{
	if (f->ev)
		for (size_t i = 0; i < f->nev; i++)
			free(f->ev[i].key);
	free(f->ev);
	ib_snapshot__names_free(f->cn, f->nc);
	ib_snapshot__names_free(f->pn, f->np);
	f->ev = NULL;
	f->cn = f->pn = NULL;
	f->nev = f->nc = f->np = 0;
}

/* The sorted events of a directory (its entries, whiteouts for what it lost); emits its opaque marker. */
static int enter(differ *d, dframe *f)
{
	int cfd = f->cfd, pfd = f->hp ? f->pfd : -1;
	size_t nc = 0, np = 0, nev = 0, ndel = 0;
	int rc = ib_snapshot__names(&f->cn, &f->nc, cfd);
	if (rc == 0 && pfd >= 0)
		rc = ib_snapshot__names(&f->pn, &f->np, pfd);
	if (rc < 0) {
		ib_error_prefix("diff: `%.200s`", ib_buf_cstr(&d->path));
		return rc;
	}
	char **cn = f->cn, **pn = f->pn;
	nc = f->nc;
	np = f->np;
	/* the parent side, minus whiteouts of a raw lower tree */
	if (d->mode == IB_DIFF_TREE && pfd >= 0) {
		size_t k = 0;
		for (size_t i = 0; i < np; i++) {
			struct stat st;
			if (fstatat(pfd, pn[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && is_whiteout(&st))
				free(pn[i]);
			else
				pn[k++] = pn[i];
		}
		f->np = np = k;
	}
	int upper = d->mode == IB_DIFF_OVERLAY_UPPER && !is_opaque(cfd);
	event *ev = f->ev = ib_calloc(nc + np + 1, sizeof *ev);
	if (!ev)
		return -1;
	/* entries of the changed side; in an upper dir, whiteouts are deletions */
	for (size_t i = 0; i < nc; i++) {
		struct stat st;
		int have = d->mode == IB_DIFF_OVERLAY_UPPER && fstatat(cfd, cn[i], &st, AT_SYMLINK_NOFOLLOW) == 0;
		int wo = have && is_whiteout(&st);
		if (wo && !(upper && has_name(pn, np, cn[i])))
			continue; /* hides nothing */
		ev[nev].name = cn[i];
		ev[nev].whiteout = wo;
		if ((ev[nev].have_st = have))
			ev[nev].st = st;
		ndel += (size_t)wo;
		nev++;
	}
	/* a whole tree or an opaque upper dir: what the parent has and we lack is deleted */
	if (!upper) {
		for (size_t i = 0; i < np; i++) {
			if (has_real_name(cfd, d->mode, cn, nc, pn[i]))
				continue;
			ev[nev].name = pn[i];
			ev[nev].whiteout = 1;
			ndel++;
			nev++;
		}
	}
	int opaque = pfd >= 0 && np > 0 && ndel == np;
	size_t k = 0;
	for (size_t i = 0; i < nev; i++) {
		if (opaque && ev[i].whiteout)
			continue;
		ev[k] = ev[i];
		ev[k].key = ev[k].whiteout ? ib_sprintf(".wh.%s", ev[k].name) : ib_strdup(ev[k].name);
		if (!ev[k].key) {
			f->nev = k;
			return -1;
		}
		k++;
	}
	f->nev = k;
	qsort(ev, f->nev, sizeof *ev, cmp_event);
	if (opaque && (rc = emit_marker(d, ".wh..wh..opq")) < 0)
		return rc;
	return 0;
}

/* Reopen a closed fd of the frame `up` through ".." of its child's `child_fd`. */
static int reopen_up(differ *d, int *fd, const struct stat *want, int child_fd)
{
	int nfd = openat(child_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (nfd < 0)
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: reopen the parent of `%.200s`", d->path.ptr);
	if (fstat(nfd, &st) < 0 || st.st_dev != want->st_dev || st.st_ino != want->st_ino) {
		close(nfd);
		return ib_error_set(IB_LAYER_SNAPSHOT, "diff: `%.200s…`: the tree was moved during the diff",
				    d->path.ptr);
	}
	*fd = nfd;
	return 0;
}

static int walk(differ *d, int cfd, int pfd)
{
	size_t depth = 0, cap = 64;
	dframe *st = ib_calloc(cap, sizeof *st);
	if (!st)
		return -1;
	st[0].cfd = cfd;
	st[0].pfd = pfd;
	st[0].hp = pfd >= 0;
	int rc = enter(d, &st[0]);
	while (rc == 0) {
		dframe *f = &st[depth];
		if (f->i == f->nev) { /* this directory is done */
			if (depth == 0)
				break;
			dframe *up = &st[depth - 1];
			if (up->cfd < 0 && (rc = reopen_up(d, &up->cfd, &up->cst, f->cfd)) < 0)
				break;
			if (up->hp && up->pfd < 0 && (rc = reopen_up(d, &up->pfd, &up->pst, f->pfd)) < 0)
				break;
			close(f->cfd);
			if (f->hp)
				close(f->pfd);
			f->cfd = f->pfd = -1;
			dframe_free(f);
			ib_buf_truncate(&d->path, f->keep);
			depth--;
			continue;
		}
		event *e = &f->ev[f->i++];
		if (e->whiteout) {
			if ((rc = emit_marker(d, e->key)) < 0)
				break;
			continue;
		}
		const char *name = e->name;
		size_t keep = d->path.size;
		if ((keep && ib_buf_putc(&d->path, '/') < 0) || ib_buf_puts(&d->path, name) < 0) {
			rc = -1;
			break;
		}
		/* what apply would refuse is not written: the same limits on both sides */
		if ((rc = ib_tree_check_entry(d->path.ptr, d->path.size, depth + 1, strlen(name),
					      IB_LAYER_SNAPSHOT, "diff: the path")) < 0)
			break;
		int fcfd = f->cfd, fpfd = f->hp ? f->pfd : -1;
		struct stat cst, pst;
		if (e->have_st) {
			cst = e->st; /* stat'ed by enter() a moment ago: not again */
		} else if (fstatat(fcfd, name, &cst, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: stat `%.200s`", d->path.ptr);
			break;
		}
		int in_parent = fpfd >= 0 && fstatat(fpfd, name, &pst, AT_SYMLINK_NOFOLLOW) == 0;
		if (in_parent && d->mode == IB_DIFF_TREE && is_whiteout(&pst))
			in_parent = 0;
		int ch = in_parent ? changed(d, fcfd, fpfd, name, &cst, &pst) : 1;
		if (ch < 0 || (ch && emit(d, fcfd, name, &cst) < 0)) {
			rc = -1;
			break;
		}
		if (!S_ISDIR(cst.st_mode)) {
			ib_buf_truncate(&d->path, keep);
			continue;
		}
		int sub = openat(fcfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: open `%.200s`", d->path.ptr);
			break;
		}
		int hp = in_parent && S_ISDIR(pst.st_mode);
		int psub = -1;
		if (hp && (psub = openat(fpfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			close(sub);
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: open parent's `%.200s`", d->path.ptr);
			break;
		}
		if (depth + 1 == cap) {
			dframe *ns = ib_realloc(st, 2 * cap * sizeof *ns);
			if (!ns) {
				close(sub);
				if (psub >= 0)
					close(psub);
				rc = -1;
				break;
			}
			st = ns;
			memset(st + cap, 0, cap * sizeof *st);
			cap *= 2;
		}
		dframe *c = &st[++depth];
		memset(c, 0, sizeof *c);
		c->cfd = sub;
		c->pfd = psub;
		c->hp = hp;
		c->keep = keep;
		if (fstat(sub, &c->cst) < 0 || (hp && fstat(psub, &c->pst) < 0)) {
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "diff: stat `%.200s`", d->path.ptr);
			break;
		}
		/* bounded fds: an ancestor IB_WALK_FDS / 2 levels up gives its fds back (the root's stay) */
		if (depth > IB_WALK_FDS / 2) {
			dframe *old = &st[depth - IB_WALK_FDS / 2];
			if (old->cfd >= 0)
				close(old->cfd);
			old->cfd = -1;
			if (hp && old->pfd >= 0) {
				close(old->pfd);
				old->pfd = -1;
			}
		}
		rc = enter(d, c);
	}
	for (size_t i = 0; i <= depth; i++) {
		if (i > 0) {
			if (st[i].cfd >= 0)
				close(st[i].cfd);
			if (st[i].hp && st[i].pfd >= 0)
				close(st[i].pfd);
		}
		dframe_free(&st[i]);
	}
	free(st);
	return rc;
}

int ib_snapshot_diff_trees(int changed_fd, int parent_fd, ib_diff_mode mode, const ib_diff_options *opts,
			   ib_snapshot_write_cb write, void *payload)
{
	if (mode != IB_DIFF_TREE && mode != IB_DIFF_OVERLAY_UPPER)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "unknown diff mode %d", (int)mode);
	if (!write)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "diff: no write callback");
	ib_error_clear(); /* writer_stopped() reads it */
	differ d;
	memset(&d, 0, sizeof d);
	d.write = write;
	d.payload = payload;
	d.mode = mode;
	ib_diff_options o;
	int rc = ib_snapshot__diff_options(&o, opts);
	if (rc < 0)
		return rc;
	d.clamp = o.use_source_date_epoch;
	d.source = o.content_source;
	d.source_payload = o.content_payload;
	d.epoch = o.source_date_epoch;
	d.rbuf = ib_bigio_alloc(READ_BUF); /* aligned: big files are read with O_DIRECT into it */
	d.ahead = NULL; /* at the first big file */
	d.rbuf2 = ib_malloc(READ_BUF);
	d.obuf = ib_malloc(OUT_BUF);
	d.ar = archive_write_new();
	if (!d.rbuf || !d.rbuf2 || !d.obuf || !d.ar) {
		rc = d.ar ? -1 : ib_error_oom();
		goto out;
	}
	if (archive_write_set_format_pax_restricted(d.ar) != ARCHIVE_OK ||
	    archive_write_add_filter_none(d.ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(d.ar, 0) != ARCHIVE_OK ||
	    archive_write_open2(d.ar, &d, NULL, out_write, NULL, NULL) != ARCHIVE_OK) {
		rc = ar_fail(&d, "start the tar of");
		goto out;
	}
	if (ib_buf_puts(&d.path, "") < 0) {
		rc = -1;
		goto out;
	}
	rc = walk(&d, changed_fd, parent_fd);
	if (rc == 0 && archive_write_close(d.ar) != ARCHIVE_OK)
		rc = ar_fail(&d, "finish the tar of");
	if (rc == 0)
		rc = out_flush(&d) < 0 ? ar_fail(&d, "flush") : 0;
	if (rc < 0 && d.cb_rc)
		rc = d.cb_rc;
out:
	if (d.ar) {
		if (rc < 0) {
			/* closed, not archive_write_fail()ed: that leaks the output's state */
			d.stopped = 1;
			archive_write_close(d.ar);
		}
		archive_write_free(d.ar);
	}
	for (size_t i = 0; i < d.caplinks; i++)
		free(d.links[i].path);
	free(d.links);
	free(d.rbuf);
	free(d.rbuf2);
	ib_bigio_ahead_free(d.ahead);
	free(d.obuf);
	ib_buf_dispose(&d.path);
	return ib_callback_result(rc);
}
