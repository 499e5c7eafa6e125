/*
 * prune-loop ROOT STOPFILE: call the library's ib_prune() on the store ROOT
 * again and again until STOPFILE exists, as an embedder's cleanup thread
 * would beside builds and runs. Prints "prunes: N, failures: F" and exits
 * 1 when a prune failed.
 */
#include <imagebuild.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: prune-loop ROOT STOPFILE\n");
		return 2;
	}
	ib_init();
	ib_store *store = NULL;
	if (ib_store_open(&store, argv[1], NULL) < 0) {
		fprintf(stderr, "prune-loop: %s\n", ib_error_last()->message);
		return 1;
	}
	unsigned long prunes = 0, failures = 0, freed = 0;
	while (access(argv[2], F_OK) != 0) {
		size_t blobs = 0, snapshots = 0;
		if (ib_prune(&blobs, &snapshots, store) < 0) {
			fprintf(stderr, "prune-loop: %s\n", ib_error_last()->message);
			failures++;
		}
		prunes++;
		freed += blobs + snapshots;
		usleep(20000);
	}
	printf("prunes: %lu, failures: %lu, freed: %lu\n", prunes, failures, freed);
	ib_store_free(store);
	ib_shutdown();
	return failures ? 1 : 0;
}
