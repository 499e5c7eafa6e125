/* ADD <git ref>: which sources are git, as BuildKit's dfgitutil.ParseGitRef
 * decides (its git_ref_test.go cases: a nil result is not git). */
#include "tests.h"
#include "build/internal.h"

static void git_sources_as_buildkit_reads_them(void **state)
{
	(void)state;
	static const char *const git[] = {
		"https://example.com/foo.git",
		"https://example.com/foo.git#deadbeef",
		"https://example.com/foo.git#release/1.2",
		"git://example.com/foo",
		"GIT://example.com/foo",
		"https://github.com/moby/buildkit.git",
		"https://foo:bar@github.com/moby/buildkit.git",
		"git@github.com:moby/buildkit",
		"git@github.com:moby/buildkit.git",
		"git@bitbucket.org:atlassianlabs/atlassian-docker.git",
		"https://github.com/foo/bar.git#baz/qux:quux/quuz",
		"https://github.com/docker/docker.git#:myfolder",
		"https://github.com/docker/docker.git?ref=v1.0.0&subdir=/subdir",
		"ssh://git@example.com/foo.git",
		"http://127.0.0.1:8080/repo.git",
	};
	static const char *const not_git[] = {
		"https://example.com/",
		"https://example.com/foo",
		"https://example.com/foo.git/",
		"https://example.com/foo.git.bar",
		"github.com/moby/buildkit",        /* IndistinguishableFromLocal: a local path for ADD */
		"github.com/moby/buildkit#master",
		"custom.xyz/moby/buildkit.git",
		"https://github.com/moby/buildkit",
		"http://github.com/docker/docker.git:#branch",
		"./.git",
		".git",
		"../x.git",
		"ftp://example.com/foo.git",
		"file:///srv/repo.git",
		"a:b",
		"user@host/x:y",
		"src/file.txt",
	};
	for (size_t i = 0; i < sizeof git / sizeof git[0]; i++)
		if (!ib_build__is_git(git[i]))
			fail_msg("`%s` was not taken for a git source", git[i]);
	for (size_t i = 0; i < sizeof not_git / sizeof not_git[0]; i++)
		if (ib_build__is_git(not_git[i]))
			fail_msg("`%s` was taken for a git source", not_git[i]);
}

DEFINE_GROUP(git_tests, cmocka_unit_test(git_sources_as_buildkit_reads_them))
