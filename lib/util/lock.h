/* Advisory file locks (flock), for one writer at a time across processes. */
#ifndef IB_UTIL_LOCK_H
#define IB_UTIL_LOCK_H

typedef struct {
	int fd;
} ib_lock;

#define IB_LOCK_INIT { -1 }
#define IB_LOCK_SHARED 0
#define IB_LOCK_EXCLUSIVE 1
#define IB_LOCK_NOWAIT 2 /* or-ed in: IB_EEXISTS instead of waiting when held */

/* Take a lock on `path` (created if missing). */
int ib_lock_acquire(ib_lock *lock, const char *path, int flags);
/* Release; a lock never taken (or released twice) is fine. */
void ib_lock_release(ib_lock *lock);

#endif
