/* The base layer and the set of changes both kinds of tests make, and the layer they must give. */
#include "helpers.h"
#include <fcntl.h>
#include <stdio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "util/buf.h"

tb *snapshot_test_base_layer(void)
{
	tb *t = tb_new();
	TB(t, .path = "a", .type = 'd');
	TB(t, .path = "a/keep", .data = "k");
	TB(t, .path = "a/mod", .data = "m1");
	TB(t, .path = "a/same", .data = "s1");
	TB(t, .path = "a/del", .data = "d");
	TB(t, .path = "a/chmod", .data = "c");
	TB(t, .path = "gone/x", .data = "x");
	TB(t, .path = "gone/y", .data = "y");
	TB(t, .path = "repl/old", .data = "o");
	TB(t, .path = "repl/old2", .data = "o");
	TB(t, .path = "f2d", .data = "x");
	TB(t, .path = "d2f/z", .data = "z");
	TB(t, .path = "sl", .type = 'l', .link = "a/keep");
	TB(t, .path = "hb", .data = "h");
	TB(t, .path = "empty", .type = 'd');
	TB(t, .path = "a/ln0", .data = "z");
	TB(t, .path = "lk", .data = "q");
	return t;
}

/* The same changes the privileged tests make through a mounted snapshot. */
void snapshot_test_changes(const char *r)
{
	char *p;
	put_file(r, "a/new", "n", 0644);
	put_file(r, "a/mod", "m22", 0644);
	/* same size, new mtime, same bytes: not a change */
	put_file(r, "a/same", "s1", 0644);
	p = pjoin(r, "a/del"); assert_int_equal(unlink(p), 0); free(p);
	p = pjoin(r, "a/chmod"); assert_int_equal(chmod(p, 0600), 0); free(p);
	p = pjoin(r, "gone"); rm_tree(p); free(p);
	p = pjoin(r, "repl"); rm_tree(p); assert_int_equal(mkdir(p, 0700), 0); free(p);
	put_file(r, "repl/new", "r", 0644);
	p = pjoin(r, "f2d"); assert_int_equal(unlink(p), 0); assert_int_equal(mkdir(p, 0755), 0); free(p);
	put_file(r, "f2d/in", "i", 0644);
	p = pjoin(r, "d2f"); rm_tree(p); free(p);
	put_file(r, "d2f", "F", 0644);
	p = pjoin(r, "sl"); assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("a/new", p), 0); free(p);
	put_file(r, "a/link1", "L", 0644);
	char *l1 = pjoin(r, "a/link1"), *l2 = pjoin(r, "a/link2");
	assert_int_equal(link(l1, l2), 0);
	free(l1);
	free(l2);
	/* hard links to files of the layer below: the link group with its target, both orders */
	l1 = pjoin(r, "a/ln0"); l2 = pjoin(r, "a/ln9");
	assert_int_equal(link(l1, l2), 0);
	free(l1);
	free(l2);
	l1 = pjoin(r, "lk"); l2 = pjoin(r, "a/lk2");
	assert_int_equal(link(l1, l2), 0);
	free(l1);
	free(l2);
	p = pjoin(r, "a/keep");
	assert_int_equal(lsetxattr(p, "user.k", "v", 1, 0), 0);
	free(p);
	/* mkdir then rmdir: nothing */
	p = pjoin(r, "tmpdir"); assert_int_equal(mkdir(p, 0755), 0); assert_int_equal(rmdir(p), 0); free(p);
}

/* What those changes must give (uid:gid `ug`). */
void snapshot_test_expected(ib_buf *out, unsigned uid, unsigned gid)
{
	char ug[64];
	snprintf(ug, sizeof ug, "%u:%u", uid, gid);
	ib_buf_clear(out);
	ib_buf_printf(out,
		".wh.gone f 0000 0:0 0\n"
		"a/ d 0755 %s 0\n"
		"a/.wh.del f 0000 0:0 0\n"
		"a/chmod f 0600 %s 1 [c]\n"
		"a/keep f 0644 %s 1 [k] x:user.k=v\n"
		"a/link1 f 0644 %s 1 [L]\n"
		"a/link2 h 0644 %s 0 -> a/link1\n"
		"a/lk2 f 0644 %s 1 [q]\n"
		"a/ln0 f 0644 %s 1 [z]\n"
		"a/ln9 h 0644 %s 0 -> a/ln0\n"
		"a/mod f 0644 %s 3 [m22]\n"
		"a/new f 0644 %s 1 [n]\n"
		"d2f f 0644 %s 1 [F]\n"
		"f2d/ d 0755 %s 0\n"
		"f2d/in f 0644 %s 1 [i]\n"
		"lk h 0644 %s 0 -> a/lk2\n"
		"repl/ d 0700 %s 0\n"
		"repl/.wh..wh..opq f 0000 0:0 0\n"
		"repl/new f 0644 %s 1 [r]\n"
		"sl l 0777 %s 0 -> a/new\n",
		ug, ug, ug, ug, ug, ug, ug, ug, ug, ug, ug, ug, ug, ug, ug, ug, ug);
}

