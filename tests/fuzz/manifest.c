/*
 * Manifests and indexes (OCI and Docker schema 2), as a registry or an
 * archive sends them: the platform choice of an index, then the image a
 * store makes of them (descriptors, layers against the config's diff_ids,
 * history, inspect). The input is up to three NUL-separated JSON documents:
 * the top document (index or manifest), a manifest, a config. They go into
 * a scratch store as blobs; `@C@` in the first two stands for the config's
 * digest and `@M@` in the first for the manifest's, so the fuzzer can name
 * them.
 */
#include "fuzz.h"
#include "imagebuild/store.h"
#include "store/internal.h"
#include "util/fs.h"

#include <unistd.h>

static ib_store *store;
/* on tmpfs: blob writes fsync */
static char store_dir[] = "/dev/shm/ib-fuzz-manifest.XXXXXX";

static void cleanup(void)
{
	ib_store_free(store);
	store = NULL;
	(void)ib_rm_rf(store_dir);
}

static void open_store(void)
{
	if (store)
		return;
	if (!mkdtemp(store_dir) || ib_store_open(&store, store_dir, NULL) < 0) {
		fprintf(stderr, "manifest fuzz: cannot make a scratch store in /dev/shm\n");
		abort();
	}
	atexit(cleanup);
}

/* `s` with every `tok` replaced by `with` (malloc'ed). */
static char *subst(const char *s, size_t len, const char *tok, const char *with, size_t *out_len)
{
	size_t tl = strlen(tok), wl = strlen(with), n = 0;
	for (size_t i = 0; i + tl <= len; i++)
		if (!memcmp(s + i, tok, tl))
			n++;
	char *o = malloc(len + n * wl + 1), *p = o;
	if (!o)
		abort();
	for (size_t i = 0; i < len;) {
		if (i + tl <= len && !memcmp(s + i, tok, tl)) {
			memcpy(p, with, wl);
			p += wl;
			i += tl;
		} else {
			*p++ = s[i++];
		}
	}
	*p = '\0';
	*out_len = (size_t)(p - o);
	return o;
}

static void drop_blob(const ib_digest *d)
{
	char *path = ib_store__blob_path(store, d);
	if (path)
		(void)unlink(path);
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	open_store();
	const char *part[3] = { "", "", "" };
	size_t plen[3] = { 0, 0, 0 };
	const char *p = (const char *)data, *end = p + size;
	for (int i = 0; i < 3 && p <= end; i++) {
		const char *nul = i < 2 ? memchr(p, 0, (size_t)(end - p)) : NULL;
		part[i] = p;
		plen[i] = nul ? (size_t)(nul - p) : (size_t)(end - p);
		if (!nul)
			break;
		p = nul + 1;
	}
	ib_digest cfg, man, top;
	char cs[IB_DIGEST_STRLEN], ms[IB_DIGEST_STRLEN];
	IB_FUZZ_CHECK(ib_store_blob_put(&cfg, store, part[2], plen[2]) == 0);
	ib_digest_fmt(cs, &cfg);
	size_t mlen, tlen, t2len;
	char *m = subst(part[1], plen[1], "@C@", cs, &mlen);
	IB_FUZZ_CHECK(ib_store_blob_put(&man, store, m, mlen) == 0);
	ib_digest_fmt(ms, &man);
	char *t1 = subst(part[0], plen[0], "@C@", cs, &tlen);
	char *t = subst(t1, tlen, "@M@", ms, &t2len);
	IB_FUZZ_CHECK(ib_store_blob_put(&top, store, t, t2len) == 0);

	/* what pull does with an index from a registry */
	ib_digest picked;
	ib_buf mt = IB_BUF_INIT;
	if (ib_store_index_platform(&picked, &mt, t, t2len) == 0)
		IB_FUZZ_CHECK(mt.ptr && mt.size);
	ib_buf_dispose(&mt);

	/* what the store makes of the image */
	json_t *index = json_pack("{s:[]}", "manifests");
	IB_FUZZ_CHECK(index != NULL);
	ib_image *img = NULL;
	if (ib_store__image_load(&img, store, index, &top, NULL) == 0) {
		for (size_t i = 0; i < ib_image_layer_count(img); i++)
			IB_FUZZ_CHECK(ib_image_layer(img, i)->media_type != NULL);
		for (size_t i = 0; i < ib_image_history_count(img); i++) {
			ib_image_history_item it = IB_IMAGE_HISTORY_ITEM_INIT;
			IB_FUZZ_CHECK(ib_image_history_get(&it, img, i) == 0);
		}
		ib_buf js = IB_BUF_INIT;
		IB_FUZZ_CHECK(ib_image_inspect_json(&js, img) == 0);
		ib_buf_dispose(&js);
		ib_image_free(img);
	}
	json_decref(index);
	drop_blob(&top);
	drop_blob(&man);
	drop_blob(&cfg);
	free(t);
	free(t1);
	free(m);
	return 0;
}
