/*
 * --progress=auto|tty|plain|rawjson|quiet, as BuildKit (docker buildx build)
 * shows a build, for build, push and pull. Everything goes to stderr; stdout
 * keeps only the result.
 *
 *   tty      a live view redrawn in place: running steps with their timers,
 *            the last lines of a running RUN's output, cached steps collapsed
 *            (CACHED), transfer bars, and at the end the whole list with the
 *            total time ("[+] Building 3.2s (5/5) FINISHED").
 *   plain    BuildKit's plain lines: "#N [k/n] RUN ...", "#N 0.123 output",
 *            "#N DONE 1.2s", "#N CACHED" (push/pull: docker's "<id>: <state>").
 *   rawjson  the library's ib_progress events, one JSON object a line
 *            (version, kind, id, text, current, total, cached, plus elapsed
 *            seconds), and its log lines as {"kind":"log",...}.
 *   quiet    nothing (the command prints only its result).
 *   auto     tty when stderr is a terminal, else plain (for a build,
 *            $BUILDKIT_PROGRESS when set, as buildx takes it).
 * Public API only.
 */
#ifndef IMAGEBUILD_CLI_PROGRESS_H
#define IMAGEBUILD_CLI_PROGRESS_H

#include <imagebuild.h>

typedef enum {
	CLI_PROGRESS_AUTO = 0,
	CLI_PROGRESS_TTY,
	CLI_PROGRESS_PLAIN,
	CLI_PROGRESS_RAWJSON,
	CLI_PROGRESS_QUIET
} cli_progress_mode;

/* "auto", "tty", "plain", "rawjson", "quiet" → *mode; -1 (message printed, naming `cmd`) otherwise. */
int cli_progress_parse(const char *cmd, const char *value, cli_progress_mode *mode);

/* What the view shows: a build's steps, or a pull's or push's blobs. */
typedef enum { CLI_VIEW_BUILD, CLI_VIEW_PULL, CLI_VIEW_PUSH } cli_view;

typedef struct cli_progress cli_progress;

/*
 * Start showing progress in `mode` (AUTO resolved here): fills `cb`'s
 * progress, log and payload (cancel is left as it is). NULL when out of
 * memory (then cb gets the plain log callback only).
 */
cli_progress *cli_progress_start(cli_progress_mode mode, cli_view view, ib_callbacks *cb);

/* The resolved mode (QUIET for a NULL progress). */
cli_progress_mode cli_progress_mode_of(const cli_progress *p);

/*
 * A build succeeded: show BuildKit's "exporting to image" with the image id
 * (sha256:...) and the names (NULL-terminated, may be NULL) it was tagged.
 */
void cli_progress_exported(cli_progress *p, const char *image_id, const char *const *tags);

/*
 * Stop: `failed` marks the running steps ERROR with ib_error_last()'s
 * message (read before anything else runs). Draws the final view, stops the
 * timer, frees `p` (NULL is fine).
 */
void cli_progress_end(cli_progress *p, int failed);

#endif
