/*
 * Internals of the Dockerfile half of the parse layer: the arena that owns
 * every string of a parsed Dockerfile, the raw tree, UTF-8 and white-space
 * helpers, the raw-mode shell lexer used to find heredocs, the JSON array
 * reader and Go-style quoting used by the dump.
 */
#ifndef IB_PARSE_DOCKERFILE_DF_H
#define IB_PARSE_DOCKERFILE_DF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include "imagebuild/parse.h"
#include "util/buf.h"

/* ---- arena: many small allocations freed at once ---- */
typedef struct ib_parse__arena_chunk ib_parse__arena_chunk;
typedef struct {
	ib_parse__arena_chunk *head;
} ib_parse__arena;

void *ib_parse__alloc(ib_parse__arena *a, size_t n);                       /* zeroed; NULL + OOM error */
char *ib_parse__strndup(ib_parse__arena *a, const char *s, size_t n);     /* NUL-terminated copy */
char *ib_parse__strdup(ib_parse__arena *a, const char *s);
void ib_parse__arena_free(ib_parse__arena *a);

/* A growable array of pointers living in an arena (old storage is simply abandoned). */
typedef struct {
	void **items;
	size_t count, cap;
} ib_parse__ptrvec;
int ib_parse__vec_push(ib_parse__arena *a, ib_parse__ptrvec *v, void *item);

/* A byte string that may contain NUL (JSON "\u0000"); ptr is NUL-terminated too. */
typedef struct {
	const char *ptr;
	size_t len;
} ib_parse__dfstr;

/*
 * ---- the raw tree ----
 * Known, deliberate differences from BuildKit (none visible in the corpus):
 * keywords are lower-cased ASCII-only; invalid UTF-8 is kept as bytes
 * instead of becoming U+FFFD (except inside JSON strings, as Go does);
 * strconv.IsPrint for non-ASCII is approximated (see util.c).
 */
struct ib_node {
	const char *keyword;      /* lower-cased (ASCII) */
	const char *keyword_raw;  /* as written */
	const char *original;     /* the logical line (nested: the trigger text) */
	const char **flags;
	size_t nflags;
	ib_parse__dfstr *args;
	size_t nargs;
	struct ib_node *nested;   /* ONBUILD's instruction */
	int json;
	ib_heredoc *heredocs;
	size_t nheredocs;
	const char **comments;    /* comment lines before it (BuildKit's PrevComment) */
	size_t ncomments;
	int start_line, end_line;
};

struct ib_dockerfile {
	ib_parse__arena arena;
	const char *filename;
	char escape;
	const char *syntax;       /* directive values or NULL */
	const char *check;
	ib_node **nodes;
	size_t nnodes;
	ib_parse_warning *warnings;
	size_t nwarnings;
	int start_line, end_line;
};

/* ---- character helpers ---- */
/* Decode one UTF-8 character at s (len > 0); invalid bytes give -1 with width 1. */
int ib_parse__utf8_decode(const char *s, size_t len, int *width);
bool ib_parse__is_space(int rune);     /* Go unicode.IsSpace */
bool ib_parse__is_letter(int rune);    /* approximation of unicode.IsLetter */
bool ib_parse__is_digit(int rune);     /* approximation of unicode.IsDigit */
/* Length of the Unicode white space at the start / end of s[0..len). */
size_t ib_parse__lspace(const char *s, size_t len);
size_t ib_parse__rspace(const char *s, size_t len);
static inline bool ib_parse__is_ascii_blank(char c) /* [\t\v\f\r ] */
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* Go strconv.Quote of s[0..len) appended to out. */
int ib_parse__go_quote(ib_buf *out, const char *s, size_t len);

/* ---- JSON ---- */
/*
 * Parse `s` as a strict JSON array of strings (Go encoding/json rules).
 * Returns 1 and fills `out` and `n` (arena) when it is one; 0 when it is not JSON
 * (the caller falls back to the shell form); IB_ESYNTAX-style -2 when it is
 * valid JSON with a non-string element; IB_ERROR on OOM.
 */
#define IB_PARSE__JSON_NOT_STRINGS (-2)
int ib_parse__json_strings(ib_parse__arena *a, const char *s, size_t len, ib_parse__dfstr **out, size_t *n);

/* ---- raw shell lexer for heredocs (escape `\`, unset variables kept) ---- */
/* Split a line into raw words (quotes and escapes kept). <0 on lexer error (no words). */
int ib_parse__lex_raw_words(ib_parse__ptrvec *out, ib_parse__arena *a, const char *s, size_t len);
/*
 * The single-word heredoc test (buildkit ParseHeredoc). Returns 1 and fills
 * *out (name in the arena) for a heredoc, 0 for none, <0 for an error
 * (unbalanced quote; the error is set).
 */
int ib_parse__heredoc_word(ib_heredoc *out, ib_parse__arena *a, const char *word);
/* The heredocs of a whole instruction line, in order: 0 on success. */
int ib_parse__heredocs_from_line(ib_heredoc **out, size_t *n, ib_parse__arena *a,
				  const char *line, size_t len);

/* ---- node building (nodes.c) ---- */
typedef struct {
	ib_parse__arena *arena;
	char escape;
	const char *filename;
	int line;            /* for error messages */
} ib_parse__node_ctx;
/* Build a node from a logical line (buildkit newNodeFromLine). */
int ib_parse__node_from_line(ib_node **out, ib_parse__node_ctx *ctx, const char *line, size_t len);
bool ib_parse__node_can_heredoc(const ib_node *n);

/* ---- parse errors ---- */
int ib_parse__syntax_error(const char *filename, int line, const char *fmt, ...) IB_PRINTF(3, 4);

#endif
