/* libarchive glue: decompressing streams, error text. */
#include "store/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

int ib_store__decompress_into(ib_blob_writer *w, int fd, const char *what)
{
	struct archive *a = archive_read_new();
	if (!a)
		return ib_error_oom();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	archive_read_support_format_empty(a);
	int rc = 0;
	struct archive_entry *e;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: %s", what, archive_error_string(a));
		goto out;
	}
	int r = archive_read_next_header(a, &e);
	if (r == ARCHIVE_EOF)
		goto out;
	if (r != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: %s", what, archive_error_string(a));
		goto out;
	}
	char *buf = ib_malloc(1 << 16);
	if (!buf) {
		rc = IB_ERROR;
		goto out;
	}
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, 1 << 16);
		if (n < 0) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: %s", what, archive_error_string(a));
			break;
		}
		if (n == 0)
			break;
		if ((rc = ib_blob_writer_write(w, buf, (size_t)n)) < 0)
			break;
	}
	free(buf);
out:
	archive_read_free(a);
	return rc;
}
