/*
 * imagebuild binfmt: register Debian's qemu-user-static emulators with
 * binfmt_misc, so that RUN of another platform's image works (what
 * tonistiigi/binfmt does for BuildKit). Each is registered from its
 * /usr/lib/binfmt.d/qemu-ARCH.conf with the F flag (the kernel opens the
 * interpreter now, so it works inside a build's root filesystem, which has
 * no qemu of its own); one registered without F is registered again.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define BINFMT_DIR "/proc/sys/fs/binfmt_misc"
#define BINFMT_CONF_DIR "/usr/lib/binfmt.d"

const cli_option cli_opts_binfmt[] = {
	{ "uninstall", 0, 0, NULL, "Remove the emulators of these platforms instead" },
	{ NULL, 0, 0, NULL, NULL },
};

/* qemu's name of a platform's architecture, or NULL. */
static const char *qemu_arch(const char *platform)
{
	static const char *const map[][2] = {
		{ "arm64", "aarch64" }, { "arm", "arm" },           { "ppc64le", "ppc64le" }, { "s390x", "s390x" },
		{ "riscv64", "riscv64" }, { "386", "i386" },        { "mips64le", "mips64el" }, { "mips64", "mips64" },
		{ "loong64", "loongarch64" }, { "amd64", "x86_64" }, { "ppc64", "ppc64" },
	};
	ib_buf n = IB_BUF_INIT;
	const char *found = NULL;
	if (ib_platform_normalize(&n, platform) == 0) {
		const char *arch = strchr(n.ptr, '/') + 1;
		size_t len = strcspn(arch, "/");
		for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
			if (strlen(map[i][0]) == len && !strncmp(arch, map[i][0], len))
				found = map[i][1];
	}
	ib_buf_dispose(&n);
	return found;
}

static int read_text(char *buf, size_t n, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	return 0;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	errno = e;
	return r == (ssize_t)strlen(text) ? 0 : -1;
}

static int one(const char *platform, int uninstall)
{
	const char *q = qemu_arch(platform);
	if (!q) {
		fprintf(stderr, "imagebuild binfmt: %s: no qemu emulator is known for this platform\n", platform);
		return 1;
	}
	char entry[256], conf[256], text[8192];
	snprintf(entry, sizeof entry, BINFMT_DIR "/qemu-%s", q);
	int registered = read_text(text, sizeof text, entry) == 0;
	if (uninstall) {
		if (registered && write_text(entry, "-1") < 0) {
			fprintf(stderr, "imagebuild binfmt: remove %s: %s\n", entry, strerror(errno));
			return 1;
		}
		printf("%s: qemu-%s %s\n", platform, q, registered ? "removed" : "was not registered");
		return 0;
	}
	if (registered) {
		const char *flags = strstr(text, "flags: ");
		if (flags && strchr(flags + 7, 'F') && strchr(flags + 7, 'F') < strchr(flags, '\n')) {
			printf("%s: qemu-%s already registered\n", platform, q);
			return 0;
		}
		/* without F the interpreter is looked up inside each root: register it again */
		if (write_text(entry, "-1") < 0) {
			fprintf(stderr, "imagebuild binfmt: remove %s (registered without F): %s\n", entry, strerror(errno));
			return 1;
		}
	}
	snprintf(conf, sizeof conf, BINFMT_CONF_DIR "/qemu-%s.conf", q);
	if (read_text(text, sizeof text, conf) < 0) {
		fprintf(stderr, "imagebuild binfmt: %s: %s (apt-get install qemu-user-static)\n", conf, strerror(errno));
		return 1;
	}
	/* ":name:type:offset:magic:mask:interpreter:flags", flags last: add F when missing */
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = 0;
	char *last = strrchr(text, ':');
	if (!last || text[0] != ':') {
		fprintf(stderr, "imagebuild binfmt: %s is not a binfmt_misc registration\n", conf);
		return 1;
	}
	if (!strchr(last + 1, 'F') && strlen(text) + 2 < sizeof text)
		strcat(text, "F");
	if (write_text(BINFMT_DIR "/register", text) < 0) {
		fprintf(stderr, "imagebuild binfmt: register qemu-%s: %s\n", q, strerror(errno));
		return 1;
	}
	printf("%s: qemu-%s registered\n", platform, q);
	return 0;
}

int cmd_binfmt(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_binfmt;
	int i = 1, k, uninstall = 0;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		uninstall = 1;
	if (k == -2)
		return cli_usage(cli);
	static const char *const defaults[] = { "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x",
						"linux/riscv64", NULL };
	struct stat st;
	if (stat(BINFMT_DIR "/register", &st) < 0 &&
	    mount("binfmt_misc", BINFMT_DIR, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		fprintf(stderr, "imagebuild binfmt: mount binfmt_misc on " BINFMT_DIR ": %s\n", strerror(errno));
		return 1;
	}
	int status = 0;
	if (i == argc) {
		for (const char *const *d = defaults; *d; d++)
			status |= one(*d, uninstall);
	} else {
		for (; i < argc; i++)
			for (char *p = strtok(argv[i], ","); p; p = strtok(NULL, ","))
				status |= one(p, uninstall);
	}
	return status;
}
