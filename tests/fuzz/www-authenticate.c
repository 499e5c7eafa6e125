/*
 * A registry's WWW-Authenticate header (`Bearer realm="...",service=...,
 * scope=...`), as the push layer parses it before asking for a token.
 */
#include "fuzz.h"
#include "push/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *h = ib_fuzz_cstr(data, size);
	ib_push__challenge c;
	if (ib_push__challenge_parse(&c, h) == 0) {
		IB_FUZZ_CHECK(c.scheme && c.scheme[0]);
		ib_push__challenge_dispose(&c);
	}
	free(h);
	return 0;
}
