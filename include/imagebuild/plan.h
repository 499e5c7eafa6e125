/*
 * plan.h: build semantics before anything runs. From the typed
 * instructions of a Dockerfile, the build arguments and a target, the plan
 * resolves the ARGs that FROM lines see, names the stages, finds what each
 * stage needs (its base, the stages of COPY --from and RUN --mount=from),
 * prunes the stages the target does not need, and orders the rest. Nothing
 * that depends on a base image is expanded here: the build does that, step
 * by step, with the plan's help (ib_plan_arg_value()).
 */
#ifndef IMAGEBUILD_PLAN_H
#define IMAGEBUILD_PLAN_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"
#include "parse.h"

IB_BEGIN_DECL

#define IB_PLAN_OPTIONS_VERSION 1

/** Options of ib_plan_new(). */
typedef struct {
	unsigned int version;            /* IB_PLAN_OPTIONS_VERSION */
	const char *target;              /* stage name or index to build; NULL: the last */
	const char *const *build_args;   /* NULL-terminated "NAME=VALUE" (or "NAME": from the environment is the caller's business) */
	const char *platform;            /* "os/arch[/variant]"; NULL: this host's (linux/amd64...) */
} ib_plan_options;

#define IB_PLAN_OPTIONS_INIT { IB_PLAN_OPTIONS_VERSION, NULL, NULL, NULL }

/** Initialise `opts` like IB_PLAN_OPTIONS_INIT for `version` (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_plan_options_init(ib_plan_options *opts, unsigned int version);

/** What a stage starts from. */
typedef enum {
	IB_BASE_SCRATCH = 0, /* FROM scratch */
	IB_BASE_STAGE = 1,   /* FROM an earlier stage */
	IB_BASE_IMAGE = 2    /* FROM an image (in the store, or pulled) */
} ib_base_kind;

/** A stage of the plan. Borrowed from the plan. */
typedef struct {
	size_t index;               /* the stage's index in the Dockerfile */
	const ib_stage *stage;      /* its instructions (borrowed from ib_instructions) */
	const char *name;           /* AS name or NULL */
	/** What the stage starts from. */
	ib_base_kind base_kind;
	const char *base;           /* FROM, expanded with the meta ARGs ("busybox:1.36") */
	size_t base_stage;          /* for IB_BASE_STAGE: the Dockerfile index of that stage */
	const size_t *deps;         /* Dockerfile indexes of the stages it needs, sorted */
	/** The number of `deps`. */
	size_t dep_count;
	size_t level;               /* stages of the same level do not depend on each other */
} ib_plan_stage;

/**
 * Make a plan. Borrows `df` and `ins` (made from it), which must outlive
 * the plan. Errors
 * (IB_EINVALID / IB_ENOTFOUND) name the line: an unknown target, a FROM
 * that expands to nothing, a stage that refers to itself or a later stage.
 */
IB_EXTERN(int) ib_plan_new(ib_plan **out, const ib_dockerfile *df, const ib_instructions *ins,
			   const ib_plan_options *opts);
/** Free a plan (before the ib_dockerfile and ib_instructions it borrows). NULL is fine. */
IB_EXTERN(void) ib_plan_free(ib_plan *plan);

/** The stages to build, in an order where each comes after what it needs. */
IB_EXTERN(size_t) ib_plan_stage_count(const ib_plan *plan);
/** The i-th stage in build order (borrowed from the plan), or NULL when out of range. */
IB_EXTERN(const ib_plan_stage *) ib_plan_stage_at(const ib_plan *plan, size_t i);
/** The plan stage of Dockerfile stage `index`, or NULL when it is not built. */
IB_EXTERN(const ib_plan_stage *) ib_plan_stage_by_index(const ib_plan *plan, size_t index);
/** The target stage (the last one built). */
IB_EXTERN(const ib_plan_stage *) ib_plan_target(const ib_plan *plan);

/**
 * Resolve `ref` (COPY --from, RUN --mount from=, FROM) as the build does:
 * the index of a stage defined before stage `before` (by name or number),
 * or IB_ENOTFOUND when it names an image.
 */
IB_EXTERN(int) ib_plan_resolve_stage(size_t *index, const ib_plan *plan, const char *ref,
				     size_t before);

/**
 * The value an `ARG name` declared inside a stage gets when it has no
 * default of its own: the build argument, else the default of the meta
 * ARG (before the first FROM) of that name, else the predefined platform
 * ARGs (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM,
 * BUILDOS, BUILDARCH, BUILDVARIANT). *value is borrowed; IB_ENOTFOUND when
 * none applies. With `default_value` (the ARG's own default, already
 * expanded) given, a build argument still wins over it.
 */
IB_EXTERN(int) ib_plan_arg_value(const char **value, const ib_plan *plan, const char *name,
				 const char *default_value);

/** The meta ARGs after --build-arg: NULL-terminated "NAME=VALUE" (borrowed). */
IB_EXTERN(const char *const *) ib_plan_meta_env(const ib_plan *plan);

/** 1 for the proxy ARGs usable without a declaration (HTTP_PROXY, no_proxy...). */
IB_EXTERN(int) ib_plan_is_proxy_arg(const char *name);

/**
 * Build arguments that no built stage and no meta ARG declares, sorted
 * (Docker warns: "One or more build-args [...] were not consumed").
 * Proxy ARGs and BUILDKIT_DOCKERFILE_CHECK (see ib_checks_run) are never reported.
 */
IB_EXTERN(int) ib_plan_unused_build_args(ib_strarray *out, const ib_plan *plan);

/** A human-readable plan in `out` (what `imagebuild build --dry-run` prints). */
IB_EXTERN(int) ib_plan_print(ib_buf *out, const ib_plan *plan);

/* ==== build checks (BuildKit's Dockerfile linter) ==== */

/*
 * The rules of the Dockerfile reference's "Build checks" page, run on the
 * parsed Dockerfile as BuildKit does on every build: StageNameCasing,
 * FromAsCasing, NoEmptyContinuation, ConsistentInstructionCasing,
 * DuplicateStageName, ReservedStageName, JSONArgsRecommended,
 * MaintainerDeprecated, UndefinedArgInFrom, WorkdirRelativePath,
 * UndefinedVar, MultipleInstructionsDisallowed, LegacyKeyValueFormat,
 * RedundantTargetPlatform, SecretsUsedInArgOrEnv, InvalidDefaultArgInFrom,
 * FromPlatformFlagConstDisallowed, CopyIgnoredFile, ExposeProtoCasing,
 * ExposeInvalidFormat, and with the base images a build resolved
 * (ib_check_options.bases) InvalidBaseImagePlatform. Where BuildKit looks
 * at the base image: JSONArgsRecommended assumes an image base has no
 * SHELL; UndefinedVar knows the ENV of a stage that starts from scratch, or
 * from an image given in `bases` (else it does not check that stage: the
 * image's ENV is unknown). The experimental InvalidDefinitionDescription is
 * not run; `experimental=` in the configuration is refused. A duplicate stage
 * name is DuplicateStageName's warning, not an error: the last stage of
 * the name is the one --target, COPY --from and RUN --mount from= mean, and
 * FROM the last one before it, as in BuildKit.
 *
 * The configuration is the `# check=` parser directive (`skip=A,B`,
 * `skip=all`, `error=true`, separated by `;`), or `config` of the options
 * (what BuildKit takes from the BUILDKIT_DOCKERFILE_CHECK build argument),
 * which replaces the directive.
 */

/** One warning of a build check. Borrowed from its ib_checks. */
typedef struct {
	const char *rule;      /* "StageNameCasing" */
	const char *message;   /* "Stage name 'Build' should be lowercase" */
	const char *url;       /* the rule's documentation, or NULL */
	int line;              /* first line of the instruction it is about (1-based) */
} ib_check_warning;

/**
 * What a build knows of the image a stage starts from, once it resolved
 * (pulled or found) it: UndefinedVar then knows the image's ENV, and
 * InvalidBaseImagePlatform compares its platform with the stage's.
 */
typedef struct {
	const char *const *env;    /* the image config's Env (NAME=VALUE, NULL-terminated); NULL: not known */
	const char *platform;      /* the image's "os/arch[/variant]"; NULL: not known */
} ib_check_base;

/* 2 added bases */
#define IB_CHECK_OPTIONS_VERSION 2

/** Options of ib_checks_run(). */
typedef struct {
	unsigned int version;      /* IB_CHECK_OPTIONS_VERSION (1 is still taken) */
	const char *config;        /* replaces the `# check=` directive when not NULL */
	const ib_ignore *ignore;   /* the build's .dockerignore (CopyIgnoredFile), or NULL */
	/**
	 * 0: the rules BuildKit runs while converting a stage look only at the
	 * stages the plan builds (a build); 1: at every stage (`build --check`
	 * without --target). The rules on FROM lines and casing see all stages.
	 */
	int all_stages;
	/**
	 * The base images the build resolved, indexed by stage (the stage's
	 * index in the Dockerfile; an entry of a stage whose base is scratch or
	 * another stage is not read); NULL: none known.
	 */
	const ib_check_base *bases;
	size_t nbases;             /* the number of entries of `bases` */
} ib_check_options;

#define IB_CHECK_OPTIONS_INIT { IB_CHECK_OPTIONS_VERSION, NULL, NULL, 0, NULL, 0 }

/** Initialise `opts` like IB_CHECK_OPTIONS_INIT for `version` (for bindings); IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_check_options_init(ib_check_options *opts, unsigned int version);

/**
 * Run the build checks on `df`, `ins` (made from it) and `plan` (made from
 * both: its build arguments and platform). *out is the caller's
 * (ib_checks_free). IB_ESYNTAX for a malformed configuration ("<line>:
 * failed to parse check options: invalid check option ..."),
 * IB_EUNSUPPORTED for `experimental=`. Warnings are in line order.
 */
IB_EXTERN(int) ib_checks_run(ib_checks **out, const ib_dockerfile *df, const ib_instructions *ins,
			     const ib_plan *plan, const ib_check_options *opts);
/** Free the result of ib_checks_run() or ib_build_check(). NULL is fine. */
IB_EXTERN(void) ib_checks_free(ib_checks *checks);
/** The number of warnings. */
IB_EXTERN(size_t) ib_checks_count(const ib_checks *checks);
/** The i-th warning, in line order (borrowed), or NULL when out of range. */
IB_EXTERN(const ib_check_warning *) ib_checks_warning(const ib_checks *checks, size_t i);
/**
 * 0 unless the configuration says `error=true` and a check fired: then
 * IB_EINVALID with BuildKit's message "lint violation found for rules: A, B"
 * (rules sorted) as the last error.
 */
IB_EXTERN(int) ib_checks_error(const ib_checks *checks);

IB_END_DECL

#endif
