/*
 * libarchive, opened when `build --output type=tar` or a tar context first
 * needs it, not when the command starts: `images`, `inspect`, `tag` and most
 * builds never load it with libxml2, ICU and its compressors (~5 ms of
 * dynamic loading). The library does the same for its own uses
 * (lib/store/archive_lazy.c); this is the command's copy, on no internal
 * header. Generated lines:
 *   scripts/gen-lazy-forwarders.py archive_lib 'archive.h archive_entry.h' NAME...
 * A process that cannot open libarchive stops with the loader's message, as
 * the dynamic loader stopped it before main() when it was linked.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef IB_LIBARCHIVE_SONAME
#define IB_LIBARCHIVE_SONAME "libarchive.so.13"
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *handle;

static void open_once(void)
{
	handle = dlopen(IB_LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
}

static void *archive_sym(const char *name)
{
	pthread_once(&once, open_once);
	void *f = handle ? dlsym(handle, name) : NULL;
	if (!f) {
		const char *e = dlerror();
		fprintf(stderr, "imagebuild: cannot use %s from %s: %s\n", name, IB_LIBARCHIVE_SONAME,
			e ? e : "not found");
		abort();
	}
	return f;
}

#define IB_LAZY_FN(lib, ret, name, params, args, fail)                         \
	ret name params                                                         \
	{                                                                       \
		static ret(*fn) params;                                         \
		ret(*f) params = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);        \
		if (!f) {                                                       \
			f = (ret(*) params)archive_sym(#name);                  \
			__atomic_store_n(&fn, f, __ATOMIC_RELEASE);             \
		}                                                               \
		return f args;                                                  \
	}
#define IB_LAZY_VOID(lib, name, params, args)                                  \
	void name params                                                        \
	{                                                                       \
		static void(*fn) params;                                        \
		void(*f) params = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);       \
		if (!f) {                                                       \
			f = (void(*) params)archive_sym(#name);                 \
			__atomic_store_n(&fn, f, __ATOMIC_RELEASE);             \
		}                                                               \
		f args;                                                         \
	}

IB_LAZY_FN(archive_lib, mode_t, archive_entry_filetype, (struct archive_entry *a0), (a0), (mode_t)-1)
IB_LAZY_VOID(archive_lib, archive_entry_free, (struct archive_entry *a0), (a0))
IB_LAZY_FN(archive_lib, const char *, archive_entry_hardlink, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, struct archive_entry *, archive_entry_new, (void), (), NULL)
IB_LAZY_FN(archive_lib, const char *, archive_entry_pathname, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_VOID(archive_lib, archive_entry_set_hardlink, (struct archive_entry *a0, const char *a1), (a0, a1))
IB_LAZY_VOID(archive_lib, archive_entry_set_pathname, (struct archive_entry *a0, const char *a1), (a0, a1))
IB_LAZY_FN(archive_lib, la_int64_t, archive_entry_size, (struct archive_entry *a0), (a0), (la_int64_t)-1)
IB_LAZY_FN(archive_lib, const char *, archive_entry_sourcepath, (struct archive_entry *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, int, archive_errno, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, const char *, archive_error_string, (struct archive *a0), (a0), NULL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_descend, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, struct archive *, archive_read_disk_new, (void), (), NULL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_open, (struct archive *a0, const char *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_set_behavior, (struct archive *a0, int a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_set_standard_lookup, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_disk_set_symlink_physical, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_free, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_read_next_header2, (struct archive *a0, struct archive_entry *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_close, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, la_ssize_t, archive_write_data, (struct archive *a0, const void *a1, size_t a2), (a0, a1, a2), (la_ssize_t)-1)
IB_LAZY_FN(archive_lib, int, archive_write_free, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_header, (struct archive *a0, struct archive_entry *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, struct archive *, archive_write_new, (void), (), NULL)
IB_LAZY_FN(archive_lib, int, archive_write_open_filename, (struct archive *a0, const char *a1), (a0, a1), (int)ARCHIVE_FATAL)
IB_LAZY_FN(archive_lib, int, archive_write_set_format_pax_restricted, (struct archive *a0), (a0), (int)ARCHIVE_FATAL)
