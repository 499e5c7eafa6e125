/* File-system helpers of the snapshot layer: fd-relative removal, sorted listings, xattrs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "snapshot/internal.h"
#include "util/rootless.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/walk.h"

void ib_snapshot__proc_path(char *buf, size_t size, int dirfd, const char *name)
{
	snprintf(buf, size, "/proc/self/fd/%d/%s", dirfd, name);
}

int ib_snapshot__empty_dir(int dirfd)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "dup");
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "opendir");
	}
	rewinddir(d);
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((rc = ib_snapshot__rm_at(dirfd, de->d_name)) < 0)
			break;
	}
	closedir(d);
	return rc;
}

int ib_snapshot__rm_at(int dirfd, const char *name)
{
	return ib_rm_at(dirfd, name, IB_LAYER_SNAPSHOT);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void ib_snapshot__names_free(char **names, size_t n)
{
	ib_dir_names_free(names, n);
}

int ib_snapshot__names(char ***out, size_t *n_out, int dirfd)
{
	return ib_dir_names(out, n_out, dirfd, IB_LAYER_SNAPSHOT, NULL);
}

void ib_snapshot__xattrs_free(ib_snapshot__xattr_list *x)
{
	free(x->data);
	x->data = NULL;
	x->len = 0;
}

int ib_snapshot__xattrs_next(const ib_snapshot__xattr_list *x, size_t *pos, const char **name,
			     const void **value, size_t *vlen)
{
	if (*pos >= x->len)
		return 0;
	const char *p = x->data + *pos;
	size_t nl = strlen(p);
	const unsigned char *l = (const unsigned char *)p + nl + 1;
	size_t len = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 | (size_t)l[3] << 24;
	*name = p;
	*value = l + 4;
	*vlen = len;
	*pos += nl + 1 + 4 + len;
	return 1;
}

/* The xattrs of `path` (l*xattr), or of the open `fd` when it is not -1 (f*xattr: no path lookup). */
static int xattrs_of(ib_snapshot__xattr_list *out, const char *path, int fd, const char *name)
{
	out->data = NULL;
	out->len = 0;
	ssize_t sz = (fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0));
	if (sz < 0) {
		if (errno == ENOTSUP || errno == EOPNOTSUPP)
			return 0;
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "list xattrs of `%s`", name);
	}
	if (sz == 0)
		return 0;
	char *list = ib_malloc((size_t)sz + 1);
	if (!list)
		return -1;
	sz = (fd >= 0 ? flistxattr(fd, list, (size_t)sz) : llistxattr(path, list, (size_t)sz));
	if (sz < 0) {
		free(list);
		return ib_error_set_os(IB_LAYER_SNAPSHOT, "list xattrs of `%s`", name);
	}
	/* sort the names */
	size_t cnt = 0;
	for (ssize_t i = 0; i < sz; i += (ssize_t)strlen(list + i) + 1)
		cnt++;
	char **names = ib_calloc(cnt ? cnt : 1, sizeof *names);
	if (!names) {
		free(list);
		return -1;
	}
	cnt = 0;
	for (ssize_t i = 0; i < sz; i += (ssize_t)strlen(list + i) + 1)
		names[cnt++] = list + i;
	qsort(names, cnt, sizeof *names, cmp_names);
	int rc = 0;
	size_t cap = 0;
	for (size_t i = 0; i < cnt && rc == 0; i++) {
		if (ib_snapshot__ovl_xattr(names[i]))
			continue;
		ssize_t vl = (fd >= 0 ? fgetxattr(fd, names[i], NULL, 0) : lgetxattr(path, names[i], NULL, 0));
		if (vl < 0) {
			if (errno == ENODATA)
				continue;
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "read xattr %s of `%s`", names[i], name);
			break;
		}
		size_t nl = strlen(names[i]);
		size_t need = out->len + nl + 1 + 4 + (size_t)vl;
		if (need > cap) {
			size_t ncap = need * 2;
			char *nd = ib_realloc(out->data, ncap);
			if (!nd) {
				rc = -1;
				break;
			}
			out->data = nd;
			cap = ncap;
		}
		char *p = out->data + out->len;
		memcpy(p, names[i], nl + 1);
		unsigned char *l = (unsigned char *)p + nl + 1;
		ssize_t got = vl ? (fd >= 0 ? fgetxattr(fd, names[i], l + 4, (size_t)vl) : lgetxattr(path, names[i], l + 4, (size_t)vl)) : 0;
		if (got < 0) {
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "read xattr %s of `%s`", names[i], name);
			break;
		}
		l[0] = (unsigned char)(got & 0xff);
		l[1] = (unsigned char)((got >> 8) & 0xff);
		l[2] = (unsigned char)((got >> 16) & 0xff);
		l[3] = (unsigned char)((got >> 24) & 0xff);
		out->len += nl + 1 + 4 + (size_t)got;
	}
	free(names);
	free(list);
	if (rc < 0)
		ib_snapshot__xattrs_free(out);
	return rc;
}

int ib_snapshot__xattrs(ib_snapshot__xattr_list *out, int dirfd, const char *name)
{
	char path[64 + 4096];
	ib_snapshot__proc_path(path, sizeof path, dirfd, name);
	return xattrs_of(out, path, -1, name);
}

int ib_snapshot__xattrs_fd(ib_snapshot__xattr_list *out, int fd, const char *name)
{
	return xattrs_of(out, NULL, fd, name);
}

int ib_snapshot__check_key(const char *key)
{
	if (!key || !*key)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "snapshot key is empty");
	size_t n = strlen(key);
	if (n > 128)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
				     "snapshot key `%.40s...` is longer than 128 characters", key);
	if (key[0] == '.' || key[0] == '-')
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
				     "snapshot key `%s` starts with `%c`", key, key[0]);
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT,
					     "snapshot key `%s`: character %zu is not one of [A-Za-z0-9_.-]",
					     key, i + 1);
	}
	return 0;
}

int ib_snapshot__chain_write(const char *path, const ib_digest *chain, size_t n)
{
	ib_buf b = IB_BUF_INIT;
	int rc = ib_buf_puts(&b, "");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char s[IB_DIGEST_STRLEN];
		ib_digest_fmt(s, &chain[i]);
		rc = ib_buf_printf(&b, "%s\n", s);
	}
	if (rc == 0)
		rc = ib_atomic_write(path, b.ptr, b.size, 0644);
	ib_buf_dispose(&b);
	return rc;
}

int ib_snapshot__chain_read(ib_digest **chain, size_t *n, const char *path)
{
	ib_buf b = IB_BUF_INIT;
	*chain = NULL;
	*n = 0;
	int rc = ib_read_file(&b, path);
	if (rc < 0)
		return rc;
	size_t lines = 0;
	for (size_t i = 0; i < b.size; i++)
		lines += b.ptr[i] == '\n';
	ib_digest *c = ib_calloc(lines ? lines : 1, sizeof *c);
	if (!c) {
		ib_buf_dispose(&b);
		return -1;
	}
	size_t k = 0;
	char *save = NULL;
	for (char *line = strtok_r(b.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (k == lines || ib_digest_parse(&c[k], line) < 0) {
			rc = ib_error_set(IB_LAYER_SNAPSHOT, "`%s`: line %zu is not a layer digest", path, k + 1);
			break;
		}
		k++;
	}
	ib_buf_dispose(&b);
	if (rc < 0) {
		free(c);
		return rc;
	}
	*chain = c;
	*n = k;
	return 0;
}

int ib_snapshot__list_dir(char ***out, size_t *n, const char *path)
{
	*out = NULL;
	*n = 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : ib_error_set_os(IB_LAYER_SNAPSHOT, "open `%s`", path);
	int rc = ib_snapshot__names(out, n, fd);
	close(fd);
	return rc;
}

char *ib_snapshot__active(const ib_snapshot__backend *be, const char *key, const char *sub)
{
	return ib_sprintf("%s/active/%s%s%s", be->dir, key, sub ? "/" : "", sub ? sub : "");
}

int ib_snapshot__backend_remove(ib_snapshotter *self, const char *key)
{
	char *base = ib_snapshot__active((ib_snapshot__backend *)self, key, NULL);
	if (!base)
		return IB_ERROR;
	int rc = ib_rm_rf(base);
	free(base);
	return rc;
}

int ib_snapshot__backend_list(ib_snapshotter *self, ib_snapshot_key_cb cb, void *payload)
{
	char *dir = ib_sprintf("%s/active", ((ib_snapshot__backend *)self)->dir);
	char **names;
	size_t n;
	if (!dir)
		return IB_ERROR;
	int rc = ib_snapshot__list_dir(&names, &n, dir);
	free(dir);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = cb(names[i], payload);
	ib_snapshot__names_free(names, n);
	return rc;
}

int ib_snapshot__backend_chain(ib_snapshotter *self, const char *key, ib_digest **chain, size_t *n)
{
	char *p = ib_snapshot__active((ib_snapshot__backend *)self, key, "chain");
	if (!p)
		return IB_ERROR;
	int rc = ib_snapshot__chain_read(chain, n, p);
	free(p);
	return rc;
}

void ib_snapshot__backend_free(ib_snapshotter *self)
{
	ib_snapshot__backend *be = (ib_snapshot__backend *)self;
	if (!be)
		return;
	free(be->dir);
	free(be);
}

int ib_snapshot__ovl_xattr(const char *name)
{
	return !strncmp(name, "trusted.overlay.", 16) ||
	       (!strncmp(name, "user.overlay.", 13) && ib_userns_active());
}

const char *ib_snapshot__ovl_opaque(void)
{
	return ib_userns_active() ? "user.overlay.opaque" : "trusted.overlay.opaque";
}
