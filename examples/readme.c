/* Build the Dockerfile of a directory into an image: readme DIR TAG */
#include <imagebuild.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	ib_store *store = NULL;
	ib_build_options opts = IB_BUILD_OPTIONS_INIT;
	const char *tags[] = { argc > 2 ? argv[2] : "app", NULL };
	ib_digest id;
	char hex[IB_DIGEST_STRLEN];

	opts.context = argc > 1 ? argv[1] : ".";
	opts.tags = tags;
	if (ib_store_open(&store, NULL, NULL) < 0 || ib_build(&id, store, &opts) < 0) {
		fprintf(stderr, "error: %s\n", ib_error_last()->message);
		ib_store_free(store);
		return 1;
	}
	ib_digest_fmt(hex, &id);
	printf("%s %s\n", tags[0], hex);
	ib_store_free(store);
	return 0;
}
