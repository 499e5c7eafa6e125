/*
 * A program of another build system (tests/consumers/cmake, .../meson):
 * only <imagebuild.h>, through what that build system found. Prints
 * "libimagebuild <version> ok" when the library it runs with works.
 */
#include <imagebuild.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	ib_digest d;
	char s[IB_DIGEST_STRLEN];
	int major = -1, minor = -1, patch = -1;
	char v[64];

	if (ib_init() < 1)
		return 1;
	ib_version(&major, &minor, &patch);
	snprintf(v, sizeof(v), "%d.%d.%d", major, minor, patch);
	if (strcmp(v, ib_version_string()) != 0)
		return 2;
	if (ib_digest_parse(&d, "sha256:nothex") == 0 || ib_error_last()->code != IB_EINVALID)
		return 3;
	if (ib_digest_of(&d, "abc", 3) < 0)
		return 4;
	ib_digest_fmt(s, &d);
	if (strcmp(s, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0)
		return 5;
	printf("libimagebuild %s ok\n", ib_version_string());
	ib_shutdown();
	return 0;
}
