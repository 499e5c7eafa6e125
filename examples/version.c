/* ib-version: prints the library version and checks that it works. */
#include <imagebuild.h>
#include <stdio.h>

int main(void)
{
	ib_digest d;
	char s[IB_DIGEST_STRLEN];
	ib_init();
	if (ib_digest_of(&d, "", 0) < 0) {
		fprintf(stderr, "ib-version: %s\n", ib_error_last()->message);
		return 1;
	}
	ib_digest_fmt(s, &d);
	printf("libimagebuild %s (self-check: sha256 of \"\" is %s)\n", ib_version_string(), s);
	ib_shutdown();
	return 0;
}
