/*
 * libgit2's functions under the forwarders' names (git_lazy.c), hidden: as
 * util/lazy_names.h does for curl and libarchive, but after <git2.h>, which
 * declares its functions default-visible (a renamed declaration would carry
 * that into libimagebuild.so's exports). Include right after <git2.h>.
 */
#ifndef IB_BUILD_GIT_NAMES_H
#define IB_BUILD_GIT_NAMES_H
#include <git2.h>
#define IB_GIT_NAME(name) __attribute__((visibility("hidden"))) __typeof__(name) ib_lazy__##name;
IB_GIT_NAME(git_buf_dispose)
IB_GIT_NAME(git_checkout_tree)
IB_GIT_NAME(git_commit_time)
IB_GIT_NAME(git_commit_tree)
IB_GIT_NAME(git_error_last)
IB_GIT_NAME(git_error_set_str)
IB_GIT_NAME(git_libgit2_init)
IB_GIT_NAME(git_libgit2_shutdown)
IB_GIT_NAME(git_object_free)
IB_GIT_NAME(git_object_id)
IB_GIT_NAME(git_object_lookup)
IB_GIT_NAME(git_object_peel)
IB_GIT_NAME(git_oid_fromstr)
IB_GIT_NAME(git_oid_tostr)
IB_GIT_NAME(git_remote_connect)
IB_GIT_NAME(git_remote_create_with_opts)
IB_GIT_NAME(git_remote_default_branch)
IB_GIT_NAME(git_remote_disconnect)
IB_GIT_NAME(git_remote_fetch)
IB_GIT_NAME(git_remote_free)
IB_GIT_NAME(git_remote_ls)
IB_GIT_NAME(git_repository_free)
IB_GIT_NAME(git_repository_init)
IB_GIT_NAME(git_tree_entry_bypath)
IB_GIT_NAME(git_tree_entry_filemode)
IB_GIT_NAME(git_tree_entry_free)
IB_GIT_NAME(git_tree_entry_id)
IB_GIT_NAME(git_tree_entry_name)
IB_GIT_NAME(git_tree_free)
IB_GIT_NAME(git_tree_lookup)
IB_GIT_NAME(git_tree_walk)
#define git_buf_dispose ib_lazy__git_buf_dispose
#define git_checkout_tree ib_lazy__git_checkout_tree
#define git_commit_time ib_lazy__git_commit_time
#define git_commit_tree ib_lazy__git_commit_tree
#define git_error_last ib_lazy__git_error_last
#define git_error_set_str ib_lazy__git_error_set_str
#define git_libgit2_init ib_lazy__git_libgit2_init
#define git_libgit2_shutdown ib_lazy__git_libgit2_shutdown
#define git_object_free ib_lazy__git_object_free
#define git_object_id ib_lazy__git_object_id
#define git_object_lookup ib_lazy__git_object_lookup
#define git_object_peel ib_lazy__git_object_peel
#define git_oid_fromstr ib_lazy__git_oid_fromstr
#define git_oid_tostr ib_lazy__git_oid_tostr
#define git_remote_connect ib_lazy__git_remote_connect
#define git_remote_create_with_opts ib_lazy__git_remote_create_with_opts
#define git_remote_default_branch ib_lazy__git_remote_default_branch
#define git_remote_disconnect ib_lazy__git_remote_disconnect
#define git_remote_fetch ib_lazy__git_remote_fetch
#define git_remote_free ib_lazy__git_remote_free
#define git_remote_ls ib_lazy__git_remote_ls
#define git_repository_free ib_lazy__git_repository_free
#define git_repository_init ib_lazy__git_repository_init
#define git_tree_entry_bypath ib_lazy__git_tree_entry_bypath
#define git_tree_entry_filemode ib_lazy__git_tree_entry_filemode
#define git_tree_entry_free ib_lazy__git_tree_entry_free
#define git_tree_entry_id ib_lazy__git_tree_entry_id
#define git_tree_entry_name ib_lazy__git_tree_entry_name
#define git_tree_free ib_lazy__git_tree_free
#define git_tree_lookup ib_lazy__git_tree_lookup
#define git_tree_walk ib_lazy__git_tree_walk
#endif
