/*
 * zstd of a local layer, for a push with compression "zstd": libzstd's
 * streaming compressor with its own worker threads (ZSTD_c_nbWorkers, one
 * per core, at most 8), reading the layer in 4 MiB pieces. libzstd's
 * multi-threaded output does not depend on the number of workers (as long
 * as there is at least one), so a variant is the same bytes wherever it is
 * made. One frame, with its content checksum.
 */
#include "push/internal.h"
#include "store/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

typedef struct {
	ZSTD_CCtx *z;
	unsigned char *obuf, *in;
	size_t out_cap, fill; /* the input goes in ZS_IN pieces: the frame is the same however it comes */
	ib_blob_writer *w;
	ib_push__tap *tap;
	const char *ds;
	int rc; /* the first failure, its error saved in err */
	ib_error_saved err;
} zs_stream;

/* Compress `len` bytes (ZSTD_e_end: and end the frame), writing what comes out. */
static int zs_put(zs_stream *zs, const void *data, size_t len, ZSTD_EndDirective mode)
{
	if (zs->rc < 0)
		return zs->rc;
	ZSTD_inBuffer ib = { data, len, 0 };
	int rc = 0;
	for (;;) {
		ZSTD_outBuffer ob = { zs->obuf, zs->out_cap, 0 };
		size_t left = ZSTD_compressStream2(zs->z, &ob, &ib, mode);
		if (ZSTD_isError(left)) {
			rc = zs_error(zs->ds, left);
			break;
		}
		if (ob.pos && ((rc = ib_blob_writer_write(zs->w, zs->obuf, ob.pos)) < 0 ||
			       (rc = ib_push__tap_wrote(zs->tap, ob.pos)) < 0))
			break;
		/* ZSTD_e_end: done when nothing is left to flush; ZSTD_e_continue: when the input is taken */
		if (mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size)
			break;
	}
	if (rc < 0) {
		zs->rc = rc;
		ib_error_save(&zs->err);
	}
	return rc;
}

/*
 * The bytes of a layer regenerated from its unpacked files, as they come
 * (ib_store_write_cb), gathered into ZS_IN pieces as a file is read: libzstd
 * frames a layer that comes whole with ZSTD_e_end (one piece) differently
 * (its size in the header), so the pieces are what make the blob the same.
 */
static int zs_feed(const void *data, size_t len, void *payload)
{
	zs_stream *zs = payload;
	const unsigned char *d = data;
	while (len && zs->rc == 0) {
		size_t n = ZS_IN - zs->fill < len ? ZS_IN - zs->fill : len;
		memcpy(zs->in + zs->fill, d, n);
		zs->fill += n;
		d += n;
		len -= n;
		if (zs->fill == ZS_IN) {
			zs->fill = 0;
			zs_put(zs, zs->in, ZS_IN, ZSTD_e_continue);
		}
	}
	return zs->rc;
}

/*
 * A layer kept only unpacked is regenerated straight into the compression
 * (ib_store__blob_open_or_stream()) and checked after its last byte: the
 * frame is ended and the blob committed only when it was the recorded
 * layer (see transfer.c, gzip).
 */
int ib_push__zstd_layer_tap(ib_digest *out, uint64_t *size, ib_store *s, const ib_digest *layer, int level,
			    ib_push__tap *tap)
{
	char ds[IB_DIGEST_STRLEN];
	ib_digest_fmt(ds, layer);
	if (level == 0)
		level = IB_PUSH_ZSTD_DEFAULT_LEVEL;
	if (level < 1 || level > ZSTD_maxCLevel() || level > IB_PUSH_ZSTD_MAX_LEVEL)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "zstd level %d: give 1 to %d", level, ZSTD_maxCLevel());
	zs_stream zs = { .z = ZSTD_createCCtx(), .in = ib_malloc(ZS_IN), .out_cap = ZSTD_CStreamOutSize(), .tap = tap,
			 .ds = ds };
	zs.obuf = ib_malloc(zs.out_cap);
	int fd = -1, rc = 0;
	if (!zs.z || !zs.obuf || !zs.in) {
		rc = zs.z ? IB_ERROR : ib_error_oom();
		goto out;
	}
	size_t e;
	if (ZSTD_isError(e = ZSTD_CCtx_setParameter(zs.z, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(e = ZSTD_CCtx_setParameter(zs.z, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(e = ZSTD_CCtx_setParameter(zs.z, ZSTD_c_nbWorkers, zs_threads()))) {
		rc = zs_error(ds, e);
		goto out;
	}
	if ((rc = ib_store_blob_writer(&zs.w, s)) < 0 || (rc = ib_push__tap_open(tap, zs.w)) < 0)
		goto out;
	rc = ib_store__blob_open_or_stream(&fd, s, layer, zs_feed, &zs);
	while (rc == 0) { /* a file: read in pieces, the last one (short, maybe empty) ends the frame */
		size_t got = 0;
		while (got < ZS_IN) {
			ssize_t n = read(fd, zs.in + got, ZS_IN - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = ib_error_set_os(IB_LAYER_PUSH, "zstd of layer %s: read", ds);
				break;
			}
			if (n == 0)
				break;
			got += (size_t)n;
		}
		if (rc < 0 || got < ZS_IN) {
			zs.fill = got;
			break;
		}
		rc = zs_put(&zs, zs.in, got, ZSTD_e_continue);
	}
	if (rc >= 0 && zs.rc == 0)
		zs_put(&zs, zs.in, zs.fill, ZSTD_e_end);
	if (zs.rc < 0) {
		/* the compression's own failure, not the "stopped by a callback" the regeneration says of it */
		ib_error_restore(&zs.err);
		rc = zs.rc;
	}
	/* whole and checked: the upload may close while the variant is made durable */
	if (rc >= 0)
		rc = ib_push__tap_complete(tap, zs.w);
	if (rc >= 0) {
		rc = ib_blob_writer_commit(zs.w, out, size, NULL);
		zs.w = NULL;
	}
out:
	if (zs.w)
		ib_blob_writer_abort(zs.w);
	ZSTD_freeCCtx(zs.z);
	free(zs.in);
	free(zs.obuf);
	if (fd >= 0)
		close(fd);
	return rc;
}
