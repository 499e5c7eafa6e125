/*
 * Docker's config.json (`{"auths": {"<host>": {"auth": base64(user:pass)}}}`,
 * or username/password): credentials looked up for a few registries, then
 * one set and removed again (the rewrite keeps the rest of the file).
 */
#include "fuzz.h"
#include "push/internal.h"
#include "util/fs.h"

#include <fcntl.h>
#include <unistd.h>

/* on tmpfs: the rewrite fsyncs */
static char dir[] = "/dev/shm/ib-fuzz-config.XXXXXX";
static char path[sizeof dir + 16];

static void cleanup(void)
{
	(void)ib_rm_rf(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof path, "%s/config.json", dir);
		atexit(cleanup);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	IB_FUZZ_CHECK(fd >= 0 && ib_write_all(fd, data, size) == 0);
	close(fd);
	static const char *const domains[] = { "docker.io", "localhost:5000", "example.com", "[::1]:5000", "a", NULL };
	for (size_t i = 0; domains[i]; i++) {
		char *user = NULL, *pass = NULL;
		if (ib_push__config_get(&user, &pass, path, domains[i]) == 0)
			IB_FUZZ_CHECK(user && pass);
		free(user);
		free(pass);
	}
	if (ib_push__config_set(path, "fuzz.example:5000", "u", "p:w") == 0) {
		char *user = NULL, *pass = NULL;
		(void)ib_push__config_get(&user, &pass, path, "fuzz.example:5000");
		free(user);
		free(pass);
		IB_FUZZ_CHECK(ib_push__config_set(path, "fuzz.example:5000", NULL, NULL) == 0);
	}
	return 0;
}
