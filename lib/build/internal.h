/*
 * Internal interfaces shared by the files of the build layer:
 *   build.c        the orchestrator: stages, the step loop, the cache, ib_build()
 *   step_run.c     RUN: the command, heredoc scripts, --mount
 *   step_inputs.c  the inputs of a COPY/ADD step, resolved once for the
 *                  cache key and the copy (step_inputs.h)
 *   step_files.c   COPY, ADD and WORKDIR: the steps that write files
 *   step_config.c  the steps that change only the image config, ARG, and
 *                  the history texts as BuildKit writes them
 *   copy.c         walking, hashing and copying trees inside roots
 *   container.c    containers;  prune.c  ib_prune()
 */
#ifndef IB_BUILD_INTERNAL_H
#define IB_BUILD_INTERNAL_H

#include "imagebuild/build.h"
#include "imagebuild/container.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/strlist.h"

#include <pthread.h>
#include <sys/types.h>

#define IB_BUILD_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* sha256 of an empty tar (1024 zero bytes): a step that changed nothing */
#define IB_BUILD_EMPTY_TAR_DIGEST "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
#define IB_BUILD_TAIL_LINES 10
/* The most a Dockerfile or .dockerignore read from a context may hold. */
#define IB_BUILD__CONTEXT_FILE_MAX ((size_t)4 << 20)

/* A RUN step's hostname in BuildKit (executor/oci/hosts.go defaultHostname). */
#define IB_BUILD__SANDBOX_HOSTNAME "buildkitsandbox"

/* "os/arch/variant" fits (platform.c) */
#define IB_BUILD__PLATFORM_MAX 128

/* What a stage has become so far: its image (config and layers) and scope. */
typedef struct {
	ib_image_config *config;
	ib_layer *layers;
	size_t nlayers;
	char key[IB_DIGEST_HEXLEN + 1];
	ib_strlist args;    /* NAME=VALUE of the ARGs in scope (not kept in the image) */
	ib_strlist arg_names; /* every ARG declared in the stage, in order (history shows them) */
	char *arg_history;  /* created_by of the last ARG step */
	int cmd_set;        /* CMD was set in this stage: ENTRYPOINT no longer clears it */
	int built;
	char platform[IB_BUILD__PLATFORM_MAX]; /* the stage's (FROM --platform, else the target's), normalised */
} stage_state;

/* One build, from ib_build() to its end. */
typedef struct ib_build__builder {
	ib_store *store;
	ib_snapshotter *snap;
	const ib_build_options *o;  /* points to opts */
	ib_build_options opts;      /* the caller's, grown to this version's fields */
	ib_diff_options diff_opts;  /* how its layers are written (the SOURCE_DATE_EPOCH clamp) */
	ib_strlist pulled;          /* images pulled by this build (IB_PULL_ALWAYS pulls each once) */
	struct ib_build__sums *sums; /* the context's checksum cache (copy.h) */
	ib_strlist fetched;         /* ADD <url> downloads of this build (fetch.c) */
	char *filename;             /* the Dockerfile, as errors name it */
	ib_dockerfile *df;
	ib_instructions *ins;
	ib_plan *plan;
	ib_ignore *ignore;
	ib_checks *checks;          /* the build checks (ib_checks_run) */
	int checks_only;            /* ib_build_check: keep them, neither log nor fail */
	int ctxfd;
	char escape;
	stage_state *stages;
	size_t nstages;
	ib_strlist snapshots;  /* keys to remove at the end */
	/* the step being run */
	const char *step_label;
	int no_history;        /* commit -c: config changes without history entries */
	char *tmp_dir;         /* <store root>/tmp, which GC empties (never during the build: it holds a lease) */
	volatile int cancel;   /* set when the progress callback asks to stop; RUN polls it */
	int cancel_value;      /* what that callback returned */
	ib_callbacks compat_cb; /* the callbacks of options of versions 1 to 4 */
	uint64_t step_no;      /* the step being run, 1-based across the build */
	uint64_t step_total;   /* the steps of the build */
	int allow_insecure;    /* entitlement security.insecure granted (o->allow) */
	int allow_network_host; /* entitlement network.host granted */
	const char *hostname;  /* RUN's, from BUILDKIT_SANDBOX_HOSTNAME; NULL: IB_BUILD__SANDBOX_HOSTNAME */
	char *tail[IB_BUILD_TAIL_LINES];
	size_t tail_next;
	/* ib_build_options version 7, parsed (extras.c) */
	ib_strlist annotations; /* KEY=VALUE of the manifest */
	char *extra_hosts;     /* lines appended to RUN's /etc/hosts; NULL: none */
	ib_rlimit *rlimits;    /* RUN's resource limits (names are static) */
	size_t nrlimits;
	char *git_context;     /* a git URL context's checkout (its subdir), the context then */
	char *git_dockerfile;  /* -f inside it */
	/* stages in parallel (parallel.c) */
	struct ib_build__sched *sched; /* the build's, while its stages run in threads; else NULL */
	struct ib_build__builder *root; /* a stage thread's copy: the build's builder; else NULL */
	int leased;            /* a stage thread's copy holds a lease on its own store handle */
	/* ib_build_options version 8: --cache-from / --cache-to (cache_export.c) */
	struct ib_build__cache *cache;
	/* platform.c */
	char platform[IB_BUILD__PLATFORM_MAX]; /* the target platform, normalised (the host's when not given) */
	int platform_explicit; /* given (--platform): the image config then says it */
	/* multi.c */
	int multi;             /* one platform of several: step labels name the platform (BuildKit) */
} builder;

/*
 * parallel.c: the stages of a build in threads (ib_build_options.jobs).
 * ib_build__jobs: how many stages may run at once for this plan (1 when no
 * two can). ib_build__run_stages runs `fn` for every stage of the plan,
 * each in a thread with its own copy of the builder, at most `jobs` at
 * once, and returns the first failure. The rest is for the code the stages
 * run: locks around what they share (no-ops outside stage threads), the
 * builder whose `pulled` and `fetched` lists are the build's, step numbers,
 * and waiting for a stage another one names.
 */
typedef int (*ib_build__stage_fn)(builder *b, const ib_plan_stage *ps, size_t nth, size_t nstages);
unsigned int ib_build__jobs(const builder *b);
int ib_build__run_stages(builder *b, unsigned int jobs, ib_build__stage_fn fn);

/*
 * relay.c: the callbacks of work run in threads (parallel.c, multi.c) are
 * called on the calling thread, one at a time. A worker queues an event
 * and waits (ib_build__cbq_wait, with *mu held) until the calling thread,
 * in ib_build__cbq_dispatch (with *mu held), has called the caller's
 * callback for it (*mu released meanwhile) and set its return value.
 * `wake` is signalled when an event is queued, `changed` broadcast when
 * one is handled; both belong to the scheduler, with `mu`.
 */
typedef struct ib_build__cbev {
	struct ib_build__cbev *next;
	int is_log;
	ib_progress p;
	ib_log_level level;
	const char *line;
	int rc;
	int done;
} ib_build__cbev;
typedef struct {
	pthread_mutex_t *mu;
	pthread_cond_t *wake, *changed;
	const ib_callbacks *user;
	ib_build__cbev *head, *tail;
} ib_build__cbq;
int ib_build__cbq_wait(ib_build__cbq *q, ib_build__cbev *ev);
void ib_build__cbq_dispatch(ib_build__cbq *q);

/* libgit2 is opened on first use (git_lazy.c): load it (error set naming it), and whether it is loaded. */
int ib_build__git_load(void);
int ib_build__git_loaded(void);
enum { IB_BUILD__LOCK_PULL = 1, IB_BUILD__LOCK_FETCH = 2 };
void ib_build__lock(builder *b, int which);
void ib_build__unlock(builder *b, int which);
builder *ib_build__shared(builder *b);
void ib_build__steps_add(builder *b, uint64_t n);
void ib_build__step_next(builder *b);
int ib_build__stage_wait(builder *b, size_t index);

/* cache_export.c: the build cache shared through a registry (docs/cache.md) */
/* Parse cache_from / cache_to (refusing what is not implemented). */
int ib_build__cache_parse(builder *b);
void ib_build__cache_free(builder *b);
/* Read every cache source's records (before the first step, as BuildKit; a missing one is a warning). */
int ib_build__cache_load(builder *b);
/* A step the local store lacks: its record from the cache sources, in order, made a local cache entry;
 * IB_ENOTFOUND when none has it. */
int ib_build__cache_import(builder *b, ib_digest *config, const char *key);
/* A step the build went through (cached or run), for the export. */
int ib_build__cache_step(builder *b, size_t stage, const char *parent, const char *key);
/*
 * COPY --from aliases (docs/cache.md): the memo key of a COPY --from step
 * (memo.c: a function of its inputs and the source stage's layers) led to
 * step key `key` (recorded for the export); _alias_get: a source's alias of
 * `memo` whose record it holds, into `key` (1), or 0.
 */
int ib_build__cache_alias(builder *b, const char *memo, const char *key);
int ib_build__cache_alias_get(builder *b, const char *memo, char key[IB_DIGEST_HEXLEN + 1]);
/* After a successful build of `image_id`: write the records (and the image's config) to every cache_to. */
int ib_build__cache_export(builder *b, const ib_digest *image_id);
/* --build-arg BUILDKIT_INLINE_CACHE=1: as --cache-to type=inline. */
int ib_build__cache_want_inline(builder *b);
/* --cache-to type=inline: the result's records into the image config `*config`, before its commit. */
int ib_build__cache_inline(builder *b, ib_image_config **config);
/* A RUN's cache mount `id`, known in the store by `ident` (step_run.c), seen by the build (for cache-mounts=). */
int ib_build__cache_mount_seen(builder *b, const char *id, const char *ident);
/* A cache mount's first instance, not in the store: restored into the new directory `dir` from a
 * --cache-from that has it (1), or not (0: none has it, or what one has does not verify). */
int ib_build__cache_mount_restore(builder *b, const char *ident, const char *dir);

/* extras.c: the options of ib_build_options version 7 */
int ib_build__parse_extras(builder *b);
/* platform.c: platforms of stages, images and RUN; several platforms as one index */
const char *ib_build__host_platform(void);
int ib_build__setup_platform(builder *b);
int ib_build__stage_platform(char out[IB_BUILD__PLATFORM_MAX], builder *b, const ib_plan_stage *ps);
int ib_build__config_platform(ib_image_config *c, const char *platform);
int ib_build__final_platform(builder *b, ib_image_config *c);
void ib_build__platform_key(char key[IB_DIGEST_HEXLEN + 1], const char *base, const char *platform);
int ib_build__check_emulator(builder *b, const char *platform);
int ib_build__platform_list(ib_strlist *out, const ib_build_options *o);
int ib_build__multi(ib_digest *image_id, ib_store *store, const ib_build_options *opts, const ib_strlist *platforms);
/* build.c: one platform's build; `manifest` (may be NULL) its manifest's digest */
int ib_build__one(ib_digest *image_id, ib_digest *manifest, ib_store *store, const ib_build_options *opts);
/* IB_BUILD__ONE_MULTI: one platform of several (step labels then name the platform, as BuildKit's) */
#define IB_BUILD__ONE_MULTI 1u
int ib_build__one_ex(ib_digest *image_id, ib_digest *manifest, ib_store *store, const ib_build_options *opts,
		     unsigned int flags);
/*
 * multi.c: the platforms of one build at once. ib_build__platform_jobs: how
 * many at a time (1 with --cache-from/--cache-to); ib_build__platforms_run
 * builds each (ids and manifests by platform, may be left zero for a
 * platform that failed or never started) and returns the first failure.
 */
unsigned int ib_build__platform_jobs(const ib_build_options *o, size_t nplatforms);
/*
 * A step of cache key `key` about to run: 1 when this build claimed it (it
 * then calls ib_build__step_release once the step ended, recorded or not);
 * 0 with *waited set when another build of this process ran it meanwhile
 * (look in the cache again; claim again when it is not there).
 */
int ib_build__step_claim(builder *b, const char *key, int *waited);
void ib_build__step_release(builder *b, const char *key);
int ib_build__platforms_run(ib_digest *ids, ib_digest *manifests, ib_store *store, const ib_build_options *opts,
			    const ib_strlist *platforms, unsigned int jobs);
int ib_build__image_platform(ib_image **out, builder *b, const char *name, const char *platform);
int ib_build__no_cache(builder *b, const char *stage_name);
int ib_build__apply_labels(builder *b, ib_image_config *config);
const char *ib_build__named_context(builder *b, const char *name);
int ib_build__oci_layout_image(ib_image **out, builder *b, const char *name, const char *path);
int ib_build__dir_image(ib_image **out, builder *b, const char *name, const char *dir);
int ib_build__context_image(ib_image **out, builder *b, const char *name, const char *value);
int ib_build__init_named_stage(builder *b, const ib_plan_stage *ps, stage_state *s, const char *value);


/* A step's cache key being made: key_begin, key_add..., key_end. */
typedef struct {
	ib_sha256 *h;
} keyer;

/* The mounts of one RUN and what to clean up after it. */
typedef struct {
	ib_mount *mounts;
	size_t n;
	ib_strlist strings;  /* what the mounts point to */
	ib_strlist tmpdirs;  /* removed afterwards */
	ib_strlist snapkeys; /* snapshots of other stages, dropped afterwards */
	int *locks;          /* flock'ed fds of the cache mounts' instances, closed afterwards */
	size_t nlocks;
	ib_strlist cache_held; /* cache mounts taken: base path, instance path, ... */
} run_mounts;

/*
 * What a metadata instruction (ENV, LABEL, EXPOSE, CMD, ENTRYPOINT, WORKDIR,
 * USER, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER) does to
 * an image config, in one place for the build (ib_build__do_meta, WORKDIR)
 * and for `commit -c` (ib_build__apply_change).
 */
typedef struct {
	const char *const *env; /* NAME=VALUE the words expand with; NULL: the config's own Env */
	char escape;            /* the escape character; 0: backslash */
	int cmd_set;            /* in/out: CMD set in this stage (a new ENTRYPOINT then keeps it) */
	ib_buf *history;        /* out, if not NULL: the history entry's text, as BuildKit writes it */
	ib_strlist *env_set;    /* out, if not NULL: ENV's NAME, VALUE pairs, in order */
	int no_history;         /* out: the instruction adds no history entry (ONBUILD) */
} ib_build__meta;

/*
 * Apply `in` to `config` with Docker's semantics and validation (EXPOSE
 * ports, STOPSIGNAL names, ...). Touches nothing but `config` and `m`; an
 * error says what is wrong, never where: the caller adds the Dockerfile and
 * line, or the change.
 */
int ib_build__meta_apply(ib_image_config *config, const ib_instruction *in, ib_build__meta *m);
/* WORKDIR's path: `value` relative to the config's WORKDIR, cleaned. */
int ib_build__workdir_path(ib_buf *out, const ib_image_config *config, const char *value);
/* One `commit -c` / `import --change` instruction: ib_build__meta_apply on the ones Docker takes. */
int ib_build__apply_change(ib_image_config *config, const ib_instruction *in);

/* ADD <url> (fetch.c): 1 for http:// and https:// sources. */
int ib_build__is_url(const char *src);
/*
 * Download `url` once per build into a private directory (*dir, *name,
 * borrowed until the build ends), checked against `checksum` when given.
 */
int ib_build__fetch(builder *b, const char *url, const char *checksum, const char **dir, const char **name,
		    ib_digest *digest);
void ib_build__fetch_cleanup(builder *b);
/*
 * ADD <git ref> (git.c): 1 for what BuildKit takes as a git source. Check it
 * out once per build (the directory `*dir` holds it at `*subdir`, borrowed
 * until the build ends); `commit` gets the commit's sha (the cache key).
 */
int ib_build__is_git(const char *src);
int ib_build__git_fetch(builder *b, const char *src, const char *checksum, const char **dir, const char **subdir,
			char commit[41]);

/* Find an image to start from, pulling it as the build's pull policy says. */
int ib_build__image(ib_image **out, builder *b, const char *name);

/*
 * Refuse instruction `in`: IB_EINVALID-like `code` with "<Dockerfile>:<line>:
 * <reason>", as the parser's errors are written.
 */
int ib_build__refuse(builder *b, const ib_instruction *in, int code, const char *fmt, ...) IB_PRINTF(4, 5);

/*
 * A private temporary directory of the build (mkdtemp of TAG-XXXXXX) in the
 * store's tmp/ (GC removes what a killed build leaves there), or in $TMPDIR
 * without a store. NULL on error.
 */
char *ib_build__tmpdir(builder *b, const char *tag);
int ib_build__report(builder *b, ib_progress_kind kind, const char *id, const char *text, uint64_t cur,
		  uint64_t total, int cached);
void ib_build__log_line(builder *b, ib_log_level lvl, const char *fmt, ...) IB_PRINTF(3, 4);
void ib_build__run_output(ib_log_level lvl, const char *line, void *payload);
void ib_build__tail_clear(builder *b);
int ib_build__step_env(ib_strlist *out, const stage_state *s);
int ib_build__expand_one(ib_buf *out, builder *b, const stage_state *s, const char *word);
int ib_build__expand_list(ib_strarray *out, builder *b, const stage_state *s, const char *word);
const char *ib_build__arg_get(const stage_state *s, const char *name);
int ib_build__set_arg(stage_state *s, const char *name, const char *value);
int ib_build__env_over_args(stage_state *s, const char *name, const char *value);
int ib_build__key_begin(keyer *k, const stage_state *s, const ib_instruction *in);
void ib_build__key_add(keyer *k, const char *text);
int ib_build__key_end(keyer *k, char out[IB_DIGEST_HEXLEN + 1]);
/*
 * The COPY --from memo (memo.c): the memo key of COPY `in` from another
 * stage of this build ("" when the step has none), the step key remembered
 * under it (1 when found), and remembering one.
 */
int ib_build__copy_memo_key(char out[IB_DIGEST_HEXLEN + 1], builder *b, const stage_state *s,
			    const ib_instruction *in, size_t stage_index);
int ib_build__memo_get(builder *b, const char *memo, char key[IB_DIGEST_HEXLEN + 1]);
int ib_build__memo_put(builder *b, const char *memo, const char *key);
void ib_build__state_dispose(stage_state *s);
int ib_build__layers_from_config(stage_state *s, ib_store *store);
int ib_build__restore_config(stage_state *s, ib_store *store, const ib_digest *config);
int ib_build__save_config(ib_digest *out, builder *b, const stage_state *s);
int ib_build__add_history(builder *b, stage_state *s, const char *created_by, int empty_layer);
int ib_build__init_stage(builder *b, const ib_plan_stage *ps, stage_state *s);
int ib_build__new_snapshot(ib_buf *rootfs, char **key_out, builder *b, const stage_state *s);
void ib_build__drop_snapshot(builder *b, const char *key);
int ib_build__commit_snapshot(builder *b, stage_state *s, const char *key, const char *created_by,
			   int keep_empty);
/* The same, the layer written with `opts` (b->diff_opts and more). */
int ib_build__commit_snapshot_with(builder *b, stage_state *s, const char *key, const char *created_by,
				   int keep_empty, const ib_diff_options *opts);
int ib_build__prepare_mounts(run_mounts *rm, ib_strlist *env, builder *b, stage_state *s,
			     const ib_instruction *in, size_t stage_index, keyer *k);
void ib_build__release_mounts(builder *b, run_mounts *rm);
int ib_build__do_run(builder *b, stage_state *s, const ib_instruction *in, size_t stage_index);
int ib_build__ignore_filter(void *payload, const char *rel, int is_dir);
int ib_build__source_root(int *fd, char **snapkey, builder *b, const char *from, size_t stage_index);
int ib_build__parse_chown(uid_t *uid, gid_t *gid, const char *rootfs, const char *spec);
int ib_build__do_workdir(builder *b, stage_state *s, const ib_instruction *in);
int ib_build__do_meta(builder *b, stage_state *s, const ib_instruction *in);
int ib_build__do_arg(builder *b, stage_state *s, const ib_instruction *in);
int ib_build__arg_history(builder *b, stage_state *s);

#endif
