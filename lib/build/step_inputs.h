/*
 * The inputs of a COPY/ADD step, resolved once (step_inputs.c): the source
 * root (the context, or --from's stage or image), every source after
 * .dockerignore, wildcards, --exclude and --parents, the downloads of
 * ADD <url>, the checkouts of ADD <git>, the heredocs' texts and the
 * destination. The same list feeds the step's cache key (run_step) and
 * the copy (ib_build__do_copy): nothing is walked or fetched twice.
 */
#ifndef IB_BUILD_STEP_INPUTS_H
#define IB_BUILD_STEP_INPUTS_H

#include "build/internal.h"
#include "build/copy.h"
#include "imagebuild/parse.h"
#include "util/buf.h"
#include "util/strlist.h"

typedef struct {
	int srcfd;                /* the context (b->ctxfd), or the root of --from's stage or image */
	char *snapkey;            /* the snapshot mounted for --from, dropped by dispose */
	ib_build__walk_filter filter;    /* .dockerignore for the context; NULL for --from */
	void *filter_payload;
	ib_ignore *excl;          /* --exclude, or NULL */
	ib_strlist matches;       /* every matched source, relative to srcfd */
	ib_strlist patterns;      /* each match's --parents include pattern ("" for none) */
	ib_strlist urls;          /* ADD <url>: directory, file name pairs (fetch.c) */
	ib_strlist gits;          /* ADD <git>: checkout directory, subdir pairs (git.c) */
	ib_strlist heredocs;      /* name, text pairs */
	ib_buf dest;              /* the destination, absolute (WORKDIR applied) */
	int dest_slash;           /* the destination as written ends with "/" */
	ib_buf shown;             /* the history text: "COPY a b /dest # buildkit" */
} ib_build__inputs;

/*
 * The filter of a copy or hash walk below one matched source: the source's
 * own filter, then --exclude, then its --parents pattern (compiled into
 * *incl, freed by the caller).
 */
typedef struct {
	ib_build__walk_filter inner;
	void *inner_payload;
	const ib_ignore *excl; /* --exclude, or NULL */
	const ib_ignore *incl; /* --parents' pattern, or NULL */
	const char *base;      /* the matched source, scoped ("." for the root) */
} ib_build__copy_filter;
int ib_build__source_filter(ib_build__copy_filter *f, ib_ignore **incl, const ib_build__inputs *si, size_t i);
int ib_build__copy_filter_fn(void *payload, const char *rel, int is_dir);

/*
 * Resolve the inputs of COPY/ADD `in` into `si` (initialised here) and add
 * them, their content included, to the key `k`. Dispose of `si` whatever
 * the result.
 */
int ib_build__inputs_resolve(ib_build__inputs *si, builder *b, stage_state *s, const ib_instruction *in,
			     size_t stage_index, keyer *k);
void ib_build__inputs_dispose(builder *b, ib_build__inputs *si);

/* COPY/ADD: copy the resolved inputs into a new layer of the stage. */
int ib_build__do_copy(builder *b, stage_state *s, const ib_instruction *in, const ib_build__inputs *si);

#endif
