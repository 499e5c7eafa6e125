/*
 * A plain HTTP(S) download on the registry client (client.c), for the build
 * layer's `ADD <url>`: the same curl setup, http/https only (redirects
 * included, never https → http), bounded headers, the stall timeout
 * ($IMAGEBUILD_REGISTRY_STALL_TIMEOUT), retries of transient failures
 * from the start, progress and cancellation. No registry auth: nothing is
 * sent but the request.
 */
#ifndef IB_PUSH_HTTP_H
#define IB_PUSH_HTTP_H

#include "imagebuild/push.h"

#include <stdint.h>

typedef struct {
	/* attempts (0: 4) come from here; may be NULL */
	const ib_registry_options *registry;
	const char *what;          /* names the download in errors and progress: "ADD" */
	const char *progress_id;   /* IB_PROGRESS_BYTES "Downloading" every MiB (NULL: none) */
	uint64_t max_size;         /* the body's bound in bytes (0: none) */
	/* progress, retry log lines and cancel (the transfer stops with IB_EUSER); may be NULL */
	const ib_callbacks *callbacks;
	/* the body: write returns <0 to stop; reset (before each attempt) empties what was written */
	int (*write)(const void *data, size_t len, void *payload);
	int (*reset)(void *payload);
	void *payload;
} ib_push__http_request;

/* GET `url`; `*last_modified` (may be NULL) gets the Last-Modified time, or -1. */
int ib_push__http_get(const char *url, const ib_push__http_request *g, int64_t *last_modified);

#endif
