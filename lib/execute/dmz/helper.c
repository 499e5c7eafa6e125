/*
 * The exec helper (runc-dmz's idea, in our own words): a tiny static
 * program, no C library, that the namespaces and chroot backends execute
 * from a sealed memfd right before the command. Once it runs, the
 * process's /proc/self/exe names this sealed copy, not the embedder's
 * binary (the CLI, python3...), so nothing the command's exec resolves
 * (a `#!` interpreter, an ELF PT_INTERP, a link to /proc/self/exe) can
 * start the embedder inside the container (CVE-2019-5736's shape).
 *
 * argv: the marker, the path to execute, then the command's own argv.
 * Descriptor 3 is the setup error pipe: it gets close-on-exec here, and
 * when the exec fails the reason goes there, as ib_execute__child_error (internal.h).
 * Run any other way (as an interpreter through /proc/self/exe), it says so
 * and exits 126.
 */
#include <stddef.h>

#define MARKER "\x01imagebuild-exec"
#define E_NOENT 2
#define E_NOEXEC 8
#define E_ACCES 13
#define F_SETFD_ 2
#define FD_CLOEXEC_ 1

#if defined(__x86_64__)
#define NR_write 1
#define NR_fcntl 72
#define NR_execve 59
#define NR_exit_group 231
static long sys3(long n, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}
__asm__(".text\n.global _start\n_start:\n"
	"xor %rbp, %rbp\nmov %rsp, %rdi\nand $-16, %rsp\ncall helper_main\nhlt\n");
#elif defined(__aarch64__)
#define NR_write 64
#define NR_fcntl 25
#define NR_execve 221
#define NR_exit_group 94
static long sys3(long n, long a, long b, long c)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
__asm__(".text\n.global _start\n_start:\n"
	"mov x0, sp\nand sp, x0, #-16\nbl helper_main\nbrk #0\n");
#else
#error "exec helper: add this architecture's system calls"
#endif

/* ib_execute__child_error (lib/execute/internal.h) */
typedef struct {
	int err;
	int code;
	char message[1024];
} child_error;

static size_t len(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static size_t put(char *buf, size_t at, size_t size, const char *s)
{
	while (*s && at + 1 < size)
		buf[at++] = *s++;
	buf[at] = '\0';
	return at;
}

static const char *describe(long err)
{
	switch (err) {
	case E_NOENT: return "no such file or directory";
	case E_ACCES: return "permission denied";
	case E_NOEXEC: return "exec format error";
	case 7: return "argument list too long";
	case 12: return "out of memory";
	case 20: return "not a directory";
	case 26: return "text file busy";
	case 40: return "too many levels of symbolic links";
	case 1: return "operation not permitted";
	default: return "exec failed";
	}
}

__attribute__((noreturn)) void helper_main(long *sp);
__attribute__((noreturn)) void helper_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	const char *m = MARKER;
	int ours = argc >= 3;
	for (size_t i = 0; ours && i <= len(m); i++)
		if (argv[0][i] != m[i])
			ours = 0;
	if (!ours) {
		static const char msg[] = "imagebuild: /proc/self/exe names imagebuild's exec helper "
					  "inside a container; it runs no program\n";
		sys3(NR_write, 2, (long)msg, sizeof msg - 1);
		sys3(NR_exit_group, 126, 0, 0);
		__builtin_unreachable();
	}
	sys3(NR_fcntl, 3, F_SETFD_, FD_CLOEXEC_);
	long rc = sys3(NR_execve, (long)argv[1], (long)(argv + 2), (long)envp);
	long err = -rc;
	static child_error e;
	e.err = 0; /* the message is complete */
	e.code = err == E_NOENT ? 127 : 126;
	size_t at = put(e.message, 0, sizeof e.message, "exec `");
	at = put(e.message, at, sizeof e.message, argv[1]);
	at = put(e.message, at, sizeof e.message, "`: ");
	put(e.message, at, sizeof e.message, describe(err));
	sys3(NR_write, 3, (long)&e, sizeof e);
	sys3(NR_exit_group, e.code, 0, 0);
	__builtin_unreachable();
}
