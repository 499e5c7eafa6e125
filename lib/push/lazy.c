/*
 * Remote layers (lib/store/README.md, "Remote layers"; docs/cache.md): the
 * fetcher the store calls when a remote layer's content is needed, and the
 * push of a remote layer, which moves no byte when the destination
 * registry has its blob (HEAD) or can mount it from the repository the
 * record names (the same registry: a cross-repository mount).
 */
#include "push/internal.h"
#include "util/callback.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * The store's fetcher: the blob from the registry the record names (with
 * `registry_options`, NULL: those of a plain pull: registries.conf, the
 * credentials stored for that host, sent only to it), checked against its
 * digest as it streams in, then uncompressed and checked against the diff_id.
 */
int ib_push_fetch_remote_layer(ib_store *s, const ib_store_remote_layer *l, void *registry_options)
{
	if (!s || !l)
		return ib_error_setc(IB_EINVALID, IB_LAYER_PUSH, "fetch remote layer: no store or layer");
	char *what = ib_sprintf("%s/%s", l->registry, l->repository);
	ib_push__registry *r = NULL;
	int rc = what ? ib_push__registry_new(&r, l->registry, l->repository, "pull",
					      (const ib_registry_options *)registry_options, NULL, what)
		      : IB_ERROR;
	if (rc == 0)
		rc = ib_push__registry_ping(r);
	if (rc == 0 && ib_store__blob_local_has(s, &l->blob) != 1)
		rc = ib_push__fetch_blob(r, s, &l->blob, l->blob_size, NULL);
	if (rc == 0)
		rc = ib_store_layer_uncompress(s, &l->blob, l->media_type, &l->diff_id);
	ib_push__registry_free(r);
	free(what);
	return rc;
}

__attribute__((constructor)) static void install_fetcher(void)
{
	ib_store_remote_fetch_provider(ib_push_fetch_remote_layer);
}

/* POST ?mount=&from=: 1 when the registry mounted `d` from repository `from`, 0 when not. */
static int mount(ib_push__registry *r, const ib_digest *d, const char *from)
{
	char ds[IB_DIGEST_STRLEN], object[IB_DIGEST_STRLEN + 16];
	ib_digest_fmt(ds, d);
	snprintf(object, sizeof object, "blob mount %s", ds);
	char *rel = ib_sprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", ib_push__registry_path(r), ds, from);
	ib_push__response resp = { 0 };
	int rc = rel ? ib_push__registry_request(r, &resp, "POST", rel, NULL, NULL, NULL, object) : IB_ERROR;
	free(rel);
	if (rc == 0)
		rc = resp.status == 201;
	else if (rc != IB_EUSER) {
		/* a refused mount is not a failure: the blob is then fetched and uploaded */
		ib_error_clear();
		rc = 0;
	}
	ib_push__response_dispose(&resp);
	return rc;
}

int ib_push__remote_layer_upload(ib_push__registry *r, const char *domain, ib_store *s, const ib_store_remote_layer *l,
				 const char *id, const char *mount_from, uint64_t chunk)
{
	int rc = ib_push__blob_exists(r, &l->blob);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return id ? ib_push__registry_progress(r, id, "Layer already exists", 0, 0) : 0;
	if (domain && !strcmp(domain, l->registry) && strcmp(ib_push__registry_path(r), l->repository)) {
		if ((rc = mount(r, &l->blob, l->repository)) < 0)
			return rc;
		if (rc == 1) {
			char *text = id ? ib_sprintf("Mounted from %s", l->repository) : NULL;
			rc = !id ? 0 : text ? ib_push__registry_progress(r, id, text, l->blob_size, l->blob_size) : IB_ERROR;
			free(text);
			return rc;
		}
	}
	/* another registry (or a mount refused): the layer is fetched, checked, and sent */
	if (id && (rc = ib_push__registry_progress(r, id, "Pulling fs layer", 0, l->blob_size)) < 0)
		return rc;
	if ((rc = ib_store_remote_layer_fetch(s, &l->diff_id)) < 0)
		return rc;
	return ib_push__upload_blob(r, s, &l->blob, id, mount_from, chunk);
}
