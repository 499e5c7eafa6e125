/* An outside program: only <imagebuild.h>, found through pkg-config. */
#include <imagebuild.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	ib_digest d;
	char s[IB_DIGEST_STRLEN];
	if (ib_init() < 1)
		return 1;
	if (ib_digest_parse(&d, "sha256:nothex") == 0 || ib_error_last()->code != IB_EINVALID)
		return 2;
	if (ib_digest_of(&d, "abc", 3) < 0)
		return 3;
	ib_digest_fmt(s, &d);
	if (strcmp(s, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0)
		return 4;
	printf("libimagebuild %s ok\n", ib_version_string());
	ib_shutdown();
	return 0;
}
