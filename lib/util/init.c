#include "imagebuild/common.h"
#include "imagebuild/version.h"
#include "util/backend.h"

static int init_count;

int ib_init(void)
{
	return __atomic_add_fetch(&init_count, 1, __ATOMIC_SEQ_CST);
}

int ib_shutdown(void)
{
	int n = __atomic_load_n(&init_count, __ATOMIC_SEQ_CST);
	while (n > 0 && !__atomic_compare_exchange_n(&init_count, &n, n - 1, 0,
						     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	/* the last reference: every registered backend is forgotten (the built-ins stay) */
	if (n == 1)
		ib_backend_reset();
	return n > 0 ? n - 1 : 0;
}

void ib_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = IB_VERSION_MAJOR;
	if (minor)
		*minor = IB_VERSION_MINOR;
	if (patch)
		*patch = IB_VERSION_PATCH;
}

const char *ib_version_string(void)
{
	return IB_VERSION;
}
