/*
 * A call-counting `fake` isolation backend for tests that need no root:
 * it runs the command on the host, not isolated at all, with the working
 * directory inside the root and $IB_FAKE_ROOT naming the root, so a
 * Dockerfile's RUN can change the root by writing below "$IB_FAKE_ROOT"
 * (and must write nowhere else). Only shell-form commands ("/bin/sh -c
 * ...") are run; anything else exits 127. Register it with
 * ib_isolation_register("fake", fake_isolation_new, &counts).
 */
#ifndef IB_TEST_FAKE_ISOLATION_H
#define IB_TEST_FAKE_ISOLATION_H

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "imagebuild/sys/isolation.h"

typedef struct {
	int news, starts, kills, finishes, frees;
	char last_command[4096];  /* argv[2] of the last start */
	char last_env[4096];      /* its environment, one "K=V\n" per entry */
	char last_cwd[1024];
} fake_isolation_counts;

struct ib_isolation_run {
	pid_t pid;
};

typedef struct {
	ib_isolation parent;
	fake_isolation_counts *counts;
} fake_isolation;

/* the counts are shared by the builds' stage threads (--jobs) */
static pthread_mutex_t fake_isolation_mu = PTHREAD_MUTEX_INITIALIZER;

static int fake_isolation_start(ib_isolation *self, ib_isolation_run **run, int *pid,
				ib_exit_status *st, const ib_isolation_spec *s)
{
	fake_isolation_counts *c = ((fake_isolation *)self)->counts;
	(void)st;
	pthread_mutex_lock(&fake_isolation_mu);
	c->starts++;
	snprintf(c->last_command, sizeof c->last_command, "%s", s->argv[1] && s->argv[2] ? s->argv[2] : "");
	size_t used = 0;
	c->last_env[0] = '\0';
	for (size_t i = 0; s->env[i] && used < sizeof c->last_env; i++)
		used += (size_t)snprintf(c->last_env + used, sizeof c->last_env - used, "%s\n", s->env[i]);
	snprintf(c->last_cwd, sizeof c->last_cwd, "%s", s->cwd);
	pthread_mutex_unlock(&fake_isolation_mu);
	*run = calloc(1, sizeof **run);
	pid_t child = fork();
	if (child == 0) {
		for (int fd = 0; fd < 3; fd++)
			if (s->stdio[fd] != fd && dup2(s->stdio[fd], fd) < 0)
				_exit(126);
		char dir[4200];
		snprintf(dir, sizeof dir, "%s%s", s->rootfs, s->cwd);
		if (chdir(dir) < 0)
			_exit(126);
		size_t n = 0;
		while (s->env[n])
			n++;
		char **env = calloc(n + 2, sizeof *env);
		for (size_t i = 0; i < n; i++)
			env[i] = (char *)s->env[i];
		char root[4200];
		snprintf(root, sizeof root, "IB_FAKE_ROOT=%s", s->rootfs);
		env[n] = root;
		if (strcmp(s->argv[0], "/bin/sh") != 0 || !s->argv[1] || strcmp(s->argv[1], "-c") != 0)
			_exit(127);
		execve("/bin/sh", (char *const *)s->argv, env);
		_exit(127);
	}
	(*run)->pid = child;
	*pid = child;
	return 0;
}

static int fake_isolation_kill(ib_isolation *self, ib_isolation_run *run)
{
	pthread_mutex_lock(&fake_isolation_mu);
	((fake_isolation *)self)->counts->kills++;
	pthread_mutex_unlock(&fake_isolation_mu);
	kill(run->pid, SIGKILL);
	return 0;
}

static int fake_isolation_finish(ib_isolation *self, ib_isolation_run *run, int ws,
				 ib_exit_status *out)
{
	pthread_mutex_lock(&fake_isolation_mu);
	((fake_isolation *)self)->counts->finishes++;
	pthread_mutex_unlock(&fake_isolation_mu);
	out->signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
	out->code = out->signal ? 128 + out->signal : WEXITSTATUS(ws);
	free(run);
	return 0;
}

static void fake_isolation_free(ib_isolation *self)
{
	pthread_mutex_lock(&fake_isolation_mu);
	((fake_isolation *)self)->counts->frees++;
	pthread_mutex_unlock(&fake_isolation_mu);
	free(self);
}

static int fake_isolation_new(ib_isolation **out, const ib_execute_options *opts, void *param)
{
	(void)opts;
	fake_isolation *f = calloc(1, sizeof *f);
	if (!f)
		return IB_ERROR;
	ib_isolation_init(&f->parent, IB_ISOLATION_VERSION);
	f->parent.start = fake_isolation_start;
	f->parent.kill = fake_isolation_kill;
	f->parent.finish = fake_isolation_finish;
	f->parent.free = fake_isolation_free;
	/* it binds no /etc/hosts or /etc/resolv.conf at all: nothing there is writable */
	f->parent.features = IB_ISOLATION_RO_NETWORK_FILES;
	f->counts = param;
	pthread_mutex_lock(&fake_isolation_mu);
	f->counts->news++;
	pthread_mutex_unlock(&fake_isolation_mu);
	*out = &f->parent;
	return 0;
}

#endif
