/* Rootless helpers (rootless.c): the user namespace this process is in. */
#ifndef IB_UTIL_ROOTLESS_H
#define IB_UTIL_ROOTLESS_H

#include <sys/types.h>

#include "util/buf.h"

/* 1 when ib_rootless_enter() entered a namespace; then the caller's ids before it. */
int ib_rootless__host_ids(uid_t *uid, gid_t *gid);

/* 1 when this process is in a user namespace (its uid map is not the whole identity). */
int ib_userns_active(void);

/* 1 when the uid (group 0) or gid (group 1) `id` is mapped in this process's user namespace. */
int ib_userns_id_mapped(int group, unsigned long id);

/* Append why ids are missing: which ones are mapped and how to get more. */
int ib_userns_describe(ib_buf *out, int group);

#endif
