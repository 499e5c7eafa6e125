/*
 * docker login / logout: check credentials against a registry, keep them in
 * the login file (ib_push__login_file: --authfile, $REGISTRY_AUTH_FILE, else
 * Docker's config) — or, when that file names a credential helper for the
 * registry (credHelpers, credsStore), in the helper: then, as docker does,
 * `auths` gets the registry's key with no secret in it.
 */
#include "push/internal.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>

/* The helper the login file names for `host` (a new string), or NULL; rc < 0 on a broken file. */
static int login_helper(char **helper, const char *path, const char *host, int docker)
{
	json_t *j = NULL;
	*helper = NULL;
	int rc = ib_json_load_file(&j, path);
	if (rc == IB_ENOTFOUND) {
		ib_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	const char *h = json_is_object(j) ? ib_push__config_helper(j, host, docker) : NULL;
	if (h && !(*helper = ib_strdup(h)))
		rc = IB_ERROR;
	json_decref(j);
	return rc;
}

/* Docker's config file (not an auth file given or named by REGISTRY_AUTH_FILE): credsStore applies. */
static int is_docker_file(const ib_registry_options *opts)
{
	const char *given = opts && opts->version >= 3 ? opts->auth_file : NULL;
	const char *env = getenv("REGISTRY_AUTH_FILE");
	return !(given && *given) && !(env && *env);
}

int ib_registry_login(const char *host, const ib_registry_options *opts)
{
	if (!opts || !opts->username || !*opts->username)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "login to %s: no username", host ? host : "?");
	if (!host || !*host)
		host = "docker.io";
	ib_buf path = IB_BUF_INIT;
	ib_push__registry *r = NULL;
	char *helper = NULL;
	char *what = ib_sprintf("login to %s", host);
	int rc = what ? ib_push__login_file(&path, opts) : IB_ERROR;
	if (rc == 0)
		rc = ib_push__registry_new(&r, host, "", "", opts, NULL, what);
	/*
	 * GET /v2/ with the credentials: a Basic registry checks them there, a
	 * token registry when it hands out a token for them.
	 */
	if (rc == 0)
		rc = ib_push__registry_ping(r);
	if (rc == 0)
		rc = login_helper(&helper, path.ptr, host, is_docker_file(opts));
	if (rc == 0 && helper) {
		rc = ib_push__helper_store(helper, ib_push__config_key(host), opts->username,
					   opts->password ? opts->password : "");
		/* docker keeps the registry's key in auths, without its secret */
		if (rc == 0)
			rc = ib_push__config_put(path.ptr, host, NULL, NULL, IB_PUSH_CONFIG_EMPTY);
	} else if (rc == 0) {
		rc = ib_push__config_set(path.ptr, host, opts->username, opts->password);
	}
	if (rc < 0)
		ib_error_prefix("%s", what);
	ib_push__registry_free(r);
	ib_buf_dispose(&path);
	free(helper);
	free(what);
	return rc;
}

int ib_registry_logout(const char *host, const ib_registry_options *opts)
{
	static const ib_registry_options defaults = IB_REGISTRY_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	if (opts->version < 1 || opts->version > IB_REGISTRY_OPTIONS_VERSION)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "registry options: unknown version %u", opts->version);
	if (!host || !*host)
		host = "docker.io";
	ib_buf path = IB_BUF_INIT;
	char *helper = NULL;
	int rc = ib_push__login_file(&path, opts);
	if (rc == 0)
		rc = login_helper(&helper, path.ptr, host, is_docker_file(opts));
	if (rc == 0 && helper) {
		int erc = ib_push__helper_erase(helper, ib_push__config_key(host));
		if (erc < 0 && erc != IB_ENOTFOUND) {
			rc = erc;
		} else {
			int frc = ib_push__config_set(path.ptr, host, NULL, NULL);
			/* not found in the helper nor in the file: not logged in */
			if (frc == IB_ENOTFOUND && erc == 0)
				ib_error_clear();
			else
				rc = frc;
		}
	} else if (rc == 0) {
		rc = ib_push__config_set(path.ptr, host, NULL, NULL);
	}
	if (rc < 0)
		ib_error_prefix("logout from %s", host);
	ib_buf_dispose(&path);
	free(helper);
	return rc;
}
