/*
 * push: send an image of the store to a registry, showing each blob's
 * progress.
 *
 *   push [--insecure] IMAGE [DESTINATION]
 *
 * IMAGE is a name or id in the store ($IMAGEBUILD_ROOT, see ib_store_open());
 * DESTINATION a reference ("localhost:5000/app:1"), by default IMAGE.
 * Credentials come from Docker's config.json (see ib_registry_options).
 */
#include <imagebuild.h>

#include <stdio.h>
#include <string.h>

static int progress(const ib_progress *p, void *payload)
{
	(void)payload;
	/* IB_PROGRESS_BYTES per blob: id is a short digest, text its state ("Pushed") */
	if (p->kind == IB_PROGRESS_BYTES)
		printf("%s: %s %llu/%llu\n", p->id, p->text, (unsigned long long)p->current,
		       (unsigned long long)p->total);
	return 0;
}

int main(int argc, char **argv)
{
	int insecure = argc > 1 && !strcmp(argv[1], "--insecure");
	argv += insecure;
	argc -= insecure;
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: push [--insecure] IMAGE [DESTINATION]\n");
		return 2;
	}
	ib_callbacks cb = IB_CALLBACKS_INIT;
	ib_push_options opts = IB_PUSH_OPTIONS_INIT;
	cb.progress = progress;
	opts.registry.callbacks = &cb;      /* serialised: one call at a time */
	opts.registry.insecure = insecure;

	ib_store *store = NULL;
	ib_digest manifest;
	char hex[IB_DIGEST_STRLEN];
	int rc = ib_store_open(&store, NULL, NULL);
	if (rc == 0)
		rc = ib_push(&manifest, store, argv[1], argc > 2 ? argv[2] : NULL, &opts);
	if (rc < 0) {
		fprintf(stderr, "push: %s\n", ib_error_last()->message);
	} else {
		ib_digest_fmt(hex, &manifest);
		printf("pushed %s: %s\n", argc > 2 ? argv[2] : argv[1], hex);
	}
	ib_store_free(store);
	return rc < 0 ? 1 : 0;
}
