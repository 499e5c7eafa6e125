/*
 * The ABI contract, from the side of a program built against an older
 * release: compiled against tests/abi/baseline/include (the headers of the
 * last release, see README.md) and run against the library of this tree
 * (abi-baseline), and compiled against include/ too (abi-current), so a
 * refresh of the baseline compiles.
 *
 * What it checks:
 * - the library's version is compatible (same major, not older);
 * - every options struct of the baseline with an _init() is accepted at
 *   every version the baseline knows (1..VERSION), and an unknown version is
 *   refused; the library writes nothing past the baseline's struct (each
 *   struct ends at a page followed by an inaccessible one);
 * - structs of the baseline's versions passed to real calls (store, parse,
 *   plan) are read, and nothing past their end is (same guard);
 * - the basics of every embedder: ib_init/ib_shutdown, errors, digests,
 *   a store on a temp dir, a Dockerfile parsed, a plan made.
 *
 * Only long-lived basics on purpose: options structs appear under
 * #ifdef of their VERSION macro, so a baseline without one still compiles.
 * Prints "abi ok: N checks" and exits 0, or names the first failure.
 */
#include <imagebuild.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int checks;

#define CHECK(cond, ...) \
	do { \
		checks++; \
		if (!(cond)) { \
			fprintf(stderr, "abi: %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, " (last error: %s)\n", ib_error_last()->message); \
			exit(1); \
		} \
	} while (0)

/*
 * `size` bytes that end where an inaccessible page begins: the library
 * reading or writing past a struct of that size crashes the test.
 */
static void *guarded(size_t size)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (size + pg - 1) / pg;
	char *m = mmap(NULL, (pages + 1) * pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m + pages * pg, pg, PROT_NONE) != 0) {
		perror("abi: mmap");
		exit(1);
	}
	return m + pages * pg - size;
}

/* A copy of `init` (a struct of the baseline) in guarded memory. */
static void *guarded_copy(const void *init, size_t size)
{
	void *p = guarded(size);
	memcpy(p, init, size);
	return p;
}

/*
 * fn(o, v) accepts every version 1..VER of the baseline and sets it,
 * refuses a version from the future, and writes nothing
 * past the baseline's struct.
 */
#define CHECK_INIT(type, fn, VER) CHECK_INIT_FROM(type, fn, 1, VER)
/* The same from version FIRST: older versions of `type` had another, larger layout. */
#define CHECK_INIT_FROM(type, fn, FIRST, VER) \
	do { \
		type *o_ = guarded(sizeof(type)); \
		unsigned int v_; \
		for (v_ = (FIRST); v_ <= (VER); v_++) { \
			memset(o_, 0xa5, sizeof(type)); \
			CHECK(fn(o_, v_) == 0, #fn "(version %u) failed", v_); \
			CHECK(o_->version == v_, #fn "(version %u) set version %u", v_, o_->version); \
		} \
		CHECK(fn(o_, (VER) + 1000) < 0, #fn " accepted version %u", (VER) + 1000); \
	} while (0)

static void check_inits(void)
{
#ifdef IB_PARSE_OPTIONS_VERSION
	CHECK_INIT(ib_parse_options, ib_parse_options_init, IB_PARSE_OPTIONS_VERSION);
#endif
#ifdef IB_EXPAND_OPTIONS_VERSION
	CHECK_INIT(ib_expand_options, ib_expand_options_init, IB_EXPAND_OPTIONS_VERSION);
#endif
#ifdef IB_PLAN_OPTIONS_VERSION
	CHECK_INIT(ib_plan_options, ib_plan_options_init, IB_PLAN_OPTIONS_VERSION);
#endif
#ifdef IB_CHECK_OPTIONS_VERSION
	CHECK_INIT(ib_check_options, ib_check_options_init, IB_CHECK_OPTIONS_VERSION);
#endif
#ifdef IB_PROCESS_VERSION
	CHECK_INIT(ib_process, ib_process_init, IB_PROCESS_VERSION);
#endif
#ifdef IB_EXECUTE_OPTIONS_VERSION
	CHECK_INIT(ib_execute_options, ib_execute_options_init, IB_EXECUTE_OPTIONS_VERSION);
#endif
#ifdef IB_SNAPSHOTTER_OPTIONS_VERSION
	CHECK_INIT(ib_snapshotter_options, ib_snapshotter_options_init, IB_SNAPSHOTTER_OPTIONS_VERSION);
#endif
#if defined(IB_BUILD_OPTIONS_VERSION) && IB_BUILD_OPTIONS_VERSION >= 6
	/* 6 made callbacks a pointer: versions 1 to 5 (still read) were larger than today's struct */
	CHECK_INIT_FROM(ib_build_options, ib_build_options_init, 6, IB_BUILD_OPTIONS_VERSION);
#elif defined(IB_BUILD_OPTIONS_VERSION)
	CHECK_INIT(ib_build_options, ib_build_options_init, IB_BUILD_OPTIONS_VERSION);
#endif
#ifdef IB_CONTAINER_OPTIONS_VERSION
	CHECK_INIT(ib_container_options, ib_container_options_init, IB_CONTAINER_OPTIONS_VERSION);
#endif
#ifdef IB_CONTAINER_RUN_OPTIONS_VERSION
	CHECK_INIT(ib_container_run_options, ib_container_run_options_init, IB_CONTAINER_RUN_OPTIONS_VERSION);
#endif
#ifdef IB_COMMIT_OPTIONS_VERSION
	CHECK_INIT(ib_commit_options, ib_commit_options_init, IB_COMMIT_OPTIONS_VERSION);
#endif
	/* the _init()s of the embedding contract (headers that have them) */
#if defined(IB_CALLBACKS_VERSION) && IB_CALLBACKS_VERSION >= 2
	CHECK_INIT(ib_callbacks, ib_callbacks_init, IB_CALLBACKS_VERSION);
#endif
#if defined(IB_PULL_OPTIONS_VERSION) && IB_PULL_OPTIONS_VERSION >= 2
	/* version 1 (the registry options by value) was larger than today's struct: tests/push/unit.c checks it */
	CHECK_INIT_FROM(ib_pull_options, ib_pull_options_init, IB_PULL_OPTIONS_VERSION, IB_PULL_OPTIONS_VERSION);
	CHECK_INIT_FROM(ib_push_options, ib_push_options_init, IB_PUSH_OPTIONS_VERSION, IB_PUSH_OPTIONS_VERSION);
	CHECK_INIT_FROM(ib_registry_options, ib_registry_options_init, IB_REGISTRY_OPTIONS_VERSION,
			IB_REGISTRY_OPTIONS_VERSION);
#endif
}

static void check_version(void)
{
	int major = -1, minor = -1, patch = -1;
	char s[64];

	ib_version(&major, &minor, &patch);
	CHECK(major == IB_VERSION_MAJOR, "library major version %d, the program's headers %d",
	      major, IB_VERSION_MAJOR);
	CHECK(minor > IB_VERSION_MINOR || (minor == IB_VERSION_MINOR && patch >= IB_VERSION_PATCH),
	      "library %d.%d.%d is older than the program's headers (%s)", major, minor, patch, IB_VERSION);
	snprintf(s, sizeof s, "%d.%d.%d", major, minor, patch);
	CHECK(ib_version_string() && strncmp(ib_version_string(), s, strlen(s)) == 0,
	      "ib_version_string() \"%s\" is not %s", ib_version_string(), s);
}

static void check_errors_and_digests(void)
{
	ib_digest d;
	char s[IB_DIGEST_STRLEN];

	CHECK(ib_digest_parse(&d, "sha256:nothex") == IB_EINVALID, "a bad digest was accepted");
	CHECK(ib_error_last()->code == IB_EINVALID, "error code %d", ib_error_last()->code);
	CHECK(ib_error_last()->message && ib_error_last()->message[0], "no error message");
	CHECK(ib_digest_of(&d, "abc", 3) == 0, "ib_digest_of");
	ib_digest_fmt(s, &d);
	CHECK(strcmp(s, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
	      "sha256 of abc is %s", s);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void check_store(void)
{
	const char *tmpdir = getenv("TMPDIR");
	char dir[4096];
	ib_store *store = NULL;
	ib_store_options store_init = IB_STORE_OPTIONS_INIT, *o;

	snprintf(dir, sizeof dir, "%s/ib-abi-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));

	/* NULL options: all defaults */
	CHECK(ib_store_open(&store, dir, NULL) == 0, "ib_store_open(%s, NULL)", dir);
	CHECK(strcmp(ib_store_root(store), dir) == 0, "store root %s", ib_store_root(store));
	ib_store_free(store);
	store = NULL;

	/* the baseline's struct, nothing after it */
	o = guarded_copy(&store_init, sizeof store_init);
	CHECK(ib_store_open(&store, dir, o) == 0, "ib_store_open(%s, version %u)", dir, o->version);
	ib_store_free(store);

	/* a version from the future is refused */
	o->version = IB_STORE_OPTIONS_VERSION + 1000;
	store = NULL;
	CHECK(ib_store_open(&store, dir, o) < 0 && store == NULL,
	      "ib_store_open accepted ib_store_options version %u", o->version);
	ib_store_free(store);

	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char dockerfile[] =
	"ARG BASE=scratch\n"
	"FROM ${BASE} AS a\n"
	"COPY x /x\n"
	"FROM a AS b\n"
	"RUN true\n";

static void check_parse_and_plan(void)
{
	ib_dockerfile *df = NULL;
	ib_instructions *ins = NULL;
	ib_plan *plan = NULL;
	ib_parse_options parse_init = IB_PARSE_OPTIONS_INIT, *po;
	ib_plan_options plan_init = IB_PLAN_OPTIONS_INIT, *plo;

	/* NULL options */
	CHECK(ib_dockerfile_parse(&df, dockerfile, strlen(dockerfile), NULL) == 0, "parse");
	CHECK(ib_dockerfile_node_count(df) == 5, "%zu nodes, expected 5", ib_dockerfile_node_count(df));
	ib_dockerfile_free(df);
	df = NULL;

	/* the baseline's parse options are read: the file name shows in errors */
	po = guarded_copy(&parse_init, sizeof parse_init);
	po->filename = "abi.Dockerfile";
	CHECK(ib_dockerfile_parse(&df, "FROM scratch\nRUN <<EOF\n", 22, po) < 0, "an unterminated heredoc parsed");
	CHECK(strstr(ib_error_last()->message, "abi.Dockerfile") != NULL,
	      "the file name of ib_parse_options is not in \"%s\"", ib_error_last()->message);
	ib_dockerfile_free(df);
	df = NULL;
	CHECK(ib_dockerfile_parse(&df, dockerfile, strlen(dockerfile), po) == 0, "parse with options");
	CHECK(ib_instructions_parse(&ins, df) == 0, "ib_instructions_parse");
	CHECK(ib_instructions_stage_count(ins) == 2, "%zu stages", ib_instructions_stage_count(ins));

	/* plan: NULL options build the last stage, which needs the first */
	CHECK(ib_plan_new(&plan, df, ins, NULL) == 0, "ib_plan_new");
	CHECK(ib_plan_stage_count(plan) == 2, "%zu stages planned, expected 2", ib_plan_stage_count(plan));
	ib_plan_free(plan);
	plan = NULL;

	/* the baseline's plan options are read: target "a" alone */
	plo = guarded_copy(&plan_init, sizeof plan_init);
	plo->target = "a";
	CHECK(ib_plan_new(&plan, df, ins, plo) == 0, "ib_plan_new --target a");
	CHECK(ib_plan_stage_count(plan) == 1, "%zu stages planned for target a", ib_plan_stage_count(plan));
	ib_plan_free(plan);
	plan = NULL;
	plo->target = "nosuchstage";
	CHECK(ib_plan_new(&plan, df, ins, plo) < 0, "an unknown target was planned");
	ib_plan_free(plan);

	ib_instructions_free(ins);
	ib_dockerfile_free(df);
}

int main(void)
{
	CHECK(ib_init() >= 1, "ib_init");
	check_version();
	check_errors_and_digests();
	check_inits();
	check_store();
	check_parse_and_plan();
	CHECK(ib_shutdown() == 0, "ib_shutdown did not drop the last reference");
	printf("abi ok: %d checks, headers %s, library %s\n", checks, IB_VERSION, ib_version_string());
	return 0;
}
