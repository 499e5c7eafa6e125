#include "util/lock.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

int ib_lock_acquire(ib_lock *lock, const char *path, int flags)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_UTIL, "open lock `%s`", path);
	int op = (flags & IB_LOCK_EXCLUSIVE) ? LOCK_EX : LOCK_SH;
	if (flags & IB_LOCK_NOWAIT)
		op |= LOCK_NB;
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		int rc = errno == EWOULDBLOCK
				 ? ib_error_setc(IB_EEXISTS, IB_LAYER_UTIL, "lock `%s` is held by another process", path)
				 : ib_error_set_os(IB_LAYER_UTIL, "lock `%s`", path);
		close(fd);
		return rc;
	}
	lock->fd = fd;
	return 0;
}

void ib_lock_release(ib_lock *lock)
{
	if (lock->fd >= 0) {
		flock(lock->fd, LOCK_UN);
		close(lock->fd);
	}
	lock->fd = -1;
}
