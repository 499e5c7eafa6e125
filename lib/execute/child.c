/*
 * The child side of the namespaces and chroot backends: everything between
 * fork (clone) and execve. It runs in a copy of the caller, possibly of a
 * multi-threaded one, so it does not allocate or take locks: it only makes
 * system calls and formats into stack buffers. A failure is written to
 * cfg->err_fd (close-on-exec: the parent reads EOF when execve succeeds).
 *
 * Why the caller's binary is never reachable from inside (runc
 * CVE-2019-5736): the namespaces backend clones this child straight into a
 * new PID namespace, so this child is PID 1 there and no other process of
 * ours is in it. Until exec nothing of the container runs, so nobody can
 * open /proc/1/exe while it still is the caller's binary. The exec itself
 * would still resolve /proc/self/exe to the caller's binary (a command
 * that is, or links to, /proc/self/exe, a `#!` interpreter or an ELF
 * PT_INTERP naming it), so the command is executed through a tiny static
 * helper from a sealed memfd (dmz.c): by the time the kernel resolves the
 * command, /proc/self/exe is that helper; a command that resolves through
 * a magic link is refused with a clear error before. The caller itself
 * lives outside the PID namespace and does not appear in the fresh /proc.
 * The chroot backend has no PID namespace and is documented as weaker.
 *
 * Docker's seccomp profile and a fresh session keyring (seccomp.c) come
 * last, right before exec.
 *
 * A privileged spec (RUN --security=insecure, only when the embedder
 * allowed it) undoes on purpose what follows about devices, capabilities,
 * seccomp, no_new_privs, masked paths and the read-only /sys, as BuildKit's
 * insecure mode does; namespaces, the exec helper and the closed
 * descriptors stay. Every such branch tests spec->privileged.
 *
 * Why the host cannot be reached through a leaked descriptor (runc
 * CVE-2024-21626): every descriptor but 0-2 and the close-on-exec error
 * pipe is closed right after the standard streams are set, before
 * pivot_root; the working directory is opened after pivot_root, resolved
 * inside the new root with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, so
 * /proc/self/fd/N cannot be followed.
 *
 * Why a symlink in the image cannot make us mount outside the root: every
 * mount target is opened with openat2(RESOLVE_IN_ROOT) relative to the
 * root, and the mount goes on /proc/self/fd/N of that O_PATH descriptor.
 *
 * Why no device but Docker's defaults can be opened (`RUN mknod /x b 8 0`,
 * or a 0666 disk node shipped in a layer, would otherwise reach the host's
 * disks): the root and every bind mount (recursively, mount_setattr
 * AT_RECURSIVE) are nodev, and so is the tmpfs on /dev. The only nodes that
 * open are null, zero, full, random, urandom and tty, made in a private
 * tmpfs that /dev then covers and bound from there onto files of /dev (so a
 * chmod inside changes our copy, never the host's), the devpts instance
 * (ptys; devpts has no mknod) and, with a terminal, /dev/console. The
 * process keeps CAP_MKNOD, like under Docker: `mknod` works, opening the
 * node it made does not (EACCES where Docker's device cgroup says EPERM).
 * This needs a mount namespace: the chroot backend without one runs only
 * when the root is already on a nodev mount, and refuses otherwise. With
 * one, chroot makes every mount of its private namespace nodev (root can
 * leave a chroot and would find the host's /dev there) but /dev's own.
 */
#include "execute/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void child_fail(const ib_execute__child_config *cfg, int code, int err, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

static void child_fail(const ib_execute__child_config *cfg, int code, int err, const char *fmt, ...)
{
	ib_execute__child_error e;
	memset(&e, 0, sizeof e);
	e.err = err;
	e.code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof e.message, fmt, ap);
	va_end(ap);
	if (err) {
		size_t len = strlen(e.message);
		const char *desc = strerrordesc_np(err);
		snprintf(e.message + len, sizeof e.message - len, ": %s", desc ? desc : "unknown error");
	}
	ssize_t n = write(cfg->err_fd, &e, sizeof e);
	(void)n;
	_exit(code ? code : 127);
}

/* An O_PATH descriptor of `path` resolved inside the root `rootfd`. */
static int open_in(int rootfd, const char *path, int flags)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(O_CLOEXEC | flags);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	while (*path == '/')
		path++;
	for (;;) {
		long fd = syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how);
		if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
			return (int)fd;
	}
}

static void fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Mount flags a bind remount must keep (the kernel refuses to drop locked ones). */
static unsigned long kept_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static void remount_ro(const ib_execute__child_config *cfg, const char *path, const char *shown)
{
	if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(path), NULL) < 0)
		child_fail(cfg, 0, errno, "remount `%s` read-only", shown);
}

/* nodev on the mount at `path` and on every mount under it (no device node opens there). */
static void nodev_tree(const ib_execute__child_config *cfg, const char *path, const char *shown)
{
	struct mount_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.attr_set = MOUNT_ATTR_NODEV;
	if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0)
		return;
	if (errno != ENOSYS)
		child_fail(cfg, 0, errno, "make `%s` nodev", shown);
	/* before Linux 5.12: a remount, of the top mount only */
	if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_NODEV | kept_flags(path), NULL) < 0)
		child_fail(cfg, 0, errno, "remount `%s` nodev", shown);
}

/* Mount on `target` (inside the root), never outside it; binds are made nodev. */
static void mount_in(const ib_execute__child_config *cfg, int rootfd, const char *target, const char *src,
		     const char *fstype, unsigned long flags, const char *data, int readonly)
{
	int fd = open_in(rootfd, target, O_PATH);
	if (fd < 0)
		child_fail(cfg, 0, errno, "open mount point `%s` in the root filesystem", target);
	char p[64];
	fd_path(p, sizeof p, fd);
	if (mount(src, p, fstype, flags, data) < 0)
		child_fail(cfg, 0, errno, "mount %s on `%s`", fstype ? fstype : src, target);
	close(fd);
	if (readonly || (flags & MS_BIND)) {
		/* the new mount is on top now: open it again */
		fd = open_in(rootfd, target, O_PATH);
		if (fd < 0)
			child_fail(cfg, 0, errno, "open `%s` in the root filesystem", target);
		fd_path(p, sizeof p, fd);
		if ((flags & MS_BIND) && !cfg->spec->privileged)
			nodev_tree(cfg, p, target);
		if (readonly)
			remount_ro(cfg, p, target);
		close(fd);
	}
}

/*
 * The last /dev/loopN a privileged run gets, as BuildKit's insecure mode
 * (util/entitlements/security): loop0 up to the host's first free loop
 * device + 7. LOOP_CTL_GET_FREE may allocate that device on the host.
 */
int ib_execute__privileged_last_loop(void)
{
	int free_loop = 0;
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl >= 0) {
		int n = ioctl(ctl, 0x4C82 /* LOOP_CTL_GET_FREE */);
		if (n > 0)
			free_loop = n;
		close(ctl);
	}
	return free_loop + 7;
}

/* Docker's default device nodes (the device cgroup's allow list, less the ptys). */
static const struct { const char *name; unsigned int major, minor; } dev_nodes[] = {
	{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
	{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};
#define DEV_NODES (sizeof dev_nodes / sizeof dev_nodes[0])

/*
 * The node `name` of the private store `storefd` (the host's /dev/`name`
 * when we may not mknod) bound on a new plain file of /dev, so it opens
 * though /dev itself is nodev.
 */
static void bind_dev_node(const ib_execute__child_config *cfg, int devfd, const char *name, int nodefd)
{
	int fd = openat(devfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		child_fail(cfg, 0, errno, "create /dev/%s", name);
	close(fd);
	fd = openat(devfd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	char p[64], src[64];
	fd_path(p, sizeof p, fd);
	if (nodefd >= 0)
		fd_path(src, sizeof src, nodefd);
	else /* no CAP_MKNOD */
		snprintf(src, sizeof src, "/dev/%s", name);
	if (fd < 0 || mount(src, p, NULL, MS_BIND, NULL) < 0)
		child_fail(cfg, 0, errno, "bind /dev/%s", name);
	close(fd);
}

/*
 * The nodes BuildKit adds to /dev in insecure mode
 * (util/entitlements/security/security_linux.go, WithInsecureSpec): kmsg,
 * cuse, fuse, kvm, net/tun, loop-control, and loop0 up to the first free
 * loop device + 7 (LOOP_CTL_GET_FREE on the host's /dev/loop-control, still
 * visible: this runs before pivot_root). Mode 0666 as runc makes them.
 * Where we may not mknod (a user namespace) they are left out, as BuildKit
 * leaves them out there.
 */
static void privileged_dev_nodes(const ib_execute__child_config *cfg, int devfd)
{
	static const struct { const char *name; unsigned int major, minor; } extra[] = {
		{ "kmsg", 1, 11 }, { "cuse", 10, 203 }, { "fuse", 10, 229 }, { "kvm", 10, 232 },
		{ "net/tun", 10, 200 }, { "loop-control", 10, 237 },
	};
	if (mkdirat(devfd, "net", 0755) < 0)
		child_fail(cfg, 0, errno, "mkdir /dev/net");
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
		if (mknodat(devfd, extra[i].name, S_IFCHR | 0666, makedev(extra[i].major, extra[i].minor)) < 0) {
			if (errno == EPERM)
				return;
			child_fail(cfg, 0, errno, "mknod /dev/%s", extra[i].name);
		}
		fchmodat(devfd, extra[i].name, 0666, 0);
	}
	int last = ib_execute__privileged_last_loop();
	for (int i = 0; i <= last; i++) {
		char name[32];
		snprintf(name, sizeof name, "loop%d", i);
		if (mknodat(devfd, name, S_IFBLK | 0666, makedev(7, (unsigned int)i)) < 0)
			child_fail(cfg, 0, errno, "mknod /dev/%s", name);
		fchmodat(devfd, name, 0666, 0);
	}
}

/* A minimal /dev: null, zero, full, random, urandom, tty, pts, shm and the usual links. */
static void setup_dev(const ib_execute__child_config *cfg, int rootfd)
{
	/* the nodes, made in a private tmpfs that the real /dev covers next */
	mount_in(cfg, rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=700,size=16k", 0);
	int storefd = open_in(rootfd, "dev", O_DIRECTORY | O_RDONLY);
	if (storefd < 0)
		child_fail(cfg, 0, errno, "open the device store");
	int nodefds[DEV_NODES];
	for (size_t i = 0; i < DEV_NODES; i++) {
		nodefds[i] = -1;
		if (mknodat(storefd, dev_nodes[i].name, S_IFCHR | 0666,
			    makedev(dev_nodes[i].major, dev_nodes[i].minor)) < 0)
			continue;
		fchmodat(storefd, dev_nodes[i].name, 0666, 0);
		nodefds[i] = openat(storefd, dev_nodes[i].name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (nodefds[i] < 0)
			child_fail(cfg, 0, errno, "open the device node %s", dev_nodes[i].name);
	}
	/* privileged: devices open, as under runc with an allow-all device cgroup */
	mount_in(cfg, rootfd, "dev", "tmpfs", "tmpfs",
		 MS_NOSUID | (cfg->spec->privileged ? 0 : MS_NODEV) | MS_STRICTATIME,
		 "mode=755,size=65536k", 0);
	int devfd = open_in(rootfd, "dev", O_DIRECTORY | O_RDONLY);
	if (devfd < 0)
		child_fail(cfg, 0, errno, "open /dev");
	for (size_t i = 0; i < DEV_NODES; i++) {
		bind_dev_node(cfg, devfd, dev_nodes[i].name, nodefds[i]);
		if (nodefds[i] >= 0)
			close(nodefds[i]);
	}
	/* the binds keep their own flags: the covered store itself (alone) need not open anything */
	struct mount_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.attr_set = MOUNT_ATTR_NODEV;
	if (syscall(SYS_mount_setattr, storefd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0 &&
	    errno != ENOSYS) /* before Linux 5.12 it stays as it is, covered */
		child_fail(cfg, 0, errno, "make the device store nodev");
	close(storefd);
	static const struct { const char *name, *target; } links[] = {
		{ "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
		{ "ptmx", "pts/ptmx" }, { "core", "/proc/kcore" },
	};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlinkat(links[i].target, devfd, links[i].name) < 0)
			child_fail(cfg, 0, errno, "symlink /dev/%s", links[i].name);
	if (mkdirat(devfd, "pts", 0755) < 0 || mkdirat(devfd, "shm", 01777) < 0 ||
	    mkdirat(devfd, "mqueue", 0755) < 0)
		child_fail(cfg, 0, errno, "mkdir in /dev");
	if (cfg->spec->privileged)
		privileged_dev_nodes(cfg, devfd);
	close(devfd);
	int fd = open_in(rootfd, "dev/pts", O_PATH);
	char p[64];
	fd_path(p, sizeof p, fd);
	if (fd < 0 || (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC,
			     "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 &&
		       mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC,
			     "newinstance,ptmxmode=0666,mode=0620") < 0))
		child_fail(cfg, 0, errno, "mount devpts on /dev/pts");
	close(fd);
	mount_in(cfg, rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		 "mode=1777,size=65536k", 0);
	if (cfg->spec->tty) {
		/* the terminal (our descriptor 0 by now) as /dev/console, like Docker: ttyname finds it */
		int dfd = open_in(rootfd, "dev", O_DIRECTORY | O_RDONLY);
		int cfd = dfd < 0 ? -1 : openat(dfd, "console", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (cfd < 0)
			child_fail(cfg, 0, errno, "create /dev/console");
		close(cfd);
		cfd = openat(dfd, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
		fd_path(p, sizeof p, cfd);
		/* by its name in our copy of the host's mounts (the descriptor's mount is the old namespace's) */
		char name[256];
		ssize_t n = readlink("/proc/self/fd/0", name, sizeof name - 1);
		name[n > 0 ? n : 0] = '\0';
		if (cfd < 0 || n <= 0 || mount(name, p, NULL, MS_BIND, NULL) < 0)
			child_fail(cfg, 0, errno, "bind the terminal on /dev/console");
		close(cfd);
		close(dfd);
	}
	if (cfg->new_pid_ns) /* with its own IPC namespace */
		mount_in(cfg, rootfd, "dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			 NULL, 0);
}

/* A read-only /sys (read-write when privileged): a fresh sysfs, or the host's bound when refused. */
static void setup_sys(const ib_execute__child_config *cfg, int rootfd)
{
	int fd = open_in(rootfd, "sys", O_PATH);
	if (fd < 0)
		child_fail(cfg, 0, errno, "open mount point /sys");
	char p[64];
	fd_path(p, sizeof p, fd);
	unsigned long fl = (cfg->spec->privileged ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (mount("sysfs", p, "sysfs", fl, NULL) < 0) {
		if (mount("/sys", p, NULL, MS_BIND | MS_REC, NULL) < 0)
			child_fail(cfg, 0, errno, "mount sysfs on /sys");
		close(fd);
		fd = open_in(rootfd, "sys", O_PATH);
		fd_path(p, sizeof p, fd);
		if (!cfg->spec->privileged)
			remount_ro(cfg, p, "/sys");
	}
	close(fd);
}

/*
 * A tmpfs's options as mount(8) takes them: the flag words (ro, rw, noexec,
 * exec, nosuid, suid, nodev, dev, sync, async, noatime, atime...) become
 * mount flags, the rest ("size=64m,mode=1777") the data. No allocation.
 */
static void tmpfs_options(const ib_execute__child_config *cfg, const char *opts, unsigned long *flags,
			  int *ro, char *data, size_t size)
{
	static const struct { const char *name; unsigned long set, clear; } words[] = {
		{ "noexec", MS_NOEXEC, 0 }, { "exec", 0, MS_NOEXEC }, { "nosuid", MS_NOSUID, 0 },
		{ "suid", 0, MS_NOSUID }, { "nodev", MS_NODEV, 0 }, { "dev", 0, 0 },
		{ "sync", MS_SYNCHRONOUS, 0 }, { "async", 0, MS_SYNCHRONOUS },
		{ "noatime", MS_NOATIME, 0 }, { "atime", 0, MS_NOATIME },
		{ "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
		{ "relatime", MS_RELATIME, 0 }, { "norelatime", 0, MS_RELATIME },
		{ "strictatime", MS_STRICTATIME, 0 }, { "mand", 0, 0 }, { "nomand", 0, 0 },
		{ "defaults", 0, 0 },
	};
	size_t used = 0;
	data[0] = '\0';
	for (const char *p = opts; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int known = 0;
		if (len == 2 && !strncmp(p, "ro", 2)) {
			*ro = 1;
			known = 1;
		} else if (len == 2 && !strncmp(p, "rw", 2)) {
			*ro = 0;
			known = 1;
		}
		for (size_t i = 0; !known && i < sizeof words / sizeof words[0]; i++)
			if (strlen(words[i].name) == len && !strncmp(p, words[i].name, len)) {
				*flags = (*flags | words[i].set) & ~words[i].clear;
				known = 1;
			}
		/* "dev" never lifts nodev: device nodes stay closed, as everywhere in a run */
		if (!known && len) {
			if (used + len + 2 > size)
				child_fail(cfg, 0, 0, "tmpfs options `%s` are too long", opts);
			if (used)
				data[used++] = ',';
			memcpy(data + used, p, len);
			used += len;
			data[used] = '\0';
		}
		p = end ? end + 1 : p + len;
	}
}

static void setup_mounts(const ib_execute__child_config *cfg, int rootfd)
{
	const ib_isolation_spec *s = cfg->spec;
	mount_in(cfg, rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0);
	setup_dev(cfg, rootfd);
	setup_sys(cfg, rootfd);
	/* read-only for a build step, as BuildKit's withROBind (spec_linux.go) */
	int ro = s->version >= 3 && s->network_files_readonly;
	if (s->hosts_file)
		mount_in(cfg, rootfd, "etc/hosts", s->hosts_file, NULL, MS_BIND, NULL, ro);
	if (s->resolv_file)
		mount_in(cfg, rootfd, "etc/resolv.conf", s->resolv_file, NULL, MS_BIND, NULL, ro);
	for (size_t i = 0; i < s->nmounts; i++) {
		const ib_mount *m = &s->mounts[i];
		if (m->type == IB_MOUNT_TMPFS) {
			char data[1024];
			unsigned long fl = MS_NOSUID | MS_NODEV;
			int tro = m->readonly;
			tmpfs_options(cfg, m->options, &fl, &tro, data, sizeof data);
			mount_in(cfg, rootfd, m->target, "tmpfs", "tmpfs", fl, data[0] ? data : NULL, tro);
		}
		else
			mount_in(cfg, rootfd, m->target, m->source, NULL, MS_BIND | MS_REC, NULL,
				 m->readonly);
	}
}

/* runc's default masked and read-only paths, after pivot_root (in our fresh /proc and /sys). */
static void mask_paths(const ib_execute__child_config *cfg)
{
	static const char *const masked[] = {
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware",
	};
	static const char *const readonly[] = {
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	};
	for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
		struct stat st;
		if (lstat(masked[i], &st) < 0)
			continue;
		int rc = S_ISDIR(st.st_mode)
			? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL)
			: mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
		if (rc < 0)
			child_fail(cfg, 0, errno, "mask `%s`", masked[i]);
	}
	for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
		if (mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			child_fail(cfg, 0, errno, "bind `%s`", readonly[i]);
		}
		remount_ro(cfg, readonly[i], readonly[i]);
	}
}

static void loopback_up(const ib_execute__child_config *cfg)
{
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		child_fail(cfg, 0, errno, "socket");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
		child_fail(cfg, 0, errno, "get flags of lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
		child_fail(cfg, 0, errno, "bring lo up");
	close(sk);
}

/* Descriptors 0-2 from the spec, the error pipe on 3, the exec helper on 4, nothing else. */
static void setup_fds(ib_execute__child_config *cfg)
{
	const ib_isolation_spec *s = cfg->spec;
	int high[3];
	for (int i = 0; i < 3; i++) {
		high[i] = fcntl(s->stdio[i], F_DUPFD_CLOEXEC, 10);
		if (high[i] < 0)
			child_fail(cfg, 0, errno, "duplicate descriptor %d", s->stdio[i]);
	}
	int err = fcntl(cfg->err_fd, F_DUPFD_CLOEXEC, 10);
	if (err < 0)
		child_fail(cfg, 0, errno, "duplicate the error pipe");
	cfg->err_fd = err;
	int helper = cfg->exec_helper_fd < 0 ? -1 : fcntl(cfg->exec_helper_fd, F_DUPFD_CLOEXEC, 10);
	if (cfg->exec_helper_fd >= 0 && helper < 0)
		child_fail(cfg, 0, errno, "duplicate the exec helper");
	for (int i = 0; i < 3; i++)
		if (dup2(high[i], i) < 0)
			child_fail(cfg, 0, errno, "dup2 onto %d", i);
	if (dup3(err, 3, O_CLOEXEC) < 0)
		child_fail(cfg, 0, errno, "dup3 the error pipe");
	cfg->err_fd = 3;
	unsigned int first_closed = 4;
	if (helper >= 0) { /* the sealed exec helper (dmz.c) on 4, close-on-exec */
		if (dup3(helper, 4, O_CLOEXEC) < 0)
			child_fail(cfg, 0, errno, "duplicate the exec helper");
		cfg->exec_helper_fd = 4;
		first_closed = 5;
	}
	if (syscall(SYS_close_range, first_closed, ~0U, 0U) < 0) {
		for (int fd = (int)first_closed; fd < 65536; fd++)
			close(fd);
	}
}

static void reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
}

/* In the run's capability set (Docker's default unless cap_add/cap_drop changed it). */
static int is_default_cap(const ib_execute__child_config *cfg, int cap)
{
	if (cfg->spec->version >= 4)
		return (int)((cfg->spec->capabilities >> cap) & 1);
	for (size_t i = 0; i < ib_execute__default_caps_count; i++)
		if (ib_execute__default_caps[i] == cap)
			return 1;
	return 0;
}

/* Docker's default capabilities: the bounding set, and what root keeps (privileged: all kept). */
static void limit_caps(const ib_execute__child_config *cfg)
{
	if (cfg->spec->privileged)
		return;
	for (int cap = 0; cap <= 63; cap++) {
		if (is_default_cap(cfg, cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			child_fail(cfg, 0, errno, "drop capability %d from the bounding set", cap);
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

static void set_root_caps(const ib_execute__child_config *cfg)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	for (int cap = 0; cap <= 63; cap++) {
		if (!is_default_cap(cfg, cap))
			continue;
		data[cap / 32].effective |= 1U << (cap % 32);
		data[cap / 32].permitted |= 1U << (cap % 32);
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		child_fail(cfg, 0, errno, "set capabilities");
}

/*
 * Privileged: every capability we have (effective), in the effective,
 * permitted, inheritable and ambient sets (BuildKit's WithInsecureSpec
 * fills all five with the daemon's current ones, containerd's cap.Current),
 * so that a non-root USER has them too.
 */
static void set_all_caps(const ib_execute__child_config *cfg, const struct __user_cap_data_struct *have)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = have[i].effective;
		data[i].permitted = have[i].effective;
		data[i].inheritable = have[i].effective;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		child_fail(cfg, 0, errno, "set capabilities");
	for (int cap = 0; cap <= 63; cap++)
		if ((have[cap / 32].effective >> (cap % 32)) & 1)
			if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EINVAL)
				child_fail(cfg, 0, errno, "raise ambient capability %d", cap);
}

static void set_user(const ib_execute__child_config *cfg)
{
	const ib_isolation_spec *s = cfg->spec;
	struct __user_cap_data_struct have[2];
	memset(have, 0, sizeof have);
	if (s->privileged) {
		/* keep what we have through setuid (to a non-root user too) */
		struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
		if (syscall(SYS_capget, &hdr, have) < 0)
			child_fail(cfg, 0, errno, "get capabilities");
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			child_fail(cfg, 0, errno, "keep capabilities");
	}
	/*
	 * Raw system calls: after a raw clone3 glibc still believes the
	 * caller's other threads exist, and its setgroups/setresuid would
	 * wait forever for them to change credentials too.
	 */
	if (syscall(SYS_setgroups, s->ngroups, s->groups) < 0) {
		/*
		 * Rootless with one id mapped, setgroups is denied in the user
		 * namespace: fine when no group beyond the primary one is asked
		 * for (the caller's own groups stay, unmapped, as under
		 * `unshare -r`); refused when one is.
		 */
		int extra = 0;
		for (size_t i = 0; i < s->ngroups; i++)
			extra |= s->groups[i] != s->gid;
		if (errno != EPERM || extra)
			child_fail(cfg, 0, errno,
				   errno == EPERM ? "setgroups (rootless without a subordinate gid range: "
						    "no supplementary groups)" : "setgroups");
	}
	if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0)
		child_fail(cfg, 0, errno, "setgid %u", (unsigned int)s->gid);
	if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0)
		child_fail(cfg, 0, errno, "setuid %u", (unsigned int)s->uid);
	if (s->privileged)
		set_all_caps(cfg, have);
	else if (s->uid == 0)
		set_root_caps(cfg);
}

static void set_rlimits(const ib_execute__child_config *cfg)
{
	const ib_isolation_spec *s = cfg->spec;
	for (size_t i = 0; i < s->nrlimits; i++) {
		const ib_isolation_rlimit *r = &s->rlimits[i];
		struct rlimit rl = {
			r->soft == IB_RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)r->soft,
			r->hard == IB_RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)r->hard,
		};
		if (setrlimit(r->resource, &rl) < 0)
			child_fail(cfg, 0, errno, "set resource limit %s=%llu:%llu%s",
				   ib_execute__rlimit_name(r->resource),
				   (unsigned long long)r->soft, (unsigned long long)r->hard,
				   errno == EPERM ? " (raising a hard limit needs CAP_SYS_RESOURCE)" : "");
	}
}

static const char *env_get(const char *const *env, const char *name)
{
	size_t n = strlen(name);
	for (; env && *env; env++)
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static void magic_link_fail(const ib_execute__child_config *cfg, const char *path) __attribute__((noreturn));
static void magic_link_fail(const ib_execute__child_config *cfg, const char *path)
{
	child_fail(cfg, 126, 0, "exec `%s`: it resolves through a magic link of /proc (such as "
		   "/proc/self/exe), not to a file of the root filesystem; refused", path);
}

/*
 * execve argv[0], searched in the PATH of the process's own environment,
 * through the exec helper (dmz.c) so that /proc/self/exe no longer names
 * the caller's binary when the command's exec resolves anything.
 */
static void exec_command(const ib_execute__child_config *cfg) __attribute__((noreturn));
static void exec_command(const ib_execute__child_config *cfg)
{
	const ib_isolation_spec *s = cfg->spec;
	const char *cmd = s->argv[0];
	char *const *argv = (char *const *)s->argv;
	char *const *envp = (char *const *)s->env;
	if (strchr(cmd, '/')) {
		ib_execute__exec_path(cfg, cmd, argv, envp, magic_link_fail);
		child_fail(cfg, errno == ENOENT ? 127 : 126, errno, "exec `%s`", cmd);
	}
	const char *path = env_get(s->env, "PATH");
	if (!path)
		path = IB_EXECUTE_DEFAULT_PATH;
	int seen_eacces = 0;
	char buf[PATH_MAX];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		int n = dlen ? snprintf(buf, sizeof buf, "%.*s/%s", (int)dlen, p, cmd)
			     : snprintf(buf, sizeof buf, "%s", cmd);
		if (n > 0 && (size_t)n < sizeof buf) {
			ib_execute__exec_path(cfg, buf, argv, envp, magic_link_fail);
			if (errno == EACCES)
				seen_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR)
				child_fail(cfg, 126, errno, "exec `%s`", buf);
		}
		if (!*end)
			break;
		p = end;
	}
	if (seen_eacces)
		child_fail(cfg, 126, EACCES, "exec `%s`", cmd);
	child_fail(cfg, 127, 0, "exec `%s`: executable file not found in PATH `%s`", cmd, path);
}

/*
 * chroot: root inside can leave a chroot (CAP_SYS_CHROOT) and would then
 * see every mount of its namespace, the host's /dev among them. Make them
 * all nodev (the namespace is private: the host's own mounts are
 * unchanged), then let /dev's nodes, the ptys and the console open again.
 */
static void nodev_namespace(const ib_execute__child_config *cfg, int rootfd)
{
	nodev_tree(cfg, "/", "/");
	struct mount_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.attr_clr = MOUNT_ATTR_NODEV;
	for (size_t i = 0; i < DEV_NODES + 2; i++) {
		char rel[64];
		if (i < DEV_NODES)
			snprintf(rel, sizeof rel, "dev/%s", dev_nodes[i].name);
		else if (i == DEV_NODES)
			snprintf(rel, sizeof rel, "dev/pts");
		else if (cfg->spec->tty)
			snprintf(rel, sizeof rel, "dev/console");
		else
			break;
		int fd = open_in(rootfd, rel, O_PATH | O_NOFOLLOW);
		if (fd < 0)
			child_fail(cfg, 0, errno, "open /%s", rel);
		if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0 &&
		    errno != ENOSYS) /* before Linux 5.12 "/" alone was made nodev */
			child_fail(cfg, 0, errno, "let /%s open", rel);
		close(fd);
	}
}

static void enter_root(const ib_execute__child_config *cfg, int mounts)
{
	const ib_isolation_spec *s = cfg->spec;
	if (mounts) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			child_fail(cfg, 0, errno, "make / private");
		if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
			child_fail(cfg, 0, errno, "bind `%s` on itself", s->rootfs);
		if (!s->privileged)
			nodev_tree(cfg, s->rootfs, s->rootfs);
		int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			child_fail(cfg, 0, errno, "open `%s`", s->rootfs);
		setup_mounts(cfg, rootfd);
		/* --read-only: the root's own mount only; what is mounted on it stays as it is */
		if (s->version >= 4 && s->readonly_rootfs)
			remount_ro(cfg, s->rootfs, "/");
		if (!cfg->pivot && !s->privileged)
			nodev_namespace(cfg, rootfd);
		close(rootfd);
	} else {
		/* chroot without a mount namespace: nothing can be made nodev, nothing mounted */
		struct statvfs sv;
		if (statvfs(s->rootfs, &sv) < 0)
			child_fail(cfg, 0, errno, "statvfs `%s`", s->rootfs);
		if (!(sv.f_flag & ST_NODEV))
			child_fail(cfg, 0, 0, "isolation `chroot`: the host refuses a mount namespace, "
				   "and without one device nodes in `%s` (shipped in a layer or made by "
				   "mknod) would open the host's devices; put the root on a nodev mount, "
				   "or use `namespaces` or `oci`", s->rootfs);
		if (s->nmounts)
			child_fail(cfg, 0, 0, "isolation `chroot`: the host refuses a mount namespace, "
				   "so the %zu mount(s) asked for cannot be made", s->nmounts);
		if (s->version >= 4 && s->readonly_rootfs)
			child_fail(cfg, 0, 0, "isolation `chroot`: the host refuses a mount namespace, "
				   "so the root cannot be made read-only");
	}
	if (chdir(s->rootfs) < 0)
		child_fail(cfg, 0, errno, "chdir `%s`", s->rootfs);
	if (cfg->pivot) {
		/* pivot_root(".", "."): the old root ends up under the new one; detach it */
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			child_fail(cfg, 0, errno, "pivot_root into `%s`", s->rootfs);
		if (umount2(".", MNT_DETACH) < 0)
			child_fail(cfg, 0, errno, "detach the old root");
	} else if (chroot(".") < 0) {
		child_fail(cfg, 0, errno, "chroot `%s`", s->rootfs);
	}
	if (chdir("/") < 0)
		child_fail(cfg, 0, errno, "chdir /");
	if (mounts && !s->privileged) /* BuildKit's insecure mode masks nothing */
		mask_paths(cfg);
}

void ib_execute__child(const ib_execute__child_config *config)
{
	ib_execute__child_config cfg = *config;
	const ib_isolation_spec *s = cfg.spec;
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	reset_signals();
	setup_fds(&cfg);
	if (setsid() < 0)
		child_fail(&cfg, 0, errno, "setsid");
	if (s->tty && ioctl(0, TIOCSCTTY, 0) < 0)
		child_fail(&cfg, 0, errno, "make the terminal the controlling one");
	int mounts = cfg.new_mount_ns;
	if (cfg.try_mount_ns)
		mounts = unshare(CLONE_NEWNS) == 0;
	/*
	 * The hostname is set in a UTS namespace of the run's own, never the
	 * host's: namespaces has one from clone; chroot makes one when asked for
	 * a hostname, and fails when the host refuses it (never ignores it).
	 */
	if (s->hostname && !cfg.pivot && unshare(CLONE_NEWUTS) < 0)
		child_fail(&cfg, 0, errno, "isolation `chroot`: the host refuses a UTS namespace, "
			   "so the hostname `%s` cannot be set", s->hostname);
	enter_root(&cfg, mounts);
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		child_fail(&cfg, 0, errno, "set hostname `%s`", s->hostname);
	if (s->network == IB_NETWORK_NONE)
		loopback_up(&cfg);
	/* the working directory, resolved inside the new root only */
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int cwd = root < 0 ? -1 : open_in(root, s->cwd, O_PATH | O_DIRECTORY);
	if (cwd < 0)
		child_fail(&cfg, 0, errno, "working directory `%s`", s->cwd);
	close(root);
	set_rlimits(&cfg);
	limit_caps(&cfg);
	if (!s->privileged && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(&cfg, 0, errno, "set no_new_privs");
	/* a session keyring of its own, not the caller's (as runc does; ENOSYS: no keyrings here) */
	int krc = ib_execute__join_session_keyring();
	if (krc < 0 && krc != -ENOSYS)
		child_fail(&cfg, 0, -krc, "join a new session keyring");
	set_user(&cfg);
	if (fchdir(cwd) < 0)
		child_fail(&cfg, 0, errno, "chdir to the working directory `%s`", s->cwd);
	close(cwd);
	/* Docker's seccomp profile, last: what follows is only exec (seccomp.c); none when privileged */
	int src = cfg.seccomp ? ib_execute__seccomp_load(cfg.seccomp) : 0;
	if (src < 0)
		child_fail(&cfg, 0, -src, "load the seccomp filter");
	exec_command(&cfg);
}
