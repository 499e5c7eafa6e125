/*
 * USER specs resolved in the root filesystem's own /etc/passwd and
 * /etc/group, the way Docker (runc's GetExecUser) does. The files are opened
 * inside the root (openat2 RESOLVE_IN_ROOT), so a symlinked /etc/passwd
 * cannot make us read the host's; only regular files of at most
 * IB_USER_FILE_MAX bytes are read (a FIFO would block us forever, a device
 * node would read the host's device), and they are first opened O_PATH, so
 * not even a device's open runs.
 *
 * Ids above 2^31-1 are refused, as runc does (containerd CVE-2024-40635):
 * setresuid(4294967295) means "unchanged" to the kernel, so `USER
 * 4294967295` would keep root.
 */
#include "execute/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest /etc/passwd or /etc/group read (real ones are kilobytes). */
#define IB_USER_FILE_MAX (4u << 20)
/* The largest uid or gid accepted (runc's maxID). */
#define IB_USER_ID_MAX 2147483647u

/* Read `<root>/<rel>` inside the root; 1 when it does not exist. */
static int read_in_root(ib_buf *out, int rootfd, const char *rel)
{
	int pfd = ib_open_in_root(rootfd, rel, O_PATH, 0);
	if (pfd < 0) {
		if (ib_error_current() == IB_ENOTFOUND) {
			ib_error_clear();
			return 1;
		}
		return pfd;
	}
	struct stat st;
	int rc = 0;
	if (fstat(pfd, &st) < 0)
		rc = ib_error_set_os(IB_LAYER_EXECUTE, "stat /%s of the root filesystem", rel);
	else if (!S_ISREG(st.st_mode))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
				   "/%s of the root filesystem is not a regular file (%s); refusing to read it",
				   rel, S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISBLK(st.st_mode) ? "a block device"
				   : S_ISCHR(st.st_mode) ? "a character device" : S_ISSOCK(st.st_mode) ? "a socket"
				   : S_ISDIR(st.st_mode) ? "a directory" : "another type");
	else if ((uint64_t)st.st_size > IB_USER_FILE_MAX)
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
				   "/%s of the root filesystem is larger than %u bytes (%lld); refusing to read it",
				   rel, IB_USER_FILE_MAX, (long long)st.st_size);
	if (rc < 0) {
		close(pfd);
		return rc;
	}
	/* the very inode just checked, now for reading (the O_PATH descriptor pins it) */
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", pfd);
	int fd = open(link, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	close(pfd);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "open /%s of the root filesystem", rel);
	char *what = ib_sprintf("/%s of the root filesystem", rel);
	rc = what ? ib_read_fd(out, fd, IB_USER_FILE_MAX, what) : IB_ERROR;
	free(what);
	close(fd);
	return rc;
}

/* Split a colon-separated line into at most `max` fields, in place. */
static size_t split_fields(char *line, char **fields, size_t max)
{
	size_t n = 0;
	fields[n++] = line;
	for (char *p = line; *p && n < max; p++) {
		if (*p == ':') {
			*p = '\0';
			fields[n++] = p + 1;
		}
	}
	return n;
}

/* A decimal id: 1 and the value, or 0 when `s` is not a number. */
static int parse_id(const char *s, uint32_t *out)
{
	if (!*s)
		return 0;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return 0;
	}
	*out = (uint32_t)v;
	return 1;
}

/* Calls `fn` for every well-formed line of a colon file; stops when it returns non-zero. */
typedef int (*line_fn)(char **fields, size_t n, void *payload);

static int each_line(ib_buf *content, size_t want, line_fn fn, void *payload)
{
	char *save = NULL;
	for (char *line = strtok_r(content->ptr, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[len - 1] = '\0';
		if (!*line || *line == '#')
			continue;
		char *fields[8];
		size_t n = split_fields(line, fields, 8);
		if (n < want)
			continue;
		int rc = fn(fields, n, payload);
		if (rc)
			return rc;
	}
	return 0;
}

typedef struct {
	const char *name;   /* match by name, or */
	uint32_t uid;       /* by uid when name is NULL */
	ib_user *out;
	int found;
} passwd_query;

static int passwd_line(char **f, size_t n, void *payload)
{
	(void)n;
	passwd_query *q = payload;
	uint32_t uid, gid;
	if (!parse_id(f[2], &uid) || !parse_id(f[3], &gid))
		return 0;
	if (q->name ? strcmp(f[0], q->name) != 0 : uid != q->uid)
		return 0;
	q->out->uid = uid;
	q->out->gid = gid;
	q->out->name = ib_strdup(f[0]);
	q->out->home = ib_strdup(*f[5] ? f[5] : "/");
	if (!q->out->name || !q->out->home)
		return IB_ERROR;
	q->found = 1;
	return 1;
}

typedef struct {
	const char *group;      /* explicit group by name, or NULL */
	int by_gid;             /* explicit group by number */
	uint32_t gid;
	const char *member;     /* else: supplementary groups listing this user */
	ib_user *out;
	int found;
} group_query;

static int add_group(ib_user *u, uint32_t gid)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == gid)
			return 0;
	uint32_t *g = ib_realloc(u->groups, (u->ngroups + 1) * sizeof *g);
	if (!g)
		return IB_ERROR;
	u->groups = g;
	u->groups[u->ngroups++] = gid;
	return 0;
}

static int group_line(char **f, size_t n, void *payload)
{
	group_query *q = payload;
	uint32_t gid;
	if (!parse_id(f[2], &gid))
		return 0;
	if (q->group) {
		if (strcmp(f[0], q->group) == 0) {
			q->gid = gid;
			q->found = 1;
			return 1;
		}
		return 0;
	}
	if (!q->member || n < 4)
		return 0;
	char *save = NULL;
	for (char *m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save)) {
		while (*m == ' ')
			m++;
		if (strcmp(m, q->member) == 0)
			return add_group(q->out, gid) < 0 ? IB_ERROR : 0;
	}
	return 0;
}

static int resolve_user_part(ib_user *out, int rootfd, const char *user, int *by_name)
{
	passwd_query q = { NULL, 0, out, 0 };
	*by_name = !parse_id(user, &q.uid);
	if (*by_name)
		q.name = user;
	ib_buf content = IB_BUF_INIT;
	int rc = read_in_root(&content, rootfd, "etc/passwd");
	if (rc == 0)
		rc = each_line(&content, 7, passwd_line, &q);
	ib_buf_dispose(&content);
	if (rc < 0)
		return rc;
	if (q.found)
		return 0;
	if (*by_name)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_EXECUTE,
				     "user `%s`: no such user in /etc/passwd of the root filesystem%s",
				     user, rc == 1 ? " (it has no /etc/passwd)" : "");
	out->uid = q.uid;
	out->gid = 0;
	return 0;
}

static int resolve_groups(ib_user *out, int rootfd, const char *group, int user_by_name)
{
	group_query q = { NULL, 0, 0, NULL, out, 0 };
	if (group) {
		q.by_gid = parse_id(group, &q.gid);
		if (q.by_gid) {
			out->gid = q.gid;
			return 0;
		}
		q.group = group;
	} else if (user_by_name || out->name) {
		q.member = out->name;
	} else {
		return 0;
	}
	ib_buf content = IB_BUF_INIT;
	int rc = read_in_root(&content, rootfd, "etc/group");
	int missing = rc == 1;
	if (rc == 0)
		rc = each_line(&content, 3, group_line, &q);
	ib_buf_dispose(&content);
	if (rc < 0)
		return rc;
	if (group && !q.found)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_EXECUTE,
				     "group `%s`: no such group in /etc/group of the root filesystem%s",
				     group, missing ? " (it has no /etc/group)" : "");
	if (group)
		out->gid = q.gid;
	return 0;
}

/* Refuse ids the kernel would take for -1 ("unchanged") or that runc refuses. */
static int check_ids(const ib_user *u, const char *spec)
{
	const char *what = NULL;
	uint32_t bad = 0;
	if (u->uid > IB_USER_ID_MAX) {
		what = "uid";
		bad = u->uid;
	} else if (u->gid > IB_USER_ID_MAX) {
		what = "gid";
		bad = u->gid;
	}
	for (size_t i = 0; !what && i < u->ngroups; i++) {
		if (u->groups[i] > IB_USER_ID_MAX) {
			what = "supplementary gid (from /etc/group)";
			bad = u->groups[i];
		}
	}
	if (!what)
		return 0;
	return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
			     "user `%s`: %s %u is out of range: uids and gids must be in range 0-%u",
			     spec, what, (unsigned int)bad, IB_USER_ID_MAX);
}

int ib_user_resolve(ib_user *out, const char *rootfs, const char *spec)
{
	if (!out || !rootfs)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "ib_user_resolve: NULL argument");
	if (out->version != IB_USER_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "ib_user version %u is not supported",
				     out->version);
	memset(out, 0, sizeof *out);
	out->version = IB_USER_VERSION;
	const char *s = spec && *spec ? spec : "root";
	char *user = ib_strdup(s);
	if (!user)
		return IB_ERROR;
	char *group = strchr(user, ':');
	if (group)
		*group++ = '\0';
	int rc = 0;
	if (!*user || (group && !*group))
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "user `%s`: invalid user spec", s);
	int rootfd = -1;
	if (rc == 0) {
		rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			rc = ib_error_set_os(IB_LAYER_EXECUTE, "open root filesystem `%s`", rootfs);
	}
	int by_name = 0;
	if (rc == 0 && !(!spec || !*spec)) {
		rc = resolve_user_part(out, rootfd, user, &by_name);
	} else if (rc == 0) {
		/* root: its home and groups if /etc/passwd knows it, else 0:0 */
		rc = resolve_user_part(out, rootfd, "0", &by_name);
	}
	if (rc == 0)
		rc = resolve_groups(out, rootfd, group, by_name);
	if (rc == 0)
		rc = check_ids(out, s);
	if (rc == 0 && !out->home && !(out->home = ib_strdup("/")))
		rc = IB_ERROR;
	if (rootfd >= 0)
		close(rootfd);
	free(user);
	if (rc < 0)
		ib_user_dispose(out);
	return rc;
}

void ib_user_dispose(ib_user *user)
{
	if (!user)
		return;
	free(user->groups);
	free(user->name);
	free(user->home);
	unsigned int version = user->version;
	memset(user, 0, sizeof *user);
	user->version = version; /* reusable for another ib_user_resolve() */
}

int ib_user_init(ib_user *user, unsigned int version)
{
	if (!user || version != IB_USER_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "ib_user version %u is not supported", version);
	memset(user, 0, sizeof *user);
	user->version = version;
	return 0;
}
