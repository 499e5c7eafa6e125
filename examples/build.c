/*
 * build: build a Dockerfile with a live progress display.
 *
 *   build CONTEXT TAG      (the store: $IMAGEBUILD_ROOT, see ib_store_open())
 *
 * The progress callback draws one status line that changes in place on a
 * terminal (the step being run, its last output line, bytes moved) and
 * prints each finished step above it. Ctrl-C cancels the build cleanly.
 */
#include <imagebuild.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int cancelled;

static void on_sigint(int sig)
{
	(void)sig;
	cancelled = 1;
}

struct display {
	int tty;             /* redraw the status line in place */
	char step[256];      /* the step running: "[2/3] RUN make" */
	time_t started;
	unsigned steps, cached;
};

static void status(struct display *d, const char *detail)
{
	if (!d->tty)
		return;
	printf("\r\033[K%.60s (%lds) %.40s", d->step, (long)(time(NULL) - d->started), detail);
	fflush(stdout);
}

static int progress(const ib_progress *p, void *payload)
{
	struct display *d = payload;
	char bytes[64];

	switch (p->kind) {
	case IB_PROGRESS_STEP:              /* a step starts */
		snprintf(d->step, sizeof d->step, "%s %s", p->id, p->text);
		d->started = time(NULL);
		if (d->tty)
			status(d, "");
		else
			printf("=> %s\n", d->step);
		break;
	case IB_PROGRESS_STEP_DONE:         /* a step ended (ran, or came from the cache) */
		d->steps++;
		d->cached += p->cached != 0;
		if (d->tty || p->cached)    /* on a terminal, the status line becomes the log */
			printf("%s=> %s%s %s\n", d->tty ? "\r\033[K" : "", p->cached ? "CACHED " : "",
			       p->id, p->text);
		break;
	case IB_PROGRESS_OUTPUT:            /* a line of RUN's output */
		if (d->tty)
			status(d, p->text);
		else
			printf("   %s\n", p->text);
		break;
	case IB_PROGRESS_BYTES:             /* a layer written, a blob pulled... */
		snprintf(bytes, sizeof bytes, "%s %llu/%llu bytes", p->id ? p->id : "",
			 (unsigned long long)p->current, (unsigned long long)p->total);
		status(d, bytes);
		break;
	default:                            /* kinds added later */
		break;
	}
	fflush(stdout);
	return 0;                           /* non-zero would stop the build */
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s CONTEXT TAG\n", argv[0]);
		return 2;
	}
	struct display d = { .tty = isatty(1) };
	const char *tags[] = { argv[2], NULL };
	ib_build_options opts = IB_BUILD_OPTIONS_INIT;
	opts.context = argv[1];
	opts.tags = tags;
	opts.callbacks.progress = progress;
	opts.callbacks.payload = &d;
	opts.cancel = &cancelled;           /* polled between steps and while RUN runs */
	signal(SIGINT, on_sigint);

	ib_store *store = NULL;
	ib_digest id;
	char hex[IB_DIGEST_STRLEN];
	int rc = ib_store_open(&store, NULL, NULL);
	if (rc == 0)
		rc = ib_build(&id, store, &opts);
	if (rc < 0) {
		fprintf(stderr, "%sbuild: %s\n", d.tty ? "\r\033[K" : "", ib_error_last()->message);
	} else {
		ib_digest_fmt(hex, &id);
		printf("%u steps (%u cached): %s tagged %s\n", d.steps, d.cached, hex, argv[2]);
	}
	ib_store_free(store);
	return rc < 0 ? 1 : 0;
}
