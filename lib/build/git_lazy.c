/*
 * libgit2, opened when a build first fetches a git context (`ADD <git ref>`,
 * util/lazylib.h): other builds and commands never load it and its SSH, TLS
 * and HTTP parser dependencies. A forwarder of the same name for each
 * function git.c uses; when the library cannot be opened they fail as the
 * functions do, and ib_build__git_load (called first) reports why.
 */
#include "build/internal.h"
#include "util/lazylib.h"

#include <git2.h>
#include "build/git_names.h"

#ifndef IB_LIBGIT2_SONAME
#define IB_LIBGIT2_SONAME "libgit2.so.1.5"
#endif

static ib_lazylib git_lib = IB_LAZYLIB_INIT(IB_LIBGIT2_SONAME, IB_LAYER_BUILD);

int ib_build__git_load(void)
{
	return ib_lazylib_open(&git_lib);
}

int ib_build__git_loaded(void)
{
	return ib_lazylib_loaded(&git_lib);
}

#define FAIL (-1)
IB_LAZY_FN(git_lib, int, git_libgit2_init, (void), (), FAIL)
IB_LAZY_FN(git_lib, int, git_libgit2_shutdown, (void), (), FAIL)
IB_LAZY_FN(git_lib, const git_error *, git_error_last, (void), (), NULL)
IB_LAZY_FN(git_lib, int, git_error_set_str, (int error_class, const char *string), (error_class, string), FAIL)
IB_LAZY_FN(git_lib, int, git_remote_default_branch, (git_buf *out, git_remote *remote), (out, remote), FAIL)
IB_LAZY_FN(git_lib, int, git_remote_ls, (const git_remote_head ***out, size_t *size, git_remote *remote),
	   (out, size, remote), FAIL)
IB_LAZY_VOID(git_lib, git_buf_dispose, (git_buf *buffer), (buffer))
IB_LAZY_FN(git_lib, git_filemode_t, git_tree_entry_filemode, (const git_tree_entry *entry), (entry),
	   GIT_FILEMODE_UNREADABLE)
IB_LAZY_FN(git_lib, const char *, git_tree_entry_name, (const git_tree_entry *entry), (entry), NULL)
IB_LAZY_FN(git_lib, int, git_repository_init, (git_repository **out, const char *path, unsigned is_bare),
	   (out, path, is_bare), FAIL)
IB_LAZY_FN(git_lib, int, git_remote_create_with_opts,
	   (git_remote **out, const char *url, const git_remote_create_options *opts), (out, url, opts), FAIL)
IB_LAZY_FN(git_lib, int, git_remote_connect,
	   (git_remote *remote, git_direction direction, const git_remote_callbacks *callbacks,
	    const git_proxy_options *proxy_opts, const git_strarray *custom_headers),
	   (remote, direction, callbacks, proxy_opts, custom_headers), FAIL)
IB_LAZY_FN(git_lib, int, git_remote_disconnect, (git_remote *remote), (remote), FAIL)
IB_LAZY_FN(git_lib, int, git_oid_fromstr, (git_oid *out, const char *str), (out, str), FAIL)
IB_LAZY_FN(git_lib, int, git_remote_fetch,
	   (git_remote *remote, const git_strarray *refspecs, const git_fetch_options *opts,
	    const char *reflog_message),
	   (remote, refspecs, opts, reflog_message), FAIL)
IB_LAZY_FN(git_lib, int, git_object_lookup,
	   (git_object **object, git_repository *repo, const git_oid *id, git_object_t type), (object, repo, id, type),
	   FAIL)
IB_LAZY_FN(git_lib, int, git_object_peel, (git_object **peeled, const git_object *object, git_object_t target_type),
	   (peeled, object, target_type), FAIL)
IB_LAZY_FN(git_lib, char *, git_oid_tostr, (char *out, size_t n, const git_oid *id), (out, n, id), NULL)
IB_LAZY_FN(git_lib, const git_oid *, git_object_id, (const git_object *obj), (obj), NULL)
IB_LAZY_FN(git_lib, int, git_commit_tree, (git_tree **tree_out, const git_commit *commit), (tree_out, commit), FAIL)
IB_LAZY_FN(git_lib, int, git_tree_entry_bypath, (git_tree_entry **out, const git_tree *root, const char *path),
	   (out, root, path), FAIL)
IB_LAZY_FN(git_lib, int, git_tree_lookup, (git_tree **out, git_repository *repo, const git_oid *id),
	   (out, repo, id), FAIL)
IB_LAZY_FN(git_lib, const git_oid *, git_tree_entry_id, (const git_tree_entry *entry), (entry), NULL)
IB_LAZY_FN(git_lib, int, git_tree_walk,
	   (const git_tree *tree, git_treewalk_mode mode, git_treewalk_cb callback, void *payload),
	   (tree, mode, callback, payload), FAIL)
IB_LAZY_FN(git_lib, int, git_checkout_tree,
	   (git_repository *repo, const git_object *treeish, const git_checkout_options *opts), (repo, treeish, opts),
	   FAIL)
IB_LAZY_FN(git_lib, git_time_t, git_commit_time, (const git_commit *commit), (commit), 0)
IB_LAZY_VOID(git_lib, git_tree_free, (git_tree *tree), (tree))
IB_LAZY_VOID(git_lib, git_tree_entry_free, (git_tree_entry *entry), (entry))
IB_LAZY_VOID(git_lib, git_object_free, (git_object *object), (object))
IB_LAZY_VOID(git_lib, git_remote_free, (git_remote *remote), (remote))
IB_LAZY_VOID(git_lib, git_repository_free, (git_repository *repo), (repo))
