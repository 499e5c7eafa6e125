/* The isolation backends, registered and chosen by name. */
#include "execute/internal.h"
#include "util/buf.h"
#include "util/error.h"

#include <linux/capability.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct entry {
	char *name;
	ib_isolation_ctor ctor;
	void *param;
	struct entry *next;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;
static int builtins_done;

static int add_locked(const char *name, ib_isolation_ctor ctor, void *param)
{
	for (entry *e = entries; e; e = e->next) {
		if (strcmp(e->name, name) == 0) {
			e->ctor = ctor;
			e->param = param;
			return 0;
		}
	}
	entry *e = ib_calloc(1, sizeof *e);
	if (!e || !(e->name = ib_strdup(name))) {
		free(e);
		return IB_ERROR;
	}
	e->ctor = ctor;
	e->param = param;
	/* append: the list keeps registration order */
	entry **tail = &entries;
	while (*tail)
		tail = &(*tail)->next;
	*tail = e;
	return 0;
}

static int builtins_locked(void)
{
	if (builtins_done)
		return 0;
	builtins_done = 1;
	int rc = 0;
#ifndef IB_NO_ISOLATION_NAMESPACES
	rc |= add_locked("namespaces", ib_execute__namespaces_new, NULL);
#endif
#ifndef IB_NO_ISOLATION_OCI
	rc |= add_locked("oci", ib_execute__oci_new, NULL);
#endif
#ifndef IB_NO_ISOLATION_CHROOT
	rc |= add_locked("chroot", ib_execute__chroot_new, NULL);
#endif
	return rc < 0 ? IB_ERROR : 0;
}

int ib_isolation_register(const char *name, ib_isolation_ctor ctor, void *param)
{
	if (!name || !*name || !ctor)
		return ib_error_setc(IB_EINVALID, IB_LAYER_EXECUTE,
				     "ib_isolation_register: a name and a constructor are required");
	pthread_mutex_lock(&lock);
	int rc = builtins_locked();
	if (rc == 0)
		rc = add_locked(name, ctor, param);
	pthread_mutex_unlock(&lock);
	return rc;
}

int ib_isolation_unregister(const char *name)
{
	pthread_mutex_lock(&lock);
	int rc = builtins_locked();
	entry **pp = &entries;
	while (rc == 0 && *pp && strcmp((*pp)->name, name ? name : "") != 0)
		pp = &(*pp)->next;
	if (rc == 0 && *pp) {
		entry *e = *pp;
		*pp = e->next;
		free(e->name);
		free(e);
	} else if (rc == 0) {
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_EXECUTE, "no isolation backend named `%s`",
				   name ? name : "");
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int ib_isolation_list(ib_buf *out)
{
	pthread_mutex_lock(&lock);
	int rc = builtins_locked();
	ib_buf_clear(out);
	for (entry *e = entries; rc == 0 && e; e = e->next) {
		if (e != entries)
			rc = ib_buf_putc(out, ',');
		if (rc == 0)
			rc = ib_buf_puts(out, e->name);
	}
	if (rc == 0 && !out->ptr)
		rc = ib_buf_grow(out, 0);
	pthread_mutex_unlock(&lock);
	return rc;
}

int ib_isolation_new(ib_isolation **out, const char *name, const ib_execute_options *opts)
{
	ib_execute_options defaults = IB_EXECUTE_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	if (!name)
		name = "namespaces";
	ib_isolation_ctor ctor = NULL;
	void *param = NULL;
	pthread_mutex_lock(&lock);
	int rc = builtins_locked();
	for (entry *e = entries; rc == 0 && e; e = e->next) {
		if (strcmp(e->name, name) == 0) {
			ctor = e->ctor;
			param = e->param;
		}
	}
	pthread_mutex_unlock(&lock);
	if (rc < 0)
		return rc;
	if (!ctor) {
		ib_buf names = IB_BUF_INIT;
		ib_isolation_list(&names);
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_EXECUTE,
				   "no isolation backend named `%s` (known: %s)", name, ib_buf_cstr(&names));
		ib_buf_dispose(&names);
		return rc;
	}
	*out = NULL;
	if ((rc = ctor(out, opts, param)) < 0)
		return rc;
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
	if (iso->probe)
		rc = iso->probe(iso);
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
