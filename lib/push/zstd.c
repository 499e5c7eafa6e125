/*
 * zstd of a local layer, for a push with compression "zstd": libzstd's
 * streaming compressor with its own worker threads (ZSTD_c_nbWorkers, one
 * per core, at most 8), reading the layer in 4 MiB pieces. libzstd's
 * multi-threaded output does not depend on the number of workers (as long
 * as there is at least one), so a variant is the same bytes wherever it is
 * made. One frame, with its content checksum.
 */
#include "push/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <zstd.h>

#define ZS_IN (4u << 20)

static int zs_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static int zs_error(const char *ds, size_t code)
{
	return ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "zstd of layer %s: %s", ds, ZSTD_getErrorName(code));
}

int ib_push__zstd_layer(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level)
{
	return ib_push__zstd_layer_tap(out, size, s, layer, level, NULL);
}

int ib_push__zstd_layer_tap(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level,
			    ib_push__tap *tap)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, layer);
	if (level == 0)
		level = IB_PUSH_ZSTD_DEFAULT_LEVEL;
	if (level < 1 || level > ZSTD_maxCLevel() || level > IB_PUSH_ZSTD_MAX_LEVEL)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "zstd level %d: give 1 to %d", level, ZSTD_maxCLevel());
	int fd;
	int rc = ib_store_blob_open(&fd, s, layer);
	if (rc < 0)
		return rc;
	ZSTD_CCtx *z = ZSTD_createCCtx();
	size_t out_cap = ZSTD_CStreamOutSize();
	unsigned char *in = ib_malloc(ZS_IN), *obuf = ib_malloc(out_cap);
	ib_blob_writer *w = NULL;
	if (!z || !in || !obuf) {
		rc = z ? IB_ERROR : ib_error_oom();
		goto out;
	}
	size_t e;
	if (ZSTD_isError(e = ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(e = ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(e = ZSTD_CCtx_setParameter(z, ZSTD_c_nbWorkers, zs_threads()))) {
		rc = zs_error(ds, e);
		goto out;
	}
	if ((rc = ib_store_blob_writer(&w, s)) < 0 || (rc = ib_push__tap_open(tap, w)) < 0)
		goto out;
	for (int eof = 0; rc == 0 && !eof;) {
		size_t got = 0;
		while (got < ZS_IN) {
			ssize_t n = read(fd, in + got, ZS_IN - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = ib_error_set_os(IB_LAYER_PUSH, "zstd of layer %s: read", ds);
				break;
			}
			if (n == 0) {
				eof = 1;
				break;
			}
			got += (size_t)n;
		}
		if (rc < 0)
			break;
		ZSTD_inBuffer ib = { in, got, 0 };
		ZSTD_EndDirective mode = eof ? ZSTD_e_end : ZSTD_e_continue;
		for (;;) {
			ZSTD_outBuffer ob = { obuf, out_cap, 0 };
			size_t left = ZSTD_compressStream2(z, &ob, &ib, mode);
			if (ZSTD_isError(left)) {
				rc = zs_error(ds, left);
				break;
			}
			if (ob.pos && ((rc = ib_blob_writer_write(w, obuf, ob.pos)) < 0 ||
				       (rc = ib_push__tap_wrote(tap, ob.pos)) < 0))
				break;
			/* ZSTD_e_end: done when nothing is left to flush; ZSTD_e_continue: when the input is taken */
			if (eof ? left == 0 : ib.pos == ib.size)
				break;
		}
	}
	if (rc == 0) {
		rc = ib_blob_writer_commit(w, out, size, NULL);
		w = NULL;
	}
out:
	if (w)
		ib_blob_writer_abort(w);
	ZSTD_freeCCtx(z);
	free(in);
	free(obuf);
	close(fd);
	return rc;
}
