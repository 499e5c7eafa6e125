#include "helpers.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "imagebuild/snapshot.h"
#include "util/buf.h"

struct tb {
	ib_buf buf;
	struct archive *a;
	int started;
	const char *filter;
	int cut;
	int refuse;
};

int buf_write_cb(const void *data, size_t len, void *payload)
{
	return ib_buf_put(payload, data, len) < 0 ? -1 : 0;
}

static la_ssize_t tb_write(struct archive *a, void *p, const void *data, size_t len)
{
	(void)a;
	if (((tb *)p)->refuse)
		return -1;
	return ib_buf_put(&((tb *)p)->buf, data, len) < 0 ? -1 : (la_ssize_t)len;
}

tb *tb_new(void)
{
	tb *t = calloc(1, sizeof *t);
	t->a = archive_write_new();
	archive_write_set_format_pax_restricted(t->a);
	archive_write_set_bytes_per_block(t->a, 0);
	return t;
}

static void tb_start(tb *t)
{
	if (t->started)
		return;
	if (t->filter && !strcmp(t->filter, "gzip"))
		assert_int_equal(archive_write_add_filter_gzip(t->a), ARCHIVE_OK);
	else if (t->filter && !strcmp(t->filter, "zstd"))
		assert_true(archive_write_add_filter_zstd(t->a) >= ARCHIVE_WARN);
	assert_int_equal(archive_write_open2(t->a, t, NULL, tb_write, NULL, NULL), ARCHIVE_OK);
	t->started = 1;
}

void tb_add(tb *t, const tentry *e)
{
	tb_start(t);
	struct archive_entry *ae = archive_entry_new();
	archive_entry_set_pathname(ae, e->path);
	unsigned mode = e->mode;
	int64_t size = 0;
	switch (e->type) {
	case 'd': archive_entry_set_filetype(ae, AE_IFDIR); mode = mode ? mode : 0755; break;
	case 'l': archive_entry_set_filetype(ae, AE_IFLNK); archive_entry_set_symlink(ae, e->link); mode = 0777; break;
	case 'h': archive_entry_set_filetype(ae, AE_IFREG); archive_entry_set_hardlink(ae, e->link); break;
	case 'p': archive_entry_set_filetype(ae, AE_IFIFO); break;
	case 'c': archive_entry_set_filetype(ae, AE_IFCHR); archive_entry_set_rdev(ae, makedev(e->rdev_major, e->rdev_minor)); break;
	case 'b': archive_entry_set_filetype(ae, AE_IFBLK); archive_entry_set_rdev(ae, makedev(e->rdev_major, e->rdev_minor)); break;
	default: archive_entry_set_filetype(ae, AE_IFREG); size = e->data ? (int64_t)strlen(e->data) : 0; break;
	}
	archive_entry_set_perm(ae, mode ? mode : 0644);
	archive_entry_set_uid(ae, e->own ? e->uid : getuid());
	archive_entry_set_gid(ae, e->own ? e->gid : getgid());
	archive_entry_set_mtime(ae, e->mtime ? e->mtime : 1000000, 0);
	archive_entry_set_size(ae, e->size ? e->size : size);
	if (e->xname)
		archive_entry_xattr_add_entry(ae, e->xname, e->xvalue, strlen(e->xvalue));
	assert_true(archive_write_header(t->a, ae) >= ARCHIVE_WARN);
	if (e->size) { /* an absurd header: stop here, as a cut stream */
		archive_entry_free(ae);
		t->cut = 1;
		return;
	}
	if (size)
		assert_int_equal(archive_write_data(t->a, e->data, (size_t)size), size);
	archive_entry_free(ae);
}

void tb_bytes(tb *t, ib_buf *out)
{
	tb_start(t);
	archive_write_close(t->a);
	ib_buf_set(out, t->buf.ptr, t->buf.size);
}

int mem_fd(const void *data, size_t len)
{
	int fd = memfd_create("tar", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

int tb_fd(tb *t, const char *filter)
{
	if (!t->started)
		t->filter = filter;
	tb_start(t);
	if (!t->cut)
		archive_write_close(t->a);
	return mem_fd(t->buf.ptr, t->buf.size);
}

void tb_free(tb *t)
{
	if (t->cut) /* no padding of an absurd size: the writer refuses it */
		t->refuse = 1;
	archive_write_free(t->a);
	ib_buf_dispose(&t->buf);
	free(t);
}

static char type_char(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFIFO: return 'p';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	case S_IFSOCK: return 's';
	default: return 'f';
	}
}

void tar_listing(ib_buf *out, const void *data, size_t len)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, data, len), ARCHIVE_OK);
	struct archive_entry *e;
	ib_buf_clear(out);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *hl = archive_entry_hardlink(e);
		ib_buf_printf(out, "%s %c %04o %lld:%lld %lld", archive_entry_pathname(e),
			      hl ? 'h' : type_char(archive_entry_filetype(e)),
			      (unsigned)archive_entry_perm(e), (long long)archive_entry_uid(e),
			      (long long)archive_entry_gid(e), (long long)archive_entry_size(e));
		if (hl)
			ib_buf_printf(out, " -> %s", hl);
		else if (archive_entry_symlink(e))
			ib_buf_printf(out, " -> %s", archive_entry_symlink(e));
		if (archive_entry_filetype(e) == AE_IFCHR || archive_entry_filetype(e) == AE_IFBLK)
			ib_buf_printf(out, " %u,%u", (unsigned)archive_entry_rdevmajor(e),
				      (unsigned)archive_entry_rdevminor(e));
		if (archive_entry_size(e) > 0 && archive_entry_size(e) < 200) {
			char d[256];
			la_ssize_t n = archive_read_data(a, d, sizeof d - 1);
			d[n > 0 ? n : 0] = '\0';
			ib_buf_printf(out, " [%s]", d);
		}
		const char *xn;
		const void *xv;
		size_t xl;
		char last[256] = "";
		/* libarchive reads both the SCHILY and LIBARCHIVE records: show each name once */
		archive_entry_xattr_reset(e);
		while (archive_entry_xattr_next(e, &xn, &xv, &xl) == ARCHIVE_OK) {
			if (!strcmp(last, xn))
				continue;
			snprintf(last, sizeof last, "%s", xn);
			ib_buf_printf(out, " x:%s=%.*s", xn, (int)xl, (const char *)xv);
		}
		ib_buf_putc(out, '\n');
	}
	archive_read_free(a);
}

void assert_listing(const ib_buf *listing, const char *const *expected)
{
	ib_buf exp = IB_BUF_INIT;
	ib_buf_puts(&exp, "");
	for (size_t i = 0; expected[i]; i++)
		ib_buf_printf(&exp, "%s\n", expected[i]);
	if (strcmp(ib_buf_cstr(listing), exp.ptr))
		fail_msg("tar entries differ.\n--- got:\n%s--- expected:\n%s", ib_buf_cstr(listing), exp.ptr);
	ib_buf_dispose(&exp);
}

typedef struct {
	dev_t dev;
	ino_t ino;
	char *path;
} seen_t;

static void dump_rec(ib_buf *out, int dfd, const char *rel, int skip_wo, seen_t **seen, size_t *nseen)
{
	DIR *d = fdopendir(dup(dfd));
	struct dirent *de;
	char *names[4096];
	size_t n = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			names[n++] = strdup(de->d_name);
	closedir(d);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(names[j], names[i]) < 0) {
				char *t = names[i]; names[i] = names[j]; names[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char path[4096];
		snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", names[i]);
		assert_int_equal(fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW), 0);
		if (skip_wo && S_ISCHR(st.st_mode) && st.st_rdev == 0)
			continue;
		ib_buf_printf(out, "%s %c %04o %u:%u", path, type_char(st.st_mode),
			      (unsigned)(st.st_mode & 07777), st.st_uid, st.st_gid);
		if (S_ISREG(st.st_mode)) {
			const char *first = NULL;
			if (st.st_nlink > 1) {
				for (size_t k = 0; k < *nseen; k++)
					if ((*seen)[k].dev == st.st_dev && (*seen)[k].ino == st.st_ino)
						first = (*seen)[k].path;
				if (!first) {
					*seen = realloc(*seen, (*nseen + 1) * sizeof **seen);
					(*seen)[*nseen] = (seen_t){ st.st_dev, st.st_ino, strdup(path) };
					(*nseen)++;
				}
			}
			ib_buf_printf(out, " %lld", (long long)st.st_size);
			int fd = openat(dfd, names[i], O_RDONLY);
			char b[128];
			ssize_t r = read(fd, b, sizeof b - 1);
			close(fd);
			b[r > 0 ? r : 0] = '\0';
			ib_buf_printf(out, " [%s]", b);
			if (first)
				ib_buf_printf(out, " =%s", first);
		} else if (S_ISLNK(st.st_mode)) {
			char t[4096];
			ssize_t r = readlinkat(dfd, names[i], t, sizeof t - 1);
			t[r > 0 ? r : 0] = '\0';
			ib_buf_printf(out, " -> %s", t);
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			ib_buf_printf(out, " %u,%u", major(st.st_rdev), minor(st.st_rdev));
		}
		char pp[4200], list[4096];
		snprintf(pp, sizeof pp, "/proc/self/fd/%d/%s", dfd, names[i]);
		ssize_t xl = llistxattr(pp, list, sizeof list);
		for (ssize_t k = 0; xl > 0 && k < xl; k += (ssize_t)strlen(list + k) + 1) {
			if (!strncmp(list + k, "trusted.overlay.", 16))
				continue;
			char v[256];
			ssize_t vl = lgetxattr(pp, list + k, v, sizeof v - 1);
			v[vl > 0 ? vl : 0] = '\0';
			ib_buf_printf(out, " x:%s=%s", list + k, v);
		}
		if (!S_ISDIR(st.st_mode))
			ib_buf_printf(out, " t=%lld", (long long)st.st_mtim.tv_sec);
		ib_buf_putc(out, '\n');
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			assert_true(sub >= 0);
			dump_rec(out, sub, path, skip_wo, seen, nseen);
			close(sub);
		}
		free(names[i]);
	}
}

void tree_dump(ib_buf *out, const char *root, int skip_whiteouts)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	seen_t *seen = NULL;
	size_t nseen = 0;
	ib_buf_clear(out);
	ib_buf_puts(out, "");
	dump_rec(out, fd, "", skip_whiteouts, &seen, &nseen);
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].path);
	free(seen);
	close(fd);
}

char *pjoin(const char *a, const char *b)
{
	char *p = malloc(strlen(a) + strlen(b) + 2);
	sprintf(p, "%s/%s", a, b);
	return p;
}

void put_file(const char *root, const char *rel, const char *data, unsigned mode)
{
	char *p = pjoin(root, rel);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode ? mode : 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
	free(p);
}

void rm_tree(const char *path)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", path);
}

int diff_paths(ib_buf *out, const char *changed, const char *parent, int overlay_upper)
{
	return diff_paths_opts(out, changed, parent, overlay_upper, NULL);
}

int diff_paths_opts(ib_buf *out, const char *changed, const char *parent, int overlay_upper,
		    const ib_diff_options *opts)
{
	int cfd = open(changed, O_RDONLY | O_DIRECTORY);
	int pfd = parent ? open(parent, O_RDONLY | O_DIRECTORY) : -1;
	assert_true(cfd >= 0);
	ib_buf_clear(out);
	int rc = ib_snapshot_diff_trees(cfd, pfd, overlay_upper ? IB_DIFF_OVERLAY_UPPER : IB_DIFF_TREE,
					opts, buf_write_cb, out);
	close(cfd);
	if (pfd >= 0)
		close(pfd);
	return rc;
}

int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return 1;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n == 0;
}
