/*
 * Who a writable snapshot belongs to, so that nothing stays behind when a
 * process is killed (SIGKILL included).
 *
 * Next to a backend's own files, `<store root>/snapshots/<name>/` holds:
 *
 *   owners/<key>   the process a snapshot is the active state of (written
 *                  by prepare, before anything else): when that process is
 *                  gone, the snapshot is garbage. ib_snapshot_persist()
 *                  drops it for a snapshot something durable refers to (a
 *                  container record); snapshots without one are kept until
 *                  removed (or pruned when no container keeps them). The
 *                  reaper never removes a snapshot a container record of
 *                  the store names (a create killed between the record and
 *                  the persist): it persists it instead.
 *   mounts/<key>   the process that mounted the snapshot (written before
 *                  the mount): when it is gone, the snapshot is unmounted.
 *   prune.lock     the lease: prepare holds it shared from its owner record
 *                  to a complete snapshot (so the base chain is never
 *                  pruned under it), prune and the reaper exclusively.
 *
 * An owner is "PID START BOOT PIDNS": the pid, the process's start time
 * (field 22 of /proc/PID/stat, so a reused pid is not taken for the owner),
 * the kernel's boot id (after a reboot every owner is gone) and its PID
 * namespace. It is alive when /proc/PID/stat shows the same start time on
 * the same boot; one of another PID namespace (a build in a container
 * sharing the store) is taken as alive, as we cannot see it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/lock.h"

_Thread_local int ib_snapshot__detach;

static int read_small(char *buf, size_t size, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

/* The start time of `pid` (field 22 of /proc/PID/stat), 0 when it is gone. */
static unsigned long long start_time(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (read_small(buf, sizeof buf, path) <= 0)
		return 0;
	/* the command name (field 2) may hold spaces and parentheses: skip to the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* fields 3..21, then 22 */
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (field == 22)
			return strtoull(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			return 0;
	}
	return 0;
}

static void boot_id(char out[40])
{
	char buf[64];
	if (read_small(buf, sizeof buf, "/proc/sys/kernel/random/boot_id") <= 0)
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	snprintf(out, 40, "%.39s", buf[0] ? buf : "-");
}

/* The inode of our PID namespace: pids are only comparable within one. */
static unsigned long long pid_ns(void)
{
	struct stat st;
	return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

int ib_snapshot__owner_self(char *out, size_t size)
{
	char boot[40];
	long pid = (long)getpid();
	boot_id(boot);
	return snprintf(out, size, "%ld %llu %s %llu\n", pid, start_time(pid), boot, pid_ns());
}

int ib_snapshot__owner_alive(const char *record, long *pid_out)
{
	long pid = 0;
	unsigned long long start = 0;
	char boot[40], now[40];
	unsigned long long ns = 0;
	if (sscanf(record, "%ld %llu %39s %llu", &pid, &start, boot, &ns) < 3 || pid <= 0)
		return 0; /* unreadable: nobody can be waiting for it */
	if (pid_out)
		*pid_out = pid;
	boot_id(now);
	if (strcmp(boot, now) != 0)
		return 0;
	/* a process of another PID namespace sharing the store: we cannot tell, so it lives */
	if (ns && ns != pid_ns())
		return 1;
	return start != 0 && start_time(pid) == start;
}

char *ib_snapshot__meta(ib_snapshotter *snap, const char *sub, const char *key)
{
	return ib_sprintf("%s/snapshots/%s/%s%s%s", ib_store_root(snap->store), snap->name, sub,
			  key ? "/" : "", key ? key : "");
}

int ib_snapshot__meta_init(ib_snapshotter *snap)
{
	static const char *const subs[] = { "owners", "mounts" };
	for (size_t i = 0; i < 2; i++) {
		char *p = ib_snapshot__meta(snap, subs[i], NULL);
		int rc = p ? ib_mkdir_p(p, 0700) : IB_ERROR;
		free(p);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int ib_snapshot__lease(ib_lock *lock, ib_snapshotter *snap, int flags)
{
	char *p = ib_snapshot__meta(snap, "prune.lock", NULL);
	int rc = p ? ib_lock_acquire(lock, p, flags) : IB_ERROR;
	free(p);
	return rc;
}

int ib_snapshot__owner_write(ib_snapshotter *snap, const char *sub, const char *key)
{
	char rec[128];
	ib_snapshot__owner_self(rec, sizeof rec);
	char *p = ib_snapshot__meta(snap, sub, key);
	char *tmp = p ? ib_sprintf("%s.tmp-%ld", p, (long)getpid()) : NULL;
	int rc = IB_ERROR;
	if (tmp) {
		/* no fsync: after a crash of the machine every owner is gone anyway */
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 || ib_write_all(fd, rec, strlen(rec)) < 0 || rename(tmp, p) < 0)
			rc = ib_error_set_os(IB_LAYER_SNAPSHOT, "record the owner of snapshot `%s` in `%s`", key, p);
		else
			rc = 0;
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			unlink(tmp);
	}
	free(p);
	free(tmp);
	return rc;
}

void ib_snapshot__owner_drop(ib_snapshotter *snap, const char *sub, const char *key)
{
	char *p = ib_snapshot__meta(snap, sub, key);
	if (p)
		unlink(p);
	free(p);
}

int ib_snapshot__owner_state(ib_snapshotter *snap, const char *sub, const char *key, long *pid)
{
	char *p = ib_snapshot__meta(snap, sub, key);
	char rec[256];
	if (pid)
		*pid = 0;
	if (!p)
		return IB_ERROR;
	int n = read_small(rec, sizeof rec, p);
	free(p);
	if (n < 0)
		return IB_OWNER_NONE;
	return ib_snapshot__owner_alive(rec, pid) ? IB_OWNER_ALIVE : IB_OWNER_DEAD;
}

int ib_snapshot__owner_is_self(ib_snapshotter *snap, const char *key)
{
	char *p = ib_snapshot__meta(snap, "owners", key);
	char rec[256], self[256];
	if (!p || ib_snapshot__owner_self(self, sizeof self) < 0) {
		free(p);
		return IB_ERROR;
	}
	int n = read_small(rec, sizeof rec, p);
	free(p);
	return n > 0 && strcmp(rec, self) == 0;
}

static int in_keys(const char *key, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i] && !strcmp(keys[i], key))
			return 1;
	return 0;
}

/* `name` of owners/ or mounts/ names a snapshot key (not a temporary file). */
static int is_record(const char *name)
{
	return !strstr(name, ".tmp-") && ib_snapshot__check_key(name) == 0;
}

/*
 * A container record of the store names snapshot `key`: the snapshot is the
 * container's, even when its owner record still names the (dead) process
 * that created it. container.c writes the record, then persists the
 * snapshot (drops its owner record); a kill -9 between the two left both,
 * and the next open's reaper removed the container's files.
 */
static int container_keeps(ib_snapshotter *snap, const char *key)
{
	ib_container_record *rec = NULL;
	ib_error_saved saved;
	ib_error_save(&saved);
	int keep = snap->store && ib_store_container_get(&rec, snap->store, key) == 0 && rec && rec->id &&
		   !strcmp(rec->id, key);
	ib_container_record_free(rec);
	ib_error_restore(&saved);
	return keep;
}

static int unmount_detached(ib_snapshotter *snap, const char *key)
{
	if (!snap->mounted || !snap->unmount ||
	    IB_SNAP_CALL(snap, "mounted", snap->mounted(snap, key)) != 1) {
		ib_error_clear();
		return 0;
	}
	ib_snapshot__detach = 1;
	int rc = IB_SNAP_CALL(snap, "unmount", snap->unmount(snap, key));
	ib_snapshot__detach = 0;
	return rc;
}

int ib_snapshot__reap(size_t *freed, ib_snapshotter *snap, const char *const *keep, size_t nkeep)
{
	char **names = NULL;
	size_t n = 0, count = 0;
	char *dir = ib_snapshot__meta(snap, "owners", NULL);
	int rc = dir ? ib_snapshot__list_dir(&names, &n, dir) : IB_ERROR;
	free(dir);
	/* snapshots whose process is gone: unmount and remove (or keep, when a container refers to them) */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *key = names[i];
		if (!is_record(key) || ib_snapshot__owner_state(snap, "owners", key, NULL) != IB_OWNER_DEAD)
			continue;
		if ((rc = unmount_detached(snap, key)) < 0)
			break;
		if (!in_keys(key, keep, nkeep) && !container_keeps(snap, key) && snap->mounted &&
		    IB_SNAP_CALL(snap, "mounted", snap->mounted(snap, key)) >= 0) {
			if ((rc = IB_SNAP_CALL(snap, "remove", snap->remove(snap, key))) < 0)
				break;
			count++;
		}
		ib_error_clear();
		ib_snapshot__owner_drop(snap, "mounts", key);
		ib_snapshot__owner_drop(snap, "owners", key);
	}
	ib_snapshot__names_free(names, n);
	names = NULL;
	n = 0;
	/* mounts whose process is gone: unmount (the snapshot, a container's, stays) */
	dir = rc == 0 ? ib_snapshot__meta(snap, "mounts", NULL) : NULL;
	if (rc == 0)
		rc = dir ? ib_snapshot__list_dir(&names, &n, dir) : IB_ERROR;
	free(dir);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *key = names[i];
		if (!is_record(key) || ib_snapshot__owner_state(snap, "mounts", key, NULL) != IB_OWNER_DEAD)
			continue;
		if ((rc = unmount_detached(snap, key)) < 0)
			break;
		ib_snapshot__owner_drop(snap, "mounts", key);
	}
	ib_snapshot__names_free(names, n);
	if (freed)
		*freed = count;
	if (rc < 0)
		ib_error_prefix("clean up after dead processes");
	return rc;
}

int ib_snapshot_persist(ib_snapshotter *snap, const char *key)
{
	if (!snap || ib_snapshot__check_key(key) < 0)
		return snap ? IB_EINVALID : ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "no snapshotter");
	int rc = ib_snapshot_exists(snap, key);
	if (rc < 0)
		return rc;
	if (!rc)
		return ib_error_setc(IB_ENOTFOUND, IB_LAYER_SNAPSHOT, "no snapshot `%s` in `%s`", key,
				     ib_snapshotter_name(snap));
	ib_snapshot__owner_drop(snap, "owners", key);
	return 0;
}

int ib_snapshot_adopt(ib_snapshotter *snap, const char *key)
{
	if (!snap || ib_snapshot__check_key(key) < 0)
		return snap ? IB_EINVALID : ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "no snapshotter");
	/* under the lease, as prepare writes its owner: a prune deciding now finishes first */
	ib_lock lk = IB_LOCK_INIT;
	int rc = ib_snapshot__lease(&lk, snap, IB_LOCK_SHARED);
	if (rc == 0 && (rc = ib_snapshot_exists(snap, key)) == 0)
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_SNAPSHOT, "no snapshot `%s` in `%s`", key,
				   ib_snapshotter_name(snap));
	if (rc == 1)
		rc = ib_snapshot__owner_write(snap, "owners", key);
	ib_lock_release(&lk);
	if (rc < 0)
		ib_error_prefix("adopt snapshot `%s`", key);
	return rc;
}

int ib_snapshot_stale(ib_snapshotter *snap, const char *key)
{
	if (!snap || ib_snapshot__check_key(key) < 0)
		return snap ? IB_EINVALID : ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "no snapshotter");
	int o = ib_snapshot__owner_state(snap, "owners", key, NULL);
	int m = ib_snapshot__owner_state(snap, "mounts", key, NULL);
	if (o < 0 || m < 0)
		return o < 0 ? o : m;
	return o == IB_OWNER_DEAD || m == IB_OWNER_DEAD;
}

int ib_snapshotter_fsck(ib_buf *report, ib_snapshotter *snap)
{
	if (!snap)
		return ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "fsck: no snapshotter");
	if (report)
		ib_buf_clear(report);
	int problems = 0;
	char *first = NULL;
	static const char *const subs[] = { "owners", "mounts" };
	for (size_t s = 0; s < 2; s++) {
		char **names = NULL;
		size_t n = 0;
		char *dir = ib_snapshot__meta(snap, subs[s], NULL);
		int rc = dir ? ib_snapshot__list_dir(&names, &n, dir) : IB_ERROR;
		free(dir);
		if (rc < 0) {
			ib_snapshot__names_free(names, n);
			return rc;
		}
		for (size_t i = 0; i < n; i++) {
			long pid = 0;
			if (!is_record(names[i]) ||
			    ib_snapshot__owner_state(snap, subs[s], names[i], &pid) != IB_OWNER_DEAD)
				continue;
			char *msg = ib_sprintf("snapshotter `%s`: snapshot `%s` %s by process %ld, which is gone "
					       "(prune cleans it up)", ib_snapshotter_name(snap), names[i],
					       s == 0 ? "was left" : "is still mounted", pid);
			if (!msg)
				continue;
			if (report) {
				ib_buf_puts(report, msg);
				ib_buf_putc(report, '\n');
			}
			problems++;
			if (!first)
				first = msg;
			else
				free(msg);
		}
		ib_snapshot__names_free(names, n);
	}
	ib_error_clear();
	if (!problems)
		return 0;
	int rc = ib_error_setc(IB_EINVALID, IB_LAYER_SNAPSHOT, "fsck: %d problem%s; the first: %s", problems,
			       problems > 1 ? "s" : "", first);
	free(first);
	return rc;
}
