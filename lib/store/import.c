/* docker import: a root filesystem tarball becomes a one-layer image (the layer stored uncompressed). */
#include "store/internal.h"
#include "util/callback.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The decompressed bytes must be a tar archive: walk its headers. */
static int check_tar(int fd, const char *what)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return ib_error_set_os(IB_LAYER_STORE, "%s: seek", what);
	int dfd = dup(fd);
	if (dfd < 0)
		return ib_error_set_os(IB_LAYER_STORE, "%s: dup", what);
	struct archive *a = archive_read_new();
	if (!a) {
		close(dfd);
		return ib_error_oom();
	}
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	int rc = 0, n = 0;
	if (archive_read_open_fd(a, dfd, 1 << 16) != ARCHIVE_OK) {
		rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: not a tar archive: %s", what, archive_error_string(a));
	} else {
		struct archive_entry *e;
		int r;
		while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
			n++;
			if (archive_read_data_skip(a) != ARCHIVE_OK) {
				r = ARCHIVE_FATAL;
				break;
			}
		}
		if (r != ARCHIVE_EOF)
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "%s: not a valid tar archive: %s", what,
					   archive_error_string(a) ? archive_error_string(a) : "unreadable");
	}
	archive_read_free(a);
	close(dfd);
	return rc;
}

static int import_config(ib_image_config **out, const ib_import_options *o, const ib_digest *diff_id)
{
	ib_image_config *c = NULL;
	int rc = o->config ? ib_image_config_dup(&c, o->config) : ib_image_config_new(&c);
	if (rc < 0)
		return rc;
	json_t *j = ib_image_config__json(c);
	json_object_del(j, "history");
	json_object_del(j, "rootfs");
	if (!ib_image_config_get(c, IB_CONFIG_ARCHITECTURE))
		rc = ib_image_config_set(c, IB_CONFIG_ARCHITECTURE, ib_store__host_arch());
	if (rc == 0 && !ib_image_config_get(c, IB_CONFIG_OS))
		rc = ib_image_config_set(c, IB_CONFIG_OS, "linux");
	if (rc == 0)
		rc = o->use_source_date_epoch ? ib_image_config_set_created_at(c, o->source_date_epoch)
					      : ib_image_config_set_created_now(c);
	if (rc == 0)
		rc = ib_image_config_diff_id_add(c, diff_id);
	char *comment = o->comment ? ib_strdup(o->comment) : ib_sprintf("Imported from %s", o->source ? o->source : "-");
	if (rc == 0 && !comment)
		rc = IB_ERROR;
	if (rc == 0) {
		ib_history_entry h = IB_HISTORY_ENTRY_INIT;
		h.created = ib_image_config_get(c, IB_CONFIG_CREATED);
		h.comment = comment;
		rc = ib_image_config_history_add(c, &h);
	}
	free(comment);
	if (rc < 0)
		ib_image_config_free(c);
	else
		*out = c;
	return rc;
}

/* The caller's options (of any known version) as the current version. */
static int import_opts(ib_import_options *out, const ib_import_options *in)
{
	ib_import_options d = IB_IMPORT_OPTIONS_INIT;
	*out = d;
	if (!in)
		return 0;
	if (in->version < 1 || in->version > IB_IMPORT_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_import_options version %u is not supported",
				     in->version);
	if (in->version == 1) {
		if (in->use_source_date_epoch)
			return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_STORE,
					     "ib_import_options version 1 cannot give SOURCE_DATE_EPOCH "
					     "(the environment is not read): use version 2 and source_date_epoch");
		out->name = in->name;
		out->config = in->config;
		out->comment = in->comment;
		out->source = in->source;
		return 0;
	}
	/* version 2 ends before `callbacks` */
	memcpy(out, in, in->version == 2 ? offsetof(ib_import_options, callbacks) : sizeof *out);
	if (out->use_source_date_epoch && out->source_date_epoch < 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "SOURCE_DATE_EPOCH %lld is negative",
				     (long long)out->source_date_epoch);
	return 0;
}

int ib_import_options_init(ib_import_options *opts, unsigned int version)
{
	if (!opts || version < 1 || version > IB_IMPORT_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_STORE, "ib_import_options version %u is not supported",
				     version);
	/* every default is zero (padding too: bindings compare bytes) */
	memset(opts, 0, version == 1   ? offsetof(ib_import_options, source_date_epoch)
			: version == 2 ? offsetof(ib_import_options, callbacks)
				       : sizeof *opts);
	opts->version = version;
	return 0;
}

int ib_store_import_fd(ib_digest *image_id, ib_store *s, int fd, const ib_import_options *opts)
{
	ib_import_options oo;
	int rc = import_opts(&oo, opts);
	if (rc < 0)
		return rc;
	const ib_import_options *o = &oo;
	const ib_callbacks *cb = o->callbacks;
	if (ib_callback_validate(cb, IB_LAYER_STORE) < 0)
		return IB_EINVALID;
	const char *what = o->source ? o->source : "import input";
	rc = ib_store__lease(s);
	if (rc < 0)
		return rc;
	ib_blob_writer *w = NULL;
	ib_layer layer;
	memset(&layer, 0, sizeof layer);
	ib_image_config *c = NULL;
	if ((rc = ib_store_blob_writer(&w, s)) < 0)
		goto out;
	ib_store__hook("import-read");
	if ((rc = ib_store__decompress_into_cb(w, fd, what, cb, "import", "Importing")) < 0 ||
	    (rc = check_tar(ib_store__blob_writer_fd(w), what)) < 0) {
		ib_blob_writer_abort(w);
		goto out;
	}
	rc = ib_blob_writer_commit(w, &layer.digest, &layer.size, NULL);
	if (rc < 0)
		goto out;
	layer.diff_id = layer.digest;
	ib_image_commit_options co = IB_IMAGE_COMMIT_OPTIONS_INIT;
	co.name = o->name;
	if ((rc = import_config(&c, o, &layer.diff_id)) == 0)
		rc = ib_store_image_commit(image_id, NULL, s, c, &layer, 1, &co);
out:
	ib_image_config_free(c);
	ib_store__unlease(s);
	if (rc < 0)
		ib_error_prefix("import %s", what);
	return ib_callback_result(rc);
}

int ib_store_import(ib_digest *image_id, ib_store *s, const char *path, const ib_import_options *opts)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_STORE, "import: open `%s`", path);
	ib_import_options o;
	int rc = import_opts(&o, opts);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	if (!o.source)
		o.source = path;
	rc = ib_store_import_fd(image_id, s, fd, &o);
	close(fd);
	return rc;
}
