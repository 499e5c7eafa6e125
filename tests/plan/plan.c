#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "ib_test.h"
#include "imagebuild/plan.h"

typedef struct {
	ib_dockerfile *df;
	ib_instructions *ins;
	ib_plan *plan;
} planned;

static int make(planned *p, const char *text, const char *target, const char *const *args)
{
	memset(p, 0, sizeof *p);
	assert_int_equal(ib_dockerfile_parse(&p->df, text, strlen(text), NULL), 0);
	assert_int_equal(ib_instructions_parse(&p->ins, p->df), 0);
	ib_plan_options o = IB_PLAN_OPTIONS_INIT;
	o.target = target;
	o.build_args = args;
	o.platform = "linux/amd64";
	return ib_plan_new(&p->plan, p->df, p->ins, &o);
}

static void done(planned *p)
{
	ib_plan_free(p->plan);
	ib_instructions_free(p->ins);
	ib_dockerfile_free(p->df);
}

static const char multi[] =
	"ARG BASE=busybox\n"
	"ARG TAG\n"
	"FROM ${BASE}:${TAG:-latest} AS deps\n"
	"RUN echo deps\n"
	"FROM deps AS builder\n"
	"COPY --from=tools /x /x\n"       /* an image: no stage named tools before */
	"RUN make\n"
	"FROM scratch AS unused\n"
	"RUN exit 1\n"
	"FROM busybox AS final\n"
	"COPY --from=builder /out /out\n"
	"COPY --from=0 /deps /deps\n";

static void stages_bases_and_deps(void **state)
{
	(void)state;
	planned p;
	assert_int_equal(make(&p, multi, NULL, NULL), 0);
	/* the unused stage is pruned */
	assert_int_equal(ib_plan_stage_count(p.plan), 3);
	const ib_plan_stage *s0 = ib_plan_stage_at(p.plan, 0);
	assert_string_equal(s0->base, "busybox:latest");
	assert_int_equal(s0->base_kind, IB_BASE_IMAGE);
	assert_string_equal(s0->name, "deps");
	const ib_plan_stage *s1 = ib_plan_stage_at(p.plan, 1);
	assert_int_equal(s1->base_kind, IB_BASE_STAGE);
	assert_int_equal(s1->base_stage, 0);
	assert_int_equal(s1->dep_count, 1);
	assert_int_equal(s1->level, 1);
	const ib_plan_stage *s3 = ib_plan_stage_at(p.plan, 2);
	assert_int_equal(s3->index, 3);
	assert_int_equal(s3->dep_count, 2);
	assert_int_equal(s3->deps[0], 0);
	assert_int_equal(s3->deps[1], 1);
	assert_int_equal(s3->level, 2);
	assert_ptr_equal(ib_plan_target(p.plan), s3);
	assert_null(ib_plan_stage_by_index(p.plan, 2));
	size_t idx;
	assert_int_equal(ib_plan_resolve_stage(&idx, p.plan, "BUILDER", 3), 0);
	assert_int_equal(idx, 1);
	assert_int_equal(ib_plan_resolve_stage(&idx, p.plan, "tools", 3), IB_ENOTFOUND);
	assert_int_equal(ib_plan_resolve_stage(&idx, p.plan, "final", 3), IB_ENOTFOUND);
	done(&p);
}

static void target_prunes(void **state)
{
	(void)state;
	planned p;
	assert_int_equal(make(&p, multi, "builder", NULL), 0);
	assert_int_equal(ib_plan_stage_count(p.plan), 2);
	assert_string_equal(ib_plan_target(p.plan)->name, "builder");
	done(&p);
	assert_int_equal(make(&p, multi, "unused", NULL), 0);
	assert_int_equal(ib_plan_stage_count(p.plan), 1);
	assert_int_equal(ib_plan_target(p.plan)->base_kind, IB_BASE_SCRATCH);
	done(&p);
	ib_assert_error_contains(make(&p, multi, "nope", NULL), "target stage `nope` could not be found");
	done(&p);
}

static void build_args_override_meta_args(void **state)
{
	(void)state;
	planned p;
	const char *args[] = {"BASE=alpine", "TAG=3.19", "UNUSED=1", "HTTP_PROXY=http://p",
			      "BUILDKIT_DOCKERFILE_CHECK=skip=all", NULL};
	assert_int_equal(make(&p, multi, NULL, args), 0);
	assert_string_equal(ib_plan_stage_at(p.plan, 0)->base, "alpine:3.19");
	ib_strarray unused = IB_STRARRAY_INIT;
	assert_int_equal(ib_plan_unused_build_args(&unused, p.plan), 0);
	assert_int_equal(unused.count, 1);
	assert_string_equal(unused.strings[0], "UNUSED");
	ib_strarray_dispose(&unused);
	done(&p);
}

static void arg_values_inside_stages(void **state)
{
	(void)state;
	static const char df[] =
		"ARG VERSION=1.0\n"
		"ARG OTHER=x\n"
		"FROM busybox\n"
		"ARG VERSION\n"
		"ARG LOCAL=default\n"
		"RUN echo $VERSION\n";
	planned p;
	const char *args[] = {"LOCAL=given", NULL};
	assert_int_equal(make(&p, df, NULL, args), 0);
	const char *v = NULL;
	/* re-declared meta ARG without a value gets the meta default */
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "VERSION", NULL), 0);
	assert_string_equal(v, "1.0");
	/* a build argument wins over the ARG's own default */
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "LOCAL", "default"), 0);
	assert_string_equal(v, "given");
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "NOTHING", NULL), IB_ENOTFOUND);
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "NOTHING", "d"), 0);
	assert_string_equal(v, "d");
	/* predefined platform ARGs */
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "TARGETARCH", NULL), 0);
	assert_string_equal(v, "amd64");
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "TARGETPLATFORM", NULL), 0);
	assert_string_equal(v, "linux/amd64");
	/* the meta env lists the meta ARGs */
	int seen = 0;
	for (const char *const *e = ib_plan_meta_env(p.plan); *e; e++)
		seen += strcmp(*e, "VERSION=1.0") == 0 || strcmp(*e, "OTHER=x") == 0;
	assert_int_equal(seen, 2);
	done(&p);
}

static void a_meta_arg_without_value_unsets_a_platform_arg(void **state)
{
	(void)state;
	static const char df[] =
		"ARG TARGETARCH\n"
		"FROM busybox:${TARGETARCH:-none}-${TARGETOS:-none}\n"
		"ARG TARGETARCH\n";
	planned p;
	assert_int_equal(make(&p, df, NULL, NULL), 0);
	/* declared before FROM without a value: empty, not the predefined amd64 */
	assert_string_equal(ib_plan_stage_at(p.plan, 0)->base, "busybox:none-linux");
	const char *v = NULL;
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "TARGETARCH", NULL), IB_ENOTFOUND);
	assert_int_equal(ib_plan_arg_value(&v, p.plan, "TARGETOS", NULL), 0);
	assert_string_equal(v, "linux");
	done(&p);
}

static void bad_plans_name_the_line(void **state)
{
	(void)state;
	planned p;
	ib_assert_error_contains(make(&p, "ARG B\nFROM ${B}\n", NULL, NULL), "line 2");
	assert_int_equal(ib_error_last()->code, IB_EINVALID);
	done(&p);
	ib_assert_error_contains(make(&p, "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n",
				      NULL, NULL), "line 2: stage `b` is used before it is defined");
	done(&p);
	ib_assert_error_contains(make(&p, "FROM a AS a\n", NULL, NULL), "cannot use itself");
	done(&p);
	/* a number is a stage index (BuildKit), never an image called "5" */
	ib_assert_error_contains(make(&p, "FROM busybox\nFROM busybox\nCOPY --from=5 /x /x\n", NULL, NULL),
				 "line 3: invalid stage index 5");
	done(&p);
	ib_assert_error_contains(make(&p, "FROM busybox\nRUN --mount=from=-1,target=/m true\n", NULL, NULL),
				 "line 2: invalid stage index -1");
	done(&p);
	ib_assert_error_contains(make(&p, "FROM busybox\nCOPY --from=1 /x /x\nFROM busybox\n", NULL, NULL),
				 "line 2: stage 1 is used before it is defined");
	done(&p);
	assert_int_equal(make(&p, "FROM busybox\nFROM busybox\nCOPY --from=+0 /x /x\n", NULL, NULL), 0);
	assert_int_equal(ib_plan_stage_by_index(p.plan, 1)->dep_count, 1);
	assert_int_equal(ib_plan_stage_by_index(p.plan, 1)->deps[0], 0);
	done(&p);
}

/* A duplicate stage name (BuildKit's DuplicateStageName warning): the last stage of the name wins. */
static void duplicate_names_resolve_as_buildkit(void **state)
{
	(void)state;
	planned p;
	static const char dup[] =
		"FROM busybox AS base\n"     /* 0 */
		"FROM alpine AS base\n"      /* 1 */
		"FROM base AS mid\n"         /* 2: FROM sees the last `base` before it */
		"COPY --from=base /x /x\n"
		"FROM debian AS out\n";      /* 3 */
	assert_int_equal(make(&p, dup, "mid", NULL), 0);
	const ib_plan_stage *mid = ib_plan_stage_by_index(p.plan, 2);
	assert_non_null(mid);
	assert_int_equal(mid->base_kind, IB_BASE_STAGE);
	assert_int_equal(mid->base_stage, 1);
	assert_int_equal(mid->dep_count, 1);
	assert_int_equal(mid->deps[0], 1);
	done(&p);
	/* --target: the last stage of the name */
	assert_int_equal(make(&p, dup, "base", NULL), 0);
	assert_int_equal(ib_plan_target(p.plan)->index, 1);
	assert_string_equal(ib_plan_target(p.plan)->base, "alpine");
	done(&p);
	/* COPY --from names the last stage of the name, even one after it: an error, as BuildKit's */
	ib_assert_error_contains(make(&p,
				      "FROM busybox AS x\nFROM busybox AS y\nCOPY --from=x /a /a\nFROM alpine AS x\n",
				      NULL, NULL),
				 "line 3: stage `x` is used before it is defined");
	done(&p);
}

static void print_shows_the_plan(void **state)
{
	(void)state;
	planned p;
	const char *args[] = {"UNUSED=1", NULL};
	assert_int_equal(make(&p, multi, NULL, args), 0);
	ib_buf b = IB_BUF_INIT;
	assert_int_equal(ib_plan_print(&b, p.plan), 0);
	assert_non_null(strstr(b.ptr, "target: stage 3 (final), 3 of 4 stages built"));
	assert_non_null(strstr(b.ptr, "stage 1 \"builder\": FROM deps (stage), level 1, needs 0"));
	assert_non_null(strstr(b.ptr, "  [2/2] RUN make"));
	assert_non_null(strstr(b.ptr, "not consumed: UNUSED"));
	assert_null(strstr(b.ptr, "exit 1"));
	ib_buf_dispose(&b);
	done(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stages_bases_and_deps),
		cmocka_unit_test(target_prunes),
		cmocka_unit_test(build_args_override_meta_args),
		cmocka_unit_test(arg_values_inside_stages),
		cmocka_unit_test(a_meta_arg_without_value_unsets_a_platform_arg),
		cmocka_unit_test(bad_plans_name_the_line),
		cmocka_unit_test(duplicate_names_resolve_as_buildkit),
		cmocka_unit_test(print_shows_the_plan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
