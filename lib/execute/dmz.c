/*
 * The exec helper (dmz/helper.c), embedded in the library at build time,
 * as a sealed memfd the namespaces and chroot children execute right
 * before the command; and the child's side of exec through it.
 */
#include "execute/internal.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

extern const unsigned char ib_execute__exec_helper[];
extern const size_t ib_execute__exec_helper_size;

/* The helper's first argument: without it, it refuses to run (dmz/helper.c). */
const char ib_execute__exec_helper_marker[] = "\x01imagebuild-exec";

int ib_execute__exec_helper_fd(void)
{
	int fd = memfd_create("imagebuild-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL) /* before Linux 6.3 */
		fd = memfd_create("imagebuild-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "memfd_create for the exec helper");
	int wrc = ib_write_all(fd, ib_execute__exec_helper, ib_execute__exec_helper_size);
	if (wrc < 0) {
		ib_error_prefix("write the exec helper");
		close(fd);
		return wrc;
	}
	if (fchmod(fd, 0555) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		int rc = ib_error_set_os(IB_LAYER_EXECUTE, "seal the exec helper");
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * In the child (no allocation): execute `path` as execve would, but through
 * the helper. Returns with errno set when it cannot (ENOENT, EACCES... as
 * execve would say them, for the PATH search); fails the child clearly
 * when `path` resolves through a magic link.
 */
void ib_execute__exec_path(const ib_execute__child_config *cfg, const char *path, char *const argv[],
			   char *const envp[], void (*fail)(const ib_execute__child_config *, const char *))
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = O_PATH | O_CLOEXEC;
	how.resolve = RESOLVE_NO_MAGICLINKS;
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
	if (fd < 0) {
		int err = errno;
		if (err == ELOOP) {
			int plain = open(path, O_PATH | O_CLOEXEC);
			if (plain >= 0) {
				close(plain);
				fail(cfg, path);
			}
		}
		errno = err;
		return;
	}
	struct stat st;
	int ok = fstat((int)fd, &st) == 0;
	close((int)fd);
	if (cfg->exec_helper_fd < 0 || !cfg->helper_argv) {
		execve(path, argv, envp);
		return;
	}
	/* what execve would refuse, refused here, so that a PATH search goes on the same way */
	if (!ok)
		return;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;
		return;
	}
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0)
		return;
	cfg->helper_argv[1] = (char *)path;
	if (fcntl(3, F_SETFD, 0) < 0) /* the error pipe, for the helper to report */
		return;
	syscall(SYS_execveat, cfg->exec_helper_fd, "", cfg->helper_argv, envp, AT_EMPTY_PATH);
	int err = errno;
	fcntl(3, F_SETFD, FD_CLOEXEC);
	errno = err;
}

/*
 * Where `path` leads inside the root `rootfd`, following its symlinks as
 * the kernel would there: 1 when into /proc (whose executables inside a
 * container are all magic links: /proc/<pid>/exe, fd/N, root/...), 0
 * otherwise (missing or not, it is for exec to say).
 */
static int leads_into_proc(int rootfd, const char *path, const char *cwd)
{
	char cur[PATH_MAX] = "", rest[PATH_MAX], next[PATH_MAX];
	int n = path[0] == '/' ? snprintf(rest, sizeof rest, "%s", path)
			       : snprintf(rest, sizeof rest, "%s/%s", cwd ? cwd : "/", path);
	if (n < 0 || (size_t)n >= sizeof rest)
		return 0;
	for (int links = 0; links <= 40;) {
		char *r = rest;
		while (*r == '/')
			r++;
		if (!*r)
			return 0;
		size_t clen = strcspn(r, "/");
		char comp[NAME_MAX + 1];
		if (clen > NAME_MAX)
			return 0;
		memcpy(comp, r, clen);
		comp[clen] = '\0';
		memmove(rest, r + clen, strlen(r + clen) + 1);
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			char *slash = strrchr(cur, '/');
			if (slash)
				*slash = '\0';
			continue;
		}
		char cand[PATH_MAX];
		if ((size_t)snprintf(cand, sizeof cand, "%s/%s", cur, comp) >= sizeof cand)
			return 0;
		if (!strcmp(cand, "/proc"))
			return 1;
		struct stat st;
		if (fstatat(rootfd, cand + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
		if (!S_ISLNK(st.st_mode)) {
			strcpy(cur, cand);
			continue;
		}
		char target[PATH_MAX];
		ssize_t tl = readlinkat(rootfd, cand + 1, target, sizeof target - 1);
		if (tl <= 0)
			return 0;
		target[tl] = '\0';
		links++;
		if ((size_t)snprintf(next, sizeof next, "%s/%s", target, rest) >= sizeof next)
			return 0;
		strcpy(rest, next);
		if (target[0] == '/')
			cur[0] = '\0';
	}
	return 0;
}

/* `cand` (absolute) is a regular file of the root, its links followed inside the root. */
static int regular_in_root(int rootfd, const char *cand)
{
	struct stat st;
	if (cand[0] != '/')
		return 0;
	int fd = ib_open_in_root(rootfd, cand + 1, O_PATH, 0);
	if (fd < 0) {
		ib_error_clear();
		return 0;
	}
	int yes = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	return yes;
}

int ib_execute__refuse_magic_command(const ib_isolation_spec *spec)
{
	const char *cmd = spec->argv && spec->argv[0] ? spec->argv[0] : NULL;
	if (!cmd || !*cmd)
		return 0;
	int rootfd = open(spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "open `%s`", spec->rootfs);
	int magic = 0;
	char found[PATH_MAX];
	snprintf(found, sizeof found, "%s", cmd);
	if (strchr(cmd, '/')) {
		magic = leads_into_proc(rootfd, cmd, spec->cwd);
	} else {
		const char *path = NULL;
		size_t plen = strlen("PATH=");
		for (const char *const *e = spec->env; e && *e; e++)
			if (!strncmp(*e, "PATH=", plen))
				path = *e + plen;
		if (!path)
			path = IB_EXECUTE_DEFAULT_PATH;
		for (const char *p = path; !magic;) {
			size_t dlen = strcspn(p, ":");
			char cand[PATH_MAX];
			if ((size_t)snprintf(cand, sizeof cand, "%.*s%s%s", (int)dlen, p, dlen ? "/" : "",
					     cmd) < sizeof cand) {
				magic = leads_into_proc(rootfd, cand, spec->cwd);
				if (magic)
					snprintf(found, sizeof found, "%s", cand);
				else if (regular_in_root(rootfd, cand))
					break; /* the first found is the one exec takes */
			}
			if (!p[dlen])
				break;
			p += dlen + 1;
		}
	}
	close(rootfd);
	if (!magic)
		return 0;
	return ib_error_set(IB_LAYER_EXECUTE, "exec `%s`: it resolves through a magic link of /proc "
			    "(such as /proc/self/exe), not to a file of the root filesystem; refused", found);
}
