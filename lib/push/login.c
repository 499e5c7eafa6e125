/* docker login / logout: check credentials against a registry, keep them in Docker's config file. */
#include "push/internal.h"

#include <stdlib.h>
#include <string.h>

int ib_registry_login(const char *host, const ib_registry_options *opts)
{
	if (!opts || !opts->username || !*opts->username)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "login to %s: no username", host ? host : "?");
	if (!host || !*host)
		host = "docker.io";
	ib_buf path = IB_BUF_INIT;
	ib_push__registry *r = NULL;
	char *what = ib_sprintf("login to %s", host);
	int rc = what ? ib_push__config_path(&path, opts->docker_config) : IB_ERROR;
	if (rc == 0)
		rc = ib_push__registry_new(&r, host, "", "", opts, NULL, what);
	/*
	 * GET /v2/ with the credentials: a Basic registry checks them there, a
	 * token registry when it hands out a token for them.
	 */
	if (rc == 0)
		rc = ib_push__registry_ping(r);
	if (rc == 0 && (rc = ib_push__config_set(path.ptr, host, opts->username, opts->password)) < 0)
		ib_error_prefix("%s", what);
	ib_push__registry_free(r);
	ib_buf_dispose(&path);
	free(what);
	return rc;
}

int ib_registry_logout(const char *host, const ib_registry_options *opts)
{
	static const ib_registry_options defaults = IB_REGISTRY_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	if (!host || !*host)
		host = "docker.io";
	ib_buf path = IB_BUF_INIT;
	int rc = ib_push__config_path(&path, opts->docker_config);
	if (rc == 0 && (rc = ib_push__config_set(path.ptr, host, NULL, NULL)) < 0)
		ib_error_prefix("logout from %s", host);
	ib_buf_dispose(&path);
	return rc;
}
