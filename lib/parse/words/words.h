/* Internal to lib/parse/words: shared between the expansion files. */
#ifndef IB_PARSE_WORDS_WORDS_H
#define IB_PARSE_WORDS_WORDS_H

#include "imagebuild/parse.h"

/* Append a copy of `len` bytes of `s` to `a`. */
int ib_parse__strarray_add(ib_strarray *a, const char *s, size_t len);

/*
 * The patterns of `${v#p}`, `${v%p}` and `${v/p/r}`: `*` (any string) and
 * `?` (any character), `\` escapes `*`, `?` and `\`, and is dropped before
 * `}` and `/`; any other escape is an IB_ESYNTAX error. Like buildkit's
 * regular expressions, `*` and `?` do not match a newline.
 */
typedef struct ib_parse__shpattern ib_parse__shpattern;

int ib_parse__shpattern_new(ib_parse__shpattern **out, const char *pattern);
void ib_parse__shpattern_free(ib_parse__shpattern *p);

/*
 * Remove the shortest (greedy=0) or longest (greedy=1) prefix (suffix=0)
 * or suffix (suffix=1) of `value` that matches.
 */
int ib_parse__shpattern_trim(ib_buf *out, const ib_parse__shpattern *p, const char *value,
			     int suffix, int greedy);

/*
 * Replace the first (all=0) or every (all=1) leftmost-longest match in
 * `value` by `repl`. When `all` is set, `repl` is a Go regexp template
 * (`$0`/`${0}` the match, `$$` a dollar), as buildkit uses it. Stops with
 * IB_EUNSUPPORTED (error set) as soon as `out` grows past `limit` bytes:
 * every match copies `repl`, so nested replacements multiply.
 */
int ib_parse__shpattern_replace(ib_buf *out, const ib_parse__shpattern *p, const char *value,
				const char *repl, int all, size_t limit);

/* The IB_EUNSUPPORTED error of an expansion that grew past its limit. */
int ib_parse__expand_too_big(size_t limit);

#endif
