/* Build checks (ib_checks_run): one Dockerfile per rule that fires it, one that does not. */
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
	ib_ignore *ignore;
	ib_checks *checks;
} checked;

static int run_target(checked *c, const char *text, const char *const *args, const char *ignore,
		      const char *config, const char *target, int all_stages)
{
	memset(c, 0, sizeof *c);
	assert_int_equal(ib_dockerfile_parse(&c->df, text, strlen(text), NULL), 0);
	assert_int_equal(ib_instructions_parse(&c->ins, c->df), 0);
	ib_plan_options o = IB_PLAN_OPTIONS_INIT;
	o.build_args = args;
	o.target = target;
	o.platform = "linux/amd64";
	assert_int_equal(ib_plan_new(&c->plan, c->df, c->ins, &o), 0);
	if (ignore)
		assert_int_equal(ib_ignore_parse(&c->ignore, ignore, strlen(ignore), NULL), 0);
	ib_check_options co = IB_CHECK_OPTIONS_INIT;
	co.ignore = c->ignore;
	co.config = config;
	co.all_stages = all_stages;
	return ib_checks_run(&c->checks, c->df, c->ins, c->plan, &co);
}

static int run(checked *c, const char *text, const char *const *args, const char *ignore, const char *config)
{
	return run_target(c, text, args, ignore, config, NULL, 0);
}

static void done(checked *c)
{
	ib_checks_free(c->checks);
	ib_ignore_free(c->ignore);
	ib_plan_free(c->plan);
	ib_instructions_free(c->ins);
	ib_dockerfile_free(c->df);
}

typedef struct {
	const char *rule;
	const char *fires;      /* a Dockerfile where the rule fires exactly once, and nothing else */
	int line;
	const char *message;
	const char *quiet;      /* a close Dockerfile where it does not fire (nor anything else) */
	const char *ignore;     /* .dockerignore for both */
} rule_case;

static const rule_case cases[] = {
	{ "StageNameCasing", "FROM alpine AS Build\n", 1, "Stage name 'Build' should be lowercase",
	  "FROM alpine AS build\n", NULL },
	{ "FromAsCasing", "FROM alpine as build\n", 1, "'as' and 'FROM' keywords' casing do not match",
	  "from alpine as build\n", NULL },
	{ "NoEmptyContinuation", "FROM alpine\nRUN echo \\\n\n  hi\n", 4, "Empty continuation line",
	  "FROM alpine\nRUN echo \\\n  hi\n", NULL },
	{ "ConsistentInstructionCasing", "FROM alpine\nRUN true\nrun true\n", 3,
	  "Command 'run' should match the case of the command majority (uppercase)",
	  "from alpine\nrun true\nrun true\n", NULL },
	{ "DuplicateStageName", "FROM alpine AS base\nFROM busybox AS base\n", 2,
	  "Duplicate stage name \"base\", stage names should be unique",
	  "FROM alpine AS base\nFROM busybox AS base2\n", NULL },
	{ "ReservedStageName", "FROM alpine AS scratch\n", 1,
	  "Stage name should not use the same name as reserved stage \"scratch\"", "FROM alpine AS scratch2\n", NULL },
	{ "JSONArgsRecommended", "FROM alpine\nENTRYPOINT my-app --serve\n", 2,
	  "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals",
	  "FROM alpine\nSHELL [\"/bin/sh\", \"-c\"]\nENTRYPOINT my-app --serve\n", NULL },
	{ "MaintainerDeprecated", "FROM alpine\nMAINTAINER me <me@example.com>\n", 2,
	  "Maintainer instruction is deprecated in favor of using label",
	  "FROM alpine\nLABEL org.opencontainers.image.authors=me\n", NULL },
	{ "UndefinedArgInFrom", "ARG VERSION=3\nFROM alpine:${NOPE:-3}\n", 2,
	  "FROM argument 'NOPE' is not declared",
	  "ARG VERSION=3\nFROM alpine:${VERSION}\n", NULL },
	{ "UndefinedArgInFrom", "ARG VERSION=3\nFROM alpine:${VERSON:-3}\n", 2,
	  "FROM argument 'VERSON' is not declared (did you mean VERSION?)", NULL, NULL },
	{ "WorkdirRelativePath", "FROM alpine\nWORKDIR app\n", 2,
	  "Relative workdir \"app\" can have unexpected results if the base image changes",
	  "FROM alpine\nWORKDIR /usr\nWORKDIR app\n", NULL },
	{ "UndefinedVar", "FROM scratch\nENV DIRS=/x\nCOPY a $DIR/a\n", 3,
	  "Usage of undefined variable '$DIR' (did you mean $DIRS?)",
	  "FROM scratch\nENV DIR=/x\nCOPY a $DIR/a\n", NULL },
	/* BuildKit gives every stage a PATH */
	{ "UndefinedVar", "FROM scratch\nENV P=$PATH:$HOME\n", 2, "Usage of undefined variable '$HOME'",
	  "FROM scratch\nENV P=$PATH\n", NULL },
	{ "UndefinedVar", "FROM scratch\nARG A\nENV B=$A C=$B\n", 3, "Usage of undefined variable '$B'",
	  "FROM scratch\nARG A\nENV B=$A\nENV C=$B\n", NULL },
	{ "MultipleInstructionsDisallowed", "FROM alpine\nCMD [\"a\"]\nCMD [\"b\"]\n", 2,
	  "Multiple CMD instructions should not be used in the same stage because only the last one will be used",
	  "FROM alpine\nCMD [\"a\"]\nFROM alpine\nCMD [\"b\"]\n", NULL },
	{ "LegacyKeyValueFormat", "FROM alpine\nENV a b\n", 2,
	  "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
	  "FROM alpine\nENV a=b\n", NULL },
	{ "RedundantTargetPlatform", "FROM --platform=${TARGETPLATFORM} alpine\n", 1,
	  "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior",
	  "FROM --platform=${BUILDPLATFORM} alpine\n", NULL },
	{ "SecretsUsedInArgOrEnv", "FROM alpine\nARG GITHUB_TOKEN\n", 2,
	  "Do not use ARG or ENV instructions for sensitive data (ARG \"GITHUB_TOKEN\")",
	  "FROM alpine\nARG PUBLIC_KEY\nENV TOKENIZER=1\n", NULL },
	{ "InvalidDefaultArgInFrom", "ARG TAG\nFROM alpine:${TAG}\n", 2,
	  "Default value for ARG alpine:${TAG} results in empty or invalid base image name",
	  "ARG TAG=latest\nFROM alpine:${TAG}\n", NULL },
	{ "FromPlatformFlagConstDisallowed", "FROM --platform=linux/arm64 alpine AS build\n", 1,
	  "FROM --platform flag should not use constant value \"linux/arm64\"",
	  "FROM --platform=linux/arm64 alpine AS build-arm64\n", NULL },
	{ "CopyIgnoredFile", "FROM alpine\nCOPY ./secret.txt /x\n", 2,
	  "Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore",
	  "FROM alpine\nCOPY ./public.txt /x\n", "secret.txt\n" },
	{ "ExposeProtoCasing", "FROM alpine\nEXPOSE 80/TcP\n", 2,
	  "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase", "FROM alpine\nEXPOSE 80/tcp\n", NULL },
	{ "ExposeInvalidFormat", "FROM alpine\nEXPOSE 0.0.0.0:80:80\n", 2,
	  "EXPOSE instruction should not define an IP address or host-port mapping, found '0.0.0.0:80:80'",
	  "FROM alpine\nEXPOSE 80\n", NULL },
};

static void each_rule_fires_with_its_message_and_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const rule_case *rc = &cases[i];
		checked c;
		assert_int_equal(run(&c, rc->fires, NULL, rc->ignore, NULL), 0);
		if (ib_checks_count(c.checks) != 1)
			fail_msg("%s: %zu warnings, the first: %s", rc->rule, ib_checks_count(c.checks),
				 ib_checks_count(c.checks) ? ib_checks_warning(c.checks, 0)->message : "-");
		const ib_check_warning *w = ib_checks_warning(c.checks, 0);
		assert_string_equal(w->rule, rc->rule);
		assert_string_equal(w->message, rc->message);
		assert_int_equal(w->line, rc->line);
		assert_non_null(w->url);
		assert_non_null(strstr(w->url, "https://docs.docker.com/go/dockerfile/rule/"));
		assert_null(ib_checks_warning(c.checks, 1));
		done(&c);
		if (!rc->quiet)
			continue;
		assert_int_equal(run(&c, rc->quiet, NULL, rc->ignore, NULL), 0);
		if (ib_checks_count(c.checks) != 0)
			fail_msg("%s (quiet case): %s: %s", rc->rule, ib_checks_warning(c.checks, 0)->rule,
				 ib_checks_warning(c.checks, 0)->message);
		done(&c);
	}
}

static void rules_that_look_at_more_than_one_line(void **state)
{
	(void)state;
	checked c;
	/* a stage inherits SHELL, WORKDIR and the environment of its parent stage */
	assert_int_equal(run(&c, "FROM scratch AS base\nSHELL [\"/bin/sh\",\"-c\"]\nWORKDIR /app\nENV X=1\n"
				 "FROM base\nWORKDIR sub\nCMD echo $X\nCOPY $X /\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);
	/* an image base: its environment is unknown, UndefinedVar stays quiet */
	assert_int_equal(run(&c, "FROM alpine\nENV PATH=$PATH:/x\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);
	/* a build argument keeps InvalidDefaultArgInFrom: it looks at the defaults */
	static const char *const tag[] = { "TAG=3.19", NULL };
	assert_int_equal(run(&c, "ARG TAG\nFROM alpine:${TAG}\n", tag, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_string_equal(ib_checks_warning(c.checks, 0)->rule, "InvalidDefaultArgInFrom");
	done(&c);
	/* .dockerignore with an exception: CopyIgnoredFile does not guess */
	assert_int_equal(run(&c, "FROM alpine\nCOPY secret.txt /x\n", NULL, "secret*\n!secret.md\n", NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);
	/* a build checks the instructions of the stages it builds only (casing
	 * and FROM lines everywhere); all_stages (build --check) checks them all */
	static const char two_stages[] = "FROM alpine AS Other\nWORKDIR rel\nFROM alpine AS app\nCMD [\"x\"]\n";
	assert_int_equal(run_target(&c, two_stages, NULL, NULL, NULL, "app", 0), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_string_equal(ib_checks_warning(c.checks, 0)->rule, "StageNameCasing");
	done(&c);
	assert_int_equal(run_target(&c, two_stages, NULL, NULL, NULL, "app", 1), 0);
	assert_int_equal(ib_checks_count(c.checks), 2);
	assert_string_equal(ib_checks_warning(c.checks, 1)->rule, "WorkdirRelativePath");
	assert_int_equal(ib_checks_warning(c.checks, 1)->line, 2);
	done(&c);
	/* warnings come in line order */
	assert_int_equal(run(&c, "FROM alpine AS Bad\nMAINTAINER x\nENV a b\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 3);
	assert_int_equal(ib_checks_warning(c.checks, 0)->line, 1);
	assert_int_equal(ib_checks_warning(c.checks, 1)->line, 2);
	assert_int_equal(ib_checks_warning(c.checks, 2)->line, 3);
	done(&c);
}

/* With the base images a build resolved (ib_check_options.bases): their ENV and platform. */
static int run_bases(checked *c, const char *text, const ib_check_base *bases, size_t n, const char *platform)
{
	memset(c, 0, sizeof *c);
	assert_int_equal(ib_dockerfile_parse(&c->df, text, strlen(text), NULL), 0);
	assert_int_equal(ib_instructions_parse(&c->ins, c->df), 0);
	ib_plan_options o = IB_PLAN_OPTIONS_INIT;
	o.platform = platform;
	assert_int_equal(ib_plan_new(&c->plan, c->df, c->ins, &o), 0);
	ib_check_options co = IB_CHECK_OPTIONS_INIT;
	co.bases = bases;
	co.nbases = n;
	return ib_checks_run(&c->checks, c->df, c->ins, c->plan, &co);
}

static void the_base_images_env_and_platform(void **state)
{
	(void)state;
	checked c;
	static const char *const env[] = { "PATH=/usr/bin:/bin", "GOPATH=/go", NULL };
	ib_check_base base[2] = { { env, "linux/amd64" }, { NULL, NULL } };
	/* a variable the image defines is not undefined; one nobody defines is */
	static const char df[] = "FROM golang\nENV A=$GOPATH B=$GOPAHT\nENV P=$PATH\n";
	assert_int_equal(run_bases(&c, df, base, 1, "linux/amd64"), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_string_equal(ib_checks_warning(c.checks, 0)->rule, "UndefinedVar");
	assert_string_equal(ib_checks_warning(c.checks, 0)->message,
			    "Usage of undefined variable '$GOPAHT' (did you mean $GOPATH?)");
	assert_int_equal(ib_checks_warning(c.checks, 0)->line, 2);
	done(&c);
	/* an image without PATH gets BuildKit's default one */
	static const char *const bare[] = { NULL };
	ib_check_base nopath = { bare, "linux/amd64" };
	assert_int_equal(run_bases(&c, "FROM x\nENV P=$PATH\n", &nopath, 1, "linux/amd64"), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);
	/* a stage on that stage sees the image's ENV too; an unknown base stays quiet */
	assert_int_equal(run_bases(&c, "FROM golang AS a\nFROM a\nENV A=$GOPATH\nFROM other\nENV B=$NOPE\n",
				   base, 2, "linux/amd64"), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);
	/* InvalidBaseImagePlatform: another OS or architecture than the stage's */
	ib_check_base arm = { env, "linux/arm64/v8" };
	assert_int_equal(run_bases(&c, "FROM golang\n", &arm, 1, "linux/amd64"), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_string_equal(ib_checks_warning(c.checks, 0)->rule, "InvalidBaseImagePlatform");
	assert_string_equal(ib_checks_warning(c.checks, 0)->message,
			    "Base image golang was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build");
	done(&c);
	assert_int_equal(run_bases(&c, "FROM --platform=linux/arm64 golang AS build-arm64\n", &arm, 1, "linux/amd64"), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);
	/* a variant alone does not count */
	ib_check_base v6 = { env, "linux/arm/v6" };
	assert_int_equal(run_bases(&c, "FROM golang\n", &v6, 1, "linux/arm/v7"), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);
}

static const char two_rules[] = "FROM alpine AS Bad\nMAINTAINER x\n";

static void the_check_directive_skips_and_errors(void **state)
{
	(void)state;
	checked c;
	assert_int_equal(run(&c, "# check=skip=StageNameCasing\nFROM alpine AS Bad\nMAINTAINER x\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_string_equal(ib_checks_warning(c.checks, 0)->rule, "MaintainerDeprecated");
	assert_int_equal(ib_checks_warning(c.checks, 0)->line, 3);
	assert_int_equal(ib_checks_error(c.checks), 0);
	done(&c);

	assert_int_equal(run(&c, "# check=skip=all\nFROM alpine AS Bad\nMAINTAINER x\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	done(&c);

	assert_int_equal(run(&c, "# check=skip=MaintainerDeprecated, StageNameCasing;error=true\n"
				 "FROM alpine AS Bad\nMAINTAINER x\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 0);
	assert_int_equal(ib_checks_error(c.checks), 0);
	done(&c);

	assert_int_equal(run(&c, "# check=error=true\nFROM alpine AS Bad\nMAINTAINER x\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 2);
	assert_int_equal(ib_checks_error(c.checks), IB_EINVALID);
	assert_string_equal(ib_error_last()->message,
			    "lint violation found for rules: MaintainerDeprecated, StageNameCasing");
	done(&c);

	/* no directive: warnings, never an error */
	assert_int_equal(run(&c, two_rules, NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 2);
	assert_int_equal(ib_checks_error(c.checks), 0);
	done(&c);

	/* the options' configuration (BUILDKIT_DOCKERFILE_CHECK) replaces the directive */
	assert_int_equal(run(&c, "# check=skip=all\nFROM alpine AS Bad\n", NULL, NULL, "error=1"), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_int_equal(ib_checks_error(c.checks), IB_EINVALID);
	done(&c);
}

static void check_comments_before_an_instruction_skip_its_rules(void **state)
{
	(void)state;
	checked c;
	/* the comment lines kept before an instruction */
	assert_int_equal(run(&c, "# syntax=docker/dockerfile:1\n# one\n\n  # two  \nFROM alpine\n#\n# three\n"
				 "RUN a \\\n# inside\n b\nRUN c\n", NULL, NULL, NULL), 0);
	const ib_node *from = ib_dockerfile_node(c.df, 0), *run1 = ib_dockerfile_node(c.df, 1);
	assert_int_equal(ib_node_comment_count(from), 2);
	assert_string_equal(ib_node_comment(from, 0), "one");
	assert_string_equal(ib_node_comment(from, 1), "# two");
	assert_null(ib_node_comment(from, 2));
	assert_int_equal(ib_node_comment_count(run1), 1); /* after the bare `#` */
	assert_string_equal(ib_node_comment(run1, 0), "three");
	assert_int_equal(ib_node_comment_count(ib_dockerfile_node(c.df, 2)), 0);
	done(&c);

	/* an instruction's `# check=` skips rules for it alone */
	assert_int_equal(run(&c, "FROM alpine\n# check=skip=JSONArgsRecommended\nCMD echo hi\nENTRYPOINT echo x\n",
			     NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_string_equal(ib_checks_warning(c.checks, 0)->rule, "JSONArgsRecommended");
	assert_int_equal(ib_checks_warning(c.checks, 0)->line, 4);
	done(&c);
	/* a bare `#` forgets it; error=true there changes nothing */
	assert_int_equal(run(&c, "FROM alpine\n# check=skip=JSONArgsRecommended;error=true\n#\nCMD echo hi\n",
			     NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_int_equal(ib_checks_error(c.checks), 0);
	done(&c);
	/* a FROM's comment skips the rules on its FROM line, not the parse-time ones */
	assert_int_equal(run(&c, "ARG X=1\n# check=skip=UndefinedArgInFrom,StageNameCasing\nFROM alpine:${NOPE:-3} AS Bad\n",
			     NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	assert_string_equal(ib_checks_warning(c.checks, 0)->rule, "StageNameCasing");
	done(&c);
	/* an invalid one is ignored, as BuildKit does; experimental= is refused */
	assert_int_equal(run(&c, "FROM alpine\n# check=bogus\nCMD echo hi\n", NULL, NULL, NULL), 0);
	assert_int_equal(ib_checks_count(c.checks), 1);
	done(&c);
	assert_int_equal(run(&c, "FROM alpine\n# check=experimental=all\nCMD echo hi\n", NULL, NULL, NULL),
			 IB_EUNSUPPORTED);
	assert_non_null(strstr(ib_error_last()->message, "line 3"));
	done(&c);
	/* also on a FROM, after a skip that was already read */
	assert_int_equal(run(&c, "ARG X=1\n# check=skip=A,B;experimental=all\nFROM alpine\n", NULL, NULL, NULL),
			 IB_EUNSUPPORTED);
	assert_non_null(strstr(ib_error_last()->message, "line 3"));
	done(&c);
}

static void a_bad_configuration_is_refused(void **state)
{
	(void)state;
	checked c;
	assert_int_equal(run(&c, "# check=skip\nFROM alpine\n", NULL, NULL, NULL), IB_ESYNTAX);
	assert_non_null(strstr(ib_error_last()->message, "invalid check option \"skip\""));
	assert_non_null(strstr(ib_error_last()->message, "failed to parse check options"));
	assert_null(c.checks);
	done(&c);
	assert_int_equal(run(&c, "# check=error=maybe\nFROM alpine\n", NULL, NULL, NULL), IB_ESYNTAX);
	assert_non_null(strstr(ib_error_last()->message, "failed to parse check option \"error=maybe\""));
	done(&c);
	assert_int_equal(run(&c, "# check=warn=all\nFROM alpine\n", NULL, NULL, NULL), IB_ESYNTAX);
	assert_non_null(strstr(ib_error_last()->message, "invalid check option \"warn\""));
	done(&c);
	assert_int_equal(run(&c, "# check=experimental=all\nFROM alpine\n", NULL, NULL, NULL), IB_EUNSUPPORTED);
	assert_non_null(strstr(ib_error_last()->message, "experimental"));
	done(&c);
	ib_check_options o;
	assert_int_equal(ib_check_options_init(&o, 99), IB_EINVALID);
	assert_int_equal(ib_check_options_init(&o, IB_CHECK_OPTIONS_VERSION), 0);
	assert_null(o.config);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_rule_fires_with_its_message_and_line),
		cmocka_unit_test(rules_that_look_at_more_than_one_line),
		cmocka_unit_test(the_check_directive_skips_and_errors),
		cmocka_unit_test(check_comments_before_an_instruction_skip_its_rules),
		cmocka_unit_test(a_bad_configuration_is_refused),
		cmocka_unit_test(the_base_images_env_and_platform),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
