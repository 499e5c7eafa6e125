/*
 * Where credentials come from, as docker and podman find them:
 *
 *   - the auth files in podman's order: `auth_file` (--authfile), else
 *     $REGISTRY_AUTH_FILE — then that file alone, as podman — else
 *     $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/UID/auth.json
 *     without XDG_RUNTIME_DIR), $XDG_CONFIG_HOME/containers/auth.json
 *     (~/.config/...), then Docker's config.json ($DOCKER_CONFIG or
 *     ~/.docker, or `docker_config`); the first file that has credentials
 *     for the registry gives them;
 *   - in each file, `credHelpers.<registry>` names a credential helper; in
 *     Docker's config.json `credsStore` is the helper of every other
 *     registry, and then `auths` holds no secrets (docker's rule);
 *     otherwise `auths.<registry>` (`auth`, `username`/`password`,
 *     `identitytoken`);
 *   - a helper is `docker-credential-<name>` on PATH, spoken to as
 *     github.com/docker/docker-credential-helpers defines: the action as
 *     its argument (get, store, erase, list), the server URL or a JSON
 *     object on stdin, JSON on stdout; a failure's stdout is its message.
 *     Its stderr is never read (a helper may print anything there).
 */
#include "util/rootless.h"
#include "push/internal.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What a helper may print: far more than any credential. */
#define HELPER_OUTPUT_LIMIT (1u << 20)

static void wipe_buf(ib_buf *b)
{
	if (b->ptr)
		memset(b->ptr, 0, b->size);
	ib_buf_dispose(b);
}

static void free_secret(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

void ib_push__creds_dispose(ib_push__creds *c)
{
	free(c->user);
	free_secret(c->pass);
	free_secret(c->identity_token);
	memset(c, 0, sizeof *c);
}

/* A helper's name becomes a program name: no path, nothing odd. */
static int helper_name_ok(const char *name)
{
	if (!*name)
		return 0;
	for (const char *p = name; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x21)
			return 0;
	return 1;
}

/*
 * The first line of a failed helper's stdout (its message), unless it
 * holds `secret`: that is never repeated.
 */
static void helper_message(char *out, size_t n, const ib_buf *stdout_buf, const char *secret)
{
	out[0] = 0;
	if (!stdout_buf->size)
		return;
	size_t len = strcspn(stdout_buf->ptr, "\r\n");
	if (len > 200)
		len = 200;
	snprintf(out, n, "%.*s", (int)len, stdout_buf->ptr);
	if (secret && *secret && strstr(out, secret))
		snprintf(out, n, "(its message held the secret; not shown)");
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

int ib_push__helper_run(ib_buf *out, int *exit_status, const char *helper, const char *action, const char *input,
			size_t input_len)
{
	if (!helper_name_ok(helper))
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "credential helper `%s`: not a valid helper name", helper);
	char prog[300];
	snprintf(prog, sizeof prog, "docker-credential-%s", helper);
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, devnull = -1, rc = 0;
	posix_spawn_file_actions_t fa;
	int fa_ok = 0;
	pid_t pid = -1;
	ib_buf_clear(out);
	/* stdin is a socket, so a helper that exits unread cannot SIGPIPE us (MSG_NOSIGNAL) */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 || pipe2(outp, O_CLOEXEC) < 0 ||
	    (devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
		rc = ib_error_set_os(IB_LAYER_PUSH, "credential helper %s", prog);
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		rc = ib_error_oom();
		goto out;
	}
	fa_ok = 1;
	posix_spawn_file_actions_adddup2(&fa, in[1], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	char *argv[] = { prog, (char *)action, NULL };
	int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	if (e != 0) {
		pid = -1;
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH,
				   "credential helper %s: %s%s", prog, strerror(e), e == ENOENT ? " (not on PATH)" : "");
		goto out;
	}
	close(in[1]);
	close(outp[1]);
	in[1] = outp[1] = -1;
	size_t off = 0;
	while (off < input_len) {
		ssize_t w = send(in[0], input + off, input_len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* it stopped reading: its exit status and message say why */
		off += (size_t)w;
	}
	shutdown(in[0], SHUT_WR);
	rc = ib_read_fd(out, outp[0], HELPER_OUTPUT_LIMIT, prog);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			if (rc == 0)
				rc = ib_error_set_os(IB_LAYER_PUSH, "credential helper %s: waitpid", prog);
			break;
		}
	}
	pid = -1;
	if (rc == 0)
		rc = ib_buf_puts(out, "");
	if (rc == 0)
		*exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return rc;
}

/* The "not found" message of docker-credential-helpers (credentials.errCredentialsNotFound). */
static int not_found_message(const ib_buf *b)
{
	return b->ptr && strstr(b->ptr, "credentials not found in native keychain") != NULL;
}

int ib_push__helper_get(ib_push__creds *out, const char *helper, const char *server)
{
	ib_buf res = IB_BUF_INIT;
	int status = 0;
	memset(out, 0, sizeof *out);
	int rc = ib_push__helper_run(&res, &status, helper, "get", server, strlen(server));
	if (rc == 0 && status != 0) {
		if (not_found_message(&res)) {
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "credential helper %s: no credentials for %s", helper,
					   server);
		} else {
			char msg[256];
			helper_message(msg, sizeof msg, &res, NULL);
			rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "credential helper docker-credential-%s get %s: exit status %d%s%s",
					   helper, server, status, msg[0] ? ": " : "", msg);
		}
	}
	if (rc == 0) {
		json_t *j = json_loadb(res.ptr, res.size, 0, NULL);
		const char *u = ib_json_str(j, "Username"), *s = ib_json_str(j, "Secret");
		if (!j || !json_is_object(j) || !s) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH,
					   "credential helper docker-credential-%s get %s: not a JSON object with a Secret", helper,
					   server);
		} else if (u && !strcmp(u, "<token>")) { /* an identity token (docker's tokenUsername) */
			rc = (out->identity_token = ib_strdup(s)) ? 0 : IB_ERROR;
		} else if (!*s && (!u || !*u)) {
			rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "credential helper %s: no credentials for %s", helper, server);
		} else {
			rc = (out->user = ib_strdup(u ? u : "")) && (out->pass = ib_strdup(s)) ? 0 : IB_ERROR;
		}
		if (j) {
			/* wipe the secret in jansson's copy too */
			json_t *sv = json_object_get(j, "Secret");
			if (json_is_string(sv))
				memset((char *)json_string_value(sv), 0, json_string_length(sv));
			json_decref(j);
		}
	}
	wipe_buf(&res);
	if (rc < 0)
		ib_push__creds_dispose(out);
	return rc;
}

int ib_push__helper_store(const char *helper, const char *server, const char *user, const char *secret)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "ServerURL", server, "Username", user, "Secret", secret);
	char *in = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!in)
		return ib_error_oom();
	ib_buf res = IB_BUF_INIT;
	int status = 0;
	int rc = ib_push__helper_run(&res, &status, helper, "store", in, strlen(in));
	free_secret(in);
	if (rc == 0 && status != 0) {
		char msg[256];
		helper_message(msg, sizeof msg, &res, secret);
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "credential helper docker-credential-%s store %s: exit status %d%s%s",
				   helper, server, status, msg[0] ? ": " : "", msg);
	}
	wipe_buf(&res);
	return rc;
}

int ib_push__helper_erase(const char *helper, const char *server)
{
	ib_buf res = IB_BUF_INIT;
	int status = 0;
	int rc = ib_push__helper_run(&res, &status, helper, "erase", server, strlen(server));
	if (rc == 0 && status != 0) {
		char msg[256];
		helper_message(msg, sizeof msg, &res, NULL);
		rc = ib_error_setc(not_found_message(&res) ? IB_ENOTFOUND : IB_ERROR, IB_LAYER_PUSH,
				   "credential helper docker-credential-%s erase %s: exit status %d%s%s", helper, server, status,
				   msg[0] ? ": " : "", msg);
	}
	wipe_buf(&res);
	return rc;
}

int ib_push__helper_list(json_t **out, const char *helper)
{
	ib_buf res = IB_BUF_INIT;
	int status = 0;
	*out = NULL;
	int rc = ib_push__helper_run(&res, &status, helper, "list", "", 0);
	if (rc == 0 && status != 0) {
		char msg[256];
		helper_message(msg, sizeof msg, &res, NULL);
		rc = ib_error_setc(IB_ERROR, IB_LAYER_PUSH, "credential helper docker-credential-%s list: exit status %d%s%s",
				   helper, status, msg[0] ? ": " : "", msg);
	}
	if (rc == 0) {
		json_t *j = json_loadb(res.ptr, res.size, 0, NULL);
		if (!json_is_object(j)) {
			json_decref(j);
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "credential helper docker-credential-%s list: not a JSON object",
					   helper);
		} else {
			*out = j;
		}
	}
	wipe_buf(&res);
	return rc;
}

/* ---- which files ---- */

int ib_push__auth_files(ib_push__auth_file **out, size_t *n, const ib_registry_options *opts)
{
	ib_push__auth_file *f = ib_calloc(5, sizeof *f);
	size_t k = 0;
	*out = NULL;
	*n = 0;
	if (!f)
		return IB_ERROR;
	const char *given = opts && opts->version >= 3 ? opts->auth_file : NULL;
	const char *env = getenv("REGISTRY_AUTH_FILE");
	int rc = 0;
	if (given && *given) {
		f[k].docker = 0;
		rc = (f[k++].path = ib_strdup(given)) ? 0 : IB_ERROR;
	} else if (env && *env) {
		f[k].docker = 0;
		rc = (f[k++].path = ib_strdup(env)) ? 0 : IB_ERROR;
	} else {
		const char *run = getenv("XDG_RUNTIME_DIR"), *cfg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
		/* the caller's uid, not root's of the namespace ib_rootless_enter made (podman's path) */
		uid_t uid = getuid();
		ib_rootless__host_ids(&uid, NULL);
		char rundir[64];
		snprintf(rundir, sizeof rundir, "/run/containers/%u", (unsigned)uid);
		/* an ordinary user without XDG_RUNTIME_DIR may not even look into root's /run/containers:
		 * no file there, as podman sees it */
		int closed = !(run && *run) && access(rundir, X_OK) < 0 && errno == EACCES;
		if (!closed) {
			f[k].path = run && *run ? ib_sprintf("%s/containers/auth.json", run)
						: ib_sprintf("%s/auth.json", rundir);
			rc = f[k++].path ? 0 : IB_ERROR;
		}
		if (rc == 0 && ((cfg && *cfg) || (home && *home))) {
			f[k].path = cfg && *cfg ? ib_sprintf("%s/containers/auth.json", cfg)
						: ib_sprintf("%s/.config/containers/auth.json", home);
			rc = f[k++].path ? 0 : IB_ERROR;
		}
		ib_buf p = IB_BUF_INIT;
		if (rc == 0) {
			int prc = ib_push__config_path(&p, opts ? opts->docker_config : NULL);
			if (prc == 0) {
				f[k].docker = 1;
				f[k++].path = ib_buf_detach(&p);
			} else if (prc == IB_ENOTFOUND) {
				ib_error_clear();
			} else {
				rc = prc;
			}
		}
		ib_buf_dispose(&p);
	}
	if (rc < 0) {
		ib_push__auth_files_free(f, k);
		return rc;
	}
	*out = f;
	*n = k;
	return 0;
}

void ib_push__auth_files_free(ib_push__auth_file *f, size_t n)
{
	if (!f)
		return;
	for (size_t i = 0; i < n; i++)
		free(f[i].path);
	free(f);
}

int ib_push__login_file(ib_buf *out, const ib_registry_options *opts)
{
	const char *given = opts && opts->version >= 3 ? opts->auth_file : NULL;
	const char *env = getenv("REGISTRY_AUTH_FILE");
	ib_buf_clear(out);
	if (given && *given)
		return ib_buf_puts(out, given);
	if (env && *env)
		return ib_buf_puts(out, env);
	return ib_push__config_path(out, opts ? opts->docker_config : NULL);
}

int ib_push__credentials(ib_push__creds *out, const char *domain, const char *repo, const ib_registry_options *opts)
{
	ib_push__auth_file *files = NULL;
	size_t n = 0;
	memset(out, 0, sizeof *out);
	int rc = ib_push__auth_files(&files, &n, opts);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = ib_push__file_credentials(out, files[i].path, domain, repo, files[i].docker ? IB_PUSH_CREDS_DOCKER : 0);
		if (rc == 0)
			break;
		if (rc == IB_ENOTFOUND) {
			ib_error_clear();
			rc = 0;
			if (i + 1 == n)
				rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "no credentials for %s", domain);
		}
	}
	if (rc == 0 && n == 0)
		rc = ib_error_setc(IB_ENOTFOUND, IB_LAYER_PUSH, "no credentials for %s", domain);
	ib_push__auth_files_free(files, n);
	return rc;
}
