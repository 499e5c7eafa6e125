#include "tests.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_to(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * The orchestrator's builds chown what COPY and WORKDIR make to the image's
 * root, which an unprivileged user cannot: they run as root of a user
 * namespace of their own (a child process, so the other groups see the
 * caller's real identity). No privilege is needed for that on Debian.
 */
static int run_orchestrator(const char *name, const struct CMUnitTest *tests, size_t count)
{
	if (geteuid() == 0)
		return _cmocka_run_group_tests(name, tests, count, NULL, NULL);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		char map[64];
		uid_t uid = geteuid();
		gid_t gid = getegid();
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(77);
		snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
		if (write_to("/proc/self/uid_map", map) < 0 ||
		    write_to("/proc/self/setgroups", "deny") < 0)
			_exit(77);
		snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
		if (write_to("/proc/self/gid_map", map) < 0)
			_exit(77);
		_exit(_cmocka_run_group_tests(name, tests, count, NULL, NULL) ? 1 : 0);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return 1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		const char *strict = getenv("IB_TEST_STRICT");
		fprintf(stderr, "%s: the %s tests need root or a user namespace\n",
			strict && !strcmp(strict, "1") ? "FAIL" : "SKIP", name);
		return strict && !strcmp(strict, "1");
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(void)
{
	int failed = 0;
	failed += _cmocka_run_group_tests("copy", copy_tests, copy_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("git", git_tests, git_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("meta", meta_tests, meta_tests_count, NULL, NULL);
	failed += run_orchestrator("orchestrator", orchestrator_tests, orchestrator_tests_count);
	failed += run_orchestrator("jobs", jobs_tests, jobs_tests_count);
	failed += _cmocka_run_group_tests("sde", sde_tests, sde_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("buf-rule", buf_rule_tests, buf_rule_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("volume", volume_tests, volume_tests_count, NULL, NULL);
	failed += _cmocka_run_group_tests("extras", extras_tests, extras_tests_count, NULL, NULL);
	return failed ? 1 : 0;
}
