#include "util/path.h"
#include "util/buf.h"
#include "util/error.h"

#include <string.h>

int ib_path_clean(ib_buf *out, const char *path)
{
	size_t n = strlen(path);
	int rooted = n > 0 && path[0] == '/';
	ib_buf b = IB_BUF_INIT;
	size_t dotdot = 0; /* where ".." may no longer be backtracked */
	size_t r = 0;

	if (n == 0)
		return ib_buf_set(out, ".", 1);
	if (ib_buf_grow(&b, n + 1) < 0)
		return IB_ERROR;
	if (rooted) {
		ib_buf_putc(&b, '/');
		r = 1;
		dotdot = 1;
	}
	while (r < n) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (b.size > dotdot) {
				size_t w = b.size - 1;
				while (w > dotdot && b.ptr[w] != '/')
					w--;
				ib_buf_truncate(&b, w);
			} else if (!rooted) {
				if (b.size > 0)
					ib_buf_putc(&b, '/');
				ib_buf_put(&b, "..", 2);
				dotdot = b.size;
			}
		} else {
			if ((rooted && b.size != 1) || (!rooted && b.size != 0))
				ib_buf_putc(&b, '/');
			while (r < n && path[r] != '/')
				ib_buf_putc(&b, path[r++]);
		}
	}
	if (b.size == 0)
		ib_buf_putc(&b, '.');
	if (!b.ptr) {
		ib_buf_dispose(&b);
		return ib_error_oom();
	}
	int rc = ib_buf_set(out, b.ptr, b.size);
	ib_buf_dispose(&b);
	return rc;
}

int ib_path_join(ib_buf *out, const char *a, const char *b)
{
	ib_buf t = IB_BUF_INIT;
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	int rc = ib_buf_put(&t, a, la);
	if (rc == 0 && *b && !(la == 1 && a[0] == '/'))
		rc = ib_buf_putc(&t, '/');
	if (rc == 0)
		rc = ib_buf_puts(&t, b);
	if (rc == 0)
		rc = ib_buf_set(out, t.ptr, t.size);
	ib_buf_dispose(&t);
	return rc;
}

int ib_path_join_in_root(ib_buf *out, const char *root, const char *rel)
{
	ib_buf c = IB_BUF_INIT;
	int rc;
	if (rel[0] == '/')
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL,
				     "path `%s` is absolute; expected a path inside `%s`", rel, root);
	if ((rc = ib_path_clean(&c, rel)) < 0)
		return rc;
	if (strcmp(c.ptr, "..") == 0 || strncmp(c.ptr, "../", 3) == 0) {
		ib_buf_dispose(&c);
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL,
				     "path `%s` leaves `%s` through `..`", rel, root);
	}
	if (strcmp(c.ptr, ".") == 0)
		rc = ib_buf_set(out, root, strlen(root));
	else
		rc = ib_path_join(out, root, c.ptr);
	ib_buf_dispose(&c);
	return rc;
}

int ib_path_scope(ib_buf *out, const char *path)
{
	ib_buf t = IB_BUF_INIT;
	int rc = ib_buf_putc(&t, '/');
	if (rc == 0)
		rc = ib_buf_puts(&t, path);
	if (rc == 0)
		rc = ib_path_clean(out, t.ptr);
	ib_buf_dispose(&t);
	if (rc < 0)
		return rc;
	if (strcmp(out->ptr, "/") == 0)
		return ib_buf_set(out, ".", 1);
	return ib_buf_set(out, out->ptr + 1, out->size - 1);
}
