/*
 * .dockerignore: the file's lines (comments, `!` exceptions, `**`, classes,
 * escapes) and matching. The input is the file, then after a NUL byte
 * NUL-separated paths to match (a fixed list when there are none).
 */
#include "fuzz.h"
#include "imagebuild/parse.h"

static void check_path(const ib_ignore *ig, const char *path)
{
	int m = ib_ignore_matches(ig, path);
	IB_FUZZ_CHECK(m == 0 || m == 1);
	int d = ib_ignore_descend(ig, path);
	IB_FUZZ_CHECK(d == 0 || d == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t flen = nul ? (size_t)(nul - data) : size;
	ib_ignore *ig = NULL;
	if (ib_ignore_parse(&ig, (const char *)data, flen, ".dockerignore") < 0)
		return 0;
	for (size_t i = 0; i < ib_ignore_count(ig); i++) {
		int exc = -1;
		IB_FUZZ_CHECK(ib_ignore_pattern(ig, i, &exc) != NULL);
		IB_FUZZ_CHECK(exc == 0 || exc == 1);
	}
	if (nul && (size_t)(nul - data) + 1 < size) {
		char *paths = ib_fuzz_cstr(nul + 1, size - flen - 1);
		size_t plen = size - flen - 1;
		for (size_t off = 0; off < plen;) {
			check_path(ig, paths + off);
			off += strlen(paths + off) + 1;
		}
		free(paths);
	} else {
		static const char *const fixed[] = {
			"a", "a/b", "a/b/c.txt", ".git", ".git/config", "src/main.c", "Dockerfile", "node_modules/x/y.js",
			"dir/", "\xc3\xa9t\xc3\xa9/x", "a*b", "[x]", "", "x/../y", NULL
		};
		for (size_t i = 0; fixed[i]; i++)
			check_path(ig, fixed[i]);
	}
	ib_ignore_free(ig);
	return 0;
}
