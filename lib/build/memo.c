/*
 * The COPY --from memo: a COPY from another stage is keyed by the content it
 * copies (as BuildKit keys it), so finding its key means mounting that
 * stage's rootfs and hashing every file the step copies. But that rootfs is
 * a function of the stage's layers (diff_ids: content digests), so the step
 * key is a function of what the step sees (its parent key, instruction, ARGs,
 * ENV, user, workdir: ib_build__key_begin's inputs) and of those layers. The
 * memo remembers that function's value: <root>/build-memo/<memo key> holds
 * the step key found the last time. A rebuild whose source stage came from
 * the cache finds the step key there and never mounts nor hashes anything.
 *
 * A memo file is a cache of a deterministic result: a missing, damaged or
 * unreadable one costs only the mount and the hash (and is written again),
 * and one whose step key has no cache entry any more is simply not used.
 */
#include "build/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMO_VERSION "copy-from-memo/1"

int ib_build__copy_memo_key(char out[IB_DIGEST_HEXLEN + 1], builder *b, const stage_state *s,
			    const ib_instruction *in, size_t stage_index)
{
	out[0] = '\0';
	if (in->kind != IB_INSTR_COPY || !in->u.copy.from)
		return 0;
	ib_buf from = IB_BUF_INIT;
	size_t idx;
	int rc = ib_build__expand_one(&from, b, s, in->u.copy.from);
	if (rc < 0) {
		ib_error_clear(); /* the step itself reports it */
		ib_buf_dispose(&from);
		return 0;
	}
	/* only another stage of this build: its layers are known without a lookup */
	if (ib_plan_resolve_stage(&idx, b->plan, from.ptr, stage_index) < 0 || !b->stages || idx >= b->nstages ||
	    !b->stages[idx].built) {
		ib_error_clear();
		ib_buf_dispose(&from);
		return 0;
	}
	const stage_state *src = &b->stages[idx];
	keyer k = {NULL};
	if ((rc = ib_build__key_begin(&k, s, in)) < 0) {
		ib_buf_dispose(&from);
		return rc;
	}
	char line[96];
	ib_build__key_add(&k, MEMO_VERSION);
	if (b->o->use_source_date_epoch) {
		snprintf(line, sizeof line, "SOURCE_DATE_EPOCH=%lld", (long long)b->o->source_date_epoch);
		ib_build__key_add(&k, line);
	}
	/* who reads the files: their owners as seen may differ (user namespaces) */
	snprintf(line, sizeof line, "euid=%ld", (long)geteuid());
	ib_build__key_add(&k, line);
	ib_build__key_add(&k, from.ptr);
	snprintf(line, sizeof line, "layers=%zu", src->nlayers);
	ib_build__key_add(&k, line);
	for (size_t i = 0; i < src->nlayers; i++) {
		char ds[IB_DIGEST_STRLEN];
		ib_digest_fmt(ds, &src->layers[i].diff_id);
		ib_build__key_add(&k, ds);
	}
	ib_buf_dispose(&from);
	return ib_build__key_end(&k, out);
}

static char *memo_path(builder *b, const char *memo)
{
	return ib_sprintf("%s/build-memo/%s", ib_store_root(b->store), memo);
}

static int is_key(const char *p, size_t n)
{
	if (n != IB_DIGEST_HEXLEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
			return 0;
	return 1;
}

int ib_build__memo_get(builder *b, const char *memo, char key[IB_DIGEST_HEXLEN + 1])
{
	char *p = memo_path(b, memo);
	ib_buf text = IB_BUF_INIT;
	int found = 0;
	if (p && ib_read_file(&text, p) == 0) {
		size_t n = text.size;
		while (n && (text.ptr[n - 1] == '\n'))
			n--;
		if (is_key(text.ptr, n)) {
			memcpy(key, text.ptr, IB_DIGEST_HEXLEN);
			key[IB_DIGEST_HEXLEN] = '\0';
			found = 1;
		}
	}
	ib_error_clear(); /* none, or damaged: the step is keyed the long way */
	ib_buf_dispose(&text);
	free(p);
	return found;
}

int ib_build__memo_put(builder *b, const char *memo, const char *key)
{
	char have[IB_DIGEST_HEXLEN + 1];
	if (ib_build__memo_get(b, memo, have) && !strcmp(have, key))
		return 0; /* nothing to write */
	char *dir = ib_sprintf("%s/build-memo", ib_store_root(b->store));
	char *p = memo_path(b, memo);
	char text[IB_DIGEST_HEXLEN + 2];
	snprintf(text, sizeof text, "%s\n", key);
	int rc = dir && p ? ib_mkdir_p(dir, 0700) : IB_ERROR;
	if (rc == 0)
		rc = ib_atomic_write(p, text, strlen(text), 0600);
	free(dir);
	free(p);
	return rc;
}
