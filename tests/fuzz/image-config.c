/*
 * An image config blob (from a registry, a `docker load` archive, a base
 * image): the parse, every getter, a round trip through to_json, and the
 * changes a build makes to a base image's config (ENV, LABEL, CMD,
 * HEALTHCHECK, history, diff_ids) on the parsed document.
 */
#include "fuzz.h"
#include "imagebuild/store.h"

static void read_all(const ib_image_config *c)
{
	for (int w = IB_CONFIG_CREATED; w <= IB_CONFIG_STOPSIGNAL; w++)
		(void)ib_image_config_get(c, (ib_config_string)w);
	(void)ib_image_config_args_escaped(c);
	for (int l = IB_CONFIG_ENV; l <= IB_CONFIG_HEALTHCHECK_TEST; l++) {
		(void)ib_image_config_list_is_set(c, (ib_config_list)l);
		size_t n = ib_image_config_list_count(c, (ib_config_list)l);
		for (size_t i = 0; i < n; i++)
			IB_FUZZ_CHECK(ib_image_config_list_get(c, (ib_config_list)l, i) != NULL);
		IB_FUZZ_CHECK(ib_image_config_list_get(c, (ib_config_list)l, n) == NULL);
	}
	(void)ib_image_config_env_get(c, "PATH");
	size_t nl = ib_image_config_label_count(c);
	for (size_t i = 0; i < nl; i++) {
		const char *k, *v;
		IB_FUZZ_CHECK(ib_image_config_label_at(&k, &v, c, i) == 0 && k && v);
		IB_FUZZ_CHECK(ib_image_config_label_get(c, k) != NULL);
	}
	ib_healthcheck hc = IB_HEALTHCHECK_INIT;
	(void)ib_image_config_healthcheck(&hc, c);
	size_t nd = ib_image_config_diff_id_count(c);
	for (size_t i = 0; i < nd; i++) {
		ib_digest d;
		(void)ib_image_config_diff_id(&d, c, i);
	}
	size_t nh = ib_image_config_history_count(c);
	for (size_t i = 0; i < nh; i++) {
		ib_history_entry e = IB_HISTORY_ENTRY_INIT;
		(void)ib_image_config_history_get(&e, c, i);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ib_image_config *c = NULL;
	if (ib_image_config_from_json(&c, (const char *)data, size) < 0)
		return 0;
	read_all(c);
	ib_buf j1 = IB_BUF_INIT, j2 = IB_BUF_INIT;
	IB_FUZZ_CHECK(ib_image_config_to_json(&j1, c) == 0);
	/* what we write, we read back to the same document */
	ib_image_config *c2 = NULL;
	IB_FUZZ_CHECK(ib_image_config_from_json(&c2, j1.ptr, j1.size) == 0);
	IB_FUZZ_CHECK(ib_image_config_to_json(&j2, c2) == 0);
	IB_FUZZ_CHECK(j1.size == j2.size && !memcmp(j1.ptr, j2.ptr, j1.size));
	ib_image_config_free(c2);

	/* a build on top of it */
	ib_image_config *d = NULL;
	if (ib_image_config_dup(&d, c) == 0) {
		(void)ib_image_config_env_set(d, "PATH", "/x");
		(void)ib_image_config_env_set(d, "NEW", "1");
		(void)ib_image_config_label_set(d, "a", "b");
		(void)ib_image_config_list_add(d, IB_CONFIG_EXPOSED_PORTS, "80/tcp");
		(void)ib_image_config_list_add(d, IB_CONFIG_VOLUMES, "/data");
		(void)ib_image_config_list_add(d, IB_CONFIG_ONBUILD, "RUN x");
		static const char *const cmd[] = { "sh", "-c", "true" };
		(void)ib_image_config_list_set(d, IB_CONFIG_CMD, cmd, 3);
		(void)ib_image_config_set(d, IB_CONFIG_WORKDIR, "/w");
		(void)ib_image_config_set(d, IB_CONFIG_USER, NULL);
		ib_healthcheck hc = IB_HEALTHCHECK_INIT;
		hc.retries = 2;
		(void)ib_image_config_set_healthcheck(d, cmd, 3, &hc);
		ib_history_entry e = { IB_HISTORY_ENTRY_VERSION, "2024-01-01T00:00:00Z", "RUN x", NULL, NULL, 1 };
		(void)ib_image_config_history_add(d, &e);
		ib_digest dd;
		if (ib_digest_of(&dd, "x", 1) == 0)
			(void)ib_image_config_diff_id_add(d, &dd);
		read_all(d);
		ib_buf j3 = IB_BUF_INIT;
		(void)ib_image_config_to_json(&j3, d);
		ib_buf_dispose(&j3);
		ib_image_config_free(d);
	}
	ib_buf_dispose(&j1);
	ib_buf_dispose(&j2);
	ib_image_config_free(c);
	return 0;
}
