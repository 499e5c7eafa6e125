/*
 * Image references ([HOST[:PORT]/]PATH[:TAG][@DIGEST], as Docker
 * normalises them): the parse, the accessors, and that a normalised name
 * parses again to itself.
 */
#include "fuzz.h"
#include "imagebuild/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = ib_fuzz_cstr(data, size);
	ib_reference *ref = NULL;
	if (ib_reference_parse(&ref, s) == 0) {
		const char *name = ib_reference_name(ref);
		IB_FUZZ_CHECK(name && ib_reference_domain(ref) && ib_reference_path(ref) &&
			      ib_reference_repository(ref) && ib_reference_familiar(ref));
		(void)ib_reference_tag(ref);
		(void)ib_reference_tag_given(ref);
		(void)ib_reference_digest(ref);
		/* the normal form is a fixed point */
		ib_reference *again = NULL;
		IB_FUZZ_CHECK(ib_reference_parse(&again, name) == 0);
		IB_FUZZ_CHECK(!strcmp(ib_reference_name(again), name));
		ib_reference_free(again);
		/*
		 * so is Docker's short form, except where Docker's own is not:
		 * docker.io/a.b/c is a.b/c, which names the registry a.b
		 */
		const char *path = ib_reference_path(ref);
		size_t first = strcspn(path, "/");
		int ambiguous = !strcmp(ib_reference_domain(ref), "docker.io") && path[first] &&
				(memchr(path, '.', first) || memchr(path, ':', first) ||
				 (first == 9 && !strncmp(path, "localhost", 9)));
		if (!ambiguous) {
			again = NULL;
			IB_FUZZ_CHECK(ib_reference_parse(&again, ib_reference_familiar(ref)) == 0);
			IB_FUZZ_CHECK(!strcmp(ib_reference_name(again), name));
			ib_reference_free(again);
		}
		ib_buf b = IB_BUF_INIT;
		IB_FUZZ_CHECK(ib_reference_normalize(&b, s) == 0 && !strcmp(b.ptr, name));
		ib_buf_dispose(&b);
		ib_reference_free(ref);
	}
	free(s);
	return 0;
}
