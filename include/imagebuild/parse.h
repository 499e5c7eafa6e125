/*
 * parse.h: Dockerfile syntax (directives, continuations, comments, heredocs,
 * JSON and shell forms, flags), typed instructions, word expansion and
 * .dockerignore patterns. Nothing here touches the file system or a store.
 */
#ifndef IMAGEBUILD_PARSE_H
#define IMAGEBUILD_PARSE_H

#include "common.h"
#include "errors.h"
#include "types.h"
#include "buffer.h"

IB_BEGIN_DECL

/* ==== Dockerfiles: the syntax tree and typed instructions ==== */

/*
 * Two levels, as in BuildKit:
 *
 * 1. The syntax tree (ib_dockerfile_parse): bytes to a list of ib_node, one
 *    per instruction, with its keyword, flags, arguments, JSON-or-shell
 *    form, heredocs and source lines. Permissive about meaning (unknown
 *    instructions or flags, no FROM: all fine), strict about syntax (parser
 *    directives, continuations, heredocs, line length, JSON arrays of
 *    non-strings).
 * 2. The typed instructions (ib_instructions_parse): the tree becomes
 *    meta-ARGs and stages of ib_instruction, refusing what has no meaning
 *    (unknown instruction or flag, bad flag value, instruction before the
 *    first FROM, wrong argument count, ...).
 *
 * Nothing is variable-expanded here: values are the raw words of the
 * Dockerfile (quotes and escapes included where the Dockerfile form keeps
 * them, e.g. ENV/LABEL/ARG values and shell-form COPY sources); the build
 * expands and unquotes them later with each step's environment.
 *
 * Errors are IB_ESYNTAX with "<filename>:<line>: <reason>" messages.
 * Every string is UTF-8 and NUL-terminated; the tree's arguments may also
 * contain NUL (from a JSON "\u0000"), hence the length accessors.
 */

/** Opaque node of the syntax tree: one instruction (borrowed from its ib_dockerfile). */
typedef struct ib_node ib_node;
/** Opaque result of the typed level (see ib_instructions_parse). */
typedef struct ib_instructions ib_instructions;

#define IB_PARSE_OPTIONS_VERSION 1

/** Options of the parsing functions. NULL means all defaults. */
typedef struct {
	unsigned int version;  /* IB_PARSE_OPTIONS_VERSION */
	const char *filename;  /* named in error messages; NULL means "Dockerfile" */
} ib_parse_options;

#define IB_PARSE_OPTIONS_INIT { IB_PARSE_OPTIONS_VERSION, NULL }

/** Initialise `opts` for `version` (for bindings). IB_EINVALID for an unknown version. */
IB_EXTERN(int) ib_parse_options_init(ib_parse_options *opts, unsigned int version);

/**
 * A heredoc of RUN, COPY or ADD (`<<EOF`, `<<-EOF`, `3<<'EOF'`). Owned by
 * its parent. The content is raw: the body lines with their line endings,
 * leading TABs NOT removed even when `chomp` is set (the builder does it,
 * see ib_heredoc_chomp()), variables not expanded.
 */
typedef struct {
	const char *name;      /* the delimiter, unquoted: EOF */
	const char *content;   /* the body, NUL-terminated */
	/** The length of `content`, in bytes. */
	size_t content_len;
	unsigned int fd;       /* 3 for `3<<EOF`, else 0 */
	int expand;            /* 0 when part of the delimiter was quoted */
	int chomp;             /* 1 for `<<-` */
} ib_heredoc;

/** A parser warning (e.g. an empty continuation line). */
typedef struct {
	int line;              /* the last line of the instruction it is about */
	/** What is wrong. */
	const char *message;
} ib_parse_warning;

/**
 * Parse `len` bytes of a Dockerfile into its syntax tree. On success *out
 * is the caller's, freed with ib_dockerfile_free(). IB_ESYNTAX on a syntax
 * error (message "Dockerfile:<line>: <reason>"), including a file without
 * any instruction.
 */
IB_EXTERN(int) ib_dockerfile_parse(ib_dockerfile **out, const char *buf, size_t len,
				   const ib_parse_options *opts);

/** Free a parsed Dockerfile and every node of it. NULL is fine. */
IB_EXTERN(void) ib_dockerfile_free(ib_dockerfile *df);

/** Number of top-level instructions (>= 1 after a successful parse). */
IB_EXTERN(size_t) ib_dockerfile_node_count(const ib_dockerfile *df);
/** The i-th top-level instruction, or NULL when out of range. Borrowed. */
IB_EXTERN(const ib_node *) ib_dockerfile_node(const ib_dockerfile *df, size_t i);
/** First line of the first instruction and last line of the last one (1-based). */
IB_EXTERN(int) ib_dockerfile_start_line(const ib_dockerfile *df);
/** Last line of the last instruction (1-based), heredoc bodies included. */
IB_EXTERN(int) ib_dockerfile_end_line(const ib_dockerfile *df);
/** The escape character in effect: '\\' or '`'. */
IB_EXTERN(char) ib_dockerfile_escape(const ib_dockerfile *df);
/** Value of a parser directive ("syntax", "escape", "check"), or NULL when absent. */
IB_EXTERN(const char *) ib_dockerfile_directive(const ib_dockerfile *df, const char *name);
/** Number of warnings and the i-th one (NULL when out of range). */
IB_EXTERN(size_t) ib_dockerfile_warning_count(const ib_dockerfile *df);
/** The i-th parser warning (borrowed), or NULL when out of range. */
IB_EXTERN(const ib_parse_warning *) ib_dockerfile_warning(const ib_dockerfile *df, size_t i);

/**
 * The BuildKit test dump of the tree in `out`: one line
 * "(<instruction>)\n" per instruction, e.g. `(copy ["--chown=1:1"] "a" "/b/")`.
 */
IB_EXTERN(int) ib_dockerfile_dump(ib_buf *out, const ib_dockerfile *df);
/** The dump of one node, without the parentheses and newline. */
IB_EXTERN(int) ib_node_dump(ib_buf *out, const ib_node *node);

/** The keyword, lower-cased: "run"; as written in the Dockerfile: "Run". */
IB_EXTERN(const char *) ib_node_keyword(const ib_node *node);
/** The keyword as written in the Dockerfile: "Run" (borrowed). */
IB_EXTERN(const char *) ib_node_keyword_raw(const ib_node *node);
/** The whole logical line (continuations joined), for ONBUILD's nested node the trigger text. */
IB_EXTERN(const char *) ib_node_original(const ib_node *node);
/** The flags, as written without quotes: "--mount=type=cache,target=/x". */
IB_EXTERN(size_t) ib_node_flag_count(const ib_node *node);
/** The i-th flag, as written without quotes (borrowed), or NULL when out of range. */
IB_EXTERN(const char *) ib_node_flag(const ib_node *node, size_t i);
/**
 * The argument strings (see the BuildKit dump for what each instruction
 * gets). `len`, when not NULL, receives the length (arguments may hold NUL).
 */
IB_EXTERN(size_t) ib_node_arg_count(const ib_node *node);
/** The i-th argument (borrowed), or NULL when out of range; `len` (may be NULL) gets its length. */
IB_EXTERN(const char *) ib_node_arg(const ib_node *node, size_t i, size_t *len);
/** 1 when the arguments came from a JSON array (exec form). */
IB_EXTERN(int) ib_node_is_json(const ib_node *node);
/** ONBUILD's instruction, else NULL. */
IB_EXTERN(const ib_node *) ib_node_nested(const ib_node *node);
/** Heredocs of the instruction (of ONBUILD's trigger for ONBUILD), in order. */
IB_EXTERN(size_t) ib_node_heredoc_count(const ib_node *node);
/** The i-th heredoc (borrowed from the node), or NULL when out of range. */
IB_EXTERN(const ib_heredoc *) ib_node_heredoc(const ib_node *node, size_t i);
/**
 * The comment lines before the instruction, since the previous one, as
 * BuildKit keeps them: the text after the line's first byte, trimmed
 * (`# hello` gives "hello"); a bare `#` forgets the earlier ones; parser
 * directives and comments inside a continuation are not included.
 */
IB_EXTERN(size_t) ib_node_comment_count(const ib_node *node);
/** The i-th comment line before the instruction (borrowed), or NULL when out of range. */
IB_EXTERN(const char *) ib_node_comment(const ib_node *node, size_t i);
/** First and last physical line (1-based), heredoc bodies included. */
IB_EXTERN(int) ib_node_start_line(const ib_node *node);
/** Last physical line of the instruction (1-based), heredoc bodies included. */
IB_EXTERN(int) ib_node_end_line(const ib_node *node);

/** The content with leading TABs of every line removed (what `<<-` asks for) in `out`. */
IB_EXTERN(int) ib_heredoc_chomp(ib_buf *out, const ib_heredoc *heredoc);

/* ---- typed instructions ---- */

/** The instructions of the Dockerfile reference. */
typedef enum {
	IB_INSTR_FROM = 0,
	IB_INSTR_RUN,
	IB_INSTR_CMD,
	IB_INSTR_ENTRYPOINT,
	IB_INSTR_SHELL,
	IB_INSTR_LABEL,
	IB_INSTR_MAINTAINER,
	IB_INSTR_EXPOSE,
	IB_INSTR_ENV,
	IB_INSTR_ADD,
	IB_INSTR_COPY,
	IB_INSTR_VOLUME,
	IB_INSTR_USER,
	IB_INSTR_WORKDIR,
	IB_INSTR_ARG,
	IB_INSTR_ONBUILD,
	IB_INSTR_STOPSIGNAL,
	IB_INSTR_HEALTHCHECK
} ib_instruction_kind;

/** The upper-case name of a kind ("RUN"), or NULL for an invalid kind. */
IB_EXTERN(const char *) ib_instruction_kind_name(ib_instruction_kind kind);

/** A list of strings (borrowed). */
typedef struct {
	/** The strings, `count` of them (borrowed). */
	const char *const *items;
	/** The number of `items`. */
	size_t count;
} ib_instr_strings;

/** A key and its raw value (ENV, LABEL): quotes and escapes still in `value`. */
typedef struct {
	/** The key (raw). */
	const char *key;
	/** The value, raw: quotes and escapes kept. */
	const char *value;
} ib_instr_kv;

/** One ARG declaration: `name` or `name=default` (default raw, quotes kept). */
typedef struct {
	/** The name of the ARG. */
	const char *name;
	const char *default_value;   /* NULL when has_default is 0 */
	/** Non-zero when the ARG gives a default (`name=value`). */
	int has_default;
} ib_instr_arg;

/** RUN --mount types. */
typedef enum {
	IB_RUN_MOUNT_BIND = 0,
	IB_RUN_MOUNT_CACHE,
	IB_RUN_MOUNT_TMPFS,
	IB_RUN_MOUNT_SECRET,
	IB_RUN_MOUNT_SSH
} ib_run_mount_type;

/**
 * One RUN --mount, parsed from its CSV form (values raw, not expanded; NULL
 * when the key was absent). Library-allocated: fields may be appended.
 */
typedef struct {
	const char *raw;       /* the text after --mount= */
	ib_run_mount_type type;    /* type=, default bind */
	const char *target;    /* target= / dst= / destination= */
	const char *source;    /* source= / src= */
	const char *from;      /* from= (a stage or image) */
	const char *id;        /* id= (cache, secret, ssh) */
	const char *sharing;   /* sharing=shared|private|locked (cache) */
	const char *mode;      /* mode= (octal, as written) */
	const char *uid;       /* uid= */
	const char *gid;       /* gid= */
	const char *size;      /* size= (tmpfs) */
	const char *env;       /* env= (secret) */
	int readonly;          /* ro/readonly, rw/readwrite; default 1 for bind, secret, ssh */
	int required;          /* required (secret, ssh) */
} ib_run_mount;

/** RUN. */
typedef struct {
	ib_instr_strings args;  /* exec form: argv; shell form: one string, the command line */
	/** Non-zero for the exec (JSON) form. */
	int json;
	const char *network;    /* none|default|host, or NULL */
	const char *security;   /* sandbox|insecure, or NULL */
} ib_instr_run;

/** CMD, ENTRYPOINT, SHELL. */
typedef struct {
	ib_instr_strings args;  /* exec form: argv; shell form: one string (empty: none) */
	/** Non-zero for the exec (JSON) form. */
	int json;
} ib_instr_cmd;

/** ADD and COPY. */
typedef struct {
	ib_instr_strings sources;   /* paths/URLs (not heredocs), raw words */
	/** The destination, raw. */
	const char *dest;
	/** Non-zero for the exec (JSON) form. */
	int json;
	const char *from;           /* COPY --from */
	/** --chown, raw, or NULL. */
	const char *chown;
	/** --chmod, raw, or NULL. */
	const char *chmod;
	const char *checksum;       /* ADD --checksum */
	/** Non-zero for --link. */
	int link;
	int parents;                /* COPY --parents */
	int keep_git_dir;           /* ADD --keep-git-dir */
	ib_instr_strings excludes;  /* --exclude, repeatable */
} ib_instr_copy;

/** HEALTHCHECK. Durations in nanoseconds; 0 means "not set" (inherit). */
typedef struct {
	int none;                   /* HEALTHCHECK NONE */
	ib_instr_strings test;      /* {"CMD", argv...} or {"CMD-SHELL", line} */
	/** --interval, in nanoseconds. */
	int64_t interval;
	/** --timeout, in nanoseconds. */
	int64_t timeout;
	/** --start-period, in nanoseconds. */
	int64_t start_period;
	/** --start-interval, in nanoseconds. */
	int64_t start_interval;
	/** --retries; 0: not set. */
	int retries;
} ib_instr_healthcheck;

/** FROM. */
typedef struct {
	const char *image;          /* raw, may hold ${VARS} */
	const char *name;           /* AS name, lower-cased, or NULL */
	const char *platform;       /* --platform or NULL */
} ib_instr_from;

/**
 * A typed instruction. Library-allocated and borrowed: fields may be
 * appended in later versions, so never allocate or copy one by value.
 * Only the member of `u` that matches `kind` is meaningful.
 */
typedef struct {
	/** Which instruction; says which member of `u` is meaningful. */
	ib_instruction_kind kind;
	int line;                   /* first physical line */
	/** Last physical line. */
	int end_line;
	const char *original;       /* the logical line */
	const ib_node *node;        /* its syntax node */
	/** The instruction's arguments, by kind. */
	union {
		ib_instr_from from;
		ib_instr_run run;
		ib_instr_cmd cmd;               /* CMD, ENTRYPOINT, SHELL */
		ib_instr_copy copy;             /* ADD, COPY */
		ib_instr_strings list;          /* EXPOSE ports, VOLUME paths */
		const char *value;              /* USER, WORKDIR, STOPSIGNAL, MAINTAINER */
		struct {
			const char *trigger;    /* the instruction text: "RUN make" */
			const char *keyword;    /* its keyword, upper-cased: "RUN" */
		} onbuild;                      /* ONBUILD */
		ib_instr_healthcheck healthcheck;
	} u;
} ib_instruction;

/*
 * The arrays of an instruction, by accessor: their element structs may grow
 * in later versions, so they are never indexed by the caller. Each count is
 * 0 and each getter NULL for another kind or an index out of range.
 */
/** RUN: the number of its --mount flags. */
IB_EXTERN(size_t) ib_instruction_mount_count(const ib_instruction *in);
/** RUN: its i-th --mount (borrowed), or NULL. */
IB_EXTERN(const ib_run_mount *) ib_instruction_mount(const ib_instruction *in, size_t i);
/** RUN, COPY, ADD: the number of heredocs (COPY/ADD: the sources given as heredocs, in order). */
IB_EXTERN(size_t) ib_instruction_heredoc_count(const ib_instruction *in);
/** RUN, COPY, ADD: the i-th heredoc (borrowed), or NULL. */
IB_EXTERN(const ib_heredoc *) ib_instruction_heredoc(const ib_instruction *in, size_t i);
/** ENV, LABEL: the number of key/value pairs. */
IB_EXTERN(size_t) ib_instruction_kv_count(const ib_instruction *in);
/** ENV, LABEL: the i-th pair (borrowed), or NULL. */
IB_EXTERN(const ib_instr_kv *) ib_instruction_kv(const ib_instruction *in, size_t i);
/** ARG: the number of declarations. */
IB_EXTERN(size_t) ib_instruction_arg_count(const ib_instruction *in);
/** ARG: the i-th declaration (borrowed), or NULL. */
IB_EXTERN(const ib_instr_arg *) ib_instruction_arg(const ib_instruction *in, size_t i);

/** A build stage: its FROM and the instructions after it. */
typedef struct {
	/** The stage's index in the Dockerfile (0 first). */
	size_t index;
	const char *base;           /* FROM image, raw */
	const char *name;           /* AS name (lower-cased) or NULL */
	const char *platform;       /* --platform or NULL */
	int line;                   /* line of its FROM */
	/** Its FROM instruction. */
	const ib_instruction *from;
	const ib_instruction *const *instructions; /* after FROM, in order */
	/** The number of `instructions`. */
	size_t instruction_count;
} ib_stage;

/**
 * Turn a syntax tree into meta-ARGs and stages. *out is the caller's
 * (ib_instructions_free) and borrows from `df`: free it before `df`.
 * IB_ESYNTAX with "<file>:<line>: <reason>" for an instruction that has no
 * meaning. A Dockerfile without FROM gives zero stages (only meta-ARGs).
 */
IB_EXTERN(int) ib_instructions_parse(ib_instructions **out, const ib_dockerfile *df);
/** Free the typed instructions (before the ib_dockerfile they borrow from). NULL is fine. */
IB_EXTERN(void) ib_instructions_free(ib_instructions *ins);

/** ARG instructions before the first FROM. */
IB_EXTERN(size_t) ib_instructions_meta_arg_count(const ib_instructions *ins);
/** The i-th meta ARG instruction (borrowed), or NULL when out of range. */
IB_EXTERN(const ib_instruction *) ib_instructions_meta_arg(const ib_instructions *ins, size_t i);
/** The stages, in file order (NULL when out of range). */
IB_EXTERN(size_t) ib_instructions_stage_count(const ib_instructions *ins);
/** The i-th stage in file order (borrowed), or NULL when out of range. */
IB_EXTERN(const ib_stage *) ib_instructions_stage(const ib_instructions *ins, size_t i);
/** The stage named `name` (case-insensitive), or NULL. */
IB_EXTERN(const ib_stage *) ib_instructions_stage_by_name(const ib_instructions *ins,
							  const char *name);

/**
 * Parse one instruction on its own, e.g. `CMD ["cat","/app.txt"]` for
 * `commit -c`. FROM is accepted too. *out is the caller's
 * (ib_instruction_free) and owns everything it points to.
 */
IB_EXTERN(int) ib_instruction_parse_single(ib_instruction **out, const char *text,
					   const ib_parse_options *opts);
/** Free an instruction made by ib_instruction_parse_single(). NULL is fine. */
IB_EXTERN(void) ib_instruction_free(ib_instruction *instr);

/**
 * Parse a Go duration ("1m30s", "300ms", "1.5h") into nanoseconds, as
 * HEALTHCHECK flags use. IB_EINVALID on a malformed value.
 */
IB_EXTERN(int) ib_parse_duration(int64_t *out_ns, const char *text);

/* ==== word expansion ==== */

/*
 * Shell-like word expansion as buildkit does it for Dockerfile instructions
 * (ENV, ARG, COPY, WORKDIR, ... are expanded later by the build, with each
 * step's environment): `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`,
 * `${v+w}`, `${v:?msg}`, `${v?msg}`, `${v#p}`, `${v##p}`, `${v%p}`,
 * `${v%%p}`, `${v/p/r}`, `${v//p/r}`; single and double quotes; the escape
 * character (`\` or the backtick of `# escape=`). The word after a modifier
 * is itself expanded. Unset variables expand to nothing. Names are Unicode
 * letters, digits and `_`; `$0`..`$999`, `$@ $* $# $? $- $$ $!` are
 * accepted and never set. The functions keep no state: any thread may call
 * them at any time.
 *
 * A result may be at most IB_EXPAND_MAX_RESULT bytes longer than the word:
 * nested replacements (`${v//?/${v//?/...}}`) multiply, and past that the
 * expansion stops with IB_EUNSUPPORTED instead of exhausting memory. No
 * ARG_MAX-bound command line or environment entry (128 KiB on Linux) comes
 * near it.
 */
#define IB_EXPAND_MAX_RESULT (1u << 20)

/* ib_strarray (a list of library-owned strings) is in buffer.h, shared by
 * every layer, and implemented in lib/util/buffer.c: do not redeclare it. */

/**
 * Told about every variable the expansion looks up, in order, with
 * `found` 1 when the environment has it (even empty). The build uses it to
 * warn about build arguments nobody used. A non-zero return stops the
 * expansion, which then returns exactly that value (the callback contract
 * of common.h). `name` is borrowed.
 */
typedef int (*ib_expand_lookup_cb)(const char *name, int found, void *payload);

/** Flags of ib_expand_options. Zero is the normal, evaluating mode. */
typedef enum {
	/** Leave references to unset variables as written (`$x`, `${x:-y}`). */
	IB_EXPAND_KEEP_UNSET = 1u << 0,
	/** Keep quote characters in the result (quotes still group). */
	IB_EXPAND_RAW_QUOTES = 1u << 1,
	/** Keep escape characters in the result (they still protect). */
	IB_EXPAND_RAW_ESCAPES = 1u << 2
} ib_expand_flag;

#define IB_EXPAND_OPTIONS_VERSION 1

/** How to expand. NULL options mean an empty environment and `\`. */
typedef struct {
	unsigned int version;     /* IB_EXPAND_OPTIONS_VERSION */
	/**
	 * The environment: NULL-terminated "NAME=VALUE" strings (an entry
	 * without `=` is NAME with an empty value; a later entry for the same
	 * NAME wins). NULL is an empty environment. Names are case-sensitive.
	 */
	const char *const *env;
	/** The escape character: `\\` or `` ` ``; 0 means `\\`. */
	char escape;
	unsigned int flags;       /* ib_expand_flag bits */
	ib_expand_lookup_cb lookup; /* optional */
	void *payload;            /* passed to `lookup` */
} ib_expand_options;

#define IB_EXPAND_OPTIONS_INIT { IB_EXPAND_OPTIONS_VERSION, NULL, 0, 0, NULL, NULL }

/** Initialise `opts` like IB_EXPAND_OPTIONS_INIT (for bindings). */
IB_EXTERN(int) ib_expand_options_init(ib_expand_options *opts, unsigned int version);

/**
 * Expand `word` into one string (quotes removed, white space kept): what a
 * single-value instruction (WORKDIR, USER, ENV values...) sees. `out` is
 * replaced on success and untouched on failure.
 *
 * Errors: IB_ESYNTAX for malformed input (unterminated quote, `${x`, `${}`,
 * an unsupported modifier such as `${x:=y}`, a bad pattern), IB_EINVALID
 * for a `${x?msg}`/`${x:?msg}` whose variable is unset (or empty), with
 * "x: msg" in the message; IB_EUNSUPPORTED for a result past
 * IB_EXPAND_MAX_RESULT; or the lookup callback's value.
 */
IB_EXTERN(int) ib_expand_word(ib_buf *out, const char *word, const ib_expand_options *opts);

/**
 * Expand `word` and split it into words, for instructions that take a list:
 * unquoted white space (Unicode) separates words, also white space that
 * came out of an unquoted variable; quoted or escaped white space does not.
 * Empty words are dropped. `out` is replaced on success.
 */
IB_EXTERN(int) ib_expand_words(ib_strarray *out, const char *word, const ib_expand_options *opts);

/* ==== .dockerignore ==== */

/*
 * .dockerignore patterns with Docker's rules (moby/patternmatcher): `*`
 * and `?` never match `/`, `**` matches any number of path components,
 * `[...]` classes (`^` negates, ranges by code point), `\` escapes; a
 * pattern also excludes everything below a directory it matches; a later
 * `!pattern` re-includes what earlier patterns excluded. Paths are relative
 * to the context root, slash-separated, compared byte-wise. An ib_ignore
 * does not change once made, so threads may share it for matching.
 */

/**
 * Read a .dockerignore file into its pattern list (Docker's ReadAll): drop
 * a UTF-8 BOM, lines whose first byte is `#`, white space around each line
 * and empty lines; clean each pattern (`./a//b/` is `a/b`) and drop one
 * leading `/`; keep a leading `!`. Does not validate the patterns.
 */
IB_EXTERN(int) ib_ignore_read(ib_strarray *out, const char *buf, size_t len);

/**
 * Compile `count` patterns (as written in a .dockerignore line or given by
 * a caller; each is trimmed and cleaned, empty ones are skipped).
 * IB_ESYNTAX for a lone `!` or an invalid pattern (`[`, `a\`, `[]a]`...),
 * naming the pattern. Free the result with ib_ignore_free().
 */
IB_EXTERN(int) ib_ignore_new(ib_ignore **out, const char *const *patterns, size_t count);

/**
 * ib_ignore_read() + ib_ignore_new(). `filename` (may be NULL) names the
 * file in error messages.
 */
IB_EXTERN(int) ib_ignore_parse(ib_ignore **out, const char *buf, size_t len, const char *filename);

/**
 * Whether `path` (relative to the context root, slash-separated, e.g.
 * "src/main.c") is excluded: 1 excluded, 0 kept (Docker's
 * MatchesOrParentMatches: a path is also excluded when one of its parent
 * directories is, unless a later exception matches it). The path is used
 * as given, not cleaned.
 */
IB_EXTERN(int) ib_ignore_matches(const ib_ignore *ignore, const char *path);

/**
 * For a context walker that met an excluded directory `dir`: 1 when an
 * exception pattern could re-include something below it, so the walker
 * must descend (and send `dir` itself only if something below it is kept);
 * 0 when the whole subtree can be skipped. Same decision as buildkit's
 * file-system walker (fsutil).
 */
IB_EXTERN(int) ib_ignore_descend(const ib_ignore *ignore, const char *dir);

/** The number of compiled patterns. */
IB_EXTERN(size_t) ib_ignore_count(const ib_ignore *ignore);

/**
 * The i-th compiled pattern (cleaned, without its `!`), borrowed; NULL if
 * out of range. `*exception` (may be NULL) is set to 1 for a `!` pattern.
 */
IB_EXTERN(const char *) ib_ignore_pattern(const ib_ignore *ignore, size_t i, int *exception);

/** Free a compiled pattern list. NULL is fine. */
IB_EXTERN(void) ib_ignore_free(ib_ignore *ignore);

/**
 * Which ignore files apply to a build with the Dockerfile at
 * `dockerfile_path`, best first: `<dockerfile_path>.dockerignore` (next to
 * the Dockerfile, e.g. "docker/app.Dockerfile.dockerignore"), then
 * ".dockerignore" at the root of the context. The caller reads the first
 * that exists (and only that one). For an empty path or "-" (Dockerfile
 * from stdin) only ".dockerignore". No file system access.
 */
IB_EXTERN(int) ib_ignore_candidates(ib_strarray *out, const char *dockerfile_path);

IB_END_DECL

#endif
