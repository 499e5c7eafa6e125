/* The push layer's unit tests. */
#ifndef IB_TESTS_PUSH_H
#define IB_TESTS_PUSH_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ib_test.h"
#include "push/internal.h"
#include "util/fs.h"

#include <sys/utsname.h>

/* The host architecture in Go's names, as the store chooses index entries. */
static inline const char *ib_test_host_arch(void)
{
	static struct utsname u;
	uname(&u);
	if (!strcmp(u.machine, "x86_64"))
		return "amd64";
	if (!strcmp(u.machine, "aarch64"))
		return "arm64";
	if (!strcmp(u.machine, "i686") || !strcmp(u.machine, "i386"))
		return "386";
	return u.machine;
}

extern const struct CMUnitTest unit_tests[];
extern const size_t unit_tests_count;
extern const struct CMUnitTest client_tests[];
extern const size_t client_tests_count;
extern const struct CMUnitTest gzip_tests[];
extern const size_t gzip_tests_count;
extern const struct CMUnitTest creds_tests[];
extern const size_t creds_tests_count;

#endif
