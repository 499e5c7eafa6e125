/* The isolation backends, registered and chosen by name. */
#include "execute/internal.h"
#include "util/buf.h"
#include "util/backend.h"
#include "util/error.h"

#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const ib_backend_builtin builtins[] = {
#ifndef IB_NO_ISOLATION_NAMESPACES
	{ "namespaces", (ib_backend_fn)ib_execute__namespaces_new },
#endif
#ifndef IB_NO_ISOLATION_OCI
	{ "oci", (ib_backend_fn)ib_execute__oci_new },
#endif
#ifndef IB_NO_ISOLATION_CHROOT
	{ "chroot", (ib_backend_fn)ib_execute__chroot_new },
#endif
	{ NULL, NULL }
};

const ib_backend_class ib_execute__isolation_class = {
	IB_BACKEND_ISOLATION, "isolation backend", IB_LAYER_EXECUTE, builtins,
	sizeof builtins / sizeof builtins[0] - 1,
};
#define CLS (&ib_execute__isolation_class)

int ib_isolation_register(const char *name, ib_isolation_ctor ctor, void *param)
{
	return ib_backend_register(CLS, name, (ib_backend_fn)ctor, param);
}

int ib_isolation_unregister(const char *name)
{
	return ib_backend_unregister(CLS, name);
}

int ib_isolation_list(ib_buf *out)
{
	return ib_backend_list(CLS, out);
}

int ib_isolation_init(ib_isolation *iso, unsigned int version)
{
	if (!iso)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "ib_isolation_init: no backend");
	if (version < 1 || version > IB_ISOLATION_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
				     "isolation backend version %u is not supported (1 to %d)",
				     version, IB_ISOLATION_VERSION);
	memset(iso, 0, sizeof *iso);
	iso->version = version;
	return 0;
}

int ib_isolation_new(ib_isolation **out, const char *name, const ib_execute_options *opts)
{
	ib_execute_options defaults = IB_EXECUTE_OPTIONS_INIT;
	if (!out)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE, "ib_isolation_new: no output");
	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (!name)
		name = "namespaces";
	ib_backend_fn fn = NULL;
	void *param = NULL;
	int rc = ib_backend_check_name(CLS, name);
	if (rc == 0)
		rc = ib_backend_find(CLS, name, &fn, &param, NULL);
	if (rc < 0)
		return rc;
	ib_isolation_ctor ctor = (ib_isolation_ctor)fn;
	ib_backend_call call;
	ib_backend_call_begin(&call);
	rc = ctor(out, opts, param);
	if ((rc = ib_backend_call_end(&call, CLS, name, "making an instance", rc)) < 0) {
		*out = NULL;
		return rc;
	}
	if (!*out || (*out)->version < 1 || (*out)->version > IB_ISOLATION_VERSION || !(*out)->start ||
	    !(*out)->finish || !(*out)->free) {
		if (*out && (*out)->free)
			(*out)->free(*out);
		*out = NULL;
		return ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_EXECUTE,
				     "isolation backend `%s`: unsupported interface version or missing "
				     "functions (this library speaks versions 1 to %d)", name, IB_ISOLATION_VERSION);
	}
	return 0;
}

int ib_isolation_probe(const char *name, const ib_execute_options *opts)
{
	ib_isolation *iso;
	int rc = ib_isolation_new(&iso, name, opts);
	if (rc < 0)
		return rc;
	if (iso->probe) {
		ib_backend_call call;
		ib_backend_call_begin(&call);
		rc = iso->probe(iso);
		rc = ib_backend_call_end(&call, CLS, name ? name : "namespaces", "probe", rc);
	}
	iso->free(iso);
	return rc;
}

/* Docker's default capability set. */
const int ib_execute__default_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
	CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
	CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};
const char *const ib_execute__default_cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
};
const size_t ib_execute__default_caps_count =
	sizeof ib_execute__default_caps / sizeof ib_execute__default_caps[0];

const char *const ib_execute__cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
const size_t ib_execute__cap_names_count = sizeof ib_execute__cap_names / sizeof ib_execute__cap_names[0];

static const struct { const char *name; int resource; } rlimits[] = {
	{ "as", RLIMIT_AS }, { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU },
	{ "data", RLIMIT_DATA }, { "fsize", RLIMIT_FSIZE }, { "locks", RLIMIT_LOCKS },
	{ "memlock", RLIMIT_MEMLOCK }, { "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE },
	{ "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "rss", RLIMIT_RSS },
	{ "rtprio", RLIMIT_RTPRIO }, { "rttime", RLIMIT_RTTIME },
	{ "sigpending", RLIMIT_SIGPENDING }, { "stack", RLIMIT_STACK },
};

int ib_execute__rlimit_resource(const char *name)
{
	for (size_t i = 0; name && i < sizeof rlimits / sizeof rlimits[0]; i++)
		if (strcasecmp(rlimits[i].name, name) == 0 ||
		    (strncasecmp(name, "RLIMIT_", 7) == 0 && strcasecmp(rlimits[i].name, name + 7) == 0))
			return rlimits[i].resource;
	return -1;
}

const char *ib_execute__rlimit_name(int resource)
{
	for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++)
		if (rlimits[i].resource == resource)
			return rlimits[i].name;
	return "?";
}
