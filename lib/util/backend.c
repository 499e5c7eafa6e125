/* The registry of pluggable backends, one for both kinds (util/backend.h). */
#include "util/backend.h"
#include "util/buf.h"
#include "util/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
	struct entry *next;
	char *name;          /* never freed: snapshotter handles point at it */
	ib_backend_fn ctor;
	void *param;
	int live;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *entries[IB_BACKEND_KINDS];
static int builtins_done[IB_BACKEND_KINDS];

static entry *find_locked(ib_backend_kind kind, const char *name)
{
	for (entry *e = entries[kind]; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static int put_locked(ib_backend_kind kind, const char *name, ib_backend_fn ctor, void *param)
{
	entry *e = find_locked(kind, name);
	if (e && e->live) {
		e->ctor = ctor;
		e->param = param;
		return 0;
	}
	if (e) {
		/* an unregistered name comes back last, as a new registration would */
		entry **pp = &entries[kind];
		while (*pp != e)
			pp = &(*pp)->next;
		*pp = e->next;
	} else {
		if (!(e = ib_calloc(1, sizeof *e)))
			return IB_ERROR;
		if (!(e->name = ib_strdup(name))) {
			free(e);
			return IB_ERROR;
		}
	}
	e->ctor = ctor;
	e->param = param;
	e->live = 1;
	e->next = NULL;
	entry **tail = &entries[kind];
	while (*tail)
		tail = &(*tail)->next;
	*tail = e;
	return 0;
}

static int builtins_locked(const ib_backend_class *cls)
{
	if (builtins_done[cls->kind])
		return 0;
	for (size_t i = 0; i < cls->nbuiltins; i++)
		if (put_locked(cls->kind, cls->builtins[i].name, cls->builtins[i].ctor, NULL) < 0)
			return IB_ERROR;
	builtins_done[cls->kind] = 1;
	return 0;
}

int ib_backend_check_name(const ib_backend_class *cls, const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 32 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return ib_error_setc(IB_EINVALID, cls->layer,
				     "%s name `%s` is not 1..32 characters of [a-z0-9_-]", cls->label,
				     name ? name : "(null)");
	return 0;
}

int ib_backend_register(const ib_backend_class *cls, const char *name, ib_backend_fn ctor,
			void *param)
{
	if (ib_backend_check_name(cls, name) < 0)
		return IB_EINVALID;
	if (!ctor)
		return ib_error_setc(IB_EINVALID, cls->layer, "%s `%s`: no constructor", cls->label,
				     name);
	pthread_mutex_lock(&lock);
	int rc = builtins_locked(cls);
	if (rc == 0)
		rc = put_locked(cls->kind, name, ctor, param);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int list_locked(const ib_backend_class *cls, ib_buf *out, const char *sep)
{
	int rc = 0;
	ib_buf_clear(out);
	for (entry *e = entries[cls->kind]; rc == 0 && e; e = e->next) {
		if (!e->live)
			continue;
		if (out->size)
			rc = ib_buf_puts(out, sep);
		if (rc == 0)
			rc = ib_buf_puts(out, e->name);
	}
	if (rc == 0 && !out->ptr)
		rc = ib_buf_grow(out, 0);
	return rc;
}

static int not_found_locked(const ib_backend_class *cls, const char *name)
{
	ib_buf names = IB_BUF_INIT;
	list_locked(cls, &names, ", ");
	int rc = ib_error_setc(IB_ENOTFOUND, cls->layer, "no %s named `%s` (known: %s)", cls->label,
			       name ? name : "(null)", names.size ? ib_buf_cstr(&names) : "none");
	ib_buf_dispose(&names);
	return rc;
}

int ib_backend_unregister(const ib_backend_class *cls, const char *name)
{
	pthread_mutex_lock(&lock);
	int rc = builtins_locked(cls);
	entry *e = rc == 0 && name ? find_locked(cls->kind, name) : NULL;
	if (rc == 0 && (!e || !e->live))
		rc = not_found_locked(cls, name);
	else if (e)
		e->live = 0;
	pthread_mutex_unlock(&lock);
	return rc;
}

int ib_backend_find(const ib_backend_class *cls, const char *name, ib_backend_fn *ctor,
		    void **param, const char **interned)
{
	pthread_mutex_lock(&lock);
	int rc = builtins_locked(cls);
	entry *e = rc == 0 && name ? find_locked(cls->kind, name) : NULL;
	if (rc == 0 && (!e || !e->live)) {
		rc = not_found_locked(cls, name);
	} else if (e) {
		*ctor = e->ctor;
		if (param)
			*param = e->param;
		if (interned)
			*interned = e->name;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int ib_backend_list(const ib_backend_class *cls, ib_buf *out)
{
	if (!out)
		return ib_error_setc(IB_EINVALID, cls->layer, "list %ss: no output buffer", cls->label);
	pthread_mutex_lock(&lock);
	int rc = builtins_locked(cls);
	if (rc == 0)
		rc = list_locked(cls, out, ",");
	pthread_mutex_unlock(&lock);
	return rc;
}

void ib_backend_reset(void)
{
	pthread_mutex_lock(&lock);
	for (int k = 0; k < IB_BACKEND_KINDS; k++) {
		for (entry *e = entries[k]; e; e = e->next) {
			e->live = 0;
			e->param = NULL;
		}
		builtins_done[k] = 0;
	}
	pthread_mutex_unlock(&lock);
}

void ib_backend_call_begin(ib_backend_call *c)
{
	ib_error_save(&c->before);
}

int ib_backend_call_end_quiet(ib_backend_call *c, int rc)
{
	if (rc >= 0)
		ib_error_restore(&c->before);
	else
		ib_error_saved_dispose(&c->before);
	return rc;
}

int ib_backend_call_end(ib_backend_call *c, const ib_backend_class *cls, const char *name,
			const char *op, int rc)
{
	if (rc >= 0 || !cls)
		return ib_backend_call_end_quiet(c, rc);
	ib_error_saved_dispose(&c->before);
	if (ib_error_current() == IB_OK)
		ib_error_setc(rc, cls->layer, "%s `%s`: %s failed without a reason", cls->label,
			      name ? name : "?", op);
	else
		ib_error_adopt_layer(cls->layer);
	return rc;
}
