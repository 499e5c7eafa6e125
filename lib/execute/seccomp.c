/*
 * Docker's default seccomp profile, on every isolation backend.
 *
 * One source: seccomp/docker-default.json (Docker's profiles/seccomp/
 * default.json, see seccomp/README.md for its version and how it is kept in
 * step), embedded in the library at build time. It is resolved the way
 * dockerd resolves it (the native architecture and its sub-architectures
 * from archMap; an entry kept only when its includes hold and its excludes
 * do not: architectures, the capabilities the process is given (Docker's
 * default set), minimum kernel version) into an OCI `linux.seccomp` object.
 * The `oci` backend puts that object into config.json and the runtime
 * applies it; the `namespaces` and `chroot` backends compile the same
 * object with libseccomp into a BPF program before fork, and the child
 * loads it right before exec, after no_new_privs.
 *
 * Like runc (which the `oci` backend runs), a system call newer than every
 * one the profile names fails with ENOSYS rather than the default EPERM, so
 * that a C library that knows a newer call falls back to the older one
 * (fchmodat2 → fchmodat, clone3 → clone): a short BPF prefix, for the
 * native architecture, before libseccomp's program.
 */
#include "execute/internal.h"
#include "util/error.h"
#include "util/json.h"

#include <errno.h>
#include <pthread.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

/* seccomp/docker-default.json, embedded (the generated seccomp-profile.c). */
extern const unsigned char ib_execute__seccomp_profile[];
extern const size_t ib_execute__seccomp_profile_size;

/* The architecture names dockerd matches: libseccomp's Go names and the archMap names. */
#if defined(__x86_64__) && defined(__ILP32__)
#define NATIVE_GO "x32"
#define NATIVE_SCMP "SCMP_ARCH_X32"
#elif defined(__x86_64__)
#define NATIVE_GO "amd64"
#define NATIVE_SCMP "SCMP_ARCH_X86_64"
#elif defined(__i386__)
#define NATIVE_GO "x86"
#define NATIVE_SCMP "SCMP_ARCH_X86"
#elif defined(__aarch64__)
#define NATIVE_GO "arm64"
#define NATIVE_SCMP "SCMP_ARCH_AARCH64"
#elif defined(__arm__)
#define NATIVE_GO "arm"
#define NATIVE_SCMP "SCMP_ARCH_ARM"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_GO "ppc64le"
#define NATIVE_SCMP "SCMP_ARCH_PPC64LE"
#elif defined(__s390x__)
#define NATIVE_GO "s390x"
#define NATIVE_SCMP "SCMP_ARCH_S390X"
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_GO "riscv64"
#define NATIVE_SCMP "SCMP_ARCH_RISCV64"
#else
#error "seccomp: unknown architecture (add it to lib/execute/seccomp.c)"
#endif

static int in_array(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

static int has_cap(const char *name)
{
	for (size_t i = 0; i < ib_execute__default_caps_count; i++)
		if (strcmp(ib_execute__default_cap_names[i], name) == 0)
			return 1;
	return 0;
}

/* "4.8" against the running kernel: 1 when the kernel is at least that. */
static int kernel_at_least(const char *version)
{
	struct utsname u;
	int kmaj = 0, kmin = 0, maj = 0, min = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &kmaj, &kmin) < 1)
		return 0;
	if (sscanf(version, "%d.%d", &maj, &min) < 1)
		return 0;
	return kmaj > maj || (kmaj == maj && kmin >= min);
}

/* Whether a profile entry applies here, as dockerd decides (profiles/seccomp/seccomp_linux.go). */
static int entry_applies(const json_t *call)
{
	const json_t *exc = json_object_get(call, "excludes");
	const json_t *inc = json_object_get(call, "includes");
	const json_t *v;
	size_t i;
	if (json_is_object(exc)) {
		if (json_is_array(v = json_object_get(exc, "arches")) && in_array(v, NATIVE_GO))
			return 0;
		json_t *c;
		if (json_is_array(v = json_object_get(exc, "caps")))
			json_array_foreach(v, i, c)
				if (json_is_string(c) && has_cap(json_string_value(c)))
					return 0;
		if (json_is_string(v = json_object_get(exc, "minKernel")) &&
		    kernel_at_least(json_string_value(v)))
			return 0;
	}
	if (json_is_object(inc)) {
		if (json_is_array(v = json_object_get(inc, "arches")) && json_array_size(v) &&
		    !in_array(v, NATIVE_GO))
			return 0;
		json_t *c;
		if (json_is_array(v = json_object_get(inc, "caps")))
			json_array_foreach(v, i, c)
				if (!json_is_string(c) || !has_cap(json_string_value(c)))
					return 0;
		if (json_is_string(v = json_object_get(inc, "minKernel")) &&
		    !kernel_at_least(json_string_value(v)))
			return 0;
	}
	return 1;
}

int ib_execute__seccomp_oci(json_t **out)
{
	json_t *prof = NULL;
	*out = NULL;
	if (ib_json_loadb(&prof, (const char *)ib_execute__seccomp_profile,
			  ib_execute__seccomp_profile_size, "the built-in seccomp profile") < 0)
		return IB_ERROR;
	json_t *o = json_object(), *arches = json_array(), *calls = json_array();
	if (!o || !arches || !calls) {
		json_decref(o);
		json_decref(arches);
		json_decref(calls);
		json_decref(prof);
		return ib_error_oom();
	}
	json_object_set(o, "defaultAction", json_object_get(prof, "defaultAction"));
	if (json_object_get(prof, "defaultErrnoRet"))
		json_object_set(o, "defaultErrnoRet", json_object_get(prof, "defaultErrnoRet"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(prof, "archMap"), i, v) {
		const char *a = ib_json_str(v, "architecture");
		if (!a || strcmp(a, NATIVE_SCMP) != 0)
			continue;
		json_array_append_new(arches, json_string(a));
		size_t j;
		json_t *sub;
		json_array_foreach(json_object_get(v, "subArchitectures"), j, sub)
			json_array_append(arches, sub);
	}
	json_array_foreach(json_object_get(prof, "syscalls"), i, v) {
		if (!entry_applies(v))
			continue;
		json_t *c = json_object();
		json_object_set(c, "names", json_object_get(v, "names"));
		json_object_set(c, "action", json_object_get(v, "action"));
		if (json_object_get(v, "errnoRet"))
			json_object_set(c, "errnoRet", json_object_get(v, "errnoRet"));
		json_t *args = json_object_get(v, "args");
		if (json_is_array(args) && json_array_size(args))
			json_object_set(c, "args", args);
		json_array_append_new(calls, c);
	}
	json_object_set_new(o, "architectures", arches);
	json_object_set_new(o, "syscalls", calls);
	json_decref(prof);
	if (!json_is_string(json_object_get(o, "defaultAction"))) {
		json_decref(o);
		return ib_error_set(IB_LAYER_EXECUTE, "the built-in seccomp profile has no defaultAction");
	}
	*out = o;
	return 0;
}

/* ---- libseccomp ---- */

static int parse_action(uint32_t *out, const char *name, const json_t *errno_ret, int def_errno)
{
	int e = json_is_integer(errno_ret) ? (int)json_integer_value(errno_ret) : def_errno;
	if (!name)
		return -1;
	if (!strcmp(name, "SCMP_ACT_ALLOW"))
		*out = SCMP_ACT_ALLOW;
	else if (!strcmp(name, "SCMP_ACT_ERRNO"))
		*out = SCMP_ACT_ERRNO((uint16_t)e);
	else if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD"))
		*out = SCMP_ACT_KILL_THREAD;
	else if (!strcmp(name, "SCMP_ACT_KILL_PROCESS"))
		*out = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(name, "SCMP_ACT_LOG"))
		*out = SCMP_ACT_LOG;
	else if (!strcmp(name, "SCMP_ACT_TRAP"))
		*out = SCMP_ACT_TRAP;
	else
		return -1;
	return 0;
}

static int parse_op(enum scmp_compare *out, const char *op)
{
	static const struct { const char *name; enum scmp_compare op; } ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
		{ "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
		{ "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};
	for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++)
		if (!strcmp(op, ops[i].name)) {
			*out = ops[i].op;
			return 0;
		}
	return -1;
}

#define MAX_ARGS 6

/* One profile entry's conditions; -1 when malformed. */
static int parse_args(struct scmp_arg_cmp *cmp, unsigned int *n, const json_t *args)
{
	size_t i;
	json_t *a;
	*n = 0;
	json_array_foreach(args, i, a) {
		enum scmp_compare op;
		json_t *idx = json_object_get(a, "index");
		if (*n >= MAX_ARGS || !json_is_integer(idx) || json_integer_value(idx) < 0 ||
		    json_integer_value(idx) >= 6 || parse_op(&op, ib_json_str(a, "op")) < 0)
			return -1;
		cmp[*n].arg = (unsigned int)json_integer_value(idx);
		cmp[*n].op = op;
		cmp[*n].datum_a = (scmp_datum_t)json_integer_value(json_object_get(a, "value"));
		cmp[*n].datum_b = (scmp_datum_t)json_integer_value(json_object_get(a, "valueTwo"));
		(*n)++;
	}
	return 0;
}

static int add_rules(scmp_filter_ctx ctx, const json_t *call, uint32_t action, int *max_native)
{
	struct scmp_arg_cmp cmp[MAX_ARGS];
	unsigned int ncmp;
	if (parse_args(cmp, &ncmp, json_object_get(call, "args")) < 0)
		return -EINVAL;
	/* runc: conditions on one argument twice are alternatives, else they all must hold */
	int repeated = 0;
	for (unsigned int i = 0; i < ncmp; i++)
		for (unsigned int j = i + 1; j < ncmp; j++)
			if (cmp[i].arg == cmp[j].arg)
				repeated = 1;
	size_t i;
	json_t *name;
	json_array_foreach(json_object_get(call, "names"), i, name) {
		if (!json_is_string(name))
			return -EINVAL;
		int nr = seccomp_syscall_resolve_name(json_string_value(name));
		if (nr == __NR_SCMP_ERROR)
			continue; /* unknown to this libseccomp: runc skips it too */
		int native = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, json_string_value(name));
		if (native >= 0 && native > *max_native)
			*max_native = native;
		int rc;
		if (repeated) {
			for (unsigned int k = 0; k < ncmp; k++)
				if ((rc = seccomp_rule_add_array(ctx, action, nr, 1, &cmp[k])) < 0)
					return rc;
		} else if ((rc = seccomp_rule_add_array(ctx, action, nr, ncmp, cmp)) < 0) {
			return rc;
		}
	}
	return 0;
}

static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **prog, size_t *len)
{
	int fd = memfd_create("ib-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return ib_error_set_os(IB_LAYER_EXECUTE, "memfd_create");
	int rc = seccomp_export_bpf(ctx, fd);
	off_t size = rc < 0 ? -1 : lseek(fd, 0, SEEK_END);
	if (rc < 0 || size <= 0 || size % (off_t)sizeof(struct sock_filter)) {
		close(fd);
		return ib_error_set(IB_LAYER_EXECUTE, "seccomp: export the BPF program: %s",
				    strerror(rc < 0 ? -rc : EIO));
	}
	*prog = ib_calloc(1, (size_t)size);
	if (!*prog) {
		close(fd);
		return IB_ERROR;
	}
	ssize_t got = pread(fd, *prog, (size_t)size, 0);
	close(fd);
	if (got != size) {
		free(*prog);
		*prog = NULL;
		return ib_error_set(IB_LAYER_EXECUTE, "seccomp: read the BPF program back");
	}
	*len = (size_t)size / sizeof(struct sock_filter);
	return 0;
}

int ib_execute__seccomp_bpf(ib_execute__seccomp_prog *out)
{
	memset(out, 0, sizeof *out);
	json_t *o = NULL;
	if (ib_execute__seccomp_oci(&o) < 0)
		return IB_ERROR;
	int def_errno = EPERM; /* runc's errno for SCMP_ACT_ERRNO without errnoRet */
	json_t *der = json_object_get(o, "defaultErrnoRet");
	if (json_is_integer(der))
		def_errno = (int)json_integer_value(der);
	uint32_t def_action;
	scmp_filter_ctx ctx = NULL;
	int rc = 0, max_native = -1;
	const char *what = "defaultAction";
	if (parse_action(&def_action, ib_json_str(o, "defaultAction"), der, def_errno) < 0 ||
	    !(ctx = seccomp_init(def_action)))
		rc = -EINVAL;
	size_t i;
	json_t *v;
	if (rc == 0) {
		json_array_foreach(json_object_get(o, "architectures"), i, v) {
			char name[64];
			const char *a = json_string_value(v);
			if (!a || strncmp(a, "SCMP_ARCH_", 10) != 0 || strlen(a) >= sizeof name + 10) {
				rc = -EINVAL;
				what = "architectures";
				break;
			}
			size_t k;
			for (k = 0; a[10 + k]; k++)
				name[k] = (char)(a[10 + k] >= 'A' && a[10 + k] <= 'Z' ? a[10 + k] + 32 : a[10 + k]);
			name[k] = '\0';
			uint32_t token = seccomp_arch_resolve_name(name);
			if (!token)
				continue; /* unknown to this libseccomp */
			int r = seccomp_arch_add(ctx, token);
			if (r < 0 && r != -EEXIST) {
				rc = r;
				what = a;
				break;
			}
		}
	}
	if (rc == 0) {
		json_array_foreach(json_object_get(o, "syscalls"), i, v) {
			uint32_t action;
			what = json_string_value(json_array_get(json_object_get(v, "names"), 0));
			if (parse_action(&action, ib_json_str(v, "action"), json_object_get(v, "errnoRet"),
					 def_errno) < 0) {
				rc = -EINVAL;
				break;
			}
			if (action == def_action) {
				/* the default does it; still counts for the newest call the profile knows */
				json_t *n;
				size_t k;
				json_array_foreach(json_object_get(v, "names"), k, n) {
					int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE,
										   json_string_value(n));
					if (nr > max_native)
						max_native = nr;
				}
				continue;
			}
			if ((rc = add_rules(ctx, v, action, &max_native)) < 0)
				break;
		}
	}
	struct sock_filter *body = NULL;
	size_t body_len = 0;
	if (rc < 0) {
		ib_error_set(IB_LAYER_EXECUTE, "the built-in seccomp profile: `%s`: %s",
			     what ? what : "?", strerror(-rc));
		rc = IB_ERROR;
	} else {
		rc = export_bpf(ctx, &body, &body_len);
	}
	if (ctx)
		seccomp_release(ctx);
	json_decref(o);
	if (rc < 0)
		return rc;
	/*
	 * runc's prefix: on the native architecture, a call numbered above
	 * every call the profile names fails with ENOSYS. On x86_64 the x32
	 * calls (bit 30) are left to the profile.
	 */
	struct sock_filter stub[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)seccomp_arch_native(), 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000U, 2, 0),
#else
		BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0),
#endif
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)max_native, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
	};
	size_t nstub = max_native > 0 ? sizeof stub / sizeof stub[0] : 0;
	if (body_len + nstub > BPF_MAXINSNS) {
		free(body);
		return ib_error_set(IB_LAYER_EXECUTE, "the built-in seccomp profile compiles to %zu "
				    "BPF instructions, over the kernel's %d", body_len + nstub, BPF_MAXINSNS);
	}
	out->filter = ib_calloc(body_len + nstub, sizeof *out->filter);
	if (!out->filter) {
		free(body);
		return IB_ERROR;
	}
	memcpy(out->filter, stub, nstub * sizeof *stub);
	memcpy(out->filter + nstub, body, body_len * sizeof *body);
	out->len = (unsigned short)(body_len + nstub);
	free(body);
	return 0;
}

/* The program depends only on the profile, the capabilities and the kernel: made once. */
static pthread_mutex_t cached_lock = PTHREAD_MUTEX_INITIALIZER;
static ib_execute__seccomp_prog cached;

int ib_execute__seccomp_bpf_cached(const ib_execute__seccomp_prog **out)
{
	int rc = 0;
	pthread_mutex_lock(&cached_lock);
	if (!cached.filter)
		rc = ib_execute__seccomp_bpf(&cached);
	pthread_mutex_unlock(&cached_lock);
	*out = rc < 0 ? NULL : &cached;
	return rc;
}

void ib_execute__seccomp_dispose(ib_execute__seccomp_prog *prog)
{
	free(prog->filter);
	prog->filter = NULL;
	prog->len = 0;
}

int ib_execute__join_session_keyring(void)
{
	/* KEYCTL_JOIN_SESSION_KEYRING with no name: a new anonymous session keyring */
	if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0L, 0L, 0L, 0L) < 0)
		return -errno;
	return 0;
}

int ib_execute__seccomp_load(const ib_execute__seccomp_prog *prog)
{
	struct sock_fprog fprog = { prog->len, prog->filter };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0U, &fprog) < 0)
		return -errno;
	return 0;
}
