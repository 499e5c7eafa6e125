/*
 * libarchive, opened when first needed (util/lazylib.h): tar reading and
 * writing (load, save, import, COPY of archives, layer diff and apply) need
 * it; lookups, listings, tags and a no-op rebuild do not, and no longer load
 * it with libxml2, ICU and its compressors (~5 ms of dynamic loading).
 * Used by the store, snapshot and build layers, all of which link the store.
 *
 * The forwarders below are generated:
 *   scripts/gen-lazy-forwarders.py archive_lib 'archive.h archive_entry.h' NAME...
 * with every archive_* function lib/, examples/ and tests/ call (the compiler checks
 * each against the headers); a function used anew needs a line here, or the
 * library fails to link (-Wl,--no-undefined).
 *
 * libarchive is a hard dependency: a process that could not open it used to
 * be refused by the dynamic loader before main(); now the first use that
 * cannot open it stops the process with the loader's message, rather than
 * failing as if memory ran out.
 */
#include "store/internal.h"
#include "util/lazylib.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef IB_LIBARCHIVE_SONAME
#define IB_LIBARCHIVE_SONAME "libarchive.so.13"
#endif

static ib_lazylib archive_lib = IB_LAZYLIB_INIT(IB_LIBARCHIVE_SONAME, IB_LAYER_STORE);

int ib_store__archive_loaded(void)
{
	return ib_lazylib_loaded(&archive_lib);
}

int ib_store__archive_load(void)
{
	return ib_lazylib_open(&archive_lib);
}

/* The symbol, or the process stops: see above. */
static void *archive_sym(ib_lazylib *l, const char *name)
{
	void *f = ib_lazylib_sym(l, name);
	if (!f) {
		fprintf(stderr, "libimagebuild: cannot use %s from %s: %s\n", name, l->soname,
			l->error[0] ? l->error : "symbol not found");
		abort();
	}
	return f;
}
#define ib_lazylib_sym archive_sym

IB_LAZY_FN(archive_lib, time_t, archive_entry_atime, (struct archive_entry *a0), (a0), (time_t)-1)
IB_LAZY_FN(archive_lib, int, archive_entry_atime_is_set, (struct archive_entry *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, long, archive_entry_atime_nsec, (struct archive_entry *a0), (a0), (long)-1)
IB_LAZY_FN(archive_lib, mode_t, archive_entry_filetype, (struct archive_entry *a0), (a0), (mode_t)-1)
IB_LAZY_VOID(archive_lib, archive_entry_free, (struct archive_entry *a0), (a0))
IB_LAZY_FN(archive_lib, la_int64_t, archive_entry_gid, (struct archive_entry *a0), (a0), (la_int64_t)-1)
IB_LAZY_FN(archive_lib, const char *, archive_entry_hardlink, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, time_t, archive_entry_mtime, (struct archive_entry *a0), (a0), (time_t)-1)
IB_LAZY_FN(archive_lib, long, archive_entry_mtime_nsec, (struct archive_entry *a0), (a0), (long)-1)
IB_LAZY_FN(archive_lib, struct archive_entry *, archive_entry_new, (void), (), NULL)
IB_LAZY_FN(archive_lib, const char *, archive_entry_pathname, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, const char *, archive_entry_pathname_utf8, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, mode_t, archive_entry_perm, (struct archive_entry *a0), (a0), (mode_t)-1)
IB_LAZY_FN(archive_lib, dev_t, archive_entry_rdev, (struct archive_entry *a0), (a0), (dev_t)-1)
IB_LAZY_FN(archive_lib, dev_t, archive_entry_rdevmajor, (struct archive_entry *a0), (a0), (dev_t)-1)
IB_LAZY_FN(archive_lib, dev_t, archive_entry_rdevminor, (struct archive_entry *a0), (a0), (dev_t)-1)
IB_LAZY_VOID(archive_lib, archive_entry_set_filetype, (struct archive_entry *a0, unsigned int a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_gid, (struct archive_entry *a0, la_int64_t a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_gname, (struct archive_entry *a0, const char *a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_hardlink, (struct archive_entry *a0, const char *a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_mode, (struct archive_entry *a0, mode_t a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_mtime, (struct archive_entry *a0, time_t a1, long a2), (a0, a1, a2))
IB_LAZY_VOID(archive_lib, archive_entry_set_pathname, (struct archive_entry *a0, const char *a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_perm, (struct archive_entry *a0, mode_t a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_rdev, (struct archive_entry *a0, dev_t a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_size, (struct archive_entry *a0, la_int64_t a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_symlink, (struct archive_entry *a0, const char *a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_uid, (struct archive_entry *a0, la_int64_t a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_uname, (struct archive_entry *a0, const char *a1), (a0, a1))
IB_LAZY_FN(archive_lib, la_int64_t, archive_entry_size, (struct archive_entry *a0), (a0), (la_int64_t)-1)
IB_LAZY_FN(archive_lib, int, archive_entry_size_is_set, (struct archive_entry *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, const char *, archive_entry_sourcepath, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, const char *, archive_entry_symlink, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, la_int64_t, archive_entry_uid, (struct archive_entry *a0), (a0), (la_int64_t)-1)
IB_LAZY_VOID(archive_lib, archive_entry_xattr_add_entry, (struct archive_entry *a0, const char *a1, const void *a2, size_t a3), (a0, a1, a2, a3))
IB_LAZY_FN(archive_lib, int, archive_entry_xattr_next, (struct archive_entry *a0, const char **a1, const void **a2, size_t *a3), (a0, a1, a2, a3), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_entry_xattr_reset, (struct archive_entry *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_errno, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, const char *, archive_error_string, (struct archive *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, int, archive_filter_code, (struct archive *a0, int a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_filter_count, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, la_ssize_t, archive_read_data, (struct archive *a0, void *a1, size_t a2), (a0, a1, a2), (la_ssize_t)-1)
IB_LAZY_FN(archive_lib, int, archive_read_data_block, (struct archive *a0, const void **a1, size_t *a2, la_int64_t *a3), (a0, a1, a2, a3), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_data_skip, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_descend, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, struct archive *, archive_read_disk_new, (void), (), NULL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_open, (struct archive *a0, const char *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_set_behavior, (struct archive *a0, int a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_set_standard_lookup, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_set_symlink_physical, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_free, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, struct archive *, archive_read_new, (void), (), NULL)
IB_LAZY_FN(archive_lib, int, archive_read_next_header, (struct archive *a0, struct archive_entry **a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_next_header2, (struct archive *a0, struct archive_entry *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_open_fd, (struct archive *a0, int a1, size_t a2), (a0, a1, a2), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_open_filename, (struct archive *a0, const char *a1, size_t a2), (a0, a1, a2), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_open_memory, (struct archive *a0, const void *a1, size_t a2), (a0, a1, a2), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_filter_all, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_filter_bzip2, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_filter_gzip, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_filter_xz, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_filter_zstd, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_format_empty, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_format_gnutar, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_format_raw, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_support_format_tar, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_add_filter_gzip, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_add_filter_none, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_add_filter_zstd, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_close, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, la_ssize_t, archive_write_data, (struct archive *a0, const void *a1, size_t a2), (a0, a1, a2), (la_ssize_t)-1)
IB_LAZY_FN(archive_lib, int, archive_write_fail, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_free, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_header, (struct archive *a0, struct archive_entry *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, struct archive *, archive_write_new, (void), (), NULL)
IB_LAZY_FN(archive_lib, int, archive_write_open, (struct archive *a0, void *a1, archive_open_callback *a2, archive_write_callback *a3, archive_close_callback *a4), (a0, a1, a2, a3, a4), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_open2, (struct archive *a0, void *a1, archive_open_callback *a2, archive_write_callback *a3, archive_close_callback *a4, archive_free_callback *a5), (a0, a1, a2, a3, a4, a5), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_open_fd, (struct archive *a0, int a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_open_filename, (struct archive *a0, const char *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_open_memory, (struct archive *a0, void *a1, size_t a2, size_t *a3), (a0, a1, a2, a3), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_set_bytes_in_last_block, (struct archive *a0, int a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_set_bytes_per_block, (struct archive *a0, int a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_set_format_pax_restricted, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_set_format_raw, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
